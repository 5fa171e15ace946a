// `stepproof-audit replay`: the execution check (verification level 3 of
// DESIGN.md). Given a trace's step records and a model file, ReplayTrace
//  1. checks the file's SHA-256 against the header's model digest;
//  2. tokenises the header's prompt with the file's tokenizer and runs ONE
//     prefill (in chunks of 64 positions) over prompt + generated tokens with
//     the project's CPU engine, keeping every position's logits and final
//     hidden state;
//  3. recomputes the prompt and chunk fingerprints (inference/fingerprint.h)
//     and compares them with the recorded ones within tolerances;
//  4. checks every generated token against the recorded sampling settings
//     and seed (clients/replay/token_check.h);
//  5. re-segments the tokens (inference/step_segmenter.h) and checks each
//     step's kind, tokens and text;
// and reports, per step, verified or not and why. docs/REPLAY.md.
//
// It does not check signatures or inclusion: run `stepproof-audit
// verify-trace` for that (RecordsFromTraceFile takes the committed record
// bytes of each bundle as they are).
//
// Thread-safety: pure functions (ReplayTrace loads its own model).
#ifndef STEPPROOF_CLIENTS_REPLAY_REPLAY_H_
#define STEPPROOF_CLIENTS_REPLAY_REPLAY_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "clients/replay/token_check.h"
#include "clients/trace_file.h"
#include "merkle/hash.h"
#include "inference/fingerprint.h"
#include "merkle/hash.h"
#include "provenance/step_record.h"

namespace stepproof::inference {
class BpeTokenizer;
class Model;
}  // namespace stepproof::inference

namespace stepproof::clients {

struct ReplayOptions {
  std::string device = "cpu";  // "cpu"; "cuda" is refused (UNIMPLEMENTED) in this build
  int32_t threads = 0;         // 0 = all cores
  bool allow_avx2 = true;      // false: the portable kernels (another rounding path)
  // Unset: bit-exact rules (SameEngineTolerance, exact tokens) when the trace
  // was made by this engine on the same kernel path (header backend "cpu",
  // device starting with this machine's kernel name); CpuKernelTolerance for
  // a CPU trace from the other kernel path; else the cross-device rules
  // (CrossDeviceTolerance). Tokens, when not same-engine: greedy near-tie
  // 0.05, sampling boundary slack 1e-3.
  std::optional<inference::FingerprintTolerance> fingerprint_tolerance;
  std::optional<TokenTolerance> token_tolerance;
};

struct ChunkReplay {
  int64_t chunk = -1;  // -1: the prompt fingerprint
  inference::FingerprintComparison comparison;
};

struct StepReplay {
  uint64_t index = 0;  // leaf index (1, 2, ...)
  std::string kind;
  int64_t first_token = 0;  // among the generated tokens
  int64_t tokens = 0;
  std::vector<int64_t> chunks;  // chunk indices covering the step's tokens
  bool verified = false;
  std::vector<std::string> reasons;  // why not (empty when verified)
};

struct ReplayReport {
  std::string trace_id;
  bool model_digest_matches = false;
  std::string rules;  // "same-engine", "cpu-other-kernels", "cross-device" or "the caller's tolerances"
  int64_t prompt_tokens = 0;
  int64_t generated_tokens = 0;
  int64_t tokens_rejected = 0;
  std::optional<ChunkReplay> prompt;
  std::vector<ChunkReplay> chunks;  // in chunk order
  std::vector<StepReplay> steps;
  bool verified = false;  // every step verified (and there is one at least)
  absl::Duration digest_time, prefill_time, total_time;
};

// Replays records[0] (the header) .. records[n-1]. Returns an error (not a
// report) only when no replay is possible: INVALID_ARGUMENT for records that
// are not a trace (no header first, wrong indices, a step fingerprint that
// does not decode), FAILED_PRECONDITION for a withheld prompt or a trace
// longer than the model's context, UNIMPLEMENTED for --device cuda, and the
// model loader's NOT_FOUND / INVALID_ARGUMENT / DATA_LOSS. A model digest
// mismatch is a report with every step unverified (no prefill is run).
absl::StatusOr<ReplayReport> ReplayTrace(absl::Span<const provenance::StepRecord> records,
                                         const std::string& model_path, const ReplayOptions& options);

// A model file loaded once for many replays (an audit of a batch of traces):
// its SHA-256, the CPU engine and the tokenizer. Not thread-safe: one
// ReplayTrace at a time per ReplayModel.
struct ReplayModel {
  std::string path;
  merkle::Hash digest{};
  absl::Duration digest_time;  // hashing the file
  std::unique_ptr<inference::Model> model;
  std::unique_ptr<inference::BpeTokenizer> tokenizer;
  ~ReplayModel();
};

// SHA-256 of the model file (the trace header's model digest), streamed in
// 1 MiB reads. NOT_FOUND if it cannot be opened, DATA_LOSS on a read error.
absl::StatusOr<merkle::Hash> ModelFileDigest(const std::string& model_path);

// Hashes `model_path` and loads it with options.threads / allow_avx2.
// NOT_FOUND / INVALID_ARGUMENT / DATA_LOSS as ReplayTrace.
absl::StatusOr<std::unique_ptr<ReplayModel>> LoadReplayModel(const std::string& model_path,
                                                             const ReplayOptions& options);

// ReplayTrace against a loaded model: the same checks and report, with the
// digest computed at load (the report's digest_time is 0) and no model load.
// options.threads / allow_avx2 are the ones the model was loaded with.
absl::StatusOr<ReplayReport> ReplayTrace(absl::Span<const provenance::StepRecord> records, ReplayModel& model,
                                         const ReplayOptions& options);

// The committed records of a trace file's bundles (DecodeStepRecord of each
// bundle's encoded_record), in file order. INVALID_ARGUMENT naming the step.
absl::StatusOr<std::vector<provenance::StepRecord>> RecordsFromTraceFile(const TraceFile& trace);

// Human-readable report: one line per step, "VERIFIED" or "NOT VERIFIED" and
// the reasons, then the totals.
std::string FormatReplayReport(const ReplayReport& report);
// One JSON object (no trailing newline).
std::string ReplayReportToJson(const ReplayReport& report);

}  // namespace stepproof::clients

#endif  // STEPPROOF_CLIENTS_REPLAY_REPLAY_H_
