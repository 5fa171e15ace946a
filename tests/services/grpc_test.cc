// The gRPC service in process: a real server on 127.0.0.1 (port 0) and a real
// channel. Generate's event order, every read RPC (results checked with the
// offline verifier), error codes, token auth, the loopback/TLS refusal, TLS
// and mTLS, health and reflection, cancellation when the client goes away,
// deadlines, admission, and shutdown with a generation in flight.
#include <sys/wait.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "inference/backend.h"
#include "inference/chat_template.h"
#include "merkle/hash.h"
#include "provenance/checkpoint.h"
#include "provenance/log/ledger.h"
#include "provenance/log/memory_store.h"
#include "provenance/promise.h"
#include "provenance/verifier.h"
#include "provenance/verifier_key.h"
#include "services/auth.h"
#include "services/event_log.h"
#include "services/generation.h"
#include "services/grpc_server.h"
#include "services/model_identity.h"
#include "services/stepproof_service.h"
#include "stepproof/v1/stepproof.grpc.pb.h"
#include "tests/services/fake_backends.h"
#include "tests/services/test_env.h"

namespace stepproof::service {
namespace {

namespace inf = ::stepproof::inference;
namespace prov = ::stepproof::provenance;
namespace v1 = ::stepproof::v1;
using ::testing::HasSubstr;

merkle::Hash ToHash(const std::string& bytes) {
  merkle::Hash h{};
  EXPECT_EQ(bytes.size(), 32u);
  std::copy_n(bytes.begin(), std::min<size_t>(32, bytes.size()), h.begin());
  return h;
}

std::vector<merkle::Hash> ToHashes(const google::protobuf::RepeatedPtrField<std::string>& in) {
  std::vector<merkle::Hash> out;
  for (const std::string& b : in) out.push_back(ToHash(b));
  return out;
}

struct Options {
  bool slow = false;  // EndlessBackend instead of the tiny model
  BearerAuth auth;
  int32_t max_concurrent = 4;
  int32_t max_tokens = 64;
  int64_t max_prompt_bytes = 4096;
};

Options SlowSetup(int32_t max_tokens, int32_t max_concurrent = 4) {
  Options o;
  o.slow = true;
  o.max_tokens = max_tokens;
  o.max_concurrent = max_concurrent;
  return o;
}

// Shared by all tests: one tiny model file written once. The tests that must
// catch a generation mid-way use EndlessBackend (a token every 2 ms, never
// an end-of-sequence) instead: a random model may end at any token.
class ServiceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = testing::FreshDir("grpc_models").release();
    fast_model_ = new std::string(testing::WriteTinyModel(*dir_, 1, 2048));
    ASSERT_FALSE(fast_model_->empty());
  }
  static void TearDownTestSuite() {
    delete dir_;
    delete fast_model_;
  }

  void TearDown() override { StopServer(); }

