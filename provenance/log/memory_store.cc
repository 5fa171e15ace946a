#include "provenance/log/memory_store.h"

#include <map>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

namespace stepproof::provenance {
namespace {

using NodeKey = std::pair<uint32_t, uint64_t>;

class InMemoryProvenanceStore : public ProvenanceStore {
 public:
  absl::Status CreateTrace(const TraceRecord& trace,
                           const TraceLeafWrite& header_leaf) override {
    if (header_leaf.index != 0 || header_leaf.trace_id != trace.trace_id) {
      return absl::InvalidArgumentError(
          "CreateTrace: header_leaf must be leaf 0 of the new trace");
    }
    absl::MutexLock lock(&mu_);
    if (traces_.contains(trace.trace_id)) {
      return absl::AlreadyExistsError(
          absl::StrCat("trace ", trace.trace_id, " already exists"));
    }
    Trace t;
    t.record.trace_id = trace.trace_id;
    t.record.header = header_leaf.encoded_record;
    t.record.state = TraceState::kOpen;
    t.record.created = trace.created;
    t.record.seq = ++next_trace_seq_;
    traces_.emplace(trace.trace_id, std::move(t));
    by_seq_[next_trace_seq_] = trace.trace_id;
    absl::Status s = WriteLeafLocked(header_leaf);
    if (!s.ok()) {  // undo: one call is one transaction
      traces_.erase(trace.trace_id);
      by_seq_.erase(next_trace_seq_);
    }
    return s;
  }

  absl::Status AppendTraceLeaf(const TraceLeafWrite& leaf) override {
    absl::MutexLock lock(&mu_);
    return WriteLeafLocked(leaf);
  }

  absl::Status SealTrace(const std::string& trace_id,
                         const std::string& final_checkpoint,
                         const std::string& promise,
                         absl::Time sealed) override {
    absl::MutexLock lock(&mu_);
    auto it = traces_.find(trace_id);
    if (it == traces_.end()) return NotFound(trace_id);
    if (it->second.record.state != TraceState::kOpen) {
      return absl::FailedPreconditionError(
          absl::StrCat("trace ", trace_id, " is not open"));
    }
    it->second.record.state = TraceState::kSealed;
    it->second.record.final_checkpoint = final_checkpoint;
    it->second.record.promise = promise;
    pending_[++next_pending_seq_] = {trace_id, sealed};
    return absl::OkStatus();
  }

  absl::StatusOr<uint64_t> InterruptOpenTraces() override {
    absl::MutexLock lock(&mu_);
    uint64_t n = 0;
    for (auto& [id, t] : traces_) {
      if (t.record.state == TraceState::kOpen) {
        t.record.state = TraceState::kInterrupted;
        ++n;
      }
    }
    return n;
  }

  absl::StatusOr<TraceRecord> GetTrace(const std::string& trace_id) override {
    absl::MutexLock lock(&mu_);
    auto it = traces_.find(trace_id);
    if (it == traces_.end()) return NotFound(trace_id);
    return it->second.record;
  }

  absl::StatusOr<std::vector<TraceRecord>> ListTraces(uint64_t before_seq,
                                                      size_t limit) override {
    absl::MutexLock lock(&mu_);
    std::vector<TraceRecord> out;
    auto it = before_seq == 0 ? by_seq_.end() : by_seq_.lower_bound(before_seq);
    while (it != by_seq_.begin() && out.size() < limit) {
      --it;
      out.push_back(traces_.at(it->second).record);
    }
    return out;
  }

  absl::StatusOr<StepRow> GetStep(const std::string& trace_id,
                                  uint64_t index) override {
    absl::MutexLock lock(&mu_);
    auto it = traces_.find(trace_id);
    if (it == traces_.end()) return NotFound(trace_id);
    if (index >= it->second.steps.size()) {
      return absl::NotFoundError(
          absl::StrCat("trace ", trace_id, " has no step ", index));
    }
    return it->second.steps[index];
  }

  absl::StatusOr<std::vector<merkle::Hash>> GetTraceNodes(
      const std::string& trace_id,
      absl::Span<const merkle::NodeId> ids) override {
    absl::MutexLock lock(&mu_);
    auto it = traces_.find(trace_id);
    if (it == traces_.end()) return NotFound(trace_id);
    return Lookup(it->second.nodes, ids, absl::StrCat("trace ", trace_id));
  }

