// ServiceClient: the client side of the stepproof.v1 gRPC API for the CLIs.
// Opens one channel to a stepproofd (plaintext, or TLS with a given CA),
// adds the bearer token to every call when one is set, and turns gRPC
// statuses into absl::Status values whose messages name the server.
//
// Thread-safety: thread-safe (gRPC stubs are); one client may serve several
// threads.
#ifndef STEPPROOF_CLIENTS_SERVICE_CLIENT_H_
#define STEPPROOF_CLIENTS_SERVICE_CLIENT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "merkle/hash.h"
#include "stepproof/v1/stepproof.grpc.pb.h"
#include "stepproof/v1/stepproof.pb.h"

namespace stepproof::clients {

struct ServiceClientOptions {
  std::string server = "127.0.0.1:7700";  // host:port
  std::string token;       // bearer token; "" sends none
  std::string tls_ca_pem;  // PEM roots; "" means plaintext
  // Deadline of each unary call; Generate has none (it streams for as long
  // as the model runs) unless generate_timeout is set.
  absl::Duration call_timeout = absl::Seconds(30);
  absl::Duration generate_timeout = absl::InfiniteDuration();
};

// Options from the CLIs' arguments: `token_arg` is the token or "@FILE"
// holding it (surrounding whitespace dropped), `tls_ca_path` a PEM file ("" =
// plaintext). The read errors of ReadFileToString.
absl::StatusOr<ServiceClientOptions> MakeServiceClientOptions(
    std::string server, const std::string& token_arg,
    const std::string& tls_ca_path);

class ServiceClient {
 public:
  // Builds the channel (lazily connected: errors surface on the first call).
  // INVALID_ARGUMENT for an empty server address.
  static absl::StatusOr<std::unique_ptr<ServiceClient>> Create(
      ServiceClientOptions options);

  // Runs Generate and calls `on_event` for each event as it arrives. If
  // `on_event` returns an error the call is cancelled and that error
  // returned. Otherwise the stream's final status.
  absl::Status Generate(
      const v1::GenerateRequest& request,
      const std::function<absl::Status(const v1::GenerateEvent&)>& on_event);

  absl::StatusOr<v1::GetTraceResponse> GetTrace(const std::string& trace_id,
                                                bool include_steps);
  absl::StatusOr<v1::GetStepProofResponse> GetStepProof(
      const std::string& trace_id, uint64_t index);
  // size 0: the latest.
  absl::StatusOr<v1::GetLogCheckpointResponse> GetLogCheckpoint(uint64_t size);
  absl::StatusOr<v1::GetLogConsistencyResponse> GetLogConsistency(
      uint64_t size1, uint64_t size2);
  // The proof hashes of GetLogConsistency. INVALID_ARGUMENT if a hash is not
  // 32 bytes.
  absl::StatusOr<std::vector<merkle::Hash>> GetLogConsistencyProof(
      uint64_t size1, uint64_t size2);
  absl::StatusOr<v1::GetVerifierKeyResponse> GetVerifierKey();

  const std::string& server() const { return options_.server; }

 private:
  ServiceClient(ServiceClientOptions options,
                std::unique_ptr<v1::StepProof::Stub> stub);
  void Prepare(grpc::ClientContext* context, absl::Duration timeout) const;
  absl::Status FromGrpc(const grpc::Status& status,
                        absl::string_view method) const;

  ServiceClientOptions options_;
  std::unique_ptr<v1::StepProof::Stub> stub_;
};

}  // namespace stepproof::clients

#endif  // STEPPROOF_CLIENTS_SERVICE_CLIENT_H_