  void StartServer(Options options = Options()) {
    ModelIdentity identity{"endless", merkle::Sha256Of(std::string_view("weights")),
                           merkle::Sha256Of(std::string_view("tokenizer"))};
    if (options.slow) {
      backend_ = std::make_unique<testing::EndlessBackend>();
    } else {
      absl::StatusOr<std::unique_ptr<inf::Backend>> backend =
          inf::OpenCpuBackend(*fast_model_, inf::CpuBackendOptions{1, 0});
      ASSERT_TRUE(backend.ok()) << backend.status();
      backend_ = *std::move(backend);
      absl::StatusOr<ModelIdentity> read = ReadModelIdentity(*fast_model_);
      ASSERT_TRUE(read.ok()) << read.status();
      identity = *read;
    }
    prov::LedgerOptions ledger_options;
    ledger_options.log_origin = testing::kLogOrigin;
    ledger_options.sequencer.background = false;
    absl::StatusOr<std::unique_ptr<prov::Ledger>> ledger =
        prov::Ledger::Open(prov::NewInMemoryProvenanceStore(), &signer_, ledger_options);
    ASSERT_TRUE(ledger.ok()) << ledger.status();
    ledger_ = *std::move(ledger);
    TraceGeneratorOptions generator_options;
    generator_options.max_concurrent = options.max_concurrent;
    generator_options.max_tokens = options.max_tokens;
    generator_options.max_prompt_bytes = options.max_prompt_bytes;
    generator_ = std::make_unique<TraceGenerator>(backend_.get(), ledger_.get(), &signer_,
                                                  identity, generator_options);
    log_ = std::make_unique<EventLog>([this](const std::string& line) {
      absl::MutexLock lock(&log_mu_);
      log_lines_.push_back(line);
    });
    service_ = std::make_unique<StepProofService>(generator_.get(), ledger_.get(), &signer_,
                                                  testing::kLogOrigin, std::move(options.auth),
                                                  log_.get());
    GrpcServerOptions server_options;
    server_options.listen = "127.0.0.1:0";
    absl::StatusOr<std::unique_ptr<GrpcServer>> server =
        GrpcServer::Start(server_options, service_.get());
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    ASSERT_TRUE(absl::StartsWith(server_->address(), "127.0.0.1:"));
    ASSERT_NE(server_->address(), "127.0.0.1:0");
    channel_ = grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials());
    stub_ = v1::StepProof::NewStub(channel_);
  }

  void StopServer() {
    if (server_) server_->Shutdown(absl::Seconds(1));
    server_.reset();
    service_.reset();
    generator_.reset();
    ledger_.reset();
    backend_.reset();
  }

  struct Streamed {
    std::vector<v1::GenerateEvent> events;
    grpc::Status status;
    const v1::TraceStarted& started() const { return events.front().started(); }
    const v1::TraceSealed& sealed() const { return events.back().sealed(); }
  };

  Streamed Generate(const v1::GenerateRequest& request, const std::string& token = "") {
    grpc::ClientContext context;
    if (!token.empty()) context.AddMetadata("authorization", "Bearer " + token);
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
    Streamed out;
    std::unique_ptr<grpc::ClientReader<v1::GenerateEvent>> reader = stub_->Generate(&context, request);
    v1::GenerateEvent event;
    while (reader->Read(&event)) out.events.push_back(event);
    out.status = reader->Finish();
    return out;
  }

  static v1::GenerateRequest Request(const std::string& prompt, uint64_t seed, uint32_t max_tokens) {
    v1::GenerateRequest r;
    r.set_prompt(prompt);
    r.set_seed(seed);
    r.set_max_tokens(max_tokens);
    return r;
  }

  std::vector<std::string> LogLines() {
    absl::MutexLock lock(&log_mu_);
    return log_lines_;
  }

  // Waits until the stored trace is sealed (or `timeout`).
  bool WaitSealed(const std::string& trace_id, absl::Duration timeout) {
    const absl::Time end = absl::Now() + timeout;
    while (absl::Now() < end) {
      absl::StatusOr<prov::TraceRecord> t = ledger_->GetTrace(trace_id);
      if (t.ok() && t->state == prov::TraceState::kSealed) return true;
      absl::SleepFor(absl::Milliseconds(20));
    }
    return false;
  }

  uint64_t StoredTokenCount(const std::string& trace_id) {
    absl::StatusOr<prov::TraceRecord> t = ledger_->GetTrace(trace_id);
    EXPECT_TRUE(t.ok());
    uint64_t n = 0;
    for (uint64_t i = 1; t.ok() && i < t->size; ++i) {
      absl::StatusOr<prov::StepRow> row = ledger_->store().GetStep(trace_id, i);
      EXPECT_TRUE(row.ok());
      if (row.ok()) n += prov::DecodeStepRecord(row->encoded_record)->token_ids.size();
    }
    return n;
  }

  static testing::TempDir* dir_;
  static std::string* fast_model_;

  prov::Signer signer_ = testing::TestSigner();
  std::unique_ptr<inf::Backend> backend_;
  std::unique_ptr<prov::Ledger> ledger_;
  std::unique_ptr<TraceGenerator> generator_;
  absl::Mutex log_mu_;
  std::vector<std::string> log_lines_ ABSL_GUARDED_BY(log_mu_);
  std::unique_ptr<EventLog> log_;
  std::unique_ptr<StepProofService> service_;
  std::unique_ptr<GrpcServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::StepProof::Stub> stub_;
};

testing::TempDir* ServiceTest::dir_ = nullptr;
std::string* ServiceTest::fast_model_ = nullptr;

// ---------------------------------------------------------------- Generate

TEST_F(ServiceTest, GenerateStreamsStartedThenStepsThenSealedAndItAllVerifies) {
  StartServer();
  Streamed s = Generate(Request("What is 12+34? SECRET-PROMPT-TEXT", 7, 48));
  ASSERT_TRUE(s.status.ok()) << s.status.error_message();
  ASSERT_GE(s.events.size(), 2u);
  ASSERT_TRUE(s.events.front().has_started());
  ASSERT_TRUE(s.events.back().has_sealed());
  for (size_t i = 1; i + 1 < s.events.size(); ++i) ASSERT_TRUE(s.events[i].has_step()) << i;

  const prov::NoteVerifier key = signer_.verifier();
  const v1::TraceStarted& started = s.started();
  EXPECT_EQ(ToHash(started.header_leaf_hash()), merkle::HashLeaf(started.header_record()));
  EXPECT_EQ(started.header().prompt(),
            inf::FormatR1Prompt("", "What is 12+34? SECRET-PROMPT-TEXT"));
  EXPECT_EQ(started.header().sampling().seed(), 7u);
  EXPECT_EQ(started.header().sampling().max_new_tokens(), 48u);
  EXPECT_EQ(started.header().key_id(), signer_.key_id());
  EXPECT_TRUE(started.prompt_salt().empty());
  absl::StatusOr<prov::Checkpoint> first = prov::OpenCheckpoint(started.signed_checkpoint(), key);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->size, 1u);

  std::vector<std::string> records = {started.header_record()};
  uint64_t tokens = 0;
  for (size_t i = 1; i + 1 < s.events.size(); ++i) {
    const v1::StepCommitted& step = s.events[i].step();
    EXPECT_EQ(step.leaf_index(), i);
    EXPECT_EQ(ToHash(step.leaf_hash()), merkle::HashLeaf(step.record()));
    absl::StatusOr<prov::Checkpoint> cp = prov::OpenCheckpoint(step.signed_checkpoint(), key);
    ASSERT_TRUE(cp.ok()) << cp.status();
    EXPECT_EQ(cp->size, i + 1);
    absl::StatusOr<prov::StepRecord> record = prov::DecodeStepRecord(step.record());
    ASSERT_TRUE(record.ok());
    EXPECT_EQ(step.step().text(), record->text);
    EXPECT_EQ(step.step().index(), i);
    EXPECT_EQ(step.step().trace_id(), started.trace_id());
    EXPECT_EQ(static_cast<size_t>(step.step().token_ids_size()), record->token_ids.size());
    tokens += record->token_ids.size();
    records.push_back(step.record());
  }
  const v1::TraceSealed& sealed = s.sealed();
  EXPECT_EQ(sealed.size(), records.size());
  EXPECT_TRUE(prov::VerifyTrace(records, sealed.final_checkpoint(), key).ok());
  EXPECT_TRUE(prov::VerifyPromise(sealed.promise(), key, sealed.final_checkpoint()).ok());
  const uint64_t eos = sealed.finish_reason() == "end_of_sequence" ? 1 : 0;
  EXPECT_EQ(tokens + eos, sealed.generated_tokens());
  EXPECT_THAT(sealed.finish_reason(), ::testing::AnyOf("end_of_sequence", "max_tokens"));

  // The log names the trace but never the prompt.
  bool saw_sealed = false;
  for (const std::string& line : LogLines()) {
    EXPECT_FALSE(absl::StrContains(line, "SECRET-PROMPT-TEXT")) << line;
    if (absl::StrContains(line, "event=generate.sealed") &&
        absl::StrContains(line, started.trace_id())) {
      saw_sealed = true;
    }
  }
  EXPECT_TRUE(saw_sealed);
}

