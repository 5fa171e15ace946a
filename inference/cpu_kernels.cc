#include "inference/cpu_kernels.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <memory>
#include <vector>

#include "inference/cpu_gemm.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#define STEPPROOF_X86 1
#define STEPPROOF_AVX2 __attribute__((target("avx2,fma,f16c")))
#define STEPPROOF_AVX512 __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")))
#endif

namespace stepproof::inference {
namespace {

inline uint16_t LoadU16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

// ggml's get_scale_min_k4.
inline void ScaleMinK4(int j, const uint8_t* q, uint8_t* d, uint8_t* m) {
  if (j < 4) {
    *d = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    *m = (q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4);
  }
}

// ---- Portable implementations ------------------------------------------

float DotF32(const uint8_t* row, const float* x, int64_t n) {
  float s = 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    float w;
    std::memcpy(&w, row + 4 * i, 4);
    s += w * x[i];
  }
  return s;
}

float DotF16(const uint8_t* row, const float* x, int64_t n) {
  float s = 0.0f;
  for (int64_t i = 0; i < n; ++i) s += Fp16ToFloat(LoadU16(row + 2 * i)) * x[i];
  return s;
}

float DotBF16(const uint8_t* row, const float* x, int64_t n) {
  float s = 0.0f;
  for (int64_t i = 0; i < n; ++i) s += Bf16ToFloat(LoadU16(row + 2 * i)) * x[i];
  return s;
}

float DotQ8_0(const uint8_t* row, const float* x, int64_t n) {
  float s = 0.0f;
  for (int64_t b = 0; b < n / kQ8_0BlockValues; ++b) {
    const uint8_t* blk = row + b * kQ8_0BlockBytes;
    const int8_t* q = reinterpret_cast<const int8_t*>(blk + 2);
    const float* xb = x + b * kQ8_0BlockValues;
    float bs = 0.0f;
    for (int i = 0; i < kQ8_0BlockValues; ++i) bs += q[i] * xb[i];
    s += Fp16ToFloat(LoadU16(blk)) * bs;
  }
  return s;
}

// sum_j (d*sc_j * sum(q*x) - dmin*m_j * sum(x)) over the 8 sub-blocks.
float DotQ4_K(const uint8_t* row, const float* x, int64_t n) {
  float s = 0.0f;
  for (int64_t b = 0; b < n / kQKValues; ++b) {
    const uint8_t* blk = row + b * kQ4_KBlockBytes;
    const float d = Fp16ToFloat(LoadU16(blk));
    const float dmin = Fp16ToFloat(LoadU16(blk + 2));
    const uint8_t* scales = blk + 4;
    const uint8_t* q = blk + 16;
    const float* xb = x + b * kQKValues;
    for (int c = 0; c < 4; ++c) {
      float qx_lo = 0, qx_hi = 0, x_lo = 0, x_hi = 0;
      for (int l = 0; l < 32; ++l) {
        qx_lo += (q[32 * c + l] & 0xF) * xb[64 * c + l];
        x_lo += xb[64 * c + l];
        qx_hi += (q[32 * c + l] >> 4) * xb[64 * c + 32 + l];
        x_hi += xb[64 * c + 32 + l];
      }
      uint8_t sc, m;
      ScaleMinK4(2 * c, scales, &sc, &m);
      s += d * sc * qx_lo - dmin * m * x_lo;
      ScaleMinK4(2 * c + 1, scales, &sc, &m);
      s += d * sc * qx_hi - dmin * m * x_hi;
    }
  }
  return s;
}

// Q6_K (found in Q4_K_M downloads beside Q4_K): one super-block at a time.
float DotQ6_K(const uint8_t* row, const float* x, int64_t n) {
  float s = 0.0f;
  float buf[kQKValues];
  for (int64_t b = 0; b < n / kQKValues; ++b) {
    DequantizeRow(TensorType::kQ6_K, row + b * kQ6_KBlockBytes, buf, kQKValues);
    const float* xb = x + b * kQKValues;
    float bs = 0.0f;
    for (int i = 0; i < kQKValues; ++i) bs += buf[i] * xb[i];
    s += bs;
  }
  return s;
}

// ---- Integer dots on quantised activations (portable) --------------------

inline float ActD(const uint8_t* blk) {
  float d;
  std::memcpy(&d, blk, 4);
  return d;
}
inline int32_t ActSum(const uint8_t* blk) {
  int32_t s;
  std::memcpy(&s, blk + 4, 4);
  return s;
}
inline const int8_t* ActQ(const uint8_t* blk) { return reinterpret_cast<const int8_t*>(blk + 8); }

float QDotQ8_0(const uint8_t* row, const uint8_t* xq, int64_t n) {
  float s = 0.0f;
  for (int64_t b = 0; b < n / 32; ++b) {
    const uint8_t* blk = row + b * kQ8_0BlockBytes;
    const uint8_t* a = xq + b * kActivationBlockBytes;
    const int8_t* q = reinterpret_cast<const int8_t*>(blk + 2);
    const int8_t* qa = ActQ(a);
    int32_t isum = 0;
    for (int i = 0; i < 32; ++i) isum += q[i] * qa[i];
    s += Fp16ToFloat(LoadU16(blk)) * ActD(a) * static_cast<float>(isum);
  }
  return s;
}

float QDotQ4_K(const uint8_t* row, const uint8_t* xq, int64_t n) {
  float s = 0.0f;
  for (int64_t b = 0; b < n / kQKValues; ++b) {
    const uint8_t* blk = row + b * kQ4_KBlockBytes;
    const float d = Fp16ToFloat(LoadU16(blk));
    const float dmin = Fp16ToFloat(LoadU16(blk + 2));
    const uint8_t* scales = blk + 4;
    const uint8_t* q = blk + 16;
    const uint8_t* a = xq + b * 8 * kActivationBlockBytes;
    for (int c = 0; c < 4; ++c) {
      const uint8_t* a_lo = a + (2 * c) * kActivationBlockBytes;
      const uint8_t* a_hi = a_lo + kActivationBlockBytes;
      int32_t lo = 0, hi = 0;
      for (int l = 0; l < 32; ++l) {
        lo += (q[32 * c + l] & 0xF) * ActQ(a_lo)[l];
        hi += (q[32 * c + l] >> 4) * ActQ(a_hi)[l];
      }
      uint8_t sc, m;
      ScaleMinK4(2 * c, scales, &sc, &m);
      s += ActD(a_lo) * (d * sc * static_cast<float>(lo) - dmin * m * static_cast<float>(ActSum(a_lo)));
      ScaleMinK4(2 * c + 1, scales, &sc, &m);
      s += ActD(a_hi) * (d * sc * static_cast<float>(hi) - dmin * m * static_cast<float>(ActSum(a_hi)));
    }
  }
  return s;
}

// Q6_K value i (half h, quarter r, lane l; docs/ENGINE.md) minus 32, and its
// scale. The activation block of value i is i / 32 = 4h + r.
float QDotQ6_K(const uint8_t* row, const uint8_t* xq, int64_t n) {
  float s = 0.0f;
  for (int64_t b = 0; b < n / kQKValues; ++b) {
    const uint8_t* blk = row + b * kQ6_KBlockBytes;
    const uint8_t* ql = blk;
    const uint8_t* qh = blk + 128;
    const int8_t* sc = reinterpret_cast<const int8_t*>(blk + 192);
    const float d = Fp16ToFloat(LoadU16(blk + 208));
    for (int h = 0; h < 2; ++h) {
      for (int r = 0; r < 4; ++r) {
        const uint8_t* a = xq + (b * 8 + 4 * h + r) * kActivationBlockBytes;
        int32_t isum[2] = {0, 0};
        for (int l = 0; l < 32; ++l) {
          const int low = (ql[64 * h + 32 * (r & 1) + l] >> (r >= 2 ? 4 : 0)) & 0xF;
          const int high = (qh[32 * h + l] >> (2 * r)) & 3;
          isum[l / 16] += ((low | (high << 4)) - 32) * ActQ(a)[l];
        }
        const int32_t scaled = sc[8 * h + 2 * r] * isum[0] + sc[8 * h + 2 * r + 1] * isum[1];
        s += d * ActD(a) * static_cast<float>(scaled);
      }
    }
  }
  return s;
}

// ---- AVX2 / FMA / F16C implementations ----------------------------------
#ifdef STEPPROOF_X86

STEPPROOF_AVX2 inline float Hsum(__m256 v) {
  __m128 lo = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  __m128 sh = _mm_movehdup_ps(lo);
  __m128 s = _mm_add_ps(lo, sh);
  sh = _mm_movehl_ps(sh, s);
  s = _mm_add_ss(s, sh);
  return _mm_cvtss_f32(s);
}

STEPPROOF_AVX2 inline float Half(const uint8_t* p) { return _cvtsh_ss(LoadU16(p)); }

// Loads 8 weights of the given float type as floats.
template <TensorType T>
STEPPROOF_AVX2 inline __m256 Load8(const uint8_t* p) {
  if constexpr (T == TensorType::kF32) {
    return _mm256_loadu_ps(reinterpret_cast<const float*>(p));
  } else if constexpr (T == TensorType::kF16) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  } else {
    __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
  }
}

