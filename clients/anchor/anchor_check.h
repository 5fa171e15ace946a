// Checks a log checkpoint's chain anchor over Ethereum JSON-RPC: an eth_call
// of RootAnchor.rootOf(bytes32 logId, uint64 treeSize) on the contract of
// clients/anchor/contracts/RootAnchor.sol, compared with the checkpoint's
// root. logId = SHA-256 of the log origin (docs/FORMAT.md, "Chain anchors").
// Used by stepproof-audit verify --rpc URL --contract ADDR.
//
// The caller verifies the checkpoint's signature first; this only asks the
// chain. Reads state at the "latest" block.
//
// Thread-safety: pure functions (each RPC is its own connection).
#ifndef STEPPROOF_CLIENTS_ANCHOR_ANCHOR_CHECK_H_
#define STEPPROOF_CLIENTS_ANCHOR_ANCHOR_CHECK_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "merkle/hash.h"
#include "provenance/verifier_key.h"

namespace stepproof::clients {

// The 4-byte selector of rootOf(bytes32,uint64): keccak256 of the signature.
inline constexpr absl::string_view kRootOfSelector = "615f0aa5";

// logId of a log: SHA-256 of its origin string.
merkle::Hash AnchorLogId(absl::string_view log_origin);

// The eth_call data of rootOf(log_id, tree_size): "0x" + 136 lowercase hex.
std::string EncodeRootOfCall(const merkle::Hash& log_id, uint64_t tree_size);

// Decodes an eth_call result holding one bytes32 ("0x" + 64 hex).
// FAILED_PRECONDITION for "0x" (no code at the address: not a contract);
// DATA_LOSS for anything else malformed.
absl::StatusOr<merkle::Hash> DecodeBytes32Result(absl::string_view result);

// The root anchored for (log_id, tree_size) on `contract` ("0x" + 40 hex),
// all zero when none is. Errors: INVALID_ARGUMENT (bad URL or address),
// UNIMPLEMENTED (https://), UNAVAILABLE (node unreachable or HTTP error),
// DEADLINE_EXCEEDED, FAILED_PRECONDITION (the call reverted or the address
// holds no contract), DATA_LOSS (malformed response).
absl::StatusOr<merkle::Hash> FetchAnchoredRoot(
    absl::string_view rpc_url, absl::string_view contract,
    const merkle::Hash& log_id, uint64_t tree_size,
    absl::Duration timeout = absl::Seconds(15));

// OK iff `contract` anchors exactly `root` for (log_id, tree_size).
//   NOT_FOUND            "not anchored: ..." (no root at that size)
//   FAILED_PRECONDITION  "anchored root differs: chain has ..., checkpoint
//                        has ..." (evidence of equivocation), or the errors
//                        of FetchAnchoredRoot
//   INVALID_ARGUMENT     tree_size 0 (an empty log is never anchored), or
//                        the errors of FetchAnchoredRoot
absl::Status CheckAnchored(absl::string_view rpc_url,
                           absl::string_view contract,
                           const merkle::Hash& log_id, uint64_t tree_size,
                           const merkle::Hash& root);

// Opens `signed_log_checkpoint` (a C2SP signed note, e.g. a bundle's
// log.checkpoint) with `log_key`, then CheckAnchored(rpc_url, contract,
// AnchorLogId(origin), size, root). Errors: those of
// provenance::OpenCheckpoint (the signature or the text is bad; prefixed
// "log checkpoint: "), then those of CheckAnchored.
absl::Status CheckLogCheckpointAnchored(
    absl::string_view rpc_url, absl::string_view contract,
    absl::string_view signed_log_checkpoint,
    const provenance::NoteVerifier& log_key);

}  // namespace stepproof::clients

#endif  // STEPPROOF_CLIENTS_ANCHOR_ANCHOR_CHECK_H_
