#include "services/model_file.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace stepproof::service {
namespace {

absl::Status ErrnoError(absl::string_view what, const std::string& path,
                        int err) {
  std::string message = absl::StrCat(what, " ", path, ": ", strerror(err));
  if (err == ENOENT) return absl::NotFoundError(message);
  if (err == EACCES || err == EPERM) {
    return absl::PermissionDeniedError(message);
  }
  return absl::InternalError(message);
}

absl::Status WriteAll(int fd, const uint8_t* data, size_t size,
                      const std::string& path) {
  while (size > 0) {
    ssize_t n = write(fd, data, size > (1u << 30) ? (1u << 30) : size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("cannot write", path, errno);
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::Status FsyncDirectory(const std::string& dir) {
  int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("cannot open directory", dir, errno);
  absl::Cleanup closer = [fd] { close(fd); };
  if (fsync(fd) != 0) return ErrnoError("cannot fsync directory", dir, errno);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<merkle::Hash> Sha256File(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("cannot open", path, errno);
  absl::Cleanup closer = [fd] { close(fd); };
  merkle::Sha256 sha;
  std::vector<uint8_t> buffer(1 << 20);
  for (;;) {
    ssize_t n = read(fd, buffer.data(), buffer.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("cannot read", path, errno);
    }
    if (n == 0) break;
    sha.Update(absl::Span<const uint8_t>(buffer.data(), static_cast<size_t>(n)));
  }
  return sha.Final();
}

absl::Status MakeDirectories(const std::string& path, uint32_t mode) {
  if (path.empty()) return absl::InvalidArgumentError("empty directory path");
  for (size_t pos = 1; pos <= path.size(); ++pos) {
    if (pos != path.size() && path[pos] != '/') continue;
    std::string prefix = path.substr(0, pos);
    if (mkdir(prefix.c_str(), mode) == 0) continue;
    if (errno != EEXIST) return ErrnoError("cannot create directory", prefix, errno);
    struct stat st {};
    if (stat(prefix.c_str(), &st) != 0) {
      return ErrnoError("cannot stat", prefix, errno);
    }
    if (!S_ISDIR(st.st_mode)) {
      return absl::FailedPreconditionError(
          absl::StrCat(prefix, " exists and is not a directory"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<MaterializedModel> MaterializeModel(const std::string& models_dir,
                                             absl::Span<const uint8_t> bytes) {
  if (bytes.empty()) {
    return absl::InvalidArgumentError("the model to write out is empty");
  }
  if (absl::Status s = MakeDirectories(models_dir, 0700); !s.ok()) return s;
  const merkle::Hash digest = merkle::Sha256Of(bytes);
  const std::string hex = merkle::ToHex(digest);
  const std::string final_path = absl::StrCat(models_dir, "/", hex, ".gguf");

  struct stat st {};
  if (stat(final_path.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
      static_cast<uint64_t>(st.st_size) == bytes.size()) {
    // Renamed into place complete by an earlier start; re-hash so a file
    // damaged or edited since is replaced, never served under this digest.
    absl::StatusOr<merkle::Hash> existing = Sha256File(final_path);
    if (existing.ok() && *existing == digest) {
      return MaterializedModel{final_path, digest};
    }
  }

  std::string tmp = absl::StrCat(final_path, ".tmp.XXXXXX");
  int fd = mkstemp(tmp.data());
  if (fd < 0) return ErrnoError("cannot create", tmp, errno);
  bool renamed = false;
  absl::Cleanup cleanup = [&] {
    if (fd >= 0) close(fd);
    if (!renamed) unlink(tmp.c_str());
  };
  if (absl::Status s = WriteAll(fd, bytes.data(), bytes.size(), tmp); !s.ok()) {
    return s;
  }
  if (fchmod(fd, 0600) != 0) return ErrnoError("cannot chmod", tmp, errno);
  if (fsync(fd) != 0) return ErrnoError("cannot fsync", tmp, errno);
  if (close(fd) != 0) {
    fd = -1;
    return ErrnoError("cannot close", tmp, errno);
  }
  fd = -1;
  if (rename(tmp.c_str(), final_path.c_str()) != 0) {
    return ErrnoError("cannot rename into", final_path, errno);
  }
  renamed = true;
  if (absl::Status s = FsyncDirectory(models_dir); !s.ok()) return s;
  return MaterializedModel{final_path, digest};
}

}  // namespace stepproof::service
