// Canonical encodings: RFC 3339 timestamps, the trace header and the step
// record. Expected bytes are written out by hand from docs/FORMAT.md's
// layout, not produced by the encoder under test.
#include <bit>
#include <cmath>
#include <limits>
#include <string>

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"
#include "provenance/rfc3339.h"
#include "provenance/step_record.h"
#include "provenance/trace_header.h"
#include "test_util.h"

namespace stepproof::provenance {
namespace {

std::string Hex(absl::string_view s) { return absl::BytesToHexString(s); }
std::string Bytes(absl::string_view hex) { return absl::HexStringToBytes(hex); }

TEST(Rfc3339, FormatsKnownInstants) {
  EXPECT_EQ(FormatRfc3339Millis(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatRfc3339Millis(1767323045678), "2026-01-02T03:04:05.678Z");
  EXPECT_EQ(FormatRfc3339Millis(951782400000), "2000-02-29T00:00:00.000Z");
  EXPECT_EQ(FormatRfc3339Millis(-1), "1969-12-31T23:59:59.999Z");
  EXPECT_EQ(FormatRfc3339Millis(-62167219200000), "0000-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatRfc3339Millis(253402300799999), "9999-12-31T23:59:59.999Z");
}

TEST(Rfc3339, ParsesOnlyTheCanonicalForm) {
  for (int64_t ms : {int64_t{0}, int64_t{1767323045678}, int64_t{-1},
                     int64_t{951782400000}, int64_t{-62167219200000},
                     int64_t{253402300799999}}) {
    auto back = ParseRfc3339Millis(FormatRfc3339Millis(ms));
    ASSERT_TRUE(back.ok()) << ms;
    EXPECT_EQ(*back, ms);
  }
  for (const char* bad :
       {"2026-01-02T03:04:05Z", "2026-01-02T03:04:05.678+00:00",
        "2026-01-02t03:04:05.678Z", "2026-01-02T03:04:05.6780Z",
        "2026-02-30T00:00:00.000Z", "2025-02-29T00:00:00.000Z",
        "1900-02-29T00:00:00.000Z", "2026-13-01T00:00:00.000Z",
        "2026-01-01T24:00:00.000Z", "2026-01-01T00:60:00.000Z",
        "2026-01-01T00:00:60.000Z", " 2026-01-01T00:00:00.000Z", ""}) {
    EXPECT_FALSE(ParseRfc3339Millis(bad).ok()) << bad;
  }
}

// A header whose encoding is spelled out byte by byte below.
TraceHeader SmallHeader() {
  TraceHeader h;
  h.model_digest.fill(0x11);
  h.tokenizer_digest.fill(0x22);
  h.model_name = "m";
  h.sampling.sampler = "s";
  h.sampling.greedy = true;
  h.sampling.temperature = 0.0f;
  h.sampling.top_p = 1.0f;
  h.sampling.top_k = 0;
  h.sampling.seed = 1;
  h.sampling.max_new_tokens = 2;
  merkle::Hash c;
  c.fill(0x33);
  h.prompt_commitment = c;
  h.backend = "cpu";
  h.device = "";
  h.start_unix_ms = 0;
  h.key_name = "k";
  h.key_id = 0xdeadbeef;
  return h;
}

const std::string kSmallHeaderHex =
    "01" +                        // version
    std::string(64, '1') +        // model digest
    std::string(64, '2') +        // tokenizer digest
    "00000001" "6d" +             // model name "m"
    "00000001" "73" +             // sampler "s"
    "01" +                        // greedy
    "00000000" +                  // temperature 0.0f
    "3f800000" +                  // top_p 1.0f
    "00000000" +                  // top_k
    "0000000000000001" +          // seed
    "00000002" +                  // max_new_tokens
    "01" + std::string(64, '3') + // prompt withheld + commitment
    "00000003" "637075" +         // backend "cpu"
    "00000000" +                  // device ""
    "00000018" "313937302d30312d30315430303a30303a30302e3030305a" +
    "00000001" "6b" +             // key name "k"
    "deadbeef";                   // key id

TEST(TraceHeader, EncodesTheDocumentedLayout) {
  ASSERT_TRUE(ValidateTraceHeader(SmallHeader()).ok());
  EXPECT_EQ(Hex(EncodeTraceHeader(SmallHeader())), kSmallHeaderHex);
  auto back = DecodeTraceHeader(Bytes(kSmallHeaderHex));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, SmallHeader());
}

TEST(TraceHeader, DisclosedPromptRoundTrips) {
  Signer s = testing::TestSigner();
  TraceHeader h = testing::TestHeader(s);
  auto back = DecodeTraceHeader(EncodeTraceHeader(h));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, h);
  EXPECT_EQ(*back->prompt, "What is 2 + 3?");
}

TEST(TraceHeader, PromptCommitmentIsSha256OfSaltAndPrompt) {
  std::array<uint8_t, 32> salt{};
  // SHA-256 of 32 zero bytes followed by "abc", computed with sha256sum:
  //   printf '\0%.0s' {1..32} | cat - <(printf abc) | sha256sum
  EXPECT_EQ(merkle::ToHex(PromptCommitment(salt, "abc")),
            merkle::ToHex(merkle::Sha256Of(std::string(32, '\0') + "abc")));
  salt[0] = 1;
  EXPECT_NE(PromptCommitment(salt, "abc"), PromptCommitment({}, "abc"));
}

TEST(TraceHeader, DecoderRejectsNonCanonicalInput) {
  const std::string good = Bytes(kSmallHeaderHex);
  ASSERT_TRUE(DecodeTraceHeader(good).ok());
  EXPECT_FALSE(DecodeTraceHeader(good + "x").ok());                   // trailing
  EXPECT_FALSE(DecodeTraceHeader(good.substr(0, good.size() - 1)).ok());
  std::string v2 = good;
  v2[0] = 2;  // version
  EXPECT_FALSE(DecodeTraceHeader(v2).ok());
  std::string greedy = good;
  greedy[1 + 64 + 5 + 5] = 2;  // greedy flag must be 0 or 1
  EXPECT_FALSE(DecodeTraceHeader(greedy).ok());
  std::string nan = good;
  nan[1 + 64 + 5 + 5 + 1] = '\x7f';  // temperature 0x7f000000 is finite...
  EXPECT_TRUE(DecodeTraceHeader(nan).ok());
  nan[1 + 64 + 5 + 5 + 2] = '\xc0';  // ...0x7fc00000 is NaN
  EXPECT_FALSE(DecodeTraceHeader(nan).ok());
  std::string mode = good;
  mode[1 + 64 + 5 + 5 + 1 + 4 + 4 + 4 + 8 + 4] = 2;  // prompt mode
  EXPECT_FALSE(DecodeTraceHeader(mode).ok());
  std::string time = good;
  time[time.size() - 4 - 5 - 2] = '1';  // "...000Z" -> "...010Z": still valid
  EXPECT_TRUE(DecodeTraceHeader(time).ok());
  time[time.size() - 4 - 5 - 1] = 'z';  // lowercase z is not canonical
  EXPECT_FALSE(DecodeTraceHeader(time).ok());
}

TEST(TraceHeader, ValidateNamesTheBadField) {
  Signer s = testing::TestSigner();
  TraceHeader h = testing::TestHeader(s);
  h.model_name = "";
  EXPECT_NE(ValidateTraceHeader(h).message().find("model_name"),
            absl::string_view::npos);
  h = testing::TestHeader(s);
  h.prompt_commitment = merkle::Hash{};
  EXPECT_NE(ValidateTraceHeader(h).message().find("prompt"),
            absl::string_view::npos);
  h = testing::TestHeader(s);
  h.device = std::string(257, 'd');
  EXPECT_NE(ValidateTraceHeader(h).message().find("device"),
            absl::string_view::npos);
  h = testing::TestHeader(s);
  h.key_name = "a b";
  EXPECT_NE(ValidateTraceHeader(h).message().find("key_name"),
            absl::string_view::npos);
  h = testing::TestHeader(s);
  h.sampling.top_p = std::numeric_limits<float>::infinity();
  EXPECT_NE(ValidateTraceHeader(h).message().find("top_p"),
            absl::string_view::npos);
}

StepRecord SmallRecord() {
  StepRecord r;
  r.trace_id = "0123456789abcdef0123456789abcdef";
  r.index = 1;
  r.kind = StepKind::kReasoning;
  r.start_ms = 5;
  r.end_ms = 9;
  r.text = "hi";
  r.token_ids = {7, 258};
  r.logprobs = std::vector<float>{-1.0f, 0.5f};
  r.fingerprint = std::string("\xab", 1);
  r.salt.fill(0x5a);
  return r;
}

const std::string kSmallRecordHex =
    "01" +                                  // version
    std::string("0123456789abcdef0123456789abcdef") +  // trace id (16 bytes)
    "0000000000000001" +                    // index
    "01" +                                  // kind: reasoning
    "0000000000000005" +                    // start_ms
    "0000000000000009" +                    // end_ms
    "00000002" "6869" +                     // text "hi"
    "00000002" "00000007" "00000102" +      // token ids 7, 258
    "01" "bf800000" "3f000000" +            // logprobs -1.0, 0.5
    "01" "00000001" "ab";                   // fingerprint; the salt follows

std::string SmallRecordHex() {
  std::string salt;
  for (int i = 0; i < 32; ++i) salt += "5a";  // 32 bytes of 0x5a
  return kSmallRecordHex + salt;
}

TEST(StepRecord, EncodesTheDocumentedLayout) {
  ASSERT_TRUE(ValidateStepRecord(SmallRecord()).ok());
  EXPECT_EQ(Hex(EncodeStepRecord(SmallRecord())), SmallRecordHex());
  auto back = DecodeStepRecord(Bytes(SmallRecordHex()));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, SmallRecord());
}

TEST(StepRecord, AbsentOptionalsAreSingleZeroBytes) {
  StepRecord r = SmallRecord();
  r.logprobs.reset();
  r.fingerprint.reset();
  r.token_ids.clear();
  r.text = "";
  std::string salt;
  for (int i = 0; i < 32; ++i) salt += "5a";
  EXPECT_EQ(Hex(EncodeStepRecord(r)),
            "01" "0123456789abcdef0123456789abcdef" "0000000000000001" "01"
            "0000000000000005" "0000000000000009" "00000000" "00000000" "00"
            "00" + salt);
  // Present-but-empty differs from absent and round-trips.
  r.logprobs = std::vector<float>{};
  r.fingerprint = std::string();
  auto back = DecodeStepRecord(EncodeStepRecord(r));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, r);
}

