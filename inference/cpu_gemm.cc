#include "inference/cpu_gemm.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <utility>

#include "inference/cpu_kernels.h"
#include "inference/tensor_type.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#define STEPPROOF_GEMM_X86 1
// GCC 12's AVX-512 headers start some intrinsics from an "undefined" vector
// that -Wuninitialized then reports (a false positive in the headers).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#define GEMM_AVX2 __attribute__((target("avx2,fma,f16c")))
#define GEMM_AVX512 __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")))
#endif

// This file is compiled with -ffp-contract=off (inference/CMakeLists.txt): a
// multiply is fused into an add only where an fma intrinsic says so, exactly
// where the single-token dots fuse.

namespace stepproof::inference {
namespace {

std::atomic<int> max_isa{static_cast<int>(GemmIsa::kAvx512)};

constexpr int64_t kVnniPairBytes = 192;  // see Q8TileVnni

// Whether the Q8_0 kernel of `isa` is the VNNI one (it needs an even number
// of blocks; the AVX2 one takes any).
bool VnniLayout(GemmIsa isa, int64_t cols) { return isa == GemmIsa::kAvx512 && (cols / 32) % 2 == 0; }

#ifdef STEPPROOF_GEMM_X86

bool CpuHasAvx2() {
  __builtin_cpu_init();
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  const bool f16c = __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & bit_F16C);
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c;
}

bool CpuHasAvx512Vnni() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx) || (ecx & bit_OSXSAVE) == 0) return false;
  if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return false;
  if (!((ebx & bit_AVX512F) && (ebx & bit_AVX512BW) && (ebx & bit_AVX512VL) && (ebx & bit_AVX512DQ) &&
        (ecx & bit_AVX512VNNI))) {
    return false;
  }
  // The OS saves the opmask and ZMM state (XCR0 bits 1, 2, 5, 6, 7).
  unsigned lo = 0, hi = 0;
  __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (lo & 0xE6) == 0xE6;
}

