#include "provenance/log/ledger.h"

#include <algorithm>
#include <charconv>
#include <random>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "merkle/proof_builder.h"
#include "provenance/promise.h"
#include "provenance/trace_builder.h"

namespace stepproof::provenance {
namespace {

constexpr int kDefaultPageSize = 50;
constexpr int kMaxPageSize = 1000;
constexpr absl::string_view kPageTokenPrefix = "traces.v1.";

// merkle::NodeReader over a trace's stored nodes.
class TraceNodeReader : public merkle::NodeReader {
 public:
  TraceNodeReader(ProvenanceStore* store, const std::string& trace_id)
      : store_(store), trace_id_(trace_id) {}
  absl::StatusOr<std::vector<merkle::Hash>> GetNodes(
      absl::Span<const merkle::NodeId> ids) const override {
    return store_->GetTraceNodes(trace_id_, ids);
  }

 private:
  ProvenanceStore* store_;
  const std::string& trace_id_;
};

// merkle::NodeReader over the global log's stored nodes.
class LogNodeReader : public merkle::NodeReader {
 public:
  explicit LogNodeReader(ProvenanceStore* store) : store_(store) {}
  absl::StatusOr<std::vector<merkle::Hash>> GetNodes(
      absl::Span<const merkle::NodeId> ids) const override {
    return store_->GetLogNodes(ids);
  }

