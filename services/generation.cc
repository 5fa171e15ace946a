#include "services/generation.h"

#include <sys/random.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <deque>
#include <thread>
#include <atomic>
#include <string>
#include <utility>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "inference/chat_template.h"
#include "inference/sampler.h"

namespace stepproof::service {

namespace inf = ::stepproof::inference;
namespace prov = ::stepproof::provenance;

void SystemRandomBytes(absl::Span<uint8_t> out) {
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = getrandom(out.data() + done, out.size() - done, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      // No randomness at all: salts would not hide anything. Not recoverable.
      std::abort();
    }
    done += static_cast<size_t>(n);
  }
}

absl::StatusOr<std::string> FormatChatPrompt(
    absl::Span<const ChatTurn> messages) {
  if (messages.empty()) {
    return absl::InvalidArgumentError("messages: the conversation is empty");
  }
  std::string text(inf::kBeginOfSentence);
  std::string previous;
  for (size_t i = 0; i < messages.size(); ++i) {
    const ChatTurn& m = messages[i];
    if (m.role == "system") {
      if (i != 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            "messages[", i, "]: a system message may only come first"));
      }
      text.append(m.content);
    } else if (m.role == "user" || m.role == "assistant") {
      if (m.role == previous) {
        return absl::InvalidArgumentError(absl::StrCat(
            "messages[", i, "]: two ", m.role, " messages in a row"));
      }
      if (m.role == "user") {
        text.append(inf::kUser).append(m.content);
      } else {
        if (previous != "user") {
          return absl::InvalidArgumentError(absl::StrCat(
              "messages[", i, "]: an assistant message must follow a user message"));
        }
        text.append(inf::kAssistant).append(m.content).append(inf::kEndOfSentence);
      }
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("messages[", i, "].role: '", m.role.substr(0, 40),
                       "' is not one of system, user, assistant"));
    }
    previous = m.role;
  }
  const ChatTurn& last = messages.back();
  if (last.role != "user") {
    return absl::InvalidArgumentError(
        "messages: the conversation must end with a user message");
  }
  if (last.content.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "messages[", messages.size() - 1, "].content: the user message is empty"));
  }
  text.append(inf::kAssistant).append(inf::kThinkOpen).append("\n");
  return text;
}

struct TraceGenerator::Prepared {
  std::string prompt_text;  // templated
  std::vector<int32_t> prompt_tokens;
  inf::SamplingParams sampling;
  int32_t max_tokens = 0;
  bool withhold = false;
  std::array<uint8_t, 32> prompt_salt{};
  bool salt_chosen_here = false;
};

TraceGenerator::TraceGenerator(inf::Backend* backend, prov::Ledger* ledger,
                               const prov::Signer* signer, ModelIdentity model,
                               TraceGeneratorOptions options)
    : backend_(backend),
      ledger_(ledger),
      signer_(signer),
      model_(std::move(model)),
      options_(std::move(options)) {
  if (!options_.random_bytes) options_.random_bytes = SystemRandomBytes;
  if (!options_.clock) options_.clock = [] { return absl::Now(); };
  if (options_.max_pending_steps < 1) options_.max_pending_steps = 1;
  watchdog_ = std::thread([this] { WatchdogLoop(); });
}

TraceGenerator::~TraceGenerator() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  watchdog_.join();
}

