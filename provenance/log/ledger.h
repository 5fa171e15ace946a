// Ledger: the provenance facade the service uses. It turns a stream of step
// records into signed, stored traces and feeds sealed traces into the global
// append-only log; it serves traces, proof bundles and log proofs.
//
//   StartTrace(header)        -> trace id, header leaf, first signed checkpoint
//   AppendStep(id, record)    -> leaf index, leaf hash, signed trace checkpoint
//   SealTrace(id)             -> final signed checkpoint + signed promise
//   ... later: GetStepBundle(id, i) carries the log inclusion proof, the
//   signed log checkpoint and (when recorded) the chain anchor.
//
// Every step is committed to the store before AppendStep returns (it
// survives a crash of the process; against power loss it is durable once a
// later seal or log batch has synced the store: sqlite_store.h), and a
// sealed trace, all its steps included, is durable against power loss (and
// queued for the log) before SealTrace returns. A LogSequencer
// (log_sequencer.h) integrates sealed traces in batches; the promise states
// the longest time that may take. Traces left open by a crash are marked
// TraceState::kInterrupted when the ledger next opens: readable with their
// last signed checkpoint, never appended to again, never logged.
//
// Status codes: NOT_FOUND for an unknown trace, step or leaf;
// INVALID_ARGUMENT for bad sizes, indices or page tokens; FAILED_PRECONDITION
// for appending to (or sealing) a trace that is not open in this process;
// storage errors as ProvenanceStore returns them.
//
// Thread-safety: thread-safe. Calls on different traces run concurrently
// apart from the store's serialised writes.
#ifndef STEPPROOF_PROVENANCE_LOG_LEDGER_H_
#define STEPPROOF_PROVENANCE_LOG_LEDGER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "merkle/hash.h"
#include "provenance/bundle.h"
#include "provenance/log/log_sequencer.h"
#include "provenance/log/store.h"
#include "provenance/signer.h"
#include "provenance/step_record.h"
#include "provenance/trace_header.h"

namespace stepproof::provenance {

struct LedgerOptions {
  // The global log's origin line, e.g. "stepproof.example.com/log". Trace
  // checkpoints use "<log_origin>/trace/<trace id>". REQUIRED.
  std::string log_origin;
  LogSequencerOptions sequencer;
  // Clock for creation/seal times and promises; absl::Now when empty.
  std::function<absl::Time()> clock;
  // New trace ids (32 lowercase hex characters); random 128 bits when empty.
  std::function<std::string()> new_trace_id;
};

struct StartedTrace {
  std::string trace_id;
  std::string header_record;        // encoded header step record (leaf 0)
  merkle::Hash header_leaf_hash{};
  std::string signed_checkpoint;    // trace checkpoint at size 1
};

struct AppendedStep {
  uint64_t leaf_index = 0;
  merkle::Hash leaf_hash{};
  std::string encoded_record;
  std::string signed_checkpoint;    // trace checkpoint at size leaf_index + 1
};

struct SealedTrace {
  uint64_t size = 0;                // leaves, header included
  std::string final_checkpoint;     // signed note; also the log leaf
  std::string promise;              // signed inclusion promise (promise.h)
};

struct TracePage {
  std::vector<TraceRecord> traces;  // newest first
  std::string next_page_token;      // empty on the last page
};

// A global log inclusion proof for one leaf.
struct LogInclusionProof {
  uint64_t leaf_index = 0;
  uint64_t tree_size = 0;
  merkle::Hash leaf_hash{};
  std::vector<merkle::Hash> hashes;
  std::string log_checkpoint;  // the signed log checkpoint at tree_size
};

class Ledger {
 public:
  // Opens the ledger over `store`: marks traces left open by an earlier
  // process kInterrupted, resumes the log from its stored nodes and, when
  // options.sequencer.background is set, starts the sequencer thread.
  // REQUIRES: `signer` outlives the ledger. INVALID_ARGUMENT for an empty
  // origin; store errors (FAILED_PRECONDITION, DATA_LOSS) from resuming.
  static absl::StatusOr<std::unique_ptr<Ledger>> Open(
      std::unique_ptr<ProvenanceStore> store, const Signer* signer,
      LedgerOptions options);

  // Stops the sequencer thread after integrating what is pending (errors are
  // dropped: call Flush() first to see them).
  ~Ledger();

  Ledger(const Ledger&) = delete;
  Ledger& operator=(const Ledger&) = delete;

  // Starts a trace: picks its id, commits the header record as leaf 0 and
  // signs the first trace checkpoint. INVALID_ARGUMENT for an invalid header.
  absl::StatusOr<StartedTrace> StartTrace(const TraceHeader& header);

