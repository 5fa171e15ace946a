// LogMonitor: follows the global log's signed checkpoints and checks that
// each one it is shown extends every one it saw before. This is the monitor
// that catches a log showing two histories: a checkpoint with a different
// root at a size already seen, a smaller size than one already seen (a
// rollback), or a newer checkpoint with no valid consistency proof from the
// older one. `stepproof-audit watch` and `stepproof-audit consistency` are
// thin loops around it; the proofs come from a fetcher so the monitor itself
// does no I/O.
//
// Thread-safety: not thread-safe; one monitor per thread.
#ifndef STEPPROOF_CLIENTS_LOG_MONITOR_H_
#define STEPPROOF_CLIENTS_LOG_MONITOR_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "merkle/hash.h"
#include "provenance/checkpoint.h"
#include "provenance/verifier_key.h"

namespace stepproof::clients {

// Returns the RFC 9162 consistency proof from log size `size1` to `size2`
// (0 < size1 < size2), e.g. by calling GetLogConsistency.
using ConsistencyProofFetcher =
    std::function<absl::StatusOr<std::vector<merkle::Hash>>(uint64_t size1,
                                                            uint64_t size2)>;

struct LogObservation {
  enum class Change { kFirst, kUnchanged, kGrew };
  Change change = Change::kFirst;
  uint64_t previous_size = 0;  // 0 for kFirst
  provenance::Checkpoint checkpoint;  // the new latest checkpoint
  std::string note;                   // its signed note
};

class LogMonitor {
 public:
  // `expected_origin`: the log origin the checkpoints must carry; empty means
  // "whatever the first checkpoint says".
  LogMonitor(provenance::NoteVerifier key, std::string expected_origin);

  // Checks `note` against the latest checkpoint seen and, when it checks,
  // makes it the latest. Errors (the latest is then unchanged):
  //   the errors of OpenCheckpoint (malformed, unsigned or badly signed)
  //   FAILED_PRECONDITION  another origin; a smaller size than seen (rollback);
  //                        a different root at the size seen (two histories);
  //                        a consistency proof that does not check
  //   the fetcher's errors, prefixed with what was being fetched.
  absl::StatusOr<LogObservation> Observe(
      absl::string_view note, const ConsistencyProofFetcher& fetch_proof);

  // The latest checkpoint accepted, if any.
  const std::optional<provenance::Checkpoint>& latest() const {
    return latest_;
  }
  const std::string& latest_note() const { return latest_note_; }

 private:
  provenance::NoteVerifier key_;
  std::string expected_origin_;
  std::optional<provenance::Checkpoint> latest_;
  std::string latest_note_;
};

}  // namespace stepproof::clients

#endif  // STEPPROOF_CLIENTS_LOG_MONITOR_H_
