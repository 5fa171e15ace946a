// The published RFC 6962 vectors, checked against every implementation in
// merkle/: the reference recursion, the compact range, the store-backed proof
// builder and the verifiers.
#include "tests/merkle/rfc6962_vectors.h"

#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"
#include "merkle/compact_range.h"
#include "merkle/hash.h"
#include "merkle/proof_builder.h"
#include "merkle/proof_verify.h"
#include "merkle/tree.h"

namespace stepproof::merkle {
namespace {

using testing::kConsistency;
using testing::kInclusion;
using testing::kLeaves;
using testing::kRoots;

Hash H(const char* hex) {
  absl::StatusOr<Hash> h = HashFromHex(hex);
  EXPECT_TRUE(h.ok()) << hex;
  return *h;
}

std::vector<Hash> Path(const std::vector<const char*>& hex) {
  std::vector<Hash> out;
  for (const char* h : hex) out.push_back(H(h));
  return out;
}

std::vector<Hash> LeafHashes() {
  std::vector<Hash> out;
  for (const auto& leaf : kLeaves) {
    out.push_back(HashLeaf(absl::HexStringToBytes(leaf.input_hex)));
  }
  return out;
}

// Builds a node store for the first n leaves the way a log does: by appending.
InMemoryNodeStore StoreOf(const std::vector<Hash>& leaves, uint64_t n) {
  InMemoryNodeStore store;
  CompactRange range;
  for (uint64_t i = 0; i < n; ++i) {
    range.Append(leaves[i],
                 [&](const NodeId& id, const Hash& h) { store.Put(id, h); });
  }
  return store;
}

TEST(Rfc6962Vectors, LeafHashesMatch) {
  std::vector<Hash> leaves = LeafHashes();
  for (size_t i = 0; i < leaves.size(); ++i) {
    EXPECT_EQ(ToHex(leaves[i]), kLeaves[i].leaf_hash_hex) << "leaf " << i;
  }
}

TEST(Rfc6962Vectors, EmptyTreeRootIsSha256OfNothing) {
  EXPECT_EQ(ToHex(EmptyRoot()), kRoots[0]);
  EXPECT_EQ(ToHex(ReferenceRoot({})), kRoots[0]);
}

TEST(Rfc6962Vectors, RootsMatchForEverySize) {
  std::vector<Hash> leaves = LeafHashes();
  for (uint64_t n = 0; n <= 8; ++n) {
    EXPECT_EQ(ToHex(ReferenceRoot(absl::MakeSpan(leaves).subspan(0, n))),
              kRoots[n])
        << "reference, n=" << n;
    CompactRange range;
    for (uint64_t i = 0; i < n; ++i) range.Append(leaves[i]);
    EXPECT_EQ(ToHex(range.Root()), kRoots[n]) << "compact range, n=" << n;
    InMemoryNodeStore store = StoreOf(leaves, n);
    absl::StatusOr<Hash> root = MakeRoot(store, n);
    ASSERT_TRUE(root.ok()) << root.status();
    EXPECT_EQ(ToHex(*root), kRoots[n]) << "store, n=" << n;
  }
}

TEST(Rfc6962Vectors, InclusionProofsMatchAndVerify) {
  std::vector<Hash> leaves = LeafHashes();
  for (const auto& v : kInclusion) {
    std::vector<Hash> expected = Path(v.path);
    absl::StatusOr<std::vector<Hash>> ref = ReferenceInclusionProof(
        absl::MakeSpan(leaves).subspan(0, v.b), v.a);
    ASSERT_TRUE(ref.ok()) << ref.status();
    EXPECT_EQ(*ref, expected) << "reference " << v.a << " " << v.b;
    InMemoryNodeStore store = StoreOf(leaves, v.b);
    absl::StatusOr<std::vector<Hash>> made = MakeInclusionProof(store, v.a, v.b);
    ASSERT_TRUE(made.ok()) << made.status();
    EXPECT_EQ(*made, expected) << "store " << v.a << " " << v.b;
    EXPECT_TRUE(VerifyInclusion(v.a, v.b, leaves[v.a], expected, H(kRoots[v.b]))
                    .ok())
        << v.a << " " << v.b;
  }
}

TEST(Rfc6962Vectors, ConsistencyProofsMatchAndVerify) {
  std::vector<Hash> leaves = LeafHashes();
  for (const auto& v : kConsistency) {
    std::vector<Hash> expected = Path(v.path);
    absl::StatusOr<std::vector<Hash>> ref = ReferenceConsistencyProof(
        absl::MakeSpan(leaves).subspan(0, v.b), v.a);
    ASSERT_TRUE(ref.ok()) << ref.status();
    EXPECT_EQ(*ref, expected) << "reference " << v.a << " " << v.b;
    InMemoryNodeStore store = StoreOf(leaves, v.b);
    absl::StatusOr<std::vector<Hash>> made =
        MakeConsistencyProof(store, v.a, v.b);
    ASSERT_TRUE(made.ok()) << made.status();
    EXPECT_EQ(*made, expected) << "store " << v.a << " " << v.b;
    absl::Status s =
        VerifyConsistency(v.a, v.b, H(kRoots[v.a]), H(kRoots[v.b]), expected);
    EXPECT_TRUE(s.ok()) << v.a << " " << v.b << ": " << s;
  }
}

TEST(Rfc6962Vectors, HexRoundTripAndRejectsBadHex) {
  Hash h = H(kRoots[8]);
  EXPECT_EQ(ToHex(h), kRoots[8]);
  EXPECT_FALSE(HashFromHex("abc").ok());
  std::string bad(kRoots[8]);
  bad[10] = 'g';
  EXPECT_FALSE(HashFromHex(bad).ok());
}

}  // namespace
}  // namespace stepproof::merkle
