// Launchers for the CUDA engine's kernels (version 1, kernels.cu). Each takes
// device pointers and a stream, launches asynchronously, checks
// cudaGetLastError() and returns INTERNAL with the CUDA error on a failed
// launch, INVALID_ARGUMENT for shapes the kernel does not support. Semantics
// and shapes: the CPU reference of the same name in reference.h.
// Only built when CMake finds nvcc (STEPPROOF_HAVE_CUDA).
#ifndef STEPPROOF_INFERENCE_CUDA_KERNELS_H_
#define STEPPROOF_INFERENCE_CUDA_KERNELS_H_

#include <cuda_runtime_api.h>

#include <cstdint>

#include "absl/status/status.h"

namespace stepproof::inference::cuda {

absl::Status RmsNorm(const float* x, const float* w, float* y, int rows,
                     int cols, float eps, cudaStream_t stream);
absl::Status RopeNeox(float* x, const int32_t* positions, int rows, int heads,
                      int head_dim, float freq_base, cudaStream_t stream);
absl::Status SwiGlu(const float* gate, const float* up, float* out, int n,
                    cudaStream_t stream);
absl::Status MatMulF32(const float* x, const float* w, float* y, int rows,
                       int in, int out, cudaStream_t stream);
absl::Status MatMulBf16(const float* x, const uint16_t* w, float* y, int rows,
                        int in, int out, cudaStream_t stream);
// REQUIRES: in % 32 == 0 (else INVALID_ARGUMENT).
absl::Status MatMulQ8_0(const float* x, const uint8_t* w, float* y, int rows,
                        int in, int out, cudaStream_t stream);
// INVALID_ARGUMENT when heads % kv_heads != 0 or n_ctx is out of range.
absl::Status AttentionDecode(const float* q, const float* k, const float* v,
                             float* out, int heads, int kv_heads, int d,
                             int n_ctx, cudaStream_t stream);
// Writes the index to *result (device memory).
absl::Status ArgMax(const float* x, int n, int32_t* result,
                    cudaStream_t stream);

}  // namespace stepproof::inference::cuda

#endif  // STEPPROOF_INFERENCE_CUDA_KERNELS_H_