// cpu_kernels.cc's horizontal sum Hsum(v) = ((v0 + v4) + (v1 + v5)) +
// ((v2 + v6) + (v3 + v7)), of 8 vectors at once, with the same tree and so
// the same bits: [Hsum(s0), ..., Hsum(s7)]. Level 1 pairs lane i with i + 4 (two 128-bit
// halves added), levels 2 and 3 add adjacent lanes (hadd); float addition
// is commutative, so only the tree matters.
GEMM_AVX2 inline __m256 Hsum8(const __m256* s) {
  __m256 l[4];
  for (int i = 0; i < 4; ++i) {
    l[i] = _mm256_add_ps(_mm256_permute2f128_ps(s[2 * i], s[2 * i + 1], 0x20),
                         _mm256_permute2f128_ps(s[2 * i], s[2 * i + 1], 0x31));
  }
  // l[i] = [lo(s_2i) | lo(s_2i+1)], lo(v)_j = v_j + v_j+4.
  const __m256 h0 = _mm256_hadd_ps(l[0], l[1]);  // [m0 m0 m2 m2 | m1 m1 m3 m3]
  const __m256 h1 = _mm256_hadd_ps(l[2], l[3]);
  const __m256 r = _mm256_hadd_ps(h0, h1);       // [r0 r2 r4 r6 | r1 r3 r5 r7]
  return _mm256_permutevar8x32_ps(r, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

// y[t * ys + r] = Hsum(s[r][t]) for the whole tile, 8 sums at a time.
template <int R, int T>
GEMM_AVX2 inline void StoreSums(const __m256 (&s)[R][T], float* y, int64_t ys) {
  constexpr int kN = R * T;
  constexpr int kGroups = (kN + 7) / 8;
  alignas(32) float out[kGroups * 8];
#pragma GCC unroll 4
  for (int g = 0; g < kGroups; ++g) {
    __m256 v[8];
#pragma GCC unroll 8
    for (int j = 0; j < 8; ++j) {
      const int k = 8 * g + j;
      v[j] = k < kN ? s[k % R][k / R] : _mm256_setzero_ps();
    }
    _mm256_store_ps(out + 8 * g, Hsum8(v));
  }
  for (int t = 0; t < T; ++t) {
    for (int r = 0; r < R; ++r) y[t * ys + r] = out[t * R + r];
  }
}

// The upper 8 lanes.
GEMM_AVX512 inline __m256 Hi256(__m512 v) { return _mm512_extractf32x8_ps(v, 1); }

inline uint16_t LoadU16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

inline float ActD(const uint8_t* blk) {
  float d;
  std::memcpy(&d, blk, 4);
  return d;
}

// ---- F32 -------------------------------------------------------------------
//
// The AVX2 dot (DotFloatAvx2<kF32>) keeps 4 accumulators: a_k lane j sums
// w[i] * x[i] for i = 32 c + 8 k + j over chunks c, each by one fma, then
// returns Hsum((a0 + a1) + (a2 + a3)). A tile computes the same a_k for R rows
// x T tokens, one k (AVX2) or one pair of k (AVX-512: lanes 0-7 = a_{2h},
// lanes 8-15 = a_{2h+1}) per pass over the row, so the tile's accumulators
// fit in the registers.

template <int R, int T>
GEMM_AVX2 void F32TileAvx2(const float* w, int64_t ws, int64_t cols, const float* x, int64_t xs, float* y,
                           int64_t ys) {
  __m256 part[4][R][T];
#pragma GCC unroll 1
  for (int k = 0; k < 4; ++k) {
    __m256 acc[R][T];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
#pragma GCC unroll 8
      for (int t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_ps();
    }
    for (int64_t i = 8 * k; i < cols; i += 32) {
      __m256 wv[R];
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) wv[r] = _mm256_loadu_ps(w + r * ws + i);
#pragma GCC unroll 8
      for (int t = 0; t < T; ++t) {
        const __m256 xv = _mm256_loadu_ps(x + t * xs + i);
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) acc[r][t] = _mm256_fmadd_ps(wv[r], xv, acc[r][t]);
      }
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
#pragma GCC unroll 8
      for (int t = 0; t < T; ++t) part[k][r][t] = acc[r][t];
    }
  }
  __m256 sums[R][T];
  for (int r = 0; r < R; ++r) {
    for (int t = 0; t < T; ++t) {
      sums[r][t] = _mm256_add_ps(_mm256_add_ps(part[0][r][t], part[1][r][t]),
                                 _mm256_add_ps(part[2][r][t], part[3][r][t]));
    }
  }
  StoreSums<R, T>(sums, y, ys);
}

template <int R, int T>
GEMM_AVX512 void F32TileAvx512(const float* w, int64_t ws, int64_t cols, const float* x, int64_t xs, float* y,
                               int64_t ys) {
  __m256 sums[R][T];  // a0 + a1 after pass 0, then (a0 + a1) + (a2 + a3)
#pragma GCC unroll 1
  for (int h = 0; h < 2; ++h) {
    __m512 acc[R][T];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
#pragma GCC unroll 8
      for (int t = 0; t < T; ++t) acc[r][t] = _mm512_setzero_ps();
    }
    for (int64_t i = 16 * h; i < cols; i += 32) {
      __m512 wv[R];
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) wv[r] = _mm512_loadu_ps(w + r * ws + i);
#pragma GCC unroll 8
      for (int t = 0; t < T; ++t) {
        const __m512 xv = _mm512_loadu_ps(x + t * xs + i);
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) acc[r][t] = _mm512_fmadd_ps(wv[r], xv, acc[r][t]);
      }
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
#pragma GCC unroll 8
      for (int t = 0; t < T; ++t) {
        const __m256 pair = _mm256_add_ps(_mm512_castps512_ps256(acc[r][t]), Hi256(acc[r][t]));
        sums[r][t] = h == 0 ? pair : _mm256_add_ps(sums[r][t], pair);
      }
    }
  }
  StoreSums<R, T>(sums, y, ys);
}

// ---- Q8_0 ------------------------------------------------------------------
//
// The AVX2 dot (QDotQ8_0Avx2) forms, per block b, the 8 exact int32 lane sums
// p (lane l: values 4l..4l+3) and adds fma(float(p), fp32(d_w) * d_x, acc)
// into acc0 (even b) or acc1 (odd b); it returns Hsum(acc0 + acc1).

