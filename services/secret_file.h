// Files that hold secrets (the TLS private key, the API token) must not be
// readable by group or others, as ssh insists for its keys and as the signing
// key already is (provenance/signer.h).
#ifndef STEPPROOF_SERVICES_SECRET_FILE_H_
#define STEPPROOF_SERVICES_SECRET_FILE_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace stepproof::service {

// OK when `path` is a regular file with no group or other permission bits.
// PERMISSION_DENIED naming the flag, the mode and the fix otherwise;
// NOT_FOUND / INVALID_ARGUMENT when it is missing or not a regular file.
absl::Status CheckSecretFileMode(const std::string& path, absl::string_view flag);

}  // namespace stepproof::service

#endif  // STEPPROOF_SERVICES_SECRET_FILE_H_
