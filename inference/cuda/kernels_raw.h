// Raw kernel launchers, compiled by nvcc (kernels.cu). No Abseil here so nvcc
// never parses it; kernels.h wraps each in an absl::Status launcher. Pointers
// are device pointers; shapes as in reference.h.
#ifndef STEPPROOF_INFERENCE_CUDA_KERNELS_RAW_H_
#define STEPPROOF_INFERENCE_CUDA_KERNELS_RAW_H_

#include <cuda_runtime_api.h>

#include <cstdint>

namespace stepproof::inference::cuda::raw {

void RmsNorm(const float* x, const float* w, float* y, int rows, int cols,
             float eps, cudaStream_t stream);
void RopeNeox(float* x, const int32_t* positions, int rows, int heads,
              int head_dim, float freq_base, cudaStream_t stream);
void SwiGlu(const float* gate, const float* up, float* out, int n,
            cudaStream_t stream);
void MatMulF32(const float* x, const float* w, float* y, int rows, int in,
               int out, cudaStream_t stream);
void MatMulBf16(const float* x, const uint16_t* w, float* y, int rows, int in,
                int out, cudaStream_t stream);
void MatMulQ8_0(const float* x, const uint8_t* w, float* y, int rows, int in,
                int out, cudaStream_t stream);
// Needs n_ctx * sizeof(float) bytes of shared memory; returns false (and
// launches nothing) when n_ctx exceeds kMaxAttentionContext.
bool AttentionDecode(const float* q, const float* k, const float* v,
                     float* out, int heads, int kv_heads, int d, int n_ctx,
                     cudaStream_t stream);
void ArgMax(const float* x, int n, int32_t* result, cudaStream_t stream);

inline constexpr int kMaxAttentionContext = 8192;

}  // namespace stepproof::inference::cuda::raw

#endif  // STEPPROOF_INFERENCE_CUDA_KERNELS_RAW_H_
