// Provenance log benchmarks (figures in docs/PERFORMANCE.md, "Provenance
// log"). A plain program rather than Google Benchmark because the figures
// wanted are percentiles over one big prepared store, and sustained rates.
//
//   --mode=integrate  log integration throughput into SQLite: --traces sealed
//                     traces are prepared on tmpfs, copied to --dir (disk),
//                     then one LogSequencer::Flush() integrates them in
//                     batches of --batch; reports traces/s.
//   --mode=append     Ledger::AppendStep / SealTrace latency on disk (one
//                     fsync per commit, synchronous=FULL).
//   --mode=proofs     builds a log of --leaves leaves in --dir by bulk node
//                     inserts, reopens it and times Ledger::LogInclusionForLeaf
//                     and Ledger::LogConsistency (p50/p90/p99).
//   --mode=verify     VerifyBundle throughput over full bundles (trace proof,
//                     trace checkpoint, promise, log proof, log checkpoint).
//
// Files go under --dir (default /tmp/stepproof_log_bench) and /dev/shm and
// are deleted at the end unless --keep.
#include <time.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "inference/cli/help.h"
#include "merkle/compact_range.h"
#include "merkle/hash.h"
#include "provenance/checkpoint.h"
#include "provenance/log/ledger.h"
#include "provenance/log/memory_store.h"
#include "provenance/log/sqlite_store.h"
#include "provenance/note.h"
#include "provenance/signer.h"
#include "provenance/trace_builder.h"
#include "provenance/verifier.h"

ABSL_FLAG(std::string, mode, "integrate",
          "integrate | append | proofs | verify");
ABSL_FLAG(std::string, dir, "/tmp/stepproof_log_bench",
          "directory on disk for the database files");
ABSL_FLAG(int64_t, traces, 100000, "integrate: sealed traces to integrate");
ABSL_FLAG(int64_t, batch, 4096,
          "integrate: entries per batch (LogSequencerOptions::max_batch_entries)");
ABSL_FLAG(int64_t, leaves, 1000000, "proofs: log size");
ABSL_FLAG(int64_t, samples, 20000, "proofs/append: timed calls per kind");
ABSL_FLAG(int64_t, threads, 1, "append: concurrent traces being written");
ABSL_FLAG(double, seconds, 3.0, "verify: how long to verify");
ABSL_FLAG(bool, keep, false, "keep the database files");

namespace sp = stepproof::provenance;
namespace merkle = stepproof::merkle;
namespace fs = std::filesystem;

