#include "inference/cpu_batch_executor.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "inference/gguf.h"
#include "inference/gguf_tokenizer.h"
#include "inference/model_info.h"

namespace stepproof::inference {

CpuBatchExecutor::CpuBatchExecutor(std::unique_ptr<Model> model, int32_t slots, int32_t n_ctx,
                                   int32_t sampleable_vocab)
    : model_(std::move(model)), n_ctx_(n_ctx), sampleable_vocab_(sampleable_vocab) {
  caches_.reserve(slots);
  for (int32_t s = 0; s < slots; ++s) caches_.emplace_back(model_->config(), n_ctx);
}

absl::Status CpuBatchExecutor::CheckSlot(int32_t slot) const {
  if (slot < 0 || slot >= slots()) {
    return absl::InvalidArgumentError(absl::StrCat("slot ", slot, " is outside [0, ", slots(), ")"));
  }
  return absl::OkStatus();
}

SampledToken CpuBatchExecutor::SampleLast(const SamplingParams& params, uint64_t position) {
  const int32_t n_vocab = model_->config().n_vocab;
  float* logits = out_.logits.data() + out_.logits.size() - n_vocab;
  for (int32_t i = sampleable_vocab_; i < n_vocab; ++i) logits[i] = -INFINITY;
  return Sampler(params).Sample(absl::MakeConstSpan(logits, n_vocab), position);
}

absl::Status CpuBatchExecutor::Prefill(int32_t slot, absl::Span<const int32_t> tokens, int32_t start,
                                       bool all_hidden, const SamplingParams* sample, std::vector<float>* hidden,
                                       SampledToken* sampled) {
  if (absl::Status s = CheckSlot(slot); !s.ok()) return s;
  std::vector<int32_t> positions(tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i) positions[i] = start + static_cast<int32_t>(i);
  if (absl::Status s = model_->Forward(tokens, positions, caches_[slot], /*all_logits=*/false, &out_, all_hidden);
      !s.ok()) {
    return s;
  }
  *hidden = out_.hidden;
  if (sample != nullptr) *sampled = SampleLast(*sample, static_cast<uint64_t>(start) + tokens.size());
  return absl::OkStatus();
}

absl::Status CpuBatchExecutor::Decode(absl::Span<const DecodeItem> batch, std::vector<float>* hidden,
                                      std::vector<SampledToken>* sampled) {
  if (batch.empty() || static_cast<int32_t>(batch.size()) > max_batch()) {
    return absl::InvalidArgumentError(absl::StrCat("a decode batch holds 1 to ", max_batch(), " sequences, got ",
                                                   batch.size()));
  }
  const int64_t E = n_embd();
  hidden->resize(batch.size() * E);
  sampled->resize(batch.size());
  for (size_t i = 0; i < batch.size(); ++i) {
    const DecodeItem& it = batch[i];
    if (absl::Status s = CheckSlot(it.slot); !s.ok()) return s;
    if (absl::Status s = model_->Forward(absl::MakeConstSpan(&it.token, 1), absl::MakeConstSpan(&it.position, 1),
                                         caches_[it.slot], /*all_logits=*/false, &out_);
        !s.ok()) {
      return s;
    }
    std::copy(out_.hidden.end() - E, out_.hidden.end(), hidden->begin() + i * E);
    (*sampled)[i] = SampleLast(it.sampling, static_cast<uint64_t>(it.position) + 1);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Backend>> OpenCpuBatchedBackend(const std::string& gguf_path,
                                                               const CpuBatchedBackendOptions& options) {
  if (options.threads < 0) return absl::InvalidArgumentError("threads must be >= 0");
  if (options.context_length < 0) return absl::InvalidArgumentError("context_length must be >= 0");
  if (options.slots < 1) return absl::InvalidArgumentError("slots must be >= 1");
  absl::StatusOr<GgufFile> file = GgufFile::Open(gguf_path);
  if (!file.ok()) return file.status();
  absl::StatusOr<BpeTokenizer> tokenizer = LoadTokenizer(*file);
  if (!tokenizer.ok()) return tokenizer.status();
  ModelInfo info = DescribeModel(*file, gguf_path);
  absl::StatusOr<std::unique_ptr<Model>> model = Model::Load(*std::move(file), ModelOptions{options.threads, true});
  if (!model.ok()) return model.status();
  const ModelConfig& c = (*model)->config();
  absl::StatusOr<int32_t> resolved = ResolveContextLength(c, options.context_length);
  if (!resolved.ok()) return resolved.status();
  const int32_t n_ctx = *resolved;
  const int32_t n_vocab = c.n_vocab;
  const int32_t sampleable = std::min(n_vocab, tokenizer->vocab_size());
  DeviceInfo device{"cpu", absl::StrCat((*model)->uses_avx2() ? "x86-64 avx2" : "portable", ", ",
                                        (*model)->threads(), " threads, ", options.slots, " slots (batched)")};
  auto executor = std::make_unique<CpuBatchExecutor>(*std::move(model), options.slots, n_ctx, sampleable);
  return NewBatchedBackend(std::move(info), std::move(device), *std::move(tokenizer), n_vocab, std::move(executor),
                           options.batching);
}

}  // namespace stepproof::inference
