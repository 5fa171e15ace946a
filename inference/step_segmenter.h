// Splits a model's generated tokens into reasoning steps and one answer step,
// as they are produced (streaming). The exact rules are in docs/DECODING.md
// ("Step segmentation"); in short:
//  - Output starts inside <think>. Until the </think> token, tokens are
//    reasoning. A reasoning step ends at a blank line: after a non-whitespace
//    byte, a run of ASCII whitespace containing at least two '\n'; the next
//    step begins with the token holding the first non-whitespace byte after
//    that run (so separators trail the step they end; a step with no text
//    yet never ends). A step holding
//    max_step_tokens tokens is closed as soon as its bytes end on a UTF-8
//    character boundary (forced after max_step_tokens + 8 tokens). A closed
//    step absorbs following whitespace-only tokens and is emitted by the Push
//    of the next token that holds a non-whitespace byte, or at </think> or
//    Finish.
//  - The </think> token is the first token of the answer step and adds no
//    text; the answer step (leading whitespace kept verbatim) holds every
//    later token and is emitted by Finish, even when its text is empty.
//  - The end-of-sequence token belongs to no step; tokens after it are ignored.
//  - Step text = SanitizeUtf8(concatenated TokenBytes of its tokens, the
//    </think> token contributing nothing): always valid UTF-8; invalid bytes
//    become U+FFFD.
//  - Whitespace-only reasoning is never a step of its own: its tokens go to
//    the answer step (or, when there is neither </think> nor any
//    non-whitespace output, Finish emits them as one step so no token is lost).
//
// Thread-safety: not thread-safe; one segmenter per generation.
// Ownership: the tokenizer is borrowed and must outlive the segmenter.

#ifndef STEPPROOF_INFERENCE_STEP_SEGMENTER_H_
#define STEPPROOF_INFERENCE_STEP_SEGMENTER_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/time/time.h"
#include "inference/bpe_tokenizer.h"
#include "inference/utf8.h"

namespace stepproof::inference {

enum class StepKind { kReasoning, kAnswer };

struct Step {
  StepKind kind;
  std::string text;                // valid UTF-8
  std::vector<int32_t> token_ids;  // never empty
  std::vector<float> logprobs;     // parallel to token_ids
  absl::Time start_time;           // `now` of the first token's Push
  absl::Time end_time;             // `now` of the last token's Push
  // Index of token_ids[0] among the generated tokens (0 = first generated).
  int64_t first_token_position = 0;
  // Execution fingerprint (inference/fingerprint.h EncodeStepFingerprint):
  // set by a backend that fingerprints; empty when it carries none. The
  // segmenter leaves it empty.
  std::string fingerprint;
};

struct SegmenterOptions {
  int32_t max_step_tokens = 256;  // REQUIRES: >= 1
};

class StepSegmenter {
 public:
  // REQUIRES: tokenizer != nullptr and outlives this object.
  StepSegmenter(const BpeTokenizer* tokenizer, SegmenterOptions options);

  // Feeds one generated token. Returns the steps completed by it (0 or 1).
  std::vector<Step> Push(int32_t token, float logprob, absl::Time now);

  // Ends the generation; returns the remaining steps (the last reasoning step
  // and/or the answer step). Further Push/Finish calls return nothing.
  std::vector<Step> Finish(absl::Time now);

  // True once the end-of-sequence token was pushed.
  bool saw_end_of_sequence() const { return saw_eos_; }

 private:
  // The step being built.
  struct Pending {
    Step step;
    Utf8StreamDecoder decoder;  // step.text holds its complete output
    bool has_non_ws = false;    // a non-whitespace byte was seen
    int newlines_in_run = 0;    // '\n' in the trailing whitespace run
    bool closed = false;        // waiting for the next non-whitespace token
  };
  void Append(int32_t token, float logprob, absl::Time now,
              std::string_view bytes);
  Step Seal();  // returns cur_ as a finished step and resets cur_

  const BpeTokenizer* tokenizer_;
  SegmenterOptions options_;
  std::optional<int32_t> think_close_id_;
  int32_t eos_id_;
  int64_t position_ = 0;
  bool in_answer_ = false;
  bool saw_eos_ = false;
  bool finished_ = false;
  Pending cur_;
};

}  // namespace stepproof::inference

#endif  // STEPPROOF_INFERENCE_STEP_SEGMENTER_H_
