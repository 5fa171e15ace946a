// The CPU engine as a BatchExecutor: one Model, one KvCache per slot. A
// decode step runs its sequences one after another through the same
// single-token Model::Forward that CpuBackend uses, and prefill uses the
// same calls, so every hidden row, logit and sampled token is bit-identical
// to CpuBackend's. It exists to test the continuous-batching scheduler
// against the CPU engine; it does not make the CPU faster.
//
// Thread-safety: none (BatchExecutor).

#ifndef STEPPROOF_INFERENCE_CPU_BATCH_EXECUTOR_H_
#define STEPPROOF_INFERENCE_CPU_BATCH_EXECUTOR_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "inference/backend.h"
#include "inference/batch_executor.h"
#include "inference/batched_backend.h"
#include "inference/model.h"

namespace stepproof::inference {

class CpuBatchExecutor : public BatchExecutor {
 public:
  // `sampleable_vocab`: ids at or past it are never sampled (the tokenizer's
  // vocabulary size when it is below the model's). REQUIRES: model != null,
  // slots >= 1, 1 <= n_ctx <= the model's context.
  CpuBatchExecutor(std::unique_ptr<Model> model, int32_t slots, int32_t n_ctx, int32_t sampleable_vocab);

  int32_t slots() const override { return static_cast<int32_t>(caches_.size()); }
  int32_t context_length() const override { return n_ctx_; }
  int32_t n_embd() const override { return model_->config().n_embd; }
  int32_t max_batch() const override { return slots(); }
  absl::Status Prefill(int32_t slot, absl::Span<const int32_t> tokens, int32_t start, bool all_hidden,
                       const SamplingParams* sample, std::vector<float>* hidden, SampledToken* sampled) override;
  absl::Status Decode(absl::Span<const DecodeItem> batch, std::vector<float>* hidden,
                      std::vector<SampledToken>* sampled) override;

  const Model& model() const { return *model_; }

 private:
  absl::Status CheckSlot(int32_t slot) const;
  SampledToken SampleLast(const SamplingParams& params, uint64_t position);

  std::unique_ptr<Model> model_;
  const int32_t n_ctx_;
  const int32_t sampleable_vocab_;
  std::vector<KvCache> caches_;
  ForwardOutput out_;
};

struct CpuBatchedBackendOptions {
  int32_t threads = 0;         // 0 = all cores
  int32_t context_length = 0;  // per slot; 0 = the model's, capped at 4096
  int32_t slots = 4;
  BatchedBackendOptions batching;  // scheduler bounds, poll interval, clock
};

// The CPU engine behind continuous batching (for tests and benchmarks of the
// scheduler; stepproofd serves the CPU with OpenCpuBackend). Errors as
// OpenCpuBackend, plus INVALID_ARGUMENT for slots < 1.
absl::StatusOr<std::unique_ptr<Backend>> OpenCpuBatchedBackend(const std::string& gguf_path,
                                                               const CpuBatchedBackendOptions& options);

}  // namespace stepproof::inference

#endif  // STEPPROOF_INFERENCE_CPU_BATCH_EXECUTOR_H_