TEST(StepRecord, LogprobBitsArePreservedExactly) {
  StepRecord r = SmallRecord();
  r.logprobs = std::vector<float>{-std::numeric_limits<float>::infinity(),
                                  std::bit_cast<float>(0x7fc00001u)};
  auto back = DecodeStepRecord(EncodeStepRecord(r));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(std::bit_cast<uint32_t>((*back->logprobs)[0]), 0xff800000u);
  EXPECT_EQ(std::bit_cast<uint32_t>((*back->logprobs)[1]), 0x7fc00001u);
  r.logprobs = std::vector<float>{-0.0f, 0.0f};
  StepRecord zero = r;
  zero.logprobs = std::vector<float>{0.0f, 0.0f};
  EXPECT_NE(EncodeStepRecord(r), EncodeStepRecord(zero));
  EXPECT_FALSE(r == zero);
}

TEST(StepRecord, HeaderRecordWrapsTheHeader) {
  Salt salt;
  salt.fill(9);
  StepRecord r = MakeHeaderRecord("0123456789abcdef0123456789abcdef",
                                  SmallHeader(), salt);
  EXPECT_EQ(r.index, 0u);
  EXPECT_EQ(r.kind, StepKind::kHeader);
  ASSERT_TRUE(ValidateStepRecord(r).ok()) << ValidateStepRecord(r);
  auto back = DecodeStepRecord(EncodeStepRecord(r));
  ASSERT_TRUE(back.ok()) << back.status();
  auto h = HeaderFromRecord(*back);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(*h, SmallHeader());
  EXPECT_FALSE(HeaderFromRecord(SmallRecord()).ok());
}

