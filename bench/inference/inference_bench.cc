// CPU engine benchmark.
//
//  1. This machine's read bandwidth: the best of 20 passes summing a
//     512 MiB buffer with all threads (the same pool and static row split the
//     engine uses), for a plain loop and for one with the engine's page-ahead
//     prefetch; the better of the two is the limit.
//  2. The embedded model (models/stepproof-arith.gguf), when present.
//  3. A model of DeepSeek-R1-Distill-Qwen-1.5B's exact shape (hidden 1536, 28
//     layers, 12 heads, 2 KV heads, head dim 128, FFN 8960, vocab 151936,
//     untied output) with random Q8_0 weights (~1.9 GB), written into /tmp by
//     this program and deleted afterwards.
//
// For each model: prefill tokens/s, decode tokens/s, and decode speed as a
// fraction of bandwidth / (bytes of weights read per token), the limit of
// batch-1 decoding. Weights are mmapped; the KV cache holds prompt + decode.
// For the 1.5B shape the bandwidth is measured a second time between its
// decode tokens (one pass after each round of paths), and decode is also
// reported against that in-run limit: this VM's bandwidth drifts by several
// percent over a minute.

#include <unistd.h>

#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "inference/cli/help.h"
#include "inference/cpu_kernels.h"
#include "inference/gguf.h"
#include "inference/gguf_writer.h"
#include "inference/model.h"
#include "inference/thread_pool.h"
#include "tests/inference/test_models.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

ABSL_FLAG(int32_t, threads, 0, "threads, 0 = all cores");
ABSL_FLAG(int32_t, prompt_tokens, 64, "prefill length");
ABSL_FLAG(int32_t, decode_tokens, 32, "decoded tokens");
ABSL_FLAG(std::string, embedded_model, "models/stepproof-arith.gguf", "the embedded model (skipped if absent)");
ABSL_FLAG(std::string, big_model_path, "",
          "where to write the 1.5B-shaped model and keep it (default: a file in /tmp, deleted after); an "
          "existing file there is used as it is");
ABSL_FLAG(bool, compare_chunking, true,
          "1.5B shape: also decode with MatMul's fixed row chunks (the guided chunks' baseline)");
ABSL_FLAG(bool, big, true, "run the DeepSeek-R1-Distill-Qwen-1.5B-shaped model");
ABSL_FLAG(bool, compare_avx512, true,
          "where the CPU has AVX-512 VNNI, decode the big model with the AVX2 Q8_0 kernel and with the VNNI one "
          "(alternate tokens, same run)");
ABSL_FLAG(bool, token_times, false, "also print every decode token's wall and CPU milliseconds, in order");
ABSL_FLAG(int32_t, runs, 1, "measurements of the big model per kernel path");

namespace stepproof::inference {
namespace {

#if defined(__x86_64__)
// `page_prefetch`: also touch the first line of the next 4 KiB page while
// reading this one, as MatMul does (the hardware prefetchers stop at page
// boundaries; docs/PERFORMANCE.md). Without it the plain loop reads slower
// than the engine's own weight streaming, which would understate the limit.
__attribute__((target("avx2"))) uint64_t SumAvx2(const uint8_t* p, size_t n, bool page_prefetch) {
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i + 128 <= n; i += 128) {
    if (page_prefetch && (i & 4095) == 0) _mm_prefetch(reinterpret_cast<const char*>(p + i + 4096), _MM_HINT_T0);
    a0 = _mm256_add_epi64(a0, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i)));
    a1 = _mm256_add_epi64(a1, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 32)));
    a2 = _mm256_add_epi64(a2, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 64)));
    a3 = _mm256_add_epi64(a3, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 96)));
  }
  alignas(32) uint64_t out[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(out),
                     _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3)));
  return out[0] + out[1] + out[2] + out[3];
}
#endif

uint64_t Sum(const uint8_t* p, size_t n, bool avx2, bool page_prefetch) {
#if defined(__x86_64__)
  if (avx2) return SumAvx2(p, n, page_prefetch);
#endif
  (void)avx2;
  (void)page_prefetch;
  uint64_t s = 0;
  for (size_t i = 0; i + 8 <= n; i += 8) {
    uint64_t v;
    std::memcpy(&v, p + i, 8);
    s += v;
  }
  return s;
}

