// The CUDA engine as a BatchExecutor (inference/batch_executor.h): weights
// uploaded once, a preallocated KV cache of `slots` sequences, and the
// forward pass of a batch of rows (decode: one row per sequence; prefill: the
// prompt chunk of one sequence) from the kernels in kernels.h and
// decode_kernels.h, with sampling on the device.
//
// Weights: F32, F16 and BF16 matrices are kept as they are; Q8_0 is kept
// quantised (split into int8 values and fp16 scales, weights.h); other types
// (Q4_K, Q6_K) are UNIMPLEMENTED for now. Norms and biases are float32, the
// KV cache float32 (slots x layers x context x kv_dim, K and V apart).
// Architecture: qwen2 (NEOX RoPE) without rope_freqs; llama is UNIMPLEMENTED.
//
// Version 1: one kernel per operation, no CUDA graphs, attention reading the
// whole span per query head. Only built when CMake finds nvcc.
//
// Thread-safety: none (BatchExecutor); owns its stream and device memory.

#ifndef STEPPROOF_INFERENCE_CUDA_CUDA_EXECUTOR_H_
#define STEPPROOF_INFERENCE_CUDA_CUDA_EXECUTOR_H_

#include <cuda_runtime_api.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "inference/batch_executor.h"
#include "inference/cuda/decode_kernels.h"
#include "inference/model.h"

namespace stepproof::inference::cuda {

struct CudaExecutorOptions {
  int32_t slots = 8;
  int32_t context_length = 4096;  // per slot; REQUIRES <= the model's
  int32_t sampleable_vocab = 0;   // ids at or past it are never sampled; 0 = all
  int32_t max_prefill_rows = 64;  // rows of one prefill forward
};

class CudaExecutor : public BatchExecutor {
 public:
  // Uploads `model`'s weights (the Model validated every tensor; it can be
  // dropped afterwards). Returns UNIMPLEMENTED naming the tensor or setting
  // the CUDA engine does not support yet, RESOURCE_EXHAUSTED when weights,
  // KV cache and scratch do not fit in the device's free memory (saying how
  // much each needs), INTERNAL for a CUDA error.
  static absl::StatusOr<std::unique_ptr<CudaExecutor>> Create(const Model& model, const CudaExecutorOptions& options);
  ~CudaExecutor() override;

  int32_t slots() const override { return options_.slots; }
  int32_t context_length() const override { return options_.context_length; }
  int32_t n_embd() const override { return config_.n_embd; }
  int32_t max_batch() const override { return options_.slots; }
  absl::Status Prefill(int32_t slot, absl::Span<const int32_t> tokens, int32_t start, bool all_hidden,
                       const SamplingParams* sample, std::vector<float>* hidden, SampledToken* sampled) override;
  absl::Status Decode(absl::Span<const DecodeItem> batch, std::vector<float>* hidden,
                      std::vector<SampledToken>* sampled) override;

  // Device bytes of the weights one decode step reads (every matrix once,
  // plus one embedding row), for bandwidth figures.
  int64_t weight_bytes_per_token() const { return weight_bytes_per_token_; }
  int64_t device_bytes() const { return device_bytes_; }
  cudaStream_t stream() const { return stream_; }

 private:
  struct Layer {
    DeviceMatrix wq, wk, wv, wo, wg, wu, wd;
    const float* attn_norm = nullptr;
    const float* ffn_norm = nullptr;
    const float* bq = nullptr;
    const float* bk = nullptr;
    const float* bv = nullptr;
  };

  CudaExecutor(ModelConfig config, CudaExecutorOptions options) : config_(std::move(config)), options_(options) {}
  absl::Status Init(const Model& model);
  absl::StatusOr<void*> Allocate(size_t bytes);
  absl::StatusOr<DeviceMatrix> UploadMatrix(const GgufTensor& t);
  absl::StatusOr<const float*> UploadVector(const GgufTensor& t);
  // Runs rows (tokens[r] at positions[r] of slot slots[r]); logits and
  // samples for rows first_out .. rows - 1 with args (one per such row).
  // Hidden rows of all rows (all_hidden) or of rows first_out.. to *hidden.
  absl::Status Forward(int rows, const int32_t* tokens, const int32_t* positions, const int32_t* slots,
                       int first_out, const SampleArgs* args, bool all_hidden, std::vector<float>* hidden,
                       std::vector<SampleResult>* results);
  int max_rows() const { return std::max(options_.slots, options_.max_prefill_rows); }

  const ModelConfig config_;
  const CudaExecutorOptions options_;
  cudaStream_t stream_ = nullptr;
  std::vector<void*> allocations_;
  int64_t device_bytes_ = 0;
  int64_t weight_bytes_per_token_ = 0;

  DeviceMatrix token_embd_, output_;
  const float* output_norm_ = nullptr;
  std::vector<Layer> layers_;
  float* k_cache_ = nullptr;
  float* v_cache_ = nullptr;
  // Scratch for max_rows() rows.
  float *x_ = nullptr, *h_ = nullptr, *q_ = nullptr, *k_ = nullptr, *v_ = nullptr, *att_ = nullptr;
  float *g_ = nullptr, *u_ = nullptr, *hidden_ = nullptr, *logits_ = nullptr;
  int32_t *d_tokens_ = nullptr, *d_positions_ = nullptr, *d_slots_ = nullptr;
  SampleArgs* d_args_ = nullptr;
  SampleResult* d_results_ = nullptr;
  double* scratch_w_ = nullptr;
  uint64_t* scratch_key_ = nullptr;
};

}  // namespace stepproof::inference::cuda

#endif  // STEPPROOF_INFERENCE_CUDA_CUDA_EXECUTOR_H_
