#include "provenance/note.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "provenance/byte_codec.h"

namespace stepproof::provenance {
namespace {

constexpr absl::string_view kSigPrefix = "\xE2\x80\x94 ";  // U+2014, space

absl::Status Malformed(absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("malformed note: ", why));
}

std::string KeyLabel(absl::string_view name, uint32_t id) {
  return absl::StrCat(name, "+", absl::StrFormat("%08x", id));
}

absl::Status CheckNoteChars(absl::string_view s) {
  if (!IsValidUtf8(s)) return Malformed("not valid UTF-8");
  for (char c : s) {
    if (static_cast<unsigned char>(c) < 0x20 && c != '\n') {
      return Malformed("contains an ASCII control character other than newline");
    }
  }
  return absl::OkStatus();
}

}  // namespace

std::string FormatSignatureLine(absl::string_view name, uint32_t key_id,
                                absl::string_view signature) {
  std::string blob;
  for (int s = 24; s >= 0; s -= 8) blob.push_back(static_cast<char>(key_id >> s));
  blob.append(signature.data(), signature.size());
  return absl::StrCat(kSigPrefix, name, " ", absl::Base64Escape(blob), "\n");
}

absl::StatusOr<Note> ParseNote(absl::string_view note) {
  if (auto s = CheckNoteChars(note); !s.ok()) return s;
  size_t split = note.rfind("\n\n");
  if (split == absl::string_view::npos) {
    return Malformed("no blank line before the signatures");
  }
  Note out;
  out.text = std::string(note.substr(0, split + 1));
  absl::string_view sigs = note.substr(split + 2);
  if (sigs.empty()) return Malformed("no signature lines");
  if (sigs.back() != '\n') {
    return Malformed("last signature line does not end in a newline");
  }
  while (!sigs.empty()) {
    size_t nl = sigs.find('\n');
    absl::string_view line = sigs.substr(0, nl);
    sigs.remove_prefix(nl + 1);
    if (line.substr(0, kSigPrefix.size()) != kSigPrefix) {
      return Malformed("signature line does not start with \"\u2014 \"");
    }
    line.remove_prefix(kSigPrefix.size());
    size_t sp = line.find(' ');
    if (sp == absl::string_view::npos) {
      return Malformed("signature line has no space between name and signature");
    }
    absl::string_view name = line.substr(0, sp), b64 = line.substr(sp + 1);
    if (!IsValidKeyName(name)) {
      return Malformed(absl::StrCat("invalid key name \"", name, "\""));
    }
    std::string blob;
    if (b64.empty() || !absl::Base64Unescape(b64, &blob) ||
        absl::Base64Escape(blob) != b64) {
      return Malformed(absl::StrCat("signature by \"", name,
                                    "\" is not canonical padded base64"));
    }
    if (blob.size() < 5) {
      return Malformed(absl::StrCat("signature by \"", name, "\" is too short"));
    }
    if (out.signatures.size() == kMaxNoteSignatures) {
      return Malformed(absl::StrCat("more than ", kMaxNoteSignatures,
                                    " signatures"));
    }
    NoteSignature sig;
    sig.name = std::string(name);
    for (int i = 0; i < 4; ++i) {
      sig.key_id = (sig.key_id << 8) | static_cast<uint8_t>(blob[i]);
    }
    sig.signature = blob.substr(4);
    out.signatures.push_back(std::move(sig));
  }
  return out;
}

absl::StatusOr<std::string> OpenNote(absl::string_view note,
                                     const NoteVerifier& verifier) {
  auto parsed = ParseNote(note);
  if (!parsed.ok()) return parsed.status();
  bool verified = false;
  for (const NoteSignature& sig : parsed->signatures) {
    if (sig.name != verifier.name() || sig.key_id != verifier.key_id()) {
      continue;  // unknown key: ignored
    }
    if (!verifier.Verify(parsed->text, sig.signature)) {
      return absl::FailedPreconditionError(
          absl::StrCat("signature does not verify with key ",
                       KeyLabel(verifier.name(), verifier.key_id())));
    }
    verified = true;
  }
  if (!verified) {
    return absl::NotFoundError(
        absl::StrCat("note has no signature by key ",
                     KeyLabel(verifier.name(), verifier.key_id())));
  }
  return std::move(parsed->text);
}

}  // namespace stepproof::provenance
