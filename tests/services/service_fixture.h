// The fixture of the in-process gRPC tests: a real StepProofService behind a
// real GrpcServer on 127.0.0.1 (port 0), a real channel and stub, a ledger
// over the in-memory store (sequencer driven by Flush()), and an EventLog
// that keeps its lines for inspection. Test support only.
#ifndef STEPPROOF_TESTS_SERVICES_SERVICE_FIXTURE_H_
#define STEPPROOF_TESTS_SERVICES_SERVICE_FIXTURE_H_

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

namespace stepproof::service::testing {

namespace inf = ::stepproof::inference;
namespace prov = ::stepproof::provenance;
namespace v1 = ::stepproof::v1;

inline merkle::Hash ToHash(const std::string& bytes) {
  merkle::Hash h{};
  EXPECT_EQ(bytes.size(), 32u);
  std::copy_n(bytes.begin(), std::min<size_t>(32, bytes.size()), h.begin());
  return h;
}

inline std::vector<merkle::Hash> ToHashes(const google::protobuf::RepeatedPtrField<std::string>& in) {
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

inline Options SlowSetup(int32_t max_tokens, int32_t max_concurrent = 4) {
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

  static inline testing::TempDir* dir_ = nullptr;
  static inline std::string* fast_model_ = nullptr;

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



}  // namespace stepproof::service::testing

#endif  // STEPPROOF_TESTS_SERVICES_SERVICE_FIXTURE_H_
