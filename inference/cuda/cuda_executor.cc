#include "inference/cuda/cuda_executor.h"

#include <algorithm>
#include <type_traits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "inference/cuda/kernels.h"
#include "inference/cuda/weights.h"
#include "inference/tensor_type.h"

namespace stepproof::inference::cuda {
namespace {

#define SP_CUDA_RETURN_IF_ERROR(expr)      \
  do {                                     \
    if (absl::Status _s = (expr); !_s.ok()) return _s; \
  } while (0)

absl::Status CudaError(const char* what, cudaError_t err) {
  if (err == cudaSuccess) return absl::OkStatus();
  return absl::InternalError(absl::StrCat(what, ": ", cudaGetErrorString(err)));
}

double MiB(int64_t bytes) { return static_cast<double>(bytes) / (1 << 20); }

}  // namespace

absl::StatusOr<std::unique_ptr<CudaExecutor>> CudaExecutor::Create(const Model& model,
                                                                   const CudaExecutorOptions& options) {
  const ModelConfig& c = model.config();
  if (c.architecture != "qwen2" || !c.rope_neox) {
    return absl::UnimplementedError(absl::StrCat("the CUDA engine runs qwen2 models only so far, not '",
                                                 c.architecture, "'; use --device cpu"));
  }
  if (model.file().FindTensor("rope_freqs.weight") != nullptr) {
    return absl::UnimplementedError("the CUDA engine does not apply rope_freqs.weight yet; use --device cpu");
  }
  if (options.slots < 1) return absl::InvalidArgumentError("slots must be >= 1");
  if (options.max_prefill_rows < 1) return absl::InvalidArgumentError("max_prefill_rows must be >= 1");
  if (options.context_length < 1 || options.context_length > c.context_length) {
    return absl::InvalidArgumentError(absl::StrCat("context_length must be in [1, ", c.context_length,
                                                   "], got ", options.context_length));
  }
  if (options.context_length > raw::kMaxBatchAttentionSpan) {
    return absl::UnimplementedError(absl::StrCat("the CUDA attention kernel holds at most ",
                                                 raw::kMaxBatchAttentionSpan, " positions; asked for ",
                                                 options.context_length));
  }
  if (c.n_embd % 32 != 0 || c.n_ff % 32 != 0 || (c.n_head * c.head_dim) % 32 != 0) {
    return absl::UnimplementedError("the CUDA engine needs widths that are multiples of 32");
  }
  CudaExecutorOptions o = options;
  if (o.sampleable_vocab <= 0 || o.sampleable_vocab > c.n_vocab) o.sampleable_vocab = c.n_vocab;
  std::unique_ptr<CudaExecutor> e(new CudaExecutor(c, o));
  if (absl::Status s = e->Init(model); !s.ok()) return s;
  return e;
}

CudaExecutor::~CudaExecutor() {
  if (stream_ != nullptr) {
    cudaStreamSynchronize(stream_);
    cudaStreamDestroy(stream_);
  }
  for (void* p : allocations_) cudaFree(p);
}

absl::StatusOr<void*> CudaExecutor::Allocate(size_t bytes) {
  void* p = nullptr;
  if (absl::Status s = CudaError("cudaMalloc", cudaMalloc(&p, std::max<size_t>(bytes, 256))); !s.ok()) {
    return absl::ResourceExhaustedError(absl::StrCat("allocating ", MiB(bytes), " MiB on the GPU: ", s.message()));
  }
  allocations_.push_back(p);
  device_bytes_ += static_cast<int64_t>(bytes);
  return p;
}

absl::StatusOr<DeviceMatrix> CudaExecutor::UploadMatrix(const GgufTensor& t) {
  DeviceMatrix m;
  m.cols = static_cast<int32_t>(t.ne[0]);
  m.rows = static_cast<int32_t>(t.ne.size() > 1 ? t.ne[1] : 1);
  if (m.cols % 32 != 0) {
    return absl::UnimplementedError(absl::StrCat("tensor ", t.name, " has ", m.cols,
                                                 " columns; the CUDA engine needs a multiple of 32"));
  }
  const size_t n = static_cast<size_t>(m.rows) * m.cols;
  switch (t.type) {
    case TensorType::kF32: m.kind = WeightKind::kF32; break;
    case TensorType::kF16: m.kind = WeightKind::kF16; break;
    case TensorType::kBF16: m.kind = WeightKind::kBf16; break;
    case TensorType::kQ8_0: m.kind = WeightKind::kQ8_0Split; break;
    default:
      return absl::UnimplementedError(absl::StrCat("the CUDA engine does not run ", std::string(TensorTypeName(t.type)),
                                                   " weights yet (tensor ", t.name,
                                                   "); use an F32, F16, BF16 or Q8_0 GGUF, or --device cpu"));
  }
  if (m.kind == WeightKind::kQ8_0Split) {
    std::vector<int8_t> qs(n);
    std::vector<uint16_t> scales(n / 32);
    RepackQ8_0(t.data, m.rows, m.cols, qs.data(), scales.data());
    absl::StatusOr<void*> dq = Allocate(qs.size());
    if (!dq.ok()) return dq.status();
    absl::StatusOr<void*> ds = Allocate(scales.size() * 2);
    if (!ds.ok()) return ds.status();
    SP_CUDA_RETURN_IF_ERROR(CudaError("upload", cudaMemcpy(*dq, qs.data(), qs.size(), cudaMemcpyHostToDevice)));
    SP_CUDA_RETURN_IF_ERROR(
        CudaError("upload", cudaMemcpy(*ds, scales.data(), scales.size() * 2, cudaMemcpyHostToDevice)));
    m.data = *dq;
    m.scales = static_cast<const uint16_t*>(*ds);
    return m;
  }
  absl::StatusOr<void*> d = Allocate(t.n_bytes);
  if (!d.ok()) return d.status();
  SP_CUDA_RETURN_IF_ERROR(CudaError("upload", cudaMemcpy(*d, t.data, t.n_bytes, cudaMemcpyHostToDevice)));
  m.data = *d;
  return m;
}

absl::StatusOr<const float*> CudaExecutor::UploadVector(const GgufTensor& t) {
  std::vector<float> v(static_cast<size_t>(t.n_elements));
  DequantizeRow(t.type, t.data, v.data(), t.n_elements);
  absl::StatusOr<void*> d = Allocate(v.size() * sizeof(float));
  if (!d.ok()) return d.status();
  SP_CUDA_RETURN_IF_ERROR(
      CudaError("upload", cudaMemcpy(*d, v.data(), v.size() * sizeof(float), cudaMemcpyHostToDevice)));
  return static_cast<const float*>(*d);
}

absl::Status CudaExecutor::Init(const Model& model) {
  const ModelConfig& c = config_;
  const GgufFile& f = model.file();
  const int64_t q_dim = int64_t{c.n_head} * c.head_dim;
  const int64_t kv_dim = int64_t{c.n_head_kv} * c.head_dim;
  const int64_t rows = max_rows();
  const int64_t batch = options_.slots;

  // Refuse up front what cannot fit, saying what needs what.
  int64_t weights = 0;
  for (const GgufTensor& t : f.tensors()) weights += static_cast<int64_t>(t.n_bytes);
  const int64_t kv = 2 * int64_t{options_.slots} * c.n_layer * options_.context_length * kv_dim * 4;
  const int64_t scratch = rows * (3 * c.n_embd + 2 * q_dim + 2 * kv_dim + 2 * int64_t{c.n_ff}) * 4 +
                          batch * c.n_vocab * (4 + 8 + 8);
  size_t free_bytes = 0, total_bytes = 0;
  SP_CUDA_RETURN_IF_ERROR(CudaError("cudaMemGetInfo", cudaMemGetInfo(&free_bytes, &total_bytes)));
  if (static_cast<double>(weights + kv + scratch) > 0.95 * static_cast<double>(free_bytes)) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the model needs ", static_cast<int64_t>(MiB(weights)), " MiB of weights + ", static_cast<int64_t>(MiB(kv)),
        " MiB of KV cache (", options_.slots, " slots x ", options_.context_length, " positions) + ",
        static_cast<int64_t>(MiB(scratch)), " MiB of scratch; the GPU has ",
        static_cast<int64_t>(MiB(static_cast<int64_t>(free_bytes))), " MiB free: use fewer slots or a shorter context"));
  }
  SP_CUDA_RETURN_IF_ERROR(CudaError("cudaStreamCreate", cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking)));

  auto matrix = [&](const std::string& name, DeviceMatrix* out) -> absl::Status {
    const GgufTensor* t = f.FindTensor(name);
    if (t == nullptr) return absl::InvalidArgumentError(absl::StrCat("tensor ", name, " is missing"));
    absl::StatusOr<DeviceMatrix> m = UploadMatrix(*t);
    if (!m.ok()) return m.status();
    *out = *m;
    weight_bytes_per_token_ += static_cast<int64_t>(t->n_bytes);
    return absl::OkStatus();
  };
  auto vector = [&](const std::string& name, const float** out) -> absl::Status {
    const GgufTensor* t = f.FindTensor(name);
    if (t == nullptr) return absl::InvalidArgumentError(absl::StrCat("tensor ", name, " is missing"));
    absl::StatusOr<const float*> v = UploadVector(*t);
    if (!v.ok()) return v.status();
    *out = *v;
    return absl::OkStatus();
  };
  SP_CUDA_RETURN_IF_ERROR(matrix("token_embd.weight", &token_embd_));
  // One embedding row per token, not the table.
  weight_bytes_per_token_ -= static_cast<int64_t>(f.FindTensor("token_embd.weight")->n_bytes);
  weight_bytes_per_token_ += static_cast<int64_t>(RowBytes(f.FindTensor("token_embd.weight")->type, c.n_embd));
  if (c.tied_output) {
    output_ = token_embd_;
    weight_bytes_per_token_ += static_cast<int64_t>(f.FindTensor("token_embd.weight")->n_bytes);
  } else {
    SP_CUDA_RETURN_IF_ERROR(matrix("output.weight", &output_));
  }
  SP_CUDA_RETURN_IF_ERROR(vector("output_norm.weight", &output_norm_));
  layers_.resize(c.n_layer);
  for (int l = 0; l < c.n_layer; ++l) {
    Layer& L = layers_[l];
    const std::string p = absl::StrCat("blk.", l, ".");
    SP_CUDA_RETURN_IF_ERROR(matrix(p + "attn_q.weight", &L.wq));
    SP_CUDA_RETURN_IF_ERROR(matrix(p + "attn_k.weight", &L.wk));
    SP_CUDA_RETURN_IF_ERROR(matrix(p + "attn_v.weight", &L.wv));
    SP_CUDA_RETURN_IF_ERROR(matrix(p + "attn_output.weight", &L.wo));
    SP_CUDA_RETURN_IF_ERROR(matrix(p + "ffn_gate.weight", &L.wg));
    SP_CUDA_RETURN_IF_ERROR(matrix(p + "ffn_up.weight", &L.wu));
    SP_CUDA_RETURN_IF_ERROR(matrix(p + "ffn_down.weight", &L.wd));
    SP_CUDA_RETURN_IF_ERROR(vector(p + "attn_norm.weight", &L.attn_norm));
    SP_CUDA_RETURN_IF_ERROR(vector(p + "ffn_norm.weight", &L.ffn_norm));
    if (c.qkv_bias) {
      SP_CUDA_RETURN_IF_ERROR(vector(p + "attn_q.bias", &L.bq));
      SP_CUDA_RETURN_IF_ERROR(vector(p + "attn_k.bias", &L.bk));
      SP_CUDA_RETURN_IF_ERROR(vector(p + "attn_v.bias", &L.bv));
    }
  }

  auto alloc_f = [&](float** p, int64_t n) -> absl::Status {
    absl::StatusOr<void*> d = Allocate(static_cast<size_t>(n) * sizeof(float));
    if (!d.ok()) return d.status();
    *p = static_cast<float*>(*d);
    return absl::OkStatus();
  };
  SP_CUDA_RETURN_IF_ERROR(alloc_f(&k_cache_, kv / 8));
  SP_CUDA_RETURN_IF_ERROR(alloc_f(&v_cache_, kv / 8));
  // Fresh slots hold zeros, never stale memory (only written positions are read).
  SP_CUDA_RETURN_IF_ERROR(CudaError("cudaMemset", cudaMemset(k_cache_, 0, kv / 2)));
  SP_CUDA_RETURN_IF_ERROR(CudaError("cudaMemset", cudaMemset(v_cache_, 0, kv / 2)));
  SP_CUDA_RETURN_IF_ERROR(alloc_f(&x_, rows * c.n_embd));
  SP_CUDA_RETURN_IF_ERROR(alloc_f(&h_, rows * std::max<int64_t>(c.n_embd, q_dim)));
  SP_CUDA_RETURN_IF_ERROR(alloc_f(&q_, rows * q_dim));
  SP_CUDA_RETURN_IF_ERROR(alloc_f(&k_, rows * kv_dim));
  SP_CUDA_RETURN_IF_ERROR(alloc_f(&v_, rows * kv_dim));
  SP_CUDA_RETURN_IF_ERROR(alloc_f(&att_, rows * q_dim));
  SP_CUDA_RETURN_IF_ERROR(alloc_f(&g_, rows * c.n_ff));
  SP_CUDA_RETURN_IF_ERROR(alloc_f(&u_, rows * c.n_ff));
  SP_CUDA_RETURN_IF_ERROR(alloc_f(&hidden_, rows * c.n_embd));
  SP_CUDA_RETURN_IF_ERROR(alloc_f(&logits_, batch * c.n_vocab));
  auto alloc = [&](auto** p, int64_t bytes) -> absl::Status {
    absl::StatusOr<void*> d = Allocate(static_cast<size_t>(bytes));
    if (!d.ok()) return d.status();
    *p = static_cast<std::remove_pointer_t<std::remove_reference_t<decltype(p)>>>(*d);
    return absl::OkStatus();
  };
  SP_CUDA_RETURN_IF_ERROR(alloc(&d_tokens_, rows * 4));
  SP_CUDA_RETURN_IF_ERROR(alloc(&d_positions_, rows * 4));
  SP_CUDA_RETURN_IF_ERROR(alloc(&d_slots_, rows * 4));
  SP_CUDA_RETURN_IF_ERROR(alloc(&d_args_, batch * static_cast<int64_t>(sizeof(SampleArgs))));
  SP_CUDA_RETURN_IF_ERROR(alloc(&d_results_, batch * static_cast<int64_t>(sizeof(SampleResult))));
  SP_CUDA_RETURN_IF_ERROR(alloc(&scratch_w_, batch * c.n_vocab * 8));
  SP_CUDA_RETURN_IF_ERROR(alloc(&scratch_key_, batch * c.n_vocab * 8));
  return CudaError("weight upload", cudaDeviceSynchronize());
}

