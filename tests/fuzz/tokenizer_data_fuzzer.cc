// Fuzz target: BpeTokenizer::Create on fuzzed TokenizerData, then Encode /
// Decode with whatever it accepted (inference/bpe_tokenizer.h).
//
// Input layout: byte 0 = flags (bit 0: add the 256 byte tokens first; bit 1:
// give token types; bit 2: pre "deepseek-r1-qwen" instead of "qwen2"; bit 3:
// an unsupported model name), bytes 1..3 = bos, eos, pad ids (int8), then
// lines: "n<text>" normal token, "c<text>" CONTROL, "u<text>" USER_DEFINED,
// "x<text>" UNUSED, "b<text>" BYTE, "m<left right>" merge, "s<text>" a text
// to encode; a "\\n" inside a line stands for a newline.
//
// Properties: Create never crashes and, when it succeeds, reports the given
// vocabulary size and ids; encoded ids lie in the vocabulary; and when every
// token is valid UTF-8 and no special token's text is also a byte, normal
// or merge-result text, Decode(Encode(s)) == s for every sample.

#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "byte_level.h"
#include "fuzz_check.h"
#include "inference/bpe_tokenizer.h"

namespace inf = stepproof::inference;
using stepproof::fuzz::Check;

namespace {

std::string Unescape(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size() && s[i + 1] == 'n') {
      out.push_back('\n');
      ++i;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 4) return 0;
  const uint8_t flags = data[0];
  inf::TokenizerData d;
  d.model = (flags & 8) != 0 ? "llama" : "gpt2";
  d.pre = (flags & 4) != 0 ? "deepseek-r1-qwen" : "qwen2";
  d.bos_id = static_cast<int8_t>(data[1]);
  d.eos_id = static_cast<int8_t>(data[2]);
  d.pad_id = static_cast<int8_t>(data[3]);
  const auto bt = stepproof::fuzz::ByteTexts();
  std::vector<int32_t> types;
  if ((flags & 1) != 0) {
    d.tokens.assign(bt.begin(), bt.end());
    types.assign(256, inf::kTokenTypeNormal);
  }
  std::vector<std::string> samples;
  std::string_view rest(reinterpret_cast<const char*>(data + 4), size - 4);
  while (!rest.empty()) {
    const size_t nl = rest.find('\n');
    const std::string_view line = rest.substr(0, nl);
    rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
    if (line.empty()) continue;
    const std::string body = Unescape(line.substr(1));
    int32_t type = 0;
    switch (line[0]) {
      case 'n': type = inf::kTokenTypeNormal; break;
      case 'c': type = inf::kTokenTypeControl; break;
      case 'u': type = inf::kTokenTypeUserDefined; break;
      case 'x': type = inf::kTokenTypeUnused; break;
      case 'b': type = inf::kTokenTypeByte; break;
      case 'm': d.merges.push_back(body); continue;
      default: samples.push_back(body); continue;
    }
    d.tokens.push_back(body);
    types.push_back(type);
  }
  if ((flags & 2) != 0) d.token_types = types;

  // Whether the round trip must hold (see the header comment).
  bool round_trip = true;
  std::set<std::string> plain(bt.begin(), bt.end()), special;
  for (size_t i = 0; i < d.tokens.size(); ++i) {
    if (!stepproof::fuzz::IsUtf8(d.tokens[i])) round_trip = false;
    const bool is_special = !d.token_types.empty() && (d.token_types[i] == inf::kTokenTypeControl ||
                                                       d.token_types[i] == inf::kTokenTypeUserDefined);
    (is_special ? special : plain).insert(d.tokens[i]);
  }
  for (const std::string& m : d.merges) {
    const size_t sp = m.find(' ');
    if (sp != std::string::npos) plain.insert(m.substr(0, sp) + m.substr(sp + 1));
  }
  for (const std::string& s : special) {
    if (plain.count(s) != 0) round_trip = false;
  }

  const size_t n_tokens = d.tokens.size();
  const int32_t bos = d.bos_id, eos = d.eos_id, pad = d.pad_id;
  absl::StatusOr<inf::BpeTokenizer> tok = inf::BpeTokenizer::Create(std::move(d));
  if (!tok.ok()) return 0;
  Check(static_cast<size_t>(tok->vocab_size()) == n_tokens, "vocab_size is the token count");
  Check(tok->bos_id() == bos && tok->eos_id() == eos && tok->pad_id() == pad,
        "bos/eos/pad ids are kept");
  samples.push_back(std::string(reinterpret_cast<const char*>(data + 4), size - 4));
  for (const std::string& s : samples) {
    for (bool parse_special : {true, false}) {
      const std::vector<int32_t> ids = tok->Encode(s, parse_special);
      for (int32_t id : ids) Check(id >= 0 && id < tok->vocab_size(), "ids lie in the vocabulary");
      if (round_trip) Check(tok->Decode(ids) == s, "Decode(Encode(s)) == s");
    }
  }
  return 0;
}
