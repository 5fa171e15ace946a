#include "inference/tensor_type.h"

#include <algorithm>
#include <cmath>

namespace stepproof::inference {
namespace {

inline float FromBits(uint32_t w) {
  float f;
  std::memcpy(&f, &w, sizeof f);
  return f;
}
inline uint32_t ToBits(float f) {
  uint32_t w;
  std::memcpy(&w, &f, sizeof w);
  return w;
}

// ggml's get_scale_min_k4: the 6-bit scale and min of sub-block j (0..7).
inline void ScaleMinK4(int j, const uint8_t* q, uint8_t* d, uint8_t* m) {
  if (j < 4) {
    *d = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    *m = (q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4);
  }
}

void DequantizeQ8_0(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t b = 0; b < n / kQ8_0BlockValues; ++b) {
    const uint8_t* blk = src + b * kQ8_0BlockBytes;
    uint16_t dh;
    std::memcpy(&dh, blk, 2);
    const float d = Fp16ToFloat(dh);
    const int8_t* qs = reinterpret_cast<const int8_t*>(blk + 2);
    for (int i = 0; i < kQ8_0BlockValues; ++i) *dst++ = d * qs[i];
  }
}

void DequantizeQ4_K(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t b = 0; b < n / kQKValues; ++b) {
    const uint8_t* blk = src + b * kQ4_KBlockBytes;
    uint16_t dh, mh;
    std::memcpy(&dh, blk, 2);
    std::memcpy(&mh, blk + 2, 2);
    const float d = Fp16ToFloat(dh);
    const float dmin = Fp16ToFloat(mh);
    const uint8_t* scales = blk + 4;
    const uint8_t* q = blk + 16;
    for (int c = 0; c < 4; ++c) {
      uint8_t sc, m;
      ScaleMinK4(2 * c, scales, &sc, &m);
      const float d1 = d * sc, m1 = dmin * m;
      ScaleMinK4(2 * c + 1, scales, &sc, &m);
      const float d2 = d * sc, m2 = dmin * m;
      for (int l = 0; l < 32; ++l) *dst++ = d1 * (q[l] & 0xF) - m1;
      for (int l = 0; l < 32; ++l) *dst++ = d2 * (q[l] >> 4) - m2;
      q += 32;
    }
  }
}

void DequantizeQ6_K(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t b = 0; b < n / kQKValues; ++b) {
    const uint8_t* blk = src + b * kQ6_KBlockBytes;
    const uint8_t* ql = blk;
    const uint8_t* qh = blk + 128;
    const int8_t* sc = reinterpret_cast<const int8_t*>(blk + 192);
    uint16_t dh;
    std::memcpy(&dh, blk + 208, 2);
    const float d = Fp16ToFloat(dh);
    for (int half = 0; half < 2; ++half) {
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        dst[l + 0] = d * sc[is + 0] * q1;
        dst[l + 32] = d * sc[is + 2] * q2;
        dst[l + 64] = d * sc[is + 4] * q3;
        dst[l + 96] = d * sc[is + 6] * q4;
      }
      dst += 128;
      ql += 64;
      qh += 32;
      sc += 8;
    }
  }
}

