// Backends for tests that need exact or endless output rather than a model:
//  ScriptedBackend delivers fixed steps; EndlessBackend produces one token
//  every `token_time` until cancelled, past its deadline or out of budget,
//  honouring the Backend contract (inference/backend.h) for endings.
#ifndef STEPPROOF_TESTS_SERVICES_FAKE_BACKENDS_H_
#define STEPPROOF_TESTS_SERVICES_FAKE_BACKENDS_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "inference/backend.h"
#include "inference/chat_template.h"
#include "tests/inference/test_models.h"

namespace stepproof::service::testing {

// A byte-level tokenizer with the R1 end-of-sentence token as id 256.
inline std::unique_ptr<inference::BpeTokenizer> ByteTokenizer() {
  inference::TokenizerData t;
  t.model = "gpt2";
  t.pre = "qwen2";
  for (int b = 0; b < 256; ++b) t.tokens.push_back(inference::testing::ByteToken(b));
  t.tokens.push_back(std::string(inference::kEndOfSentence));
  t.token_types.assign(256, 1);
  t.token_types.push_back(3);
  t.eos_id = 256;
  return std::make_unique<inference::BpeTokenizer>(*inference::BpeTokenizer::Create(t));
}

class ScriptedBackend : public inference::Backend {
 public:
  explicit ScriptedBackend(std::vector<inference::Step> steps)
      : steps_(std::move(steps)), tokenizer_(ByteTokenizer()) {
    info_.name = "scripted";
    info_.context_length = 4096;
  }
  const inference::ModelInfo& model() const override { return info_; }
  inference::DeviceInfo device() const override { return {"cpu", "scripted device"}; }
  const inference::BpeTokenizer& tokenizer() const override { return *tokenizer_; }
  absl::StatusOr<inference::GenerationResult> Generate(
      const inference::GenerationRequest& request, const inference::StepSink& sink) override {
    last_request = request;
    inference::GenerationResult result;
    result.prompt_tokens = static_cast<int32_t>(request.prompt_tokens.size());
    for (const inference::Step& s : steps_) {
      if (absl::Status st = sink(s); !st.ok()) return st;
      result.generated_tokens += static_cast<int32_t>(s.token_ids.size());
    }
    result.finish = inference::FinishReason::kEndOfSequence;
    return result;
  }
  inference::GenerationRequest last_request;

 private:
  std::vector<inference::Step> steps_;
  std::unique_ptr<inference::BpeTokenizer> tokenizer_;
  inference::ModelInfo info_;
};

// Emits the token 'a' every token_time; a reasoning step every 8 tokens.
// Never ends by itself before max_tokens.
class EndlessBackend : public inference::Backend {
 public:
  explicit EndlessBackend(absl::Duration token_time = absl::Milliseconds(2))
      : token_time_(token_time), tokenizer_(ByteTokenizer()) {
    info_.name = "endless";
    info_.context_length = 1 << 20;
  }
  const inference::ModelInfo& model() const override { return info_; }
  inference::DeviceInfo device() const override { return {"cpu", "endless device"}; }
  const inference::BpeTokenizer& tokenizer() const override { return *tokenizer_; }
  absl::StatusOr<inference::GenerationResult> Generate(
      const inference::GenerationRequest& request, const inference::StepSink& sink) override {
    inference::GenerationResult result;
    result.prompt_tokens = static_cast<int32_t>(request.prompt_tokens.size());
    inference::Step step;
    auto flush = [&]() -> absl::Status {
      if (step.token_ids.empty()) return absl::OkStatus();
      step.kind = inference::StepKind::kReasoning;
      absl::Status s = sink(step);
      step = inference::Step();
      return s;
    };
    for (;;) {
      if (request.is_cancelled && request.is_cancelled()) {
        result.finish = inference::FinishReason::kCancelled;
        break;
      }
      if (absl::Now() >= request.deadline) {
        result.finish = inference::FinishReason::kDeadline;
        break;
      }
      if (result.generated_tokens >= request.max_tokens) {
        result.finish = inference::FinishReason::kMaxTokens;
        break;
      }
      absl::SleepFor(token_time_);
      if (step.token_ids.empty()) step.start_time = absl::Now();
      step.token_ids.push_back('a');
      step.logprobs.push_back(-1.0f);
      step.text.push_back('a');
      step.end_time = absl::Now();
      ++result.generated_tokens;
      if (step.token_ids.size() == 8) {
        if (absl::Status s = flush(); !s.ok()) return s;
      }
    }
    if (absl::Status s = flush(); !s.ok()) return s;
    return result;
  }

 private:
  absl::Duration token_time_;
  std::unique_ptr<inference::BpeTokenizer> tokenizer_;
  inference::ModelInfo info_;
};

}  // namespace stepproof::service::testing

#endif  // STEPPROOF_TESTS_SERVICES_FAKE_BACKENDS_H_
