// The generation pipeline (services/generation.h) over a tiny random model
// and an in-memory ledger, and over a scripted fake backend where exact
// steps matter. Every trace is checked with the offline verifier
// (provenance/verifier.h), independently of the code that built it.
#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "inference/backend.h"
#include "inference/chat_template.h"
#include "merkle/hash.h"
#include "provenance/bundle.h"
#include "provenance/checkpoint.h"
#include "provenance/log/ledger.h"
#include "provenance/log/memory_store.h"
#include "provenance/promise.h"
#include "provenance/verifier.h"
#include "services/anchoring.h"
#include "services/generation.h"
#include "services/model_identity.h"
#include "tests/services/fake_backends.h"
#include "tests/services/test_env.h"

namespace stepproof::service {
namespace {

namespace inf = ::stepproof::inference;
namespace prov = ::stepproof::provenance;
using ::testing::HasSubstr;

// ---------------------------------------------------------------- fixtures

std::unique_ptr<prov::Ledger> OpenMemoryLedger(const prov::Signer* signer) {
  prov::LedgerOptions options;
  options.log_origin = testing::kLogOrigin;
  options.sequencer.background = false;  // tests integrate with Flush()
  absl::StatusOr<std::unique_ptr<prov::Ledger>> ledger =
      prov::Ledger::Open(prov::NewInMemoryProvenanceStore(), signer, options);
  EXPECT_TRUE(ledger.ok()) << ledger.status();
  return ledger.ok() ? *std::move(ledger) : nullptr;
}

// Everything a Generate call reported, in order.
struct Recorded {
  std::vector<std::string> order;  // "started", "step", "sealed"
  std::optional<TraceStartedEvent> started;
  std::vector<StepCommittedEvent> steps;
  std::optional<TraceSealedEvent> sealed;

  TraceEvents Events() {
    TraceEvents e;
    e.on_started = [this](const TraceStartedEvent& s) {
      order.push_back("started");
      started = s;
      return absl::OkStatus();
    };
    e.on_step = [this](const StepCommittedEvent& s) {
      order.push_back("step");
      steps.push_back(s);
      return absl::OkStatus();
    };
    e.on_sealed = [this](const TraceSealedEvent& s) {
      order.push_back("sealed");
      sealed = s;
      return absl::OkStatus();
    };
    return e;
  }
  std::vector<uint32_t> AllTokens() const {
    std::vector<uint32_t> ids;
    for (const StepCommittedEvent& s : steps) {
      ids.insert(ids.end(), s.record.token_ids.begin(), s.record.token_ids.end());
    }
    return ids;
  }
};

class TinyModelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::FreshDir(::testing::UnitTest::GetInstance()->current_test_info()->name());
    model_path_ = testing::WriteTinyModel(*dir_, 1, /*context_length=*/256);
    ASSERT_FALSE(model_path_.empty());
    absl::StatusOr<std::unique_ptr<inf::Backend>> backend =
        inf::OpenCpuBackend(model_path_, inf::CpuBackendOptions{1, 0});
    ASSERT_TRUE(backend.ok()) << backend.status();
    backend_ = *std::move(backend);
    absl::StatusOr<ModelIdentity> identity = ReadModelIdentity(model_path_);
    ASSERT_TRUE(identity.ok()) << identity.status();
    identity_ = *identity;
    ledger_ = OpenMemoryLedger(&signer_);
    ASSERT_NE(ledger_, nullptr);
  }

  std::unique_ptr<TraceGenerator> MakeGenerator(TraceGeneratorOptions options = {}) {
    if (options.max_tokens == 1024) options.max_tokens = 64;
    return std::make_unique<TraceGenerator>(backend_.get(), ledger_.get(), &signer_, identity_,
                                            options);
  }

  static GenerateParams Params(const std::string& prompt, uint64_t seed, uint32_t max_tokens) {
    GenerateParams p;
    p.prompt = prompt;
    p.seed = seed;
    p.max_tokens = max_tokens;
    return p;
  }

  size_t TraceCount() {
    absl::StatusOr<prov::TracePage> page = ledger_->ListTraces("", 1000);
    EXPECT_TRUE(page.ok());
    return page.ok() ? page->traces.size() : 0;
  }

  std::unique_ptr<testing::TempDir> dir_;
  std::string model_path_;
  std::unique_ptr<inf::Backend> backend_;
  ModelIdentity identity_;
  prov::Signer signer_ = testing::TestSigner();
  std::unique_ptr<prov::Ledger> ledger_;
};

// ---------------------------------------------------------------- tiny model

