// GrpcServer: a running gRPC server for the StepProof service, with the
// standard health service (grpc.health.v1) and server reflection on. It
// binds the listen address (port 0 picks a free port and address() reports
// the chosen one), with TLS (optionally mutual) when certificate files are
// given, and refuses a non-loopback address without TLS unless `insecure`.
//
// Thread-safety: Shutdown and Wait may be called from any thread, once.
// Ownership: the service is borrowed and must outlive the server.
#ifndef STEPPROOF_SERVICES_GRPC_SERVER_H_
#define STEPPROOF_SERVICES_GRPC_SERVER_H_

#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace stepproof::service {

struct GrpcServerOptions {
  std::string listen = "127.0.0.1:0";
  std::string tls_cert;       // PEM file; with tls_key enables TLS
  std::string tls_key;        // PEM file
  std::string tls_client_ca;  // PEM file; requires and verifies client certs
  bool insecure = false;      // allow a non-loopback address without TLS
};

class GrpcServer {
 public:
  // INVALID_ARGUMENT for a bad listen address; FAILED_PRECONDITION for a
  // non-loopback address without TLS or --insecure; NOT_FOUND / INTERNAL
  // naming an unreadable certificate file; UNAVAILABLE if the address
  // cannot be bound.
  static absl::StatusOr<std::unique_ptr<GrpcServer>> Start(
      const GrpcServerOptions& options, grpc::Service* service);

  ~GrpcServer();  // Shutdown(0) if still running.

  // The bound address, "host:port" with the chosen port.
  const std::string& address() const { return address_; }
  bool tls() const { return tls_; }

  // Reports NOT_SERVING on the health service (before a shutdown).
  void SetNotServing();

  // Stops accepting calls; running calls get until `grace` to finish, then
  // are cancelled (ServerContext::IsCancelled becomes true). Returns once
  // every handler has returned.
  void Shutdown(absl::Duration grace);
  void Wait();

 private:
  GrpcServer(std::unique_ptr<grpc::Server> server, std::string address, bool tls)
      : server_(std::move(server)), address_(std::move(address)), tls_(tls) {}
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
  bool tls_ = false;
  bool shut_down_ = false;
};

}  // namespace stepproof::service

#endif  // STEPPROOF_SERVICES_GRPC_SERVER_H_