absl::Status CudaExecutor::Forward(int rows, const int32_t* tokens, const int32_t* positions, const int32_t* slots,
                                   int first_out, const SampleArgs* args, bool all_hidden,
                                   std::vector<float>* hidden, std::vector<SampleResult>* results) {
  const ModelConfig& c = config_;
  const int E = c.n_embd, d = c.head_dim;
  const int q_dim = c.n_head * d, kv_dim = c.n_head_kv * d;
  const int n_layer = c.n_layer, n_ctx = options_.context_length;
  const int n_out = rows - first_out;
  int max_span = 0;
  for (int r = 0; r < rows; ++r) {
    if (tokens[r] < 0 || tokens[r] >= c.n_vocab) {
      return absl::InvalidArgumentError(absl::StrCat("token id ", tokens[r], " is outside the vocabulary of ",
                                                     c.n_vocab));
    }
    if (positions[r] < 0 || positions[r] >= n_ctx) {
      return absl::InvalidArgumentError(absl::StrCat("position ", positions[r], " is outside the context of ", n_ctx));
    }
    if (slots[r] < 0 || slots[r] >= options_.slots) {
      return absl::InvalidArgumentError(absl::StrCat("slot ", slots[r], " is outside [0, ", options_.slots, ")"));
    }
    max_span = std::max(max_span, positions[r] + 1);
  }
  cudaStream_t s = stream_;
  SP_CUDA_RETURN_IF_ERROR(CudaError("copy", cudaMemcpyAsync(d_tokens_, tokens, rows * 4, cudaMemcpyHostToDevice, s)));
  SP_CUDA_RETURN_IF_ERROR(
      CudaError("copy", cudaMemcpyAsync(d_positions_, positions, rows * 4, cudaMemcpyHostToDevice, s)));
  SP_CUDA_RETURN_IF_ERROR(CudaError("copy", cudaMemcpyAsync(d_slots_, slots, rows * 4, cudaMemcpyHostToDevice, s)));
  if (args != nullptr) {
    SP_CUDA_RETURN_IF_ERROR(
        CudaError("copy", cudaMemcpyAsync(d_args_, args, n_out * sizeof(SampleArgs), cudaMemcpyHostToDevice, s)));
  }
  SP_CUDA_RETURN_IF_ERROR(Embed(token_embd_, d_tokens_, x_, rows, s));
  for (int l = 0; l < n_layer; ++l) {
    const Layer& L = layers_[l];
    SP_CUDA_RETURN_IF_ERROR(RmsNorm(x_, L.attn_norm, h_, rows, E, c.rms_eps, s));
    SP_CUDA_RETURN_IF_ERROR(MatMulBatched(h_, L.wq, q_, rows, s));
    SP_CUDA_RETURN_IF_ERROR(MatMulBatched(h_, L.wk, k_, rows, s));
    SP_CUDA_RETURN_IF_ERROR(MatMulBatched(h_, L.wv, v_, rows, s));
    if (c.qkv_bias) {
      SP_CUDA_RETURN_IF_ERROR(AddBias(q_, L.bq, rows, q_dim, s));
      SP_CUDA_RETURN_IF_ERROR(AddBias(k_, L.bk, rows, kv_dim, s));
      SP_CUDA_RETURN_IF_ERROR(AddBias(v_, L.bv, rows, kv_dim, s));
    }
    SP_CUDA_RETURN_IF_ERROR(RopeNeox(q_, d_positions_, rows, c.n_head, d, c.rope_freq_base, s));
    SP_CUDA_RETURN_IF_ERROR(RopeNeox(k_, d_positions_, rows, c.n_head_kv, d, c.rope_freq_base, s));
    SP_CUDA_RETURN_IF_ERROR(KvWrite(k_, v_, k_cache_, v_cache_, d_slots_, d_positions_, rows, l, n_layer, n_ctx,
                                    kv_dim, s));
    SP_CUDA_RETURN_IF_ERROR(AttentionBatch(q_, k_cache_, v_cache_, d_slots_, d_positions_, att_, rows, c.n_head,
                                           c.n_head_kv, d, l, n_layer, n_ctx, max_span, s));
    SP_CUDA_RETURN_IF_ERROR(MatMulBatched(att_, L.wo, h_, rows, s));
    SP_CUDA_RETURN_IF_ERROR(Add(x_, h_, int64_t{rows} * E, s));
    SP_CUDA_RETURN_IF_ERROR(RmsNorm(x_, L.ffn_norm, h_, rows, E, c.rms_eps, s));
    SP_CUDA_RETURN_IF_ERROR(MatMulBatched(h_, L.wg, g_, rows, s));
    SP_CUDA_RETURN_IF_ERROR(MatMulBatched(h_, L.wu, u_, rows, s));
    SP_CUDA_RETURN_IF_ERROR(SwiGlu(g_, u_, g_, rows * c.n_ff, s));
    SP_CUDA_RETURN_IF_ERROR(MatMulBatched(g_, L.wd, h_, rows, s));
    SP_CUDA_RETURN_IF_ERROR(Add(x_, h_, int64_t{rows} * E, s));
  }
  SP_CUDA_RETURN_IF_ERROR(RmsNorm(x_, output_norm_, hidden_, rows, E, c.rms_eps, s));
  if (args != nullptr) {
    SP_CUDA_RETURN_IF_ERROR(MatMulBatched(hidden_ + int64_t{first_out} * E, output_, logits_, n_out, s));
    SP_CUDA_RETURN_IF_ERROR(Sample(logits_, n_out, c.n_vocab, options_.sampleable_vocab, d_args_, scratch_w_,
                                   scratch_key_, d_results_, s));
    results->resize(n_out);
    SP_CUDA_RETURN_IF_ERROR(CudaError(
        "copy", cudaMemcpyAsync(results->data(), d_results_, n_out * sizeof(SampleResult), cudaMemcpyDeviceToHost, s)));
  }
  const int first_hidden = all_hidden ? 0 : first_out;
  hidden->resize(static_cast<size_t>(rows - first_hidden) * E);
  SP_CUDA_RETURN_IF_ERROR(CudaError("copy", cudaMemcpyAsync(hidden->data(), hidden_ + int64_t{first_hidden} * E,
                                                            hidden->size() * sizeof(float),
                                                            cudaMemcpyDeviceToHost, s)));
  return CudaError("decode step", cudaStreamSynchronize(s));
}

