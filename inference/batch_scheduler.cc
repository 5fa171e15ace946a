#include "inference/batch_scheduler.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace stepproof::inference {

// A sequence. `request` is immutable; the fields under "scheduler mu_" are
// guarded by the owning scheduler's mutex; the engine fields are touched by
// the engine thread only.
class BatchScheduler::Ticket {
 public:
  explicit Ticket(SequenceRequest r) : request(std::move(r)) {}

  const SequenceRequest request;

  // scheduler mu_
  std::deque<TokenEvent> events;
  absl::Status error;
  bool ended = false;      // no further events will be queued
  bool cancelled = false;  // Cancel() was called
  int32_t slot = -1;       // >= 0 while in running_

  // engine thread only
  int32_t prefilled = 0;   // prompt tokens already in the cache
  int32_t generated = 0;   // tokens sampled
  int32_t next_token = 0;  // the last sampled token, fed by the next step
  int32_t next_pos = 0;    // its position
  std::vector<float> prompt_hidden;
  absl::Time prefill_start;
};

BatchScheduler::BatchScheduler(std::unique_ptr<BatchExecutor> executor, SchedulerOptions options)
    : executor_(std::move(executor)),
      options_(options),
      n_ctx_(executor_->context_length()),
      n_embd_(executor_->n_embd()) {
  {
    absl::MutexLock lock(&mu_);
    // Lowest slot first: pop_back takes from the end.
    for (int32_t s = executor_->slots() - 1; s >= 0; --s) free_slots_.push_back(s);
  }
  engine_ = std::thread([this] { EngineLoop(); });
}

BatchScheduler::~BatchScheduler() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  engine_.join();
  absl::MutexLock lock(&mu_);
  const absl::Status down = absl::UnavailableError("the inference engine is shutting down");
  for (auto& t : waiting_) {
    t->ended = true;
    t->error = down;
  }
  waiting_.clear();
  while (!running_.empty()) EndLocked(*running_.back(), down);
}

absl::StatusOr<std::shared_ptr<BatchScheduler::Ticket>> BatchScheduler::Submit(SequenceRequest request) {
  if (request.prompt.empty()) return absl::InvalidArgumentError("the prompt is empty");
  if (static_cast<int64_t>(request.prompt.size()) >= n_ctx_) {
    return absl::InvalidArgumentError(absl::StrCat("the prompt has ", request.prompt.size(),
                                                   " tokens; a KV-cache slot holds ", n_ctx_));
  }
  if (request.max_tokens < 1) return absl::InvalidArgumentError("max_tokens must be >= 1");
  auto t = std::make_shared<Ticket>(std::move(request));
  absl::MutexLock lock(&mu_);
  if (stop_) return absl::UnavailableError("the inference engine is shutting down");
  // A free slot is taken by the engine at its next iteration; requests beyond
  // the free slots count as queued.
  const int64_t ahead = static_cast<int64_t>(waiting_.size()) - static_cast<int64_t>(free_slots_.size());
  if (ahead >= options_.max_queued) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the inference engine is full: all ", executor_->slots(), " KV-cache slots are in use and ",
        std::max<int64_t>(ahead, 0), " requests are queued (at most ", options_.max_queued,
        "); retry later"));
  }
  waiting_.push_back(t);
  return t;
}

absl::StatusOr<std::optional<TokenEvent>> BatchScheduler::Next(Ticket& t, absl::Time until) {
  absl::MutexLock lock(&mu_);
  auto ready = [&t]() { return !t.events.empty() || t.ended || t.cancelled; };
  mu_.AwaitWithDeadline(absl::Condition(&ready), until);
  if (!t.events.empty()) {
    TokenEvent e = std::move(t.events.front());
    t.events.pop_front();
    return std::optional<TokenEvent>(std::move(e));
  }
  if (!t.error.ok()) return t.error;
  if (t.ended || t.cancelled) return absl::OutOfRangeError("the sequence has ended");
  return std::optional<TokenEvent>();
}

void BatchScheduler::Cancel(Ticket& t) {
  absl::MutexLock lock(&mu_);
  if (t.cancelled) return;
  t.cancelled = true;
  t.events.clear();
  auto it = std::find_if(waiting_.begin(), waiting_.end(), [&t](const auto& w) { return w.get() == &t; });
  if (it != waiting_.end()) {
    waiting_.erase(it);
    t.ended = true;
  }
  // A running ticket is reaped by the engine before its next step.
}

BatchScheduler::Stats BatchScheduler::stats() const {
  absl::MutexLock lock(&mu_);
  Stats s = stats_;
  s.slots_in_use = static_cast<int32_t>(running_.size());
  s.queued = static_cast<int32_t>(waiting_.size());
  return s;
}

bool BatchScheduler::HasWorkLocked() const {
  if (stop_) return true;
  if (!waiting_.empty() && !free_slots_.empty()) return true;
  for (const auto& t : running_) {
    if (t->cancelled) return true;
    if (t->prefilled < static_cast<int32_t>(t->request.prompt.size())) return true;
    if (static_cast<int32_t>(t->events.size()) < options_.max_pending_tokens) return true;
  }
  return false;
}

