#include "merkle/hash.h"

#include <openssl/evp.h>

#include <cstring>

#include "absl/strings/str_cat.h"

namespace stepproof::merkle {

struct Sha256::State {
  EVP_MD* md = nullptr;
  EVP_MD_CTX* ctx = nullptr;
};

Sha256::Sha256() : state_(std::make_unique<State>()) {
  // Fetch once: EVP_sha256() would re-fetch the implementation on every init.
  state_->md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  state_->ctx = EVP_MD_CTX_new();
  Reset();
}

Sha256::~Sha256() {
  EVP_MD_CTX_free(state_->ctx);
  EVP_MD_free(state_->md);
}

void Sha256::Reset() { EVP_DigestInit_ex2(state_->ctx, state_->md, nullptr); }

void Sha256::Update(absl::Span<const uint8_t> data) {
  if (!data.empty()) EVP_DigestUpdate(state_->ctx, data.data(), data.size());
}

void Sha256::Update(std::string_view data) {
  if (!data.empty()) EVP_DigestUpdate(state_->ctx, data.data(), data.size());
}

Hash Sha256::Final() {
  Hash out;
  unsigned int len = 0;
  EVP_DigestFinal_ex(state_->ctx, out.data(), &len);
  Reset();
  return out;
}

Hash Sha256::Digest(absl::Span<const uint8_t> a, absl::Span<const uint8_t> b,
                    absl::Span<const uint8_t> c) {
  Reset();
  Update(a);
  Update(b);
  Update(c);
  return Final();
}

namespace {
// One context per thread for the free functions below: hashing has no
// observable state, so this is a cache, not shared mutable state.
Sha256& ThreadHasher() {
  thread_local Sha256 hasher;
  return hasher;
}

absl::Span<const uint8_t> Bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

constexpr uint8_t kLeafPrefix[1] = {0x00};
constexpr uint8_t kNodePrefix[1] = {0x01};
}  // namespace

Hash Sha256Of(absl::Span<const uint8_t> data) {
  return ThreadHasher().Digest(data);
}
Hash Sha256Of(std::string_view data) { return Sha256Of(Bytes(data)); }

Hash EmptyRoot() { return Sha256Of(absl::Span<const uint8_t>()); }

Hash HashLeaf(absl::Span<const uint8_t> data) {
  return ThreadHasher().Digest(kLeafPrefix, data);
}
Hash HashLeaf(std::string_view data) { return HashLeaf(Bytes(data)); }

Hash HashChildren(const Hash& left, const Hash& right) {
  return ThreadHasher().Digest(kNodePrefix, left, right);
}

std::string ToHex(const Hash& hash) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(2 * kHashSize, '0');
  for (size_t i = 0; i < kHashSize; ++i) {
    out[2 * i] = kDigits[hash[i] >> 4];
    out[2 * i + 1] = kDigits[hash[i] & 0xf];
  }
  return out;
}

absl::StatusOr<Hash> HashFromHex(std::string_view hex) {
  if (hex.size() != 2 * kHashSize) {
    return absl::InvalidArgumentError(absl::StrCat(
        "hash must be 64 hex characters, got ", hex.size()));
  }
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  Hash out;
  for (size_t i = 0; i < kHashSize; ++i) {
    int hi = nibble(hex[2 * i]);
    int lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("hash has a non-hex character near offset ", 2 * i));
    }
    out[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return out;
}

absl::StatusOr<Hash> HashFromBytes(absl::Span<const uint8_t> bytes) {
  if (bytes.size() != kHashSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("hash must be 32 bytes, got ", bytes.size()));
  }
  Hash out;
  std::memcpy(out.data(), bytes.data(), kHashSize);
  return out;
}

}  // namespace stepproof::merkle
