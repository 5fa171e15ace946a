#include "inference/model.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "inference/cpu_gemm.h"

namespace stepproof::inference {
namespace {

absl::StatusOr<int32_t> PositiveInt(const GgufFile& f, const std::string& key) {
  absl::StatusOr<int64_t> v = f.GetInt(key);
  if (!v.ok()) return absl::InvalidArgumentError(std::string(v.status().message()));
  if (*v <= 0 || *v > (int64_t{1} << 30)) {
    return absl::InvalidArgumentError(absl::StrCat("metadata ", key, " = ", *v, " is out of range"));
  }
  return static_cast<int32_t>(*v);
}

absl::Status CheckShape(const GgufTensor* t, const std::string& name, std::vector<int64_t> want) {
  if (t == nullptr) return absl::InvalidArgumentError(absl::StrCat("tensor ", name, " is missing"));
  if (t->ne != want) {
    auto dims = [](const std::vector<int64_t>& v) {
      std::string s = "[";
      for (size_t i = 0; i < v.size(); ++i) absl::StrAppend(&s, i ? ", " : "", v[i]);
      return s + "]";
    };
    return absl::InvalidArgumentError(absl::StrCat("tensor ", name, " has shape ", dims(t->ne),
                                                   ", expected ", dims(want)));
  }
  return absl::OkStatus();
}

WeightMatrix Matrix(const GgufTensor& t) {
  WeightMatrix w;
  w.type = t.type;
  w.data = t.data;
  w.cols = t.ne[0];
  w.rows = t.ne.size() > 1 ? t.ne[1] : 1;
  w.row_bytes = RowBytes(t.type, w.cols);
  return w;
}

std::vector<float> Vector(const GgufTensor& t) {
  std::vector<float> v(static_cast<size_t>(t.n_elements));
  DequantizeRow(t.type, t.data, v.data(), t.n_elements);
  return v;
}

// y = x / sqrt(mean(x^2) + eps) * w, the mean accumulated in double.
void RmsNorm(const float* x, const float* w, float* y, int n, float eps) {
  double ss = 0.0;
  for (int i = 0; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
  const float scale = static_cast<float>(1.0 / std::sqrt(ss / n + eps));
  for (int i = 0; i < n; ++i) y[i] = x[i] * scale * w[i];
}

}  // namespace

KvCache::KvCache(const ModelConfig& config, int32_t n_ctx)
    : n_ctx_(n_ctx),
      kv_dim_(config.n_head_kv * config.head_dim),
      k_(static_cast<size_t>(config.n_layer) * n_ctx * kv_dim_),
      v_(k_.size()) {}

absl::StatusOr<int32_t> ResolveContextLength(const ModelConfig& config, int32_t requested) {
  const int32_t n_ctx = requested > 0 ? requested : std::min(config.context_length, kDefaultContextCap);
  if (n_ctx > config.context_length) {
    return absl::InvalidArgumentError(absl::StrCat("context_length ", n_ctx, " exceeds the model's ",
                                                   config.context_length));
  }
  return n_ctx;
}

absl::StatusOr<ModelConfig> ReadModelConfig(const GgufFile& f) {
  ModelConfig c;
  absl::StatusOr<std::string> arch = f.GetString("general.architecture");
  if (!arch.ok()) return absl::InvalidArgumentError(std::string(arch.status().message()));
  c.architecture = *arch;
  if (c.architecture != "qwen2" && c.architecture != "llama") {
    return absl::InvalidArgumentError(absl::StrCat("architecture '", c.architecture,
                                                   "' is not supported (qwen2, llama are)"));
  }
  c.rope_neox = c.architecture == "qwen2";
  const std::string a = c.architecture + ".";
  absl::StatusOr<int32_t> v = PositiveInt(f, a + "block_count");
  if (!v.ok()) return v.status();
  c.n_layer = *v;
  if (v = PositiveInt(f, a + "context_length"); !v.ok()) return v.status();
  c.context_length = *v;
  if (v = PositiveInt(f, a + "embedding_length"); !v.ok()) return v.status();
  c.n_embd = *v;
  if (v = PositiveInt(f, a + "feed_forward_length"); !v.ok()) return v.status();
  c.n_ff = *v;
  if (v = PositiveInt(f, a + "attention.head_count"); !v.ok()) return v.status();
  c.n_head = *v;
  c.n_head_kv = c.n_head;
  if (f.Find(a + "attention.head_count_kv") != nullptr) {
    if (v = PositiveInt(f, a + "attention.head_count_kv"); !v.ok()) return v.status();
    c.n_head_kv = *v;
  }
  if (c.n_head % c.n_head_kv != 0) {
    return absl::InvalidArgumentError(absl::StrCat("head_count ", c.n_head, " is not a multiple of head_count_kv ",
                                                   c.n_head_kv));
  }
  if (f.Find(a + "attention.key_length") != nullptr) {
    if (v = PositiveInt(f, a + "attention.key_length"); !v.ok()) return v.status();
    c.head_dim = *v;
  } else {
    if (c.n_embd % c.n_head != 0) {
      return absl::InvalidArgumentError("embedding_length is not a multiple of head_count");
    }
    c.head_dim = c.n_embd / c.n_head;
  }
  if (c.head_dim % 2 != 0) return absl::InvalidArgumentError("head dimension must be even for RoPE");
  if (f.Find(a + "rope.freq_base") != nullptr) {
    absl::StatusOr<double> base = f.GetFloat(a + "rope.freq_base");
    if (!base.ok() || !(*base > 0)) return absl::InvalidArgumentError(a + "rope.freq_base must be > 0");
    c.rope_freq_base = static_cast<float>(*base);
  }
  if (f.Find(a + "attention.layer_norm_rms_epsilon") != nullptr) {
    absl::StatusOr<double> eps = f.GetFloat(a + "attention.layer_norm_rms_epsilon");
    if (!eps.ok() || !(*eps > 0)) {
      return absl::InvalidArgumentError(a + "attention.layer_norm_rms_epsilon must be > 0");
    }
    c.rms_eps = static_cast<float>(*eps);
  }
  const GgufTensor* embd = f.FindTensor("token_embd.weight");
  if (embd == nullptr || embd->ne.size() != 2 || embd->ne[0] != c.n_embd) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor token_embd.weight is missing or not [", c.n_embd, ", n_vocab]"));
  }
  if (embd->ne[1] > (int64_t{1} << 30)) return absl::InvalidArgumentError("vocabulary too large");
  c.n_vocab = static_cast<int32_t>(embd->ne[1]);
  c.tied_output = f.FindTensor("output.weight") == nullptr;
  c.qkv_bias = f.FindTensor("blk.0.attn_q.bias") != nullptr;
  return c;
}

absl::StatusOr<std::unique_ptr<Model>> Model::Load(GgufFile file, const ModelOptions& options) {
  absl::StatusOr<ModelConfig> config = ReadModelConfig(file);
  if (!config.ok()) {
    return absl::Status(config.status().code(), absl::StrCat(file.path(), ": ", config.status().message()));
  }
  const bool avx2 = options.allow_avx2 && CpuSupportsAvx2Fma();
  std::unique_ptr<Model> m(new Model(std::move(file), *std::move(config), options, avx2));
  if (absl::Status s = m->BindTensors(); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat(m->file_.path(), ": ", s.message()));
  }
  return m;
}

