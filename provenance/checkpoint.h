// C2SP checkpoints (https://c2sp.org/tlog-checkpoint): the signed state of a
// log, as note text:
//   <origin>\n<decimal tree size>\n<base64 root hash>\n[<extension line>\n]*
// A trace is a small log of its own with origin "<log origin>/trace/<trace
// id>"; the global log's origin is "<log origin>". A trace's final checkpoint
// carries the extension line kFinalExtension.
//
// Thread-safety: plain values and pure functions.
#ifndef STEPPROOF_PROVENANCE_CHECKPOINT_H_
#define STEPPROOF_PROVENANCE_CHECKPOINT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "merkle/hash.h"
#include "provenance/verifier_key.h"

namespace stepproof::provenance {

inline constexpr absl::string_view kFinalExtension = "stepproof.final";

struct Checkpoint {
  std::string origin;
  uint64_t size = 0;
  merkle::Hash root{};
  std::vector<std::string> extensions;  // each non-empty, no newline

  // The note text. REQUIRES: origin and extensions non-empty lines.
  std::string Marshal() const;
  // INVALID_ARGUMENT naming the problem: fewer than 3 lines, missing final
  // newline, empty origin, size not canonical decimal (no sign, no leading
  // zeros) or over 2^64-1, root not canonical padded base64 of 32 bytes,
  // empty extension line.
  static absl::StatusOr<Checkpoint> Parse(absl::string_view text);

  bool is_final() const;  // has the kFinalExtension line
};

// "<log_origin>/trace/<trace_id>".
std::string TraceOrigin(absl::string_view log_origin,
                        absl::string_view trace_id);

struct ParsedTraceOrigin {
  std::string log_origin;
  std::string trace_id;
};
// Splits a trace origin at its last "/trace/". INVALID_ARGUMENT if there is
// none, the log origin is empty or the trace id is not 32 lowercase hex.
absl::StatusOr<ParsedTraceOrigin> ParseTraceOrigin(absl::string_view origin);

// Opens a signed checkpoint note with `verifier` and parses its text (the
// errors of OpenNote and Checkpoint::Parse).
absl::StatusOr<Checkpoint> OpenCheckpoint(absl::string_view note,
                                          const NoteVerifier& verifier);

}  // namespace stepproof::provenance

#endif  // STEPPROOF_PROVENANCE_CHECKPOINT_H_
