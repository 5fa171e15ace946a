// The GGUF reader: round trips through the writer, and hostile or truncated
// files (every prefix of a file, and hand-patched counts, lengths, offsets)
// that must give an error naming the problem, never an out-of-bounds read
// (run under the ASan build too).

#include "inference/gguf.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "inference/gguf_writer.h"

namespace stepproof::inference {
namespace {

class GgufTest : public ::testing::Test {
 protected:
  void SetUp() override { path_ = absl::StrCat(::testing::TempDir(), "/gguf_test_", getpid(), ".gguf"); }
  void TearDown() override { std::remove(path_.c_str()); }

  absl::StatusOr<GgufFile> OpenBytes(const std::string& bytes) {
    FILE* f = std::fopen(path_.c_str(), "wb");
    std::fwrite(bytes.data(), 1, bytes.size(), f);
    std::fclose(f);
    return GgufFile::Open(path_);
  }

  // A small file: several metadata types and three tensors.
  static GgufWriter Small() {
    GgufWriter w;
    w.SetString("general.architecture", "qwen2");
    w.SetUint32("qwen2.block_count", 7);
    w.SetInt32("some.int", -5);
    w.SetUint64("some.u64", 1ull << 40);
    w.SetFloat32("qwen2.rope.freq_base", 1e6f);
    w.SetBool("some.flag", true);
    w.SetStringArray("tokenizer.ggml.tokens", {"a", "bc", "<think>"});
    w.SetInt32Array("tokenizer.ggml.token_type", {1, 1, 3});
    std::vector<float> v(64);
    for (int i = 0; i < 64; ++i) v[i] = i * 0.5f;
    w.AddTensorFromFloats("a.weight", TensorType::kF32, {8, 8}, v);
    w.AddTensorFromFloats("b.weight", TensorType::kQ8_0, {32, 2}, v);
    w.AddTensorFromFloats("c.weight", TensorType::kF16, {5}, absl::MakeConstSpan(v).subspan(0, 5));
    return w;
  }

  static void PutU64(std::string& s, size_t at, uint64_t v) { std::memcpy(s.data() + at, &v, 8); }
  static void PutU32(std::string& s, size_t at, uint32_t v) { std::memcpy(s.data() + at, &v, 4); }
  // Offset of the 8-byte length prefix of the string `text` in `s`.
  static size_t LengthOf(const std::string& s, const std::string& text) {
    size_t at = s.find(text);
    EXPECT_NE(at, std::string::npos) << text;
    return at - 8;
  }

  std::string path_;
};

TEST_F(GgufTest, RoundTripsMetadataAndTensors) {
  absl::StatusOr<GgufFile> f = OpenBytes(Small().Serialize());
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->alignment(), 32u);
  EXPECT_EQ(*f->GetString("general.architecture"), "qwen2");
  EXPECT_EQ(*f->GetInt("qwen2.block_count"), 7);
  EXPECT_EQ(*f->GetInt("some.int"), -5);
  EXPECT_EQ(*f->GetInt("some.u64"), int64_t{1} << 40);
  EXPECT_EQ(*f->GetFloat("qwen2.rope.freq_base"), 1e6);
  EXPECT_EQ(f->Find("some.flag")->u, 1u);
  EXPECT_EQ(f->GetStringArray("tokenizer.ggml.tokens")->at(2), "<think>");
  EXPECT_EQ(f->GetIntArray("tokenizer.ggml.token_type")->at(2), 3);
  EXPECT_EQ(f->GetInt("general.architecture").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(f->GetInt("no.such.key").status().code(), absl::StatusCode::kNotFound);
  ASSERT_EQ(f->tensors().size(), 3u);
  const GgufTensor* a = f->FindTensor("a.weight");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->ne, (std::vector<int64_t>{8, 8}));
  EXPECT_EQ(a->n_bytes, 256u);
  EXPECT_EQ(a->offset % 32, 0u);
  float x;
  std::memcpy(&x, a->data + 4 * 63, 4);
  EXPECT_EQ(x, 31.5f);
  const GgufTensor* b = f->FindTensor("b.weight");
  EXPECT_EQ(b->type, TensorType::kQ8_0);
  EXPECT_EQ(b->n_bytes, 68u);
  EXPECT_EQ(f->FindTensor("c.weight")->n_bytes, 10u);
}

TEST_F(GgufTest, HonoursGeneralAlignment) {
  GgufWriter w = Small();
  w.SetAlignment(256);
  absl::StatusOr<GgufFile> f = OpenBytes(w.Serialize());
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->alignment(), 256u);
  EXPECT_EQ(f->data_offset() % 256, 0u);
  for (const GgufTensor& t : f->tensors()) EXPECT_EQ(t.offset % 256, 0u) << t.name;
  float x;
  std::memcpy(&x, f->FindTensor("a.weight")->data + 4, 4);
  EXPECT_EQ(x, 0.5f);
}

