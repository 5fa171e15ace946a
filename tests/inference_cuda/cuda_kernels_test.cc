// Each CUDA kernel against its CPU reference on fresh random inputs.
// Tolerance: |gpu - ref| <= atol + rtol * |ref|; the references accumulate in
// double, the kernels in float with a different summation order, so rtol is
// a few float ulps times log2 of the reduction length, and atol covers
// cancellation in long dot products. Skips when no CUDA device is usable.
#include <cuda_runtime_api.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "inference/cuda/device.h"
#include "inference/cuda/kernels.h"
#include "inference/cuda/reference.h"
#include "tests/inference_cuda/cuda_test_support.h"

namespace stepproof::inference::cuda {
namespace {

constexpr float kAtol = 1e-4f;
constexpr float kRtol = 1e-4f;

using testing::DeviceBuffer;

// The shared fixture (tests/inference_cuda/cuda_test_support.h) with this
// file's seed and default tolerances.
class CudaKernelsTest : public testing::CudaTest {
 protected:
  CudaKernelsTest() { rng_.seed(12345); }
  static void ExpectClose(const std::vector<float>& gpu, const std::vector<float>& ref, float atol = kAtol,
                          float rtol = kRtol) {
    CudaTest::ExpectClose(gpu, ref, atol, rtol);
  }
};

TEST_F(CudaKernelsTest, RmsNormMatchesReference) {
  int rows = 7, cols = 1536;
  auto x = Random(rows * cols), w = Random(cols);
  std::vector<float> ref(rows * cols);
  RmsNormRef(x.data(), w.data(), ref.data(), rows, cols, 1e-6f);
  DeviceBuffer<float> dx(x), dw(w), dy(ref.size());
  ASSERT_TRUE(RmsNorm(dx.get(), dw.get(), dy.get(), rows, cols, 1e-6f, 0).ok());
  ExpectClose(dy.ToHost(), ref);
}

TEST_F(CudaKernelsTest, RopeMatchesReference) {
  int rows = 5, heads = 12, d = 128;
  auto x = Random(rows * heads * d);
  std::vector<int32_t> pos = {0, 1, 17, 1000, 4095};
  auto ref = x;
  RopeNeoxRef(ref.data(), pos.data(), rows, heads, d, 10000.0f);
  DeviceBuffer<float> dx(x);
  DeviceBuffer<int32_t> dp(pos);
  ASSERT_TRUE(RopeNeox(dx.get(), dp.get(), rows, heads, d, 10000.0f, 0).ok());
  // powf/sincosf on large angles: a looser relative bound.
  ExpectClose(dx.ToHost(), ref, 2e-3f, 2e-3f);
}

TEST_F(CudaKernelsTest, SwiGluMatchesReference) {
  int n = 8960;
  auto g = Random(n, 3.0f), u = Random(n);
  std::vector<float> ref(n);
  SwiGluRef(g.data(), u.data(), ref.data(), n);
  DeviceBuffer<float> dg(g), du(u), dout(n);
  ASSERT_TRUE(SwiGlu(dg.get(), du.get(), dout.get(), n, 0).ok());
  ExpectClose(dout.ToHost(), ref);
}

TEST_F(CudaKernelsTest, MatMulF32AndBf16MatchReference) {
  int rows = 3, in = 1536, out = 257;
  auto x = Random(rows * in), wf = Random(size_t(out) * in, 0.05f);
  std::vector<uint16_t> wb(wf.size());
  for (size_t i = 0; i < wf.size(); ++i) {
    uint32_t bits;
    std::memcpy(&bits, &wf[i], 4);
    wb[i] = static_cast<uint16_t>(bits >> 16);
  }
  std::vector<float> ref_f(rows * out), ref_b(rows * out);
  MatMulF32Ref(x.data(), wf.data(), ref_f.data(), rows, in, out);
  MatMulBf16Ref(x.data(), wb.data(), ref_b.data(), rows, in, out);
  DeviceBuffer<float> dx(x), dwf(wf), dy(ref_f.size());
  DeviceBuffer<uint16_t> dwb(wb);
  ASSERT_TRUE(MatMulF32(dx.get(), dwf.get(), dy.get(), rows, in, out, 0).ok());
  ExpectClose(dy.ToHost(), ref_f, 1e-3f, 1e-4f);
  ASSERT_TRUE(MatMulBf16(dx.get(), dwb.get(), dy.get(), rows, in, out, 0).ok());
  ExpectClose(dy.ToHost(), ref_b, 1e-3f, 1e-4f);
}

TEST_F(CudaKernelsTest, MatMulQ8_0MatchesReference) {
  int rows = 2, in = 1536, out = 129;
  std::vector<uint8_t> w(size_t(out) * (in / 32) * 34);
  std::uniform_int_distribution<int> q(-127, 127);
  for (size_t b = 0; b < w.size(); b += 34) {
    w[b] = 0x66;  // fp16 scale 0.0125 (0x2266)
    w[b + 1] = 0x22;
    for (int i = 0; i < 32; ++i) w[b + 2 + i] = uint8_t(int8_t(q(rng_)));
  }
  auto x = Random(rows * in);
  std::vector<float> ref(rows * out);
  MatMulQ8_0Ref(x.data(), w.data(), ref.data(), rows, in, out);
  DeviceBuffer<float> dx(x), dy(ref.size());
  DeviceBuffer<uint8_t> dw(w);
  ASSERT_TRUE(MatMulQ8_0(dx.get(), dw.get(), dy.get(), rows, in, out, 0).ok());
  ExpectClose(dy.ToHost(), ref, 1e-3f, 1e-4f);
  EXPECT_EQ(MatMulQ8_0(dx.get(), dw.get(), dy.get(), rows, 33, out, 0).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(CudaKernelsTest, AttentionDecodeMatchesReference) {
  int heads = 12, kv = 2, d = 128;
  for (int n_ctx : {1, 33, 1000}) {
    auto q = Random(heads * d), k = Random(size_t(n_ctx) * kv * d),
         v = Random(size_t(n_ctx) * kv * d);
    std::vector<float> ref(heads * d);
    AttentionDecodeRef(q.data(), k.data(), v.data(), ref.data(), heads, kv, d, n_ctx);
    DeviceBuffer<float> dq(q), dk(k), dv(v), dout(ref.size());
    ASSERT_TRUE(AttentionDecode(dq.get(), dk.get(), dv.get(), dout.get(), heads,
                                kv, d, n_ctx, 0)
                    .ok());
    ExpectClose(dout.ToHost(), ref, 1e-4f, 1e-3f);
  }
}

TEST_F(CudaKernelsTest, ArgMaxMatchesReferenceIncludingTies) {
  auto x = Random(151936);
  x[777] = x[151000] = 100.0f;  // a tie: the lowest index wins
  DeviceBuffer<float> dx(x);
  DeviceBuffer<int32_t> dr(1);
  ASSERT_TRUE(ArgMax(dx.get(), int(x.size()), dr.get(), 0).ok());
  EXPECT_EQ(dr.ToHost()[0], ArgMaxRef(x.data(), int(x.size())));
  EXPECT_EQ(dr.ToHost()[0], 777);
}

}  // namespace
}  // namespace stepproof::inference::cuda
