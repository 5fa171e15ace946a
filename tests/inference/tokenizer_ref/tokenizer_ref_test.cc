// BpeTokenizer against the Hugging Face Qwen3 tokenizer: reference ids come
// from @lenml/tokenizers (independent JS implementation) run by the fixture
// set-up inference_tokenizer_ref_setup (see CMakeLists.txt). This test loads
// the same tokenizer.json into TokenizerData itself, as E1's GGUF loader would
// from tokenizer.ggml.* metadata.

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "gtest/gtest.h"
#include "inference/bpe_tokenizer.h"
#include "inference/chat_template.h"
#include "nlohmann/json.hpp"

namespace stepproof::inference {
namespace {

using nlohmann::json;

struct RefCase {
  std::string text;
  std::vector<int32_t> ids;
};

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

absl::StatusOr<json> ReadJson(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError("cannot open " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  json j = json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::InvalidArgumentError("bad JSON in " + path);
  return j;
}

// tokenizer.json -> TokenizerData: vocab ordered by id, added_tokens placed
// at their ids (special -> CONTROL, else USER_DEFINED), merges as "a b".
absl::StatusOr<TokenizerData> LoadHfTokenizer(const json& j) {
  if (!j.is_object() || !j.contains("model") || !j["model"].is_object()) {
    return absl::InvalidArgumentError("tokenizer.json has no model");
  }
  const json& model = j["model"];
  if (!model.contains("vocab") || !model["vocab"].is_object() ||
      !model.contains("merges") || !model["merges"].is_array()) {
    return absl::InvalidArgumentError("tokenizer.json model lacks vocab/merges");
  }
  TokenizerData d;
  d.model = "gpt2";
  d.pre = "qwen2";
  size_t size = 0;
  for (auto it = model["vocab"].begin(); it != model["vocab"].end(); ++it) {
    if (!it.value().is_number_unsigned()) {
      return absl::InvalidArgumentError("vocab id is not a number");
    }
    size = std::max<size_t>(size, it.value().get<size_t>() + 1);
  }
  const json added = j.value("added_tokens", json::array());
  for (const json& a : added) {
    if (!a.is_object() || !a.contains("id") || !a["id"].is_number_unsigned()) {
      return absl::InvalidArgumentError("bad added_tokens entry");
    }
    size = std::max<size_t>(size, a["id"].get<size_t>() + 1);
  }
  d.tokens.assign(size, "");
  d.token_types.assign(size, kTokenTypeNormal);
  std::vector<bool> seen(size, false);
  for (auto it = model["vocab"].begin(); it != model["vocab"].end(); ++it) {
    const size_t id = it.value().get<size_t>();
    d.tokens[id] = it.key();
    seen[id] = true;
  }
  for (const json& a : added) {
    const size_t id = a["id"].get<size_t>();
    if (!a.contains("content") || !a["content"].is_string()) {
      return absl::InvalidArgumentError("added token without content");
    }
    d.tokens[id] = a["content"].get<std::string>();
    d.token_types[id] = a.value("special", false) ? kTokenTypeControl
                                                  : kTokenTypeUserDefined;
    seen[id] = true;
  }
  for (size_t id = 0; id < size; ++id) {
    if (!seen[id]) {
      return absl::InvalidArgumentError("vocab has a gap at id " +
                                        std::to_string(id));
    }
  }
  for (const json& m : model["merges"]) {
    if (m.is_string()) {
      d.merges.push_back(m.get<std::string>());
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() &&
               m[1].is_string()) {
      d.merges.push_back(m[0].get<std::string>() + " " +
                         m[1].get<std::string>());
    } else {
      return absl::InvalidArgumentError("bad merge entry");
    }
  }
  return d;
}

class TokenizerRefTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string tok_path = Env("STEPPROOF_TOKENIZER_JSON");
    const std::string ids_path = Env("STEPPROOF_TOKENIZER_REF_IDS");
    ASSERT_FALSE(tok_path.empty()) << "STEPPROOF_TOKENIZER_JSON is not set";
    ASSERT_FALSE(ids_path.empty()) << "STEPPROOF_TOKENIZER_REF_IDS is not set";
    absl::StatusOr<json> tj = ReadJson(tok_path);
    ASSERT_TRUE(tj.ok()) << tj.status();
    absl::StatusOr<TokenizerData> data = LoadHfTokenizer(*tj);
    ASSERT_TRUE(data.ok()) << data.status();

    absl::StatusOr<json> rj = ReadJson(ids_path);
    ASSERT_TRUE(rj.ok()) << rj.status();
    ASSERT_TRUE(rj->is_object() && rj->contains("cases") &&
                rj->contains("r1_cases") && rj->contains("r1_added_tokens"));
    cases_ = new std::vector<RefCase>(ReadCases((*rj)["cases"]));
    r1_cases_ = new std::vector<RefCase>(ReadCases((*rj)["r1_cases"]));

    // The R1 variant: the same vocabulary with the R1 chat markers appended
    // as CONTROL tokens, as the reference script did on the JS side.
    TokenizerData r1_data = *data;
    for (const json& a : (*rj)["r1_added_tokens"]) {
      ASSERT_EQ(a.at("id").get<size_t>(), r1_data.tokens.size());
      r1_data.tokens.push_back(a.at("content").get<std::string>());
      r1_data.token_types.push_back(kTokenTypeControl);
    }

    absl::StatusOr<BpeTokenizer> t = BpeTokenizer::Create(*std::move(data));
    ASSERT_TRUE(t.ok()) << t.status();
    tokenizer_ = new BpeTokenizer(*std::move(t));
    absl::StatusOr<BpeTokenizer> r1 = BpeTokenizer::Create(std::move(r1_data));
    ASSERT_TRUE(r1.ok()) << r1.status();
    r1_tokenizer_ = new BpeTokenizer(*std::move(r1));
  }
  static std::vector<RefCase> ReadCases(const json& arr) {
    std::vector<RefCase> out;
    for (const json& c : arr) {
      RefCase rc;
      rc.text = c.at("text").get<std::string>();
      rc.ids = c.at("ids").get<std::vector<int32_t>>();
      out.push_back(std::move(rc));
    }
    return out;
  }
  static void TearDownTestSuite() {
    delete tokenizer_;
    delete r1_tokenizer_;
    delete cases_;
    delete r1_cases_;
    tokenizer_ = r1_tokenizer_ = nullptr;
    cases_ = r1_cases_ = nullptr;
  }
  static BpeTokenizer* tokenizer_;
  static BpeTokenizer* r1_tokenizer_;
  static std::vector<RefCase>* cases_;
  static std::vector<RefCase>* r1_cases_;
};

BpeTokenizer* TokenizerRefTest::tokenizer_ = nullptr;
BpeTokenizer* TokenizerRefTest::r1_tokenizer_ = nullptr;
std::vector<RefCase>* TokenizerRefTest::cases_ = nullptr;
std::vector<RefCase>* TokenizerRefTest::r1_cases_ = nullptr;

TEST_F(TokenizerRefTest, CorpusIsNotTrivial) {
  ASSERT_NE(cases_, nullptr);
  EXPECT_GE(cases_->size(), 50u);
  EXPECT_EQ(tokenizer_->vocab_size(), 151669);
}

TEST_F(TokenizerRefTest, EncodeMatchesHuggingFaceIdsOnEveryCorpusLine) {
  ASSERT_NE(cases_, nullptr);
  int mismatches = 0;
  for (const RefCase& c : *cases_) {
    const std::vector<int32_t> got = tokenizer_->Encode(c.text);
    EXPECT_EQ(got, c.ids) << "text: \"" << c.text << "\"";
    if (got != c.ids) ++mismatches;
  }
  EXPECT_EQ(mismatches, 0);
}

TEST_F(TokenizerRefTest, EncodeMatchesWithR1MarkersAddedAsSpecialTokens) {
  ASSERT_NE(r1_cases_, nullptr);
  ASSERT_EQ(r1_cases_->size(), cases_->size());
  for (const RefCase& c : *r1_cases_) {
    EXPECT_EQ(r1_tokenizer_->Encode(c.text), c.ids) << "text: \"" << c.text << "\"";
    EXPECT_EQ(r1_tokenizer_->Decode(c.ids), c.text);
  }
  // The engine's own prompt: each marker is one token.
  const std::vector<int32_t> ids =
      r1_tokenizer_->Encode(FormatR1Prompt("Be brief.", "2+2?"));
  ASSERT_GE(ids.size(), 4u);
  EXPECT_EQ(ids.front(), *r1_tokenizer_->TokenId(kBeginOfSentence));
  EXPECT_EQ(ids[ids.size() - 2], *r1_tokenizer_->TokenId(kThinkOpen));
  EXPECT_EQ(r1_tokenizer_->Decode(ids), FormatR1Prompt("Be brief.", "2+2?"));
}

TEST_F(TokenizerRefTest, DecodeOfReferenceIdsGivesBackTheText) {
  ASSERT_NE(cases_, nullptr);
  for (const RefCase& c : *cases_) {
    EXPECT_EQ(tokenizer_->Decode(c.ids), c.text);
  }
}

TEST_F(TokenizerRefTest, R1SpecialTokenTextIsPlainTextInTheQwenVocabulary) {
  // The Qwen3 vocabulary has <think> and </think> as added tokens but not
  // the R1 <｜…｜> markers, which therefore split into ordinary tokens.
  EXPECT_EQ(tokenizer_->TokenId(kThinkOpen), 151667);
  EXPECT_EQ(tokenizer_->TokenId(kThinkClose), 151668);
  EXPECT_FALSE(tokenizer_->TokenId(kBeginOfSentence).has_value());
  const std::vector<int32_t> ids = tokenizer_->Encode(
      std::string(kThinkOpen) + "x" + std::string(kThinkClose));
  ASSERT_EQ(ids.size(), 3u);
  EXPECT_EQ(ids[0], 151667);
  EXPECT_EQ(ids[2], 151668);
}

TEST_F(TokenizerRefTest, WithoutParseSpecialAddedTokensAreSplitAsText) {
  const std::vector<int32_t> ids =
      tokenizer_->Encode("<|endoftext|>", /*parse_special=*/false);
  EXPECT_GT(ids.size(), 1u);
  for (int32_t id : ids) EXPECT_LT(id, 151643);
  EXPECT_EQ(tokenizer_->Decode(ids), "<|endoftext|>");
}

TEST_F(TokenizerRefTest, EncodeThroughputOnCorpus) {
  ASSERT_NE(cases_, nullptr);
  std::string all;
  for (const RefCase& c : *cases_) all += c.text;
  std::string big;
  while (big.size() < (1u << 20)) big += all;  // ~1 MiB
  const auto t0 = std::chrono::steady_clock::now();
  const std::vector<int32_t> ids = tokenizer_->Encode(big);
  const double s = std::chrono::duration<double>(
                       std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(tokenizer_->Decode(ids), big);
  std::printf("encoded %zu bytes into %zu tokens in %.3f s (%.1f MB/s)\n",
              big.size(), ids.size(), s, big.size() / s / 1e6);
  EXPECT_LT(s, 60.0);  // generous: Debug + sanitizer builds run this too
}

TEST_F(TokenizerRefTest, RandomBytesRoundTripIncludingInvalidUtf8) {
  std::mt19937 rng(5);
  const std::string pieces[] = {" ", "\n", "a", "Z", "7", "'", "'s", ".",
                                "\xE4\xB8\xAD", "\xF0\x9F\x98\x80", "\xC3",
                                "\xFF", "\x80", "<think>", "<|im_end|>", "\t"};
  for (int round = 0; round < 300; ++round) {
    std::string text;
    const int n = rng() % 80;
    for (int i = 0; i < n; ++i) {
      if (rng() % 4 == 0) {
        text.push_back(static_cast<char>(rng() % 256));
      } else {
        text += pieces[rng() % (sizeof(pieces) / sizeof(pieces[0]))];
      }
    }
    const std::vector<int32_t> ids = tokenizer_->Encode(text);
    for (int32_t id : ids) ASSERT_LT(static_cast<uint32_t>(id), 151669u);
    EXPECT_EQ(tokenizer_->Decode(ids), text);
  }
}

TEST_F(TokenizerRefTest, LongSinglePiecesEncodeQuickly) {
  for (const std::string& text :
       {std::string(200000, ' '), std::string(200000, 'a'),
        std::string(100000, '\n'), std::string(50000, '!') + "\n"}) {
    const auto t0 = std::chrono::steady_clock::now();
    const std::vector<int32_t> ids = tokenizer_->Encode(text);
    const double s = std::chrono::duration<double>(
                         std::chrono::steady_clock::now() - t0).count();
    EXPECT_EQ(tokenizer_->Decode(ids), text);
    // A quadratic merge loop would take minutes; allow for sanitizer builds.
    EXPECT_LT(s, 30.0) << text.size() << " bytes of '" << text[0] << "'";
  }
}

}  // namespace
}  // namespace stepproof::inference
