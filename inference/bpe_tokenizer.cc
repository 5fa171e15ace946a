#include "inference/bpe_tokenizer.h"

#include <algorithm>
#include <array>
#include <queue>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "inference/unicode_tables.h"

namespace stepproof::inference {
namespace {

// GPT-2 bytes_to_unicode: printable Latin-1 bytes map to themselves, the
// other 68 bytes to U+0100 + n in byte order.
std::array<char32_t, 256> BytesToUnicode() {
  std::array<char32_t, 256> map{};
  int n = 0;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= 0x21 && b <= 0x7E) ||
                           (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    map[b] = printable ? static_cast<char32_t>(b)
                       : static_cast<char32_t>(0x100 + n++);
  }
  return map;
}

void AppendUtf8(char32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// Marks a byte that is not part of valid UTF-8: never a letter, number or
// space, so the pre-tokenizer treats it as punctuation.
constexpr char32_t kInvalidByte = 0xFFFFFFFF;

// One code point of the input with its byte span.
struct CodePoint {
  char32_t cp;
  uint32_t begin;
  uint32_t end;
};

// Decodes UTF-8; each byte of an ill-formed sequence becomes kInvalidByte.
std::vector<CodePoint> DecodeCodePoints(std::string_view s) {
  std::vector<CodePoint> out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    const uint8_t b0 = static_cast<uint8_t>(s[i]);
    size_t need = 0;
    char32_t cp = 0;
    char32_t min = 0;
    if (b0 < 0x80) {
      cp = b0;
    } else if ((b0 & 0xE0) == 0xC0) {
      need = 1, cp = b0 & 0x1F, min = 0x80;
    } else if ((b0 & 0xF0) == 0xE0) {
      need = 2, cp = b0 & 0x0F, min = 0x800;
    } else if ((b0 & 0xF8) == 0xF0) {
      need = 3, cp = b0 & 0x07, min = 0x10000;
    } else {
      out.push_back({kInvalidByte, static_cast<uint32_t>(i),
                     static_cast<uint32_t>(i + 1)});
      ++i;
      continue;
    }
    bool ok = i + need < s.size();
    for (size_t k = 1; ok && k <= need; ++k) {
      const uint8_t b = static_cast<uint8_t>(s[i + k]);
      if ((b & 0xC0) != 0x80) {
        ok = false;
      } else {
        cp = (cp << 6) | (b & 0x3F);
      }
    }
    if (ok && (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))) {
      ok = false;
    }
    if (!ok) {
      out.push_back({kInvalidByte, static_cast<uint32_t>(i),
                     static_cast<uint32_t>(i + 1)});
      ++i;
      continue;
    }
    out.push_back({cp, static_cast<uint32_t>(i),
                   static_cast<uint32_t>(i + need + 1)});
    i += need + 1;
  }
  return out;
}

bool IsLetter(char32_t c) { return c != kInvalidByte && IsUnicodeLetter(c); }
bool IsNumber(char32_t c) { return c != kInvalidByte && IsUnicodeNumber(c); }
bool IsSpace(char32_t c) {
  return c != kInvalidByte && IsUnicodeWhiteSpace(c);
}
bool IsCrLf(char32_t c) { return c == '\r' || c == '\n'; }
// [^\s\p{L}\p{N}]
bool IsOther(char32_t c) { return !IsSpace(c) && !IsLetter(c) && !IsNumber(c); }

// Case-insensitive ASCII letter match with Unicode simple case folding for
// the letters the contractions use ('s' also matches U+017F LONG S).
bool FoldEq(char32_t c, char lower) {
  if (c == static_cast<char32_t>(lower)) return true;
  if (c == static_cast<char32_t>(lower - 'a' + 'A')) return true;
  return lower == 's' && c == 0x17F;
}

