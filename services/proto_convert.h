// Conversions between the service's domain types (provenance/, generation.h)
// and the stepproof.v1 protobuf messages. Field meanings are documented in
// proto/stepproof/v1/stepproof.proto.
//
// Thread-safety: pure functions.
#ifndef STEPPROOF_SERVICES_PROTO_CONVERT_H_
#define STEPPROOF_SERVICES_PROTO_CONVERT_H_

#include <string>

#include "absl/status/status.h"
#include "merkle/hash.h"
#include "provenance/log/store.h"
#include "provenance/step_record.h"
#include "provenance/trace_header.h"
#include "services/generation.h"
#include "stepproof/v1/stepproof.pb.h"

namespace stepproof::service {

// The 32 raw bytes of a hash.
std::string HashBytes(const merkle::Hash& hash);

// The request's fields as GenerateParams (deadline and cancellation are the
// caller's to set). No validation: TraceGenerator checks.
GenerateParams GenerateParamsFromProto(const stepproof::v1::GenerateRequest& request);

void TraceHeaderToProto(const provenance::TraceHeader& header,
                        stepproof::v1::TraceHeader* out);
void StepViewToProto(const provenance::StepRecord& record,
                     stepproof::v1::StepView* out);
stepproof::v1::StepKind StepKindToProto(provenance::StepKind kind);
stepproof::v1::TraceState TraceStateToProto(provenance::TraceState state);

// The summary of a stored trace; the header is decoded from the stored
// header record. INVALID_ARGUMENT / DATA_LOSS if that record does not decode
// (a damaged store).
absl::Status TraceSummaryToProto(const provenance::TraceRecord& trace,
                                 stepproof::v1::TraceSummary* out);

// A stored step (its encoded record decoded into the view).
absl::Status StepEntryToProto(const provenance::StepRow& row,
                              stepproof::v1::StepEntry* out);

stepproof::v1::GenerateEvent StartedToProto(const TraceStartedEvent& event);
stepproof::v1::GenerateEvent StepToProto(const StepCommittedEvent& event);
stepproof::v1::GenerateEvent SealedToProto(const TraceSealedEvent& event);

}  // namespace stepproof::service

#endif  // STEPPROOF_SERVICES_PROTO_CONVERT_H_
