// Verification of RFC 9162 inclusion (2.1.3.2) and consistency (2.1.4.2)
// proofs. This is all a third-party verifier needs from merkle/.
//
// Edge cases, decided once (as transparency-dev/merkle does):
//  - inclusion: index >= size is an error; size 1 needs an empty proof.
//  - consistency: size1 == 0 is an error (nothing to be consistent with);
//    size1 > size2 is an error; size1 == size2 needs an empty proof and
//    equal roots.
// Every function returns OK only when the proof checks; a proof that does not
// check gives FAILED_PRECONDITION naming what differed ("root mismatch",
// "proof too short", ...); malformed arguments give INVALID_ARGUMENT.
#ifndef STEPPROOF_MERKLE_PROOF_VERIFY_H_
#define STEPPROOF_MERKLE_PROOF_VERIFY_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "merkle/hash.h"

namespace stepproof::merkle {

// The root implied by `proof` for leaf `leaf_hash` at `index` in a tree of
// `size` leaves.
absl::StatusOr<Hash> RootFromInclusionProof(uint64_t index, uint64_t size,
                                            const Hash& leaf_hash,
                                            absl::Span<const Hash> proof);

// Checks that `leaf_hash` is leaf `index` of the tree of `size` leaves whose
// root is `root`.
absl::Status VerifyInclusion(uint64_t index, uint64_t size,
                             const Hash& leaf_hash,
                             absl::Span<const Hash> proof, const Hash& root);

// Checks that the tree of size2 leaves with root2 extends the tree of size1
// leaves with root1.
absl::Status VerifyConsistency(uint64_t size1, uint64_t size2,
                               const Hash& root1, const Hash& root2,
                               absl::Span<const Hash> proof);

}  // namespace stepproof::merkle

#endif  // STEPPROOF_MERKLE_PROOF_VERIFY_H_
