// CUDA kernels of the GPU engine, version 1: straightforward, one kernel per
// layer operation, each mirroring its CPU reference in reference.h. Speed work
// comes later, measured and versioned against these.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cfloat>

#include "inference/cuda/kernels_raw.h"
#include "inference/cuda/reduce.cuh"

namespace stepproof::inference::cuda::raw {
namespace {

// x, y: (rows, cols); one block per row.
__global__ void RmsNormKernel(const float* x, const float* w, float* y,
                              int cols, float eps) {
  const float* xr = x + size_t(blockIdx.x) * cols;
  float ss = 0.f;
  for (int c = threadIdx.x; c < cols; c += blockDim.x) ss += xr[c] * xr[c];
  float scale = rsqrtf(BlockSum(ss) / cols + eps);
  for (int c = threadIdx.x; c < cols; c += blockDim.x) {
    y[size_t(blockIdx.x) * cols + c] = xr[c] * scale * w[c];
  }
}

// x: (rows, heads, head_dim); one thread per rotated pair.
__global__ void RopeNeoxKernel(float* x, const int32_t* positions, int rows,
                               int heads, int head_dim, float freq_base) {
  int half = head_dim / 2;
  long long idx = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  long long total = (long long)rows * heads * half;
  if (idx >= total) return;
  int i = idx % half;
  long long rh = idx / half;  // row * heads + head
  int row = rh / heads;
  float theta = positions[row] * powf(freq_base, -2.0f * i / head_dim);
  float s, c;
  sincosf(theta, &s, &c);
  float* v = x + rh * head_dim;
  float a = v[i], b = v[i + half];
  v[i] = a * c - b * s;
  v[i + half] = a * s + b * c;
}

__global__ void SwiGluKernel(const float* gate, const float* up, float* out,
                             int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) {
    float g = gate[i];
    out[i] = g / (1.f + __expf(-g)) * up[i];
  }
}

// One warp per (row, output): y[r, o] = sum_i x[r, i] * W[o, i].
template <typename Weight>
__global__ void MatMulKernel(const float* x, Weight w, float* y, int rows,
                             int in, int out) {
  int warp = (blockIdx.x * blockDim.x + threadIdx.x) / kWarp;
  int lane = threadIdx.x % kWarp;
  if (warp >= rows * out) return;
  int r = warp / out, o = warp % out;
  const float* xr = x + size_t(r) * in;
  float acc = 0.f;
  for (int i = lane; i < in; i += kWarp) acc += xr[i] * w(o, i);
  acc = WarpSum(acc);
  if (lane == 0) y[size_t(r) * out + o] = acc;
}

struct F32Weight {
  const float* w;
  int in;
  __device__ float operator()(int o, int i) const { return w[size_t(o) * in + i]; }
};
struct Bf16Weight {
  const uint16_t* w;
  int in;
  __device__ float operator()(int o, int i) const {
    return __uint_as_float(uint32_t(w[size_t(o) * in + i]) << 16);
  }
};
struct Q8_0Weight {
  const uint8_t* w;
  size_t row_bytes;
  __device__ float operator()(int o, int i) const {
    const uint8_t* block = w + o * row_bytes + size_t(i / 32) * 34;
    __half_raw raw;
    raw.x = uint16_t(block[0]) | uint16_t(block[1]) << 8;
    return __half2float(__half(raw)) * float(int8_t(block[2 + i % 32]));
  }
};

template <typename Weight>
void LaunchMatMul(const float* x, Weight w, float* y, int rows, int in, int out,
                  cudaStream_t stream) {
  constexpr int kThreads = 256;
  long long warps = (long long)rows * out;
  int blocks = int((warps * kWarp + kThreads - 1) / kThreads);
  MatMulKernel<<<blocks, kThreads, 0, stream>>>(x, w, y, rows, in, out);
}

// One block per query head; scores for all positions in shared memory.
__global__ void AttentionDecodeKernel(const float* q, const float* k,
                                      const float* v, float* out, int heads,
                                      int kv_heads, int d, int n_ctx) {
  extern __shared__ float scores[];
  int h = blockIdx.x;
  int kvh = h / (heads / kv_heads);
  const float* qh = q + size_t(h) * d;
  float scale = rsqrtf(float(d));
  int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  int warps = blockDim.x / kWarp;
  for (int t = warp; t < n_ctx; t += warps) {
    const float* kt = k + (size_t(t) * kv_heads + kvh) * d;
    float s = 0.f;
    for (int j = lane; j < d; j += kWarp) s += qh[j] * kt[j];
    s = WarpSum(s);
    if (lane == 0) scores[t] = s * scale;
  }
  __syncthreads();
  float m = -FLT_MAX;
  for (int t = threadIdx.x; t < n_ctx; t += blockDim.x) m = fmaxf(m, scores[t]);
  m = BlockMax(m);
  float sum = 0.f;
  for (int t = threadIdx.x; t < n_ctx; t += blockDim.x) {
    float p = __expf(scores[t] - m);
    scores[t] = p;
    sum += p;
  }
  sum = BlockSum(sum);  // also orders the writes above before the reads below
  for (int j = threadIdx.x; j < d; j += blockDim.x) {
    float acc = 0.f;
    for (int t = 0; t < n_ctx; ++t) acc += scores[t] * v[(size_t(t) * kv_heads + kvh) * d + j];
    out[size_t(h) * d + j] = acc / sum;
  }
}

// Single block: argmax with lowest-index tie-break.
__global__ void ArgMaxKernel(const float* x, int n, int32_t* result) {
  __shared__ float best_v[1024];
  __shared__ int32_t best_i[1024];
  float bv = -FLT_MAX;
  int32_t bi = n;  // n sorts after every real index
  for (int i = threadIdx.x; i < n; i += blockDim.x) {
    if (x[i] > bv || (x[i] == bv && i < bi)) {
      bv = x[i];
      bi = i;
    }
  }
  best_v[threadIdx.x] = bv;
  best_i[threadIdx.x] = bi;
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) {
      float ov = best_v[threadIdx.x + stride];
      int32_t oi = best_i[threadIdx.x + stride];
      if (ov > best_v[threadIdx.x] ||
          (ov == best_v[threadIdx.x] && oi < best_i[threadIdx.x])) {
        best_v[threadIdx.x] = ov;
        best_i[threadIdx.x] = oi;
      }
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) *result = best_i[0] == n ? 0 : best_i[0];
}

}  // namespace

