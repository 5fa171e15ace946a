// The gRPC API in process (tests/services/service_fixture.h): Generate's
// event order, every read RPC (results checked with the offline verifier),
// error codes and messages, RecordAnchor's root check and token auth.
#include <atomic>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "inference/chat_template.h"
#include "merkle/hash.h"
#include "provenance/checkpoint.h"
#include "provenance/promise.h"
#include "provenance/verifier.h"
#include "provenance/verifier_key.h"
#include "tests/services/service_fixture.h"

namespace stepproof::service {
namespace {

namespace inf = ::stepproof::inference;
namespace prov = ::stepproof::provenance;
namespace v1 = ::stepproof::v1;
using ::testing::HasSubstr;
using testing::Options;
using testing::ServiceTest;
using testing::SlowSetup;
using testing::ToHash;
using testing::ToHashes;

// ---------------------------------------------------------------- Generate

TEST_F(ServiceTest, GenerateStreamsStartedThenStepsThenSealedAndItAllVerifies) {
  StartServer();
  Streamed s = Generate(Request("What is 12+34? SECRET-PROMPT-TEXT", 7, 48));
  ASSERT_TRUE(s.status.ok()) << s.status.error_message();
  ASSERT_GE(s.events.size(), 2u);
  ASSERT_TRUE(s.events.front().has_started());
  ASSERT_TRUE(s.events.back().has_sealed());
  for (size_t i = 1; i + 1 < s.events.size(); ++i) ASSERT_TRUE(s.events[i].has_step()) << i;

  const prov::NoteVerifier key = signer_.verifier();
  const v1::TraceStarted& started = s.started();
  EXPECT_EQ(ToHash(started.header_leaf_hash()), merkle::HashLeaf(started.header_record()));
  EXPECT_EQ(started.header().prompt(),
            inf::FormatR1Prompt("", "What is 12+34? SECRET-PROMPT-TEXT"));
  EXPECT_EQ(started.header().sampling().seed(), 7u);
  EXPECT_EQ(started.header().sampling().max_new_tokens(), 48u);
  EXPECT_EQ(started.header().key_id(), signer_.key_id());
  EXPECT_TRUE(started.prompt_salt().empty());
  absl::StatusOr<prov::Checkpoint> first = prov::OpenCheckpoint(started.signed_checkpoint(), key);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->size, 1u);

  std::vector<std::string> records = {started.header_record()};
  uint64_t tokens = 0;
  for (size_t i = 1; i + 1 < s.events.size(); ++i) {
    const v1::StepCommitted& step = s.events[i].step();
    EXPECT_EQ(step.leaf_index(), i);
    EXPECT_EQ(ToHash(step.leaf_hash()), merkle::HashLeaf(step.record()));
    absl::StatusOr<prov::Checkpoint> cp = prov::OpenCheckpoint(step.signed_checkpoint(), key);
    ASSERT_TRUE(cp.ok()) << cp.status();
    EXPECT_EQ(cp->size, i + 1);
    absl::StatusOr<prov::StepRecord> record = prov::DecodeStepRecord(step.record());
    ASSERT_TRUE(record.ok());
    EXPECT_EQ(step.step().text(), record->text);
    EXPECT_EQ(step.step().index(), i);
    EXPECT_EQ(step.step().trace_id(), started.trace_id());
    EXPECT_EQ(static_cast<size_t>(step.step().token_ids_size()), record->token_ids.size());
    tokens += record->token_ids.size();
    records.push_back(step.record());
  }
  const v1::TraceSealed& sealed = s.sealed();
  EXPECT_EQ(sealed.size(), records.size());
  EXPECT_TRUE(prov::VerifyTrace(records, sealed.final_checkpoint(), key).ok());
  EXPECT_TRUE(prov::VerifyPromise(sealed.promise(), key, sealed.final_checkpoint()).ok());
  const uint64_t eos = sealed.finish_reason() == "end_of_sequence" ? 1 : 0;
  EXPECT_EQ(tokens + eos, sealed.generated_tokens());
  EXPECT_THAT(sealed.finish_reason(), ::testing::AnyOf("end_of_sequence", "max_tokens"));

