// RFC 9162 (RFC 6962) hashing: SHA-256 with domain separation between leaves
// and interior nodes. Pure: no I/O, no clocks; OpenSSL is only behind this file.
#ifndef STEPPROOF_MERKLE_HASH_H_
#define STEPPROOF_MERKLE_HASH_H_

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace stepproof::merkle {

inline constexpr size_t kHashSize = 32;
using Hash = std::array<uint8_t, kHashSize>;

// A reusable SHA-256 context. Holding one avoids OpenSSL's per-call algorithm
// fetch, which dominates the cost of hashing 65-byte nodes.
// Thread-safety: not thread-safe; use one per thread.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  // Streaming use: Reset(), Update()*, Final().
  void Reset();
  void Update(absl::Span<const uint8_t> data);
  void Update(std::string_view data);
  Hash Final();

  // One-shot digest of the concatenation of up to three parts.
  Hash Digest(absl::Span<const uint8_t> a, absl::Span<const uint8_t> b = {},
              absl::Span<const uint8_t> c = {});

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// SHA-256 of `data` (no domain separation).
Hash Sha256Of(absl::Span<const uint8_t> data);
Hash Sha256Of(std::string_view data);

// MTH({}) = SHA-256 of the empty string.
Hash EmptyRoot();
// Leaf hash: SHA-256(0x00 || data).
Hash HashLeaf(absl::Span<const uint8_t> data);
Hash HashLeaf(std::string_view data);
// Interior node: SHA-256(0x01 || left || right).
Hash HashChildren(const Hash& left, const Hash& right);

// Lower-case hex, 64 characters.
std::string ToHex(const Hash& hash);
// Parses 64 hex characters (either case). INVALID_ARGUMENT otherwise.
absl::StatusOr<Hash> HashFromHex(std::string_view hex);
// Copies exactly 32 bytes. INVALID_ARGUMENT if `bytes` has another length.
absl::StatusOr<Hash> HashFromBytes(absl::Span<const uint8_t> bytes);

}  // namespace stepproof::merkle

#endif  // STEPPROOF_MERKLE_HASH_H_
