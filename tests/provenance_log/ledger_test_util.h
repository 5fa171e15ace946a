// Shared by the ledger tests and the crash test: a deterministic signer, a
// valid header, step records and fresh temporary directories.
#ifndef STEPPROOF_TESTS_PROVENANCE_LOG_LEDGER_TEST_UTIL_H_
#define STEPPROOF_TESTS_PROVENANCE_LOG_LEDGER_TEST_UTIL_H_

#include <unistd.h>

#include <algorithm>
#include <array>
#include <filesystem>
#include <string>

#include "absl/strings/str_cat.h"
#include "merkle/hash.h"
#include "provenance/signer.h"
#include "provenance/step_record.h"
#include "provenance/trace_header.h"

namespace stepproof::provenance::testing_util {

inline constexpr char kLogOrigin[] = "log.test.stepproof";

inline Signer MakeSigner(uint8_t seed_byte = 7) {
  std::array<uint8_t, 32> seed;
  seed.fill(seed_byte);
  return *Signer::FromSeed(kLogOrigin, seed);
}

inline TraceHeader MakeHeader(const Signer& signer, const std::string& prompt) {
  TraceHeader h;
  h.model_digest = merkle::Sha256Of(std::string_view("weights"));
  h.tokenizer_digest = merkle::Sha256Of(std::string_view("tokenizer"));
  h.model_name = "test-model";
  h.sampling.seed = 42;
  h.prompt = prompt;
  h.backend = "cpu";
  h.device = "test device";
  h.start_unix_ms = 1767225600000;  // 2026-01-01T00:00:00.000Z
  h.key_name = signer.key_name();
  h.key_id = signer.key_id();
  return h;
}

inline StepRecord MakeStep(const std::string& text, bool answer = false) {
  StepRecord r;
  r.kind = answer ? StepKind::kAnswer : StepKind::kReasoning;
  r.text = text;
  r.token_ids = {1, 2, 3};
  r.start_ms = 1;
  r.end_ms = 2;
  return r;
}

inline std::filesystem::path FreshDir(std::string name) {
  // Parameterised test names hold '/': keep the directory flat so that
  // removing it removes everything.
  std::replace(name.begin(), name.end(), '/', '_');
  std::filesystem::path dir =
      std::filesystem::temp_directory_path() /
      absl::StrCat("stepproof_ledger_test_", getpid(), "_", name);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

}  // namespace stepproof::provenance::testing_util

#endif  // STEPPROOF_TESTS_PROVENANCE_LOG_LEDGER_TEST_UTIL_H_