template <TensorType T, int kBytes>
STEPPROOF_AVX2 float DotFloatAvx2(const uint8_t* row, const float* x, int64_t n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    a0 = _mm256_fmadd_ps(Load8<T>(row + kBytes * i), _mm256_loadu_ps(x + i), a0);
    a1 = _mm256_fmadd_ps(Load8<T>(row + kBytes * (i + 8)), _mm256_loadu_ps(x + i + 8), a1);
    a2 = _mm256_fmadd_ps(Load8<T>(row + kBytes * (i + 16)), _mm256_loadu_ps(x + i + 16), a2);
    a3 = _mm256_fmadd_ps(Load8<T>(row + kBytes * (i + 24)), _mm256_loadu_ps(x + i + 24), a3);
  }
  for (; i + 8 <= n; i += 8) {
    a0 = _mm256_fmadd_ps(Load8<T>(row + kBytes * i), _mm256_loadu_ps(x + i), a0);
  }
  float s = Hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
  for (; i < n; ++i) {
    float w;
    if constexpr (T == TensorType::kF32) {
      std::memcpy(&w, row + 4 * i, 4);
    } else if constexpr (T == TensorType::kF16) {
      w = Half(row + 2 * i);
    } else {
      w = Bf16ToFloat(LoadU16(row + 2 * i));
    }
    s += w * x[i];
  }
  return s;
}

