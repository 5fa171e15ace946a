// stepproof-audit: checks what a StepProof server hands out.
//
//   stepproof-audit verify BUNDLE.json --key VKEY        (offline)
//   stepproof-audit verify-trace TRACE.json --key VKEY   (offline)
//   stepproof-audit consistency OLD.note NEW.note --server ADDR [--key VKEY]
//   stepproof-audit watch --server ADDR --key VKEY [--interval S] [--count N]
//
// Exit status: 0 verified, 1 not verified, 2 usage or I/O error.
// The offline commands use only clients/ audit code, provenance's verify
// side and merkle (library stepproof_audit); gRPC is used by the two log
// commands alone. docs/CLI.md has the full reference.
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#ifdef STEPPROOF_HAVE_ANCHOR_CHECK
#include "clients/anchor/anchor_check.h"
#endif
#include "clients/cli_output.h"
#include "clients/command_line.h"
#include "clients/file_io.h"
#include "clients/replay/replay.h"
#include "clients/log_monitor.h"
#include "clients/service_client.h"
#include "clients/terminal_text.h"
#include "clients/trace_file.h"
#include "clients/verified_step.h"
#include "clients/verifier_key_arg.h"
#include "merkle/hash.h"
#include "nlohmann/json.hpp"
#include "provenance/bundle.h"

ABSL_FLAG(std::string, key, "",
          "the server's verifier key (name+id+key), or @FILE holding it");
ABSL_FLAG(bool, json, false,
          "machine-readable output: one JSON object per line per event");
ABSL_FLAG(std::string, server, "127.0.0.1:7700",
          "consistency, watch: stepproofd address, host:port");
ABSL_FLAG(std::string, token, "", "consistency, watch: API bearer token or @FILE");
ABSL_FLAG(std::string, tls_ca, "",
          "consistency, watch: PEM file of the server's TLS CA (TLS when set)");
ABSL_FLAG(double, interval, 10, "watch: seconds between polls");
ABSL_FLAG(int64_t, count, 0, "watch: stop after this many polls (0 = never)");
ABSL_FLAG(std::string, rpc, "",
          "verify: also check, over this Ethereum JSON-RPC endpoint "
          "(http://host:port), that the bundle's log checkpoint is anchored on "
          "chain (docs/ANCHORING.md)");
ABSL_FLAG(std::string, contract, "",
          "verify --rpc: the RootAnchor contract address (0x + 40 hex); "
          "default: the one the bundle's anchor names");
ABSL_FLAG(std::string, state, "",
          "watch: file keeping the latest checkpoint seen, so that a restarted "
          "monitor still catches a log that rewrote what it saw before");

ABSL_FLAG(std::string, model, "",
          "replay: the GGUF model file the trace claims (its SHA-256 is checked first)");
ABSL_FLAG(std::string, device, "cpu", "replay: cpu or cuda (this build replays on the cpu)");
ABSL_FLAG(int32_t, threads, 0, "replay: engine threads (0 = all cores)");

