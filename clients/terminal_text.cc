#include "clients/terminal_text.h"

#include <cstdint>

#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"

namespace stepproof::clients {
namespace {

// Length of the valid UTF-8 sequence starting at s[i] (1..4), or 0 if the
// bytes there are not one (overlongs, surrogates and > U+10FFFF included).
size_t Utf8SequenceLength(absl::string_view s, size_t i, uint32_t* cp) {
  auto byte = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
  uint8_t b0 = byte(i);
  size_t n;
  uint32_t min;
  if (b0 < 0x80) {
    *cp = b0;
    return 1;
  } else if ((b0 & 0xE0) == 0xC0) {
    n = 2;
    min = 0x80;
    *cp = b0 & 0x1F;
  } else if ((b0 & 0xF0) == 0xE0) {
    n = 3;
    min = 0x800;
    *cp = b0 & 0x0F;
  } else if ((b0 & 0xF8) == 0xF0) {
    n = 4;
    min = 0x10000;
    *cp = b0 & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
    *cp = (*cp << 6) | (byte(i + k) & 0x3F);
  }
  if (*cp < min || *cp > 0x10FFFF || (*cp >= 0xD800 && *cp <= 0xDFFF)) {
    return 0;
  }
  return n;
}

}  // namespace

std::string EscapeForTerminal(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    uint32_t cp = 0;
    size_t n = Utf8SequenceLength(text, i, &cp);
    if (n == 0) {
      absl::StrAppendFormat(&out, "\\x%02x", static_cast<uint8_t>(text[i]));
      i += 1;
      continue;
    }
    if (cp == '\n' || cp == '\t') {
      out.push_back(static_cast<char>(cp));
    } else if (cp < 0x20 || cp == 0x7F) {
      absl::StrAppendFormat(&out, "\\x%02x", cp);
    } else if (cp >= 0x80 && cp <= 0x9F) {
      absl::StrAppendFormat(&out, "\\u%04x", cp);
    } else {
      out.append(text.data() + i, n);
    }
    i += n;
  }
  return out;
}

std::string IndentForTerminal(absl::string_view text,
                              absl::string_view indent) {
  std::string escaped = EscapeForTerminal(text);
  std::string out;
  out.reserve(escaped.size());
  bool pending_indent = false;  // after a newline; blank lines get none
  for (char c : escaped) {
    if (pending_indent && c != '\n') out.append(indent.data(), indent.size());
    pending_indent = c == '\n';
    out.push_back(c);
  }
  return out;
}

std::string StepTextForTerminal(absl::string_view text,
                                absl::string_view indent) {
  return IndentForTerminal(absl::StripAsciiWhitespace(text), indent);
}

std::string IndentLines(absl::string_view text, absl::string_view indent) {
  if (!text.empty() && text.back() == '\n') text.remove_suffix(1);
  std::string out(indent.data(), indent.size());
  out += IndentForTerminal(text, indent);
  out.push_back('\n');
  return out;
}

}  // namespace stepproof::clients
