// Ledger behaviour over both stores. Everything the ledger hands out is
// checked with P1's offline verifier (provenance/verifier.h, written
// independently of the ledger) and, for log proofs, against merkle/'s
// reference implementation over the leaf hashes the test computes itself.
#include "provenance/log/ledger.h"

#include <atomic>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "merkle/tree.h"
#include "provenance/checkpoint.h"
#include "provenance/log/memory_store.h"
#include "provenance/log/sqlite_store.h"
#include "provenance/note.h"
#include "provenance/promise.h"
#include "provenance/verifier.h"
#include "tests/provenance_log/ledger_test_util.h"

namespace stepproof::provenance {
namespace {

namespace fs = std::filesystem;
using testing_util::FreshDir;
using testing_util::kLogOrigin;
using testing_util::MakeHeader;
using testing_util::MakeSigner;
using testing_util::MakeStep;

struct StoreKind {
  std::string name;
  bool sqlite;
};

class LedgerTest : public testing::TestWithParam<StoreKind> {
 protected:
  void SetUp() override {
    dir_ = FreshDir(absl::StrCat(
        GetParam().name, "_",
        testing::UnitTest::GetInstance()->current_test_info()->name()));
    options_.log_origin = kLogOrigin;
    options_.sequencer.background = false;  // tests drive integration
    options_.clock = [this] {
      absl::MutexLock l(&clock_mu_);
      return now_;
    };
  }
  void TearDown() override {
    ledger_.reset();
    fs::remove_all(dir_);
  }

  std::unique_ptr<ProvenanceStore> OpenStore() {
    if (!GetParam().sqlite) return NewInMemoryProvenanceStore();
    auto s = OpenSqliteProvenanceStore((dir_ / "ledger.db").string());
    EXPECT_TRUE(s.ok()) << s.status();
    return std::move(*s);
  }

  void OpenLedger() {
    auto l = Ledger::Open(OpenStore(), &signer_, options_);
    ASSERT_TRUE(l.ok()) << l.status();
    ledger_ = std::move(*l);
  }

  // A sealed trace with `steps` steps after the header.
  std::string SealedTrace(int steps, std::string* final_note = nullptr) {
    auto t = ledger_->StartTrace(MakeHeader(signer_, "prompt"));
    EXPECT_TRUE(t.ok()) << t.status();
    for (int i = 0; i < steps; ++i) {
      EXPECT_TRUE(ledger_->AppendStep(t->trace_id,
                                      MakeStep(absl::StrCat("step ", i),
                                               i + 1 == steps))
                      .ok());
    }
    auto sealed = ledger_->SealTrace(t->trace_id);
    EXPECT_TRUE(sealed.ok()) << sealed.status();
    if (final_note != nullptr) *final_note = sealed->final_checkpoint;
    return t->trace_id;
  }

