#include "inference/gguf_writer.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"

namespace stepproof::inference {
namespace {

template <typename T>
void Put(std::string* out, T v) {
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  out->append(b, sizeof(T));
}

void PutString(std::string* out, std::string_view s) {
  Put<uint64_t>(out, s.size());
  out->append(s);
}

uint64_t Rows(const std::vector<int64_t>& ne) {
  uint64_t r = 1;
  for (size_t i = 1; i < ne.size(); ++i) r *= static_cast<uint64_t>(ne[i]);
  return r;
}

}  // namespace

void GgufWriter::Key(std::string_view key, uint32_t type) {
  PutString(&metadata_, key);
  Put<uint32_t>(&metadata_, type);
  ++n_kv_;
}

void GgufWriter::SetString(std::string_view key, std::string_view value) {
  Key(key, 8);
  PutString(&metadata_, value);
}
void GgufWriter::SetUint32(std::string_view key, uint32_t value) {
  Key(key, 4);
  Put(&metadata_, value);
}
void GgufWriter::SetInt32(std::string_view key, int32_t value) {
  Key(key, 5);
  Put(&metadata_, value);
}
void GgufWriter::SetUint64(std::string_view key, uint64_t value) {
  Key(key, 10);
  Put(&metadata_, value);
}
void GgufWriter::SetFloat32(std::string_view key, float value) {
  Key(key, 6);
  Put(&metadata_, value);
}
void GgufWriter::SetBool(std::string_view key, bool value) {
  Key(key, 7);
  Put<uint8_t>(&metadata_, value ? 1 : 0);
}
void GgufWriter::SetStringArray(std::string_view key, absl::Span<const std::string> values) {
  Key(key, 9);
  Put<uint32_t>(&metadata_, 8);
  Put<uint64_t>(&metadata_, values.size());
  for (const std::string& v : values) PutString(&metadata_, v);
}
void GgufWriter::SetInt32Array(std::string_view key, absl::Span<const int32_t> values) {
  Key(key, 9);
  Put<uint32_t>(&metadata_, 5);
  Put<uint64_t>(&metadata_, values.size());
  for (int32_t v : values) Put(&metadata_, v);
}
void GgufWriter::SetAlignment(uint32_t alignment) {
  SetUint32("general.alignment", alignment);
  alignment_ = alignment;
}

void GgufWriter::AddTensor(std::string_view name, TensorType type, std::vector<int64_t> ne,
                           std::string data) {
  auto bytes = std::make_shared<std::string>(std::move(data));
  const uint64_t n = bytes->size();
  tensors_.push_back(Tensor{std::string(name), type, std::move(ne), n,
                            [bytes](uint8_t* dst, uint64_t size) { std::memcpy(dst, bytes->data(), size); }});
}

void GgufWriter::AddTensorFromFloats(std::string_view name, TensorType type,
                                     std::vector<int64_t> ne, absl::Span<const float> values) {
  const int64_t row = ne[0];
  const uint64_t rows = Rows(ne);
  const int64_t rb = RowBytes(type, row);
  std::string data(rb * rows, '\0');
  for (uint64_t r = 0; r < rows; ++r) {
    QuantizeRow(type, values.data() + r * row, data.data() + r * rb, row);
  }
  AddTensor(name, type, std::move(ne), std::move(data));
}

void GgufWriter::AddTensorLazy(std::string_view name, TensorType type, std::vector<int64_t> ne,
                               std::function<void(uint8_t*, uint64_t)> produce) {
  const uint64_t n = RowBytes(type, ne[0]) * Rows(ne);
  tensors_.push_back(Tensor{std::string(name), type, std::move(ne), n, std::move(produce)});
}

std::string GgufWriter::Header() const {
  std::string h;
  Put<uint32_t>(&h, 0x46554747);
  Put<uint32_t>(&h, 3);
  Put<uint64_t>(&h, tensors_.size());
  Put<uint64_t>(&h, n_kv_);
  h += metadata_;
  uint64_t offset = 0;
  for (const Tensor& t : tensors_) {
    PutString(&h, t.name);
    Put<uint32_t>(&h, static_cast<uint32_t>(t.ne.size()));
    for (int64_t d : t.ne) Put<uint64_t>(&h, static_cast<uint64_t>(d));
    Put<uint32_t>(&h, static_cast<uint32_t>(t.type));
    Put<uint64_t>(&h, offset);
    offset += t.n_bytes;
    offset += (alignment_ - offset % alignment_) % alignment_;
  }
  h.append((alignment_ - h.size() % alignment_) % alignment_, '\0');
  return h;
}

absl::Status GgufWriter::Emit(const std::function<absl::Status(const void*, size_t)>& sink) const {
  const std::string header = Header();
  if (absl::Status s = sink(header.data(), header.size()); !s.ok()) return s;
  std::string buf;
  for (const Tensor& t : tensors_) {
    uint64_t padded = t.n_bytes + (alignment_ - t.n_bytes % alignment_) % alignment_;
    buf.assign(padded, '\0');
    t.produce(reinterpret_cast<uint8_t*>(buf.data()), t.n_bytes);
    if (absl::Status s = sink(buf.data(), buf.size()); !s.ok()) return s;
  }
  return absl::OkStatus();
}

std::string GgufWriter::Serialize() const {
  std::string out;
  Emit([&out](const void* p, size_t n) {
    out.append(static_cast<const char*>(p), n);
    return absl::OkStatus();
  }).IgnoreError();
  return out;
}

absl::Status GgufWriter::WriteFile(const std::string& path) const {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return absl::InternalError(absl::StrCat(path, ": ", std::strerror(errno)));
  absl::Status status = Emit([f, &path](const void* p, size_t n) {
    if (std::fwrite(p, 1, n, f) != n) {
      return absl::InternalError(absl::StrCat(path, ": write: ", std::strerror(errno)));
    }
    return absl::OkStatus();
  });
  if (std::fclose(f) != 0 && status.ok()) {
    status = absl::InternalError(absl::StrCat(path, ": close: ", std::strerror(errno)));
  }
  return status;
}

absl::Status GgufWriter::CopyMetadata(const GgufFile& file) {
  for (const auto& [key, v] : file.metadata()) {
    switch (v.type) {
      case GgufValueType::kString: SetString(key, v.str); break;
      case GgufValueType::kUint32:
        if (key == "general.alignment") {
          SetAlignment(static_cast<uint32_t>(v.u));
        } else {
          SetUint32(key, static_cast<uint32_t>(v.u));
        }
        break;
      case GgufValueType::kInt32: SetInt32(key, static_cast<int32_t>(v.i)); break;
      case GgufValueType::kUint64: SetUint64(key, v.u); break;
      case GgufValueType::kFloat32: SetFloat32(key, static_cast<float>(v.f)); break;
      case GgufValueType::kBool: SetBool(key, v.u != 0); break;
      case GgufValueType::kArray:
        if (v.array_type == GgufValueType::kString) {
          std::vector<std::string> strings(v.array_strings.begin(), v.array_strings.end());
          SetStringArray(key, strings);
        } else if (v.array_type == GgufValueType::kInt32) {
          std::vector<int32_t> values(v.array_count);
          std::memcpy(values.data(), v.array_data, values.size() * sizeof(int32_t));
          SetInt32Array(key, values);
        } else {
          return absl::InvalidArgumentError(absl::StrCat("unsupported array type in ", key));
        }
        break;
      default: return absl::InvalidArgumentError(absl::StrCat("unsupported metadata type in ", key));
    }
  }
  return absl::OkStatus();
}

}  // namespace stepproof::inference