// Read bandwidth: passes of the summing loop (plain, or with the page-ahead
// prefetch) over a 512 MiB buffer (16x the L3) on `pool`'s threads.
class BandwidthProbe {
 public:
  explicit BandwidthProbe(int threads) : pool_(threads), buf_(kBytes), sink_(kBytes / kChunk) {
    for (size_t i = 0; i < kBytes; i += 4096) buf_[i] = static_cast<uint8_t>(i >> 12);
  }
  int threads() const { return pool_.size(); }
  // One pass; bytes/s.
  double Pass(bool page_prefetch) {
    const bool avx2 = CpuSupportsAvx2Fma();
    const absl::Time t0 = absl::Now();
    pool_.ParallelFor(kBytes / kChunk, 1, [&](int64_t b, int64_t e) {
      sink_[b] += Sum(buf_.data() + b * kChunk, (e - b) * kChunk, avx2, page_prefetch);
    });
    return kBytes / absl::ToDoubleSeconds(absl::Now() - t0);
  }
  uint64_t checksum() const { return sink_[0] & 1; }

 private:
  static constexpr size_t kBytes = size_t{1} << 29;
  static constexpr int64_t kChunk = 1 << 20;
  ThreadPool pool_;
  std::vector<uint8_t> buf_;
  std::vector<uint64_t> sink_;
};

// Best-of-20 read bandwidth in bytes/s, the better of the plain loop and the
// loop with the page-ahead prefetch (both printed; they alternate pass by
// pass, so both see the same load).
double ReadBandwidth(BandwidthProbe& probe) {
  double best[2] = {0, 0};
  for (int rep = 0; rep < 40; ++rep) best[rep % 2] = std::max(best[rep % 2], probe.Pass(rep % 2 == 1));
  std::printf("(checksum %llu) plain loop %.2f GB/s, with page-ahead prefetch %.2f GB/s\n",
              static_cast<unsigned long long>(probe.checksum()), best[0] / 1e9, best[1] / 1e9);
  return std::max(best[0], best[1]);
}


