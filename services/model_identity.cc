#include "services/model_identity.h"

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "inference/gguf.h"
#include "inference/gguf_tokenizer.h"
#include "services/model_file.h"

namespace stepproof::service {
namespace {

void PutU64(std::string& out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((v >> shift) & 0xff));
  }
}

void PutI32(std::string& out, int32_t v) {
  const uint32_t u = static_cast<uint32_t>(v);
  for (int shift = 24; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((u >> shift) & 0xff));
  }
}

void PutString(std::string& out, const std::string& s) {
  PutU64(out, s.size());
  out.append(s);
}

}  // namespace

std::string SerializeTokenizer(const inference::TokenizerData& t) {
  std::string out = kTokenizerDigestDomain;
  PutString(out, t.model);
  PutString(out, t.pre);
  PutU64(out, t.tokens.size());
  for (const std::string& token : t.tokens) PutString(out, token);
  PutU64(out, t.token_types.size());
  for (int32_t type : t.token_types) PutI32(out, type);
  PutU64(out, t.merges.size());
  for (const std::string& merge : t.merges) PutString(out, merge);
  PutI32(out, t.bos_id);
  PutI32(out, t.eos_id);
  PutI32(out, t.pad_id);
  return out;
}

merkle::Hash TokenizerDigest(const inference::TokenizerData& tokenizer) {
  return merkle::Sha256Of(SerializeTokenizer(tokenizer));
}

absl::StatusOr<ModelIdentity> ReadModelIdentity(
    const std::string& gguf_path, std::optional<merkle::Hash> known_digest) {
  absl::StatusOr<inference::GgufFile> file =
      inference::GgufFile::Open(gguf_path);
  if (!file.ok()) return file.status();
  absl::StatusOr<inference::TokenizerData> tokenizer =
      inference::ReadTokenizerData(*file);
  if (!tokenizer.ok()) {
    return absl::Status(tokenizer.status().code(),
                        absl::StrCat(gguf_path, ": ",
                                     tokenizer.status().message()));
  }
  ModelIdentity identity;
  absl::StatusOr<std::string> name = file->GetString("general.name");
  if (name.ok() && !name->empty()) {
    identity.name = *name;
  } else {
    size_t slash = gguf_path.rfind('/');
    identity.name =
        slash == std::string::npos ? gguf_path : gguf_path.substr(slash + 1);
    if (absl::EndsWith(identity.name, ".gguf")) {
      identity.name.resize(identity.name.size() - 5);
    }
  }
  // The header holds names of at most provenance::kMaxHeaderStringBytes;
  // cut long names at a UTF-8 character boundary.
  if (identity.name.size() > 200) {
    size_t cut = 200;
    while (cut > 0 && (static_cast<unsigned char>(identity.name[cut]) & 0xC0) == 0x80) --cut;
    identity.name.resize(cut);
  }
  identity.tokenizer_digest = TokenizerDigest(*tokenizer);
  if (known_digest.has_value()) {
    identity.model_digest = *known_digest;
  } else {
    absl::StatusOr<merkle::Hash> digest = Sha256File(gguf_path);
    if (!digest.ok()) return digest.status();
    identity.model_digest = *digest;
  }
  return identity;
}

}  // namespace stepproof::service
