// The --key argument of the audit CLI: a C2SP verifier key given inline
// ("name+1234abcd+AQ...") or as "@path" to a file holding it (surrounding
// whitespace, e.g. the trailing newline of `stepproof key > f`, is ignored).
//
// Thread-safety: pure functions (apart from reading the file).
#ifndef STEPPROOF_CLIENTS_VERIFIER_KEY_ARG_H_
#define STEPPROOF_CLIENTS_VERIFIER_KEY_ARG_H_

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "provenance/verifier_key.h"

namespace stepproof::clients {

// INVALID_ARGUMENT for an empty argument or a key that does not parse
// (the message says which, and names the file for @path); the read errors of
// ReadFileToString for an unreadable file.
absl::StatusOr<provenance::NoteVerifier> LoadVerifierKeyArg(
    absl::string_view arg);

}  // namespace stepproof::clients

#endif  // STEPPROOF_CLIENTS_VERIFIER_KEY_ARG_H_
