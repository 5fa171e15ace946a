// StepProofService: the stepproof.v1.StepProof gRPC service. Glue only: it
// checks the bearer token where needed, turns requests into calls on the
// TraceGenerator (generation.h), the Ledger and RecordVerifiedAnchor
// (anchoring.h), turns results into messages, converts errors with
// ToGrpcStatus and writes one log line per call outcome.
//
// Generate: the client's cancellation (or disconnection) and deadline reach
// the engine through GenerateParams; a failed stream write stops the
// generation. Every trace that started is sealed.
//
// Thread-safety: thread-safe (gRPC calls handlers from many threads).
// Ownership: everything passed to the constructor is borrowed and must
// outlive the service.
#ifndef STEPPROOF_SERVICES_STEPPROOF_SERVICE_H_
#define STEPPROOF_SERVICES_STEPPROOF_SERVICE_H_

#include <string>

#include <grpcpp/grpcpp.h>

#include "provenance/log/ledger.h"
#include "provenance/signer.h"
#include "services/auth.h"
#include "services/event_log.h"
#include "services/generation.h"
#include "stepproof/v1/stepproof.grpc.pb.h"

namespace stepproof::service {

class StepProofService final : public stepproof::v1::StepProof::Service {
 public:
  StepProofService(TraceGenerator* generator, provenance::Ledger* ledger,
                   const provenance::Signer* signer, std::string log_origin,
                   BearerAuth auth, EventLog* log);

  grpc::Status Generate(grpc::ServerContext* context,
                        const stepproof::v1::GenerateRequest* request,
                        grpc::ServerWriter<stepproof::v1::GenerateEvent>* writer) override;
  grpc::Status GetTrace(grpc::ServerContext* context,
                        const stepproof::v1::GetTraceRequest* request,
                        stepproof::v1::GetTraceResponse* response) override;
  grpc::Status ListTraces(grpc::ServerContext* context,
                          const stepproof::v1::ListTracesRequest* request,
                          stepproof::v1::ListTracesResponse* response) override;
  grpc::Status GetStepProof(grpc::ServerContext* context,
                            const stepproof::v1::GetStepProofRequest* request,
                            stepproof::v1::GetStepProofResponse* response) override;
  grpc::Status GetTraceConsistency(
      grpc::ServerContext* context,
      const stepproof::v1::GetTraceConsistencyRequest* request,
      stepproof::v1::GetTraceConsistencyResponse* response) override;
  grpc::Status GetLogCheckpoint(grpc::ServerContext* context,
                                const stepproof::v1::GetLogCheckpointRequest* request,
                                stepproof::v1::GetLogCheckpointResponse* response) override;
  grpc::Status GetLogInclusion(grpc::ServerContext* context,
                               const stepproof::v1::GetLogInclusionRequest* request,
                               stepproof::v1::GetLogInclusionResponse* response) override;
  grpc::Status GetLogConsistency(grpc::ServerContext* context,
                                 const stepproof::v1::GetLogConsistencyRequest* request,
                                 stepproof::v1::GetLogConsistencyResponse* response) override;
  grpc::Status GetVerifierKey(grpc::ServerContext* context,
                              const stepproof::v1::GetVerifierKeyRequest* request,
                              stepproof::v1::GetVerifierKeyResponse* response) override;
  grpc::Status RecordAnchor(grpc::ServerContext* context,
                            const stepproof::v1::RecordAnchorRequest* request,
                            stepproof::v1::RecordAnchorResponse* response) override;

 private:
  absl::Status CheckToken(const grpc::ServerContext& context) const;
  // Logs the outcome of a read call and converts its status.
  grpc::Status Finish(absl::string_view method, const absl::Status& status);

  TraceGenerator* const generator_;
  provenance::Ledger* const ledger_;
  const provenance::Signer* const signer_;
  const std::string log_origin_;
  const BearerAuth auth_;
  EventLog* const log_;
};

}  // namespace stepproof::service

#endif  // STEPPROOF_SERVICES_STEPPROOF_SERVICE_H_
