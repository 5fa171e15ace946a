// A decoder-only transformer (Qwen2 or Llama architecture) over GGUF weights,
// and its forward pass on the CPU.
//
// Per layer (x: (T, n_embd)):
//   h = RMSNorm(x) * attn_norm
//   q = h Wq^T (+ bq), k = h Wk^T (+ bk), v = h Wv^T (+ bv)     [bias: Qwen2]
//   RoPE on q, k: NEOX pairs (i, i + d/2) for qwen2; adjacent pairs (2i, 2i+1)
//   for llama (llama.cpp's convert permutes Llama's Q/K for that);
//   theta = pos * freq_base^(-2i/d) [/ rope_freqs[i] when that tensor exists]
//   a = softmax(q k^T / sqrt(d) over positions <= pos) v, per head, K/V head
//       = head / (n_head / n_head_kv)                            [GQA]
//   x = x + a Wo^T
//   h = RMSNorm(x) * ffn_norm
//   x = x + (silu(h Wg^T) * (h Wu^T)) Wd^T                      [SwiGLU]
// then hidden = RMSNorm(x) * output_norm, logits = hidden Wout^T (Wout =
// token_embd when output.weight is absent). Weights stay in the mapping in
// their stored type; K and V are cached as float32.
//
// Thread-safety: a Model is not thread-safe (Forward uses internal scratch and
// the thread pool); callers serialise. A KvCache belongs to one sequence.

#ifndef STEPPROOF_INFERENCE_MODEL_H_
#define STEPPROOF_INFERENCE_MODEL_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "inference/cpu_kernels.h"
#include "inference/gguf.h"
#include "inference/thread_pool.h"

namespace stepproof::inference {

// Hyper-parameters read from GGUF metadata (<arch>.*) and tensor shapes.
struct ModelConfig {
  std::string architecture;  // "qwen2" or "llama"
  int32_t n_layer = 0;
  int32_t n_embd = 0;
  int32_t n_ff = 0;
  int32_t n_head = 0;
  int32_t n_head_kv = 0;
  int32_t head_dim = 0;
  int32_t n_vocab = 0;
  int32_t context_length = 0;  // the model's trained context
  float rope_freq_base = 10000.0f;
  float rms_eps = 1e-6f;
  bool rope_neox = true;     // qwen2: NEOX pairs; llama: adjacent pairs
  bool qkv_bias = false;     // all of blk.N.attn_{q,k,v}.bias present
  bool tied_output = false;  // output.weight absent: logits use token_embd
};

// Reads and validates the config. Returns INVALID_ARGUMENT naming the
// missing or inconsistent key / tensor.
absl::StatusOr<ModelConfig> ReadModelConfig(const GgufFile& file);

// The context a backend opens the model with: `requested` when > 0, else the
// model's context capped at kDefaultContextCap. INVALID_ARGUMENT when a
// requested context exceeds the model's.
inline constexpr int32_t kDefaultContextCap = 4096;
absl::StatusOr<int32_t> ResolveContextLength(const ModelConfig& config, int32_t requested);

// Key/value cache of one sequence: (layer, position, n_head_kv * head_dim).
class KvCache {
 public:
  KvCache(const ModelConfig& config, int32_t n_ctx);
  int32_t n_ctx() const { return n_ctx_; }
  float* k(int32_t layer, int32_t pos) { return k_.data() + Index(layer, pos); }
  float* v(int32_t layer, int32_t pos) { return v_.data() + Index(layer, pos); }
  size_t bytes() const { return (k_.size() + v_.size()) * sizeof(float); }

 private:
  size_t Index(int32_t layer, int32_t pos) const {
    return (static_cast<size_t>(layer) * n_ctx_ + pos) * kv_dim_;
  }
  int32_t n_ctx_;
  int32_t kv_dim_;
  std::vector<float> k_, v_;
};

struct ModelOptions {
  int32_t threads = 0;   // 0 = all cores
  bool allow_avx2 = true;  // false forces the portable kernels
  // Matrix products (and attention) smaller than this many multiply-adds run
  // on the calling thread. Tests set 0 to spread every product over threads.
  int64_t min_parallel_work = kDefaultMinParallelWork;
};

struct ForwardOutput {
  // Logits of the requested tokens, row-major (n_out, n_vocab).
  std::vector<float> logits;
  // Final hidden state after the last RMSNorm (n_out, n_embd); (T, n_embd)
  // when Forward's all_hidden is set.
  std::vector<float> hidden;
};

class Model {
 public:
  // Takes ownership of the file; validates every tensor's presence, type and
  // shape. Returns INVALID_ARGUMENT naming the first problem.
  static absl::StatusOr<std::unique_ptr<Model>> Load(GgufFile file, const ModelOptions& options);

  const ModelConfig& config() const { return config_; }
  const GgufFile& file() const { return file_; }
  int threads() const { return pool_.size(); }
  // The model's threads, for a caller's own parallel work between forward
  // passes (never during one: ThreadPool::ParallelFor is not reentrant).
  ThreadPool& pool() { return pool_; }
  bool uses_avx2() const { return use_avx2_; }
  // Total parameters and bytes of all weight tensors.
  int64_t n_params() const { return n_params_; }
  // Bytes of weights one decode step reads: every matrix once, plus one
  // embedding row.
  int64_t weight_bytes_per_token() const;

  // Runs tokens[i] at positions[i], writing their K/V into `cache`; token i
  // attends to cache entries 0..positions[i] (those before it must have been
  // written by earlier calls or earlier tokens of this call). Fills logits
  // (and hidden) for every token when all_logits, else only for the last.
  // all_hidden (execution fingerprints) fills hidden for every token while
  // logits stay as all_logits says: out->hidden is then (T, n_embd) and
  // out->logits the last n_out rows' logits.
  // Returns INVALID_ARGUMENT for empty or mismatched spans, an out-of-range
  // token id, or a position outside the cache.
  absl::Status Forward(absl::Span<const int32_t> tokens, absl::Span<const int32_t> positions,
                       KvCache& cache, bool all_logits, ForwardOutput* out, bool all_hidden = false);

 private:
  struct Layer {
    std::vector<float> attn_norm, ffn_norm;
    WeightMatrix wq, wk, wv, wo, wg, wu, wd;
    std::vector<float> bq, bk, bv;  // empty when the model has no biases
  };

  Model(GgufFile file, ModelConfig config, const ModelOptions& options, bool use_avx2)
      : file_(std::move(file)),
        config_(std::move(config)),
        pool_(options.threads),
        use_avx2_(use_avx2),
        min_parallel_work_(options.min_parallel_work) {}
  absl::Status BindTensors();
  void Attention(int layer, absl::Span<const int32_t> positions, KvCache& cache, int64_t T);
  void Rope(float* x, int n_heads, const float* cos_sin) const;

  GgufFile file_;
  ModelConfig config_;
  ThreadPool pool_;
  bool use_avx2_;
  int64_t min_parallel_work_;
  int64_t n_params_ = 0;
  WeightMatrix token_embd_, output_;
  std::vector<float> output_norm_;
  std::vector<float> rope_freqs_;  // empty unless rope_freqs.weight exists
  std::vector<Layer> layers_;

  // Scratch reused across calls, sized for the largest T seen.
  std::vector<float> x_, h_, q_, k_, v_, att_, g_, u_, tmp_, cos_sin_;
};

}  // namespace stepproof::inference

#endif  // STEPPROOF_INFERENCE_MODEL_H_
