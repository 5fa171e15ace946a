// Tiny random models for the engine tests, written with GgufWriter.
// Header-only test support (not a *_test.cc, so not a test binary itself).

#ifndef STEPPROOF_TESTS_INFERENCE_TEST_MODELS_H_
#define STEPPROOF_TESTS_INFERENCE_TEST_MODELS_H_

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "inference/gguf_writer.h"
#include "inference/tensor_type.h"

namespace stepproof::inference::testing {

struct TinyModelSpec {
  std::string arch = "qwen2";
  int n_layer = 2;
  int n_embd = 256;
  int n_ff = 512;
  int n_head = 4;
  int n_head_kv = 2;
  int n_vocab = 300;
  int context_length = 128;
  float rope_base = 10000.0f;
  float eps = 1e-6f;
  bool bias = true;
  bool tied = false;
  TensorType type = TensorType::kF32;  // of the 2-D matrices
  uint32_t seed = 1;
};

// GPT-2's bytes_to_unicode: the printable code point standing for byte b.
inline std::string ByteToken(int b) {
  int cp = b;
  const bool direct = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
  if (!direct) {
    int n = 0;
    for (int x = 0; x < b; ++x) {
      if (!((x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174 && x <= 255))) ++n;
    }
    cp = 256 + n;
  }
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return s;
}

// A byte-level vocabulary: ids 0..255 are the bytes, then the R1 special
// tokens, then filler tokens up to n_vocab (>= 262).
inline void AddTokenizer(GgufWriter& w, int n_vocab) {
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  for (int b = 0; b < 256; ++b) {
    tokens.push_back(ByteToken(b));
    types.push_back(1);
  }
  const char* specials[] = {
      "<\xEF\xBD\x9C" "begin\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>",   // 256
      "<\xEF\xBD\x9C" "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>",     // 257
      "<\xEF\xBD\x9CUser\xEF\xBD\x9C>",                                         // 258
      "<\xEF\xBD\x9C" "Assistant\xEF\xBD\x9C>",                                 // 259
      "<think>",                                                               // 260
      "</think>",                                                              // 261
  };
  for (const char* s : specials) {
    tokens.push_back(s);
    types.push_back(3);
  }
  // Merges of a few byte pairs, so the vocabulary has multi-byte tokens.
  std::vector<std::string> merges;
  const char* pairs[][2] = {{"t", "h"}, {"th", "e"}, {"1", "2"}, {"3", "4"}};
  for (auto& p : pairs) {
    if (static_cast<int>(tokens.size()) >= n_vocab) break;
    merges.push_back(absl::StrCat(p[0], " ", p[1]));
    tokens.push_back(absl::StrCat(p[0], p[1]));
    types.push_back(1);
  }
  while (static_cast<int>(tokens.size()) < n_vocab) {
    tokens.push_back(absl::StrCat("<unused", tokens.size(), ">"));
    types.push_back(5);
  }
  w.SetString("tokenizer.ggml.model", "gpt2");
  w.SetString("tokenizer.ggml.pre", "qwen2");
  w.SetStringArray("tokenizer.ggml.tokens", tokens);
  w.SetInt32Array("tokenizer.ggml.token_type", types);
  w.SetStringArray("tokenizer.ggml.merges", merges);
  w.SetUint32("tokenizer.ggml.bos_token_id", 256);
  w.SetUint32("tokenizer.ggml.eos_token_id", 257);
  w.SetUint32("tokenizer.ggml.padding_token_id", 257);
}

// Writes a random model of `spec` (with the byte tokenizer) to a writer.
inline GgufWriter TinyModel(const TinyModelSpec& s) {
  GgufWriter w;
  std::mt19937 rng(s.seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  const std::string a = s.arch;
  w.SetString("general.architecture", a);
  w.SetString("general.name", "tiny-test");
  w.SetUint32(a + ".block_count", s.n_layer);
  w.SetUint32(a + ".context_length", s.context_length);
  w.SetUint32(a + ".embedding_length", s.n_embd);
  w.SetUint32(a + ".feed_forward_length", s.n_ff);
  w.SetUint32(a + ".attention.head_count", s.n_head);
  w.SetUint32(a + ".attention.head_count_kv", s.n_head_kv);
  w.SetFloat32(a + ".rope.freq_base", s.rope_base);
  w.SetFloat32(a + ".attention.layer_norm_rms_epsilon", s.eps);
  AddTokenizer(w, s.n_vocab);
  const int hd = s.n_embd / s.n_head;
  auto rand = [&](size_t n, float scale, float offset = 0.0f) {
    std::vector<float> v(n);
    for (float& x : v) x = offset + scale * u(rng);
    return v;
  };
  auto matrix = [&](const std::string& name, int cols, int rows) {
    const float scale = 1.0f / std::sqrt(static_cast<float>(cols)) * 1.7f;
    w.AddTensorFromFloats(name, s.type, {cols, rows}, rand(static_cast<size_t>(cols) * rows, scale));
  };
  auto vec = [&](const std::string& name, int n, float scale, float offset) {
    w.AddTensorFromFloats(name, TensorType::kF32, {n}, rand(n, scale, offset));
  };
  matrix("token_embd.weight", s.n_embd, s.n_vocab);
  for (int l = 0; l < s.n_layer; ++l) {
    const std::string p = absl::StrCat("blk.", l, ".");
    vec(p + "attn_norm.weight", s.n_embd, 0.2f, 1.0f);
    matrix(p + "attn_q.weight", s.n_embd, s.n_head * hd);
    matrix(p + "attn_k.weight", s.n_embd, s.n_head_kv * hd);
    matrix(p + "attn_v.weight", s.n_embd, s.n_head_kv * hd);
    if (s.bias) {
      vec(p + "attn_q.bias", s.n_head * hd, 0.3f, 0.0f);
      vec(p + "attn_k.bias", s.n_head_kv * hd, 0.3f, 0.0f);
      vec(p + "attn_v.bias", s.n_head_kv * hd, 0.3f, 0.0f);
    }
    matrix(p + "attn_output.weight", s.n_head * hd, s.n_embd);
    vec(p + "ffn_norm.weight", s.n_embd, 0.2f, 1.0f);
    matrix(p + "ffn_gate.weight", s.n_embd, s.n_ff);
    matrix(p + "ffn_up.weight", s.n_embd, s.n_ff);
    matrix(p + "ffn_down.weight", s.n_ff, s.n_embd);
  }
  vec("output_norm.weight", s.n_embd, 0.2f, 1.0f);
  if (!s.tied) matrix("output.weight", s.n_embd, s.n_vocab);
  return w;
}

// The benchmarks' mid-size random model: 8 layers, hidden 1024, FFN 2816,
// 16 heads over 2 KV heads, Q8_0 matrices (~90 MB), the byte vocabulary,
// context 256 (fingerprint_bench, replay_bench; docs/PERFORMANCE.md).
inline TinyModelSpec Bench8x1024Q8_0Spec() {
  TinyModelSpec spec;
  spec.n_layer = 8;
  spec.n_embd = 1024;
  spec.n_ff = 2816;
  spec.n_head = 16;
  spec.n_head_kv = 2;
  spec.n_vocab = 300;
  spec.context_length = 256;
  spec.type = TensorType::kQ8_0;
  return spec;
}

// SplitMix64: a fast, seedable stream for bulk random weights.
inline uint64_t SplitMix64(uint64_t& s) {
  uint64_t z = (s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// A random model of DeepSeek-R1-Distill-Qwen-1.5B's exact shape (hidden 1536,
// 28 layers, 12 heads, 2 KV heads, head dim 128, FFN 8960, vocab 151936,
// untied output) with 2-D matrices of `type` (Q8_0: ~1.9 GB, or BF16: ~3.6
// GB), for the benchmarks: speed does not depend on the values. Matrices are
// written lazily, one at a time, uniform in +-1.7/sqrt(cols). With
// `tokenizer`, the byte tokenizer above padded to the full vocabulary (so
// clients that load a tokenizer, such as replay, can run it).
inline absl::Status WriteR1Distill15BShape(const std::string& path, TensorType type, bool tokenizer) {
  if (type != TensorType::kQ8_0 && type != TensorType::kBF16) {
    return absl::InvalidArgumentError("the 1.5B-shape model is written as Q8_0 or BF16 only");
  }
  const int n_embd = 1536, n_layer = 28, n_head = 12, n_kv = 2, hd = 128, n_ff = 8960, n_vocab = 151936;
  GgufWriter w;
  w.SetString("general.architecture", "qwen2");
  w.SetString("general.name", absl::StrCat("random DeepSeek-R1-Distill-Qwen-1.5B shape (",
                                           std::string(TensorTypeName(type)), ")"));
  w.SetUint32("qwen2.block_count", n_layer);
  w.SetUint32("qwen2.context_length", 131072);
  w.SetUint32("qwen2.embedding_length", n_embd);
  w.SetUint32("qwen2.feed_forward_length", n_ff);
  w.SetUint32("qwen2.attention.head_count", n_head);
  w.SetUint32("qwen2.attention.head_count_kv", n_kv);
  w.SetFloat32("qwen2.rope.freq_base", 10000.0f);
  w.SetFloat32("qwen2.attention.layer_norm_rms_epsilon", 1e-6f);
  if (tokenizer) AddTokenizer(w, n_vocab);
  uint64_t seed = 1;
  auto matrix = [&](const std::string& name, int64_t cols, int64_t rows) {
    const float scale = 1.7f / std::sqrt(static_cast<float>(cols));
    const uint64_t s0 = seed++;
    w.AddTensorLazy(name, type, {cols, rows}, [type, scale, s0](uint8_t* dst, uint64_t n) {
      uint64_t s = s0;
      if (type == TensorType::kQ8_0) {  // scale/127 per block, uniform int8 values
        const uint16_t d = FloatToFp16(scale / 127.0f);
        for (uint64_t b = 0; b + 34 <= n; b += 34) {
          std::memcpy(dst + b, &d, 2);
          for (int i = 0; i < 32; i += 8) {
            const uint64_t r = SplitMix64(s);
            std::memcpy(dst + b + 2 + i, &r, 8);
          }
        }
      } else {  // BF16: uniform in [-scale, scale)
        for (uint64_t i = 0; i + 2 <= n; i += 2) {
          const float u = static_cast<float>(SplitMix64(s) >> 40) * 0x1.0p-24f;
          const uint16_t h = FloatToBf16((2.0f * u - 1.0f) * scale);
          std::memcpy(dst + i, &h, 2);
        }
      }
    });
  };
  auto ones = [&w](const std::string& name, int64_t n, float v) {
    w.AddTensorFromFloats(name, TensorType::kF32, {n}, std::vector<float>(n, v));
  };
  matrix("token_embd.weight", n_embd, n_vocab);
  for (int l = 0; l < n_layer; ++l) {
    const std::string p = absl::StrCat("blk.", l, ".");
    ones(p + "attn_norm.weight", n_embd, 1.0f);
    matrix(p + "attn_q.weight", n_embd, n_head * hd);
    matrix(p + "attn_k.weight", n_embd, n_kv * hd);
    matrix(p + "attn_v.weight", n_embd, n_kv * hd);
    ones(p + "attn_q.bias", n_head * hd, 0.01f);
    ones(p + "attn_k.bias", n_kv * hd, 0.01f);
    ones(p + "attn_v.bias", n_kv * hd, 0.01f);
    matrix(p + "attn_output.weight", n_head * hd, n_embd);
    ones(p + "ffn_norm.weight", n_embd, 1.0f);
    matrix(p + "ffn_gate.weight", n_embd, n_ff);
    matrix(p + "ffn_up.weight", n_embd, n_ff);
    matrix(p + "ffn_down.weight", n_ff, n_embd);
  }
  ones("output_norm.weight", n_embd, 1.0f);
  matrix("output.weight", n_embd, n_vocab);
  return w.WriteFile(path);
}

}  // namespace stepproof::inference::testing

#endif  // STEPPROOF_TESTS_INFERENCE_TEST_MODELS_H_