TEST_F(TinyModelTest, EventsComeInOrderAndTheTraceVerifiesOffline) {
  auto generator = MakeGenerator();
  Recorded r;
  absl::StatusOr<TraceSealedEvent> sealed =
      generator->Generate(Params("What is 12+34?", 7, 40), r.Events());
  ASSERT_TRUE(sealed.ok()) << sealed.status();

  // Order: started, step..., sealed.
  ASSERT_GE(r.order.size(), 3u);
  EXPECT_EQ(r.order.front(), "started");
  EXPECT_EQ(r.order.back(), "sealed");
  for (size_t i = 1; i + 1 < r.order.size(); ++i) EXPECT_EQ(r.order[i], "step");
  ASSERT_TRUE(r.started.has_value());
  const std::string& id = r.started->trace.trace_id;
  const prov::NoteVerifier key = signer_.verifier();

  // Leaf 0: the header, as recorded, and its checkpoint.
  EXPECT_EQ(r.started->trace.header_leaf_hash, merkle::HashLeaf(r.started->trace.header_record));
  absl::StatusOr<prov::StepRecord> header_record =
      prov::DecodeStepRecord(r.started->trace.header_record);
  ASSERT_TRUE(header_record.ok()) << header_record.status();
  absl::StatusOr<prov::TraceHeader> header = prov::HeaderFromRecord(*header_record);
  ASSERT_TRUE(header.ok());
  EXPECT_EQ(header->prompt, inf::FormatR1Prompt("", "What is 12+34?"));
  EXPECT_FALSE(header->prompt_commitment.has_value());
  EXPECT_EQ(header->sampling.seed, 7u);
  EXPECT_EQ(header->sampling.max_new_tokens, 40u);
  EXPECT_FLOAT_EQ(header->sampling.temperature, 0.6f);
  EXPECT_FLOAT_EQ(header->sampling.top_p, 0.95f);
  EXPECT_EQ(header->model_digest, merkle::Sha256Of(std::string_view(testing::ReadFile(model_path_))));
  EXPECT_EQ(header->model_name, "tiny-test");
  EXPECT_EQ(header->backend, "cpu");
  EXPECT_EQ(header->key_id, signer_.key_id());
  EXPECT_EQ(header->key_name, signer_.key_name());

  // Steps: leaf hashes recomputed from the bytes, indices in order, each
  // checkpoint signed, of the right size, and consistent with the previous.
  std::vector<std::string> records = {r.started->trace.header_record};
  std::string previous_checkpoint = r.started->trace.signed_checkpoint;
  for (size_t i = 0; i < r.steps.size(); ++i) {
    const StepCommittedEvent& s = r.steps[i];
    EXPECT_EQ(s.step.leaf_index, i + 1);
    EXPECT_EQ(s.step.leaf_hash, merkle::HashLeaf(s.step.encoded_record));
    absl::StatusOr<prov::StepRecord> decoded = prov::DecodeStepRecord(s.step.encoded_record);
    ASSERT_TRUE(decoded.ok());
    EXPECT_EQ(*decoded, s.record);
    EXPECT_EQ(decoded->trace_id, id);
    absl::StatusOr<prov::Checkpoint> cp = prov::OpenCheckpoint(s.step.signed_checkpoint, key);
    ASSERT_TRUE(cp.ok()) << cp.status();
    EXPECT_EQ(cp->size, i + 2);
    EXPECT_EQ(cp->origin, prov::TraceOrigin(testing::kLogOrigin, id));
    absl::StatusOr<std::vector<merkle::Hash>> proof = ledger_->GetTraceConsistency(id, i + 1, i + 2);
    ASSERT_TRUE(proof.ok()) << proof.status();
    EXPECT_TRUE(prov::VerifyTraceConsistency(previous_checkpoint, s.step.signed_checkpoint, *proof, key).ok());
    previous_checkpoint = s.step.signed_checkpoint;
    records.push_back(s.step.encoded_record);
  }

  // The seal: the whole trace verifies against the final checkpoint, and the
  // promise is about that checkpoint.
  ASSERT_TRUE(r.sealed.has_value());
  EXPECT_EQ(r.sealed->sealed.size, records.size());
  absl::StatusOr<std::vector<prov::StepRecord>> verified =
      prov::VerifyTrace(records, r.sealed->sealed.final_checkpoint, key);
  ASSERT_TRUE(verified.ok()) << verified.status();
  EXPECT_TRUE(prov::VerifyPromise(r.sealed->sealed.promise, key, r.sealed->sealed.final_checkpoint).ok());

  // Every generated token is in exactly one step (the end-of-sequence token
  // belongs to none).
  const size_t eos = sealed->finish == inf::FinishReason::kEndOfSequence ? 1 : 0;
  EXPECT_EQ(r.AllTokens().size() + eos, static_cast<size_t>(sealed->generated_tokens));
  EXPECT_LE(sealed->generated_tokens, 40);
  if (!r.steps.empty() && r.steps.back().record.kind == prov::StepKind::kAnswer) {
    EXPECT_EQ(sealed->answer, r.steps.back().record.text);
  }

  // After the log integrates the trace, every step's bundle verifies with the
  // log part.
  ASSERT_TRUE(ledger_->Flush().ok());
  for (uint64_t i = 0; i < records.size(); ++i) {
    absl::StatusOr<prov::Bundle> bundle = ledger_->GetStepBundle(id, i);
    ASSERT_TRUE(bundle.ok()) << bundle.status();
    EXPECT_TRUE(bundle->log.has_value());
    EXPECT_TRUE(prov::VerifyBundleJson(prov::BundleToJson(*bundle), key).ok()) << i;
  }
  EXPECT_EQ(generator->in_flight(), 0);
}

