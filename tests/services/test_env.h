// Shared by the services tests: fresh temporary folders, a tiny random
// model file (tests/inference/test_models.h) and a deterministic signer.
#ifndef STEPPROOF_TESTS_SERVICES_TEST_ENV_H_
#define STEPPROOF_TESTS_SERVICES_TEST_ENV_H_

#include <unistd.h>

#include <array>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "provenance/signer.h"
#include "tests/inference/test_models.h"

namespace stepproof::service::testing {

// A fresh, empty temporary folder, removed with everything in it when the
// object goes away, so the tests leave nothing behind in /tmp.
class TempDir {
 public:
  explicit TempDir(std::filesystem::path path) : path_(std::move(path)) {
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  const std::filesystem::path& path() const { return path_; }
  operator const std::filesystem::path&() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }
  std::string string() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

inline std::unique_ptr<TempDir> FreshDir(const std::string& name) {
  return std::make_unique<TempDir>(std::filesystem::temp_directory_path() /
                                   absl::StrCat("stepproof_services_test_", getpid(), "_", name));
}

inline std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

inline void WriteFile(const std::filesystem::path& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
}

// A file holding a secret (token, TLS key): owner read/write only, as the
// server insists.
inline void WriteSecretFile(const std::filesystem::path& path, const std::string& content) {
  WriteFile(path, content);
  std::filesystem::permissions(path, std::filesystem::perms::owner_read |
                                         std::filesystem::perms::owner_write);
}

// A small random qwen2 model with the byte-level R1 test vocabulary. Small
// enough to generate hundreds of tokens per second on one core.
inline inference::testing::TinyModelSpec TinySpec(uint32_t seed = 1) {
  inference::testing::TinyModelSpec spec;
  spec.n_layer = 1;
  spec.n_embd = 64;
  spec.n_ff = 128;
  spec.n_head = 4;
  spec.n_head_kv = 2;
  spec.n_vocab = 300;
  spec.context_length = 2048;
  spec.seed = seed;
  return spec;
}

inline std::string WriteTinyModel(const std::filesystem::path& dir, uint32_t seed = 1,
                                  int context_length = 2048) {
  inference::testing::TinyModelSpec spec = TinySpec(seed);
  spec.context_length = context_length;
  const std::string path = (dir / absl::StrCat("tiny-", seed, ".gguf")).string();
  absl::Status s = inference::testing::TinyModel(spec).WriteFile(path);
  if (!s.ok()) return "";
  return path;
}

inline constexpr char kLogOrigin[] = "services.test/log";

inline provenance::Signer TestSigner(uint8_t seed_byte = 9) {
  std::array<uint8_t, 32> seed;
  seed.fill(seed_byte);
  return *provenance::Signer::FromSeed(kLogOrigin, seed);
}

}  // namespace stepproof::service::testing

#endif  // STEPPROOF_TESTS_SERVICES_TEST_ENV_H_
