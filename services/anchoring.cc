#include "services/anchoring.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "provenance/checkpoint.h"

namespace stepproof::service {
namespace {

bool IsHexWithPrefix(const std::string& s, size_t digits) {
  if (s.size() != digits + 2 || !absl::StartsWith(s, "0x")) return false;
  return std::all_of(s.begin() + 2, s.end(),
                     [](char c) { return absl::ascii_isxdigit(static_cast<unsigned char>(c)); });
}

}  // namespace

absl::StatusOr<std::string> RecordVerifiedAnchor(
    provenance::Ledger& ledger, const provenance::NoteVerifier& log_key,
    const AnchorRequest& r, absl::Time now) {
  if (r.log_size == 0) {
    return absl::InvalidArgumentError("log_size must be at least 1");
  }
  if (r.root.size() != 32) {
    return absl::InvalidArgumentError(
        absl::StrCat("root has ", r.root.size(), " bytes; it must have 32"));
  }
  if (r.chain_id == 0) {
    return absl::InvalidArgumentError("chain_id must not be 0");
  }
  if (!IsHexWithPrefix(r.contract_address, 40)) {
    return absl::InvalidArgumentError(
        "contract_address must be 0x followed by 40 hex digits");
  }
  if (!IsHexWithPrefix(r.tx_hash, 64)) {
    return absl::InvalidArgumentError(
        "tx_hash must be 0x followed by 64 hex digits");
  }
  absl::StatusOr<provenance::LogCheckpointRow> row =
      ledger.store().GetLogCheckpoint(r.log_size);
  if (!row.ok()) {
    if (absl::IsNotFound(row.status())) {
      return absl::NotFoundError(absl::StrCat(
          "this log never signed a checkpoint of size ", r.log_size));
    }
    return row.status();
  }
  absl::StatusOr<provenance::Checkpoint> checkpoint =
      provenance::OpenCheckpoint(row->note, log_key);
  if (!checkpoint.ok()) {
    return absl::DataLossError(absl::StrCat("stored log checkpoint of size ", r.log_size,
                                            " does not open: ", checkpoint.status().message()));
  }
  if (checkpoint->size != r.log_size ||
      !std::equal(r.root.begin(), r.root.end(), checkpoint->root.begin(),
                  [](char a, uint8_t b) { return static_cast<uint8_t>(a) == b; })) {
    return absl::FailedPreconditionError(absl::StrCat(
        "root does not match the log checkpoint this server signed at size ", r.log_size));
  }
  provenance::Anchor anchor;
  anchor.log_size = r.log_size;
  anchor.chain_id = r.chain_id;
  anchor.contract = r.contract_address;
  anchor.tx_hash = r.tx_hash;
  anchor.block_number = r.block_number;
  anchor.time = r.block_time == absl::InfinitePast() ? now : r.block_time;
  if (absl::Status s = ledger.RecordAnchor(anchor); !s.ok()) return s;
  return row->note;
}

}  // namespace stepproof::service
