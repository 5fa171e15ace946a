// Replay vs generation, same traces, same run (docs/PERFORMANCE.md,
// "Fingerprints and replay"; docs/REPLAY.md).
//
// For each model: generates --traces honest traces with the CPU engine
// (one thread; a quarter greedy, the rest sampled at temperature 0.8, top-p
// 0.95), builds the step records the service would commit, then replays
// every trace with clients/replay's ReplayTrace (one thread) and checks that
// each is VERIFIED. Reports process CPU time (one thread, so robust to other
// load on the machine) and wall time of
//   generation   prefill + token-by-token decode (Backend::Generate),
//   replay       everything ReplayTrace does: model digest, model and
//                tokenizer load, the one prefill, token and fingerprint checks,
//                re-segmentation,
//   replay prefill  the prefill + checks part alone (ReplayReport::prefill_time,
//                wall),
//   replay with the model hashed and loaded once (LoadReplayModel, then
//                ReplayTrace per trace: what an audit of many traces pays),
// and the ratios generation / replay.
//
// Models: the embedded model (models/stepproof-arith.gguf, F32), its Q8_0
// copy (written to /tmp), and --large: a random Q8_0 model of 8 layers,
// hidden 1024, FFN 2816 (~90 MB; 16-token prompt, 64 generated tokens), and
// --r1_shape: a random Q8_0 model of DeepSeek-R1-Distill-Qwen-1.5B's exact
// shape (~1.9 GB, written to /tmp; --r1_traces traces of a 16-token prompt and
// --r1_tokens generated tokens; run it with --threads 2, as a server would).
//
//   build/bench/replay_bench [--traces 40] [--large] [--threads 1] [--compare_kernels]
//   build/bench/replay_bench --only_r1_shape --threads 2 [--r1_traces 4] [--r1_tokens 64]
//   (--compare_kernels: the whole measurement with the multi-token kernels
//   off (the engine before inference/cpu_gemm), AVX2 and AVX-512, in one run.)
//   (--greedy: every trace greedy instead of a quarter.)
//   (--replay_passes N repeats the replays N more times, unmeasured, for a
//   profiler.)

#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "clients/replay/replay.h"
#include "inference/backend.h"
#include "inference/cpu_gemm.h"
#include "inference/chat_template.h"
#include "inference/gguf.h"
#include "inference/gguf_writer.h"
#include "merkle/hash.h"
#include "provenance/step_record.h"
#include "provenance/trace_header.h"
#include "tests/fingerprint/make_trace.h"
#include "tests/inference/test_models.h"