absl::Status Model::BindTensors() {
  const ModelConfig& c = config_;
  const int64_t q_dim = int64_t{c.n_head} * c.head_dim;
  const int64_t kv_dim = int64_t{c.n_head_kv} * c.head_dim;
  for (const GgufTensor& t : file_.tensors()) n_params_ += t.n_elements;

  auto get = [this](const std::string& name, std::vector<int64_t> shape) -> absl::StatusOr<const GgufTensor*> {
    const GgufTensor* t = file_.FindTensor(name);
    if (absl::Status s = CheckShape(t, name, std::move(shape)); !s.ok()) return s;
    return t;
  };
  absl::StatusOr<const GgufTensor*> t = get("token_embd.weight", {c.n_embd, c.n_vocab});
  if (!t.ok()) return t.status();
  token_embd_ = Matrix(**t);
  if (t = get("output_norm.weight", {c.n_embd}); !t.ok()) return t.status();
  output_norm_ = Vector(**t);
  if (c.tied_output) {
    output_ = token_embd_;
  } else {
    if (t = get("output.weight", {c.n_embd, c.n_vocab}); !t.ok()) return t.status();
    output_ = Matrix(**t);
  }
  if (file_.FindTensor("rope_freqs.weight") != nullptr) {
    if (t = get("rope_freqs.weight", {c.head_dim / 2}); !t.ok()) return t.status();
    rope_freqs_ = Vector(**t);
  }
  layers_.resize(c.n_layer);
  for (int i = 0; i < c.n_layer; ++i) {
    Layer& L = layers_[i];
    const std::string p = absl::StrCat("blk.", i, ".");
    struct M {
      const char* name;
      std::vector<int64_t> shape;
      WeightMatrix* w;
    };
    const M mats[] = {
        {"attn_q.weight", {c.n_embd, q_dim}, &L.wq},     {"attn_k.weight", {c.n_embd, kv_dim}, &L.wk},
        {"attn_v.weight", {c.n_embd, kv_dim}, &L.wv},    {"attn_output.weight", {q_dim, c.n_embd}, &L.wo},
        {"ffn_gate.weight", {c.n_embd, c.n_ff}, &L.wg},  {"ffn_up.weight", {c.n_embd, c.n_ff}, &L.wu},
        {"ffn_down.weight", {c.n_ff, c.n_embd}, &L.wd},
    };
    for (const M& m : mats) {
      if (t = get(p + m.name, m.shape); !t.ok()) return t.status();
      *m.w = Matrix(**t);
    }
    if (t = get(p + "attn_norm.weight", {c.n_embd}); !t.ok()) return t.status();
    L.attn_norm = Vector(**t);
    if (t = get(p + "ffn_norm.weight", {c.n_embd}); !t.ok()) return t.status();
    L.ffn_norm = Vector(**t);
    if (c.qkv_bias) {
      if (t = get(p + "attn_q.bias", {q_dim}); !t.ok()) return t.status();
      L.bq = Vector(**t);
      if (t = get(p + "attn_k.bias", {kv_dim}); !t.ok()) return t.status();
      L.bk = Vector(**t);
      if (t = get(p + "attn_v.bias", {kv_dim}); !t.ok()) return t.status();
      L.bv = Vector(**t);
    }
  }
  return absl::OkStatus();
}

