#include "provenance/trace_builder.h"

#include <openssl/rand.h>

#include "absl/strings/str_cat.h"
#include "provenance/checkpoint.h"
#include "provenance/note.h"
#include "provenance/status_macros.h"

namespace stepproof::provenance {
namespace {

void OpenSslRandom(absl::Span<uint8_t> out) {
  // RAND_bytes only fails when the system has no entropy source at all; a
  // zero salt would then still commit, just without hiding.
  if (RAND_bytes(out.data(), static_cast<int>(out.size())) != 1) {
    std::fill(out.begin(), out.end(), 0);
  }
}

}  // namespace

TraceBuilder::TraceBuilder(TraceBuilder&&) noexcept = default;
TraceBuilder& TraceBuilder::operator=(TraceBuilder&&) noexcept = default;
TraceBuilder::~TraceBuilder() = default;

absl::StatusOr<TraceBuilder> TraceBuilder::Start(std::string log_origin,
                                                 std::string trace_id,
                                                 const TraceHeader& header,
                                                 const Signer* signer,
                                                 RandomBytes random_bytes) {
  if (log_origin.empty() || log_origin.find('\n') != std::string::npos) {
    return absl::InvalidArgumentError(
        "log origin must be a non-empty single line");
  }
  if (!IsValidTraceId(trace_id)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "trace id \"", trace_id, "\" is not 32 lowercase hex characters"));
  }
  if (signer == nullptr) return absl::InvalidArgumentError("no signer");
  SP_RETURN_IF_ERROR(ValidateTraceHeader(header));
  TraceBuilder b;
  b.log_origin_ = std::move(log_origin);
  b.trace_id_ = std::move(trace_id);
  b.signer_ = signer;
  b.random_bytes_ = random_bytes ? std::move(random_bytes) : OpenSslRandom;
  b.nodes_ = std::make_unique<merkle::InMemoryNodeStore>();
  Salt salt;
  b.random_bytes_(absl::MakeSpan(salt));
  SP_RETURN_IF_ERROR(b.Append(MakeHeaderRecord(b.trace_id_, header, salt)).status());
  return b;
}

std::string TraceBuilder::origin() const {
  return TraceOrigin(log_origin_, trace_id_);
}

absl::StatusOr<TraceBuilder::Appended> TraceBuilder::Append(
    const StepRecord& record) {
  SP_RETURN_IF_ERROR(ValidateStepRecord(record));
  Appended a;
  a.leaf_index = range_.size();
  a.encoded_record = EncodeStepRecord(record);
  a.leaf_hash = merkle::HashLeaf(
      std::string_view(a.encoded_record.data(), a.encoded_record.size()));
  // Sign before committing the append, so a signing failure leaves the
  // builder unchanged.
  merkle::CompactRange next = range_;
  next.Append(a.leaf_hash, [&](const merkle::NodeId& id, const merkle::Hash& h) {
    a.new_nodes.emplace_back(id, h);
  });
  Checkpoint cp;
  cp.origin = origin();
  cp.size = next.size();
  cp.root = next.Root();
  SP_ASSIGN_OR_RETURN(a.signed_checkpoint, SignNote(cp.Marshal(), *signer_));
  range_ = std::move(next);
  for (const auto& [id, h] : a.new_nodes) nodes_->Put(id, h);
  records_.push_back(record);
  appended_.push_back(a);
  return a;
}

absl::StatusOr<TraceBuilder::Appended> TraceBuilder::AppendStep(
    StepRecord step) {
  if (finished()) {
    return absl::FailedPreconditionError("trace is finished; cannot append");
  }
  if (step.kind == StepKind::kHeader) {
    return absl::InvalidArgumentError(
        "only the trace's first record is a header");
  }
  step.version = kStepRecordVersion;
  step.trace_id = trace_id_;
  step.index = range_.size();
  random_bytes_(absl::MakeSpan(step.salt));
  return Append(step);
}

absl::StatusOr<std::string> TraceBuilder::Finish() {
  if (finished()) return final_checkpoint_;
  Checkpoint cp;
  cp.origin = origin();
  cp.size = range_.size();
  cp.root = range_.Root();
  cp.extensions.emplace_back(kFinalExtension);
  SP_ASSIGN_OR_RETURN(final_checkpoint_, SignNote(cp.Marshal(), *signer_));
  return final_checkpoint_;
}

absl::StatusOr<StepRecord> TraceBuilder::record(uint64_t index) const {
  if (index >= records_.size()) {
    return absl::OutOfRangeError(absl::StrCat(
        "record ", index, " is past the trace's ", records_.size(), " records"));
  }
  return records_[index];
}

absl::StatusOr<std::string> TraceBuilder::checkpoint(uint64_t size) const {
  if (size == 0 || size > appended_.size()) {
    return absl::OutOfRangeError(absl::StrCat(
        "no checkpoint of size ", size, " (trace has ", appended_.size(),
        " records)"));
  }
  return appended_[size - 1].signed_checkpoint;
}

absl::StatusOr<std::vector<merkle::Hash>> TraceBuilder::InclusionProof(
    uint64_t index, uint64_t size) const {
  if (size > range_.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tree size ", size, " exceeds the trace's size ", range_.size()));
  }
  return merkle::MakeInclusionProof(*nodes_, index, size);
}

absl::StatusOr<std::vector<merkle::Hash>> TraceBuilder::ConsistencyProof(
    uint64_t size1, uint64_t size2) const {
  if (size2 > range_.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tree size ", size2, " exceeds the trace's size ", range_.size()));
  }
  return merkle::MakeConsistencyProof(*nodes_, size1, size2);
}

absl::StatusOr<Bundle> TraceBuilder::MakeBundle(uint64_t index) const {
  SP_ASSIGN_OR_RETURN(StepRecord r, record(index));
  Bundle b;
  b.record = std::move(r);
  b.encoded_record = appended_[index].encoded_record;
  b.leaf_index = index;
  SP_ASSIGN_OR_RETURN(b.inclusion_proof, InclusionProof(index, range_.size()));
  b.trace_checkpoint =
      finished() ? final_checkpoint_ : appended_.back().signed_checkpoint;
  return b;
}

}  // namespace stepproof::provenance
