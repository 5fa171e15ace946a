#include "provenance/verifier.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "merkle/compact_range.h"
#include "merkle/proof_verify.h"
#include "merkle/tree.h"
#include "provenance/note.h"
#include "provenance/promise.h"
#include "provenance/status_macros.h"

namespace stepproof::provenance {
namespace {

std::string KeyLabel(const NoteVerifier& key) {
  return absl::StrCat(key.name(), "+", absl::StrFormat("%08x", key.key_id()));
}

std::string_view Sv(absl::string_view s) { return {s.data(), s.size()}; }

absl::Status Fail(absl::string_view message) {
  return absl::FailedPreconditionError(message);
}

// Opens `note` (named `what` in errors) with `key` and parses a checkpoint.
absl::StatusOr<Checkpoint> OpenSignedCheckpoint(absl::string_view what,
                                                absl::string_view note,
                                                const NoteVerifier& key) {
  auto parsed = ParseNote(note);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": ", parsed.status().message()));
  }
  auto text = OpenNote(note, key);
  if (!text.ok()) {
    if (absl::IsNotFound(text.status())) {
      return absl::NotFoundError(absl::StrCat(
          what, " has no signature by key ", KeyLabel(key)));
    }
    if (absl::IsFailedPrecondition(text.status())) {
      return Fail(absl::StrCat(what, " signature does not verify with key ",
                               KeyLabel(key)));
    }
    return absl::Status(text.status().code(),
                        absl::StrCat(what, ": ", text.status().message()));
  }
  auto cp = Checkpoint::Parse(*text);
  if (!cp.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": ", cp.status().message()));
  }
  return cp;
}

// Checks a header record names the key that signs its trace.
absl::Status CheckHeaderKey(const StepRecord& record, const NoteVerifier& key) {
  if (record.kind != StepKind::kHeader) return absl::OkStatus();
  SP_ASSIGN_OR_RETURN(TraceHeader h, HeaderFromRecord(record));
  if (h.key_name != key.name() || h.key_id != key.key_id()) {
    return Fail(absl::StrCat("trace header names key ", h.key_name, "+",
                             absl::StrFormat("%08x", h.key_id),
                             " but the trace is verified with key ",
                             KeyLabel(key)));
  }
  return absl::OkStatus();
}

absl::Status CheckLogInclusion(absl::string_view trace_note,
                               const Checkpoint& trace_cp,
                               absl::string_view log_origin,
                               uint64_t leaf_index,
                               absl::Span<const merkle::Hash> proof,
                               absl::string_view log_note,
                               const NoteVerifier& key) {
  if (!trace_cp.is_final()) {
    return Fail(absl::StrCat(
        "log inclusion needs the final trace checkpoint; this one lacks the \"",
        kFinalExtension, "\" line"));
  }
  SP_ASSIGN_OR_RETURN(Checkpoint log_cp,
                      OpenSignedCheckpoint("log checkpoint", log_note, key));
  if (log_cp.origin != log_origin) {
    return Fail(absl::StrCat("log checkpoint origin \"", log_cp.origin,
                             "\" is not the trace's log origin \"", log_origin,
                             "\""));
  }
  if (leaf_index >= log_cp.size) {
    return Fail(absl::StrCat("log leaf index ", leaf_index,
                             " is outside the log checkpoint's tree of size ",
                             log_cp.size));
  }
  merkle::Hash leaf = merkle::HashLeaf(Sv(trace_note));
  auto root = merkle::RootFromInclusionProof(leaf_index, log_cp.size, leaf, proof);
  if (!root.ok()) {
    return Fail(absl::StrCat("log inclusion proof is malformed: ",
                             root.status().message()));
  }
  if (*root != log_cp.root) {
    return Fail("log inclusion proof does not lead to log checkpoint root");
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status VerifyBundle(const Bundle& b, const NoteVerifier& key) {
  // 1. The record's fields are exactly what the leaf committed to.
  std::string reencoded = EncodeStepRecord(b.record);
  if (reencoded != b.encoded_record) {
    size_t at = 0;
    while (at < reencoded.size() && at < b.encoded_record.size() &&
           reencoded[at] == b.encoded_record[at]) {
      ++at;
    }
    return Fail(absl::StrCat(
        "record fields do not re-encode to encoded_record (first difference "
        "at byte ", at, ")"));
  }
  auto decoded = DecodeStepRecord(b.encoded_record);
  if (!decoded.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("encoded_record: ", decoded.status().message()));
  }
  if (b.leaf_index != b.record.index) {
    return Fail(absl::StrCat("leaf_index ", b.leaf_index,
                             " does not match the record's index ",
                             b.record.index));
  }
  // 2. The trace checkpoint: signed, and about this record's trace.
  SP_ASSIGN_OR_RETURN(
      Checkpoint cp,
      OpenSignedCheckpoint("trace checkpoint", b.trace_checkpoint, key));
  auto origin = ParseTraceOrigin(cp.origin);
  if (!origin.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("trace checkpoint: ", origin.status().message()));
  }
  if (origin->trace_id != b.record.trace_id) {
    return Fail(absl::StrCat("trace checkpoint origin names trace ",
                             origin->trace_id, " but the record is of trace ",
                             b.record.trace_id));
  }
  SP_RETURN_IF_ERROR(CheckHeaderKey(b.record, key));
  // 3. The leaf is in the trace tree the checkpoint commits to.
  if (b.leaf_index >= cp.size) {
    return Fail(absl::StrCat("leaf index ", b.leaf_index,
                             " is outside the trace checkpoint's tree of size ",
                             cp.size));
  }
  merkle::Hash leaf = merkle::HashLeaf(Sv(b.encoded_record));
  auto root = merkle::RootFromInclusionProof(b.leaf_index, cp.size, leaf,
                                             b.inclusion_proof);
  if (!root.ok()) {
    return Fail(absl::StrCat("inclusion proof is malformed: ",
                             root.status().message()));
  }
  if (*root != cp.root) {
    return Fail("inclusion proof does not lead to checkpoint root");
  }
  // 4. Optional: the final trace checkpoint is a leaf of the log.
  if (b.log.has_value()) {
    SP_RETURN_IF_ERROR(CheckLogInclusion(b.trace_checkpoint, cp,
                                         origin->log_origin, b.log->leaf_index,
                                         b.log->proof, b.log->checkpoint, key));
  }
  // 5. Optional: the log's promise to include this trace checkpoint.
  if (b.promise.has_value()) {
    auto p = VerifyPromise(*b.promise, key, b.trace_checkpoint);
    if (!p.ok()) return p.status();
    if (p->log_origin != origin->log_origin) {
      return Fail(absl::StrCat("promise log origin \"", p->log_origin,
                               "\" is not the trace's log origin \"",
                               origin->log_origin, "\""));
    }
  }
  return absl::OkStatus();
}

