// Property tests: for every tree size up to 300, the store-backed builder
// agrees with the RFC recursion, made proofs verify, and any one-bit change to
// a proof element, the index, a size or a root is rejected.
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "merkle/compact_range.h"
#include "merkle/hash.h"
#include "merkle/proof_builder.h"
#include "merkle/proof_verify.h"
#include "merkle/tree.h"

namespace stepproof::merkle {
namespace {

constexpr uint64_t kMaxSize = 300;

// The shape of a proof, from the RFC 9162 recursion alone: for each element,
// whether it is a right ('R') or left ('L') sibling; for consistency proofs a
// leading 'S' marks the seed node (m == n with b false). A proof does not
// authenticate the tree size by itself (the signed checkpoint does): two sizes
// with the same shape accept the same proof, and only then may a size
// mutation pass.
void PathShape(uint64_t m, uint64_t n, std::string& out) {
  if (n <= 1) return;
  uint64_t k = SplitPoint(n);
  if (m < k) {
    PathShape(m, k, out);
    out += 'R';
  } else {
    PathShape(m - k, n - k, out);
    out += 'L';
  }
}
void SubproofShape(uint64_t m, uint64_t n, bool b, std::string& out) {
  if (m == n) {
    if (!b) out += 'S';
    return;
  }
  uint64_t k = SplitPoint(n);
  if (m <= k) {
    SubproofShape(m, k, b, out);
    out += 'R';
  } else {
    SubproofShape(m - k, n - k, false, out);
    out += 'L';
  }
}
std::string InclusionShape(uint64_t i, uint64_t n) {
  std::string s;
  PathShape(i, n, s);
  return s;
}
std::string ConsistencyShape(uint64_t m, uint64_t n) {
  std::string s;
  SubproofShape(m, n, true, s);
  return s;
}

class ProofPropertyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    CompactRange range;
    for (uint64_t i = 0; i < kMaxSize; ++i) {
      leaves_.push_back(HashLeaf("leaf " + std::to_string(i)));
      range.Append(leaves_.back(),
                   [&](const NodeId& id, const Hash& h) { store_.Put(id, h); });
      roots_.push_back(range.Root());  // roots_[n - 1] = MTH of n leaves
    }
  }
  const Hash& RootOf(uint64_t n) const { return roots_[n - 1]; }
  static Hash FlipBit(Hash h, std::mt19937_64& rng) {
    size_t bit = rng() % (8 * kHashSize);
    h[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
    return h;
  }

  std::vector<Hash> leaves_;
  std::vector<Hash> roots_;
  InMemoryNodeStore store_;  // nodes of the 300-leaf tree serve every prefix
};

TEST_F(ProofPropertyTest, CompactRangeRootsMatchReference) {
  for (uint64_t n = 1; n <= kMaxSize; ++n) {
    ASSERT_EQ(RootOf(n),
              ReferenceRoot(absl::MakeSpan(leaves_).subspan(0, n)))
        << n;
    absl::StatusOr<Hash> root = MakeRoot(store_, n);
    ASSERT_TRUE(root.ok());
    ASSERT_EQ(*root, RootOf(n)) << n;
  }
}

TEST_F(ProofPropertyTest, InclusionProofsVerifyAndMutationsFail) {
  std::mt19937_64 rng(1);
  int size_mutations_accepted = 0;
  for (uint64_t n = 1; n <= kMaxSize; ++n) {
    const Hash& root = RootOf(n);
    for (uint64_t i = 0; i < n; ++i) {
      absl::StatusOr<std::vector<Hash>> proof =
          MakeInclusionProof(store_, i, n);
      ASSERT_TRUE(proof.ok()) << proof.status();
      ASSERT_EQ(*proof, *ReferenceInclusionProof(
                            absl::MakeSpan(leaves_).subspan(0, n), i))
          << i << " in " << n;
      ASSERT_TRUE(VerifyInclusion(i, n, leaves_[i], *proof, root).ok())
          << i << " in " << n;
      for (size_t k = 0; k < proof->size(); ++k) {
        std::vector<Hash> bad = *proof;
        bad[k] = FlipBit(bad[k], rng);
        ASSERT_FALSE(VerifyInclusion(i, n, leaves_[i], bad, root).ok())
            << "flipped element " << k << " of " << i << " in " << n;
      }
      ASSERT_FALSE(
          VerifyInclusion(i, n, FlipBit(leaves_[i], rng), *proof, root).ok());
      ASSERT_FALSE(
          VerifyInclusion(i, n, leaves_[i], *proof, FlipBit(root, rng)).ok());
      // Another index or size with the same proof: one bit of the number.
      for (int bit = 0; bit < 10; ++bit) {
        uint64_t i2 = i ^ (uint64_t{1} << bit);
        if (i2 < n) {
          ASSERT_FALSE(VerifyInclusion(i2, n, leaves_[i], *proof, root).ok())
              << "index " << i << "->" << i2 << " in " << n;
        }
        uint64_t n2 = n ^ (uint64_t{1} << bit);
        if (i < n2 && n2 != n) {
          bool accepted = VerifyInclusion(i, n2, leaves_[i], *proof, root).ok();
          if (accepted) ++size_mutations_accepted;
          ASSERT_EQ(accepted, InclusionShape(i, n2) == InclusionShape(i, n))
              << "size " << n << "->" << n2 << " for " << i;
        }
      }
      if (!proof->empty()) {
        std::vector<Hash> shorter(proof->begin(), proof->end() - 1);
        ASSERT_FALSE(VerifyInclusion(i, n, leaves_[i], shorter, root).ok());
      }
      std::vector<Hash> longer = *proof;
      longer.push_back(root);
      ASSERT_FALSE(VerifyInclusion(i, n, leaves_[i], longer, root).ok());
    }
  }
  RecordProperty("size_mutations_accepted_same_shape", size_mutations_accepted);
}

TEST_F(ProofPropertyTest, ConsistencyProofsVerifyAndMutationsFail) {
  std::mt19937_64 rng(2);
  int size_mutations_accepted = 0;
  for (uint64_t n = 1; n <= kMaxSize; ++n) {
    for (uint64_t m = 1; m <= n; ++m) {
      absl::StatusOr<std::vector<Hash>> proof =
          MakeConsistencyProof(store_, m, n);
      ASSERT_TRUE(proof.ok()) << proof.status();
      ASSERT_EQ(*proof, *ReferenceConsistencyProof(
                            absl::MakeSpan(leaves_).subspan(0, n), m))
          << m << " to " << n;
      const Hash& r1 = RootOf(m);
      const Hash& r2 = RootOf(n);
      ASSERT_TRUE(VerifyConsistency(m, n, r1, r2, *proof).ok())
          << m << " to " << n;
      for (size_t k = 0; k < proof->size(); ++k) {
        std::vector<Hash> bad = *proof;
        bad[k] = FlipBit(bad[k], rng);
        ASSERT_FALSE(VerifyConsistency(m, n, r1, r2, bad).ok())
            << "flipped element " << k << " of " << m << " to " << n;
      }
      ASSERT_FALSE(VerifyConsistency(m, n, FlipBit(r1, rng), r2, *proof).ok());
      ASSERT_FALSE(VerifyConsistency(m, n, r1, FlipBit(r2, rng), *proof).ok());
      for (int bit = 0; bit < 10; ++bit) {
        uint64_t m2 = m ^ (uint64_t{1} << bit);
        if (m2 >= 1 && m2 <= n) {
          ASSERT_FALSE(VerifyConsistency(m2, n, r1, r2, *proof).ok())
              << "size1 " << m << "->" << m2 << " to " << n;
        }
        uint64_t n2 = n ^ (uint64_t{1} << bit);
        if (n2 >= m && n2 != n) {
          bool accepted = VerifyConsistency(m, n2, r1, r2, *proof).ok();
          if (accepted) ++size_mutations_accepted;
          ASSERT_EQ(accepted, ConsistencyShape(m, n2) == ConsistencyShape(m, n))
              << "size2 " << n << "->" << n2 << " from " << m;
        }
      }
    }
  }
  RecordProperty("size_mutations_accepted_same_shape", size_mutations_accepted);
}

TEST(ProofEdgeCases, RejectsOutOfRangeArguments) {
  InMemoryNodeStore store;
  CompactRange range;
  for (int i = 0; i < 5; ++i) {
    range.Append(HashLeaf(std::to_string(i)),
                 [&](const NodeId& id, const Hash& h) { store.Put(id, h); });
  }
  EXPECT_EQ(MakeInclusionProof(store, 5, 5).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MakeInclusionProof(store, 0, 0).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MakeConsistencyProof(store, 0, 5).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MakeConsistencyProof(store, 6, 5).status().code(),
            absl::StatusCode::kInvalidArgument);
  // Asking beyond what the store holds is NOT_FOUND, not a wrong answer.
  EXPECT_EQ(MakeInclusionProof(store, 0, 8).status().code(),
            absl::StatusCode::kNotFound);
  Hash root = range.Root();
  EXPECT_EQ(VerifyInclusion(5, 5, root, {}, root).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(VerifyConsistency(0, 5, root, root, {}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(VerifyConsistency(5, 5, root, root, {}).ok());
  EXPECT_FALSE(VerifyConsistency(5, 5, root, root, {root}).ok());
  EXPECT_FALSE(VerifyConsistency(5, 5, root, EmptyRoot(), {}).ok());
}

TEST(ProofEdgeCases, ProofsReadLogarithmicallyManyNodes) {
  // The node count a proof needs grows with log n, not n.
  for (uint64_t n : {uint64_t{1} << 20, (uint64_t{1} << 40) - 1,
                     (uint64_t{1} << 62) + 12345}) {
    size_t log_n = 64 - __builtin_clzll(n);
    for (uint64_t i : {uint64_t{0}, n / 3, n - 1}) {
      EXPECT_LE(InclusionProofNodes(i, n)->size(), 2 * log_n) << i << " " << n;
    }
    for (uint64_t m : {uint64_t{1}, n / 3, n - 1}) {
      EXPECT_LE(ConsistencyProofNodes(m, n)->size(), 2 * log_n) << m << " " << n;
    }
  }
}

TEST(CompactRangeState, RestoresFromSavedState) {
  CompactRange a;
  for (int i = 0; i < 77; ++i) a.Append(HashLeaf(std::to_string(i)));
  absl::StatusOr<CompactRange> b = CompactRange::FromState(a.size(), a.hashes());
  ASSERT_TRUE(b.ok());
  for (int i = 77; i < 100; ++i) {
    a.Append(HashLeaf(std::to_string(i)));
    b->Append(HashLeaf(std::to_string(i)));
  }
  EXPECT_EQ(a.Root(), b->Root());
  EXPECT_FALSE(CompactRange::FromState(77, {}).ok());
  EXPECT_EQ(CompactRangeNodes(6).size(), 2u);
}

}  // namespace
}  // namespace stepproof::merkle
