#include "clients/generate_command.h"

#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "clients/cli_output.h"
#include "clients/file_io.h"
#include "clients/stream_check.h"
#include "clients/terminal_text.h"
#include "clients/trace_file.h"
#include "clients/verifier_key_arg.h"

namespace stepproof::clients {
namespace {

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

// A transient status line on stderr when it is a terminal: the live count.
class LiveStatus {
 public:
  LiveStatus() : enabled_(::isatty(STDERR_FILENO) == 1) {}
  void Show(absl::string_view line) {
    if (!enabled_) return;
    std::cerr << "\r\033[K" << line << std::flush;
    shown_ = true;
  }
  void Clear() {
    if (shown_) std::cerr << "\r\033[K" << std::flush;
    shown_ = false;
  }

 private:
  bool enabled_;
  bool shown_ = false;
};

}  // namespace

int RunGenerateCommand(ServiceClient& client,
                       const GenerateCommandOptions& options) {
  const v1::GenerateRequest* request = &options.request;
  const bool json = options.json;
  const std::string& out_path = options.out_path;

  // The key that every checkpoint in the stream must be signed by: pinned
  // with --key, else the one the server reports.
  std::string key_arg = options.key_arg;
  bool key_from_server = key_arg.empty();
  if (key_from_server) {
    absl::StatusOr<v1::GetVerifierKeyResponse> key = client.GetVerifierKey();
    if (!key.ok()) return Failed(key.status());
    key_arg = key->verifier_key();
  }
  absl::StatusOr<provenance::NoteVerifier> key = LoadVerifierKeyArg(key_arg);
  if (!key.ok()) {
    return key_from_server ? Failed(key.status()) : Usage(key.status().message());
  }
  TraceStreamCheck check(*key);
  bool check_failed = false;
  auto checked = [&check_failed](absl::Status status) {
    if (!status.ok()) check_failed = true;
    return status;
  };

  TraceFile trace;
  trace.prompt = request->prompt();
  uint64_t steps_committed = 0;
  uint64_t tokens = 0;
  bool sealed = false;
  LiveStatus live;
  absl::Time started = absl::Now();

  absl::Status stream = client.Generate(
      *request, [&](const v1::GenerateEvent& event) -> absl::Status {
        if (json) std::cout << ProtoJsonLine(event) << std::endl;
        switch (event.event_case()) {
          case v1::GenerateEvent::kStarted: {
            const v1::TraceStarted& s = event.started();
            if (absl::Status c = checked(
                    check.AddLeaf(s.trace_id(), 0, s.header_record(),
                                  s.header_leaf_hash(), s.signed_checkpoint()));
                !c.ok()) {
              return c;
            }
            trace.trace_id = s.trace_id();
            trace.prompt_salt_hex = HexBytes(s.prompt_salt());
            trace.steps.push_back({0, "header", "", ""});
            if (!json) {
              const v1::TraceHeader& h = s.header();
              std::cout << "trace " << s.trace_id() << " started\n"
                        << "  model " << EscapeForTerminal(h.model_name())
                        << " on " << EscapeForTerminal(h.backend()) << " ("
                        << EscapeForTerminal(h.device()) << "), seed "
                        << h.sampling().seed() << "\n"
                        << "  [0] header committed: model, sampling settings "
                           "and prompt (signed checkpoint, size 1)\n"
                        << std::flush;
            }
            break;
          }
          case v1::GenerateEvent::kStep: {
            const v1::StepCommitted& c = event.step();
            if (absl::Status st = checked(
                    check.AddLeaf(trace.trace_id, c.leaf_index(), c.record(),
                                  c.leaf_hash(), c.signed_checkpoint()));
                !st.ok()) {
              return st;
            }
            ++steps_committed;
            tokens += static_cast<uint64_t>(c.step().token_ids_size());
            absl::string_view kind = StepKindLabel(c.step().kind());
            trace.steps.push_back(
                {c.leaf_index(), std::string(kind), c.step().text(), ""});
            if (!json) {
              live.Clear();
              std::string label = absl::StrCat("  [", c.leaf_index(), "] ",
                                               kind, ": ");
              std::cout << label
                        << StepTextForTerminal(c.step().text(),
                                             std::string(label.size(), ' '))
                        << "\n"
                        << std::flush;
              live.Show(absl::StrFormat(
                  "  ... %d steps committed, %d tokens, %.1f s", steps_committed,
                  tokens, absl::ToDoubleSeconds(absl::Now() - started)));
            }
            break;
          }
          case v1::GenerateEvent::kSealed: {
            const v1::TraceSealed& s = event.sealed();
            if (absl::Status c =
                    checked(check.Finish(s.final_checkpoint(), s.promise()));
                !c.ok()) {
              return c;
            }
            sealed = true;
            trace.final_checkpoint = s.final_checkpoint();
            trace.promise = s.promise();
            trace.answer = s.answer();
            trace.finish_reason = s.finish_reason();
            if (!json) {
              live.Clear();
              std::cout << "sealed: " << s.size() << " leaves (header + "
                        << s.size() - 1
                        << (s.size() == 2 ? " step" : " steps") << "), finish "
                        << s.finish_reason() << ", " << s.generated_tokens()
                        << " tokens in "
                        << absl::StrFormat("%.1f s", absl::ToDoubleSeconds(
                                                         absl::Now() - started))
                        << "\n"
                        << "answer: " << StepTextForTerminal(s.answer(), "        ") << "\n"
                        << "checked as they arrived: " << check.leaves()
                        << " leaves and " << check.leaves() + 1
                        << " signed checkpoints, each committing to exactly "
                           "the leaves received; key "
                        << check.key().name() << "+"
                        << absl::StrFormat("%08x", check.key().key_id())
                        << (key_from_server ? " (as the server reports it; "
                                              "pin one with --key)"
                                            : " (pinned)")
                        << "\n"
                        << std::flush;
            }
            break;
          }
          default:
            break;
        }
        return absl::OkStatus();
      });
  live.Clear();
  if (check_failed) {
    std::cerr << "stepproof: the server's stream does not check, so it proves "
                 "nothing: "
              << stream.message() << "\n";
    return kExitFailed;
  }
  if (!stream.ok()) {
    std::cerr << "stepproof: the stream ended early: " << stream.message()
              << "\n";
    if (!trace.trace_id.empty()) {
      std::cerr << "stepproof: trace " << trace.trace_id << " has "
                << trace.steps.size()
                << " committed leaves, each with a signed checkpoint; fetch "
                   "them with `stepproof trace "
                << trace.trace_id << "`\n";
    }
  }
  if (out_path.empty() || trace.trace_id.empty()) {
    return stream.ok() ? kExitOk : kExitFailed;
  }
  // Every leaf's bundle, against the final checkpoint when the trace sealed,
  // and with the log inclusion proof once the sequencer has integrated it
  // (it batches within a fraction of a second; the promise bounds the wait).
  bool in_log = false;
  if (sealed) {
    absl::Time deadline =
        absl::Now() + std::max(absl::ZeroDuration(), options.wait_log);
    for (;;) {
      absl::StatusOr<v1::GetStepProofResponse> probe =
          client.GetStepProof(trace.trace_id, 0);
      if (!probe.ok()) return Failed(probe.status());
      in_log = probe->in_log();
      if (in_log || absl::Now() >= deadline) break;
      absl::SleepFor(absl::Milliseconds(100));
    }
  }
  for (TraceFileStep& step : trace.steps) {
    absl::StatusOr<v1::GetStepProofResponse> proof =
        client.GetStepProof(trace.trace_id, step.index);
    if (!proof.ok()) return Failed(proof.status());
    step.bundle_json = proof->bundle_json();
  }
  absl::StatusOr<std::string> text = TraceFileToJson(trace);
  if (!text.ok()) return Failed(text.status());
  if (absl::Status s = WriteStringToFile(out_path, *text); !s.ok()) {
    return Failed(s);
  }
  if (json) {
    std::cout << JsonLine({{"written",
                            {{"path", out_path},
                             {"trace_id", trace.trace_id},
                             {"steps", trace.steps.size()},
                             {"sealed", sealed},
                             {"in_log", in_log}}}})
              << std::endl;
  } else {
    std::cout << "wrote " << out_path << ": the trace and a proof bundle for "
              << "each of its " << trace.steps.size() << " leaves"
              << (in_log ? ", with the trace's inclusion in the global log"
                         : " (not yet in the global log)")
              << "\n";
    if (!trace.prompt_salt_hex.empty()) {
      std::cout << "  (the prompt was withheld; its commitment salt is in the "
                   "file: keep it to open the commitment later)\n";
    }
  }
  return stream.ok() ? kExitOk : kExitFailed;
}

}  // namespace stepproof::clients