TEST_F(TinyModelTest, SameSeedReproducesTheSameTokens) {
  auto generator = MakeGenerator();
  Recorded a, b;
  ASSERT_TRUE(generator->Generate(Params("Compute 3*4.", 11, 32), a.Events()).ok());
  ASSERT_TRUE(generator->Generate(Params("Compute 3*4.", 11, 32), b.Events()).ok());
  EXPECT_FALSE(a.AllTokens().empty());
  EXPECT_EQ(a.AllTokens(), b.AllTokens());
  EXPECT_NE(a.started->trace.trace_id, b.started->trace.trace_id);
}

TEST_F(TinyModelTest, ChosenSeedIsRecordedAndReproducesTheTrace) {
  TraceGeneratorOptions options;
  uint8_t next = 0x10;
  options.random_bytes = [&next](absl::Span<uint8_t> out) {
    for (uint8_t& b : out) b = next++;
  };
  auto generator = MakeGenerator(options);
  GenerateParams p = Params("Compute 5+6.", 0, 24);
  p.seed.reset();
  Recorded first;
  ASSERT_TRUE(generator->Generate(p, first.Events()).ok());
  // The seed is the first 8 random bytes, big-endian.
  EXPECT_EQ(first.started->header.sampling.seed, 0x1011121314151617u);

  auto plain = MakeGenerator();
  Recorded again;
  ASSERT_TRUE(plain->Generate(Params("Compute 5+6.", 0x1011121314151617u, 24), again.Events()).ok());
  EXPECT_EQ(first.AllTokens(), again.AllTokens());
}

TEST_F(TinyModelTest, WithheldPromptStoresOnlyItsSaltedCommitment) {
  auto generator = MakeGenerator();
  const std::string prompt = "my secret question 98765";
  const std::string templated = inf::FormatR1Prompt("", prompt);

  GenerateParams p = Params(prompt, 3, 8);
  p.withhold_prompt = true;
  Recorded r;
  ASSERT_TRUE(generator->Generate(p, r.Events()).ok());
  ASSERT_EQ(r.started->prompt_salt.size(), 32u);
  EXPECT_FALSE(r.started->header.prompt.has_value());
  ASSERT_TRUE(r.started->header.prompt_commitment.has_value());
  EXPECT_EQ(*r.started->header.prompt_commitment,
            merkle::Sha256Of(std::string_view(r.started->prompt_salt + templated)));
  EXPECT_FALSE(absl::StrContains(r.started->trace.header_record, "98765"));
  absl::StatusOr<prov::TraceRecord> stored = ledger_->GetTrace(r.started->trace.trace_id);
  ASSERT_TRUE(stored.ok());
  EXPECT_FALSE(absl::StrContains(stored->header, "98765"));

  // A salt the client chose is used and not echoed back.
  const std::string salt(32, '\x5a');
  p.prompt_salt = salt;
  Recorded r2;
  ASSERT_TRUE(generator->Generate(p, r2.Events()).ok());
  EXPECT_TRUE(r2.started->prompt_salt.empty());
  EXPECT_EQ(*r2.started->header.prompt_commitment,
            merkle::Sha256Of(std::string_view(salt + templated)));
}

