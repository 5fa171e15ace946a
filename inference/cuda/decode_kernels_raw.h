// Raw launchers of the batched decode kernels (decode_kernels.cu), compiled
// by nvcc; no Abseil here. decode_kernels.h wraps each in an absl::Status
// launcher that checks shapes; semantics are those of the CPU references in
// reference.h. Pointers are device pointers unless said otherwise.
#ifndef STEPPROOF_INFERENCE_CUDA_DECODE_KERNELS_RAW_H_
#define STEPPROOF_INFERENCE_CUDA_DECODE_KERNELS_RAW_H_

#include <cuda_runtime_api.h>

#include <cstdint>

namespace stepproof::inference::cuda {

// How a weight matrix is stored on the device.
enum class WeightKind : int32_t {
  kF32 = 0,
  kF16 = 1,
  kBf16 = 2,
  // Q8_0 split into a dense int8 matrix (rows x cols) and one fp16 scale per
  // 32 values (rows x cols/32): value = scale * q. weights.h RepackQ8_0
  // makes it from ggml's interleaved 34-byte blocks; the split keeps every
  // load aligned.
  kQ8_0Split = 3,
};

// A row-major weight matrix on the device: rows = outputs, cols = inputs.
struct DeviceMatrix {
  WeightKind kind = WeightKind::kF32;
  const void* data = nullptr;         // rows x cols elements (int8 for Q8_0)
  const uint16_t* scales = nullptr;   // Q8_0 only: rows x cols/32 fp16
  int32_t rows = 0;
  int32_t cols = 0;
};

// Per-row sampling settings (inference/sampler.h SamplingParams) and the
// Philox counter of the token being drawn.
struct SampleArgs {
  uint64_t seed = 0;
  uint64_t position = 0;
  float temperature = 0.0f;
  float top_p = 1.0f;
  int32_t top_k = 0;
  int32_t greedy = 1;
};

struct SampleResult {
  int32_t id = 0;
  float logprob = 0.0f;
};

namespace raw {

// y (batch, w.rows) = x (batch, w.cols) W^T. One warp per output, reading
// each weight row once per 8 batch rows. REQUIRES: w.cols % 32 == 0, x and y
// 16-byte aligned.
void MatMulBatched(const float* x, DeviceMatrix w, float* y, int batch, cudaStream_t stream);

// x (rows, w.cols) = row tokens[r] of W, as float.
void Embed(DeviceMatrix w, const int32_t* tokens, float* x, int rows, cudaStream_t stream);

// y (rows, n) += bias (n) on every row.
void AddBias(float* y, const float* bias, int rows, int n, cudaStream_t stream);

// x += y, elementwise over n values.
void Add(float* x, const float* y, int64_t n, cudaStream_t stream);

// KV cache layout: (slots, n_layer, n_ctx, kv_dim) floats, K and V apart.
// Writes k, v (rows, kv_dim) at (slots[r], layer, positions[r]).
void KvWrite(const float* k, const float* v, float* k_cache, float* v_cache, const int32_t* slots,
             const int32_t* positions, int rows, int layer, int n_layer, int n_ctx, int kv_dim,
             cudaStream_t stream);

// Grouped-query attention for rows of different sequences: row r's query
// q (rows, heads, d) attends to positions 0 .. positions[r] of slot
// slots[r]'s cache at `layer`; out (rows, heads, d). max_span >= every
// positions[r] + 1 sizes the shared memory. Returns false (launching
// nothing) when max_span > kMaxBatchAttentionSpan.
bool AttentionBatch(const float* q, const float* k_cache, const float* v_cache, const int32_t* slots,
                    const int32_t* positions, float* out, int rows, int heads, int kv_heads, int d, int layer,
                    int n_layer, int n_ctx, int max_span, cudaStream_t stream);
inline constexpr int kMaxBatchAttentionSpan = 8192;

// Samples one token per row of logits (rows, vocab) with the CPU Sampler's
// algorithm (docs/DECODING.md): NaN counts as -inf, ids >= sampleable count as
// -inf; greedy = argmax, lowest index on ties; otherwise the order (logit
// descending, index ascending), top-k, top-p, and the inverse CDF at
// PhiloxUniform(seed, position). One block per row. Sums run in double but
// in another order than the CPU's (see reference.h SampleRowsRef).
// scratch_w: rows * vocab doubles; scratch_key: rows * vocab uint64.
void Sample(const float* logits, int rows, int vocab, int sampleable, const SampleArgs* args, double* scratch_w,
            uint64_t* scratch_key, SampleResult* out, cudaStream_t stream);

// out[i] = PhiloxUniform(seeds[i], positions[i]) (inference/philox.h).
void PhiloxUniforms(const uint64_t* seeds, const uint64_t* positions, double* out, int n, cudaStream_t stream);

}  // namespace raw
}  // namespace stepproof::inference::cuda

#endif  // STEPPROOF_INFERENCE_CUDA_DECODE_KERNELS_RAW_H_
