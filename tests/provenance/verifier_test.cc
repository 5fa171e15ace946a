// The verifier: a full bundle (trace inclusion, log inclusion, promise)
// verifies; each failing check has its own message; and any one-byte change
// is caught. What the byte-change tests cover, precisely:
//  - the bundle JSON text (without the unverified "anchor" object): every
//    byte, changed to two other values; a change is allowed to pass only
//    when the changed text parses to a JSON value equal to the original
//    (semantically the same bundle);
//  - every byte of every decoded binary field (encoded_record, each proof
//    hash, the three signed notes) and every byte of the record's salt,
//    text and fingerprint, changed in the parsed Bundle.
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "merkle/compact_range.h"
#include "merkle/proof_builder.h"
#include "provenance/bundle.h"
#include "provenance/checkpoint.h"
#include "provenance/note.h"
#include "provenance/promise.h"
#include "provenance/verifier.h"
#include "test_util.h"

namespace stepproof::provenance {
namespace {

using testing::TestSigner;
using testing::TestTrace;

// A global log holding `notes` as leaves, with its signed checkpoint.
struct TestLog {
  merkle::CompactRange range;
  merkle::InMemoryNodeStore nodes;
  std::vector<std::string> leaves;
  std::string checkpoint;

  void Add(const std::string& leaf) {
    leaves.push_back(leaf);
    range.Append(merkle::HashLeaf(leaf),
                 [&](const merkle::NodeId& id, const merkle::Hash& h) {
                   nodes.Put(id, h);
                 });
  }
  std::string Sign(const Signer& s, const std::string& origin) const {
    Checkpoint cp;
    cp.origin = origin;
    cp.size = range.size();
    cp.root = range.Root();
    return *SignNote(cp.Marshal(), s);
  }
};

class VerifierTest : public ::testing::Test {
 protected:
  VerifierTest() : signer_(TestSigner()), trace_(TestTrace(signer_, 4)) {
    log_.Add("earlier leaf 0\n");
    log_.Add("earlier leaf 1\n");
    log_.Add("earlier leaf 2\n");
    log_.Add(trace_.final_checkpoint());
    log_.Add("later leaf 4\n");
    log_.checkpoint = log_.Sign(signer_, testing::kLogOrigin);
  }

  // Step 1's bundle with log inclusion and promise.
  Bundle FullBundle() {
    Bundle b = *trace_.MakeBundle(1);
    b.log = LogInclusion{3, *merkle::MakeInclusionProof(log_.nodes, 3, 5),
                         log_.checkpoint};
    auto p = MakePromise(testing::kLogOrigin, trace_.final_checkpoint(),
                         1767323046000, 60);
    b.promise = *SignPromise(*p, signer_);
    return b;
  }

  absl::Status Verify(const Bundle& b) {
    return VerifyBundle(b, signer_.verifier());
  }

