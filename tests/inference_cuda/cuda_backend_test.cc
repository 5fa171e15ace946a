// The GPU backend (inference/cuda/cuda_backend.h).
//
// Everywhere: without a usable device OpenCudaBackend returns UNAVAILABLE with
// the probe's reason (what stepproofd reports for --device cuda, and why
// --device auto falls back to the CPU).
//
// With a device (skipped otherwise):
// - the executor's final hidden rows match the CPU engine's on tiny random
//   models of every supported weight type (prefill and decode): atol 2e-3 for
//   F32/F16/BF16; 6e-2 for Q8_0, where the CPU engine quantises activations
//   to 8 bits and the GPU does not;
// - greedy generation with the embedded model gives the CPU backend's
//   tokens. Where they part, the test checks that it is a near-tie: the CPU's
//   logits of the two candidates at that position differ by at most 1e-2
//   (float noise over the model's depth), and compares no further;
// - concurrent requests give exactly the tokens each gives alone: a row's
//   arithmetic does not depend on the other rows of its batch;
// - unsupported weights (Q4_K) are refused with UNIMPLEMENTED naming them.
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "inference/backend.h"
#include "inference/chat_template.h"
#include "inference/cuda/cuda_backend.h"
#include "inference/cuda/device.h"
#include "inference/gguf.h"
#include "inference/gguf_tokenizer.h"
#include "inference/model.h"
#include "tests/inference/test_models.h"

#ifdef STEPPROOF_HAVE_CUDA
#include "inference/cpu_batch_executor.h"
#include "inference/cuda/cuda_executor.h"
#endif

namespace stepproof::inference::cuda {
namespace {

constexpr char kModel[] = "models/stepproof-arith.gguf";

TEST(CudaBackendTest, WithoutADeviceOpeningSaysWhy) {
  absl::StatusOr<CudaDeviceInfo> probe = ProbeCudaDevice();
  if (probe.ok()) GTEST_SKIP() << "a CUDA device is present: " << probe->name;
  absl::StatusOr<std::unique_ptr<Backend>> b = OpenCudaBackend(kModel, CudaBackendOptions{});
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(b.status().message(), probe.status().message());
}

#ifdef STEPPROOF_HAVE_CUDA

class CudaBackendDeviceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<CudaDeviceInfo> device = ProbeCudaDevice();
    if (!device.ok()) GTEST_SKIP() << "no CUDA device: " << device.status().message();
  }
  static std::unique_ptr<Model> Load(const std::string& path) {
    absl::StatusOr<GgufFile> f = GgufFile::Open(path);
    EXPECT_TRUE(f.ok()) << f.status();
    if (!f.ok()) return nullptr;
    absl::StatusOr<std::unique_ptr<Model>> m = Model::Load(*std::move(f), ModelOptions{2, true});
    EXPECT_TRUE(m.ok()) << m.status();
    return m.ok() ? *std::move(m) : nullptr;
  }
  static std::string TinyPath(const char* name) {
    return absl::StrCat(::testing::TempDir(), "/cuda_tiny_", name, "_", getpid(), ".gguf");
  }
};