 private:
  ProvenanceStore* store_;
};

std::string RandomTraceId() {
  static constexpr char kHex[] = "0123456789abcdef";
  std::random_device rd;  // getrandom(2) / /dev/urandom on Linux
  std::string id;
  id.reserve(32);
  for (int i = 0; i < 4; ++i) {
    uint32_t word = rd();
    for (int j = 0; j < 8; ++j) {
      id.push_back(kHex[word & 0xf]);
      word >>= 4;
    }
  }
  return id;
}

TraceLeafWrite ToLeafWrite(const std::string& trace_id,
                           const TraceBuilder::Appended& a) {
  TraceLeafWrite w;
  w.trace_id = trace_id;
  w.index = a.leaf_index;
  w.encoded_record = a.encoded_record;
  w.leaf_hash = a.leaf_hash;
  w.new_nodes.reserve(a.new_nodes.size());
  for (const auto& [id, hash] : a.new_nodes) w.new_nodes.push_back({id, hash});
  w.signed_checkpoint = a.signed_checkpoint;
  return w;
}

absl::Status NotOpen(const TraceRecord& t) {
  switch (t.state) {
    case TraceState::kSealed:
      return absl::FailedPreconditionError(
          absl::StrCat("trace ", t.trace_id, " is sealed"));
    case TraceState::kInterrupted:
      return absl::FailedPreconditionError(absl::StrCat(
          "trace ", t.trace_id, " was interrupted (its process stopped)"));
    case TraceState::kOpen:
      break;
  }
  return absl::FailedPreconditionError(
      absl::StrCat("trace ", t.trace_id, " is not open in this process"));
}

}  // namespace

struct Ledger::OpenTrace {
  explicit OpenTrace(TraceBuilder b) : builder(std::move(b)) {}
  absl::Mutex mu;
  TraceBuilder builder ABSL_GUARDED_BY(mu);
  // Set when sealed, or when a store write failed and the builder and the
  // store may disagree: the trace takes no more steps.
  bool closed ABSL_GUARDED_BY(mu) = false;
};

absl::StatusOr<std::unique_ptr<Ledger>> Ledger::Open(
    std::unique_ptr<ProvenanceStore> store, const Signer* signer,
    LedgerOptions options) {
  if (store == nullptr || signer == nullptr) {
    return absl::InvalidArgumentError("Ledger needs a store and a signer");
  }
  if (options.log_origin.empty()) {
    return absl::InvalidArgumentError("Ledger needs a log origin");
  }
  if (!options.clock) options.clock = [] { return absl::Now(); };
  if (!options.new_trace_id) options.new_trace_id = RandomTraceId;
  absl::StatusOr<uint64_t> interrupted = store->InterruptOpenTraces();
  if (!interrupted.ok()) return interrupted.status();
  std::unique_ptr<Ledger> ledger(
      new Ledger(std::move(store), signer, std::move(options)));
  absl::StatusOr<std::unique_ptr<LogSequencer>> seq = LogSequencer::Open(
      ledger->store_.get(), signer, ledger->options_.log_origin,
      ledger->options_.sequencer, ledger->options_.clock);
  if (!seq.ok()) return seq.status();
  ledger->sequencer_ = std::move(*seq);
  ledger->sequencer_->Start();
  return ledger;
}

Ledger::Ledger(std::unique_ptr<ProvenanceStore> store, const Signer* signer,
               LedgerOptions options)
    : store_(std::move(store)), signer_(signer), options_(std::move(options)) {}

Ledger::~Ledger() {
  if (sequencer_ != nullptr) {
    sequencer_->Stop();
    sequencer_->Flush().IgnoreError();
  }
}

absl::StatusOr<StartedTrace> Ledger::StartTrace(const TraceHeader& header) {
  std::string id = options_.new_trace_id();
  absl::StatusOr<TraceBuilder> builder =
      TraceBuilder::Start(options_.log_origin, id, header, signer_);
  if (!builder.ok()) return builder.status();
  const TraceBuilder::Appended& h = builder->header();
  TraceRecord record;
  record.trace_id = id;
  record.header = h.encoded_record;
  record.created = options_.clock();
  absl::Status s = store_->CreateTrace(record, ToLeafWrite(id, h));
  if (!s.ok()) return s;
  StartedTrace out;
  out.trace_id = id;
  out.header_record = h.encoded_record;
  out.header_leaf_hash = h.leaf_hash;
  out.signed_checkpoint = h.signed_checkpoint;
  absl::MutexLock lock(&mu_);
  open_.emplace(id, std::make_shared<OpenTrace>(std::move(*builder)));
  return out;
}

absl::StatusOr<std::shared_ptr<Ledger::OpenTrace>> Ledger::FindOpen(
    const std::string& trace_id) {
  {
    absl::MutexLock lock(&mu_);
    auto it = open_.find(trace_id);
    if (it != open_.end()) return it->second;
  }
  absl::StatusOr<TraceRecord> t = store_->GetTrace(trace_id);
  if (!t.ok()) return t.status();
  return NotOpen(*t);
}

absl::StatusOr<AppendedStep> Ledger::AppendStep(const std::string& trace_id,
                                                StepRecord record) {
  absl::StatusOr<std::shared_ptr<OpenTrace>> ot = FindOpen(trace_id);
  if (!ot.ok()) return ot.status();
  absl::MutexLock lock(&(*ot)->mu);
  if ((*ot)->closed) {
    return absl::FailedPreconditionError(
        absl::StrCat("trace ", trace_id, " is closed"));
  }
  absl::StatusOr<TraceBuilder::Appended> a =
      (*ot)->builder.AppendStep(std::move(record));
  if (!a.ok()) return a.status();
  absl::Status s = store_->AppendTraceLeaf(ToLeafWrite(trace_id, *a));
  if (!s.ok()) {
    // The builder moved on and the store did not: take no more steps.
    (*ot)->closed = true;
    absl::MutexLock map_lock(&mu_);
    open_.erase(trace_id);
    return s;
  }
  AppendedStep out;
  out.leaf_index = a->leaf_index;
  out.leaf_hash = a->leaf_hash;
  out.encoded_record = std::move(a->encoded_record);
  out.signed_checkpoint = std::move(a->signed_checkpoint);
  return out;
}

absl::StatusOr<SealedTrace> Ledger::SealTrace(const std::string& trace_id) {
  absl::StatusOr<std::shared_ptr<OpenTrace>> ot = FindOpen(trace_id);
  if (!ot.ok()) return ot.status();
  SealedTrace out;
  {
    absl::MutexLock lock(&(*ot)->mu);
    if ((*ot)->closed) {
      return absl::FailedPreconditionError(
          absl::StrCat("trace ", trace_id, " is closed"));
    }
    absl::StatusOr<std::string> final_note = (*ot)->builder.Finish();
    if (!final_note.ok()) return final_note.status();
    const absl::Time now = options_.clock();
    const absl::Duration delay = options_.sequencer.max_integration_delay;
    absl::StatusOr<InclusionPromise> promise = MakePromise(
        options_.log_origin, *final_note, absl::ToUnixMillis(now),
        static_cast<uint64_t>(
            absl::ToInt64Seconds(absl::Ceil(delay, absl::Seconds(1)))));
    if (!promise.ok()) return promise.status();
    absl::StatusOr<std::string> promise_note = SignPromise(*promise, *signer_);
    if (!promise_note.ok()) return promise_note.status();
    // Durable (and queued for the log) before anything reaches the client.
    absl::Status s =
        store_->SealTrace(trace_id, *final_note, *promise_note, now);
    (*ot)->closed = true;  // sealed, or the store refused: no more steps
    if (!s.ok()) {
      absl::MutexLock map_lock(&mu_);
      open_.erase(trace_id);
      return s;
    }
    out.size = (*ot)->builder.size();
    out.final_checkpoint = std::move(*final_note);
    out.promise = std::move(*promise_note);
  }
  {
    absl::MutexLock map_lock(&mu_);
    open_.erase(trace_id);
  }
  sequencer_->NotifyPending();
  return out;
}

absl::StatusOr<TraceRecord> Ledger::GetTrace(const std::string& trace_id) {
  return store_->GetTrace(trace_id);
}

absl::StatusOr<TracePage> Ledger::ListTraces(const std::string& page_token,
                                             int page_size) {
  if (page_size < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("page size ", page_size, " is negative"));
  }
  if (page_size == 0) page_size = kDefaultPageSize;
  page_size = std::min(page_size, kMaxPageSize);
  uint64_t before = 0;
  if (!page_token.empty()) {
    absl::string_view t(page_token.data(), page_token.size());
    const char* end = page_token.data() + page_token.size();
    bool ok = absl::StartsWith(t, kPageTokenPrefix);
    if (ok) {
      const char* begin = page_token.data() + kPageTokenPrefix.size();
      auto [ptr, ec] = std::from_chars(begin, end, before);
      ok = ec == std::errc() && ptr == end && before > 0 && begin[0] != '0';
    }
    if (!ok) {
      return absl::InvalidArgumentError(
          absl::StrCat("invalid page token '",
                       absl::string_view(page_token).substr(0, 40),
                       page_token.size() > 40 ? "...'" : "'"));
    }
  }
  absl::StatusOr<std::vector<TraceRecord>> rows =
      store_->ListTraces(before, static_cast<size_t>(page_size) + 1);
  if (!rows.ok()) return rows.status();
  TracePage page;
  if (rows->size() > static_cast<size_t>(page_size)) {
    rows->resize(page_size);
    page.next_page_token = absl::StrCat(kPageTokenPrefix, rows->back().seq);
  }
  page.traces = std::move(*rows);
  return page;
}

