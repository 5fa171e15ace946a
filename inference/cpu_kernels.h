// CPU compute kernels of the engine: dot products of a stored weight row (in
// its GGUF type) with a float vector, and the matrix-times-activations product
// built on them.
//
// Quantised rows are consumed block by block (a Q8_0 block's 32 int8 values
// or a Q4_K super-block's nibbles are widened in registers and multiplied with
// the activations); whole matrices are never dequantised. There are two
// implementations of every dot product: portable C++ and AVX2/FMA/F16C
// (compiled with __attribute__((target)) so the build stays portable, chosen at
// run time when the CPU supports it); Q8_0 rows have a third, AVX-512 VNNI,
// bit-identical to the AVX2 one (below). Each has a fixed reduction order, so a
// row's result depends only on the row, the input and the chosen
// implementation -- never on the thread count or the batch size.
//
// Thread-safety: pure functions; MatMul uses the given pool.

#ifndef STEPPROOF_INFERENCE_CPU_KERNELS_H_
#define STEPPROOF_INFERENCE_CPU_KERNELS_H_

#include <cstdint>

#include "absl/types/span.h"
#include "inference/tensor_type.h"
#include "inference/thread_pool.h"

namespace stepproof::inference {

// Whether this CPU has AVX2, FMA and F16C (the fast path's requirements).
bool CpuSupportsAvx2Fma();

// sum_i row[i] * x[i] for a row of n values stored as `type`.
// REQUIRES: n % TypeBlockValues(type) == 0.
using DotFn = float (*)(const uint8_t* row, const float* x, int64_t n);
DotFn SelectDot(TensorType type, bool use_avx2);

// Activations quantised for the integer dot products of Q8_0 and Q4_K rows
// (as ggml does with its Q8 activation blocks): per 32 values one block of
// kActivationBlockBytes: float d, int32 sum of q, int8 q[32], where
// d = max|x| / 127 and q = round(x / d). The integer part of each block dot
// is exact; only the per-block scales are float.
inline constexpr int kActivationBlockBytes = 40;
// REQUIRES: n % 32 == 0; out has n / 32 * kActivationBlockBytes bytes.
void QuantizeActivations(const float* x, int64_t n, uint8_t* out);

// sum_i row[i] * x[i] for a Q8_0, Q4_K or Q6_K row and QuantizeActivations
// output.
using QuantDotFn = float (*)(const uint8_t* row, const uint8_t* xq, int64_t n);
// Returns nullptr for types without an integer path (F32, F16, BF16).
QuantDotFn SelectQuantDot(TensorType type, bool use_avx2);

// The AVX-512 VNNI path for Q8_0 rows (vpdpbusd on 512-bit registers, two
// blocks per instruction). Its results are
// bit-identical to the AVX2 path's (same int32 lane sums, same float
// operations in the same order), so MatMul uses it in place of the AVX2 Q8_0
// kernel wherever the CPU has it, for any number of tokens, without changing
// a single output bit. Whether this CPU and OS support AVX-512 F/BW/VL/VNNI
// (CPUID and XGETBV):
bool CpuSupportsAvx512Vnni();
// Process-wide switch (default on) so benchmarks and tests can compare the
// two paths in one run; MatMul takes the VNNI path when use_avx2 is set, the
// CPU supports it and this is on.
void SetAvx512KernelsAllowed(bool allowed);
bool Avx512KernelsEnabled();
// How MatMul splits one token's rows over the threads (no effect on the
// bits): guided (default: chunks that shrink from 1/(2 x threads) of what is
// left down to ~16 KiB of rows, so the threads finish together) or fixed
// (~8 equal chunks per thread). A process-wide switch for benchmarks.
void SetGuidedMatMulChunks(bool guided);
// Bytes of the VNNI kernel's activation layout for n values (n % 32 == 0):
// the quantised values plus 128 as uint8 (32 per block; zero-padded to an
// even block count), then the float scales d (padded to a multiple of 16). A
// multiple of 64.
int64_t Q8_0VnniActivationBytes(int64_t n);
// Rearranges QuantizeActivations output for the VNNI kernel. The kernel is
// fastest with `out` 64-byte aligned (its 512-bit loads then stay within one
// cache line).
void PrepareQ8_0VnniActivations(const uint8_t* xq, int64_t n, uint8_t* out);
// sum_i row[i] * x[i] for a Q8_0 row and PrepareQ8_0VnniActivations output;
// equal bit for bit to SelectQuantDot(kQ8_0, true) on the QuantizeActivations
// output. REQUIRES: CpuSupportsAvx512Vnni().
float QDotQ8_0Avx512Vnni(const uint8_t* row, const uint8_t* xv, int64_t n);

// A weight matrix view: `rows` rows of `cols` values each, stored row after
// row in `type` (GGUF ne[0] = cols, ne[1] = rows).
struct WeightMatrix {
  TensorType type = TensorType::kF32;
  const uint8_t* data = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;
  int64_t row_bytes = 0;
};

// One product in a MatMul batch: y (T, w.rows) = x (T, w.cols) * w^T.
struct MatMulTask {
  const WeightMatrix* w;
  float* y;
};

// Computes every task's product (Q8_0, Q4_K and Q6_K matrices through the
// integer path on quantised activations, the others on the floats) for `n_tokens` rows of x (x is (n_tokens,
// cols), row-major, shared by all tasks, which must have equal cols). The
// output rows of all tasks are split across the pool's threads as one range,
// so fusing q/k/v (or gate/up) costs one dispatch.
// Products of fewer than `min_parallel_work` multiply-adds run on the calling
// thread (waking workers costs more than they save).
inline constexpr int64_t kDefaultMinParallelWork = int64_t{1} << 20;
void MatMul(ThreadPool& pool, bool use_avx2, absl::Span<const MatMulTask> tasks,
            const float* x, int64_t n_tokens, int64_t min_parallel_work = kDefaultMinParallelWork);

}  // namespace stepproof::inference

#endif  // STEPPROOF_INFERENCE_CPU_KERNELS_H_
