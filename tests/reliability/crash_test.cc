// kill -9 under load, 20 cycles, against the real stepproofd (embedded model)
// on one data directory. Clients generate and read concurrently; at a random
// moment the server is killed with SIGKILL and restarted. After every
// restart, checked offline with the verifier key only (provenance/verifier.h):
//   - every acknowledged trace (the client received its `sealed` event)
//     is still there, sealed, with the final checkpoint the client holds:
//     each of its step bundles verifies, and the records verify as a whole
//     against that checkpoint;
//   - every trace cut off mid-stream still proves what the client received:
//     the server's trace extends the last signed checkpoint the client got
//     (consistency proof checked), and the trace is interrupted or sealed;
//   - the global log is consistent with every log checkpoint seen before
//     the crash (GetLogConsistency + VerifyLogConsistency); it never shrinks.
// At the end the server is stopped with SIGTERM under the same load (every
// trace it started ends sealed, exit status 0) and, after one more restart,
// every acknowledged trace is in the log (its inclusion proof verifies): the
// promises survived the crashes.
#include <atomic>
#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "merkle/hash.h"
#include "provenance/checkpoint.h"
#include "provenance/verifier.h"
#include "provenance/verifier_key.h"
#include "tests/reliability/daemon.h"

namespace stepproof::reliability {
namespace {

namespace prov = ::stepproof::provenance;

constexpr int kCycles = 20;
constexpr int kGenerators = 6;

struct AckedTrace {
  std::string trace_id;
  std::string final_checkpoint;
  uint64_t size = 0;
};

struct CutTrace {
  std::string trace_id;
  std::string last_checkpoint;  // the last signed trace checkpoint received
  uint64_t size = 0;
};

// What the clients saw before one crash.
struct Observed {
  absl::Mutex mu;
  std::vector<AckedTrace> acked;
  std::vector<CutTrace> cut;
  std::map<uint64_t, std::string> log_checkpoints;  // size -> note
  // Streams whose events were not `started`, steps 1, 2, ... in order, then
  // `sealed` of the size reached (the engine and the stream's committer run
  // on different threads; the order must hold anyway).
  std::vector<std::string> order_errors;
};

std::vector<merkle::Hash> Hashes(const google::protobuf::RepeatedPtrField<std::string>& raw) {
  std::vector<merkle::Hash> out;
  for (const std::string& b : raw) {
    absl::StatusOr<merkle::Hash> h = merkle::HashFromBytes(
        absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(b.data()), b.size()));
    if (h.ok()) out.push_back(*h);
  }
  return out;
}

// Generates until `stop`, recording every trace as acknowledged or cut off.
void GenerateLoop(const std::string& address, uint32_t seed, const std::atomic<bool>& stop,
                  Observed* seen) {
  auto stub = Connect(address);
  std::mt19937 rng(seed);
  while (!stop.load()) {
    grpc::ClientContext context;
    SetDeadline(&context, absl::Seconds(20));
    v1::GenerateRequest r;
    r.set_prompt(absl::StrCat("What is ", rng() % 1000, " + ", rng() % 1000, "?"));
    r.set_max_tokens(64);
    r.set_seed(rng());
    auto reader = stub->Generate(&context, r);
    v1::GenerateEvent event;
    CutTrace current;
    bool sealed = false;
    std::string final_checkpoint;
    std::string order_error;
    while (reader->Read(&event)) {
      if (event.has_started()) {
        if (!current.trace_id.empty() && order_error.empty()) order_error = "a second started";
        current.trace_id = event.started().trace_id();
        current.last_checkpoint = event.started().signed_checkpoint();
        current.size = 1;
      } else if (event.has_step()) {
        if (event.step().leaf_index() != current.size && order_error.empty()) {
          order_error = absl::StrCat("step ", event.step().leaf_index(), " after size ", current.size);
        }
        current.last_checkpoint = event.step().signed_checkpoint();
        current.size = event.step().leaf_index() + 1;
      } else if (event.has_sealed()) {
        if ((sealed || event.sealed().size() != current.size) && order_error.empty()) {
          order_error = absl::StrCat("sealed at ", event.sealed().size(), " after size ", current.size);
        }
        sealed = true;
        final_checkpoint = event.sealed().final_checkpoint();
        current.size = event.sealed().size();
      }
    }
    grpc::Status status = reader->Finish();
    if (current.trace_id.empty()) {
      if (!status.ok()) absl::SleepFor(absl::Milliseconds(20));  // server down or busy
      continue;
    }
    absl::MutexLock lock(&seen->mu);
    if (!order_error.empty()) seen->order_errors.push_back(current.trace_id + ": " + order_error);
    if (sealed) {
      seen->acked.push_back({current.trace_id, final_checkpoint, current.size});
    } else {
      seen->cut.push_back(current);
    }
  }
}

// Reads the latest log checkpoint and proof bundles of acknowledged traces.
void ReadLoop(const std::string& address, const std::atomic<bool>& stop, Observed* seen) {
  auto stub = Connect(address);
  int i = 0;
  while (!stop.load()) {
    grpc::ClientContext c;
    SetDeadline(&c, absl::Seconds(5));
    v1::GetLogCheckpointResponse resp;
    if (stub->GetLogCheckpoint(&c, v1::GetLogCheckpointRequest(), &resp).ok()) {
      absl::MutexLock lock(&seen->mu);
      seen->log_checkpoints[resp.size()] = resp.checkpoint();
    }
    std::string trace;
    {
      absl::MutexLock lock(&seen->mu);
      if (!seen->acked.empty()) trace = seen->acked[i++ % seen->acked.size()].trace_id;
    }
    if (!trace.empty()) {
      grpc::ClientContext pc;
      SetDeadline(&pc, absl::Seconds(5));
      v1::GetStepProofRequest p;
      p.set_trace_id(trace);
      v1::GetStepProofResponse pr;
      (void)stub->GetStepProof(&pc, p, &pr);
    }
    absl::SleepFor(absl::Milliseconds(15));
  }
}

class CrashTest : public ::testing::Test {
 protected:
  void CheckAcked(v1::StepProof::Stub* stub, const prov::NoteVerifier& key,
                  const AckedTrace& t) {
    grpc::ClientContext c;
    SetDeadline(&c, absl::Seconds(10));
    v1::GetTraceRequest req;
    req.set_trace_id(t.trace_id);
    req.set_include_steps(true);
    v1::GetTraceResponse resp;
    grpc::Status s = stub->GetTrace(&c, req, &resp);
    ASSERT_TRUE(s.ok()) << "acknowledged trace " << t.trace_id << " lost: " << s.error_message();
    EXPECT_EQ(resp.trace().state(), v1::TRACE_STATE_SEALED) << t.trace_id;
    EXPECT_EQ(resp.trace().final_checkpoint(), t.final_checkpoint) << t.trace_id;
    std::vector<std::string> records;
    for (const v1::StepEntry& e : resp.steps()) records.push_back(e.record());
    ASSERT_EQ(records.size(), t.size) << t.trace_id;
    absl::StatusOr<std::vector<prov::StepRecord>> whole =
        prov::VerifyTrace(records, t.final_checkpoint, key);
    EXPECT_TRUE(whole.ok()) << t.trace_id << ": " << whole.status();
    for (uint64_t i = 0; i < t.size; ++i) {
      grpc::ClientContext pc;
      SetDeadline(&pc, absl::Seconds(10));
      v1::GetStepProofRequest p;
      p.set_trace_id(t.trace_id);
      p.set_index(i);
      v1::GetStepProofResponse pr;
      grpc::Status ps = stub->GetStepProof(&pc, p, &pr);
      ASSERT_TRUE(ps.ok()) << t.trace_id << " step " << i << ": " << ps.error_message();
      absl::Status v = prov::VerifyBundleJson(pr.bundle_json(), key);
      EXPECT_TRUE(v.ok()) << t.trace_id << " step " << i << ": " << v;
      ++bundles_verified_;
    }
  }