void RmsNorm(const float* x, const float* w, float* y, int rows, int cols,
             float eps, cudaStream_t stream) {
  RmsNormKernel<<<rows, 256, 0, stream>>>(x, w, y, cols, eps);
}

void RopeNeox(float* x, const int32_t* positions, int rows, int heads,
              int head_dim, float freq_base, cudaStream_t stream) {
  long long pairs = (long long)rows * heads * (head_dim / 2);
  int blocks = int((pairs + 255) / 256);
  RopeNeoxKernel<<<blocks, 256, 0, stream>>>(x, positions, rows, heads,
                                             head_dim, freq_base);
}

void SwiGlu(const float* gate, const float* up, float* out, int n,
            cudaStream_t stream) {
  SwiGluKernel<<<(n + 255) / 256, 256, 0, stream>>>(gate, up, out, n);
}

void MatMulF32(const float* x, const float* w, float* y, int rows, int in,
               int out, cudaStream_t stream) {
  LaunchMatMul(x, F32Weight{w, in}, y, rows, in, out, stream);
}

void MatMulBf16(const float* x, const uint16_t* w, float* y, int rows, int in,
                int out, cudaStream_t stream) {
  LaunchMatMul(x, Bf16Weight{w, in}, y, rows, in, out, stream);
}

void MatMulQ8_0(const float* x, const uint8_t* w, float* y, int rows, int in,
                int out, cudaStream_t stream) {
  LaunchMatMul(x, Q8_0Weight{w, size_t(in / 32) * 34}, y, rows, in, out, stream);
}

bool AttentionDecode(const float* q, const float* k, const float* v,
                     float* out, int heads, int kv_heads, int d, int n_ctx,
                     cudaStream_t stream) {
  if (n_ctx > kMaxAttentionContext) return false;
  AttentionDecodeKernel<<<heads, 256, n_ctx * sizeof(float), stream>>>(
      q, k, v, out, heads, kv_heads, d, n_ctx);
  return true;
}

void ArgMax(const float* x, int n, int32_t* result, cudaStream_t stream) {
  ArgMaxKernel<<<1, 1024, 0, stream>>>(x, n, result);
}

}  // namespace stepproof::inference::cuda::raw
