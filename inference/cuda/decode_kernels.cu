// Batched decode kernels (version 1): the matrix product over a batch of
// rows, embedding gather, KV-cache writes and attention for rows of
// different sequences, and the sampler. Each mirrors a CPU reference
// (reference.h); tests/inference_cuda compares them on random inputs.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cfloat>
#include <cmath>
#include <cstdint>

#include "inference/cuda/decode_kernels_raw.h"
#include "inference/cuda/reduce.cuh"

namespace stepproof::inference::cuda::raw {
namespace {

constexpr int kRowsPerPass = 8;  // batch rows sharing one read of a weight row

// ---- weights: 8 consecutive values of row o from column i0 (i0 % 8 == 0) ----

__device__ void Load8(const DeviceMatrix& w, int o, int i0, float* out) {
  const size_t base = size_t(o) * w.cols + i0;
  switch (w.kind) {
    case WeightKind::kF32: {
      const float4* p = reinterpret_cast<const float4*>(static_cast<const float*>(w.data) + base);
      const float4 a = p[0], b = p[1];
      out[0] = a.x; out[1] = a.y; out[2] = a.z; out[3] = a.w;
      out[4] = b.x; out[5] = b.y; out[6] = b.z; out[7] = b.w;
      break;
    }
    case WeightKind::kBf16: {
      const uint4 u = *reinterpret_cast<const uint4*>(static_cast<const uint16_t*>(w.data) + base);
      const uint32_t words[4] = {u.x, u.y, u.z, u.w};
      for (int j = 0; j < 4; ++j) {
        out[2 * j] = __uint_as_float(words[j] << 16);
        out[2 * j + 1] = __uint_as_float(words[j] & 0xffff0000u);
      }
      break;
    }
    case WeightKind::kF16: {
      const uint4 u = *reinterpret_cast<const uint4*>(static_cast<const uint16_t*>(w.data) + base);
      const uint32_t words[4] = {u.x, u.y, u.z, u.w};
      for (int j = 0; j < 4; ++j) {
        __half_raw lo, hi;
        lo.x = uint16_t(words[j] & 0xffffu);
        hi.x = uint16_t(words[j] >> 16);
        out[2 * j] = __half2float(__half(lo));
        out[2 * j + 1] = __half2float(__half(hi));
      }
      break;
    }
    case WeightKind::kQ8_0Split: {
      const uint2 u = *reinterpret_cast<const uint2*>(static_cast<const int8_t*>(w.data) + base);
      __half_raw d;
      d.x = w.scales[size_t(o) * (w.cols / 32) + i0 / 32];
      const float scale = __half2float(__half(d));
      const uint32_t words[2] = {u.x, u.y};
      for (int j = 0; j < 8; ++j) {
        const int8_t q = int8_t((words[j / 4] >> (8 * (j % 4))) & 0xffu);
        out[j] = scale * float(q);
      }
      break;
    }
  }
}

__device__ float LoadOne(const DeviceMatrix& w, int o, int i) {
  const size_t at = size_t(o) * w.cols + i;
  switch (w.kind) {
    case WeightKind::kF32: return static_cast<const float*>(w.data)[at];
    case WeightKind::kBf16: return __uint_as_float(uint32_t(static_cast<const uint16_t*>(w.data)[at]) << 16);
    case WeightKind::kF16: {
      __half_raw h;
      h.x = static_cast<const uint16_t*>(w.data)[at];
      return __half2float(__half(h));
    }
    case WeightKind::kQ8_0Split: {
      __half_raw d;
      d.x = w.scales[size_t(o) * (w.cols / 32) + i / 32];
      return __half2float(__half(d)) * float(static_cast<const int8_t*>(w.data)[at]);
    }
  }
  return 0.f;
}

// One warp per output o; lanes stride over 8-value chunks of the row.
__global__ void MatMulBatchedKernel(const float* x, DeviceMatrix w, float* y, int batch) {
  const int o = (blockIdx.x * blockDim.x + threadIdx.x) / kWarp;
  const int lane = threadIdx.x % kWarp;
  if (o >= w.rows) return;  // whole warps return together
  const int chunks = w.cols / 8;
  for (int r0 = 0; r0 < batch; r0 += kRowsPerPass) {
    const int nr = min(kRowsPerPass, batch - r0);
    float acc[kRowsPerPass];
#pragma unroll
    for (int r = 0; r < kRowsPerPass; ++r) acc[r] = 0.f;
    for (int c = lane; c < chunks; c += kWarp) {
      float wv[8];
      Load8(w, o, c * 8, wv);
#pragma unroll
      for (int r = 0; r < kRowsPerPass; ++r) {
        if (r < nr) {
          const float4* xp = reinterpret_cast<const float4*>(x + size_t(r0 + r) * w.cols + c * 8);
          const float4 a = xp[0], b = xp[1];
          acc[r] += a.x * wv[0] + a.y * wv[1] + a.z * wv[2] + a.w * wv[3] + b.x * wv[4] + b.y * wv[5] +
                    b.z * wv[6] + b.w * wv[7];
        }
      }
    }
#pragma unroll
    for (int r = 0; r < kRowsPerPass; ++r) {
      const float s = WarpSum(acc[r]);
      if (lane == 0 && r < nr) y[size_t(r0 + r) * w.rows + o] = s;
    }
  }
}

__global__ void EmbedKernel(DeviceMatrix w, const int32_t* tokens, float* x) {
  const int r = blockIdx.x;
  const int t = tokens[r];
  for (int i = threadIdx.x; i < w.cols; i += blockDim.x) x[size_t(r) * w.cols + i] = LoadOne(w, t, i);
}

__global__ void AddBiasKernel(float* y, const float* bias, int rows, int n) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i < int64_t(rows) * n) y[i] += bias[i % n];
}