// Each entry: a one-field change to the small record's bytes and the word the
// error must contain.
TEST(StepRecord, DecoderRejectsNonCanonicalInputWithClearErrors) {
  const std::string good = Bytes(SmallRecordHex());
  ASSERT_TRUE(DecodeStepRecord(good).ok());
  struct Case {
    std::string bytes;
    const char* expect;
  };
  auto with = [&](size_t at, char v) {
    std::string b = good;
    b[at] = v;
    return b;
  };
  const size_t kKind = 1 + 16 + 8;
  const size_t kText = kKind + 1 + 16;
  const size_t kTokens = kText + 4 + 2;
  const size_t kLogprobFlag = kTokens + 4 + 8;
  const size_t kFingerprintFlag = kLogprobFlag + 1 + 8;
  std::string bad_utf8 = good;
  bad_utf8[kText + 4] = '\xc0';  // overlong lead byte
  std::string surrogate = good;  // replace "hi" by 3 bytes? keep 2: \xed\xa0 truncated
  surrogate[kText + 4] = '\xed';
  surrogate[kText + 4 + 1] = '\xa0';
  std::string huge_text = good;
  huge_text.replace(kText, 4, std::string("\x00\x10\x00\x01", 4));  // 1 MiB + 1
  std::string zero_index = with(1 + 16 + 7, 0);  // index 0 but kind reasoning
  std::string times = with(kKind + 1 + 7, 10);   // start 10 > end 9
  const Case cases[] = {
      {good + std::string(1, '\0'), "trailing"},
      {good.substr(0, good.size() - 1), "salt: truncated"},
      {good.substr(0, 10), "trace_id: truncated"},
      {"", "version: truncated"},
      {with(0, 2), "version"},
      {with(kKind, 3), "kind"},
      {with(kLogprobFlag, 2), "logprobs: presence byte"},
      {with(kFingerprintFlag, 7), "fingerprint: presence byte"},
      {bad_utf8, "UTF-8"},
      {surrogate, "UTF-8"},
      {huge_text, "exceeds the limit"},
      {zero_index, "index 0"},
      {times, "end_ms"},
      {with(kTokens, 0x10), "exceed the limit"},      // 2^28 + 2 tokens
      {with(kTokens + 1, 1), "token_ids: truncated"},  // 65538 tokens
  };
  for (const Case& c : cases) {
    auto r = DecodeStepRecord(c.bytes);
    ASSERT_FALSE(r.ok()) << c.expect;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find(c.expect), absl::string_view::npos)
        << r.status().message() << " (wanted \"" << c.expect << "\")";
    EXPECT_NE(r.status().message().find("step record"), absl::string_view::npos);
  }
}