  absl::StatusOr<std::string> GetTraceCheckpoint(const std::string& trace_id,
                                                 uint64_t size) override {
    absl::MutexLock lock(&mu_);
    auto it = traces_.find(trace_id);
    if (it == traces_.end()) return NotFound(trace_id);
    auto cp = it->second.checkpoints.find(size);
    if (cp == it->second.checkpoints.end()) {
      return absl::NotFoundError(absl::StrCat(
          "trace ", trace_id, " has no checkpoint of size ", size));
    }
    return cp->second;
  }

  absl::StatusOr<std::vector<PendingLogEntry>> ListPendingLogEntries(
      size_t limit) override {
    absl::MutexLock lock(&mu_);
    std::vector<PendingLogEntry> out;
    for (const auto& [seq, p] : pending_) {
      if (out.size() >= limit) break;
      out.push_back({seq, p.first, traces_.at(p.first).record.final_checkpoint,
                     p.second});
    }
    return out;
  }

  absl::StatusOr<uint64_t> CountPendingLogEntries() override {
    absl::MutexLock lock(&mu_);
    return pending_.size();
  }

  absl::Status AppendLogBatch(const LogBatch& batch) override {
    for (size_t i = 0; i < batch.leaves.size(); ++i) {
      if (batch.leaves[i].index != batch.first_index + i) {
        return absl::InvalidArgumentError(absl::StrCat(
            "log batch leaf ", i, " has index ", batch.leaves[i].index,
            ", want ", batch.first_index + i));
      }
    }
    absl::MutexLock lock(&mu_);
    uint64_t size = SizeLocked();
    if (batch.first_index != size) {
      return absl::FailedPreconditionError(absl::StrCat(
          "log batch starts at ", batch.first_index, " but the log has ",
          size, " leaves"));
    }
    uint64_t new_size = size + batch.leaves.size();
    if (log_checkpoints_.contains(new_size)) {
      return absl::AlreadyExistsError(
          absl::StrCat("log checkpoint of size ", new_size, " exists"));
    }
    for (const LogLeaf& leaf : batch.leaves) {
      log_leaves_.push_back(leaf);
      for (auto it = pending_.begin(); it != pending_.end(); ++it) {
        if (it->second.first == leaf.trace_id) {
          pending_.erase(it);
          break;
        }
      }
      auto t = traces_.find(leaf.trace_id);
      if (t != traces_.end()) t->second.record.log_index = leaf.index;
    }
    for (const StoredNode& n : batch.nodes) {
      log_nodes_[{n.id.level, n.id.index}] = n.hash;
    }
    log_checkpoints_[new_size] = {new_size, batch.checkpoint, batch.integrated};
    return absl::OkStatus();
  }

  absl::StatusOr<uint64_t> LogSize() override {
    absl::MutexLock lock(&mu_);
    return SizeLocked();
  }

  absl::StatusOr<std::vector<merkle::Hash>> GetLogNodes(
      absl::Span<const merkle::NodeId> ids) override {
    absl::MutexLock lock(&mu_);
    return Lookup(log_nodes_, ids, "log");
  }

  absl::StatusOr<LogLeaf> GetLogLeaf(uint64_t index) override {
    absl::MutexLock lock(&mu_);
    if (index >= log_leaves_.size()) {
      return absl::NotFoundError(absl::StrCat("no log leaf ", index));
    }
    return log_leaves_[index];
  }

  absl::StatusOr<LogCheckpointRow> LatestLogCheckpoint() override {
    absl::MutexLock lock(&mu_);
    if (log_checkpoints_.empty()) {
      return absl::NotFoundError("the log has no checkpoint yet");
    }
    return log_checkpoints_.rbegin()->second;
  }

  absl::StatusOr<LogCheckpointRow> GetLogCheckpoint(uint64_t size) override {
    absl::MutexLock lock(&mu_);
    auto it = log_checkpoints_.find(size);
    if (it == log_checkpoints_.end()) {
      return absl::NotFoundError(
          absl::StrCat("no log checkpoint of size ", size));
    }
    return it->second;
  }