double ProcessCpuSeconds() {
  timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

// A decode configuration: the Q8_0 kernel path (AVX2 or AVX-512 VNNI) and
// MatMul's row chunking (guided or fixed; SetGuidedMatMulChunks).
struct DecodePath {
  bool avx512 = true;
  bool guided = true;
  std::string Name() const {
    return absl::StrCat("Q8_0 on ", avx512 ? "avx512vnni" : "avx2", guided ? "" : ", fixed chunks");
  }
};

// Prefill, then decode_tokens tokens per entry of `paths`, interleaved token
// by token so that all paths see the same load; results are bit-identical,
// so the paths share one KV cache.
// With `probe`, one bandwidth pass also runs after every round of decode
// tokens (one per path), so that a second limit is measured in the same
// minute as the decode; the better of those passes is that limit.
int RunModel(const std::string& label, const std::string& path, double bandwidth,
             const std::vector<DecodePath>& paths, BandwidthProbe* probe = nullptr) {
  absl::StatusOr<GgufFile> f = GgufFile::Open(path);
  if (!f.ok()) {
    std::fprintf(stderr, "%s: %s\n", label.c_str(), std::string(f.status().message()).c_str());
    return 1;
  }
  absl::StatusOr<std::unique_ptr<Model>> model =
      Model::Load(*std::move(f), ModelOptions{absl::GetFlag(FLAGS_threads), true});
  if (!model.ok()) {
    std::fprintf(stderr, "%s: %s\n", label.c_str(), std::string(model.status().message()).c_str());
    return 1;
  }
  Model& m = **model;
  const int32_t n_paths = static_cast<int32_t>(paths.size());
  const int32_t n_prompt = std::min(absl::GetFlag(FLAGS_prompt_tokens), m.config().context_length / 2);
  const int32_t n_decode =
      std::min(absl::GetFlag(FLAGS_decode_tokens), (m.config().context_length / 2 - 1) / n_paths);
  KvCache cache(m.config(), n_prompt + n_decode * n_paths + 1);
  std::vector<int32_t> tokens(n_prompt), pos(n_prompt);
  for (int32_t i = 0; i < n_prompt; ++i) {
    tokens[i] = (i * 7919 + 13) % m.config().n_vocab;
    pos[i] = i;
  }
  ForwardOutput out;
  // Warm-up: fault in the mapping (one decode step touches every weight).
  {
    const int32_t t = 1, p = 0;
    if (!m.Forward(absl::MakeConstSpan(&t, 1), absl::MakeConstSpan(&p, 1), cache, false, &out).ok()) return 1;
  }
  const absl::Time t0 = absl::Now();
  for (int32_t b = 0; b < n_prompt; b += 64) {
    const int32_t e = std::min(n_prompt, b + 64);
    if (!m.Forward(absl::MakeConstSpan(tokens).subspan(b, e - b), absl::MakeConstSpan(pos).subspan(b, e - b),
                   cache, false, &out)
             .ok()) {
      return 1;
    }
  }
  const double prefill = n_prompt / absl::ToDoubleSeconds(absl::Now() - t0);
  std::vector<std::vector<double>> token_s(n_paths), cpu_s(n_paths);
  double in_run_bandwidth = 0;
  for (int32_t i = 0; i < n_decode * n_paths; ++i) {
    SetAvx512KernelsAllowed(paths[i % n_paths].avx512);
    SetGuidedMatMulChunks(paths[i % n_paths].guided);
    const int32_t tok = (i * 31 + 7) % m.config().n_vocab, p = n_prompt + i;
    const absl::Time s = absl::Now();
    const double c = ProcessCpuSeconds();
    if (!m.Forward(absl::MakeConstSpan(&tok, 1), absl::MakeConstSpan(&p, 1), cache, false, &out).ok()) return 1;
    cpu_s[i % n_paths].push_back(ProcessCpuSeconds() - c);
    token_s[i % n_paths].push_back(absl::ToDoubleSeconds(absl::Now() - s));
    if (probe != nullptr && i % n_paths == n_paths - 1) {
      in_run_bandwidth = std::max(in_run_bandwidth, probe->Pass((i / n_paths) % 2 == 1));
    }
  }
  SetAvx512KernelsAllowed(true);
  SetGuidedMatMulChunks(true);
  const double bytes = static_cast<double>(m.weight_bytes_per_token());
  const double limit = bandwidth / bytes;
  std::printf("%s\n  %lld params, %.1f MB of weights read per decoded token, %d threads\n", label.c_str(),
              static_cast<long long>(m.n_params()), bytes / 1e6, m.threads());
  std::printf("  prefill: %d tokens at %.2f tokens/s (%s)\n", n_prompt, prefill,
              !m.uses_avx2() ? "portable" : Avx512KernelsEnabled() ? "avx2, avx512vnni for Q8_0" : "avx2");
  const double in_run_limit = in_run_bandwidth / bytes;
  if (probe != nullptr) {
    std::printf("  read bandwidth between the decode tokens (best of %d passes): %.2f GB/s, limit %.2f tokens/s\n",
                n_decode, in_run_bandwidth / 1e9, in_run_limit);
  }
  for (int32_t k = 0; k < n_paths; ++k) {
    std::vector<double>& ts = token_s[k];
    if (absl::GetFlag(FLAGS_token_times)) {
      std::printf("  token wall/CPU ms [%s]:", paths[k].Name().c_str());
      for (size_t j = 0; j < ts.size(); ++j) std::printf(" %.1f/%.1f", 1e3 * ts[j], 1e3 * cpu_s[k][j]);
      std::printf("\n");
    }
    double total = 0, cpu = 0;
    for (double t : ts) total += t;
    for (double t : cpu_s[k]) cpu += t;
    std::sort(ts.begin(), ts.end());
    const double decode = n_decode / total;
    const double median = ts[ts.size() / 2];
    std::printf("  decode [%s]: %d tokens at %.2f tokens/s = %.2f GB/s of weights; bandwidth limit %.2f tokens/s; "
                "%.1f%% of the limit\n",
                !m.uses_avx2()     ? "portable kernels"
                : n_paths == 1     ? "default kernels"
                                   : paths[k].Name().c_str(),
                n_decode, decode, decode * bytes / 1e9, limit, 100.0 * decode / limit);
    std::printf("    median token %.2f tokens/s = %.1f%% of the limit (fastest token %.1f%%); "
                "%.1f ms of CPU per token (%.2f GB/s per CPU-second)\n",
                1.0 / median, 100.0 / median / limit, 100.0 / ts.front() / limit, 1e3 * cpu / n_decode,
                bytes * n_decode / cpu / 1e9);
    if (probe != nullptr) {
      std::printf("    against the bandwidth measured between the decode tokens: %.1f%% of that limit\n",
                  100.0 * decode / in_run_limit);
    }
  }
  return 0;
}

}  // namespace
}  // namespace stepproof::inference

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "CPU engine benchmark: read bandwidth, then prefill and decode of the embedded model and of a\n"
      "DeepSeek-R1-Distill-Qwen-1.5B-shaped model. docs/PERFORMANCE.md, 'Inference (CPU)'.");
  if (stepproof::AnswerHelp(argc, argv, "inference_bench.")) return 0;
  absl::ParseCommandLine(argc, argv);
  using namespace stepproof::inference;
  double load[3] = {0, 0, 0};
  if (getloadavg(load, 3) == 3) std::printf("load average at start: %.2f %.2f %.2f\n", load[0], load[1], load[2]);
  BandwidthProbe probe(absl::GetFlag(FLAGS_threads));
  const double bandwidth = ReadBandwidth(probe);
  std::printf("read bandwidth (%d threads, best of 20 passes over 512 MiB, better loop): %.2f GB/s\n",
              probe.threads(), bandwidth / 1e9);
  int rc = 0;
  const std::string embedded = absl::GetFlag(FLAGS_embedded_model);
  if (access(embedded.c_str(), R_OK) == 0) {
    rc |= RunModel(absl::StrCat("embedded model ", embedded), embedded, bandwidth, {DecodePath{}});
  } else {
    std::printf("embedded model %s: absent, skipped\n", embedded.c_str());
  }
  if (absl::GetFlag(FLAGS_big)) {
    std::string path = absl::GetFlag(FLAGS_big_model_path);
    // A --big_model_path is kept, and used as it is when it exists (to decode
    // from a file that has been in the page cache for a while); the default
    // temporary file is deleted after.
    const bool keep = !path.empty();
    const bool reuse = keep && access(path.c_str(), R_OK) == 0;
    if (path.empty()) path = absl::StrCat("/tmp/stepproof-bench-r1-qwen-1.5b-shape-q8_0-", getpid(), ".gguf");
    if (reuse) {
      std::printf("using the existing %s\n", path.c_str());
    } else {
      const absl::Time t0 = absl::Now();
      absl::Status s =
          stepproof::inference::testing::WriteR1Distill15BShape(path, TensorType::kQ8_0, /*tokenizer=*/false);
      if (!s.ok()) {
        std::fprintf(stderr, "%s\n", std::string(s.message()).c_str());
        std::remove(path.c_str());
        return 1;
      }
      std::printf("wrote %s in %.1f s\n", path.c_str(), absl::ToDoubleSeconds(absl::Now() - t0));
    }
    std::vector<DecodePath> paths = {DecodePath{}};
    if (CpuSupportsAvx512Vnni() && absl::GetFlag(FLAGS_compare_avx512)) paths = {{false, true}, {true, true}};
    if (absl::GetFlag(FLAGS_compare_chunking)) paths.push_back({paths.back().avx512, false});
    for (int32_t r = 0; r < absl::GetFlag(FLAGS_runs); ++r) {
      rc |= RunModel("DeepSeek-R1-Distill-Qwen-1.5B shape, random Q8_0", path, bandwidth, paths, &probe);
    }
    if (!keep) std::remove(path.c_str());
  }
  if (getloadavg(load, 3) == 3) std::printf("load average at end: %.2f %.2f %.2f\n", load[0], load[1], load[2]);
  return rc;
}
