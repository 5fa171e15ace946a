// LogMonitor against logs built with the reference Merkle functions and
// signed with the real signer: an honest log that grows passes; a log that
// shows two histories (a fork at the same size, a fork that grew, a
// rollback) or a forged checkpoint is caught, and the message says which.
#include "clients/log_monitor.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "merkle/tree.h"
#include "tests/clients/test_trace.h"

namespace stepproof::clients {
namespace {

using ::testing::HasSubstr;
using testing::Leaves;
using testing::MakeSigner;
using testing::SignedLogCheckpoint;

// Serves consistency proofs from one history (the one the server keeps),
// and counts the calls.
struct ProofServer {
  std::vector<merkle::Hash> leaves;
  int calls = 0;
  ConsistencyProofFetcher fetcher() {
    return [this](uint64_t size1, uint64_t size2)
               -> absl::StatusOr<std::vector<merkle::Hash>> {
      ++calls;
      std::vector<merkle::Hash> prefix(leaves.begin(),
                                       leaves.begin() + static_cast<long>(size2));
      return merkle::ReferenceConsistencyProof(prefix, size1);
    };
  }
};

std::vector<merkle::Hash> Prefix(const std::vector<merkle::Hash>& v, size_t n) {
  return std::vector<merkle::Hash>(v.begin(), v.begin() + static_cast<long>(n));
}

class LogMonitorTest : public ::testing::Test {
 protected:
  LogMonitorTest() : signer_(MakeSigner(3)) { server_.leaves = Leaves("t", 20); }
  std::string Checkpoint(size_t n) {
    return SignedLogCheckpoint(signer_, Prefix(server_.leaves, n));
  }
  provenance::Signer signer_;
  ProofServer server_;
};

TEST_F(LogMonitorTest, AcceptsAnHonestLogAsItGrows) {
  LogMonitor monitor(signer_.verifier(), testing::kLogOrigin);
  auto fetch = server_.fetcher();
  absl::StatusOr<LogObservation> o = monitor.Observe(Checkpoint(3), fetch);
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->change, LogObservation::Change::kFirst);
  for (size_t n : {3, 4, 7, 8, 8, 16, 20}) {
    o = monitor.Observe(Checkpoint(n), fetch);
    ASSERT_TRUE(o.ok()) << "size " << n << ": " << o.status();
  }
  EXPECT_EQ(o->change, LogObservation::Change::kGrew);
  EXPECT_EQ(o->previous_size, 16u);
  EXPECT_EQ(monitor.latest()->size, 20u);
  EXPECT_EQ(server_.calls, 5);  // one proof per growth, none when unchanged
}

TEST_F(LogMonitorTest, AcceptsGrowthFromTheEmptyLogWithoutAProof) {
  LogMonitor monitor(signer_.verifier(), "");
  auto fetch = server_.fetcher();
  ASSERT_TRUE(monitor.Observe(Checkpoint(0), fetch).ok());
  absl::StatusOr<LogObservation> o = monitor.Observe(Checkpoint(5), fetch);
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(server_.calls, 0);
}

TEST_F(LogMonitorTest, CatchesTwoRootsAtOneSize) {
  LogMonitor monitor(signer_.verifier(), "");
  auto fetch = server_.fetcher();
  ASSERT_TRUE(monitor.Observe(Checkpoint(6), fetch).ok());
  std::vector<merkle::Hash> forked = Prefix(server_.leaves, 6);
  forked[4] = merkle::HashLeaf(std::string_view("rewritten"));
  absl::StatusOr<LogObservation> o =
      monitor.Observe(SignedLogCheckpoint(signer_, forked), fetch);
  ASSERT_FALSE(o.ok());
  EXPECT_THAT(std::string(o.status().message()),
              HasSubstr("the log shows two histories"));
  EXPECT_EQ(monitor.latest()->size, 6u);  // the latest is kept
}

TEST_F(LogMonitorTest, CatchesAForkThatGrew) {
  LogMonitor monitor(signer_.verifier(), "");
  auto fetch = server_.fetcher();
  ASSERT_TRUE(monitor.Observe(Checkpoint(6), fetch).ok());
  // The server now signs a 10-leaf history that rewrote leaf 2, and serves
  // proofs from it.
  ProofServer forked_server;
  forked_server.leaves = Prefix(server_.leaves, 10);
  forked_server.leaves[2] = merkle::HashLeaf(std::string_view("rewritten"));
  absl::StatusOr<LogObservation> o = monitor.Observe(
      SignedLogCheckpoint(signer_, forked_server.leaves),
      forked_server.fetcher());
  ASSERT_FALSE(o.ok());
  EXPECT_THAT(std::string(o.status().message()),
              HasSubstr("of size 10 is not consistent with the one of size 6"));
}

TEST_F(LogMonitorTest, CatchesARollback) {
  LogMonitor monitor(signer_.verifier(), "");
  auto fetch = server_.fetcher();
  ASSERT_TRUE(monitor.Observe(Checkpoint(9), fetch).ok());
  absl::StatusOr<LogObservation> o = monitor.Observe(Checkpoint(8), fetch);
  ASSERT_FALSE(o.ok());
  EXPECT_THAT(std::string(o.status().message()), HasSubstr("rolled back"));
}

TEST_F(LogMonitorTest, RejectsACheckpointSignedByAnotherKey) {
  LogMonitor monitor(signer_.verifier(), "");
  provenance::Signer other = MakeSigner(4);
  absl::StatusOr<LogObservation> o = monitor.Observe(
      SignedLogCheckpoint(other, Prefix(server_.leaves, 3)), server_.fetcher());
  ASSERT_FALSE(o.ok());
  EXPECT_FALSE(monitor.latest().has_value());
}

TEST_F(LogMonitorTest, RejectsAnotherOrigin) {
  LogMonitor monitor(signer_.verifier(), "");
  auto fetch = server_.fetcher();
  ASSERT_TRUE(monitor.Observe(Checkpoint(3), fetch).ok());
  absl::StatusOr<LogObservation> o = monitor.Observe(
      SignedLogCheckpoint(signer_, Prefix(server_.leaves, 4), "elsewhere/log"),
      fetch);
  ASSERT_FALSE(o.ok());
  EXPECT_THAT(std::string(o.status().message()), HasSubstr("origin"));
}

TEST_F(LogMonitorTest, ReportsAFailedFetchAndKeepsTheLatest) {
  LogMonitor monitor(signer_.verifier(), "");
  ASSERT_TRUE(monitor.Observe(Checkpoint(3), server_.fetcher()).ok());
  ConsistencyProofFetcher down =
      [](uint64_t, uint64_t) -> absl::StatusOr<std::vector<merkle::Hash>> {
    return absl::UnavailableError("connection refused");
  };
  absl::StatusOr<LogObservation> o = monitor.Observe(Checkpoint(5), down);
  ASSERT_FALSE(o.ok());
  EXPECT_TRUE(absl::IsUnavailable(o.status()));
  EXPECT_THAT(std::string(o.status().message()),
              HasSubstr("fetching the consistency proof from size 3 to 5"));
  EXPECT_EQ(monitor.latest()->size, 3u);
}

}  // namespace
}  // namespace stepproof::clients