TEST_F(TinyModelTest, BadRequestsAreRefusedBeforeAnyTraceExists) {
  TraceGeneratorOptions options;
  options.max_prompt_bytes = 400;
  options.max_tokens = 64;
  auto generator = MakeGenerator(options);
  struct Case {
    std::string name;
    GenerateParams params;
    absl::StatusCode code;
    std::string message;
  };
  auto base = [] { return Params("hello", 1, 8); };
  std::vector<Case> cases;
  {
    GenerateParams p = base();
    p.prompt.clear();
    cases.push_back({"empty", p, absl::StatusCode::kInvalidArgument, "prompt is empty"});
  }
  {
    GenerateParams p = base();
    p.messages = {{"user", "hi"}};
    cases.push_back({"both", p, absl::StatusCode::kInvalidArgument, "not both"});
  }
  {
    GenerateParams p = base();
    p.temperature = -1.0f;
    cases.push_back({"temperature", p, absl::StatusCode::kInvalidArgument, "temperature"});
  }
  {
    GenerateParams p = base();
    p.temperature = std::numeric_limits<float>::quiet_NaN();
    cases.push_back({"nan", p, absl::StatusCode::kInvalidArgument, "temperature"});
  }
  {
    GenerateParams p = base();
    p.top_p = 0.0f;
    cases.push_back({"top_p", p, absl::StatusCode::kInvalidArgument, "top_p"});
  }
  {
    GenerateParams p = base();
    p.top_k = 100000;
    cases.push_back({"top_k", p, absl::StatusCode::kInvalidArgument, "top_k"});
  }
  {
    GenerateParams p = base();
    p.max_tokens = 65;
    cases.push_back({"max_tokens", p, absl::StatusCode::kInvalidArgument, "max_tokens"});
  }
  {
    GenerateParams p = base();
    p.prompt = std::string(401, 'x');
    cases.push_back({"oversize", p, absl::StatusCode::kResourceExhausted, "--max-prompt-bytes"});
  }
  {
    GenerateParams p = base();
    p.prompt = std::string(300, 'x');  // fits the bytes limit, not the 256-token context
    cases.push_back({"context", p, absl::StatusCode::kInvalidArgument, "context"});
  }
  {
    GenerateParams p = base();
    p.withhold_prompt = true;
    p.prompt_salt = "short";
    cases.push_back({"salt", p, absl::StatusCode::kInvalidArgument, "prompt_salt"});
  }
  {
    GenerateParams p = base();
    p.prompt_salt = std::string(32, 's');
    cases.push_back({"salt_without_withhold", p, absl::StatusCode::kInvalidArgument, "withhold_prompt"});
  }
  {
    GenerateParams p = base();
    p.prompt.clear();
    p.messages = {{"assistant", "x"}};
    cases.push_back({"messages", p, absl::StatusCode::kInvalidArgument, "messages"});
  }
  for (const Case& c : cases) {
    Recorded r;
    absl::StatusOr<TraceSealedEvent> result = generator->Generate(c.params, r.Events());
    EXPECT_EQ(result.status().code(), c.code) << c.name << ": " << result.status();
    EXPECT_THAT(std::string(result.status().message()), HasSubstr(c.message)) << c.name;
    EXPECT_TRUE(r.order.empty()) << c.name;
  }
  EXPECT_EQ(TraceCount(), 0u);
  EXPECT_EQ(generator->in_flight(), 0);
}

TEST_F(TinyModelTest, CancelledGenerationIsStillSealed) {
  auto generator = MakeGenerator();
  GenerateParams p = Params("Count to ten.", 5, 64);
  p.is_cancelled = [] { return true; };
  Recorded r;
  absl::StatusOr<TraceSealedEvent> sealed = generator->Generate(p, r.Events());
  ASSERT_TRUE(sealed.ok()) << sealed.status();
  EXPECT_EQ(sealed->finish, inf::FinishReason::kCancelled);
  EXPECT_LT(sealed->generated_tokens, 64);
  absl::StatusOr<prov::TraceRecord> stored = ledger_->GetTrace(sealed->trace_id);
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->state, prov::TraceState::kSealed);
  EXPECT_EQ(stored->final_checkpoint, sealed->sealed.final_checkpoint);
}

TEST_F(TinyModelTest, PastDeadlineEndsWithDeadlineAndSeals) {
  auto generator = MakeGenerator();
  GenerateParams p = Params("Count to ten.", 5, 64);
  p.deadline = absl::Now() - absl::Seconds(1);
  Recorded r;
  absl::StatusOr<TraceSealedEvent> sealed = generator->Generate(p, r.Events());
  ASSERT_TRUE(sealed.ok()) << sealed.status();
  EXPECT_EQ(sealed->finish, inf::FinishReason::kDeadline);
  EXPECT_EQ(ledger_->GetTrace(sealed->trace_id)->state, prov::TraceState::kSealed);
}

TEST_F(TinyModelTest, FailingEventStopsGenerationAndSealsTheTrace) {
  auto generator = MakeGenerator();
  TraceEvents events;
  std::string id;
  events.on_started = [&](const TraceStartedEvent& e) {
    id = e.trace.trace_id;
    return absl::CancelledError("client went away");
  };
  bool step_seen = false;
  events.on_step = [&](const StepCommittedEvent&) {
    step_seen = true;
    return absl::OkStatus();
  };
  absl::StatusOr<TraceSealedEvent> result = generator->Generate(Params("Hi.", 1, 16), events);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kCancelled);
  EXPECT_FALSE(step_seen);
  ASSERT_FALSE(id.empty());
  absl::StatusOr<prov::TraceRecord> stored = ledger_->GetTrace(id);
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->state, prov::TraceState::kSealed);
  EXPECT_EQ(stored->size, 1u);
  EXPECT_EQ(generator->in_flight(), 0);
}

