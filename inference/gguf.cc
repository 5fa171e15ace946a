#include "inference/gguf.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace stepproof::inference {
namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" little-endian

// A bounds-checked little-endian reader over [data, data + size).
class Cursor {
 public:
  Cursor(const uint8_t* data, uint64_t size) : data_(data), size_(size) {}

  uint64_t pos() const { return pos_; }
  uint64_t remaining() const { return size_ - pos_; }

  absl::Status Need(uint64_t n, std::string_view what) const {
    if (n > remaining()) {
      return absl::DataLossError(absl::StrCat("GGUF truncated: ", std::string(what), " at byte ", pos_,
                                              " needs ", n, " bytes, file has ", remaining(),
                                              " left"));
    }
    return absl::OkStatus();
  }

  template <typename T>
  absl::StatusOr<T> Read(std::string_view what) {
    if (absl::Status s = Need(sizeof(T), what); !s.ok()) return s;
    T v;
    std::memcpy(&v, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  absl::StatusOr<std::string_view> ReadString(std::string_view what) {
    absl::StatusOr<uint64_t> len = Read<uint64_t>(what);
    if (!len.ok()) return len.status();
    if (absl::Status s = Need(*len, what); !s.ok()) return s;
    std::string_view out(reinterpret_cast<const char*>(data_ + pos_), *len);
    pos_ += *len;
    return out;
  }

  const uint8_t* here() const { return data_ + pos_; }
  void Skip(uint64_t n) { pos_ += n; }  // REQUIRES: Need(n) succeeded

 private:
  const uint8_t* data_;
  uint64_t size_;
  uint64_t pos_ = 0;
};

// Size of a fixed-width scalar type, 0 for string / array / unknown.
uint64_t ScalarSize(GgufValueType t) {
  switch (t) {
    case GgufValueType::kUint8:
    case GgufValueType::kInt8:
    case GgufValueType::kBool: return 1;
    case GgufValueType::kUint16:
    case GgufValueType::kInt16: return 2;
    case GgufValueType::kUint32:
    case GgufValueType::kInt32:
    case GgufValueType::kFloat32: return 4;
    case GgufValueType::kUint64:
    case GgufValueType::kInt64:
    case GgufValueType::kFloat64: return 8;
    default: return 0;
  }
}

bool KnownType(uint32_t t) { return t <= 12; }

bool IsInteger(GgufValueType t) {
  return ScalarSize(t) != 0 && t != GgufValueType::kFloat32 && t != GgufValueType::kFloat64;
}

// Decodes one scalar of type t at p into v.
void DecodeScalar(GgufValueType t, const uint8_t* p, GgufValue* v) {
  auto load = [p](auto x) {
    std::memcpy(&x, p, sizeof x);
    return x;
  };
  switch (t) {
    case GgufValueType::kUint8: v->u = load(uint8_t{}); v->i = static_cast<int64_t>(v->u); break;
    case GgufValueType::kBool: v->u = load(uint8_t{}) != 0; v->i = static_cast<int64_t>(v->u); break;
    case GgufValueType::kInt8: v->i = load(int8_t{}); v->u = static_cast<uint64_t>(v->i); break;
    case GgufValueType::kUint16: v->u = load(uint16_t{}); v->i = static_cast<int64_t>(v->u); break;
    case GgufValueType::kInt16: v->i = load(int16_t{}); v->u = static_cast<uint64_t>(v->i); break;
    case GgufValueType::kUint32: v->u = load(uint32_t{}); v->i = static_cast<int64_t>(v->u); break;
    case GgufValueType::kInt32: v->i = load(int32_t{}); v->u = static_cast<uint64_t>(v->i); break;
    case GgufValueType::kUint64: v->u = load(uint64_t{}); v->i = static_cast<int64_t>(v->u); break;
    case GgufValueType::kInt64: v->i = load(int64_t{}); v->u = static_cast<uint64_t>(v->i); break;
    case GgufValueType::kFloat32: v->f = load(float{}); return;
    case GgufValueType::kFloat64: v->f = load(double{}); return;
    default: return;
  }
  v->f = t == GgufValueType::kUint64 ? static_cast<double>(v->u) : static_cast<double>(v->i);
}

bool FitsInt64(const GgufValue& v) {
  return v.type != GgufValueType::kUint64 || v.u <= static_cast<uint64_t>(INT64_MAX);
}

}  // namespace

absl::StatusOr<GgufFile> GgufFile::Open(const std::string& path) {
  absl::StatusOr<MappedFile> mapped = MappedFile::Open(path);
  if (!mapped.ok()) return mapped.status();
  GgufFile file(*std::move(mapped));
  if (absl::Status s = file.Parse(); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat(path, ": ", s.message()));
  }
  return file;
}