absl::StatusOr<Bundle> Ledger::GetStepBundle(const std::string& trace_id,
                                             uint64_t index) {
  absl::StatusOr<TraceRecord> t = store_->GetTrace(trace_id);
  if (!t.ok()) return t.status();
  if (index >= t->size) {
    return absl::NotFoundError(absl::StrCat(
        "trace ", trace_id, " has ", t->size, " leaves; no step ", index));
  }
  absl::StatusOr<StepRow> step = store_->GetStep(trace_id, index);
  if (!step.ok()) return step.status();
  absl::StatusOr<StepRecord> record = DecodeStepRecord(step->encoded_record);
  if (!record.ok()) {
    return absl::DataLossError(absl::StrCat("stored step ", index, " of trace ",
                                            trace_id, " does not decode: ",
                                            record.status().message()));
  }
  TraceNodeReader nodes(store_.get(), trace_id);
  absl::StatusOr<std::vector<merkle::Hash>> proof =
      merkle::MakeInclusionProof(nodes, index, t->size);
  if (!proof.ok()) return proof.status();

  Bundle b;
  b.record = std::move(*record);
  b.encoded_record = std::move(step->encoded_record);
  b.leaf_index = index;
  b.inclusion_proof = std::move(*proof);
  const bool sealed = t->state == TraceState::kSealed;
  b.trace_checkpoint = sealed ? t->final_checkpoint : t->latest_checkpoint;
  if (sealed && !t->promise.empty()) b.promise = t->promise;
  if (sealed && t->log_index.has_value()) {
    absl::StatusOr<std::optional<Anchor>> anchor =
        store_->FirstAnchorCovering(*t->log_index);
    if (!anchor.ok()) return anchor.status();
    // Prove inclusion in the anchored checkpoint when there is one, so the
    // bundle's log checkpoint is the one the chain holds.
    uint64_t tree_size = anchor->has_value() ? (*anchor)->log_size : 0;
    absl::StatusOr<LogInclusionProof> incl =
        InclusionAt(*t->log_index, tree_size);
    if (!incl.ok()) return incl.status();
    LogInclusion log;
    log.leaf_index = incl->leaf_index;
    log.proof = std::move(incl->hashes);
    log.checkpoint = std::move(incl->log_checkpoint);
    b.log = std::move(log);
    if (anchor->has_value()) {
      ChainAnchor a;
      a.chain_id = absl::StrCat((*anchor)->chain_id);
      a.contract_address = (*anchor)->contract;
      a.tx_hash = (*anchor)->tx_hash;
      a.block_number = (*anchor)->block_number;
      b.anchor = std::move(a);
    }
  }
  return b;
}