TEST_F(TinyModelTest, AdmissionRefusesOneMoreThanTheLimit) {
  TraceGeneratorOptions options;
  options.max_concurrent = 1;
  auto generator = MakeGenerator(options);
  absl::Status nested = absl::OkStatus();
  TraceEvents events;
  events.on_started = [&](const TraceStartedEvent&) {
    EXPECT_EQ(generator->in_flight(), 1);
    Recorded inner;
    nested = generator->Generate(Params("second", 2, 4), inner.Events()).status();
    return absl::OkStatus();
  };
  ASSERT_TRUE(generator->Generate(Params("first", 1, 4), events).ok());
  EXPECT_EQ(nested.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(nested.message()), HasSubstr("--max-concurrent-generations"));
  EXPECT_EQ(generator->in_flight(), 0);
  Recorded after;
  EXPECT_TRUE(generator->Generate(Params("third", 3, 4), after.Events()).ok());
  EXPECT_EQ(TraceCount(), 2u);
}

TEST_F(TinyModelTest, ShutdownRefusesNewGenerations) {
  auto generator = MakeGenerator();
  generator->BeginShutdown();
  Recorded r;
  EXPECT_EQ(generator->Generate(Params("hi", 1, 4), r.Events()).status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(TraceCount(), 0u);
}

TEST_F(TinyModelTest, ConcurrentGenerationsAllSealAndVerify) {
  TraceGeneratorOptions options;
  options.max_concurrent = 8;
  auto generator = MakeGenerator(options);
  constexpr int kThreads = 4;
  std::vector<Recorded> recorded(kThreads);
  std::vector<absl::Status> statuses(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      statuses[i] = generator->Generate(Params("Add 1 and 2.", 100 + i, 16), recorded[i].Events()).status();
    });
  }
  for (std::thread& t : threads) t.join();
  const prov::NoteVerifier key = signer_.verifier();
  for (int i = 0; i < kThreads; ++i) {
    ASSERT_TRUE(statuses[i].ok()) << statuses[i];
    std::vector<std::string> records = {recorded[i].started->trace.header_record};
    for (const StepCommittedEvent& s : recorded[i].steps) records.push_back(s.step.encoded_record);
    EXPECT_TRUE(prov::VerifyTrace(records, recorded[i].sealed->sealed.final_checkpoint, key).ok());
  }
  EXPECT_EQ(TraceCount(), static_cast<size_t>(kThreads));
}

// ---------------------------------------------------------------- anchors

TEST_F(TinyModelTest, AnchorIsRecordedOnlyForARootTheLogSigned) {
  auto generator = MakeGenerator();
  Recorded r;
  ASSERT_TRUE(generator->Generate(Params("Hi.", 1, 4), r.Events()).ok());
  ASSERT_TRUE(ledger_->Flush().ok());
  absl::StatusOr<prov::LogCheckpointRow> latest = ledger_->LatestLogCheckpoint();
  ASSERT_TRUE(latest.ok()) << latest.status();
  absl::StatusOr<prov::Checkpoint> cp = prov::OpenCheckpoint(latest->note, signer_.verifier());
  ASSERT_TRUE(cp.ok());

  AnchorRequest a;
  a.log_size = cp->size;
  a.root = std::string(reinterpret_cast<const char*>(cp->root.data()), 32);
  a.chain_id = 31337;
  a.contract_address = "0x" + std::string(40, 'a');
  a.tx_hash = "0x" + std::string(64, 'b');
  a.block_number = 12;
  const absl::Time now = absl::FromUnixMillis(1767225600000);

  AnchorRequest wrong_root = a;
  wrong_root.root[0] ^= 1;
  EXPECT_EQ(RecordVerifiedAnchor(*ledger_, signer_.verifier(), wrong_root, now).status().code(),
            absl::StatusCode::kFailedPrecondition);
  AnchorRequest wrong_size = a;
  wrong_size.log_size = cp->size + 1;
  EXPECT_EQ(RecordVerifiedAnchor(*ledger_, signer_.verifier(), wrong_size, now).status().code(),
            absl::StatusCode::kNotFound);
  for (auto mutate : std::vector<std::function<void(AnchorRequest&)>>{
           [](AnchorRequest& x) { x.contract_address = "0x1234"; },
           [](AnchorRequest& x) { x.tx_hash = std::string(66, 'b'); },
           [](AnchorRequest& x) { x.root = "short"; },
           [](AnchorRequest& x) { x.log_size = 0; },
           [](AnchorRequest& x) { x.chain_id = 0; }}) {
    AnchorRequest bad = a;
    mutate(bad);
    EXPECT_EQ(RecordVerifiedAnchor(*ledger_, signer_.verifier(), bad, now).status().code(),
              absl::StatusCode::kInvalidArgument);
  }
  // Nothing was recorded by the refused requests.
  absl::StatusOr<prov::Bundle> before = ledger_->GetStepBundle(r.started->trace.trace_id, 0);
  ASSERT_TRUE(before.ok());
  EXPECT_FALSE(before->anchor.has_value());

  absl::StatusOr<std::string> note = RecordVerifiedAnchor(*ledger_, signer_.verifier(), a, now);
  ASSERT_TRUE(note.ok()) << note.status();
  EXPECT_EQ(*note, latest->note);
  absl::StatusOr<prov::Bundle> after = ledger_->GetStepBundle(r.started->trace.trace_id, 0);
  ASSERT_TRUE(after.ok());
  ASSERT_TRUE(after->anchor.has_value());
  EXPECT_EQ(after->anchor->tx_hash, a.tx_hash);
  EXPECT_EQ(RecordVerifiedAnchor(*ledger_, signer_.verifier(), a, now).status().code(),
            absl::StatusCode::kAlreadyExists);
}