namespace {
SampleArgs ToArgs(const SamplingParams& p, uint64_t position) {
  SampleArgs a;
  a.seed = p.seed;
  a.position = position;
  a.temperature = p.temperature;
  a.top_p = p.top_p;
  a.top_k = p.top_k;
  a.greedy = p.greedy ? 1 : 0;
  return a;
}
}  // namespace

absl::Status CudaExecutor::Prefill(int32_t slot, absl::Span<const int32_t> tokens, int32_t start, bool all_hidden,
                                   const SamplingParams* sample, std::vector<float>* hidden, SampledToken* sampled) {
  if (tokens.empty()) return absl::InvalidArgumentError("prefill needs at least one token");
  hidden->clear();
  std::vector<float> part;
  std::vector<SampleResult> results;
  const int64_t n = static_cast<int64_t>(tokens.size());
  for (int64_t begin = 0; begin < n; begin += max_rows()) {
    const int rows = static_cast<int>(std::min<int64_t>(max_rows(), n - begin));
    const bool last = begin + rows == n;
    std::vector<int32_t> positions(rows), slots(rows, slot);
    for (int r = 0; r < rows; ++r) positions[r] = start + static_cast<int32_t>(begin + r);
    SampleArgs args;
    if (last && sample != nullptr) args = ToArgs(*sample, static_cast<uint64_t>(start) + n);
    SP_CUDA_RETURN_IF_ERROR(Forward(rows, tokens.data() + begin, positions.data(), slots.data(), rows - 1,
                                    last && sample != nullptr ? &args : nullptr, all_hidden, &part, &results));
    if (all_hidden || last) hidden->insert(hidden->end(), part.begin(), part.end());
  }
  if (sample != nullptr) *sampled = SampledToken{results[0].id, results[0].logprob};
  return absl::OkStatus();
}