TEST_F(GgufTest, EveryTruncatedPrefixIsAnError) {
  const std::string full = Small().Serialize();
  absl::StatusOr<GgufFile> whole = OpenBytes(full);
  ASSERT_TRUE(whole.ok());
  uint64_t data_end = 0;  // the file may end right after the last tensor (no padding)
  for (const GgufTensor& t : whole->tensors()) data_end = std::max(data_end, t.offset + t.n_bytes);
  ASSERT_GT(data_end, full.size() - 32);
  for (size_t n = 0; n < data_end; ++n) {
    absl::StatusOr<GgufFile> f = OpenBytes(full.substr(0, n));
    ASSERT_FALSE(f.ok()) << "prefix of " << n << " bytes opened";
    EXPECT_TRUE(f.status().code() == absl::StatusCode::kDataLoss ||
                f.status().code() == absl::StatusCode::kInvalidArgument)
        << f.status();
  }
  EXPECT_TRUE(OpenBytes(full.substr(0, data_end)).ok());
}

TEST_F(GgufTest, VocabularyOnlyFileOpens) {
  GgufWriter w;
  w.SetStringArray("tokenizer.ggml.tokens", {"x"});
  absl::StatusOr<GgufFile> f = OpenBytes(w.Serialize());
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_TRUE(f->tensors().empty());
}

TEST_F(GgufTest, RejectsBadMagicAndVersion) {
  std::string s = Small().Serialize();
  s[0] = 'X';
  EXPECT_EQ(OpenBytes(s).status().code(), absl::StatusCode::kInvalidArgument);
  s = Small().Serialize();
  PutU32(s, 4, 1);
  absl::StatusOr<GgufFile> f = OpenBytes(s);
  EXPECT_NE(f.status().message().find("version 1"), std::string::npos) << f.status();
}

TEST_F(GgufTest, RejectsHugeCountsAndLengths) {
  const std::string base = Small().Serialize();
  std::string s = base;
  PutU64(s, 8, uint64_t{1} << 62);  // tensor count
  EXPECT_EQ(OpenBytes(s).status().code(), absl::StatusCode::kDataLoss);
  s = base;
  PutU64(s, 16, ~uint64_t{0});  // metadata count
  EXPECT_EQ(OpenBytes(s).status().code(), absl::StatusCode::kDataLoss);
  s = base;
  PutU64(s, LengthOf(s, "general.architecture"), ~uint64_t{0} - 3);  // key length
  EXPECT_EQ(OpenBytes(s).status().code(), absl::StatusCode::kDataLoss);
  s = base;
  PutU64(s, LengthOf(s, "bc"), uint64_t{1} << 63);  // string in an array
  EXPECT_EQ(OpenBytes(s).status().code(), absl::StatusCode::kDataLoss);
  s = base;
  // The token array's count sits right before the length of its first element "a".
  const size_t tokens_key = s.find("tokenizer.ggml.tokens");
  const size_t count_at = tokens_key + std::strlen("tokenizer.ggml.tokens") + 4 + 4;
  PutU64(s, count_at, uint64_t{1} << 61);
  absl::StatusOr<GgufFile> f = OpenBytes(s);
  EXPECT_EQ(f.status().code(), absl::StatusCode::kDataLoss) << f.status();
  s = base;
  const size_t types_key = s.find("tokenizer.ggml.token_type");
  PutU64(s, types_key + std::strlen("tokenizer.ggml.token_type") + 8, uint64_t{1} << 62);
  EXPECT_EQ(OpenBytes(s).status().code(), absl::StatusCode::kDataLoss);
}