// Length (in code points) of the match of the Qwen2 split regex at cps[i]:
//   (?i:'s|'t|'re|'ve|'m|'ll|'d) | [^\r\n\p{L}\p{N}]?\p{L}+ | \p{N}
//   | ?[^\s\p{L}\p{N}]+[\r\n]* | \s*[\r\n]+ | \s+(?!\S) | \s+
// Alternatives are tried in order (leftmost-first, as in the regex engines
// Hugging Face uses); each is written out with its backtracking resolved.
size_t MatchAt(const std::vector<CodePoint>& cps, size_t i) {
  const size_t n = cps.size();
  auto at = [&](size_t k) -> char32_t {
    return k < n ? cps[k].cp : kInvalidByte;
  };
  // 1. Contractions.
  if (at(i) == '\'' && i + 1 < n) {
    const char32_t a = at(i + 1);
    if (FoldEq(a, 's') || FoldEq(a, 't') || FoldEq(a, 'm') || FoldEq(a, 'd')) {
      return 2;
    }
    if (i + 2 < n) {
      const char32_t b = at(i + 2);
      if ((FoldEq(a, 'r') && FoldEq(b, 'e')) ||
          (FoldEq(a, 'v') && FoldEq(b, 'e')) ||
          (FoldEq(a, 'l') && FoldEq(b, 'l'))) {
        return 3;
      }
    }
  }
  // 2. [^\r\n\p{L}\p{N}]?\p{L}+
  {
    size_t j = i;
    if (!IsLetter(at(j)) && !IsCrLf(at(j)) && !IsNumber(at(j)) && j < n &&
        IsLetter(at(j + 1))) {
      ++j;
    }
    if (j < n && IsLetter(at(j))) {
      while (j < n && IsLetter(at(j))) ++j;
      return j - i;
    }
  }
  // 3. \p{N}
  if (IsNumber(at(i))) return 1;
  // 4.  ?[^\s\p{L}\p{N}]+[\r\n]*
  {
    size_t j = i;
    if (at(j) == ' ' && j + 1 < n && IsOther(at(j + 1))) ++j;
    if (j < n && IsOther(at(j))) {
      while (j < n && IsOther(at(j))) ++j;
      while (j < n && IsCrLf(at(j))) ++j;
      return j - i;
    }
  }
  // The rest start with whitespace.
  size_t run_end = i;
  while (run_end < n && IsSpace(at(run_end))) ++run_end;
  if (run_end > i) {
    // 5. \s*[\r\n]+ : up to the last \r or \n of the whitespace run.
    for (size_t k = run_end; k > i; --k) {
      if (IsCrLf(at(k - 1))) return k - i;
    }
    // 6. \s+(?!\S) : the run, less its last space when a non-space follows.
    if (run_end == n) return run_end - i;
    if (run_end - i >= 2) return run_end - i - 1;
    // 7. \s+
    return run_end - i;
  }
  return 1;  // unreachable: every code point is covered above
}

}  // namespace

struct BpeTokenizer::Impl {
  TokenizerData data;
  std::vector<std::string> token_bytes;  // decoded bytes per id
  absl::flat_hash_map<std::string, int32_t> token_to_id;
  std::array<int32_t, 256> byte_token{};  // id of the single-byte token
  std::array<std::string, 256> byte_text{};  // bytes_to_unicode(b) as UTF-8
  // (left id, right id) -> (rank, merged id)
  absl::flat_hash_map<uint64_t, std::pair<int32_t, int32_t>> merges;
  // Special (CONTROL / USER_DEFINED) tokens grouped by first byte, longest
  // first, for leftmost-longest matching.
  std::array<std::vector<int32_t>, 256> specials_by_first_byte;
  bool has_specials = false;

  static uint64_t PairKey(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) |
           static_cast<uint32_t>(b);
  }

  void EncodePiece(std::string_view piece, std::vector<int32_t>* out) const;
  void EncodeText(std::string_view text, std::vector<int32_t>* out) const;
};

