// Writes GGUF version 3 files: metadata in insertion order, tensor infos, then
// tensor data aligned to general.alignment (32 unless set).
//
// Used by the tests (tiny random models) and the benchmark (a large model of
// a real model's shape). Tensor data can be given as bytes or produced lazily
// at write time, so a multi-gigabyte file never has to sit in memory at once.
//
// Thread-safety: not thread-safe; one writer per thread.

#ifndef STEPPROOF_INFERENCE_GGUF_WRITER_H_
#define STEPPROOF_INFERENCE_GGUF_WRITER_H_

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "inference/gguf.h"
#include "inference/tensor_type.h"

namespace stepproof::inference {

class GgufWriter {
 public:
  // Metadata setters append a key (no de-duplication: the caller owns keys).
  void SetString(std::string_view key, std::string_view value);
  void SetUint32(std::string_view key, uint32_t value);
  void SetInt32(std::string_view key, int32_t value);
  void SetUint64(std::string_view key, uint64_t value);
  void SetFloat32(std::string_view key, float value);
  void SetBool(std::string_view key, bool value);
  void SetStringArray(std::string_view key, absl::Span<const std::string> values);
  void SetInt32Array(std::string_view key, absl::Span<const int32_t> values);
  // Sets general.alignment (uint32) and uses it for the data section.
  void SetAlignment(uint32_t alignment);
  // Copies every metadata entry of `file` (general.alignment as SetAlignment)
  // so a rewritten model keeps its tokenizer and hyperparameters.
  // INVALID_ARGUMENT naming the key for a value type this writer cannot
  // write (arrays other than string and int32, 8/16-bit and 64-bit signed
  // integers, float64).
  absl::Status CopyMetadata(const GgufFile& file);

  // Adds a tensor of shape `ne` (ne[0] contiguous) whose raw bytes in `type`
  // are `data`. REQUIRES: data.size() == RowBytes(type, ne[0]) * rows.
  void AddTensor(std::string_view name, TensorType type, std::vector<int64_t> ne,
                 std::string data);
  // Adds a tensor from floats, converting/quantising rows with QuantizeRow.
  void AddTensorFromFloats(std::string_view name, TensorType type,
                           std::vector<int64_t> ne, absl::Span<const float> values);
  // Adds a tensor whose bytes `produce` writes at write time (it is given a
  // buffer of the tensor's exact byte size).
  void AddTensorLazy(std::string_view name, TensorType type, std::vector<int64_t> ne,
                     std::function<void(uint8_t* dst, uint64_t n_bytes)> produce);

  // The whole file as bytes (tests mutate it). REQUIRES: no huge lazy tensors.
  std::string Serialize() const;
  // Writes the file. Returns INTERNAL naming the OS error on failure.
  absl::Status WriteFile(const std::string& path) const;

 private:
  struct Tensor {
    std::string name;
    TensorType type;
    std::vector<int64_t> ne;
    uint64_t n_bytes;
    std::function<void(uint8_t*, uint64_t)> produce;
  };
  void Key(std::string_view key, uint32_t type);
  std::string Header() const;
  // Calls sink for the header then for each tensor's bytes (padded).
  absl::Status Emit(const std::function<absl::Status(const void*, size_t)>& sink) const;

  std::string metadata_;
  uint64_t n_kv_ = 0;
  uint32_t alignment_ = 32;
  std::vector<Tensor> tensors_;
};

}  // namespace stepproof::inference

#endif  // STEPPROOF_INFERENCE_GGUF_WRITER_H_
