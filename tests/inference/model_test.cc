// The engine's forward pass against a plain float64 reference forward pass
// (below: plain loops, the math of model.h written out again) on tiny random
// models in every supported weight type.
//
// The reference reads the same stored weights through DequantizeRow, whose
// block decoding tensor_type_test checks against hand-written blocks, and
// computes with float64 activations. Tolerance on max|engine - ref| /
// max|ref| over all logits:
//   F32, F16, BF16: 1e-4 (the engine's float32 arithmetic: kernels,
//     attention, RoPE, norms; measured ~1e-6);
//   Q8_0, Q4_K: 5e-2. Like ggml, the engine multiplies these weights with
//     activations quantised to int8 per 32 values (QuantizeActivations), an
//     error of up to 1/254 of each block's largest value per input, compounded
//     over the layers (measured ~2e-2 on these random models). The integer
//     dot itself is checked exactly in tensor_type_test, and any layout or
//     scale mistake gives errors of order 1.

#include "inference/model.h"

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "inference/gguf.h"
#include "tests/inference/test_models.h"

namespace stepproof::inference {
namespace {

using testing::TinyModel;
using testing::TinyModelSpec;

std::string TempPath(const std::string& name) {
  return absl::StrCat(::testing::TempDir(), "/", name, "_", getpid(), ".gguf");
}

// ---- float64 reference ---------------------------------------------------

struct RefWeights {
  std::vector<double> Get(const GgufFile& f, const std::string& name) const {
    const GgufTensor* t = f.FindTensor(name);
    if (t == nullptr) return {};
    std::vector<float> tmp(t->n_elements);
    const int64_t row = t->ne[0];
    for (int64_t r = 0; r < t->n_elements / row; ++r) {
      DequantizeRow(t->type, t->data + r * RowBytes(t->type, row), tmp.data() + r * row, row);
    }
    return std::vector<double>(tmp.begin(), tmp.end());
  }
};

// y[o] = sum_i W[o][i] x[i], W stored (rows = out, cols = in).
std::vector<double> RefMatVec(const std::vector<double>& w, const std::vector<double>& x, int out) {
  const size_t in = x.size();
  std::vector<double> y(out, 0.0);
  for (int o = 0; o < out; ++o) {
    for (size_t i = 0; i < in; ++i) y[o] += w[o * in + i] * x[i];
  }
  return y;
}

std::vector<double> RefRmsNorm(const std::vector<double>& x, const std::vector<double>& w, double eps) {
  double ss = 0;
  for (double v : x) ss += v * v;
  const double s = 1.0 / std::sqrt(ss / x.size() + eps);
  std::vector<double> y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = x[i] * s * w[i];
  return y;
}

void RefRope(std::vector<double>& v, int n_heads, int d, int pos, double base, bool neox) {
  for (int h = 0; h < n_heads; ++h) {
    for (int i = 0; i < d / 2; ++i) {
      const double theta = pos * std::pow(base, -2.0 * i / d);
      const int i0 = neox ? h * d + i : h * d + 2 * i;
      const int i1 = neox ? h * d + i + d / 2 : h * d + 2 * i + 1;
      const double a = v[i0], b = v[i1];
      v[i0] = a * std::cos(theta) - b * std::sin(theta);
      v[i1] = a * std::sin(theta) + b * std::cos(theta);
    }
  }
}

// Logits (T, vocab) of every position of `tokens`, recomputing everything.
std::vector<std::vector<double>> RefForward(const GgufFile& f, const TinyModelSpec& s,
                                            const std::vector<int32_t>& tokens) {
  RefWeights rw;
  const int E = s.n_embd, d = s.n_embd / s.n_head, H = s.n_head, KV = s.n_head_kv;
  const bool neox = s.arch == "qwen2";
  const int T = static_cast<int>(tokens.size());
  std::vector<double> embd = rw.Get(f, "token_embd.weight");
  std::vector<std::vector<double>> x(T);
  for (int t = 0; t < T; ++t) x[t].assign(embd.begin() + tokens[t] * E, embd.begin() + (tokens[t] + 1) * E);
  for (int l = 0; l < s.n_layer; ++l) {
    const std::string p = absl::StrCat("blk.", l, ".");
    auto wq = rw.Get(f, p + "attn_q.weight"), wk = rw.Get(f, p + "attn_k.weight");
    auto wv = rw.Get(f, p + "attn_v.weight"), wo = rw.Get(f, p + "attn_output.weight");
    auto bq = rw.Get(f, p + "attn_q.bias"), bk = rw.Get(f, p + "attn_k.bias"), bv = rw.Get(f, p + "attn_v.bias");
    auto an = rw.Get(f, p + "attn_norm.weight"), fn = rw.Get(f, p + "ffn_norm.weight");
    auto wg = rw.Get(f, p + "ffn_gate.weight"), wu = rw.Get(f, p + "ffn_up.weight");
    auto wd = rw.Get(f, p + "ffn_down.weight");
    std::vector<std::vector<double>> q(T), k(T), v(T);
    for (int t = 0; t < T; ++t) {
      auto h = RefRmsNorm(x[t], an, s.eps);
      q[t] = RefMatVec(wq, h, H * d);
      k[t] = RefMatVec(wk, h, KV * d);
      v[t] = RefMatVec(wv, h, KV * d);
      for (size_t i = 0; i < bq.size(); ++i) q[t][i] += bq[i];
      for (size_t i = 0; i < bk.size(); ++i) k[t][i] += bk[i];
      for (size_t i = 0; i < bv.size(); ++i) v[t][i] += bv[i];
      RefRope(q[t], H, d, t, s.rope_base, neox);
      RefRope(k[t], KV, d, t, s.rope_base, neox);
    }
    for (int t = 0; t < T; ++t) {
      std::vector<double> att(H * d, 0.0);
      for (int h = 0; h < H; ++h) {
        const int kvh = h / (H / KV);
        std::vector<double> sc(t + 1);
        double mx = -1e300;
        for (int p2 = 0; p2 <= t; ++p2) {
          double dot = 0;
          for (int i = 0; i < d; ++i) dot += q[t][h * d + i] * k[p2][kvh * d + i];
          sc[p2] = dot / std::sqrt(static_cast<double>(d));
          mx = std::max(mx, sc[p2]);
        }
        double sum = 0;
        for (double& e : sc) sum += (e = std::exp(e - mx));
        for (int p2 = 0; p2 <= t; ++p2) {
          for (int i = 0; i < d; ++i) att[h * d + i] += sc[p2] / sum * v[p2][kvh * d + i];
        }
      }
      auto o = RefMatVec(wo, att, E);
      for (int i = 0; i < E; ++i) x[t][i] += o[i];
      auto h = RefRmsNorm(x[t], fn, s.eps);
      auto g = RefMatVec(wg, h, s.n_ff), u = RefMatVec(wu, h, s.n_ff);
      for (int i = 0; i < s.n_ff; ++i) g[i] = g[i] / (1.0 + std::exp(-g[i])) * u[i];
      auto dn = RefMatVec(wd, g, E);
      for (int i = 0; i < E; ++i) x[t][i] += dn[i];
    }
  }
  auto on = rw.Get(f, "output_norm.weight");
  auto wout = s.tied ? embd : rw.Get(f, "output.weight");
  std::vector<std::vector<double>> logits(T);
  for (int t = 0; t < T; ++t) logits[t] = RefMatVec(wout, RefRmsNorm(x[t], on, s.eps), s.n_vocab);
  return logits;
}

// ---- tests -----------------------------------------------------------------

struct Case {
  const char* name;
  TensorType type;
  const char* arch;
  bool bias;
  bool tied;
  double tolerance;
};

class ModelVsReferenceTest : public ::testing::TestWithParam<Case> {};

TEST_P(ModelVsReferenceTest, LogitsMatchFloat64Reference) {
  const Case& c = GetParam();
  TinyModelSpec spec;
  spec.type = c.type;
  spec.arch = c.arch;
  spec.bias = c.bias;
  spec.tied = c.tied;
  const std::string path = TempPath(c.name);
  ASSERT_TRUE(TinyModel(spec).WriteFile(path).ok());
  absl::StatusOr<GgufFile> ref_file = GgufFile::Open(path);
  ASSERT_TRUE(ref_file.ok()) << ref_file.status();
  const std::vector<int32_t> tokens = {256, 72, 105, 33, 258, 12, 299, 7, 260, 10};
  const auto want = RefForward(*ref_file, spec, tokens);

  for (bool avx2 : {false, true}) {
    absl::StatusOr<GgufFile> file = GgufFile::Open(path);
    ASSERT_TRUE(file.ok());
    absl::StatusOr<std::unique_ptr<Model>> model = Model::Load(*std::move(file), ModelOptions{2, avx2});
    ASSERT_TRUE(model.ok()) << model.status();
    KvCache cache((*model)->config(), 32);
    // Prefill the first 6 tokens in one call (all logits), then decode 4.
    std::vector<std::vector<float>> got;
    ForwardOutput out;
    std::vector<int32_t> pos = {0, 1, 2, 3, 4, 5};
    ASSERT_TRUE((*model)->Forward(absl::MakeConstSpan(tokens).subspan(0, 6), pos, cache, true, &out).ok());
    for (int t = 0; t < 6; ++t) got.emplace_back(out.logits.begin() + t * spec.n_vocab, out.logits.begin() + (t + 1) * spec.n_vocab);
    for (int t = 6; t < 10; ++t) {
      const int32_t p = t;
      ASSERT_TRUE((*model)->Forward(absl::MakeConstSpan(&tokens[t], 1), absl::MakeConstSpan(&p, 1), cache, false, &out).ok());
      got.push_back(out.logits);
    }
    double max_err = 0, max_ref = 0;
    for (size_t t = 0; t < tokens.size(); ++t) {
      for (int i = 0; i < spec.n_vocab; ++i) {
        max_err = std::max(max_err, std::fabs(got[t][i] - want[t][i]));
        max_ref = std::max(max_ref, std::fabs(want[t][i]));
      }
    }
    EXPECT_GT(max_ref, 0.5);  // the logits are not trivially small
    EXPECT_LE(max_err / max_ref, c.tolerance) << c.name << " avx2=" << avx2 << " max_err=" << max_err;
    std::printf("%s avx2=%d relative error %.3g\n", c.name, avx2 ? 1 : 0, max_err / max_ref);
  }
  std::remove(path.c_str());
}

INSTANTIATE_TEST_SUITE_P(
    AllTypes, ModelVsReferenceTest,
    ::testing::Values(Case{"F32_qwen2", TensorType::kF32, "qwen2", true, false, 1e-4},
                      Case{"F16_qwen2", TensorType::kF16, "qwen2", true, false, 1e-4},
                      Case{"BF16_qwen2", TensorType::kBF16, "qwen2", true, false, 1e-4},
                      Case{"Q8_0_qwen2", TensorType::kQ8_0, "qwen2", true, false, 5e-2},
                      Case{"Q4_K_qwen2", TensorType::kQ4_K, "qwen2", true, false, 5e-2},
                      Case{"F32_llama_tied", TensorType::kF32, "llama", false, true, 1e-4},
                      Case{"Q8_0_qwen2_tied", TensorType::kQ8_0, "qwen2", true, true, 5e-2}),
    [](const ::testing::TestParamInfo<Case>& info) { return std::string(info.param.name); });

// The project's trained model (written by models/train.py), when present:
// same reference, real weights, a real chat prompt.
TEST(EmbeddedModelTest, LogitsMatchFloat64Reference) {
  const std::string path = "models/stepproof-arith.gguf";
  absl::StatusOr<GgufFile> ref_file = GgufFile::Open(path);
  if (!ref_file.ok()) GTEST_SKIP() << path << " absent: " << ref_file.status();
  absl::StatusOr<ModelConfig> c = ReadModelConfig(*ref_file);
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->head_dim * c->n_head, c->n_embd);  // what RefForward assumes
  TinyModelSpec spec;
  spec.arch = c->architecture;
  spec.n_layer = c->n_layer;
  spec.n_embd = c->n_embd;
  spec.n_ff = c->n_ff;
  spec.n_head = c->n_head;
  spec.n_head_kv = c->n_head_kv;
  spec.n_vocab = c->n_vocab;
  spec.rope_base = c->rope_freq_base;
  spec.eps = c->rms_eps;
  spec.tied = c->tied_output;
  // Token ids of a templated prompt and the first generated tokens, all
  // below 256 + specials, valid in any byte-level vocabulary of this size.
  std::vector<int32_t> tokens;
  for (unsigned char ch : std::string("What is 12 + 34?\nAdd the ones: 2 + 4 = 6")) tokens.push_back(ch);
  const auto want = RefForward(*ref_file, spec, tokens);
  absl::StatusOr<GgufFile> file = GgufFile::Open(path);
  ASSERT_TRUE(file.ok());
  absl::StatusOr<std::unique_ptr<Model>> model = Model::Load(*std::move(file), ModelOptions{2, true});
  ASSERT_TRUE(model.ok()) << model.status();
  KvCache cache((*model)->config(), static_cast<int32_t>(tokens.size()));
  std::vector<int32_t> pos(tokens.size());
  for (size_t i = 0; i < pos.size(); ++i) pos[i] = static_cast<int32_t>(i);
  ForwardOutput out;
  ASSERT_TRUE((*model)->Forward(tokens, pos, cache, true, &out).ok());
  double max_err = 0, max_ref = 0;
  for (size_t t = 0; t < tokens.size(); ++t) {
    for (int i = 0; i < spec.n_vocab; ++i) {
      max_err = std::max(max_err, std::fabs(out.logits[t * spec.n_vocab + i] - want[t][i]));
      max_ref = std::max(max_ref, std::fabs(want[t][i]));
    }
  }
  const bool quantised = (*model)->file().FindTensor("blk.0.ffn_up.weight")->type == TensorType::kQ8_0 ||
                         (*model)->file().FindTensor("blk.0.ffn_up.weight")->type == TensorType::kQ4_K;
  EXPECT_LE(max_err / max_ref, quantised ? 5e-2 : 1e-4) << "max_err=" << max_err << " max_ref=" << max_ref;
  std::printf("embedded model relative error %.3g\n", max_err / max_ref);
}

// Logits of a sequence, prefilled in chunks of `chunk` tokens.
std::vector<float> RunSequence(const std::string& path, int threads, int chunk) {
  absl::StatusOr<GgufFile> file = GgufFile::Open(path);
  EXPECT_TRUE(file.ok());
  ModelOptions options{threads, true};
  options.min_parallel_work = 0;  // spread even the smallest products over the threads
  absl::StatusOr<std::unique_ptr<Model>> model = Model::Load(*std::move(file), options);
  EXPECT_TRUE(model.ok());
  KvCache cache((*model)->config(), 64);
  std::vector<int32_t> tokens;
  for (int i = 0; i < 20; ++i) tokens.push_back((i * 37 + 3) % 300);
  std::vector<float> all, hidden;
  ForwardOutput out;
  for (int b = 0; b < 20; b += chunk) {
    const int e = std::min(20, b + chunk);
    std::vector<int32_t> pos;
    for (int i = b; i < e; ++i) pos.push_back(i);
    EXPECT_TRUE((*model)->Forward(absl::MakeConstSpan(tokens).subspan(b, e - b), pos, cache, true, &out).ok());
    all.insert(all.end(), out.logits.begin(), out.logits.end());
    hidden.insert(hidden.end(), out.hidden.begin(), out.hidden.end());
  }
  all.insert(all.end(), hidden.begin(), hidden.end());
  return all;
}

TEST(ModelDeterminismTest, BitIdenticalAcrossThreadCountsAndBatchSizes) {
  for (TensorType type : {TensorType::kQ4_K, TensorType::kQ8_0, TensorType::kF16}) {
    TinyModelSpec spec;
    spec.type = type;
    const std::string path = TempPath("determinism");
    ASSERT_TRUE(TinyModel(spec).WriteFile(path).ok());
    const std::vector<float> base = RunSequence(path, 1, 20);
    for (int threads : {2, 3, 4}) {
      for (int chunk : {1, 7, 20}) {
        const std::vector<float> other = RunSequence(path, threads, chunk);
        ASSERT_EQ(other.size(), base.size());
        EXPECT_EQ(0, std::memcmp(other.data(), base.data(), base.size() * sizeof(float)))
            << TensorTypeName(type) << " threads=" << threads << " chunk=" << chunk;
      }
    }
    std::remove(path.c_str());
  }
}

TEST(ModelLoadTest, RejectsMissingTensorAndWrongShape) {
  TinyModelSpec spec;
  GgufWriter w = TinyModel(spec);
  const std::string path = TempPath("bad");
  // A config that claims more layers than there are tensors.
  GgufWriter w2;
  w2.SetString("general.architecture", "qwen2");
  w2.SetUint32("qwen2.block_count", 1);
  w2.SetUint32("qwen2.context_length", 16);
  w2.SetUint32("qwen2.embedding_length", 32);
  w2.SetUint32("qwen2.feed_forward_length", 64);
  w2.SetUint32("qwen2.attention.head_count", 2);
  std::vector<float> embd(32 * 10, 0.5f);
  w2.AddTensorFromFloats("token_embd.weight", TensorType::kF32, {32, 10}, embd);
  ASSERT_TRUE(w2.WriteFile(path).ok());
  absl::StatusOr<GgufFile> f = GgufFile::Open(path);
  ASSERT_TRUE(f.ok());
  absl::StatusOr<std::unique_ptr<Model>> m = Model::Load(*std::move(f), ModelOptions{});
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("output_norm.weight is missing"), std::string::npos) << m.status();

  GgufWriter w3;
  w3.SetString("general.architecture", "gpt2");
  ASSERT_TRUE(w3.WriteFile(path).ok());
  f = GgufFile::Open(path);
  ASSERT_TRUE(f.ok());
  m = Model::Load(*std::move(f), ModelOptions{});
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("not supported"), std::string::npos) << m.status();
  std::remove(path.c_str());
}

}  // namespace
}  // namespace stepproof::inference
