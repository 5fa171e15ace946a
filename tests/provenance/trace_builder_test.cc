// TraceBuilder: leaves, roots and proofs checked against merkle's reference
// (recursive RFC 9162) functions; checkpoints checked by opening them.
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "merkle/proof_verify.h"
#include "merkle/tree.h"
#include "provenance/checkpoint.h"
#include "provenance/note.h"
#include "provenance/trace_builder.h"
#include "provenance/verifier.h"
#include "test_util.h"

namespace stepproof::provenance {
namespace {

using testing::TestSigner;
using testing::TestTrace;

std::vector<merkle::Hash> LeafHashes(const TraceBuilder& b) {
  std::vector<merkle::Hash> out;
  for (const auto& a : b.appended()) {
    out.push_back(merkle::HashLeaf(a.encoded_record));
  }
  return out;
}

TEST(TraceBuilder, StartsWithTheHeaderRecord) {
  Signer s = TestSigner();
  TraceBuilder b = TestTrace(s, 0, /*finish=*/false);
  EXPECT_EQ(b.size(), 1u);
  const auto& h = b.header();
  EXPECT_EQ(h.leaf_index, 0u);
  auto rec = DecodeStepRecord(h.encoded_record);
  ASSERT_TRUE(rec.ok()) << rec.status();
  EXPECT_EQ(rec->kind, StepKind::kHeader);
  EXPECT_EQ(rec->trace_id, testing::kTraceId);
  auto header = HeaderFromRecord(*rec);
  ASSERT_TRUE(header.ok());
  EXPECT_EQ(*header, testing::TestHeader(s));
  Salt salt;
  salt.fill(1);  // the first value CountingSalts hands out
  EXPECT_EQ(rec->salt, salt);
}

TEST(TraceBuilder, LeavesRootsAndCheckpointsMatchTheReferenceTree) {
  Signer s = TestSigner();
  TraceBuilder b = TestTrace(s, 0, false);
  for (int i = 1; i <= 12; ++i) {
    auto a = b.AppendStep(testing::TestStep(i));
    ASSERT_TRUE(a.ok()) << a.status();
    EXPECT_EQ(a->leaf_index, static_cast<uint64_t>(i));
    EXPECT_EQ(a->leaf_hash, merkle::HashLeaf(a->encoded_record));
    auto rec = DecodeStepRecord(a->encoded_record);
    ASSERT_TRUE(rec.ok());
    EXPECT_EQ(rec->index, static_cast<uint64_t>(i));
    EXPECT_EQ(rec->text, testing::TestStep(i).text);
    // The checkpoint after this step states the reference root of leaves
    // [0, i].
    auto leaves = LeafHashes(b);
    auto cp = OpenCheckpoint(a->signed_checkpoint, s.verifier());
    ASSERT_TRUE(cp.ok()) << cp.status();
    EXPECT_EQ(cp->origin, b.origin());
    EXPECT_EQ(cp->size, static_cast<uint64_t>(i + 1));
    EXPECT_EQ(cp->root, merkle::ReferenceRoot(leaves));
    EXPECT_FALSE(cp->is_final());
    // new_nodes: the leaf first, then one node per closed subtree.
    ASSERT_FALSE(a->new_nodes.empty());
    EXPECT_EQ(a->new_nodes[0].first.level, 0u);
    EXPECT_EQ(a->new_nodes[0].second, a->leaf_hash);
    EXPECT_EQ(a->new_nodes.size(),
              1u + static_cast<size_t>(__builtin_ctzll(i + 1)));
  }
  auto leaves = LeafHashes(b);
  for (uint64_t size = 1; size <= b.size(); ++size) {
    for (uint64_t i = 0; i < size; ++i) {
      EXPECT_EQ(*b.InclusionProof(i, size),
                *merkle::ReferenceInclusionProof(
                    absl::MakeConstSpan(leaves).subspan(0, size), i));
    }
    for (uint64_t m = 1; m <= size; ++m) {
      EXPECT_EQ(*b.ConsistencyProof(m, size),
                *merkle::ReferenceConsistencyProof(
                    absl::MakeConstSpan(leaves).subspan(0, size), m));
    }
  }
}

TEST(TraceBuilder, ConsecutiveCheckpointsAreProvablyConsistent) {
  Signer s = TestSigner();
  TraceBuilder b = TestTrace(s, 6);
  for (uint64_t m = 1; m <= b.size(); ++m) {
    for (uint64_t n = m; n <= b.size(); ++n) {
      auto proof = b.ConsistencyProof(m, n);
      ASSERT_TRUE(proof.ok());
      EXPECT_TRUE(VerifyTraceConsistency(*b.checkpoint(m), *b.checkpoint(n),
                                         *proof, s.verifier())
                      .ok())
          << m << " -> " << n;
    }
    EXPECT_TRUE(VerifyTraceConsistency(
                    *b.checkpoint(m), b.final_checkpoint(),
                    *b.ConsistencyProof(m, b.size()), s.verifier())
                    .ok());
  }
  // A proof for other sizes does not verify.
  auto wrong = b.ConsistencyProof(2, 7);
  EXPECT_FALSE(VerifyTraceConsistency(*b.checkpoint(3), *b.checkpoint(7),
                                      *wrong, s.verifier())
                   .ok());
  // Newer-to-older is refused.
  EXPECT_FALSE(VerifyTraceConsistency(*b.checkpoint(7), *b.checkpoint(3), {},
                                      s.verifier())
                   .ok());
}

TEST(TraceBuilder, FinishSignsAFinalCheckpointOnceAndStopsAppends) {
  Signer s = TestSigner();
  TraceBuilder b = TestTrace(s, 3, false);
  EXPECT_FALSE(b.finished());
  auto note = b.Finish();
  ASSERT_TRUE(note.ok());
  auto cp = OpenCheckpoint(*note, s.verifier());
  ASSERT_TRUE(cp.ok());
  EXPECT_TRUE(cp->is_final());
  EXPECT_EQ(cp->extensions, std::vector<std::string>{"stepproof.final"});
  EXPECT_EQ(cp->size, 4u);
  EXPECT_EQ(cp->root, b.root());
  EXPECT_EQ(*b.Finish(), *note);
  auto after = b.AppendStep(testing::TestStep(4));
  EXPECT_EQ(after.status().code(), absl::StatusCode::kFailedPrecondition);
  // The whole trace verifies.
  std::vector<std::string> encoded;
  for (const auto& a : b.appended()) encoded.push_back(a.encoded_record);
  auto records = VerifyTrace(encoded, *note, s.verifier());
  ASSERT_TRUE(records.ok()) << records.status();
  EXPECT_EQ(records->size(), 4u);
}

TEST(TraceBuilder, RejectsBadInput) {
  Signer s = TestSigner();
  TraceHeader h = testing::TestHeader(s);
  EXPECT_FALSE(TraceBuilder::Start("", testing::kTraceId, h, &s).ok());
  EXPECT_FALSE(TraceBuilder::Start("a\nb", testing::kTraceId, h, &s).ok());
  EXPECT_FALSE(TraceBuilder::Start("log", "ABC", h, &s).ok());
  EXPECT_FALSE(TraceBuilder::Start("log", testing::kTraceId, h, nullptr).ok());
  TraceHeader bad = h;
  bad.backend = "";
  EXPECT_FALSE(TraceBuilder::Start("log", testing::kTraceId, bad, &s).ok());

  TraceBuilder b = TestTrace(s, 1, false);
  StepRecord header_again = testing::TestStep(2);
  header_again.kind = StepKind::kHeader;
  EXPECT_FALSE(b.AppendStep(header_again).ok());
  StepRecord bad_utf8 = testing::TestStep(2);
  bad_utf8.text = "\xff";
  EXPECT_FALSE(b.AppendStep(bad_utf8).ok());
  StepRecord mismatch = testing::TestStep(1);  // logprobs for 3 tokens
  mismatch.token_ids.push_back(9);
  EXPECT_FALSE(b.AppendStep(mismatch).ok());
  EXPECT_EQ(b.size(), 2u);  // failed appends change nothing
  EXPECT_EQ(b.record(5).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(b.checkpoint(0).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_FALSE(b.InclusionProof(0, 3).ok());
  EXPECT_FALSE(b.ConsistencyProof(0, 2).ok());
}

TEST(TraceBuilder, SaltsComeFromTheInjectedSourceAndDefaultIsRandom) {
  Signer s = TestSigner();
  TraceBuilder a = TestTrace(s, 2);
  EXPECT_EQ(a.record(1)->salt[0], 2);
  EXPECT_EQ(a.record(2)->salt[31], 3);
  auto r1 = TraceBuilder::Start("log", testing::kTraceId,
                                testing::TestHeader(s), &s);
  auto r2 = TraceBuilder::Start("log", testing::kTraceId,
                                testing::TestHeader(s), &s);
  ASSERT_TRUE(r1.ok() && r2.ok());
  EXPECT_NE(r1->record(0)->salt, r2->record(0)->salt);
  EXPECT_NE(r1->root(), r2->root());
}

TEST(TraceBuilder, BundlesForEveryStepVerifyMidStreamAndAtTheEnd) {
  Signer s = TestSigner();
  TraceBuilder b = TestTrace(s, 5, false);
  for (uint64_t i = 0; i < b.size(); ++i) {
    auto bundle = b.MakeBundle(i);
    ASSERT_TRUE(bundle.ok());
    EXPECT_TRUE(VerifyBundle(*bundle, s.verifier()).ok()) << i;
  }
  ASSERT_TRUE(b.Finish().ok());
  for (uint64_t i = 0; i < b.size(); ++i) {
    auto bundle = b.MakeBundle(i);
    ASSERT_TRUE(bundle.ok());
    EXPECT_EQ(bundle->trace_checkpoint, b.final_checkpoint());
    auto json = BundleToJson(*bundle);
    EXPECT_TRUE(VerifyBundleJson(json, s.verifier()).ok()) << json;
  }
}

}  // namespace
}  // namespace stepproof::provenance