absl::StatusOr<TraceGenerator::Prepared> TraceGenerator::Prepare(
    const GenerateParams& p) const {
  Prepared out;
  // The prompt.
  const bool has_prompt = !p.prompt.empty();
  const bool has_messages = !p.messages.empty();
  if (has_prompt && has_messages) {
    return absl::InvalidArgumentError(
        "give either prompt or messages, not both");
  }
  if (!has_prompt && !has_messages) {
    return absl::InvalidArgumentError("the prompt is empty");
  }
  size_t given_bytes = p.prompt.size();
  for (const ChatTurn& m : p.messages) given_bytes += m.content.size();
  if (given_bytes > static_cast<size_t>(options_.max_prompt_bytes)) {
    return absl::ResourceExhaustedError(
        absl::StrCat("the prompt has ", given_bytes, " bytes; this server accepts at most ",
                     options_.max_prompt_bytes, " (--max-prompt-bytes)"));
  }
  if (has_prompt) {
    out.prompt_text = inf::FormatR1Prompt("", p.prompt);
  } else {
    absl::StatusOr<std::string> text = FormatChatPrompt(p.messages);
    if (!text.ok()) return text.status();
    out.prompt_text = *std::move(text);
  }
  if (out.prompt_text.size() > prov::kMaxPromptBytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the templated prompt has ", out.prompt_text.size(),
        " bytes; a trace header holds at most ", prov::kMaxPromptBytes));
  }

  // Sampling.
  const int32_t vocab = backend_->tokenizer().vocab_size();
  out.sampling.greedy = p.greedy;
  if (p.temperature.has_value()) out.sampling.temperature = *p.temperature;
  if (p.top_p.has_value()) out.sampling.top_p = *p.top_p;
  if (p.top_k.has_value()) out.sampling.top_k = *p.top_k;
  if (absl::Status s = inf::ValidateSamplingParams(out.sampling, vocab); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("sampling: ", s.message()));
  }
  if (p.seed.has_value()) {
    out.sampling.seed = *p.seed;
  } else {
    uint8_t bytes[8];
    options_.random_bytes(absl::MakeSpan(bytes));
    uint64_t seed = 0;
    for (uint8_t b : bytes) seed = (seed << 8) | b;
    out.sampling.seed = seed;
  }
  if (p.max_tokens > static_cast<uint32_t>(options_.max_tokens)) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_tokens ", p.max_tokens, " is over this server's limit of ",
                     options_.max_tokens, " (--max-tokens)"));
  }
  out.max_tokens = p.max_tokens == 0 ? options_.max_tokens
                                     : static_cast<int32_t>(p.max_tokens);

  // Withheld prompt.
  out.withhold = p.withhold_prompt;
  if (!p.prompt_salt.empty()) {
    if (!p.withhold_prompt) {
      return absl::InvalidArgumentError(
          "prompt_salt is only used with withhold_prompt");
    }
    if (p.prompt_salt.size() != out.prompt_salt.size()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "prompt_salt has ", p.prompt_salt.size(), " bytes; it must have 32"));
    }
    std::copy(p.prompt_salt.begin(), p.prompt_salt.end(), out.prompt_salt.begin());
  } else if (p.withhold_prompt) {
    options_.random_bytes(absl::MakeSpan(out.prompt_salt));
    out.salt_chosen_here = true;
  }

  // Tokens, and whether they fit the context (checked here so an oversize
  // prompt is refused before a trace exists).
  out.prompt_tokens = backend_->tokenizer().Encode(out.prompt_text, true);
  if (out.prompt_tokens.empty()) {
    return absl::InvalidArgumentError("the prompt encodes to no tokens");
  }
  const int32_t context = backend_->model().context_length;
  if (context > 0 && static_cast<int64_t>(out.prompt_tokens.size()) >= context) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the prompt has ", out.prompt_tokens.size(), " tokens; the model's context holds ",
        context, " and at least one generated token must fit"));
  }
  return out;
}

absl::Status TraceGenerator::Admit() {
  absl::MutexLock lock(&mu_);
  if (shutting_down_) {
    return absl::UnavailableError("the server is shutting down");
  }
  if (in_flight_ >= options_.max_concurrent) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "all ", options_.max_concurrent,
        " generation slots are busy (--max-concurrent-generations); retry later"));
  }
  ++in_flight_;
  return absl::OkStatus();
}

void TraceGenerator::Release() {
  absl::MutexLock lock(&mu_);
  --in_flight_;
}

int32_t TraceGenerator::in_flight() const {
  absl::MutexLock lock(&mu_);
  return in_flight_;
}

void TraceGenerator::BeginShutdown() {
  absl::MutexLock lock(&mu_);
  shutting_down_ = true;
}

