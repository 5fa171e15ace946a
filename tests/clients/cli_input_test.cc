// The CLIs' input handling: flag spelling and errors (clients/command_line.h),
// the --key argument (clients/verifier_key_arg.h), files
// (clients/file_io.h) and escaping of untrusted text (clients/terminal_text.h).
#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "clients/command_line.h"
#include "clients/file_io.h"
#include "clients/terminal_text.h"
#include "clients/verifier_key_arg.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/clients/test_trace.h"

ABSL_FLAG(double, test_top_p, -1, "a double flag");
ABSL_FLAG(std::string, test_prompt, "", "a string flag");
ABSL_FLAG(bool, test_greedy, false, "a bool flag");
ABSL_FLAG(int64_t, test_count, 0, "an integer flag");

namespace stepproof::clients {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

absl::StatusOr<std::vector<std::string>> Prepare(
    std::vector<std::string> args) {
  args.insert(args.begin(), "prog");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  return PrepareCommandLine(static_cast<int>(argv.size()), argv.data());
}

std::string TempPath(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  return std::string(dir != nullptr ? dir : "/tmp") + "/clients_cli_input_" +
         name;
}

TEST(CommandLineTest, AcceptsDashedFlagNamesAndLeavesValuesAlone) {
  absl::StatusOr<std::vector<std::string>> args =
      Prepare({"generate", "--test-top-p=0.5", "--test-prompt", "-a-b-",
               "--test-greedy", "--", "--not-a-flag"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_THAT(*args, ElementsAre("prog", "generate", "--test_top_p=0.5",
                                 "--test_prompt", "-a-b-", "--test_greedy",
                                 "--", "--not-a-flag"));
}

TEST(CommandLineTest, AcceptsNegatedBoolFlags) {
  EXPECT_TRUE(Prepare({"--notest-greedy"}).ok());
  EXPECT_THAT(std::string(Prepare({"--notest-greedy=1"}).status().message()),
              HasSubstr("takes no value"));
}

TEST(CommandLineTest, NamesAnUnknownFlagAsTheUserSpelledIt) {
  absl::StatusOr<std::vector<std::string>> args = Prepare({"--tpo-p=1"});
  ASSERT_FALSE(args.ok());
  EXPECT_EQ(args.status().message(), "unknown flag --tpo-p");
}

TEST(CommandLineTest, NamesAMissingOrBadValue) {
  EXPECT_EQ(Prepare({"--test-count"}).status().message(),
            "missing value for --test-count");
  absl::StatusOr<std::vector<std::string>> bad = Prepare({"--test-count=ten"});
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()),
              HasSubstr("bad value for --test-count"));
}

TEST(TerminalTextTest, EscapesControlSequencesAndInvalidUtf8) {
  EXPECT_EQ(EscapeForTerminal("ok\x1b[2Jcleared"), "ok\\x1b[2Jcleared");
  EXPECT_EQ(EscapeForTerminal("a\rb\x7f"), "a\\x0db\\x7f");
  EXPECT_EQ(EscapeForTerminal("csi \xc2\x9b here"), "csi \\u009b here");
  EXPECT_EQ(EscapeForTerminal("bad \xff\xc3"), "bad \\xff\\xc3");
  EXPECT_EQ(EscapeForTerminal("overlong \xc0\xaf"), "overlong \\xc0\\xaf");
  // Printable text, newlines and tabs pass unchanged, multi-byte included.
  EXPECT_EQ(EscapeForTerminal("478 + 854 = 1332\n\t\xe2\x9c\x93 \xf0\x9f\x98\x80"),
            "478 + 854 = 1332\n\t\xe2\x9c\x93 \xf0\x9f\x98\x80");
}

TEST(TerminalTextTest, IndentsContinuationLines) {
  EXPECT_EQ(IndentForTerminal("a\nb\nc", "  "), "a\n  b\n  c");
  EXPECT_EQ(IndentForTerminal("a\n\nb\n", "  "), "a\n\n  b\n");
  EXPECT_EQ(StepTextForTerminal("\nThe answer is 5.\n\n", "  "),
            "The answer is 5.");
  EXPECT_EQ(StepTextForTerminal("a\n\nb\x1b\n", "  "), "a\n\n  b\\x1b");
  EXPECT_EQ(IndentLines("line 1\nline 2\n", "    "),
            "    line 1\n    line 2\n");
}

TEST(VerifierKeyArgTest, LoadsAnInlineKeyOrAKeyFile) {
  provenance::Signer signer = testing::MakeSigner(5);
  std::string vkey = signer.verifier_key();
  absl::StatusOr<provenance::NoteVerifier> inline_key = LoadVerifierKeyArg(vkey);
  ASSERT_TRUE(inline_key.ok()) << inline_key.status();
  EXPECT_EQ(inline_key->public_key(), signer.public_key());

  std::string path = TempPath("vkey.txt");
  ASSERT_TRUE(WriteStringToFile(path, vkey + "\n").ok());
  absl::StatusOr<provenance::NoteVerifier> file_key =
      LoadVerifierKeyArg("@" + path);
  ASSERT_TRUE(file_key.ok()) << file_key.status();
  EXPECT_EQ(file_key->public_key(), signer.public_key());
}

TEST(VerifierKeyArgTest, LoadsAKeyWhoseBase64HoldsPlusSigns) {
  // Standard base64 uses '+': the key must split at the first two only.
  for (int seed = 1; seed < 256; ++seed) {
    provenance::Signer signer = testing::MakeSigner(static_cast<uint8_t>(seed));
    std::string vkey = signer.verifier_key();
    if (std::count(vkey.begin(), vkey.end(), '+') <= 2) continue;
    absl::StatusOr<provenance::NoteVerifier> key = LoadVerifierKeyArg(vkey);
    ASSERT_TRUE(key.ok()) << vkey << ": " << key.status();
    EXPECT_EQ(key->public_key(), signer.public_key());
    return;
  }
  FAIL() << "no seed gave a key with '+' in its base64";
}

TEST(VerifierKeyArgTest, NamesTheProblem) {
  EXPECT_THAT(std::string(LoadVerifierKeyArg("").status().message()),
              HasSubstr("no verifier key"));
  EXPECT_THAT(std::string(LoadVerifierKeyArg("not-a-key").status().message()),
              HasSubstr("verifier key does not parse"));
  absl::StatusOr<provenance::NoteVerifier> missing =
      LoadVerifierKeyArg("@" + TempPath("does-not-exist"));
  EXPECT_TRUE(absl::IsNotFound(missing.status()));
  std::string empty = TempPath("empty.txt");
  ASSERT_TRUE(WriteStringToFile(empty, "\n").ok());
  EXPECT_THAT(std::string(LoadVerifierKeyArg("@" + empty).status().message()),
              HasSubstr("is empty"));
}

TEST(FileIoTest, WritesAndReadsBackBytesExactly) {
  std::string path = TempPath("bytes.bin");
  std::string bytes("a\0b\xff\n", 5);
  ASSERT_TRUE(WriteStringToFile(path, bytes).ok());
  absl::StatusOr<std::string> read = ReadFileToString(path);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(*read, bytes);
  EXPECT_FALSE(WriteStringToFile("/nonexistent-dir/x", "y").ok());
}

}  // namespace
}  // namespace stepproof::clients
