// Builds the tokenizer description (TokenizerData) from a GGUF file's
// tokenizer.ggml.* metadata.
//
// Keys read: tokenizer.ggml.model (string, required), tokenizer.ggml.pre
// (string, optional), tokenizer.ggml.tokens (string array, required),
// tokenizer.ggml.token_type (integer array, optional), tokenizer.ggml.merges
// (string array, optional), tokenizer.ggml.bos_token_id / eos_token_id /
// padding_token_id (integers, optional).
//
// Thread-safety: pure function of an immutable file.

#ifndef STEPPROOF_INFERENCE_GGUF_TOKENIZER_H_
#define STEPPROOF_INFERENCE_GGUF_TOKENIZER_H_

#include "absl/status/statusor.h"
#include "inference/bpe_tokenizer.h"
#include "inference/gguf.h"

namespace stepproof::inference {

// Returns INVALID_ARGUMENT naming the key when a required key is missing or a
// key has the wrong type or an id does not fit int32.
absl::StatusOr<TokenizerData> ReadTokenizerData(const GgufFile& file);

// ReadTokenizerData then BpeTokenizer::Create.
absl::StatusOr<BpeTokenizer> LoadTokenizer(const GgufFile& file);

}  // namespace stepproof::inference

#endif  // STEPPROOF_INFERENCE_GGUF_TOKENIZER_H_