void TraceGenerator::CancelAll() {
  absl::MutexLock lock(&mu_);
  cancel_all_ = true;
}

bool TraceGenerator::Drain(absl::Duration grace, absl::Duration cancel_wait) {
  absl::MutexLock lock(&mu_);
  shutting_down_ = true;
  auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return in_flight_ == 0; };
  if (mu_.AwaitWithTimeout(absl::Condition(&idle), grace)) return true;
  cancel_all_ = true;
  return mu_.AwaitWithTimeout(absl::Condition(&idle), cancel_wait);
}

bool TraceGenerator::cancel_all() const {
  absl::MutexLock lock(&mu_);
  return cancel_all_;
}

namespace {

uint64_t MillisSince(absl::Time start, absl::Time t) {
  int64_t ms = absl::ToInt64Milliseconds(t - start);
  return ms < 0 ? 0 : static_cast<uint64_t>(ms);
}

prov::StepRecord RecordOf(const inf::Step& step, absl::Time start) {
  prov::StepRecord record;
  record.kind = step.kind == inf::StepKind::kAnswer ? prov::StepKind::kAnswer
                                                    : prov::StepKind::kReasoning;
  record.start_ms = MillisSince(start, step.start_time);
  record.end_ms = std::max(record.start_ms, MillisSince(start, step.end_time));
  record.text = step.text;
  record.token_ids.reserve(step.token_ids.size());
  for (int32_t id : step.token_ids) record.token_ids.push_back(static_cast<uint32_t>(id));
  if (step.logprobs.size() == step.token_ids.size()) record.logprobs = step.logprobs;
  if (!step.fingerprint.empty()) record.fingerprint = step.fingerprint;
  // trace_id, index and salt are set by the ledger's trace builder.
  return record;
}

}  // namespace

// One generation's hand-over between the engine thread (which only queues
// steps) and the caller's thread (which commits and reports them).
struct TraceGenerator::Flow {
  absl::Mutex mu;
  std::deque<inf::Step> steps ABSL_GUARDED_BY(mu);  // produced, not yet taken
  bool engine_done ABSL_GUARDED_BY(mu) = false;
  absl::StatusOr<inf::GenerationResult> result ABSL_GUARDED_BY(mu) =
      absl::CancelledError("generation did not run");
  // Why the generator gave up on the stream (set once; then `stop`).
  absl::Status abort ABSL_GUARDED_BY(mu);
  // When the event callback now running began; InfiniteFuture when none.
  absl::Time reporting_since ABSL_GUARDED_BY(mu) = absl::InfiniteFuture();
  // The caller's side stopped: the engine ends at its next token.
  std::atomic<bool> stop{false};
  std::function<void()> abort_stream;

  // Records `why` as the reason (first one wins), stops the engine and
  // unblocks the caller's callback. REQUIRES: mu held.
  void GiveUp(absl::Status why) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (!abort.ok()) return;
    abort = std::move(why);
    stop = true;
    if (abort_stream) abort_stream();
  }
};

absl::Status TraceGenerator::Report(Flow& flow, const std::function<absl::Status()>& call) {
  {
    absl::MutexLock lock(&flow.mu);
    flow.reporting_since = absl::Now();
  }
  absl::Status s = call();
  absl::MutexLock lock(&flow.mu);
  flow.reporting_since = absl::InfiniteFuture();
  // A callback that failed because we gave up on it reports our reason.
  if (!flow.abort.ok()) return flow.abort;
  return s;
}

