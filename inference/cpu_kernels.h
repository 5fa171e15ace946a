// CPU compute kernels of the engine: dot products of a stored weight row (in
// its GGUF type) with a float vector, and the matrix-times-activations product
// built on them.
//
// Quantised rows are consumed block by block (a Q8_0 block's 32 int8 values
// or a Q4_K super-block's nibbles are widened in registers and multiplied with
// the activations); whole matrices are never dequantised. There are two
// implementations of every dot product: portable C++ and AVX2/FMA/F16C
// (compiled with __attribute__((target)) so the build stays portable, chosen at
// run time when the CPU supports it). Each has a fixed reduction order, so a
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

// Computes every task's product for `n_tokens` rows of x (x is (n_tokens,
// cols), row-major, shared by all tasks, which must have equal cols). The
// output rows of all tasks are split across the pool's threads as one range,
// so fusing q/k/v (or gate/up) costs one dispatch.
void MatMul(ThreadPool& pool, bool use_avx2, absl::Span<const MatMulTask> tasks,
            const float* x, int64_t n_tokens);

}  // namespace stepproof::inference

#endif  // STEPPROOF_INFERENCE_CPU_KERNELS_H_
