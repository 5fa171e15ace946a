#include "inference/backend.h"

#include "absl/strings/str_cat.h"

namespace stepproof::inference {

std::string_view FinishReasonName(FinishReason reason) {
  switch (reason) {
    case FinishReason::kEndOfSequence: return "end_of_sequence";
    case FinishReason::kMaxTokens: return "max_tokens";
    case FinishReason::kDeadline: return "deadline";
    case FinishReason::kCancelled: return "cancelled";
    case FinishReason::kContextFull: return "context_full";
  }
  return "unknown";
}

absl::Status ValidateGenerationRequest(const GenerationRequest& request, int64_t n_ctx, int32_t n_vocab) {
  if (request.prompt_tokens.empty()) return absl::InvalidArgumentError("the prompt is empty");
  if (static_cast<int64_t>(request.prompt_tokens.size()) >= n_ctx) {
    return absl::InvalidArgumentError(absl::StrCat("the prompt has ", request.prompt_tokens.size(),
                                                   " tokens; the context holds ", n_ctx,
                                                   " (room for at least one generated token is needed)"));
  }
  for (int32_t id : request.prompt_tokens) {
    if (id < 0 || id >= n_vocab) {
      return absl::InvalidArgumentError(absl::StrCat("prompt token id ", id, " is outside the vocabulary of ",
                                                     n_vocab));
    }
  }
  if (request.max_tokens < 1) return absl::InvalidArgumentError("max_tokens must be >= 1");
  return ValidateSamplingParams(request.sampling, n_vocab);
}

}  // namespace stepproof::inference