void QuantizeQ8_0(const float* src, uint8_t* dst, int64_t n) {
  for (int64_t b = 0; b < n / kQ8_0BlockValues; ++b) {
    const float* x = src + b * kQ8_0BlockValues;
    uint8_t* blk = dst + b * kQ8_0BlockBytes;
    float amax = 0.0f;
    for (int i = 0; i < kQ8_0BlockValues; ++i) amax = std::max(amax, std::fabs(x[i]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    const uint16_t dh = FloatToFp16(d);
    std::memcpy(blk, &dh, 2);
    for (int i = 0; i < kQ8_0BlockValues; ++i) {
      blk[2 + i] = static_cast<uint8_t>(static_cast<int8_t>(std::lround(x[i] * id)));
    }
  }
}

// A plain min/max Q4_K quantiser: each 32-value sub-block gets scale
// (max - min) / 15 and min -min (min clamped to <= 0); the 8 scales and 8 mins
// are then quantised to 6 bits against the super-block d and dmin. Not ggml's
// iterative make_qkx2_quants search, but it writes the same layout, which is
// all the tests and benchmarks need.
void QuantizeQ4_K(const float* src, uint8_t* dst, int64_t n) {
  for (int64_t b = 0; b < n / kQKValues; ++b) {
    const float* x = src + b * kQKValues;
    uint8_t* blk = dst + b * kQ4_KBlockBytes;
    float scales[8], mins[8];
    float max_scale = 0.0f, max_min = 0.0f;
    for (int j = 0; j < 8; ++j) {
      float lo = 0.0f, hi = -INFINITY;
      for (int l = 0; l < 32; ++l) {
        lo = std::min(lo, x[32 * j + l]);
        hi = std::max(hi, x[32 * j + l]);
      }
      scales[j] = (hi - lo) / 15.0f;
      mins[j] = -lo;
      max_scale = std::max(max_scale, scales[j]);
      max_min = std::max(max_min, mins[j]);
    }
    const float d = max_scale / 63.0f;
    const float dmin = max_min / 63.0f;
    const uint16_t dh = FloatToFp16(d), mh = FloatToFp16(dmin);
    std::memcpy(blk, &dh, 2);
    std::memcpy(blk + 2, &mh, 2);
    const float dq = Fp16ToFloat(dh), mq = Fp16ToFloat(mh);
    uint8_t ls[8], lm[8];
    for (int j = 0; j < 8; ++j) {
      ls[j] = dq > 0 ? static_cast<uint8_t>(std::clamp<long>(std::lround(scales[j] / dq), 0, 63)) : 0;
      lm[j] = mq > 0 ? static_cast<uint8_t>(std::clamp<long>(std::lround(mins[j] / mq), 0, 63)) : 0;
    }
    uint8_t* s = blk + 4;
    for (int j = 0; j < 8; ++j) {
      if (j < 4) {
        s[j] = ls[j];
        s[j + 4] = lm[j];
      } else {
        s[j + 4] = (ls[j] & 0xF) | ((lm[j] & 0xF) << 4);
        s[j - 4] |= (ls[j] >> 4) << 6;
        s[j] |= (lm[j] >> 4) << 6;
      }
    }
    uint8_t qv[kQKValues];
    for (int j = 0; j < 8; ++j) {
      uint8_t sc, m;
      ScaleMinK4(j, s, &sc, &m);
      const float dd = dq * sc, mm = mq * m;
      for (int l = 0; l < 32; ++l) {
        long q = dd > 0 ? std::lround((x[32 * j + l] + mm) / dd) : 0;
        qv[32 * j + l] = static_cast<uint8_t>(std::clamp<long>(q, 0, 15));
      }
    }
    uint8_t* q = blk + 16;
    for (int c = 0; c < 4; ++c) {
      for (int l = 0; l < 32; ++l) {
        q[32 * c + l] = qv[64 * c + l] | (qv[64 * c + 32 + l] << 4);
      }
    }
  }
}

}  // namespace

std::optional<TensorType> SupportedTensorType(uint32_t raw) {
  switch (raw) {
    case 0: return TensorType::kF32;
    case 1: return TensorType::kF16;
    case 8: return TensorType::kQ8_0;
    case 12: return TensorType::kQ4_K;
    case 14: return TensorType::kQ6_K;
    case 30: return TensorType::kBF16;
    default: return std::nullopt;
  }
}

std::string_view TensorTypeName(TensorType type) {
  switch (type) {
    case TensorType::kF32: return "F32";
    case TensorType::kF16: return "F16";
    case TensorType::kQ8_0: return "Q8_0";
    case TensorType::kQ4_K: return "Q4_K";
    case TensorType::kQ6_K: return "Q6_K";
    case TensorType::kBF16: return "BF16";
  }
  return "?";
}

int64_t TypeBlockValues(TensorType type) {
  switch (type) {
    case TensorType::kQ8_0: return kQ8_0BlockValues;
    case TensorType::kQ4_K:
    case TensorType::kQ6_K: return kQKValues;
    default: return 1;
  }
}

int64_t TypeBlockBytes(TensorType type) {
  switch (type) {
    case TensorType::kF32: return 4;
    case TensorType::kF16:
    case TensorType::kBF16: return 2;
    case TensorType::kQ8_0: return kQ8_0BlockBytes;
    case TensorType::kQ4_K: return kQ4_KBlockBytes;
    case TensorType::kQ6_K: return kQ6_KBlockBytes;
  }
  return 0;
}

float Fp16ToFloat(uint16_t h) {
  const uint32_t w = static_cast<uint32_t>(h) << 16;
  const uint32_t sign = w & 0x80000000u;
  const uint32_t two_w = w + w;
  const uint32_t exp_offset = 0xE0u << 23;
  const float exp_scale = 0x1.0p-112f;
  const float normalized = FromBits((two_w >> 4) + exp_offset) * exp_scale;
  const uint32_t magic_mask = 126u << 23;
  const float denormalized = FromBits((two_w >> 17) | magic_mask) - 0.5f;
  const uint32_t cutoff = 1u << 27;
  return FromBits(sign | (two_w < cutoff ? ToBits(denormalized) : ToBits(normalized)));
}

uint16_t FloatToFp16(float f) {
  const float scale_to_inf = 0x1.0p+112f;
  const float scale_to_zero = 0x1.0p-110f;
  float base = (std::fabs(f) * scale_to_inf) * scale_to_zero;
  const uint32_t w = ToBits(f);
  const uint32_t shl1_w = w + w;
  const uint32_t sign = w & 0x80000000u;
  uint32_t bias = shl1_w & 0xFF000000u;
  if (bias < 0x71000000u) bias = 0x71000000u;
  base = FromBits((bias >> 1) + 0x07800000u) + base;
  const uint32_t bits = ToBits(base);
  const uint32_t exp_bits = (bits >> 13) & 0x00007C00u;
  const uint32_t mantissa_bits = bits & 0x00000FFFu;
  const uint32_t nonsign = exp_bits + mantissa_bits;
  return static_cast<uint16_t>((sign >> 16) | (shl1_w > 0xFF000000u ? 0x7E00u : nonsign));
}

uint16_t FloatToBf16(float f) {
  uint32_t u = ToBits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 64);
  return static_cast<uint16_t>((u + (0x7fffu + ((u >> 16) & 1))) >> 16);
}