absl::Status GgufFile::Parse() {
  Cursor c(file_.data(), file_.size());
  absl::StatusOr<uint32_t> magic = c.Read<uint32_t>("magic");
  if (!magic.ok()) return magic.status();
  if (*magic != kMagic) return absl::InvalidArgumentError("not a GGUF file (bad magic)");
  absl::StatusOr<uint32_t> version = c.Read<uint32_t>("version");
  if (!version.ok()) return version.status();
  if (*version != 2 && *version != 3) {
    return absl::InvalidArgumentError(absl::StrCat("unsupported GGUF version ", *version));
  }
  version_ = *version;
  absl::StatusOr<uint64_t> n_tensors = c.Read<uint64_t>("tensor count");
  if (!n_tensors.ok()) return n_tensors.status();
  absl::StatusOr<uint64_t> n_kv = c.Read<uint64_t>("metadata count");
  if (!n_kv.ok()) return n_kv.status();
  // Each key/value needs >= 13 bytes, each tensor info >= 24: bound the counts
  // by the file before reserving anything.
  if (*n_kv > c.remaining() / 13) {
    return absl::DataLossError(absl::StrCat("metadata count ", *n_kv, " exceeds what the file holds"));
  }
  if (*n_tensors > c.remaining() / 24) {
    return absl::DataLossError(absl::StrCat("tensor count ", *n_tensors, " exceeds what the file holds"));
  }

  metadata_.reserve(*n_kv);
  for (uint64_t k = 0; k < *n_kv; ++k) {
    absl::StatusOr<std::string_view> key = c.ReadString(absl::StrCat("metadata key #", k));
    if (!key.ok()) return key.status();
    const std::string key_str(*key);
    absl::StatusOr<uint32_t> raw_type = c.Read<uint32_t>(absl::StrCat("type of ", key_str));
    if (!raw_type.ok()) return raw_type.status();
    if (!KnownType(*raw_type)) {
      return absl::InvalidArgumentError(absl::StrCat("metadata ", key_str, ": unknown value type ", *raw_type));
    }
    GgufValue v;
    v.type = static_cast<GgufValueType>(*raw_type);
    if (v.type == GgufValueType::kString) {
      absl::StatusOr<std::string_view> s = c.ReadString(key_str);
      if (!s.ok()) return s.status();
      v.str = *s;
    } else if (v.type == GgufValueType::kArray) {
      absl::StatusOr<uint32_t> et = c.Read<uint32_t>(absl::StrCat(key_str, " element type"));
      if (!et.ok()) return et.status();
      if (!KnownType(*et) || *et == static_cast<uint32_t>(GgufValueType::kArray)) {
        return absl::InvalidArgumentError(absl::StrCat("metadata ", key_str, ": unsupported array element type ", *et));
      }
      absl::StatusOr<uint64_t> count = c.Read<uint64_t>(absl::StrCat(key_str, " array count"));
      if (!count.ok()) return count.status();
      v.array_type = static_cast<GgufValueType>(*et);
      v.array_count = *count;
      if (v.array_type == GgufValueType::kString) {
        if (*count > c.remaining() / 8) {
          return absl::DataLossError(absl::StrCat("metadata ", key_str, ": array count ", *count, " exceeds the file"));
        }
        v.array_strings.reserve(*count);
        for (uint64_t i = 0; i < *count; ++i) {
          absl::StatusOr<std::string_view> s = c.ReadString(key_str);
          if (!s.ok()) return s.status();
          v.array_strings.push_back(*s);
        }
      } else {
        const uint64_t es = ScalarSize(v.array_type);
        if (*count > c.remaining() / es) {
          return absl::DataLossError(absl::StrCat("metadata ", key_str, ": array of ", *count, " elements exceeds the file"));
        }
        v.array_data = c.here();
        c.Skip(*count * es);
      }
    } else {
      const uint64_t size = ScalarSize(v.type);
      if (absl::Status s = c.Need(size, key_str); !s.ok()) return s;
      DecodeScalar(v.type, c.here(), &v);
      c.Skip(size);
    }
    if (!metadata_index_.emplace(key_str, metadata_.size()).second) {
      return absl::InvalidArgumentError(absl::StrCat("duplicate metadata key ", key_str));
    }
    metadata_.emplace_back(key_str, std::move(v));
  }

  if (const GgufValue* a = Find("general.alignment"); a != nullptr) {
    if (!IsInteger(a->type) || a->i <= 0 || a->i > (1 << 20) || (a->i & (a->i - 1)) != 0) {
      return absl::InvalidArgumentError("general.alignment must be a power of two integer <= 2^20");
    }
    alignment_ = static_cast<uint64_t>(a->i);
  }

  tensors_.reserve(*n_tensors);
  for (uint64_t t = 0; t < *n_tensors; ++t) {
    absl::StatusOr<std::string_view> name = c.ReadString(absl::StrCat("tensor name #", t));
    if (!name.ok()) return name.status();
    GgufTensor info;
    info.name = std::string(*name);
    absl::StatusOr<uint32_t> n_dims = c.Read<uint32_t>(absl::StrCat(info.name, " n_dims"));
    if (!n_dims.ok()) return n_dims.status();
    if (*n_dims == 0 || *n_dims > kGgufMaxDims) {
      return absl::InvalidArgumentError(absl::StrCat("tensor ", info.name, ": n_dims ", *n_dims, " not in 1..4"));
    }
    int64_t n = 1;
    for (uint32_t d = 0; d < *n_dims; ++d) {
      absl::StatusOr<uint64_t> ne = c.Read<uint64_t>(absl::StrCat(info.name, " dims"));
      if (!ne.ok()) return ne.status();
      if (*ne == 0 || *ne > static_cast<uint64_t>(INT64_MAX) / static_cast<uint64_t>(n)) {
        return absl::InvalidArgumentError(absl::StrCat("tensor ", info.name, ": bad dimension ", *ne));
      }
      info.ne.push_back(static_cast<int64_t>(*ne));
      n *= static_cast<int64_t>(*ne);
    }
    info.n_elements = n;
    absl::StatusOr<uint32_t> raw_type = c.Read<uint32_t>(absl::StrCat(info.name, " type"));
    if (!raw_type.ok()) return raw_type.status();
    std::optional<TensorType> type = SupportedTensorType(*raw_type);
    if (!type.has_value()) {
      return absl::InvalidArgumentError(absl::StrCat("tensor ", info.name, ": ggml type ", *raw_type,
                                                     " is not supported (F32, F16, BF16, Q8_0, Q4_K, Q6_K are)"));
    }
    info.type = *type;
    if (info.ne[0] % TypeBlockValues(info.type) != 0) {
      return absl::InvalidArgumentError(absl::StrCat("tensor ", info.name, ": row length ", info.ne[0],
                                                     " is not a multiple of the ", std::string(TensorTypeName(info.type)),
                                                     " block size"));
    }
    // Bound the block count by the file before multiplying: n_elements up to
    // 2^63 times 4 bytes (F32) would wrap around to a small n_bytes.
    const uint64_t n_blocks = static_cast<uint64_t>(n / TypeBlockValues(info.type));
    if (n_blocks > file_.size() / static_cast<uint64_t>(TypeBlockBytes(info.type))) {
      return absl::DataLossError(absl::StrCat("tensor ", info.name, ": ", n,
                                              " elements need more bytes than the file has"));
    }
    info.n_bytes = n_blocks * static_cast<uint64_t>(TypeBlockBytes(info.type));
    absl::StatusOr<uint64_t> offset = c.Read<uint64_t>(absl::StrCat(info.name, " offset"));
    if (!offset.ok()) return offset.status();
    if (*offset % alignment_ != 0) {
      return absl::InvalidArgumentError(absl::StrCat("tensor ", info.name, ": offset ", *offset,
                                                     " is not a multiple of the alignment ", alignment_));
    }
    info.offset = *offset;  // relative for now
    if (!tensor_index_.emplace(info.name, tensors_.size()).second) {
      return absl::InvalidArgumentError(absl::StrCat("duplicate tensor name ", info.name));
    }
    tensors_.push_back(std::move(info));
  }

  // Data starts at the next multiple of the alignment.
  const uint64_t end = c.pos();
  const uint64_t pad = (alignment_ - end % alignment_) % alignment_;
  data_offset_ = end + pad;
  if (tensors_.empty()) {
    // A vocabulary-only file may end right after its metadata.
    return absl::OkStatus();
  }
  if (data_offset_ > file_.size()) {
    return absl::DataLossError("GGUF truncated before the tensor data");
  }
  const uint64_t data_size = file_.size() - data_offset_;
  std::vector<size_t> order(tensors_.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  for (GgufTensor& t : tensors_) {
    if (t.offset > data_size || t.n_bytes > data_size - t.offset) {
      return absl::DataLossError(absl::StrCat("tensor ", t.name, ": data [", t.offset, ", +", t.n_bytes,
                                              ") lies outside the file's ", data_size, " data bytes"));
    }
    t.offset += data_offset_;
    t.data = file_.data() + t.offset;
  }
  std::sort(order.begin(), order.end(),
            [this](size_t a, size_t b) { return tensors_[a].offset < tensors_[b].offset; });
  for (size_t i = 1; i < order.size(); ++i) {
    const GgufTensor& prev = tensors_[order[i - 1]];
    const GgufTensor& cur = tensors_[order[i]];
    if (prev.offset + prev.n_bytes > cur.offset) {
      return absl::InvalidArgumentError(absl::StrCat("tensors ", prev.name, " and ", cur.name, " overlap"));
    }
  }
  return absl::OkStatus();
}

const GgufValue* GgufFile::Find(std::string_view key) const {
  auto it = metadata_index_.find(absl::string_view(key.data(), key.size()));
  return it == metadata_index_.end() ? nullptr : &metadata_[it->second].second;
}

const GgufTensor* GgufFile::FindTensor(std::string_view name) const {
  auto it = tensor_index_.find(absl::string_view(name.data(), name.size()));
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

absl::StatusOr<std::string> GgufFile::GetString(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return absl::NotFoundError(absl::StrCat("metadata key ", std::string(key), " is missing"));
  if (v->type != GgufValueType::kString) {
    return absl::InvalidArgumentError(absl::StrCat("metadata key ", std::string(key), " is not a string"));
  }
  return std::string(v->str);
}

absl::StatusOr<int64_t> GgufFile::GetInt(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return absl::NotFoundError(absl::StrCat("metadata key ", std::string(key), " is missing"));
  if (!IsInteger(v->type) || !FitsInt64(*v)) {
    return absl::InvalidArgumentError(absl::StrCat("metadata key ", std::string(key), " is not an integer"));
  }
  return v->i;
}

absl::StatusOr<double> GgufFile::GetFloat(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return absl::NotFoundError(absl::StrCat("metadata key ", std::string(key), " is missing"));
  if (ScalarSize(v->type) == 0 || v->type == GgufValueType::kBool) {
    return absl::InvalidArgumentError(absl::StrCat("metadata key ", std::string(key), " is not a number"));
  }
  return v->f;
}

absl::StatusOr<std::vector<std::string_view>> GgufFile::GetStringArray(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return absl::NotFoundError(absl::StrCat("metadata key ", std::string(key), " is missing"));
  if (v->type != GgufValueType::kArray || v->array_type != GgufValueType::kString) {
    return absl::InvalidArgumentError(absl::StrCat("metadata key ", std::string(key), " is not a string array"));
  }
  return v->array_strings;
}

absl::StatusOr<std::vector<int64_t>> GgufFile::GetIntArray(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return absl::NotFoundError(absl::StrCat("metadata key ", std::string(key), " is missing"));
  if (v->type != GgufValueType::kArray || !IsInteger(v->array_type)) {
    return absl::InvalidArgumentError(absl::StrCat("metadata key ", std::string(key), " is not an integer array"));
  }
  std::vector<int64_t> out(v->array_count);
  const uint64_t es = ScalarSize(v->array_type);
  for (uint64_t i = 0; i < v->array_count; ++i) {
    GgufValue e;
    DecodeScalar(v->array_type, v->array_data + i * es, &e);
    out[i] = e.i;
  }
  return out;
}

}  // namespace stepproof::inference
