// TraceStreamCheck: checks a Generate stream as it arrives, so that the
// client knows, step by step, that what it holds is provable: every leaf's
// hash is SHA-256(0x00 || record), every record decodes and is the next leaf
// of this trace, and every signed checkpoint is signed by the key and commits
// to exactly the leaves received so far (the client recomputes the root with
// a compact range, O(log n) per leaf). At the end the final checkpoint must
// cover every leaf and the inclusion promise must be about it.
//
// Thread-safety: not thread-safe; one checker per stream.
#ifndef STEPPROOF_CLIENTS_STREAM_CHECK_H_
#define STEPPROOF_CLIENTS_STREAM_CHECK_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "merkle/compact_range.h"
#include "merkle/hash.h"
#include "provenance/checkpoint.h"
#include "provenance/verifier_key.h"

namespace stepproof::clients {

class TraceStreamCheck {
 public:
  explicit TraceStreamCheck(provenance::NoteVerifier key);

  // Leaf `index` of trace `trace_id` (the header is leaf 0). Errors
  // (FAILED_PRECONDITION unless noted), each naming the leaf:
  //   index is not the next leaf; leaf hash is not HashLeaf(record);
  //   record does not decode (INVALID_ARGUMENT) or has another trace id or
  //   index; the checkpoint does not open with the key (OpenCheckpoint's
  //   errors), names another trace, or has another size or root than the
  //   leaves received.
  absl::Status AddLeaf(absl::string_view trace_id, uint64_t index,
                       absl::string_view record, absl::string_view leaf_hash,
                       absl::string_view signed_checkpoint);

  // The end of the stream: the final checkpoint is signed, final and covers
  // exactly the leaves received; the promise (when not empty) is signed and
  // about it.
  absl::Status Finish(absl::string_view final_checkpoint,
                      absl::string_view promise);

  uint64_t leaves() const { return range_.size(); }
  const provenance::NoteVerifier& key() const { return key_; }

 private:
  absl::Status CheckCheckpoint(absl::string_view note, uint64_t leaf_index,
                               provenance::Checkpoint* out) const;

  provenance::NoteVerifier key_;
  std::string trace_id_;
  merkle::CompactRange range_;
};

}  // namespace stepproof::clients

#endif  // STEPPROOF_CLIENTS_STREAM_CHECK_H_
