// The CPU engine behind the Backend interface: Model + KvCache + Sampler +
// StepSegmenter, one generation at a time.

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "inference/backend.h"
#include "inference/fingerprint.h"
#include "inference/gguf.h"
#include "inference/gguf_tokenizer.h"
#include "inference/model.h"
#include "inference/model_info.h"
#include "inference/step_fingerprinter.h"

namespace stepproof::inference {
namespace {

constexpr int64_t kPrefillChunk = 64;

class CpuBackend : public Backend {
 public:
  CpuBackend(ModelInfo info, std::unique_ptr<Model> model, BpeTokenizer tokenizer, int32_t n_ctx)
      : info_(std::move(info)),
        model_(std::move(model)),
        tokenizer_(std::move(tokenizer)),
        n_ctx_(n_ctx),
        cache_(model_->config(), n_ctx) {}

  const ModelInfo& model() const override { return info_; }
  DeviceInfo device() const override {
    return DeviceInfo{"cpu", absl::StrCat(model_->uses_avx2() ? "x86-64 avx2" : "portable", ", ",
                                          model_->threads(), " threads")};
  }
  const BpeTokenizer& tokenizer() const override { return tokenizer_; }

  absl::StatusOr<GenerationResult> Generate(const GenerationRequest& request, const StepSink& sink) override;

 private:
  absl::Status Validate(const GenerationRequest& request) const;

