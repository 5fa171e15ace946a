// Launchers of the batched decode kernels (decode_kernels.cu). Each checks
// its shapes (INVALID_ARGUMENT naming the problem), launches asynchronously
// on `stream`, checks cudaGetLastError() and returns INTERNAL with the CUDA
// error on a failed launch. Semantics: decode_kernels_raw.h and the CPU
// references in reference.h. Only built when CMake finds nvcc.
#ifndef STEPPROOF_INFERENCE_CUDA_DECODE_KERNELS_H_
#define STEPPROOF_INFERENCE_CUDA_DECODE_KERNELS_H_

#include <cuda_runtime_api.h>

#include <cstdint>

#include "absl/status/status.h"
#include "inference/cuda/decode_kernels_raw.h"

namespace stepproof::inference::cuda {

// REQUIRES (else INVALID_ARGUMENT): w.cols % 32 == 0, batch >= 1.
absl::Status MatMulBatched(const float* x, const DeviceMatrix& w, float* y, int batch, cudaStream_t stream);
absl::Status Embed(const DeviceMatrix& w, const int32_t* tokens, float* x, int rows, cudaStream_t stream);
absl::Status AddBias(float* y, const float* bias, int rows, int n, cudaStream_t stream);
absl::Status Add(float* x, const float* y, int64_t n, cudaStream_t stream);
absl::Status KvWrite(const float* k, const float* v, float* k_cache, float* v_cache, const int32_t* slots,
                     const int32_t* positions, int rows, int layer, int n_layer, int n_ctx, int kv_dim,
                     cudaStream_t stream);
// INVALID_ARGUMENT when heads % kv_heads != 0 or max_span is outside
// [1, kMaxBatchAttentionSpan] or above n_ctx.
absl::Status AttentionBatch(const float* q, const float* k_cache, const float* v_cache, const int32_t* slots,
                            const int32_t* positions, float* out, int rows, int heads, int kv_heads, int d,
                            int layer, int n_layer, int n_ctx, int max_span, cudaStream_t stream);
// INVALID_ARGUMENT unless 1 <= sampleable <= vocab and rows >= 1.
absl::Status Sample(const float* logits, int rows, int vocab, int sampleable, const SampleArgs* args,
                    double* scratch_w, uint64_t* scratch_key, SampleResult* out, cudaStream_t stream);
absl::Status PhiloxUniforms(const uint64_t* seeds, const uint64_t* positions, double* out, int n,
                            cudaStream_t stream);

}  // namespace stepproof::inference::cuda

#endif  // STEPPROOF_INFERENCE_CUDA_DECODE_KERNELS_H_
