// Execution fingerprints (verification level 3, docs/FORMAT.md "Execution
// fingerprints"): a compact commitment to a model's final hidden states (after
// the last RMSNorm) that a verifier holding the weights can recompute with one
// prefill and compare with tolerances, in the spirit of TOPLOC (Prime
// Intellect, 2025).
//
// One chunk fingerprint covers the hidden-state rows of up to 32 positions
// (or of a whole prompt): the 128 entries of largest magnitude of the
// flattened rows, as (flat index, bf16 value) pairs, encoded as the 128
// coefficients of the unique polynomial P of degree <= 127 over GF(65497)
// with P(index mod 65497) = bf16 bits. 256 bytes. The verifier selects its
// own top 128, evaluates P at its indices and compares the claimed bf16
// values with its own (exponents equal, mantissa differences small).
//
// A step fingerprint (the bytes in StepRecord.fingerprint) carries the prompt
// fingerprint (first step only) and the chunk fingerprints that the step
// completes, with their chunk indices, so each step says which chunks it
// carries; chunk c covers the generated tokens 32c .. 32c+31.
//
// Thread-safety: pure functions and plain values.

#ifndef STEPPROOF_INFERENCE_FINGERPRINT_H_
#define STEPPROOF_INFERENCE_FINGERPRINT_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace stepproof::inference {

inline constexpr int kFingerprintTopK = 128;
inline constexpr uint32_t kFingerprintPrime = 65497;
inline constexpr int kFingerprintChunkTokens = 32;
inline constexpr size_t kChunkFingerprintBytes = 2 * kFingerprintTopK;  // 256
inline constexpr uint8_t kStepFingerprintVersion = 1;

// One selected entry: flat index into the rows and the value's bf16 bits.
struct FingerprintEntry {
  uint64_t index = 0;
  uint16_t bf16 = 0;
};

// bf16 bits of f, round to nearest even; every NaN becomes 0x7FC0 (so the
// bits are < 65497 and a field element).
uint16_t FingerprintBf16(float f);

// The entries a fingerprint commits to: walk the values by decreasing |v|
// (ties: lower index first; NaN counts as 0), keep an entry unless an entry
// already kept has the same index mod 65497, stop at 128 entries (fewer when
// the values run out). Returned in that order. REQUIRES: values.size() < 2^32.
std::vector<FingerprintEntry> SelectFingerprintEntries(absl::Span<const float> values);

// Polynomial coefficients c[0..127] (P(x) = sum c[i] x^i mod 65497).
using ChunkFingerprint = std::array<uint16_t, kFingerprintTopK>;

// Fingerprint of `values` (rows flattened, row-major). Entries beyond those
// selected (fewer than 128 values) are filled with the points x = 65496,
// 65495, ... (never a residue of a selected index) and y = 0.
ChunkFingerprint MakeChunkFingerprint(absl::Span<const float> values);

// P(x) mod 65497.
uint32_t EvaluateFingerprint(const ChunkFingerprint& fp, uint32_t x);

// Tolerances of the comparison (docs/REPLAY.md explains the calibration).
struct FingerprintTolerance {
  int min_exponent_matches = 90;      // of 128 (sign and 8 exponent bits equal)
  double max_mean_mantissa_diff = 10;  // over the entries whose exponent matched
  double max_median_mantissa_diff = 8;
};
// TOPLOC's published thresholds (for CPU/GPU cross-device replay).
FingerprintTolerance CrossDeviceTolerance();
// This engine replaying a trace on the same backend: the hidden states are
// bit-identical (docs/ENGINE.md), so every exponent and mantissa must match.
FingerprintTolerance SameEngineTolerance();
// This CPU engine on the other kernel path (AVX2/FMA vs portable): >= 120
// exponents, mean mantissa difference <= 0.1, median <= 1. Calibrated in
// docs/REPLAY.md: honest traces stay at 128/128 and mean <= 0.008; a Q8_0
// copy of an F32 model sits at mean >= 0.35.
FingerprintTolerance CpuKernelTolerance();

struct FingerprintComparison {
  int entries = 0;            // entries compared (128 unless values were few)
  int exponent_matches = 0;   // claimed and recomputed sign+exponent equal
  double mean_mantissa_diff = 0;
  double median_mantissa_diff = 0;
  bool passed = false;
};

// Compares a claimed fingerprint with the verifier's own rows `values`.
FingerprintComparison CompareChunkFingerprint(const ChunkFingerprint& claimed,
                                              absl::Span<const float> values,
                                              const FingerprintTolerance& tolerance);

// What one step record carries.
struct StepFingerprint {
  // The prompt's fingerprint (all prompt positions), in the first step only.
  std::optional<ChunkFingerprint> prompt;
  // Index of chunks[0] (chunk c covers generated tokens 32c .. 32c+31).
  uint32_t first_chunk = 0;
  std::vector<ChunkFingerprint> chunks;

  friend bool operator==(const StepFingerprint&, const StepFingerprint&) = default;
};

// The versioned byte encoding (docs/FORMAT.md, "Execution fingerprints").
std::string EncodeStepFingerprint(const StepFingerprint& fp);
// INVALID_ARGUMENT naming the problem: unknown version, bad flags,
// truncation, a coefficient >= 65497, trailing bytes.
absl::StatusOr<StepFingerprint> DecodeStepFingerprint(std::string_view bytes);

}  // namespace stepproof::inference

#endif  // STEPPROOF_INFERENCE_FINGERPRINT_H_