  // The log names the trace but never the prompt.
  bool saw_sealed = false;
  for (const std::string& line : LogLines()) {
    EXPECT_FALSE(absl::StrContains(line, "SECRET-PROMPT-TEXT")) << line;
    if (absl::StrContains(line, "event=generate.sealed") &&
        absl::StrContains(line, started.trace_id())) {
      saw_sealed = true;
    }
  }
  EXPECT_TRUE(saw_sealed);
}

TEST_F(ServiceTest, GenerateAcceptsChatMessagesAndWithheldPrompts) {
  StartServer();
  v1::GenerateRequest r = Request("", 3, 8);
  v1::ChatMessage* m = r.add_messages();
  m->set_role("system");
  m->set_content("Be exact.");
  m = r.add_messages();
  m->set_role("user");
  m->set_content("2+2?");
  r.set_withhold_prompt(true);
  Streamed s = Generate(r);
  ASSERT_TRUE(s.status.ok()) << s.status.error_message();
  const v1::TraceStarted& started = s.started();
  EXPECT_FALSE(started.header().has_prompt());
  ASSERT_EQ(started.prompt_salt().size(), 32u);
  EXPECT_EQ(ToHash(started.header().prompt_commitment()),
            merkle::Sha256Of(std::string_view(started.prompt_salt() +
                                              inf::FormatR1Prompt("Be exact.", "2+2?"))));
}

// ---------------------------------------------------------------- reads

TEST_F(ServiceTest, ReadRpcsServeWhatGenerateCommitted) {
  StartServer();
  std::vector<Streamed> runs;
  for (int i = 0; i < 3; ++i) {
    runs.push_back(Generate(Request("Add 2 and 3.", 20 + i, 16)));
    ASSERT_TRUE(runs.back().status.ok()) << runs.back().status.error_message();
  }
  ASSERT_TRUE(ledger_->Flush().ok());

  // The key, as a third party gets it.
  grpc::ClientContext kc;
  v1::GetVerifierKeyResponse key_response;
  ASSERT_TRUE(stub_->GetVerifierKey(&kc, v1::GetVerifierKeyRequest(), &key_response).ok());
  EXPECT_EQ(key_response.verifier_key(), signer_.verifier_key());
  EXPECT_EQ(key_response.log_origin(), testing::kLogOrigin);
  absl::StatusOr<prov::NoteVerifier> key = prov::NoteVerifier::FromVerifierKey(key_response.verifier_key());
  ASSERT_TRUE(key.ok()) << key.status();

  // GetTrace with steps returns the streamed records byte for byte.
  const Streamed& run = runs[1];
  const std::string id = run.started().trace_id();
  grpc::ClientContext tc;
  v1::GetTraceRequest trace_request;
  trace_request.set_trace_id(id);
  trace_request.set_include_steps(true);
  v1::GetTraceResponse trace;
  ASSERT_TRUE(stub_->GetTrace(&tc, trace_request, &trace).ok());
  EXPECT_EQ(trace.trace().state(), v1::TRACE_STATE_SEALED);
  EXPECT_EQ(trace.trace().final_checkpoint(), run.sealed().final_checkpoint());
  EXPECT_TRUE(trace.trace().has_log_index());
  EXPECT_EQ(trace.header_record(), run.started().header_record());
  EXPECT_EQ(trace.trace().header().sampling().seed(), 21u);
  ASSERT_EQ(static_cast<size_t>(trace.steps_size()), run.events.size() - 1);
  EXPECT_EQ(trace.steps(0).record(), run.started().header_record());
  EXPECT_EQ(trace.steps(0).step().kind(), v1::STEP_KIND_HEADER);
  for (int i = 1; i < trace.steps_size(); ++i) {
    EXPECT_EQ(trace.steps(i).record(), run.events[i].step().record());
    EXPECT_EQ(trace.steps(i).leaf_hash(), run.events[i].step().leaf_hash());
  }

  // ListTraces: newest first, paged.
  grpc::ClientContext lc1;
  v1::ListTracesRequest list;
  list.set_page_size(2);
  v1::ListTracesResponse page1;
  ASSERT_TRUE(stub_->ListTraces(&lc1, list, &page1).ok());
  ASSERT_EQ(page1.traces_size(), 2);
  EXPECT_EQ(page1.traces(0).trace_id(), runs[2].started().trace_id());
  EXPECT_EQ(page1.traces(1).trace_id(), runs[1].started().trace_id());
  ASSERT_FALSE(page1.next_page_token().empty());
  grpc::ClientContext lc2;
  list.set_page_token(page1.next_page_token());
  v1::ListTracesResponse page2;
  ASSERT_TRUE(stub_->ListTraces(&lc2, list, &page2).ok());
  ASSERT_EQ(page2.traces_size(), 1);
  EXPECT_EQ(page2.traces(0).trace_id(), runs[0].started().trace_id());
  EXPECT_TRUE(page2.next_page_token().empty());

  // GetStepProof: every step's bundle verifies offline with the served key.
  for (uint64_t i = 0; i < trace.trace().size(); ++i) {
    grpc::ClientContext pc;
    v1::GetStepProofRequest proof_request;
    proof_request.set_trace_id(id);
    proof_request.set_index(i);
    v1::GetStepProofResponse proof;
    ASSERT_TRUE(stub_->GetStepProof(&pc, proof_request, &proof).ok());
    EXPECT_TRUE(proof.in_log());
    EXPECT_FALSE(proof.anchored());
    absl::Status verified = prov::VerifyBundleJson(proof.bundle_json(), *key);
    EXPECT_TRUE(verified.ok()) << i << ": " << verified;
    // A flipped byte in the text breaks it (the check can fail).
    std::string tampered = proof.bundle_json();
    size_t at = tampered.find("\"leaf_index\"");
    ASSERT_NE(at, std::string::npos);
    tampered.replace(tampered.find_first_of("0123456789", at), 1, "7");
    EXPECT_FALSE(prov::VerifyBundleJson(tampered, *key).ok()) << i;
  }

  // GetTraceConsistency from the first checkpoint to the last.
  grpc::ClientContext cc;
  v1::GetTraceConsistencyRequest consistency_request;
  consistency_request.set_trace_id(id);
  consistency_request.set_size1(1);
  consistency_request.set_size2(trace.trace().size());
  v1::GetTraceConsistencyResponse consistency;
  ASSERT_TRUE(stub_->GetTraceConsistency(&cc, consistency_request, &consistency).ok());
  EXPECT_EQ(consistency.checkpoint1(), run.started().signed_checkpoint());
  EXPECT_TRUE(prov::VerifyTraceConsistency(consistency.checkpoint1(), consistency.checkpoint2(),
                                           ToHashes(consistency.proof()), *key)
                  .ok());

  // GetLogCheckpoint: one batch of three.
  grpc::ClientContext gc;
  v1::GetLogCheckpointResponse log_checkpoint;
  ASSERT_TRUE(stub_->GetLogCheckpoint(&gc, v1::GetLogCheckpointRequest(), &log_checkpoint).ok());
  EXPECT_EQ(log_checkpoint.size(), 3u);
  absl::StatusOr<prov::Checkpoint> parsed = prov::OpenCheckpoint(log_checkpoint.checkpoint(), *key);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->origin, testing::kLogOrigin);
  EXPECT_EQ(ToHash(log_checkpoint.root()), parsed->root);