  Signer signer_;
  TraceBuilder trace_;
  TestLog log_;
};

TEST_F(VerifierTest, FullBundleVerifiesAndSurvivesJson) {
  Bundle b = FullBundle();
  EXPECT_TRUE(Verify(b).ok()) << Verify(b);
  std::string json = BundleToJson(b);
  auto back = BundleFromJson(json);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->record, b.record);
  EXPECT_EQ(back->encoded_record, b.encoded_record);
  EXPECT_EQ(back->inclusion_proof, b.inclusion_proof);
  EXPECT_EQ(back->log->proof, b.log->proof);
  EXPECT_EQ(*back->promise, *b.promise);
  EXPECT_EQ(BundleToJson(*back), json);
  EXPECT_TRUE(VerifyBundleJson(json, signer_.verifier()).ok());
  // The header record's bundle too (its fields are the header's).
  Bundle h = *trace_.MakeBundle(0);
  EXPECT_TRUE(VerifyBundleJson(BundleToJson(h), signer_.verifier()).ok());
  // Anchors are carried, not checked.
  b.anchor = ChainAnchor{"1", "0xab", "0xcd", 9};
  auto with_anchor = BundleFromJson(BundleToJson(b));
  ASSERT_TRUE(with_anchor.ok());
  EXPECT_EQ(with_anchor->anchor->block_number, 9u);
}

TEST_F(VerifierTest, EachFailedCheckHasItsOwnMessage) {
  Signer other = TestSigner(
      testing::kLogOrigin,
      "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb");
  auto reencode = [](Bundle& b) { b.encoded_record = EncodeStepRecord(b.record); };
  struct Case {
    const char* name;
    std::function<void(Bundle&)> mutate;
    const char* message;
  };
  const Case cases[] = {
      {"text", [](Bundle& b) { b.record.text += "!"; },
       "record fields do not re-encode to encoded_record"},
      {"re-encoded text",
       [&](Bundle& b) {
         b.record.text += "!";
         reencode(b);
       },
       "inclusion proof does not lead to checkpoint root"},
      {"invalid record",
       [&](Bundle& b) {
         b.record.text = "\xff";
         reencode(b);
       },
       "encoded_record: step record: text: not valid UTF-8"},
      {"leaf index", [](Bundle& b) { b.leaf_index = 2; },
       "leaf_index 2 does not match the record's index 1"},
      {"foreign checkpoint",
       [&](Bundle& b) {
         b.trace_checkpoint =
             *SignNote(*OpenNote(b.trace_checkpoint, signer_.verifier()), other);
       },
       "trace checkpoint has no signature by key log.test.example+"},
      {"bad checkpoint signature",
       [](Bundle& b) {
         size_t at = b.trace_checkpoint.find("\n");
         b.trace_checkpoint.insert(at, "x");
       },
       "trace checkpoint signature does not verify with key log.test.example+"},
      {"malformed checkpoint note",
       [](Bundle& b) { b.trace_checkpoint = "no signatures\n"; },
       "trace checkpoint: malformed note"},
      {"other trace",
       [&](Bundle& b) {
         b.record.trace_id = "ffffffffffffffffffffffffffffffff";
         reencode(b);
       },
       "trace checkpoint origin names trace 0123456789abcdef0123456789abcdef but "
       "the record is of trace ffffffffffffffffffffffffffffffff"},
      {"proof hash",
       [](Bundle& b) { b.inclusion_proof[0][0] ^= 1; },
       "inclusion proof does not lead to checkpoint root"},
      {"short proof", [](Bundle& b) { b.inclusion_proof.pop_back(); },
       "inclusion proof is malformed"},
      {"index past size",
       [&](Bundle& b) {
         b.record = *trace_.record(4);
         b.encoded_record = trace_.appended()[4].encoded_record;
         b.leaf_index = 4;
         b.trace_checkpoint = *trace_.checkpoint(3);
         b.log.reset();
         b.promise.reset();
       },
       "leaf index 4 is outside the trace checkpoint's tree of size 3"},
      {"log proof", [](Bundle& b) { b.log->proof[0][5] ^= 1; },
       "log inclusion proof does not lead to log checkpoint root"},
      {"log index", [](Bundle& b) { b.log->leaf_index = 9; },
       "log leaf index 9 is outside the log checkpoint's tree of size 5"},
      {"log checkpoint signature",
       [](Bundle& b) { b.log->checkpoint[0] = 'L'; },
       "log checkpoint signature does not verify with key"},
      {"log origin",
       [&](Bundle& b) { b.log->checkpoint = log_.Sign(signer_, "other.log"); },
       "log checkpoint origin \"other.log\" is not the trace's log origin"},
      {"non-final checkpoint with log",
       [&](Bundle& b) {
         b.trace_checkpoint = *trace_.checkpoint(5);
         b.promise.reset();
       },
       "log inclusion needs the final trace checkpoint"},
      {"promise signature", [](Bundle& b) { (*b.promise)[0] = 'S'; },
       "promise: signature does not verify with key"},
      {"promise for another checkpoint",
       [&](Bundle& b) {
         InclusionPromise p = *MakePromise(testing::kLogOrigin,
                                           *trace_.checkpoint(5), 0, 60);
         b.promise = *SignPromise(p, signer_);
       },
       "promise leaf hash (HashLeaf of the checkpoint note) does not match"},
      {"promise log origin",
       [&](Bundle& b) {
         InclusionPromise p = *MakePromise("elsewhere", trace_.final_checkpoint(),
                                           0, 60);
         b.promise = *SignPromise(p, signer_);
       },
       "promise log origin \"elsewhere\" is not the trace's log origin"},
  };
  // Cases that fail the same check share its message; different checks never
  // share one.
  std::set<std::string> messages, expected;
  for (const Case& c : cases) {
    expected.insert(c.message);
    Bundle b = FullBundle();
    c.mutate(b);
    absl::Status s = Verify(b);
    ASSERT_FALSE(s.ok()) << c.name;
    EXPECT_NE(s.message().find(c.message), absl::string_view::npos)
        << c.name << ": got \"" << s.message() << "\"";
    messages.insert(std::string(s.message()));
  }
  EXPECT_EQ(messages.size(), expected.size()) << "messages must be distinct";
  // The wrong key.
  absl::Status wrong = VerifyBundle(FullBundle(), other.verifier());
  EXPECT_EQ(wrong.code(), absl::StatusCode::kNotFound);
  EXPECT_NE(wrong.message().find("trace checkpoint has no signature by key"),
            absl::string_view::npos);
}

TEST_F(VerifierTest, HeaderBundleMustNameTheVerifyingKey) {
  // A trace whose header names another key, signed by signer_.
  TraceHeader h = testing::TestHeader(signer_);
  h.key_id ^= 1;
  auto b = TraceBuilder::Start(testing::kLogOrigin, testing::kTraceId, h,
                               &signer_, testing::CountingSalts());
  ASSERT_TRUE(b.ok());
  absl::Status s = VerifyBundle(*b->MakeBundle(0), signer_.verifier());
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("trace header names key"), absl::string_view::npos);
}