__global__ void AddKernel(float* x, const float* y, int64_t n) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i < n) x[i] += y[i];
}

__device__ size_t CacheRow(int slot, int layer, int pos, int n_layer, int n_ctx, int kv_dim) {
  return ((size_t(slot) * n_layer + layer) * n_ctx + pos) * kv_dim;
}

__global__ void KvWriteKernel(const float* k, const float* v, float* k_cache, float* v_cache, const int32_t* slots,
                              const int32_t* positions, int layer, int n_layer, int n_ctx, int kv_dim) {
  const int r = blockIdx.x;
  const size_t at = CacheRow(slots[r], layer, positions[r], n_layer, n_ctx, kv_dim);
  for (int j = threadIdx.x; j < kv_dim; j += blockDim.x) {
    k_cache[at + j] = k[size_t(r) * kv_dim + j];
    v_cache[at + j] = v[size_t(r) * kv_dim + j];
  }
}

// Grid (heads, rows); scores of the row's positions in shared memory.
__global__ void AttentionBatchKernel(const float* q, const float* k_cache, const float* v_cache,
                                     const int32_t* slots, const int32_t* positions, float* out, int heads,
                                     int kv_heads, int d, int layer, int n_layer, int n_ctx) {
  extern __shared__ float scores[];
  const int h = blockIdx.x, r = blockIdx.y;
  const int kvh = h / (heads / kv_heads);
  const int kv_dim = kv_heads * d;
  const int span = positions[r] + 1;
  const size_t base = CacheRow(slots[r], layer, 0, n_layer, n_ctx, kv_dim) + size_t(kvh) * d;
  const float* qh = q + (size_t(r) * heads + h) * d;
  const float scale = rsqrtf(float(d));
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  const int warps = blockDim.x / kWarp;
  for (int t = warp; t < span; t += warps) {
    const float* kt = k_cache + base + size_t(t) * kv_dim;
    float s = 0.f;
    for (int j = lane; j < d; j += kWarp) s += qh[j] * kt[j];
    s = WarpSum(s);
    if (lane == 0) scores[t] = s * scale;
  }
  __syncthreads();
  float m = -FLT_MAX;
  for (int t = threadIdx.x; t < span; t += blockDim.x) m = fmaxf(m, scores[t]);
  m = BlockMax(m);
  float sum = 0.f;
  for (int t = threadIdx.x; t < span; t += blockDim.x) {
    const float p = __expf(scores[t] - m);
    scores[t] = p;
    sum += p;
  }
  sum = BlockSum(sum);  // its barriers order the writes above before the reads below
  for (int j = threadIdx.x; j < d; j += blockDim.x) {
    float acc = 0.f;
    for (int t = 0; t < span; ++t) acc += scores[t] * v_cache[base + size_t(t) * kv_dim + j];
    out[(size_t(r) * heads + h) * d + j] = acc / sum;
  }
}

// ---- sampling ----

