#include "provenance/signer.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "provenance/note.h"

namespace stepproof::provenance {

struct Signer::Key {
  EVP_PKEY* pkey = nullptr;
  ~Key() { EVP_PKEY_free(pkey); }
};

namespace {

absl::Status Errno(absl::string_view what, const std::string& path) {
  return absl::Status(
      absl::ErrnoToStatusCode(errno),
      absl::StrCat(what, " ", path, ": ", std::strerror(errno)));
}

struct FdCloser {
  int fd;
  ~FdCloser() {
    if (fd >= 0) ::close(fd);
  }
};

absl::StatusOr<EVP_PKEY*> GenerateKey() {
  EVP_PKEY* pkey = nullptr;
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, nullptr);
  bool ok = ctx != nullptr && EVP_PKEY_keygen_init(ctx) == 1 &&
            EVP_PKEY_keygen(ctx, &pkey) == 1;
  EVP_PKEY_CTX_free(ctx);
  if (!ok) return absl::InternalError("OpenSSL could not generate an Ed25519 key");
  return pkey;
}

absl::StatusOr<std::string> PemOf(EVP_PKEY* pkey) {
  BIO* bio = BIO_new(BIO_s_mem());
  if (bio == nullptr) return absl::InternalError("BIO_new failed");
  std::string out;
  if (PEM_write_bio_PrivateKey(bio, pkey, nullptr, nullptr, 0, nullptr,
                               nullptr) == 1) {
    char* data = nullptr;
    long n = BIO_get_mem_data(bio, &data);
    out.assign(data, static_cast<size_t>(n));
  }
  BIO_free(bio);
  if (out.empty()) return absl::InternalError("could not encode the key as PEM");
  return out;
}

}  // namespace

Signer::Signer(std::string key_name, std::unique_ptr<Key> key)
    : key_name_(std::move(key_name)), key_(std::move(key)) {
  size_t len = public_key_.size();
  EVP_PKEY_get_raw_public_key(key_->pkey, public_key_.data(), &len);
  key_id_ = ComputeKeyId(key_name_, public_key_);
}

Signer::Signer(Signer&&) noexcept = default;
Signer& Signer::operator=(Signer&&) noexcept = default;
Signer::~Signer() = default;

absl::StatusOr<Signer> Signer::FromSeed(std::string key_name,
                                        absl::Span<const uint8_t> seed32) {
  if (!IsValidKeyName(key_name)) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid key name \"", key_name, "\""));
  }
  if (seed32.size() != 32) {
    return absl::InvalidArgumentError(
        absl::StrCat("Ed25519 seed is ", seed32.size(), " bytes, want 32"));
  }
  auto key = std::make_unique<Key>();
  key->pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr,
                                           seed32.data(), seed32.size());
  if (key->pkey == nullptr) {
    return absl::InternalError("OpenSSL rejected the Ed25519 seed");
  }
  return Signer(std::move(key_name), std::move(key));
}

absl::StatusOr<Signer> Signer::LoadOrCreate(const std::string& pem_path,
                                            std::string key_name,
                                            bool* created) {
  if (created != nullptr) *created = false;
  if (!IsValidKeyName(key_name)) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid key name \"", key_name, "\""));
  }
  auto key = std::make_unique<Key>();
  int fd = ::open(pem_path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) {
    // Create: the file never exists with a mode other than 0600.
    auto pkey = GenerateKey();
    if (!pkey.ok()) return pkey.status();
    key->pkey = *pkey;
    auto pem = PemOf(key->pkey);
    if (!pem.ok()) return pem.status();
    int wfd = ::open(pem_path.c_str(),
                     O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (wfd < 0) {
      if (errno == EEXIST) {  // lost a race with another creator: load theirs
        return LoadOrCreate(pem_path, std::move(key_name), created);
      }
      return Errno("cannot create key file", pem_path);
    }
    FdCloser closer{wfd};
    size_t done = 0;
    while (done < pem->size()) {
      ssize_t n = ::write(wfd, pem->data() + done, pem->size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        absl::Status st = Errno("cannot write key file", pem_path);
        ::unlink(pem_path.c_str());
        return st;
      }
      done += static_cast<size_t>(n);
    }
    if (::fsync(wfd) != 0) {
      absl::Status st = Errno("cannot sync key file", pem_path);
      ::unlink(pem_path.c_str());
      return st;
    }
    if (created != nullptr) *created = true;
    return Signer(std::move(key_name), std::move(key));
  }
  if (fd < 0) return Errno("cannot open key file", pem_path);
  FdCloser closer{fd};
  struct stat st;
  if (::fstat(fd, &st) != 0) return Errno("cannot stat key file", pem_path);
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat("key file ", pem_path, " is not a regular file"));
  }
  if ((st.st_mode & 077) != 0) {
    return absl::PermissionDeniedError(absl::StrFormat(
        "key file %s has mode %04o: it must not be accessible by group or "
        "others (chmod 600 %s)",
        pem_path, st.st_mode & 07777, pem_path));
  }
  std::string pem;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Errno("cannot read key file", pem_path);
    if (n == 0) break;
    pem.append(buf, static_cast<size_t>(n));
    if (pem.size() > (1 << 16)) {
      return absl::InvalidArgumentError(
          absl::StrCat("key file ", pem_path, " is too large to be a key"));
    }
  }
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  key->pkey = bio ? PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr)
                  : nullptr;
  BIO_free(bio);
  if (key->pkey == nullptr || EVP_PKEY_get_id(key->pkey) != EVP_PKEY_ED25519) {
    return absl::InvalidArgumentError(absl::StrCat(
        "key file ", pem_path, " does not hold an Ed25519 PKCS#8 PEM private key"));
  }
  return Signer(std::move(key_name), std::move(key));
}

std::string Signer::verifier_key() const {
  return MakeVerifierKey(key_name_, public_key_);
}

NoteVerifier Signer::verifier() const {
  // The name was validated at construction, so this cannot fail.
  return *NoteVerifier::FromPublicKey(key_name_, public_key_);
}

absl::StatusOr<std::string> Signer::Sign(absl::string_view message) const {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(
      EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  std::string sig(64, '\0');
  size_t len = sig.size();
  if (!ctx ||
      EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key_->pkey) != 1 ||
      EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()),
                     &len, reinterpret_cast<const unsigned char*>(message.data()),
                     message.size()) != 1 ||
      len != 64) {
    return absl::InternalError("Ed25519 signing failed in OpenSSL");
  }
  return sig;
}

absl::StatusOr<std::string> SignNote(absl::string_view text,
                                     const Signer& signer) {
  // A note made of the text alone must parse: check the text by parsing the
  // signed result below.
  if (text.empty() || text.back() != '\n') {
    return absl::InvalidArgumentError("note text must be non-empty and end in a newline");
  }
  auto sig = signer.Sign(text);
  if (!sig.ok()) return sig.status();
  std::string note = absl::StrCat(
      text, "\n", FormatSignatureLine(signer.key_name(), signer.key_id(), *sig));
  if (auto parsed = ParseNote(note); !parsed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid note text: ", parsed.status().message()));
  }
  return note;
}

}  // namespace stepproof::provenance