// ---------------------------------------------------------------- scripted backend

using testing::ScriptedBackend;

inf::Step MakeStep(inf::StepKind kind, const std::string& text, absl::Time start, int ms) {
  inf::Step s;
  s.kind = kind;
  s.text = text;
  for (unsigned char c : text) s.token_ids.push_back(c);
  if (s.token_ids.empty()) s.token_ids.push_back(' ');
  s.logprobs.assign(s.token_ids.size(), -0.5f);
  s.start_time = start;
  s.end_time = start + absl::Milliseconds(ms);
  return s;
}

TEST(ScriptedGenerationTest, CommitsEachStepWithKindTextTimesAndTheAnswer) {
  const absl::Time t0 = absl::FromUnixMillis(1767225600000);
  ScriptedBackend backend({MakeStep(inf::StepKind::kReasoning, "12+34: add units.\n\n", t0 + absl::Milliseconds(5), 10),
                           MakeStep(inf::StepKind::kReasoning, "2+4=6, 1+3=4.\n\n", t0 + absl::Milliseconds(20), 7),
                           MakeStep(inf::StepKind::kAnswer, "46", t0 + absl::Milliseconds(30), 3)});
  prov::Signer signer = testing::TestSigner();
  std::unique_ptr<prov::Ledger> ledger = OpenMemoryLedger(&signer);
  ModelIdentity identity{"scripted", merkle::Sha256Of(std::string_view("w")),
                         merkle::Sha256Of(std::string_view("t"))};
  TraceGeneratorOptions options;
  options.clock = [t0] { return t0; };
  options.max_tokens = 100;
  TraceGenerator generator(&backend, ledger.get(), &signer, identity, options);

  GenerateParams p;
  p.messages = {{"system", "Be exact."}, {"user", "12+34?"}};
  p.greedy = true;
  p.top_k = 5;
  p.seed = 99;
  Recorded r;
  absl::StatusOr<TraceSealedEvent> sealed = generator.Generate(p, r.Events());
  ASSERT_TRUE(sealed.ok()) << sealed.status();

  // What the engine was asked for.
  EXPECT_EQ(backend.last_request.prompt_tokens,
            backend.tokenizer().Encode(inf::FormatR1Prompt("Be exact.", "12+34?"), true));
  EXPECT_TRUE(backend.last_request.sampling.greedy);
  EXPECT_EQ(backend.last_request.sampling.top_k, 5);
  EXPECT_EQ(backend.last_request.sampling.seed, 99u);
  EXPECT_EQ(backend.last_request.max_tokens, 100);

  ASSERT_EQ(r.steps.size(), 3u);
  EXPECT_EQ(r.steps[0].record.kind, prov::StepKind::kReasoning);
  EXPECT_EQ(r.steps[0].record.text, "12+34: add units.\n\n");
  EXPECT_EQ(r.steps[0].record.start_ms, 5u);
  EXPECT_EQ(r.steps[0].record.end_ms, 15u);
  ASSERT_TRUE(r.steps[0].record.logprobs.has_value());
  EXPECT_EQ(r.steps[0].record.logprobs->size(), r.steps[0].record.token_ids.size());
  EXPECT_EQ(r.steps[2].record.kind, prov::StepKind::kAnswer);
  EXPECT_EQ(r.steps[2].record.start_ms, 30u);
  EXPECT_EQ(sealed->answer, "46");
  EXPECT_EQ(r.sealed->answer, "46");
  EXPECT_EQ(sealed->sealed.size, 4u);
  // Salts are fresh per step (hiding commitments).
  EXPECT_NE(r.steps[0].record.salt, r.steps[1].record.salt);
  EXPECT_EQ(r.started->header.start_unix_ms, 1767225600000);
  EXPECT_TRUE(r.started->header.sampling.greedy);
  EXPECT_EQ(r.started->header.sampling.top_k, 5u);
  EXPECT_EQ(r.started->header.device, "scripted device");
  EXPECT_EQ(*r.started->header.prompt, inf::FormatR1Prompt("Be exact.", "12+34?"));
}

