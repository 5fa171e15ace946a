// stepproof: the client CLI of a stepproofd server.
//
//   stepproof generate --prompt "What is 478 + 854?" --out trace.json
//   stepproof trace ID
//   stepproof proof --trace ID --step N --out bundle.json
//   stepproof checkpoint
//   stepproof key
//
// Exit status: 0 success, 1 the server call failed, 2 usage error.
// docs/CLI.md has the full reference.
#include <algorithm>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "clients/cli_output.h"
#include "clients/command_line.h"
#include "clients/file_io.h"
#include "clients/generate_command.h"
#include "clients/service_client.h"
#include "clients/terminal_text.h"
#include "clients/verified_step.h"
#include "nlohmann/json.hpp"
#include "provenance/step_record.h"

ABSL_FLAG(std::string, server, "127.0.0.1:7700", "stepproofd address, host:port");
ABSL_FLAG(std::string, token, "",
          "API bearer token, or @FILE holding it (when the server has one)");
ABSL_FLAG(std::string, tls_ca, "",
          "PEM file of the CA that signed the server's TLS certificate "
          "(connects with TLS; plaintext when unset)");
ABSL_FLAG(bool, json, false,
          "machine-readable output: one JSON object per line per event");
// generate
ABSL_FLAG(std::string, prompt, "", "generate: the question to ask the model");
ABSL_FLAG(std::string, out, "",
          "generate: write the whole trace (every step's bundle) to this file; "
          "proof: write the bundle to this file (stdout when unset)");
ABSL_FLAG(double, temperature, -1, "generate: sampling temperature (server default 0.6)");
ABSL_FLAG(double, top_p, -1, "generate: nucleus sampling threshold (server default 0.95)");
ABSL_FLAG(int32_t, top_k, -1, "generate: top-k cut-off, 0 = off (server default 0)");
ABSL_FLAG(std::string, seed, "",
          "generate: sampling seed, a decimal uint64 (server picks one when unset)");
ABSL_FLAG(bool, greedy, false, "generate: argmax decoding");
ABSL_FLAG(uint32_t, max_tokens, 0, "generate: generated-token budget (0 = server's)");
ABSL_FLAG(double, wait_log, 5,
          "generate --out: wait up to this many seconds for the global log to "
          "include the sealed trace, so every bundle in the file carries its "
          "log inclusion proof (0 = do not wait)");
ABSL_FLAG(std::string, key, "",
          "generate: the verifier key (or @FILE) to check the stream's signed "
          "checkpoints with; default: the key the server reports");
ABSL_FLAG(bool, withhold_prompt, false,
          "generate: the trace stores only a salted commitment to the prompt");
// trace / proof / checkpoint
ABSL_FLAG(std::string, trace, "", "proof: the trace id");
ABSL_FLAG(int64_t, step, -1, "proof: the step (leaf) index; 0 is the header");
ABSL_FLAG(uint64_t, size, 0, "checkpoint: a log size (0 = the latest)");

namespace stepproof::clients {
namespace {

constexpr char kUsage[] = R"(ask a StepProof server for reasoning traces and their proofs.

usage:
  stepproof generate --prompt "What is 478 + 854?" [--out TRACE.json]
        [--temperature T] [--top-p P] [--top-k K] [--seed S] [--greedy]
        [--max-tokens N] [--withhold-prompt]
      Streams the reasoning steps as the server commits them; with --out,
      writes the whole trace and every step's proof bundle to TRACE.json
      (check it offline with `stepproof-audit verify-trace`).
  stepproof trace ID            a stored trace: state, header, every step
  stepproof proof --trace ID --step N [--out BUNDLE.json]
                                one step's proof bundle (stepproof-audit verify)
  stepproof checkpoint [--size N]
                                the latest signed log checkpoint (note text)
  stepproof key                 the server's verifier key (one line)

common flags: --server HOST:PORT (default 127.0.0.1:7700), --token TOKEN|@FILE,
  --tls-ca CA.pem, --json (one JSON object per event)
exit status: 0 success, 1 the server call failed, 2 usage error
See docs/CLI.md.)";

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

int Usage(absl::string_view problem) {
  std::cerr << "stepproof: " << problem << "\n(run `stepproof --help`)\n";
  return kExitUsage;
}

int Failed(const absl::Status& status) {
  std::cerr << "stepproof: " << status.message() << "\n";
  return kExitFailed;
}

absl::StatusOr<v1::GenerateRequest> BuildGenerateRequest() {
  v1::GenerateRequest request;
  std::string prompt = absl::GetFlag(FLAGS_prompt);
  if (prompt.empty()) {
    return absl::InvalidArgumentError("generate needs --prompt \"QUESTION\"");
  }
  request.set_prompt(prompt);
  v1::SamplingSettings* sampling = request.mutable_sampling();
  sampling->set_greedy(absl::GetFlag(FLAGS_greedy));
  if (double t = absl::GetFlag(FLAGS_temperature); t >= 0) {
    sampling->set_temperature(static_cast<float>(t));
  }
  if (double p = absl::GetFlag(FLAGS_top_p); p >= 0) {
    sampling->set_top_p(static_cast<float>(p));
  }
  if (int32_t k = absl::GetFlag(FLAGS_top_k); k >= 0) sampling->set_top_k(k);
  if (std::string seed = absl::GetFlag(FLAGS_seed); !seed.empty()) {
    uint64_t value = 0;
    if (!absl::SimpleAtoi(seed, &value)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--seed: \"", seed, "\" is not a decimal uint64"));
    }
    request.set_seed(value);
  }
  request.set_max_tokens(absl::GetFlag(FLAGS_max_tokens));
  request.set_withhold_prompt(absl::GetFlag(FLAGS_withhold_prompt));
  return request;
}

