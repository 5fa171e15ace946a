// GPT-2's bytes_to_unicode table, written out here independently of
// inference/ (the tokenizer fuzz targets build vocabularies with it).
#ifndef STEPPROOF_TESTS_FUZZ_BYTE_LEVEL_H_
#define STEPPROOF_TESTS_FUZZ_BYTE_LEVEL_H_

#include <array>
#include <string>

namespace stepproof::fuzz {

inline std::string Utf8Of(char32_t cp) {
  std::string s;
  if (cp < 0x80) {
    s.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    s.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    s.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    s.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
  return s;
}

// The printable text GPT-2 byte-level BPE uses for each byte: bytes
// '!'..'~', 0xA1..0xAC and 0xAE..0xFF stand for themselves; the others get
// U+0100, U+0101, ... in byte order.
inline std::array<std::string, 256> ByteTexts() {
  std::array<std::string, 256> out;
  char32_t next = 0x100;
  for (int b = 0; b < 256; ++b) {
    const bool self = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    out[b] = Utf8Of(self ? static_cast<char32_t>(b) : next++);
  }
  return out;
}

// True iff `s` is well-formed UTF-8 (no overlongs, surrogates or > U+10FFFF).
inline bool IsUtf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    size_t n;
    char32_t cp;
    if (c < 0x80) { ++i; continue; }
    if (c >= 0xC2 && c <= 0xDF) { n = 1; cp = c & 0x1F; }
    else if (c >= 0xE0 && c <= 0xEF) { n = 2; cp = c & 0x0F; }
    else if (c >= 0xF0 && c <= 0xF4) { n = 3; cp = c & 0x07; }
    else return false;
    if (i + n + 1 > s.size()) return false;
    for (size_t k = 1; k <= n; ++k) {
      const unsigned char d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3F);
    }
    if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += n + 1;
  }
  return true;
}

}  // namespace stepproof::fuzz

#endif  // STEPPROOF_TESTS_FUZZ_BYTE_LEVEL_H_
