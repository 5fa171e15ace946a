#include "merkle/tree.h"

#include <bit>

#include "absl/strings/str_cat.h"

namespace stepproof::merkle {

uint64_t SplitPoint(uint64_t n) {
  // Largest power of two < n: the highest set bit of n - 1.
  return uint64_t{1} << (63 - std::countl_zero(n - 1));
}

namespace {

Hash Mth(absl::Span<const Hash> d) {
  if (d.empty()) return EmptyRoot();
  if (d.size() == 1) return d[0];
  uint64_t k = SplitPoint(d.size());
  return HashChildren(Mth(d.subspan(0, k)), Mth(d.subspan(k)));
}

// RFC 9162 2.1.3.1 PATH(m, D[n]).
void Path(uint64_t m, absl::Span<const Hash> d, std::vector<Hash>& out) {
  if (d.size() <= 1) return;
  uint64_t k = SplitPoint(d.size());
  if (m < k) {
    Path(m, d.subspan(0, k), out);
    out.push_back(Mth(d.subspan(k)));
  } else {
    Path(m - k, d.subspan(k), out);
    out.push_back(Mth(d.subspan(0, k)));
  }
}

// RFC 9162 2.1.4.1 SUBPROOF(m, D[n], b).
void Subproof(uint64_t m, absl::Span<const Hash> d, bool b,
              std::vector<Hash>& out) {
  if (m == d.size()) {
    if (!b) out.push_back(Mth(d));
    return;
  }
  uint64_t k = SplitPoint(d.size());
  if (m <= k) {
    Subproof(m, d.subspan(0, k), b, out);
    out.push_back(Mth(d.subspan(k)));
  } else {
    Subproof(m - k, d.subspan(k), false, out);
    out.push_back(Mth(d.subspan(0, k)));
  }
}

}  // namespace

Hash ReferenceRoot(absl::Span<const Hash> leaves) { return Mth(leaves); }

absl::StatusOr<std::vector<Hash>> ReferenceInclusionProof(
    absl::Span<const Hash> leaves, uint64_t index) {
  if (index >= leaves.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "leaf index ", index, " is not below tree size ", leaves.size()));
  }
  std::vector<Hash> out;
  Path(index, leaves, out);
  return out;
}

absl::StatusOr<std::vector<Hash>> ReferenceConsistencyProof(
    absl::Span<const Hash> leaves, uint64_t m) {
  if (m == 0 || m > leaves.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("consistency proof needs 0 < size1 <= size2, got ", m,
                     " and ", leaves.size()));
  }
  std::vector<Hash> out;
  Subproof(m, leaves, true, out);
  return out;
}

}  // namespace stepproof::merkle
