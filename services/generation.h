// TraceGenerator: the generation pipeline. It joins an inference Backend to
// the provenance Ledger: it checks a request, applies the chat template,
// writes the trace header (leaf 0), commits every step the engine completes
// as a salted step record (one signed trace checkpoint each) and seals the
// trace (final checkpoint + the log's inclusion promise), reporting each of
// these to the caller's TraceEvents as it happens. No gRPC types: the gRPC
// service (stepproof_service.h) turns the events into stream messages.
//
// Admission: at most `max_concurrent` generations are in flight (running or
// waiting for the engine, which serialises them); one more is refused with
// RESOURCE_EXHAUSTED before anything is stored.
//
// Endings: a deadline, a cancellation (is_cancelled, or an event callback
// that fails, e.g. because the client went away) or an engine error all
// still seal the trace with the steps committed so far, so nothing that was
// handed out is left unsealed. TraceSealedEvent.finish says why it ended.
//
// The engine never waits for provenance work or for the caller (finding R-6,
// R-7 in docs/RELIABILITY.md): the engine runs each generation on a thread of
// its own and its step sink only queues the step; the thread that called
// Generate commits each queued step (step record, trace checkpoint, store)
// and reports it, in order, while the engine goes on with the next token or
// the next request. The queue is bounded: when a generation has more than
// max_pending_steps steps that the caller has not yet taken (its event
// callback is blocked, e.g. on a client that does not read its stream), or
// one event callback has been running longer than max_event_wait, the
// generator gives up on that stream: the engine stops the generation, the
// caller's abort_stream is called (to unblock the callback), the queued steps
// are dropped, the trace is sealed with what was committed and Generate
// returns RESOURCE_EXHAUSTED naming the limit.
//
// The prompt: the header commits to the templated prompt text (the exact
// text whose tokens the engine read), or with withhold_prompt to
// provenance::PromptCommitment(salt, templated prompt).
//
// Thread-safety: Generate may be called from many threads at once.
// Ownership: backend, ledger and signer are borrowed and must outlive the
// generator.
#ifndef STEPPROOF_SERVICES_GENERATION_H_
#define STEPPROOF_SERVICES_GENERATION_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "inference/backend.h"
#include "provenance/log/ledger.h"
#include "provenance/signer.h"
#include "provenance/step_record.h"
#include "provenance/trace_header.h"
#include "services/model_identity.h"

namespace stepproof::service {

struct ChatTurn {
  std::string role;  // "system" (at most one, first), "user", "assistant"
  std::string content;
};

// One Generate request, as the service received it.
struct GenerateParams {
  // Exactly one of prompt (a single user turn) and messages.
  std::string prompt;
  std::vector<ChatTurn> messages;
  bool greedy = false;
  std::optional<float> temperature;  // default 0.6
  std::optional<float> top_p;        // default 0.95
  std::optional<int32_t> top_k;      // default 0 (off)
  uint32_t max_tokens = 0;           // 0 = the generator's max_tokens
  std::optional<uint64_t> seed;      // random when unset
  bool withhold_prompt = false;
  std::string prompt_salt;  // 32 bytes or empty; only with withhold_prompt
  absl::Time deadline = absl::InfiniteFuture();
  std::function<bool()> is_cancelled;  // may be empty; polled per token
  // Called, from another thread, when the generator gives up on the stream
  // (see the top of this file): it must make a blocked event callback return
  // soon (the gRPC service cancels the call). May be empty.
  std::function<void()> abort_stream;
};

struct TraceStartedEvent {
  provenance::StartedTrace trace;
  provenance::TraceHeader header;
  // The commitment salt when the prompt is withheld and the server chose it;
  // empty otherwise.
  std::string prompt_salt;
};

struct StepCommittedEvent {
  provenance::AppendedStep step;
  provenance::StepRecord record;  // trace id, index and salt filled in
};

struct TraceSealedEvent {
  provenance::SealedTrace sealed;
  std::string trace_id;
  std::string answer;  // text of the answer step, "" if there is none
  inference::FinishReason finish = inference::FinishReason::kEndOfSequence;
  int32_t prompt_tokens = 0;
  int32_t generated_tokens = 0;
};

// Called on the thread running Generate, in order: started, step*, sealed.
// A non-OK return stops the generation (the trace is still sealed; steps the
// engine produced after it are not committed) and Generate returns that
// status. Empty functions are skipped. A callback may block (a stream
// write); the engine goes on meanwhile, within the limits above.
struct TraceEvents {
  std::function<absl::Status(const TraceStartedEvent&)> on_started;
  std::function<absl::Status(const StepCommittedEvent&)> on_step;
  std::function<absl::Status(const TraceSealedEvent&)> on_sealed;
};

struct TraceGeneratorOptions {
  int32_t max_concurrent = 4;
  int64_t max_prompt_bytes = 64 * 1024;
  int32_t max_tokens = 1024;  // default and cap per request
  // Steps the engine may produce ahead of the caller's on_step (>= 1).
  int32_t max_pending_steps = 256;
  // Longest one event callback may run (blocked on a stream that is not
  // read) before the generation is given up. InfiniteDuration: no limit.
  absl::Duration max_event_wait = absl::Seconds(30);
  // Random bytes for salts and seeds; must be cryptographically secure.
  // Default: the kernel's getrandom().
  std::function<void(absl::Span<uint8_t>)> random_bytes;
  // Clock for the trace start time; absl::Now when empty.
  std::function<absl::Time()> clock;
};

// The default random source (getrandom(2); aborts only if the kernel cannot
// provide randomness at all).
void SystemRandomBytes(absl::Span<uint8_t> out);

// Builds the DeepSeek-R1 prompt text for `messages`:
//   <BOS> system <|User|> u1 <|Assistant|> a1 <EOS> <|User|> u2 ... 
//   <|Assistant|><think>\n
// INVALID_ARGUMENT naming the message for an unknown role, a system message
// that is not first, two turns of the same role in a row, or a conversation
// that does not end with a non-empty user message.
absl::StatusOr<std::string> FormatChatPrompt(absl::Span<const ChatTurn> messages);

class TraceGenerator {
 public:
  TraceGenerator(inference::Backend* backend, provenance::Ledger* ledger,
                 const provenance::Signer* signer, ModelIdentity model,
                 TraceGeneratorOptions options);

