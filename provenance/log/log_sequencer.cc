#include "provenance/log/log_sequencer.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "merkle/compact_range.h"
#include "provenance/checkpoint.h"
#include "provenance/note.h"

namespace stepproof::provenance {
namespace {
constexpr absl::Duration kIdlePoll = absl::Seconds(1);
}  // namespace

absl::StatusOr<std::unique_ptr<LogSequencer>> LogSequencer::Open(
    ProvenanceStore* store, const Signer* signer, std::string origin,
    LogSequencerOptions options, std::function<absl::Time()> clock) {
  if (store == nullptr || signer == nullptr) {
    return absl::InvalidArgumentError("LogSequencer needs a store and signer");
  }
  if (origin.empty() || origin.find('\n') != std::string::npos) {
    return absl::InvalidArgumentError("log origin must be one non-empty line");
  }
  if (options.batch_size == 0 || options.max_batch_entries == 0) {
    return absl::InvalidArgumentError(
        "batch_size and max_batch_entries must be >= 1");
  }
  if (!clock) clock = [] { return absl::Now(); };
  std::unique_ptr<LogSequencer> seq(new LogSequencer(
      store, signer, std::move(origin), options, std::move(clock)));

  // Resume the tree: the compact range of the latest checkpoint's size is
  // popcount(size) stored nodes. Check it against the signed checkpoint, so a
  // store whose nodes and checkpoints disagree is refused, not extended.
  absl::StatusOr<uint64_t> size = store->LogSize();
  if (!size.ok()) return size.status();
  if (*size > 0) {
    std::vector<merkle::NodeId> ids = merkle::CompactRangeNodes(*size);
    absl::StatusOr<std::vector<merkle::Hash>> hashes = store->GetLogNodes(ids);
    if (!hashes.ok()) {
      return absl::DataLossError(absl::StrCat(
          "log of size ", *size, " lacks its frontier nodes: ",
          hashes.status().message()));
    }
    absl::StatusOr<merkle::CompactRange> range =
        merkle::CompactRange::FromState(*size, std::move(*hashes));
    if (!range.ok()) return range.status();
    absl::StatusOr<LogCheckpointRow> latest = store->LatestLogCheckpoint();
    if (!latest.ok()) return latest.status();
    absl::StatusOr<Note> note = ParseNote(latest->note);
    if (!note.ok()) {
      return absl::DataLossError(absl::StrCat(
          "latest log checkpoint is not a signed note: ",
          note.status().message()));
    }
    absl::StatusOr<Checkpoint> cp = Checkpoint::Parse(note->text);
    if (!cp.ok()) {
      return absl::DataLossError(absl::StrCat(
          "latest log checkpoint does not parse: ", cp.status().message()));
    }
    if (cp->origin != seq->origin_) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the store holds the log '", cp->origin, "', not '", seq->origin_,
          "'"));
    }
    if (cp->size != *size || cp->root != range->Root()) {
      return absl::DataLossError(absl::StrCat(
          "stored log nodes do not give the root of the latest checkpoint "
          "(size ", cp->size, ")"));
    }
    absl::MutexLock lock(&seq->batch_mu_);
    seq->range_ = std::move(*range);
  }
  absl::StatusOr<uint64_t> pending = store->CountPendingLogEntries();
  if (!pending.ok()) return pending.status();
  {
    absl::MutexLock lock(&seq->wake_mu_);
    seq->pending_ = *pending;
    // Whatever waited across a restart is due now.
    if (*pending > 0) {
      seq->oldest_pending_ = seq->clock_() - seq->options_.max_batch_delay;
    }
  }
  return seq;
}

LogSequencer::LogSequencer(ProvenanceStore* store, const Signer* signer,
                           std::string origin, LogSequencerOptions options,
                           std::function<absl::Time()> clock)
    : store_(store),
      signer_(signer),
      origin_(std::move(origin)),
      options_(options),
      clock_(std::move(clock)) {}

LogSequencer::~LogSequencer() { Stop(); }

void LogSequencer::NotifyPending() {
  absl::MutexLock lock(&wake_mu_);
  if (pending_ == 0) oldest_pending_ = clock_();
  ++pending_;
}

absl::StatusOr<size_t> LogSequencer::IntegrateBatch() {
  absl::MutexLock lock(&batch_mu_);
  return IntegrateBatchLocked();
}

