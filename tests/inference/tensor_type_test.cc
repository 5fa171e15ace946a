// The ggml block layouts, checked against blocks written byte by byte from the
// published layout (not only quantise/dequantise round trips), and the dot
// kernels (portable and AVX2) checked against float64 dots of those values.

#include "inference/tensor_type.h"

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "inference/cpu_kernels.h"

namespace stepproof::inference {
namespace {

std::vector<bool> KernelPaths() {
  std::vector<bool> paths = {false};
  if (CpuSupportsAvx2Fma()) paths.push_back(true);
  return paths;
}

void ExpectDotsMatch(TensorType type, const std::vector<uint8_t>& row, const std::vector<double>& values) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> x(values.size());
  for (float& v : x) v = u(rng);
  double want = 0;
  double mag = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    want += values[i] * x[i];
    mag += std::fabs(values[i] * x[i]);
  }
  for (bool avx2 : KernelPaths()) {
    const float got = SelectDot(type, avx2)(row.data(), x.data(), static_cast<int64_t>(x.size()));
    EXPECT_NEAR(got, want, 1e-5 * mag) << TensorTypeName(type) << " avx2=" << avx2;
  }
  // The integer path: activations quantised to blocks of {float d, int32 sum,
  // int8 q[32]}; the expected value uses the documented layout directly.
  if (SelectQuantDot(type, false) == nullptr) return;
  std::vector<uint8_t> xq(x.size() / 32 * kActivationBlockBytes);
  QuantizeActivations(x.data(), static_cast<int64_t>(x.size()), xq.data());
  double want_q = 0, mag_q = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const uint8_t* blk = xq.data() + (i / 32) * kActivationBlockBytes;
    float d;
    std::memcpy(&d, blk, 4);
    const double xv = static_cast<double>(d) * static_cast<int8_t>(blk[8 + i % 32]);
    EXPECT_NEAR(xv, x[i], d * 0.5001);  // round to nearest
    want_q += values[i] * xv;
    mag_q += std::fabs(values[i] * xv);
  }
  for (bool avx2 : KernelPaths()) {
    const float got = SelectQuantDot(type, avx2)(row.data(), xq.data(), static_cast<int64_t>(x.size()));
    EXPECT_NEAR(got, want_q, 1e-5 * mag_q) << TensorTypeName(type) << " integer path, avx2=" << avx2;
  }
}

TEST(ActivationQuantTest, BlocksHoldScaleSumAndRoundedValues) {
  std::vector<float> x(64);
  for (int i = 0; i < 32; ++i) x[i] = (i - 16) * 0.25f;  // amax 4 at i = 0
  for (int i = 32; i < 64; ++i) x[i] = 0.0f;             // an all-zero block
  std::vector<uint8_t> q(2 * kActivationBlockBytes);
  QuantizeActivations(x.data(), 64, q.data());
  float d;
  int32_t sum;
  std::memcpy(&d, q.data(), 4);
  std::memcpy(&sum, q.data() + 4, 4);
  EXPECT_FLOAT_EQ(d, 4.0f / 127.0f);
  EXPECT_EQ(static_cast<int8_t>(q[8 + 0]), -127);
  EXPECT_EQ(static_cast<int8_t>(q[8 + 16]), 0);
  EXPECT_EQ(static_cast<int8_t>(q[8 + 17]), 8);  // 0.25 * 127 / 4 = 7.94
  int32_t want_sum = 0;
  for (int i = 0; i < 32; ++i) want_sum += static_cast<int8_t>(q[8 + i]);
  EXPECT_EQ(sum, want_sum);
  std::memcpy(&d, q.data() + kActivationBlockBytes, 4);
  EXPECT_EQ(d, 0.0f);
  for (int i = 0; i < 32; ++i) EXPECT_EQ(q[kActivationBlockBytes + 8 + i], 0);
}