  // GetLogInclusion by trace and by leaf index.
  grpc::ClientContext ic;
  v1::GetLogInclusionRequest inclusion_request;
  inclusion_request.set_trace_id(id);
  v1::GetLogInclusionResponse inclusion;
  ASSERT_TRUE(stub_->GetLogInclusion(&ic, inclusion_request, &inclusion).ok());
  EXPECT_EQ(inclusion.leaf(), run.sealed().final_checkpoint());
  EXPECT_EQ(inclusion.trace_id(), id);
  EXPECT_EQ(inclusion.tree_size(), 3u);
  EXPECT_EQ(inclusion.log_checkpoint(), log_checkpoint.checkpoint());
  EXPECT_TRUE(prov::VerifyLogInclusion(inclusion.leaf(), inclusion.leaf_index(),
                                       ToHashes(inclusion.proof()), inclusion.log_checkpoint(), *key)
                  .ok());
  grpc::ClientContext ic2;
  v1::GetLogInclusionRequest by_index;
  by_index.set_leaf_index(inclusion.leaf_index());
  v1::GetLogInclusionResponse inclusion2;
  ASSERT_TRUE(stub_->GetLogInclusion(&ic2, by_index, &inclusion2).ok());
  EXPECT_EQ(inclusion2.leaf(), inclusion.leaf());