// Byte-pair merging of one pre-token: start from single-byte tokens, then
// repeatedly apply the lowest-ranked merge present (leftmost on ties).
void BpeTokenizer::Impl::EncodePiece(std::string_view piece,
                                     std::vector<int32_t>* out) const {
  const size_t n = piece.size();
  if (n == 0) return;
  if (n == 1) {
    out->push_back(byte_token[static_cast<uint8_t>(piece[0])]);
    return;
  }
  std::vector<int32_t> id(n);
  std::vector<int32_t> prev(n), next(n);
  for (size_t i = 0; i < n; ++i) {
    id[i] = byte_token[static_cast<uint8_t>(piece[i])];
    prev[i] = static_cast<int32_t>(i) - 1;
    next[i] = i + 1 < n ? static_cast<int32_t>(i + 1) : -1;
  }
  struct Candidate {
    int32_t rank;
    int32_t pos;    // index of the left symbol
    int32_t left;   // ids when queued, to detect stale entries
    int32_t right;
    bool operator>(const Candidate& o) const {
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> queue;
  auto push = [&](int32_t pos) {
    const int32_t nx = next[pos];
    if (pos < 0 || nx < 0) return;
    auto it = merges.find(PairKey(id[pos], id[nx]));
    if (it != merges.end()) {
      queue.push({it->second.first, pos, id[pos], id[nx]});
    }
  };
  for (size_t i = 0; i + 1 < n; ++i) push(static_cast<int32_t>(i));
  while (!queue.empty()) {
    const Candidate c = queue.top();
    queue.pop();
    const int32_t nx = next[c.pos];
    if (id[c.pos] < 0 || nx < 0 || id[c.pos] != c.left || id[nx] != c.right) {
      continue;  // stale: one side was merged away since
    }
    id[c.pos] = merges.find(PairKey(c.left, c.right))->second.second;
    id[nx] = -1;
    next[c.pos] = next[nx];
    if (next[nx] >= 0) prev[next[nx]] = c.pos;
    if (prev[c.pos] >= 0) push(prev[c.pos]);
    push(c.pos);
  }
  for (int32_t i = 0; i >= 0; i = next[i]) out->push_back(id[i]);
}

void BpeTokenizer::Impl::EncodeText(std::string_view text,
                                    std::vector<int32_t>* out) const {
  const std::vector<CodePoint> cps = DecodeCodePoints(text);
  size_t i = 0;
  while (i < cps.size()) {
    const size_t len = MatchAt(cps, i);
    const size_t begin = cps[i].begin;
    const size_t end = cps[i + len - 1].end;
    EncodePiece(text.substr(begin, end - begin), out);
    i += len;
  }
}

BpeTokenizer::BpeTokenizer(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)) {}
BpeTokenizer::BpeTokenizer(BpeTokenizer&&) noexcept = default;
BpeTokenizer& BpeTokenizer::operator=(BpeTokenizer&&) noexcept = default;
BpeTokenizer::~BpeTokenizer() = default;

absl::StatusOr<BpeTokenizer> BpeTokenizer::Create(TokenizerData data) {
  if (data.model != "gpt2") {
    return absl::InvalidArgumentError(absl::StrCat(
        "tokenizer model \"", data.model,
        "\" is not supported (only \"gpt2\" byte-level BPE)"));
  }
  if (data.pre != "qwen2" && data.pre != "deepseek-r1-qwen") {
    return absl::InvalidArgumentError(absl::StrCat(
        "pre-tokenizer \"", data.pre,
        "\" is not supported (only \"qwen2\" and \"deepseek-r1-qwen\")"));
  }
  if (data.tokens.empty()) {
    return absl::InvalidArgumentError("tokenizer vocabulary is empty");
  }
  if (data.tokens.size() > static_cast<size_t>(INT32_MAX)) {
    return absl::InvalidArgumentError("tokenizer vocabulary is too large");
  }
  const int32_t vocab = static_cast<int32_t>(data.tokens.size());
  if (!data.token_types.empty() &&
      data.token_types.size() != data.tokens.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tokenizer has ", data.token_types.size(), " token types for ", vocab,
        " tokens"));
  }
  for (auto [name, v] : {std::pair<const char*, int32_t>{"bos", data.bos_id},
                         {"eos", data.eos_id},
                         {"pad", data.pad_id}}) {
    if (v < -1 || v >= vocab) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tokenizer ", name, " id ", v, " is outside the vocabulary of ",
          vocab));
    }
  }

  auto impl = std::make_unique<Impl>();
  const std::array<char32_t, 256> b2u = BytesToUnicode();
  absl::flat_hash_map<char32_t, uint8_t> u2b;
  for (int b = 0; b < 256; ++b) {
    AppendUtf8(b2u[b], &impl->byte_text[b]);
    u2b[b2u[b]] = static_cast<uint8_t>(b);
  }

  impl->token_bytes.resize(vocab);
  impl->token_to_id.reserve(vocab);
  for (int32_t id = 0; id < vocab; ++id) {
    const std::string& text = data.tokens[id];
    // Duplicated texts exist in some GGUF vocabularies: the first id wins.
    impl->token_to_id.try_emplace(text, id);
    const int32_t type = data.token_types.empty() ? kTokenTypeNormal
                                                  : data.token_types[id];
    if (type == kTokenTypeControl || type == kTokenTypeUserDefined) {
      impl->token_bytes[id] = text;
      if (!text.empty()) {
        impl->specials_by_first_byte[static_cast<uint8_t>(text[0])].push_back(
            id);
        impl->has_specials = true;
      }
      continue;
    }
    std::string& bytes = impl->token_bytes[id];
    for (const CodePoint& cp : DecodeCodePoints(text)) {
      auto it = cp.cp == kInvalidByte ? u2b.end() : u2b.find(cp.cp);
      if (it != u2b.end()) {
        bytes.push_back(static_cast<char>(it->second));
      } else {  // not byte-level encoded: keep the text as it is
        bytes.append(text.substr(cp.begin, cp.end - cp.begin));
      }
    }
  }
  for (auto& list : impl->specials_by_first_byte) {
    std::stable_sort(list.begin(), list.end(), [&](int32_t a, int32_t b) {
      return data.tokens[a].size() > data.tokens[b].size();
    });
  }
  for (int b = 0; b < 256; ++b) {
    auto it = impl->token_to_id.find(impl->byte_text[b]);
    if (it == impl->token_to_id.end()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tokenizer vocabulary lacks the token for byte 0x",
          absl::Hex(b, absl::kZeroPad2), " (\"", impl->byte_text[b], "\")"));
    }
    impl->byte_token[b] = it->second;
  }

  impl->merges.reserve(data.merges.size());
  for (size_t rank = 0; rank < data.merges.size(); ++rank) {
    const std::string& m = data.merges[rank];
    const size_t space = m.find(' ');
    if (space == std::string::npos || space == 0 || space + 1 >= m.size() ||
        m.find(' ', space + 1) != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "merge ", rank, " \"", m, "\" is not of the form \"left right\""));
    }
    const std::string left = m.substr(0, space);
    const std::string right = m.substr(space + 1);
    auto l = impl->token_to_id.find(left);
    auto r = impl->token_to_id.find(right);
    if (l == impl->token_to_id.end() || r == impl->token_to_id.end()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "merge ", rank, " \"", m, "\" names an unknown token \"",
          l == impl->token_to_id.end() ? left : right, "\""));
    }
    auto result = impl->token_to_id.find(left + right);
    if (result == impl->token_to_id.end()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "merge ", rank, " \"", m, "\" makes \"", left + right,
          "\", which is not in the vocabulary"));
    }
    // A repeated merge keeps its first (lowest) rank.
    impl->merges.try_emplace(Impl::PairKey(l->second, r->second),
                             static_cast<int32_t>(rank), result->second);
  }
  impl->data = std::move(data);
  impl->data.merges = std::vector<std::string>();  // folded into impl->merges
  return BpeTokenizer(std::move(impl));
}