  Signer signer_ = MakeSigner();
  NoteVerifier verifier_ = signer_.verifier();
  fs::path dir_;
  LedgerOptions options_;
  absl::Mutex clock_mu_;
  absl::Time now_ = absl::FromUnixMillis(1767225600123);
  std::unique_ptr<Ledger> ledger_;
};

TEST_P(LedgerTest, SealedTraceGivesVerifiableBundlesAndPromise) {
  OpenLedger();
  auto started = ledger_->StartTrace(MakeHeader(signer_, "What is 2+3?"));
  ASSERT_TRUE(started.ok()) << started.status();
  EXPECT_TRUE(IsValidTraceId(started->trace_id));
  EXPECT_EQ(started->header_leaf_hash, merkle::HashLeaf(started->header_record));
  std::vector<std::string> checkpoints = {started->signed_checkpoint};
  for (int i = 0; i < 4; ++i) {
    auto a = ledger_->AppendStep(started->trace_id,
                                 MakeStep(absl::StrCat("step ", i), i == 3));
    ASSERT_TRUE(a.ok()) << a.status();
    EXPECT_EQ(a->leaf_index, static_cast<uint64_t>(i + 1));
    EXPECT_EQ(a->leaf_hash, merkle::HashLeaf(a->encoded_record));
    auto cp = OpenCheckpoint(a->signed_checkpoint, verifier_);
    ASSERT_TRUE(cp.ok()) << cp.status();
    EXPECT_EQ(cp->size, static_cast<uint64_t>(i + 2));
    checkpoints.push_back(a->signed_checkpoint);
  }
  auto sealed = ledger_->SealTrace(started->trace_id);
  ASSERT_TRUE(sealed.ok()) << sealed.status();
  EXPECT_EQ(sealed->size, 5u);
  auto promise =
      VerifyPromise(sealed->promise, verifier_, sealed->final_checkpoint);
  ASSERT_TRUE(promise.ok()) << promise.status();
  EXPECT_EQ(promise->submitted_unix_ms, 1767225600123);  // the injected clock
  EXPECT_EQ(promise->max_delay_seconds, 10u);
  EXPECT_EQ(promise->log_origin, kLogOrigin);

  // Before integration: trace-level bundle with the promise, no log part.
  auto early = ledger_->GetStepBundle(started->trace_id, 2);
  ASSERT_TRUE(early.ok()) << early.status();
  EXPECT_FALSE(early->log.has_value());
  ASSERT_TRUE(early->promise.has_value());
  EXPECT_TRUE(VerifyBundle(*early, verifier_).ok());
  EXPECT_EQ(ledger_->LogInclusionForTrace(started->trace_id).status().code(),
            absl::StatusCode::kNotFound);

  ASSERT_TRUE(ledger_->Flush().ok());
  auto trace = ledger_->GetTrace(started->trace_id);
  ASSERT_TRUE(trace.ok());
  EXPECT_EQ(trace->state, TraceState::kSealed);
  EXPECT_EQ(trace->log_index, 0u);
  for (uint64_t i = 0; i < 5; ++i) {
    auto b = ledger_->GetStepBundle(started->trace_id, i);
    ASSERT_TRUE(b.ok()) << b.status();
    ASSERT_TRUE(b->log.has_value());
    EXPECT_FALSE(b->anchor.has_value());
    EXPECT_TRUE(VerifyBundle(*b, verifier_).ok()) << VerifyBundle(*b, verifier_);
    EXPECT_TRUE(VerifyBundleJson(BundleToJson(*b), verifier_).ok());
    // A bundle whose record was changed must fail.
    Bundle bad = *b;
    bad.encoded_record.back() ^= 1;
    EXPECT_FALSE(VerifyBundle(bad, verifier_).ok());
  }
  // A trace checkpoint consistency proof between streamed checkpoints.
  for (uint64_t s1 = 1; s1 <= 5; ++s1) {
    for (uint64_t s2 = s1; s2 <= 5; ++s2) {
      auto proof = ledger_->GetTraceConsistency(started->trace_id, s1, s2);
      ASSERT_TRUE(proof.ok()) << proof.status();
      EXPECT_TRUE(VerifyTraceConsistency(checkpoints[s1 - 1],
                                         checkpoints[s2 - 1], *proof, verifier_)
                      .ok());
    }
  }
  auto incl = ledger_->LogInclusionForTrace(started->trace_id);
  ASSERT_TRUE(incl.ok());
  EXPECT_TRUE(VerifyLogInclusion(sealed->final_checkpoint, incl->leaf_index,
                                 incl->hashes, incl->log_checkpoint, verifier_)
                  .ok());
}

TEST_P(LedgerTest, RefusesWritesToSealedOrUnknownTraces) {
  OpenLedger();
  std::string id = SealedTrace(2);
  EXPECT_EQ(ledger_->AppendStep(id, MakeStep("late")).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ledger_->SealTrace(id).status().code(),
            absl::StatusCode::kFailedPrecondition);
  const std::string unknown(32, 'a');
  EXPECT_EQ(ledger_->AppendStep(unknown, MakeStep("x")).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(ledger_->SealTrace(unknown).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(ledger_->GetTrace(unknown).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(ledger_->GetStepBundle(unknown, 0).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(ledger_->GetStepBundle(id, 3).status().code(),
            absl::StatusCode::kNotFound);
  // A second header is refused by the builder.
  auto t = ledger_->StartTrace(MakeHeader(signer_, "p"));
  StepRecord header = MakeStep("h");
  header.kind = StepKind::kHeader;
  header.token_ids.clear();
  EXPECT_EQ(ledger_->AppendStep(t->trace_id, header).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_P(LedgerTest, RejectsBadSizesAndIndices) {
  OpenLedger();
  std::string id = SealedTrace(3);
  EXPECT_EQ(ledger_->GetTraceConsistency(id, 0, 2).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ledger_->GetTraceConsistency(id, 3, 2).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ledger_->GetTraceConsistency(id, 1, 5).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ledger_->LogConsistency(1, 1).status().code(),
            absl::StatusCode::kInvalidArgument);  // log still empty
  EXPECT_EQ(ledger_->LatestLogCheckpoint().status().code(),
            absl::StatusCode::kNotFound);
  ASSERT_TRUE(ledger_->Flush().ok());
  SealedTrace(1);
  ASSERT_TRUE(ledger_->Flush().ok());
  EXPECT_TRUE(ledger_->LogConsistency(1, 2).ok());
  EXPECT_EQ(ledger_->LogConsistency(0, 2).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ledger_->LogConsistency(1, 3).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ledger_->LogInclusionForLeaf(2).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(ledger_->LogInclusionForLeaf(1, 1).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ledger_->LogInclusionForLeaf(0, 3).status().code(),
            absl::StatusCode::kInvalidArgument);
  auto ok = ledger_->LogInclusionForLeaf(0, 1);
  ASSERT_TRUE(ok.ok());
  EXPECT_TRUE(ok->hashes.empty());
  EXPECT_FALSE(ok->log_checkpoint.empty());
}

TEST_P(LedgerTest, LogCheckpointsAreConsistentAndMatchReferenceTree) {
  OpenLedger();
  std::vector<merkle::Hash> leaves;  // computed here from the final notes
  std::vector<std::string> checkpoints;
  for (int batch : {1, 3, 5, 2, 8}) {
    for (int i = 0; i < batch; ++i) {
      std::string note;
      SealedTrace(1, &note);
      leaves.push_back(merkle::HashLeaf(note));
    }
    ASSERT_TRUE(ledger_->Flush().ok());
    auto cp = ledger_->LatestLogCheckpoint();
    ASSERT_TRUE(cp.ok());
    auto parsed = OpenCheckpoint(cp->note, verifier_);
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(parsed->origin, kLogOrigin);
    EXPECT_EQ(parsed->size, leaves.size());
    EXPECT_EQ(parsed->root, merkle::ReferenceRoot(leaves));
    checkpoints.push_back(cp->note);
  }
  for (size_t a = 0; a < checkpoints.size(); ++a) {
    for (size_t b = a; b < checkpoints.size(); ++b) {
      uint64_t s1 = OpenCheckpoint(checkpoints[a], verifier_)->size;
      uint64_t s2 = OpenCheckpoint(checkpoints[b], verifier_)->size;
      auto proof = ledger_->LogConsistency(s1, s2);
      ASSERT_TRUE(proof.ok()) << proof.status();
      EXPECT_TRUE(VerifyLogConsistency(checkpoints[a], checkpoints[b], *proof,
                                       verifier_)
                      .ok());
      auto want = merkle::ReferenceConsistencyProof(
          absl::MakeSpan(leaves).subspan(0, s2), s1);
      EXPECT_EQ(*proof, *want);
    }
  }
  for (uint64_t i = 0; i < leaves.size(); ++i) {
    auto incl = ledger_->LogInclusionForLeaf(i, 9);
    if (i >= 9) {
      EXPECT_EQ(incl.status().code(), absl::StatusCode::kInvalidArgument);
      continue;
    }
    ASSERT_TRUE(incl.ok()) << incl.status();
    EXPECT_EQ(incl->leaf_hash, leaves[i]);
    EXPECT_EQ(incl->hashes, *merkle::ReferenceInclusionProof(
                                absl::MakeSpan(leaves).subspan(0, 9), i));
    EXPECT_FALSE(incl->log_checkpoint.empty());  // 9 was a batch boundary
  }
}

TEST_P(LedgerTest, IntegratesInBatchesOfAtMostMaxBatchEntries) {
  options_.sequencer.max_batch_entries = 4;
  OpenLedger();
  for (int i = 0; i < 10; ++i) SealedTrace(0);
  EXPECT_EQ(*ledger_->sequencer().IntegrateBatch(), 4u);
  EXPECT_EQ(ledger_->LatestLogCheckpoint()->size, 4u);
  ASSERT_TRUE(ledger_->Flush().ok());
  EXPECT_EQ(ledger_->LatestLogCheckpoint()->size, 10u);
  EXPECT_EQ(*ledger_->sequencer().IntegrateBatch(), 0u);
}

TEST_P(LedgerTest, ListsTracesNewestFirstWithPageTokens) {
  OpenLedger();
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(SealedTrace(0));
  std::vector<std::string> seen;
  std::string token;
  int pages = 0;
  do {
    auto page = ledger_->ListTraces(token, 2);
    ASSERT_TRUE(page.ok()) << page.status();
    for (const auto& t : page->traces) seen.push_back(t.trace_id);
    token = page->next_page_token;
    ++pages;
  } while (!token.empty());
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(seen, std::vector<std::string>(ids.rbegin(), ids.rend()));
  for (const char* bad : {"garbage", "traces.v1.", "traces.v1.x",
                                 "traces.v1.0", "traces.v1.01", "7"}) {
    EXPECT_EQ(ledger_->ListTraces(bad, 2).status().code(),
              absl::StatusCode::kInvalidArgument)
        << bad;
  }
  EXPECT_EQ(ledger_->ListTraces("", -1).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ledger_->ListTraces("", 0)->traces.size(), 5u);
}

TEST_P(LedgerTest, BundleUsesTheAnchoredCheckpoint) {
  OpenLedger();
  std::string first = SealedTrace(1);
  SealedTrace(1);
  ASSERT_TRUE(ledger_->Flush().ok());  // checkpoint of size 2
  std::string later = SealedTrace(1);
  ASSERT_TRUE(ledger_->Flush().ok());  // size 3
  Anchor anchor{2, 11155111, "0x" + std::string(40, 'c'),
                "0x" + std::string(64, 'd'), 1234, absl::FromUnixSeconds(5)};
  Anchor wrong = anchor;
  wrong.log_size = 1;
  EXPECT_EQ(ledger_->RecordAnchor(wrong).code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(ledger_->RecordAnchor(anchor).ok());
  EXPECT_EQ(ledger_->RecordAnchor(anchor).code(),
            absl::StatusCode::kAlreadyExists);

  auto b = ledger_->GetStepBundle(first, 1);
  ASSERT_TRUE(b.ok()) << b.status();
  ASSERT_TRUE(b->anchor.has_value());
  EXPECT_EQ(b->anchor->chain_id, "11155111");
  EXPECT_EQ(b->anchor->block_number, 1234u);
  ASSERT_TRUE(b->log.has_value());
  EXPECT_EQ(OpenCheckpoint(b->log->checkpoint, verifier_)->size, 2u);
  EXPECT_TRUE(VerifyBundle(*b, verifier_).ok()) << VerifyBundle(*b, verifier_);

  auto c = ledger_->GetStepBundle(later, 1);
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->anchor.has_value());
  EXPECT_EQ(OpenCheckpoint(c->log->checkpoint, verifier_)->size, 3u);
  EXPECT_TRUE(VerifyBundle(*c, verifier_).ok());
}

TEST_P(LedgerTest, BackgroundSequencerIntegratesWithinTheBatchDelay) {
  options_.clock = nullptr;  // real time for the background thread
  options_.sequencer.background = true;
  options_.sequencer.max_batch_delay = absl::Milliseconds(20);
  OpenLedger();
  std::string id = SealedTrace(1);
  absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (!ledger_->GetTrace(id)->log_index.has_value() &&
         absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_TRUE(ledger_->GetTrace(id)->log_index.has_value());
  EXPECT_TRUE(ledger_->sequencer().last_error().ok());
}

TEST_P(LedgerTest, ConcurrentTracesAllReachTheLog) {
  options_.clock = nullptr;
  options_.sequencer.background = true;
  options_.sequencer.max_batch_delay = absl::Milliseconds(5);
  OpenLedger();
  constexpr int kThreads = 4;
  const int per_thread = GetParam().sqlite ? 5 : 50;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  absl::Mutex ids_mu;
  std::vector<std::string> ids;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < per_thread; ++i) {
        auto s = ledger_->StartTrace(MakeHeader(signer_, "p"));
        if (!s.ok()) { failures++; continue; }
        for (int k = 0; k < 3; ++k) {
          if (!ledger_->AppendStep(s->trace_id, MakeStep("s")).ok()) failures++;
        }
        if (!ledger_->SealTrace(s->trace_id).ok()) failures++;
        absl::MutexLock l(&ids_mu);
        ids.push_back(s->trace_id);
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_TRUE(ledger_->Flush().ok());
  EXPECT_EQ(failures, 0);
  EXPECT_EQ(ledger_->LatestLogCheckpoint()->size,
            static_cast<uint64_t>(kThreads * per_thread));
  for (const std::string& id : ids) {
    auto b = ledger_->GetStepBundle(id, 3);
    ASSERT_TRUE(b.ok());
    EXPECT_TRUE(VerifyBundle(*b, verifier_).ok());
  }
}

TEST_P(LedgerTest, RefusesAnotherLogsStore) {
  if (!GetParam().sqlite) GTEST_SKIP() << "needs a persistent store";
  OpenLedger();
  SealedTrace(0);
  ASSERT_TRUE(ledger_->Flush().ok());
  ledger_.reset();
  options_.log_origin = "another.log";
  auto l = Ledger::Open(OpenStore(), &signer_, options_);
  EXPECT_EQ(l.status().code(), absl::StatusCode::kFailedPrecondition)
      << l.status();
}

TEST_P(LedgerTest, ReopenedLedgerKeepsInterruptedTracesReadable) {
  if (!GetParam().sqlite) GTEST_SKIP() << "needs a persistent store";
  OpenLedger();
  auto t = ledger_->StartTrace(MakeHeader(signer_, "p"));
  ASSERT_TRUE(t.ok());
  ASSERT_TRUE(ledger_->AppendStep(t->trace_id, MakeStep("one")).ok());
  auto two = ledger_->AppendStep(t->trace_id, MakeStep("two"));
  ASSERT_TRUE(two.ok());
  std::string sealed_id = SealedTrace(1);
  ledger_.reset();  // the process "stops" with one trace open

  OpenLedger();
  auto info = ledger_->GetTrace(t->trace_id);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->state, TraceState::kInterrupted);
  EXPECT_EQ(info->size, 3u);
  EXPECT_EQ(info->latest_checkpoint, two->signed_checkpoint);
  auto b = ledger_->GetStepBundle(t->trace_id, 2);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_FALSE(b->log.has_value());
  EXPECT_TRUE(VerifyBundle(*b, verifier_).ok()) << VerifyBundle(*b, verifier_);
  EXPECT_EQ(ledger_->AppendStep(t->trace_id, MakeStep("three")).status().code(),
            absl::StatusCode::kFailedPrecondition);
  // The sealed trace was integrated (by the closing ledger's flush).
  EXPECT_TRUE(ledger_->GetTrace(sealed_id)->log_index.has_value());
}

// A store whose log nodes do not give the root its latest signed checkpoint
// states is refused at open, not extended.
TEST(LedgerOpenTest, RefusesLogWhoseNodesDisagreeWithItsCheckpoint) {
  Signer signer = MakeSigner();
  std::unique_ptr<ProvenanceStore> store = NewInMemoryProvenanceStore();
  LogBatch batch;
  batch.first_index = 0;
  batch.leaves.push_back({0, "t", "leaf", merkle::HashLeaf("leaf")});
  batch.nodes.push_back({{0, 0}, merkle::HashLeaf("leaf")});
  Checkpoint cp;
  cp.origin = kLogOrigin;
  cp.size = 1;
  cp.root = merkle::HashLeaf("another leaf");  // not what the nodes give
  batch.checkpoint = *SignNote(cp.Marshal(), signer);
  ASSERT_TRUE(store->AppendLogBatch(batch).ok());
  LedgerOptions o;
  o.log_origin = kLogOrigin;
  o.sequencer.background = false;
  auto ledger = Ledger::Open(std::move(store), &signer, o);
  EXPECT_EQ(ledger.status().code(), absl::StatusCode::kDataLoss)
      << ledger.status();
}

INSTANTIATE_TEST_SUITE_P(Stores, LedgerTest,
                         testing::Values(StoreKind{"InMemory", false},
                                         StoreKind{"Sqlite", true}),
                         [](const testing::TestParamInfo<StoreKind>& i) {
                           return i.param.name;
                         });

}  // namespace
}  // namespace stepproof::provenance
