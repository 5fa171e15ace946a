#include "inference/step_segmenter.h"

#include <utility>

#include "inference/chat_template.h"

namespace stepproof::inference {
namespace {

// ASCII whitespace: space, \t, \n, \v, \f, \r. Every other byte (including
// all bytes of multi-byte characters) counts as non-whitespace.
bool IsWsByte(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' ||
         c == '\r';
}

bool HasNonWs(std::string_view bytes) {
  for (char c : bytes) {
    if (!IsWsByte(c)) return true;
  }
  return false;
}

// Scans `bytes` into the blank-line state. Returns true if a non-whitespace
// byte follows a completed separator (a non-whitespace byte, then a
// whitespace run with at least two '\n'); the state is updated either way.
bool ScanForBoundary(std::string_view bytes, bool* has_non_ws,
                     int* newlines_in_run) {
  bool boundary = false;
  for (char c : bytes) {
    if (IsWsByte(c)) {
      if (c == '\n') ++*newlines_in_run;
      continue;
    }
    if (*has_non_ws && *newlines_in_run >= 2) boundary = true;
    *has_non_ws = true;
    *newlines_in_run = 0;
  }
  return boundary;
}

// Tokens a step may run past max_step_tokens waiting for a character to
// complete before it is cut regardless.
constexpr size_t kMaxUtf8Wait = 8;

}  // namespace

StepSegmenter::StepSegmenter(const BpeTokenizer* tokenizer,
                             SegmenterOptions options)
    : tokenizer_(tokenizer),
      options_(options),
      think_close_id_(tokenizer->TokenId(kThinkClose)),
      eos_id_(tokenizer->eos_id()) {
  if (options_.max_step_tokens < 1) options_.max_step_tokens = 1;
}

void StepSegmenter::Append(int32_t token, float logprob, absl::Time now,
                           std::string_view bytes) {
  Step& s = cur_.step;
  if (s.token_ids.empty()) {
    s.kind = in_answer_ ? StepKind::kAnswer : StepKind::kReasoning;
    s.start_time = now;
    s.first_token_position = position_;
  }
  s.token_ids.push_back(token);
  s.logprobs.push_back(logprob);
  s.end_time = now;
  s.text += cur_.decoder.Push(bytes);
}

Step StepSegmenter::Seal() {
  Step out = std::move(cur_.step);
  out.text += cur_.decoder.Finish();
  cur_ = Pending();
  return out;
}

std::vector<Step> StepSegmenter::Push(int32_t token, float logprob,
                                      absl::Time now) {
  std::vector<Step> out;
  if (finished_ || saw_eos_) return out;  // tokens after EOS are ignored
  if (token == eos_id_) {
    saw_eos_ = true;
    ++position_;
    return out;
  }
  const bool is_think_close = think_close_id_ && token == *think_close_id_;

  if (in_answer_) {
    Append(token, logprob, now,
           is_think_close ? std::string() : tokenizer_->TokenBytes(token));
  } else if (is_think_close) {
    // Reasoning ends. Whitespace-only reasoning stays in cur_ and becomes
    // the start of the answer step.
    if (cur_.has_non_ws) out.push_back(Seal());
    in_answer_ = true;
    cur_.step.kind = StepKind::kAnswer;
    Append(token, logprob, now, std::string());
  } else {
    const std::string bytes = tokenizer_->TokenBytes(token);
    bool starts_new_step = false;
    if (cur_.closed) {
      starts_new_step = HasNonWs(bytes);
    } else if (cur_.has_non_ws) {
      // Only a step that already has text can end before this token.
      bool has_non_ws = cur_.has_non_ws;
      int newlines = cur_.newlines_in_run;
      starts_new_step = ScanForBoundary(bytes, &has_non_ws, &newlines);
    }
    if (starts_new_step) out.push_back(Seal());
    // Scan the token into its step's state; a separator inside the first
    // token of a step cannot split that token, so the result is ignored.
    ScanForBoundary(bytes, &cur_.has_non_ws, &cur_.newlines_in_run);
    Append(token, logprob, now, bytes);
    if (!cur_.closed && cur_.has_non_ws) {
      const size_t n = cur_.step.token_ids.size();
      const size_t max = static_cast<size_t>(options_.max_step_tokens);
      const bool at_char_boundary = cur_.decoder.pending_bytes() == 0;
      if (cur_.newlines_in_run >= 2 ||
          (n >= max && (at_char_boundary || n >= max + kMaxUtf8Wait))) {
        cur_.closed = true;
      }
    }
  }
  ++position_;
  return out;
}

std::vector<Step> StepSegmenter::Finish(absl::Time /*now*/) {
  std::vector<Step> out;
  if (finished_) return out;
  finished_ = true;
  // The last reasoning step, the answer step (always, once </think> was
  // seen), or whitespace-only output that no other step could absorb.
  if (!cur_.step.token_ids.empty()) out.push_back(Seal());
  return out;
}

}  // namespace stepproof::inference
