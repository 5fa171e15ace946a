// The trace header: what leaf 0 of every trace commits to. Which model
// (SHA-256 of the weights file), which tokenizer, the sampling settings and
// seed (docs/DECODING.md), the prompt or a salted commitment to it, where it
// ran, when it started and which key signs the trace. Encoded canonically
// (docs/FORMAT.md, "Trace header") and carried as the payload of the kHeader
// step record.
//
// Thread-safety: plain values and pure functions.
#ifndef STEPPROOF_PROVENANCE_TRACE_HEADER_H_
#define STEPPROOF_PROVENANCE_TRACE_HEADER_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "merkle/hash.h"

namespace stepproof::provenance {

inline constexpr uint8_t kTraceHeaderVersion = 1;
inline constexpr size_t kMaxHeaderStringBytes = 256;  // names, backend, device
inline constexpr size_t kMaxPromptBytes = size_t{1} << 20;

// The sampling settings, as inference::SamplingParams plus the sampler's
// algorithm name (docs/DECODING.md) and the generation budget.
struct SamplingSettings {
  std::string sampler = "stepproof.sampler/v1";
  bool greedy = false;
  float temperature = 0.6f;  // binary32 bits are what is encoded
  float top_p = 0.95f;
  uint32_t top_k = 0;
  uint64_t seed = 0;
  uint32_t max_new_tokens = 0;
};

struct TraceHeader {
  merkle::Hash model_digest{};      // SHA-256 of the weights file
  merkle::Hash tokenizer_digest{};  // SHA-256 of the tokenizer definition
  std::string model_name;
  SamplingSettings sampling;
  // Exactly one of: the prompt (UTF-8), or, when the caller withholds it,
  // PromptCommitment(salt, prompt) with a salt only the caller keeps.
  std::optional<std::string> prompt;
  std::optional<merkle::Hash> prompt_commitment;
  std::string backend;  // "cpu", "cuda", "upstream:<url host>", ...
  std::string device;   // "NVIDIA H100 80GB", "x86-64 (16 threads)", ...
  // Trace start, Unix milliseconds; encoded as RFC 3339 UTC with exactly
  // three fraction digits ("2026-01-02T03:04:05.678Z"), years 0000..9999.
  int64_t start_unix_ms = 0;
  std::string key_name;  // the signing key's name (C2SP verifier key name)
  uint32_t key_id = 0;   // its C2SP key id

  friend bool operator==(const TraceHeader& a, const TraceHeader& b);
};

// SHA-256(salt || prompt): the hiding commitment stored when the prompt is
// withheld.
merkle::Hash PromptCommitment(const std::array<uint8_t, 32>& salt,
                              absl::string_view prompt);

// OK, or INVALID_ARGUMENT naming the first bad field.
absl::Status ValidateTraceHeader(const TraceHeader& header);

// The canonical encoding. REQUIRES ValidateTraceHeader(header).ok() for the
// result to decode.
std::string EncodeTraceHeader(const TraceHeader& header);

// INVALID_ARGUMENT naming the problem for truncated, non-canonical, oversize,
// non-UTF-8 or trailing input.
absl::StatusOr<TraceHeader> DecodeTraceHeader(absl::string_view bytes);

}  // namespace stepproof::provenance

#endif  // STEPPROOF_PROVENANCE_TRACE_HEADER_H_
