#include "merkle/proof_builder.h"

#include "absl/strings/str_cat.h"
#include "merkle/compact_range.h"

namespace stepproof::merkle {

namespace {

// A proof element: MTH of leaves [begin, end). Every range the RFC 9162
// recursion produces starts at a multiple of a power of two >= its length, so
// it decomposes into the perfect subtrees of CompactRangeNodes(end - begin)
// shifted to `begin`. Only a range touching the tree's right edge is not
// itself one perfect subtree, and a proof has at most one such range, so a
// proof needs O(log n) nodes.
struct Range {
  uint64_t begin;
  uint64_t end;
};

// RFC 9162 2.1.3.1 PATH(m, D[begin:end]) as ranges.
void PathRanges(uint64_t m, uint64_t begin, uint64_t end,
                std::vector<Range>& out) {
  uint64_t n = end - begin;
  if (n <= 1) return;
  uint64_t k = SplitPoint(n);
  if (m < k) {
    PathRanges(m, begin, begin + k, out);
    out.push_back({begin + k, end});
  } else {
    PathRanges(m - k, begin + k, end, out);
    out.push_back({begin, begin + k});
  }
}

// RFC 9162 2.1.4.1 SUBPROOF(m, D[begin:end], b) as ranges.
void SubproofRanges(uint64_t m, uint64_t begin, uint64_t end, bool b,
                    std::vector<Range>& out) {
  uint64_t n = end - begin;
  if (m == n) {
    if (!b) out.push_back({begin, end});
    return;
  }
  uint64_t k = SplitPoint(n);
  if (m <= k) {
    SubproofRanges(m, begin, begin + k, b, out);
    out.push_back({begin + k, end});
  } else {
    SubproofRanges(m - k, begin + k, end, false, out);
    out.push_back({begin, begin + k});
  }
}

void AppendRangeNodes(const Range& r, std::vector<NodeId>& ids) {
  for (NodeId id : CompactRangeNodes(r.end - r.begin)) {
    id.index += r.begin >> id.level;
    ids.push_back(id);
  }
}

std::vector<NodeId> NodesOf(const std::vector<Range>& ranges) {
  std::vector<NodeId> ids;
  for (const Range& r : ranges) AppendRangeNodes(r, ids);
  return ids;
}

// Reads the nodes of `ranges` in one call and folds each range to its MTH.
absl::StatusOr<std::vector<Hash>> Resolve(const NodeReader& reader,
                                          const std::vector<Range>& ranges) {
  std::vector<NodeId> ids = NodesOf(ranges);
  absl::StatusOr<std::vector<Hash>> nodes = reader.GetNodes(ids);
  if (!nodes.ok()) return nodes.status();
  if (nodes->size() != ids.size()) {
    return absl::InternalError(absl::StrCat("node store returned ",
                                            nodes->size(), " hashes for ",
                                            ids.size(), " ids"));
  }
  std::vector<Hash> out;
  out.reserve(ranges.size());
  size_t next = 0;
  for (const Range& r : ranges) {
    size_t count = CompactRangeNodes(r.end - r.begin).size();
    Hash h = (*nodes)[next + count - 1];
    for (size_t i = count - 1; i-- > 0;) h = HashChildren((*nodes)[next + i], h);
    next += count;
    out.push_back(h);
  }
  return out;
}

absl::Status CheckInclusionArgs(uint64_t index, uint64_t size) {
  if (index >= size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "leaf index ", index, " is not below tree size ", size));
  }
  return absl::OkStatus();
}

absl::Status CheckConsistencyArgs(uint64_t size1, uint64_t size2) {
  if (size1 == 0 || size1 > size2) {
    return absl::InvalidArgumentError(
        absl::StrCat("consistency proof needs 0 < size1 <= size2, got ", size1,
                     " and ", size2));
  }
  return absl::OkStatus();
}

std::vector<Range> InclusionRanges(uint64_t index, uint64_t size) {
  std::vector<Range> ranges;
  PathRanges(index, 0, size, ranges);
  return ranges;
}

std::vector<Range> ConsistencyRanges(uint64_t size1, uint64_t size2) {
  std::vector<Range> ranges;
  SubproofRanges(size1, 0, size2, true, ranges);
  return ranges;
}

}  // namespace

absl::StatusOr<std::vector<NodeId>> InclusionProofNodes(uint64_t index,
                                                        uint64_t size) {
  if (absl::Status s = CheckInclusionArgs(index, size); !s.ok()) return s;
  return NodesOf(InclusionRanges(index, size));
}

absl::StatusOr<std::vector<NodeId>> ConsistencyProofNodes(uint64_t size1,
                                                          uint64_t size2) {
  if (absl::Status s = CheckConsistencyArgs(size1, size2); !s.ok()) return s;
  return NodesOf(ConsistencyRanges(size1, size2));
}

absl::StatusOr<std::vector<Hash>> MakeInclusionProof(const NodeReader& reader,
                                                     uint64_t index,
                                                     uint64_t size) {
  if (absl::Status s = CheckInclusionArgs(index, size); !s.ok()) return s;
  return Resolve(reader, InclusionRanges(index, size));
}

absl::StatusOr<std::vector<Hash>> MakeConsistencyProof(
    const NodeReader& reader, uint64_t size1, uint64_t size2) {
  if (absl::Status s = CheckConsistencyArgs(size1, size2); !s.ok()) return s;
  return Resolve(reader, ConsistencyRanges(size1, size2));
}

absl::StatusOr<Hash> MakeRoot(const NodeReader& reader, uint64_t size) {
  if (size == 0) return EmptyRoot();
  absl::StatusOr<std::vector<Hash>> roots = Resolve(reader, {{0, size}});
  if (!roots.ok()) return roots.status();
  return roots->front();
}

void InMemoryNodeStore::Put(const NodeId& id, const Hash& hash) {
  nodes_[{id.level, id.index}] = hash;
}

absl::StatusOr<std::vector<Hash>> InMemoryNodeStore::GetNodes(
    absl::Span<const NodeId> ids) const {
  std::vector<Hash> out;
  out.reserve(ids.size());
  for (const NodeId& id : ids) {
    auto it = nodes_.find(std::make_pair(id.level, id.index));
    if (it == nodes_.end()) {
      return absl::NotFoundError(absl::StrCat("no node at level ", id.level,
                                              " index ", id.index));
    }
    out.push_back(it->second);
  }
  return out;
}

}  // namespace stepproof::merkle
