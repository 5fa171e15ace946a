// CUDA engine decode benchmark (issue 5).
//
//  1. The device's copy bandwidth: the best of 10 device-to-device copies of
//     1 GiB, counted as 2 GiB moved (read + write) per copy.
//  2. For BF16 and Q8_0: a model of DeepSeek-R1-Distill-Qwen-1.5B's exact
//     shape (hidden 1536, 28 layers, 12 heads, 2 KV heads, head dim 128, FFN
//     8960, vocab 151936, untied output) with random weights, written into
//     /tmp by this program and deleted afterwards, loaded into a CudaExecutor
//     with as many slots as the largest batch.
//  3. For each batch size: every slot prefilled with a 32-token prompt, then
//     --steps greedy decode steps (each: the forward of all rows, device-side
//     sampling, the hidden rows and tokens copied back), timed on the host
//     (Decode returns after the stream is synchronised).
//
// Reported: tokens/s (batch x steps / time), the weight bytes one step reads
// (every matrix once, one embedding row), those bytes per second, and that as
// a fraction of the copy bandwidth: the batch-1 limit. KV-cache reads (under
// 100 positions here) are not counted. Without a usable device it says why
// and exits 0.
//
//   cuda_decode_bench [--batches=1,8,32] [--types=bf16,q8_0] [--steps=64]

#include <cuda_runtime_api.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "inference/cli/help.h"
#include "inference/cuda/cuda_executor.h"
#include "inference/cuda/device.h"
#include "inference/gguf.h"
#include "inference/gguf_writer.h"
#include "inference/model.h"
#include "inference/tensor_type.h"
#include "tests/inference/test_models.h"

ABSL_FLAG(std::string, batches, "1,8,32", "decode batch sizes");
ABSL_FLAG(std::string, types, "bf16,q8_0", "weight types: bf16, q8_0");
ABSL_FLAG(int32_t, steps, 64, "timed decode steps per batch size");
ABSL_FLAG(std::string, model_dir, "/tmp", "where the random models are written");