template <int R, int T>
GEMM_AVX2 void Q8TileAvx2(const uint8_t* w, int64_t rb, int64_t nb, const uint8_t* xa, int64_t xs, float* y,
                          int64_t ys) {
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 part[2][R][T];
#pragma GCC unroll 1
  for (int e = 0; e < 2; ++e) {
    __m256 acc[R][T];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
#pragma GCC unroll 8
      for (int t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_ps();
    }
    for (int64_t b = e; b < nb; b += 2) {
      __m256i wv[R], wa[R];
      float wd[R];
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        const uint8_t* blk = w + r * rb + b * kQ8_0BlockBytes;
        wv[r] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 2));
        wa[r] = _mm256_sign_epi8(wv[r], wv[r]);
        wd[r] = _cvtsh_ss(LoadU16(blk));
      }
#pragma GCC unroll 8
      for (int t = 0; t < T; ++t) {
        const uint8_t* a = xa + t * xs + b * kActivationBlockBytes;
        const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + 8));
        const float xd = ActD(a);
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) {
          const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(wa[r], _mm256_sign_epi8(xv, wv[r])), ones);
          acc[r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(wd[r] * xd), acc[r][t]);
        }
      }
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
#pragma GCC unroll 8
      for (int t = 0; t < T; ++t) part[e][r][t] = acc[r][t];
    }
  }
  __m256 sums[R][T];
  for (int r = 0; r < R; ++r) {
    for (int t = 0; t < T; ++t) sums[r][t] = _mm256_add_ps(part[0][r][t], part[1][r][t]);
  }
  StoreSums<R, T>(sums, y, ys);
}

// AVX-512 VNNI: two blocks per 512-bit register (lanes 0-7 = the even block,
// i.e. acc0's lanes; lanes 8-15 = the odd one, acc1's). vpdpbusd multiplies
// unsigned by signed bytes, so the weights are flipped to w + 128 and each
// lane starts from -128 * (the sum of its 4 activation values): the lane then
// holds exactly sum(w * x), the same integer as maddubs/madd. Needs an even
// block count. Activation layout per pair of blocks: 64 int8 values, 16
// int32 corrections, 16 float scales (8 x d of each block): 192 bytes.
template <int R, int T>
GEMM_AVX512 void Q8TileVnni(const uint8_t* w, int64_t rb, int64_t np, const uint8_t* xa, int64_t xs, float* y,
                            int64_t ys) {
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  __m512 acc[R][T];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t) acc[r][t] = _mm512_setzero_ps();
  }
  for (int64_t j = 0; j < np; ++j) {
    __m512i u[R];
    __m512 ws[R];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const uint8_t* blk = w + r * rb + 2 * j * kQ8_0BlockBytes;
      const __m256i w0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 2));
      const __m256i w1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + kQ8_0BlockBytes + 2));
      u[r] = _mm512_xor_si512(_mm512_inserti64x4(_mm512_castsi256_si512(w0), w1, 1), flip);
      const __m256i h = _mm256_set_m128i(_mm_set1_epi16(static_cast<short>(LoadU16(blk + kQ8_0BlockBytes))),
                                         _mm_set1_epi16(static_cast<short>(LoadU16(blk))));
      ws[r] = _mm512_cvtph_ps(h);
    }
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t) {
      const uint8_t* a = xa + t * xs + j * kVnniPairBytes;
      const __m512i xv = _mm512_loadu_si512(a);
      const __m512i corr = _mm512_loadu_si512(a + 64);
      const __m512 xd = _mm512_loadu_ps(reinterpret_cast<const float*>(a + 128));
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        const __m512i p = _mm512_dpbusd_epi32(corr, u[r], xv);
        acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), _mm512_mul_ps(ws[r], xd), acc[r][t]);
      }
    }
  }
  __m256 sums[R][T];
  for (int r = 0; r < R; ++r) {
    for (int t = 0; t < T; ++t) sums[r][t] = _mm256_add_ps(_mm512_castps512_ps256(acc[r][t]), Hi256(acc[r][t]));
  }
  StoreSums<R, T>(sums, y, ys);
}