absl::Status CudaExecutor::Decode(absl::Span<const DecodeItem> batch, std::vector<float>* hidden,
                                  std::vector<SampledToken>* sampled) {
  if (batch.empty() || static_cast<int32_t>(batch.size()) > max_batch()) {
    return absl::InvalidArgumentError(absl::StrCat("a decode batch holds 1 to ", max_batch(), " sequences, got ",
                                                   batch.size()));
  }
  const int rows = static_cast<int>(batch.size());
  std::vector<int32_t> tokens(rows), positions(rows), slots(rows);
  std::vector<SampleArgs> args(rows);
  for (int r = 0; r < rows; ++r) {
    tokens[r] = batch[r].token;
    positions[r] = batch[r].position;
    slots[r] = batch[r].slot;
    args[r] = ToArgs(batch[r].sampling, static_cast<uint64_t>(batch[r].position) + 1);
  }
  std::vector<SampleResult> results;
  SP_CUDA_RETURN_IF_ERROR(Forward(rows, tokens.data(), positions.data(), slots.data(), 0, args.data(),
                                  /*all_hidden=*/false, hidden, &results));
  sampled->resize(rows);
  for (int r = 0; r < rows; ++r) (*sampled)[r] = SampledToken{results[r].id, results[r].logprob};
  return absl::OkStatus();
}

}  // namespace stepproof::inference::cuda
