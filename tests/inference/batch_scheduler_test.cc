// Continuous batching (inference/batch_scheduler.h) on the CPU engine with the
// embedded model models/stepproof-arith.gguf (skipped when absent). The
// reference is CpuBackend running the same requests one at a time: the
// batched path must give exactly its tokens, log-probabilities, steps and
// fingerprints, however the requests overlap.
//
// Scheduler-level tests hold tickets on the test thread and use the
// back-pressure bound (max_pending_tokens) to pin down which sequences are in
// flight, so every overlap asserted here is deterministic, not timed.

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "inference/backend.h"
#include "inference/batched_backend.h"
#include "inference/batch_scheduler.h"
#include "inference/chat_template.h"
#include "inference/cpu_batch_executor.h"
#include "inference/gguf.h"
#include "inference/gguf_tokenizer.h"
#include "inference/model.h"

namespace stepproof::inference {
namespace {

constexpr char kModel[] = "models/stepproof-arith.gguf";
constexpr int kThreads = 1;
constexpr int kContext = 256;

struct Outcome {
  std::vector<Step> steps;
  GenerationResult result;
  absl::Status status;
  std::vector<int32_t> ids() const {
    std::vector<int32_t> v;
    for (const Step& s : steps) v.insert(v.end(), s.token_ids.begin(), s.token_ids.end());
    return v;
  }
};

Outcome Generate(Backend& b, const GenerationRequest& r) {
  Outcome run;
  absl::StatusOr<GenerationResult> res = b.Generate(r, [&](const Step& s) {
    run.steps.push_back(s);
    return absl::OkStatus();
  });
  run.status = res.status();
  if (res.ok()) run.result = *res;
  return run;
}

void ExpectSameSteps(const Outcome& got, const Outcome& want, const std::string& what) {
  ASSERT_TRUE(got.status.ok()) << what << ": " << got.status;
  ASSERT_TRUE(want.status.ok()) << what << ": " << want.status;
  EXPECT_EQ(got.result.finish, want.result.finish) << what;
  EXPECT_EQ(got.result.generated_tokens, want.result.generated_tokens) << what;
  EXPECT_EQ(got.result.prompt_tokens, want.result.prompt_tokens) << what;
  ASSERT_EQ(got.steps.size(), want.steps.size()) << what;
  for (size_t i = 0; i < want.steps.size(); ++i) {
    const Step& g = got.steps[i];
    const Step& w = want.steps[i];
    EXPECT_EQ(g.kind, w.kind) << what << " step " << i;
    EXPECT_EQ(g.text, w.text) << what << " step " << i;
    EXPECT_EQ(g.token_ids, w.token_ids) << what << " step " << i;
    EXPECT_EQ(g.logprobs, w.logprobs) << what << " step " << i;  // bit-identical floats
    EXPECT_EQ(g.first_token_position, w.first_token_position) << what << " step " << i;
    EXPECT_EQ(g.fingerprint, w.fingerprint) << what << " step " << i;
  }
}

class BatchSchedulerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<GgufFile> file = GgufFile::Open(kModel);
    if (!file.ok()) GTEST_SKIP() << kModel << " absent: " << file.status();
    absl::StatusOr<BpeTokenizer> tok = LoadTokenizer(*file);
    ASSERT_TRUE(tok.ok()) << tok.status();
    tokenizer_ = std::make_unique<BpeTokenizer>(*std::move(tok));
    absl::StatusOr<std::unique_ptr<Backend>> cpu = OpenCpuBackend(kModel, CpuBackendOptions{kThreads, kContext});
    ASSERT_TRUE(cpu.ok()) << cpu.status();
    cpu_ = *std::move(cpu);
  }

  std::vector<int32_t> Prompt(const std::string& question) const {
    return tokenizer_->Encode(FormatR1Prompt("", question), /*parse_special=*/true);
  }
  GenerationRequest Request(const std::string& question, int max_tokens) const {
    GenerationRequest r;
    r.prompt_tokens = Prompt(question);
    r.sampling.greedy = true;
    r.max_tokens = max_tokens;
    return r;
  }
  // The token ids CpuBackend samples for `r`, the end-of-sequence included.
  std::vector<int32_t> ReferenceIds(const GenerationRequest& r) {
    Outcome run = Generate(*cpu_, r);
    EXPECT_TRUE(run.status.ok()) << run.status;
    std::vector<int32_t> ids = run.ids();
    if (run.result.finish == FinishReason::kEndOfSequence) ids.push_back(tokenizer_->eos_id());
    return ids;
  }