absl::StatusOr<std::unique_ptr<ServiceClient>> Connect() {
  absl::StatusOr<ServiceClientOptions> options =
      MakeServiceClientOptions(absl::GetFlag(FLAGS_server),
                               absl::GetFlag(FLAGS_token),
                               absl::GetFlag(FLAGS_tls_ca));
  if (!options.ok()) return options.status();
  return ServiceClient::Create(*std::move(options));
}

int RunGenerate(ServiceClient& client) {
  absl::StatusOr<v1::GenerateRequest> request = BuildGenerateRequest();
  if (!request.ok()) return Usage(request.status().message());
  GenerateCommandOptions options;
  options.request = *std::move(request);
  options.out_path = absl::GetFlag(FLAGS_out);
  options.key_arg = absl::GetFlag(FLAGS_key);
  options.wait_log = absl::Seconds(std::max(0.0, absl::GetFlag(FLAGS_wait_log)));
  options.json = absl::GetFlag(FLAGS_json);
  return RunGenerateCommand(client, options);
}

int RunTrace(ServiceClient& client, const std::string& trace_id) {
  absl::StatusOr<v1::GetTraceResponse> response =
      client.GetTrace(trace_id, /*include_steps=*/true);
  if (!response.ok()) return Failed(response.status());
  if (absl::GetFlag(FLAGS_json)) {
    std::cout << ProtoJsonLine(*response) << std::endl;
    return kExitOk;
  }
  const v1::TraceSummary& t = response->trace();
  absl::string_view state = "unknown";
  switch (t.state()) {
    case v1::TRACE_STATE_OPEN:
      state = "open (still generating)";
      break;
    case v1::TRACE_STATE_SEALED:
      state = "sealed";
      break;
    case v1::TRACE_STATE_INTERRUPTED:
      state = "interrupted (the server stopped mid-generation)";
      break;
    default:
      break;
  }
  std::cout << "trace " << t.trace_id() << ": " << state << ", " << t.size()
            << " leaves";
  if (t.has_log_index()) std::cout << ", log leaf " << t.log_index();
  std::cout << "\n";
  absl::StatusOr<provenance::StepRecord> header_record =
      provenance::DecodeStepRecord(response->header_record());
  if (header_record.ok()) {
    absl::StatusOr<provenance::TraceHeader> header =
        provenance::HeaderFromRecord(*header_record);
    if (header.ok()) std::cout << FormatTraceHeader(*header, "  ");
  }
  for (const v1::StepEntry& e : response->steps()) {
    if (e.step().kind() == v1::STEP_KIND_HEADER) continue;
    std::string label =
        absl::StrCat("  [", e.leaf_index(), "] ", StepKindLabel(e.step().kind()), ": ");
    std::cout << label
              << StepTextForTerminal(e.step().text(),
                                   std::string(label.size(), ' '))
              << "\n";
  }
  const std::string& cp =
      t.final_checkpoint().empty() ? t.latest_checkpoint() : t.final_checkpoint();
  std::cout << (t.final_checkpoint().empty() ? "latest" : "final")
            << " signed checkpoint:\n"
            << IndentLines(cp, "    ");
  return kExitOk;
}