  void CheckCut(v1::StepProof::Stub* stub, const prov::NoteVerifier& key, const CutTrace& t) {
    grpc::ClientContext c;
    SetDeadline(&c, absl::Seconds(10));
    v1::GetTraceRequest req;
    req.set_trace_id(t.trace_id);
    v1::GetTraceResponse resp;
    grpc::Status s = stub->GetTrace(&c, req, &resp);
    ASSERT_TRUE(s.ok()) << "cut-off trace " << t.trace_id << " lost: " << s.error_message();
    EXPECT_NE(resp.trace().state(), v1::TRACE_STATE_OPEN) << t.trace_id;
    ASSERT_GE(resp.trace().size(), t.size) << t.trace_id;
    grpc::ClientContext cc;
    SetDeadline(&cc, absl::Seconds(10));
    v1::GetTraceConsistencyRequest q;
    q.set_trace_id(t.trace_id);
    q.set_size1(t.size);
    q.set_size2(resp.trace().size());
    v1::GetTraceConsistencyResponse qr;
    grpc::Status qs = stub->GetTraceConsistency(&cc, q, &qr);
    ASSERT_TRUE(qs.ok()) << t.trace_id << ": " << qs.error_message();
    EXPECT_EQ(qr.checkpoint1(), t.last_checkpoint) << t.trace_id;
    absl::Status v = prov::VerifyTraceConsistency(t.last_checkpoint, resp.trace().latest_checkpoint(),
                                                  Hashes(qr.proof()), key);
    EXPECT_TRUE(v.ok()) << t.trace_id << ": " << v;
  }

