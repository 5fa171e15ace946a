// provenance_overhead_bench: what the provenance layer costs per generation,
// in process, on the same prompts, greedy, the same tokens.
//
//   backend      inference::OpenCpuBackend + Generate with a no-op sink (the
//                prompt templated and tokenised as the service does)
//   memory       TraceGenerator over a Ledger on the in-memory store: step
//                records, hashing, Ed25519 signatures, sequencing; no storage
//   sqlite-shm   TraceGenerator, SQLite Ledger on /dev/shm (tmpfs: the SQL
//                work without waiting for a disk)
//   sqlite-disk  TraceGenerator, SQLite Ledger in a temp dir on disk: what
//                stepproofd does (synchronous=FULL, one fsync per commit)
//
// The variants run interleaved, repetition by repetition, so load changes on
// a shared machine hit them alike; each is reported by its median
// repetition. Every provenance variant must produce exactly the backend's
// tokens (checked per prompt). Also reported: Ed25519 signing alone, and the
// commits per generation. docs/PERFORMANCE.md, "Service under load".
//
// Two measurements:
//   (a) single stream: the prompts one after another (latency per
//       generation), every variant above;
//   (b) batch: --batch_prompts prompts run by --concurrency threads at once
//       (as concurrent Generate streams would), end-to-end time of the whole
//       batch, for backend, memory and sqlite-disk. The engine serialises
//       generations; the provenance work of one generation (on its caller's
//       thread) overlaps the engine's work on the next.
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <thread>
#include <array>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "inference/backend.h"
#include "inference/chat_template.h"
#include "inference/cli/help.h"
#include "provenance/log/ledger.h"
#include "provenance/log/memory_store.h"
#include "provenance/log/sqlite_store.h"
#include "provenance/signer.h"
#include "services/generation.h"
#include "services/model_identity.h"

ABSL_FLAG(std::string, model, "models/stepproof-arith.gguf", "GGUF model (default: the embedded one's source)");
ABSL_FLAG(int, prompts, 40, "prompts per repetition (\"What is A + B?\", fixed)");
ABSL_FLAG(int, repetitions, 5, "repetitions of every variant (interleaved)");
ABSL_FLAG(int, max_tokens, 256, "generated-token budget per prompt");
ABSL_FLAG(int, threads, 1, "engine threads");
ABSL_FLAG(std::string, profile_variant, "",
          "run only this single-stream variant (backend, memory, sqlite-shm, sqlite-disk), "
          "without the warm-up or a report: for callgrind/perf");
ABSL_FLAG(int, profile_concurrency, 1,
          "with --profile_variant: run its prompts from this many concurrent streams, as (b) does");
ABSL_FLAG(int, concurrency, 8, "(b): concurrent streams; 0 skips (b)");
ABSL_FLAG(int, batch_prompts, 64, "(b): prompts per batch");
ABSL_FLAG(std::string, disk_dir, "/tmp", "parent folder of the on-disk SQLite ledger");
ABSL_FLAG(std::string, shm_dir, "/dev/shm", "parent folder of the tmpfs SQLite ledger");

