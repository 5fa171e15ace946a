// stepproof-audit's offline checks (clients/verified_step.h,
// clients/trace_file.h) on traces signed by the real signing side; every
// rejection test mutates one thing and expects the message naming it.
#include <string>
#include <vector>

#include "absl/strings/str_replace.h"
#include "clients/trace_file.h"
#include "clients/verified_step.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "merkle/tree.h"
#include "nlohmann/json.hpp"
#include "tests/clients/test_trace.h"

namespace stepproof::clients {
namespace {

using ::testing::HasSubstr;
using testing::BuildTrace;
using testing::MakeSigner;
using testing::ToTraceFile;

constexpr char kTraceId[] = "0123456789abcdef0123456789abcdef";
constexpr char kOtherTraceId[] = "fedcba9876543210fedcba9876543210";

std::string Msg(const absl::Status& s) { return std::string(s.message()); }

class AuditTest : public ::testing::Test {
 protected:
  AuditTest()
      : signer_(MakeSigner(7)),
        trace_(BuildTrace(signer_, kTraceId,
                          {"2 + 3: add the units.", "2 + 3 = 5.", "5"})) {}
  provenance::Signer signer_;
  testing::BuiltTrace trace_;
};

TEST_F(AuditTest, VerifiesReasoningStepAndReportsWhatWasCommitted) {
  std::string json = provenance::BundleToJson(trace_.bundles[2]);
  absl::StatusOr<VerifiedStep> step =
      VerifyStepBundleJson(json, signer_.verifier());
  ASSERT_TRUE(step.ok()) << step.status();
  EXPECT_EQ(step->trace_id, kTraceId);
  EXPECT_EQ(step->index, 2u);
  EXPECT_EQ(step->kind, provenance::StepKind::kReasoning);
  EXPECT_EQ(step->text, "2 + 3 = 5.");
  EXPECT_EQ(step->token_count, 2u);
  EXPECT_EQ(step->checkpoint_size, 4u);  // header + 3 steps
  EXPECT_TRUE(step->checkpoint_final);
  EXPECT_FALSE(step->log.has_value());
  EXPECT_EQ(step->trace_origin,
            std::string(testing::kLogOrigin) + "/trace/" + kTraceId);
  std::string text = FormatVerifiedStep(*step);
  EXPECT_THAT(text, HasSubstr("VERIFIED step 2 (reasoning) of trace"));
  EXPECT_THAT(text, HasSubstr("2 + 3 = 5."));
  EXPECT_THAT(text, HasSubstr("checkpoint of size 4 (final"));
  nlohmann::json j = nlohmann::json::parse(VerifiedStepToJson(*step));
  EXPECT_EQ(j["verified"], true);
  EXPECT_EQ(j["index"], 2);
  EXPECT_EQ(j["kind"], "reasoning");
  EXPECT_EQ(j["text"], "2 + 3 = 5.");
}

TEST_F(AuditTest, VerifiesHeaderStepAndShowsTheModelAndPrompt) {
  absl::StatusOr<VerifiedStep> step =
      VerifyStepBundle(trace_.bundles[0], signer_.verifier());
  ASSERT_TRUE(step.ok()) << step.status();
  ASSERT_TRUE(step->header.has_value());
  EXPECT_EQ(step->header->model_name, "test-model");
  EXPECT_EQ(step->header->prompt, "What is 2 + 3?");
  std::string text = FormatVerifiedStep(*step);
  EXPECT_THAT(text, HasSubstr("model: test-model"));
  EXPECT_THAT(text, HasSubstr("prompt: What is 2 + 3?"));
  EXPECT_THAT(text, HasSubstr("started: 2026-01-01T00:00:00.000Z"));
}

TEST_F(AuditTest, ReportsLogInclusionWhenTheBundleCarriesIt) {
  // The trace's final checkpoint is leaf 2 of a 5-leaf log.
  std::vector<merkle::Hash> leaves = testing::Leaves("other trace ", 5);
  leaves[2] = merkle::HashLeaf(std::string_view(trace_.final_checkpoint));
  provenance::Bundle bundle = trace_.bundles[3];
  provenance::LogInclusion log;
  log.leaf_index = 2;
  log.proof = *merkle::ReferenceInclusionProof(leaves, 2);
  log.checkpoint = testing::SignedLogCheckpoint(signer_, leaves);
  bundle.log = log;
  absl::StatusOr<VerifiedStep> step = VerifyStepBundle(bundle, signer_.verifier());
  ASSERT_TRUE(step.ok()) << step.status();
  ASSERT_TRUE(step->log.has_value());
  EXPECT_EQ(step->log->leaf_index, 2u);
  EXPECT_EQ(step->log->log_size, 5u);
  EXPECT_EQ(step->kind, provenance::StepKind::kAnswer);
  EXPECT_THAT(FormatVerifiedStep(*step),
              HasSubstr("leaf 2 of the log checkpoint of size 5"));

  // The same proof claimed for another position does not check.
  bundle.log->leaf_index = 3;
  EXPECT_FALSE(VerifyStepBundle(bundle, signer_.verifier()).ok());
}

TEST_F(AuditTest, RejectsTamperedStepText) {
  std::string json = provenance::BundleToJson(trace_.bundles[2]);
  std::string tampered = absl::StrReplaceAll(json, {{"2 + 3 = 5.", "2 + 3 = 6."}});
  ASSERT_NE(json, tampered);
  absl::StatusOr<VerifiedStep> step =
      VerifyStepBundleJson(tampered, signer_.verifier());
  ASSERT_FALSE(step.ok());
}

TEST_F(AuditTest, RejectsAnotherServersKeyNamingTheSignature) {
  provenance::Signer other = MakeSigner(9);
  absl::StatusOr<VerifiedStep> step =
      VerifyStepBundle(trace_.bundles[1], other.verifier());
  ASSERT_FALSE(step.ok());
  EXPECT_THAT(Msg(step.status()), HasSubstr("signature"));
}

TEST_F(AuditTest, RejectsMalformedBundleJsonAsNotParsing) {
  absl::StatusOr<VerifiedStep> step =
      VerifyStepBundleJson("{\"format\": 3", signer_.verifier());
  ASSERT_FALSE(step.ok());
  EXPECT_THAT(Msg(step.status()), HasSubstr("bundle does not parse"));
}

TEST_F(AuditTest, TraceFileRoundTripsAndVerifies) {
  TraceFile file = ToTraceFile(trace_);
  absl::StatusOr<std::string> json = TraceFileToJson(file);
  ASSERT_TRUE(json.ok()) << json.status();
  absl::StatusOr<TraceFile> parsed = TraceFileFromJson(*json);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->trace_id, kTraceId);
  ASSERT_EQ(parsed->steps.size(), 4u);
  EXPECT_EQ(parsed->steps[3].text, "5");
  EXPECT_EQ(parsed->final_checkpoint, trace_.final_checkpoint);

