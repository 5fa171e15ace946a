#include "inference/batched_backend.h"

#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "inference/fingerprint.h"
#include "inference/step_fingerprinter.h"
#include "inference/step_segmenter.h"

namespace stepproof::inference {
namespace {

class BatchedBackend : public Backend {
 public:
  BatchedBackend(ModelInfo info, DeviceInfo device, BpeTokenizer tokenizer, int32_t n_vocab,
                 std::unique_ptr<BatchExecutor> executor, BatchedBackendOptions options)
      : info_(std::move(info)),
        device_(std::move(device)),
        tokenizer_(std::move(tokenizer)),
        n_vocab_(n_vocab),
        n_ctx_(executor->context_length()),
        n_embd_(executor->n_embd()),
        options_(std::move(options)),
        scheduler_(std::move(executor), SchedulerWithEos(options_.scheduler, tokenizer_.eos_id())) {
    info_.context_length = n_ctx_;
    if (!options_.clock) options_.clock = [] { return absl::Now(); };
  }

  const ModelInfo& model() const override { return info_; }
  DeviceInfo device() const override { return device_; }
  const BpeTokenizer& tokenizer() const override { return tokenizer_; }
  absl::StatusOr<GenerationResult> Generate(const GenerationRequest& request, const StepSink& sink) override;

  const BatchScheduler& scheduler() const { return scheduler_; }

 private:
  static SchedulerOptions SchedulerWithEos(SchedulerOptions o, int32_t eos) {
    o.eos_id = eos;
    return o;
  }
  absl::Status Validate(const GenerationRequest& request) const;

  ModelInfo info_;
  const DeviceInfo device_;
  const BpeTokenizer tokenizer_;
  const int32_t n_vocab_;
  const int32_t n_ctx_;
  const int32_t n_embd_;
  BatchedBackendOptions options_;
  BatchScheduler scheduler_;  // last: its engine thread starts in its constructor
};

absl::Status BatchedBackend::Validate(const GenerationRequest& request) const {
  return ValidateGenerationRequest(request, n_ctx_, n_vocab_);
}

absl::StatusOr<GenerationResult> BatchedBackend::Generate(const GenerationRequest& request, const StepSink& sink) {
  if (absl::Status s = Validate(request); !s.ok()) return s;
  const auto& now = options_.clock;
  SequenceRequest seq;
  seq.prompt = request.prompt_tokens;
  seq.sampling = request.sampling;
  seq.max_tokens = request.max_tokens;
  seq.all_hidden = request.fingerprint;
  absl::StatusOr<std::shared_ptr<BatchScheduler::Ticket>> ticket = scheduler_.Submit(std::move(seq));
  if (!ticket.ok()) return ticket.status();
  // Whatever way this call ends, the sequence leaves the engine.
  absl::Cleanup leave = [&] { scheduler_.Cancel(**ticket); };

  GenerationResult result;
  result.prompt_tokens = static_cast<int32_t>(request.prompt_tokens.size());
  auto stop_reason = [&]() -> std::optional<FinishReason> {
    if (request.is_cancelled && request.is_cancelled()) return FinishReason::kCancelled;
    if (now() >= request.deadline) return FinishReason::kDeadline;
    return std::nullopt;
  };

  // Fingerprints and delivery exactly as CpuBackend::Generate.
  StepSegmenter segmenter(&tokenizer_, SegmenterOptions{});
  StepFingerprinter fingerprints(request.fingerprint, n_embd_);
  auto deliver = [&](std::vector<Step> steps) -> absl::Status {
    for (Step& step : steps) {
      fingerprints.Attach(step);
      if (absl::Status s = sink(step); !s.ok()) return s;
    }
    return absl::OkStatus();
  };

  const absl::Time start = now();
  std::optional<absl::Time> decode_start;
  std::optional<FinishReason> stopped;
  while (!stopped) {
    // Wait for the next token, polling cancellation and the deadline.
    const absl::Duration to_deadline = request.deadline - now();
    const absl::Time until = absl::Now() + std::max(absl::ZeroDuration(), std::min(options_.poll_interval, to_deadline));
    absl::StatusOr<std::optional<TokenEvent>> next = scheduler_.Next(**ticket, until);
    if (!next.ok()) return next.status();
    if (!next->has_value()) {
      stopped = stop_reason();
      continue;
    }
    TokenEvent& e = **next;
    if (!decode_start) {
      // CpuBackend polls once after the prefill, before the first token.
      if ((stopped = stop_reason())) break;
      decode_start = now();
      result.prefill_time = e.prefill_time;
      fingerprints.SetPrompt(e.prompt_hidden);
    }
    ++result.generated_tokens;
    if (fingerprints.enabled() && e.token.id != tokenizer_.eos_id()) fingerprints.AddToken(e.hidden);
    if (absl::Status s = deliver(segmenter.Push(e.token.id, e.token.logprob, now())); !s.ok()) return s;
    if (e.finish) {
      stopped = e.finish;
      break;
    }
    stopped = stop_reason();
  }
  result.finish = *stopped;
  fingerprints.Finish();
  if (absl::Status s = deliver(segmenter.Finish(now())); !s.ok()) return s;
  result.decode_time = decode_start ? now() - *decode_start : absl::ZeroDuration();
  if (!decode_start) result.prefill_time = now() - start;
  return result;
}

}  // namespace

std::unique_ptr<Backend> NewBatchedBackend(ModelInfo info, DeviceInfo device, BpeTokenizer tokenizer,
                                           int32_t n_vocab, std::unique_ptr<BatchExecutor> executor,
                                           BatchedBackendOptions options) {
  return std::make_unique<BatchedBackend>(std::move(info), std::move(device), std::move(tokenizer), n_vocab,
                                          std::move(executor), std::move(options));
}

const BatchScheduler* BatchedBackendScheduler(const Backend& backend) {
  const auto* b = dynamic_cast<const BatchedBackend*>(&backend);
  return b == nullptr ? nullptr : &b->scheduler();
}

}  // namespace stepproof::inference
