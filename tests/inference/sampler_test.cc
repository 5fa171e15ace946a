#include "inference/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "inference/philox.h"

namespace stepproof::inference {
namespace {

using ::testing::HasSubstr;

std::vector<float> LogitsFor(const std::vector<double>& probs) {
  std::vector<float> l;
  for (double p : probs) l.push_back(static_cast<float>(std::log(p)));
  return l;
}

SamplingParams Params(float t, float top_p, int32_t top_k, uint64_t seed) {
  SamplingParams p;
  p.temperature = t;
  p.top_p = top_p;
  p.top_k = top_k;
  p.seed = seed;
  return p;
}

// Pearson chi-square of counts against expected probabilities (tokens with
// expected probability 0 must never appear).
double ChiSquare(const std::vector<int>& counts, const std::vector<double>& p,
                 int n) {
  double chi = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    if (p[i] == 0) {
      EXPECT_EQ(counts[i], 0) << "token " << i << " should be excluded";
      continue;
    }
    const double e = p[i] * n;
    chi += (counts[i] - e) * (counts[i] - e) / e;
  }
  return chi;
}

std::vector<int> Counts(const Sampler& s, const std::vector<float>& logits,
                        int n) {
  std::vector<int> c(logits.size(), 0);
  for (int pos = 0; pos < n; ++pos) {
    ++c[s.Sample(logits, static_cast<uint64_t>(pos)).id];
  }
  return c;
}

// 99.9% quantiles of chi-square with 1..4 degrees of freedom.
const double kChi999[] = {0, 10.83, 13.82, 16.27, 18.47};

struct DistCase {
  std::string name;
  SamplingParams params;
  std::vector<double> expected;
};

TEST(SamplerTest, DrawsMatchTheSpecifiedDistribution) {
  const std::vector<double> base = {0.5, 0.25, 0.15, 0.1};
  const std::vector<float> logits = LogitsFor(base);
  const double t2 = 0.25 + 0.0625 + 0.0225 + 0.01;  // p^2 at T = 0.5
  const std::vector<DistCase> cases = {
      {"T=1", Params(1.0f, 1.0f, 0, 0), base},
      {"T=0.5", Params(0.5f, 1.0f, 0, 0),
       {0.25 / t2, 0.0625 / t2, 0.0225 / t2, 0.01 / t2}},
      {"top_k=3", Params(1.0f, 1.0f, 3, 0), {0.5 / 0.9, 0.25 / 0.9, 0.15 / 0.9, 0}},
      // 0.5 + 0.25 = 0.75 >= 0.7: the two most likely, renormalised.
      {"top_p=0.7", Params(1.0f, 0.7f, 0, 0), {2.0 / 3, 1.0 / 3, 0, 0}},
      // top-k first (0.5, 0.25, 0.15 -> 5/9, 5/18, 1/6), then top-p 0.8 of
      // that: 5/9 + 5/18 = 0.833 >= 0.8.
      {"top_k=3,top_p=0.8", Params(1.0f, 0.8f, 3, 0), {2.0 / 3, 1.0 / 3, 0, 0}},
  };
  const int n = 20000;
  for (const DistCase& c : cases) {
    for (uint64_t seed : {1u, 2u, 3u}) {
      SamplingParams p = c.params;
      p.seed = seed;
      const std::vector<int> counts = Counts(Sampler(p), logits, n);
      int dof = -1;
      for (double e : c.expected) dof += e > 0 ? 1 : 0;
      EXPECT_LT(ChiSquare(counts, c.expected, n), kChi999[dof])
          << c.name << " seed " << seed;
    }
  }
}

TEST(SamplerTest, TopKAndTopPNeverChooseExcludedTokens) {
  const std::vector<float> logits = {1.0f, 5.0f, 3.0f, 4.0f, -2.0f};
  std::set<int32_t> seen;
  const Sampler k2(Params(2.0f, 1.0f, 2, 9));
  for (uint64_t pos = 0; pos < 3000; ++pos) seen.insert(k2.Sample(logits, pos).id);
  EXPECT_EQ(seen, (std::set<int32_t>{1, 3}));

  seen.clear();
  const std::vector<float> lp = LogitsFor({0.05, 0.5, 0.3, 0.15});
  const Sampler p45(Params(1.0f, 0.45f, 0, 9));  // 0.5 >= 0.45: one token
  for (uint64_t pos = 0; pos < 3000; ++pos) seen.insert(p45.Sample(lp, pos).id);
  EXPECT_EQ(seen, (std::set<int32_t>{1}));

  seen.clear();
  const Sampler p9(Params(1.0f, 0.9f, 0, 9));  // 0.5 + 0.3 + 0.15 >= 0.9
  for (uint64_t pos = 0; pos < 3000; ++pos) seen.insert(p9.Sample(lp, pos).id);
  EXPECT_EQ(seen, (std::set<int32_t>{1, 2, 3}));
}

TEST(SamplerTest, DrawFollowsPhiloxUniformThroughTheSortedCdf) {
  // Two equal logits: sorted order is id 0 then id 1, each with mass 1/2,
  // so the token is 0 exactly when u < 1/2, u = PhiloxUniform(seed, pos).
  const std::vector<float> logits = {0.0f, 0.0f};
  const Sampler s(Params(1.0f, 1.0f, 0, 77));
  for (uint64_t pos = 0; pos < 500; ++pos) {
    const int32_t want = PhiloxUniform(77, pos) < 0.5 ? 0 : 1;
    EXPECT_EQ(s.Sample(logits, pos).id, want) << "position " << pos;
  }
  // With ids reversed in probability, the order puts the likelier id 1
  // first: masses 0.8 (id 1) then 0.2 (id 0).
  const std::vector<float> l2 = LogitsFor({0.2, 0.8});
  for (uint64_t pos = 0; pos < 500; ++pos) {
    const double u = PhiloxUniform(77, pos);
    if (std::abs(u - 0.8) < 1e-6) continue;  // too close to call in float
    EXPECT_EQ(s.Sample(l2, pos).id, u < 0.8 ? 1 : 0) << "position " << pos;
  }
}

// docs/DECODING.md "Sampling", steps 2-7, written the plain way: a full sort
// and straight loops. The engine visits the order lazily; both must agree.
int32_t SpecSample(const std::vector<float>& l, const SamplingParams& p,
                   uint64_t pos) {
  const size_t v = l.size();
  std::vector<int32_t> order(v);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int32_t a, int32_t b) { return l[a] > l[b]; });
  const double lmax = l[order[0]];
  auto w = [&](int32_t i) { return std::exp((l[i] - lmax) / double(p.temperature)); };
  size_t k = (p.top_k > 0 && size_t(p.top_k) < v) ? size_t(p.top_k) : v;
  std::vector<int32_t> kept(order.begin(), order.begin() + k);
  std::vector<int32_t> by_id = kept;
  std::sort(by_id.begin(), by_id.end());
  double s = 0;
  for (int32_t i : by_id) s += w(i);
  double span = s;
  if (p.top_p < 1.0f) {
    double c = 0;
    size_t n = 0;
    while (n < kept.size()) {
      c += w(kept[n++]);
      if (c >= double(p.top_p) * s) break;
    }
    kept.resize(n);
    span = c;
  }
  const double target = PhiloxUniform(p.seed, pos) * span;
  double c = 0;
  for (int32_t i : kept) {
    c += w(i);
    if (c > target) return i;
  }
  return kept.back();
}

