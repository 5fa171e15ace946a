// TraceBuilder: builds one trace in memory as its steps arrive. It starts
// with the header record (leaf 0), appends step records (O(log n) hashing each
// through merkle::CompactRange), signs a trace checkpoint after every append
// (so a client cut off mid-stream holds proof of what it got) and a final one
// carrying the extension line kFinalExtension at Finish(). It keeps the
// complete-subtree nodes so it can answer inclusion and consistency proofs and
// hands back, per append, everything a store needs.
//
// Thread-safety: not thread-safe; one builder per trace, callers serialise.
// The Signer must outlive the builder.
#ifndef STEPPROOF_PROVENANCE_TRACE_BUILDER_H_
#define STEPPROOF_PROVENANCE_TRACE_BUILDER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "merkle/compact_range.h"
#include "merkle/hash.h"
#include "merkle/proof_builder.h"
#include "merkle/tree.h"
#include "provenance/bundle.h"
#include "provenance/signer.h"
#include "provenance/step_record.h"
#include "provenance/trace_header.h"

namespace stepproof::provenance {

class TraceBuilder {
 public:
  // Fills the span with random bytes (salts). Default: OpenSSL RAND_bytes.
  using RandomBytes = std::function<void(absl::Span<uint8_t>)>;

  struct Appended {
    uint64_t leaf_index = 0;
    merkle::Hash leaf_hash{};
    std::string encoded_record;
    std::string signed_checkpoint;  // covering leaves [0, leaf_index]
    // Nodes completed by this append (the leaf and any perfect subtrees).
    std::vector<std::pair<merkle::NodeId, merkle::Hash>> new_nodes;
  };

  // Starts a trace and appends its header record (salt from random_bytes).
  // INVALID_ARGUMENT: empty/multi-line log origin, trace id not 32 lowercase
  // hex, invalid header, null signer. Signing errors as Signer::Sign.
  static absl::StatusOr<TraceBuilder> Start(std::string log_origin,
                                            std::string trace_id,
                                            const TraceHeader& header,
                                            const Signer* signer,
                                            RandomBytes random_bytes = nullptr);

  TraceBuilder(TraceBuilder&&) noexcept;
  TraceBuilder& operator=(TraceBuilder&&) noexcept;
  ~TraceBuilder();

  const Appended& header() const { return appended_.front(); }

  // Appends a step. The builder sets trace_id, index and salt (any values
  // given are overwritten). INVALID_ARGUMENT if kind is kHeader or the record
  // is invalid (ValidateStepRecord); FAILED_PRECONDITION after Finish().
  absl::StatusOr<Appended> AppendStep(StepRecord step);

  // Signs and returns the final checkpoint note (extension kFinalExtension).
  // Idempotent: later calls return the same note.
  absl::StatusOr<std::string> Finish();

  const std::string& log_origin() const { return log_origin_; }
  const std::string& trace_id() const { return trace_id_; }
  std::string origin() const;  // TraceOrigin(log_origin, trace_id)
  uint64_t size() const { return range_.size(); }
  merkle::Hash root() const { return range_.Root(); }
  bool finished() const { return !final_checkpoint_.empty(); }
  // "" before Finish().
  const std::string& final_checkpoint() const { return final_checkpoint_; }

  // Everything appended so far, leaf order (index 0 is the header).
  const std::vector<Appended>& appended() const { return appended_; }
  // The record (with salt) at `index`. OUT_OF_RANGE past the end.
  absl::StatusOr<StepRecord> record(uint64_t index) const;
  // The signed checkpoint for tree size `size` (1..size()). OUT_OF_RANGE.
  absl::StatusOr<std::string> checkpoint(uint64_t size) const;

  // PATH(index, D[size]). INVALID_ARGUMENT unless index < size <= size().
  absl::StatusOr<std::vector<merkle::Hash>> InclusionProof(
      uint64_t index, uint64_t size) const;
  // PROOF(size1, D[size2]). INVALID_ARGUMENT unless 0 < size1 <= size2 <=
  // size().
  absl::StatusOr<std::vector<merkle::Hash>> ConsistencyProof(
      uint64_t size1, uint64_t size2) const;

  // A bundle for step `index` against the latest checkpoint (the final one
  // after Finish()); no log part. OUT_OF_RANGE past the end.
  absl::StatusOr<Bundle> MakeBundle(uint64_t index) const;

 private:
  TraceBuilder() = default;
  absl::StatusOr<Appended> Append(const StepRecord& record);

  std::string log_origin_;
  std::string trace_id_;
  const Signer* signer_ = nullptr;
  RandomBytes random_bytes_;
  merkle::CompactRange range_;
  std::unique_ptr<merkle::InMemoryNodeStore> nodes_;
  std::vector<StepRecord> records_;
  std::vector<Appended> appended_;
  std::string final_checkpoint_;
};

}  // namespace stepproof::provenance

#endif  // STEPPROOF_PROVENANCE_TRACE_BUILDER_H_
