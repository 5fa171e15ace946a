// The cost of execution fingerprints (docs/PERFORMANCE.md, "Fingerprints and
// replay"):
//  - BM_Decode/fingerprint:{0,1}: greedy generation with the embedded model
//    (models/stepproof-arith.gguf), fingerprints off and on; tokens/s. Run
//    with --benchmark_repetitions and compare medians.
//  - BM_ChunkFingerprint/E: one chunk fingerprint (32 rows of E values: top-128
//    selection and interpolation), E = 128 (embedded) and 1536 (R1-Distill-1.5B).
//  - BM_PromptFingerprint/E: a 1024-token prompt's fingerprint.

#include <random>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "inference/backend.h"
#include "inference/chat_template.h"
#include "inference/fingerprint.h"

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

}  // namespace
}  // namespace stepproof::inference

BENCHMARK_MAIN();
