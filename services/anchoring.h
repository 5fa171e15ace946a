// Recording a chain anchor for a log checkpoint, after checking that the
// (log size, root) the anchoring script publishes is a checkpoint this server
// signed: a script cannot make the server vouch for a root it never signed.
//
// Thread-safety: as Ledger (thread-safe).
#ifndef STEPPROOF_SERVICES_ANCHORING_H_
#define STEPPROOF_SERVICES_ANCHORING_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "provenance/log/ledger.h"
#include "provenance/verifier_key.h"

namespace stepproof::service {

struct AnchorRequest {
  uint64_t log_size = 0;
  std::string root;  // raw bytes; must be 32
  uint64_t chain_id = 0;
  std::string contract_address;  // "0x" + 40 hex digits
  std::string tx_hash;           // "0x" + 64 hex digits
  uint64_t block_number = 0;
  absl::Time block_time = absl::InfinitePast();  // InfinitePast = unknown
};

// Checks the request, finds the log checkpoint signed at log_size, opens it
// with `log_key`, compares roots, records the anchor (block_time, or `now`
// when unknown) and returns the anchored checkpoint note.
//   INVALID_ARGUMENT   log_size 0, root not 32 bytes, chain id 0, malformed
//                      contract address or transaction hash
//   NOT_FOUND          no log checkpoint was signed at log_size
//   FAILED_PRECONDITION  the root differs from that checkpoint's root
//   ALREADY_EXISTS     this (chain id, tx hash) was recorded before
absl::StatusOr<std::string> RecordVerifiedAnchor(
    provenance::Ledger& ledger, const provenance::NoteVerifier& log_key,
    const AnchorRequest& request, absl::Time now);

}  // namespace stepproof::service

#endif  // STEPPROOF_SERVICES_ANCHORING_H_