  std::unique_ptr<BatchScheduler> Scheduler(int slots, SchedulerOptions o) {
    absl::StatusOr<GgufFile> file = GgufFile::Open(kModel);
    EXPECT_TRUE(file.ok());
    absl::StatusOr<std::unique_ptr<Model>> model = Model::Load(*std::move(file), ModelOptions{kThreads, true});
    EXPECT_TRUE(model.ok()) << model.status();
    const int32_t sampleable = std::min((*model)->config().n_vocab, tokenizer_->vocab_size());
    o.eos_id = tokenizer_->eos_id();
    return std::make_unique<BatchScheduler>(
        std::make_unique<CpuBatchExecutor>(*std::move(model), slots, kContext, sampleable), o);
  }
  static SequenceRequest Seq(const GenerationRequest& r) {
    SequenceRequest s;
    s.prompt = r.prompt_tokens;
    s.sampling = r.sampling;
    s.max_tokens = r.max_tokens;
    return s;
  }
  // Takes `n` tokens (fewer if the sequence ends) from a ticket.
  static std::vector<int32_t> Take(BatchScheduler& s, BatchScheduler::Ticket& t, int n, bool* ended = nullptr) {
    std::vector<int32_t> ids;
    while (static_cast<int>(ids.size()) < n) {
      absl::StatusOr<std::optional<TokenEvent>> e = s.Next(t, absl::Now() + absl::Seconds(60));
      EXPECT_TRUE(e.ok()) << e.status();
      if (!e.ok()) break;
      EXPECT_TRUE(e->has_value()) << "no token within 60 s";
      if (!e->has_value()) break;
      ids.push_back((*e)->token.id);
      if ((*e)->finish) {
        if (ended != nullptr) *ended = true;
        break;
      }
    }
    return ids;
  }

  std::unique_ptr<BpeTokenizer> tokenizer_;
  std::unique_ptr<Backend> cpu_;
};

const char* const kQuestions[] = {"12+35", "What is 7*8?", "99-17", "Compute 123+456.", "5*5*5"};

TEST_F(BatchSchedulerTest, ConcurrentGenerationsMatchTheCpuBackendOneAtATime) {
  std::vector<GenerationRequest> requests;
  for (const char* q : kQuestions) requests.push_back(Request(q, 80));
  // Seeded sampling too: the draw at each position is the same Philox value.
  GenerationRequest sampled = Request("31+11", 80);
  sampled.sampling = SamplingParams{false, 0.9f, 0.9f, 20, 7};
  requests.push_back(sampled);
  std::vector<Outcome> want;
  for (const GenerationRequest& r : requests) want.push_back(Generate(*cpu_, r));

  CpuBatchedBackendOptions o;
  o.threads = kThreads;
  o.context_length = kContext;
  o.slots = 3;  // fewer slots than requests: some wait for a slot to be freed
  o.batching.scheduler.max_queued = 8;
  absl::StatusOr<std::unique_ptr<Backend>> batched = OpenCpuBatchedBackend(kModel, o);
  ASSERT_TRUE(batched.ok()) << batched.status();
  EXPECT_EQ((*batched)->model().context_length, kContext);
  EXPECT_EQ((*batched)->model().weight_type, cpu_->model().weight_type);
  std::vector<Outcome> got(requests.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < requests.size(); ++i) {
    threads.emplace_back([&, i] { got[i] = Generate(**batched, requests[i]); });
  }
  for (std::thread& t : threads) t.join();
  for (size_t i = 0; i < requests.size(); ++i) ExpectSameSteps(got[i], want[i], absl::StrCat("request ", i));
  const BatchScheduler* s = BatchedBackendScheduler(**batched);
  ASSERT_NE(s, nullptr);
  const BatchScheduler::Stats stats = s->stats();
  EXPECT_EQ(stats.slots_in_use, 0);
  EXPECT_EQ(stats.queued, 0);
  EXPECT_LE(stats.max_batch_seen, 3);
  EXPECT_GE(stats.decode_steps, 1);
}