// 32 output lanes at a time, products then sums (no fma: -ffp-contract=off).
GEMM_AVX2 void WeightedRowSumAvx2(const float* w, int64_t n, const float* v, int64_t v_stride, int64_t d,
                                  float* out) {
  int64_t i = 0;
  for (; i + 32 <= d; i += 32) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (int64_t p = 0; p < n; ++p) {
      const __m256 wp = _mm256_set1_ps(w[p]);
      const float* vp = v + p * v_stride + i;
      a0 = _mm256_add_ps(a0, _mm256_mul_ps(wp, _mm256_loadu_ps(vp)));
      a1 = _mm256_add_ps(a1, _mm256_mul_ps(wp, _mm256_loadu_ps(vp + 8)));
      a2 = _mm256_add_ps(a2, _mm256_mul_ps(wp, _mm256_loadu_ps(vp + 16)));
      a3 = _mm256_add_ps(a3, _mm256_mul_ps(wp, _mm256_loadu_ps(vp + 24)));
    }
    _mm256_storeu_ps(out + i, a0);
    _mm256_storeu_ps(out + i + 8, a1);
    _mm256_storeu_ps(out + i + 16, a2);
    _mm256_storeu_ps(out + i + 24, a3);
  }
  for (; i + 8 <= d; i += 8) {
    __m256 a0 = _mm256_setzero_ps();
    for (int64_t p = 0; p < n; ++p) {
      a0 = _mm256_add_ps(a0, _mm256_mul_ps(_mm256_set1_ps(w[p]), _mm256_loadu_ps(v + p * v_stride + i)));
    }
    _mm256_storeu_ps(out + i, a0);
  }
  for (; i < d; ++i) {
    float s = 0.0f;
    for (int64_t p = 0; p < n; ++p) s += w[p] * v[p * v_stride + i];
    out[i] = s;
  }
}

// One block of QuantizeActivations: amax by max (order-free), d = amax / 127,
// q = round-to-nearest-even(x * (1 / d)) (cvtps_epi32 under the default
// rounding mode, as lrintf), sum of q. Returns false (nothing written) for a
// block with a NaN or an infinity, which the scalar code handles.
GEMM_AVX2 bool QuantizeBlockAvx2(const float* xb, uint8_t* blk) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  __m256 v[4];
  __m256 mx = _mm256_setzero_ps(), unord = _mm256_setzero_ps();
  for (int k = 0; k < 4; ++k) {
    v[k] = _mm256_loadu_ps(xb + 8 * k);
    mx = _mm256_max_ps(mx, _mm256_andnot_ps(sign, v[k]));
    unord = _mm256_or_ps(unord, _mm256_cmp_ps(v[k], v[k], _CMP_UNORD_Q));
  }
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps(mx, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  const float amax = _mm_cvtss_f32(m);
  if (_mm256_movemask_ps(unord) != 0 || !(amax <= 3.4028235e38f)) return false;
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  const __m256 idv = _mm256_set1_ps(id);
  __m256i q[4];
  for (int k = 0; k < 4; ++k) q[k] = _mm256_cvtps_epi32(_mm256_mul_ps(v[k], idv));
  // |q| <= 127: the saturating packs are exact; the permute undoes their
  // lane interleaving.
  const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
  const __m256i bytes = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
  const __m256i s8 = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
  __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s8), _mm256_extracti128_si256(s8, 1));
  s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4E));
  s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xB1));
  const int32_t sum = _mm_cvtsi128_si32(s4);
  std::memcpy(blk, &d, 4);
  std::memcpy(blk + 4, &sum, 4);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(blk + 8), bytes);
  return true;
}

// Tables of tile kernels by (rows, tokens), 1-based.
using F32Fn = void (*)(const float*, int64_t, int64_t, const float*, int64_t, float*, int64_t);
using Q8Fn = void (*)(const uint8_t*, int64_t, int64_t, const uint8_t*, int64_t, float*, int64_t);

template <int MaxR, int MaxT, typename Fn>
struct TileTable {
  Fn fn[MaxR + 1][MaxT + 1] = {};
};