TEST(StepRecord, EveryOneByteChangeIsRejectedOrDecodesToADifferentRecord) {
  const std::string good = Bytes(SmallRecordHex());
  for (size_t i = 0; i < good.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string b = good;
      b[i] ^= static_cast<char>(1 << bit);
      auto r = DecodeStepRecord(b);
      if (r.ok()) {
        EXPECT_FALSE(*r == SmallRecord()) << "byte " << i << " bit " << bit;
        EXPECT_EQ(EncodeStepRecord(*r), b) << "not canonical at byte " << i;
      }
    }
  }
}

TEST(StepRecord, ValidateCatchesWhatTheDecoderWouldReject) {
  StepRecord r = SmallRecord();
  r.trace_id = "0123456789ABCDEF0123456789abcdef";
  EXPECT_FALSE(ValidateStepRecord(r).ok());
  r = SmallRecord();
  r.logprobs->push_back(1.0f);
  EXPECT_NE(ValidateStepRecord(r).message().find("logprobs"),
            absl::string_view::npos);
  r = SmallRecord();
  r.kind = StepKind::kHeader;
  EXPECT_FALSE(ValidateStepRecord(r).ok());
  r = SmallRecord();
  r.fingerprint = std::string(kMaxFingerprintBytes + 1, 'x');
  EXPECT_FALSE(ValidateStepRecord(r).ok());
  r = SmallRecord();
  r.token_ids.assign(kMaxTokens + 1, 1);
  EXPECT_FALSE(ValidateStepRecord(r).ok());
  EXPECT_EQ(StepKindName(StepKind::kAnswer), "answer");
  EXPECT_EQ(*StepKindFromName("reasoning"), StepKind::kReasoning);
  EXPECT_FALSE(StepKindFromName("Reasoning").ok());
}

}  // namespace
}  // namespace stepproof::provenance