absl::Status VerifyBundleJson(absl::string_view json, const NoteVerifier& key) {
  SP_ASSIGN_OR_RETURN(Bundle b, BundleFromJson(json));
  return VerifyBundle(b, key);
}

absl::StatusOr<std::vector<StepRecord>> VerifyTrace(
    absl::Span<const std::string> encoded_records,
    absl::string_view final_checkpoint_note, const NoteVerifier& key) {
  SP_ASSIGN_OR_RETURN(Checkpoint cp,
                      OpenSignedCheckpoint("trace checkpoint",
                                           final_checkpoint_note, key));
  if (!cp.is_final()) {
    return Fail(absl::StrCat("trace checkpoint is not final (no \"",
                             kFinalExtension, "\" line)"));
  }
  auto origin = ParseTraceOrigin(cp.origin);
  if (!origin.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("trace checkpoint: ", origin.status().message()));
  }
  if (encoded_records.empty()) {
    return Fail("a trace has at least its header record");
  }
  if (cp.size != encoded_records.size()) {
    return Fail(absl::StrCat("trace checkpoint covers ", cp.size,
                             " records but the trace has ",
                             encoded_records.size()));
  }
  std::vector<StepRecord> records;
  std::vector<merkle::Hash> leaves;
  records.reserve(encoded_records.size());
  leaves.reserve(encoded_records.size());
  merkle::CompactRange range;
  for (size_t i = 0; i < encoded_records.size(); ++i) {
    auto r = DecodeStepRecord(encoded_records[i]);
    if (!r.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("record ", i, ": ", r.status().message()));
    }
    if (r->index != i) {
      return Fail(absl::StrCat("record ", i, " has index ", r->index));
    }
    if (r->trace_id != origin->trace_id) {
      return Fail(absl::StrCat("record ", i, " is of trace ", r->trace_id,
                               " but the checkpoint names trace ",
                               origin->trace_id));
    }
    if (i == 0) SP_RETURN_IF_ERROR(CheckHeaderKey(*r, key));
    range.Append(merkle::HashLeaf(Sv(encoded_records[i])));
    records.push_back(*std::move(r));
  }
  if (range.Root() != cp.root) {
    return Fail("the records' Merkle root is not the checkpoint root");
  }
  return records;
}

absl::Status VerifyCheckpointConsistency(absl::string_view older_note,
                                         absl::string_view newer_note,
                                         absl::Span<const merkle::Hash> proof,
                                         const NoteVerifier& key) {
  SP_ASSIGN_OR_RETURN(Checkpoint older,
                      OpenSignedCheckpoint("older checkpoint", older_note, key));
  SP_ASSIGN_OR_RETURN(Checkpoint newer,
                      OpenSignedCheckpoint("newer checkpoint", newer_note, key));
  if (older.origin != newer.origin) {
    return Fail(absl::StrCat("checkpoints are of different logs: \"",
                             older.origin, "\" and \"", newer.origin, "\""));
  }
  if (older.size > newer.size) {
    return Fail(absl::StrCat("older checkpoint size ", older.size,
                             " exceeds newer checkpoint size ", newer.size));
  }
  if (older.size == 0) {
    if (older.root != merkle::EmptyRoot()) {
      return Fail("older checkpoint has size 0 but not the empty tree's root");
    }
    if (!proof.empty()) {
      return Fail("consistency proof from an empty tree must be empty");
    }
    return absl::OkStatus();
  }
  absl::Status s = merkle::VerifyConsistency(older.size, newer.size, older.root,
                                             newer.root, proof);
  if (!s.ok()) {
    return Fail(absl::StrCat("consistency proof from size ", older.size,
                             " to size ", newer.size, " does not verify: ",
                             s.message()));
  }
  return absl::OkStatus();
}

absl::Status VerifyLogInclusion(absl::string_view final_trace_note,
                                uint64_t leaf_index,
                                absl::Span<const merkle::Hash> proof,
                                absl::string_view log_checkpoint_note,
                                const NoteVerifier& key) {
  SP_ASSIGN_OR_RETURN(
      Checkpoint cp,
      OpenSignedCheckpoint("trace checkpoint", final_trace_note, key));
  auto origin = ParseTraceOrigin(cp.origin);
  if (!origin.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("trace checkpoint: ", origin.status().message()));
  }
  return CheckLogInclusion(final_trace_note, cp, origin->log_origin, leaf_index,
                           proof, log_checkpoint_note, key);
}

}  // namespace stepproof::provenance