TEST_F(BatchSchedulerTest, SequencesBatchTogetherAndJoinAndLeaveMidStream) {
  SchedulerOptions o;
  o.max_pending_tokens = 1000;  // nobody is held back here
  auto s = Scheduler(2, o);
  const GenerationRequest a = Request(kQuestions[0], 12);
  const GenerationRequest b = Request(kQuestions[1], 60);
  const GenerationRequest c = Request(kQuestions[2], 60);
  const std::vector<int32_t> want_a = ReferenceIds(a), want_b = ReferenceIds(b), want_c = ReferenceIds(c);
  ASSERT_EQ(want_a.size(), 12u) << "the short request must end on max_tokens, while the others run";
  ASSERT_GT(want_b.size(), 13u);
  // A and B fill both slots; C waits, then takes A's slot (and its stale
  // KV entries, which must not leak into C) when A leaves after 12 tokens.
  auto ta = s->Submit(Seq(a));
  auto tb = s->Submit(Seq(b));
  auto tc = s->Submit(Seq(c));
  ASSERT_TRUE(ta.ok() && tb.ok() && tc.ok());
  bool ended = false;
  EXPECT_EQ(Take(*s, **ta, 100, &ended), want_a);
  EXPECT_TRUE(ended);
  EXPECT_EQ(Take(*s, **tb, 100), want_b);
  EXPECT_EQ(Take(*s, **tc, 100), want_c);
  const BatchScheduler::Stats st = s->stats();
  EXPECT_EQ(st.max_batch_seen, 2);  // A and B decoded in the same steps
  EXPECT_EQ(st.slots_in_use, 0);
  // Fewer steps than tokens: tokens of different sequences shared steps.
  EXPECT_LT(st.decode_steps, st.batched_tokens);
}

TEST_F(BatchSchedulerTest, ALateJoinerDoesNotDisturbARunningSequence) {
  SchedulerOptions o;
  o.max_pending_tokens = 4;
  auto s = Scheduler(2, o);
  const GenerationRequest a = Request(kQuestions[3], 60);
  const GenerationRequest b = Request(kQuestions[4], 60);
  const std::vector<int32_t> want_a = ReferenceIds(a), want_b = ReferenceIds(b);
  auto ta = s->Submit(Seq(a));
  ASSERT_TRUE(ta.ok());
  // A is mid-stream (and, at 4 untaken tokens, paused) when B joins.
  std::vector<int32_t> got_a = Take(*s, **ta, 6);
  auto tb = s->Submit(Seq(b));
  ASSERT_TRUE(tb.ok());
  std::vector<int32_t> got_b = Take(*s, **tb, 3);
  for (int32_t id : Take(*s, **ta, 1000)) got_a.push_back(id);
  for (int32_t id : Take(*s, **tb, 1000)) got_b.push_back(id);
  EXPECT_EQ(got_a, want_a);
  EXPECT_EQ(got_b, want_b);
}

