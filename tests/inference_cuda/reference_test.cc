// The CPU references the CUDA kernels are checked against, checked themselves
// on hand-worked values.
#include "inference/cuda/reference.h"

#include <cmath>
#include <cstring>
#include <vector>

#include "gtest/gtest.h"
#include "inference/cuda/device.h"
#include "inference/cuda/weights.h"

namespace stepproof::inference::cuda {
namespace {

TEST(CudaReference, HalfAndBf16DecodeKnownBitPatterns) {
  EXPECT_EQ(HalfToFloat(0x3c00), 1.0f);
  EXPECT_EQ(HalfToFloat(0xc000), -2.0f);
  EXPECT_EQ(HalfToFloat(0x7bff), 65504.0f);
  EXPECT_EQ(HalfToFloat(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(HalfToFloat(0x3555), 0.333251953125f);
  EXPECT_TRUE(std::isinf(HalfToFloat(0x7c00)));
  EXPECT_EQ(Bf16ToFloat(0x3f80), 1.0f);
  EXPECT_EQ(Bf16ToFloat(0xc0a0), -5.0f);
}

TEST(CudaReference, RmsNormMatchesHandComputation) {
  // x = (3, 4): mean square 12.5, scale 1/sqrt(12.5).
  float x[2] = {3, 4}, w[2] = {1, 2}, y[2];
  RmsNormRef(x, w, y, 1, 2, 0.0f);
  EXPECT_NEAR(y[0], 3 / std::sqrt(12.5), 1e-6);
  EXPECT_NEAR(y[1], 8 / std::sqrt(12.5), 1e-6);
}

TEST(CudaReference, RopeRotatesHalvesByPositionAngle) {
  // head_dim 4: pairs (0,2) with theta = pos, (1,3) with theta = pos / 100.
  float x[4] = {1, 1, 0, 0};
  int32_t pos = 2;
  RopeNeoxRef(x, &pos, 1, 1, 4, 10000.0f);
  EXPECT_NEAR(x[0], std::cos(2.0), 1e-6);
  EXPECT_NEAR(x[2], std::sin(2.0), 1e-6);
  EXPECT_NEAR(x[1], std::cos(0.02), 1e-6);
  EXPECT_NEAR(x[3], std::sin(0.02), 1e-6);
}

TEST(CudaReference, Q8_0MatMulUsesScaleTimesQuant) {
  // One row of 32 weights: scale 0.5 (fp16 0x3800), q = -16..15.
  std::vector<uint8_t> block(34);
  block[0] = 0x00;
  block[1] = 0x38;
  std::vector<float> x(32, 1.0f);
  double expected = 0;
  for (int i = 0; i < 32; ++i) {
    block[2 + i] = static_cast<uint8_t>(static_cast<int8_t>(i - 16));
    expected += 0.5 * (i - 16);
  }
  float y;
  MatMulQ8_0Ref(x.data(), block.data(), &y, 1, 32, 1);
  EXPECT_EQ(y, expected);
}

TEST(CudaReference, AttentionWithEqualScoresAveragesValues) {
  // Two heads sharing one KV head; keys orthogonal to q give equal weights.
  float q[4] = {0, 0, 0, 0};
  float k[4] = {1, 0, 0, 1};  // (n_ctx 2, kv 1, d 2)
  float v[4] = {2, 4, 6, 8};
  float out[4];
  AttentionDecodeRef(q, k, v, out, 2, 1, 2, 2);
  EXPECT_FLOAT_EQ(out[0], 4);
  EXPECT_FLOAT_EQ(out[1], 6);
  EXPECT_FLOAT_EQ(out[2], 4);
  EXPECT_FLOAT_EQ(out[3], 6);
}

TEST(CudaReference, ArgMaxPrefersLowestIndexOnTies) {
  float x[5] = {1, 3, 2, 3, -1};
  EXPECT_EQ(ArgMaxRef(x, 5), 1);
}

TEST(CudaWeights, RepackQ8_0SplitsScalesAndValuesWithoutChangingThem) {
  const int rows = 3, cols = 64;
  std::vector<uint8_t> ggml(rows * (cols / 32) * 34);
  for (size_t i = 0; i < ggml.size(); ++i) ggml[i] = static_cast<uint8_t>(i * 37 + 11);
  // Keep the scales finite: fp16 0x3c00 = 1.0 + the block index / 1024.
  for (size_t b = 0; b < ggml.size(); b += 34) {
    ggml[b] = static_cast<uint8_t>(b / 34);
    ggml[b + 1] = 0x3c;
  }
  std::vector<int8_t> qs(rows * cols);
  std::vector<uint16_t> scales(rows * cols / 32);
  RepackQ8_0(ggml.data(), rows, cols, qs.data(), scales.data());
  // The split layout gives the same matrix product as the ggml layout.
  std::vector<float> x(cols);
  for (int i = 0; i < cols; ++i) x[i] = 0.25f * static_cast<float>(i % 7) - 0.5f;
  std::vector<float> want(rows);
  MatMulQ8_0Ref(x.data(), ggml.data(), want.data(), 1, cols, rows);
  for (int r = 0; r < rows; ++r) {
    double acc = 0;
    for (int i = 0; i < cols; ++i) {
      acc += double(x[i]) * (double(HalfToFloat(scales[r * cols / 32 + i / 32])) * qs[r * cols + i]);
    }
    EXPECT_EQ(static_cast<float>(acc), want[r]) << "row " << r;
  }
  EXPECT_EQ(scales[1], 0x3c01);                        // row 0, block 1
  EXPECT_EQ(static_cast<uint8_t>(qs[32]), ggml[34 + 2]);  // its first value
}

TEST(CudaDevice, ProbeNeverAbortsAndExplainsAbsence) {
  absl::StatusOr<CudaDeviceInfo> info = ProbeCudaDevice();
  if (info.ok()) {
    EXPECT_FALSE(info->name.empty());
    EXPECT_GT(info->compute_capability, 0);
  } else {
    EXPECT_EQ(info.status().code(), absl::StatusCode::kUnavailable);
    EXPECT_FALSE(info.status().message().empty());
  }
}

}  // namespace
}  // namespace stepproof::inference::cuda
