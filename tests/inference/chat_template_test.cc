#include "inference/chat_template.h"

#include <string>

#include "gtest/gtest.h"

namespace stepproof::inference {
namespace {

// The literals below are typed as characters (this file is UTF-8), not as the
// escaped bytes chat_template.h uses, so the two spellings check each other.
TEST(ChatTemplateTest, SpecialTokenStringsAreTheDeepSeekR1Ones) {
  EXPECT_EQ(kBeginOfSentence, "<｜begin▁of▁sentence｜>");
  EXPECT_EQ(kEndOfSentence, "<｜end▁of▁sentence｜>");
  EXPECT_EQ(kUser, "<｜User｜>");
  EXPECT_EQ(kAssistant, "<｜Assistant｜>");
  EXPECT_EQ(kThinkOpen, "<think>");
  EXPECT_EQ(kThinkClose, "</think>");
  // U+FF5C FULLWIDTH VERTICAL LINE is EF BD 9C; U+2581 is E2 96 81.
  EXPECT_EQ(kUser.substr(1, 3), "\xEF\xBD\x9C");
  EXPECT_EQ(kBeginOfSentence.substr(9, 3), "\xE2\x96\x81");
}

TEST(ChatTemplateTest, FormatsSystemUserAndOpensTheThinkBlock) {
  EXPECT_EQ(FormatR1Prompt("You are terse.", "What is 2+2?"),
            "<｜begin▁of▁sentence｜>You are terse.<｜User｜>What is 2+2?"
            "<｜Assistant｜><think>\n");
}

TEST(ChatTemplateTest, EmptySystemPromptLeavesNothingBetweenMarkers) {
  EXPECT_EQ(FormatR1Prompt("", "hi"),
            "<｜begin▁of▁sentence｜><｜User｜>hi<｜Assistant｜><think>\n");
}

}  // namespace
}  // namespace stepproof::inference