absl::StatusOr<size_t> LogSequencer::IntegrateBatchLocked() {
  const absl::Time started = clock_();
  absl::StatusOr<std::vector<PendingLogEntry>> entries =
      store_->ListPendingLogEntries(options_.max_batch_entries);
  if (!entries.ok()) return entries.status();
  size_t n = entries->size();
  if (n > 0) {
    LogBatch batch;
    batch.first_index = range_.size();
    batch.leaves.reserve(n);
    batch.nodes.reserve(2 * n + 64);
    merkle::CompactRange next = range_;
    merkle::Sha256 sha;  // reused: one context for the whole batch
    static constexpr uint8_t kLeafPrefix[1] = {0x00};
    for (PendingLogEntry& e : *entries) {
      LogLeaf leaf;
      leaf.index = next.size();
      leaf.trace_id = std::move(e.trace_id);
      leaf.leaf = std::move(e.leaf);
      sha.Reset();
      sha.Update(absl::MakeConstSpan(kLeafPrefix));
      sha.Update(std::string_view(leaf.leaf));
      leaf.leaf_hash = sha.Final();  // == merkle::HashLeaf(leaf.leaf)
      next.Append(leaf.leaf_hash,
                  [&](const merkle::NodeId& id, const merkle::Hash& h) {
                    batch.nodes.push_back({id, h});
                  });
      batch.leaves.push_back(std::move(leaf));
    }
    Checkpoint cp;
    cp.origin = origin_;
    cp.size = next.size();
    cp.root = next.Root();
    absl::StatusOr<std::string> note = SignNote(cp.Marshal(), *signer_);
    if (!note.ok()) return note.status();
    batch.checkpoint = std::move(*note);
    batch.integrated = clock_();
    absl::Status s = store_->AppendLogBatch(batch);
    if (!s.ok()) return s;
    range_ = std::move(next);
  }
  absl::MutexLock lock(&wake_mu_);
  // The counter only decides when to wake; the store decides what is
  // integrated. A full batch may have left more behind: due at once.
  pending_ = n >= pending_ ? 0 : pending_ - n;
  if (n == options_.max_batch_entries) {
    pending_ = std::max<uint64_t>(pending_, 1);
    oldest_pending_ = started - options_.max_batch_delay;
  } else {
    // Anything still counted was sealed no later than now.
    oldest_pending_ = pending_ > 0 ? started : absl::InfiniteFuture();
  }
  return n;
}

absl::Status LogSequencer::Flush() {
  absl::MutexLock lock(&batch_mu_);
  while (true) {
    absl::StatusOr<size_t> n = IntegrateBatchLocked();
    if (!n.ok()) return n.status();
    if (*n < options_.max_batch_entries) return absl::OkStatus();
  }
}

void LogSequencer::Start() {
  if (!options_.background || thread_.joinable()) return;
  {
    absl::MutexLock lock(&wake_mu_);
    stopping_ = false;
  }
  thread_ = std::thread([this] { Run(); });
}

void LogSequencer::Stop() {
  {
    absl::MutexLock lock(&wake_mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

uint64_t LogSequencer::size() const {
  absl::MutexLock lock(&batch_mu_);
  return range_.size();
}

absl::Status LogSequencer::last_error() const {
  absl::MutexLock lock(&wake_mu_);
  return last_error_;
}

void LogSequencer::Run() {
  absl::Time idle_until = clock_() + kIdlePoll;
  while (true) {
    {
      absl::MutexLock lock(&wake_mu_);
      // Integrate when a batch is full, when the oldest pending entry is due,
      // or after an idle second: every wake-up integrates what the store
      // holds, so a missed notification costs at most that second.
      while (true) {
        if (stopping_) return;
        if (pending_ >= options_.batch_size) break;
        const absl::Time now = clock_();
        const bool idle = pending_ == 0;
        const absl::Time due =
            idle ? idle_until : oldest_pending_ + options_.max_batch_delay;
        if (now >= due) break;
        // Wake early on stop, on a full batch, and (when idle) on the first
        // pending entry, whose own deadline then applies.
        auto wake = [this, idle]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(wake_mu_) {
          return stopping_ || pending_ >= options_.batch_size ||
                 (idle && pending_ > 0);
        };
        wake_mu_.AwaitWithTimeout(absl::Condition(&wake), due - now);
      }
    }
    idle_until = clock_() + kIdlePoll;
    absl::StatusOr<size_t> n = IntegrateBatch();
    absl::MutexLock lock(&wake_mu_);
    last_error_ = n.status();
    if (!n.ok()) {
      // Back off before retrying a failing store.
      wake_mu_.AwaitWithTimeout(absl::Condition(&stopping_), kIdlePoll);
    }
  }
}

}  // namespace stepproof::provenance
