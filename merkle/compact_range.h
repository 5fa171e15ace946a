// A compact range over leaves [0, size): the roots of the perfect subtrees
// that the binary representation of `size` decomposes it into, largest first.
// Appending is O(log n) amortised O(1) hashes; state is O(log n) hashes; the
// root is O(log n) hashes. This is how a growing log is tracked without
// keeping (or rehashing) its leaves.
//
// Thread-safety: not thread-safe; callers serialise access.
#ifndef STEPPROOF_MERKLE_COMPACT_RANGE_H_
#define STEPPROOF_MERKLE_COMPACT_RANGE_H_

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "merkle/hash.h"
#include "merkle/tree.h"

namespace stepproof::merkle {

// The node ids a compact range of `size` leaves holds, largest first.
std::vector<NodeId> CompactRangeNodes(uint64_t size);

class CompactRange {
 public:
  // Called for every node that becomes complete during an append: the leaf
  // itself (level 0) and each perfect subtree it closes. A store that keeps
  // these can build any proof with O(log n) reads (proof_builder.h).
  using NodeVisitor = std::function<void(const NodeId& id, const Hash& hash)>;

  CompactRange() = default;

  // Rebuilds a range from saved state. INVALID_ARGUMENT unless
  // hashes.size() equals the number of set bits in `size`.
  static absl::StatusOr<CompactRange> FromState(uint64_t size,
                                                std::vector<Hash> hashes);

  // Appends a leaf hash (already HashLeaf'ed). `visitor` may be empty.
  void Append(const Hash& leaf_hash, const NodeVisitor& visitor = nullptr);

  uint64_t size() const { return size_; }
  // The subtree roots, aligned with CompactRangeNodes(size()).
  const std::vector<Hash>& hashes() const { return hashes_; }
  // MTH of the leaves so far; EmptyRoot() when size() == 0.
  Hash Root() const;

 private:
  uint64_t size_ = 0;
  std::vector<Hash> hashes_;
};

}  // namespace stepproof::merkle

#endif  // STEPPROOF_MERKLE_COMPACT_RANGE_H_
