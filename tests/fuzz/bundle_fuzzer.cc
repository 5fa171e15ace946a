// Fuzz target: the proof bundle JSON parser (provenance/bundle.h) and the
// offline bundle verifier (provenance/verifier.h) with one fixed key (the
// vector key, fuzz_check.h).
//
// Properties:
//   - whatever BundleFromJson accepts, BundleToJson prints as JSON that
//     BundleFromJson accepts again and that prints identically (print is a
//     fixed point after one parse), and the verdict of VerifyBundle is the
//     same for both parses;
//   - VerifyBundle accepts only when, checked independently of the code under
//     test: the record re-encodes to encoded_record and decodes back equal,
//     the trace checkpoint note carries the key's own Ed25519 signature of
//     its text (deterministic signatures), and the inclusion proof leads from
//     SHA-256(0x00 || encoded_record) to the checkpoint's root (RFC 9162
//     2.1.3.2, recomputed here with OpenSSL's SHA-256, not merkle/).

#include <openssl/sha.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

#include "fuzz_keys.h"
#include "provenance/bundle.h"
#include "provenance/checkpoint.h"
#include "provenance/note.h"
#include "provenance/step_record.h"
#include "provenance/verifier.h"

namespace sp = stepproof::provenance;
using stepproof::merkle::Hash;
using stepproof::fuzz::Check;

namespace {

const sp::Signer& Key() {
  static const sp::Signer* signer = new sp::Signer(stepproof::fuzz::VectorSigner());
  return *signer;
}

Hash Sha256Parts(uint8_t prefix, const std::string& a, const std::string& b = "") {
  const std::string msg = std::string(1, static_cast<char>(prefix)) + a + b;
  Hash h;
  SHA256(reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), h.data());
  return h;
}

std::string Str(const Hash& h) { return std::string(h.begin(), h.end()); }

// RFC 9162 section 2.1.3.2: the root an inclusion proof leads to, or false.
bool RootFromInclusion(uint64_t index, uint64_t size, const Hash& leaf,
                       const std::vector<Hash>& path, Hash* root) {
  if (index >= size) return false;
  uint64_t fn = index, sn = size - 1;
  Hash r = leaf;
  for (const Hash& p : path) {
    if (sn == 0) return false;
    if ((fn & 1) != 0 || fn == sn) {
      r = Sha256Parts(0x01, Str(p), Str(r));
      if ((fn & 1) == 0) {
        while ((fn & 1) == 0 && fn != 0) {
          fn >>= 1;
          sn >>= 1;
        }
      }
    } else {
      r = Sha256Parts(0x01, Str(r), Str(p));
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0) return false;
  *root = r;
  return true;
}

// The note's text when it carries the key's own signature of it.
bool SignedByKey(const std::string& note_bytes, std::string* text) {
  absl::StatusOr<sp::Note> note = sp::ParseNote(note_bytes);
  if (!note.ok()) return false;
  absl::StatusOr<std::string> sig = Key().Sign(note->text);
  Check(sig.ok(), "the fixed key signs");
  for (const sp::NoteSignature& s : note->signatures) {
    if (s.name == Key().key_name() && s.key_id == Key().key_id() && s.signature == *sig) {
      *text = note->text;
      return true;
    }
  }
  return false;
}

void CheckAcceptedBundle(const sp::Bundle& b) {
  Check(sp::EncodeStepRecord(b.record) == b.encoded_record,
        "an accepted bundle's record re-encodes to encoded_record");
  absl::StatusOr<sp::StepRecord> dec = sp::DecodeStepRecord(b.encoded_record);
  Check(dec.ok() && *dec == b.record, "an accepted bundle's encoded_record decodes to its record");
  Check(b.leaf_index == b.record.index, "leaf_index is the record's index");
  std::string text;
  Check(SignedByKey(b.trace_checkpoint, &text), "the trace checkpoint is signed by the key");
  absl::StatusOr<sp::Checkpoint> cp = sp::Checkpoint::Parse(text);
  Check(cp.ok(), "the signed trace checkpoint parses");
  Check(cp->origin.size() > 39 &&
            cp->origin.substr(cp->origin.size() - 39) == "/trace/" + b.record.trace_id,
        "the checkpoint origin names the record's trace");
  Hash root;
  Check(RootFromInclusion(b.leaf_index, cp->size, Sha256Parts(0x00, b.encoded_record),
                          b.inclusion_proof, &root) &&
            root == cp->root,
        "the inclusion proof leads to the signed root");
  if (b.log.has_value()) {
    Check(cp->is_final(), "a logged trace checkpoint is final");
    std::string log_text;
    Check(SignedByKey(b.log->checkpoint, &log_text), "the log checkpoint is signed by the key");
    absl::StatusOr<sp::Checkpoint> log_cp = sp::Checkpoint::Parse(log_text);
    Check(log_cp.ok(), "the signed log checkpoint parses");
    Hash log_root;
    Check(RootFromInclusion(b.log->leaf_index, log_cp->size,
                            Sha256Parts(0x00, b.trace_checkpoint), b.log->proof, &log_root) &&
              log_root == log_cp->root,
          "the log inclusion proof leads to the signed log root");
  }
  if (b.promise.has_value()) {
    std::string promise_text;
    Check(SignedByKey(*b.promise, &promise_text), "the promise is signed by the key");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view in(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<sp::Bundle> b1 = sp::BundleFromJson(in);
  if (!b1.ok()) return 0;
  const std::string j1 = sp::BundleToJson(*b1);
  absl::StatusOr<sp::Bundle> b2 = sp::BundleFromJson(j1);
  if (!b2.ok()) std::fprintf(stderr, "reparse: %s\n", std::string(b2.status().message()).c_str());
  Check(b2.ok(), "a printed bundle parses again");
  Check(sp::BundleToJson(*b2) == j1, "print -> parse -> print is a fixed point");

  const sp::NoteVerifier verifier = Key().verifier();
  const absl::Status v1 = sp::VerifyBundle(*b1, verifier);
  const absl::Status v2 = sp::VerifyBundle(*b2, verifier);
  Check(v1.ok() == v2.ok(), "both parses of a bundle get the same verdict");
  if (v1.ok()) CheckAcceptedBundle(*b1);
  return 0;
}
