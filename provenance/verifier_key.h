// Ed25519 public keys as C2SP signed-note verifier keys:
//   <name>+<hex(key id), 8 digits>+<base64(0x01 || 32-byte public key)>
// with key id = first 4 bytes (big-endian) of
// SHA-256(name || 0x0A || 0x01 || public key).
// Verification goes through OpenSSL EVP (pure Ed25519, RFC 8032).
//
// Thread-safety: NoteVerifier is immutable after construction; Verify may be
// called from many threads.
#ifndef STEPPROOF_PROVENANCE_VERIFIER_KEY_H_
#define STEPPROOF_PROVENANCE_VERIFIER_KEY_H_

#include <array>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace stepproof::provenance {

inline constexpr uint8_t kEd25519SignatureType = 0x01;
using Ed25519PublicKey = std::array<uint8_t, 32>;

// C2SP key id of an Ed25519 key.
uint32_t ComputeKeyId(absl::string_view name, const Ed25519PublicKey& key);
// The verifier key string. REQUIRES: IsValidKeyName(name).
std::string MakeVerifierKey(absl::string_view name,
                            const Ed25519PublicKey& key);
// Non-empty, valid UTF-8, no '+', no whitespace (Unicode spaces included)
// and no control characters.
bool IsValidKeyName(absl::string_view name);

// True iff `signature` is a valid 64-byte Ed25519 signature of `message` by
// `key` (RFC 8032 pure Ed25519).
bool Ed25519Verify(const Ed25519PublicKey& key, absl::string_view message,
                   absl::string_view signature);

class NoteVerifier {
 public:
  // Parses a verifier key. INVALID_ARGUMENT naming the problem: wrong number
  // of '+' fields, bad name, key id not 8 hex digits, base64 not canonical,
  // unknown signature type, key length, or a key id that does not match the
  // name and key.
  static absl::StatusOr<NoteVerifier> FromVerifierKey(absl::string_view vkey);
  // REQUIRES: IsValidKeyName(name); INVALID_ARGUMENT otherwise.
  static absl::StatusOr<NoteVerifier> FromPublicKey(
      std::string name, const Ed25519PublicKey& key);

  const std::string& name() const { return name_; }
  uint32_t key_id() const { return key_id_; }
  const Ed25519PublicKey& public_key() const { return key_; }
  // The C2SP verifier key string.
  std::string verifier_key() const;

  // True iff `signature` (64 bytes, without the 4-byte key id) is this key's
  // Ed25519 signature of `message`.
  bool Verify(absl::string_view message, absl::string_view signature) const;

 private:
  NoteVerifier(std::string name, const Ed25519PublicKey& key);
  std::string name_;
  Ed25519PublicKey key_{};
  uint32_t key_id_ = 0;
};

}  // namespace stepproof::provenance

#endif  // STEPPROOF_PROVENANCE_VERIFIER_KEY_H_
