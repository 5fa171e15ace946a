// stepproof-engine end to end: info, tokenize (also on a vocabulary-only
// GGUF), generate (greedy, reproducible, --ids), and bad input.

#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/inference/test_models.h"

namespace stepproof::inference {
namespace {

struct CliRun {
  int rc;
  std::string out;  // stdout and stderr
};

CliRun Engine(const std::string& args) {
  const char* dir = std::getenv("STEPPROOF_BIN_DIR");
  const std::string bin = absl::StrCat(dir ? dir : "build/bin", "/stepproof-engine");
  FILE* p = popen(absl::StrCat(bin, " ", args, " 2>&1").c_str(), "r");
  CliRun r{-1, ""};
  if (p == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int status = pclose(p);
  r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

class EngineCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = absl::StrCat(::testing::TempDir(), "/cli_model_", getpid(), ".gguf");
    vocab_ = absl::StrCat(::testing::TempDir(), "/cli_vocab_", getpid(), ".gguf");
    testing::TinyModelSpec spec;
    spec.type = TensorType::kQ4_K;
    ASSERT_TRUE(testing::TinyModel(spec).WriteFile(model_).ok());
    GgufWriter w;
    testing::AddTokenizer(w, 300);
    ASSERT_TRUE(w.WriteFile(vocab_).ok());
  }
  void TearDown() override {
    std::remove(model_.c_str());
    std::remove(vocab_.c_str());
  }
  std::string model_, vocab_;
};

TEST_F(EngineCliTest, InfoDescribesTheModel) {
  CliRun r = Engine(absl::StrCat("info ", model_));
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("model: qwen2, 2 layers, hidden 256, ffn 512, heads 4 (kv 2, dim 64), vocab 300"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("Q4_K x16"), std::string::npos) << r.out;
}

// "the" merges t+h then th+e (ids 262, 263); digits are split one by one by
// the Qwen2 pre-tokenizer; bytes are their own ids; <think> is special 260.
TEST_F(EngineCliTest, TokenizesWithAVocabularyOnlyFile) {
  CliRun r = Engine(absl::StrCat("tokenize --model ", vocab_, " 'the 12 <think>'"));
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_EQ(r.out, "263 32 49 50 32 260\n");
  EXPECT_EQ(Engine(absl::StrCat("tokenize --model ", model_, " 'the 12 <think>'")).out, r.out);
}

TEST_F(EngineCliTest, GreedyGenerationIsReproducibleAcrossThreadCounts) {
  const std::string args = absl::StrCat("generate --model ", model_,
                                        " --tokens '256 72 105 258 49 43 50 259 260 10' --greedy --ids --max-tokens 12");
  CliRun a = Engine(args + " --threads 1");
  ASSERT_EQ(a.rc, 0) << a.out;
  const size_t ids = a.out.find("ids: ");
  ASSERT_NE(ids, std::string::npos) << a.out;
  const std::string line = a.out.substr(ids, a.out.find('\n', ids) - ids);
  EXPECT_GE(line.size(), 7u);
  CliRun b = Engine(args + " --threads 2");
  ASSERT_EQ(b.rc, 0) << b.out;
  EXPECT_NE(b.out.find(line), std::string::npos) << line << "\nvs\n" << b.out;
  EXPECT_NE(a.out.find("[max_tokens;"), std::string::npos) << a.out;
}

TEST_F(EngineCliTest, GeneratesFromAChatPromptWithDashedSamplingFlags) {
  CliRun r = Engine(absl::StrCat("generate --model ", model_,
                              " --prompt 'What is 12 + 34?' --temperature 0.8 --top-p 0.9 --top-k 40 --seed 3"
                              " --max-tokens 5 --ids"));
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("ids: "), std::string::npos) << r.out;
}

// --help (and -h) print the usage and the engine's own flags, exit status 0.
TEST_F(EngineCliTest, HelpListsCommandsAndFlagsAndSucceeds) {
  for (const char* flag : {"--help", "-h"}) {
    const CliRun r = Engine(flag);
    EXPECT_EQ(r.rc, 0) << flag << "\n" << r.out;
    for (const char* want : {"stepproof-engine info MODEL", "stepproof-engine generate", "--threads ", "--seed "}) {
      EXPECT_NE(r.out.find(want), std::string::npos) << flag << ": no '" << want << "' in\n" << r.out;
    }
    EXPECT_EQ(r.out.find("--flagfile"), std::string::npos) << "absl's own flags are not the engine's";
  }
}

TEST_F(EngineCliTest, BadInputNamesTheProblem) {
  CliRun r = Engine("generate --prompt hi");
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.out.find("--model"), std::string::npos) << r.out;
  r = Engine(absl::StrCat("generate --model ", model_, " --tokens '1 2 x3'"));
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.out.find("x3"), std::string::npos) << r.out;
  r = Engine(absl::StrCat("generate --model ", model_, " --tokens '1 2 999'"));
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.out.find("999"), std::string::npos) << r.out;
  r = Engine("info /nonexistent.gguf");
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.out.find("no such file"), std::string::npos) << r.out;
  r = Engine("frobnicate");
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.out.find("unknown command"), std::string::npos) << r.out;
  r = Engine(absl::StrCat("generate --model ", model_, " --prompt hi --top-p 0"));
  EXPECT_NE(r.rc, 0) << r.out;
}

}  // namespace
}  // namespace stepproof::inference
