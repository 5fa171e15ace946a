// The fixed signing key the note and bundle fuzz targets verify against: the
// RFC 8032 TEST 1 seed under the name of tests/provenance/vectors/, so the
// vector notes and bundles in the seed corpora verify with it.
#ifndef STEPPROOF_TESTS_FUZZ_FUZZ_KEYS_H_
#define STEPPROOF_TESTS_FUZZ_FUZZ_KEYS_H_

#include <string>

#include "absl/strings/escaping.h"
#include "fuzz_check.h"
#include "provenance/signer.h"

namespace stepproof::fuzz {

inline constexpr char kVectorKeySeedHex[] =
    "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
inline constexpr char kVectorKeyName[] = "log.stepproof.example";

// The vector key (tests/provenance/vectors/verifier_key.txt).
inline provenance::Signer VectorSigner() {
  const std::string seed = absl::HexStringToBytes(kVectorKeySeedHex);
  auto s = provenance::Signer::FromSeed(
      kVectorKeyName,
      absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(seed.data()),
                                seed.size()));
  Check(s.ok(), "the fixed vector key builds");
  return *std::move(s);
}

}  // namespace stepproof::fuzz

#endif  // STEPPROOF_TESTS_FUZZ_FUZZ_KEYS_H_