  // A fourth trace, a second batch, and consistency between the two.
  ASSERT_TRUE(Generate(Request("Add 4 and 5.", 30, 8)).status.ok());
  ASSERT_TRUE(ledger_->Flush().ok());
  grpc::ClientContext lcc;
  v1::GetLogConsistencyRequest log_consistency_request;
  log_consistency_request.set_size1(3);
  log_consistency_request.set_size2(4);
  v1::GetLogConsistencyResponse log_consistency;
  ASSERT_TRUE(stub_->GetLogConsistency(&lcc, log_consistency_request, &log_consistency).ok());
  EXPECT_EQ(log_consistency.checkpoint1(), log_checkpoint.checkpoint());
  EXPECT_TRUE(prov::VerifyLogConsistency(log_consistency.checkpoint1(), log_consistency.checkpoint2(),
                                         ToHashes(log_consistency.proof()), *key)
                  .ok());
  grpc::ClientContext gc2;
  v1::GetLogCheckpointRequest at3;
  at3.set_size(3);
  v1::GetLogCheckpointResponse old_checkpoint;
  ASSERT_TRUE(stub_->GetLogCheckpoint(&gc2, at3, &old_checkpoint).ok());
  EXPECT_EQ(old_checkpoint.checkpoint(), log_checkpoint.checkpoint());
}

// ---------------------------------------------------------------- errors

