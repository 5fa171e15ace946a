#include "inference/gguf_tokenizer.h"

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace stepproof::inference {
namespace {

absl::Status Invalid(const absl::Status& s) {
  return absl::InvalidArgumentError(std::string(s.message()));
}

// Reads an optional token id into *out (kept at -1 when absent).
absl::Status OptionalId(const GgufFile& f, const char* key, int32_t* out) {
  if (f.Find(key) == nullptr) return absl::OkStatus();
  absl::StatusOr<int64_t> v = f.GetInt(key);
  if (!v.ok()) return Invalid(v.status());
  if (*v < 0 || *v > INT32_MAX) return absl::InvalidArgumentError(absl::StrCat(key, " = ", *v, " is out of range"));
  *out = static_cast<int32_t>(*v);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<TokenizerData> ReadTokenizerData(const GgufFile& f) {
  TokenizerData d;
  absl::StatusOr<std::string> model = f.GetString("tokenizer.ggml.model");
  if (!model.ok()) return Invalid(model.status());
  d.model = *model;
  if (f.Find("tokenizer.ggml.pre") != nullptr) {
    absl::StatusOr<std::string> pre = f.GetString("tokenizer.ggml.pre");
    if (!pre.ok()) return Invalid(pre.status());
    d.pre = *pre;
  }
  absl::StatusOr<std::vector<std::string_view>> tokens = f.GetStringArray("tokenizer.ggml.tokens");
  if (!tokens.ok()) return Invalid(tokens.status());
  d.tokens.reserve(tokens->size());
  for (std::string_view t : *tokens) d.tokens.emplace_back(t);
  if (f.Find("tokenizer.ggml.token_type") != nullptr) {
    absl::StatusOr<std::vector<int64_t>> types = f.GetIntArray("tokenizer.ggml.token_type");
    if (!types.ok()) return Invalid(types.status());
    d.token_types.reserve(types->size());
    for (int64_t t : *types) {
      if (t < INT32_MIN || t > INT32_MAX) return absl::InvalidArgumentError("tokenizer.ggml.token_type out of range");
      d.token_types.push_back(static_cast<int32_t>(t));
    }
  }
  if (f.Find("tokenizer.ggml.merges") != nullptr) {
    absl::StatusOr<std::vector<std::string_view>> merges = f.GetStringArray("tokenizer.ggml.merges");
    if (!merges.ok()) return Invalid(merges.status());
    d.merges.reserve(merges->size());
    for (std::string_view m : *merges) d.merges.emplace_back(m);
  }
  if (absl::Status s = OptionalId(f, "tokenizer.ggml.bos_token_id", &d.bos_id); !s.ok()) return s;
  if (absl::Status s = OptionalId(f, "tokenizer.ggml.eos_token_id", &d.eos_id); !s.ok()) return s;
  if (absl::Status s = OptionalId(f, "tokenizer.ggml.padding_token_id", &d.pad_id); !s.ok()) return s;
  return d;
}

absl::StatusOr<BpeTokenizer> LoadTokenizer(const GgufFile& file) {
  absl::StatusOr<TokenizerData> data = ReadTokenizerData(file);
  if (!data.ok()) return data.status();
  absl::StatusOr<BpeTokenizer> tok = BpeTokenizer::Create(*std::move(data));
  if (!tok.ok()) {
    return absl::Status(tok.status().code(), absl::StrCat(file.path(), ": tokenizer: ", tok.status().message()));
  }
  return tok;
}

}  // namespace stepproof::inference
