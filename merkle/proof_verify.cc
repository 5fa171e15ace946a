#include "merkle/proof_verify.h"

#include "absl/strings/str_cat.h"

namespace stepproof::merkle {

namespace {
absl::Status Mismatch(absl::string_view what) {
  return absl::FailedPreconditionError(what);
}
}  // namespace

// RFC 9162 2.1.3.2.
absl::StatusOr<Hash> RootFromInclusionProof(uint64_t index, uint64_t size,
                                            const Hash& leaf_hash,
                                            absl::Span<const Hash> proof) {
  if (index >= size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "leaf index ", index, " is not below tree size ", size));
  }
  uint64_t fn = index;
  uint64_t sn = size - 1;
  Hash r = leaf_hash;
  for (const Hash& p : proof) {
    if (sn == 0) return Mismatch("inclusion proof too long");
    if ((fn & 1) || fn == sn) {
      r = HashChildren(p, r);
      while (!(fn & 1) && fn != 0) {
        fn >>= 1;
        sn >>= 1;
      }
    } else {
      r = HashChildren(r, p);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0) return Mismatch("inclusion proof too short");
  return r;
}

absl::Status VerifyInclusion(uint64_t index, uint64_t size,
                             const Hash& leaf_hash,
                             absl::Span<const Hash> proof, const Hash& root) {
  absl::StatusOr<Hash> computed =
      RootFromInclusionProof(index, size, leaf_hash, proof);
  if (!computed.ok()) return computed.status();
  if (*computed != root) {
    return Mismatch("inclusion proof does not lead to the expected root");
  }
  return absl::OkStatus();
}

// RFC 9162 2.1.4.2, with the equal-size case decided as described in the
// header.
absl::Status VerifyConsistency(uint64_t size1, uint64_t size2,
                               const Hash& root1, const Hash& root2,
                               absl::Span<const Hash> proof) {
  if (size1 == 0) {
    return absl::InvalidArgumentError(
        "consistency from an empty tree is not defined (size1 is 0)");
  }
  if (size1 > size2) {
    return absl::InvalidArgumentError(absl::StrCat(
        "size1 ", size1, " is larger than size2 ", size2));
  }
  if (size1 == size2) {
    if (!proof.empty()) {
      return Mismatch("consistency proof between equal sizes must be empty");
    }
    if (root1 != root2) return Mismatch("roots differ at equal sizes");
    return absl::OkStatus();
  }
  if (proof.empty()) return Mismatch("consistency proof is empty");

  // Step 2: when size1 is a power of two, its root is the first node.
  size_t next = 0;
  Hash seed;
  if ((size1 & (size1 - 1)) == 0) {
    seed = root1;
  } else {
    seed = proof[0];
    next = 1;
  }
  uint64_t fn = size1 - 1;
  uint64_t sn = size2 - 1;
  while (fn & 1) {
    fn >>= 1;
    sn >>= 1;
  }
  Hash fr = seed;
  Hash sr = seed;
  for (; next < proof.size(); ++next) {
    const Hash& c = proof[next];
    if (sn == 0) return Mismatch("consistency proof too long");
    if ((fn & 1) || fn == sn) {
      fr = HashChildren(c, fr);
      sr = HashChildren(c, sr);
      while (!(fn & 1) && fn != 0) {
        fn >>= 1;
        sn >>= 1;
      }
    } else {
      sr = HashChildren(sr, c);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0) return Mismatch("consistency proof too short");
  if (fr != root1) return Mismatch("consistency proof does not match root1");
  if (sr != root2) return Mismatch("consistency proof does not match root2");
  return absl::OkStatus();
}

}  // namespace stepproof::merkle
