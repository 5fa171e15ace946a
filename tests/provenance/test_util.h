// Shared fixtures for the provenance tests: a fixed signing key (RFC 8032
// TEST 1 seed), a valid trace header, a deterministic salt source, and a small
// trace built with them.
#ifndef STEPPROOF_TESTS_PROVENANCE_TEST_UTIL_H_
#define STEPPROOF_TESTS_PROVENANCE_TEST_UTIL_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"
#include "provenance/signer.h"
#include "provenance/trace_builder.h"
#include "provenance/trace_header.h"
#include "test_util_files.h"

namespace stepproof::provenance::testing {

inline constexpr char kTest1SeedHex[] =
    "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
inline constexpr char kLogOrigin[] = "log.test.example";
inline constexpr char kTraceId[] = "0123456789abcdef0123456789abcdef";

inline std::vector<uint8_t> HexBytes(absl::string_view hex) {
  std::string s = absl::HexStringToBytes(hex);
  return std::vector<uint8_t>(s.begin(), s.end());
}

inline Signer TestSigner(std::string name = kLogOrigin,
                         absl::string_view seed_hex = kTest1SeedHex) {
  auto s = Signer::FromSeed(std::move(name), HexBytes(seed_hex));
  EXPECT_TRUE(s.ok()) << s.status();
  return *std::move(s);
}

inline TraceHeader TestHeader(const Signer& signer) {
  TraceHeader h;
  h.model_digest.fill(0x11);
  h.tokenizer_digest.fill(0x22);
  h.model_name = "tiny";
  h.sampling.top_k = 40;
  h.sampling.seed = 7;
  h.sampling.max_new_tokens = 64;
  h.prompt = "What is 2 + 3?";
  h.backend = "cpu";
  h.device = "test";
  h.start_unix_ms = 1767323045678;
  h.key_name = signer.key_name();
  h.key_id = signer.key_id();
  return h;
}

// Salts 0x01.., one value per call.
inline TraceBuilder::RandomBytes CountingSalts() {
  auto next = std::make_shared<uint8_t>(1);
  return [next](absl::Span<uint8_t> out) {
    std::fill(out.begin(), out.end(), (*next)++);
  };
}

inline StepRecord TestStep(int i) {
  StepRecord s;
  s.kind = i % 3 == 2 ? StepKind::kAnswer : StepKind::kReasoning;
  s.start_ms = 10 * i;
  s.end_ms = 10 * i + 5;
  s.text = "step " + std::to_string(i) + " \xc3\xa9";
  s.token_ids = {static_cast<uint32_t>(i), 2, 3};
  if (i % 2 == 1) s.logprobs = std::vector<float>{-0.5f, -1.0f, -0.0f};
  if (i % 3 == 1) s.fingerprint = std::string("\x00\x01\xff", 3);
  return s;
}

// A finished trace: header + `steps` steps.
inline TraceBuilder TestTrace(const Signer& signer, int steps,
                              bool finish = true) {
  auto b = TraceBuilder::Start(kLogOrigin, kTraceId, TestHeader(signer),
                               &signer, CountingSalts());
  EXPECT_TRUE(b.ok()) << b.status();
  for (int i = 1; i <= steps; ++i) {
    auto a = b->AppendStep(TestStep(i));
    EXPECT_TRUE(a.ok()) << a.status();
  }
  if (finish) {
    EXPECT_TRUE(b->Finish().ok());
  }
  return *std::move(b);
}

}  // namespace stepproof::provenance::testing

#endif  // STEPPROOF_TESTS_PROVENANCE_TEST_UTIL_H_