STEPPROOF_AVX2 inline __m256 Q8x8(const int8_t* q) {
  return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(q))));
}

STEPPROOF_AVX2 inline __m256 Q8BlockDot(const uint8_t* blk, const float* x) {
  const int8_t* q = reinterpret_cast<const int8_t*>(blk + 2);
  __m256 p = _mm256_mul_ps(Q8x8(q), _mm256_loadu_ps(x));
  p = _mm256_fmadd_ps(Q8x8(q + 8), _mm256_loadu_ps(x + 8), p);
  p = _mm256_fmadd_ps(Q8x8(q + 16), _mm256_loadu_ps(x + 16), p);
  p = _mm256_fmadd_ps(Q8x8(q + 24), _mm256_loadu_ps(x + 24), p);
  return p;
}

STEPPROOF_AVX2 float DotQ8_0Avx2(const uint8_t* row, const float* x, int64_t n) {
  const int64_t nb = n / kQ8_0BlockValues;
  __m256 a0 = _mm256_setzero_ps(), a1 = a0;
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2) {
    const uint8_t* b0 = row + b * kQ8_0BlockBytes;
    const uint8_t* b1 = b0 + kQ8_0BlockBytes;
    a0 = _mm256_fmadd_ps(_mm256_set1_ps(Half(b0)), Q8BlockDot(b0, x + b * 32), a0);
    a1 = _mm256_fmadd_ps(_mm256_set1_ps(Half(b1)), Q8BlockDot(b1, x + b * 32 + 32), a1);
  }
  if (b < nb) {
    const uint8_t* b0 = row + b * kQ8_0BlockBytes;
    a0 = _mm256_fmadd_ps(_mm256_set1_ps(Half(b0)), Q8BlockDot(b0, x + b * 32), a0);
  }
  return Hsum(_mm256_add_ps(a0, a1));
}

STEPPROOF_AVX2 float DotQ4_KAvx2(const uint8_t* row, const float* x, int64_t n) {
  const __m256i low_mask = _mm256_set1_epi32(0xF);
  __m256 acc = _mm256_setzero_ps(), accm = _mm256_setzero_ps();
  for (int64_t b = 0; b < n / kQKValues; ++b) {
    const uint8_t* blk = row + b * kQ4_KBlockBytes;
    const float d = Half(blk);
    const float dmin = Half(blk + 2);
    const uint8_t* scales = blk + 4;
    const uint8_t* q = blk + 16;
    const float* xb = x + b * kQKValues;
    for (int c = 0; c < 4; ++c) {
      __m256 qx_lo = _mm256_setzero_ps(), qx_hi = qx_lo, x_lo = qx_lo, x_hi = qx_lo;
      for (int g = 0; g < 4; ++g) {
        __m256i w = _mm256_cvtepu8_epi32(
            _mm_loadl_epi64(reinterpret_cast<const __m128i*>(q + 32 * c + 8 * g)));
        __m256 lo = _mm256_cvtepi32_ps(_mm256_and_si256(w, low_mask));
        __m256 hi = _mm256_cvtepi32_ps(_mm256_srli_epi32(w, 4));
        __m256 xl = _mm256_loadu_ps(xb + 64 * c + 8 * g);
        __m256 xh = _mm256_loadu_ps(xb + 64 * c + 32 + 8 * g);
        qx_lo = _mm256_fmadd_ps(lo, xl, qx_lo);
        qx_hi = _mm256_fmadd_ps(hi, xh, qx_hi);
        x_lo = _mm256_add_ps(x_lo, xl);
        x_hi = _mm256_add_ps(x_hi, xh);
      }
      uint8_t sc, m;
      ScaleMinK4(2 * c, scales, &sc, &m);
      acc = _mm256_fmadd_ps(_mm256_set1_ps(d * sc), qx_lo, acc);
      accm = _mm256_fmadd_ps(_mm256_set1_ps(dmin * m), x_lo, accm);
      ScaleMinK4(2 * c + 1, scales, &sc, &m);
      acc = _mm256_fmadd_ps(_mm256_set1_ps(d * sc), qx_hi, acc);
      accm = _mm256_fmadd_ps(_mm256_set1_ps(dmin * m), x_hi, accm);
    }
  }
  return Hsum(acc) - Hsum(accm);
}

STEPPROOF_AVX2 float DotQ6_KAvx2(const uint8_t* row, const float* x, int64_t n) {
  float s = 0.0f;
  alignas(32) float buf[kQKValues];
  for (int64_t b = 0; b < n / kQKValues; ++b) {
    DequantizeRow(TensorType::kQ6_K, row + b * kQ6_KBlockBytes, buf, kQKValues);
    s += DotFloatAvx2<TensorType::kF32, 4>(reinterpret_cast<const uint8_t*>(buf), x + b * kQKValues,
                                          kQKValues);
  }
  return s;
}

// Sum of the 16 int16 products pairs of unsigned u8 x signed s8, as 8 int32.
STEPPROOF_AVX2 inline __m256i DotU8S8(__m256i u, __m256i s) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