TEST_F(ServiceTest, BadRequestsGetCodesAndMessagesThatNameTheProblem) {
  Options small;
  small.max_prompt_bytes = 100;
  StartServer(std::move(small));
  Streamed ok = Generate(Request("Hi.", 1, 4));
  ASSERT_TRUE(ok.status.ok());
  const std::string id = ok.started().trace_id();

  struct Case {
    std::string name;
    std::function<grpc::Status()> call;
    grpc::StatusCode code;
    std::string message;
  };
  auto get_trace = [this](const std::string& trace_id) {
    grpc::ClientContext c;
    v1::GetTraceRequest r;
    r.set_trace_id(trace_id);
    v1::GetTraceResponse out;
    return stub_->GetTrace(&c, r, &out);
  };
  std::vector<Case> cases = {
      {"malformed trace id", [&] { return get_trace("not-hex"); },
       grpc::StatusCode::INVALID_ARGUMENT, "trace_id"},
      {"unknown trace", [&] { return get_trace(std::string(32, '0')); },
       grpc::StatusCode::NOT_FOUND, ""},
      {"step out of range",
       [&] {
         grpc::ClientContext c;
         v1::GetStepProofRequest r;
         r.set_trace_id(id);
         r.set_index(999);
         v1::GetStepProofResponse out;
         return stub_->GetStepProof(&c, r, &out);
       },
       grpc::StatusCode::NOT_FOUND, ""},
      {"page token",
       [&] {
         grpc::ClientContext c;
         v1::ListTracesRequest r;
         r.set_page_token("garbage");
         v1::ListTracesResponse out;
         return stub_->ListTraces(&c, r, &out);
       },
       grpc::StatusCode::INVALID_ARGUMENT, "page token"},
      {"page size",
       [&] {
         grpc::ClientContext c;
         v1::ListTracesRequest r;
         r.set_page_size(-1);
         v1::ListTracesResponse out;
         return stub_->ListTraces(&c, r, &out);
       },
       grpc::StatusCode::INVALID_ARGUMENT, "page_size"},
      {"trace consistency sizes",
       [&] {
         grpc::ClientContext c;
         v1::GetTraceConsistencyRequest r;
         r.set_trace_id(id);
         r.set_size1(2);
         r.set_size2(1);
         v1::GetTraceConsistencyResponse out;
         return stub_->GetTraceConsistency(&c, r, &out);
       },
       grpc::StatusCode::INVALID_ARGUMENT, ""},
      {"log checkpoint before any batch",
       [&] {
         grpc::ClientContext c;
         v1::GetLogCheckpointResponse out;
         return stub_->GetLogCheckpoint(&c, v1::GetLogCheckpointRequest(), &out);
       },
       grpc::StatusCode::NOT_FOUND, "no checkpoint yet"},
      {"log inclusion without leaf",
       [&] {
         grpc::ClientContext c;
         v1::GetLogInclusionResponse out;
         return stub_->GetLogInclusion(&c, v1::GetLogInclusionRequest(), &out);
       },
       grpc::StatusCode::INVALID_ARGUMENT, "trace_id or leaf_index"},
      {"log inclusion of a trace not yet in the log",
       [&] {
         grpc::ClientContext c;
         v1::GetLogInclusionRequest r;
         r.set_trace_id(id);
         v1::GetLogInclusionResponse out;
         return stub_->GetLogInclusion(&c, r, &out);
       },
       grpc::StatusCode::NOT_FOUND, ""},
      {"log consistency sizes",
       [&] {
         grpc::ClientContext c;
         v1::GetLogConsistencyRequest r;
         r.set_size1(0);
         r.set_size2(1);
         v1::GetLogConsistencyResponse out;
         return stub_->GetLogConsistency(&c, r, &out);
       },
       grpc::StatusCode::INVALID_ARGUMENT, ""},
      {"empty prompt", [&] { return Generate(Request("", 1, 4)).status; },
       grpc::StatusCode::INVALID_ARGUMENT, "prompt is empty"},
      {"oversize prompt", [&] { return Generate(Request(std::string(101, 'x'), 1, 4)).status; },
       grpc::StatusCode::RESOURCE_EXHAUSTED, "--max-prompt-bytes"},
      {"temperature",
       [&] {
         v1::GenerateRequest r = Request("hi", 1, 4);
         r.mutable_sampling()->set_temperature(11.0f);
         return Generate(r).status;
       },
       grpc::StatusCode::INVALID_ARGUMENT, "temperature"},
      {"max tokens", [&] { return Generate(Request("hi", 1, 65)).status; },
       grpc::StatusCode::INVALID_ARGUMENT, "max_tokens"},
      {"chat role",
       [&] {
         v1::GenerateRequest r = Request("", 1, 4);
         v1::ChatMessage* m = r.add_messages();
         m->set_role("robot");
         m->set_content("x");
         return Generate(r).status;
       },
       grpc::StatusCode::INVALID_ARGUMENT, "messages[0].role"},
      {"anchor of unknown size",
       [&] {
         grpc::ClientContext c;
         v1::RecordAnchorRequest r;
         r.set_log_size(99);
         r.set_root(std::string(32, 'r'));
         r.set_chain_id(1);
         r.set_contract_address("0x" + std::string(40, 'a'));
         r.set_tx_hash("0x" + std::string(64, 'b'));
         v1::RecordAnchorResponse out;
         return stub_->RecordAnchor(&c, r, &out);
       },
       grpc::StatusCode::NOT_FOUND, "size 99"},
  };
  for (const Case& c : cases) {
    grpc::Status s = c.call();
    EXPECT_EQ(s.error_code(), c.code) << c.name << ": " << s.error_message();
    EXPECT_THAT(s.error_message(), HasSubstr(c.message)) << c.name;
  }
  // The server is still serving after all that.
  EXPECT_TRUE(get_trace(id).ok());
}

