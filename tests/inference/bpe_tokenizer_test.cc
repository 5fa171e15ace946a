// BpeTokenizer on a tiny hand-made vocabulary: ids 0..255 are the 256 byte
// tokens (id == byte value), then a few merges and special tokens. Every
// expected id list below is worked out by hand from the merge ranks and the
// Qwen2 split rules (docs/DECODING.md).

#include "inference/bpe_tokenizer.h"

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace stepproof::inference {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// GPT-2 bytes_to_unicode, written out independently of the tokenizer:
// bytes 0x21-0x7E, 0xA1-0xAC, 0xAE-0xFF map to themselves; the others, in
// byte order, to U+0100, U+0101, ...
std::string ByteText(int b) {
  int cp = b;
  if (!((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) ||
        (b >= 0xAE && b <= 0xFF))) {
    int n = 0;
    for (int x = 0; x < b; ++x) {
      if (!((x >= 0x21 && x <= 0x7E) || (x >= 0xA1 && x <= 0xAC) ||
            (x >= 0xAE && x <= 0xFF))) {
        ++n;
      }
    }
    cp = 0x100 + n;
  }
  std::string s;
  if (cp < 0x80) {
    s.push_back(static_cast<char>(cp));
  } else {
    s.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
  return s;
}

constexpr int32_t kHe = 256, kLl = 257, kHell = 258, kHello = 259, kGw = 260,
                  kOr = 261, kGwor = 262, kLd = 263, kGworld = 264,
                  kNlNl = 265, kThink = 266, kThinkEnd = 267, kEos = 268,
                  kSpSp = 269;

TokenizerData TinyData() {
  TokenizerData d;
  d.model = "gpt2";
  d.pre = "qwen2";
  for (int b = 0; b < 256; ++b) d.tokens.push_back(ByteText(b));
  // "Ġ" is U+0120 (space), "Ċ" is U+010A (newline).
  for (const char* t : {"he", "ll", "hell", "hello", "\xC4\xA0w", "or",
                        "\xC4\xA0wor", "ld", "\xC4\xA0world",
                        "\xC4\x8A\xC4\x8A", "<think>", "</think>", "<|eos|>",
                        "\xC4\xA0\xC4\xA0"}) {
    d.tokens.push_back(t);
  }
  d.token_types.assign(d.tokens.size(), kTokenTypeNormal);
  d.token_types[kThink] = kTokenTypeUserDefined;
  d.token_types[kThinkEnd] = kTokenTypeUserDefined;
  d.token_types[kEos] = kTokenTypeControl;
  d.merges = {"h e",           "l l",        "he ll",       "hell o",
              "\xC4\xA0 w",    "o r",        "\xC4\xA0w or", "l d",
              "\xC4\xA0wor ld", "\xC4\x8A \xC4\x8A", "\xC4\xA0 \xC4\xA0"};
  d.eos_id = kEos;
  return d;
}

BpeTokenizer Tiny() {
  absl::StatusOr<BpeTokenizer> t = BpeTokenizer::Create(TinyData());
  EXPECT_TRUE(t.ok()) << t.status();
  return *std::move(t);
}

TEST(BpeTokenizerTest, ByteTextFollowsGpt2Table) {
  EXPECT_EQ(ByteText(' '), "\xC4\xA0");   // Ġ
  EXPECT_EQ(ByteText('\n'), "\xC4\x8A");  // Ċ
  EXPECT_EQ(ByteText(0x00), "\xC4\x80");  // Ā
  EXPECT_EQ(ByteText(0xAD), "\xC5\x83");  // Ń
  EXPECT_EQ(ByteText('a'), "a");
}

TEST(BpeTokenizerTest, MergesByRankAcrossAWord) {
  const BpeTokenizer t = Tiny();
  // hello: h e|l l -> he l l o -> he ll o -> hell o -> hello.
  // " world": Ġw, or, ld, then Ġwor, then Ġworld.
  EXPECT_THAT(t.Encode("hello world"), ElementsAre(kHello, kGworld));
  EXPECT_THAT(t.Encode("hellohello"), ElementsAre(kHello, kHello));
}

TEST(BpeTokenizerTest, EqualRankMergesApplyLeftmostFirst) {
  const BpeTokenizer t = Tiny();
  EXPECT_THAT(t.Encode("lll"), ElementsAre(kLl, 'l'));
  EXPECT_THAT(t.Encode("llll"), ElementsAre(kLl, kLl));
}

TEST(BpeTokenizerTest, MergesNeverCrossPreTokenizerPieces) {
  const BpeTokenizer t = Tiny();
  // "a   b" splits as "a" "  " " b": the two spaces merge, the third stays
  // with b.
  EXPECT_THAT(t.Encode("a   b"), ElementsAre('a', kSpSp, ' ', 'b'));
  // Trailing whitespace at the end of text is one piece.
  EXPECT_THAT(t.Encode("a   "), ElementsAre('a', kSpSp, ' '));
  // Digits are single pieces; "he" inside "h2e" cannot merge.
  EXPECT_THAT(t.Encode("h2e"), ElementsAre('h', '2', 'e'));
  // ".\n\n" is one piece (punctuation then newlines), "x" another.
  EXPECT_THAT(t.Encode(".\n\nx"), ElementsAre('.', kNlNl, 'x'));
  // " hello" is one piece; no merge joins Ġ and h, so the space stays alone.
  EXPECT_THAT(t.Encode(" hello"), ElementsAre(' ', kHello));
}

TEST(BpeTokenizerTest, ContractionsAreCaseInsensitivePieces) {
  const BpeTokenizer t = Tiny();
  // "he'll" -> "he" "'ll": the l l merge happens inside "'ll".
  EXPECT_THAT(t.Encode("he'll"), ElementsAre(kHe, '\'', kLl));
  EXPECT_THAT(t.Encode("'LL"), ElementsAre('\'', 'L', 'L'));
  // The contraction wins over the longer letter run: "'llo" is "'ll" "o",
  // so "llo" never meets as one piece.
  EXPECT_THAT(t.Encode("'llo"), ElementsAre('\'', kLl, 'o'));
}

TEST(BpeTokenizerTest, SpecialTokensAreMatchedWholeWhenParsingSpecial) {
  const BpeTokenizer t = Tiny();
  EXPECT_THAT(t.Encode("<think>hello</think><|eos|>"),
              ElementsAre(kThink, kHello, kThinkEnd, kEos));
  const std::vector<int32_t> plain =
      t.Encode("<think>hello", /*parse_special=*/false);
  // "<think" and ">hello" are pieces (one non-letter joins the letters after).
  EXPECT_THAT(plain, ElementsAre('<', 't', 'h', 'i', 'n', 'k', '>', kHello));
}

TEST(BpeTokenizerTest, DecodeMapsTokensBackToBytes) {
  const BpeTokenizer t = Tiny();
  EXPECT_EQ(t.TokenBytes(kGworld), " world");
  EXPECT_EQ(t.TokenBytes(kNlNl), "\n\n");
  EXPECT_EQ(t.TokenBytes(kThink), "<think>");
  EXPECT_EQ(t.TokenBytes(0xE6), std::string("\xE6"));
  EXPECT_EQ(t.TokenBytes(-1), "");
  EXPECT_EQ(t.TokenBytes(100000), "");
  const std::vector<int32_t> ids = {kHello, kGworld, kEos};
  EXPECT_EQ(t.Decode(ids), "hello world<|eos|>");
}

TEST(BpeTokenizerTest, RoundTripsArbitraryBytesIncludingInvalidUtf8) {
  const BpeTokenizer t = Tiny();
  const std::string text = "\xFF\xFE x \xE6\x97\xA5\xE6\x9C\xAC\n\r\n\t\xC3";
  const std::vector<int32_t> ids = t.Encode(text);
  EXPECT_EQ(t.Decode(ids), text);
  EXPECT_THAT(t.Encode("\xFF\xFE"), ElementsAre(0xFF, 0xFE));
  EXPECT_TRUE(t.Encode("").empty());
}

TEST(BpeTokenizerTest, LooksUpTokensByStoredText) {
  const BpeTokenizer t = Tiny();
  EXPECT_EQ(t.TokenId("hello"), kHello);
  EXPECT_EQ(t.TokenId("</think>"), kThinkEnd);
  EXPECT_EQ(t.TokenId("zz"), std::nullopt);
  EXPECT_EQ(t.vocab_size(), 270);
  EXPECT_EQ(t.eos_id(), kEos);
  EXPECT_EQ(t.bos_id(), -1);
}

void ExpectInvalid(TokenizerData d, const std::string& message_part) {
  absl::StatusOr<BpeTokenizer> t = BpeTokenizer::Create(std::move(d));
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(t.status().message()), HasSubstr(message_part));
}

TEST(BpeTokenizerTest, CreateRejectsUnsupportedModelAndPreTokenizer) {
  TokenizerData d = TinyData();
  d.model = "llama";
  ExpectInvalid(d, "\"llama\"");
  d = TinyData();
  d.pre = "gpt-4o";
  ExpectInvalid(d, "\"gpt-4o\"");
  d = TinyData();
  d.pre = "deepseek-r1-qwen";
  EXPECT_TRUE(BpeTokenizer::Create(d).ok());
}

TEST(BpeTokenizerTest, CreateRejectsBadMerges) {
  TokenizerData d = TinyData();
  d.merges.push_back("he zz");
  ExpectInvalid(d, "unknown token \"zz\"");
  d = TinyData();
  d.merges.push_back("hello");
  ExpectInvalid(d, "\"left right\"");
  d = TinyData();
  d.merges.push_back("h o");  // "ho" is not a token
  ExpectInvalid(d, "\"ho\", which is not in the vocabulary");
}

TEST(BpeTokenizerTest, CreateRejectsInconsistentVocabulary) {
  TokenizerData d = TinyData();
  d.tokens[' '] = "space";  // the byte token for 0x20 is gone
  ExpectInvalid(d, "byte 0x20");
  d = TinyData();
  d.token_types.pop_back();
  ExpectInvalid(d, "token types");
  d = TinyData();
  d.eos_id = 270;
  ExpectInvalid(d, "eos id 270");
  d = TinyData();
  d.tokens.clear();
  d.token_types.clear();
  ExpectInvalid(d, "empty");
}

TEST(BpeTokenizerTest, LongPieceEncodesInNearLinearTime) {
  // One 200k-letter piece of "hel" repeated: a quadratic merge loop would
  // take minutes; the rank queue takes milliseconds.
  const BpeTokenizer t = Tiny();
  std::string text;
  for (int i = 0; i < 70000; ++i) text += "hel";
  const std::vector<int32_t> ids = t.Encode(text);
  ASSERT_EQ(ids.size(), 140000u);
  EXPECT_EQ(ids[0], kHe);
  EXPECT_EQ(ids[1], 'l');
  EXPECT_EQ(t.Decode(ids), text);
}

}  // namespace
}  // namespace stepproof::inference
