// The model file the server loads: the embedded default written out to the
// data directory, and the streaming SHA-256 of a weights file (the header's
// model digest).
//
// Thread-safety: pure functions over the file system; concurrent
// MaterializeModel calls for the same bytes are safe (each writes its own
// temporary file and renames it over the same final name).
#ifndef STEPPROOF_SERVICES_MODEL_FILE_H_
#define STEPPROOF_SERVICES_MODEL_FILE_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "merkle/hash.h"

namespace stepproof::service {

// SHA-256 of the file at `path`, read in 1 MiB chunks (never all in memory).
// NOT_FOUND if it does not exist; INTERNAL naming the path and errno text for
// other I/O errors.
absl::StatusOr<merkle::Hash> Sha256File(const std::string& path);

struct MaterializedModel {
  std::string path;
  merkle::Hash digest{};  // SHA-256 of the file's content (== of `bytes`)
};

// Writes `bytes` to <models_dir>/<sha256 hex>.gguf unless a file of that name
// with that exact content (re-hashed) is already there, and returns its path
// and digest. The write is atomic: a
// temporary file in the same folder, fsync, rename, fsync of the folder, so a
// crash never leaves a partial model under the final name. Creates models_dir
// (mode 0700) if needed. INVALID_ARGUMENT for empty bytes; INTERNAL naming
// the path and errno text for I/O errors.
absl::StatusOr<MaterializedModel> MaterializeModel(const std::string& models_dir,
                                             absl::Span<const uint8_t> bytes);

// mkdir -p with `mode` for the directories it creates. INTERNAL naming the
// path on failure, FAILED_PRECONDITION if a component is not a directory.
absl::Status MakeDirectories(const std::string& path, uint32_t mode);

}  // namespace stepproof::service

#endif  // STEPPROOF_SERVICES_MODEL_FILE_H_
