#include "inference/step_fingerprinter.h"

namespace stepproof::inference {

void StepFingerprinter::SetPrompt(absl::Span<const float> prompt_hidden) {
  if (!enabled_ || prompt_hidden.empty()) return;
  prompt_ = MakeChunkFingerprint(prompt_hidden);
}

void StepFingerprinter::AddToken(absl::Span<const float> hidden_row) {
  if (!enabled_) return;
  rows_.insert(rows_.end(), hidden_row.begin(), hidden_row.end());
  ++taken_;
  if (static_cast<int64_t>(rows_.size()) == kFingerprintChunkTokens * n_embd_) CloseChunk();
}

void StepFingerprinter::Finish() {
  if (enabled_) CloseChunk();
}

void StepFingerprinter::CloseChunk() {
  if (rows_.empty()) return;
  done_.emplace_back(taken_, MakeChunkFingerprint(rows_));
  rows_.clear();
}

void StepFingerprinter::Attach(Step& step) {
  if (!enabled_) return;
  StepFingerprint fp;
  fp.prompt = std::move(prompt_);
  prompt_.reset();
  const int64_t step_end = step.first_token_position + static_cast<int64_t>(step.token_ids.size());
  fp.first_chunk = first_pending_chunk_;
  size_t n = 0;
  while (n < done_.size() && done_[n].first <= step_end) fp.chunks.push_back(std::move(done_[n++].second));
  done_.erase(done_.begin(), done_.begin() + static_cast<std::ptrdiff_t>(n));
  first_pending_chunk_ += static_cast<uint32_t>(n);
  if (fp.prompt || !fp.chunks.empty()) step.fingerprint = EncodeStepFingerprint(fp);
}

}  // namespace stepproof::inference