TEST(SamplerTest, MatchesAPlainFullSortImplementationOfTheSpec) {
  std::mt19937 rng(99);
  for (int round = 0; round < 40; ++round) {
    const size_t v = 1 + rng() % 3000;
    std::vector<float> logits(v);
    // Coarse values so that ties are common.
    for (float& x : logits) x = static_cast<float>(int(rng() % 64) - 32) / 4.0f;
    SamplingParams p;
    p.temperature = 0.1f + static_cast<float>(rng() % 200) / 100.0f;
    p.top_p = (rng() % 3 == 0) ? 1.0f : 0.05f + static_cast<float>(rng() % 95) / 100.0f;
    p.top_k = (rng() % 2 == 0) ? 0 : static_cast<int32_t>(1 + rng() % v);
    p.seed = rng();
    ASSERT_TRUE(ValidateSamplingParams(p, static_cast<int32_t>(v)).ok());
    const Sampler s(p);
    for (uint64_t pos = 0; pos < 50; ++pos) {
      ASSERT_EQ(s.Sample(logits, pos).id, SpecSample(logits, p, pos))
          << "round " << round << " v " << v << " T " << p.temperature
          << " top_p " << p.top_p << " top_k " << p.top_k << " pos " << pos;
    }
  }
}

TEST(SamplerTest, SameSeedAndPositionGiveTheSameToken) {
  const std::vector<float> logits = LogitsFor({0.3, 0.3, 0.2, 0.2});
  const Sampler a(Params(0.7f, 0.95f, 0, 1234));
  const Sampler b(Params(0.7f, 0.95f, 0, 1234));
  const Sampler c(Params(0.7f, 0.95f, 0, 1235));
  int differ = 0;
  for (uint64_t pos = 0; pos < 200; ++pos) {
    EXPECT_EQ(a.Sample(logits, pos).id, b.Sample(logits, pos).id);
    differ += a.Sample(logits, pos).id != c.Sample(logits, pos).id;
  }
  EXPECT_GT(differ, 50);  // another seed gives another sequence
}

