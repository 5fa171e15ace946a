// inference/fingerprint.h: bf16, top-k selection, the polynomial over
// GF(65497), the step fingerprint bytes (docs/FORMAT.md) and the comparison.

#include "inference/fingerprint.h"

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace stepproof::inference {
namespace {

constexpr uint64_t kP = 65497;

// Lagrange evaluation at x straight from the points: an implementation
// independent of the coefficient form.
uint64_t LagrangeAt(const std::vector<uint64_t>& xs, const std::vector<uint64_t>& ys, uint64_t x) {
  auto pw = [](uint64_t a, uint64_t e) {
    uint64_t r = 1;
    a %= kP;
    for (; e; e >>= 1, a = a * a % kP) {
      if (e & 1) r = r * a % kP;
    }
    return r;
  };
  uint64_t sum = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    uint64_t num = 1, den = 1;
    for (size_t j = 0; j < xs.size(); ++j) {
      if (j == i) continue;
      num = num * ((x + kP - xs[j]) % kP) % kP;
      den = den * ((xs[i] + kP - xs[j]) % kP) % kP;
    }
    sum = (sum + ys[i] * num % kP * pw(den, kP - 2)) % kP;
  }
  return sum;
}

std::vector<float> RandomRows(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

TEST(FingerprintBf16, RoundsToNearestEvenAndCanonicalisesNaN) {
  EXPECT_EQ(FingerprintBf16(1.0f), 0x3F80);
  EXPECT_EQ(FingerprintBf16(-2.0f), 0xC000);
  // 1 + 2^-8 is exactly half way between bf16 1.0 and 1 + 2^-7: even wins.
  EXPECT_EQ(FingerprintBf16(1.00390625f), 0x3F80);
  EXPECT_EQ(FingerprintBf16(1.01171875f), 0x3F82);  // 1 + 3*2^-8 -> 1 + 2*2^-7 (even)
  EXPECT_EQ(FingerprintBf16(std::nanf("")), 0x7FC0);
  EXPECT_EQ(FingerprintBf16(-std::nanf("")), 0x7FC0);
  EXPECT_LT(FingerprintBf16(-INFINITY), kP);
}

TEST(SelectFingerprintEntries, OrdersByMagnitudeThenIndex) {
  std::vector<float> v(300, 0.0f);
  v[7] = -5.0f;
  v[3] = 5.0f;  // same magnitude: lower index first
  v[200] = 4.0f;
  v[10] = std::nanf("");  // counts as 0
  const std::vector<FingerprintEntry> e = SelectFingerprintEntries(v);
  ASSERT_EQ(e.size(), 128u);
  EXPECT_EQ(e[0].index, 3u);
  EXPECT_EQ(e[0].bf16, 0x40A0);
  EXPECT_EQ(e[1].index, 7u);
  EXPECT_EQ(e[1].bf16, 0xC0A0);
  EXPECT_EQ(e[2].index, 200u);
  // Then the zeros in index order (10, the NaN, among them).
  EXPECT_EQ(e[3].index, 0u);
  EXPECT_EQ(e[4].index, 1u);
  bool saw_nan_index = false;
  for (const auto& x : e) saw_nan_index |= x.index == 10;
  EXPECT_TRUE(saw_nan_index);
}

TEST(SelectFingerprintEntries, SkipsIndicesWhoseResidueIsTaken) {
  std::vector<float> v(2 * kP + 10, 0.0f);
  v[5] = 9.0f;
  v[5 + kP] = 8.0f;      // same residue as 5: skipped
  v[6 + 2 * kP] = 7.0f;  // residue 6: kept
  v[6] = 6.0f;           // residue 6 taken: skipped
  const std::vector<FingerprintEntry> e = SelectFingerprintEntries(v);
  ASSERT_EQ(e.size(), 128u);
  EXPECT_EQ(e[0].index, 5u);
  EXPECT_EQ(e[1].index, 6 + 2 * kP);
  EXPECT_EQ(e[2].index, 0u);  // the zeros follow; 5 and 6 are not among them
  for (const auto& x : e) {
    EXPECT_NE(x.index, 5 + kP);
    EXPECT_NE(x.index, 6u);
  }
}

TEST(SelectFingerprintEntries, FewValuesGiveFewEntries) {
  EXPECT_EQ(SelectFingerprintEntries(std::vector<float>(20, 1.0f)).size(), 20u);
  EXPECT_TRUE(SelectFingerprintEntries({}).empty());
}

TEST(MakeChunkFingerprint, PolynomialPassesThroughTheSelectedPoints) {
  const std::vector<float> rows = RandomRows(32 * 128, 1);
  const ChunkFingerprint fp = MakeChunkFingerprint(rows);
  const std::vector<FingerprintEntry> e = SelectFingerprintEntries(rows);
  std::vector<uint64_t> xs, ys;
  for (const auto& x : e) {
    EXPECT_EQ(EvaluateFingerprint(fp, static_cast<uint32_t>(x.index % kP)), x.bf16);
    xs.push_back(x.index % kP);
    ys.push_back(x.bf16);
  }
  // Everywhere else it is the Lagrange polynomial through those points.
  for (uint32_t x : {0u, 1u, 4095u, 4096u, 60000u, 65496u}) {
    EXPECT_EQ(EvaluateFingerprint(fp, x), LagrangeAt(xs, ys, x)) << x;
  }
  for (uint16_t c : fp) EXPECT_LT(c, kP);
}

TEST(MakeChunkFingerprint, PadsShortInputsWithZerosAtTheTop) {
  const std::vector<float> rows = {1.0f, -3.0f, 0.5f};
  const ChunkFingerprint fp = MakeChunkFingerprint(rows);
  EXPECT_EQ(EvaluateFingerprint(fp, 0), 0x3F80u);
  EXPECT_EQ(EvaluateFingerprint(fp, 1), 0xC040u);
  EXPECT_EQ(EvaluateFingerprint(fp, 2), 0x3F00u);
  EXPECT_EQ(EvaluateFingerprint(fp, kP - 1), 0u);
  EXPECT_EQ(EvaluateFingerprint(fp, kP - 125), 0u);
}

TEST(StepFingerprintEncoding, HasTheDocumentedLayout) {
  StepFingerprint fp;
  fp.prompt.emplace();
  fp.prompt->fill(0);
  (*fp.prompt)[0] = 0x1234;
  fp.first_chunk = 0x01020304;
  fp.chunks.resize(2);
  fp.chunks[0].fill(1);
  fp.chunks[1].fill(0);
  fp.chunks[1][127] = 65496;
  const std::string bytes = EncodeStepFingerprint(fp);
  ASSERT_EQ(bytes.size(), 2u + 256 + 6 + 2 * 256);
  EXPECT_EQ(bytes.substr(0, 4), std::string("\x01\x01\x12\x34", 4));
  EXPECT_EQ(bytes.substr(258, 6), std::string("\x01\x02\x03\x04\x00\x02", 6));
  EXPECT_EQ(bytes.substr(264, 2), std::string("\x00\x01", 2));
  EXPECT_EQ(bytes.substr(bytes.size() - 2), std::string("\xff\xd8", 2));
  absl::StatusOr<StepFingerprint> back = DecodeStepFingerprint(bytes);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, fp);

  StepFingerprint one;
  one.first_chunk = 3;
  one.chunks.resize(1);
  one.chunks[0].fill(7);
  EXPECT_EQ(EncodeStepFingerprint(one).size(), 264u);  // 256 per 32 tokens + 8
}

TEST(StepFingerprintEncoding, RejectsEveryTruncationAndBadField) {
  StepFingerprint fp;
  fp.prompt.emplace();
  fp.prompt->fill(9);
  fp.first_chunk = 2;
  fp.chunks.resize(1);
  fp.chunks[0].fill(65000);
  const std::string bytes = EncodeStepFingerprint(fp);
  for (size_t n = 0; n < bytes.size(); ++n) {
    EXPECT_FALSE(DecodeStepFingerprint(bytes.substr(0, n)).ok()) << n;
  }
  EXPECT_FALSE(DecodeStepFingerprint(bytes + "x").ok());
  std::string bad = bytes;
  bad[0] = 2;
  EXPECT_FALSE(DecodeStepFingerprint(bad).ok());
  bad = bytes;
  bad[1] = 2;
  EXPECT_FALSE(DecodeStepFingerprint(bad).ok());
  bad = bytes;
  bad[2] = '\xff';  // prompt coefficient 0xff.. >= 65497
  bad[3] = '\xd9';
  EXPECT_FALSE(DecodeStepFingerprint(bad).ok());
  // No chunks with a nonzero first chunk index is not canonical.
  EXPECT_FALSE(DecodeStepFingerprint(std::string("\x01\x00\x00\x00\x00\x01\x00\x00", 8)).ok());
  EXPECT_TRUE(DecodeStepFingerprint(std::string("\x01\x00\x00\x00\x00\x00\x00\x00", 8)).ok());
}

TEST(CompareChunkFingerprint, SameRowsMatchExactly) {
  const std::vector<float> rows = RandomRows(32 * 128, 2);
  const FingerprintComparison c = CompareChunkFingerprint(MakeChunkFingerprint(rows), rows, SameEngineTolerance());
  EXPECT_TRUE(c.passed);
  EXPECT_EQ(c.entries, 128);
  EXPECT_EQ(c.exponent_matches, 128);
  EXPECT_EQ(c.mean_mantissa_diff, 0.0);
}

TEST(CompareChunkFingerprint, SmallNoisePassesCrossDeviceOnlyAndOtherRowsFail) {
  const std::vector<float> rows = RandomRows(32 * 128, 3);
  const ChunkFingerprint fp = MakeChunkFingerprint(rows);
  std::vector<float> noisy = rows;
  std::mt19937 rng(4);
  std::normal_distribution<float> d(0.0f, 2e-3f);
  for (float& x : noisy) x *= 1.0f + d(rng);
  const FingerprintComparison near = CompareChunkFingerprint(fp, noisy, CrossDeviceTolerance());
  EXPECT_TRUE(near.passed) << near.exponent_matches << " " << near.mean_mantissa_diff;
  EXPECT_FALSE(CompareChunkFingerprint(fp, noisy, SameEngineTolerance()).passed);
  const FingerprintComparison other = CompareChunkFingerprint(fp, RandomRows(32 * 128, 5), CrossDeviceTolerance());
  EXPECT_FALSE(other.passed);
  EXPECT_LT(other.exponent_matches, 10);
}

}  // namespace
}  // namespace stepproof::inference