TEST_F(ServiceTest, RecordAnchorChecksTheRootAgainstTheSignedLogCheckpoint) {
  StartServer();
  ASSERT_TRUE(Generate(Request("Hi.", 1, 4)).status.ok());
  ASSERT_TRUE(ledger_->Flush().ok());
  grpc::ClientContext gc;
  v1::GetLogCheckpointResponse checkpoint;
  ASSERT_TRUE(stub_->GetLogCheckpoint(&gc, v1::GetLogCheckpointRequest(), &checkpoint).ok());

  v1::RecordAnchorRequest r;
  r.set_log_size(checkpoint.size());
  r.set_root(checkpoint.root());
  r.set_chain_id(31337);
  r.set_contract_address("0x" + std::string(40, 'c'));
  r.set_tx_hash("0x" + std::string(64, 'd'));
  r.set_block_number(5);
  v1::RecordAnchorRequest wrong = r;
  std::string root = wrong.root();
  root[31] ^= 0x01;
  wrong.set_root(root);
  grpc::ClientContext c1;
  v1::RecordAnchorResponse out;
  grpc::Status s = stub_->RecordAnchor(&c1, wrong, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(s.error_message(), HasSubstr("root does not match"));

  grpc::ClientContext c2;
  ASSERT_TRUE(stub_->RecordAnchor(&c2, r, &out).ok());
  EXPECT_EQ(out.checkpoint(), checkpoint.checkpoint());
  grpc::ClientContext c3;
  EXPECT_EQ(stub_->RecordAnchor(&c3, r, &out).error_code(), grpc::StatusCode::ALREADY_EXISTS);
}

// ---------------------------------------------------------------- auth

TEST_F(ServiceTest, TokenGuardsGenerateAndRecordAnchorButNotReads) {
  Options with_token;
  with_token.auth = BearerAuth("tok-SECRET-123");
  StartServer(std::move(with_token));
  EXPECT_EQ(Generate(Request("Hi.", 1, 4)).status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Generate(Request("Hi.", 1, 4), "wrong").status.error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  Streamed ok = Generate(Request("Hi.", 1, 4), "tok-SECRET-123");
  ASSERT_TRUE(ok.status.ok()) << ok.status.error_message();

  grpc::ClientContext kc;
  v1::GetVerifierKeyResponse key;
  EXPECT_TRUE(stub_->GetVerifierKey(&kc, v1::GetVerifierKeyRequest(), &key).ok());
  grpc::ClientContext tc;
  v1::GetTraceRequest tr;
  tr.set_trace_id(ok.started().trace_id());
  v1::GetTraceResponse trace;
  EXPECT_TRUE(stub_->GetTrace(&tc, tr, &trace).ok());

  v1::RecordAnchorRequest anchor;
  anchor.set_log_size(1);
  grpc::ClientContext ac;
  v1::RecordAnchorResponse out;
  EXPECT_EQ(stub_->RecordAnchor(&ac, anchor, &out).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  grpc::ClientContext ac2;
  ac2.AddMetadata("authorization", "Bearer tok-SECRET-123");
  // Past the token check, the request itself is judged.
  EXPECT_EQ(stub_->RecordAnchor(&ac2, anchor, &out).error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  for (const std::string& line : LogLines()) {
    EXPECT_FALSE(absl::StrContains(line, "tok-SECRET")) << line;
  }
}


}  // namespace
}  // namespace stepproof::service
