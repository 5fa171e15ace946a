// The gRPC server in process (tests/services/service_fixture.h): the
// loopback/TLS refusal, TLS and mTLS, unix sockets, a taken port, health and
// reflection, cancellation when the client goes away, deadlines, admission,
// and shutdown with a generation in flight.
#include <atomic>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "inference/chat_template.h"
#include "merkle/hash.h"
#include "provenance/checkpoint.h"
#include "provenance/promise.h"
#include "provenance/verifier.h"
#include "provenance/verifier_key.h"
#include "tests/services/service_fixture.h"

namespace stepproof::service {
namespace {

namespace inf = ::stepproof::inference;
namespace prov = ::stepproof::provenance;
namespace v1 = ::stepproof::v1;
using ::testing::HasSubstr;
using testing::Options;
using testing::ServiceTest;
using testing::SlowSetup;
using testing::ToHash;
using testing::ToHashes;

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
