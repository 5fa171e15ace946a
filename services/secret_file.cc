#include "services/secret_file.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace stepproof::service {

absl::Status CheckSecretFileMode(const std::string& path, absl::string_view flag) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    std::string message = absl::StrCat(flag, ": cannot stat ", path, ": ", strerror(errno));
    return errno == ENOENT ? absl::NotFoundError(message) : absl::InternalError(message);
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat(flag, ": ", path, " is not a regular file"));
  }
  if ((st.st_mode & 077) != 0) {
    return absl::PermissionDeniedError(absl::StrFormat(
        "%s: %s has mode %04o: a secret must not be accessible by group or "
        "others (chmod 600 %s)",
        std::string(flag), path, st.st_mode & 07777, path));
  }
  return absl::OkStatus();
}

}  // namespace stepproof::service
