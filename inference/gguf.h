// A GGUF (version 2 or 3) file reader over a read-only memory mapping.
//
// Layout (docs/ENGINE.md): "GGUF" magic, uint32 version, uint64 tensor count,
// uint64 metadata count; metadata key/value pairs; tensor infos (name, n_dims,
// uint64 ne[n_dims], uint32 ggml type, uint64 offset); padding to
// general.alignment (default 32); tensor data. All integers little-endian.
// ne[0] is the contiguous dimension.
//
// Every length, count, offset and size is checked against the file before it
// is used, with overflow-safe arithmetic: a truncated or hostile file gives a
// DATA_LOSS / INVALID_ARGUMENT error naming the problem, never an
// out-of-bounds read. Tensor data is not copied: GgufTensor::data points into
// the mapping, which the GgufFile owns.
//
// Thread-safety: immutable after Open(); const methods may be called from any
// thread.

#ifndef STEPPROOF_INFERENCE_GGUF_H_
#define STEPPROOF_INFERENCE_GGUF_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "inference/mapped_file.h"
#include "inference/tensor_type.h"

namespace stepproof::inference {

enum class GgufValueType : uint32_t {
  kUint8 = 0, kInt8 = 1, kUint16 = 2, kInt16 = 3, kUint32 = 4, kInt32 = 5,
  kFloat32 = 6, kBool = 7, kString = 8, kArray = 9, kUint64 = 10, kInt64 = 11,
  kFloat64 = 12,
};

// One metadata value. Scalars are widened into `i` / `u` / `f`; strings and
// string-array elements point into the mapping; numeric arrays keep a pointer
// to their raw little-endian elements.
struct GgufValue {
  GgufValueType type = GgufValueType::kUint8;
  int64_t i = 0;   // signed integer types and bool
  uint64_t u = 0;  // unsigned integer types and bool
  double f = 0;    // float types (and every numeric type, converted)
  std::string_view str;
  // Arrays: element type, count, and either strings or the raw elements.
  GgufValueType array_type = GgufValueType::kUint8;
  uint64_t array_count = 0;
  std::vector<std::string_view> array_strings;
  const uint8_t* array_data = nullptr;
};

struct GgufTensor {
  std::string name;
  TensorType type = TensorType::kF32;
  std::vector<int64_t> ne;  // ne[0] contiguous
  int64_t n_elements = 0;
  uint64_t offset = 0;      // from the start of the file
  uint64_t n_bytes = 0;
  const uint8_t* data = nullptr;  // into the mapping
};

class GgufFile {
 public:
  // Maps and parses `path`. Returns NOT_FOUND if absent; DATA_LOSS if the file
  // is truncated or an offset/size points outside it; INVALID_ARGUMENT for a
  // bad magic, unsupported version, unknown value type, duplicate key or
  // tensor name, bad alignment, misaligned or overlapping tensor data, or a
  // tensor type this engine cannot compute with.
  static absl::StatusOr<GgufFile> Open(const std::string& path);

  GgufFile(GgufFile&&) = default;
  GgufFile& operator=(GgufFile&&) = default;

  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }
  const std::string& path() const { return file_.path(); }
  uint64_t file_size() const { return file_.size(); }

  // Metadata in file order.
  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return metadata_; }
  const GgufValue* Find(std::string_view key) const;

  // Typed accessors. Return NOT_FOUND if the key is absent, INVALID_ARGUMENT
  // if it has another type (integers of any width are accepted by GetInt /
  // GetUint when the value fits; GetFloat accepts any numeric type).
  absl::StatusOr<std::string> GetString(std::string_view key) const;
  absl::StatusOr<int64_t> GetInt(std::string_view key) const;
  absl::StatusOr<double> GetFloat(std::string_view key) const;
  // String array (e.g. tokenizer.ggml.tokens).
  absl::StatusOr<std::vector<std::string_view>> GetStringArray(std::string_view key) const;
  // Integer array of any integer element type, widened.
  absl::StatusOr<std::vector<int64_t>> GetIntArray(std::string_view key) const;

  const std::vector<GgufTensor>& tensors() const { return tensors_; }
  const GgufTensor* FindTensor(std::string_view name) const;

 private:
  explicit GgufFile(MappedFile file) : file_(std::move(file)) {}
  absl::Status Parse();

  MappedFile file_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string, GgufValue>> metadata_;
  absl::flat_hash_map<std::string, size_t> metadata_index_;
  std::vector<GgufTensor> tensors_;
  absl::flat_hash_map<std::string, size_t> tensor_index_;
};

// Upper bounds the reader enforces (a hostile file cannot make it allocate
// more than the file could describe).
inline constexpr uint32_t kGgufMaxDims = 4;

}  // namespace stepproof::inference

#endif  // STEPPROOF_INFERENCE_GGUF_H_