  // Stops the watchdog thread. REQUIRES: no Generate call is running.
  ~TraceGenerator();

  TraceGenerator(const TraceGenerator&) = delete;
  TraceGenerator& operator=(const TraceGenerator&) = delete;

  // Runs one generation. Returns the sealed trace's event (also passed to
  // on_sealed). Errors, all before anything is stored unless noted:
  //   INVALID_ARGUMENT  empty prompt, both prompt and messages, bad chat
  //                     messages, invalid sampling values, max_tokens over
  //                     the limit, bad prompt_salt, a prompt that does not
  //                     fit the model's context.
  //   RESOURCE_EXHAUSTED  prompt over max_prompt_bytes, or max_concurrent
  //                     generations already in flight; or (trace sealed
  //                     first) the caller fell behind the engine by more
  //                     than max_pending_steps, or one event callback ran
  //                     longer than max_event_wait.
  //   UNAVAILABLE       after BeginShutdown().
  //   an event callback's error, or an engine / ledger error: the trace (if
  //                     started) is sealed first.
  absl::StatusOr<TraceSealedEvent> Generate(const GenerateParams& params,
                                            const TraceEvents& events);

  // New Generate calls fail with UNAVAILABLE; running ones continue.
  void BeginShutdown();
  // Running generations stop at their next token (finish kCancelled) and
  // are sealed.
  void CancelAll();

  // For shutdown: BeginShutdown(), then waits up to `grace` for running
  // generations to finish; if some are still running, CancelAll() and waits
  // up to `cancel_wait` more for them to seal. True when none is left.
  bool Drain(absl::Duration grace, absl::Duration cancel_wait);

  int32_t in_flight() const;
  const ModelIdentity& model() const { return model_; }
  const TraceGeneratorOptions& options() const { return options_; }

 private:
  struct Prepared;
  struct Flow;
  absl::StatusOr<Prepared> Prepare(const GenerateParams& params) const;
  absl::Status Admit();
  void Release();
  bool cancel_all() const;
  // Runs one event callback with the watchdog armed.
  absl::Status Report(Flow& flow, const std::function<absl::Status()>& call);
  void WatchdogLoop();

  inference::Backend* const backend_;
  provenance::Ledger* const ledger_;
  const provenance::Signer* const signer_;
  const ModelIdentity model_;
  TraceGeneratorOptions options_;

  mutable absl::Mutex mu_;
  int32_t in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
  bool cancel_all_ ABSL_GUARDED_BY(mu_) = false;
  // Generations in flight, for the watchdog (max_event_wait).
  std::vector<Flow*> flows_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread watchdog_;
};

}  // namespace stepproof::service

#endif  // STEPPROOF_SERVICES_GENERATION_H_