// acc + one Q8_0 block times one activation block, scaled (8 float lanes:
// lane l holds the block's exact integer sum over values 4l..4l+3, times
// fp32(d_w) * d_x, fused into acc with one rounding). The VNNI kernel below
// repeats exactly these operations; keep the two in step.
STEPPROOF_AVX2 inline __m256 Q8BlockQDot(const uint8_t* blk, const uint8_t* a, __m256 acc) {
  const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 2));
  const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + 8));
  // |w| * (x * sign(w)): the unsigned x signed product maddubs needs.
  const __m256i p = DotU8S8(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
  return _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(Half(blk) * ActD(a)), acc);
}

// Even blocks accumulate in acc0, odd ones in acc1, then Hsum(acc0 + acc1).
STEPPROOF_AVX2 float QDotQ8_0Avx2(const uint8_t* row, const uint8_t* xq, int64_t n) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;
  const int64_t nb = n / 32;
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2) {
    acc0 = Q8BlockQDot(row + b * kQ8_0BlockBytes, xq + b * kActivationBlockBytes, acc0);
    acc1 = Q8BlockQDot(row + (b + 1) * kQ8_0BlockBytes, xq + (b + 1) * kActivationBlockBytes, acc1);
  }
  if (b < nb) acc0 = Q8BlockQDot(row + b * kQ8_0BlockBytes, xq + b * kActivationBlockBytes, acc0);
  return Hsum(_mm256_add_ps(acc0, acc1));
}

STEPPROOF_AVX2 float QDotQ4_KAvx2(const uint8_t* row, const uint8_t* xq, int64_t n) {
  const __m256i low = _mm256_set1_epi8(0xF);
  __m256 acc = _mm256_setzero_ps();
  float mins = 0.0f;
  for (int64_t b = 0; b < n / kQKValues; ++b) {
    const uint8_t* blk = row + b * kQ4_KBlockBytes;
    const float d = Half(blk);
    const float dmin = Half(blk + 2);
    const uint8_t* scales = blk + 4;
    const uint8_t* q = blk + 16;
    const uint8_t* a = xq + b * 8 * kActivationBlockBytes;
    for (int c = 0; c < 4; ++c) {
      const uint8_t* a_lo = a + (2 * c) * kActivationBlockBytes;
      const uint8_t* a_hi = a_lo + kActivationBlockBytes;
      const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + 32 * c));
      const __m256i w_lo = _mm256_and_si256(w, low);
      const __m256i w_hi = _mm256_and_si256(_mm256_srli_epi16(w, 4), low);
      const __m256i p_lo = DotU8S8(w_lo, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a_lo + 8)));
      const __m256i p_hi = DotU8S8(w_hi, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a_hi + 8)));
      uint8_t sc, m;
      ScaleMinK4(2 * c, scales, &sc, &m);
      acc = _mm256_fmadd_ps(_mm256_set1_ps(d * sc * ActD(a_lo)), _mm256_cvtepi32_ps(p_lo), acc);
      mins += dmin * m * ActD(a_lo) * static_cast<float>(ActSum(a_lo));
      ScaleMinK4(2 * c + 1, scales, &sc, &m);
      acc = _mm256_fmadd_ps(_mm256_set1_ps(d * sc * ActD(a_hi)), _mm256_cvtepi32_ps(p_hi), acc);
      mins += dmin * m * ActD(a_hi) * static_cast<float>(ActSum(a_hi));
    }
  }
  return Hsum(acc) - mins;
}

STEPPROOF_AVX2 float QDotQ6_KAvx2(const uint8_t* row, const uint8_t* xq, int64_t n) {
  const __m256i low_mask = _mm256_set1_epi8(0xF);
  const __m256i two_bits = _mm256_set1_epi8(3);
  const __m256i offset = _mm256_set1_epi8(32);
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t b = 0; b < n / kQKValues; ++b) {
    const uint8_t* blk = row + b * kQ6_KBlockBytes;
    const int8_t* sc = reinterpret_cast<const int8_t*>(blk + 192);
    const float d = Half(blk + 208);
    for (int h = 0; h < 2; ++h) {
      const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 128 + 32 * h));
      const __m256i ql0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 64 * h));
      const __m256i ql1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 64 * h + 32));
      const __m256i lows[4] = {
          _mm256_and_si256(ql0, low_mask), _mm256_and_si256(ql1, low_mask),
          _mm256_and_si256(_mm256_srli_epi16(ql0, 4), low_mask),
          _mm256_and_si256(_mm256_srli_epi16(ql1, 4), low_mask)};
      for (int r = 0; r < 4; ++r) {
        const uint8_t* a = xq + (b * 8 + 4 * h + r) * kActivationBlockBytes;
        const __m256i high = _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * r)), two_bits);
        const __m256i q = _mm256_sub_epi8(_mm256_or_si256(lows[r], _mm256_slli_epi16(high, 4)), offset);
        const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + 8));
        // Lanes 0-3 hold values 0-15 (scale 2r), lanes 4-7 values 16-31.
        const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(q, q), _mm256_sign_epi8(x, q)), ones);
        const int32_t s0 = sc[8 * h + 2 * r], s1 = sc[8 * h + 2 * r + 1];
        const __m256i scaled = _mm256_mullo_epi32(p, _mm256_setr_epi32(s0, s0, s0, s0, s1, s1, s1, s1));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d * ActD(a)), _mm256_cvtepi32_ps(scaled), acc);
      }
    }
  }
  return Hsum(acc);
}