// Fills table.fn[r][t] for r <= R, t <= T with Pick::Get<r, t>().
template <typename Pick, int R, int T, int MaxT, typename Table>
void FillTable(Table& table) {
  table.fn[R][T] = Pick::template Get<R, T>();
  if constexpr (T > 1) {
    FillTable<Pick, R, T - 1, MaxT>(table);
  } else if constexpr (R > 1) {
    FillTable<Pick, R - 1, MaxT, MaxT>(table);
  }
}

struct F32Avx2Pick {
  template <int R, int T>
  static F32Fn Get() { return &F32TileAvx2<R, T>; }
};
struct F32Avx512Pick {
  template <int R, int T>
  static F32Fn Get() { return &F32TileAvx512<R, T>; }
};
struct Q8Avx2Pick {
  template <int R, int T>
  static Q8Fn Get() { return &Q8TileAvx2<R, T>; }
};
struct Q8VnniPick {
  template <int R, int T>
  static Q8Fn Get() { return &Q8TileVnni<R, T>; }
};

template <typename Pick, typename Fn, int MaxR, int MaxT>
TileTable<MaxR, MaxT, Fn> MakeTable() {
  TileTable<MaxR, MaxT, Fn> t;
  FillTable<Pick, MaxR, MaxT, MaxT>(t);
  return t;
}

// Tile shapes: accumulators + weight vectors stay within the 16 (AVX2) or 32
// (AVX-512) vector registers.
constexpr int kF32R2 = 3, kF32T2 = 4;    // AVX2: 12 accumulators
constexpr int kF32R5 = 4, kF32T5 = 4;    // AVX-512: 16
constexpr int kQ8R2 = 2, kQ8T2 = 4;      // AVX2: 8 accumulators, 4 weight vectors
constexpr int kQ8R5 = 4, kQ8T5 = 4;      // VNNI: 16 accumulators, 8 weight vectors

// Row tiles outside, token tiles inside: a tile's weight rows stay in L1
// while every token passes over them.
template <int MaxR, int MaxT, typename Fn, typename Call>
void RunTiles(const TileTable<MaxR, MaxT, Fn>& table, int64_t rows, int64_t n_tokens, const Call& call) {
  for (int64_t r0 = 0; r0 < rows; r0 += MaxR) {
    const int nr = static_cast<int>(std::min<int64_t>(MaxR, rows - r0));
    for (int64_t t0 = 0; t0 < n_tokens; t0 += MaxT) {
      const int nt = static_cast<int>(std::min<int64_t>(MaxT, n_tokens - t0));
      call(table.fn[nr][nt], r0, t0);
    }
  }
}

#endif  // STEPPROOF_GEMM_X86

}  // namespace

GemmIsa SelectGemmIsa(bool use_avx2) {
#ifdef STEPPROOF_GEMM_X86
  static const GemmIsa best = !CpuHasAvx2() ? GemmIsa::kNone : (CpuHasAvx512Vnni() ? GemmIsa::kAvx512 : GemmIsa::kAvx2);
  if (!use_avx2) return GemmIsa::kNone;
  return static_cast<GemmIsa>(std::min(static_cast<int>(best), max_isa.load(std::memory_order_relaxed)));
#else
  (void)use_avx2;
  return GemmIsa::kNone;
#endif
}

void SetMaxGemmIsa(GemmIsa isa) { max_isa.store(static_cast<int>(isa), std::memory_order_relaxed); }

const char* GemmIsaName(GemmIsa isa) {
  switch (isa) {
    case GemmIsa::kNone: return "none";
    case GemmIsa::kAvx2: return "avx2";
    case GemmIsa::kAvx512: return "avx512-vnni";
  }
  return "?";
}

void GemmF32(GemmIsa isa, const float* w, int64_t w_stride, int64_t rows, int64_t cols, const float* x,
             int64_t x_stride, int64_t n_tokens, float* y, int64_t y_stride) {
#ifdef STEPPROOF_GEMM_X86
  auto call = [&](F32Fn fn, int64_t r0, int64_t t0) {
    fn(w + r0 * w_stride, w_stride, cols, x + t0 * x_stride, x_stride, y + t0 * y_stride + r0, y_stride);
  };
  if (isa == GemmIsa::kAvx512) {
    static const auto table = MakeTable<F32Avx512Pick, F32Fn, kF32R5, kF32T5>();
    RunTiles(table, rows, n_tokens, call);
  } else {
    static const auto table = MakeTable<F32Avx2Pick, F32Fn, kF32R2, kF32T2>();
    RunTiles(table, rows, n_tokens, call);
  }
#else
  (void)isa, (void)w, (void)w_stride, (void)rows, (void)cols, (void)x, (void)x_stride, (void)n_tokens, (void)y,
      (void)y_stride;
#endif
}

