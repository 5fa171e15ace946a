// The cost of execution fingerprints (docs/PERFORMANCE.md, "Fingerprints and
// replay"):
//  - BM_Decode/fingerprint:{0,1}: greedy generation with the embedded model
//    (models/stepproof-arith.gguf), fingerprints off and on; tokens/s. Run
//    with --benchmark_repetitions and compare medians.
//  - BM_ChunkFingerprint/E: one chunk fingerprint (32 rows of E values: top-128
//    selection and interpolation), E = 128 (embedded) and 1536 (R1-Distill-1.5B).
//  - BM_PromptFingerprint/E: a 1024-token prompt's fingerprint.
//  - BM_Generate64 / BM_ReplayPrefill80: on a random Q8_0 model whose
//    weights (~90 MB) do not fit in cache (8 layers, hidden 1024, FFN 2816),
//    generating 64 tokens after a 16-token prompt, against the replay's work
//    for the same trace: one prefill over the 80 positions in chunks of 64
//    with every position's logits and hidden state, the sampler at each
//    generated position and the chunk fingerprints. One thread each, so the
//    CPU time column is the whole cost.

#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "inference/backend.h"
#include "inference/chat_template.h"
#include "inference/fingerprint.h"
#include "inference/gguf.h"
#include "inference/model.h"
#include "inference/sampler.h"
#include "tests/inference/test_models.h"

namespace stepproof::inference {
namespace {

std::vector<float> Rows(int64_t n) {
  std::mt19937 rng(1);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

void BM_ChunkFingerprint(benchmark::State& state) {
  const std::vector<float> rows = Rows(kFingerprintChunkTokens * state.range(0));
  for (auto _ : state) benchmark::DoNotOptimize(MakeChunkFingerprint(rows));
  state.SetItemsProcessed(state.iterations() * kFingerprintChunkTokens);
}
BENCHMARK(BM_ChunkFingerprint)->Arg(128)->Arg(1536)->Unit(benchmark::kMicrosecond);

void BM_PromptFingerprint(benchmark::State& state) {
  const std::vector<float> rows = Rows(1024 * state.range(0));
  for (auto _ : state) benchmark::DoNotOptimize(MakeChunkFingerprint(rows));
}
BENCHMARK(BM_PromptFingerprint)->Arg(128)->Arg(1536)->Unit(benchmark::kMillisecond);

void BM_Decode(benchmark::State& state) {
  static absl::StatusOr<std::unique_ptr<Backend>>* backend =
      new absl::StatusOr<std::unique_ptr<Backend>>(OpenCpuBackend("models/stepproof-arith.gguf", {1, 0}));
  if (!backend->ok()) {
    state.SkipWithError("models/stepproof-arith.gguf does not open (run from the repo root)");
    return;
  }
  Backend& b = ***backend;
  GenerationRequest req;
  req.prompt_tokens = b.tokenizer().Encode(FormatR1Prompt("", "What is 4785 + 8546?"), true);
  req.sampling.greedy = true;
  req.max_tokens = 200;
  req.fingerprint = state.range(0) != 0;
  int64_t tokens = 0;
  double decode_s = 0;
  for (auto _ : state) {
    absl::StatusOr<GenerationResult> r = b.Generate(req, [](const Step&) { return absl::OkStatus(); });
    if (!r.ok()) {
      state.SkipWithError(std::string(r.status().message()).c_str());
      return;
    }
    tokens += r->generated_tokens;
    decode_s += absl::ToDoubleSeconds(r->decode_time);
  }
  state.counters["decode_tok_per_s"] = tokens / decode_s;
  state.SetItemsProcessed(tokens);
}
BENCHMARK(BM_Decode)->ArgName("fingerprint")->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);

const std::string& LargeModelPath() {
  static const std::string* path = [] {
    auto* p = new std::string("/tmp/stepproof_fingerprint_bench_model.gguf");
    if (!testing::TinyModel(testing::Bench8x1024Q8_0Spec()).WriteFile(*p).ok()) p->clear();
    return p;
  }();
  return *path;
}

std::vector<int32_t> LargePrompt() {
  std::vector<int32_t> prompt;
  for (int i = 0; i < 16; ++i) prompt.push_back(40 + 7 * i);
  return prompt;
}

void BM_Generate64(benchmark::State& state) {
  absl::StatusOr<std::unique_ptr<Backend>> b = OpenCpuBackend(LargeModelPath(), {1, 0});
  if (!b.ok()) {
    state.SkipWithError(std::string(b.status().message()).c_str());
    return;
  }
  GenerationRequest req;
  req.prompt_tokens = LargePrompt();
  req.sampling.greedy = true;
  req.max_tokens = 64;
  for (auto _ : state) {
    absl::StatusOr<GenerationResult> r = (*b)->Generate(req, [](const Step&) { return absl::OkStatus(); });
    if (!r.ok() || r->generated_tokens != 64) state.SkipWithError("generation did not give 64 tokens");
  }
}
BENCHMARK(BM_Generate64)->Unit(benchmark::kMillisecond);

void BM_ReplayPrefill80(benchmark::State& state) {
  absl::StatusOr<GgufFile> file = GgufFile::Open(LargeModelPath());
  if (!file.ok()) {
    state.SkipWithError(std::string(file.status().message()).c_str());
    return;
  }
  absl::StatusOr<std::unique_ptr<Model>> model = Model::Load(*std::move(file), ModelOptions{1});
  if (!model.ok()) {
    state.SkipWithError(std::string(model.status().message()).c_str());
    return;
  }
  std::vector<int32_t> seq = LargePrompt();
  for (int i = 0; i < 64; ++i) seq.push_back(50 + i);
  const int64_t n = static_cast<int64_t>(seq.size()), P = 16, E = (*model)->config().n_embd;
  const int32_t V = (*model)->config().n_vocab;
  SamplingParams greedy;
  greedy.greedy = true;
  const Sampler sampler(greedy);
  for (auto _ : state) {
    KvCache cache((*model)->config(), static_cast<int32_t>(n));
    ForwardOutput out;
    std::vector<float> rows;
    for (int64_t begin = 0; begin < n; begin += 64) {
      const int64_t end = std::min<int64_t>(n, begin + 64);
      std::vector<int32_t> pos;
      for (int64_t t = begin; t < end; ++t) pos.push_back(static_cast<int32_t>(t));
      (void)(*model)->Forward(absl::MakeConstSpan(seq.data() + begin, end - begin), pos, cache, true, &out, true);
      for (int64_t t = begin; t < end; ++t) {
        if (t < P - 1) continue;
        benchmark::DoNotOptimize(sampler.Sample(absl::MakeConstSpan(out.logits.data() + (t - begin) * V, V), t + 1));
        rows.insert(rows.end(), out.hidden.begin() + (t - begin) * E, out.hidden.begin() + (t - begin + 1) * E);
        if (static_cast<int64_t>(rows.size()) == kFingerprintChunkTokens * E) {
          benchmark::DoNotOptimize(MakeChunkFingerprint(rows));
          rows.clear();
        }
      }
    }
  }
}
BENCHMARK(BM_ReplayPrefill80)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace stepproof::inference

// BENCHMARK_MAIN, then the large model's temporary file is removed.
int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  std::remove("/tmp/stepproof_fingerprint_bench_model.gguf");
  return 0;
}
