#!/usr/bin/python3
"""Generates inference/unicode_tables.cc: the code point classes used by the
Qwen2 pre-tokenizer in inference/bpe_tokenizer.cc.

  \\p{L}: general category Lu, Ll, Lt, Lm, Lo
  \\p{N}: general category Nd, Nl, No
  \\s   : the Unicode White_Space property (PropList.txt), as in the Rust
          `regex` crate that Hugging Face tokenizers uses. Python has no
          accessor for White_Space, so that list is written out below; it has
          not changed since Unicode 6.1.

Run with Debian's interpreter so the Unicode version is the one recorded in
the output header:
  /usr/bin/python3 scripts/gen_unicode_tables.py > inference/unicode_tables.cc
"""
import sys
import unicodedata

WHITE_SPACE = [(0x0009, 0x000D), (0x0020, 0x0020), (0x0085, 0x0085),
               (0x00A0, 0x00A0), (0x1680, 0x1680), (0x2000, 0x200A),
               (0x2028, 0x2029), (0x202F, 0x202F), (0x205F, 0x205F),
               (0x3000, 0x3000)]


def ranges(predicate):
    out = []
    start = None
    for cp in range(0x110000):
        if predicate(cp):
            if start is None:
                start = cp
        elif start is not None:
            out.append((start, cp - 1))
            start = None
    if start is not None:
        out.append((start, 0x10FFFF))
    return out


def emit(name, rs):
    lines = [f"const CodePointRange {name}[] = {{"]
    row = []
    for lo, hi in rs:
        row.append(f"{{0x{lo:X}, 0x{hi:X}}}")
        if len(row) == 6:
            lines.append("    " + ", ".join(row) + ",")
            row = []
    if row:
        lines.append("    " + ", ".join(row) + ",")
    lines.append("};")
    return "\n".join(lines)


def main():
    letters = ranges(lambda c: unicodedata.category(chr(c)) in
                     ("Lu", "Ll", "Lt", "Lm", "Lo"))
    numbers = ranges(lambda c: unicodedata.category(chr(c)) in
                     ("Nd", "Nl", "No"))
    out = sys.stdout
    out.write(f"""// GENERATED FILE: do not edit.
// Made by scripts/gen_unicode_tables.py with Python {sys.version.split()[0]}
// (unicodedata, Unicode {unicodedata.unidata_version}):
//   /usr/bin/python3 scripts/gen_unicode_tables.py > inference/unicode_tables.cc
// Sorted, disjoint, inclusive code point ranges.

#include "inference/unicode_tables.h"

#include <algorithm>
#include <iterator>

namespace stepproof::inference {{
namespace {{

{emit("kLetterRanges", letters)}

{emit("kNumberRanges", numbers)}

{emit("kWhiteSpaceRanges", WHITE_SPACE)}

bool InRanges(const CodePointRange* begin, const CodePointRange* end,
              char32_t cp) {{
  // First range whose hi >= cp.
  const CodePointRange* it = std::lower_bound(
      begin, end, cp,
      [](const CodePointRange& r, char32_t c) {{ return r.hi < c; }});
  return it != end && it->lo <= cp;
}}

}}  // namespace

const char* UnicodeTablesVersion() {{ return "{unicodedata.unidata_version}"; }}

bool IsUnicodeLetter(char32_t cp) {{
  return InRanges(std::begin(kLetterRanges), std::end(kLetterRanges), cp);
}}

bool IsUnicodeNumber(char32_t cp) {{
  return InRanges(std::begin(kNumberRanges), std::end(kNumberRanges), cp);
}}

bool IsUnicodeWhiteSpace(char32_t cp) {{
  return InRanges(std::begin(kWhiteSpaceRanges), std::end(kWhiteSpaceRanges),
                  cp);
}}

}}  // namespace stepproof::inference
""")


if __name__ == "__main__":
    main()
