// BearerAuth: the API token check for calls that change state (Generate,
// RecordAnchor). Read calls stay public: this is a transparency service.
// The token comes from --api-token-file; clients send the gRPC metadata
// `authorization: Bearer <token>`. The comparison is constant-time in the
// token's content (both sides are hashed with SHA-256 first, so not even the
// length leaks through timing).
//
// Thread-safety: immutable after construction.
#ifndef STEPPROOF_SERVICES_AUTH_H_
#define STEPPROOF_SERVICES_AUTH_H_

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "merkle/hash.h"

namespace stepproof::service {

class BearerAuth {
 public:
  // No token: every call is allowed.
  BearerAuth() = default;
  // REQUIRES: token non-empty.
  explicit BearerAuth(absl::string_view token);

  // Reads the token file: its content with surrounding whitespace removed.
  // NOT_FOUND / PERMISSION_DENIED / INTERNAL naming the path for I/O errors,
  // INVALID_ARGUMENT if the token is empty or holds whitespace or control
  // characters inside.
  static absl::StatusOr<BearerAuth> FromFile(const std::string& path);

  bool required() const { return digest_.has_value(); }

  // `authorization` is the metadata value (nullopt when absent). OK when no
  // token is configured, or the value is "Bearer <token>" with the right
  // token; UNAUTHENTICATED otherwise, with a message that never includes
  // what was sent.
  absl::Status Check(std::optional<absl::string_view> authorization) const;

 private:
  std::optional<merkle::Hash> digest_;
};

}  // namespace stepproof::service

#endif  // STEPPROOF_SERVICES_AUTH_H_