TEST_F(GgufTest, RejectsUnknownValueTypeAndNestedArrays) {
  std::string s = Small().Serialize();
  const size_t type_at = s.find("qwen2.block_count") + std::strlen("qwen2.block_count");
  PutU32(s, type_at, 13);
  EXPECT_EQ(OpenBytes(s).status().code(), absl::StatusCode::kInvalidArgument);
  s = Small().Serialize();
  const size_t elem_at = s.find("tokenizer.ggml.tokens") + std::strlen("tokenizer.ggml.tokens") + 4;
  PutU32(s, elem_at, 9);  // array of arrays
  EXPECT_EQ(OpenBytes(s).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(GgufTest, RejectsDuplicateKeysAndTensorNames) {
  GgufWriter w = Small();
  w.SetUint32("qwen2.block_count", 8);
  EXPECT_NE(OpenBytes(w.Serialize()).status().message().find("duplicate metadata key"), std::string::npos);
  GgufWriter t = Small();
  t.AddTensorFromFloats("a.weight", TensorType::kF32, {1}, std::vector<float>{1.0f});
  EXPECT_NE(OpenBytes(t.Serialize()).status().message().find("duplicate tensor"), std::string::npos);
}

TEST_F(GgufTest, RejectsBadAlignment) {
  for (uint32_t bad : {0u, 3u, 48u}) {
    GgufWriter w;
    w.SetUint32("general.alignment", bad);
    EXPECT_EQ(OpenBytes(w.Serialize()).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

// Tensor info of "a.weight": name, n_dims (4), ne[2] (16), type (4), offset (8).
TEST_F(GgufTest, RejectsBadTensorInfos) {
  const std::string base = Small().Serialize();
  const size_t info = base.find("a.weight") + std::strlen("a.weight");
  std::string s = base;
  PutU32(s, info, 5);  // n_dims
  EXPECT_EQ(OpenBytes(s).status().code(), absl::StatusCode::kInvalidArgument);
  s = base;
  PutU64(s, info + 4, uint64_t{1} << 40);  // ne product overflows int64
  PutU64(s, info + 12, uint64_t{1} << 40);
  EXPECT_EQ(OpenBytes(s).status().code(), absl::StatusCode::kInvalidArgument);
  s = base;
  PutU64(s, info + 4, uint64_t{1} << 62);  // 2^62 F32 values: 2^64 bytes wraps to 0
  PutU64(s, info + 12, 1);
  EXPECT_EQ(OpenBytes(s).status().code(), absl::StatusCode::kDataLoss);
  s = base;
  PutU64(s, info + 4, 0);  // empty dimension
  EXPECT_EQ(OpenBytes(s).status().code(), absl::StatusCode::kInvalidArgument);
  s = base;
  PutU64(s, info + 4, 1 << 20);  // tensor larger than the file
  absl::StatusOr<GgufFile> f = OpenBytes(s);
  EXPECT_EQ(f.status().code(), absl::StatusCode::kDataLoss) << f.status();
  s = base;
  PutU32(s, info + 20, 2);  // Q4_0: not supported
  f = OpenBytes(s);
  EXPECT_NE(f.status().message().find("ggml type 2"), std::string::npos) << f.status();
  s = base;
  PutU64(s, info + 24, 16);  // misaligned offset
  EXPECT_NE(OpenBytes(s).status().message().find("alignment"), std::string::npos);
  s = base;
  PutU64(s, info + 24, ~uint64_t{0} - 31);  // aligned, far outside the file
  EXPECT_EQ(OpenBytes(s).status().code(), absl::StatusCode::kDataLoss);
  s = base;
  PutU64(s, info + 24, 32 * 1000);  // outside the file
  EXPECT_EQ(OpenBytes(s).status().code(), absl::StatusCode::kDataLoss);
  s = base;
  // Point b.weight at a.weight's data: overlap.
  const size_t b_info = base.find("b.weight") + std::strlen("b.weight");
  PutU64(s, b_info + 24, 0);
  EXPECT_NE(OpenBytes(s).status().message().find("overlap"), std::string::npos);
  s = base;
  PutU64(s, info + 4, 7);  // Q8_0 rule does not apply to F32; check block rule on b.weight instead
  PutU64(s, b_info + 4, 31);
  EXPECT_NE(OpenBytes(s).status().message().find("block size"), std::string::npos);
}

TEST_F(GgufTest, ReportsMissingFile) {
  EXPECT_EQ(GgufFile::Open("/nonexistent/x.gguf").status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace stepproof::inference
