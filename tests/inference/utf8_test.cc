#include "inference/utf8.h"

#include <random>
#include <string>

#include "gtest/gtest.h"

namespace stepproof::inference {
namespace {

const std::string kFffd = "\xEF\xBF\xBD";

TEST(Utf8StreamDecoderTest, HoldsBackACharacterSplitAcrossChunks) {
  Utf8StreamDecoder d;
  EXPECT_EQ(d.Push("a\xE4"), "a");  // 中 = E4 B8 AD
  EXPECT_EQ(d.pending_bytes(), 1u);
  EXPECT_EQ(d.Push("\xB8"), "");
  EXPECT_EQ(d.Push("\xAD" "b"), "\xE4\xB8\xAD" "b");
  EXPECT_EQ(d.pending_bytes(), 0u);
  EXPECT_EQ(d.Push("\xF0\x9F"), "");  // 😀 = F0 9F 98 80
  EXPECT_EQ(d.Push("\x98\x80"), "\xF0\x9F\x98\x80");
  EXPECT_EQ(d.Finish(), "");
}

TEST(Utf8StreamDecoderTest, FinishReplacesAnIncompleteTail) {
  Utf8StreamDecoder d;
  EXPECT_EQ(d.Push("x\xE4\xB8"), "x");
  EXPECT_EQ(d.Finish(), kFffd);
  EXPECT_EQ(d.pending_bytes(), 0u);
  EXPECT_EQ(d.Push("y"), "y");
}

TEST(Utf8Test, ReplacesMaximalSubpartsAsInUnicodeTable3_8) {
  // The Unicode Standard, section 3.9, Table 3-8: U+FFFD for maximal subparts.
  const std::string in =
      "\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64";
  const std::string want = "a" + kFffd + kFffd + kFffd + "b" + kFffd + "c" +
                           kFffd + kFffd + "d";
  EXPECT_EQ(SanitizeUtf8(in), want);
}

TEST(Utf8Test, RejectsSurrogatesOverlongsAndOutOfRange) {
  EXPECT_EQ(SanitizeUtf8("\xED\xA0\x80"), kFffd + kFffd + kFffd);
  EXPECT_EQ(SanitizeUtf8("\xC0\xAF"), kFffd + kFffd);
  EXPECT_EQ(SanitizeUtf8("\xE0\x80\xAF"), kFffd + kFffd + kFffd);
  EXPECT_EQ(SanitizeUtf8("\xF4\x90\x80\x80"), kFffd + kFffd + kFffd + kFffd);
  EXPECT_EQ(SanitizeUtf8("\xFF"), kFffd);
  EXPECT_FALSE(IsValidUtf8("\xED\xA0\x80"));
  EXPECT_FALSE(IsValidUtf8("\xC0\xAF"));
  EXPECT_FALSE(IsValidUtf8("\xE4\xB8"));
  EXPECT_TRUE(IsValidUtf8("\xF4\x8F\xBF\xBF"));  // U+10FFFF
  EXPECT_TRUE(IsValidUtf8("\xED\x9F\xBF"));      // U+D7FF
  EXPECT_TRUE(IsValidUtf8(""));
}

TEST(Utf8Test, KeepsValidTextUnchanged) {
  const std::string s = "plain ASCII, caf\xC3\xA9, \xE4\xB8\xAD\xE6\x96\x87, "
                        "\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD";
  EXPECT_TRUE(IsValidUtf8(s));
  EXPECT_EQ(SanitizeUtf8(s), s);
}

TEST(Utf8StreamDecoderTest, ChunkingDoesNotChangeTheOutput) {
  std::mt19937 rng(7);
  const std::string alphabet =
      "a \n\xC3\xA9\xE4\xB8\xAD\xF0\x9F\x98\x80\x80\xBF\xFF\xED\xA0\xF4\x90";
  for (int round = 0; round < 200; ++round) {
    std::string in;
    const int n = rng() % 40;
    for (int i = 0; i < n; ++i) in.push_back(alphabet[rng() % alphabet.size()]);
    const std::string whole = SanitizeUtf8(in);
    EXPECT_TRUE(IsValidUtf8(whole));
    Utf8StreamDecoder d;
    std::string pieces;
    size_t i = 0;
    while (i < in.size()) {
      const size_t len = 1 + rng() % 4;
      pieces += d.Push(std::string_view(in).substr(i, len));
      i += len;
    }
    pieces += d.Finish();
    EXPECT_EQ(pieces, whole);
  }
}

}  // namespace
}  // namespace stepproof::inference
