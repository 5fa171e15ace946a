#include "services/auth.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "services/secret_file.h"

namespace stepproof::service {
namespace {

bool ConstantTimeEqual(const merkle::Hash& a, const merkle::Hash& b) {
  volatile uint8_t diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff = diff | (a[i] ^ b[i]);
  return diff == 0;
}

}  // namespace

BearerAuth::BearerAuth(absl::string_view token)
    : digest_(merkle::Sha256Of(std::string_view(token.data(), token.size()))) {}

absl::StatusOr<BearerAuth> BearerAuth::FromFile(const std::string& path) {
  if (absl::Status mode = CheckSecretFileMode(path, "--api-token-file"); !mode.ok()) {
    return mode;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int err = errno;
    std::string message =
        absl::StrCat("--api-token-file: cannot read ", path, ": ", strerror(err));
    if (err == ENOENT) return absl::NotFoundError(message);
    if (err == EACCES) return absl::PermissionDeniedError(message);
    return absl::InternalError(message);
  }
  std::stringstream content;
  content << in.rdbuf();
  std::string token(absl::StripAsciiWhitespace(content.str()));
  if (token.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--api-token-file: ", path, " holds no token"));
  }
  for (char c : token) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--api-token-file: the token in ", path,
          " contains whitespace or control characters"));
    }
  }
  return BearerAuth(token);
}

absl::Status BearerAuth::Check(
    std::optional<absl::string_view> authorization) const {
  if (!digest_.has_value()) return absl::OkStatus();
  if (!authorization.has_value()) {
    return absl::UnauthenticatedError(
        "this call needs an API token: send metadata 'authorization: Bearer <token>'");
  }
  constexpr absl::string_view kScheme = "Bearer ";
  if (authorization->size() < kScheme.size() ||
      !absl::EqualsIgnoreCase(authorization->substr(0, kScheme.size()), kScheme)) {
    return absl::UnauthenticatedError(
        "the authorization metadata is not 'Bearer <token>'");
  }
  absl::string_view token = authorization->substr(kScheme.size());
  const merkle::Hash got = merkle::Sha256Of(std::string_view(token.data(), token.size()));
  if (!ConstantTimeEqual(got, *digest_)) {
    return absl::UnauthenticatedError("the API token is not valid");
  }
  return absl::OkStatus();
}

}  // namespace stepproof::service
