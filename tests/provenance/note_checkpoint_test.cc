// C2SP signed notes, checkpoints, trace origins and the inclusion promise.
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "merkle/hash.h"
#include "provenance/checkpoint.h"
#include "provenance/note.h"
#include "provenance/promise.h"
#include "provenance/signer.h"
#include "provenance/verifier_key.h"
#include "test_util.h"

namespace stepproof::provenance {
namespace {

constexpr char kExampleKey[] =
    "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";
constexpr char kExampleNote[] =
    "This is an example message.\n\n"
    "\xe2\x80\x94 example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAl"
    "TgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";

NoteVerifier ExampleVerifier() {
  return *NoteVerifier::FromVerifierKey(kExampleKey);
}

TEST(SignedNote, TheC2spSpecExampleVerifies) {
  auto text = OpenNote(kExampleNote, ExampleVerifier());
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(*text, "This is an example message.\n");
}

TEST(SignedNote, TamperedExampleFails) {
  std::string note = kExampleNote;
  note[0] = 't';
  auto text = OpenNote(note, ExampleVerifier());
  ASSERT_FALSE(text.ok());
  EXPECT_EQ(text.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(text.status().message().find("does not verify with key "
                                         "example.com/foo+530d903a"),
            absl::string_view::npos);
}

TEST(SignedNote, SignThenOpenAndOtherKeysAreIgnored) {
  Signer a = testing::TestSigner("a.example");
  Signer b = testing::TestSigner(
      "b.example",
      "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb");
  auto note = SignNote("hello\nworld\n", a);
  ASSERT_TRUE(note.ok()) << note.status();
  // Add b's signature line after a's: both keys can open it; a verifier for a
  // ignores b's line and vice versa.
  std::string both =
      *note + FormatSignatureLine(b.key_name(), b.key_id(),
                                  *b.Sign("hello\nworld\n"));
  EXPECT_EQ(*OpenNote(both, a.verifier()), "hello\nworld\n");
  EXPECT_EQ(*OpenNote(both, b.verifier()), "hello\nworld\n");
  // Only b's signature: a finds none.
  auto only_b = OpenNote(
      "hello\nworld\n\n" + FormatSignatureLine(b.key_name(), b.key_id(),
                                               *b.Sign("hello\nworld\n")),
      a.verifier());
  ASSERT_FALSE(only_b.ok());
  EXPECT_EQ(only_b.status().code(), absl::StatusCode::kNotFound);
  // Same name as a but another key id: unknown, ignored.
  std::string same_name =
      *note + FormatSignatureLine(a.key_name(), a.key_id() ^ 1, "xxxxxxxx");
  EXPECT_TRUE(OpenNote(same_name, a.verifier()).ok());
}

TEST(SignedNote, TextWithBlankLinesSplitsAtTheLastOne) {
  Signer a = testing::TestSigner();
  auto note = SignNote("para 1\n\npara 2\n", a);
  ASSERT_TRUE(note.ok());
  EXPECT_EQ(*OpenNote(*note, a.verifier()), "para 1\n\npara 2\n");
}

TEST(SignedNote, AcceptsSixteenSignaturesRejectsSeventeen) {
  Signer a = testing::TestSigner();
  std::string text = "t\n";
  std::string note = *SignNote(text, a);
  for (int i = 1; i < 16; ++i) {
    note += FormatSignatureLine(absl::StrCat("other", i), 7, "0123456789");
  }
  auto parsed = ParseNote(note);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->signatures.size(), 16u);
  EXPECT_TRUE(OpenNote(note, a.verifier()).ok());
  note += FormatSignatureLine("other17", 7, "0123456789");
  EXPECT_EQ(ParseNote(note).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(SignedNote, RejectsMalformedNotes) {
  const std::string sig_line =
      "\xe2\x80\x94 example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAl"
      "TgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";
  const std::string text = "This is an example message.\n";
  const std::string cases[] = {
      text + sig_line,                                  // no blank line
      text + "\n",                                      // no signatures
      text + "\n" + sig_line.substr(0, sig_line.size() - 1),  // no final \n
      text + "\n- example.com/foo AAAAAAA=\n",          // not an em dash
      text + "\n\xe2\x80\x94 example.com/foo\n",        // no signature
      text + "\n\xe2\x80\x94 example.com/foo AAAA\n",   // 3 bytes: too short
      text + "\n\xe2\x80\x94 example.com/foo AAAAAAA\n",  // unpadded base64
      text + "\n\xe2\x80\x94 example.com/foo AAAAAAA!\n",  // not base64
      text + "\n\xe2\x80\x94 bad+name AAAAAAA=\n",     // '+' in name
      "This is\ran example message.\n\n" + sig_line,  // control character
      "caf\xff\n\n" + sig_line,                         // not UTF-8
  };
  for (const std::string& c : cases) {
    auto n = ParseNote(c);
    EXPECT_EQ(n.status().code(), absl::StatusCode::kInvalidArgument) << c;
    EXPECT_FALSE(OpenNote(c, ExampleVerifier()).ok()) << c;
  }
}

TEST(SignedNote, SignNoteRejectsBadText) {
  Signer a = testing::TestSigner();
  EXPECT_FALSE(SignNote("", a).ok());
  EXPECT_FALSE(SignNote("no newline", a).ok());
  EXPECT_FALSE(SignNote("tab\there\n", a).ok());
}

merkle::Hash Root(uint8_t b) {
  merkle::Hash h;
  h.fill(b);
  return h;
}

TEST(Checkpoint, MarshalsTheC2spLayout) {
  Checkpoint cp;
  cp.origin = "example.com/log";
  cp.size = 12345;
  cp.root = Root(0);
  cp.extensions = {"ext one", "stepproof.final"};
  // 32 zero bytes in base64: 43 'A's and one '='.
  EXPECT_EQ(cp.Marshal(), "example.com/log\n12345\n" + std::string(43, 'A') +
                              "=\next one\nstepproof.final\n");
  auto back = Checkpoint::Parse(cp.Marshal());
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->origin, cp.origin);
  EXPECT_EQ(back->size, cp.size);
  EXPECT_EQ(back->root, cp.root);
  EXPECT_EQ(back->extensions, cp.extensions);
  EXPECT_TRUE(back->is_final());
}

TEST(Checkpoint, ParsesBigSizesAndRejectsNonCanonicalText) {
  const std::string root = std::string(43, 'A') + "=";
  auto max = Checkpoint::Parse("o\n18446744073709551615\n" + root + "\n");
  ASSERT_TRUE(max.ok());
  EXPECT_EQ(max->size, UINT64_MAX);
  EXPECT_FALSE(max->is_final());
  const std::string bad[] = {
      "o\n18446744073709551616\n" + root + "\n",  // overflow
      "o\n007\n" + root + "\n",                    // leading zeros
      "o\n-1\n" + root + "\n",
      "o\n+1\n" + root + "\n",
      "o\n1 \n" + root + "\n",
      "o\n1\n" + root,                             // no final newline
      "o\n1\n",                                    // no root
      "\n1\n" + root + "\n",                       // empty origin
      "o\n1\n" + std::string(42, 'A') + "==\n",    // 31 bytes
      "o\n1\n" + std::string(43, 'A') + "\n",      // unpadded
      "o\n1\n" + std::string(42, 'A') + "B=\n",    // non-canonical last char
      "o\n1\n" + root + "\n\n",                    // empty extension line
  };
  for (const std::string& t : bad) {
    EXPECT_EQ(Checkpoint::Parse(t).status().code(),
              absl::StatusCode::kInvalidArgument)
        << t;
  }
}

TEST(TraceOrigin, BuildsAndSplits) {
  EXPECT_EQ(TraceOrigin("log.example", testing::kTraceId),
            "log.example/trace/0123456789abcdef0123456789abcdef");
  auto p = ParseTraceOrigin("a/trace/b/trace/0123456789abcdef0123456789abcdef");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->log_origin, "a/trace/b");
  EXPECT_EQ(p->trace_id, testing::kTraceId);
  EXPECT_FALSE(ParseTraceOrigin("log.example").ok());
  EXPECT_FALSE(ParseTraceOrigin("/trace/0123456789abcdef0123456789abcdef").ok());
  EXPECT_FALSE(
      ParseTraceOrigin("log/trace/0123456789ABCDEF0123456789abcdef").ok());
  EXPECT_FALSE(ParseTraceOrigin("log/trace/0123").ok());
}

TEST(Promise, MarshalsTheDocumentedText) {
  InclusionPromise p;
  p.log_origin = "log.example";
  p.trace_origin = "log.example/trace/0123456789abcdef0123456789abcdef";
  p.trace_size = 3;
  p.trace_root = Root(0);
  p.leaf_hash = Root(0);
  p.submitted_unix_ms = 1767323046000;
  p.max_delay_seconds = 60;
  const std::string zeros = std::string(43, 'A') + "=";
  EXPECT_EQ(p.Marshal(),
            "stepproof.promise/v1\nlog.example\n"
            "log.example/trace/0123456789abcdef0123456789abcdef\n3\n" +
                zeros + "\n" + zeros + "\n2026-01-02T03:04:06.000Z\n60\n");
  auto back = InclusionPromise::Parse(p.Marshal());
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, p);
  std::string wrong_type = p.Marshal();
  wrong_type[10] = 'X';
  EXPECT_FALSE(InclusionPromise::Parse(wrong_type).ok());
  EXPECT_FALSE(InclusionPromise::Parse(p.Marshal() + "extra\n").ok());
}

TEST(Promise, VerifiesAgainstTheFinalCheckpointAndNamesMismatches) {
  Signer s = testing::TestSigner();
  TraceBuilder t = testing::TestTrace(s, 2);
  auto p = MakePromise(testing::kLogOrigin, t.final_checkpoint(), 1000, 60);
  ASSERT_TRUE(p.ok());
  auto note = SignPromise(*p, s);
  ASSERT_TRUE(note.ok());
  EXPECT_TRUE(VerifyPromise(*note, s.verifier(), t.final_checkpoint()).ok());
  // Against an earlier (non-final) checkpoint: the leaf hash differs.
  auto other = VerifyPromise(*note, s.verifier(), *t.checkpoint(3));
  ASSERT_FALSE(other.ok());
  EXPECT_NE(other.status().message().find("leaf hash"), absl::string_view::npos);
  auto smaller = VerifyPromise(*note, s.verifier(), *t.checkpoint(2));
  ASSERT_FALSE(smaller.ok());
  EXPECT_NE(smaller.status().message().find("trace size"),
            absl::string_view::npos);
  // Signed by another key.
  Signer other_key = testing::TestSigner(
      testing::kLogOrigin,
      "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb");
  auto foreign = VerifyPromise(*SignPromise(*p, other_key), s.verifier(),
                               t.final_checkpoint());
  ASSERT_FALSE(foreign.ok());
  EXPECT_NE(foreign.status().message().find("promise"), absl::string_view::npos);
}

}  // namespace
}  // namespace stepproof::provenance