  absl::Status PutAnchor(const Anchor& a) override {
    absl::MutexLock lock(&mu_);
    if (!log_checkpoints_.contains(a.log_size)) {
      return absl::NotFoundError(absl::StrCat(
          "no log checkpoint of size ", a.log_size, " to anchor"));
    }
    for (const Anchor& b : anchors_) {
      if (b.chain_id == a.chain_id && b.tx_hash == a.tx_hash) {
        return absl::AlreadyExistsError(absl::StrCat(
            "anchor ", a.tx_hash, " on chain ", a.chain_id,
            " is already recorded"));
      }
    }
    // Keep anchors ordered by log_size, then insertion.
    auto pos = anchors_.end();
    while (pos != anchors_.begin() && (pos - 1)->log_size > a.log_size) --pos;
    anchors_.insert(pos, a);
    return absl::OkStatus();
  }

  absl::StatusOr<std::optional<Anchor>> FirstAnchorCovering(
      uint64_t log_index) override {
    absl::MutexLock lock(&mu_);
    for (const Anchor& a : anchors_) {
      if (a.log_size > log_index) return std::optional<Anchor>(a);
    }
    return std::optional<Anchor>();
  }

  absl::StatusOr<std::vector<Anchor>> ListAnchors() override {
    absl::MutexLock lock(&mu_);
    return anchors_;
  }

 private:
  struct Trace {
    TraceRecord record;
    std::vector<StepRow> steps;
    absl::flat_hash_map<NodeKey, merkle::Hash> nodes;
    absl::flat_hash_map<uint64_t, std::string> checkpoints;
  };

  static absl::Status NotFound(const std::string& trace_id) {
    return absl::NotFoundError(absl::StrCat("unknown trace ", trace_id));
  }

  static absl::StatusOr<std::vector<merkle::Hash>> Lookup(
      const absl::flat_hash_map<NodeKey, merkle::Hash>& nodes,
      absl::Span<const merkle::NodeId> ids, const std::string& what) {
    std::vector<merkle::Hash> out;
    out.reserve(ids.size());
    for (const merkle::NodeId& id : ids) {
      auto it = nodes.find(NodeKey{id.level, id.index});
      if (it == nodes.end()) {
        return absl::NotFoundError(absl::StrCat(what, " has no node (",
                                                id.level, ", ", id.index, ")"));
      }
      out.push_back(it->second);
    }
    return out;
  }

  uint64_t SizeLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return log_checkpoints_.empty() ? 0 : log_checkpoints_.rbegin()->first;
  }

  absl::Status WriteLeafLocked(const TraceLeafWrite& leaf)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = traces_.find(leaf.trace_id);
    if (it == traces_.end()) return NotFound(leaf.trace_id);
    Trace& t = it->second;
    if (t.record.state != TraceState::kOpen) {
      return absl::FailedPreconditionError(
          absl::StrCat("trace ", leaf.trace_id, " is not open"));
    }
    if (leaf.index != t.record.size) {
      return absl::FailedPreconditionError(
          absl::StrCat("trace ", leaf.trace_id, " has ", t.record.size,
                       " leaves; cannot write leaf ", leaf.index));
    }
    t.steps.push_back(
        {leaf.trace_id, leaf.index, leaf.encoded_record, leaf.leaf_hash});
    for (const StoredNode& n : leaf.new_nodes) {
      t.nodes[{n.id.level, n.id.index}] = n.hash;
    }
    t.checkpoints[leaf.index + 1] = leaf.signed_checkpoint;
    t.record.size = leaf.index + 1;
    t.record.latest_checkpoint = leaf.signed_checkpoint;
    return absl::OkStatus();
  }

  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Trace> traces_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, std::string> by_seq_ ABSL_GUARDED_BY(mu_);
  uint64_t next_trace_seq_ ABSL_GUARDED_BY(mu_) = 0;
  // seal seq -> (trace id, seal time)
  std::map<uint64_t, std::pair<std::string, absl::Time>> pending_
      ABSL_GUARDED_BY(mu_);
  uint64_t next_pending_seq_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<LogLeaf> log_leaves_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<NodeKey, merkle::Hash> log_nodes_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, LogCheckpointRow> log_checkpoints_ ABSL_GUARDED_BY(mu_);
  std::vector<Anchor> anchors_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

std::unique_ptr<ProvenanceStore> NewInMemoryProvenanceStore() {
  return std::make_unique<InMemoryProvenanceStore>();
}

}  // namespace stepproof::provenance