TEST_F(ServiceTest, GenerateAcceptsChatMessagesAndWithheldPrompts) {
  StartServer();
  v1::GenerateRequest r = Request("", 3, 8);
  v1::ChatMessage* m = r.add_messages();
  m->set_role("system");
  m->set_content("Be exact.");
  m = r.add_messages();
  m->set_role("user");
  m->set_content("2+2?");
  r.set_withhold_prompt(true);
  Streamed s = Generate(r);
  ASSERT_TRUE(s.status.ok()) << s.status.error_message();
  const v1::TraceStarted& started = s.started();
  EXPECT_FALSE(started.header().has_prompt());
  ASSERT_EQ(started.prompt_salt().size(), 32u);
  EXPECT_EQ(ToHash(started.header().prompt_commitment()),
            merkle::Sha256Of(std::string_view(started.prompt_salt() +
                                              inf::FormatR1Prompt("Be exact.", "2+2?"))));
}

// ---------------------------------------------------------------- reads

TEST_F(ServiceTest, ReadRpcsServeWhatGenerateCommitted) {
  StartServer();
  std::vector<Streamed> runs;
  for (int i = 0; i < 3; ++i) {
    runs.push_back(Generate(Request("Add 2 and 3.", 20 + i, 16)));
    ASSERT_TRUE(runs.back().status.ok()) << runs.back().status.error_message();
  }
  ASSERT_TRUE(ledger_->Flush().ok());

  // The key, as a third party gets it.
  grpc::ClientContext kc;
  v1::GetVerifierKeyResponse key_response;
  ASSERT_TRUE(stub_->GetVerifierKey(&kc, v1::GetVerifierKeyRequest(), &key_response).ok());
  EXPECT_EQ(key_response.verifier_key(), signer_.verifier_key());
  EXPECT_EQ(key_response.log_origin(), testing::kLogOrigin);
  absl::StatusOr<prov::NoteVerifier> key = prov::NoteVerifier::FromVerifierKey(key_response.verifier_key());
  ASSERT_TRUE(key.ok()) << key.status();

  // GetTrace with steps returns the streamed records byte for byte.
  const Streamed& run = runs[1];
  const std::string id = run.started().trace_id();
  grpc::ClientContext tc;
  v1::GetTraceRequest trace_request;
  trace_request.set_trace_id(id);
  trace_request.set_include_steps(true);
  v1::GetTraceResponse trace;
  ASSERT_TRUE(stub_->GetTrace(&tc, trace_request, &trace).ok());
  EXPECT_EQ(trace.trace().state(), v1::TRACE_STATE_SEALED);
  EXPECT_EQ(trace.trace().final_checkpoint(), run.sealed().final_checkpoint());
  EXPECT_TRUE(trace.trace().has_log_index());
  EXPECT_EQ(trace.header_record(), run.started().header_record());
  EXPECT_EQ(trace.trace().header().sampling().seed(), 21u);
  ASSERT_EQ(static_cast<size_t>(trace.steps_size()), run.events.size() - 1);
  EXPECT_EQ(trace.steps(0).record(), run.started().header_record());
  EXPECT_EQ(trace.steps(0).step().kind(), v1::STEP_KIND_HEADER);
  for (int i = 1; i < trace.steps_size(); ++i) {
    EXPECT_EQ(trace.steps(i).record(), run.events[i].step().record());
    EXPECT_EQ(trace.steps(i).leaf_hash(), run.events[i].step().leaf_hash());
  }

  // ListTraces: newest first, paged.
  grpc::ClientContext lc1;
  v1::ListTracesRequest list;
  list.set_page_size(2);
  v1::ListTracesResponse page1;
  ASSERT_TRUE(stub_->ListTraces(&lc1, list, &page1).ok());
  ASSERT_EQ(page1.traces_size(), 2);
  EXPECT_EQ(page1.traces(0).trace_id(), runs[2].started().trace_id());
  EXPECT_EQ(page1.traces(1).trace_id(), runs[1].started().trace_id());
  ASSERT_FALSE(page1.next_page_token().empty());
  grpc::ClientContext lc2;
  list.set_page_token(page1.next_page_token());
  v1::ListTracesResponse page2;
  ASSERT_TRUE(stub_->ListTraces(&lc2, list, &page2).ok());
  ASSERT_EQ(page2.traces_size(), 1);
  EXPECT_EQ(page2.traces(0).trace_id(), runs[0].started().trace_id());
  EXPECT_TRUE(page2.next_page_token().empty());

  // GetStepProof: every step's bundle verifies offline with the served key.
  for (uint64_t i = 0; i < trace.trace().size(); ++i) {
    grpc::ClientContext pc;
    v1::GetStepProofRequest proof_request;
    proof_request.set_trace_id(id);
    proof_request.set_index(i);
    v1::GetStepProofResponse proof;
    ASSERT_TRUE(stub_->GetStepProof(&pc, proof_request, &proof).ok());
    EXPECT_TRUE(proof.in_log());
    EXPECT_FALSE(proof.anchored());
    absl::Status verified = prov::VerifyBundleJson(proof.bundle_json(), *key);
    EXPECT_TRUE(verified.ok()) << i << ": " << verified;
    // A flipped byte in the text breaks it (the check can fail).
    std::string tampered = proof.bundle_json();
    size_t at = tampered.find("\"leaf_index\"");
    ASSERT_NE(at, std::string::npos);
    tampered.replace(tampered.find_first_of("0123456789", at), 1, "7");
    EXPECT_FALSE(prov::VerifyBundleJson(tampered, *key).ok()) << i;
  }

  // GetTraceConsistency from the first checkpoint to the last.
  grpc::ClientContext cc;
  v1::GetTraceConsistencyRequest consistency_request;
  consistency_request.set_trace_id(id);
  consistency_request.set_size1(1);
  consistency_request.set_size2(trace.trace().size());
  v1::GetTraceConsistencyResponse consistency;
  ASSERT_TRUE(stub_->GetTraceConsistency(&cc, consistency_request, &consistency).ok());
  EXPECT_EQ(consistency.checkpoint1(), run.started().signed_checkpoint());
  EXPECT_TRUE(prov::VerifyTraceConsistency(consistency.checkpoint1(), consistency.checkpoint2(),
                                           ToHashes(consistency.proof()), *key)
                  .ok());

  // GetLogCheckpoint: one batch of three.
  grpc::ClientContext gc;
  v1::GetLogCheckpointResponse log_checkpoint;
  ASSERT_TRUE(stub_->GetLogCheckpoint(&gc, v1::GetLogCheckpointRequest(), &log_checkpoint).ok());
  EXPECT_EQ(log_checkpoint.size(), 3u);
  absl::StatusOr<prov::Checkpoint> parsed = prov::OpenCheckpoint(log_checkpoint.checkpoint(), *key);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->origin, testing::kLogOrigin);
  EXPECT_EQ(ToHash(log_checkpoint.root()), parsed->root);

  // GetLogInclusion by trace and by leaf index.
  grpc::ClientContext ic;
  v1::GetLogInclusionRequest inclusion_request;
  inclusion_request.set_trace_id(id);
  v1::GetLogInclusionResponse inclusion;
  ASSERT_TRUE(stub_->GetLogInclusion(&ic, inclusion_request, &inclusion).ok());
  EXPECT_EQ(inclusion.leaf(), run.sealed().final_checkpoint());
  EXPECT_EQ(inclusion.trace_id(), id);
  EXPECT_EQ(inclusion.tree_size(), 3u);
  EXPECT_EQ(inclusion.log_checkpoint(), log_checkpoint.checkpoint());
  EXPECT_TRUE(prov::VerifyLogInclusion(inclusion.leaf(), inclusion.leaf_index(),
                                       ToHashes(inclusion.proof()), inclusion.log_checkpoint(), *key)
                  .ok());
  grpc::ClientContext ic2;
  v1::GetLogInclusionRequest by_index;
  by_index.set_leaf_index(inclusion.leaf_index());
  v1::GetLogInclusionResponse inclusion2;
  ASSERT_TRUE(stub_->GetLogInclusion(&ic2, by_index, &inclusion2).ok());
  EXPECT_EQ(inclusion2.leaf(), inclusion.leaf());

  // A fourth trace, a second batch, and consistency between the two.
  ASSERT_TRUE(Generate(Request("Add 4 and 5.", 30, 8)).status.ok());
  ASSERT_TRUE(ledger_->Flush().ok());
  grpc::ClientContext lcc;
  v1::GetLogConsistencyRequest log_consistency_request;
  log_consistency_request.set_size1(3);
  log_consistency_request.set_size2(4);
  v1::GetLogConsistencyResponse log_consistency;
  ASSERT_TRUE(stub_->GetLogConsistency(&lcc, log_consistency_request, &log_consistency).ok());
  EXPECT_EQ(log_consistency.checkpoint1(), log_checkpoint.checkpoint());
  EXPECT_TRUE(prov::VerifyLogConsistency(log_consistency.checkpoint1(), log_consistency.checkpoint2(),
                                         ToHashes(log_consistency.proof()), *key)
                  .ok());
  grpc::ClientContext gc2;
  v1::GetLogCheckpointRequest at3;
  at3.set_size(3);
  v1::GetLogCheckpointResponse old_checkpoint;
  ASSERT_TRUE(stub_->GetLogCheckpoint(&gc2, at3, &old_checkpoint).ok());
  EXPECT_EQ(old_checkpoint.checkpoint(), log_checkpoint.checkpoint());
}

