// Backend conformance, end to end on a tiny random model with a byte-level
// tokenizer: streaming steps, stop conditions, request validation, and
// determinism across runs and thread counts. The suite is parameterised over
// backend factories; the CPU backend is the one instance so far (a CUDA
// backend adds itself to kBackends and skips with GTEST_SKIP() without a GPU).

#include <atomic>
#include <functional>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "inference/backend.h"
#include "tests/inference/test_models.h"

namespace stepproof::inference {
namespace {

struct BackendKind {
  const char* name;
  std::function<absl::StatusOr<std::unique_ptr<Backend>>(const std::string& path, int threads)> open;
};

const BackendKind kBackends[] = {
    {"cpu", [](const std::string& path, int threads) { return OpenCpuBackend(path, CpuBackendOptions{threads, 0}); }},
};

class BackendConformanceTest : public ::testing::TestWithParam<BackendKind> {
 protected:
  static void SetUpTestSuite() {
    path_ = new std::string(absl::StrCat(::testing::TempDir(), "/cpu_backend_", getpid(), ".gguf"));
    testing::TinyModelSpec spec;
    spec.type = TensorType::kQ8_0;
    spec.context_length = 96;
    ASSERT_TRUE(testing::TinyModel(spec).WriteFile(*path_).ok());
  }
  static void TearDownTestSuite() {
    std::remove(path_->c_str());
    delete path_;
  }
  std::unique_ptr<Backend> Open(int threads) {
    absl::StatusOr<std::unique_ptr<Backend>> b = GetParam().open(*path_, threads);
    EXPECT_TRUE(b.ok()) << b.status();
    return b.ok() ? *std::move(b) : nullptr;
  }
  static GenerationRequest Greedy(int max_tokens) {
    GenerationRequest r;
    r.prompt_tokens = {256, 72, 105, 258, 49, 43, 50, 259, 260, 10};
    r.sampling.greedy = true;
    r.max_tokens = max_tokens;
    return r;
  }
  // All generated token ids, in order, from the delivered steps.
  static std::vector<int32_t> Collect(Backend& b, const GenerationRequest& r, GenerationResult* result) {
    std::vector<int32_t> ids;
    absl::StatusOr<GenerationResult> res = b.Generate(r, [&](const Step& s) {
      EXPECT_FALSE(s.token_ids.empty());
      EXPECT_EQ(s.token_ids.size(), s.logprobs.size());
      EXPECT_EQ(s.first_token_position, static_cast<int64_t>(ids.size()));
      ids.insert(ids.end(), s.token_ids.begin(), s.token_ids.end());
      return absl::OkStatus();
    });
    EXPECT_TRUE(res.ok()) << res.status();
    if (res.ok() && result != nullptr) *result = *res;
    return ids;
  }
  static std::string* path_;
};
std::string* BackendConformanceTest::path_ = nullptr;

TEST_P(BackendConformanceTest, ReportsModelAndDevice) {
  auto b = Open(2);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->model().architecture, "qwen2");
  EXPECT_EQ(b->model().name, "tiny-test");
  EXPECT_EQ(b->model().weight_type, "Q8_0");
  EXPECT_EQ(b->model().context_length, 96);
  EXPECT_GT(b->model().n_params, 1000000);
  EXPECT_EQ(b->device().backend, GetParam().name);
  EXPECT_NE(b->device().device.find("2 threads"), std::string::npos);
  EXPECT_EQ(b->tokenizer().eos_id(), 257);
}

TEST_P(BackendConformanceTest, GreedyGenerationIsIdenticalAcrossRunsAndThreadCounts) {
  auto b1 = Open(1);
  ASSERT_NE(b1, nullptr);
  GenerationResult r1;
  const std::vector<int32_t> first = Collect(*b1, Greedy(40), &r1);
  EXPECT_EQ(Collect(*b1, Greedy(40), nullptr), first);  // the cache is reset between requests
  for (int threads : {2, 3}) {
    auto b = Open(threads);
    ASSERT_NE(b, nullptr);
    EXPECT_EQ(Collect(*b, Greedy(40), nullptr), first) << threads << " threads";
  }
  EXPECT_EQ(r1.prompt_tokens, 10);
  if (r1.finish == FinishReason::kMaxTokens) {
    EXPECT_EQ(r1.generated_tokens, 40);
    EXPECT_EQ(first.size(), 40u);
  } else {
    EXPECT_EQ(r1.finish, FinishReason::kEndOfSequence);
    EXPECT_EQ(first.size() + 1, static_cast<size_t>(r1.generated_tokens));  // EOS is not in a step
  }
}

TEST_P(BackendConformanceTest, SeededSamplingIsReproducible) {
  auto b = Open(2);
  ASSERT_NE(b, nullptr);
  GenerationRequest r = Greedy(30);
  r.sampling.greedy = false;
  r.sampling.temperature = 1.5f;
  r.sampling.top_p = 1.0f;
  r.sampling.seed = 42;
  const std::vector<int32_t> a = Collect(*b, r, nullptr);
  EXPECT_EQ(Collect(*b, r, nullptr), a);
  r.sampling.seed = 43;
  EXPECT_NE(Collect(*b, r, nullptr), a);
}

TEST_P(BackendConformanceTest, StopsAtMaxTokensAndContextEnd) {
  auto b = Open(2);
  ASSERT_NE(b, nullptr);
  GenerationRequest r = Greedy(5);
  r.sampling.greedy = false;
  r.sampling.temperature = 2.0f;
  r.sampling.top_p = 1.0f;
  // Find a seed that does not end early.
  GenerationResult res;
  Collect(*b, r, &res);
  if (res.finish == FinishReason::kMaxTokens) {
    EXPECT_EQ(res.generated_tokens, 5);
  }
  r.max_tokens = 1000;
  r.prompt_tokens.assign(90, 65);
  Collect(*b, r, &res);
  if (res.finish == FinishReason::kContextFull) {
    EXPECT_EQ(res.prompt_tokens + res.generated_tokens, 96);
  } else {
    EXPECT_EQ(res.finish, FinishReason::kEndOfSequence);
  }
}

TEST_P(BackendConformanceTest, CancellationAndDeadlineEndNormallyAfterDeliveringSteps) {
  auto b = Open(2);
  ASSERT_NE(b, nullptr);
  GenerationRequest r = Greedy(60);
  std::atomic<int> polls{0};
  r.is_cancelled = [&polls] { return ++polls > 8; };
  GenerationResult res;
  Collect(*b, r, &res);
  EXPECT_EQ(res.finish, FinishReason::kCancelled);
  EXPECT_LT(res.generated_tokens, 60);

  r = Greedy(60);
  r.deadline = absl::Now() - absl::Seconds(1);
  Collect(*b, r, &res);
  EXPECT_EQ(res.finish, FinishReason::kDeadline);
}

TEST_P(BackendConformanceTest, RejectsBadRequests) {
  auto b = Open(1);
  ASSERT_NE(b, nullptr);
  auto sink = [](const Step&) { return absl::OkStatus(); };
  GenerationRequest r = Greedy(4);
  r.prompt_tokens.clear();
  EXPECT_EQ(b->Generate(r, sink).status().code(), absl::StatusCode::kInvalidArgument);
  r = Greedy(4);
  r.prompt_tokens.push_back(300);  // vocabulary is 300
  EXPECT_EQ(b->Generate(r, sink).status().code(), absl::StatusCode::kInvalidArgument);
  r = Greedy(4);
  r.prompt_tokens.assign(96, 65);
  EXPECT_EQ(b->Generate(r, sink).status().code(), absl::StatusCode::kInvalidArgument);
  r = Greedy(0);
  EXPECT_EQ(b->Generate(r, sink).status().code(), absl::StatusCode::kInvalidArgument);
  r = Greedy(4);
  r.sampling.greedy = false;
  r.sampling.top_p = 0.0f;
  EXPECT_EQ(b->Generate(r, sink).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_P(BackendConformanceTest, SinkErrorStopsGeneration) {
  auto b = Open(1);
  ASSERT_NE(b, nullptr);
  int calls = 0;
  GenerationRequest r = Greedy(60);
  r.sampling.greedy = false;
  r.sampling.temperature = 1.0f;
  absl::StatusOr<GenerationResult> res = b->Generate(r, [&calls](const Step&) {
    ++calls;
    return absl::AbortedError("client went away");
  });
  if (calls > 0) {
    EXPECT_EQ(calls, 1);
    EXPECT_EQ(res.status().code(), absl::StatusCode::kAborted);
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, BackendConformanceTest, ::testing::ValuesIn(kBackends),
                         [](const ::testing::TestParamInfo<BackendKind>& info) { return std::string(info.param.name); });

TEST(OpenCpuBackendTest, RefusesContextsTooLongOrTooBigForMemory) {
  const std::string path = absl::StrCat(::testing::TempDir(), "/huge_ctx_", getpid(), ".gguf");
  testing::TinyModelSpec spec;
  spec.context_length = 1 << 30;
  ASSERT_TRUE(testing::TinyModel(spec).WriteFile(path).ok());
  // 2 layers x 2^30 positions x 128 floats x 2 (K, V): 2 TiB.
  EXPECT_EQ(OpenCpuBackend(path, CpuBackendOptions{1, 1 << 30}).status().code(),
            absl::StatusCode::kResourceExhausted);
  absl::StatusOr<std::unique_ptr<Backend>> capped = OpenCpuBackend(path, CpuBackendOptions{1, 0});
  ASSERT_TRUE(capped.ok()) << capped.status();
  EXPECT_EQ((*capped)->model().context_length, 4096);  // the default cap
  spec.context_length = 64;
  ASSERT_TRUE(testing::TinyModel(spec).WriteFile(path).ok());
  EXPECT_EQ(OpenCpuBackend(path, CpuBackendOptions{1, 65}).status().code(), absl::StatusCode::kInvalidArgument);
  std::remove(path.c_str());
}

TEST(OpenCpuBackendTest, ReportsMissingAndNonModelFiles) {
  EXPECT_EQ(OpenCpuBackend("/nonexistent/model.gguf", {}).status().code(), absl::StatusCode::kNotFound);
  const std::string path = absl::StrCat(::testing::TempDir(), "/not_gguf_", getpid());
  FILE* f = std::fopen(path.c_str(), "wb");
  std::fputs("hello, not a model", f);
  std::fclose(f);
  EXPECT_EQ(OpenCpuBackend(path, {}).status().code(), absl::StatusCode::kInvalidArgument);
  std::remove(path.c_str());
}

}  // namespace
}  // namespace stepproof::inference
