// Internal to provenance/: the big-endian, length-prefixed primitives that the
// canonical encodings (step record, trace header) are written in, and a
// strict UTF-8 check. Readers return INVALID_ARGUMENT messages that name the
// structure and the field ("step record: text: truncated ...").
//
// Thread-safety: one writer/reader per thread.
#ifndef STEPPROOF_PROVENANCE_BYTE_CODEC_H_
#define STEPPROOF_PROVENANCE_BYTE_CODEC_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace stepproof::provenance {

// Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, <= U+10FFFF.
bool IsValidUtf8(absl::string_view s);

// A decimal number as C2SP text formats write it: digits only, no sign, no
// leading zeros ("0" itself is fine), at most 2^64-1. INVALID_ARGUMENT else.
absl::StatusOr<uint64_t> ParseCanonicalUint64(absl::string_view s);

class ByteWriter {
 public:
  void U8(uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void U32(uint32_t v);
  void U64(uint64_t v);
  void Raw(absl::string_view bytes) { out_.append(bytes.data(), bytes.size()); }
  // u32 big-endian length, then the bytes.
  void Bytes(absl::string_view bytes);
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

class ByteReader {
 public:
  // `what` names the structure in error messages ("step record").
  ByteReader(absl::string_view in, absl::string_view what)
      : in_(in), what_(what) {}

  absl::StatusOr<uint8_t> U8(absl::string_view field);
  absl::StatusOr<uint32_t> U32(absl::string_view field);
  absl::StatusOr<uint64_t> U64(absl::string_view field);
  absl::StatusOr<absl::string_view> Raw(size_t n, absl::string_view field);
  // A u32 length prefix (rejected above max_len) and that many bytes.
  absl::StatusOr<absl::string_view> Bytes(size_t max_len,
                                          absl::string_view field);
  // 0 or 1; anything else is non-canonical.
  absl::StatusOr<bool> Flag(absl::string_view field);
  // OK iff every byte was consumed.
  absl::Status Done() const;
  size_t remaining() const { return in_.size() - pos_; }

  absl::Status Error(absl::string_view field, absl::string_view problem) const;

 private:
  absl::string_view in_;
  absl::string_view what_;
  size_t pos_ = 0;
};

}  // namespace stepproof::provenance

#endif  // STEPPROOF_PROVENANCE_BYTE_CODEC_H_
