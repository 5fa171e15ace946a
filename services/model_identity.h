// ModelIdentity: what a trace header says about the model. The model digest
// is the SHA-256 of the weights file's bytes. The tokenizer digest is
// defined here ("stepproof.tokenizer/v1", docs/SERVICE.md):
//
//   SHA-256( "stepproof.tokenizer/v1\n"
//            || S(model) || S(pre)
//            || U64(n_tokens)  || S(token_0) || ... || S(token_{n-1})
//            || U64(n_types)   || I32(type_0) || ...
//            || U64(n_merges)  || S(merge_0)  || ...
//            || I32(bos_id) || I32(eos_id) || I32(pad_id) )
//
// over the tokenizer as stored in the GGUF metadata (tokenizer.ggml.model,
// .pre, .tokens, .token_type, .merges, .bos_token_id, .eos_token_id,
// .padding_token_id; absent ids are -1, absent arrays have length 0), where
// S(x) = U64(byte length of x) || x, U64 is 8 bytes big-endian and I32 is a
// 4-byte big-endian two's complement integer. Two files with the same
// vocabulary, merges and special ids have the same tokenizer digest whatever
// else differs (weights, metadata order, quantisation).
//
// Thread-safety: pure functions.
#ifndef STEPPROOF_SERVICES_MODEL_IDENTITY_H_
#define STEPPROOF_SERVICES_MODEL_IDENTITY_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "inference/bpe_tokenizer.h"
#include "merkle/hash.h"

namespace stepproof::service {

inline constexpr char kTokenizerDigestDomain[] = "stepproof.tokenizer/v1\n";

struct ModelIdentity {
  std::string name;  // general.name, else the file name without .gguf
  merkle::Hash model_digest{};
  merkle::Hash tokenizer_digest{};
};

// The canonical serialisation above, and its SHA-256.
std::string SerializeTokenizer(const inference::TokenizerData& tokenizer);
merkle::Hash TokenizerDigest(const inference::TokenizerData& tokenizer);

// Opens the GGUF file (memory-mapped), reads its name and tokenizer and
// hashes the file, unless `known_digest` gives the file's SHA-256 already.
// Errors of GgufFile::Open and ReadTokenizerData (NOT_FOUND, DATA_LOSS,
// INVALID_ARGUMENT naming the problem), and of Sha256File.
absl::StatusOr<ModelIdentity> ReadModelIdentity(
    const std::string& gguf_path,
    std::optional<merkle::Hash> known_digest = std::nullopt);

}  // namespace stepproof::service

#endif  // STEPPROOF_SERVICES_MODEL_IDENTITY_H_
