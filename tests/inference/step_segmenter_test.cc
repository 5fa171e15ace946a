// StepSegmenter on a tiny hand-made vocabulary. Token texts are chosen so the
// expected steps can be read off by eye; the rules are in docs/DECODING.md.

#include "inference/step_segmenter.h"

#include <random>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "inference/utf8.h"

namespace stepproof::inference {
namespace {

using ::testing::ElementsAre;

// Vocabulary: 256 byte tokens (id == byte), then the words below. Byte-level
// texts: "Ġ" = space, "Ċ" = newline.
enum : int32_t {
  kStep = 256,   // "Step"
  kOne,          // " one"
  kTwo,          // " two"
  kDotNlNl,      // ".\n\n"
  kNlNl,         // "\n\n"
  kNl,           // "\n"
  kNlNlAdd,      // "\n\nAdd"   (straddles a blank line)
  kDotNlNlAdd,   // ".\n\nAdd"  (blank line inside one token)
  kAnswer,       // "Answer"
  kThinkClose,   // "</think>" (USER_DEFINED)
  kEos,          // "<|eos|>"  (CONTROL)
  kVocab
};

BpeTokenizer MakeTokenizer() {
  TokenizerData d;
  d.model = "gpt2";
  d.pre = "qwen2";
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= 0x21 && b <= 0x7E) ||
                           (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    int cp = b;
    if (!printable) {
      int n = 0;
      for (int x = 0; x < b; ++x) {
        n += !((x >= 0x21 && x <= 0x7E) || (x >= 0xA1 && x <= 0xAC) ||
               (x >= 0xAE && x <= 0xFF));
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
    d.tokens.push_back(s);
  }
  for (const char* t :
       {"Step", "\xC4\xA0one", "\xC4\xA0two", ".\xC4\x8A\xC4\x8A",
        "\xC4\x8A\xC4\x8A", "\xC4\x8A", "\xC4\x8A\xC4\x8A" "Add",
        ".\xC4\x8A\xC4\x8A" "Add", "Answer", "</think>", "<|eos|>"}) {
    d.tokens.push_back(t);
  }
  d.token_types.assign(d.tokens.size(), kTokenTypeNormal);
  d.token_types[kThinkClose] = kTokenTypeUserDefined;
  d.token_types[kEos] = kTokenTypeControl;
  d.eos_id = kEos;
  absl::StatusOr<BpeTokenizer> t = BpeTokenizer::Create(std::move(d));
  EXPECT_TRUE(t.ok()) << t.status();
  return *std::move(t);
}

absl::Time T(int s) { return absl::FromUnixSeconds(1000 + s); }

// Pushes `tokens` (logprob = -index/10, time = T(index)), then Finish.
std::vector<Step> Segment(const BpeTokenizer& tok,
                          const std::vector<int32_t>& tokens,
                          int max_step_tokens = 256) {
  StepSegmenter seg(&tok, SegmenterOptions{max_step_tokens});
  std::vector<Step> steps;
  for (size_t i = 0; i < tokens.size(); ++i) {
    for (Step& s : seg.Push(tokens[i], -0.1f * i, T(i))) {
      steps.push_back(std::move(s));
    }
  }
  for (Step& s : seg.Finish(T(1000))) steps.push_back(std::move(s));
  return steps;
}

std::vector<std::string> Texts(const std::vector<Step>& steps) {
  std::vector<std::string> out;
  for (const Step& s : steps) out.push_back(s.text);
  return out;
}

TEST(StepSegmenterTest, SplitsReasoningAtBlankLinesAndEndsWithOneAnswer) {
  const BpeTokenizer tok = MakeTokenizer();
  const std::vector<Step> steps =
      Segment(tok, {kStep, kOne, kDotNlNl, kStep, kTwo, '.', kThinkClose, kNlNl,
                kAnswer, kEos});
  ASSERT_EQ(steps.size(), 3u);
  EXPECT_EQ(steps[0].kind, StepKind::kReasoning);
  EXPECT_EQ(steps[0].text, "Step one.\n\n");
  EXPECT_THAT(steps[0].token_ids, ElementsAre(kStep, kOne, kDotNlNl));
  EXPECT_EQ(steps[0].first_token_position, 0);
  EXPECT_EQ(steps[1].kind, StepKind::kReasoning);
  EXPECT_EQ(steps[1].text, "Step two.");
  EXPECT_EQ(steps[1].first_token_position, 3);
  EXPECT_EQ(steps[2].kind, StepKind::kAnswer);
  // </think> opens the answer step but adds no text; leading "\n\n" is kept.
  EXPECT_EQ(steps[2].text, "\n\nAnswer");
  EXPECT_THAT(steps[2].token_ids, ElementsAre(kThinkClose, kNlNl, kAnswer));
  EXPECT_EQ(steps[2].first_token_position, 6);
}

TEST(StepSegmenterTest, StepsAreEmittedAsSoonAsTheNextStepBegins) {
  const BpeTokenizer tok = MakeTokenizer();
  StepSegmenter seg(&tok, SegmenterOptions{});
  EXPECT_TRUE(seg.Push(kStep, -0.5f, T(0)).empty());
  EXPECT_TRUE(seg.Push(kDotNlNl, -0.25f, T(1)).empty());  // closed, held
  EXPECT_TRUE(seg.Push(kNl, -0.125f, T(2)).empty());      // whitespace joins it
  const std::vector<Step> out = seg.Push(kStep, -1.0f, T(3));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].text, "Step.\n\n\n");
  EXPECT_THAT(out[0].logprobs, ElementsAre(-0.5f, -0.25f, -0.125f));
  EXPECT_EQ(out[0].start_time, T(0));
  EXPECT_EQ(out[0].end_time, T(2));
  const std::vector<Step> last = seg.Finish(T(9));
  ASSERT_EQ(last.size(), 1u);
  EXPECT_EQ(last[0].text, "Step");
  EXPECT_EQ(last[0].kind, StepKind::kReasoning);  // no </think>: reasoning
  EXPECT_EQ(last[0].start_time, T(3));
  EXPECT_TRUE(seg.Finish(T(10)).empty());
}

TEST(StepSegmenterTest, TokenHoldingTheFirstTextAfterABlankLineStartsTheStep) {
  const BpeTokenizer tok = MakeTokenizer();
  // "\n\nAdd" straddles: it carries the text after the blank line, so it
  // begins the next step.
  EXPECT_THAT(Texts(Segment(tok, {kStep, '.', kNlNlAdd, kOne})),
              ElementsAre("Step.", "\n\nAdd one"));
  // ".\n\nAdd" holds the blank line and the text after it: the same rule puts
  // the whole token in the next step.
  EXPECT_THAT(Texts(Segment(tok, {kStep, kDotNlNlAdd, kOne})),
              ElementsAre("Step", ".\n\nAdd one"));
  // A step without text cannot end: the blank line inside ".\n\nAdd"
  // follows only whitespace of the step, so the token joins it.
  EXPECT_THAT(Texts(Segment(tok, {kNl, kDotNlNlAdd, kOne})),
              ElementsAre("\n.\n\nAdd one"));
  // Blank line split across two "\n" tokens.
  EXPECT_THAT(Texts(Segment(tok, {kStep, kNl, kNl, kStep})),
              ElementsAre("Step\n\n", "Step"));
  // A single newline is not a step boundary.
  EXPECT_THAT(Texts(Segment(tok, {kStep, kNl, kStep})), ElementsAre("Step\nStep"));
  // Spaces between the newlines still make a blank line.
  EXPECT_THAT(Texts(Segment(tok, {kStep, kNl, ' ', ' ', kNl, kStep})),
              ElementsAre("Step\n  \n", "Step"));
}

TEST(StepSegmenterTest, LeadingWhitespaceBelongsToTheFirstStep) {
  const BpeTokenizer tok = MakeTokenizer();
  EXPECT_THAT(Texts(Segment(tok, {kNlNl, kNl, kStep, kDotNlNl, kStep})),
              ElementsAre("\n\n\nStep.\n\n", "Step"));
}

TEST(StepSegmenterTest, WhitespaceOnlyReasoningJoinsTheAnswerStep) {
  const BpeTokenizer tok = MakeTokenizer();
  const std::vector<Step> steps =
      Segment(tok, {kNlNl, kThinkClose, kNlNl, kAnswer, kEos});
  ASSERT_EQ(steps.size(), 1u);
  EXPECT_EQ(steps[0].kind, StepKind::kAnswer);
  EXPECT_THAT(steps[0].token_ids, ElementsAre(kNlNl, kThinkClose, kNlNl, kAnswer));
  EXPECT_EQ(steps[0].text, "\n\n\n\nAnswer");
  EXPECT_EQ(steps[0].first_token_position, 0);
}

TEST(StepSegmenterTest, EmptyAnswerIsStillEmittedAndEosBelongsToNoStep) {
  const BpeTokenizer tok = MakeTokenizer();
  const std::vector<Step> steps = Segment(tok, {kStep, kThinkClose, kEos, kStep});
  ASSERT_EQ(steps.size(), 2u);
  EXPECT_EQ(steps[0].text, "Step");
  EXPECT_EQ(steps[1].kind, StepKind::kAnswer);
  EXPECT_EQ(steps[1].text, "");
  EXPECT_THAT(steps[1].token_ids, ElementsAre(kThinkClose));  // not EOS, not after
}

TEST(StepSegmenterTest, AllWhitespaceOutputIsOneStepSoNoTokenIsLost) {
  const BpeTokenizer tok = MakeTokenizer();
  const std::vector<Step> steps = Segment(tok, {kNlNl, ' ', kNl});
  ASSERT_EQ(steps.size(), 1u);
  EXPECT_EQ(steps[0].text, "\n\n \n");
  EXPECT_TRUE(Segment(tok, {}).empty());
  EXPECT_TRUE(Segment(tok, {kEos}).empty());
}

TEST(StepSegmenterTest, LongStepIsCutAtMaxTokens) {
  const BpeTokenizer tok = MakeTokenizer();
  EXPECT_THAT(Texts(Segment(tok, {'a', 'b', 'c', 'd', 'e', 'f', 'g'}, 3)),
              ElementsAre("abc", "def", "g"));
  // Whitespace after the cut stays with the cut step.
  EXPECT_THAT(Texts(Segment(tok, {'a', 'b', 'c', ' ', 'd'}, 3)),
              ElementsAre("abc ", "d"));
}

TEST(StepSegmenterTest, CutWaitsForACharacterSplitAcrossTokens) {
  const BpeTokenizer tok = MakeTokenizer();
  // 中 = E4 B8 AD in three byte tokens; max 2 would cut after B8.
  const std::vector<Step> steps = Segment(tok, {'x', 0xE4, 0xB8, 0xAD, 'y'}, 2);
  EXPECT_THAT(Texts(steps), ElementsAre("x\xE4\xB8\xAD", "y"));
  EXPECT_EQ(steps[0].token_ids.size(), 4u);
}

TEST(StepSegmenterTest, InvalidBytesBecomeReplacementCharacters) {
  const BpeTokenizer tok = MakeTokenizer();
  EXPECT_THAT(Texts(Segment(tok, {0xFF, 'a', 0xE4, 0xB8})),
              ElementsAre("\xEF\xBF\xBD" "a\xEF\xBF\xBD"));
}

TEST(StepSegmenterTest, SegmentsAnArithmeticTraceAsDocumented) {
  // docs/DECODING.md's example, one token per byte (the tiny vocabulary has
  // no merges), so every boundary is decided byte by byte.
  const BpeTokenizer tok = MakeTokenizer();
  const std::vector<int32_t> ids = tok.Encode(
      "Add the ones: 2 + 2 = 4, write 4, carry 0.\n\n"
      "Add the tens: 8 + 4 = 12, write 2, carry 1.\n\n"
      "Write the final carry: 1.\n\n"
      "So the sum is 124.\n</think>\nThe answer is 124.<|eos|>");
  const std::vector<Step> steps = Segment(tok, ids);
  EXPECT_THAT(Texts(steps),
              ElementsAre("Add the ones: 2 + 2 = 4, write 4, carry 0.\n\n",
                          "Add the tens: 8 + 4 = 12, write 2, carry 1.\n\n",
                          "Write the final carry: 1.\n\n",
                          "So the sum is 124.\n", "\nThe answer is 124."));
  ASSERT_EQ(steps.size(), 5u);
  EXPECT_EQ(steps[4].kind, StepKind::kAnswer);
  EXPECT_EQ(steps[4].token_ids.front(), kThinkClose);
  EXPECT_EQ(steps[4].token_ids.back(), '.');
}

// Invariants on random token streams: every token but EOS is in exactly one
// step, in order; each text is the sanitised bytes of its tokens (</think>
// contributing none); texts are valid UTF-8; only the all-whitespace case
// yields a whitespace-only reasoning step; max_step_tokens holds up to the
// UTF-8 wait and trailing whitespace.
TEST(StepSegmenterTest, RandomStreamsKeepEveryTokenExactlyOnce) {
  const BpeTokenizer tok = MakeTokenizer();
  std::mt19937 rng(2026);
  const std::vector<int32_t> pool = {kStep, kOne, kTwo, kDotNlNl, kNlNl, kNl,
                                     kNlNlAdd, kDotNlNlAdd, kAnswer, ' ', '.',
                                     0xE4, 0xB8, 0xAD, 0xFF, 'z'};
  for (int round = 0; round < 500; ++round) {
    std::vector<int32_t> tokens;
    const int n = rng() % 60;
    for (int i = 0; i < n; ++i) {
      const uint32_t r = rng() % 100;
      tokens.push_back(r < 3 ? kThinkClose : pool[rng() % pool.size()]);
    }
    if (rng() % 2) tokens.push_back(kEos);
    const int max_tokens = 1 + rng() % 8;
    const std::vector<Step> steps = Segment(tok, tokens, max_tokens);

    std::vector<int32_t> expected;
    for (int32_t t : tokens) {
      if (t == kEos) break;
      expected.push_back(t);
    }
    std::vector<int32_t> got;
    bool seen_answer = false;
    for (const Step& s : steps) {
      ASSERT_FALSE(s.token_ids.empty());
      EXPECT_EQ(s.first_token_position, static_cast<int64_t>(got.size()));
      EXPECT_EQ(s.logprobs.size(), s.token_ids.size());
      std::string bytes;
      for (int32_t id : s.token_ids) {
        if (id != kThinkClose) bytes += tok.TokenBytes(id);
      }
      EXPECT_EQ(s.text, SanitizeUtf8(bytes));
      EXPECT_TRUE(IsValidUtf8(s.text));
      if (s.kind == StepKind::kAnswer) {
        EXPECT_FALSE(seen_answer) << "one answer step at most";
        seen_answer = true;
      } else {
        EXPECT_FALSE(seen_answer) << "reasoning after the answer";
        const bool whitespace_only =
            s.text.find_first_not_of(" \t\n\r\v\f") == std::string::npos;
        int text_tokens = 0;
        for (int32_t id : s.token_ids) {
          text_tokens += tok.TokenBytes(id).find_first_not_of(" \t\n\r\v\f") !=
                         std::string::npos;
        }
        EXPECT_LE(text_tokens, max_tokens + 8);
        if (whitespace_only) {
          EXPECT_EQ(steps.size(), 1u);
        }
      }
      got.insert(got.end(), s.token_ids.begin(), s.token_ids.end());
    }
    EXPECT_EQ(got, expected) << "round " << round;
  }
}

}  // namespace
}  // namespace stepproof::inference