int RunProof(ServiceClient& client) {
  std::string trace_id = absl::GetFlag(FLAGS_trace);
  int64_t step = absl::GetFlag(FLAGS_step);
  if (trace_id.empty()) return Usage("proof needs --trace ID");
  if (step < 0) return Usage("proof needs --step N (0 is the header)");
  absl::StatusOr<v1::GetStepProofResponse> proof =
      client.GetStepProof(trace_id, static_cast<uint64_t>(step));
  if (!proof.ok()) return Failed(proof.status());
  std::string out = absl::GetFlag(FLAGS_out);
  if (out.empty() && absl::GetFlag(FLAGS_json)) {
    nlohmann::json bundle =
        nlohmann::json::parse(proof->bundle_json(), nullptr, false);
    if (bundle.is_discarded()) {
      return Failed(absl::DataLossError("the server's bundle is not JSON"));
    }
    std::cout << JsonLine({{"trace_id", trace_id},
                           {"step", step},
                           {"in_log", proof->in_log()},
                           {"anchored", proof->anchored()},
                           {"bundle", std::move(bundle)}})
              << std::endl;
    return kExitOk;
  }
  if (out.empty()) {  // the bundle exactly as the server wrote it
    std::cout << proof->bundle_json();
    if (!absl::EndsWith(proof->bundle_json(), "\n")) std::cout << "\n";
    return kExitOk;
  }
  if (absl::Status s = WriteStringToFile(out, proof->bundle_json()); !s.ok()) {
    return Failed(s);
  }
  if (absl::GetFlag(FLAGS_json)) {
    std::cout << JsonLine({{"written",
                            {{"path", out},
                             {"trace_id", trace_id},
                             {"step", step},
                             {"in_log", proof->in_log()},
                             {"anchored", proof->anchored()}}}})
              << std::endl;
  } else {
    std::cout << "wrote the proof bundle of step " << step << " of trace "
              << trace_id << " to " << out
              << (proof->in_log() ? " (with its log inclusion proof)"
                                  : " (not yet in the log: no log inclusion "
                                    "proof; fetch again later for one)")
              << "\n";
  }
  return kExitOk;
}

int RunCheckpoint(ServiceClient& client) {
  absl::StatusOr<v1::GetLogCheckpointResponse> cp =
      client.GetLogCheckpoint(absl::GetFlag(FLAGS_size));
  if (!cp.ok()) return Failed(cp.status());
  if (absl::GetFlag(FLAGS_json)) {
    std::cout << JsonLine({{"size", cp->size()},
                           {"root", HexBytes(cp->root())},
                           {"integrated_unix_ms", cp->integrated_unix_ms()},
                           {"checkpoint", cp->checkpoint()}})
              << std::endl;
  } else {
    std::cout << cp->checkpoint();
  }
  return kExitOk;
}

int RunKey(ServiceClient& client) {
  absl::StatusOr<v1::GetVerifierKeyResponse> key = client.GetVerifierKey();
  if (!key.ok()) return Failed(key.status());
  if (absl::GetFlag(FLAGS_json)) {
    std::cout << ProtoJsonLine(*key) << std::endl;
  } else {
    std::cout << key->verifier_key() << "\n";
  }
  return kExitOk;
}

int Main(int argc, char** argv) {
  absl::StatusOr<CliCommandLine> command_line =
      ParseCliCommandLine(argc, argv, "stepproof", kUsage, "stepproof_main");
  if (!command_line.ok()) return Usage(command_line.status().message());
  if (command_line->help_printed) return 0;
  const std::vector<std::string>& positional = command_line->positional;
  if (positional.size() < 2) {
    return Usage("no command: generate, trace, proof, checkpoint or key");
  }
  std::string command = positional[1];
  size_t want_args = command == "trace" ? 3 : 2;
  if (positional.size() != want_args) {
    return Usage(command == "trace"
                     ? "usage: stepproof trace ID"
                     : absl::StrCat("unexpected argument \"", positional[2],
                                    "\" (flags take --name=value)"));
  }
  if (command != "generate" && command != "trace" && command != "proof" &&
      command != "checkpoint" && command != "key") {
    return Usage(absl::StrCat("unknown command \"", command,
                              "\": generate, trace, proof, checkpoint or key"));
  }
  absl::StatusOr<std::unique_ptr<ServiceClient>> client = Connect();
  if (!client.ok()) return Usage(client.status().message());
  if (command == "generate") return RunGenerate(**client);
  if (command == "trace") return RunTrace(**client, positional[2]);
  if (command == "proof") return RunProof(**client);
  if (command == "checkpoint") return RunCheckpoint(**client);
  return RunKey(**client);
}

}  // namespace
}  // namespace stepproof::clients

int main(int argc, char** argv) { return stepproof::clients::Main(argc, argv); }