TEST_F(VerifierTest, EveryOneByteChangeToTheJsonFailsUnlessSemanticallyEqual) {
  const std::string json = BundleToJson(FullBundle());
  const auto original = nlohmann::json::parse(json);
  int changed = 0, equal = 0;
  for (size_t i = 0; i < json.size(); ++i) {
    for (unsigned char delta : {0x01, 0x20}) {
      std::string m = json;
      m[i] = static_cast<char>(static_cast<unsigned char>(m[i]) ^ delta);
      auto parsed = nlohmann::json::parse(m, nullptr, false);
      if (!parsed.is_discarded() && parsed == original) {
        ++equal;
        continue;
      }
      ++changed;
      ASSERT_FALSE(VerifyBundleJson(m, signer_.verifier()).ok())
          << "byte " << i << " ('" << json[i] << "') ^ " << int(delta)
          << " passed:\n"
          << m.substr(i > 60 ? i - 60 : 0, 120);
    }
  }
  EXPECT_GT(changed, 2 * static_cast<int>(json.size()) - 10);
  EXPECT_LT(equal, 10);
}

TEST_F(VerifierTest, EveryByteOfEveryDecodedBinaryFieldIsCovered) {
  const Bundle good = FullBundle();
  int checked = 0;
  auto expect_fail = [&](const Bundle& b, const std::string& what) {
    ++checked;
    EXPECT_FALSE(Verify(b).ok()) << what;
  };
  for (size_t i = 0; i < good.encoded_record.size(); ++i) {
    Bundle b = good;
    b.encoded_record[i] ^= 1;
    expect_fail(b, absl::StrCat("encoded_record byte ", i));
    // The same change in the fields and the bytes together: caught by the
    // inclusion proof (or by the decoder).
    auto r = DecodeStepRecord(b.encoded_record);
    if (r.ok()) {
      b.record = *r;
      b.leaf_index = r->index;
      expect_fail(b, absl::StrCat("consistent record change at byte ", i));
    }
  }
  for (size_t k = 0; k < good.inclusion_proof.size(); ++k) {
    for (size_t i = 0; i < 32; ++i) {
      Bundle b = good;
      b.inclusion_proof[k][i] ^= 0x80;
      expect_fail(b, absl::StrCat("inclusion_proof[", k, "] byte ", i));
    }
  }
  for (size_t k = 0; k < good.log->proof.size(); ++k) {
    for (size_t i = 0; i < 32; ++i) {
      Bundle b = good;
      b.log->proof[k][i] ^= 0x80;
      expect_fail(b, absl::StrCat("log proof[", k, "] byte ", i));
    }
  }
  for (size_t i = 0; i < good.trace_checkpoint.size(); ++i) {
    Bundle b = good;
    b.trace_checkpoint[i] ^= 1;
    expect_fail(b, absl::StrCat("trace_checkpoint byte ", i));
  }
  for (size_t i = 0; i < good.log->checkpoint.size(); ++i) {
    Bundle b = good;
    b.log->checkpoint[i] ^= 1;
    expect_fail(b, absl::StrCat("log checkpoint byte ", i));
  }
  for (size_t i = 0; i < good.promise->size(); ++i) {
    Bundle b = good;
    (*b.promise)[i] ^= 1;
    expect_fail(b, absl::StrCat("promise byte ", i));
  }
  for (size_t i = 0; i < good.record.salt.size(); ++i) {
    Bundle b = good;
    b.record.salt[i] ^= 1;
    expect_fail(b, absl::StrCat("salt byte ", i));
  }
  for (size_t i = 0; i < good.record.text.size(); ++i) {
    Bundle b = good;
    b.record.text[i] ^= 1;
    expect_fail(b, absl::StrCat("text byte ", i));
  }
  ASSERT_TRUE(good.record.fingerprint.has_value());
  for (size_t i = 0; i < good.record.fingerprint->size(); ++i) {
    Bundle b = good;
    (*b.record.fingerprint)[i] ^= 1;
    expect_fail(b, absl::StrCat("fingerprint byte ", i));
  }
  EXPECT_GT(checked, 500);
}

