// Continuous batching over a BatchExecutor: concurrent generations share one
// model and one engine thread.
//
// A caller Submit()s a sequence (prompt, sampling, max_tokens) and gets a
// Ticket. Tickets wait in a bounded queue until a KV-cache slot is free, then
// the engine thread prefills the prompt in chunks (one chunk per engine
// iteration, so a long prompt does not stall the others) and the sequence
// joins the decode batch. Each engine iteration runs at most one prefill
// chunk and then one decode step over every sequence that is ready. A
// sequence leaves (its slot is freed) between steps when it samples the
// end-of-sequence token, reaches max_tokens or the end of its slot's
// context, or is cancelled. Sampled tokens go to the ticket's own queue; the
// caller takes them with Next() on its own thread, so the engine thread never
// runs caller code (sinks, cancellation callbacks).
//
// Back-pressure: a sequence whose caller has not yet taken
// max_pending_tokens tokens sits out the decode steps (keeping its slot)
// until the caller catches up.
//
// Thread-safety: Submit, Next, Cancel and stats may be called from any
// thread; one ticket is read (Next) by one thread at a time.

#ifndef STEPPROOF_INFERENCE_BATCH_SCHEDULER_H_
#define STEPPROOF_INFERENCE_BATCH_SCHEDULER_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "inference/backend.h"
#include "inference/batch_executor.h"

namespace stepproof::inference {

struct SchedulerOptions {
  // Requests waiting for a slot; a Submit beyond this is refused with
  // RESOURCE_EXHAUSTED. 0 refuses whenever every slot is taken.
  int32_t max_queued = 16;
  int32_t prefill_chunk = 64;       // prompt tokens per prefill call
  int32_t max_pending_tokens = 64;  // per sequence, see back-pressure above
  int32_t eos_id = -1;              // the end-of-sequence token; -1: none
};

struct SequenceRequest {
  std::vector<int32_t> prompt;  // REQUIRES: non-empty, shorter than the context
  SamplingParams sampling;
  int32_t max_tokens = 1;       // REQUIRES: >= 1
  bool all_hidden = false;      // deliver the prompt's hidden rows (fingerprints)
};

// One sampled token of a sequence.
struct TokenEvent {
  SampledToken token;
  std::vector<float> hidden;         // (n_embd) the row that produced its logits
  std::vector<float> prompt_hidden;  // first token, all_hidden: (n_prompt, n_embd)
  absl::Duration prefill_time;       // first token: the prompt's prefill
  // Set when the engine ended the sequence after this token: end of
  // sequence, max tokens or a full context (in that order of precedence).
  std::optional<FinishReason> finish;
};

class BatchScheduler {
 public:
  class Ticket;

  // Starts the engine thread. REQUIRES: executor != nullptr, options valid
  // (prefill_chunk >= 1, max_pending_tokens >= 1, max_queued >= 0).
  BatchScheduler(std::unique_ptr<BatchExecutor> executor, SchedulerOptions options);
  // Stops the engine thread; tickets still queued or running end with
  // UNAVAILABLE.
  ~BatchScheduler();
  BatchScheduler(const BatchScheduler&) = delete;
  BatchScheduler& operator=(const BatchScheduler&) = delete;

  const BatchExecutor& executor() const { return *executor_; }

  // Queues a sequence. Returns RESOURCE_EXHAUSTED (saying how many slots and
  // queue places there are) when max_queued requests already wait for a
  // slot, INVALID_ARGUMENT when the request breaks its REQUIRES.
  absl::StatusOr<std::shared_ptr<Ticket>> Submit(SequenceRequest request);

  // The ticket's next token, waiting until one is sampled or `until` passes
  // (then nullopt). Returns the engine's error if the sequence failed
  // (executor error: its status; shutdown: UNAVAILABLE), OUT_OF_RANGE after
  // the token that carried `finish` or after Cancel.
  absl::StatusOr<std::optional<TokenEvent>> Next(Ticket& ticket, absl::Time until);

  // Ends the sequence: it leaves the queue, or the batch before the next
  // step; tokens not yet taken are dropped. Idempotent; a no-op on a ticket
  // that already ended.
  void Cancel(Ticket& ticket);

  struct Stats {
    int32_t slots_in_use = 0;
    int32_t queued = 0;
    int64_t decode_steps = 0;
    int64_t prefill_chunks = 0;
    int32_t max_batch_seen = 0;  // largest decode batch so far
    int64_t batched_tokens = 0;  // tokens sampled by decode steps
  };
  Stats stats() const;

 private:
  void EngineLoop();
  bool HasWorkLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RunPrefillChunk(const std::shared_ptr<Ticket>& t);
  void RunDecode(const std::vector<std::shared_ptr<Ticket>>& batch);
  // Queues `event` on t (unless cancelled) and ends t when the token ends it.
  void DeliverLocked(Ticket& t, TokenEvent event) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Frees t's slot and takes it out of running_.
  void EndLocked(Ticket& t, absl::Status error) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::unique_ptr<BatchExecutor> executor_;
  const SchedulerOptions options_;
  const int32_t n_ctx_;
  const int32_t n_embd_;

  mutable absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::deque<std::shared_ptr<Ticket>> waiting_ ABSL_GUARDED_BY(mu_);
  std::vector<std::shared_ptr<Ticket>> running_ ABSL_GUARDED_BY(mu_);  // hold slots
  std::vector<int32_t> free_slots_ ABSL_GUARDED_BY(mu_);
  Stats stats_ ABSL_GUARDED_BY(mu_);

  std::thread engine_;  // last: starts after everything above exists
};

}  // namespace stepproof::inference

#endif  // STEPPROOF_INFERENCE_BATCH_SCHEDULER_H_
