// The one conversion from absl::Status to grpc::Status used by every RPC.
// The canonical codes are numbered alike in both, so the code carries over
// unchanged and the message is kept.
//
// Thread-safety: pure function.
#ifndef STEPPROOF_SERVICES_GRPC_STATUS_H_
#define STEPPROOF_SERVICES_GRPC_STATUS_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace stepproof::service {

grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace stepproof::service

#endif  // STEPPROOF_SERVICES_GRPC_STATUS_H_