namespace stepproof {
namespace {

namespace inf = stepproof::inference;
namespace prov = stepproof::provenance;

double CpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// A copy of `src` with every 2-D matrix (cols % 32 == 0) stored as `type`.
absl::Status QuantizedCopy(const std::string& src, const std::string& dst, inf::TensorType type) {
  absl::StatusOr<inf::GgufFile> file = inf::GgufFile::Open(src);
  if (!file.ok()) return file.status();
  inf::GgufWriter w;
  if (absl::Status st = w.CopyMetadata(*file); !st.ok()) return st;
  for (const inf::GgufTensor& t : file->tensors()) {
    if (t.ne.size() != 2 || t.ne[0] % 32 != 0) {
      w.AddTensor(t.name, t.type, t.ne, std::string(reinterpret_cast<const char*>(t.data), t.n_bytes));
      continue;
    }
    std::vector<float> f(t.n_elements);
    inf::DequantizeRow(t.type, t.data, f.data(), t.n_elements);
    w.AddTensorFromFloats(t.name, type, t.ne, f);
  }
  return w.WriteFile(dst);
}

using ::stepproof::testing::MadeTrace;

struct Prompt {
  std::string text;
  std::vector<int32_t> tokens;  // empty: tokenise the text
};

// Extra passes over the replays after the measured one (for profilers).
int g_replay_passes = 0;
// --greedy: every trace greedy (default: a quarter greedy, the rest sampled).
bool g_greedy_only = false;

int RunModel(const std::string& label, const std::string& path, const std::vector<Prompt>& prompts, int max_tokens,
             int threads) {
  absl::StatusOr<std::unique_ptr<inf::Backend>> backend = inf::OpenCpuBackend(path, {threads, 0});
  if (!backend.ok()) {
    std::fprintf(stderr, "%s: %s\n", path.c_str(), std::string(backend.status().message()).c_str());
    return 1;
  }
  absl::StatusOr<merkle::Hash> digest = clients::ModelFileDigest(path);
  if (!digest.ok()) {
    std::fprintf(stderr, "%s: %s\n", path.c_str(), std::string(digest.status().message()).c_str());
    return 1;
  }
  std::mt19937 rng(2026);
  std::vector<MadeTrace> traces;
  int64_t tokens = 0;
  const double gen_cpu0 = CpuSeconds();
  const absl::Time gen_wall0 = absl::Now();
  for (size_t i = 0; i < prompts.size(); ++i) {
    inf::SamplingParams p;
    if (g_greedy_only || i % 4 == 0) {
      p.greedy = true;
    } else {
      p.temperature = 0.8f;
      p.top_p = 0.95f;
      p.seed = rng();
    }
    absl::StatusOr<MadeTrace> t = ::stepproof::testing::MakeTrace(
        **backend, *digest, "bench", prompts[i].text, prompts[i].tokens.empty() ? nullptr : &prompts[i].tokens, p,
        max_tokens);
    if (!t.ok()) {
      std::fprintf(stderr, "generation failed: %s\n", std::string(t.status().message()).c_str());
      return 1;
    }
    tokens += t->result.generated_tokens;
    traces.push_back(*std::move(t));
  }
  const double gen_cpu = CpuSeconds() - gen_cpu0;
  const double gen_wall = absl::ToDoubleSeconds(absl::Now() - gen_wall0);

  clients::ReplayOptions options;
  options.threads = threads;
  double prefill_wall = 0, digest_wall = 0;
  int verified = 0;
  const double rep_cpu0 = CpuSeconds();
  const absl::Time rep_wall0 = absl::Now();
  for (const MadeTrace& t : traces) {
    absl::StatusOr<clients::ReplayReport> r = clients::ReplayTrace(t.records, path, options);
    if (!r.ok()) {
      std::fprintf(stderr, "replay failed: %s\n", std::string(r.status().message()).c_str());
      return 1;
    }
    if (r->verified) {
      ++verified;
    } else {
      std::fprintf(stderr, "%s", clients::FormatReplayReport(*r).c_str());
    }
    prefill_wall += absl::ToDoubleSeconds(r->prefill_time);
    digest_wall += absl::ToDoubleSeconds(r->digest_time);
  }
  const double rep_cpu = CpuSeconds() - rep_cpu0;
  const double rep_wall = absl::ToDoubleSeconds(absl::Now() - rep_wall0);
  // The same replays against a model hashed and loaded once (LoadReplayModel).
  const double load_cpu0 = CpuSeconds();
  absl::StatusOr<std::unique_ptr<clients::ReplayModel>> loaded = clients::LoadReplayModel(path, options);
  if (!loaded.ok()) {
    std::fprintf(stderr, "%s\n", std::string(loaded.status().message()).c_str());
    return 1;
  }
  const double load_cpu = CpuSeconds() - load_cpu0;
  int verified_loaded = 0;
  const double once_cpu0 = CpuSeconds();
  const absl::Time once_wall0 = absl::Now();
  for (const MadeTrace& t : traces) {
    absl::StatusOr<clients::ReplayReport> r = clients::ReplayTrace(t.records, **loaded, options);
    verified_loaded += r.ok() && r->verified;
  }
  const double once_cpu = CpuSeconds() - once_cpu0;
  const double once_wall = absl::ToDoubleSeconds(absl::Now() - once_wall0);
  for (int pass = 0; pass < g_replay_passes; ++pass) {
    for (const MadeTrace& t : traces) (void)clients::ReplayTrace(t.records, **loaded, options);
  }
  std::printf("%s: %zu traces, %lld generated tokens, %d/%zu verified\n", label.c_str(), traces.size(),
              static_cast<long long>(tokens), verified, traces.size());
  std::printf("  generation      %8.3f s CPU  %8.3f s wall  (%.0f tokens/CPU-s)\n", gen_cpu, gen_wall,
              tokens / gen_cpu);
  std::printf("  replay (all)    %8.3f s CPU  %8.3f s wall  (digest %.3f s wall)   generation/replay %.2fx CPU, "
              "%.2fx wall\n",
              rep_cpu, rep_wall, digest_wall, gen_cpu / rep_cpu, gen_wall / rep_wall);
  std::printf("  replay prefill                 %8.3f s wall                        generation/prefill %.2fx wall\n",
              prefill_wall, gen_wall / prefill_wall);
  std::printf("  replay (model hashed and loaded once: %.3f s CPU)  %8.3f s CPU  %8.3f s wall   generation/replay "
              "%.2fx CPU, %.2fx wall (%d/%zu verified)\n",
              load_cpu, once_cpu, once_wall, gen_cpu / once_cpu, gen_wall / once_wall, verified_loaded, traces.size());
  return verified == static_cast<int>(traces.size()) && verified_loaded == verified ? 0 : 1;
}

}  // namespace
}  // namespace stepproof

