// ProvenanceStore conformance: one suite, run against the SQLite and the
// in-memory store; then SQLite-only checks (reopen, foreign and damaged
// files). Proof-bearing data is checked against merkle/'s reference (O(n),
// recursive) implementation, not against what the store wrote.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "merkle/compact_range.h"
#include "merkle/hash.h"
#include "merkle/proof_builder.h"
#include "merkle/tree.h"
#include "provenance/log/memory_store.h"
#include "provenance/log/sqlite_store.h"
#include "provenance/log/store.h"

namespace stepproof::provenance {
namespace {

namespace fs = std::filesystem;

std::string TraceId(int i) {
  std::string s = absl::StrCat("trace", i);
  s.resize(32, 'f');  // distinct for every i (no digit is 'f')
  return s;
}

// A trace leaf write for leaf `index`, tracking the trace's compact range.
TraceLeafWrite LeafWrite(const std::string& trace_id, uint64_t index,
                         merkle::CompactRange& range) {
  TraceLeafWrite w;
  w.trace_id = trace_id;
  w.index = index;
  w.encoded_record = absl::StrCat("record ", trace_id, " ", index);
  w.leaf_hash = merkle::HashLeaf(w.encoded_record);
  range.Append(w.leaf_hash, [&](const merkle::NodeId& id, const merkle::Hash& h) {
    w.new_nodes.push_back({id, h});
  });
  w.signed_checkpoint = absl::StrCat("checkpoint ", trace_id, " ", index + 1,
                                     " ", merkle::ToHex(range.Root()));
  return w;
}

TraceRecord NewTrace(const std::string& id) {
  TraceRecord t;
  t.trace_id = id;
  t.header = absl::StrCat("header of ", id);
  t.created = absl::FromUnixSeconds(1700000000);
  return t;
}

// Reads log nodes through the store (what the ledger does).
class LogNodes : public merkle::NodeReader {
 public:
  explicit LogNodes(ProvenanceStore* s) : s_(s) {}
  absl::StatusOr<std::vector<merkle::Hash>> GetNodes(
      absl::Span<const merkle::NodeId> ids) const override {
    return s_->GetLogNodes(ids);
  }

 private:
  ProvenanceStore* s_;
};

class TraceNodes : public merkle::NodeReader {
 public:
  TraceNodes(ProvenanceStore* s, std::string id) : s_(s), id_(std::move(id)) {}
  absl::StatusOr<std::vector<merkle::Hash>> GetNodes(
      absl::Span<const merkle::NodeId> ids) const override {
    return s_->GetTraceNodes(id_, ids);
  }

