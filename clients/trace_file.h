// The trace file (`stepproof generate --out TRACE.json`, format
// "stepproof.trace/v1"): a whole generated trace as one JSON document, with
// every step's proof bundle, so that the trace can be archived and checked
// later, offline, with `stepproof-audit verify-trace TRACE.json --key VKEY`.
//
//   {
//     "format": "stepproof.trace/v1",
//     "trace_id": "<32 hex>",
//     "prompt": "<the prompt as the client sent it>",
//     "prompt_salt": "<64 hex>",          // only when the prompt was withheld
//     "finish_reason": "end_of_sequence",
//     "answer": "<text of the answer step>",
//     "final_checkpoint": "<signed trace checkpoint note>",
//     "promise": "<signed inclusion promise note>",   // optional
//     "steps": [
//       {"index": 0, "kind": "header", "text": "", "bundle": {<bundle>}},
//       {"index": 1, "kind": "reasoning", "text": "...", "bundle": {<bundle>}},
//       ...
//     ]
//   }
//
// Each "bundle" is a stepproof.bundle/v1 object (docs/FORMAT.md), the same
// JSON `stepproof proof` writes; `jq '.steps[3].bundle'` extracts one. The
// "prompt", "answer", "text" and "kind" fields are conveniences for readers:
// VerifyTraceFile checks "kind" and "text" against the committed records and
// reports a mismatch as a failure.
//
// Thread-safety: plain values and pure functions.
#ifndef STEPPROOF_CLIENTS_TRACE_FILE_H_
#define STEPPROOF_CLIENTS_TRACE_FILE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "clients/verified_step.h"
#include "provenance/verifier_key.h"

namespace stepproof::clients {

inline constexpr absl::string_view kTraceFileFormat = "stepproof.trace/v1";

struct TraceFileStep {
  uint64_t index = 0;
  std::string kind;         // "header", "reasoning", "answer"
  std::string text;         // "" for the header
  std::string bundle_json;  // a stepproof.bundle/v1 JSON object
};

struct TraceFile {
  std::string trace_id;
  std::string prompt;
  std::string prompt_salt_hex;  // "" unless the prompt was withheld
  std::string finish_reason;
  std::string answer;
  std::string final_checkpoint;
  std::string promise;  // "" when absent
  std::vector<TraceFileStep> steps;
};

// Pretty-printed JSON (2-space indent). INVALID_ARGUMENT if a step's
// bundle_json is not a JSON object.
absl::StatusOr<std::string> TraceFileToJson(const TraceFile& trace);

// Parses a trace file. INVALID_ARGUMENT naming the JSON path of the problem
// ("steps[2].bundle: expected an object") for invalid JSON, another format,
// missing or mistyped fields. Unknown fields are ignored (later versions may
// add some); the bundles are not parsed here.
absl::StatusOr<TraceFile> TraceFileFromJson(absl::string_view json);

struct VerifiedTrace {
  std::string trace_id;
  std::vector<VerifiedStep> steps;  // leaf order; steps[0] is the header
  uint64_t final_size = 0;          // leaves in the final checkpoint
  bool promise_verified = false;
};

// Verifies a whole trace offline: every step's bundle (VerifyStepBundle),
// each bundle is of this trace and at its position (steps[i].index == i),
// the "kind" and "text" conveniences match the committed records, and the
// records are exactly the trace the final checkpoint commits to
// (provenance::VerifyTrace: signed, final, size and root); the inclusion
// promise, when present, is signed and about that final checkpoint.
// FAILED_PRECONDITION or the verifier's codes, the message naming the step
// ("step 3: inclusion proof does not lead to checkpoint root").
absl::StatusOr<VerifiedTrace> VerifyTraceFile(
    const TraceFile& trace, const provenance::NoteVerifier& key);

// Human-readable report: the header, then every step's text, then what the
// signatures and proofs established. Untrusted text is escaped.
std::string FormatVerifiedTrace(const VerifiedTrace& trace);

// One JSON object (no trailing newline).
std::string VerifiedTraceToJson(const VerifiedTrace& trace);

}  // namespace stepproof::clients

#endif  // STEPPROOF_CLIENTS_TRACE_FILE_H_
