#include "inference/sampler.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "absl/strings/str_cat.h"
#include "inference/philox.h"

namespace stepproof::inference {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

float Clean(float x) { return std::isnan(x) ? kNegInf : x; }

// Maps a float to an unsigned key with the same order (-inf < ... < +inf).
uint32_t OrderedBits(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof(u));
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

int32_t Argmax(absl::Span<const float> logits) {
  int32_t best = 0;
  float best_v = Clean(logits[0]);
  for (size_t i = 1; i < logits.size(); ++i) {
    const float v = Clean(logits[i]);
    if (v > best_v) {  // strict: the lowest index wins ties
      best_v = v;
      best = static_cast<int32_t>(i);
    }
  }
  return best;
}

// log softmax(logits)[id] at temperature 1, in double, summing in index order.
float LogProb(absl::Span<const float> logits, int32_t id) {
  double m = -std::numeric_limits<double>::infinity();
  for (float l : logits) m = std::max(m, static_cast<double>(Clean(l)));
  const double x = Clean(logits[id]);
  if (std::isinf(m) || std::isinf(x)) {
    return m == std::numeric_limits<double>::infinity() && x == m ? 0.0f
                                                                  : kNegInf;
  }
  double s = 0.0;
  for (float l : logits) s += std::exp(static_cast<double>(Clean(l)) - m);
  return static_cast<float>(x - m - std::log(s));
}

}  // namespace

absl::Status ValidateSamplingParams(const SamplingParams& p,
                                    int32_t vocab_size) {
  if (vocab_size <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("vocab_size must be positive, got ", vocab_size));
  }
  if (!std::isfinite(p.temperature) || p.temperature < 0.0f ||
      p.temperature > 10.0f) {
    return absl::InvalidArgumentError(absl::StrCat(
        "temperature must be finite and in [0, 10], got ", p.temperature));
  }
  if (!std::isfinite(p.top_p) || !(p.top_p > 0.0f) || p.top_p > 1.0f) {
    return absl::InvalidArgumentError(
        absl::StrCat("top_p must be in (0, 1], got ", p.top_p));
  }
  if (p.top_k < 0 || p.top_k > vocab_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "top_k must be in [0, ", vocab_size, "] (vocab_size), got ", p.top_k));
  }
  return absl::OkStatus();
}

Sampler::Sampler(SamplingParams p) : params_(p) {}

// The algorithm is specified in docs/DECODING.md ("Sampling"); keep the two
// in step.
SampledToken Sampler::Sample(absl::Span<const float> logits,
                             uint64_t position) const {
  const size_t vocab = logits.size();
  if (params_.greedy || params_.temperature == 0.0f) {
    const int32_t id = Argmax(logits);
    return {id, LogProb(logits, id)};
  }

  // 1. Order: logit descending, index ascending on ties (the order of the
  // tempered probabilities, free of exp rounding).
  std::vector<uint64_t> keys(vocab);
  for (size_t i = 0; i < vocab; ++i) {
    keys[i] = (static_cast<uint64_t>(~OrderedBits(Clean(logits[i]))) << 32) |
              static_cast<uint64_t>(i);
  }
  size_t kept = vocab;
  if (params_.top_k > 0 && static_cast<size_t>(params_.top_k) < vocab) {
    kept = static_cast<size_t>(params_.top_k);
    std::partial_sort(keys.begin(), keys.begin() + kept, keys.end());
  } else {
    std::sort(keys.begin(), keys.end());
  }
  auto index = [&](size_t j) { return static_cast<int32_t>(keys[j] & 0xFFFFFFFFu); };

  // 2. Unnormalised weights w = exp((l - l_max) / T) in double.
  const double t = static_cast<double>(params_.temperature);
  const double top = static_cast<double>(Clean(logits[index(0)]));
  if (std::isinf(top)) {  // all -inf (or a +inf): take the first in order
    return {index(0), LogProb(logits, index(0))};
  }
  std::vector<double> cum(kept);  // cumulative weights in sorted order
  double s = 0.0;
  for (size_t j = 0; j < kept; ++j) {
    s += std::exp((static_cast<double>(Clean(logits[index(j)])) - top) / t);
    cum[j] = s;
  }

  // 3. Top-p: the smallest prefix whose mass reaches top_p of the top-k mass.
  if (params_.top_p < 1.0f) {
    const double threshold = static_cast<double>(params_.top_p) * s;
    size_t l = 0;
    while (l + 1 < kept && cum[l] < threshold) ++l;
    kept = l + 1;
  }

  // 4. Inverse CDF with the Philox draw.
  const double target = PhiloxUniform(params_.seed, position) * cum[kept - 1];
  size_t j = 0;
  while (j + 1 < kept && !(cum[j] > target)) ++j;
  const int32_t id = index(j);
  return {id, LogProb(logits, id)};
}

}  // namespace stepproof::inference
