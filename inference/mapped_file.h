// A read-only memory mapping of a whole file.
//
// Thread-safety: immutable after Open(); data() may be read from any thread.
// Ownership: the mapping lives as long as the MappedFile (move-only).

#ifndef STEPPROOF_INFERENCE_MAPPED_FILE_H_
#define STEPPROOF_INFERENCE_MAPPED_FILE_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace stepproof::inference {

class MappedFile {
 public:
  // Maps `path` read-only. Returns NOT_FOUND if it does not exist,
  // INVALID_ARGUMENT if it is not a regular file, INTERNAL on other OS errors.
  // An empty file maps to size() == 0 and data() == nullptr.
  static absl::StatusOr<MappedFile> Open(const std::string& path);

  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  MappedFile(std::string path, const uint8_t* data, size_t size)
      : path_(std::move(path)), data_(data), size_(size) {}
  void Release();

  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace stepproof::inference

#endif  // STEPPROOF_INFERENCE_MAPPED_FILE_H_