TEST(DrainTest, WaitsForRunningGenerationsThenCancelsAndSealsThem) {
  testing::EndlessBackend backend;
  prov::Signer signer = testing::TestSigner();
  std::unique_ptr<prov::Ledger> ledger = OpenMemoryLedger(&signer);
  ModelIdentity identity{"endless", merkle::Sha256Of(std::string_view("w")),
                         merkle::Sha256Of(std::string_view("t"))};
  TraceGeneratorOptions options;
  options.max_tokens = 100000;
  TraceGenerator generator(&backend, ledger.get(), &signer, identity, options);
  EXPECT_TRUE(generator.Drain(absl::ZeroDuration(), absl::ZeroDuration()));  // idle

  TraceGenerator running(&backend, ledger.get(), &signer, identity, options);
  std::atomic<bool> started{false};
  absl::StatusOr<TraceSealedEvent> result;
  std::thread worker([&] {
    GenerateParams p;
    p.prompt = "forever";
    TraceEvents events;
    events.on_started = [&](const TraceStartedEvent&) {
      started = true;
      return absl::OkStatus();
    };
    result = running.Generate(p, events);
  });
  while (!started) absl::SleepFor(absl::Milliseconds(1));
  const absl::Time begin = absl::Now();
  EXPECT_TRUE(running.Drain(absl::Milliseconds(50), absl::Seconds(10)));
  EXPECT_GE(absl::Now() - begin, absl::Milliseconds(50));  // the grace was given
  worker.join();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->finish, inf::FinishReason::kCancelled);
  EXPECT_EQ(ledger->GetTrace(result->trace_id)->state, prov::TraceState::kSealed);
  GenerateParams late;
  late.prompt = "too late";
  EXPECT_EQ(running.Generate(late, TraceEvents()).status().code(), absl::StatusCode::kUnavailable);
}

// ---------------------------------------------------------------- slow callers

// the engine does not wait for a caller's event callback. Generation A
// blocks in its first on_step (as a stream write to a client that does not
// read would); generation B, on the same engine, completes meanwhile. Before
// the fix the engine's lock was held while A's callback ran, so B could only
// finish after A's callback returned.
TEST_F(TinyModelTest, EngineGoesOnWhileAnotherGenerationsEventIsBlocked) {
  TraceGeneratorOptions options;
  options.max_concurrent = 4;
  auto generator = MakeGenerator(options);
  absl::Notification a_blocked, release_a;
  std::atomic<bool> a_released{false};
  absl::Status a_status;
  std::thread a([&] {
    TraceEvents events;
    events.on_step = [&](const StepCommittedEvent&) {
      if (!a_blocked.HasBeenNotified()) {
        a_blocked.Notify();
        // The bound only keeps a broken build from hanging the suite.
        release_a.WaitForNotificationWithTimeout(absl::Seconds(60));
        a_released = true;
      }
      return absl::OkStatus();
    };
    a_status = generator->Generate(Params("Count to ten.", 1, 32), events).status();
  });
  a_blocked.WaitForNotification();
  Recorded b;
  absl::StatusOr<TraceSealedEvent> b_sealed = generator->Generate(Params("Add 1 and 2.", 2, 32), b.Events());
  const bool a_was_still_blocked = !a_released;
  release_a.Notify();
  a.join();
  ASSERT_TRUE(b_sealed.ok()) << b_sealed.status();
  EXPECT_TRUE(a_was_still_blocked) << "B only finished after A's event callback returned";
  EXPECT_TRUE(a_status.ok()) << a_status;
  EXPECT_EQ(b.order.back(), "sealed");
}

// a caller that falls more than max_pending_steps behind is given up:
// the engine stops, abort_stream unblocks the callback, the trace is sealed
// with the steps committed so far, and Generate says why.
TEST(SlowCallerTest, BacklogOverTheLimitStopsTheGenerationAndSealsTheTrace) {
  testing::EndlessBackend backend(absl::Microseconds(100));
  prov::Signer signer = testing::TestSigner();
  std::unique_ptr<prov::Ledger> ledger = OpenMemoryLedger(&signer);
  ModelIdentity identity{"endless", merkle::Sha256Of(std::string_view("w")),
                         merkle::Sha256Of(std::string_view("t"))};
  TraceGeneratorOptions options;
  options.max_tokens = 100000;
  options.max_pending_steps = 3;
  options.max_event_wait = absl::InfiniteDuration();
  TraceGenerator generator(&backend, ledger.get(), &signer, identity, options);

  absl::Notification aborted;
  std::atomic<int> abort_calls{0};
  GenerateParams p;
  p.prompt = "forever";
  p.abort_stream = [&] {
    ++abort_calls;
    aborted.Notify();
  };
  std::string trace_id;
  int steps_seen = 0;
  TraceEvents events;
  events.on_started = [&](const TraceStartedEvent& e) {
    trace_id = e.trace.trace_id;
    return absl::OkStatus();
  };
  events.on_step = [&](const StepCommittedEvent&) {
    ++steps_seen;
    // A write that only returns when the call is cancelled.
    aborted.WaitForNotificationWithTimeout(absl::Seconds(60));
    return absl::CancelledError("stream write failed");
  };
  absl::StatusOr<TraceSealedEvent> result = generator.Generate(p, events);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kResourceExhausted) << result.status();
  EXPECT_THAT(std::string(result.status().message()), HasSubstr("3 steps were waiting to be sent"));
  EXPECT_EQ(abort_calls, 1);
  EXPECT_EQ(steps_seen, 1);
  absl::StatusOr<prov::TraceRecord> stored = ledger->GetTrace(trace_id);
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->state, prov::TraceState::kSealed);
  EXPECT_EQ(stored->size, 2u);  // header + the one step that was taken
  EXPECT_EQ(generator.in_flight(), 0);
}