  // The log is consistent with every checkpoint in `seen` and returns the
  // latest one (also added to `seen`).
  void CheckLog(v1::StepProof::Stub* stub, const prov::NoteVerifier& key,
                std::map<uint64_t, std::string>* seen) {
    grpc::ClientContext c;
    SetDeadline(&c, absl::Seconds(10));
    v1::GetLogCheckpointResponse latest;
    grpc::Status s = stub->GetLogCheckpoint(&c, v1::GetLogCheckpointRequest(), &latest);
    if (!s.ok()) {
      ASSERT_TRUE(seen->empty()) << "the log lost its checkpoints: " << s.error_message();
      return;
    }
    ASSERT_TRUE(prov::OpenCheckpoint(latest.checkpoint(), key).ok());
    for (const auto& [size, note] : *seen) {
      ASSERT_LE(size, latest.size()) << "the log shrank";
      grpc::ClientContext cc;
      SetDeadline(&cc, absl::Seconds(10));
      v1::GetLogConsistencyRequest q;
      q.set_size1(size);
      q.set_size2(latest.size());
      v1::GetLogConsistencyResponse qr;
      grpc::Status qs = stub->GetLogConsistency(&cc, q, &qr);
      ASSERT_TRUE(qs.ok()) << size << " -> " << latest.size() << ": " << qs.error_message();
      absl::Status v = prov::VerifyLogConsistency(note, latest.checkpoint(), Hashes(qr.proof()), key);
      EXPECT_TRUE(v.ok()) << size << " -> " << latest.size() << ": " << v;
      ++log_proofs_verified_;
    }
    (*seen)[latest.size()] = latest.checkpoint();
  }

