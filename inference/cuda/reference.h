// CPU references for the CUDA kernels in kernels.h: plain loops, same
// arguments, host pointers. Each is the definition its kernel is tested
// against (tests/inference_cuda/). Shapes are given as comments; all matrices
// are row-major.
#ifndef STEPPROOF_INFERENCE_CUDA_REFERENCE_H_
#define STEPPROOF_INFERENCE_CUDA_REFERENCE_H_

#include <cstdint>

namespace stepproof::inference::cuda {

// y = x / sqrt(mean(x^2) + eps) * w.   x, y: (rows, cols); w: (cols)
void RmsNormRef(const float* x, const float* w, float* y, int rows, int cols,
                float eps);

// NEOX-style rotary embedding, in place: for each head, the pair
// (x[i], x[i + d/2]) is rotated by angle pos * base^(-2i/d), i < d/2.
// x: (rows, heads, head_dim); positions: (rows)
void RopeNeoxRef(float* x, const int32_t* positions, int rows, int heads,
                 int head_dim, float freq_base);

// out = silu(gate) * up, silu(g) = g / (1 + exp(-g)).   all: (n)
void SwiGluRef(const float* gate, const float* up, float* out, int n);

// y = x W^T.   x: (rows, in); w: (out, in); y: (rows, out)
void MatMulF32Ref(const float* x, const float* w, float* y, int rows, int in,
                  int out);
// Same with W in bfloat16 (the upper 16 bits of an IEEE float).
void MatMulBf16Ref(const float* x, const uint16_t* w, float* y, int rows,
                   int in, int out);
// Same with W in ggml Q8_0: each row is in/32 blocks of {fp16 scale, 32 x
// int8}, 34 bytes; value = scale * q. REQUIRES: in % 32 == 0.
void MatMulQ8_0Ref(const float* x, const uint8_t* w, float* y, int rows,
                   int in, int out);

// Single-token grouped-query attention over a KV cache of n_ctx positions.
// q: (heads, d); k, v: (n_ctx, kv_heads, d); out: (heads, d).
// Head h attends with KV head h / (heads / kv_heads); scores are scaled by
// 1/sqrt(d) and softmaxed over positions [0, n_ctx).
void AttentionDecodeRef(const float* q, const float* k, const float* v,
                        float* out, int heads, int kv_heads, int d, int n_ctx);

// Same as MatMulF32Ref with W in IEEE half.
void MatMulF16Ref(const float* x, const uint16_t* w, float* y, int rows,
                  int in, int out);

// Batched decode (decode_kernels.h). KV caches: (slots, n_layer, n_ctx,
// kv_dim) floats, kv_dim = kv_heads * d.
// Writes k, v (rows, kv_dim) at (slots[r], layer, positions[r]).
void KvWriteRef(const float* k, const float* v, float* k_cache,
                float* v_cache, const int32_t* slots,
                const int32_t* positions, int rows, int layer, int n_layer,
                int n_ctx, int kv_dim);
// Row r: AttentionDecodeRef of q (rows, heads, d) row r over positions
// 0 .. positions[r] of slot slots[r] at `layer`; out (rows, heads, d).
void AttentionBatchRef(const float* q, const float* k_cache,
                       const float* v_cache, const int32_t* slots,
                       const int32_t* positions, float* out, int rows,
                       int heads, int kv_heads, int d, int layer,
                       int n_layer, int n_ctx);

// Index of the largest value; the lowest index wins ties.   x: (n)
int32_t ArgMaxRef(const float* x, int n);

// IEEE half and bfloat16 to float, bit-exact.
float HalfToFloat(uint16_t h);
float Bf16ToFloat(uint16_t b);

}  // namespace stepproof::inference::cuda

#endif  // STEPPROOF_INFERENCE_CUDA_REFERENCE_H_
