// Checks a recorded token against the logits a verifier recomputed and the
// trace's sampling settings (docs/DECODING.md, "Sampling"; docs/REPLAY.md).
//
// Exact rule: the token is accepted when inference::Sampler chooses it from
// the verifier's logits at the same position and seed. Tolerant rules, for a
// trace made on another device (logits differ in the last bits):
//  - greedy: the recorded token's logit is within `greedy_tie` of the
//    largest logit (a near tie);
//  - sampled: the recorded token is in the kept set (top-k, top-p) and the
//    draw's target u * span lies within a relative `boundary` of the
//    recorded token's cumulative interval [c_(j-1), c_j).
//
// Thread-safety: pure functions.
#ifndef STEPPROOF_CLIENTS_REPLAY_TOKEN_CHECK_H_
#define STEPPROOF_CLIENTS_REPLAY_TOKEN_CHECK_H_

#include <cstdint>
#include <string>

#include "absl/types/span.h"
#include "inference/sampler.h"

namespace stepproof::clients {

struct TokenTolerance {
  float greedy_tie = 0.0f;  // absolute logit difference accepted as a tie
  double boundary = 0.0;    // relative slack on the cumulative interval
};

struct TokenCheck {
  bool accepted = false;
  bool exact = false;      // the sampler's own choice
  int32_t expected = -1;   // what the sampler chose from the verifier's logits
};

// REQUIRES: params valid for logits.size(); logits of ids that the engine
// never samples (padding rows) already set to -inf by the caller.
TokenCheck CheckToken(absl::Span<const float> logits, const inference::SamplingParams& params,
                      uint64_t position, int32_t recorded, const TokenTolerance& tolerance);

}  // namespace stepproof::clients

#endif  // STEPPROOF_CLIENTS_REPLAY_TOKEN_CHECK_H_