TEST_F(VerifierTest, BundleFromJsonRejectsMalformedJsonPrecisely) {
  nlohmann::ordered_json j = nlohmann::ordered_json::parse(BundleToJson(FullBundle()));
  auto expect = [&](nlohmann::ordered_json m, const char* message) {
    auto b = BundleFromJson(m.dump());
    ASSERT_FALSE(b.ok()) << message;
    EXPECT_NE(b.status().message().find(message), absl::string_view::npos)
        << b.status().message();
  };
  { auto m = j; m["format"] = "stepproof.bundle/v2"; expect(m, "format"); }
  { auto m = j; m["extra"] = 1; expect(m, "extra: unknown field"); }
  { auto m = j; m["record"]["salt"] = "AB"; expect(m, "record.salt: expected 64 lowercase hex"); }
  { auto m = j; m["record"].erase("text"); expect(m, "record.text: missing"); }
  { auto m = j; m["record"]["index"] = -1; expect(m, "record.index: expected a non-negative integer"); }
  { auto m = j; m["record"]["index"] = 1.0; expect(m, "record.index: expected a non-negative integer"); }
  { auto m = j; m["record"]["kind"] = "thought"; expect(m, "record.kind"); }
  { auto m = j; m["record"]["token_ids"][0] = 4294967296; expect(m, "record.token_ids[0]: exceeds"); }
  { auto m = j; m["encoded_record"] = "AQ"; expect(m, "encoded_record: expected canonical padded base64"); }
  { auto m = j; m["inclusion_proof"][1] = 5; expect(m, "inclusion_proof[1]: expected a string"); }
  { auto m = j; m["log"]["checkpoint"] = 5; expect(m, "log.checkpoint: expected a string"); }
  EXPECT_FALSE(BundleFromJson("{").ok());
  EXPECT_FALSE(BundleFromJson("[]").ok());
  auto dup = BundleFromJson(R"({"format": "a", "format": "b"})");
  ASSERT_FALSE(dup.ok());
  EXPECT_NE(dup.status().message().find("duplicate key \"format\""),
            absl::string_view::npos);
  // Header records: a temperature that is not exactly a binary32 is refused.
  auto h = nlohmann::ordered_json::parse(BundleToJson(*trace_.MakeBundle(0)));
  h["record"]["header"]["sampling"]["temperature"] = 0.6;  // a double, not 0.6f
  auto hb = BundleFromJson(h.dump());
  ASSERT_FALSE(hb.ok());
  EXPECT_NE(hb.status().message().find("binary32"), absl::string_view::npos);
}

