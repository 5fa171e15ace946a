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
// in step. Ids are visited in the order (logit descending, index ascending)
// lazily: a growing sorted prefix of `keys`, so a peaked distribution costs
// O(V) rather than a full sort.
SampledToken Sampler::Sample(absl::Span<const float> logits,
                             uint64_t position) const {
  const size_t vocab = logits.size();
  if (params_.greedy || params_.temperature == 0.0f) {
    const int32_t id = Argmax(logits);
    return {id, LogProb(logits, id)};
  }
  const int32_t top_id = Argmax(logits);
  const double top = static_cast<double>(Clean(logits[top_id]));
  if (std::isinf(top)) {  // all -inf, or a +inf: the first id in order
    return {top_id, LogProb(logits, top_id)};
  }
  const double t = static_cast<double>(params_.temperature);
  auto weight = [&](int32_t i) {
    return std::exp((static_cast<double>(Clean(logits[i])) - top) / t);
  };

  // Sort keys: ~ordered(logit) in the high half, index in the low half, so
  // ascending keys are logit descending, index ascending.
  std::vector<uint64_t> keys(vocab);
  for (size_t i = 0; i < vocab; ++i) {
    keys[i] = (static_cast<uint64_t>(~OrderedBits(Clean(logits[i]))) << 32) |
              static_cast<uint64_t>(i);
  }
  auto id_at = [&](size_t j) {
    return static_cast<int32_t>(keys[j] & 0xFFFFFFFFu);
  };

  // Top-k: the kept set is the first `kept` ids in order.
  size_t kept = vocab;
  size_t sorted = 0;  // keys[0, sorted) are final
  double total = 0.0;  // S: weights of the kept set, summed in index order
  if (params_.top_k > 0 && static_cast<size_t>(params_.top_k) < vocab) {
    kept = static_cast<size_t>(params_.top_k);
    std::partial_sort(keys.begin(), keys.begin() + kept, keys.end());
    sorted = kept;
    std::vector<int32_t> by_index(kept);
    for (size_t j = 0; j < kept; ++j) by_index[j] = id_at(j);
    std::sort(by_index.begin(), by_index.end());
    for (int32_t i : by_index) total += weight(i);
  } else {
    for (size_t i = 0; i < vocab; ++i) total += weight(static_cast<int32_t>(i));
  }
  // Extends the sorted prefix to cover position j.
  size_t chunk = 64;
  auto ensure_sorted = [&](size_t j) {
    while (j >= sorted) {
      const size_t end = std::min(kept, sorted + chunk);
      if (end < kept) {
        std::nth_element(keys.begin() + sorted, keys.begin() + end,
                         keys.begin() + kept);
      }
      std::sort(keys.begin() + sorted, keys.begin() + end);
      sorted = end;
      chunk *= 2;
    }
  };

  // Top-p: the shortest prefix whose cumulative weight reaches top_p * S;
  // the draw then spans that prefix's mass. Without top-p it spans S.
  double span = total;
  if (params_.top_p < 1.0f) {
    const double threshold = static_cast<double>(params_.top_p) * total;
    double cum = 0.0;
    size_t l = 0;
    for (;; ++l) {
      ensure_sorted(l);
      cum += weight(id_at(l));
      if (cum >= threshold || l + 1 == kept) break;
    }
    kept = l + 1;
    span = cum;
  }

  // Inverse CDF: the first id in order whose cumulative weight exceeds u * span.
  const double target = PhiloxUniform(params_.seed, position) * span;
  double cum = 0.0;
  for (size_t j = 0; j < kept; ++j) {
    ensure_sorted(j);
    cum += weight(id_at(j));
    if (cum > target) return {id_at(j), LogProb(logits, id_at(j))};
  }
  // Rounding left target at or above the last cumulative sum: the last kept id.
  ensure_sorted(kept - 1);
  return {id_at(kept - 1), LogProb(logits, id_at(kept - 1))};
}

}  // namespace stepproof::inference
