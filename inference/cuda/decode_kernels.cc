#include "inference/cuda/decode_kernels.h"

#include "absl/strings/str_cat.h"

namespace stepproof::inference::cuda {
namespace {

absl::Status Launched(const char* kernel) {
  cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) {
    return absl::InternalError(absl::StrCat(kernel, " launch failed: ", cudaGetErrorString(err)));
  }
  return absl::OkStatus();
}

absl::Status Positive(const char* what, long long v) {
  if (v <= 0) return absl::InvalidArgumentError(absl::StrCat(what, " must be positive, got ", v));
  return absl::OkStatus();
}

}  // namespace

absl::Status MatMulBatched(const float* x, const DeviceMatrix& w, float* y, int batch, cudaStream_t stream) {
  if (w.cols <= 0 || w.cols % 32 != 0) {
    return absl::InvalidArgumentError(absl::StrCat("batched matmul needs a multiple of 32 inputs, got ", w.cols));
  }
  if (auto s = Positive("batch", batch); !s.ok()) return s;
  if (auto s = Positive("outputs", w.rows); !s.ok()) return s;
  raw::MatMulBatched(x, w, y, batch, stream);
  return Launched("MatMulBatched");
}

absl::Status Embed(const DeviceMatrix& w, const int32_t* tokens, float* x, int rows, cudaStream_t stream) {
  if (auto s = Positive("rows", rows); !s.ok()) return s;
  raw::Embed(w, tokens, x, rows, stream);
  return Launched("Embed");
}

absl::Status AddBias(float* y, const float* bias, int rows, int n, cudaStream_t stream) {
  if (rows <= 0 || n <= 0) return absl::OkStatus();
  raw::AddBias(y, bias, rows, n, stream);
  return Launched("AddBias");
}

absl::Status Add(float* x, const float* y, int64_t n, cudaStream_t stream) {
  if (n <= 0) return absl::OkStatus();
  raw::Add(x, y, n, stream);
  return Launched("Add");
}

absl::Status KvWrite(const float* k, const float* v, float* k_cache, float* v_cache, const int32_t* slots,
                     const int32_t* positions, int rows, int layer, int n_layer, int n_ctx, int kv_dim,
                     cudaStream_t stream) {
  if (auto s = Positive("rows", rows); !s.ok()) return s;
  if (layer < 0 || layer >= n_layer) {
    return absl::InvalidArgumentError(absl::StrCat("layer ", layer, " is outside [0, ", n_layer, ")"));
  }
  raw::KvWrite(k, v, k_cache, v_cache, slots, positions, rows, layer, n_layer, n_ctx, kv_dim, stream);
  return Launched("KvWrite");
}

absl::Status AttentionBatch(const float* q, const float* k_cache, const float* v_cache, const int32_t* slots,
                            const int32_t* positions, float* out, int rows, int heads, int kv_heads, int d,
                            int layer, int n_layer, int n_ctx, int max_span, cudaStream_t stream) {
  if (heads <= 0 || kv_heads <= 0 || heads % kv_heads != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("heads (", heads, ") must be a positive multiple of kv_heads (", kv_heads, ")"));
  }
  if (max_span <= 0 || max_span > raw::kMaxBatchAttentionSpan || max_span > n_ctx) {
    return absl::InvalidArgumentError(absl::StrCat("attention span must be in [1, min(", raw::kMaxBatchAttentionSpan,
                                                   ", ", n_ctx, ")], got ", max_span));
  }
  if (auto s = Positive("rows", rows); !s.ok()) return s;
  raw::AttentionBatch(q, k_cache, v_cache, slots, positions, out, rows, heads, kv_heads, d, layer, n_layer, n_ctx,
                      max_span, stream);
  return Launched("AttentionBatch");
}

absl::Status Sample(const float* logits, int rows, int vocab, int sampleable, const SampleArgs* args,
                    double* scratch_w, uint64_t* scratch_key, SampleResult* out, cudaStream_t stream) {
  if (auto s = Positive("rows", rows); !s.ok()) return s;
  if (sampleable <= 0 || sampleable > vocab) {
    return absl::InvalidArgumentError(absl::StrCat("sampleable ids (", sampleable, ") must be in [1, ", vocab, "]"));
  }
  raw::Sample(logits, rows, vocab, sampleable, args, scratch_w, scratch_key, out, stream);
  return Launched("Sample");
}

absl::Status PhiloxUniforms(const uint64_t* seeds, const uint64_t* positions, double* out, int n,
                            cudaStream_t stream) {
  if (n <= 0) return absl::OkStatus();
  raw::PhiloxUniforms(seeds, positions, out, n, stream);
  return Launched("PhiloxUniforms");
}

}  // namespace stepproof::inference::cuda
