// Fuzz target: C2SP signed notes, checkpoints, inclusion promises and
// verifier keys (provenance/note.h, checkpoint.h, promise.h,
// verifier_key.h), against one fixed key (the vector key, fuzz_check.h).
//
// Properties:
//   - ParseNote is canonical: text + "\n" + the re-formatted signature lines
//     gives the input back;
//   - OpenNote (and OpenCheckpoint, VerifyPromise) accept a note only if it
//     carries, under the key's name and id, exactly the Ed25519 signature the
//     key makes of the text (Ed25519 is deterministic and OpenSSL rejects
//     non-canonical S, so a valid signature is the one the key makes); every
//     such signature line in the note must be that one;
//   - Checkpoint::Parse and InclusionPromise::Parse are canonical:
//     parse -> Marshal gives the input text back;
//   - NoteVerifier::FromVerifierKey: parse -> verifier_key() is the identity.

#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_keys.h"
#include "provenance/checkpoint.h"
#include "provenance/note.h"
#include "provenance/promise.h"
#include "provenance/signer.h"
#include "provenance/verifier_key.h"

namespace sp = stepproof::provenance;
using stepproof::fuzz::Check;

namespace {

const sp::Signer& Key() {
  static const sp::Signer* signer = new sp::Signer(stepproof::fuzz::VectorSigner());
  return *signer;
}

// Independent check of an accepted note: every signature line under the
// key's name and id holds the signature the key itself makes of the text.
void CheckAcceptedNote(const sp::Note& note, const std::string& opened_text) {
  Check(opened_text == note.text, "an opened note returns its text");
  absl::StatusOr<std::string> expected = Key().Sign(note.text);
  Check(expected.ok(), "the fixed key signs");
  bool found = false;
  for (const sp::NoteSignature& s : note.signatures) {
    if (s.name != Key().key_name() || s.key_id != Key().key_id()) continue;
    Check(s.signature == *expected, "an accepted note's signature is the key's own signature");
    found = true;
  }
  Check(found, "an accepted note carries a signature line by the key");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view in(reinterpret_cast<const char*>(data), size);
  const sp::NoteVerifier verifier = Key().verifier();

  absl::StatusOr<sp::Note> note = sp::ParseNote(in);
  if (note.ok()) {
    std::string again = note->text + "\n";
    for (const sp::NoteSignature& s : note->signatures) {
      again += sp::FormatSignatureLine(s.name, s.key_id, s.signature);
    }
    Check(again == in, "ParseNote -> format gives the input back");
    Check(!note->signatures.empty() && note->signatures.size() <= sp::kMaxNoteSignatures,
          "1..kMaxNoteSignatures signatures");
  }

  absl::StatusOr<std::string> opened = sp::OpenNote(in, verifier);
  if (opened.ok()) {
    Check(note.ok(), "OpenNote accepts only notes ParseNote accepts");
    CheckAcceptedNote(*note, *opened);
  }

  absl::StatusOr<sp::Checkpoint> signed_cp = sp::OpenCheckpoint(in, verifier);
  if (signed_cp.ok()) {
    Check(opened.ok(), "OpenCheckpoint accepts only notes OpenNote accepts");
    Check(signed_cp->Marshal() == *opened, "a signed checkpoint marshals to the note text");
  }

  // The input as bare note text (and, if it is a note, its text).
  for (absl::string_view text : {in, note.ok() ? absl::string_view(note->text) : in}) {
    absl::StatusOr<sp::Checkpoint> cp = sp::Checkpoint::Parse(text);
    if (cp.ok()) {
      Check(cp->Marshal() == text, "Checkpoint parse -> Marshal gives the text back");
      Check(!cp->origin.empty(), "a checkpoint has an origin");
    }
    absl::StatusOr<sp::InclusionPromise> p = sp::InclusionPromise::Parse(text);
    if (p.ok()) {
      Check(p->Marshal() == text, "InclusionPromise parse -> Marshal gives the text back");
    }
  }

  // A promise note checked against itself as the "final trace note" cannot
  // match its own leaf hash; what matters is that acceptance implies a valid
  // signature, which the OpenNote check above covers for the same bytes.
  absl::StatusOr<sp::InclusionPromise> vp = sp::VerifyPromise(in, verifier, in);
  if (vp.ok()) Check(opened.ok(), "VerifyPromise accepts only signed notes");

  absl::StatusOr<sp::NoteVerifier> vkey = sp::NoteVerifier::FromVerifierKey(in);
  if (vkey.ok()) {
    Check(vkey->verifier_key() == in, "verifier key parse -> format is the identity");
    Check(sp::IsValidKeyName(vkey->name()), "a parsed key has a valid name");
    Check(sp::ComputeKeyId(vkey->name(), vkey->public_key()) == vkey->key_id(),
          "a parsed key's id matches its name and key");
  }
  return 0;
}
