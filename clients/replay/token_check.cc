#include "clients/replay/token_check.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "inference/philox.h"

namespace stepproof::clients {
namespace {

float Clean(float v) { return std::isnan(v) ? -INFINITY : v; }

// The tolerant check of a sampled token: docs/DECODING.md steps 2-7 with the
// verifier's logits, accepting a draw near the recorded token's interval.
bool NearSampledBoundary(absl::Span<const float> logits, const inference::SamplingParams& p, uint64_t position,
                         int32_t recorded, double slack) {
  const int32_t V = static_cast<int32_t>(logits.size());
  std::vector<int32_t> order(V);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int32_t a, int32_t b) { return Clean(logits[a]) > Clean(logits[b]); });
  const double lmax = Clean(logits[order[0]]);
  if (!std::isfinite(lmax)) return order[0] == recorded;
  const int32_t k = (p.top_k > 0 && p.top_k < V) ? p.top_k : V;
  std::vector<double> w(k);
  for (int32_t j = 0; j < k; ++j) w[j] = std::exp((Clean(logits[order[j]]) - lmax) / double{p.temperature});
  // S in ascending id order over the kept set.
  std::vector<int32_t> by_id(order.begin(), order.begin() + k);
  std::vector<double> w_by_id(V, 0.0);
  for (int32_t j = 0; j < k; ++j) w_by_id[order[j]] = w[j];
  std::sort(by_id.begin(), by_id.end());
  double S = 0;
  for (int32_t id : by_id) S += w_by_id[id];
  std::vector<double> c(k);
  double run = 0;
  for (int32_t j = 0; j < k; ++j) c[j] = (run += w[j]);
  int32_t L = k;
  double span = S;
  if (p.top_p < 1.0f) {
    const double need = double{p.top_p} * S;
    L = 1;
    while (L < k && c[L - 1] < need) ++L;
    span = c[L - 1];
  }
  const double target = inference::PhiloxUniform(p.seed, position) * span;
  // With slack, the top-p cut itself may move by one: allow the next id too.
  const int32_t kept = std::min(k, L + (slack > 0 ? 1 : 0));
  for (int32_t j = 0; j < kept; ++j) {
    if (order[j] != recorded) continue;
    const double lo = j ? c[j - 1] : 0.0;
    return target >= lo * (1 - slack) - slack && target < c[j] * (1 + slack) + slack;
  }
  return false;
}

}  // namespace

TokenCheck CheckToken(absl::Span<const float> logits, const inference::SamplingParams& params, uint64_t position,
                      int32_t recorded, const TokenTolerance& tolerance) {
  TokenCheck check;
  check.expected = inference::Sampler(params).Sample(logits, position).id;
  check.exact = check.expected == recorded;
  check.accepted = check.exact;
  if (check.accepted || recorded < 0 || recorded >= static_cast<int32_t>(logits.size())) return check;
  if (params.greedy || params.temperature == 0.0f) {
    check.accepted = Clean(logits[recorded]) >= Clean(logits[check.expected]) - tolerance.greedy_tie &&
                     tolerance.greedy_tie > 0;
  } else if (tolerance.boundary > 0) {
    check.accepted = NearSampledBoundary(logits, params, position, recorded, tolerance.boundary);
  }
  return check;
}

}  // namespace stepproof::clients
