// Multi-token ("GEMM") kernels for the prefill and for replay: y = x w^T for
// a block of weight rows and a block of tokens at once, register-blocked
// (a tile of several rows x several tokens accumulates in registers, each
// weight vector loaded once per tile and each activation vector once per
// row group), on AVX2 and on AVX-512 (F + VNNI for Q8_0), chosen by CPUID.
//
// Reproducibility: every output is BIT-IDENTICAL to the single-token dot of
// the same kernel path (SelectDot(kF32, true) / SelectQuantDot(kQ8_0, true)
// in inference/cpu_kernels.h): each output keeps the dot's accumulators
// (lane j of accumulator k sums the same products in the same order, with
// the same fused or separate roundings) and the same final horizontal sum.
// Only the loop nest around them changes. So a prefill gives exactly the
// hidden states and logits that token-by-token decoding gives, for any
// chunking and any thread count, and replay's same-engine rules (exact
// fingerprints, docs/REPLAY.md) hold. tests/inference/cpu_gemm_test.cc
// checks equality bit for bit, and the distance to the portable reference.
//
// There is no portable GEMM: without AVX2 MatMul keeps its per-row dots.
//
// Thread-safety: pure functions.

#ifndef STEPPROOF_INFERENCE_CPU_GEMM_H_
#define STEPPROOF_INFERENCE_CPU_GEMM_H_

#include <cstdint>

namespace stepproof::inference {

enum class GemmIsa {
  kNone,    // no GEMM kernels (portable build or kernels)
  kAvx2,    // AVX2 + FMA + F16C
  kAvx512,  // AVX-512 F/BW/VL/DQ + VNNI, OS-enabled
};

// The best ISA for the AVX2 kernel path on this CPU (kNone when !use_avx2).
GemmIsa SelectGemmIsa(bool use_avx2);
// Process-wide cap for tests and benchmarks (default kAvx512): SelectGemmIsa
// never returns more than this.
void SetMaxGemmIsa(GemmIsa isa);
const char* GemmIsaName(GemmIsa isa);

// F32 rows: y[t * y_stride + r] = sum_i w[r * w_stride + i] * x[t * x_stride + i]
// for r < rows, t < n_tokens, i < cols. REQUIRES: isa != kNone, cols % 32 == 0.
void GemmF32(GemmIsa isa, const float* w, int64_t w_stride, int64_t rows, int64_t cols, const float* x,
             int64_t x_stride, int64_t n_tokens, float* y, int64_t y_stride);

// Q8_0 rows on quantised activations.
// Bytes per token of the activation layout the Q8_0 kernel of `isa` reads.
int64_t GemmQ8_0ActivationBytes(GemmIsa isa, int64_t cols);
// Converts one token's QuantizeActivations output (inference/cpu_kernels.h)
// to that layout (`out` has GemmQ8_0ActivationBytes bytes).
void PrepareGemmQ8_0Activations(GemmIsa isa, const uint8_t* xq, int64_t cols, uint8_t* out);
// y[t * y_stride + r] = row r (w + r * row_bytes) . token t (xa + t * xa_stride,
// PrepareGemmQ8_0Activations output). REQUIRES: isa != kNone, cols % 32 == 0.
void GemmQ8_0(GemmIsa isa, const uint8_t* w, int64_t row_bytes, int64_t rows, int64_t cols, const uint8_t* xa,
              int64_t xa_stride, int64_t n_tokens, float* y, int64_t y_stride);

// QuantizeActivations (inference/cpu_kernels.h), vectorised when isa !=
// kNone, with the same bytes (a block holding a NaN or an infinity takes the
// scalar code).
void QuantizeActivationsFast(GemmIsa isa, const float* x, int64_t n, uint8_t* out);

// The attention's weighted sum of value rows: out[i] = sum over p < n, in
// order, of w[p] * v[p * v_stride + i], for i < d, from out = 0, every
// product and every sum rounded separately (never fused). The same bits on
// every path (vectorised across i when isa != kNone), so decoding and
// prefill share it.
void WeightedRowSum(GemmIsa isa, const float* w, int64_t n, const float* v, int64_t v_stride, int64_t d, float* out);

}  // namespace stepproof::inference

#endif  // STEPPROOF_INFERENCE_CPU_GEMM_H_
