// The one timestamp text form used in StepProof's signed formats: RFC 3339,
// UTC, millisecond precision, e.g. "2026-01-02T03:04:05.678Z". Exactly one
// text per instant, so it can sit inside canonical encodings.
//
// Thread-safety: pure functions.
#ifndef STEPPROOF_PROVENANCE_RFC3339_H_
#define STEPPROOF_PROVENANCE_RFC3339_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace stepproof::provenance {

// REQUIRES: unix_ms within years 0000..9999 (else the text will not parse).
std::string FormatRfc3339Millis(int64_t unix_ms);

// Parses exactly the form FormatRfc3339Millis produces (24 characters,
// "YYYY-MM-DDTHH:MM:SS.mmmZ", valid calendar date, no leap seconds).
// INVALID_ARGUMENT otherwise.
absl::StatusOr<int64_t> ParseRfc3339Millis(absl::string_view text);

}  // namespace stepproof::provenance

#endif  // STEPPROOF_PROVENANCE_RFC3339_H_