namespace stepproof::inference::cuda {
namespace {

using Clock = std::chrono::steady_clock;

double CopyBandwidth() {
  const size_t bytes = size_t{1} << 30;
  void *a = nullptr, *b = nullptr;
  if (cudaMalloc(&a, bytes) != cudaSuccess || cudaMalloc(&b, bytes) != cudaSuccess) return 0;
  cudaMemset(a, 1, bytes);
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  float best_ms = 1e30f;
  for (int i = 0; i < 11; ++i) {
    cudaEventRecord(start);
    cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice);
    cudaEventRecord(stop);
    cudaEventSynchronize(stop);
    float ms = 0;
    cudaEventElapsedTime(&ms, start, stop);
    if (i > 0) best_ms = std::min(best_ms, ms);  // the first is a warm-up
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  cudaFree(a);
  cudaFree(b);
  return 2.0 * static_cast<double>(bytes) / (best_ms * 1e-3);
}

int RunType(const std::string& name, TensorType type, const std::vector<int>& batches, double bandwidth) {
  const std::string path = absl::StrCat(absl::GetFlag(FLAGS_model_dir), "/cuda_bench_", name, "_", getpid(), ".gguf");
  if (absl::Status s = inference::testing::WriteR1Distill15BShape(path, type, /*tokenizer=*/false); !s.ok()) {
    std::fprintf(stderr, "%s: %s\n", path.c_str(), std::string(s.message()).c_str());
    return 1;
  }
  absl::StatusOr<GgufFile> f = GgufFile::Open(path);
  if (!f.ok()) {
    std::fprintf(stderr, "%s\n", std::string(f.status().message()).c_str());
    return 1;
  }
  absl::StatusOr<std::unique_ptr<Model>> model = Model::Load(*std::move(f), ModelOptions{1, true});
  if (!model.ok()) {
    std::fprintf(stderr, "%s\n", std::string(model.status().message()).c_str());
    return 1;
  }
  const int max_batch = *std::max_element(batches.begin(), batches.end());
  const int steps = absl::GetFlag(FLAGS_steps);
  const int prompt = 32;
  CudaExecutorOptions o;
  o.slots = max_batch;
  o.context_length = prompt + steps + 8;
  absl::StatusOr<std::unique_ptr<CudaExecutor>> e = CudaExecutor::Create(**model, o);
  model->reset();
  std::remove(path.c_str());
  if (!e.ok()) {
    std::fprintf(stderr, "%s\n", std::string(e.status().message()).c_str());
    return 1;
  }
  const double bytes = static_cast<double>((*e)->weight_bytes_per_token());
  SamplingParams greedy;
  greedy.greedy = true;
  for (int batch : batches) {
    std::vector<DecodeItem> items;
    std::vector<float> hidden;
    std::vector<SampledToken> sampled;
    for (int s = 0; s < batch; ++s) {
      std::vector<int32_t> tokens(prompt);
      for (int i = 0; i < prompt; ++i) tokens[i] = (s * 7919 + i * 104729) % 151936;
      SampledToken t{};
      if (absl::Status st = (*e)->Prefill(s, tokens, 0, false, &greedy, &hidden, &t); !st.ok()) {
        std::fprintf(stderr, "prefill: %s\n", std::string(st.message()).c_str());
        return 1;
      }
      items.push_back(DecodeItem{s, t.id, prompt, greedy});
    }
    auto step = [&]() -> bool {
      absl::Status st = (*e)->Decode(items, &hidden, &sampled);
      if (!st.ok()) {
        std::fprintf(stderr, "decode: %s\n", std::string(st.message()).c_str());
        return false;
      }
      for (size_t i = 0; i < items.size(); ++i) {
        items[i].token = sampled[i].id;
        ++items[i].position;
      }
      return true;
    };
    if (!step()) return 1;  // warm-up
    const auto t0 = Clock::now();
    for (int i = 0; i < steps; ++i) {
      if (!step()) return 1;
    }
    const double sec = std::chrono::duration<double>(Clock::now() - t0).count();
    const double weight_rate = bytes * steps / sec;
    std::printf("%-5s batch %2d: %9.1f tokens/s  %7.3f ms/step  weights %.3f GB/step  %7.1f GB/s  %5.1f%% of copy bandwidth\n",
                name.c_str(), batch, batch * steps / sec, 1e3 * sec / steps, bytes / 1e9, weight_rate / 1e9,
                100.0 * weight_rate / bandwidth);
    std::fflush(stdout);
  }
  return 0;
}

int Main() {
  absl::StatusOr<CudaDeviceInfo> device = ProbeCudaDevice();
  if (!device.ok()) {
    std::printf("cuda_decode_bench: skipped, %s\n", std::string(device.status().message()).c_str());
    return 0;
  }
  std::vector<int> batches;
  for (absl::string_view b : absl::StrSplit(absl::GetFlag(FLAGS_batches), ',')) {
    int v = 0;
    if (!absl::SimpleAtoi(b, &v) || v < 1) {
      std::fprintf(stderr, "bad --batches entry '%s'\n", std::string(b).c_str());
      return 2;
    }
    batches.push_back(v);
  }
  double load[3] = {0, 0, 0};
  getloadavg(load, 3);
  const double bw = CopyBandwidth();
  std::printf("device: %s (sm_%d), copy bandwidth %.1f GB/s (best of 10 x 1 GiB D2D), host load %.2f\n",
              device->name.c_str(), device->compute_capability, bw / 1e9, load[0]);
  for (absl::string_view t : absl::StrSplit(absl::GetFlag(FLAGS_types), ',')) {
    int rc = 0;
    if (t == "bf16") {
      rc = RunType("bf16", TensorType::kBF16, batches, bw);
    } else if (t == "q8_0") {
      rc = RunType("q8_0", TensorType::kQ8_0, batches, bw);
    } else {
      std::fprintf(stderr, "unknown --types entry '%s' (bf16, q8_0)\n", std::string(t).c_str());
      return 2;
    }
    if (rc != 0) return rc;
  }
  return 0;
}

}  // namespace
}  // namespace stepproof::inference::cuda

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "CUDA decode benchmark at batch 1, 8 and 32 for the DeepSeek-R1-Distill-Qwen-1.5B shape.\n"
      "docs/CUDA.md.");
  if (stepproof::AnswerHelp(argc, argv, "cuda_decode_bench.")) return 0;
  absl::ParseCommandLine(argc, argv);
  return stepproof::inference::cuda::Main();
}
