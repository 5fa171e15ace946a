// TraceStreamCheck on the stream a real TraceBuilder produces (leaf hash,
// record bytes and signed checkpoint per leaf, then the final checkpoint and
// the promise): the honest stream passes; each tampering is caught and named.
#include "clients/stream_check.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "provenance/promise.h"
#include "provenance/trace_builder.h"
#include "tests/clients/test_trace.h"

namespace stepproof::clients {
namespace {

using ::testing::HasSubstr;

constexpr char kTraceId[] = "00112233445566778899aabbccddeeff";

struct Leaf {
  std::string record;
  std::string leaf_hash;
  std::string checkpoint;
};

struct Stream {
  std::vector<Leaf> leaves;
  std::string final_checkpoint;
  std::string promise;
};

Stream MakeStream(const provenance::Signer& signer,
                  const std::string& trace_id = kTraceId) {
  Stream out;
  absl::StatusOr<provenance::TraceBuilder> b = provenance::TraceBuilder::Start(
      testing::kLogOrigin, trace_id, testing::MakeHeader(signer, "1 + 1?"),
      &signer);
  for (const char* text : {"one plus one", "is two", "2"}) {
    provenance::StepRecord step;
    step.kind = std::string(text) == "2" ? provenance::StepKind::kAnswer
                                         : provenance::StepKind::kReasoning;
    step.text = text;
    step.token_ids = {1, 2, 3};
    EXPECT_TRUE(b->AppendStep(step).ok());
  }
  for (const auto& a : b->appended()) {
    out.leaves.push_back({a.encoded_record,
                          std::string(a.leaf_hash.begin(), a.leaf_hash.end()),
                          a.signed_checkpoint});
  }
  out.final_checkpoint = *b->Finish();
  out.promise = *provenance::SignPromise(
      *provenance::MakePromise(testing::kLogOrigin, out.final_checkpoint,
                               1767225601000, 10),
      signer);
  return out;
}

absl::Status Feed(TraceStreamCheck& check, const Stream& s,
                  const std::string& trace_id = kTraceId) {
  for (size_t i = 0; i < s.leaves.size(); ++i) {
    const Leaf& l = s.leaves[i];
    if (absl::Status st =
            check.AddLeaf(trace_id, i, l.record, l.leaf_hash, l.checkpoint);
        !st.ok()) {
      return st;
    }
  }
  return check.Finish(s.final_checkpoint, s.promise);
}

class StreamCheckTest : public ::testing::Test {
 protected:
  StreamCheckTest() : signer_(testing::MakeSigner(11)) {
    stream_ = MakeStream(signer_);
  }
  std::string Fails(const Stream& s) {
    TraceStreamCheck check(signer_.verifier());
    absl::Status st = Feed(check, s);
    EXPECT_FALSE(st.ok());
    return std::string(st.message());
  }
  provenance::Signer signer_;
  Stream stream_;
};

TEST_F(StreamCheckTest, AcceptsTheHonestStream) {
  TraceStreamCheck check(signer_.verifier());
  ASSERT_TRUE(Feed(check, stream_).ok()) << Feed(check, stream_);
  EXPECT_EQ(check.leaves(), 4u);
}

TEST_F(StreamCheckTest, RejectsALeafHashThatIsNotTheRecords) {
  stream_.leaves[2].leaf_hash[0] ^= 1;
  EXPECT_THAT(Fails(stream_), HasSubstr("leaf 2: leaf hash is not"));
}

TEST_F(StreamCheckTest, RejectsAnEditedRecordEvenWithItsOwnHash) {
  // The server edits a record and sends the matching hash: the signed
  // checkpoint no longer commits to the leaves.
  Leaf& l = stream_.leaves[2];
  size_t pos = l.record.find("is two");
  ASSERT_NE(pos, std::string::npos);
  l.record[pos] = 'I';
  merkle::Hash h = merkle::HashLeaf(std::string_view(l.record));
  l.leaf_hash = std::string(h.begin(), h.end());
  EXPECT_THAT(Fails(stream_), HasSubstr("leaf 2: checkpoint: its root is not"));
}

TEST_F(StreamCheckTest, RejectsASkippedLeaf) {
  TraceStreamCheck check(signer_.verifier());
  const Leaf& l0 = stream_.leaves[0];
  ASSERT_TRUE(check.AddLeaf(kTraceId, 0, l0.record, l0.leaf_hash, l0.checkpoint).ok());
  const Leaf& l2 = stream_.leaves[2];
  absl::Status st = check.AddLeaf(kTraceId, 2, l2.record, l2.leaf_hash, l2.checkpoint);
  EXPECT_THAT(std::string(st.message()), HasSubstr("expected leaf 1 next"));
}

TEST_F(StreamCheckTest, RejectsACheckpointSignedByAnotherKey) {
  provenance::Signer other = testing::MakeSigner(12);
  Stream forged = MakeStream(other);
  stream_.leaves[1].checkpoint = forged.leaves[1].checkpoint;
  EXPECT_THAT(Fails(stream_), HasSubstr("leaf 1: checkpoint:"));
}

TEST_F(StreamCheckTest, RejectsLeavesOfAnotherTrace) {
  Stream other = MakeStream(signer_, "ffeeddccbbaa99887766554433221100");
  stream_.leaves[3] = other.leaves[3];
  EXPECT_THAT(Fails(stream_), HasSubstr("leaf 3: record is leaf 3 of trace ffee"));
}

TEST_F(StreamCheckTest, RejectsAFinalCheckpointThatDropsTheLastLeaf) {
  stream_.final_checkpoint = stream_.leaves[2].checkpoint;  // size 3, not final
  EXPECT_THAT(Fails(stream_), HasSubstr("final leaf 3: checkpoint: size 3"));
}

TEST_F(StreamCheckTest, RejectsAPromiseAboutAnotherTrace) {
  stream_.promise = MakeStream(signer_, "ffeeddccbbaa99887766554433221100").promise;
  EXPECT_THAT(Fails(stream_), HasSubstr("promise:"));
}

}  // namespace
}  // namespace stepproof::clients