void TraceGenerator::WatchdogLoop() {
  // After CancelAll (shutdown), a callback blocked on a client that does not
  // read would hold its generation past the drain: it gets a second.
  const absl::Duration cancelled_limit = absl::Seconds(1);
  auto limit = [this, cancelled_limit]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Duration {
    return cancel_all_ ? std::min(options_.max_event_wait, cancelled_limit)
                       : options_.max_event_wait;
  };
  absl::MutexLock lock(&mu_);
  while (!stopping_) {
    const absl::Duration now_limit = limit();
    if (flows_.empty() || now_limit == absl::InfiniteDuration()) {
      auto wake = [this, &limit]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> bool {
        return stopping_ || (!flows_.empty() && limit() != absl::InfiniteDuration());
      };
      mu_.Await(absl::Condition(&wake));
      continue;
    }
    const absl::Duration tick =
        std::clamp(now_limit / 8, absl::Milliseconds(10), absl::Seconds(1));
    mu_.AwaitWithTimeout(absl::Condition(&stopping_), tick);
    const absl::Time now = absl::Now();
    for (Flow* flow : flows_) {  // flows_ entries live while listed (mu_)
      absl::MutexLock flow_lock(&flow->mu);
      if (now - flow->reporting_since <= now_limit) continue;
      if (cancel_all_ && now_limit < options_.max_event_wait) {
        flow->GiveUp(absl::UnavailableError(
            "the server is shutting down and the client did not read its stream"));
      } else {
        flow->GiveUp(absl::ResourceExhaustedError(absl::StrCat(
            "the client did not read its stream: an event waited more than ",
            absl::FormatDuration(now_limit),
            " to be sent (--max-event-wait); generation stopped")));
      }
    }
  }
}