// ---------------------------------------------------------------- errors

TEST_F(ServiceTest, BadRequestsGetCodesAndMessagesThatNameTheProblem) {
  Options small;
  small.max_prompt_bytes = 100;
  StartServer(std::move(small));
  Streamed ok = Generate(Request("Hi.", 1, 4));
  ASSERT_TRUE(ok.status.ok());
  const std::string id = ok.started().trace_id();

  struct Case {
    std::string name;
    std::function<grpc::Status()> call;
    grpc::StatusCode code;
    std::string message;
  };
  auto get_trace = [this](const std::string& trace_id) {
    grpc::ClientContext c;
    v1::GetTraceRequest r;
    r.set_trace_id(trace_id);
    v1::GetTraceResponse out;
    return stub_->GetTrace(&c, r, &out);
  };
  std::vector<Case> cases = {
      {"malformed trace id", [&] { return get_trace("not-hex"); },
       grpc::StatusCode::INVALID_ARGUMENT, "trace_id"},
      {"unknown trace", [&] { return get_trace(std::string(32, '0')); },
       grpc::StatusCode::NOT_FOUND, ""},
      {"step out of range",
       [&] {
         grpc::ClientContext c;
         v1::GetStepProofRequest r;
         r.set_trace_id(id);
         r.set_index(999);
         v1::GetStepProofResponse out;
         return stub_->GetStepProof(&c, r, &out);
       },
       grpc::StatusCode::NOT_FOUND, ""},
      {"page token",
       [&] {
         grpc::ClientContext c;
         v1::ListTracesRequest r;
         r.set_page_token("garbage");
         v1::ListTracesResponse out;
         return stub_->ListTraces(&c, r, &out);
       },
       grpc::StatusCode::INVALID_ARGUMENT, "page token"},
      {"page size",
       [&] {
         grpc::ClientContext c;
         v1::ListTracesRequest r;
         r.set_page_size(-1);
         v1::ListTracesResponse out;
         return stub_->ListTraces(&c, r, &out);
       },
       grpc::StatusCode::INVALID_ARGUMENT, "page_size"},
      {"trace consistency sizes",
       [&] {
         grpc::ClientContext c;
         v1::GetTraceConsistencyRequest r;
         r.set_trace_id(id);
         r.set_size1(2);
         r.set_size2(1);
         v1::GetTraceConsistencyResponse out;
         return stub_->GetTraceConsistency(&c, r, &out);
       },
       grpc::StatusCode::INVALID_ARGUMENT, ""},
      {"log checkpoint before any batch",
       [&] {
         grpc::ClientContext c;
         v1::GetLogCheckpointResponse out;
         return stub_->GetLogCheckpoint(&c, v1::GetLogCheckpointRequest(), &out);
       },
       grpc::StatusCode::NOT_FOUND, "no checkpoint yet"},
      {"log inclusion without leaf",
       [&] {
         grpc::ClientContext c;
         v1::GetLogInclusionResponse out;
         return stub_->GetLogInclusion(&c, v1::GetLogInclusionRequest(), &out);
       },
       grpc::StatusCode::INVALID_ARGUMENT, "trace_id or leaf_index"},
      {"log inclusion of a trace not yet in the log",
       [&] {
         grpc::ClientContext c;
         v1::GetLogInclusionRequest r;
         r.set_trace_id(id);
         v1::GetLogInclusionResponse out;
         return stub_->GetLogInclusion(&c, r, &out);
       },
       grpc::StatusCode::NOT_FOUND, ""},
      {"log consistency sizes",
       [&] {
         grpc::ClientContext c;
         v1::GetLogConsistencyRequest r;
         r.set_size1(0);
         r.set_size2(1);
         v1::GetLogConsistencyResponse out;
         return stub_->GetLogConsistency(&c, r, &out);
       },
       grpc::StatusCode::INVALID_ARGUMENT, ""},
      {"empty prompt", [&] { return Generate(Request("", 1, 4)).status; },
       grpc::StatusCode::INVALID_ARGUMENT, "prompt is empty"},
      {"oversize prompt", [&] { return Generate(Request(std::string(101, 'x'), 1, 4)).status; },
       grpc::StatusCode::RESOURCE_EXHAUSTED, "--max-prompt-bytes"},
      {"temperature",
       [&] {
         v1::GenerateRequest r = Request("hi", 1, 4);
         r.mutable_sampling()->set_temperature(11.0f);
         return Generate(r).status;
       },
       grpc::StatusCode::INVALID_ARGUMENT, "temperature"},
      {"max tokens", [&] { return Generate(Request("hi", 1, 65)).status; },
       grpc::StatusCode::INVALID_ARGUMENT, "max_tokens"},
      {"chat role",
       [&] {
         v1::GenerateRequest r = Request("", 1, 4);
         v1::ChatMessage* m = r.add_messages();
         m->set_role("robot");
         m->set_content("x");
         return Generate(r).status;
       },
       grpc::StatusCode::INVALID_ARGUMENT, "messages[0].role"},
      {"anchor of unknown size",
       [&] {
         grpc::ClientContext c;
         v1::RecordAnchorRequest r;
         r.set_log_size(99);
         r.set_root(std::string(32, 'r'));
         r.set_chain_id(1);
         r.set_contract_address("0x" + std::string(40, 'a'));
         r.set_tx_hash("0x" + std::string(64, 'b'));
         v1::RecordAnchorResponse out;
         return stub_->RecordAnchor(&c, r, &out);
       },
       grpc::StatusCode::NOT_FOUND, "size 99"},
  };
  for (const Case& c : cases) {
    grpc::Status s = c.call();
    EXPECT_EQ(s.error_code(), c.code) << c.name << ": " << s.error_message();
    EXPECT_THAT(s.error_message(), HasSubstr(c.message)) << c.name;
  }
  // The server is still serving after all that.
  EXPECT_TRUE(get_trace(id).ok());
}