void QuantizeActivationsFast(GemmIsa isa, const float* x, int64_t n, uint8_t* out) {
#ifdef STEPPROOF_GEMM_X86
  if (isa != GemmIsa::kNone) {
    for (int64_t b = 0; b < n / 32; ++b) {
      if (!QuantizeBlockAvx2(x + 32 * b, out + b * kActivationBlockBytes)) {
        QuantizeActivations(x + 32 * b, 32, out + b * kActivationBlockBytes);
      }
    }
    return;
  }
#else
  (void)isa;
#endif
  QuantizeActivations(x, n, out);
}

void WeightedRowSum(GemmIsa isa, const float* w, int64_t n, const float* v, int64_t v_stride, int64_t d,
                    float* out) {
#ifdef STEPPROOF_GEMM_X86
  if (isa != GemmIsa::kNone) {
    WeightedRowSumAvx2(w, n, v, v_stride, d, out);
    return;
  }
#else
  (void)isa;
#endif
  std::fill(out, out + d, 0.0f);
  for (int64_t p = 0; p < n; ++p) {
    for (int64_t i = 0; i < d; ++i) out[i] += w[p] * v[p * v_stride + i];
  }
}

int64_t GemmQ8_0ActivationBytes(GemmIsa isa, int64_t cols) {
  return VnniLayout(isa, cols) ? cols / 64 * kVnniPairBytes : cols / 32 * kActivationBlockBytes;
}

void PrepareGemmQ8_0Activations(GemmIsa isa, const uint8_t* xq, int64_t cols, uint8_t* out) {
  const int64_t nb = cols / 32;
  if (!VnniLayout(isa, cols)) {
    std::memcpy(out, xq, static_cast<size_t>(nb * kActivationBlockBytes));
    return;
  }
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* a = xq + b * kActivationBlockBytes;
    uint8_t* pair = out + (b / 2) * kVnniPairBytes;
    const int half = static_cast<int>(b % 2);
    std::memcpy(pair + 32 * half, a + 8, 32);
    const int8_t* q = reinterpret_cast<const int8_t*>(a + 8);
    for (int l = 0; l < 8; ++l) {
      const int32_t corr = -128 * (q[4 * l] + q[4 * l + 1] + q[4 * l + 2] + q[4 * l + 3]);
      std::memcpy(pair + 64 + 32 * half + 4 * l, &corr, 4);
      std::memcpy(pair + 128 + 32 * half + 4 * l, a, 4);  // the block's d
    }
  }
}

void GemmQ8_0(GemmIsa isa, const uint8_t* w, int64_t row_bytes, int64_t rows, int64_t cols, const uint8_t* xa,
              int64_t xa_stride, int64_t n_tokens, float* y, int64_t y_stride) {
#ifdef STEPPROOF_GEMM_X86
  auto call = [&](Q8Fn fn, int64_t r0, int64_t t0) {
    fn(w + r0 * row_bytes, row_bytes, VnniLayout(isa, cols) ? cols / 64 : cols / 32, xa + t0 * xa_stride,
       xa_stride, y + t0 * y_stride + r0, y_stride);
  };
  if (VnniLayout(isa, cols)) {
    static const auto table = MakeTable<Q8VnniPick, Q8Fn, kQ8R5, kQ8T5>();
    RunTiles(table, rows, n_tokens, call);
  } else {
    static const auto table = MakeTable<Q8Avx2Pick, Q8Fn, kQ8R2, kQ8T2>();
    RunTiles(table, rows, n_tokens, call);
  }
#else
  (void)isa, (void)w, (void)row_bytes, (void)rows, (void)cols, (void)xa, (void)xa_stride, (void)n_tokens, (void)y,
      (void)y_stride;
#endif
}

}  // namespace stepproof::inference
