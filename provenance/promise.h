// The inclusion promise: the log's signed statement, given at the end of
// Generate (like a Certificate Transparency SCT), that a trace's final
// checkpoint will be a leaf of the global log within a stated delay. A signed
// note by the log key whose text is, line by line (docs/FORMAT.md):
//   stepproof.promise/v1
//   <log origin>
//   <trace checkpoint origin>
//   <trace tree size, decimal>
//   <trace root, base64>
//   <leaf hash = HashLeaf(final trace checkpoint note bytes), base64>
//   <submission time, RFC 3339 UTC millis>
//   <maximum integration delay, decimal seconds>
//
// Thread-safety: plain values and pure functions.
#ifndef STEPPROOF_PROVENANCE_PROMISE_H_
#define STEPPROOF_PROVENANCE_PROMISE_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "merkle/hash.h"
#include "provenance/note.h"
#include "provenance/verifier_key.h"

namespace stepproof::provenance {

inline constexpr absl::string_view kPromiseType = "stepproof.promise/v1";

struct InclusionPromise {
  std::string log_origin;
  std::string trace_origin;
  uint64_t trace_size = 0;
  merkle::Hash trace_root{};
  merkle::Hash leaf_hash{};
  int64_t submitted_unix_ms = 0;
  uint64_t max_delay_seconds = 0;

  // The note text. REQUIRES: origins non-empty single lines.
  std::string Marshal() const;
  // INVALID_ARGUMENT naming the bad line (type, count, number, base64, time).
  static absl::StatusOr<InclusionPromise> Parse(absl::string_view text);
  friend bool operator==(const InclusionPromise&,
                         const InclusionPromise&) = default;
};

// The promise for a final signed trace checkpoint note. INVALID_ARGUMENT if
// the note's text is not a checkpoint (its signature is not checked here).
absl::StatusOr<InclusionPromise> MakePromise(absl::string_view log_origin,
                                             absl::string_view final_trace_note,
                                             int64_t submitted_unix_ms,
                                             uint64_t max_delay_seconds);

// Signs the promise as a note (stepproof_provenance only).
inline absl::StatusOr<std::string> SignPromise(const InclusionPromise& promise,
                                               const Signer& signer) {
  return SignNote(promise.Marshal(), signer);
}

// Opens a signed promise note with `log_key`, parses it, and checks that it
// is about `final_trace_note`: same trace origin, size and root, and leaf
// hash = HashLeaf(final_trace_note). Errors: those of OpenNote (with
// "promise" in the message), INVALID_ARGUMENT for a malformed promise,
// FAILED_PRECONDITION naming the field that does not match.
absl::StatusOr<InclusionPromise> VerifyPromise(
    absl::string_view promise_note, const NoteVerifier& log_key,
    absl::string_view final_trace_note);

}  // namespace stepproof::provenance

#endif  // STEPPROOF_PROVENANCE_PROMISE_H_
