// The batched decode kernels (inference/cuda/decode_kernels.h) against their
// CPU references on fresh random inputs, |gpu - ref| <= atol + rtol * |ref|:
//   matrix products over 1536 inputs: atol 1e-3, rtol 1e-4 (float
//     accumulation in another order than the double reference, as for the
//     version-1 kernels);
//   embedding rows, KV writes, bias and residual adds: exact (the same float
//     operations);
//   attention: atol 1e-4, rtol 1e-3;
//   Philox uniforms: bit-exact;
//   sampling: the same token id as the CPU Sampler on every row, and the
//     log-probability within 1e-5. The sums behind the draw run in double in
//     another order than the CPU's, so a row could only differ when the
//     Philox draw lands within ~1e-15 (relative) of a cumulative boundary;
//     on these inputs that never happens, so ids are compared exactly.
// Skips when no CUDA device is usable.
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "inference/cuda/decode_kernels.h"
#include "inference/cuda/reference.h"
#include "inference/cuda/weights.h"
#include "inference/philox.h"
#include "inference/sampler.h"
#include "inference/tensor_type.h"
#include "tests/inference_cuda/cuda_test_support.h"

namespace stepproof::inference::cuda {
namespace {

using testing::DeviceBuffer;

class DecodeKernelsTest : public testing::CudaTest {};

std::vector<uint16_t> ToBf16(const std::vector<float>& f) {
  std::vector<uint16_t> b(f.size());
  for (size_t i = 0; i < f.size(); ++i) {
    uint32_t bits;
    std::memcpy(&bits, &f[i], 4);
    b[i] = static_cast<uint16_t>(bits >> 16);
  }
  return b;
}

std::vector<uint16_t> ToF16(const std::vector<float>& f) {
  std::vector<uint16_t> h(f.size());
  for (size_t i = 0; i < f.size(); ++i) h[i] = FloatToFp16(f[i]);
  return h;
}

std::vector<uint8_t> ToQ8_0(const std::vector<float>& f, int rows, int cols) {
  std::vector<uint8_t> q(static_cast<size_t>(rows) * (cols / 32) * 34);
  for (int r = 0; r < rows; ++r) {
    QuantizeRow(TensorType::kQ8_0, f.data() + static_cast<size_t>(r) * cols,
                q.data() + static_cast<size_t>(r) * (cols / 32) * 34, cols);
  }
  return q;
}

TEST_F(DecodeKernelsTest, BatchedMatMulMatchesReferenceForEveryWeightType) {
  const int in = 1536, out = 197;
  const std::vector<float> wf = Random(static_cast<size_t>(out) * in, 0.05f);
  const std::vector<uint16_t> wb = ToBf16(wf), wh = ToF16(wf);
  const std::vector<uint8_t> wq = ToQ8_0(wf, out, in);
  std::vector<int8_t> qs(static_cast<size_t>(out) * in);
  std::vector<uint16_t> scales(static_cast<size_t>(out) * in / 32);
  RepackQ8_0(wq.data(), out, in, qs.data(), scales.data());
  DeviceBuffer<float> dwf(wf);
  DeviceBuffer<uint16_t> dwb(wb), dwh(wh), dscales(scales);
  DeviceBuffer<int8_t> dqs(qs);
  for (int batch : {1, 3, 8, 13, 32}) {
    const std::vector<float> x = Random(static_cast<size_t>(batch) * in);
    DeviceBuffer<float> dx(x), dy(static_cast<size_t>(batch) * out);
    std::vector<float> ref(static_cast<size_t>(batch) * out);
    struct Case {
      DeviceMatrix w;
      void (*ref)(const float*, const void*, float*, int, int, int);
    };
    const Case cases[] = {
        {{WeightKind::kF32, dwf.get(), nullptr, out, in},
         [](const float* x, const void* w, float* y, int r, int i, int o) {
           MatMulF32Ref(x, static_cast<const float*>(w), y, r, i, o);
         }},
        {{WeightKind::kBf16, dwb.get(), nullptr, out, in},
         [](const float* x, const void* w, float* y, int r, int i, int o) {
           MatMulBf16Ref(x, static_cast<const uint16_t*>(w), y, r, i, o);
         }},
        {{WeightKind::kF16, dwh.get(), nullptr, out, in},
         [](const float* x, const void* w, float* y, int r, int i, int o) {
           MatMulF16Ref(x, static_cast<const uint16_t*>(w), y, r, i, o);
         }},
        {{WeightKind::kQ8_0Split, dqs.get(), dscales.get(), out, in},
         [](const float* x, const void* w, float* y, int r, int i, int o) {
           MatMulQ8_0Ref(x, static_cast<const uint8_t*>(w), y, r, i, o);
         }},
    };
    const void* host_weights[] = {wf.data(), wb.data(), wh.data(), wq.data()};
    for (int c = 0; c < 4; ++c) {
      cases[c].ref(x.data(), host_weights[c], ref.data(), batch, in, out);
      ASSERT_TRUE(MatMulBatched(dx.get(), cases[c].w, dy.get(), batch, 0).ok());
      SCOPED_TRACE(::testing::Message() << "weight kind " << c << ", batch " << batch);
      ExpectClose(dy.ToHost(), ref, 1e-3f, 1e-4f);
    }
  }
  DeviceBuffer<float> dx(in), dy(out);
  EXPECT_EQ(MatMulBatched(dx.get(), DeviceMatrix{WeightKind::kF32, dwf.get(), nullptr, out, 33}, dy.get(), 1, 0).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(DecodeKernelsTest, EmbedGathersRowsExactly) {
  const int cols = 256, vocab = 50;
  const std::vector<float> wf = Random(static_cast<size_t>(vocab) * cols);
  const std::vector<uint8_t> wq = ToQ8_0(wf, vocab, cols);
  std::vector<int8_t> qs(wf.size());
  std::vector<uint16_t> scales(wf.size() / 32);
  RepackQ8_0(wq.data(), vocab, cols, qs.data(), scales.data());
  const std::vector<int32_t> tokens = {7, 0, 49, 7};
  DeviceBuffer<float> dwf(wf), dx(tokens.size() * cols);
  DeviceBuffer<int8_t> dqs(qs);
  DeviceBuffer<uint16_t> dscales(scales);
  DeviceBuffer<int32_t> dt(tokens);
  ASSERT_TRUE(Embed(DeviceMatrix{WeightKind::kF32, dwf.get(), nullptr, vocab, cols}, dt.get(), dx.get(), 4, 0).ok());
  std::vector<float> want;
  for (int32_t t : tokens) want.insert(want.end(), wf.begin() + t * cols, wf.begin() + (t + 1) * cols);
  ExpectClose(dx.ToHost(), want, 0.0f, 0.0f);
  ASSERT_TRUE(
      Embed(DeviceMatrix{WeightKind::kQ8_0Split, dqs.get(), dscales.get(), vocab, cols}, dt.get(), dx.get(), 4, 0)
          .ok());
  want.clear();
  std::vector<float> row(cols);
  for (int32_t t : tokens) {
    DequantizeRow(TensorType::kQ8_0, wq.data() + static_cast<size_t>(t) * (cols / 32) * 34, row.data(), cols);
    want.insert(want.end(), row.begin(), row.end());
  }
  ExpectClose(dx.ToHost(), want, 0.0f, 0.0f);
}

TEST_F(DecodeKernelsTest, BiasAndResidualAddsAreExact) {
  const int rows = 3, n = 300;
  std::vector<float> y = Random(rows * n), bias = Random(n), other = Random(rows * n);
  DeviceBuffer<float> dy(y), db(bias), dother(other);
  ASSERT_TRUE(AddBias(dy.get(), db.get(), rows, n, 0).ok());
  ASSERT_TRUE(Add(dy.get(), dother.get(), rows * n, 0).ok());
  for (int i = 0; i < rows * n; ++i) y[i] = (y[i] + bias[i % n]) + other[i];
  ExpectClose(dy.ToHost(), y, 0.0f, 0.0f);
}

TEST_F(DecodeKernelsTest, KvWriteAndBatchedAttentionMatchReference) {
  const int slots = 3, n_layer = 2, n_ctx = 700, heads = 12, kv_heads = 2, d = 128, layer = 1;
  const int kv_dim = kv_heads * d;
  const size_t cache = static_cast<size_t>(slots) * n_layer * n_ctx * kv_dim;
  std::vector<float> kc = Random(cache), vc = Random(cache);
  // Rows of different sequences at different positions, one row per slot.
  const std::vector<int32_t> row_slots = {2, 0, 1};
  const std::vector<int32_t> positions = {0, 37, 699};
  const int rows = 3;
  const std::vector<float> k = Random(rows * kv_dim), v = Random(rows * kv_dim), q = Random(rows * heads * d);
  DeviceBuffer<float> dkc(kc), dvc(vc), dk(k), dv(v), dq(q), dout(rows * heads * d);
  DeviceBuffer<int32_t> ds(row_slots), dp(positions);
  ASSERT_TRUE(KvWrite(dk.get(), dv.get(), dkc.get(), dvc.get(), ds.get(), dp.get(), rows, layer, n_layer, n_ctx,
                      kv_dim, 0)
                  .ok());
  KvWriteRef(k.data(), v.data(), kc.data(), vc.data(), row_slots.data(), positions.data(), rows, layer, n_layer,
             n_ctx, kv_dim);
  ExpectClose(dkc.ToHost(), kc, 0.0f, 0.0f);
  ExpectClose(dvc.ToHost(), vc, 0.0f, 0.0f);
  ASSERT_TRUE(AttentionBatch(dq.get(), dkc.get(), dvc.get(), ds.get(), dp.get(), dout.get(), rows, heads, kv_heads, d,
                             layer, n_layer, n_ctx, 700, 0)
                  .ok());
  std::vector<float> ref(rows * heads * d);
  AttentionBatchRef(q.data(), kc.data(), vc.data(), row_slots.data(), positions.data(), ref.data(), rows, heads,
                    kv_heads, d, layer, n_layer, n_ctx);
  ExpectClose(dout.ToHost(), ref, 1e-4f, 1e-3f);
  EXPECT_EQ(AttentionBatch(dq.get(), dkc.get(), dvc.get(), ds.get(), dp.get(), dout.get(), rows, heads, kv_heads, d,
                           layer, n_layer, n_ctx, n_ctx + 1, 0)
                .code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(DecodeKernelsTest, PhiloxUniformsAreBitIdenticalToTheCpu) {
  std::uniform_int_distribution<uint64_t> any;
  std::vector<uint64_t> seeds(1000), positions(1000);
  for (size_t i = 0; i < seeds.size(); ++i) {
    seeds[i] = i < 10 ? i : any(rng_);
    positions[i] = i < 500 ? i : any(rng_);
  }
  DeviceBuffer<uint64_t> ds(seeds), dp(positions);
  DeviceBuffer<double> dout(seeds.size());
  ASSERT_TRUE(PhiloxUniforms(ds.get(), dp.get(), dout.get(), static_cast<int>(seeds.size()), 0).ok());
  const std::vector<double> got = dout.ToHost();
  for (size_t i = 0; i < seeds.size(); ++i) {
    ASSERT_EQ(got[i], PhiloxUniform(seeds[i], positions[i])) << "seed " << seeds[i] << " position " << positions[i];
  }
}

TEST_F(DecodeKernelsTest, SamplerDrawsTheCpuSamplersTokens) {
  struct Setting {
    SamplingParams p;
    int vocab;
    int sampleable;
  };
  const Setting settings[] = {
      {{true, 0.6f, 0.95f, 0, 1}, 151936, 151665},
      {{false, 0.0f, 0.95f, 0, 1}, 1000, 1000},  // temperature 0 is greedy
      {{false, 0.6f, 0.95f, 0, 1}, 151936, 151665},
      {{false, 1.5f, 1.0f, 0, 2}, 5000, 5000},
      {{false, 0.8f, 1.0f, 40, 3}, 5000, 4000},
      {{false, 1.0f, 0.5f, 100, 4}, 5000, 5000},
      {{false, 0.3f, 0.9f, 5000, 5}, 5000, 5000},  // top_k = vocab: disabled
  };
  for (const Setting& st : settings) {
    const int rows = 6;
    std::vector<float> logits = Random(static_cast<size_t>(rows) * st.vocab, 3.0f);
    logits[3] = std::numeric_limits<float>::quiet_NaN();          // NaN counts as -inf
    logits[st.vocab + 10] = logits[st.vocab + 11] = 40.0f;        // a tie at the top of row 1
    std::vector<SampleArgs> args(rows);
    for (int r = 0; r < rows; ++r) {
      args[r] = SampleArgs{st.p.seed + r, static_cast<uint64_t>(100 + 7 * r), st.p.temperature, st.p.top_p,
                           st.p.top_k, st.p.greedy ? 1 : 0};
    }
    DeviceBuffer<float> dl(logits);
    DeviceBuffer<SampleArgs> da(args);
    DeviceBuffer<double> dw(logits.size());
    DeviceBuffer<uint64_t> dk(logits.size());
    DeviceBuffer<SampleResult> dout(rows);
    ASSERT_TRUE(Sample(dl.get(), rows, st.vocab, st.sampleable, da.get(), dw.get(), dk.get(), dout.get(), 0).ok());
    const std::vector<SampleResult> got = dout.ToHost();
    for (int r = 0; r < rows; ++r) {
      std::vector<float> row(logits.begin() + static_cast<size_t>(r) * st.vocab,
                             logits.begin() + static_cast<size_t>(r + 1) * st.vocab);
      for (int i = st.sampleable; i < st.vocab; ++i) row[i] = -INFINITY;
      SamplingParams p = st.p;
      p.seed = args[r].seed;
      const SampledToken want = Sampler(p).Sample(row, args[r].position);
      EXPECT_EQ(got[r].id, want.id) << "row " << r << " temperature " << p.temperature << " top_p " << p.top_p
                                    << " top_k " << p.top_k;
      EXPECT_NEAR(got[r].logprob, want.logprob, 1e-5) << "row " << r;
    }
  }
}

}  // namespace
}  // namespace stepproof::inference::cuda