std::vector<int32_t> BpeTokenizer::Encode(std::string_view text,
                                          bool parse_special) const {
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 1);
  if (!parse_special || !impl_->has_specials) {
    impl_->EncodeText(text, &out);
    return out;
  }
  // Leftmost-longest matching of special token texts; the text between
  // matches is pre-tokenized and merged on its own.
  size_t plain_begin = 0;
  size_t i = 0;
  while (i < text.size()) {
    int32_t match = -1;
    for (int32_t id :
         impl_->specials_by_first_byte[static_cast<uint8_t>(text[i])]) {
      const std::string& s = impl_->data.tokens[id];
      if (text.compare(i, s.size(), s) == 0) {
        match = id;
        break;
      }
    }
    if (match < 0) {
      ++i;
      continue;
    }
    impl_->EncodeText(text.substr(plain_begin, i - plain_begin), &out);
    out.push_back(match);
    i += impl_->data.tokens[match].size();
    plain_begin = i;
  }
  impl_->EncodeText(text.substr(plain_begin), &out);
  return out;
}

std::string BpeTokenizer::TokenBytes(int32_t id) const {
  if (id < 0 || id >= vocab_size()) return std::string();
  return impl_->token_bytes[id];
}

std::string BpeTokenizer::Decode(absl::Span<const int32_t> ids) const {
  std::string out;
  for (int32_t id : ids) {
    if (id >= 0 && id < vocab_size()) out += impl_->token_bytes[id];
  }
  return out;
}

int32_t BpeTokenizer::vocab_size() const {
  return static_cast<int32_t>(impl_->token_bytes.size());
}

std::optional<int32_t> BpeTokenizer::TokenId(std::string_view token_text) const {
  // absl::string_view is not std::string_view in Debian's Abseil build.
  auto it = impl_->token_to_id.find(
      absl::string_view(token_text.data(), token_text.size()));
  if (it == impl_->token_to_id.end()) return std::nullopt;
  return it->second;
}

int32_t BpeTokenizer::bos_id() const { return impl_->data.bos_id; }
int32_t BpeTokenizer::eos_id() const { return impl_->data.eos_id; }
int32_t BpeTokenizer::pad_id() const { return impl_->data.pad_id; }

}  // namespace stepproof::inference