TEST_F(CudaBackendDeviceTest, ExecutorHiddenRowsMatchTheCpuEngine) {
  struct Case {
    const char* name;
    TensorType type;
    float atol;
  };
  for (const Case& c : {Case{"f32", TensorType::kF32, 2e-3f}, Case{"f16", TensorType::kF16, 2e-3f},
                        Case{"bf16", TensorType::kBF16, 2e-3f}, Case{"q8_0", TensorType::kQ8_0, 6e-2f}}) {
    SCOPED_TRACE(c.name);
    inference::testing::TinyModelSpec spec;
    spec.type = c.type;
    spec.context_length = 64;
    const std::string path = TinyPath(c.name);
    ASSERT_TRUE(inference::testing::TinyModel(spec).WriteFile(path).ok());
    std::unique_ptr<Model> cpu_model = Load(path), gpu_model = Load(path);
    ASSERT_NE(cpu_model, nullptr);
    CpuBatchExecutor cpu(std::move(cpu_model), 2, 64, spec.n_vocab);
    absl::StatusOr<std::unique_ptr<CudaExecutor>> gpu =
        CudaExecutor::Create(*gpu_model, CudaExecutorOptions{2, 64, spec.n_vocab, 64});
    ASSERT_TRUE(gpu.ok()) << gpu.status();
    std::remove(path.c_str());
    const std::vector<int32_t> prompts[] = {{256, 72, 105, 258, 49, 43, 50, 259, 260, 10}, {1, 2, 3}};
    SamplingParams greedy;
    greedy.greedy = true;
    std::vector<DecodeItem> items;
    for (int slot = 0; slot < 2; ++slot) {
      std::vector<float> h_cpu, h_gpu;
      SampledToken t_cpu{}, t_gpu{};
      ASSERT_TRUE(cpu.Prefill(slot, prompts[slot], 0, true, &greedy, &h_cpu, &t_cpu).ok());
      ASSERT_TRUE((*gpu)->Prefill(slot, prompts[slot], 0, true, &greedy, &h_gpu, &t_gpu).ok());
      ASSERT_EQ(h_cpu.size(), h_gpu.size());
      for (size_t i = 0; i < h_cpu.size(); ++i) ASSERT_NEAR(h_gpu[i], h_cpu[i], c.atol) << "prefill row value " << i;
      items.push_back(DecodeItem{slot, t_cpu.id, static_cast<int32_t>(prompts[slot].size()), greedy});
    }
    for (int step = 0; step < 5; ++step) {
      std::vector<float> h_cpu, h_gpu;
      std::vector<SampledToken> t_cpu, t_gpu;
      ASSERT_TRUE(cpu.Decode(items, &h_cpu, &t_cpu).ok());
      ASSERT_TRUE((*gpu)->Decode(items, &h_gpu, &t_gpu).ok());
      ASSERT_EQ(h_cpu.size(), h_gpu.size());
      for (size_t i = 0; i < h_cpu.size(); ++i) ASSERT_NEAR(h_gpu[i], h_cpu[i], c.atol) << "step " << step;
      for (DecodeItem& it : items) {
        it.token = t_cpu[&it - items.data()].id;  // both follow the CPU's tokens
        ++it.position;
      }
    }
  }
}

TEST_F(CudaBackendDeviceTest, RefusesQ4KWeightsByName) {
  inference::testing::TinyModelSpec spec;
  spec.type = TensorType::kQ4_K;
  const std::string path = TinyPath("q4k");
  ASSERT_TRUE(inference::testing::TinyModel(spec).WriteFile(path).ok());
  absl::StatusOr<std::unique_ptr<Backend>> b = OpenCudaBackend(path, CudaBackendOptions{});
  std::remove(path.c_str());
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_NE(b.status().message().find("Q4_K"), std::string::npos) << b.status();
}

std::vector<int32_t> Tokens(Backend& b, const GenerationRequest& r) {
  std::vector<int32_t> ids;
  absl::StatusOr<GenerationResult> res = b.Generate(r, [&](const Step& s) {
    ids.insert(ids.end(), s.token_ids.begin(), s.token_ids.end());
    return absl::OkStatus();
  });
  EXPECT_TRUE(res.ok()) << res.status();
  return ids;
}

