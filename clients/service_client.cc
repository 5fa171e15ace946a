#include "clients/service_client.h"

#include <algorithm>
#include <chrono>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "clients/file_io.h"
#include "grpcpp/grpcpp.h"

namespace stepproof::clients {
absl::StatusOr<ServiceClientOptions> MakeServiceClientOptions(
    std::string server, const std::string& token_arg,
    const std::string& tls_ca_path) {
  ServiceClientOptions options;
  options.server = std::move(server);
  options.token = token_arg;
  if (absl::StartsWith(token_arg, "@")) {
    absl::StatusOr<std::string> contents =
        ReadFileToString(token_arg.substr(1));
    if (!contents.ok()) return contents.status();
    options.token = std::string(absl::StripAsciiWhitespace(*contents));
  }
  if (!tls_ca_path.empty()) {
    absl::StatusOr<std::string> pem = ReadFileToString(tls_ca_path);
    if (!pem.ok()) return pem.status();
    options.tls_ca_pem = *std::move(pem);
  }
  return options;
}

absl::StatusOr<std::unique_ptr<ServiceClient>> ServiceClient::Create(
    ServiceClientOptions options) {
  if (options.server.empty()) {
    return absl::InvalidArgumentError("--server: empty address");
  }
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (options.tls_ca_pem.empty()) {
    creds = grpc::InsecureChannelCredentials();
  } else {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = options.tls_ca_pem;
    creds = grpc::SslCredentials(ssl);
  }
  grpc::ChannelArguments args;
  // Trace files and bundles can be large (long traces): lift the 4 MiB cap.
  args.SetMaxReceiveMessageSize(64 << 20);
  std::shared_ptr<grpc::Channel> channel =
      grpc::CreateCustomChannel(options.server, creds, args);
  auto stub = v1::StepProof::NewStub(channel);
  return std::unique_ptr<ServiceClient>(
      new ServiceClient(std::move(options), std::move(stub)));
}

ServiceClient::ServiceClient(ServiceClientOptions options,
                             std::unique_ptr<v1::StepProof::Stub> stub)
    : options_(std::move(options)), stub_(std::move(stub)) {}

void ServiceClient::Prepare(grpc::ClientContext* context,
                            absl::Duration timeout) const {
  if (!options_.token.empty()) {
    context->AddMetadata("authorization",
                         absl::StrCat("Bearer ", options_.token));
  }
  if (timeout != absl::InfiniteDuration()) {
    context->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  }
}

absl::Status ServiceClient::FromGrpc(const grpc::Status& status,
                                     absl::string_view method) const {
  if (status.ok()) return absl::OkStatus();
  std::string message = absl::StrCat(method, " on ", options_.server, ": ",
                                     status.error_message());
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
    absl::StrAppend(&message, " (is stepproofd running there? set --server)");
  } else if (status.error_code() == grpc::StatusCode::UNAUTHENTICATED) {
    absl::StrAppend(&message, " (pass the server's API token with --token)");
  }
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      message);
}

absl::Status ServiceClient::Generate(
    const v1::GenerateRequest& request,
    const std::function<absl::Status(const v1::GenerateEvent&)>& on_event) {
  grpc::ClientContext context;
  Prepare(&context, options_.generate_timeout);
  std::unique_ptr<grpc::ClientReader<v1::GenerateEvent>> reader =
      stub_->Generate(&context, request);
  v1::GenerateEvent event;
  absl::Status callback_status;
  while (reader->Read(&event)) {
    callback_status = on_event(event);
    if (!callback_status.ok()) {
      context.TryCancel();
      break;
    }
  }
  grpc::Status status = reader->Finish();
  if (!callback_status.ok()) return callback_status;
  return FromGrpc(status, "Generate");
}

absl::StatusOr<v1::GetTraceResponse> ServiceClient::GetTrace(
    const std::string& trace_id, bool include_steps) {
  grpc::ClientContext context;
  Prepare(&context, options_.call_timeout);
  v1::GetTraceRequest request;
  request.set_trace_id(trace_id);
  request.set_include_steps(include_steps);
  v1::GetTraceResponse response;
  absl::Status s = FromGrpc(stub_->GetTrace(&context, request, &response),
                            "GetTrace");
  if (!s.ok()) return s;
  return response;
}

absl::StatusOr<v1::GetStepProofResponse> ServiceClient::GetStepProof(
    const std::string& trace_id, uint64_t index) {
  grpc::ClientContext context;
  Prepare(&context, options_.call_timeout);
  v1::GetStepProofRequest request;
  request.set_trace_id(trace_id);
  request.set_index(index);
  v1::GetStepProofResponse response;
  absl::Status s = FromGrpc(
      stub_->GetStepProof(&context, request, &response), "GetStepProof");
  if (!s.ok()) return s;
  return response;
}

absl::StatusOr<v1::GetLogCheckpointResponse> ServiceClient::GetLogCheckpoint(
    uint64_t size) {
  grpc::ClientContext context;
  Prepare(&context, options_.call_timeout);
  v1::GetLogCheckpointRequest request;
  request.set_size(size);
  v1::GetLogCheckpointResponse response;
  absl::Status s = FromGrpc(
      stub_->GetLogCheckpoint(&context, request, &response),
      "GetLogCheckpoint");
  if (!s.ok()) return s;
  return response;
}

absl::StatusOr<v1::GetLogConsistencyResponse>
ServiceClient::GetLogConsistency(uint64_t size1, uint64_t size2) {
  grpc::ClientContext context;
  Prepare(&context, options_.call_timeout);
  v1::GetLogConsistencyRequest request;
  request.set_size1(size1);
  request.set_size2(size2);
  v1::GetLogConsistencyResponse response;
  absl::Status s = FromGrpc(
      stub_->GetLogConsistency(&context, request, &response),
      "GetLogConsistency");
  if (!s.ok()) return s;
  return response;
}

absl::StatusOr<std::vector<merkle::Hash>> ServiceClient::GetLogConsistencyProof(
    uint64_t size1, uint64_t size2) {
  absl::StatusOr<v1::GetLogConsistencyResponse> response =
      GetLogConsistency(size1, size2);
  if (!response.ok()) return response.status();
  std::vector<merkle::Hash> proof;
  proof.reserve(response->proof_size());
  for (int i = 0; i < response->proof_size(); ++i) {
    const std::string& bytes = response->proof(i);
    if (bytes.size() != merkle::Hash().size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("GetLogConsistency on ", options_.server, ": proof[", i,
                       "] is ", bytes.size(), " bytes, not 32"));
    }
    merkle::Hash h;
    std::copy(bytes.begin(), bytes.end(), h.begin());
    proof.push_back(h);
  }
  return proof;
}

absl::StatusOr<v1::GetVerifierKeyResponse> ServiceClient::GetVerifierKey() {
  grpc::ClientContext context;
  Prepare(&context, options_.call_timeout);
  v1::GetVerifierKeyRequest request;
  v1::GetVerifierKeyResponse response;
  absl::Status s = FromGrpc(
      stub_->GetVerifierKey(&context, request, &response), "GetVerifierKey");
  if (!s.ok()) return s;
  return response;
}

}  // namespace stepproof::clients
