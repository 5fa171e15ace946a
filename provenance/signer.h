// The server's Ed25519 signing key. The private key lives in a PKCS#8 PEM
// file created with mode 0600 (open(O_CREAT|O_EXCL, 0600): never readable by
// others, not even for an instant); like ssh, loading a key file that is
// group- or world-accessible fails.
//
// Part of stepproof_provenance (not the verify-only library).
// Thread-safety: Sign() and the accessors may be called concurrently.
// Movable, not copyable.
#ifndef STEPPROOF_PROVENANCE_SIGNER_H_
#define STEPPROOF_PROVENANCE_SIGNER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "provenance/verifier_key.h"

namespace stepproof::provenance {

class Signer {
 public:
  // Loads the key at `pem_path`, or creates a fresh random key there when no
  // file exists (then *created = true). `key_name` is the C2SP key name
  // (usually the log origin). Returns
  //   INVALID_ARGUMENT    bad key name; file is not an Ed25519 PKCS#8 PEM key
  //   PERMISSION_DENIED   file is group- or world-accessible (mode & 077)
  //   INTERNAL / others   I/O errors, naming the path and errno text.
  static absl::StatusOr<Signer> LoadOrCreate(const std::string& pem_path,
                                             std::string key_name,
                                             bool* created = nullptr);
  // A key from a 32-byte RFC 8032 seed (tests, vectors). INVALID_ARGUMENT if
  // the seed is not 32 bytes or the name is invalid.
  static absl::StatusOr<Signer> FromSeed(std::string key_name,
                                         absl::Span<const uint8_t> seed32);

  Signer(Signer&&) noexcept;
  Signer& operator=(Signer&&) noexcept;
  ~Signer();

  const std::string& key_name() const { return key_name_; }
  std::string verifier_key() const;  // C2SP vkey string
  uint32_t key_id() const { return key_id_; }
  const Ed25519PublicKey& public_key() const { return public_key_; }
  // A verifier for this key.
  NoteVerifier verifier() const;

  // The 64-byte Ed25519 signature of `message`. INTERNAL if OpenSSL fails.
  absl::StatusOr<std::string> Sign(absl::string_view message) const;

 private:
  struct Key;
  Signer(std::string key_name, std::unique_ptr<Key> key);
  std::string key_name_;
  std::unique_ptr<Key> key_;
  Ed25519PublicKey public_key_{};
  uint32_t key_id_ = 0;
};

}  // namespace stepproof::provenance

#endif  // STEPPROOF_PROVENANCE_SIGNER_H_
