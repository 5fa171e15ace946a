#include "clients/verifier_key_arg.h"

#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "clients/file_io.h"

namespace stepproof::clients {

absl::StatusOr<provenance::NoteVerifier> LoadVerifierKeyArg(
    absl::string_view arg) {
  if (arg.empty()) {
    return absl::InvalidArgumentError(
        "no verifier key: pass --key KEY or --key @FILE");
  }
  std::string source = "verifier key";
  std::string text(arg);
  if (arg.front() == '@') {
    std::string path(arg.substr(1));
    if (path.empty()) {
      return absl::InvalidArgumentError("--key @FILE: the file name is empty");
    }
    absl::StatusOr<std::string> contents = ReadFileToString(path);
    if (!contents.ok()) return contents.status();
    text = std::move(*contents);
    source = absl::StrCat("verifier key in ", path);
  }
  absl::string_view trimmed = absl::StripAsciiWhitespace(text);
  if (trimmed.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(source, " is empty"));
  }
  absl::StatusOr<provenance::NoteVerifier> key =
      provenance::NoteVerifier::FromVerifierKey(trimmed);
  if (!key.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, " does not parse: ", key.status().message()));
  }
  return key;
}

}  // namespace stepproof::clients
