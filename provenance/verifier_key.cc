#include "provenance/verifier_key.h"

#include <openssl/evp.h>

#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "merkle/hash.h"
#include "provenance/byte_codec.h"

namespace stepproof::provenance {
namespace {

// Decodes a UTF-8 sequence known to be valid; returns the code point and
// advances *i.
uint32_t NextCodePoint(absl::string_view s, size_t* i) {
  auto c = static_cast<unsigned char>(s[*i]);
  if (c < 0x80) {
    ++*i;
    return c;
  }
  size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
  uint32_t cp = c & (0x7F >> len);
  for (size_t k = 1; k < len; ++k) {
    cp = (cp << 6) | (static_cast<unsigned char>(s[*i + k]) & 0x3F);
  }
  *i += len;
  return cp;
}

bool IsUnicodeSpace(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 ||
         cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
         cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
         cp == 0x3000;
}

}  // namespace

bool IsValidKeyName(absl::string_view name) {
  if (name.empty() || !IsValidUtf8(name)) return false;
  size_t i = 0;
  while (i < name.size()) {
    uint32_t cp = NextCodePoint(name, &i);
    if (cp == '+' || cp < 0x20 || cp == 0x7F || IsUnicodeSpace(cp)) {
      return false;
    }
  }
  return true;
}

uint32_t ComputeKeyId(absl::string_view name, const Ed25519PublicKey& key) {
  merkle::Sha256 sha;
  sha.Update(std::string_view(name.data(), name.size()));
  const uint8_t sep[2] = {0x0A, kEd25519SignatureType};
  sha.Update(absl::Span<const uint8_t>(sep, 2));
  sha.Update(key);
  merkle::Hash h = sha.Final();
  return (uint32_t{h[0]} << 24) | (uint32_t{h[1]} << 16) |
         (uint32_t{h[2]} << 8) | uint32_t{h[3]};
}

std::string MakeVerifierKey(absl::string_view name,
                            const Ed25519PublicKey& key) {
  std::string blob(1, static_cast<char>(kEd25519SignatureType));
  blob.append(reinterpret_cast<const char*>(key.data()), key.size());
  return absl::StrCat(name, "+", absl::StrFormat("%08x", ComputeKeyId(name, key)),
                      "+", absl::Base64Escape(blob));
}

bool Ed25519Verify(const Ed25519PublicKey& key, absl::string_view message,
                   absl::string_view signature) {
  if (signature.size() != 64) return false;
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> pkey(
      EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, key.data(),
                                  key.size()),
      &EVP_PKEY_free);
  if (!pkey) return false;
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(
      EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  if (!ctx ||
      EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, pkey.get()) !=
          1) {
    return false;
  }
  return EVP_DigestVerify(
             ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
             signature.size(),
             reinterpret_cast<const unsigned char*>(message.data()),
             message.size()) == 1;
}

NoteVerifier::NoteVerifier(std::string name, const Ed25519PublicKey& key)
    : name_(std::move(name)), key_(key), key_id_(ComputeKeyId(name_, key)) {}

absl::StatusOr<NoteVerifier> NoteVerifier::FromPublicKey(
    std::string name, const Ed25519PublicKey& key) {
  if (!IsValidKeyName(name)) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid key name \"", name,
                     "\": must be non-empty UTF-8 without spaces or '+'"));
  }
  return NoteVerifier(std::move(name), key);
}

absl::StatusOr<NoteVerifier> NoteVerifier::FromVerifierKey(
    absl::string_view vkey) {
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("verifier key \"", vkey, "\": ", why));
  };
  // The base64 key may itself hold '+': split at the first two only.
  std::vector<absl::string_view> parts =
      absl::StrSplit(vkey, absl::MaxSplits('+', 2));
  if (parts.size() != 3) {
    return bad("want <name>+<8 hex digit key id>+<base64 key>");
  }
  if (!IsValidKeyName(parts[0])) return bad("invalid key name");
  // Lowercase only: the string has one canonical form (as the base64 below
  // must), so that parse -> verifier_key() is the identity.
  if (parts[1].size() != 8) return bad("key id is not 8 lowercase hex digits");
  for (char c : parts[1]) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return bad("key id is not 8 lowercase hex digits");
    }
  }
  uint32_t id = static_cast<uint32_t>(
      std::stoul(std::string(parts[1].data(), parts[1].size()), nullptr, 16));
  std::string blob;
  if (!absl::Base64Unescape(parts[2], &blob) ||
      absl::Base64Escape(blob) != parts[2]) {
    return bad("key is not canonical padded base64");
  }
  if (blob.empty() || static_cast<uint8_t>(blob[0]) != kEd25519SignatureType) {
    return bad("unsupported signature type (only 0x01, Ed25519)");
  }
  if (blob.size() != 33) {
    return bad(absl::StrCat("Ed25519 key is ", blob.size() - 1,
                            " bytes, want 32"));
  }
  Ed25519PublicKey key;
  std::copy(blob.begin() + 1, blob.end(), key.begin());
  std::string name(parts[0].data(), parts[0].size());
  if (ComputeKeyId(name, key) != id) {
    return bad("key id does not match the name and key");
  }
  return NoteVerifier(std::move(name), key);
}

std::string NoteVerifier::verifier_key() const {
  return MakeVerifierKey(name_, key_);
}

bool NoteVerifier::Verify(absl::string_view message,
                          absl::string_view signature) const {
  return Ed25519Verify(key_, message, signature);
}

}  // namespace stepproof::provenance
