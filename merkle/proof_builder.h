// Proof construction from a store of complete-subtree hashes. Each proof reads
// O(log n) nodes through NodeReader; no leaf is ever rehashed. The nodes a
// store must hold are exactly those CompactRange::Append reports to its
// visitor (every leaf hash and every perfect subtree root).
#ifndef STEPPROOF_MERKLE_PROOF_BUILDER_H_
#define STEPPROOF_MERKLE_PROOF_BUILDER_H_

#include <cstdint>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "merkle/hash.h"
#include "merkle/tree.h"

namespace stepproof::merkle {

// Source of perfect-subtree hashes. Implemented over SQLite by provenance/,
// in memory by InMemoryNodeStore below.
class NodeReader {
 public:
  virtual ~NodeReader() = default;
  // Fetches the given nodes, in order. NOT_FOUND if any is missing; other
  // errors as the store reports them.
  virtual absl::StatusOr<std::vector<Hash>> GetNodes(
      absl::Span<const NodeId> ids) const = 0;
};

// The perfect-subtree nodes a proof needs, in the order the builder consumes
// them. Exposed so a store can fetch them in one query.
// INVALID_ARGUMENT for the same argument errors as the builders below.
absl::StatusOr<std::vector<NodeId>> InclusionProofNodes(uint64_t index,
                                                        uint64_t size);
absl::StatusOr<std::vector<NodeId>> ConsistencyProofNodes(uint64_t size1,
                                                          uint64_t size2);

// PATH(index, D[size]). INVALID_ARGUMENT if index >= size.
absl::StatusOr<std::vector<Hash>> MakeInclusionProof(const NodeReader& reader,
                                                     uint64_t index,
                                                     uint64_t size);
// PROOF(size1, D[size2]). INVALID_ARGUMENT if size1 == 0 or size1 > size2;
// empty when size1 == size2.
absl::StatusOr<std::vector<Hash>> MakeConsistencyProof(
    const NodeReader& reader, uint64_t size1, uint64_t size2);
// MTH(D[size]) from at most popcount(size) reads.
absl::StatusOr<Hash> MakeRoot(const NodeReader& reader, uint64_t size);

// An in-memory NodeReader fed by CompactRange's visitor; for tests, small
// trees and benchmarks. Thread-safety: none.
class InMemoryNodeStore : public NodeReader {
 public:
  void Put(const NodeId& id, const Hash& hash);
  absl::StatusOr<std::vector<Hash>> GetNodes(
      absl::Span<const NodeId> ids) const override;
  size_t size() const { return nodes_.size(); }

 private:
  absl::flat_hash_map<std::pair<uint32_t, uint64_t>, Hash> nodes_;
};

}  // namespace stepproof::merkle

#endif  // STEPPROOF_MERKLE_PROOF_BUILDER_H_
