// Tree-shape arithmetic for RFC 9162 Merkle trees, and the reference
// (recursive, O(n)) definitions of MTH, PATH and PROOF over leaf hashes held in
// memory. The reference functions follow RFC 9162 2.1.1, 2.1.3.1 and 2.1.4.1
// line by line; the store-backed builders (proof_builder.h) are tested
// against them.
#ifndef STEPPROOF_MERKLE_TREE_H_
#define STEPPROOF_MERKLE_TREE_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "merkle/hash.h"

namespace stepproof::merkle {

// The largest power of two strictly less than n. REQUIRES: n >= 2.
uint64_t SplitPoint(uint64_t n);

// A node of the tree: the root of the perfect subtree over leaves
// [index << level, (index + 1) << level). Level 0 nodes are leaf hashes.
struct NodeId {
  uint32_t level = 0;
  uint64_t index = 0;
  uint64_t begin() const { return index << level; }
  uint64_t end() const { return (index + 1) << level; }
  friend bool operator==(const NodeId&, const NodeId&) = default;
};

// MTH(D[n]) over the given leaf hashes; EmptyRoot() for none.
Hash ReferenceRoot(absl::Span<const Hash> leaves);

// PATH(index, D[n]). INVALID_ARGUMENT if index >= leaves.size().
absl::StatusOr<std::vector<Hash>> ReferenceInclusionProof(
    absl::Span<const Hash> leaves, uint64_t index);

// PROOF(m, D[n]) with n = leaves.size(). INVALID_ARGUMENT if m == 0 or m > n;
// empty for m == n.
absl::StatusOr<std::vector<Hash>> ReferenceConsistencyProof(
    absl::Span<const Hash> leaves, uint64_t m);

}  // namespace stepproof::merkle

#endif  // STEPPROOF_MERKLE_TREE_H_