int64_t Model::weight_bytes_per_token() const {
  auto bytes = [](const WeightMatrix& w) { return w.rows * w.row_bytes; };
  int64_t total = token_embd_.row_bytes + bytes(output_);
  for (const Layer& L : layers_) {
    total += bytes(L.wq) + bytes(L.wk) + bytes(L.wv) + bytes(L.wo) + bytes(L.wg) + bytes(L.wu) + bytes(L.wd);
  }
  return total;
}

void Model::Rope(float* x, int n_heads, const float* cos_sin) const {
  const int d = config_.head_dim;
  const int half = d / 2;
  for (int h = 0; h < n_heads; ++h) {
    float* v = x + static_cast<int64_t>(h) * d;
    for (int i = 0; i < half; ++i) {
      const float c = cos_sin[2 * i], s = cos_sin[2 * i + 1];
      const int i0 = config_.rope_neox ? i : 2 * i;
      const int i1 = config_.rope_neox ? i + half : 2 * i + 1;
      const float a = v[i0], b = v[i1];
      v[i0] = a * c - b * s;
      v[i1] = a * s + b * c;
    }
  }
}

// att_ (T, n_head * head_dim) = softmax(q k^T / sqrt(d)) v per (token, head).
// Several tokens (prefill, replay): the scores of a block of tokens against
// all keys of one head come from one GemmF32 (inference/cpu_gemm.h), which
// gives each score exactly the bits of the single-token dot; decoding takes
// the dot. Softmax and the weighted sum of values are the same code for both.
void Model::Attention(int layer, absl::Span<const int32_t> positions, KvCache& cache, int64_t T) {
  const ModelConfig& c = config_;
  const int d = c.head_dim;
  const int group = c.n_head / c.n_head_kv;
  const int64_t q_dim = int64_t{c.n_head} * d;
  const int64_t kv_dim = int64_t{c.n_head_kv} * d;
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  const DotFn dot = SelectDot(TensorType::kF32, use_avx2_);
  const GemmIsa isa = SelectGemmIsa(use_avx2_);
  const bool gemm = T > 1 && isa != GemmIsa::kNone && d % 32 == 0;
  int32_t max_pos = 0;
  for (int32_t p : positions) max_pos = std::max(max_pos, p);
  const int64_t span = max_pos + 1;
  tmp_.resize(static_cast<size_t>(T * c.n_head * span));
  // Softmax of item (t, h)'s scores and the weighted sum of the values.
  auto finish = [&](int64_t t, int h) {
    float* scores = tmp_.data() + (t * c.n_head + h) * span;
    const int32_t pos = positions[t];
    float mx = -INFINITY;
    for (int32_t p = 0; p <= pos; ++p) mx = std::max(mx, scores[p]);
    float sum = 0.0f;
    for (int32_t p = 0; p <= pos; ++p) {
      scores[p] = std::exp(scores[p] - mx);
      sum += scores[p];
    }
    const float inv = 1.0f / sum;
    for (int32_t p = 0; p <= pos; ++p) scores[p] *= inv;
    WeightedRowSum(isa, scores, pos + 1, cache.v(layer, 0) + int64_t{h / group} * d, kv_dim, d,
                   att_.data() + t * q_dim + int64_t{h} * d);
  };
  if (gemm) {
    // Work items: (block of kTokens tokens, head).
    constexpr int64_t kTokens = 8;
    const int64_t blocks = (T + kTokens - 1) / kTokens;
    auto work = [&](int64_t begin, int64_t end) {
      for (int64_t item = begin; item < end; ++item) {
        const int64_t t0 = (item / c.n_head) * kTokens;
        const int h = static_cast<int>(item % c.n_head);
        const int64_t nt = std::min(kTokens, T - t0);
        int32_t block_max = 0;
        for (int64_t t = t0; t < t0 + nt; ++t) block_max = std::max(block_max, positions[t]);
        float* scores = tmp_.data() + (t0 * c.n_head + h) * span;
        GemmF32(isa, cache.k(layer, 0) + int64_t{h / group} * d, kv_dim, block_max + 1, d,
                q_.data() + t0 * q_dim + int64_t{h} * d, q_dim, nt, scores, c.n_head * span);
        for (int64_t t = t0; t < t0 + nt; ++t) {
          float* s = tmp_.data() + (t * c.n_head + h) * span;
          for (int32_t p = 0; p <= positions[t]; ++p) s[p] *= scale;
          finish(t, h);
        }
      }
    };
    const int64_t items = blocks * c.n_head;
    pool_.ParallelFor(items, T * c.n_head * span * d < min_parallel_work_ / 4 ? items : 1, work);
    return;
  }
  auto work = [&](int64_t begin, int64_t end) {
    for (int64_t item = begin; item < end; ++item) {
      const int64_t t = item / c.n_head;
      const int h = static_cast<int>(item % c.n_head);
      const int kvh = h / group;
      const float* q = q_.data() + t * q_dim + int64_t{h} * d;
      float* scores = tmp_.data() + item * span;
      for (int32_t p = 0; p <= positions[t]; ++p) {
        const float* k = cache.k(layer, p) + int64_t{kvh} * d;
        scores[p] = dot(reinterpret_cast<const uint8_t*>(k), q, d) * scale;
      }
      finish(t, h);
    }
  };
  const int64_t items = T * c.n_head;
  pool_.ParallelFor(items, items * span * d < min_parallel_work_ / 4 ? items : 1, work);
}

