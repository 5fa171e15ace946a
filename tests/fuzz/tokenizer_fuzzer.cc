// Fuzz target: BpeTokenizer::Encode / Decode (inference/bpe_tokenizer.h) on a
// fixed small byte-level vocabulary built here: the 256 byte tokens, a few
// merges (ASCII words, a leading-space word, a two-byte UTF-8 letter, a
// newline pair) and CONTROL / USER_DEFINED specials.
//
// Properties, for parse_special true and false:
//   - every id is inside the vocabulary;
//   - Decode(Encode(text)) == text for any bytes (invalid UTF-8 included);
//   - without parse_special no special id is produced;
//   - Encode is deterministic.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "byte_level.h"
#include "fuzz_check.h"
#include "inference/bpe_tokenizer.h"

namespace inf = stepproof::inference;
using stepproof::fuzz::Check;

namespace {

constexpr int kFirstSpecial = 256 + 64;  // specials sit after every normal token

const inf::BpeTokenizer& Tokenizer() {
  static const inf::BpeTokenizer* tok = [] {
    const auto bt = stepproof::fuzz::ByteTexts();
    inf::TokenizerData d;
    d.model = "gpt2";
    d.pre = "qwen2";
    d.tokens.assign(bt.begin(), bt.end());
    const std::string sp = bt[' '], nl = bt['\n'];
    const std::vector<std::pair<std::string, std::string>> merges = {
        {"h", "e"}, {"t", "he"}, {sp, "the"}, {"i", "n"}, {sp, "in"}, {"a", "n"},
        {"an", "d"}, {sp, "and"}, {sp, sp}, {nl, nl}, {bt[0xC3], bt[0xA9]},
        {"<", "/"}, {"t", "h"}, {"th", "in"}, {"thin", "k"}, {sp, "t"}, {"'", "s"}};
    for (const auto& [l, r] : merges) {
      d.merges.push_back(l + " " + r);
      d.tokens.push_back(l + r);
    }
    while (d.tokens.size() < static_cast<size_t>(kFirstSpecial)) {
      d.tokens.push_back("<unused" + std::to_string(d.tokens.size()) + ">");
    }
    d.token_types.assign(d.tokens.size(), inf::kTokenTypeNormal);
    for (const char* s : {"<think>", "</think>", "<|im_start|>", "<|im_end|>", "<|endoftext|>"}) {
      d.tokens.push_back(s);
      d.token_types.push_back(inf::kTokenTypeControl);
    }
    d.tokens.push_back("<th");  // a user-defined prefix of a control token
    d.token_types.push_back(inf::kTokenTypeUserDefined);
    d.eos_id = static_cast<int32_t>(d.tokens.size()) - 2;
    auto t = inf::BpeTokenizer::Create(std::move(d));
    Check(t.ok(), "the fixed vocabulary builds");
    return new inf::BpeTokenizer(*std::move(t));
  }();
  return *tok;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const inf::BpeTokenizer& tok = Tokenizer();
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  for (bool special : {true, false}) {
    const std::vector<int32_t> ids = tok.Encode(text, special);
    for (int32_t id : ids) {
      Check(id >= 0 && id < tok.vocab_size(), "ids lie inside the vocabulary");
      if (!special) Check(id < kFirstSpecial, "no special id without parse_special");
    }
    Check(tok.Decode(ids) == text, "Decode(Encode(text)) == text");
    Check(tok.Encode(text, special) == ids, "Encode is deterministic");
  }
  return 0;
}