 private:
  ProvenanceStore* s_;
  std::string id_;
};

struct Backend {
  std::string name;
  // Opens a store; `dir` is a fresh directory for file-backed stores.
  std::function<std::unique_ptr<ProvenanceStore>(const fs::path& dir)> open;
};

fs::path FreshDir(std::string name) {
  // Parameterised test names hold '/': keep the directory flat so that
  // removing it removes everything.
  std::replace(name.begin(), name.end(), '/', '_');
  fs::path dir = fs::temp_directory_path() /
                 absl::StrCat("stepproof_store_test_", getpid(), "_", name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

class StoreConformance : public testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    const testing::TestInfo* info =
        testing::UnitTest::GetInstance()->current_test_info();
    dir_ = FreshDir(absl::StrCat(GetParam().name, "_", info->name()));
    store_ = GetParam().open(dir_);
    ASSERT_NE(store_, nullptr);
  }
  void TearDown() override {
    store_.reset();
    fs::remove_all(dir_);
  }

  // Creates a trace with `leaves` leaves (header included); returns their
  // leaf hashes.
  std::vector<merkle::Hash> MakeTrace(const std::string& id, uint64_t leaves) {
    merkle::CompactRange range;
    std::vector<merkle::Hash> hashes;
    TraceLeafWrite header = LeafWrite(id, 0, range);
    hashes.push_back(header.leaf_hash);
    EXPECT_TRUE(store_->CreateTrace(NewTrace(id), header).ok());
    for (uint64_t i = 1; i < leaves; ++i) {
      TraceLeafWrite w = LeafWrite(id, i, range);
      hashes.push_back(w.leaf_hash);
      EXPECT_TRUE(store_->AppendTraceLeaf(w).ok());
    }
    return hashes;
  }

  // Seals and integrates `ids` as one batch, tracking the log's range.
  absl::Status Integrate(const std::vector<std::string>& ids) {
    LogBatch batch;
    batch.first_index = log_range_.size();
    for (const std::string& id : ids) {
      std::string note = absl::StrCat("final ", id);
      absl::Status s = store_->SealTrace(id, note, "promise " + id,
                                         absl::FromUnixSeconds(1));
      if (!s.ok()) return s;
      LogLeaf leaf{log_range_.size(), id, note, merkle::HashLeaf(note)};
      log_leaf_hashes_.push_back(leaf.leaf_hash);
      log_range_.Append(leaf.leaf_hash,
                        [&](const merkle::NodeId& n, const merkle::Hash& h) {
                          batch.nodes.push_back({n, h});
                        });
      batch.leaves.push_back(std::move(leaf));
    }
    batch.checkpoint = absl::StrCat("log checkpoint ", log_range_.size());
    batch.integrated = absl::FromUnixSeconds(2);
    return store_->AppendLogBatch(batch);
  }

  fs::path dir_;
  std::unique_ptr<ProvenanceStore> store_;
  merkle::CompactRange log_range_;
  std::vector<merkle::Hash> log_leaf_hashes_;
};

TEST_P(StoreConformance, StoresAndReturnsTraceLeavesAndCheckpoints) {
  const std::string id = TraceId(1);
  std::vector<merkle::Hash> leaves = MakeTrace(id, 5);

  absl::StatusOr<TraceRecord> t = store_->GetTrace(id);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->trace_id, id);
  EXPECT_EQ(t->header, absl::StrCat("record ", id, " 0"));  // leaf 0
  EXPECT_EQ(t->state, TraceState::kOpen);
  EXPECT_EQ(t->size, 5u);
  EXPECT_EQ(t->created, absl::FromUnixSeconds(1700000000));
  EXPECT_EQ(t->latest_checkpoint,
            absl::StrCat("checkpoint ", id, " 5 ",
                         merkle::ToHex(merkle::ReferenceRoot(leaves))));
  EXPECT_FALSE(t->log_index.has_value());
  EXPECT_GT(t->seq, 0u);

  absl::StatusOr<StepRow> step = store_->GetStep(id, 3);
  ASSERT_TRUE(step.ok()) << step.status();
  EXPECT_EQ(step->encoded_record, absl::StrCat("record ", id, " 3"));
  EXPECT_EQ(step->leaf_hash, leaves[3]);