// ---- AVX-512 VNNI (Q8_0) ---------------------------------------------------
//
// Two blocks per 512-bit register: the low half plays the AVX2 kernel's acc0
// (even blocks), the high half its acc1 (odd blocks). vpdpbusd multiplies
// unsigned by signed bytes, so the activations are stored as x + 128 (1..255)
// and the weights used as they are: each int32 lane of
// dpbusd(x + 128, w) - dpbusd(128, w) is exactly sum(w * x) over its 4
// values, the same integer as maddubs/madd. (Flipping the weights instead
// needs a -128 * sum(x) correction per lane from memory, 32 more activation
// bytes per block; at hidden 8960 the activations then outgrew L1 beside the
// streamed weights and the kernel ran slower than AVX2 from memory.) The
// scales fp32(d_w) * d_x are formed a pair at a time and fused into the
// accumulator with the same single-rounding fma.
// (GCC 12's avx512fintrin.h initialises "undefined" registers from themselves,
// which -Wuninitialized reports once inlined here.)
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

STEPPROOF_AVX512 inline __m512 Q8PairQDot(const uint8_t* blk, const uint8_t* a, __m512 scale, __m512 acc) {
  const __m256i w0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 2));
  const __m256i w1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + kQ8_0BlockBytes + 2));
  const __m512i w = _mm512_inserti64x4(_mm512_castsi256_si512(w0), w1, 1);
  const __m512i zero = _mm512_setzero_si512();
  const __m512i biased = _mm512_dpbusd_epi32(zero, _mm512_loadu_si512(a), w);
  const __m512i bias = _mm512_dpbusd_epi32(zero, _mm512_set1_epi8(static_cast<char>(0x80)), w);
  return _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(biased, bias)), scale, acc);
}

// Lanes 0-7 = fp32(d_w) * d_x of the pair's first block, lanes 8-15 of its
// second (the fp16 words combined in a GPR, converted and multiplied as two
// floats, then spread; a 16-lane gather of the words measured slower). The
// main loop forms four pairs' scales at once (Q8Words4 below); this is for
// the pairs after the last group of four.
STEPPROOF_AVX512 inline __m512 PairScale(const uint8_t* blk, const float* d) {
  const uint32_t h = LoadU16(blk) | (static_cast<uint32_t>(LoadU16(blk + kQ8_0BlockBytes)) << 16);
  const __m128 s = _mm_mul_ps(_mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(h))),
                              _mm_castpd_ps(_mm_load_sd(reinterpret_cast<const double*>(d))));
  return _mm512_permutexvar_ps(_mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1),
                               _mm512_castps128_ps512(s));
}

constexpr int64_t kLinePrefetchAhead = 4096;

// The fp16 scale words of four consecutive blocks, first block lowest.
inline uint64_t Q8Words4(const uint8_t* blk) {
  return LoadU16(blk) | static_cast<uint64_t>(LoadU16(blk + kQ8_0BlockBytes)) << 16 |
         static_cast<uint64_t>(LoadU16(blk + 2 * kQ8_0BlockBytes)) << 32 |
         static_cast<uint64_t>(LoadU16(blk + 3 * kQ8_0BlockBytes)) << 48;
}

STEPPROOF_AVX512 float QDotQ8_0Vnni(const uint8_t* row, const uint8_t* xv, int64_t n) {
  const int64_t nb = n / 32;
  const int64_t full_pairs = nb / 2;
  const int64_t pairs = (nb + 1) / 2;
  const float* d = reinterpret_cast<const float*>(xv + pairs * 64);
  __m512 acc = _mm512_setzero_ps();
  int64_t p = 0;
  // Four pairs at a time: their eight scales converted and multiplied in one
  // go, then one permute per pair spreads its two. The scale work per pair
  // was the kernel's limit from cache (without it the same loop ran ~1.4x
  // faster); this keeps each scale the same single float product, so the
  // bits do not change.
  for (; p + 4 <= full_pairs; p += 4) {
    const uint8_t* blk = row + 2 * p * kQ8_0BlockBytes;
    // Every line 4 KiB ahead (into the next row near a row's end; a prefetch
    // past the matrix does not fault). Beside MatMul's page-ahead prefetch
    // it gave 5-10% more decode speed (docs/PERFORMANCE.md); 3 and 6 KiB,
    // or without the page-ahead one, were slower.
    for (int o = 0; o < 8 * kQ8_0BlockBytes; o += 64) __builtin_prefetch(blk + kLinePrefetchAhead + o, 0, 3);
    const __m128i h = _mm_set_epi64x(static_cast<long long>(Q8Words4(blk + 4 * kQ8_0BlockBytes)),
                                     static_cast<long long>(Q8Words4(blk)));
    const __m512 scales = _mm512_castps256_ps512(_mm256_mul_ps(_mm256_cvtph_ps(h), _mm256_loadu_ps(d + 2 * p)));
#pragma GCC unroll 4
    for (int k = 0; k < 4; ++k) {
      const __m512i spread = _mm512_setr_epi32(2 * k, 2 * k, 2 * k, 2 * k, 2 * k, 2 * k, 2 * k, 2 * k, 2 * k + 1,
                                               2 * k + 1, 2 * k + 1, 2 * k + 1, 2 * k + 1, 2 * k + 1, 2 * k + 1,
                                               2 * k + 1);
      acc = Q8PairQDot(blk + 2 * k * kQ8_0BlockBytes, xv + 64 * (p + k), _mm512_permutexvar_ps(spread, scales), acc);
    }
  }
  for (; p < full_pairs; ++p) {
    const uint8_t* blk = row + 2 * p * kQ8_0BlockBytes;
    acc = Q8PairQDot(blk, xv + 64 * p, PairScale(blk, d + 2 * p), acc);
  }
  __m256 acc0 = _mm512_castps512_ps256(acc);
  const __m256 acc1 = _mm512_extractf32x8_ps(acc, 1);
  if (nb % 2 != 0) {  // the last (even) block joins acc0, as in the AVX2 kernel
    const uint8_t* blk = row + (nb - 1) * kQ8_0BlockBytes;
    const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 2));
    const __m256i zero = _mm256_setzero_si256();
    const __m256i biased = _mm256_dpbusd_epi32(zero, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xv + 64 * full_pairs)), w);
    const __m256i bias = _mm256_dpbusd_epi32(zero, _mm256_set1_epi8(static_cast<char>(0x80)), w);
    acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(biased, bias)), _mm256_set1_ps(Half(blk) * d[nb - 1]),
                           acc0);
  }
  return Hsum(_mm256_add_ps(acc0, acc1));
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

