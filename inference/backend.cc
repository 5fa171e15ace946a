#include "inference/backend.h"

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

}  // namespace stepproof::inference
