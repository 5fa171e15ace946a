// Puts execution fingerprints (inference/fingerprint.h) on a generation's
// steps, the same way for every backend (CpuBackend, BatchedBackend):
//  - the prompt's fingerprint (all prompt positions) rides on the first step;
//  - the final hidden row of each generated token, EOS excluded, goes into
//    chunks of kFingerprintChunkTokens; a completed chunk rides on the step
//    that holds its last token, a partial last chunk (Finish) on the step
//    after it (the segmenter's final step);
//  - a step carrying neither gets no fingerprint bytes.
// docs/FORMAT.md, "Execution fingerprints".
//
// Thread-safety: one generation's, from one thread.
#ifndef STEPPROOF_INFERENCE_STEP_FINGERPRINTER_H_
#define STEPPROOF_INFERENCE_STEP_FINGERPRINTER_H_

#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "absl/types/span.h"
#include "inference/fingerprint.h"
#include "inference/step_segmenter.h"

namespace stepproof::inference {

class StepFingerprinter {
 public:
  // Disabled: every call is a no-op and steps keep an empty fingerprint.
  StepFingerprinter(bool enabled, int64_t n_embd) : enabled_(enabled), n_embd_(n_embd) {}

  bool enabled() const { return enabled_; }
  // The prompt's final hidden rows (prompt tokens x n_embd); ignored if empty.
  void SetPrompt(absl::Span<const float> prompt_hidden);
  // The final hidden row (n_embd values) of a generated token that is not EOS.
  void AddToken(absl::Span<const float> hidden_row);
  // Closes a partial last chunk (call before delivering the final steps).
  void Finish();
  // Sets step.fingerprint from what is due on it.
  void Attach(Step& step);

 private:
  void CloseChunk();

  bool enabled_;
  int64_t n_embd_;
  std::optional<ChunkFingerprint> prompt_;
  std::vector<float> rows_;  // the open chunk's rows
  int64_t taken_ = 0;        // generated tokens whose row was taken
  std::vector<std::pair<int64_t, ChunkFingerprint>> done_;  // (end token, fp), in order
  uint32_t first_pending_chunk_ = 0;
};

}  // namespace stepproof::inference

#endif  // STEPPROOF_INFERENCE_STEP_FINGERPRINTER_H_
