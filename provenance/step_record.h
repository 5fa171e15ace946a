// The step record: one leaf of a trace's Merkle tree. A versioned,
// deterministic, length-prefixed binary encoding (docs/FORMAT.md, "Step
// record") that binds the trace id, the step's position and kind, its text,
// token ids, optional per-token log-probabilities and execution fingerprint,
// and a 32-byte random salt that makes the leaf a hiding commitment.
//
// Canonical: every record has exactly one encoding, and DecodeStepRecord
// accepts exactly the outputs of EncodeStepRecord for valid records.
//
// Thread-safety: plain values and pure functions.
#ifndef STEPPROOF_PROVENANCE_STEP_RECORD_H_
#define STEPPROOF_PROVENANCE_STEP_RECORD_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "provenance/trace_header.h"

namespace stepproof::provenance {

inline constexpr uint8_t kStepRecordVersion = 1;
inline constexpr size_t kSaltSize = 32;
// Limits the decoder enforces (an encoder given more produces bytes that the
// decoder rejects; ValidateStepRecord says so first).
inline constexpr size_t kMaxTextBytes = size_t{1} << 20;        // 1 MiB
inline constexpr size_t kMaxTokens = size_t{1} << 18;           // 262144
inline constexpr size_t kMaxFingerprintBytes = size_t{1} << 16;  // 64 KiB

using Salt = std::array<uint8_t, kSaltSize>;

enum class StepKind : uint8_t { kHeader = 0, kReasoning = 1, kAnswer = 2 };

// "header", "reasoning", "answer" (the names used in JSON bundles).
absl::string_view StepKindName(StepKind kind);
// INVALID_ARGUMENT for any other name.
absl::StatusOr<StepKind> StepKindFromName(absl::string_view name);

struct StepRecord {
  uint8_t version = kStepRecordVersion;
  std::string trace_id;  // 32 lowercase hex characters (128 bits)
  uint64_t index = 0;    // the leaf index in the trace; 0 is the header
  StepKind kind = StepKind::kReasoning;
  // Milliseconds since the trace start (TraceHeader::start_unix_ms).
  // REQUIRES: start_ms <= end_ms. The header record has 0, 0.
  uint64_t start_ms = 0;
  uint64_t end_ms = 0;
  // kReasoning / kAnswer: the step's UTF-8 text.
  // kHeader: EncodeTraceHeader(header) (binary; use MakeHeaderRecord).
  std::string text;
  std::vector<uint32_t> token_ids;  // empty for the header
  // Per-token log-probabilities, one per token id; encoded as their IEEE-754
  // binary32 bit patterns (NaN payloads and -0.0 are preserved).
  std::optional<std::vector<float>> logprobs;
  std::optional<std::string> fingerprint;  // opaque bytes
  Salt salt{};

  friend bool operator==(const StepRecord& a, const StepRecord& b);
};

// OK, or INVALID_ARGUMENT naming the first field that the decoder would
// reject (bad trace id, non-UTF-8 text, oversize field, logprobs count !=
// token count, start_ms > end_ms, header record with tokens, ...).
absl::Status ValidateStepRecord(const StepRecord& record);

// The canonical encoding (the leaf input). Deterministic for any input;
// REQUIRES ValidateStepRecord(record).ok() for the result to decode.
std::string EncodeStepRecord(const StepRecord& record);

// Parses and validates an encoding. INVALID_ARGUMENT with a message naming the
// problem for: truncated input, unknown version or kind, bad flag bytes,
// oversize fields, invalid UTF-8, an invalid header payload, trailing bytes.
absl::StatusOr<StepRecord> DecodeStepRecord(absl::string_view bytes);

// The header record (index 0, kind kHeader, times 0) wrapping `header`.
StepRecord MakeHeaderRecord(std::string trace_id, const TraceHeader& header,
                            const Salt& salt);
// The TraceHeader inside a kHeader record. INVALID_ARGUMENT if `record` is not
// a header record or its payload does not decode.
absl::StatusOr<TraceHeader> HeaderFromRecord(const StepRecord& record);

// True iff `id` is 32 lowercase hex characters.
bool IsValidTraceId(absl::string_view id);

}  // namespace stepproof::provenance

#endif  // STEPPROOF_PROVENANCE_STEP_RECORD_H_
