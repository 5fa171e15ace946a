#include "inference/cuda/reference.h"

#include <cmath>
#include <cstring>
#include <vector>

namespace stepproof::inference::cuda {

float HalfToFloat(uint16_t h) {
  uint32_t sign = (h >> 15) & 1, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  float v;
  if (exp == 0) {
    v = std::ldexp(static_cast<float>(mant), -24);  // subnormal
  } else if (exp == 31) {
    v = mant ? NAN : INFINITY;
  } else {
    v = std::ldexp(static_cast<float>(mant | 0x400), static_cast<int>(exp) - 25);
  }
  return sign ? -v : v;
}

float Bf16ToFloat(uint16_t b) {
  uint32_t bits = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

void RmsNormRef(const float* x, const float* w, float* y, int rows, int cols,
                float eps) {
  for (int r = 0; r < rows; ++r) {
    double ss = 0;
    for (int c = 0; c < cols; ++c) ss += double(x[r * cols + c]) * x[r * cols + c];
    double scale = 1.0 / std::sqrt(ss / cols + eps);
    for (int c = 0; c < cols; ++c) y[r * cols + c] = float(x[r * cols + c] * scale * w[c]);
  }
}

void RopeNeoxRef(float* x, const int32_t* positions, int rows, int heads,
                 int head_dim, float freq_base) {
  int half = head_dim / 2;
  for (int r = 0; r < rows; ++r) {
    for (int h = 0; h < heads; ++h) {
      float* v = x + (size_t(r) * heads + h) * head_dim;
      for (int i = 0; i < half; ++i) {
        double theta = positions[r] * std::pow(double(freq_base), -2.0 * i / head_dim);
        double c = std::cos(theta), s = std::sin(theta);
        double a = v[i], b = v[i + half];
        v[i] = float(a * c - b * s);
        v[i + half] = float(a * s + b * c);
      }
    }
  }
}

void SwiGluRef(const float* gate, const float* up, float* out, int n) {
  for (int i = 0; i < n; ++i) {
    double g = gate[i];
    out[i] = float(g / (1.0 + std::exp(-g)) * up[i]);
  }
}

namespace {
template <typename WeightAt>
void MatMul(const float* x, float* y, int rows, int in, int out, WeightAt w) {
  for (int r = 0; r < rows; ++r) {
    for (int o = 0; o < out; ++o) {
      double acc = 0;
      for (int i = 0; i < in; ++i) acc += double(x[r * in + i]) * w(o, i);
      y[r * out + o] = float(acc);
    }
  }
}
}  // namespace

void MatMulF32Ref(const float* x, const float* w, float* y, int rows, int in,
                  int out) {
  MatMul(x, y, rows, in, out, [&](int o, int i) { return w[size_t(o) * in + i]; });
}

void MatMulBf16Ref(const float* x, const uint16_t* w, float* y, int rows,
                   int in, int out) {
  MatMul(x, y, rows, in, out,
         [&](int o, int i) { return Bf16ToFloat(w[size_t(o) * in + i]); });
}

void MatMulQ8_0Ref(const float* x, const uint8_t* w, float* y, int rows,
                   int in, int out) {
  const size_t row_bytes = size_t(in / 32) * 34;
  MatMul(x, y, rows, in, out, [&](int o, int i) {
    const uint8_t* block = w + o * row_bytes + size_t(i / 32) * 34;
    uint16_t d;
    std::memcpy(&d, block, 2);
    int8_t q = static_cast<int8_t>(block[2 + i % 32]);
    return double(HalfToFloat(d)) * q;
  });
}

void AttentionDecodeRef(const float* q, const float* k, const float* v,
                        float* out, int heads, int kv_heads, int d, int n_ctx) {
  int group = heads / kv_heads;
  std::vector<double> p(n_ctx);
  for (int h = 0; h < heads; ++h) {
    int kvh = h / group;
    double max = -INFINITY;
    for (int t = 0; t < n_ctx; ++t) {
      double s = 0;
      for (int j = 0; j < d; ++j) {
        s += double(q[h * d + j]) * k[(size_t(t) * kv_heads + kvh) * d + j];
      }
      p[t] = s / std::sqrt(double(d));
      max = std::max(max, p[t]);
    }
    double sum = 0;
    for (int t = 0; t < n_ctx; ++t) sum += (p[t] = std::exp(p[t] - max));
    for (int j = 0; j < d; ++j) {
      double acc = 0;
      for (int t = 0; t < n_ctx; ++t) {
        acc += p[t] * v[(size_t(t) * kv_heads + kvh) * d + j];
      }
      out[h * d + j] = float(acc / sum);
    }
  }
}

void MatMulF16Ref(const float* x, const uint16_t* w, float* y, int rows,
                  int in, int out) {
  MatMul(x, y, rows, in, out,
         [&](int o, int i) { return HalfToFloat(w[size_t(o) * in + i]); });
}

namespace {
size_t CacheRow(int slot, int layer, int pos, int n_layer, int n_ctx,
                int kv_dim) {
  return ((size_t(slot) * n_layer + layer) * n_ctx + pos) * kv_dim;
}
}  // namespace

void KvWriteRef(const float* k, const float* v, float* k_cache,
                float* v_cache, const int32_t* slots,
                const int32_t* positions, int rows, int layer, int n_layer,
                int n_ctx, int kv_dim) {
  for (int r = 0; r < rows; ++r) {
    const size_t at = CacheRow(slots[r], layer, positions[r], n_layer, n_ctx, kv_dim);
    std::memcpy(k_cache + at, k + size_t(r) * kv_dim, kv_dim * sizeof(float));
    std::memcpy(v_cache + at, v + size_t(r) * kv_dim, kv_dim * sizeof(float));
  }
}

void AttentionBatchRef(const float* q, const float* k_cache,
                       const float* v_cache, const int32_t* slots,
                       const int32_t* positions, float* out, int rows,
                       int heads, int kv_heads, int d, int layer,
                       int n_layer, int n_ctx) {
  const int kv_dim = kv_heads * d;
  for (int r = 0; r < rows; ++r) {
    const size_t base = CacheRow(slots[r], layer, 0, n_layer, n_ctx, kv_dim);
    AttentionDecodeRef(q + size_t(r) * heads * d, k_cache + base, v_cache + base,
                       out + size_t(r) * heads * d, heads, kv_heads, d,
                       positions[r] + 1);
  }
}

int32_t ArgMaxRef(const float* x, int n) {
  int32_t best = 0;
  for (int i = 1; i < n; ++i) {
    if (x[i] > x[best]) best = i;
  }
  return best;
}

}  // namespace stepproof::inference::cuda
