#include "inference/utf8.h"

#include <cstdint>

namespace stepproof::inference {
namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";

enum class Scan { kValid, kInvalid, kIncomplete };

// Examines the sequence starting at s[0]. On kValid and kInvalid sets *len to
// the bytes consumed (for kInvalid: the maximal subpart, at least 1). On
// kIncomplete all of s is a valid prefix of a longer sequence.
Scan ScanOne(std::string_view s, size_t* len) {
  const uint8_t b0 = static_cast<uint8_t>(s[0]);
  if (b0 < 0x80) {
    *len = 1;
    return Scan::kValid;
  }
  size_t need;        // continuation bytes
  uint8_t lo = 0x80;  // allowed range of the first continuation byte
  uint8_t hi = 0xBF;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 1;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 2;
    if (b0 == 0xE0) lo = 0xA0;  // no overlongs
    if (b0 == 0xED) hi = 0x9F;  // no surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 3;
    if (b0 == 0xF0) lo = 0x90;  // no overlongs
    if (b0 == 0xF4) hi = 0x8F;  // max U+10FFFF
  } else {
    *len = 1;
    return Scan::kInvalid;
  }
  for (size_t k = 1; k <= need; ++k) {
    if (k >= s.size()) return Scan::kIncomplete;
    const uint8_t b = static_cast<uint8_t>(s[k]);
    const uint8_t l = k == 1 ? lo : 0x80;
    const uint8_t h = k == 1 ? hi : 0xBF;
    if (b < l || b > h) {
      *len = k;
      return Scan::kInvalid;
    }
  }
  *len = need + 1;
  return Scan::kValid;
}

}  // namespace

std::string Utf8StreamDecoder::Push(std::string_view bytes) {
  std::string data;
  if (!pending_.empty()) {
    data = pending_ + std::string(bytes);
    pending_.clear();
    bytes = data;
  }
  std::string out;
  out.reserve(bytes.size());
  size_t i = 0;
  while (i < bytes.size()) {
    size_t len = 0;
    switch (ScanOne(bytes.substr(i), &len)) {
      case Scan::kValid:
        out.append(bytes.substr(i, len));
        i += len;
        break;
      case Scan::kInvalid:
        out.append(kReplacement);
        i += len;
        break;
      case Scan::kIncomplete:
        pending_.assign(bytes.substr(i));
        return out;
    }
  }
  return out;
}

std::string Utf8StreamDecoder::Finish() {
  std::string out;
  if (!pending_.empty()) out.append(kReplacement);
  pending_.clear();
  return out;
}

std::string SanitizeUtf8(std::string_view bytes) {
  Utf8StreamDecoder d;
  std::string out = d.Push(bytes);
  out += d.Finish();
  return out;
}

bool IsValidUtf8(std::string_view bytes) {
  size_t i = 0;
  while (i < bytes.size()) {
    size_t len = 0;
    if (ScanOne(bytes.substr(i), &len) != Scan::kValid) return false;
    i += len;
  }
  return true;
}

}  // namespace stepproof::inference