  absl::StatusOr<std::string> cp = store_->GetTraceCheckpoint(id, 2);
  ASSERT_TRUE(cp.ok()) << cp.status();
  EXPECT_EQ(*cp, absl::StrCat("checkpoint ", id, " 2 ",
                              merkle::ToHex(merkle::ReferenceRoot(
                                  absl::MakeSpan(leaves).subspan(0, 2)))));
}

TEST_P(StoreConformance, TraceNodesGiveReferenceProofs) {
  const std::string id = TraceId(2);
  std::vector<merkle::Hash> leaves = MakeTrace(id, 23);
  TraceNodes reader(store_.get(), id);
  for (uint64_t size = 1; size <= 23; size += 3) {
    for (uint64_t i = 0; i < size; ++i) {
      auto proof = merkle::MakeInclusionProof(reader, i, size);
      ASSERT_TRUE(proof.ok()) << proof.status();
      auto want = merkle::ReferenceInclusionProof(
          absl::MakeSpan(leaves).subspan(0, size), i);
      ASSERT_TRUE(want.ok());
      EXPECT_EQ(*proof, *want) << "index " << i << " size " << size;
    }
    auto root = merkle::MakeRoot(reader, size);
    ASSERT_TRUE(root.ok());
    EXPECT_EQ(*root,
              merkle::ReferenceRoot(absl::MakeSpan(leaves).subspan(0, size)));
  }
}

TEST_P(StoreConformance, UnknownTraceStepAndNodeAreNotFound) {
  MakeTrace(TraceId(3), 2);
  EXPECT_EQ(store_->GetTrace(TraceId(99)).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->GetStep(TraceId(3), 2).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->GetStep(TraceId(99), 0).status().code(),
            absl::StatusCode::kNotFound);
  merkle::NodeId missing{1, 5};
  EXPECT_EQ(store_->GetTraceNodes(TraceId(3), {&missing, 1}).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->GetTraceCheckpoint(TraceId(3), 7).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->SealTrace(TraceId(99), "x", "y", absl::Now()).code(),
            absl::StatusCode::kNotFound);
}

TEST_P(StoreConformance, RejectsDuplicateTraceAndOutOfOrderLeaf) {
  const std::string id = TraceId(4);
  MakeTrace(id, 3);
  merkle::CompactRange r;
  EXPECT_EQ(store_->CreateTrace(NewTrace(id), LeafWrite(id, 0, r)).code(),
            absl::StatusCode::kAlreadyExists);
  merkle::CompactRange r2;
  TraceLeafWrite skip = LeafWrite(id, 5, r2);
  EXPECT_EQ(store_->AppendTraceLeaf(skip).code(),
            absl::StatusCode::kFailedPrecondition);
  TraceLeafWrite again = LeafWrite(id, 2, r2);
  EXPECT_EQ(store_->AppendTraceLeaf(again).code(),
            absl::StatusCode::kFailedPrecondition);
  // Nothing of the failed writes is visible.
  EXPECT_EQ(store_->GetTrace(id)->size, 3u);
  EXPECT_EQ(store_->GetStep(id, 2)->encoded_record,
            absl::StrCat("record ", id, " 2"));
  // A header leaf that is not leaf 0 is refused.
  merkle::CompactRange r3;
  TraceLeafWrite not_zero = LeafWrite(TraceId(5), 1, r3);
  EXPECT_EQ(store_->CreateTrace(NewTrace(TraceId(5)), not_zero).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->GetTrace(TraceId(5)).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_P(StoreConformance, SealedTraceIsQueuedAndFrozen) {
  const std::string id = TraceId(6);
  MakeTrace(id, 2);
  ASSERT_TRUE(store_->SealTrace(id, "final", "promise",
                                absl::FromUnixSeconds(5)).ok());
  absl::StatusOr<TraceRecord> t = store_->GetTrace(id);
  EXPECT_EQ(t->state, TraceState::kSealed);
  EXPECT_EQ(t->final_checkpoint, "final");
  EXPECT_EQ(t->promise, "promise");
  EXPECT_EQ(store_->SealTrace(id, "again", "p", absl::Now()).code(),
            absl::StatusCode::kFailedPrecondition);
  merkle::CompactRange r;
  LeafWrite(id, 0, r);
  LeafWrite(id, 1, r);
  EXPECT_EQ(store_->AppendTraceLeaf(LeafWrite(id, 2, r)).code(),
            absl::StatusCode::kFailedPrecondition);

  auto pending = store_->ListPendingLogEntries(10);
  ASSERT_TRUE(pending.ok());
  ASSERT_EQ(pending->size(), 1u);
  EXPECT_EQ((*pending)[0].trace_id, id);
  EXPECT_EQ((*pending)[0].leaf, "final");
  EXPECT_EQ((*pending)[0].sealed, absl::FromUnixSeconds(5));
  EXPECT_EQ(*store_->CountPendingLogEntries(), 1u);
}

TEST_P(StoreConformance, InterruptsOnlyOpenTraces) {
  MakeTrace(TraceId(7), 2);
  MakeTrace(TraceId(8), 2);
  ASSERT_TRUE(store_->SealTrace(TraceId(8), "f", "p", absl::Now()).ok());
  EXPECT_EQ(*store_->InterruptOpenTraces(), 1u);
  EXPECT_EQ(store_->GetTrace(TraceId(7))->state, TraceState::kInterrupted);
  EXPECT_EQ(store_->GetTrace(TraceId(8))->state, TraceState::kSealed);
  // Still readable, no longer appendable.
  EXPECT_EQ(store_->GetTrace(TraceId(7))->size, 2u);
  merkle::CompactRange r;
  LeafWrite(TraceId(7), 0, r);
  LeafWrite(TraceId(7), 1, r);
  EXPECT_EQ(store_->AppendTraceLeaf(LeafWrite(TraceId(7), 2, r)).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(*store_->InterruptOpenTraces(), 0u);
}

TEST_P(StoreConformance, ListsTracesNewestFirstInPages) {
  for (int i = 0; i < 7; ++i) MakeTrace(TraceId(100 + i), 1);
  std::vector<std::string> seen;
  uint64_t before = 0;
  while (true) {
    auto page = store_->ListTraces(before, 3);
    ASSERT_TRUE(page.ok());
    if (page->empty()) break;
    EXPECT_LE(page->size(), 3u);
    for (const TraceRecord& t : *page) seen.push_back(t.trace_id);
    before = page->back().seq;
  }
  std::vector<std::string> want;
  for (int i = 6; i >= 0; --i) want.push_back(TraceId(100 + i));
  EXPECT_EQ(seen, want);
}

TEST_P(StoreConformance, LogBatchesGiveReferenceProofsAndClearQueue) {
  std::vector<std::string> all;
  for (int i = 0; i < 37; ++i) {
    all.push_back(TraceId(200 + i));
    MakeTrace(all.back(), 1);
  }
  EXPECT_EQ(*store_->LogSize(), 0u);
  EXPECT_EQ(store_->LatestLogCheckpoint().status().code(),
            absl::StatusCode::kNotFound);
  // Batches of uneven sizes.
  size_t next = 0;
  for (size_t n : {1, 4, 7, 16, 9}) {
    std::vector<std::string> ids(all.begin() + next, all.begin() + next + n);
    ASSERT_TRUE(Integrate(ids).ok());
    next += n;
  }
  ASSERT_EQ(next, all.size());
  EXPECT_EQ(*store_->LogSize(), 37u);
  EXPECT_EQ(*store_->CountPendingLogEntries(), 0u);
  EXPECT_EQ(store_->LatestLogCheckpoint()->note, "log checkpoint 37");
  EXPECT_EQ(store_->GetLogCheckpoint(12)->note, "log checkpoint 12");
  EXPECT_EQ(store_->GetLogCheckpoint(13).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(*store_->GetTrace(all[20])->log_index, 20u);
  absl::StatusOr<LogLeaf> leaf = store_->GetLogLeaf(20);
  ASSERT_TRUE(leaf.ok());
  EXPECT_EQ(leaf->trace_id, all[20]);
  EXPECT_EQ(leaf->leaf, "final " + all[20]);
  EXPECT_EQ(leaf->leaf_hash, merkle::HashLeaf("final " + all[20]));
  EXPECT_EQ(store_->GetLogLeaf(37).status().code(),
            absl::StatusCode::kNotFound);

  LogNodes reader(store_.get());
  for (uint64_t size : {1, 5, 12, 28, 37}) {
    auto span = absl::MakeSpan(log_leaf_hashes_).subspan(0, size);
    for (uint64_t i = 0; i < size; ++i) {
      auto proof = merkle::MakeInclusionProof(reader, i, size);
      ASSERT_TRUE(proof.ok()) << proof.status();
      EXPECT_EQ(*proof, *merkle::ReferenceInclusionProof(span, i));
    }
    for (uint64_t m = 1; m <= size; ++m) {
      auto proof = merkle::MakeConsistencyProof(reader, m, 37);
      ASSERT_TRUE(proof.ok()) << proof.status();
      EXPECT_EQ(*proof, *merkle::ReferenceConsistencyProof(
                            absl::MakeSpan(log_leaf_hashes_), m));
    }
  }
}

TEST_P(StoreConformance, RejectsLogBatchThatDoesNotFollowOn) {
  MakeTrace(TraceId(300), 1);
  ASSERT_TRUE(Integrate({TraceId(300)}).ok());
  LogBatch gap;
  gap.first_index = 5;
  gap.leaves.push_back({5, "x", "y", merkle::HashLeaf("y")});
  gap.checkpoint = "c";
  EXPECT_EQ(store_->AppendLogBatch(gap).code(),
            absl::StatusCode::kFailedPrecondition);
  LogBatch misnumbered;
  misnumbered.first_index = 1;
  misnumbered.leaves.push_back({2, "x", "y", merkle::HashLeaf("y")});
  misnumbered.checkpoint = "c";
  EXPECT_EQ(store_->AppendLogBatch(misnumbered).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(*store_->LogSize(), 1u);
}

TEST_P(StoreConformance, AnchorsNeedACheckpointAndCoverLaterLeaves) {
  for (int i = 0; i < 6; ++i) MakeTrace(TraceId(400 + i), 1);
  ASSERT_TRUE(Integrate({TraceId(400), TraceId(401)}).ok());          // size 2
  ASSERT_TRUE(Integrate({TraceId(402), TraceId(403), TraceId(404)}).ok());  // 5
  Anchor a{5, 1, "0xcontract", "0xtx1", 100, absl::FromUnixSeconds(9)};
  Anchor bad = a;
  bad.log_size = 4;
  bad.tx_hash = "0xtx0";
  EXPECT_EQ(store_->PutAnchor(bad).code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(store_->PutAnchor(a).ok());
  EXPECT_EQ(store_->PutAnchor(a).code(), absl::StatusCode::kAlreadyExists);
  Anchor early{2, 1, "0xcontract", "0xtx2", 90, absl::FromUnixSeconds(8)};
  ASSERT_TRUE(store_->PutAnchor(early).ok());

  auto cover0 = store_->FirstAnchorCovering(0);
  ASSERT_TRUE(cover0.ok() && cover0->has_value());
  EXPECT_EQ((*cover0)->tx_hash, "0xtx2");
  auto cover3 = store_->FirstAnchorCovering(3);
  ASSERT_TRUE(cover3.ok() && cover3->has_value());
  EXPECT_EQ((*cover3)->tx_hash, "0xtx1");
  EXPECT_EQ((*cover3)->block_number, 100u);
  EXPECT_EQ((*cover3)->contract, "0xcontract");
  EXPECT_EQ((*cover3)->time, absl::FromUnixSeconds(9));
  auto cover5 = store_->FirstAnchorCovering(5);
  ASSERT_TRUE(cover5.ok());
  EXPECT_FALSE(cover5->has_value());
  auto all = store_->ListAnchors();
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].log_size, 2u);
}

TEST_P(StoreConformance, ReadersRunWhileWriterAppends) {
  std::atomic<bool> done{false};
  std::atomic<int> read_errors{0};
  std::thread writer([&] {
    for (int i = 0; i < 40; ++i) {
      MakeTrace(TraceId(500 + i), 3);
      if (!Integrate({TraceId(500 + i)}).ok()) read_errors++;
    }
    done = true;
  });
  std::vector<std::thread> readers;
  for (int r = 0; r < 3; ++r) {
    readers.emplace_back([&] {
      LogNodes reader(store_.get());
      while (!done) {
        absl::StatusOr<LogCheckpointRow> cp = store_->LatestLogCheckpoint();
        if (!cp.ok()) continue;  // none yet
        uint64_t size = cp->size;
        // A committed checkpoint always has its nodes.
        if (!merkle::MakeRoot(reader, size).ok()) read_errors++;
        if (!store_->ListTraces(0, 5).ok()) read_errors++;
      }
    });
  }
  writer.join();
  for (auto& t : readers) t.join();
  EXPECT_EQ(read_errors, 0);
  EXPECT_EQ(*store_->LogSize(), 40u);
}

// Concurrent writes may share one SQLite transaction (group commit): a
// failing write must not take the others down with it, nor leave a trace.
TEST_P(StoreConformance, ConcurrentWritersSucceedOrFailIndependently) {
  constexpr int kThreads = 6;
  constexpr uint64_t kLeaves = 25;
  std::vector<std::vector<merkle::Hash>> hashes(kThreads);
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::string id = TraceId(600 + t);
      merkle::CompactRange range;
      TraceLeafWrite header = LeafWrite(id, 0, range);
      hashes[t].push_back(header.leaf_hash);
      if (!store_->CreateTrace(NewTrace(id), header).ok()) wrong++;
      for (uint64_t i = 1; i < kLeaves; ++i) {
        if (i % 4 == 0) {  // an out-of-order write, refused
          merkle::CompactRange scratch = range;
          TraceLeafWrite bad = LeafWrite(id, i + 3, scratch);
          if (store_->AppendTraceLeaf(bad).code() !=
              absl::StatusCode::kFailedPrecondition) {
            wrong++;
          }
        }
        TraceLeafWrite w = LeafWrite(id, i, range);
        hashes[t].push_back(w.leaf_hash);
        if (!store_->AppendTraceLeaf(w).ok()) wrong++;
      }
      if (!store_->SealTrace(id, "final " + id, "p", absl::Now()).ok()) wrong++;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong, 0);
  for (int t = 0; t < kThreads; ++t) {
    const std::string id = TraceId(600 + t);
    absl::StatusOr<TraceRecord> rec = store_->GetTrace(id);
    ASSERT_TRUE(rec.ok());
    EXPECT_EQ(rec->size, kLeaves);
    EXPECT_EQ(rec->state, TraceState::kSealed);
    TraceNodes reader(store_.get(), id);
    EXPECT_EQ(*merkle::MakeRoot(reader, kLeaves),
              merkle::ReferenceRoot(hashes[t]));
    EXPECT_EQ(store_->GetStep(id, kLeaves).status().code(),
              absl::StatusCode::kNotFound);
  }
  EXPECT_EQ(*store_->CountPendingLogEntries(), static_cast<uint64_t>(kThreads));
}

INSTANTIATE_TEST_SUITE_P(
    Backends, StoreConformance,
    testing::Values(
        Backend{"InMemory",
                [](const fs::path&) { return NewInMemoryProvenanceStore(); }},
        Backend{"Sqlite",
                [](const fs::path& dir) -> std::unique_ptr<ProvenanceStore> {
                  auto s = OpenSqliteProvenanceStore((dir / "p.db").string());
                  EXPECT_TRUE(s.ok()) << s.status();
                  return s.ok() ? std::move(*s) : nullptr;
                }}),
    [](const testing::TestParamInfo<Backend>& info) { return info.param.name; });

// ---- SQLite only ------------------------------------------------------------

class SqliteStoreFile : public testing::Test {
 protected:
  void SetUp() override {
    dir_ = FreshDir(
        testing::UnitTest::GetInstance()->current_test_info()->name());
    path_ = (dir_ / "p.db").string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A store with `traces` small traces, closed again.
  void Populate(int traces) {
    auto s = OpenSqliteProvenanceStore(path_);
    ASSERT_TRUE(s.ok()) << s.status();
    for (int i = 0; i < traces; ++i) {
      merkle::CompactRange r;
      TraceLeafWrite w = LeafWrite(TraceId(i), 0, r);
      w.encoded_record.append(200, 'x');  // fill pages
      ASSERT_TRUE((*s)->CreateTrace(NewTrace(TraceId(i)), w).ok());
    }
  }

  void PatchBytes(size_t offset, const std::string& bytes) {
    std::fstream f(path_, std::ios::in | std::ios::out | std::ios::binary);
    ASSERT_TRUE(f.good());
    f.seekp(static_cast<std::streamoff>(offset));
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }

  fs::path dir_;
  std::string path_;
};

TEST_F(SqliteStoreFile, KeepsDataAcrossReopen) {
  Populate(3);
  auto s = OpenSqliteProvenanceStore(path_);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ((*s)->GetTrace(TraceId(2))->header.substr(0, 6), "record");
  EXPECT_EQ((*s)->ListTraces(0, 10)->size(), 3u);
}

TEST_F(SqliteStoreFile, WritesApplicationIdAndSchemaVersionIntoHeader) {
  Populate(1);
  std::ifstream f(path_, std::ios::binary);
  std::string header(100, '\0');
  f.read(header.data(), 100);
  ASSERT_EQ(header.substr(0, 16), std::string("SQLite format 3\0", 16));
  auto be32 = [&](size_t off) {
    return (uint32_t{static_cast<uint8_t>(header[off])} << 24) |
           (uint32_t{static_cast<uint8_t>(header[off + 1])} << 16) |
           (uint32_t{static_cast<uint8_t>(header[off + 2])} << 8) |
           uint32_t{static_cast<uint8_t>(header[off + 3])};
  };
  EXPECT_EQ(be32(68), 0x53545046u);  // application_id "STPF"
  EXPECT_EQ(be32(60), static_cast<uint32_t>(SqliteSchemaVersion()));
}

TEST_F(SqliteStoreFile, RefusesForeignApplicationId) {
  Populate(1);
  PatchBytes(68, "ABCD");
  auto s = OpenSqliteProvenanceStore(path_);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(s.status().message().find("not a StepProof database"),
            std::string::npos)
      << s.status();
}

TEST_F(SqliteStoreFile, RefusesNewerSchema) {
  Populate(1);
  PatchBytes(60, std::string("\0\0\0\x63", 4));  // user_version 99
  auto s = OpenSqliteProvenanceStore(path_);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(s.status().message().find("schema version 99"), std::string::npos)
      << s.status();
}

TEST_F(SqliteStoreFile, RefusesFileThatIsNotADatabase) {
  {
    std::ofstream f(path_);
    for (int i = 0; i < 200; ++i) f << "this is a plain text file\n";
  }
  auto s = OpenSqliteProvenanceStore(path_);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kFailedPrecondition);
  // And leaves it alone.
  EXPECT_EQ(fs::file_size(path_), 200u * 26);
}

TEST_F(SqliteStoreFile, ReportsDamagedPagesAsDataLoss) {
  Populate(400);  // ~100 KB: many b-tree pages
  size_t size = fs::file_size(path_);
  ASSERT_GT(size, 16u * 4096);
  // Scribble over a run of interior pages (not the header page).
  std::string garbage(8 * 4096, '\0');
  for (size_t i = 0; i < garbage.size(); ++i) {
    garbage[i] = static_cast<char>((i * 2654435761u) >> 13);
  }
  PatchBytes(4 * 4096, garbage);
  auto s = OpenSqliteProvenanceStore(path_);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kDataLoss) << s.status();
}

TEST_F(SqliteStoreFile, MissingFileWithoutCreateIsFailedPrecondition) {
  SqliteStoreOptions o;
  o.create_if_missing = false;
  auto s = OpenSqliteProvenanceStore(path_, o);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace stepproof::provenance
