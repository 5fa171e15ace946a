// ggml tensor element types as stored in GGUF files, their block layouts, and
// scalar conversions (fp16, bf16) and row (de)quantisers.
//
// Block layouts are exactly ggml's (docs/ENGINE.md draws them):
//   Q8_0: 32 values; fp16 d, int8 qs[32]                       = 34 bytes;
//         x[i] = d * qs[i].
//   Q4_K: 256 values (8 sub-blocks of 32); fp16 d, fp16 dmin, uint8 scales[12]
//         (8 6-bit scales and 8 6-bit mins), uint8 qs[128]      = 144 bytes;
//         x = d * sc[j] * q - dmin * m[j], where for each 64-value chunk c
//         the low nibbles of qs[32c..32c+31] are sub-block 2c and the high
//         nibbles sub-block 2c+1.
//
// Thread-safety: pure functions.

#ifndef STEPPROOF_INFERENCE_TENSOR_TYPE_H_
#define STEPPROOF_INFERENCE_TENSOR_TYPE_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>

namespace stepproof::inference {

// Values are ggml's enum ggml_type numbers as written in GGUF tensor infos.
enum class TensorType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ8_0 = 8,
  kQ4_K = 12,
  kQ6_K = 14,
  kBF16 = 30,
};

inline constexpr int kQ8_0BlockValues = 32;
inline constexpr int kQ8_0BlockBytes = 34;
inline constexpr int kQKValues = 256;  // K-quant super-block
inline constexpr int kQ4_KBlockBytes = 144;
inline constexpr int kQ6_KBlockBytes = 210;

// Returns the type if `raw` is a type this engine computes with.
std::optional<TensorType> SupportedTensorType(uint32_t raw);
// "F32", "F16", "BF16", "Q8_0", "Q4_K", "Q6_K"; ggml's name or "type N"
// for others is the caller's business.
std::string_view TensorTypeName(TensorType type);
// Values per block (1 for float types) and bytes per block.
int64_t TypeBlockValues(TensorType type);
int64_t TypeBlockBytes(TensorType type);

// IEEE half <-> float, round-to-nearest-even, as ggml's reference code.
float Fp16ToFloat(uint16_t h);
uint16_t FloatToFp16(float f);
// bfloat16 <-> float (float -> bf16 rounds to nearest even; NaN stays NaN).
inline float Bf16ToFloat(uint16_t h) {
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}
uint16_t FloatToBf16(float f);

// Converts `n` values of a row stored as `type` at `src` into floats.
// REQUIRES: n is a multiple of TypeBlockValues(type).
void DequantizeRow(TensorType type, const void* src, float* dst, int64_t n);

// Writes `n` floats as `type` at `dst` (TypeBlockBytes * n / values bytes).
// Q8_0 and Q4_K follow ggml's reference quantisers (quantize_row_q8_0_ref,
// quantize_row_q4_K_ref without importance weights). Q6_K is not supported
// for writing. REQUIRES: n is a multiple of TypeBlockValues(type).
void QuantizeRow(TensorType type, const float* src, void* dst, int64_t n);

// Bytes of a row of n values. REQUIRES: n % TypeBlockValues(type) == 0.
inline int64_t RowBytes(TensorType type, int64_t n) {
  return n / TypeBlockValues(type) * TypeBlockBytes(type);
}

}  // namespace stepproof::inference

#endif  // STEPPROOF_INFERENCE_TENSOR_TYPE_H_