void BatchScheduler::EndLocked(Ticket& t, absl::Status error) {
  t.ended = true;
  if (!error.ok() && t.error.ok()) t.error = std::move(error);
  if (t.slot < 0) return;
  free_slots_.push_back(t.slot);
  t.slot = -1;
  running_.erase(std::find_if(running_.begin(), running_.end(), [&t](const auto& r) { return r.get() == &t; }));
}

void BatchScheduler::DeliverLocked(Ticket& t, TokenEvent event) {
  if (event.token.id == options_.eos_id) {
    event.finish = FinishReason::kEndOfSequence;
  } else if (t.generated >= t.request.max_tokens) {
    event.finish = FinishReason::kMaxTokens;
  } else if (t.next_pos + 1 >= n_ctx_) {
    event.finish = FinishReason::kContextFull;
  }
  const bool finished = event.finish.has_value();
  if (!t.cancelled) t.events.push_back(std::move(event));
  if (finished) EndLocked(t, absl::OkStatus());
}

void BatchScheduler::EngineLoop() {
  const int32_t max_batch = std::max(1, executor_->max_batch());
  for (;;) {
    std::shared_ptr<Ticket> prefill;  // gets one chunk this iteration
    std::vector<std::shared_ptr<Ticket>> decode;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(this, &BatchScheduler::HasWorkLocked));
      if (stop_) return;
      // Leave: cancelled sequences give their slot back.
      for (size_t i = running_.size(); i-- > 0;) {
        if (running_[i]->cancelled) EndLocked(*running_[i], absl::OkStatus());
      }
      // Join: queued sequences take free slots, first come first served.
      while (!free_slots_.empty() && !waiting_.empty()) {
        std::shared_ptr<Ticket> t = std::move(waiting_.front());
        waiting_.pop_front();
        t->slot = free_slots_.back();
        free_slots_.pop_back();
        running_.push_back(std::move(t));
      }
      for (const auto& t : running_) {
        if (t->prefilled < static_cast<int32_t>(t->request.prompt.size())) {
          if (prefill == nullptr) prefill = t;
        } else if (static_cast<int32_t>(t->events.size()) < options_.max_pending_tokens &&
                   static_cast<int32_t>(decode.size()) < max_batch) {
          decode.push_back(t);
        }
      }
    }
    // The slots used below stay ours: only this thread frees slots.
    if (prefill != nullptr) RunPrefillChunk(prefill);
    if (!decode.empty()) RunDecode(decode);
  }
}

void BatchScheduler::RunPrefillChunk(const std::shared_ptr<Ticket>& t) {
  const SequenceRequest& r = t->request;
  const int32_t n = static_cast<int32_t>(r.prompt.size());
  const int32_t begin = t->prefilled;
  const int32_t end = std::min(n, begin + options_.prefill_chunk);
  const bool last = end == n;
  if (begin == 0) t->prefill_start = absl::Now();
  int32_t slot;
  {
    absl::MutexLock lock(&mu_);
    slot = t->slot;
  }
  std::vector<float> hidden;
  SampledToken token{};
  absl::Status s = executor_->Prefill(slot, absl::MakeConstSpan(r.prompt.data() + begin, end - begin), begin,
                                      r.all_hidden, last ? &r.sampling : nullptr, &hidden, &token);
  absl::MutexLock lock(&mu_);
  ++stats_.prefill_chunks;
  if (!s.ok()) {
    EndLocked(*t, std::move(s));
    return;
  }
  if (r.all_hidden) t->prompt_hidden.insert(t->prompt_hidden.end(), hidden.begin(), hidden.end());
  t->prefilled = end;
  if (!last) return;
  TokenEvent e;
  e.token = token;
  e.hidden.assign(hidden.end() - n_embd_, hidden.end());
  e.prompt_hidden = std::move(t->prompt_hidden);
  e.prefill_time = absl::Now() - t->prefill_start;
  t->generated = 1;
  t->next_token = token.id;
  t->next_pos = n;
  DeliverLocked(*t, std::move(e));
}

void BatchScheduler::RunDecode(const std::vector<std::shared_ptr<Ticket>>& batch) {
  std::vector<DecodeItem> items(batch.size());
  {
    absl::MutexLock lock(&mu_);
    for (size_t i = 0; i < batch.size(); ++i) {
      items[i] = DecodeItem{batch[i]->slot, batch[i]->next_token, batch[i]->next_pos, batch[i]->request.sampling};
    }
  }
  std::vector<float> hidden;
  std::vector<SampledToken> sampled;
  absl::Status s = executor_->Decode(items, &hidden, &sampled);
  absl::MutexLock lock(&mu_);
  ++stats_.decode_steps;
  stats_.max_batch_seen = std::max(stats_.max_batch_seen, static_cast<int32_t>(batch.size()));
  for (size_t i = 0; i < batch.size(); ++i) {
    Ticket& t = *batch[i];
    if (!s.ok()) {
      EndLocked(t, s);
      continue;
    }
    ++stats_.batched_tokens;
    ++t.generated;
    t.next_token = sampled[i].id;
    ++t.next_pos;
    TokenEvent e;
    e.token = sampled[i];
    e.hidden.assign(hidden.begin() + i * n_embd_, hidden.begin() + (i + 1) * n_embd_);
    DeliverLocked(t, std::move(e));
  }
}

}  // namespace stepproof::inference
