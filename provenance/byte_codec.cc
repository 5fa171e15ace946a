#include "provenance/byte_codec.h"

#include "absl/strings/str_cat.h"

namespace stepproof::provenance {

bool IsValidUtf8(absl::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t n = s.size(), i = 0;
  while (i < n) {
    unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;  // continuation byte, 0xC0/0xC1 (overlong), > 0xF4
    }
    if (n - i < len) return false;
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    if (len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) {
      return false;
    }
    if (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) return false;
    i += len;
  }
  return true;
}

absl::StatusOr<uint64_t> ParseCanonicalUint64(absl::string_view s) {
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("\"", s, "\" ", why));
  };
  if (s.empty() || s.size() > 20) return bad("is not a decimal number");
  if (s.size() > 1 && s[0] == '0') return bad("has leading zeros");
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return bad("is not a decimal number");
    uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return bad("overflows 64 bits");
    v = v * 10 + d;
  }
  return v;
}

void ByteWriter::U32(uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) U8(static_cast<uint8_t>(v >> s));
}

void ByteWriter::U64(uint64_t v) {
  for (int s = 56; s >= 0; s -= 8) U8(static_cast<uint8_t>(v >> s));
}

void ByteWriter::Bytes(absl::string_view bytes) {
  U32(static_cast<uint32_t>(bytes.size()));
  Raw(bytes);
}

absl::Status ByteReader::Error(absl::string_view field,
                               absl::string_view problem) const {
  return absl::InvalidArgumentError(
      absl::StrCat(what_, ": ", field, ": ", problem));
}

absl::StatusOr<absl::string_view> ByteReader::Raw(size_t n,
                                                  absl::string_view field) {
  if (remaining() < n) {
    return Error(field, absl::StrCat("truncated (need ", n, " bytes at offset ",
                                     pos_, ", ", remaining(), " left)"));
  }
  absl::string_view out = in_.substr(pos_, n);
  pos_ += n;
  return out;
}

absl::StatusOr<uint8_t> ByteReader::U8(absl::string_view field) {
  auto b = Raw(1, field);
  if (!b.ok()) return b.status();
  return static_cast<uint8_t>((*b)[0]);
}

absl::StatusOr<uint32_t> ByteReader::U32(absl::string_view field) {
  auto b = Raw(4, field);
  if (!b.ok()) return b.status();
  uint32_t v = 0;
  for (char c : *b) v = (v << 8) | static_cast<uint8_t>(c);
  return v;
}

absl::StatusOr<uint64_t> ByteReader::U64(absl::string_view field) {
  auto b = Raw(8, field);
  if (!b.ok()) return b.status();
  uint64_t v = 0;
  for (char c : *b) v = (v << 8) | static_cast<uint8_t>(c);
  return v;
}

absl::StatusOr<absl::string_view> ByteReader::Bytes(size_t max_len,
                                                    absl::string_view field) {
  auto len = U32(field);
  if (!len.ok()) return len.status();
  if (*len > max_len) {
    return Error(field, absl::StrCat("length ", *len, " exceeds the limit of ",
                                     max_len, " bytes"));
  }
  return Raw(*len, field);
}

absl::StatusOr<bool> ByteReader::Flag(absl::string_view field) {
  auto v = U8(field);
  if (!v.ok()) return v.status();
  if (*v > 1) {
    return Error(field, absl::StrCat("presence byte is ", *v,
                                     "; only 0 or 1 is canonical"));
  }
  return *v == 1;
}

absl::Status ByteReader::Done() const {
  if (remaining() != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        what_, ": ", remaining(), " trailing bytes after the last field"));
  }
  return absl::OkStatus();
}

}  // namespace stepproof::provenance