int main(int argc, char** argv) {
  namespace inf = stepproof::inference;
  int n_traces = 40, threads = 1;
  bool large = false, only_large = false, r1 = false, only_r1 = false;
  int r1_traces = 4, r1_tokens = 64;
  // Multi-token kernel caps to compare in this run (none = the per-row dots
  // and per-(token, head) attention the engine had before cpu_gemm).
  std::vector<inf::GemmIsa> caps = {inf::GemmIsa::kAvx512};
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--traces" && i + 1 < argc) {
      n_traces = std::atoi(argv[++i]);
    } else if (a == "--threads" && i + 1 < argc) {
      threads = std::atoi(argv[++i]);
    } else if (a == "--replay_passes" && i + 1 < argc) {
      stepproof::g_replay_passes = std::atoi(argv[++i]);
    } else if (a == "--greedy") {
      stepproof::g_greedy_only = true;
    } else if (a == "--compare_kernels") {
      caps = {inf::GemmIsa::kNone, inf::GemmIsa::kAvx2, inf::GemmIsa::kAvx512};
    } else if (a == "--large") {
      large = true;
    } else if (a == "--only_large") {
      large = only_large = true;
    } else if (a == "--r1_shape") {
      r1 = true;
    } else if (a == "--only_r1_shape") {
      r1 = only_r1 = true;
    } else if (a == "--r1_traces" && i + 1 < argc) {
      r1_traces = std::max(1, std::atoi(argv[++i]));
    } else if (a == "--r1_tokens" && i + 1 < argc) {
      r1_tokens = std::max(1, std::atoi(argv[++i]));
    } else {
      const bool help = a == "--help" || a == "-h";
      std::fprintf(help ? stdout : stderr,
                   "usage: %s [--traces N] [--threads N] [--large | --only_large] [--r1_shape | --only_r1_shape]\n"
                   "          [--r1_traces N] [--r1_tokens N] [--greedy] [--compare_kernels] [--replay_passes N]\n"
                   "Replay vs generation on the same traces (docs/PERFORMANCE.md, 'Fingerprints and replay').\n",
                   argv[0]);
      return help ? 0 : 2;
    }
  }
  int rc = 0;
  for (inf::GemmIsa cap : caps) {
    inf::SetMaxGemmIsa(cap);
    std::printf("== multi-token kernels: %s\n", inf::GemmIsaName(inf::SelectGemmIsa(true)));
    const std::string embedded = "models/stepproof-arith.gguf";
    if (!only_large && !only_r1) {
      std::mt19937 rng(7);
      std::uniform_int_distribution<int> num(10, 9999);
      std::vector<stepproof::Prompt> prompts;
      for (int i = 0; i < n_traces; ++i) {
        prompts.push_back({inf::FormatR1Prompt("", absl::StrCat("What is ", num(rng), " + ", num(rng), "?")), {}});
      }
      rc |= stepproof::RunModel("embedded model, F32", embedded, prompts, 240, threads);
      const std::string q8 = absl::StrCat("/tmp/stepproof_replay_bench_q8_0_", getpid(), ".gguf");
      if (absl::Status s = stepproof::QuantizedCopy(embedded, q8, inf::TensorType::kQ8_0); !s.ok()) {
        std::fprintf(stderr, "%s\n", std::string(s.message()).c_str());
        return 1;
      }
      rc |= stepproof::RunModel("embedded model, Q8_0 copy", q8, prompts, 240, threads);
      std::remove(q8.c_str());
    }
    if (large && !only_r1) {
      const std::string path = absl::StrCat("/tmp/stepproof_replay_bench_large_", getpid(), ".gguf");
      if (!inf::testing::TinyModel(inf::testing::Bench8x1024Q8_0Spec()).WriteFile(path).ok()) return 1;
      std::vector<stepproof::Prompt> prompts;
      for (int i = 0; i < std::max(1, n_traces / 8); ++i) {
        prompts.push_back({absl::StrCat("sixteen bytes ", 10 + i), {}});
      }
      rc |= stepproof::RunModel("random Q8_0 model, 8 x 1024", path, prompts, 64, threads);
      std::remove(path.c_str());
    }
    if (r1) {
      const std::string path = absl::StrCat("/tmp/stepproof_replay_bench_r1_", getpid(), ".gguf");
      std::printf("writing the DeepSeek-R1-Distill-Qwen-1.5B-shaped Q8_0 model to %s ...\n", path.c_str());
      std::fflush(stdout);
      if (absl::Status s = inf::testing::WriteR1Distill15BShape(path, inf::TensorType::kQ8_0, /*tokenizer=*/true);
          !s.ok()) {
        std::fprintf(stderr, "%s\n", std::string(s.message()).c_str());
        std::remove(path.c_str());
        return 1;
      }
      std::vector<stepproof::Prompt> prompts;
      for (int i = 0; i < r1_traces; ++i) prompts.push_back({absl::StrCat("sixteen bytes ", 10 + i), {}});
      rc |= stepproof::RunModel("random Q8_0 model, DeepSeek-R1-Distill-Qwen-1.5B shape", path, prompts, r1_tokens,
                                threads);
      std::remove(path.c_str());
    }
  }
  return rc;
}
