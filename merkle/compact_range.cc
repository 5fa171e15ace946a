#include "merkle/compact_range.h"

#include <bit>

#include "absl/strings/str_cat.h"

namespace stepproof::merkle {

std::vector<NodeId> CompactRangeNodes(uint64_t size) {
  std::vector<NodeId> ids;
  uint64_t begin = 0;
  for (int level = 63; level >= 0; --level) {
    uint64_t width = uint64_t{1} << level;
    if (size & width) {
      ids.push_back(NodeId{static_cast<uint32_t>(level), begin >> level});
      begin += width;
    }
  }
  return ids;
}

absl::StatusOr<CompactRange> CompactRange::FromState(uint64_t size,
                                                     std::vector<Hash> hashes) {
  if (static_cast<size_t>(std::popcount(size)) != hashes.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("a compact range of size ", size, " holds ",
                     std::popcount(size), " hashes, not ", hashes.size()));
  }
  CompactRange range;
  range.size_ = size;
  range.hashes_ = std::move(hashes);
  return range;
}

void CompactRange::Append(const Hash& leaf_hash, const NodeVisitor& visitor) {
  uint64_t index = size_;
  Hash node = leaf_hash;
  if (visitor) visitor(NodeId{0, index}, node);
  // Each trailing one bit of the old size is a subtree the new leaf completes.
  uint32_t level = 0;
  while (index & 1) {
    node = HashChildren(hashes_.back(), node);
    hashes_.pop_back();
    index >>= 1;
    ++level;
    if (visitor) visitor(NodeId{level, index}, node);
  }
  hashes_.push_back(node);
  ++size_;
}

Hash CompactRange::Root() const {
  if (hashes_.empty()) return EmptyRoot();
  Hash root = hashes_.back();
  for (size_t i = hashes_.size() - 1; i-- > 0;) {
    root = HashChildren(hashes_[i], root);
  }
  return root;
}

}  // namespace stepproof::merkle
