// Token sampling: greedy or temperature / top-k / top-p with a counter-based
// random draw, specified bit-exactly in docs/DECODING.md so a GPU kernel and a
// third-party verifier choose the same token from the same logits.
//
// Thread-safety: Sampler is immutable; Sample() may be called concurrently.

#ifndef STEPPROOF_INFERENCE_SAMPLER_H_
#define STEPPROOF_INFERENCE_SAMPLER_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/types/span.h"

namespace stepproof::inference {

struct SamplingParams {
  bool greedy = false;
  float temperature = 0.6f;  // 0 means greedy
  float top_p = 0.95f;       // (0, 1]; 1 disables
  int32_t top_k = 0;         // 0 disables
  uint64_t seed = 0;
};

// Returns OK, or INVALID_ARGUMENT naming the field: temperature must be finite
// and in [0, 10]; top_p finite and in (0, 1]; top_k in [0, vocab_size];
// vocab_size must be positive.
absl::Status ValidateSamplingParams(const SamplingParams& p,
                                    int32_t vocab_size);

struct SampledToken {
  int32_t id;
  float logprob;  // log-softmax of the raw logits (temperature 1) at id
};

class Sampler {
 public:
  // REQUIRES: ValidateSamplingParams(p, vocab) is OK for the vocab used.
  explicit Sampler(SamplingParams p);

  // Chooses a token from `logits` (one per vocabulary entry) for the
  // generated token at `position` (the draw's Philox counter; callers use the
  // token's absolute index in the sequence, prompt included).
  // Greedy when p.greedy or p.temperature == 0: argmax, lowest index on ties.
  // NaN logits are treated as -inf.
  // REQUIRES: !logits.empty().
  SampledToken Sample(absl::Span<const float> logits, uint64_t position) const;

  const SamplingParams& params() const { return params_; }

 private:
  SamplingParams params_;
};

}  // namespace stepproof::inference

#endif  // STEPPROOF_INFERENCE_SAMPLER_H_