#endif  // STEPPROOF_X86

// MatMul prefetches the page this far ahead of each row.
constexpr uintptr_t kPrefetchAhead = 4096;

}  // namespace

int64_t Q8_0VnniActivationBytes(int64_t n) {
  const int64_t nb = n / 32;
  return (nb + 1) / 2 * 64 + (nb + 15) / 16 * 16 * 4;
}

void PrepareQ8_0VnniActivations(const uint8_t* xq, int64_t n, uint8_t* out) {
  const int64_t nb = n / 32;
  const int64_t pairs = (nb + 1) / 2;
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* a = xq + b * kActivationBlockBytes;
    const int8_t* q = ActQ(a);
    for (int i = 0; i < 32; ++i) out[b * 32 + i] = static_cast<uint8_t>(q[i] + 128);
    std::memcpy(out + pairs * 64 + 4 * b, a, 4);
  }
  // Zero padding: the values of a missing last block and the scales after nb.
  std::memset(out + nb * 32, 0, static_cast<size_t>((pairs * 2 - nb) * 32));
  std::memset(out + pairs * 64 + 4 * nb, 0, static_cast<size_t>(Q8_0VnniActivationBytes(n) - pairs * 64 - 4 * nb));
}

float QDotQ8_0Avx512Vnni(const uint8_t* row, const uint8_t* xv, int64_t n) {
#ifdef STEPPROOF_X86
  return QDotQ8_0Vnni(row, xv, n);
#else
  (void)row;
  (void)xv;
  (void)n;
  return 0.0f;
#endif
}

bool CpuSupportsAvx512Vnni() {
#ifdef STEPPROOF_X86
  static const bool supported = [] {
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx) || (ecx & bit_OSXSAVE) == 0) return false;
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return false;
    const bool isa = (ebx & bit_AVX512F) && (ebx & bit_AVX512BW) && (ebx & bit_AVX512VL) && (ecx & bit_AVX512VNNI);
    if (!isa) return false;
    // The OS saves the AVX-512 state: XCR0 bits 1, 2 (SSE, AVX) and 5-7.
    unsigned lo = 0, hi = 0;
    __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (lo & 0xE6) == 0xE6 && CpuSupportsAvx2Fma();
  }();
  return supported;
#else
  return false;
#endif
}

namespace {
std::atomic<bool> avx512_allowed{true};
std::atomic<bool> guided_chunks{true};
}  // namespace

void SetAvx512KernelsAllowed(bool allowed) { avx512_allowed.store(allowed, std::memory_order_relaxed); }

void SetGuidedMatMulChunks(bool guided) { guided_chunks.store(guided, std::memory_order_relaxed); }

bool Avx512KernelsEnabled() { return avx512_allowed.load(std::memory_order_relaxed) && CpuSupportsAvx512Vnni(); }

