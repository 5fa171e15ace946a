#include "inference/cuda/kernels.h"

#include "absl/strings/str_cat.h"
#include "inference/cuda/kernels_raw.h"

namespace stepproof::inference::cuda {
namespace {

absl::Status Launched(const char* kernel) {
  cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) {
    return absl::InternalError(
        absl::StrCat(kernel, " launch failed: ", cudaGetErrorString(err)));
  }
  return absl::OkStatus();
}

absl::Status Positive(const char* what, long long v) {
  if (v <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(what, " must be positive, got ", v));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status RmsNorm(const float* x, const float* w, float* y, int rows,
                     int cols, float eps, cudaStream_t stream) {
  if (auto s = Positive("cols", cols); !s.ok()) return s;
  if (rows == 0) return absl::OkStatus();
  raw::RmsNorm(x, w, y, rows, cols, eps, stream);
  return Launched("RmsNorm");
}

absl::Status RopeNeox(float* x, const int32_t* positions, int rows, int heads,
                      int head_dim, float freq_base, cudaStream_t stream) {
  if (head_dim <= 0 || head_dim % 2 != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("head_dim must be positive and even, got ", head_dim));
  }
  if (rows == 0 || heads == 0) return absl::OkStatus();
  raw::RopeNeox(x, positions, rows, heads, head_dim, freq_base, stream);
  return Launched("RopeNeox");
}

absl::Status SwiGlu(const float* gate, const float* up, float* out, int n,
                    cudaStream_t stream) {
  if (n == 0) return absl::OkStatus();
  raw::SwiGlu(gate, up, out, n, stream);
  return Launched("SwiGlu");
}

absl::Status MatMulF32(const float* x, const float* w, float* y, int rows,
                       int in, int out, cudaStream_t stream) {
  if (auto s = Positive("in", in); !s.ok()) return s;
  if (rows == 0 || out == 0) return absl::OkStatus();
  raw::MatMulF32(x, w, y, rows, in, out, stream);
  return Launched("MatMulF32");
}

absl::Status MatMulBf16(const float* x, const uint16_t* w, float* y, int rows,
                        int in, int out, cudaStream_t stream) {
  if (auto s = Positive("in", in); !s.ok()) return s;
  if (rows == 0 || out == 0) return absl::OkStatus();
  raw::MatMulBf16(x, w, y, rows, in, out, stream);
  return Launched("MatMulBf16");
}

absl::Status MatMulQ8_0(const float* x, const uint8_t* w, float* y, int rows,
                        int in, int out, cudaStream_t stream) {
  if (in <= 0 || in % 32 != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("Q8_0 rows need a multiple of 32 inputs, got ", in));
  }
  if (rows == 0 || out == 0) return absl::OkStatus();
  raw::MatMulQ8_0(x, w, y, rows, in, out, stream);
  return Launched("MatMulQ8_0");
}

absl::Status AttentionDecode(const float* q, const float* k, const float* v,
                             float* out, int heads, int kv_heads, int d,
                             int n_ctx, cudaStream_t stream) {
  if (heads <= 0 || kv_heads <= 0 || heads % kv_heads != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "heads (", heads, ") must be a positive multiple of kv_heads (",
        kv_heads, ")"));
  }
  if (n_ctx <= 0 || n_ctx > raw::kMaxAttentionContext) {
    return absl::InvalidArgumentError(absl::StrCat(
        "attention context must be in [1, ", raw::kMaxAttentionContext,
        "], got ", n_ctx));
  }
  raw::AttentionDecode(q, k, v, out, heads, kv_heads, d, n_ctx, stream);
  return Launched("AttentionDecode");
}

absl::Status ArgMax(const float* x, int n, int32_t* result,
                    cudaStream_t stream) {
  if (auto s = Positive("n", n); !s.ok()) return s;
  raw::ArgMax(x, n, result, stream);
  return Launched("ArgMax");
}

}  // namespace stepproof::inference::cuda
