// TokenizerData from GGUF metadata: every tokenizer.ggml.* key is carried
// over, absent optional keys keep their defaults, wrong types are named.

#include "inference/gguf_tokenizer.h"

#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "inference/gguf_writer.h"

namespace stepproof::inference {
namespace {

class GgufTokenizerTest : public ::testing::Test {
 protected:
  void SetUp() override { path_ = absl::StrCat(::testing::TempDir(), "/gguf_tok_", getpid(), ".gguf"); }
  void TearDown() override { std::remove(path_.c_str()); }
  absl::StatusOr<TokenizerData> Read(const GgufWriter& w) {
    EXPECT_TRUE(w.WriteFile(path_).ok());
    absl::StatusOr<GgufFile> f = GgufFile::Open(path_);
    EXPECT_TRUE(f.ok()) << f.status();
    return ReadTokenizerData(*f);
  }
  std::string path_;
};

TEST_F(GgufTokenizerTest, CarriesEveryKey) {
  GgufWriter w;
  w.SetString("tokenizer.ggml.model", "gpt2");
  w.SetString("tokenizer.ggml.pre", "deepseek-r1-qwen");
  w.SetStringArray("tokenizer.ggml.tokens", {"a", "b", "ab", "<think>"});
  w.SetInt32Array("tokenizer.ggml.token_type", {1, 1, 1, 3});
  w.SetStringArray("tokenizer.ggml.merges", {"a b"});
  w.SetUint32("tokenizer.ggml.bos_token_id", 3);
  w.SetUint32("tokenizer.ggml.eos_token_id", 2);
  w.SetUint32("tokenizer.ggml.padding_token_id", 1);
  absl::StatusOr<TokenizerData> d = Read(w);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->model, "gpt2");
  EXPECT_EQ(d->pre, "deepseek-r1-qwen");
  EXPECT_EQ(d->tokens, (std::vector<std::string>{"a", "b", "ab", "<think>"}));
  EXPECT_EQ(d->token_types, (std::vector<int32_t>{1, 1, 1, 3}));
  EXPECT_EQ(d->merges, (std::vector<std::string>{"a b"}));
  EXPECT_EQ(d->bos_id, 3);
  EXPECT_EQ(d->eos_id, 2);
  EXPECT_EQ(d->pad_id, 1);
}

TEST_F(GgufTokenizerTest, OptionalKeysDefault) {
  GgufWriter w;
  w.SetString("tokenizer.ggml.model", "gpt2");
  w.SetStringArray("tokenizer.ggml.tokens", {"a"});
  absl::StatusOr<TokenizerData> d = Read(w);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_TRUE(d->pre.empty());
  EXPECT_TRUE(d->token_types.empty());
  EXPECT_TRUE(d->merges.empty());
  EXPECT_EQ(d->bos_id, -1);
  EXPECT_EQ(d->eos_id, -1);
  EXPECT_EQ(d->pad_id, -1);
}

TEST_F(GgufTokenizerTest, NamesMissingOrMistypedKeys) {
  GgufWriter none;
  none.SetStringArray("tokenizer.ggml.tokens", {"a"});
  absl::StatusOr<TokenizerData> d = Read(none);
  EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(d.status().message().find("tokenizer.ggml.model"), std::string::npos) << d.status();

  GgufWriter typed;
  typed.SetString("tokenizer.ggml.model", "gpt2");
  typed.SetString("tokenizer.ggml.tokens", "not an array");
  d = Read(typed);
  EXPECT_NE(d.status().message().find("tokenizer.ggml.tokens"), std::string::npos) << d.status();

  GgufWriter id;
  id.SetString("tokenizer.ggml.model", "gpt2");
  id.SetStringArray("tokenizer.ggml.tokens", {"a"});
  id.SetString("tokenizer.ggml.eos_token_id", "7");
  d = Read(id);
  EXPECT_NE(d.status().message().find("eos_token_id"), std::string::npos) << d.status();
}

}  // namespace
}  // namespace stepproof::inference