TEST_F(VerifierTest, WholeTraceVerificationCatchesEveryDeviation) {
  std::vector<std::string> enc;
  for (const auto& a : trace_.appended()) enc.push_back(a.encoded_record);
  const std::string& note = trace_.final_checkpoint();
  auto ok = VerifyTrace(enc, note, signer_.verifier());
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ((*ok)[3], *trace_.record(3));

  auto expect = [&](std::vector<std::string> e, const std::string& n,
                    const char* message) {
    auto r = VerifyTrace(e, n, signer_.verifier());
    ASSERT_FALSE(r.ok()) << message;
    EXPECT_NE(r.status().message().find(message), absl::string_view::npos)
        << r.status().message();
  };
  { auto e = enc; std::swap(e[1], e[2]); expect(e, note, "record 1 has index 2"); }
  { auto e = enc; e.pop_back(); expect(e, note, "covers 5 records but the trace has 4"); }
  { auto e = enc; e[2][e[2].size() - 1] ^= 1; expect(e, note, "Merkle root is not the checkpoint root"); }
  { auto e = enc; e[2] += "x"; expect(e, note, "record 2: step record: 1 trailing bytes"); }
  expect(enc, *trace_.checkpoint(5), "not final");
  expect({}, note, "a trace has at least its header record");
  // A record of another trace in this position.
  TraceBuilder other = TraceBuilder::Start(testing::kLogOrigin,
                                           "ffffffffffffffffffffffffffffffff",
                                           testing::TestHeader(signer_),
                                           &signer_, testing::CountingSalts())
                           .value();
  { auto e = enc; e[0] = other.header().encoded_record; expect(e, note, "record 0 is of trace ffff"); }
}

TEST_F(VerifierTest, LogInclusionAndLogConsistency) {
  const merkle::Hash no_change{};
  (void)no_change;
  for (uint64_t size = 4; size <= 5; ++size) {
    TestLog prefix;
    for (uint64_t i = 0; i < size; ++i) prefix.Add(log_.leaves[i]);
    std::string cp = prefix.Sign(signer_, testing::kLogOrigin);
    auto proof = merkle::MakeInclusionProof(log_.nodes, 3, size);
    ASSERT_TRUE(proof.ok());
    EXPECT_TRUE(VerifyLogInclusion(trace_.final_checkpoint(), 3, *proof, cp,
                                   signer_.verifier())
                    .ok());
    EXPECT_FALSE(VerifyLogInclusion(trace_.final_checkpoint(), 2, *proof, cp,
                                    signer_.verifier())
                     .ok());
    EXPECT_FALSE(VerifyLogInclusion(*trace_.checkpoint(5), 3, *proof, cp,
                                    signer_.verifier())
                     .ok());
  }
  // Log checkpoints of sizes 1..5 are pairwise consistent.
  std::vector<std::string> cps;
  for (uint64_t n = 1; n <= 5; ++n) {
    TestLog prefix;
    for (uint64_t i = 0; i < n; ++i) prefix.Add(log_.leaves[i]);
    cps.push_back(prefix.Sign(signer_, testing::kLogOrigin));
  }
  for (uint64_t m = 1; m <= 5; ++m) {
    for (uint64_t n = m; n <= 5; ++n) {
      auto proof = merkle::MakeConsistencyProof(log_.nodes, m, n);
      ASSERT_TRUE(proof.ok());
      EXPECT_TRUE(VerifyLogConsistency(cps[m - 1], cps[n - 1], *proof,
                                       signer_.verifier())
                      .ok())
          << m << " -> " << n;
      if (!proof->empty()) {
        auto bad = *proof;
        bad.back()[0] ^= 1;
        EXPECT_FALSE(VerifyLogConsistency(cps[m - 1], cps[n - 1], bad,
                                          signer_.verifier())
                         .ok());
      }
    }
  }
  // A forked log: same size 5, different last leaf.
  TestLog fork;
  for (int i = 0; i < 4; ++i) fork.Add(log_.leaves[i]);
  fork.Add("a different leaf 4\n");
  std::string forked = fork.Sign(signer_, testing::kLogOrigin);
  auto s = VerifyLogConsistency(cps[4], forked, {}, signer_.verifier());
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("consistency proof from size 5 to size 5"),
            absl::string_view::npos);
  auto other_origin = VerifyLogConsistency(
      cps[0], log_.Sign(signer_, "x.example"), {}, signer_.verifier());
  EXPECT_NE(other_origin.message().find("different logs"),
            absl::string_view::npos);
}

}  // namespace
}  // namespace stepproof::provenance
