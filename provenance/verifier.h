// Offline verification of everything the service hands out: a step bundle, a
// whole trace, consistency between a trace's checkpoints, a trace's inclusion
// in the global log, and consistency between log checkpoints. Needs only the
// verifier key: no storage, no engine (library stepproof_provenance_verify).
//
// Every failed check returns a distinct message naming what failed, e.g.
//   "trace checkpoint signature does not verify with key <name>+<id>"
//   "inclusion proof does not lead to checkpoint root"
// Codes: INVALID_ARGUMENT for malformed input (bad encodings, notes,
// checkpoints), NOT_FOUND when a note lacks a signature by the key,
// FAILED_PRECONDITION when a well-formed proof or value does not check.
//
// Thread-safety: pure functions.
#ifndef STEPPROOF_PROVENANCE_VERIFIER_H_
#define STEPPROOF_PROVENANCE_VERIFIER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "merkle/hash.h"
#include "provenance/bundle.h"
#include "provenance/checkpoint.h"
#include "provenance/step_record.h"
#include "provenance/verifier_key.h"

namespace stepproof::provenance {

// Checks, in order: the record's fields re-encode to encoded_record; the
// encoding decodes (canonical); leaf_index == record.index; the trace
// checkpoint is signed by `key` and parses; its origin is
// "<log origin>/trace/<record.trace_id>"; a header record names `key`
// (key_name, key_id); the inclusion proof leads from
// HashLeaf(encoded_record) at leaf_index to the checkpoint root. When present:
// the log part (the trace checkpoint is final, the log checkpoint is signed by
// `key`, has origin <log origin>, and the log inclusion proof leads from
// HashLeaf(trace checkpoint note) to its root), and the promise (signed by
// `key`, about this trace checkpoint, log origin matching). The chain anchor
// is not checked here.
absl::Status VerifyBundle(const Bundle& bundle, const NoteVerifier& key);

// Parses then verifies (errors of BundleFromJson and VerifyBundle).
absl::Status VerifyBundleJson(absl::string_view json, const NoteVerifier& key);

// A whole trace: the encoded records in leaf order and its final signed
// checkpoint. Checks every record decodes, has index i, the same trace id as
// the checkpoint origin, record 0 is the header and no other is; the
// checkpoint is signed by `key`, final, of size records.size(), and its root
// is the Merkle root of the records' leaf hashes. Returns the decoded records.
absl::StatusOr<std::vector<StepRecord>> VerifyTrace(
    absl::Span<const std::string> encoded_records,
    absl::string_view final_checkpoint_note, const NoteVerifier& key);

// Two signed checkpoints of one trace (or of the log: same function) and an
// RFC 9162 consistency proof from the older to the newer: both signed by
// `key`, same origin, older size <= newer size, proof checks. Equal sizes need
// an empty proof and equal roots. An older size of 0 is accepted with an
// empty proof and the empty tree's root (nothing to be consistent with).
absl::Status VerifyCheckpointConsistency(absl::string_view older_note,
                                         absl::string_view newer_note,
                                         absl::Span<const merkle::Hash> proof,
                                         const NoteVerifier& key);
inline absl::Status VerifyTraceConsistency(absl::string_view older_note,
                                           absl::string_view newer_note,
                                           absl::Span<const merkle::Hash> proof,
                                           const NoteVerifier& key) {
  return VerifyCheckpointConsistency(older_note, newer_note, proof, key);
}
inline absl::Status VerifyLogConsistency(absl::string_view older_note,
                                         absl::string_view newer_note,
                                         absl::Span<const merkle::Hash> proof,
                                         const NoteVerifier& key) {
  return VerifyCheckpointConsistency(older_note, newer_note, proof, key);
}

// The trace's final checkpoint note is leaf `leaf_index` of the log whose
// signed checkpoint is `log_checkpoint_note`: the trace checkpoint is signed
// by `key` and final; the log checkpoint is signed by `key`, and its origin is
// the trace origin's log origin; the proof leads from
// HashLeaf(final_trace_note) to the log root.
absl::Status VerifyLogInclusion(absl::string_view final_trace_note,
                                uint64_t leaf_index,
                                absl::Span<const merkle::Hash> proof,
                                absl::string_view log_checkpoint_note,
                                const NoteVerifier& key);

}  // namespace stepproof::provenance

#endif  // STEPPROOF_PROVENANCE_VERIFIER_H_