  // Appends one step. The ledger sets record.trace_id and record.index (the
  // next leaf); the caller fills the rest (salt included).
  // NOT_FOUND: unknown trace. FAILED_PRECONDITION: sealed, interrupted, or
  // started by another process. INVALID_ARGUMENT: the record fails
  // ValidateStepRecord or is a header record.
  absl::StatusOr<AppendedStep> AppendStep(const std::string& trace_id,
                                          StepRecord record);

  // Signs the final trace checkpoint, stores it durably, queues it for the
  // log and returns it with a signed promise to integrate it within
  // options.sequencer.max_integration_delay. NOT_FOUND; FAILED_PRECONDITION
  // unless the trace is open in this ledger.
  absl::StatusOr<SealedTrace> SealTrace(const std::string& trace_id);

  // NOT_FOUND for an unknown trace.
  absl::StatusOr<TraceRecord> GetTrace(const std::string& trace_id);

  // Traces, newest first. page_size 0 means 50; at most 1000.
  // INVALID_ARGUMENT for a page token this ledger did not issue, or a
  // negative page size.
  absl::StatusOr<TracePage> ListTraces(const std::string& page_token,
                                       int page_size);

  // The proof bundle for step `index` (0 is the header): the record, its
  // inclusion proof against the trace's latest (final, once sealed) signed
  // checkpoint and, once the trace is in the log, the log inclusion proof and
  // signed log checkpoint (the one a recorded anchor covers, when there is
  // such an anchor, else the latest) and that anchor.
  // NOT_FOUND: unknown trace or index.
  absl::StatusOr<Bundle> GetStepBundle(const std::string& trace_id,
                                       uint64_t index);

  // Consistency proof between the trace's checkpoints of size1 and size2.
  // NOT_FOUND: unknown trace. INVALID_ARGUMENT unless
  // 1 <= size1 <= size2 <= the trace's size.
  absl::StatusOr<std::vector<merkle::Hash>> GetTraceConsistency(
      const std::string& trace_id, uint64_t size1, uint64_t size2);

  // The latest signed log checkpoint. NOT_FOUND before the first batch.
  absl::StatusOr<LogCheckpointRow> LatestLogCheckpoint();

  // Log inclusion proof for a trace (by id) or a leaf (by index) in the tree
  // of `tree_size` leaves; tree_size 0 means the latest checkpoint's size.
  // NOT_FOUND: unknown trace, trace not yet integrated, or index beyond the
  // log. INVALID_ARGUMENT: tree_size beyond the log or <= the leaf index.
  // log_checkpoint is empty when no checkpoint was signed at tree_size.
  absl::StatusOr<LogInclusionProof> LogInclusionForTrace(
      const std::string& trace_id, uint64_t tree_size = 0);
  absl::StatusOr<LogInclusionProof> LogInclusionForLeaf(uint64_t leaf_index,
                                                        uint64_t tree_size = 0);

  // Log consistency proof. INVALID_ARGUMENT unless
  // 1 <= size1 <= size2 <= log size.
  absl::StatusOr<std::vector<merkle::Hash>> LogConsistency(uint64_t size1,
                                                           uint64_t size2);

  // Records that the log checkpoint of anchor.log_size was published on a
  // chain. NOT_FOUND if no log checkpoint has that size; ALREADY_EXISTS for a
  // repeated (chain_id, tx_hash).
  absl::Status RecordAnchor(const Anchor& anchor);

  // Integrates everything pending now (used at shutdown and in tests).
  absl::Status Flush();

  // The sequencer, for tests and benchmarks that drive it directly (and
  // sequencer().last_error() for health checks).
  LogSequencer& sequencer() { return *sequencer_; }
  // The store, for reads the facade does not wrap (steps, a checkpoint of a
  // given size). Writes must go through the ledger.
  ProvenanceStore& store() { return *store_; }

 private:
  struct OpenTrace;
  Ledger(std::unique_ptr<ProvenanceStore> store, const Signer* signer,
         LedgerOptions options);
  absl::StatusOr<std::shared_ptr<OpenTrace>> FindOpen(
      const std::string& trace_id);
  absl::StatusOr<LogInclusionProof> InclusionAt(uint64_t leaf_index,
                                                uint64_t tree_size);

  std::unique_ptr<ProvenanceStore> store_;
  const Signer* const signer_;
  const LedgerOptions options_;
  std::unique_ptr<LogSequencer> sequencer_;

  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<OpenTrace>> open_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace stepproof::provenance

#endif  // STEPPROOF_PROVENANCE_LOG_LEDGER_H_
