// LogSequencer: integrates sealed traces into the global append-only log.
// Each batch reads up to max_batch_entries pending entries (oldest seal first)
// from the store, appends their leaf hashes to the log's compact range,
// signs a C2SP log checkpoint (origin = the log origin) for the new size and
// writes leaves, completed nodes and checkpoint in one store transaction.
// The compact range is rebuilt from stored nodes at Open, so a restart
// continues the same tree.
//
// Batching: a batch starts when batch_size entries are pending or the
// oldest has waited max_batch_delay (and, as a safety net, after every idle
// second). With `background` the sequencer runs its own thread (started by
// Start(), joined by Stop()); without, nothing is integrated until
// IntegrateBatch()/Flush() is called, so tests control timing. Times come
// from the injected clock; the background thread sleeps in real time.
//
// Pending entries live in the store (ProvenanceStore::SealTrace queues them),
// so a crash loses none: the next Open integrates them first.
//
// Thread-safety: thread-safe; batches are serialised.
#ifndef STEPPROOF_PROVENANCE_LOG_LOG_SEQUENCER_H_
#define STEPPROOF_PROVENANCE_LOG_LOG_SEQUENCER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "merkle/compact_range.h"
#include "provenance/log/store.h"
#include "provenance/signer.h"

namespace stepproof::provenance {

struct LogSequencerOptions {
  // Integrate as soon as this many entries are pending...
  size_t batch_size = 256;
  // ... or when the oldest pending entry has waited this long.
  absl::Duration max_batch_delay = absl::Milliseconds(100);
  // The most entries one batch (one transaction, one signed checkpoint)
  // takes. Under a backlog batches grow up to this, so the commit's fsync is
  // shared by more entries and throughput keeps up with the arrival rate.
  size_t max_batch_entries = 4096;
  // What promises state: the longest a sealed trace may wait for the log.
  absl::Duration max_integration_delay = absl::Seconds(10);
  // Run a background integration thread.
  bool background = true;
};

class LogSequencer {
 public:
  // Resumes the log held in `store`. REQUIRES: store and signer outlive the
  // sequencer. DATA_LOSS if the stored nodes do not give the root of the
  // latest stored checkpoint's size (checked against the stored note).
  static absl::StatusOr<std::unique_ptr<LogSequencer>> Open(
      ProvenanceStore* store, const Signer* signer, std::string origin,
      LogSequencerOptions options, std::function<absl::Time()> clock);
  ~LogSequencer();  // Stop()s.

  // Tells the sequencer that one more entry is pending (after the store
  // committed it). Wakes the background thread when a batch is full.
  void NotifyPending();

  // Integrates one batch of up to max_batch_entries pending entries; returns how
  // many were integrated (0 when nothing was pending).
  absl::StatusOr<size_t> IntegrateBatch();
  // Integrates batches until nothing is pending.
  absl::Status Flush();

  // Starts / stops the background thread (no-ops without `background`).
  void Start();
  void Stop();

  // The background thread's last batch result (OK when it succeeded).
  absl::Status last_error() const;

  // Log size after the last integrated batch.
  uint64_t size() const;
  const std::string& origin() const { return origin_; }
  const LogSequencerOptions& options() const { return options_; }

 private:
  LogSequencer(ProvenanceStore* store, const Signer* signer,
               std::string origin, LogSequencerOptions options,
               std::function<absl::Time()> clock);
  void Run();
  absl::StatusOr<size_t> IntegrateBatchLocked()
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(batch_mu_);

  ProvenanceStore* const store_;
  const Signer* const signer_;
  const std::string origin_;
  const LogSequencerOptions options_;
  const std::function<absl::Time()> clock_;

  // Serialises batches; guards the tree state.
  mutable absl::Mutex batch_mu_ ABSL_ACQUIRED_BEFORE(wake_mu_);
  merkle::CompactRange range_ ABSL_GUARDED_BY(batch_mu_);

  // Background-thread wake-up state.
  mutable absl::Mutex wake_mu_;
  uint64_t pending_ ABSL_GUARDED_BY(wake_mu_) = 0;
  absl::Time oldest_pending_ ABSL_GUARDED_BY(wake_mu_) = absl::InfiniteFuture();
  bool stopping_ ABSL_GUARDED_BY(wake_mu_) = false;
  absl::Status last_error_ ABSL_GUARDED_BY(wake_mu_);
  std::thread thread_;
};

}  // namespace stepproof::provenance

#endif  // STEPPROOF_PROVENANCE_LOG_LOG_SEQUENCER_H_
