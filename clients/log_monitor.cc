#include "clients/log_monitor.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "provenance/verifier.h"

namespace stepproof::clients {

LogMonitor::LogMonitor(provenance::NoteVerifier key,
                       std::string expected_origin)
    : key_(std::move(key)), expected_origin_(std::move(expected_origin)) {}

absl::StatusOr<LogObservation> LogMonitor::Observe(
    absl::string_view note, const ConsistencyProofFetcher& fetch_proof) {
  absl::StatusOr<provenance::Checkpoint> cp =
      provenance::OpenCheckpoint(note, key_);
  if (!cp.ok()) {
    return absl::Status(cp.status().code(),
                        absl::StrCat("log checkpoint: ", cp.status().message()));
  }
  const std::string& origin =
      latest_.has_value() ? latest_->origin : expected_origin_;
  if (!origin.empty() && cp->origin != origin) {
    return absl::FailedPreconditionError(
        absl::StrCat("log checkpoint has origin \"", cp->origin,
                     "\", expected \"", origin, "\""));
  }
  LogObservation obs;
  obs.checkpoint = *cp;
  obs.note = std::string(note);
  if (!latest_.has_value()) {
    obs.change = LogObservation::Change::kFirst;
  } else {
    const provenance::Checkpoint& old = *latest_;
    obs.previous_size = old.size;
    if (cp->size < old.size) {
      return absl::FailedPreconditionError(absl::StrCat(
          "log rolled back: checkpoint of size ", cp->size,
          " after one of size ", old.size,
          " (an append-only log never shrinks)"));
    }
    if (cp->size == old.size) {
      if (cp->root != old.root) {
        return absl::FailedPreconditionError(absl::StrCat(
            "the log shows two histories: two signed checkpoints of size ",
            cp->size, " with different roots (", merkle::ToHex(old.root),
            " and ", merkle::ToHex(cp->root), ")"));
      }
      obs.change = LogObservation::Change::kUnchanged;
    } else {
      std::vector<merkle::Hash> proof;
      if (old.size > 0) {
        absl::StatusOr<std::vector<merkle::Hash>> fetched =
            fetch_proof(old.size, cp->size);
        if (!fetched.ok()) {
          return absl::Status(
              fetched.status().code(),
              absl::StrCat("fetching the consistency proof from size ",
                           old.size, " to ", cp->size, ": ",
                           fetched.status().message()));
        }
        proof = std::move(*fetched);
      }
      absl::Status consistent = provenance::VerifyLogConsistency(
          latest_note_, note, proof, key_);
      if (!consistent.ok()) {
        return absl::FailedPreconditionError(absl::StrCat(
            "log checkpoint of size ", cp->size,
            " is not consistent with the one of size ", old.size, ": ",
            consistent.message()));
      }
      obs.change = LogObservation::Change::kGrew;
    }
  }
  latest_ = std::move(*cp);
  latest_note_ = std::string(note);
  return obs;
}

}  // namespace stepproof::clients