TEST_F(ServiceTest, RecordAnchorChecksTheRootAgainstTheSignedLogCheckpoint) {
  StartServer();
  ASSERT_TRUE(Generate(Request("Hi.", 1, 4)).status.ok());
  ASSERT_TRUE(ledger_->Flush().ok());
  grpc::ClientContext gc;
  v1::GetLogCheckpointResponse checkpoint;
  ASSERT_TRUE(stub_->GetLogCheckpoint(&gc, v1::GetLogCheckpointRequest(), &checkpoint).ok());

  v1::RecordAnchorRequest r;
  r.set_log_size(checkpoint.size());
  r.set_root(checkpoint.root());
  r.set_chain_id(31337);
  r.set_contract_address("0x" + std::string(40, 'c'));
  r.set_tx_hash("0x" + std::string(64, 'd'));
  r.set_block_number(5);
  v1::RecordAnchorRequest wrong = r;
  std::string root = wrong.root();
  root[31] ^= 0x01;
  wrong.set_root(root);
  grpc::ClientContext c1;
  v1::RecordAnchorResponse out;
  grpc::Status s = stub_->RecordAnchor(&c1, wrong, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(s.error_message(), HasSubstr("root does not match"));

  grpc::ClientContext c2;
  ASSERT_TRUE(stub_->RecordAnchor(&c2, r, &out).ok());
  EXPECT_EQ(out.checkpoint(), checkpoint.checkpoint());
  grpc::ClientContext c3;
  EXPECT_EQ(stub_->RecordAnchor(&c3, r, &out).error_code(), grpc::StatusCode::ALREADY_EXISTS);
}

// ---------------------------------------------------------------- auth

TEST_F(ServiceTest, TokenGuardsGenerateAndRecordAnchorButNotReads) {
  Options with_token;
  with_token.auth = BearerAuth("tok-SECRET-123");
  StartServer(std::move(with_token));
  EXPECT_EQ(Generate(Request("Hi.", 1, 4)).status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Generate(Request("Hi.", 1, 4), "wrong").status.error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  Streamed ok = Generate(Request("Hi.", 1, 4), "tok-SECRET-123");
  ASSERT_TRUE(ok.status.ok()) << ok.status.error_message();

  grpc::ClientContext kc;
  v1::GetVerifierKeyResponse key;
  EXPECT_TRUE(stub_->GetVerifierKey(&kc, v1::GetVerifierKeyRequest(), &key).ok());
  grpc::ClientContext tc;
  v1::GetTraceRequest tr;
  tr.set_trace_id(ok.started().trace_id());
  v1::GetTraceResponse trace;
  EXPECT_TRUE(stub_->GetTrace(&tc, tr, &trace).ok());

  v1::RecordAnchorRequest anchor;
  anchor.set_log_size(1);
  grpc::ClientContext ac;
  v1::RecordAnchorResponse out;
  EXPECT_EQ(stub_->RecordAnchor(&ac, anchor, &out).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  grpc::ClientContext ac2;
  ac2.AddMetadata("authorization", "Bearer tok-SECRET-123");
  // Past the token check, the request itself is judged.
  EXPECT_EQ(stub_->RecordAnchor(&ac2, anchor, &out).error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  for (const std::string& line : LogLines()) {
    EXPECT_FALSE(absl::StrContains(line, "tok-SECRET")) << line;
  }
}

// ---------------------------------------------------------------- listening

TEST_F(ServiceTest, RefusesNonLoopbackAddressWithoutTlsUnlessInsecure) {
  StartServer();
  GrpcServerOptions open;
  open.listen = "0.0.0.0:0";
  absl::StatusOr<std::unique_ptr<GrpcServer>> refused = GrpcServer::Start(open, service_.get());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("TLS"));

  // A second service object: one service may be registered with one server.
  StepProofService second(generator_.get(), ledger_.get(), &signer_, testing::kLogOrigin,
                          BearerAuth(), log_.get());
  open.insecure = true;
  absl::StatusOr<std::unique_ptr<GrpcServer>> insecure = GrpcServer::Start(open, &second);
  ASSERT_TRUE(insecure.ok()) << insecure.status();
  const std::string port = (*insecure)->address().substr((*insecure)->address().rfind(':') + 1);
  auto stub = v1::StepProof::NewStub(
      grpc::CreateChannel("127.0.0.1:" + port, grpc::InsecureChannelCredentials()));
  grpc::ClientContext c;
  v1::GetVerifierKeyResponse key;
  EXPECT_TRUE(stub->GetVerifierKey(&c, v1::GetVerifierKeyRequest(), &key).ok());
  (*insecure)->Shutdown(absl::Seconds(1));

  // A unix socket counts as local: no TLS needed.
  auto sock_dir = testing::FreshDir("unix_socket");
  StepProofService fourth(generator_.get(), ledger_.get(), &signer_, testing::kLogOrigin,
                          BearerAuth(), log_.get());
  GrpcServerOptions unix_socket;
  unix_socket.listen = "unix:" + (*sock_dir / "sp.sock").string();
  absl::StatusOr<std::unique_ptr<GrpcServer>> local = GrpcServer::Start(unix_socket, &fourth);
  ASSERT_TRUE(local.ok()) << local.status();
  EXPECT_EQ((*local)->address(), unix_socket.listen);
  auto unix_stub = v1::StepProof::NewStub(
      grpc::CreateChannel((*local)->address(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext uc;
  EXPECT_TRUE(unix_stub->GetVerifierKey(&uc, v1::GetVerifierKeyRequest(), &key).ok());
  (*local)->Shutdown(absl::Seconds(1));

  // A port that is taken is UNAVAILABLE, naming the address.
  StepProofService third(generator_.get(), ledger_.get(), &signer_, testing::kLogOrigin,
                         BearerAuth(), log_.get());
  GrpcServerOptions taken;
  taken.listen = server_->address();
  absl::StatusOr<std::unique_ptr<GrpcServer>> busy = GrpcServer::Start(taken, &third);
  EXPECT_EQ(busy.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(busy.status().message()), HasSubstr(server_->address()));
}

// Runs the openssl command line; false when it is missing or fails.
bool Openssl(const std::string& args) {
  return std::system(("openssl " + args + " >/dev/null 2>&1").c_str()) == 0;
}

TEST_F(ServiceTest, ServesTlsAndRequiresClientCertificatesWithClientCa) {
  auto dir_holder = testing::FreshDir("tls");
  const testing::TempDir& dir = *dir_holder;
  const std::string d = dir.string();
  const std::string san = "-addext subjectAltName=DNS:localhost,IP:127.0.0.1";
  if (!Openssl("req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 "
               "-subj /CN=localhost " + san + " -keyout " + d + "/server.key -out " + d +
               "/server.pem") ||
      !Openssl("req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 "
               "-subj /CN=client -keyout " + d + "/client.key -out " + d + "/client.pem")) {
    GTEST_SKIP() << "openssl command line not available";
  }
  StartServer();
  const std::string server_cert = testing::ReadFile(dir / "server.pem");

  GrpcServerOptions tls;
  tls.listen = "127.0.0.1:0";
  tls.tls_cert = d + "/server.pem";
  tls.tls_key = d + "/server.key";
  StepProofService tls_service(generator_.get(), ledger_.get(), &signer_, testing::kLogOrigin,
                               BearerAuth(), log_.get());
  absl::StatusOr<std::unique_ptr<GrpcServer>> server = GrpcServer::Start(tls, &tls_service);
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_TRUE((*server)->tls());
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = server_cert;
  auto call = [](std::shared_ptr<grpc::Channel> channel) {
    auto stub = v1::StepProof::NewStub(channel);
    grpc::ClientContext c;
    c.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::GetVerifierKeyResponse key;
    return stub->GetVerifierKey(&c, v1::GetVerifierKeyRequest(), &key);
  };
  EXPECT_TRUE(call(grpc::CreateChannel((*server)->address(), grpc::SslCredentials(ssl))).ok());
  EXPECT_FALSE(call(grpc::CreateChannel((*server)->address(), grpc::InsecureChannelCredentials())).ok());
  (*server)->Shutdown(absl::Seconds(1));

  // mTLS: a client certificate signed by the configured CA is required.
  tls.tls_client_ca = d + "/client.pem";
  StepProofService mtls_service(generator_.get(), ledger_.get(), &signer_, testing::kLogOrigin,
                                BearerAuth(), log_.get());
  absl::StatusOr<std::unique_ptr<GrpcServer>> mtls = GrpcServer::Start(tls, &mtls_service);
  ASSERT_TRUE(mtls.ok()) << mtls.status();
  EXPECT_FALSE(call(grpc::CreateChannel((*mtls)->address(), grpc::SslCredentials(ssl))).ok());
  grpc::SslCredentialsOptions with_cert = ssl;
  with_cert.pem_private_key = testing::ReadFile(dir / "client.key");
  with_cert.pem_cert_chain = testing::ReadFile(dir / "client.pem");
  EXPECT_TRUE(call(grpc::CreateChannel((*mtls)->address(), grpc::SslCredentials(with_cert))).ok());
  (*mtls)->Shutdown(absl::Seconds(1));
}

// ---------------------------------------------------------------- health, reflection

// One unary call through the generic (untyped) stub.
grpc::Status GenericUnary(grpc::Channel* channel, const std::string& method,
                          const std::string& request, std::string* response) {
  grpc::GenericStub stub(std::shared_ptr<grpc::Channel>(channel, [](grpc::Channel*) {}));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::CompletionQueue cq;
  grpc::Slice slice(request);
  grpc::ByteBuffer send(&slice, 1);
  std::unique_ptr<grpc::GenericClientAsyncResponseReader> call =
      stub.PrepareUnaryCall(&context, method, send, &cq);
  call->StartCall();
  grpc::ByteBuffer received;
  grpc::Status status;
  call->Finish(&received, &status, reinterpret_cast<void*>(1));
  void* tag = nullptr;
  bool ok = false;
  cq.Next(&tag, &ok);
  std::vector<grpc::Slice> slices;
  if (status.ok() && received.Dump(&slices).ok()) {
    response->clear();
    for (const grpc::Slice& s : slices) {
      response->append(reinterpret_cast<const char*>(s.begin()), s.size());
    }
  }
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  return status;
}

TEST_F(ServiceTest, HealthServiceReportsServing) {
  StartServer();
  std::string response;
  // grpc.health.v1.HealthCheckRequest{service: ""} is the empty message;
  // the response HealthCheckResponse{status: SERVING (1)} is 08 01.
  grpc::Status s = GenericUnary(channel_.get(), "/grpc.health.v1.Health/Check", "", &response);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(response, std::string("\x08\x01", 2));
}

TEST_F(ServiceTest, ReflectionListsTheStepProofService) {
  StartServer();
  grpc::GenericStub stub(channel_);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::CompletionQueue cq;
  void* tag = nullptr;
  bool ok = false;
  auto next = [&] {
    EXPECT_TRUE(cq.Next(&tag, &ok));
    return ok;
  };
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> call = stub.PrepareCall(
      &context, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &cq);
  call->StartCall(reinterpret_cast<void*>(1));
  ASSERT_TRUE(next());
  // ServerReflectionRequest{list_services: ""}: field 7, length 0.
  grpc::Slice slice(std::string("\x3a\x00", 2));
  grpc::ByteBuffer request(&slice, 1);
  call->Write(request, reinterpret_cast<void*>(2));
  ASSERT_TRUE(next());
  grpc::ByteBuffer received;
  call->Read(&received, reinterpret_cast<void*>(3));
  ASSERT_TRUE(next());
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(received.Dump(&slices).ok());
  std::string response;
  for (const grpc::Slice& s : slices) response.append(reinterpret_cast<const char*>(s.begin()), s.size());
  EXPECT_THAT(response, HasSubstr("stepproof.v1.StepProof"));
  EXPECT_THAT(response, HasSubstr("grpc.health.v1.Health"));
  context.TryCancel();
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(4));
  next();
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
}

// ---------------------------------------------------------------- lifetimes

TEST_F(ServiceTest, ClientThatGoesAwayCancelsItsGeneration) {
  StartServer(SlowSetup(3000));
  grpc::ClientContext context;
  std::unique_ptr<grpc::ClientReader<v1::GenerateEvent>> reader =
      stub_->Generate(&context, Request("Count slowly.", 1, 3000));
  v1::GenerateEvent event;
  ASSERT_TRUE(reader->Read(&event));
  ASSERT_TRUE(event.has_started());
  const std::string id = event.started().trace_id();
  const absl::Time cancelled_at = absl::Now();
  context.TryCancel();
  while (reader->Read(&event)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);

  ASSERT_TRUE(WaitSealed(id, absl::Seconds(30)));
  const absl::Duration to_seal = absl::Now() - cancelled_at;
  // The engine stopped well short of its budget and the trace was sealed
  // with what was produced.
  EXPECT_LT(StoredTokenCount(id), 1000u);  // 3000 would take 6 s
  EXPECT_LT(to_seal, absl::Seconds(20));
  const absl::Time end = absl::Now() + absl::Seconds(10);
  while (generator_->in_flight() != 0 && absl::Now() < end) absl::SleepFor(absl::Milliseconds(10));
  EXPECT_EQ(generator_->in_flight(), 0);
}

TEST_F(ServiceTest, DeadlineEndsTheGenerationAndTheTraceIsSealed) {
  StartServer(SlowSetup(3000));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(700));
  std::unique_ptr<grpc::ClientReader<v1::GenerateEvent>> reader =
      stub_->Generate(&context, Request("Count slowly.", 2, 3000));
  std::vector<v1::GenerateEvent> events;
  v1::GenerateEvent event;
  while (reader->Read(&event)) events.push_back(event);
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  ASSERT_FALSE(events.empty());
  ASSERT_TRUE(events.front().has_started());
  const std::string id = events.front().started().trace_id();
  ASSERT_TRUE(WaitSealed(id, absl::Seconds(30)));
  EXPECT_LT(StoredTokenCount(id), 1000u);  // 3000 would take 6 s
}

TEST_F(ServiceTest, GenerateBeyondTheConcurrencyLimitIsResourceExhausted) {
  StartServer(SlowSetup(3000, 1));
  grpc::ClientContext first_context;
  std::unique_ptr<grpc::ClientReader<v1::GenerateEvent>> first =
      stub_->Generate(&first_context, Request("Count slowly.", 1, 3000));
  v1::GenerateEvent event;
  ASSERT_TRUE(first->Read(&event));  // the first is in flight
  Streamed second = Generate(Request("me too", 2, 4));
  EXPECT_EQ(second.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(second.status.error_message(), HasSubstr("--max-concurrent-generations"));
  first_context.TryCancel();
  while (first->Read(&event)) {
  }
  first->Finish();
}

TEST_F(ServiceTest, ShutdownCancelsAndSealsInFlightGenerations) {
  StartServer(SlowSetup(3000));
  std::atomic<bool> started{false};
  std::string id;
  grpc::Status final_status;
  std::thread client([&] {
    grpc::ClientContext context;
    std::unique_ptr<grpc::ClientReader<v1::GenerateEvent>> reader =
        stub_->Generate(&context, Request("Count slowly.", 3, 3000));
    v1::GenerateEvent event;
    while (reader->Read(&event)) {
      if (event.has_started()) {
        id = event.started().trace_id();
        started = true;
      }
    }
    final_status = reader->Finish();
  });
  while (!started) absl::SleepFor(absl::Milliseconds(5));
  generator_->BeginShutdown();
  const absl::Time begin = absl::Now();
  server_->Shutdown(absl::Milliseconds(200));
  EXPECT_LT(absl::Now() - begin, absl::Seconds(20));
  client.join();
  EXPECT_FALSE(final_status.ok());
  absl::StatusOr<prov::TraceRecord> trace = ledger_->GetTrace(id);
  ASSERT_TRUE(trace.ok());
  EXPECT_EQ(trace->state, prov::TraceState::kSealed);
  EXPECT_LT(StoredTokenCount(id), 1000u);  // 3000 would take 6 s
  server_.reset();
}

}  // namespace
}  // namespace stepproof::service