namespace stepproof {
namespace {

namespace prov = ::stepproof::provenance;
namespace svc = ::stepproof::service;
namespace inf = ::stepproof::inference;

// CPU time of the whole process (every thread: the engine's, the caller's and
// the sequencer's), which the load of a shared machine disturbs far less than
// wall time.
double ProcessCpuMs() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

struct RunResult {
  absl::Duration time;
  double cpu_ms = 0;
  std::vector<std::vector<int32_t>> tokens;  // per prompt, every generated token
  int64_t commits = 0;                       // header + steps + seal, all prompts
};

// A fresh SQLite ledger store in `dir` (created); errors name the path.
absl::StatusOr<std::unique_ptr<prov::ProvenanceStore>> OpenStoreIn(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", dir, ": ", ec.message()));
  return prov::OpenSqliteProvenanceStore(dir + "/stepproof.db");
}

std::vector<std::string> Prompts(int n) {
  std::vector<std::string> out;
  uint32_t x = 12345;
  for (int i = 0; i < n; ++i) {
    x = x * 1103515245 + 12345;
    const int a = (x >> 8) % 1000;
    x = x * 1103515245 + 12345;
    const int b = (x >> 8) % 1000;
    out.push_back(absl::StrCat("What is ", a, " + ", b, "?"));
  }
  return out;
}

// Runs one(i) for every prompt i, from `concurrency` threads (1: in order on
// this thread), and times the whole. The first error is returned.
absl::Status RunAll(size_t n, int concurrency,
                    const std::function<absl::Status(size_t)>& one) {
  if (concurrency <= 1) {
    for (size_t i = 0; i < n; ++i) {
      if (absl::Status s = one(i); !s.ok()) return s;
    }
    return absl::OkStatus();
  }
  std::atomic<size_t> next{0};
  std::vector<absl::Status> status(concurrency);
  std::vector<std::thread> pool;
  for (int t = 0; t < concurrency; ++t) {
    pool.emplace_back([&, t] {
      for (size_t i = next++; i < n && status[t].ok(); i = next++) status[t] = one(i);
    });
  }
  for (std::thread& t : pool) t.join();
  for (const absl::Status& s : status) {
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::StatusOr<RunResult> RunBackend(inf::Backend& backend, const std::vector<std::string>& prompts,
                                     int max_tokens, int concurrency = 1) {
  RunResult r;
  r.tokens.resize(prompts.size());
  const double cpu_begin = ProcessCpuMs();
  const absl::Time begin = absl::Now();
  absl::Status s = RunAll(prompts.size(), concurrency, [&](size_t i) -> absl::Status {
    inf::GenerationRequest req;
    req.prompt_tokens = backend.tokenizer().Encode(inf::FormatR1Prompt("", prompts[i]), true);
    req.sampling.greedy = true;
    req.max_tokens = max_tokens;
    std::vector<int32_t> tokens;
    absl::StatusOr<inf::GenerationResult> g =
        backend.Generate(req, [&](const inf::Step& s) -> absl::Status {
          tokens.insert(tokens.end(), s.token_ids.begin(), s.token_ids.end());
          return absl::OkStatus();
        });
    if (!g.ok()) return g.status();
    r.tokens[i] = std::move(tokens);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  r.time = absl::Now() - begin;
  r.cpu_ms = ProcessCpuMs() - cpu_begin;
  return r;
}

absl::StatusOr<RunResult> RunTraced(inf::Backend& backend, const svc::ModelIdentity& identity,
                                    const prov::Signer& signer,
                                    std::unique_ptr<prov::ProvenanceStore> store,
                                    const std::vector<std::string>& prompts, int max_tokens,
                                    int concurrency = 1) {
  prov::LedgerOptions lo;
  lo.log_origin = "bench.stepproof/log";
  absl::StatusOr<std::unique_ptr<prov::Ledger>> ledger =
      prov::Ledger::Open(std::move(store), &signer, lo);
  if (!ledger.ok()) return ledger.status();
  svc::TraceGeneratorOptions go;
  go.max_tokens = max_tokens;
  go.max_concurrent = std::max(concurrency, 1);
  svc::TraceGenerator generator(&backend, ledger->get(), &signer, identity, go);
  RunResult r;
  r.tokens.resize(prompts.size());
  std::atomic<int64_t> commits{0};
  const double cpu_begin = ProcessCpuMs();
  const absl::Time begin = absl::Now();
  absl::Status status = RunAll(prompts.size(), concurrency, [&](size_t i) -> absl::Status {
    svc::GenerateParams params;
    params.prompt = prompts[i];
    params.greedy = true;
    params.seed = 1;
    std::vector<int32_t> tokens;
    svc::TraceEvents events;
    events.on_step = [&](const svc::StepCommittedEvent& e) -> absl::Status {
      tokens.insert(tokens.end(), e.record.token_ids.begin(), e.record.token_ids.end());
      return absl::OkStatus();
    };
    absl::StatusOr<svc::TraceSealedEvent> sealed = generator.Generate(params, events);
    if (!sealed.ok()) return sealed.status();
    commits += static_cast<int64_t>(sealed->sealed.size) + 1;  // leaves + seal
    r.tokens[i] = std::move(tokens);
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  r.commits = commits;
  r.time = absl::Now() - begin;
  r.cpu_ms = ProcessCpuMs() - cpu_begin;
  // The sequencer's batch (after the timed part: the service does it in the
  // background, off the request path) is flushed by the ledger's destructor.
  return r;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double ReadLoad() {
  double load = -1;
  if (FILE* f = std::fopen("/proc/loadavg", "r")) {
    if (std::fscanf(f, "%lf", &load) != 1) load = -1;
    std::fclose(f);
  }
  return load;
}

int Main() {
  const std::string model = absl::GetFlag(FLAGS_model);
  const std::vector<std::string> prompts = Prompts(absl::GetFlag(FLAGS_prompts));
  const int max_tokens = absl::GetFlag(FLAGS_max_tokens);
  inf::CpuBackendOptions bo;
  bo.threads = absl::GetFlag(FLAGS_threads);
  absl::StatusOr<std::unique_ptr<inf::Backend>> backend = inf::OpenCpuBackend(model, bo);
  if (!backend.ok()) {
    std::fprintf(stderr, "provenance_overhead_bench: %s: %s\n", model.c_str(),
                 std::string(backend.status().message()).c_str());
    return 1;
  }
  absl::StatusOr<svc::ModelIdentity> identity = svc::ReadModelIdentity(model);
  if (!identity.ok()) {
    std::fprintf(stderr, "provenance_overhead_bench: %s\n",
                 std::string(identity.status().message()).c_str());
    return 1;
  }
  std::array<uint8_t, 32> seed;
  seed.fill(7);
  absl::StatusOr<prov::Signer> signer = prov::Signer::FromSeed("bench.stepproof/log", seed);
  if (!signer.ok()) return 1;

  const std::string tag = absl::StrCat("stepproof_overhead_", getpid());
  const std::vector<std::string> names = {"backend", "memory", "sqlite-shm", "sqlite-disk"};
  std::vector<std::vector<double>> ms(names.size()), cpu(names.size());
  std::vector<int64_t> commits(names.size(), 0);
  std::vector<std::vector<int32_t>> reference;
  int64_t total_tokens = 0;
  const double load_before = ReadLoad();
  if (const std::string only = absl::GetFlag(FLAGS_profile_variant); !only.empty()) {
    absl::StatusOr<RunResult> r;
    const int pc = std::max(1, absl::GetFlag(FLAGS_profile_concurrency));
    if (only == "backend") {
      r = RunBackend(**backend, prompts, max_tokens, pc);
    } else if (only == "memory") {
      r = RunTraced(**backend, *identity, *signer, prov::NewInMemoryProvenanceStore(), prompts,
                    max_tokens, pc);
    } else {
      const std::string dir = absl::StrCat(only == "sqlite-shm" ? absl::GetFlag(FLAGS_shm_dir)
                                                                : absl::GetFlag(FLAGS_disk_dir),
                                           "/", tag, "_profile");
      absl::StatusOr<std::unique_ptr<prov::ProvenanceStore>> store = OpenStoreIn(dir);
      if (!store.ok()) {
        std::fprintf(stderr, "%s\n", std::string(store.status().message()).c_str());
        return 1;
      }
      r = RunTraced(**backend, *identity, *signer, *std::move(store), prompts, max_tokens, pc);
      std::filesystem::remove_all(dir);
    }
    if (!r.ok()) return 1;
    std::printf("%s: %zu generations, %d stream(s), %.1f ms wall, %.1f ms CPU\n", only.c_str(),
                prompts.size(), pc, absl::ToDoubleMilliseconds(r->time), r->cpu_ms);
    return 0;
  }
  // Warm-up: page the weights and grow the caches.
  if (!RunBackend(**backend, prompts, max_tokens).ok()) return 1;
  for (int rep = 0; rep < absl::GetFlag(FLAGS_repetitions); ++rep) {
    for (size_t v = 0; v < names.size(); ++v) {
      absl::StatusOr<RunResult> r;
      std::string dir;
      if (v == 0) {
        r = RunBackend(**backend, prompts, max_tokens);
      } else if (v == 1) {
        r = RunTraced(**backend, *identity, *signer, prov::NewInMemoryProvenanceStore(), prompts,
                      max_tokens);
      } else {
        dir = absl::StrCat(v == 2 ? absl::GetFlag(FLAGS_shm_dir) : absl::GetFlag(FLAGS_disk_dir),
                           "/", tag, "_", rep);
        absl::StatusOr<std::unique_ptr<prov::ProvenanceStore>> store = OpenStoreIn(dir);
        if (!store.ok()) {
          std::fprintf(stderr, "%s\n", std::string(store.status().message()).c_str());
          return 1;
        }
        r = RunTraced(**backend, *identity, *signer, *std::move(store), prompts, max_tokens);
      }
      if (!dir.empty()) std::filesystem::remove_all(dir);
      if (!r.ok()) {
        std::fprintf(stderr, "%s: %s\n", names[v].c_str(), std::string(r.status().message()).c_str());
        return 1;
      }
      if (v == 0 && rep == 0) {
        reference = r->tokens;
        for (const auto& t : reference) total_tokens += static_cast<int64_t>(t.size());
      } else if (r->tokens != reference) {
        std::fprintf(stderr, "%s: tokens differ from the backend's\n", names[v].c_str());
        return 1;
      }
      ms[v].push_back(absl::ToDoubleMilliseconds(r->time));
      cpu[v].push_back(r->cpu_ms);
      commits[v] = r->commits;
    }
  }
  // Ed25519 signing alone, one checkpoint-sized note body at a time.
  const std::string body = "bench.stepproof/log/trace/0123456789abcdef0123456789abcdef\n7\n"
                           "Rk9PQkFSRk9PQkFSRk9PQkFSRk9PQkFSRk9PQkE=\n";
  const int signs = 2000;
  const absl::Time sb = absl::Now();
  for (int i = 0; i < signs; ++i) {
    if (!signer->Sign(body).ok()) return 1;
  }
  const double sign_us = absl::ToDoubleMicroseconds(absl::Now() - sb) / signs;

  const double n = static_cast<double>(prompts.size());
  const double base = Median(ms[0]);
  std::printf("provenance_overhead_bench: model %s, %zu prompts x %d repetitions, greedy, "
              "max_tokens %d, %d engine thread(s); load average %.1f -> %.1f\n",
              model.c_str(), prompts.size(), absl::GetFlag(FLAGS_repetitions), max_tokens,
              absl::GetFlag(FLAGS_threads), load_before, ReadLoad());
  std::printf("tokens per repetition: %lld (%.1f per prompt), identical in every variant\n",
              static_cast<long long>(total_tokens), total_tokens / n);
  std::printf("%-12s %11s %13s %11s %12s %13s %11s %s\n", "variant", "wall ms", "wall ms/gen",
              "vs backend", "CPU ms", "CPU ms/gen", "vs backend", "commits/gen");
  const double cpu_base = Median(cpu[0]);
  for (size_t v = 0; v < names.size(); ++v) {
    const double m = Median(ms[v]), c = Median(cpu[v]);
    std::printf("%-12s %11.1f %13.3f %+10.1f%% %12.1f %13.3f %+10.1f%% %s\n", names[v].c_str(), m,
                m / n, 100.0 * (m - base) / base, c, c / n, 100.0 * (c - cpu_base) / cpu_base,
                v == 0 ? "-" : absl::StrFormat("%.1f", commits[v] / n).c_str());
  }
  for (size_t v = 0; v < names.size(); ++v) {
    std::string all;
    for (size_t i = 0; i < ms[v].size(); ++i) {
      absl::StrAppend(&all, absl::StrFormat(" %.0f/%.0f", ms[v][i], cpu[v][i]));
    }
    std::printf("  %s, every repetition wall/CPU ms:%s\n", names[v].c_str(), all.c_str());
  }
  const double mem = Median(cpu[1]), shm = Median(cpu[2]), disk_wall = Median(ms[3]);
  std::printf("where the provenance time goes, per generation: records, hashing, signing, "
              "sequencing %.3f ms CPU (Ed25519 signing alone %.1f us x %.1f signatures = %.3f ms); "
              "SQLite %.3f ms CPU; waiting for the disk (fsync) %.3f ms wall "
              "(= sqlite-disk wall - sqlite-shm wall)\n",
              (mem - cpu_base) / n, sign_us, commits[1] / n, sign_us * (commits[1] / n) / 1000.0,
              (shm - mem) / n, (disk_wall - Median(ms[2])) / n);
  std::printf("provenance share of end-to-end time with the on-disk ledger (what stepproofd "
              "does): %.1f%% wall; without the disk wait (tmpfs): %.1f%% wall, %.1f%% CPU; "
              "target < 1%%\n",
              100.0 * (disk_wall - base) / disk_wall, 100.0 * (Median(ms[2]) - base) / Median(ms[2]),
              100.0 * (shm - cpu_base) / shm);

  // (b) A batch run by concurrent streams.
  const int concurrency = absl::GetFlag(FLAGS_concurrency);
  if (concurrency <= 0) return 0;
  const std::vector<std::string> batch = Prompts(absl::GetFlag(FLAGS_batch_prompts));
  const std::vector<std::string> bnames = {"backend", "memory", "sqlite-disk"};
  std::vector<std::vector<double>> bms(bnames.size()), bcpu(bnames.size());
  std::vector<std::vector<int32_t>> breference;
  const double bload_before = ReadLoad();
  for (int rep = 0; rep < absl::GetFlag(FLAGS_repetitions); ++rep) {
    for (size_t v = 0; v < bnames.size(); ++v) {
      absl::StatusOr<RunResult> r;
      std::string dir;
      if (v == 0) {
        r = RunBackend(**backend, batch, max_tokens, concurrency);
      } else if (v == 1) {
        r = RunTraced(**backend, *identity, *signer, prov::NewInMemoryProvenanceStore(), batch,
                      max_tokens, concurrency);
      } else {
        dir = absl::StrCat(absl::GetFlag(FLAGS_disk_dir), "/", tag, "_batch_", rep);
        absl::StatusOr<std::unique_ptr<prov::ProvenanceStore>> store = OpenStoreIn(dir);
        if (!store.ok()) {
          std::fprintf(stderr, "%s\n", std::string(store.status().message()).c_str());
          return 1;
        }
        r = RunTraced(**backend, *identity, *signer, *std::move(store), batch, max_tokens,
                      concurrency);
      }
      if (!dir.empty()) std::filesystem::remove_all(dir);
      if (!r.ok()) {
        std::fprintf(stderr, "batch %s: %s\n", bnames[v].c_str(),
                     std::string(r.status().message()).c_str());
        return 1;
      }
      if (v == 0 && rep == 0) {
        breference = r->tokens;
      } else if (r->tokens != breference) {
        std::fprintf(stderr, "batch %s: tokens differ from the backend's\n", bnames[v].c_str());
        return 1;
      }
      bms[v].push_back(absl::ToDoubleMilliseconds(r->time));
      bcpu[v].push_back(r->cpu_ms);
    }
  }
  const double bn = static_cast<double>(batch.size());
  const double bbase = Median(bms[0]), bcpu_base = Median(bcpu[0]);
  std::printf("\n(b) batch: %zu prompts over %d concurrent streams, %d repetitions interleaved; "
              "load average %.1f -> %.1f\n",
              batch.size(), concurrency, absl::GetFlag(FLAGS_repetitions), bload_before, ReadLoad());
  std::printf("%-12s %11s %13s %11s %12s %13s %11s\n", "variant", "batch ms", "ms/gen",
              "vs backend", "CPU ms", "CPU ms/gen", "vs backend");
  for (size_t v = 0; v < bnames.size(); ++v) {
    const double m = Median(bms[v]), c = Median(bcpu[v]);
    std::printf("%-12s %11.1f %13.3f %+10.2f%% %12.1f %13.3f %+10.1f%%\n", bnames[v].c_str(), m,
                m / bn, 100.0 * (m - bbase) / bbase, c, c / bn,
                100.0 * (c - bcpu_base) / bcpu_base);
  }
  for (size_t v = 0; v < bnames.size(); ++v) {
    std::string all;
    for (size_t i = 0; i < bms[v].size(); ++i) {
      absl::StrAppend(&all, absl::StrFormat(" %.0f/%.0f", bms[v][i], bcpu[v][i]));
    }
    std::printf("  %s, every repetition wall/CPU ms:%s\n", bnames[v].c_str(), all.c_str());
  }
  std::printf("provenance share of the batch's end-to-end time with the on-disk ledger: %.2f%% "
              "(in-memory store: %.2f%%); target < 1%%\n",
              100.0 * (Median(bms[2]) - bbase) / Median(bms[2]),
              100.0 * (Median(bms[1]) - bbase) / Median(bms[1]));
  return 0;
}

}  // namespace
}  // namespace stepproof

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Measures the provenance layer's cost per generation: the CPU backend alone vs "
      "TraceGenerator over in-memory, tmpfs and on-disk SQLite ledgers, same prompts, greedy.\n"
      "Run from the repository root: provenance_overhead_bench [--prompts 40 --repetitions 5]");
  if (stepproof::AnswerHelp(argc, argv, "provenance_overhead_bench.")) return 0;
  absl::ParseCommandLine(argc, argv);
  return stepproof::Main();
}
