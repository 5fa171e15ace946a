#include "inference/philox.h"

#include <cmath>
#include <cstdint>

#include "gtest/gtest.h"

namespace stepproof::inference {
namespace {

// Known-answer vectors from Random123's kat_vectors file (counter, key,
// expected), lines "philox4x32 7 ..." and "philox4x32 10 ...".
struct Kat {
  int rounds;
  PhiloxCounter ctr;
  PhiloxKey key;
  PhiloxCounter want;
};

const Kat kKats[] = {
    {7, {0, 0, 0, 0}, {0, 0}, {0x5f6fb709, 0x0d893f64, 0x4f121f81, 0x4f730a48}},
    {7,
     {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
     {0xffffffff, 0xffffffff},
     {0x5207ddc2, 0x45165e59, 0x4d8ee751, 0x8c52f662}},
    {7,
     {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
     {0xa4093822, 0x299f31d0},
     {0x4dfccaba, 0x190a87f0, 0xc47362ba, 0xb6b5242a}},
    {10, {0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
    {10,
     {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
     {0xffffffff, 0xffffffff},
     {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
    {10,
     {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
     {0xa4093822, 0x299f31d0},
     {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
};

TEST(PhiloxTest, MatchesRandom123KnownAnswers) {
  for (const Kat& k : kKats) {
    EXPECT_EQ(Philox4x32(k.ctr, k.key, k.rounds), k.want)
        << "rounds " << k.rounds << " ctr[0] " << std::hex << k.ctr[0];
  }
}

TEST(PhiloxTest, DefaultIsTenRounds) {
  EXPECT_EQ(Philox4x32({0, 0, 0, 0}, {0, 0}),
            (PhiloxCounter{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}));
}

TEST(PhiloxTest, UniformTakesTheTop53BitsOfWords1And0) {
  // seed 0, position 0 is the all-zero KAT: x0 = 6627e8d5, x1 = e169c58d.
  const uint64_t bits = (uint64_t{0xe169c58d} << 32) | 0x6627e8d5;
  EXPECT_EQ(PhiloxUniform(0, 0), std::ldexp(static_cast<double>(bits >> 11), -53));
  // seed = position = 2^64-1 puts ffffffff in key and counter words 0-1 only.
  const PhiloxCounter x =
      Philox4x32({0xffffffff, 0xffffffff, 0, 0}, {0xffffffff, 0xffffffff});
  const uint64_t b2 = (uint64_t{x[1]} << 32) | x[0];
  EXPECT_EQ(PhiloxUniform(~uint64_t{0}, ~uint64_t{0}),
            std::ldexp(static_cast<double>(b2 >> 11), -53));
}

TEST(PhiloxTest, UniformMatchesTheDocumentedDrawVectors) {
  // docs/DECODING.md, computed by the Python reference printed there.
  EXPECT_EQ(PhiloxUniform(0, 0), 0x1.c2d38b1acc4fdp-1);
  EXPECT_EQ(PhiloxUniform(42, 7), 0x1.a1e132156ef60p-2);
  EXPECT_EQ(PhiloxUniform(~uint64_t{0}, (uint64_t{1} << 40) + 3),
            0x1.f333edcd6a9f4p-3);
  EXPECT_EQ(Philox4x32({7, 0, 0, 0}, {42, 0}),
            (PhiloxCounter{0x5bbd83b1, 0x68784c85, 0x172067aa, 0x2e6b75b7}));
}

TEST(PhiloxTest, UniformIsInUnitIntervalWithMeanOneHalf) {
  double sum = 0;
  const int n = 100000;
  for (int i = 0; i < n; ++i) {
    const double u = PhiloxUniform(42, static_cast<uint64_t>(i));
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
  }
  // Standard error of the mean is sqrt(1/12/n) ~ 0.0009.
  EXPECT_NEAR(sum / n, 0.5, 0.005);
}

}  // namespace
}  // namespace stepproof::inference
