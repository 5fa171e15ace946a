// ProvenanceStore: the storage interface under the ledger. It holds traces
// (their step records, complete-subtree hashes and every signed trace
// checkpoint) and the global log (leaves, complete-subtree hashes, signed log
// checkpoints, the queue of sealed traces awaiting integration, and chain
// anchors). Two implementations: SqliteProvenanceStore (sqlite_store.h, the
// durable one) and InMemoryProvenanceStore (memory_store.h, for tests and
// tools). One conformance suite (tests/provenance_log/store_test.cc) runs
// against both.
//
// The store checks structure (indices follow on, states move forward) but not
// cryptography: hashes and signed notes are produced and verified above it.
//
// Each mutating call is one atomic transaction: after it returns OK it is
// visible and survives a crash of the process; SealTrace, AppendLogBatch,
// PutAnchor and InterruptOpenTraces are also durable against power loss,
// while CreateTrace and AppendTraceLeaf become so with the next of those
// (sqlite_store.h, "Durability"). After an error nothing of it is visible.
//
// Thread-safety: implementations are thread-safe. Writers are serialised;
// readers may run concurrently with a writer and see a committed state.
//
// Status codes common to all methods: INTERNAL or UNAVAILABLE for storage
// failures, DATA_LOSS when the store finds its content damaged.
#ifndef STEPPROOF_PROVENANCE_LOG_STORE_H_
#define STEPPROOF_PROVENANCE_LOG_STORE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "merkle/hash.h"
#include "merkle/tree.h"

namespace stepproof::provenance {

// Lifecycle of a trace. kInterrupted: it was open when its process stopped
// (crash mid-generation); it stays readable with its last signed checkpoint
// but can no longer grow and never enters the global log.
enum class TraceState : int { kOpen = 0, kSealed = 1, kInterrupted = 2 };

// One complete-subtree hash (merkle/compact_range.h reports these).
struct StoredNode {
  merkle::NodeId id;
  merkle::Hash hash;
};

// A trace as stored.
struct TraceRecord {
  std::string trace_id;
  std::string header;  // encoded header step record (leaf 0)
  TraceState state = TraceState::kOpen;
  absl::Time created;
  uint64_t size = 0;              // leaves committed, header included
  std::string latest_checkpoint;  // signed trace checkpoint note for `size`
  std::string final_checkpoint;   // signed note; empty unless sealed
  std::string promise;            // signed inclusion promise; once sealed
  std::optional<uint64_t> log_index;  // global log leaf, once integrated
  uint64_t seq = 0;  // store-assigned creation order, > 0 (ListTraces)
};

// One leaf appended to a trace, with what it completes.
struct TraceLeafWrite {
  std::string trace_id;
  uint64_t index = 0;            // must equal the trace's size before it
  std::string encoded_record;    // the step record's canonical bytes
  merkle::Hash leaf_hash{};      // merkle::HashLeaf(encoded_record)
  std::vector<StoredNode> new_nodes;  // nodes completed by this leaf
  std::string signed_checkpoint;      // trace checkpoint at size index + 1
};

struct StepRow {
  std::string trace_id;
  uint64_t index = 0;
  std::string encoded_record;
  merkle::Hash leaf_hash{};
};

// A sealed trace waiting for the sequencer, in seal order.
struct PendingLogEntry {
  uint64_t seq = 0;
  std::string trace_id;
  std::string leaf;  // the trace's final signed checkpoint note
  absl::Time sealed;
};

struct LogLeaf {
  uint64_t index = 0;
  std::string trace_id;
  std::string leaf;  // bytes of the final signed trace checkpoint note
  merkle::Hash leaf_hash{};
};

// One sequencer batch: leaves first_index.. , the nodes they complete and the
// signed log checkpoint at first_index + leaves.size().
struct LogBatch {
  uint64_t first_index = 0;  // must equal the log size before the batch
  std::vector<LogLeaf> leaves;  // leaves[i].index == first_index + i
  std::vector<StoredNode> nodes;
  std::string checkpoint;  // signed log checkpoint note for the new size
  absl::Time integrated;
};

struct LogCheckpointRow {
  uint64_t size = 0;
  std::string note;
  absl::Time integrated;
};

// A log checkpoint published on a chain.
struct Anchor {
  uint64_t log_size = 0;  // size of the anchored log checkpoint
  uint64_t chain_id = 0;
  std::string contract;   // contract address, as the chain writes it
  std::string tx_hash;
  uint64_t block_number = 0;
  absl::Time time;        // block time
};

class ProvenanceStore {
 public:
  virtual ~ProvenanceStore() = default;

  // ---- Traces ----

