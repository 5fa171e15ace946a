// C2SP signed notes (https://c2sp.org/signed-note): a UTF-8 text that ends in
// a newline, a blank line, then one or more signature lines
//   "\u2014 <key name> <base64(4-byte key id || signature)>\n".
//
// Parsing rejects malformed notes; opening ignores signatures by unknown keys
// and accepts at most kMaxNoteSignatures signatures.
//
// Thread-safety: pure functions.
#ifndef STEPPROOF_PROVENANCE_NOTE_H_
#define STEPPROOF_PROVENANCE_NOTE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "provenance/verifier_key.h"

namespace stepproof::provenance {

class Signer;

inline constexpr size_t kMaxNoteSignatures = 16;

struct NoteSignature {
  std::string name;
  uint32_t key_id = 0;
  std::string signature;  // raw bytes after the key id
};

struct Note {
  std::string text;  // ends with "\n"
  std::vector<NoteSignature> signatures;
};

// Splits and checks a note. INVALID_ARGUMENT naming the problem: no blank
// line before signatures, text empty or not ending in a newline, text not
// UTF-8 or holding control characters other than newline, a malformed
// signature line, no signatures, more than kMaxNoteSignatures.
absl::StatusOr<Note> ParseNote(absl::string_view note);

// A signature line (with its trailing newline).
std::string FormatSignatureLine(absl::string_view name, uint32_t key_id,
                                absl::string_view signature);

// The text plus one signature line by `signer`. INVALID_ARGUMENT if `text` is
// not valid note text. Defined in stepproof_provenance (the signing library).
absl::StatusOr<std::string> SignNote(absl::string_view text,
                                     const Signer& signer);

// The note's text if the note is well formed and carries a valid signature by
// `verifier` (matched by name and key id; others are ignored). Errors:
//   INVALID_ARGUMENT     malformed note
//   NOT_FOUND            "note has no signature by key <name>+<id>"
//   FAILED_PRECONDITION  "signature does not verify with key <name>+<id>"
//                        (a bad signature by the key rejects the whole note)
absl::StatusOr<std::string> OpenNote(absl::string_view note,
                                     const NoteVerifier& verifier);

}  // namespace stepproof::provenance

#endif  // STEPPROOF_PROVENANCE_NOTE_H_