  absl::StatusOr<VerifiedTrace> verified =
      VerifyTraceFile(*parsed, signer_.verifier());
  ASSERT_TRUE(verified.ok()) << verified.status();
  EXPECT_EQ(verified->final_size, 4u);
  EXPECT_TRUE(verified->promise_verified);
  ASSERT_EQ(verified->steps.size(), 4u);
  EXPECT_EQ(verified->steps[1].text, "2 + 3: add the units.");
  EXPECT_THAT(FormatVerifiedTrace(*verified),
              HasSubstr("[3] answer: 5"));
}

TEST_F(AuditTest, TraceFileWithADroppedStepFailsCompleteness) {
  TraceFile file = ToTraceFile(trace_);
  file.steps.pop_back();  // hide the answer
  absl::StatusOr<VerifiedTrace> verified =
      VerifyTraceFile(file, signer_.verifier());
  ASSERT_FALSE(verified.ok());
  EXPECT_THAT(Msg(verified.status()), HasSubstr("final checkpoint"));
}

TEST_F(AuditTest, TraceFileWithSwappedStepsFails) {
  TraceFile file = ToTraceFile(trace_);
  std::swap(file.steps[1].bundle_json, file.steps[2].bundle_json);
  std::swap(file.steps[1].text, file.steps[2].text);
  absl::StatusOr<VerifiedTrace> verified =
      VerifyTraceFile(file, signer_.verifier());
  ASSERT_FALSE(verified.ok());
  EXPECT_THAT(Msg(verified.status()), HasSubstr("step 1: bundle is for step 2"));
}

TEST_F(AuditTest, TraceFileWithEditedDisplayTextFails) {
  TraceFile file = ToTraceFile(trace_);
  file.steps[2].text = "2 + 3 = 6.";
  absl::StatusOr<VerifiedTrace> verified =
      VerifyTraceFile(file, signer_.verifier());
  ASSERT_FALSE(verified.ok());
  EXPECT_THAT(Msg(verified.status()),
              HasSubstr("step 2: the text shown in the trace file differs"));
}

TEST_F(AuditTest, TraceFileWithAStepFromAnotherTraceFails) {
  testing::BuiltTrace other =
      BuildTrace(signer_, kOtherTraceId, {"a", "b", "c"});
  TraceFile file = ToTraceFile(trace_);
  file.steps[2].bundle_json = provenance::BundleToJson(other.bundles[2]);
  file.steps[2].text = "b";
  absl::StatusOr<VerifiedTrace> verified =
      VerifyTraceFile(file, signer_.verifier());
  ASSERT_FALSE(verified.ok());
  EXPECT_THAT(Msg(verified.status()), HasSubstr("bundle is of trace"));
}

TEST_F(AuditTest, TraceFileWithAnotherTracesPromiseFails) {
  testing::BuiltTrace other =
      BuildTrace(signer_, kOtherTraceId, {"a", "b", "c"});
  TraceFile file = ToTraceFile(trace_);
  file.promise = other.promise;
  absl::StatusOr<VerifiedTrace> verified =
      VerifyTraceFile(file, signer_.verifier());
  ASSERT_FALSE(verified.ok());
  EXPECT_THAT(Msg(verified.status()), HasSubstr("promise"));
}

TEST_F(AuditTest, TraceFileWithoutFinalCheckpointSaysTheStreamWasCut) {
  TraceFile file = ToTraceFile(trace_);
  file.final_checkpoint.clear();
  absl::StatusOr<VerifiedTrace> verified =
      VerifyTraceFile(file, signer_.verifier());
  ASSERT_FALSE(verified.ok());
  EXPECT_THAT(Msg(verified.status()), HasSubstr("no final checkpoint"));
}

TEST(TraceFileParseTest, NamesTheJsonPathOfTheProblem) {
  EXPECT_THAT(Msg(TraceFileFromJson("[").status()), HasSubstr("not valid JSON"));
  EXPECT_THAT(Msg(TraceFileFromJson(R"({"format":"other"})").status()),
              HasSubstr("format: expected \"stepproof.trace/v1\""));
  EXPECT_THAT(
      Msg(TraceFileFromJson(R"({"format":"stepproof.trace/v1","trace_id":"x",
          "steps":[{"index":0,"kind":"header","bundle":[]}]})")
              .status()),
      HasSubstr("steps[0].bundle: expected an object"));
  EXPECT_THAT(
      Msg(TraceFileFromJson(R"({"format":"stepproof.trace/v1","trace_id":"x",
          "steps":[{"index":-1,"kind":"header","bundle":{}}]})")
              .status()),
      HasSubstr("steps[0].index"));
}

}  // namespace
}  // namespace stepproof::clients
