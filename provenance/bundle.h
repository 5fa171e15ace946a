// The proof bundle (JSON, format "stepproof.bundle/v1"): everything a third
// party needs, with the verifier key, to check one step offline. The JSON
// layout is fixed in docs/FORMAT.md ("Proof bundle"): 32-byte values in
// lowercase hex, variable byte strings in padded base64, notes as JSON
// strings, numbers as JSON integers.
//
// Thread-safety: plain values and pure functions.
#ifndef STEPPROOF_PROVENANCE_BUNDLE_H_
#define STEPPROOF_PROVENANCE_BUNDLE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "merkle/hash.h"
#include "provenance/step_record.h"

namespace stepproof::provenance {

inline constexpr absl::string_view kBundleFormat = "stepproof.bundle/v1";

struct LogInclusion {
  uint64_t leaf_index = 0;              // index of the trace in the log
  std::vector<merkle::Hash> proof;      // RFC 9162 inclusion proof
  std::string checkpoint;               // signed log checkpoint note
};

// Checked elsewhere (clients/anchor); carried verbatim.
struct ChainAnchor {
  std::string chain_id;          // decimal EIP-155 chain id, as a string
  std::string contract_address;  // "0x" + 40 hex
  std::string tx_hash;           // "0x" + 64 hex
  uint64_t block_number = 0;
};

struct Bundle {
  StepRecord record;              // every field, salt included
  std::string encoded_record;     // the leaf input bytes
  uint64_t leaf_index = 0;        // == record.index
  std::vector<merkle::Hash> inclusion_proof;
  std::string trace_checkpoint;   // signed trace checkpoint note
  std::optional<LogInclusion> log;          // needs the final checkpoint
  std::optional<std::string> promise;       // signed promise note
  std::optional<ChainAnchor> anchor;
};

// Pretty-printed JSON (2-space indent, keys in the documented order).
std::string BundleToJson(const Bundle& bundle);

// Parses a bundle. INVALID_ARGUMENT naming the JSON path of the problem
// ("record.salt: expected 64 lowercase hex characters") for invalid JSON,
// unknown format, missing or mistyped fields, unknown fields, bad hex/base64.
// The record's fields are taken as given; VerifyBundle checks them against
// encoded_record.
absl::StatusOr<Bundle> BundleFromJson(absl::string_view json);

}  // namespace stepproof::provenance

#endif  // STEPPROOF_PROVENANCE_BUNDLE_H_