absl::StatusOr<std::vector<merkle::Hash>> Ledger::GetTraceConsistency(
    const std::string& trace_id, uint64_t size1, uint64_t size2) {
  absl::StatusOr<TraceRecord> t = store_->GetTrace(trace_id);
  if (!t.ok()) return t.status();
  if (size1 < 1 || size1 > size2 || size2 > t->size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "trace consistency needs 1 <= size1 <= size2 <= ", t->size, "; got ",
        size1, ", ", size2));
  }
  TraceNodeReader nodes(store_.get(), trace_id);
  return merkle::MakeConsistencyProof(nodes, size1, size2);
}

absl::StatusOr<LogCheckpointRow> Ledger::LatestLogCheckpoint() {
  return store_->LatestLogCheckpoint();
}

absl::StatusOr<LogInclusionProof> Ledger::LogInclusionForTrace(
    const std::string& trace_id, uint64_t tree_size) {
  absl::StatusOr<TraceRecord> t = store_->GetTrace(trace_id);
  if (!t.ok()) return t.status();
  if (!t->log_index.has_value()) {
    return absl::NotFoundError(
        absl::StrCat("trace ", trace_id, " is not in the log yet"));
  }
  return InclusionAt(*t->log_index, tree_size);
}

absl::StatusOr<LogInclusionProof> Ledger::LogInclusionForLeaf(
    uint64_t leaf_index, uint64_t tree_size) {
  return InclusionAt(leaf_index, tree_size);
}

absl::StatusOr<LogInclusionProof> Ledger::InclusionAt(uint64_t leaf_index,
                                                      uint64_t tree_size) {
  absl::StatusOr<uint64_t> log_size = store_->LogSize();
  if (!log_size.ok()) return log_size.status();
  if (leaf_index >= *log_size) {
    return absl::NotFoundError(absl::StrCat(
        "log leaf ", leaf_index, " does not exist (log size ", *log_size, ")"));
  }
  if (tree_size == 0) tree_size = *log_size;
  if (tree_size > *log_size || tree_size <= leaf_index) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tree size ", tree_size, " must be in (", leaf_index, ", ", *log_size,
        "]"));
  }
  absl::StatusOr<LogLeaf> leaf = store_->GetLogLeaf(leaf_index);
  if (!leaf.ok()) return leaf.status();
  LogNodeReader nodes(store_.get());
  absl::StatusOr<std::vector<merkle::Hash>> proof =
      merkle::MakeInclusionProof(nodes, leaf_index, tree_size);
  if (!proof.ok()) return proof.status();
  LogInclusionProof out;
  out.leaf_index = leaf_index;
  out.tree_size = tree_size;
  out.leaf_hash = leaf->leaf_hash;
  out.hashes = std::move(*proof);
  absl::StatusOr<LogCheckpointRow> cp = store_->GetLogCheckpoint(tree_size);
  if (cp.ok()) {
    out.log_checkpoint = std::move(cp->note);
  } else if (cp.status().code() != absl::StatusCode::kNotFound) {
    return cp.status();
  }
  return out;
}

absl::StatusOr<std::vector<merkle::Hash>> Ledger::LogConsistency(
    uint64_t size1, uint64_t size2) {
  absl::StatusOr<uint64_t> log_size = store_->LogSize();
  if (!log_size.ok()) return log_size.status();
  if (size1 < 1 || size1 > size2 || size2 > *log_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "log consistency needs 1 <= size1 <= size2 <= ", *log_size, "; got ",
        size1, ", ", size2));
  }
  LogNodeReader nodes(store_.get());
  return merkle::MakeConsistencyProof(nodes, size1, size2);
}

absl::Status Ledger::RecordAnchor(const Anchor& anchor) {
  return store_->PutAnchor(anchor);
}

absl::Status Ledger::Flush() { return sequencer_->Flush(); }

}  // namespace stepproof::provenance