absl::Status Model::Forward(absl::Span<const int32_t> tokens, absl::Span<const int32_t> positions,
                            KvCache& cache, bool all_logits, ForwardOutput* out, bool all_hidden) {
  const ModelConfig& c = config_;
  if (tokens.empty() || tokens.size() != positions.size()) {
    return absl::InvalidArgumentError("Forward needs as many positions as tokens, at least one");
  }
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] < 0 || tokens[i] >= c.n_vocab) {
      return absl::InvalidArgumentError(absl::StrCat("token id ", tokens[i], " is outside the vocabulary of ",
                                                     c.n_vocab));
    }
    if (positions[i] < 0 || positions[i] >= cache.n_ctx()) {
      return absl::InvalidArgumentError(absl::StrCat("position ", positions[i], " is outside the context of ",
                                                     cache.n_ctx()));
    }
  }
  const int64_t T = static_cast<int64_t>(tokens.size());
  const int64_t E = c.n_embd;
  const int64_t d = c.head_dim;
  const int64_t q_dim = int64_t{c.n_head} * d;
  const int64_t kv_dim = int64_t{c.n_head_kv} * d;
  x_.resize(T * E);
  h_.resize(T * std::max(E, q_dim));
  q_.resize(T * q_dim);
  k_.resize(T * kv_dim);
  v_.resize(T * kv_dim);
  att_.resize(T * q_dim);
  g_.resize(T * c.n_ff);
  u_.resize(T * c.n_ff);
  cos_sin_.resize(T * d);

  for (int64_t t = 0; t < T; ++t) {
    DequantizeRow(token_embd_.type, token_embd_.data + tokens[t] * token_embd_.row_bytes, x_.data() + t * E, E);
    for (int64_t i = 0; i < d / 2; ++i) {
      double theta = positions[t] * std::pow(static_cast<double>(c.rope_freq_base),
                                             -2.0 * static_cast<double>(i) / static_cast<double>(d));
      if (!rope_freqs_.empty()) theta /= rope_freqs_[i];
      cos_sin_[t * d + 2 * i] = static_cast<float>(std::cos(theta));
      cos_sin_[t * d + 2 * i + 1] = static_cast<float>(std::sin(theta));
    }
  }

  for (int l = 0; l < c.n_layer; ++l) {
    const Layer& L = layers_[l];
    for (int64_t t = 0; t < T; ++t) RmsNorm(x_.data() + t * E, L.attn_norm.data(), h_.data() + t * E, E, c.rms_eps);
    const MatMulTask qkv[] = {{&L.wq, q_.data()}, {&L.wk, k_.data()}, {&L.wv, v_.data()}};
    MatMul(pool_, use_avx2_, qkv, h_.data(), T, min_parallel_work_);
    for (int64_t t = 0; t < T; ++t) {
      if (c.qkv_bias) {
        for (int64_t i = 0; i < q_dim; ++i) q_[t * q_dim + i] += L.bq[i];
        for (int64_t i = 0; i < kv_dim; ++i) k_[t * kv_dim + i] += L.bk[i];
        for (int64_t i = 0; i < kv_dim; ++i) v_[t * kv_dim + i] += L.bv[i];
      }
      Rope(q_.data() + t * q_dim, c.n_head, cos_sin_.data() + t * d);
      Rope(k_.data() + t * kv_dim, c.n_head_kv, cos_sin_.data() + t * d);
      std::copy_n(k_.data() + t * kv_dim, kv_dim, cache.k(l, positions[t]));
      std::copy_n(v_.data() + t * kv_dim, kv_dim, cache.v(l, positions[t]));
    }
    Attention(l, positions, cache, T);
    const MatMulTask o[] = {{&L.wo, h_.data()}};
    MatMul(pool_, use_avx2_, o, att_.data(), T, min_parallel_work_);
    for (int64_t i = 0; i < T * E; ++i) x_[i] += h_[i];
    for (int64_t t = 0; t < T; ++t) RmsNorm(x_.data() + t * E, L.ffn_norm.data(), h_.data() + t * E, E, c.rms_eps);
    const MatMulTask gu[] = {{&L.wg, g_.data()}, {&L.wu, u_.data()}};
    MatMul(pool_, use_avx2_, gu, h_.data(), T, min_parallel_work_);
    for (int64_t i = 0; i < T * c.n_ff; ++i) {
      const float gv = g_[i];
      g_[i] = gv / (1.0f + std::exp(-gv)) * u_[i];
    }
    const MatMulTask down[] = {{&L.wd, h_.data()}};
    MatMul(pool_, use_avx2_, down, g_.data(), T, min_parallel_work_);
    for (int64_t i = 0; i < T * E; ++i) x_[i] += h_[i];
  }

  const int64_t first = all_logits ? 0 : T - 1;
  const int64_t n_out = T - first;
  const int64_t first_hidden = all_hidden ? 0 : first;
  const int64_t n_hidden = T - first_hidden;
  out->hidden.resize(n_hidden * E);
  out->logits.resize(n_out * c.n_vocab);
  for (int64_t t = 0; t < n_hidden; ++t) {
    RmsNorm(x_.data() + (first_hidden + t) * E, output_norm_.data(), out->hidden.data() + t * E, E, c.rms_eps);
  }
  const MatMulTask logits[] = {{&output_, out->logits.data()}};
  MatMul(pool_, use_avx2_, logits, out->hidden.data() + (first - first_hidden) * E, n_out, min_parallel_work_);
  return absl::OkStatus();
}

}  // namespace stepproof::inference
