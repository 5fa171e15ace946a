#include "clients/stream_check.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "provenance/promise.h"
#include "provenance/step_record.h"

namespace stepproof::clients {

TraceStreamCheck::TraceStreamCheck(provenance::NoteVerifier key)
    : key_(std::move(key)) {}

absl::Status TraceStreamCheck::CheckCheckpoint(
    absl::string_view note, uint64_t leaf_index,
    provenance::Checkpoint* out) const {
  std::string where = absl::StrCat("leaf ", leaf_index, ": checkpoint: ");
  absl::StatusOr<provenance::Checkpoint> cp =
      provenance::OpenCheckpoint(note, key_);
  if (!cp.ok()) {
    return absl::Status(cp.status().code(),
                        absl::StrCat(where, cp.status().message()));
  }
  absl::StatusOr<provenance::ParsedTraceOrigin> origin =
      provenance::ParseTraceOrigin(cp->origin);
  if (!origin.ok() || origin->trace_id != trace_id_) {
    return absl::FailedPreconditionError(absl::StrCat(
        where, "origin \"", cp->origin, "\" does not name trace ", trace_id_));
  }
  if (cp->size != range_.size()) {
    return absl::FailedPreconditionError(
        absl::StrCat(where, "size ", cp->size, ", but ", range_.size(),
                     " leaves were received"));
  }
  if (cp->root != range_.Root()) {
    return absl::FailedPreconditionError(absl::StrCat(
        where, "its root is not the root of the ", range_.size(),
        " leaves received"));
  }
  *out = std::move(*cp);
  return absl::OkStatus();
}

absl::Status TraceStreamCheck::AddLeaf(absl::string_view trace_id,
                                       uint64_t index,
                                       absl::string_view record,
                                       absl::string_view leaf_hash,
                                       absl::string_view signed_checkpoint) {
  std::string where = absl::StrCat("leaf ", index, ": ");
  if (index != range_.size()) {
    return absl::FailedPreconditionError(absl::StrCat(
        where, "expected leaf ", range_.size(), " next"));
  }
  if (index == 0) {
    if (!provenance::IsValidTraceId(trace_id)) {
      return absl::FailedPreconditionError(
          absl::StrCat(where, "bad trace id \"", trace_id, "\""));
    }
    trace_id_ = std::string(trace_id);
  }
  merkle::Hash computed = merkle::HashLeaf(
      std::string_view(record.data(), record.size()));
  if (leaf_hash.size() != computed.size() ||
      !std::equal(computed.begin(), computed.end(),
                  reinterpret_cast<const uint8_t*>(leaf_hash.data()))) {
    return absl::FailedPreconditionError(
        absl::StrCat(where, "leaf hash is not SHA-256(0x00 || record)"));
  }
  absl::StatusOr<provenance::StepRecord> decoded =
      provenance::DecodeStepRecord(record);
  if (!decoded.ok()) {
    return absl::Status(decoded.status().code(),
                        absl::StrCat(where, "record: ",
                                     decoded.status().message()));
  }
  if (decoded->trace_id != trace_id_ || decoded->index != index) {
    return absl::FailedPreconditionError(
        absl::StrCat(where, "record is leaf ", decoded->index, " of trace ",
                     decoded->trace_id));
  }
  if ((index == 0) != (decoded->kind == provenance::StepKind::kHeader)) {
    return absl::FailedPreconditionError(
        absl::StrCat(where, "record kind ",
                     provenance::StepKindName(decoded->kind),
                     index == 0 ? " (leaf 0 must be the header)"
                                : " (only leaf 0 is a header)"));
  }
  range_.Append(computed);
  provenance::Checkpoint cp;
  return CheckCheckpoint(signed_checkpoint, index, &cp);
}

absl::Status TraceStreamCheck::Finish(absl::string_view final_checkpoint,
                                      absl::string_view promise) {
  if (range_.size() == 0) {
    return absl::FailedPreconditionError("the stream sealed no leaves");
  }
  provenance::Checkpoint cp;
  if (absl::Status s =
          CheckCheckpoint(final_checkpoint, range_.size() - 1, &cp);
      !s.ok()) {
    return absl::Status(s.code(), absl::StrCat("final ", s.message()));
  }
  if (!cp.is_final()) {
    return absl::FailedPreconditionError(
        "final checkpoint lacks the stepproof.final line");
  }
  if (!promise.empty()) {
    absl::StatusOr<provenance::InclusionPromise> p =
        provenance::VerifyPromise(promise, key_, final_checkpoint);
    if (!p.ok()) {
      return absl::Status(p.status().code(),
                          absl::StrCat("promise: ", p.status().message()));
    }
  }
  return absl::OkStatus();
}

}  // namespace stepproof::clients
