// inference/cpu_gemm: the multi-token kernels give, bit for bit, what the
// single-token dots of the same kernel path give (F32 and Q8_0, AVX2 and
// AVX-512 VNNI, every tile edge, strided inputs); MatMul over several tokens
// equals MatMul token by token; a model prefilled in chunks equals the same
// model decoded token by token. Against the portable reference (another
// rounding path) the tolerance is stated and checked: relative to
// sum |w_i x_i|, at most 1e-5 for F32 and 1e-5 for Q8_0 (same integer block
// sums, only the float accumulation order differs).

#include "inference/cpu_gemm.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "inference/cpu_kernels.h"
#include "inference/gguf.h"
#include "inference/model.h"
#include "inference/tensor_type.h"
#include "inference/thread_pool.h"
#include "tests/inference/test_models.h"

namespace stepproof::inference {
namespace {

std::vector<GemmIsa> Isas() {
  std::vector<GemmIsa> isas;
  SetMaxGemmIsa(GemmIsa::kAvx512);
  const GemmIsa best = SelectGemmIsa(true);
  if (best != GemmIsa::kNone) isas.push_back(GemmIsa::kAvx2);
  if (best == GemmIsa::kAvx512) isas.push_back(GemmIsa::kAvx512);
  return isas;
}

std::vector<float> Random(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

bool SameBits(float a, float b) { return std::memcmp(&a, &b, sizeof(float)) == 0; }

TEST(CpuGemmTest, F32EqualsTheDotBitForBit) {
  if (Isas().empty()) GTEST_SKIP() << "no AVX2 on this CPU";
  const DotFn dot = SelectDot(TensorType::kF32, true);
  const DotFn portable = SelectDot(TensorType::kF32, false);
  double worst = 0;
  for (GemmIsa isa : Isas()) {
    for (int64_t cols : {32, 64, 96, 128, 384, 1024}) {
      for (int64_t rows : {1, 2, 3, 4, 5, 7, 13}) {
        for (int64_t tokens : {1, 2, 3, 4, 5, 9}) {
          const int64_t w_stride = cols + 8, x_stride = cols + 16, y_stride = rows + 3;
          const std::vector<float> w = Random(rows * w_stride, static_cast<uint32_t>(cols * 100 + rows));
          const std::vector<float> x = Random(tokens * x_stride, static_cast<uint32_t>(tokens + 7));
          std::vector<float> y(tokens * y_stride, -1.0f);
          GemmF32(isa, w.data(), w_stride, rows, cols, x.data(), x_stride, tokens, y.data(), y_stride);
          for (int64_t t = 0; t < tokens; ++t) {
            for (int64_t r = 0; r < rows; ++r) {
              const uint8_t* row = reinterpret_cast<const uint8_t*>(w.data() + r * w_stride);
              const float want = dot(row, x.data() + t * x_stride, cols);
              const float got = y[t * y_stride + r];
              ASSERT_TRUE(SameBits(got, want)) << GemmIsaName(isa) << " cols=" << cols << " rows=" << rows
                                               << " tokens=" << tokens << " r=" << r << " t=" << t << ": " << got
                                               << " vs " << want;
              double mag = 0;
              for (int64_t i = 0; i < cols; ++i) {
                mag += std::fabs(double{w[r * w_stride + i]} * x[t * x_stride + i]);
              }
              const double err = std::fabs(double{got} - portable(row, x.data() + t * x_stride, cols)) / mag;
              worst = std::max(worst, err);
            }
            // Padding beyond `rows` is untouched.
            for (int64_t r = rows; r < y_stride; ++r) ASSERT_EQ(y[t * y_stride + r], -1.0f);
          }
        }
      }
    }
  }
  std::printf("F32 GEMM vs portable dot: largest |diff| / sum|w x| = %.3g\n", worst);
  EXPECT_LE(worst, 1e-5);
}

TEST(CpuGemmTest, Q8_0EqualsTheDotBitForBit) {
  if (Isas().empty()) GTEST_SKIP() << "no AVX2 on this CPU";
  const QuantDotFn qdot = SelectQuantDot(TensorType::kQ8_0, true);
  const QuantDotFn portable = SelectQuantDot(TensorType::kQ8_0, false);
  double worst = 0;
  for (GemmIsa isa : Isas()) {
    for (int64_t cols : {32, 64, 96, 128, 384, 1024, 2816}) {
      const int64_t row_bytes = RowBytes(TensorType::kQ8_0, cols);
      const int64_t xq_bytes = cols / 32 * kActivationBlockBytes;
      const int64_t xa_bytes = GemmQ8_0ActivationBytes(isa, cols);
      for (int64_t rows : {1, 2, 3, 4, 5, 9}) {
        for (int64_t tokens : {1, 3, 4, 5, 8}) {
          const std::vector<float> wf = Random(rows * cols, static_cast<uint32_t>(cols + rows));
          std::vector<uint8_t> w(rows * row_bytes);
          for (int64_t r = 0; r < rows; ++r) {
            QuantizeRow(TensorType::kQ8_0, wf.data() + r * cols, w.data() + r * row_bytes, cols);
          }
          std::vector<float> x = Random(tokens * cols, static_cast<uint32_t>(tokens * 31 + cols));
          std::fill(x.begin(), x.begin() + 32, 0.0f);  // an all-zero block: d = 0
          std::vector<uint8_t> xq(tokens * xq_bytes), xa(tokens * xa_bytes);
          for (int64_t t = 0; t < tokens; ++t) {
            QuantizeActivations(x.data() + t * cols, cols, xq.data() + t * xq_bytes);
            PrepareGemmQ8_0Activations(isa, xq.data() + t * xq_bytes, cols, xa.data() + t * xa_bytes);
          }
          std::vector<float> y(tokens * rows);
          GemmQ8_0(isa, w.data(), row_bytes, rows, cols, xa.data(), xa_bytes, tokens, y.data(), rows);
          for (int64_t t = 0; t < tokens; ++t) {
            for (int64_t r = 0; r < rows; ++r) {
              const float want = qdot(w.data() + r * row_bytes, xq.data() + t * xq_bytes, cols);
              const float got = y[t * rows + r];
              ASSERT_TRUE(SameBits(got, want)) << GemmIsaName(isa) << " cols=" << cols << " rows=" << rows
                                               << " tokens=" << tokens << " r=" << r << " t=" << t << ": " << got
                                               << " vs " << want;
              std::vector<float> wr(cols);
              DequantizeRow(TensorType::kQ8_0, w.data() + r * row_bytes, wr.data(), cols);
              double mag = 0;
              for (int64_t i = 0; i < cols; ++i) mag += std::fabs(double{wr[i]} * x[t * cols + i]);
              const double err =
                  std::fabs(double{got} - portable(w.data() + r * row_bytes, xq.data() + t * xq_bytes, cols)) / mag;
              worst = std::max(worst, err);
            }
          }
        }
      }
    }
  }
  std::printf("Q8_0 GEMM vs portable integer dot: largest |diff| / sum|w x| = %.3g\n", worst);
  EXPECT_LE(worst, 1e-5);
}

TEST(CpuGemmTest, FastQuantizationGivesTheSameBytes) {
  const int64_t n = 32 * 64;
  std::vector<float> x = Random(n, 5);
  // Ties (x * id = k + 0.5 after scaling by amax = 127), zeros, -0, huge and
  // tiny values, a NaN block, an infinite block, an all-zero block.
  for (int i = 0; i < 32; ++i) x[i] = i == 0 ? 127.0f : (i % 2 ? 0.5f + i : -2.5f - i);
  for (int i = 32; i < 64; ++i) x[i] = 0.0f;
  x[64] = -0.0f;
  x[96] = std::nanf("");
  x[128] = INFINITY;
  x[160] = 3e38f;
  x[192] = 1e-40f;
  for (GemmIsa isa : {GemmIsa::kNone, GemmIsa::kAvx2, GemmIsa::kAvx512}) {
    if (isa != GemmIsa::kNone && SelectGemmIsa(true) == GemmIsa::kNone) continue;
    std::vector<uint8_t> want(n / 32 * kActivationBlockBytes), got(want.size(), 0xAA);
    QuantizeActivations(x.data(), n, want.data());
    QuantizeActivationsFast(isa, x.data(), n, got.data());
    EXPECT_EQ(want, got) << GemmIsaName(isa);
  }
}

// MatMul (which takes the GEMM kernels for n_tokens > 1) over 11 tokens and
// three fused tasks equals MatMul one token at a time, on 1 and 3 threads.
TEST(CpuGemmTest, MatMulOverTokensEqualsTokenByToken) {
  for (TensorType type : {TensorType::kF32, TensorType::kQ8_0, TensorType::kQ4_K, TensorType::kF16}) {
    const int64_t cols = 256, T = 11;
    const int64_t rows[3] = {37, 64, 5};
    std::vector<std::vector<uint8_t>> data(3);
    WeightMatrix w[3];
    for (int i = 0; i < 3; ++i) {
      const std::vector<float> f = Random(rows[i] * cols, static_cast<uint32_t>(i + 1));
      w[i] = WeightMatrix{type, nullptr, rows[i], cols, RowBytes(type, cols)};
      data[i].resize(rows[i] * w[i].row_bytes);
      for (int64_t r = 0; r < rows[i]; ++r) {
        QuantizeRow(type, f.data() + r * cols, data[i].data() + r * w[i].row_bytes, cols);
      }
      w[i].data = data[i].data();
    }
    const std::vector<float> x = Random(T * cols, 99);
    for (int threads : {1, 3}) {
      ThreadPool pool(threads);
      std::vector<float> batch[3], single[3];
      for (int i = 0; i < 3; ++i) {
        batch[i].assign(T * rows[i], 0.0f);
        single[i].assign(T * rows[i], 0.0f);
      }
      const MatMulTask tasks[3] = {{&w[0], batch[0].data()}, {&w[1], batch[1].data()}, {&w[2], batch[2].data()}};
      MatMul(pool, true, tasks, x.data(), T, 0);
      for (int64_t t = 0; t < T; ++t) {
        const MatMulTask one[3] = {{&w[0], single[0].data() + t * rows[0]},
                                   {&w[1], single[1].data() + t * rows[1]},
                                   {&w[2], single[2].data() + t * rows[2]}};
        MatMul(pool, true, one, x.data() + t * cols, 1, 0);
      }
      for (int i = 0; i < 3; ++i) {
        EXPECT_EQ(0, std::memcmp(batch[i].data(), single[i].data(), batch[i].size() * sizeof(float)))
            << TensorTypeName(type) << " task " << i << " threads " << threads;
      }
    }
  }
}

std::vector<float> RunChunks(const std::string& path, int chunk, std::vector<float>* hidden) {
  absl::StatusOr<GgufFile> file = GgufFile::Open(path);
  EXPECT_TRUE(file.ok());
  ModelOptions options{2, true};
  options.min_parallel_work = 0;
  absl::StatusOr<std::unique_ptr<Model>> model = Model::Load(*std::move(file), options);
  EXPECT_TRUE(model.ok());
  const int n = 70;
  KvCache cache((*model)->config(), n);
  std::vector<float> logits;
  ForwardOutput out;
  for (int b = 0; b < n; b += chunk) {
    const int e = std::min(n, b + chunk);
    std::vector<int32_t> tokens, pos;
    for (int i = b; i < e; ++i) {
      tokens.push_back((i * 37 + 3) % 300);
      pos.push_back(i);
    }
    EXPECT_TRUE((*model)->Forward(tokens, pos, cache, true, &out, true).ok());
    logits.insert(logits.end(), out.logits.begin(), out.logits.end());
    hidden->insert(hidden->end(), out.hidden.begin(), out.hidden.end());
  }
  return logits;
}

// The whole engine: a prefill in chunks of 64 (GEMM kernels, batched
// attention) gives every logit and hidden state of token-by-token decoding.
TEST(CpuGemmTest, ChunkedPrefillEqualsTokenByTokenDecoding) {
  for (GemmIsa cap : {GemmIsa::kAvx2, GemmIsa::kAvx512}) {
    SetMaxGemmIsa(cap);
    for (TensorType type : {TensorType::kF32, TensorType::kQ8_0}) {
      testing::TinyModelSpec spec;
      spec.type = type;
      spec.n_embd = 128;
      spec.n_ff = 384;
      spec.context_length = 128;
      const std::string path = "/tmp/cpu_gemm_test_" + std::to_string(getpid()) + ".gguf";
      ASSERT_TRUE(testing::TinyModel(spec).WriteFile(path).ok());
      std::vector<float> h1, h64, h7;
      const std::vector<float> decode = RunChunks(path, 1, &h1);
      const std::vector<float> prefill = RunChunks(path, 64, &h64);
      const std::vector<float> prefill7 = RunChunks(path, 7, &h7);
      std::remove(path.c_str());
      ASSERT_EQ(decode.size(), prefill.size());
      EXPECT_EQ(0, std::memcmp(decode.data(), prefill.data(), decode.size() * sizeof(float)))
          << TensorTypeName(type) << " cap " << GemmIsaName(cap);
      EXPECT_EQ(0, std::memcmp(decode.data(), prefill7.data(), decode.size() * sizeof(float)))
          << TensorTypeName(type) << " cap " << GemmIsaName(cap);
      ASSERT_EQ(h1.size(), h64.size());
      EXPECT_EQ(0, std::memcmp(h1.data(), h64.data(), h1.size() * sizeof(float)));
    }
  }
  SetMaxGemmIsa(GemmIsa::kAvx512);
}

}  // namespace
}  // namespace stepproof::inference
