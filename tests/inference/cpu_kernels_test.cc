// The AVX-512 VNNI Q8_0 kernel: against a float64 dot of the documented block
// layout, bit for bit against the AVX2 kernel (on random rows of every length
// shape the kernel distinguishes: pairs of blocks, an odd last block; extreme
// values; subnormal, zero and negative scales), and
// through MatMul and a whole model. Skipped where the CPU lacks AVX-512 VNNI.

#include <unistd.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "inference/cpu_kernels.h"
#include "inference/gguf.h"
#include "inference/model.h"
#include "inference/tensor_type.h"
#include "inference/thread_pool.h"
#include "tests/inference/test_models.h"

namespace stepproof::inference {
namespace {

// Random Q8_0 row: scales from a mix of ordinary, negative, zero and
// subnormal fp16 values; int8 values uniform over [-128, 127].
std::vector<uint8_t> RandomRow(int64_t nb, std::mt19937& rng) {
  std::vector<uint8_t> row(static_cast<size_t>(nb * kQ8_0BlockBytes));
  std::uniform_real_distribution<float> u(-0.05f, 0.05f);
  for (int64_t b = 0; b < nb; ++b) {
    uint8_t* blk = row.data() + b * kQ8_0BlockBytes;
    uint16_t d = FloatToFp16(u(rng));
    if (rng() % 17 == 0) d = static_cast<uint16_t>(rng() % 0x400);  // subnormal or zero
    std::memcpy(blk, &d, 2);
    for (int i = 0; i < 32; ++i) blk[2 + i] = static_cast<uint8_t>(rng());
  }
  return row;
}

std::vector<float> RandomX(int64_t n, std::mt19937& rng) {
  std::uniform_real_distribution<float> u(-2.0f, 2.0f);
  std::vector<float> x(static_cast<size_t>(n));
  for (float& v : x) v = u(rng);
  if (n >= 64) {
    for (int i = 32; i < 64; ++i) x[i] = 0.0f;  // an all-zero activation block
  }
  return x;
}

// float64 sum over blocks of fp16(d_w) * d_x * sum(w * q).
double Reference(const std::vector<uint8_t>& row, const std::vector<uint8_t>& xq, int64_t nb, double* mag) {
  double s = 0;
  *mag = 0;
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk = row.data() + b * kQ8_0BlockBytes;
    const uint8_t* a = xq.data() + b * kActivationBlockBytes;
    uint16_t h;
    float d;
    std::memcpy(&h, blk, 2);
    std::memcpy(&d, a, 4);
    int64_t isum = 0, iabs = 0;
    for (int i = 0; i < 32; ++i) {
      const int p = static_cast<int8_t>(blk[2 + i]) * static_cast<int8_t>(a[8 + i]);
      isum += p;
      iabs += std::abs(p);
    }
    const double scale = static_cast<double>(Fp16ToFloat(h)) * d;
    s += scale * static_cast<double>(isum);
    *mag += std::fabs(scale) * static_cast<double>(iabs);
  }
  return s;
}

uint32_t Bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

TEST(Q8_0VnniTest, ActivationLayoutHoldsBiasedValuesAndScales) {
  std::mt19937 rng(3);
  const int64_t n = 3 * 32;  // odd block count: a zero-padded last pair
  const std::vector<float> x = RandomX(n, rng);
  std::vector<uint8_t> xq(3 * kActivationBlockBytes);
  QuantizeActivations(x.data(), n, xq.data());
  ASSERT_EQ(Q8_0VnniActivationBytes(n), 2 * 64 + 16 * 4);
  std::vector<uint8_t> xv(static_cast<size_t>(Q8_0VnniActivationBytes(n)), 0xAB);
  PrepareQ8_0VnniActivations(xq.data(), n, xv.data());
  for (int b = 0; b < 3; ++b) {
    const uint8_t* a = xq.data() + b * kActivationBlockBytes;
    for (int i = 0; i < 32; ++i) EXPECT_EQ(xv[b * 32 + i], static_cast<int8_t>(a[8 + i]) + 128) << b << " " << i;
    EXPECT_EQ(std::memcmp(xv.data() + 128 + 4 * b, a, 4), 0) << b;
  }
  for (int i = 96; i < 128; ++i) EXPECT_EQ(xv[i], 0) << i;            // padding values
  for (int i = 3 * 4; i < 64; ++i) EXPECT_EQ(xv[128 + i], 0) << i;     // padding scales
}

TEST(Q8_0VnniTest, MatchesReferenceAndAvx2BitForBit) {
  if (!CpuSupportsAvx512Vnni()) GTEST_SKIP() << "no AVX-512 VNNI on this CPU";
  ASSERT_TRUE(CpuSupportsAvx2Fma());
  std::mt19937 rng(11);
  const QuantDotFn avx2 = SelectQuantDot(TensorType::kQ8_0, true);
  const QuantDotFn portable = SelectQuantDot(TensorType::kQ8_0, false);
  // Block counts: odd and even, around the groups of four pairs (8 blocks),
  // the engine's 48 (hidden 1536) and 280 (FFN 8960).
  for (int64_t nb : {1, 2, 3, 7, 8, 9, 10, 14, 15, 16, 17, 18, 31, 32, 33, 47, 48, 49, 64, 100, 280, 281}) {
    for (int rep = 0; rep < 20; ++rep) {
      const int64_t n = nb * 32;
      const std::vector<uint8_t> row = RandomRow(nb, rng);
      const std::vector<float> x = RandomX(n, rng);
      std::vector<uint8_t> xq(static_cast<size_t>(nb * kActivationBlockBytes));
      QuantizeActivations(x.data(), n, xq.data());
      std::vector<uint8_t> xv(static_cast<size_t>(Q8_0VnniActivationBytes(n)));
      PrepareQ8_0VnniActivations(xq.data(), n, xv.data());
      const float got = QDotQ8_0Avx512Vnni(row.data(), xv.data(), n);
      double mag = 0;
      const double want = Reference(row, xq, nb, &mag);
      ASSERT_NEAR(got, want, 1e-6 * mag + 1e-30) << "nb=" << nb << " rep=" << rep;
      ASSERT_NEAR(got, portable(row.data(), xq.data(), n), 1e-6 * mag + 1e-30) << "nb=" << nb;
      const float want_avx2 = avx2(row.data(), xq.data(), n);
      ASSERT_EQ(Bits(got), Bits(want_avx2)) << "nb=" << nb << " rep=" << rep << " got " << got << " avx2 "
                                            << want_avx2;
    }
  }
}

TEST(Q8_0VnniTest, ExtremeValuesAreExact) {
  if (!CpuSupportsAvx512Vnni()) GTEST_SKIP() << "no AVX-512 VNNI on this CPU";
  // Every weight -128 (the value |w| overflows for), activations +-127: the
  // integer sums are +-128 * 127 * 32 per block, exact in int32.
  const int64_t nb = 33, n = nb * 32;
  std::vector<uint8_t> row(static_cast<size_t>(nb * kQ8_0BlockBytes), 0x80);
  std::vector<float> x(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) x[i] = (i / 32) % 2 == 0 ? 1.0f : -1.0f;
  for (int64_t b = 0; b < nb; ++b) {
    const uint16_t one = 0x3C00;  // fp16 1.0
    std::memcpy(row.data() + b * kQ8_0BlockBytes, &one, 2);
  }
  std::vector<uint8_t> xq(static_cast<size_t>(nb * kActivationBlockBytes));
  QuantizeActivations(x.data(), n, xq.data());
  std::vector<uint8_t> xv(static_cast<size_t>(Q8_0VnniActivationBytes(n)));
  PrepareQ8_0VnniActivations(xq.data(), n, xv.data());
  // 17 blocks of x = +1 (q = 127, d = 1/127) and 16 of -1: sum = -128 * 32 * (17 - 16) * (127 * d).
  const float got = QDotQ8_0Avx512Vnni(row.data(), xv.data(), n);
  EXPECT_NEAR(got, -128.0 * 32.0, 1e-3);
  EXPECT_EQ(Bits(got), Bits(SelectQuantDot(TensorType::kQ8_0, true)(row.data(), xq.data(), n)));
}

// MatMul output with the VNNI path on and off (AVX2 then), for 1 and 5
// tokens and 1-3 threads: bit-identical.
TEST(Q8_0VnniTest, MatMulIsBitIdenticalToAvx2Path) {
  if (!CpuSupportsAvx512Vnni()) GTEST_SKIP() << "no AVX-512 VNNI on this CPU";
  std::mt19937 rng(5);
  const int64_t cols = 8960, rows = 77;
  std::vector<uint8_t> data;
  for (int64_t r = 0; r < rows; ++r) {
    const std::vector<uint8_t> row = RandomRow(cols / 32, rng);
    data.insert(data.end(), row.begin(), row.end());
  }
  const WeightMatrix w{TensorType::kQ8_0, data.data(), rows, cols, cols / 32 * kQ8_0BlockBytes};
  for (int64_t tokens : {1, 5}) {
    const std::vector<float> x = RandomX(tokens * cols, rng);
    std::vector<std::vector<float>> outs;
    for (bool vnni : {false, true}) {
      for (int threads : {1, 2, 3}) {
        for (bool guided : {false, true}) {
          SetAvx512KernelsAllowed(vnni);
          SetGuidedMatMulChunks(guided);
          ASSERT_EQ(Avx512KernelsEnabled(), vnni);
          ThreadPool pool(threads);
          std::vector<float> y(static_cast<size_t>(tokens * rows));
          const MatMulTask task{&w, y.data()};
          MatMul(pool, true, absl::MakeConstSpan(&task, 1), x.data(), tokens, /*min_parallel_work=*/0);
          outs.push_back(y);
        }
      }
    }
    SetAvx512KernelsAllowed(true);
    SetGuidedMatMulChunks(true);
    for (size_t i = 1; i < outs.size(); ++i) {
      ASSERT_EQ(std::memcmp(outs[i].data(), outs[0].data(), outs[0].size() * 4), 0) << "run " << i;
    }
  }
}

// A whole Q8_0 model: logits and hidden states of a prefill and greedy
// decoding are bit-identical with and without the VNNI path.
TEST(Q8_0VnniTest, ModelGreedyDecodingIsIdenticalAcrossPaths) {
  if (!CpuSupportsAvx512Vnni()) GTEST_SKIP() << "no AVX-512 VNNI on this CPU";
  testing::TinyModelSpec spec;
  spec.type = TensorType::kQ8_0;
  const std::string path = absl::StrCat(::testing::TempDir(), "/vnni_", getpid(), ".gguf");
  ASSERT_TRUE(testing::TinyModel(spec).WriteFile(path).ok());
  std::vector<std::vector<float>> runs;
  std::vector<std::vector<int32_t>> generated;
  for (bool vnni : {false, true}) {
    SetAvx512KernelsAllowed(vnni);
    absl::StatusOr<GgufFile> file = GgufFile::Open(path);
    ASSERT_TRUE(file.ok());
    absl::StatusOr<std::unique_ptr<Model>> model = Model::Load(*std::move(file), ModelOptions{2, true});
    ASSERT_TRUE(model.ok()) << model.status();
    ASSERT_TRUE((*model)->uses_avx2());
    KvCache cache((*model)->config(), 64);
    std::vector<int32_t> tokens = {5, 77, 123, 9, 250, 31};
    std::vector<int32_t> pos = {0, 1, 2, 3, 4, 5};
    std::vector<float> all;
    ForwardOutput out;
    ASSERT_TRUE((*model)->Forward(tokens, pos, cache, true, &out).ok());
    all.insert(all.end(), out.logits.begin(), out.logits.end());
    std::vector<int32_t> gen;
    for (int step = 0; step < 12; ++step) {
      const float* last = out.logits.data() + out.logits.size() - spec.n_vocab;
      const int32_t next = static_cast<int32_t>(std::max_element(last, last + spec.n_vocab) - last);
      gen.push_back(next);
      const int32_t p = static_cast<int32_t>(tokens.size()) + step;
      ASSERT_TRUE((*model)->Forward(absl::MakeConstSpan(&next, 1), absl::MakeConstSpan(&p, 1), cache, true, &out).ok());
      all.insert(all.end(), out.logits.begin(), out.logits.end());
      all.insert(all.end(), out.hidden.begin(), out.hidden.end());
    }
    runs.push_back(all);
    generated.push_back(gen);
  }
  SetAvx512KernelsAllowed(true);
  std::remove(path.c_str());
  EXPECT_EQ(generated[0], generated[1]);
  ASSERT_EQ(runs[0].size(), runs[1].size());
  EXPECT_EQ(std::memcmp(runs[0].data(), runs[1].data(), runs[0].size() * 4), 0);
}

}  // namespace
}  // namespace stepproof::inference