  // Creates trace `trace.trace_id` (state kOpen, created `trace.created`)
  // and stores its header leaf; the other TraceRecord fields are derived
  // (header = header_leaf.encoded_record, size, checkpoint, seq). ALREADY_EXISTS if the id is taken; INVALID_ARGUMENT if
  // header_leaf is not leaf 0 of that trace.
  virtual absl::Status CreateTrace(const TraceRecord& trace,
                                   const TraceLeafWrite& header_leaf) = 0;

  // Appends one leaf and its signed trace checkpoint. NOT_FOUND for an
  // unknown trace; FAILED_PRECONDITION if the trace is not open or
  // leaf.index != its size.
  virtual absl::Status AppendTraceLeaf(const TraceLeafWrite& leaf) = 0;

  // Seals an open trace with its final signed checkpoint (and the signed
  // inclusion promise given for it) and queues it for the global log,
  // atomically. NOT_FOUND; FAILED_PRECONDITION unless open.
  virtual absl::Status SealTrace(const std::string& trace_id,
                                 const std::string& final_checkpoint,
                                 const std::string& promise,
                                 absl::Time sealed) = 0;

  // Moves every kOpen trace to kInterrupted; returns how many. Called when a
  // ledger opens the store: no trace can be open across a restart.
  virtual absl::StatusOr<uint64_t> InterruptOpenTraces() = 0;

  // NOT_FOUND for an unknown trace.
  virtual absl::StatusOr<TraceRecord> GetTrace(const std::string& trace_id) = 0;

  // Up to `limit` traces with seq < before_seq, newest first (before_seq 0
  // means from the newest).
  virtual absl::StatusOr<std::vector<TraceRecord>> ListTraces(
      uint64_t before_seq, size_t limit) = 0;

  // NOT_FOUND for an unknown trace or index.
  virtual absl::StatusOr<StepRow> GetStep(const std::string& trace_id,
                                          uint64_t index) = 0;

  // The trace's complete-subtree hashes, in order. NOT_FOUND if any is missing.
  virtual absl::StatusOr<std::vector<merkle::Hash>> GetTraceNodes(
      const std::string& trace_id, absl::Span<const merkle::NodeId> ids) = 0;

  // The signed trace checkpoint at `size`. NOT_FOUND if none.
  virtual absl::StatusOr<std::string> GetTraceCheckpoint(
      const std::string& trace_id, uint64_t size) = 0;

  // ---- Global log ----

  // Up to `limit` sealed traces not yet in the log, oldest seal first.
  virtual absl::StatusOr<std::vector<PendingLogEntry>> ListPendingLogEntries(
      size_t limit) = 0;
  virtual absl::StatusOr<uint64_t> CountPendingLogEntries() = 0;

  // Appends a batch atomically: leaves, nodes and checkpoint are written, the
  // leaves' traces leave the pending queue and get their log_index.
  // FAILED_PRECONDITION if batch.first_index != LogSize(); INVALID_ARGUMENT
  // if the leaf indices do not follow on.
  virtual absl::Status AppendLogBatch(const LogBatch& batch) = 0;

  // Size of the latest log checkpoint (0 when none).
  virtual absl::StatusOr<uint64_t> LogSize() = 0;

  // The log's complete-subtree hashes, in order. NOT_FOUND if any is missing.
  virtual absl::StatusOr<std::vector<merkle::Hash>> GetLogNodes(
      absl::Span<const merkle::NodeId> ids) = 0;

  // NOT_FOUND if index >= LogSize().
  virtual absl::StatusOr<LogLeaf> GetLogLeaf(uint64_t index) = 0;

  // NOT_FOUND when the log has no checkpoint yet.
  virtual absl::StatusOr<LogCheckpointRow> LatestLogCheckpoint() = 0;
  // NOT_FOUND if no checkpoint was signed at exactly `size`.
  virtual absl::StatusOr<LogCheckpointRow> GetLogCheckpoint(uint64_t size) = 0;

  // ---- Anchors ----

  // NOT_FOUND unless a log checkpoint of anchor.log_size exists;
  // ALREADY_EXISTS for a repeated (chain_id, tx_hash).
  virtual absl::Status PutAnchor(const Anchor& anchor) = 0;
  // The anchor with the smallest log_size > log_index (the first one that
  // covers that leaf), or nullopt.
  virtual absl::StatusOr<std::optional<Anchor>> FirstAnchorCovering(
      uint64_t log_index) = 0;
  // Every anchor, by log_size.
  virtual absl::StatusOr<std::vector<Anchor>> ListAnchors() = 0;
};

}  // namespace stepproof::provenance

#endif  // STEPPROOF_PROVENANCE_LOG_STORE_H_