__device__ void Philox4x32_10(uint32_t x[4], uint32_t k0, uint32_t k1) {
  for (int r = 0; r < 10; ++r) {
    if (r > 0) {
      k0 += 0x9E3779B9u;
      k1 += 0xBB67AE85u;
    }
    const uint64_t p0 = uint64_t(0xD2511F53u) * x[0];
    const uint64_t p1 = uint64_t(0xCD9E8D57u) * x[2];
    const uint32_t hi0 = uint32_t(p0 >> 32), lo0 = uint32_t(p0);
    const uint32_t hi1 = uint32_t(p1 >> 32), lo1 = uint32_t(p1);
    const uint32_t n0 = hi1 ^ x[1] ^ k0, n2 = hi0 ^ x[3] ^ k1;
    x[0] = n0;
    x[1] = lo1;
    x[2] = n2;
    x[3] = lo0;
  }
}

__device__ double PhiloxUniformDevice(uint64_t seed, uint64_t position) {
  uint32_t x[4] = {uint32_t(position), uint32_t(position >> 32), 0u, 0u};
  Philox4x32_10(x, uint32_t(seed), uint32_t(seed >> 32));
  const uint64_t bits = (uint64_t(x[1]) << 32) | x[0];
  return double(bits >> 11) * 0x1.0p-53;
}

__global__ void PhiloxUniformsKernel(const uint64_t* seeds, const uint64_t* positions, double* out, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = PhiloxUniformDevice(seeds[i], positions[i]);
}

__device__ uint32_t OrderedBits(float x) {
  const uint32_t u = __float_as_uint(x);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

constexpr int kSampleThreads = 1024;

// Sum over ids whose key <= k of (count ? 1 : w); every thread gets it.
__device__ double MassUpTo(const double* w, const uint64_t* key, int vocab, uint64_t k, bool count) {
  double s = 0.0;
  for (int i = threadIdx.x; i < vocab; i += blockDim.x) {
    if (key[i] <= k) s += count ? 1.0 : w[i];
  }
  return BlockSum(s);
}

// The smallest key K in [lo, hi] with MassUpTo(K) >= thr (strict: > thr);
// hi when none. Block-uniform.
__device__ uint64_t SmallestKeyReaching(const double* w, const uint64_t* key, int vocab, uint64_t lo, uint64_t hi,
                                        double thr, bool strict, bool count) {
  while (lo < hi) {
    const uint64_t mid = lo + (hi - lo) / 2;
    const double m = MassUpTo(w, key, vocab, mid, count);
    if (strict ? m > thr : m >= thr) {
      hi = mid;
    } else {
      lo = mid + 1;
    }
  }
  return hi;
}

// One block per row.
__global__ void __launch_bounds__(kSampleThreads) SampleKernel(const float* logits, int vocab, int sampleable, const SampleArgs* args,
                             double* scratch_w, uint64_t* scratch_key, SampleResult* out) {
  __shared__ float best_v[kSampleThreads];
  __shared__ int32_t best_i[kSampleThreads];
  const int row = blockIdx.x;
  const float* l = logits + size_t(row) * vocab;
  const SampleArgs a = args[row];
  auto clean = [&](int i) {
    const float x = l[i];
    return (i >= sampleable || isnan(x)) ? -INFINITY : x;
  };
  // Argmax, lowest index on ties (-inf ties too: id 0 when all are -inf).
  float bv = -INFINITY;
  int32_t bi = vocab;
  for (int i = threadIdx.x; i < vocab; i += blockDim.x) {
    const float x = clean(i);
    if (x > bv || (x == bv && i < bi)) {
      bv = x;
      bi = i;
    }
  }
  best_v[threadIdx.x] = bv;
  best_i[threadIdx.x] = bi;
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) {
      const float ov = best_v[threadIdx.x + stride];
      const int32_t oi = best_i[threadIdx.x + stride];
      if (ov > best_v[threadIdx.x] || (ov == best_v[threadIdx.x] && oi < best_i[threadIdx.x])) {
        best_v[threadIdx.x] = ov;
        best_i[threadIdx.x] = oi;
      }
    }
    __syncthreads();
  }
  const float top = best_v[0];
  const int32_t top_id = best_i[0] >= vocab ? 0 : best_i[0];
  __syncthreads();

  int32_t id = top_id;
  if (!(a.greedy || a.temperature == 0.0f) && !isinf(top)) {
    double* w = scratch_w + size_t(row) * vocab;
    uint64_t* key = scratch_key + size_t(row) * vocab;
    const double t = double(a.temperature);
    unsigned long long last = 0;  // the largest key: the last id in order
    for (int i = threadIdx.x; i < vocab; i += blockDim.x) {
      const float x = clean(i);
      w[i] = exp((double(x) - double(top)) / t);
      key[i] = (uint64_t(~OrderedBits(x)) << 32) | uint64_t(uint32_t(i));
      last = key[i] > last ? key[i] : last;
    }
    last = BlockMax(last);  // its barriers also publish w and key
    uint64_t bound = last;  // kept: keys <= bound
    if (a.top_k > 0 && a.top_k < vocab) {
      bound = SmallestKeyReaching(w, key, vocab, 0, last, double(a.top_k), false, true);
    }
    double span = MassUpTo(w, key, vocab, bound, false);
    if (a.top_p < 1.0f) {
      const double thr = double(a.top_p) * span;
      bound = SmallestKeyReaching(w, key, vocab, 0, bound, thr, false, false);
      span = MassUpTo(w, key, vocab, bound, false);
    }
    const double target = PhiloxUniformDevice(a.seed, a.position) * span;
    const uint64_t chosen = SmallestKeyReaching(w, key, vocab, 0, bound, target, true, false);
    id = int32_t(uint32_t(chosen & 0xffffffffu));
  }

  // log-softmax at temperature 1 of the cleaned logits, at id.
  const float x = clean(id);
  double s = 0.0;
  if (!isinf(top) && !isinf(x)) {
    for (int i = threadIdx.x; i < vocab; i += blockDim.x) s += exp(double(clean(i)) - double(top));
  }
  s = BlockSum(s);
  if (threadIdx.x == 0) {
    float lp;
    if (isinf(top) || isinf(x)) {
      lp = (top == INFINITY && x == top) ? 0.0f : -INFINITY;
    } else {
      lp = float(double(x) - double(top) - log(s));
    }
    out[row] = SampleResult{id, lp};
  }
}

}  // namespace