void QuantizeActivations(const float* x, int64_t n, uint8_t* out) {
  for (int64_t b = 0; b < n / 32; ++b) {
    const float* xb = x + b * 32;
    uint8_t* blk = out + b * kActivationBlockBytes;
    float amax = 0.0f;
    for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(xb[i]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    int32_t sum = 0;
    int8_t* q = reinterpret_cast<int8_t*>(blk + 8);
    for (int i = 0; i < 32; ++i) {
      q[i] = static_cast<int8_t>(std::lrintf(xb[i] * id));
      sum += q[i];
    }
    std::memcpy(blk, &d, 4);
    std::memcpy(blk + 4, &sum, 4);
  }
}

QuantDotFn SelectQuantDot(TensorType type, bool use_avx2) {
#ifdef STEPPROOF_X86
  if (use_avx2) {
    if (type == TensorType::kQ8_0) return &QDotQ8_0Avx2;
    if (type == TensorType::kQ4_K) return &QDotQ4_KAvx2;
    if (type == TensorType::kQ6_K) return &QDotQ6_KAvx2;
  }
#else
  (void)use_avx2;
#endif
  if (type == TensorType::kQ8_0) return &QDotQ8_0;
  if (type == TensorType::kQ4_K) return &QDotQ4_K;
  if (type == TensorType::kQ6_K) return &QDotQ6_K;
  return nullptr;
}

bool CpuSupportsAvx2Fma() {
#ifdef STEPPROOF_X86
  __builtin_cpu_init();
  // F16C through CPUID leaf 1 (ECX bit 29): clang 14 has no "f16c" name for
  // __builtin_cpu_supports.
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  const bool f16c = __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & bit_F16C);
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c;
#else
  return false;
#endif
}

DotFn SelectDot(TensorType type, bool use_avx2) {
#ifdef STEPPROOF_X86
  if (use_avx2) {
    switch (type) {
      case TensorType::kF32: return &DotFloatAvx2<TensorType::kF32, 4>;
      case TensorType::kF16: return &DotFloatAvx2<TensorType::kF16, 2>;
      case TensorType::kBF16: return &DotFloatAvx2<TensorType::kBF16, 2>;
      case TensorType::kQ8_0: return &DotQ8_0Avx2;
      case TensorType::kQ4_K: return &DotQ4_KAvx2;
      case TensorType::kQ6_K: return &DotQ6_KAvx2;
    }
  }
#else
  (void)use_avx2;
#endif
  switch (type) {
    case TensorType::kF32: return &DotF32;
    case TensorType::kF16: return &DotF16;
    case TensorType::kBF16: return &DotBF16;
    case TensorType::kQ8_0: return &DotQ8_0;
    case TensorType::kQ4_K: return &DotQ4_K;
    case TensorType::kQ6_K: return &DotQ6_K;
  }
  return &DotF32;
}