TEST_F(CudaBackendDeviceTest, GreedyTokensMatchTheCpuBackendUpToANearTie) {
  absl::StatusOr<std::unique_ptr<Backend>> cpu = OpenCpuBackend(kModel, CpuBackendOptions{2, 256});
  if (!cpu.ok()) GTEST_SKIP() << kModel << ": " << cpu.status();
  CudaBackendOptions o;
  o.context_length = 256;
  o.slots = 4;
  absl::StatusOr<std::unique_ptr<Backend>> gpu = OpenCudaBackend(kModel, o);
  ASSERT_TRUE(gpu.ok()) << gpu.status();
  EXPECT_EQ((*gpu)->device().backend, "cuda");
  std::unique_ptr<Model> model = Load(kModel);
  ASSERT_NE(model, nullptr);
  int identical = 0;
  const char* questions[] = {"12+35", "What is 7*8?", "99-17", "Compute 123+456.", "5*5*5"};
  for (const char* q : questions) {
    GenerationRequest r;
    r.prompt_tokens = (*cpu)->tokenizer().Encode(FormatR1Prompt("", q), true);
    r.sampling.greedy = true;
    r.max_tokens = 80;
    const std::vector<int32_t> want = Tokens(**cpu, r), got = Tokens(**gpu, r);
    size_t p = 0;
    while (p < want.size() && p < got.size() && want[p] == got[p]) ++p;
    if (p == want.size() && p == got.size()) {
      ++identical;
      continue;
    }
    ASSERT_TRUE(p < want.size() && p < got.size()) << q << ": one output is a prefix of the other";
    // A divergence must be a near-tie in the CPU's own logits.
    std::vector<int32_t> seq = r.prompt_tokens;
    seq.insert(seq.end(), want.begin(), want.begin() + p);
    std::vector<int32_t> pos(seq.size());
    for (size_t i = 0; i < pos.size(); ++i) pos[i] = static_cast<int32_t>(i);
    KvCache cache(model->config(), 256);
    ForwardOutput out;
    ASSERT_TRUE(model->Forward(seq, pos, cache, false, &out).ok());
    const float margin = out.logits[want[p]] - out.logits[got[p]];
    EXPECT_LE(margin, 1e-2f) << q << ": GPU and CPU part at generated token " << p << " (cpu " << want[p]
                             << ", gpu " << got[p] << ") with a logit margin of " << margin;
    std::printf("%s: tokens equal up to %zu, then a near-tie (margin %.3g)\n", q, p, margin);
  }
  std::printf("%d of 5 prompts give identical greedy tokens on GPU and CPU\n", identical);
}

TEST_F(CudaBackendDeviceTest, ConcurrentRequestsGiveTheTokensEachGivesAlone) {
  CudaBackendOptions o;
  o.context_length = 256;
  o.slots = 3;
  absl::StatusOr<std::unique_ptr<Backend>> gpu = OpenCudaBackend(kModel, o);
  if (!gpu.ok() && gpu.status().code() == absl::StatusCode::kNotFound) GTEST_SKIP() << gpu.status();
  ASSERT_TRUE(gpu.ok()) << gpu.status();
  const char* questions[] = {"12+35", "What is 7*8?", "99-17", "Compute 123+456.", "5*5*5", "31+11"};
  std::vector<GenerationRequest> requests;
  for (const char* q : questions) {
    GenerationRequest r;
    r.prompt_tokens = (*gpu)->tokenizer().Encode(FormatR1Prompt("", q), true);
    r.sampling = SamplingParams{false, 0.8f, 0.9f, 40, 11};
    r.max_tokens = 60;
    requests.push_back(r);
  }
  std::vector<std::vector<int32_t>> alone;
  for (const GenerationRequest& r : requests) alone.push_back(Tokens(**gpu, r));
  std::vector<std::vector<int32_t>> together(requests.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < requests.size(); ++i) {
    threads.emplace_back([&, i] { together[i] = Tokens(**gpu, requests[i]); });
  }
  for (std::thread& t : threads) t.join();
  for (size_t i = 0; i < requests.size(); ++i) EXPECT_EQ(together[i], alone[i]) << questions[i];
}

#endif  // STEPPROOF_HAVE_CUDA

}  // namespace
}  // namespace stepproof::inference::cuda