absl::StatusOr<TraceSealedEvent> TraceGenerator::Generate(
    const GenerateParams& params, const TraceEvents& events) {
  absl::StatusOr<Prepared> prepared = Prepare(params);
  if (!prepared.ok()) return prepared.status();
  if (absl::Status s = Admit(); !s.ok()) return s;
  absl::Cleanup release = [this] { Release(); };

  // The header (leaf 0).
  const absl::Time start = options_.clock();
  const inf::DeviceInfo device = backend_->device();
  prov::TraceHeader header;
  header.model_digest = model_.model_digest;
  header.tokenizer_digest = model_.tokenizer_digest;
  header.model_name = model_.name;
  header.sampling.greedy = prepared->sampling.greedy;
  header.sampling.temperature = prepared->sampling.temperature;
  header.sampling.top_p = prepared->sampling.top_p;
  header.sampling.top_k = static_cast<uint32_t>(prepared->sampling.top_k);
  header.sampling.seed = prepared->sampling.seed;
  header.sampling.max_new_tokens = static_cast<uint32_t>(prepared->max_tokens);
  if (prepared->withhold) {
    header.prompt_commitment =
        prov::PromptCommitment(prepared->prompt_salt, prepared->prompt_text);
  } else {
    header.prompt = prepared->prompt_text;
  }
  header.backend = device.backend;
  header.device = device.device;
  header.start_unix_ms = absl::ToUnixMillis(start);
  header.key_name = signer_->key_name();
  header.key_id = signer_->key_id();

  Flow flow;
  flow.abort_stream = params.abort_stream;
  {
    absl::MutexLock lock(&mu_);
    flows_.push_back(&flow);
  }
  absl::Cleanup unlist = [this, &flow] {
    absl::MutexLock lock(&mu_);
    flows_.erase(std::find(flows_.begin(), flows_.end(), &flow));
  };

  // The engine, on its own thread: its sink only queues.
  inf::GenerationRequest request;
  request.prompt_tokens = std::move(prepared->prompt_tokens);
  request.sampling = prepared->sampling;
  request.max_tokens = prepared->max_tokens;
  request.deadline = params.deadline;
  request.is_cancelled = [this, &params, &flow] {
    return flow.stop.load(std::memory_order_relaxed) || cancel_all() ||
           (params.is_cancelled && params.is_cancelled());
  };
  const size_t max_pending = static_cast<size_t>(options_.max_pending_steps);
  auto sink = [&flow, max_pending](const inf::Step& step) -> absl::Status {
    absl::MutexLock lock(&flow.mu);
    if (flow.stop) return flow.abort.ok() ? absl::CancelledError("stopped") : flow.abort;
    if (flow.steps.size() >= max_pending) {
      flow.GiveUp(absl::ResourceExhaustedError(absl::StrCat(
          "the client did not read its stream: ", max_pending,
          " steps were waiting to be sent; generation stopped")));
      return flow.abort;
    }
    flow.steps.push_back(step);
    return absl::OkStatus();
  };
  // The engine starts first: the header's commit and signature overlap its
  // prefill. Its steps wait in the queue until the trace exists.
  std::thread engine([this, &request, &flow, sink] {
    absl::StatusOr<inf::GenerationResult> result = backend_->Generate(request, sink);
    absl::MutexLock lock(&flow.mu);
    flow.result = std::move(result);
    flow.engine_done = true;
  });
  absl::Cleanup join_engine = [&flow, &engine] {
    if (!engine.joinable()) return;
    flow.stop = true;  // ends at the next token (a no-op once it is done)
    engine.join();
  };

  absl::StatusOr<prov::StartedTrace> started = ledger_->StartTrace(header);
  if (!started.ok()) return started.status();  // nothing stored; engine stopped
  const std::string trace_id = started->trace_id;
  // From here on the trace exists: every path seals it.

  absl::Status stop;  // why the caller's side stopped early, if it did
  if (events.on_started) {
    TraceStartedEvent event{*started, header, ""};
    if (prepared->salt_chosen_here) {
      event.prompt_salt.assign(prepared->prompt_salt.begin(), prepared->prompt_salt.end());
    }
    stop = Report(flow, [&] { return events.on_started(event); });
  }

  // Commit and report each step as the engine produces it.
  std::string answer;
  while (stop.ok()) {
    inf::Step step;
    {
      absl::MutexLock lock(&flow.mu);
      auto ready = [&flow]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(flow.mu) {
        return !flow.steps.empty() || flow.engine_done;
      };
      flow.mu.Await(absl::Condition(&ready));
      if (flow.steps.empty()) break;  // the engine is done and all is taken
      step = std::move(flow.steps.front());
      flow.steps.pop_front();
    }
    absl::StatusOr<prov::AppendedStep> appended =
        ledger_->AppendStep(trace_id, RecordOf(step, start));
    if (!appended.ok()) {
      stop = appended.status();
      break;
    }
    if (step.kind == inf::StepKind::kAnswer) answer = step.text;
    if (!events.on_step) continue;
    // The committed bytes are authoritative (the ledger fills in trace id,
    // index and salt).
    absl::StatusOr<prov::StepRecord> committed = prov::DecodeStepRecord(appended->encoded_record);
    if (!committed.ok()) {
      stop = absl::InternalError(absl::StrCat(
          "the ledger committed a step record that does not decode: ",
          committed.status().message()));
      break;
    }
    StepCommittedEvent event{*std::move(appended), *std::move(committed)};
    stop = Report(flow, [&] { return events.on_step(event); });
  }
  if (!stop.ok()) flow.stop = true;  // the engine ends at its next token
  engine.join();
  std::move(join_engine).Cancel();
  absl::StatusOr<inf::GenerationResult> result;
  {
    absl::MutexLock lock(&flow.mu);
    result = std::move(flow.result);
    flow.steps.clear();  // produced after the caller stopped: not committed
    if (stop.ok() && !flow.abort.ok()) stop = flow.abort;
  }
  if (stop.ok() && !result.ok()) stop = result.status();

  absl::StatusOr<prov::SealedTrace> sealed = ledger_->SealTrace(trace_id);
  if (!stop.ok()) return stop;
  if (!sealed.ok()) return sealed.status();

  TraceSealedEvent event;
  event.sealed = *std::move(sealed);
  event.trace_id = trace_id;
  event.answer = std::move(answer);
  event.finish = result->finish;
  event.prompt_tokens = result->prompt_tokens;
  event.generated_tokens = result->generated_tokens;
  if (events.on_sealed) {
    if (absl::Status s = Report(flow, [&] { return events.on_sealed(event); }); !s.ok()) return s;
  }
  return event;
}

}  // namespace stepproof::service