TEST(SamplerTest, GreedyTakesArgmaxWithLowestIndexOnTies) {
  SamplingParams p;
  p.greedy = true;
  const Sampler g(p);
  EXPECT_EQ(g.Sample(std::vector<float>{1, 3, 2, 3}, 0).id, 1);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(g.Sample(std::vector<float>{nan, -1, -5}, 0).id, 1);
  const Sampler t0(Params(0.0f, 0.95f, 0, 5));  // temperature 0 is greedy
  for (uint64_t pos = 0; pos < 50; ++pos) {
    EXPECT_EQ(t0.Sample(std::vector<float>{0.1f, 0.2f, 0.15f}, pos).id, 1);
  }
}

TEST(SamplerTest, LogprobIsLogSoftmaxOfRawLogitsAtTheChosenId) {
  // softmax(0, ln 3) = (1/4, 3/4) whatever the temperature.
  const std::vector<float> logits = {0.0f, static_cast<float>(std::log(3.0))};
  SamplingParams p;
  p.greedy = true;
  EXPECT_NEAR(Sampler(p).Sample(logits, 0).logprob, std::log(0.75), 1e-6);
  const Sampler hot(Params(5.0f, 1.0f, 0, 3));
  for (uint64_t pos = 0; pos < 100; ++pos) {
    const SampledToken t = hot.Sample(logits, pos);
    EXPECT_NEAR(t.logprob, t.id == 0 ? std::log(0.25) : std::log(0.75), 1e-6);
  }
}

TEST(SamplerTest, LargeVocabularyIsHandled) {
  std::vector<float> logits(151936);
  for (size_t i = 0; i < logits.size(); ++i) {
    logits[i] = static_cast<float>(std::sin(static_cast<double>(i)) * 8.0);
  }
  const Sampler s(Params(0.6f, 0.95f, 0, 11));
  for (uint64_t pos = 0; pos < 20; ++pos) {
    const SampledToken t = s.Sample(logits, pos);
    ASSERT_GE(t.id, 0);
    ASSERT_LT(t.id, 151936);
    EXPECT_LE(t.logprob, 0.0f);
  }
}

void ExpectInvalid(const SamplingParams& p, int32_t vocab,
                   const std::string& field) {
  const absl::Status s = ValidateSamplingParams(p, vocab);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << field;
  EXPECT_THAT(std::string(s.message()), HasSubstr(field));
}

TEST(SamplerTest, ValidationNamesTheBadField) {
  EXPECT_TRUE(ValidateSamplingParams(SamplingParams(), 100).ok());
  EXPECT_TRUE(ValidateSamplingParams(Params(0.0f, 1.0f, 100, 0), 100).ok());
  EXPECT_TRUE(ValidateSamplingParams(Params(10.0f, 0.01f, 0, 0), 100).ok());
  ExpectInvalid(Params(-0.1f, 0.9f, 0, 0), 100, "temperature");
  ExpectInvalid(Params(10.5f, 0.9f, 0, 0), 100, "temperature");
  ExpectInvalid(Params(std::numeric_limits<float>::infinity(), 0.9f, 0, 0), 100,
                "temperature");
  ExpectInvalid(Params(std::nanf(""), 0.9f, 0, 0), 100, "temperature");
  ExpectInvalid(Params(0.6f, 0.0f, 0, 0), 100, "top_p");
  ExpectInvalid(Params(0.6f, 1.01f, 0, 0), 100, "top_p");
  ExpectInvalid(Params(0.6f, std::nanf(""), 0, 0), 100, "top_p");
  ExpectInvalid(Params(0.6f, 0.9f, -1, 0), 100, "top_k");
  ExpectInvalid(Params(0.6f, 0.9f, 101, 0), 100, "top_k");
  ExpectInvalid(SamplingParams(), 0, "vocab_size");
}

}  // namespace
}  // namespace stepproof::inference