TEST(Fp16Test, DecodesKnownBitPatterns) {
  EXPECT_EQ(Fp16ToFloat(0x3C00), 1.0f);
  EXPECT_EQ(Fp16ToFloat(0xC000), -2.0f);
  EXPECT_EQ(Fp16ToFloat(0x7BFF), 65504.0f);
  EXPECT_EQ(Fp16ToFloat(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_EQ(Fp16ToFloat(0x3555), 0.333251953125f);
  EXPECT_TRUE(std::isinf(Fp16ToFloat(0x7C00)));
  EXPECT_TRUE(std::isnan(Fp16ToFloat(0x7E00)));
}

TEST(Fp16Test, EncodesWithRoundToNearestEven) {
  EXPECT_EQ(FloatToFp16(1.0f), 0x3C00);
  EXPECT_EQ(FloatToFp16(0.1f), 0x2E66);
  EXPECT_EQ(FloatToFp16(-65504.0f), 0xFBFF);
  EXPECT_EQ(FloatToFp16(1e6f), 0x7C00);  // overflow to inf
  // 1 + 2^-11 is halfway between 1 and 1 + 2^-10: ties to even (1.0).
  EXPECT_EQ(FloatToFp16(1.0f + std::ldexp(1.0f, -11)), 0x3C00);
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = Fp16ToFloat(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(FloatToFp16(f), h) << "half 0x" << std::hex << h;
  }
}

TEST(Bf16Test, ConvertsKnownValues) {
  EXPECT_EQ(Bf16ToFloat(0x3F80), 1.0f);
  EXPECT_EQ(Bf16ToFloat(0xC040), -3.0f);
  EXPECT_EQ(FloatToBf16(1.0f), 0x3F80);
  EXPECT_EQ(FloatToBf16(3.14159265f), 0x4049);
}

TEST(BlockLayoutTest, SizesMatchGgml) {
  EXPECT_EQ(TypeBlockBytes(TensorType::kQ8_0), 34);
  EXPECT_EQ(TypeBlockValues(TensorType::kQ8_0), 32);
  EXPECT_EQ(TypeBlockBytes(TensorType::kQ4_K), 144);
  EXPECT_EQ(TypeBlockValues(TensorType::kQ4_K), 256);
  EXPECT_EQ(TypeBlockBytes(TensorType::kQ6_K), 210);
  EXPECT_EQ(RowBytes(TensorType::kQ8_0, 1536), 1632);
  EXPECT_EQ(RowBytes(TensorType::kBF16, 10), 20);
}

// Q8_0: fp16 d = 0.5 (0x3800), qs[i] = i - 16.
TEST(Q8_0Test, DequantisesHandWrittenBlock) {
  std::vector<uint8_t> blk = {0x00, 0x38};
  for (int i = 0; i < 32; ++i) blk.push_back(static_cast<uint8_t>(static_cast<int8_t>(i - 16)));
  ASSERT_EQ(blk.size(), 34u);
  std::vector<float> out(32);
  DequantizeRow(TensorType::kQ8_0, blk.data(), out.data(), 32);
  std::vector<double> want(32);
  for (int i = 0; i < 32; ++i) {
    want[i] = 0.5 * (i - 16);
    EXPECT_EQ(out[i], want[i]) << i;
  }
  EXPECT_EQ(out[0], -8.0f);
  EXPECT_EQ(out[31], 7.5f);
  ExpectDotsMatch(TensorType::kQ8_0, blk, want);
}

// Q4_K: d = 1.0 (0x3C00), dmin = 0.5 (0x3800); 6-bit scales sc and mins m
// packed by hand into the 12 scale bytes; nibbles low = l % 16, high =
// 15 - l % 16. value = d * sc[j] * q - dmin * m[j].
TEST(Q4_KTest, DequantisesHandWrittenBlock) {
  const int sc[8] = {1, 2, 3, 4, 17, 33, 50, 63};
  const int m[8] = {0, 1, 2, 3, 20, 40, 5, 63};
  std::vector<uint8_t> blk = {0x00, 0x3C, 0x00, 0x38};
  // bytes 0-3: sc[0..3] | (sc[4..7] >> 4) << 6; bytes 4-7: m[0..3] |
  // (m[4..7] >> 4) << 6; bytes 8-11: (sc[4..7] & 15) | (m[4..7] & 15) << 4.
  const uint8_t scales[12] = {65, 130, 195, 196, 64, 129, 2, 195, 65, 129, 82, 255};
  blk.insert(blk.end(), scales, scales + 12);
  for (int c = 0; c < 4; ++c) {
    for (int l = 0; l < 32; ++l) blk.push_back(static_cast<uint8_t>((l % 16) | ((15 - l % 16) << 4)));
  }
  ASSERT_EQ(blk.size(), 144u);
  std::vector<double> want(256);
  for (int c = 0; c < 4; ++c) {
    for (int l = 0; l < 32; ++l) {
      want[64 * c + l] = 1.0 * sc[2 * c] * (l % 16) - 0.5 * m[2 * c];
      want[64 * c + 32 + l] = 1.0 * sc[2 * c + 1] * (15 - l % 16) - 0.5 * m[2 * c + 1];
    }
  }
  std::vector<float> out(256);
  DequantizeRow(TensorType::kQ4_K, blk.data(), out.data(), 256);
  for (int i = 0; i < 256; ++i) EXPECT_EQ(out[i], want[i]) << i;
  // Spot values: sub-block 7 (sc 63, m 63), l = 1: 63 * 14 - 31.5.
  EXPECT_EQ(out[192 + 32 + 1], 63.0f * 14 - 31.5f);
  ExpectDotsMatch(TensorType::kQ4_K, blk, want);
}

// Q6_K: ql[128] low 4 bits, qh[64] high 2 bits, int8 scales[16], fp16 d.
// Value i (half h = i / 128, quarter r = (i % 128) / 32, l = i % 32) has
// q = (nibble of ql[64h + 32(r & 1) + l], high if r >= 2) | (2 bits r of
// qh[32h + l]) << 4, scale scales[8h + 2r + l / 16], x = d * scale * (q - 32).
TEST(Q6_KTest, DequantisesHandWrittenBlock) {
  std::vector<uint8_t> blk(210, 0);
  int q[256];
  int8_t scales[16];
  for (int i = 0; i < 256; ++i) q[i] = (i * 37 + 5) % 64;
  for (int j = 0; j < 16; ++j) scales[j] = static_cast<int8_t>(j * 9 - 70);
  for (int i = 0; i < 256; ++i) {
    const int h = i / 128, r = (i % 128) / 32, l = i % 32;
    uint8_t& lo = blk[64 * h + 32 * (r & 1) + l];
    lo |= static_cast<uint8_t>((q[i] & 0xF) << (r >= 2 ? 4 : 0));
    blk[128 + 32 * h + l] |= static_cast<uint8_t>((q[i] >> 4) << (2 * r));
  }
  std::memcpy(blk.data() + 192, scales, 16);
  blk[208] = 0x00;
  blk[209] = 0x34;  // d = 0.25
  std::vector<double> want(256);
  for (int i = 0; i < 256; ++i) {
    const int h = i / 128, r = (i % 128) / 32, l = i % 32;
    want[i] = 0.25 * scales[8 * h + 2 * r + l / 16] * (q[i] - 32);
  }
  std::vector<float> out(256);
  DequantizeRow(TensorType::kQ6_K, blk.data(), out.data(), 256);
  for (int i = 0; i < 256; ++i) EXPECT_EQ(out[i], want[i]) << i;
  ExpectDotsMatch(TensorType::kQ6_K, blk, want);
}

TEST(QuantizeTest, Q8_0FollowsGgmlReference) {
  std::vector<float> x(32);
  for (int i = 0; i < 32; ++i) x[i] = (i - 10) * 0.1f;  // amax = 2.1 at i = 31
  std::vector<uint8_t> blk(34);
  QuantizeRow(TensorType::kQ8_0, x.data(), blk.data(), 32);
  uint16_t d;
  std::memcpy(&d, blk.data(), 2);
  EXPECT_EQ(d, FloatToFp16(2.1f / 127.0f));
  EXPECT_EQ(static_cast<int8_t>(blk[2 + 31]), 127);
  EXPECT_EQ(static_cast<int8_t>(blk[2 + 10]), 0);
  EXPECT_EQ(static_cast<int8_t>(blk[2 + 0]), static_cast<int8_t>(std::lround(-1.0f * 127.0f / 2.1f)));
}

TEST(QuantizeTest, Q4_KRoundTripIsWithinOneStep) {
  std::mt19937 rng(3);
  std::normal_distribution<float> n(0.0f, 1.0f);
  std::vector<float> x(512);
  for (float& v : x) v = n(rng);
  std::vector<uint8_t> q(2 * 144);
  QuantizeRow(TensorType::kQ4_K, x.data(), q.data(), 512);
  std::vector<float> y(512);
  DequantizeRow(TensorType::kQ4_K, q.data(), y.data(), 512);
  double err = 0, mag = 0;
  for (int i = 0; i < 512; ++i) {
    err = std::max(err, static_cast<double>(std::fabs(x[i] - y[i])));
    mag = std::max(mag, static_cast<double>(std::fabs(x[i])));
  }
  EXPECT_LT(err, 0.25 * mag);  // 4-bit steps of a sub-block's range, plus 6-bit scale error
  EXPECT_GT(err, 0.0);
}

TEST(DotTest, FloatTypesMatchFloat64OnOddLengths) {
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (TensorType type : {TensorType::kF32, TensorType::kF16, TensorType::kBF16}) {
    for (int n : {1, 7, 8, 33, 100, 1536}) {
      std::vector<float> w(n);
      for (float& v : w) v = u(rng);
      std::vector<uint8_t> row(RowBytes(type, n));
      QuantizeRow(type, w.data(), row.data(), n);
      std::vector<float> deq(n);
      DequantizeRow(type, row.data(), deq.data(), n);
      std::vector<double> values(deq.begin(), deq.end());
      ExpectDotsMatch(type, row, values);
    }
  }
}

}  // namespace
}  // namespace stepproof::inference