void MatMul(ThreadPool& pool, bool use_avx2, absl::Span<const MatMulTask> tasks,
            const float* x, int64_t n_tokens, int64_t min_parallel_work) {
  if (tasks.empty() || n_tokens <= 0) return;
  const int64_t cols = tasks[0].w->cols;
  std::vector<int64_t> start(tasks.size() + 1, 0);
  std::vector<DotFn> dots(tasks.size());
  std::vector<QuantDotFn> qdots(tasks.size());
  // Several tokens: F32 and Q8_0 rows through the register-blocked kernels
  // of inference/cpu_gemm.h (bit-identical to the dots used below).
  const GemmIsa gemm = n_tokens > 1 && cols % 32 == 0 ? SelectGemmIsa(use_avx2) : GemmIsa::kNone;
  // Otherwise Q8_0 rows on AVX-512 VNNI where the CPU has it: the same bits
  // as the AVX2 dot, its own activation layout.
  const bool vnni = use_avx2 && cols % 32 == 0 && gemm == GemmIsa::kNone && Avx512KernelsEnabled();
  std::vector<bool> use_vnni(tasks.size(), false);
  bool any_quant = false, any_vnni = false;
  for (size_t i = 0; i < tasks.size(); ++i) {
    start[i + 1] = start[i] + tasks[i].w->rows;
    dots[i] = SelectDot(tasks[i].w->type, use_avx2);
    qdots[i] = cols % 32 == 0 ? SelectQuantDot(tasks[i].w->type, use_avx2) : nullptr;
    use_vnni[i] = vnni && tasks[i].w->type == TensorType::kQ8_0;
    if (use_vnni[i]) qdots[i] = &QDotQ8_0Avx512Vnni;
    any_quant |= qdots[i] != nullptr;
    any_vnni |= use_vnni[i];
  }
  // Quantised activations, once per token for all tasks.
  const int64_t xq_stride = cols / 32 * kActivationBlockBytes;
  std::vector<uint8_t> xq;
  if (any_quant) {
    xq.resize(static_cast<size_t>(n_tokens * xq_stride));
    for (int64_t t = 0; t < n_tokens; ++t) QuantizeActivationsFast(gemm, x + t * cols, cols, xq.data() + t * xq_stride);
  }
  std::vector<uint8_t> xa;
  int64_t xa_stride = 0;
  bool any_gemm_q8 = false;
  for (size_t i = 0; gemm != GemmIsa::kNone && i < tasks.size(); ++i) {
    any_gemm_q8 |= tasks[i].w->type == TensorType::kQ8_0;
  }
  if (any_gemm_q8) {
    xa_stride = GemmQ8_0ActivationBytes(gemm, cols);
    xa.resize(static_cast<size_t>(n_tokens * xa_stride));
    for (int64_t t = 0; t < n_tokens; ++t) {
      PrepareGemmQ8_0Activations(gemm, xq.data() + t * xq_stride, cols, xa.data() + t * xa_stride);
    }
  }
  // 64-byte aligned (a multiple of 64 per token): the kernel's 512-bit loads
  // of it must not cross cache lines (unaligned, it ran ~1/3 slower).
  const int64_t xv_stride = any_vnni ? Q8_0VnniActivationBytes(cols) : 0;
  std::unique_ptr<uint8_t[]> xv_buf(any_vnni ? new uint8_t[static_cast<size_t>(n_tokens * xv_stride + 63)] : nullptr);
  uint8_t* const xv = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(xv_buf.get()) + 63) & ~uintptr_t{63});
  for (int64_t t = 0; any_vnni && t < n_tokens; ++t) {
    PrepareQ8_0VnniActivations(xq.data() + t * xq_stride, cols, xv + t * xv_stride);
  }
  const int64_t total = start.back();
  auto work = [&](int64_t begin, int64_t end) {
    size_t t = 0;
    while (start[t + 1] <= begin) ++t;
    if (gemm != GemmIsa::kNone) {
      for (int64_t r = begin; r < end;) {
        while (start[t + 1] <= r) ++t;
        const WeightMatrix& w = *tasks[t].w;
        const int64_t local = r - start[t];
        const int64_t n = std::min(end, start[t + 1]) - r;
        if (w.type == TensorType::kF32) {
          GemmF32(gemm, reinterpret_cast<const float*>(w.data + local * w.row_bytes), w.row_bytes / 4, n, cols, x,
                  cols, n_tokens, tasks[t].y + local, w.rows);
        } else if (w.type == TensorType::kQ8_0) {
          GemmQ8_0(gemm, w.data + local * w.row_bytes, w.row_bytes, n, cols, xa.data(), xa_stride, n_tokens,
                   tasks[t].y + local, w.rows);
        } else {
          for (int64_t i = local; i < local + n; ++i) {
            const uint8_t* row = w.data + i * w.row_bytes;
            float* y = tasks[t].y + i;
            for (int64_t tok = 0; tok < n_tokens; ++tok) {
              y[tok * w.rows] = qdots[t] != nullptr ? qdots[t](row, xq.data() + tok * xq_stride, cols)
                                                    : dots[t](row, x + tok * cols, cols);
            }
          }
        }
        r += n;
      }
      return;
    }
    for (int64_t r = begin; r < end; ++r) {
      while (start[t + 1] <= r) ++t;
      const WeightMatrix& w = *tasks[t].w;
      const int64_t local = r - start[t];
      const uint8_t* row = w.data + local * w.row_bytes;
      float* y = tasks[t].y + local;
      // The first line of each 4 KiB page that starts 4-(4 + row) KiB ahead:
      // the hardware prefetchers stop at page boundaries, and the kernels'
      // out-of-order window does not reach into the next page on its own
      // (measured: ~0.8 of a plain summing loop's streaming rate without,
      // ~0.9-1.0 with; per-block prefetches and farther distances did worse).
      const uintptr_t matrix_end = reinterpret_cast<uintptr_t>(w.data + w.rows * w.row_bytes);
      const uintptr_t ahead = reinterpret_cast<uintptr_t>(row) + kPrefetchAhead;
      for (uintptr_t page = (ahead + 4095) & ~uintptr_t{4095}; page < ahead + w.row_bytes && page < matrix_end;
           page += 4096) {
        __builtin_prefetch(reinterpret_cast<const void*>(page), 0, 3);
      }
      if (use_vnni[t]) {
        for (int64_t tok = 0; tok < n_tokens; ++tok) y[tok * w.rows] = qdots[t](row, xv + tok * xv_stride, cols);
      } else if (qdots[t] != nullptr) {
        for (int64_t tok = 0; tok < n_tokens; ++tok) y[tok * w.rows] = qdots[t](row, xq.data() + tok * xq_stride, cols);
      } else {
        for (int64_t tok = 0; tok < n_tokens; ++tok) y[tok * w.rows] = dots[t](row, x + tok * cols, cols);
      }
    }
  };
  // Small products are not worth waking the workers for. Otherwise about 8
  // chunks per thread: long sequential streams for the prefetchers, and
  // enough chunks to rebalance around a descheduled thread.
  if (total * cols * n_tokens < min_parallel_work) {
    work(0, total);
    return;
  }
  if (gemm == GemmIsa::kNone && pool.size() > 1 && guided_chunks.load(std::memory_order_relaxed)) {
    // One token (memory-bound): chunks taken in order that shrink from
    // 1/(2 x threads) of the rows left to ~16 KiB of rows, so that no thread
    // waits long for another's last chunk (equal chunks of 1/16 left one
    // thread idle for ~half a chunk at the end of every product: ~3%).
    const int64_t row_bytes = std::max<int64_t>(1, tasks[0].w->row_bytes);
    const int64_t min_rows = std::max<int64_t>(1, (int64_t{16} << 10) / row_bytes);
    std::vector<int64_t> bounds = {0};
    for (int64_t r = 0; r < total;) {
      r += std::min(total - r, std::max(min_rows, (total - r) / (2 * int64_t{pool.size()})));
      bounds.push_back(r);
    }
    pool.ParallelFor(static_cast<int64_t>(bounds.size()) - 1, 1,
                     [&](int64_t b, int64_t e) { work(bounds[b], bounds[e]); });
    return;
  }
  const int64_t grain = std::max<int64_t>(16, total / (int64_t{pool.size()} * 8));
  pool.ParallelFor(total, grain, work);
}

}  // namespace stepproof::inference