  const ModelInfo info_;
  const std::unique_ptr<Model> model_;
  const BpeTokenizer tokenizer_;
  const int32_t n_ctx_;
  absl::Mutex mu_;  // one generation at a time: the model's scratch and the cache
  KvCache cache_ ABSL_GUARDED_BY(mu_);
};

absl::Status CpuBackend::Validate(const GenerationRequest& request) const {
  return ValidateGenerationRequest(request, n_ctx_, model_->config().n_vocab);
}

absl::StatusOr<GenerationResult> CpuBackend::Generate(const GenerationRequest& request, const StepSink& sink) {
  if (absl::Status s = Validate(request); !s.ok()) return s;
  absl::MutexLock lock(&mu_);
  GenerationResult result;
  const int32_t n_prompt = static_cast<int32_t>(request.prompt_tokens.size());
  result.prompt_tokens = n_prompt;
  auto stop_reason = [&request]() -> std::optional<FinishReason> {
    if (request.is_cancelled && request.is_cancelled()) return FinishReason::kCancelled;
    if (absl::Now() >= request.deadline) return FinishReason::kDeadline;
    return std::nullopt;
  };

  ForwardOutput out;
  std::vector<int32_t> positions;
  std::vector<float> prompt_hidden;  // (n_prompt, n_embd) when fingerprinting
  const absl::Time prefill_start = absl::Now();
  std::optional<FinishReason> stopped;
  for (int32_t begin = 0; begin < n_prompt && !stopped; begin += kPrefillChunk) {
    const int32_t end = std::min<int32_t>(n_prompt, begin + kPrefillChunk);
    positions.resize(end - begin);
    for (int32_t i = begin; i < end; ++i) positions[i - begin] = i;
    absl::Span<const int32_t> chunk(request.prompt_tokens.data() + begin, end - begin);
    if (absl::Status s = model_->Forward(chunk, positions, cache_, /*all_logits=*/false, &out,
                                         /*all_hidden=*/request.fingerprint);
        !s.ok()) {
      return s;
    }
    if (request.fingerprint) prompt_hidden.insert(prompt_hidden.end(), out.hidden.begin(), out.hidden.end());
    stopped = stop_reason();
  }
  const absl::Time decode_start = absl::Now();
  result.prefill_time = decode_start - prefill_start;

  // Ids past the tokenizer's vocabulary (padding rows of the embedding) are
  // never sampled.
  const int32_t n_vocab = model_->config().n_vocab;
  const int32_t n_text = std::min(n_vocab, tokenizer_.vocab_size());
  const Sampler sampler(request.sampling);
  StepSegmenter segmenter(&tokenizer_, SegmenterOptions{});
  // Execution fingerprints: inference/step_fingerprinter.h.
  const int64_t n_embd = model_->config().n_embd;
  StepFingerprinter fingerprints(request.fingerprint, n_embd);
  fingerprints.SetPrompt(prompt_hidden);
  prompt_hidden = {};
  auto deliver = [&](std::vector<Step> steps) -> absl::Status {
    for (Step& step : steps) {
      fingerprints.Attach(step);
      if (absl::Status s = sink(step); !s.ok()) return s;
    }
    return absl::OkStatus();
  };

  int32_t pos = n_prompt;  // position of the token being generated
  while (!stopped) {
    for (int32_t i = n_text; i < n_vocab; ++i) out.logits[i] = -INFINITY;
    const SampledToken tok = sampler.Sample(out.logits, static_cast<uint64_t>(pos));
    ++result.generated_tokens;
    if (fingerprints.enabled() && tok.id != tokenizer_.eos_id()) {
      fingerprints.AddToken(absl::MakeConstSpan(out.hidden.data() + out.hidden.size() - n_embd, n_embd));
    }
    if (absl::Status s = deliver(segmenter.Push(tok.id, tok.logprob, absl::Now())); !s.ok()) return s;
    if (tok.id == tokenizer_.eos_id()) {
      stopped = FinishReason::kEndOfSequence;
      break;
    }
    if (result.generated_tokens >= request.max_tokens) {
      stopped = FinishReason::kMaxTokens;
      break;
    }
    if (pos + 1 >= n_ctx_) {
      stopped = FinishReason::kContextFull;
      break;
    }
    if ((stopped = stop_reason())) break;
    const int32_t p = pos;
    if (absl::Status s = model_->Forward(absl::MakeConstSpan(&tok.id, 1), absl::MakeConstSpan(&p, 1), cache_,
                                         /*all_logits=*/false, &out);
        !s.ok()) {
      return s;
    }
    ++pos;
  }
  result.finish = *stopped;
  fingerprints.Finish();
  if (absl::Status s = deliver(segmenter.Finish(absl::Now())); !s.ok()) return s;
  result.decode_time = absl::Now() - decode_start;
  return result;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Backend>> OpenCpuBackend(const std::string& gguf_path,
                                                        const CpuBackendOptions& options) {
  absl::StatusOr<GgufFile> file = GgufFile::Open(gguf_path);
  if (!file.ok()) return file.status();
  absl::StatusOr<BpeTokenizer> tokenizer = LoadTokenizer(*file);
  if (!tokenizer.ok()) return tokenizer.status();
  ModelInfo info = DescribeModel(*file, gguf_path);
  if (options.threads < 0) return absl::InvalidArgumentError("threads must be >= 0");
  if (options.context_length < 0) return absl::InvalidArgumentError("context_length must be >= 0");
  absl::StatusOr<std::unique_ptr<Model>> model = Model::Load(*std::move(file), ModelOptions{options.threads, true});
  if (!model.ok()) return model.status();
  const ModelConfig& c = (*model)->config();
  info.architecture = c.architecture;
  info.n_params = (*model)->n_params();
  absl::StatusOr<int32_t> resolved = ResolveContextLength(c, options.context_length);
  if (!resolved.ok()) return resolved.status();
  const int32_t n_ctx = *resolved;
  // The KV cache is allocated up front: refuse one the machine cannot hold
  // rather than fail the allocation.
  const double kv_bytes = 2.0 * c.n_layer * n_ctx * c.n_head_kv * c.head_dim * sizeof(float);
  const double ram = static_cast<double>(sysconf(_SC_PHYS_PAGES)) * static_cast<double>(sysconf(_SC_PAGE_SIZE));
  if (ram > 0 && kv_bytes > 0.75 * ram) {
    return absl::ResourceExhaustedError(absl::StrCat("a KV cache for ", n_ctx, " tokens needs ",
                                                     static_cast<int64_t>(kv_bytes / (1 << 20)), " MiB; this machine has ",
                                                     static_cast<int64_t>(ram / (1 << 20)), " MiB"));
  }
  info.context_length = n_ctx;
  return std::unique_ptr<Backend>(
      new CpuBackend(std::move(info), *std::move(model), *std::move(tokenizer), n_ctx));
}

}  // namespace stepproof::inference