namespace stepproof::clients {
namespace {

constexpr char kUsage[] = R"(check StepProof proofs and logs.

usage:
  stepproof-audit verify BUNDLE.json --key VKEY [--rpc URL [--contract ADDR]]
      Checks one step's proof bundle offline: the record, its inclusion in the
      signed trace checkpoint and, when present, the trace's inclusion in the
      signed log and the inclusion promise. Says which check failed. With
      --rpc, also checks on chain that the log checkpoint is anchored.
  stepproof-audit verify-trace TRACE.json --key VKEY
      Checks a whole trace file written by `stepproof generate --out`.
  stepproof-audit replay TRACE.json --model GGUF [--device cpu|cuda] [--key VKEY]
      Re-runs the trace's prompt and tokens through the model in one prefill
      and checks, per step, the execution fingerprints, every token against
      the recorded sampling settings and seed, and the step texts
      (docs/REPLAY.md). With --key, first verifies the trace's signatures.
  stepproof-audit consistency OLD NEW --server HOST:PORT [--key VKEY]
      Fetches and checks a consistency proof between two saved log
      checkpoints (files written by `stepproof checkpoint`).
  stepproof-audit watch --server HOST:PORT --key VKEY [--interval S]
        [--count N] [--state FILE]
      Follows the log and checks that every new checkpoint is consistent
      with the last one seen: catches a log that shows two histories.

VKEY is the key string (from `stepproof key`) or @FILE holding it.
BUNDLE and TRACE may be - for standard input.
exit status: 0 verified, 1 not verified, 2 usage or I/O error
See docs/CLI.md.)";

constexpr int kExitVerified = 0;
constexpr int kExitNotVerified = 1;
constexpr int kExitUsage = 2;

int Usage(absl::string_view problem) {
  std::cerr << "stepproof-audit: " << problem
            << "\n(run `stepproof-audit --help`)\n";
  return kExitUsage;
}

int IoError(const absl::Status& status) {
  std::cerr << "stepproof-audit: " << status.message() << "\n";
  return kExitUsage;
}

int NotVerified(absl::string_view what, const absl::Status& status) {
  if (absl::GetFlag(FLAGS_json)) {
    std::cout << JsonLine({{"verified", false},
                           {"error", std::string(status.message())}})
              << std::endl;
  } else {
    std::cout << "NOT VERIFIED: " << EscapeForTerminal(what) << ": "
              << EscapeForTerminal(status.message()) << "\n";
  }
  return kExitNotVerified;
}

absl::StatusOr<std::string> ReadInput(const std::string& path) {
  if (path != "-") return ReadFileToString(path);
  std::string out((std::istreambuf_iterator<char>(std::cin)),
                  std::istreambuf_iterator<char>());
  if (std::cin.bad()) return absl::InternalError("cannot read standard input");
  return out;
}

absl::StatusOr<provenance::NoteVerifier> RequiredKey() {
  std::string arg = absl::GetFlag(FLAGS_key);
  if (arg.empty()) {
    return absl::InvalidArgumentError(
        "--key is required: the server's verifier key (from `stepproof key`), "
        "or @FILE holding it");
  }
  return LoadVerifierKeyArg(arg);
}

absl::StatusOr<std::unique_ptr<ServiceClient>> Connect() {
  absl::StatusOr<ServiceClientOptions> options =
      MakeServiceClientOptions(absl::GetFlag(FLAGS_server),
                               absl::GetFlag(FLAGS_token),
                               absl::GetFlag(FLAGS_tls_ca));
  if (!options.ok()) return options.status();
  return ServiceClient::Create(*std::move(options));
}

// The on-chain part of `verify --rpc`: is the bundle's signed log checkpoint
// the root anchored on the contract for its size? Returns the exit status
// (kExitVerified when anchored) and fills *contract_used.
int CheckBundleAnchor(absl::string_view path, const std::string& bundle_json,
                      const provenance::NoteVerifier& key,
                      std::string* contract_used) {
  absl::StatusOr<provenance::Bundle> bundle =
      provenance::BundleFromJson(bundle_json);
  if (!bundle.ok()) return NotVerified(path, bundle.status());
  if (!bundle->log.has_value()) {
    return NotVerified(
        path, absl::FailedPreconditionError(
                  "chain anchor: the bundle has no log checkpoint, so nothing "
                  "of it can be anchored yet; fetch a fresh bundle once the "
                  "log has integrated the trace"));
  }
  std::string contract = absl::GetFlag(FLAGS_contract);
  if (contract.empty() && bundle->anchor.has_value()) {
    contract = bundle->anchor->contract_address;
    std::cerr << "stepproof-audit: checking the contract the bundle names ("
              << EscapeForTerminal(contract)
              << "); pass --contract with an address you trust\n";
  }
  if (contract.empty()) {
    return Usage("--rpc needs --contract ADDR (the bundle names no anchor)");
  }
  *contract_used = contract;
#ifdef STEPPROOF_HAVE_ANCHOR_CHECK
  absl::Status anchored = CheckLogCheckpointAnchored(
      absl::GetFlag(FLAGS_rpc), contract, bundle->log->checkpoint, key);
  if (anchored.ok()) return kExitVerified;
  // Not anchored, or anchored with another root: not verified. An
  // unreachable node, a bad URL or a malformed answer: an I/O error.
  if (absl::IsNotFound(anchored) || absl::IsFailedPrecondition(anchored)) {
    return NotVerified(path, anchored);
  }
  return IoError(anchored);
#else
  (void)key;
  return Usage("this build has no chain anchor check (clients/anchor)");
#endif
}

int RunVerify(const std::string& path) {
  absl::StatusOr<provenance::NoteVerifier> key = RequiredKey();
  if (!key.ok()) return Usage(key.status().message());
  const bool check_anchor = !absl::GetFlag(FLAGS_rpc).empty();
  if (!check_anchor && !absl::GetFlag(FLAGS_contract).empty()) {
    return Usage("--contract needs --rpc URL (an Ethereum JSON-RPC endpoint)");
  }
  absl::StatusOr<std::string> text = ReadInput(path);
  if (!text.ok()) return IoError(text.status());
  absl::StatusOr<VerifiedStep> step = VerifyStepBundleJson(*text, *key);
  if (!step.ok()) return NotVerified(path, step.status());
  std::string contract;
  if (check_anchor) {
    if (int rc = CheckBundleAnchor(path, *text, *key, &contract);
        rc != kExitVerified) {
      return rc;
    }
  }
  if (absl::GetFlag(FLAGS_json)) {
    nlohmann::json j = nlohmann::json::parse(VerifiedStepToJson(*step),
                                             nullptr, false);
    if (check_anchor) {
      j["chain_anchor"] = {{"verified", true},
                           {"contract", contract},
                           {"log_size", step->log->log_size}};
    }
    std::cout << JsonLine(j) << std::endl;
  } else {
    std::cout << FormatVerifiedStep(*step);
    if (check_anchor) {
      std::cout << "  chain anchor: the log checkpoint of size "
                << step->log->log_size << " is the root anchored on contract "
                << EscapeForTerminal(contract) << " (checked over "
                << EscapeForTerminal(absl::GetFlag(FLAGS_rpc)) << ")\n";
    }
  }
  return kExitVerified;
}

int RunVerifyTrace(const std::string& path) {
  absl::StatusOr<provenance::NoteVerifier> key = RequiredKey();
  if (!key.ok()) return Usage(key.status().message());
  absl::StatusOr<std::string> text = ReadInput(path);
  if (!text.ok()) return IoError(text.status());
  absl::StatusOr<TraceFile> trace = TraceFileFromJson(*text);
  if (!trace.ok()) return NotVerified(path, trace.status());
  absl::StatusOr<VerifiedTrace> verified = VerifyTraceFile(*trace, *key);
  if (!verified.ok()) return NotVerified(path, verified.status());
  if (absl::GetFlag(FLAGS_json)) {
    std::cout << VerifiedTraceToJson(*verified) << std::endl;
  } else {
    std::cout << FormatVerifiedTrace(*verified);
  }
  return kExitVerified;
}

int RunReplay(const std::string& path) {
  const std::string model = absl::GetFlag(FLAGS_model);
  if (model.empty()) return Usage("replay needs --model GGUF (the model file the trace claims)");
  absl::StatusOr<std::string> text = ReadInput(path);
  if (!text.ok()) return IoError(text.status());
  absl::StatusOr<TraceFile> trace = TraceFileFromJson(*text);
  if (!trace.ok()) return NotVerified(path, trace.status());
  if (!absl::GetFlag(FLAGS_key).empty()) {
    absl::StatusOr<provenance::NoteVerifier> key = RequiredKey();
    if (!key.ok()) return Usage(key.status().message());
    absl::StatusOr<VerifiedTrace> verified = VerifyTraceFile(*trace, *key);
    if (!verified.ok()) return NotVerified(path, verified.status());
  }
  absl::StatusOr<std::vector<provenance::StepRecord>> records = RecordsFromTraceFile(*trace);
  if (!records.ok()) return NotVerified(path, records.status());
  ReplayOptions options;
  options.device = absl::GetFlag(FLAGS_device);
  options.threads = absl::GetFlag(FLAGS_threads);
  absl::StatusOr<ReplayReport> report = ReplayTrace(*records, model, options);
  if (!report.ok()) return NotVerified(path, report.status());
  if (absl::GetFlag(FLAGS_json)) {
    std::cout << ReplayReportToJson(*report) << std::endl;
  } else {
    std::cout << FormatReplayReport(*report);  // no untrusted text: ids, counts, reasons
  }
  return report->verified ? kExitVerified : kExitNotVerified;
}

// The key: --key when given, else the server's (and we say so: that only
// shows the two checkpoints agree with the key the server claims now).
absl::StatusOr<provenance::NoteVerifier> KeyFromFlagOrServer(
    ServiceClient& client, bool* from_server) {
  *from_server = false;
  if (!absl::GetFlag(FLAGS_key).empty()) {
    return LoadVerifierKeyArg(absl::GetFlag(FLAGS_key));
  }
  absl::StatusOr<v1::GetVerifierKeyResponse> key = client.GetVerifierKey();
  if (!key.ok()) return key.status();
  *from_server = true;
  return provenance::NoteVerifier::FromVerifierKey(key->verifier_key());
}

int RunConsistency(const std::string& old_path, const std::string& new_path) {
  absl::StatusOr<std::string> old_note = ReadFileToString(old_path);
  if (!old_note.ok()) return IoError(old_note.status());
  absl::StatusOr<std::string> new_note = ReadFileToString(new_path);
  if (!new_note.ok()) return IoError(new_note.status());
  absl::StatusOr<std::unique_ptr<ServiceClient>> client = Connect();
  if (!client.ok()) return Usage(client.status().message());
  bool key_from_server = false;
  absl::StatusOr<provenance::NoteVerifier> key =
      KeyFromFlagOrServer(**client, &key_from_server);
  if (!key.ok()) return IoError(key.status());

  // Check the two notes in size order (both must lie on one history).
  std::string first = *old_note, second = *new_note;
  std::string first_name = old_path, second_name = new_path;
  absl::StatusOr<provenance::Checkpoint> a =
      provenance::OpenCheckpoint(first, *key);
  if (!a.ok()) return NotVerified(old_path, a.status());
  absl::StatusOr<provenance::Checkpoint> b =
      provenance::OpenCheckpoint(second, *key);
  if (!b.ok()) return NotVerified(new_path, b.status());
  if (a->size > b->size) {
    std::swap(first, second);
    std::swap(first_name, second_name);
    std::swap(*a, *b);
  }
  bool fetch_failed = false;
  ConsistencyProofFetcher fetch =
      [&](uint64_t size1,
          uint64_t size2) -> absl::StatusOr<std::vector<merkle::Hash>> {
    absl::StatusOr<std::vector<merkle::Hash>> proof =
        (*client)->GetLogConsistencyProof(size1, size2);
    if (!proof.ok()) fetch_failed = true;
    return proof;
  };
  LogMonitor monitor(*key, "");
  if (absl::StatusOr<LogObservation> o = monitor.Observe(first, fetch);
      !o.ok()) {
    return NotVerified(first_name, o.status());
  }
  absl::StatusOr<LogObservation> o = monitor.Observe(second, fetch);
  if (!o.ok()) {
    if (fetch_failed) return IoError(o.status());
    return NotVerified(absl::StrCat(first_name, " -> ", second_name),
                       o.status());
  }
  if (absl::GetFlag(FLAGS_json)) {
    std::cout << JsonLine({{"verified", true},
                           {"origin", b->origin},
                           {"old_size", a->size},
                           {"new_size", b->size},
                           {"old_root", merkle::ToHex(a->root)},
                           {"new_root", merkle::ToHex(b->root)},
                           {"key", key->verifier_key()},
                           {"key_from_server", key_from_server}})
              << std::endl;
  } else {
    std::cout << "VERIFIED: the log checkpoint of size " << b->size << " ("
              << second_name << ") extends the one of size " << a->size << " ("
              << first_name << ")\n"
              << "  origin " << EscapeForTerminal(b->origin) << "\n"
              << "  both signed by " << key->verifier_key()
              << (key_from_server
                      ? " (the key the server reports now; pass --key to pin "
                        "the key you trust)"
                      : "")
              << "\n";
    if (a->size == b->size) {
      std::cout << "  (same size and same root: nothing was appended)\n";
    } else if (a->size == 0) {
      std::cout << "  (the older checkpoint is of the empty log: any log "
                   "extends it)\n";
    } else {
      std::cout << "  the consistency proof from the server checks: the log "
                   "only appended to what the older checkpoint covered\n";
    }
  }
  return kExitVerified;
}

int RunWatch() {
  absl::StatusOr<provenance::NoteVerifier> key = RequiredKey();
  if (!key.ok()) return Usage(key.status().message());
  double interval = absl::GetFlag(FLAGS_interval);
  int64_t count = absl::GetFlag(FLAGS_count);
  if (!(interval >= 0)) return Usage("--interval must be >= 0 seconds");
  if (count < 0) return Usage("--count must be >= 0");
  absl::StatusOr<std::unique_ptr<ServiceClient>> client = Connect();
  if (!client.ok()) return Usage(client.status().message());
  const bool json = absl::GetFlag(FLAGS_json);
  const std::string state_path = absl::GetFlag(FLAGS_state);

  LogMonitor monitor(*key, "");
  bool fetch_failed = false;
  ConsistencyProofFetcher fetch =
      [&](uint64_t size1,
          uint64_t size2) -> absl::StatusOr<std::vector<merkle::Hash>> {
    absl::StatusOr<std::vector<merkle::Hash>> proof =
        (*client)->GetLogConsistencyProof(size1, size2);
    if (!proof.ok()) fetch_failed = true;
    return proof;
  };
  if (!state_path.empty()) {
    absl::StatusOr<std::string> saved = ReadFileToString(state_path);
    if (saved.ok()) {
      absl::StatusOr<LogObservation> o = monitor.Observe(*saved, fetch);
      if (!o.ok()) return NotVerified(state_path, o.status());
      if (!json) {
        std::cout << "resuming from " << state_path << ": log size "
                  << o->checkpoint.size << "\n";
      }
    } else if (!absl::IsNotFound(saved.status())) {
      return IoError(saved.status());
    }
  }

  int64_t polls = 0;
  int64_t observed = 0;
  while (count == 0 || polls < count) {
    if (polls > 0) absl::SleepFor(absl::Seconds(interval));
    ++polls;
    absl::StatusOr<v1::GetLogCheckpointResponse> cp =
        (*client)->GetLogCheckpoint(0);
    if (!cp.ok()) {
      // A monitor rides out an unreachable server (it only fails on proof),
      // and a log that has not signed its first checkpoint yet.
      const bool empty_log = absl::IsNotFound(cp.status());
      if (empty_log) ++observed;
      if (json) {
        std::cout << JsonLine({{"event", empty_log ? "empty" : "unreachable"},
                               {"error", std::string(cp.status().message())}})
                  << std::endl;
      } else if (empty_log) {
        std::cout << "the log has no signed checkpoint yet\n" << std::flush;
      } else {
        std::cerr << "stepproof-audit: poll " << polls << ": "
                  << cp.status().message() << "\n";
      }
      continue;
    }
    fetch_failed = false;
    absl::StatusOr<LogObservation> o = monitor.Observe(cp->checkpoint(), fetch);
    if (!o.ok()) {
      if (fetch_failed) {
        std::cerr << "stepproof-audit: poll " << polls << ": "
                  << o.status().message() << "\n";
        continue;
      }
      if (json) {
        std::cout << JsonLine({{"event", "inconsistent"},
                               {"verified", false},
                               {"error", std::string(o.status().message())},
                               {"checkpoint", cp->checkpoint()}})
                  << std::endl;
      } else {
        std::cout << "ALERT: " << EscapeForTerminal(o.status().message())
                  << "\n  the offending checkpoint (keep it as evidence):\n"
                  << IndentLines(cp->checkpoint(), "    ")
                  << "  the last consistent one:\n"
                  << IndentLines(monitor.latest_note(), "    ");
      }
      return kExitNotVerified;
    }
    ++observed;
    if (!state_path.empty() && o->change != LogObservation::Change::kUnchanged) {
      if (absl::Status s = WriteStringToFile(state_path, o->note); !s.ok()) {
        return IoError(s);
      }
    }
    const provenance::Checkpoint& c = o->checkpoint;
    absl::string_view change =
        o->change == LogObservation::Change::kFirst
            ? "first"
            : (o->change == LogObservation::Change::kGrew ? "grew"
                                                          : "unchanged");
    if (json) {
      std::cout << JsonLine({{"event", change},
                             {"size", c.size},
                             {"previous_size", o->previous_size},
                             {"root", merkle::ToHex(c.root)},
                             {"verified", true}})
                << std::endl;
    } else if (o->change == LogObservation::Change::kFirst) {
      std::cout << "log " << EscapeForTerminal(c.origin) << ": size " << c.size
                << ", root " << merkle::ToHex(c.root) << " (signature OK)\n";
    } else if (o->change == LogObservation::Change::kGrew) {
      std::cout << "log grew " << o->previous_size << " -> " << c.size
                << ", root " << merkle::ToHex(c.root)
                << ": signature OK, consistent\n";
    } else {
      std::cout << "log unchanged at size " << c.size << "\n";
    }
    std::cout << std::flush;
  }
  if (observed == 0) {
    std::cerr << "stepproof-audit: no checkpoint could be fetched from "
              << absl::GetFlag(FLAGS_server) << "\n";
    return kExitUsage;
  }
  return kExitVerified;
}

int Main(int argc, char** argv) {
  absl::StatusOr<CliCommandLine> command_line =
      ParseCliCommandLine(argc, argv, "stepproof-audit", kUsage, "stepproof_audit_main");
  if (!command_line.ok()) return Usage(command_line.status().message());
  if (command_line->help_printed) return 0;
  const std::vector<std::string>& positional = command_line->positional;
  if (positional.size() < 2) {
    return Usage("no command: verify, verify-trace, replay, consistency or watch");
  }
  std::string command = positional[1];
  std::vector<std::string> operands(positional.begin() + 2, positional.end());
  if (command == "verify" || command == "verify-trace") {
    if (operands.size() != 1) {
      return Usage(absl::StrCat("usage: stepproof-audit ", command,
                                command == "verify" ? " BUNDLE" : " TRACE",
                                " --key VKEY"));
    }
    return command == "verify" ? RunVerify(operands[0])
                               : RunVerifyTrace(operands[0]);
  }
  if (command == "replay") {
    if (operands.size() != 1) {
      return Usage("usage: stepproof-audit replay TRACE --model GGUF [--device cpu|cuda] [--key VKEY]");
    }
    return RunReplay(operands[0]);
  }
  if (command == "consistency") {
    if (operands.size() != 2) {
      return Usage("usage: stepproof-audit consistency OLD NEW --server ADDR");
    }
    return RunConsistency(operands[0], operands[1]);
  }
  if (command == "watch") {
    if (!operands.empty()) {
      return Usage(absl::StrCat("unexpected argument \"", operands[0], "\""));
    }
    return RunWatch();
  }
  return Usage(absl::StrCat(
      "unknown command \"", command,
      "\": verify, verify-trace, replay, consistency or watch"));
}

}  // namespace
}  // namespace stepproof::clients

int main(int argc, char** argv) {
  return stepproof::clients::Main(argc, argv);
}