  int bundles_verified_ = 0;
  int log_proofs_verified_ = 0;
};

TEST_F(CrashTest, EveryAcknowledgedTraceAndLogCheckpointSurvivesKillNine) {
  TempDir dir("crash");
  const std::vector<std::string> args = {
      "--data-dir", dir / "data", "--listen", "127.0.0.1:0", "--threads", "1",
      "--max-tokens", "64", "--max-concurrent-generations", "16", "--log-origin",
      "crash.test/log"};
  std::mt19937 rng(20261123);
  std::string vkey;
  std::optional<prov::NoteVerifier> key;
  std::vector<AckedTrace> all_acked;
  std::map<uint64_t, std::string> log_seen;
  int total_cut = 0;
  Observed previous;  // what was seen before the last crash

  const absl::Time begin = absl::Now();
  for (int cycle = 0; cycle <= kCycles; ++cycle) {
    Daemon d(dir.path().string(), absl::StrCat("cycle", cycle), args);
    const std::string address = d.WaitListening(absl::Seconds(60));
    ASSERT_FALSE(address.empty()) << "restart " << cycle << ": " << d.err();
    const std::string this_key = VerifierKeyFromStdout(d.out());
    if (cycle == 0) {
      vkey = this_key;
      absl::StatusOr<prov::NoteVerifier> parsed = prov::NoteVerifier::FromVerifierKey(vkey);
      ASSERT_TRUE(parsed.ok()) << parsed.status();
      key = *parsed;
    }
    ASSERT_EQ(this_key, vkey) << "the key changed across a crash";
    auto stub = Connect(address);

    // What the clients saw before the crash is all still there.
    {
      absl::MutexLock lock(&previous.mu);
      EXPECT_THAT(previous.order_errors, ::testing::IsEmpty());
    for (const AckedTrace& t : previous.acked) CheckAcked(stub.get(), *key, t);
      for (const CutTrace& t : previous.cut) CheckCut(stub.get(), *key, t);
      for (const auto& [size, note] : previous.log_checkpoints) {
        ASSERT_TRUE(prov::OpenCheckpoint(note, *key).ok());
        log_seen[size] = note;
      }
      all_acked.insert(all_acked.end(), previous.acked.begin(), previous.acked.end());
      total_cut += static_cast<int>(previous.cut.size());
    }
    CheckLog(stub.get(), *key, &log_seen);
    if (HasFatalFailure()) return;
    // Load, then kill -9 at a random moment; the last cycle ends with
    // SIGTERM under the same load instead (drain, seal, flush the log).
    const bool last = cycle == kCycles;
    Observed* seen = new Observed;
    std::atomic<bool> stop{false};
    std::vector<std::thread> clients;
    for (int g = 0; g < kGenerators; ++g) {
      clients.emplace_back(GenerateLoop, address, rng(), std::cref(stop), seen);
    }
    clients.emplace_back(ReadLoop, address, std::cref(stop), seen);
    absl::SleepFor(absl::Milliseconds(200 + rng() % 800));
    if (last) {
      d.Signal(SIGTERM);
      const std::optional<int> code = d.Exited(absl::Seconds(30));
      stop.store(true);
      for (std::thread& t : clients) t.join();
      ASSERT_EQ(code, std::optional<int>(0)) << d.err();
    } else {
      d.Kill();
      stop.store(true);
      for (std::thread& t : clients) t.join();
    }
    {
      absl::MutexLock lock(&previous.mu);
      absl::MutexLock lock2(&seen->mu);
      previous.acked = std::move(seen->acked);
      previous.cut = std::move(seen->cut);
      previous.log_checkpoints = std::move(seen->log_checkpoints);
    }
    delete seen;
    if (last) break;
  }

  Daemon d(dir.path().string(), "final", args);
  const std::string address = d.WaitListening(absl::Seconds(60));
  ASSERT_FALSE(address.empty()) << d.err();
  auto stub = Connect(address);
  // The graceful stop: what the clients saw verifies, and nothing was cut
  // off unsealed (running generations were drained or cancelled, then
  // sealed; new ones were refused before a trace existed).
  {
    absl::MutexLock lock(&previous.mu);
    EXPECT_THAT(previous.order_errors, ::testing::IsEmpty());
    for (const AckedTrace& t : previous.acked) CheckAcked(stub.get(), *key, t);
    for (const CutTrace& t : previous.cut) {
      CheckCut(stub.get(), *key, t);
      grpc::ClientContext c;
      SetDeadline(&c, absl::Seconds(10));
      v1::GetTraceRequest req;
      req.set_trace_id(t.trace_id);
      v1::GetTraceResponse resp;
      ASSERT_TRUE(stub->GetTrace(&c, req, &resp).ok());
      EXPECT_EQ(resp.trace().state(), v1::TRACE_STATE_SEALED)
          << t.trace_id << ": SIGTERM left a trace unsealed";
    }
    for (const auto& [size, note] : previous.log_checkpoints) log_seen[size] = note;
    all_acked.insert(all_acked.end(), previous.acked.begin(), previous.acked.end());
    std::printf("SIGTERM under load: %zu acknowledged, %zu cut off (all sealed)\n",
                previous.acked.size(), previous.cut.size());
  }
  CheckLog(stub.get(), *key, &log_seen);
  for (const AckedTrace& t : all_acked) {
    grpc::ClientContext c;
    SetDeadline(&c, absl::Seconds(10));
    v1::GetLogInclusionRequest req;
    req.set_trace_id(t.trace_id);
    v1::GetLogInclusionResponse resp;
    grpc::Status s = stub->GetLogInclusion(&c, req, &resp);
    ASSERT_TRUE(s.ok()) << t.trace_id << " not in the log: " << s.error_message();
    EXPECT_EQ(resp.leaf(), t.final_checkpoint);
    absl::Status v = prov::VerifyLogInclusion(t.final_checkpoint, resp.leaf_index(),
                                              Hashes(resp.proof()), resp.log_checkpoint(), *key);
    EXPECT_TRUE(v.ok()) << t.trace_id << ": " << v;
  }
  std::printf(
      "%d kill -9 cycles in %.1f s: %zu acknowledged traces (%d bundles verified), %d cut "
      "off mid-stream, %d log consistency proofs verified, log size %llu\n",
      kCycles, absl::ToDoubleSeconds(absl::Now() - begin), all_acked.size(), bundles_verified_,
      total_cut, log_proofs_verified_,
      static_cast<unsigned long long>(log_seen.empty() ? 0 : log_seen.rbegin()->first));
  EXPECT_GT(all_acked.size(), static_cast<size_t>(kCycles)) << "too little load to mean much";
  EXPECT_GT(total_cut, 0) << "no kill landed mid-stream";
}

}  // namespace
}  // namespace stepproof::reliability
