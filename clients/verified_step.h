// What `stepproof-audit verify` establishes about one proof bundle, and how
// it says so. VerifyStepBundle runs provenance::VerifyBundle (every check of
// the bundle, offline, with only the verifier key) and, on success, collects
// what was verified: the trace, the step's position, kind and text (or, for
// the header, the model, sampling settings and prompt), the size of the
// signed trace checkpoint and, when the bundle carries it, the step's trace
// in the global log.
//
// Thread-safety: plain values and pure functions.
#ifndef STEPPROOF_CLIENTS_VERIFIED_STEP_H_
#define STEPPROOF_CLIENTS_VERIFIED_STEP_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "provenance/bundle.h"
#include "provenance/step_record.h"
#include "provenance/trace_header.h"
#include "provenance/verifier_key.h"

namespace stepproof::clients {

struct VerifiedLogInclusion {
  std::string log_origin;
  uint64_t leaf_index = 0;  // the trace's position in the log
  uint64_t log_size = 0;    // size of the signed log checkpoint
};

struct VerifiedStep {
  std::string key;  // the verifier key that checked the signatures
  std::string trace_id;
  std::string trace_origin;
  uint64_t index = 0;
  provenance::StepKind kind = provenance::StepKind::kReasoning;
  std::string text;  // reasoning and answer steps
  std::optional<provenance::TraceHeader> header;  // the header step
  uint64_t start_ms = 0;
  uint64_t end_ms = 0;
  size_t token_count = 0;
  bool has_fingerprint = false;
  uint64_t checkpoint_size = 0;   // leaves in the signed trace checkpoint
  bool checkpoint_final = false;  // the trace's final (sealed) checkpoint
  std::optional<VerifiedLogInclusion> log;
  bool promise_verified = false;  // an inclusion promise was present and checked
  std::optional<provenance::ChainAnchor> anchor;  // carried, not checked here
};

// Verifies a parsed bundle. The errors of provenance::VerifyBundle (each
// names the check that failed).
absl::StatusOr<VerifiedStep> VerifyStepBundle(
    const provenance::Bundle& bundle, const provenance::NoteVerifier& key);

// Parses (BundleFromJson) and verifies bundle JSON text.
absl::StatusOr<VerifiedStep> VerifyStepBundleJson(
    absl::string_view json, const provenance::NoteVerifier& key);

// Human-readable lines, untrusted text escaped for the terminal:
//   VERIFIED step 3 (reasoning) of trace 0123...
//     text: ...
std::string FormatVerifiedStep(const VerifiedStep& step);

// One JSON object (no trailing newline): {"verified":true,"trace_id":...}.
std::string VerifiedStepToJson(const VerifiedStep& step);

// Human-readable lines describing a trace header (model, digests, sampling,
// prompt or its commitment, backend, device, start time, signing key), each
// line prefixed by `indent`.
std::string FormatTraceHeader(const provenance::TraceHeader& header,
                              absl::string_view indent);

}  // namespace stepproof::clients

#endif  // STEPPROOF_CLIENTS_VERIFIED_STEP_H_