namespace {

constexpr char kOrigin[] = "bench.stepproof/log";

// CPU time of this process (all threads), seconds.
double CpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

double Seconds(std::chrono::steady_clock::time_point a,
               std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

sp::Signer MakeSigner() {
  std::array<uint8_t, 32> seed;
  seed.fill(42);
  return *sp::Signer::FromSeed(kOrigin, seed);
}

sp::TraceHeader Header(const sp::Signer& s) {
  sp::TraceHeader h;
  h.model_digest = merkle::Sha256Of(std::string_view("weights"));
  h.tokenizer_digest = merkle::Sha256Of(std::string_view("tokenizer"));
  h.model_name = "bench-model";
  h.prompt = "What is 17 * 23?";
  h.backend = "cpu";
  h.device = "bench";
  h.start_unix_ms = 1767225600000;
  h.key_name = s.key_name();
  h.key_id = s.key_id();
  return h;
}

sp::StepRecord Step(int i) {
  sp::StepRecord r;
  r.kind = sp::StepKind::kReasoning;
  r.text = absl::StrCat("Step ", i, ": 17 * 20 = 340, 17 * 3 = 51, total 391.");
  r.token_ids = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  r.start_ms = i;
  r.end_ms = i + 1;
  return r;
}

std::string TraceId(int64_t i) {
  char buf[33];
  std::snprintf(buf, sizeof(buf), "%032llx", static_cast<unsigned long long>(i));
  return buf;
}

// Reports a failure; the caller returns its result from main's mode.
int Fail(const absl::Status& s, const char* what) {
  std::fprintf(stderr, "provenance_log_bench: %s: %s\n", what,
               std::string(s.message()).c_str());
  return 1;
}
#define CHECK_OK(expr, what)                \
  do {                                      \
    absl::Status _s = (expr);               \
    if (!_s.ok()) return Fail(_s, what);    \
  } while (0)

// Removes a database and its WAL and shared-memory files. A stale -wal next
// to a new file of the same name would be replayed into it (quick_check then
// reports the damage), so all three always go together.
void RemoveDb(const fs::path& path) {
  fs::remove(path);
  fs::remove(path.string() + "-wal");
  fs::remove(path.string() + "-shm");
}

struct Percentiles {
  double p50, p90, p99;
};
Percentiles Summarise(std::vector<double> us) {
  std::sort(us.begin(), us.end());
  auto at = [&](double q) { return us[static_cast<size_t>(q * (us.size() - 1))]; };
  return {at(0.50), at(0.90), at(0.99)};
}

absl::StatusOr<std::unique_ptr<sp::ProvenanceStore>> OpenStore(
    const std::string& path, bool quick_check = true) {
  sp::SqliteStoreOptions o;
  o.quick_check_on_open = quick_check;
  return sp::OpenSqliteProvenanceStore(path, o);
}
#define OPEN_STORE(var, ...)                                   \
  auto var##_or = OpenStore(__VA_ARGS__);                      \
  if (!var##_or.ok()) return Fail(var##_or.status(), "open store"); \
  std::unique_ptr<sp::ProvenanceStore> var = std::move(*var##_or)

// ---- integrate -----------------------------------------------------------

int Integrate(const fs::path& dir) {
  const int64_t n = absl::GetFlag(FLAGS_traces);
  const sp::Signer signer = MakeSigner();
  const fs::path shm = fs::path("/dev/shm") /
                       absl::StrCat("stepproof_log_bench_", getpid(), ".db");
  const fs::path disk = dir / "integrate.db";
  RemoveDb(disk);
  // Prepare n sealed traces (header + 2 steps each, real signed final
  // checkpoints) on tmpfs, where commits cost no fsync.
  auto t0 = std::chrono::steady_clock::now();
  {
    OPEN_STORE(store, shm.string());
    for (int64_t i = 0; i < n; ++i) {
      std::string id = TraceId(i + 1);
      auto b = sp::TraceBuilder::Start(kOrigin, id, Header(signer), &signer);
      if (!b.ok()) return Fail(b.status(), "TraceBuilder::Start");
      sp::TraceRecord rec;
      rec.trace_id = id;
      rec.header = b->header().encoded_record;
      rec.created = absl::Now();
      sp::TraceLeafWrite w;
      w.trace_id = id;
      w.encoded_record = b->header().encoded_record;
      w.leaf_hash = b->header().leaf_hash;
      w.signed_checkpoint = b->header().signed_checkpoint;
      CHECK_OK(store->CreateTrace(rec, w), "CreateTrace");
      auto final_note = b->Finish();
      if (!final_note.ok()) return Fail(final_note.status(), "Finish");
      CHECK_OK(store->SealTrace(id, *final_note, "", absl::Now()), "SealTrace");
    }
  }
  fs::copy_file(shm, disk);
  RemoveDb(shm);
  auto t1 = std::chrono::steady_clock::now();
  std::printf("prepared %lld sealed traces in %.1f s (tmpfs, then copied)\n",
              static_cast<long long>(n), Seconds(t0, t1));

  OPEN_STORE(store, disk.string());
  sp::LogSequencerOptions o;
  o.background = false;
  o.max_batch_entries = static_cast<size_t>(absl::GetFlag(FLAGS_batch));
  auto seq = sp::LogSequencer::Open(store.get(), &signer, kOrigin, o, nullptr);
  if (!seq.ok()) return Fail(seq.status(), "LogSequencer::Open");
  const double cpu0 = CpuSeconds();
  auto t2 = std::chrono::steady_clock::now();
  CHECK_OK((*seq)->Flush(), "Flush");
  auto t3 = std::chrono::steady_clock::now();
  const double cpu = CpuSeconds() - cpu0;
  double s = Seconds(t2, t3);
  uint64_t size = (*seq)->size();
  std::printf(
      "integrate: %llu trace checkpoints in %.3f s = %.0f /s "
      "(batch %lld, %.2f ms per batch, SQLite on disk, synchronous=FULL)\n",
      static_cast<unsigned long long>(size), s, size / s,
      static_cast<long long>(absl::GetFlag(FLAGS_batch)),
      1e3 * s / ((size + o.max_batch_entries - 1) / o.max_batch_entries));
  std::printf("integrate: CPU time %.3f s = %.0f /s per CPU-second "
              "(the rest of the wall time is waiting: fsync, other load)\n",
              cpu, size / cpu);
  if (size != static_cast<uint64_t>(n)) {
    std::fprintf(stderr, "integrated %llu, want %lld\n",
                 static_cast<unsigned long long>(size),
                 static_cast<long long>(n));
    return 1;
  }
  seq->reset();
  store.reset();
  if (!absl::GetFlag(FLAGS_keep)) RemoveDb(disk);
  return 0;
}

// ---- append ----------------------------------------------------------------

int Append(const fs::path& dir) {
  const sp::Signer signer = MakeSigner();
  const fs::path path = dir / "append.db";
  RemoveDb(path);
  sp::LedgerOptions o;
  o.log_origin = kOrigin;
  OPEN_STORE(store, path.string());
  auto ledger = sp::Ledger::Open(std::move(store), &signer, o);
  if (!ledger.ok()) return Fail(ledger.status(), "Ledger::Open");
  const int threads = static_cast<int>(absl::GetFlag(FLAGS_threads));
  const int64_t per_thread =
      std::min<int64_t>(absl::GetFlag(FLAGS_samples), 2000) / threads;
  std::vector<std::vector<double>> append_us(threads), seal_us(threads);
  std::vector<absl::Status> errors(threads);
  auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> workers;
  for (int w = 0; w < threads; ++w) {
    workers.emplace_back([&, w] {
      while (static_cast<int64_t>(append_us[w].size()) < per_thread) {
        auto t = (*ledger)->StartTrace(Header(signer));
        if (!t.ok()) { errors[w] = t.status(); return; }
        for (int i = 0; i < 8; ++i) {
          auto a0 = std::chrono::steady_clock::now();
          auto a = (*ledger)->AppendStep(t->trace_id, Step(i));
          auto a1 = std::chrono::steady_clock::now();
          if (!a.ok()) { errors[w] = a.status(); return; }
          append_us[w].push_back(1e6 * Seconds(a0, a1));
        }
        auto s0 = std::chrono::steady_clock::now();
        auto sealed = (*ledger)->SealTrace(t->trace_id);
        auto s1 = std::chrono::steady_clock::now();
        if (!sealed.ok()) { errors[w] = sealed.status(); return; }
        seal_us[w].push_back(1e6 * Seconds(s0, s1));
      }
    });
  }
  for (auto& t : workers) t.join();
  const double wall = Seconds(t0, std::chrono::steady_clock::now());
  for (const absl::Status& e : errors) CHECK_OK(e, "append worker");
  std::vector<double> all_append, all_seal;
  for (int w = 0; w < threads; ++w) {
    all_append.insert(all_append.end(), append_us[w].begin(), append_us[w].end());
    all_seal.insert(all_seal.end(), seal_us[w].begin(), seal_us[w].end());
  }
  Percentiles a = Summarise(all_append), s = Summarise(all_seal);
  std::printf("%d thread(s): AppendStep (sign + durable commit) p50 %.0f us  "
              "p90 %.0f us  p99 %.0f us; %.0f durable steps/s overall\n",
              threads, a.p50, a.p90, a.p99, all_append.size() / wall);
  std::printf("%d thread(s): SealTrace (2 signatures + durable commit) p50 "
              "%.0f us  p90 %.0f us  p99 %.0f us\n",
              threads, s.p50, s.p90, s.p99);
  ledger->reset();
  if (!absl::GetFlag(FLAGS_keep)) RemoveDb(path);
  return 0;
}

// ---- proofs ----------------------------------------------------------------

int Proofs(const fs::path& dir) {
  const int64_t n = absl::GetFlag(FLAGS_leaves);
  const sp::Signer signer = MakeSigner();
  const fs::path path = dir / absl::StrCat("proofs_", n, ".db");
  RemoveDb(path);
  auto t0 = std::chrono::steady_clock::now();
  {
    // Bulk build: leaves and their nodes in large batches, one transaction
    // (and one signed checkpoint) per batch.
    OPEN_STORE(store, path.string());
    merkle::CompactRange range;
    constexpr int64_t kBatch = 200000;
    for (int64_t first = 0; first < n; first += kBatch) {
      sp::LogBatch batch;
      batch.first_index = static_cast<uint64_t>(first);
      int64_t end = std::min(n, first + kBatch);
      batch.leaves.reserve(end - first);
      batch.nodes.reserve(2 * (end - first) + 64);
      for (int64_t i = first; i < end; ++i) {
        sp::LogLeaf leaf;
        leaf.index = static_cast<uint64_t>(i);
        leaf.leaf = absl::StrCat("bench leaf ", i);
        leaf.leaf_hash = merkle::HashLeaf(leaf.leaf);
        range.Append(leaf.leaf_hash,
                     [&](const merkle::NodeId& id, const merkle::Hash& h) {
                       batch.nodes.push_back({id, h});
                     });
        batch.leaves.push_back(std::move(leaf));
      }
      sp::Checkpoint cp;
      cp.origin = kOrigin;
      cp.size = range.size();
      cp.root = range.Root();
      auto note = sp::SignNote(cp.Marshal(), signer);
      if (!note.ok()) return Fail(note.status(), "SignNote");
      batch.checkpoint = *note;
      batch.integrated = absl::Now();
      CHECK_OK(store->AppendLogBatch(batch), "AppendLogBatch");
    }
  }
  auto t1 = std::chrono::steady_clock::now();
  std::printf("built a log of %lld leaves in %.1f s (%.0f MB on disk)\n",
              static_cast<long long>(n), Seconds(t0, t1),
              fs::file_size(path) / 1e6);

  sp::LedgerOptions o;
  o.log_origin = kOrigin;
  o.sequencer.background = false;
  // quick_check reads the whole file; skipped for this big benchmark file.
  OPEN_STORE(store, path.string(), false);
  auto ledger = sp::Ledger::Open(std::move(store), &signer, o);
  if (!ledger.ok()) return Fail(ledger.status(), "Ledger::Open");
  std::mt19937_64 rng(1);
  const int64_t samples = absl::GetFlag(FLAGS_samples);
  std::vector<double> incl_us, cons_us;
  uint64_t hashes = 0;
  for (int64_t k = 0; k < samples; ++k) {
    uint64_t i = rng() % static_cast<uint64_t>(n);
    auto a = std::chrono::steady_clock::now();
    auto p = (*ledger)->LogInclusionForLeaf(i, 0);
    auto b = std::chrono::steady_clock::now();
    if (!p.ok()) return Fail(p.status(), "LogInclusionForLeaf");
    hashes += p->hashes.size();
    incl_us.push_back(1e6 * Seconds(a, b));
  }
  for (int64_t k = 0; k < samples; ++k) {
    uint64_t s1 = 1 + rng() % static_cast<uint64_t>(n);
    auto a = std::chrono::steady_clock::now();
    auto p = (*ledger)->LogConsistency(s1, static_cast<uint64_t>(n));
    auto b = std::chrono::steady_clock::now();
    if (!p.ok()) return Fail(p.status(), "LogConsistency");
    cons_us.push_back(1e6 * Seconds(a, b));
  }
  Percentiles i = Summarise(incl_us), c = Summarise(cons_us);
  std::printf("%lld leaves: inclusion proof p50 %.1f us  p90 %.1f us  "
              "p99 %.1f us (%.1f hashes avg)\n",
              static_cast<long long>(n), i.p50, i.p90, i.p99,
              static_cast<double>(hashes) / samples);
  std::printf("%lld leaves: consistency proof p50 %.1f us  p90 %.1f us  "
              "p99 %.1f us\n",
              static_cast<long long>(n), c.p50, c.p90, c.p99);
  ledger->reset();
  if (!absl::GetFlag(FLAGS_keep)) RemoveDb(path);
  return 0;
}

// ---- verify ----------------------------------------------------------------

int Verify() {
  const sp::Signer signer = MakeSigner();
  const sp::NoteVerifier verifier = signer.verifier();
  sp::LedgerOptions o;
  o.log_origin = kOrigin;
  o.sequencer.background = false;
  auto ledger = sp::Ledger::Open(sp::NewInMemoryProvenanceStore(), &signer, o);
  if (!ledger.ok()) return Fail(ledger.status(), "Ledger::Open");
  std::vector<sp::Bundle> bundles;
  for (int t = 0; t < 100; ++t) {
    auto s = (*ledger)->StartTrace(Header(signer));
    if (!s.ok()) return Fail(s.status(), "StartTrace");
    for (int i = 0; i < 8; ++i) {
      CHECK_OK((*ledger)->AppendStep(s->trace_id, Step(i)).status(), "Append");
    }
    CHECK_OK((*ledger)->SealTrace(s->trace_id).status(), "Seal");
    CHECK_OK((*ledger)->Flush(), "Flush");
    for (uint64_t i = 0; i < 9; ++i) {
      auto b = (*ledger)->GetStepBundle(s->trace_id, i);
      if (!b.ok() || !b->log.has_value() || !b->promise.has_value()) {
        return Fail(b.status(), "GetStepBundle");
      }
      bundles.push_back(std::move(*b));
    }
  }
  const double budget = absl::GetFlag(FLAGS_seconds);
  int64_t verified = 0;
  auto t0 = std::chrono::steady_clock::now();
  while (Seconds(t0, std::chrono::steady_clock::now()) < budget) {
    for (const sp::Bundle& b : bundles) {
      CHECK_OK(sp::VerifyBundle(b, verifier), "VerifyBundle");
      ++verified;
    }
  }
  double s = Seconds(t0, std::chrono::steady_clock::now());
  // Each full bundle carries three signed notes: trace checkpoint, promise,
  // log checkpoint.
  std::printf("verify: %.0f full bundles/s on one thread (%.0f Ed25519 "
              "verifications/s; %lld bundles in %.2f s)\n",
              verified / s, 3 * verified / s, static_cast<long long>(verified),
              s);
  std::string msg = "stepproof";
  auto sig = signer.Sign(msg);
  int64_t k = 0;
  auto v0 = std::chrono::steady_clock::now();
  while (Seconds(v0, std::chrono::steady_clock::now()) < 1.0) {
    for (int j = 0; j < 100; ++j) k += verifier.Verify(msg, *sig) ? 1 : 0;
  }
  std::printf("baseline: %.0f raw Ed25519 verifications/s on one thread\n",
              k / Seconds(v0, std::chrono::steady_clock::now()));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Provenance log benchmarks: --mode=integrate|append|proofs|verify "
      "(see docs/PERFORMANCE.md, \"Provenance log\").");
  if (stepproof::AnswerHelp(argc, argv, "provenance_log_bench.")) return 0;
  absl::ParseCommandLine(argc, argv);
  const std::string mode = absl::GetFlag(FLAGS_mode);
  const fs::path dir = absl::GetFlag(FLAGS_dir);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    std::fprintf(stderr, "provenance_log_bench: cannot create %s: %s\n",
                 dir.c_str(), ec.message().c_str());
    return 1;
  }
  if (mode == "integrate") return Integrate(dir);
  if (mode == "append") return Append(dir);
  if (mode == "proofs") return Proofs(dir);
  if (mode == "verify") return Verify();
  std::fprintf(stderr,
               "provenance_log_bench: unknown --mode '%s' (want integrate, "
               "append, proofs or verify)\n",
               mode.c_str());
  return 2;
}