void MatMulBatched(const float* x, DeviceMatrix w, float* y, int batch, cudaStream_t stream) {
  constexpr int kThreads = 256;
  const int blocks = (w.rows * kWarp + kThreads - 1) / kThreads;
  MatMulBatchedKernel<<<blocks, kThreads, 0, stream>>>(x, w, y, batch);
}

void Embed(DeviceMatrix w, const int32_t* tokens, float* x, int rows, cudaStream_t stream) {
  EmbedKernel<<<rows, 256, 0, stream>>>(w, tokens, x);
}

void AddBias(float* y, const float* bias, int rows, int n, cudaStream_t stream) {
  const int64_t total = int64_t(rows) * n;
  AddBiasKernel<<<int((total + 255) / 256), 256, 0, stream>>>(y, bias, rows, n);
}

void Add(float* x, const float* y, int64_t n, cudaStream_t stream) {
  AddKernel<<<int((n + 255) / 256), 256, 0, stream>>>(x, y, n);
}

void KvWrite(const float* k, const float* v, float* k_cache, float* v_cache, const int32_t* slots,
             const int32_t* positions, int rows, int layer, int n_layer, int n_ctx, int kv_dim,
             cudaStream_t stream) {
  KvWriteKernel<<<rows, 256, 0, stream>>>(k, v, k_cache, v_cache, slots, positions, layer, n_layer, n_ctx,
                                          kv_dim);
}

bool AttentionBatch(const float* q, const float* k_cache, const float* v_cache, const int32_t* slots,
                    const int32_t* positions, float* out, int rows, int heads, int kv_heads, int d, int layer,
                    int n_layer, int n_ctx, int max_span, cudaStream_t stream) {
  if (max_span > kMaxBatchAttentionSpan) return false;
  const dim3 grid(heads, rows);
  AttentionBatchKernel<<<grid, 256, size_t(max_span) * sizeof(float), stream>>>(
      q, k_cache, v_cache, slots, positions, out, heads, kv_heads, d, layer, n_layer, n_ctx);
  return true;
}

void Sample(const float* logits, int rows, int vocab, int sampleable, const SampleArgs* args, double* scratch_w,
            uint64_t* scratch_key, SampleResult* out, cudaStream_t stream) {
  SampleKernel<<<rows, kSampleThreads, 0, stream>>>(logits, vocab, sampleable, args, scratch_w, scratch_key, out);
}

void PhiloxUniforms(const uint64_t* seeds, const uint64_t* positions, double* out, int n, cudaStream_t stream) {
  PhiloxUniformsKernel<<<(n + 255) / 256, 256, 0, stream>>>(seeds, positions, out, n);
}

}  // namespace stepproof::inference::cuda::raw