TEST_F(BatchSchedulerTest, AdmissionControlRefusesBeyondTheQueueAndCancelFreesTheSlot) {
  SchedulerOptions o;
  o.max_queued = 1;
  o.max_pending_tokens = 1;  // A keeps its slot while the test does not read it
  auto s = Scheduler(1, o);
  const GenerationRequest a = Request(kQuestions[0], 200);
  const GenerationRequest b = Request(kQuestions[1], 40);
  auto ta = s->Submit(Seq(a));
  ASSERT_TRUE(ta.ok());
  ASSERT_EQ(Take(*s, **ta, 1).size(), 1u);  // A holds the only slot
  auto tb = s->Submit(Seq(b));
  ASSERT_TRUE(tb.ok()) << tb.status();  // B waits in the queue's one place
  auto tc = s->Submit(Seq(b));
  ASSERT_FALSE(tc.ok());
  EXPECT_EQ(tc.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(tc.status().message().find("all 1 KV-cache slots are in use and 1 requests are queued"),
            std::string::npos)
      << tc.status();
  EXPECT_EQ(s->stats().slots_in_use, 1);
  EXPECT_EQ(s->stats().queued, 1);
  // Cancelling A frees the slot; B runs to the end with the right tokens.
  s->Cancel(**ta);
  EXPECT_EQ(s->Next(**ta, absl::Now()).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(Take(*s, **tb, 1000), ReferenceIds(b));
  // And a cancelled queued request never runs.
  auto td = s->Submit(Seq(b));
  ASSERT_TRUE(td.ok());
  s->Cancel(**td);
  EXPECT_EQ(s->stats().queued, 0);
}

// The CPU executor with a fault injected: decode steps fail from the n-th on.
class FailingExecutor : public BatchExecutor {
 public:
  FailingExecutor(std::unique_ptr<BatchExecutor> real, int fail_from) : real_(std::move(real)), fail_from_(fail_from) {}
  int32_t slots() const override { return real_->slots(); }
  int32_t context_length() const override { return real_->context_length(); }
  int32_t n_embd() const override { return real_->n_embd(); }
  int32_t max_batch() const override { return real_->max_batch(); }
  absl::Status Prefill(int32_t slot, absl::Span<const int32_t> tokens, int32_t start, bool all_hidden,
                       const SamplingParams* sample, std::vector<float>* hidden, SampledToken* sampled) override {
    return real_->Prefill(slot, tokens, start, all_hidden, sample, hidden, sampled);
  }
  absl::Status Decode(absl::Span<const DecodeItem> batch, std::vector<float>* hidden,
                      std::vector<SampledToken>* sampled) override {
    if (++calls_ == fail_from_) return absl::InternalError("injected device fault");
    return real_->Decode(batch, hidden, sampled);
  }

 private:
  std::unique_ptr<BatchExecutor> real_;
  const int fail_from_;
  int calls_ = 0;
};

TEST_F(BatchSchedulerTest, AnExecutorErrorFailsTheSequencesOfThatStepAndFreesTheirSlots) {
  absl::StatusOr<GgufFile> file = GgufFile::Open(kModel);
  ASSERT_TRUE(file.ok());
  absl::StatusOr<BpeTokenizer> tokenizer = LoadTokenizer(*file);
  ASSERT_TRUE(tokenizer.ok());
  absl::StatusOr<std::unique_ptr<Model>> model = Model::Load(*std::move(file), ModelOptions{kThreads, true});
  ASSERT_TRUE(model.ok());
  const int32_t n_vocab = (*model)->config().n_vocab;
  const int32_t sampleable = std::min(n_vocab, tokenizer_->vocab_size());
  // The third decode step fails; the ones after it work again.
  auto executor = std::make_unique<FailingExecutor>(
      std::make_unique<CpuBatchExecutor>(*std::move(model), 1, kContext, sampleable), 3);
  std::unique_ptr<Backend> b = NewBatchedBackend(cpu_->model(), cpu_->device(), *std::move(tokenizer), n_vocab,
                                                 std::move(executor), BatchedBackendOptions{});
  const GenerationRequest r = Request(kQuestions[1], 40);
  Outcome failed = Generate(*b, r);
  EXPECT_EQ(failed.status, absl::InternalError("injected device fault"));
  // The one slot was given back: the next request runs, with the right steps.
  ExpectSameSteps(Generate(*b, r), Generate(*cpu_, r), "after the fault");
}

TEST_F(BatchSchedulerTest, RejectsRequestsThatBreakTheContract) {
  auto s = Scheduler(1, SchedulerOptions{});
  SequenceRequest r;
  EXPECT_EQ(s->Submit(r).status().code(), absl::StatusCode::kInvalidArgument);  // empty prompt
  r.prompt.assign(kContext, 10);
  EXPECT_EQ(s->Submit(r).status().code(), absl::StatusCode::kInvalidArgument);  // no room to generate
  r.prompt = {10};
  r.max_tokens = 0;
  EXPECT_EQ(s->Submit(r).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(BatchSchedulerTest, CancellationStopsAfterTheSameTokenAsTheCpuBackend) {
  CpuBatchedBackendOptions o;
  o.threads = kThreads;
  o.context_length = kContext;
  o.slots = 1;  // so that serving again below proves the slot was freed
  absl::StatusOr<std::unique_ptr<Backend>> batched = OpenCpuBatchedBackend(kModel, o);
  ASSERT_TRUE(batched.ok()) << batched.status();
  // Cancelled once two steps were delivered. Both backends poll once per
  // token, after delivering it, so both stop after the same token even
  // though the batched engine may have sampled further ahead.
  auto run = [](Backend& b, GenerationRequest r) {
    auto steps = std::make_shared<std::atomic<int>>(0);
    r.is_cancelled = [steps] { return steps->load() >= 2; };
    Outcome out;
    absl::StatusOr<GenerationResult> res = b.Generate(r, [&](const Step& s) {
      out.steps.push_back(s);
      ++*steps;
      return absl::OkStatus();
    });
    out.status = res.status();
    if (res.ok()) out.result = *res;
    return out;
  };
  const GenerationRequest r = Request(kQuestions[3], 100);
  const Outcome want = run(*cpu_, r);
  ASSERT_EQ(want.result.finish, FinishReason::kCancelled);
  ExpectSameSteps(run(**batched, r), want, "cancelled");
  // A failing sink ends the call with its status.
  const absl::Status sink_error = absl::DataLossError("sink refused");
  absl::StatusOr<GenerationResult> failed =
      (*batched)->Generate(r, [&](const Step&) { return sink_error; });
  EXPECT_EQ(failed.status(), sink_error);
  // The backend keeps serving after a cancellation and a failed sink.
  ExpectSameSteps(Generate(**batched, Request(kQuestions[2], 30)), Generate(*cpu_, Request(kQuestions[2], 30)),
                  "after");
}

TEST_F(BatchSchedulerTest, DeadlineEndsGenerationLikeTheCpuBackend) {
  // A deadline already past: the prefill runs, no token is delivered.
  GenerationRequest r = Request(kQuestions[0], 50);
  r.deadline = absl::Now() - absl::Seconds(1);
  CpuBatchedBackendOptions o;
  o.threads = kThreads;
  o.context_length = kContext;
  o.slots = 1;
  // A clock the test moves: past the deadline once two steps are delivered.
  auto fake_now = std::make_shared<std::atomic<int64_t>>(0);
  o.batching.clock = [fake_now] { return absl::FromUnixNanos(fake_now->load()); };
  absl::StatusOr<std::unique_ptr<Backend>> batched = OpenCpuBatchedBackend(kModel, o);
  ASSERT_TRUE(batched.ok()) << batched.status();
  r.deadline = absl::FromUnixNanos(-1);
  Outcome past = Generate(**batched, r);
  ASSERT_TRUE(past.status.ok()) << past.status;
  EXPECT_EQ(past.result.finish, FinishReason::kDeadline);
  EXPECT_EQ(past.result.generated_tokens, 0);
  EXPECT_TRUE(past.steps.empty());
  GenerationRequest cpu_past = r;
  cpu_past.deadline = absl::Now() - absl::Seconds(1);
  Outcome cpu_run = Generate(*cpu_, cpu_past);
  EXPECT_EQ(cpu_run.result.finish, FinishReason::kDeadline);
  EXPECT_EQ(cpu_run.result.generated_tokens, 0);

  // Mid-stream: the steps delivered are the reference's first ones.
  const std::vector<int32_t> want = ReferenceIds(Request(kQuestions[0], 50));
  r.deadline = absl::FromUnixNanos(1000);
  int delivered = 0;
  Outcome mid;
  absl::StatusOr<GenerationResult> res = (*batched)->Generate(r, [&](const Step& s) {
    mid.steps.push_back(s);
    if (++delivered == 2) fake_now->store(2000);
    return absl::OkStatus();
  });
  ASSERT_TRUE(res.ok()) << res.status();
  EXPECT_EQ(res->finish, FinishReason::kDeadline);
  const std::vector<int32_t> got = mid.ids();
  ASSERT_LT(got.size(), want.size());
  EXPECT_EQ(got, std::vector<int32_t>(want.begin(), want.begin() + got.size()));
  EXPECT_EQ(res->generated_tokens, static_cast<int32_t>(got.size()));
}

TEST_F(BatchSchedulerTest, ValidatesLikeTheCpuBackend) {
  CpuBatchedBackendOptions o;
  o.threads = kThreads;
  o.context_length = kContext;
  absl::StatusOr<std::unique_ptr<Backend>> batched = OpenCpuBatchedBackend(kModel, o);
  ASSERT_TRUE(batched.ok()) << batched.status();
  std::vector<GenerationRequest> bad(4, Request(kQuestions[0], 10));
  bad[0].prompt_tokens.clear();
  bad[1].prompt_tokens.push_back(1 << 30);
  bad[2].max_tokens = 0;
  bad[3].sampling.top_p = 0.0f;
  for (const GenerationRequest& r : bad) {
    const Outcome got = Generate(**batched, r);
    const Outcome want = Generate(*cpu_, r);
    EXPECT_EQ(got.status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(got.status, want.status);
  }
  EXPECT_EQ(OpenCpuBatchedBackend(kModel, CpuBatchedBackendOptions{1, 0, 0, {}}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace stepproof::inference