void DequantizeRow(TensorType type, const void* src, float* dst, int64_t n) {
  const uint8_t* s = static_cast<const uint8_t*>(src);
  switch (type) {
    case TensorType::kF32:
      std::memcpy(dst, s, static_cast<size_t>(n) * 4);
      return;
    case TensorType::kF16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, s + 2 * i, 2);
        dst[i] = Fp16ToFloat(h);
      }
      return;
    case TensorType::kBF16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, s + 2 * i, 2);
        dst[i] = Bf16ToFloat(h);
      }
      return;
    case TensorType::kQ8_0: DequantizeQ8_0(s, dst, n); return;
    case TensorType::kQ4_K: DequantizeQ4_K(s, dst, n); return;
    case TensorType::kQ6_K: DequantizeQ6_K(s, dst, n); return;
  }
}

void QuantizeRow(TensorType type, const float* src, void* dst, int64_t n) {
  uint8_t* d = static_cast<uint8_t*>(dst);
  switch (type) {
    case TensorType::kF32:
      std::memcpy(d, src, static_cast<size_t>(n) * 4);
      return;
    case TensorType::kF16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h = FloatToFp16(src[i]);
        std::memcpy(d + 2 * i, &h, 2);
      }
      return;
    case TensorType::kBF16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h = FloatToBf16(src[i]);
        std::memcpy(d + 2 * i, &h, 2);
      }
      return;
    case TensorType::kQ8_0: QuantizeQ8_0(src, d, n); return;
    case TensorType::kQ4_K: QuantizeQ4_K(src, d, n); return;
    case TensorType::kQ6_K: return;  // not supported for writing (see header)
  }
}

}  // namespace stepproof::inference