TEST(SlowCallerTest, EventBlockedPastMaxEventWaitIsGivenUp) {
  const absl::Time t0 = absl::Now();
  ScriptedBackend backend({MakeStep(inf::StepKind::kReasoning, "one.\n\n", t0, 4),
                           MakeStep(inf::StepKind::kAnswer, "two", t0, 3)});
  prov::Signer signer = testing::TestSigner();
  std::unique_ptr<prov::Ledger> ledger = OpenMemoryLedger(&signer);
  ModelIdentity identity{"scripted", merkle::Sha256Of(std::string_view("w")),
                         merkle::Sha256Of(std::string_view("t"))};
  TraceGeneratorOptions options;
  options.max_event_wait = absl::Milliseconds(50);
  TraceGenerator generator(&backend, ledger.get(), &signer, identity, options);

  absl::Notification aborted;
  GenerateParams p;
  p.prompt = "hi";
  p.abort_stream = [&] { aborted.Notify(); };
  std::string trace_id;
  bool step_seen = false;
  TraceEvents events;
  events.on_started = [&](const TraceStartedEvent& e) {
    trace_id = e.trace.trace_id;
    aborted.WaitForNotificationWithTimeout(absl::Seconds(60));
    return absl::CancelledError("stream write failed");
  };
  events.on_step = [&](const StepCommittedEvent&) {
    step_seen = true;
    return absl::OkStatus();
  };
  absl::StatusOr<TraceSealedEvent> result = generator.Generate(p, events);
  EXPECT_TRUE(aborted.HasBeenNotified());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kResourceExhausted) << result.status();
  EXPECT_THAT(std::string(result.status().message()), HasSubstr("--max-event-wait"));
  EXPECT_FALSE(step_seen);
  absl::StatusOr<prov::TraceRecord> stored = ledger->GetTrace(trace_id);
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->state, prov::TraceState::kSealed);
  EXPECT_EQ(stored->size, 1u);  // the engine's steps came after the stall: not committed
}

// At shutdown (Drain's cancel phase) a callback blocked on a client that
// does not read is given up after a second, whatever max_event_wait says, so
// the drain ends with every trace sealed.
TEST(SlowCallerTest, DrainGivesUpACallbackBlockedOnAStalledClient) {
  testing::EndlessBackend backend;
  prov::Signer signer = testing::TestSigner();
  std::unique_ptr<prov::Ledger> ledger = OpenMemoryLedger(&signer);
  ModelIdentity identity{"endless", merkle::Sha256Of(std::string_view("w")),
                         merkle::Sha256Of(std::string_view("t"))};
  TraceGeneratorOptions options;
  options.max_tokens = 100000;
  options.max_event_wait = absl::InfiniteDuration();
  TraceGenerator generator(&backend, ledger.get(), &signer, identity, options);

  absl::Notification blocked, aborted;
  GenerateParams p;
  p.prompt = "forever";
  p.abort_stream = [&] { aborted.Notify(); };
  std::string trace_id;
  TraceEvents events;
  events.on_started = [&](const TraceStartedEvent& e) {
    trace_id = e.trace.trace_id;
    blocked.Notify();
    aborted.WaitForNotificationWithTimeout(absl::Seconds(60));
    return absl::CancelledError("stream write failed");
  };
  absl::StatusOr<TraceSealedEvent> result;
  std::thread worker([&] { result = generator.Generate(p, events); });
  blocked.WaitForNotification();
  EXPECT_TRUE(generator.Drain(absl::ZeroDuration(), absl::Seconds(30)));
  worker.join();
  EXPECT_TRUE(aborted.HasBeenNotified());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable) << result.status();
  EXPECT_THAT(std::string(result.status().message()), HasSubstr("shutting down"));
  EXPECT_EQ(ledger->GetTrace(trace_id)->state, prov::TraceState::kSealed);
}

}  // namespace
}  // namespace stepproof::service
