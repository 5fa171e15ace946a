// Byte-level BPE tokenizer as described by GGUF metadata (tokenizer.ggml.*).
//
// Supports tokenizer.ggml.model == "gpt2" with the Qwen2 pre-tokenizer
// (tokenizer.ggml.pre "qwen2" or "deepseek-r1-qwen"). Text is split by a
// hand-written matcher equivalent to the Qwen2 split regex
//   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|
//    ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
// each piece's bytes are mapped to printable code points with GPT-2's
// bytes_to_unicode table and merged by merge rank. Tokens of type CONTROL (3)
// and USER_DEFINED (4) are matched as whole strings before pre-tokenization
// when parse_special is true. The exact algorithm is in docs/DECODING.md.
//
// Thread-safety: a BpeTokenizer is immutable after Create(); all const
// methods may be called concurrently.

#ifndef STEPPROOF_INFERENCE_BPE_TOKENIZER_H_
#define STEPPROOF_INFERENCE_BPE_TOKENIZER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace stepproof::inference {

// GGUF token types (tokenizer.ggml.token_type).
inline constexpr int32_t kTokenTypeNormal = 1;
inline constexpr int32_t kTokenTypeUnknown = 2;
inline constexpr int32_t kTokenTypeControl = 3;
inline constexpr int32_t kTokenTypeUserDefined = 4;
inline constexpr int32_t kTokenTypeUnused = 5;
inline constexpr int32_t kTokenTypeByte = 6;

// The tokenizer as stored in GGUF metadata. `tokens[i]` is the text of token
// id i in the byte-to-unicode encoding (for normal tokens) or raw UTF-8 (for
// CONTROL / USER_DEFINED tokens). `token_types` is either empty (all normal)
// or the same length as `tokens`. `merges` are "left right" strings in rank
// order (rank 0 first). Ids of -1 mean "absent".
struct TokenizerData {
  std::string model;  // tokenizer.ggml.model, must be "gpt2"
  std::string pre;    // tokenizer.ggml.pre: "qwen2", "deepseek-r1-qwen"
  std::vector<std::string> tokens;
  std::vector<int32_t> token_types;
  std::vector<std::string> merges;
  int32_t bos_id = -1, eos_id = -1, pad_id = -1;
};

class BpeTokenizer {
 public:
  // Builds a tokenizer. Returns INVALID_ARGUMENT naming the problem when the
  // model or pre-tokenizer is unsupported, the vocabulary is empty or lacks
  // one of the 256 single-byte tokens, token_types has the wrong length, a
  // merge is malformed or names an unknown token (or its result is not a
  // token), or bos/eos/pad ids are out of range. Duplicated token texts are
  // accepted (TokenId returns the first id); a repeated merge keeps its
  // first rank.
  static absl::StatusOr<BpeTokenizer> Create(TokenizerData data);

  BpeTokenizer(BpeTokenizer&&) noexcept;
  BpeTokenizer& operator=(BpeTokenizer&&) noexcept;
  ~BpeTokenizer();

  // Token ids for `text` (any bytes; invalid UTF-8 is handled byte-wise).
  // When parse_special, occurrences of CONTROL / USER_DEFINED token texts
  // become those tokens (longest match first, leftmost first). No BOS is
  // added: the chat template writes it as text.
  std::vector<int32_t> Encode(std::string_view text,
                              bool parse_special = true) const;

  // The raw bytes token `id` stands for (byte-decoded for normal tokens, the
  // UTF-8 text itself for CONTROL / USER_DEFINED tokens). May be an
  // incomplete UTF-8 sequence. Empty for an out-of-range id.
  std::string TokenBytes(int32_t id) const;

  // Concatenation of TokenBytes over `ids` (bytes, may be invalid UTF-8).
  std::string Decode(absl::Span<const int32_t> ids) const;

  int32_t vocab_size() const;

  // The id of the token whose stored text (as in TokenizerData::tokens) is
  // `token_text`, if any.
  std::optional<int32_t> TokenId(std::string_view token_text) const;

  int32_t bos_id() const;
  int32_t eos_id() const;
  int32_t pad_id() const;

 private:
  struct Impl;
  explicit BpeTokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace stepproof::inference

#endif  // STEPPROOF_INFERENCE_BPE_TOKENIZER_H_
