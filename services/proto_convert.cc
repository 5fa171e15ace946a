#include "services/proto_convert.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "inference/backend.h"

namespace stepproof::service {

namespace v1 = ::stepproof::v1;
namespace prov = ::stepproof::provenance;

std::string HashBytes(const merkle::Hash& hash) {
  return std::string(reinterpret_cast<const char*>(hash.data()), hash.size());
}

GenerateParams GenerateParamsFromProto(const v1::GenerateRequest& r) {
  GenerateParams p;
  p.prompt = r.prompt();
  for (const v1::ChatMessage& m : r.messages()) {
    p.messages.push_back(ChatTurn{m.role(), m.content()});
  }
  const v1::SamplingSettings& s = r.sampling();
  p.greedy = s.greedy();
  if (s.has_temperature()) p.temperature = s.temperature();
  if (s.has_top_p()) p.top_p = s.top_p();
  if (s.has_top_k()) p.top_k = s.top_k();
  p.max_tokens = r.max_tokens();
  if (r.has_seed()) p.seed = r.seed();
  p.withhold_prompt = r.withhold_prompt();
  p.prompt_salt = r.prompt_salt();
  return p;
}

void TraceHeaderToProto(const prov::TraceHeader& h, v1::TraceHeader* out) {
  out->set_model_digest(HashBytes(h.model_digest));
  out->set_tokenizer_digest(HashBytes(h.tokenizer_digest));
  out->set_model_name(h.model_name);
  v1::RecordedSampling* s = out->mutable_sampling();
  s->set_sampler(h.sampling.sampler);
  s->set_greedy(h.sampling.greedy);
  s->set_temperature(h.sampling.temperature);
  s->set_top_p(h.sampling.top_p);
  s->set_top_k(h.sampling.top_k);
  s->set_seed(h.sampling.seed);
  s->set_max_new_tokens(h.sampling.max_new_tokens);
  if (h.prompt.has_value()) out->set_prompt(*h.prompt);
  if (h.prompt_commitment.has_value()) {
    out->set_prompt_commitment(HashBytes(*h.prompt_commitment));
  }
  out->set_backend(h.backend);
  out->set_device(h.device);
  out->set_start_unix_ms(h.start_unix_ms);
  out->set_key_name(h.key_name);
  out->set_key_id(h.key_id);
}

v1::StepKind StepKindToProto(prov::StepKind kind) {
  switch (kind) {
    case prov::StepKind::kHeader: return v1::STEP_KIND_HEADER;
    case prov::StepKind::kReasoning: return v1::STEP_KIND_REASONING;
    case prov::StepKind::kAnswer: return v1::STEP_KIND_ANSWER;
  }
  return v1::STEP_KIND_UNSPECIFIED;
}

v1::TraceState TraceStateToProto(prov::TraceState state) {
  switch (state) {
    case prov::TraceState::kOpen: return v1::TRACE_STATE_OPEN;
    case prov::TraceState::kSealed: return v1::TRACE_STATE_SEALED;
    case prov::TraceState::kInterrupted: return v1::TRACE_STATE_INTERRUPTED;
  }
  return v1::TRACE_STATE_UNSPECIFIED;
}

void StepViewToProto(const prov::StepRecord& r, v1::StepView* out) {
  out->set_trace_id(r.trace_id);
  out->set_index(r.index);
  out->set_kind(StepKindToProto(r.kind));
  out->set_start_ms(r.start_ms);
  out->set_end_ms(r.end_ms);
  // The header's text is its binary header encoding: shown decoded elsewhere.
  if (r.kind != prov::StepKind::kHeader) out->set_text(r.text);
  for (uint32_t id : r.token_ids) out->add_token_ids(id);
  if (r.logprobs.has_value()) {
    for (float lp : *r.logprobs) out->add_logprobs(lp);
  }
  out->set_has_fingerprint(r.fingerprint.has_value());
  out->set_salt(std::string(reinterpret_cast<const char*>(r.salt.data()), r.salt.size()));
}

absl::Status TraceSummaryToProto(const prov::TraceRecord& t, v1::TraceSummary* out) {
  out->set_trace_id(t.trace_id);
  out->set_state(TraceStateToProto(t.state));
  out->set_created_unix_ms(absl::ToUnixMillis(t.created));
  out->set_size(t.size);
  out->set_latest_checkpoint(t.latest_checkpoint);
  out->set_final_checkpoint(t.final_checkpoint);
  if (t.log_index.has_value()) out->set_log_index(*t.log_index);
  absl::StatusOr<prov::StepRecord> record = prov::DecodeStepRecord(t.header);
  if (!record.ok()) {
    return absl::DataLossError(absl::StrCat("stored header of trace ", t.trace_id,
                                            " does not decode: ", record.status().message()));
  }
  absl::StatusOr<prov::TraceHeader> header = prov::HeaderFromRecord(*record);
  if (!header.ok()) {
    return absl::DataLossError(absl::StrCat("stored header of trace ", t.trace_id,
                                            " is not a header: ", header.status().message()));
  }
  TraceHeaderToProto(*header, out->mutable_header());
  return absl::OkStatus();
}

absl::Status StepEntryToProto(const prov::StepRow& row, v1::StepEntry* out) {
  out->set_leaf_index(row.index);
  out->set_leaf_hash(HashBytes(row.leaf_hash));
  out->set_record(row.encoded_record);
  absl::StatusOr<prov::StepRecord> record = prov::DecodeStepRecord(row.encoded_record);
  if (!record.ok()) {
    return absl::DataLossError(absl::StrCat("stored step ", row.index, " of trace ",
                                            row.trace_id, " does not decode: ",
                                            record.status().message()));
  }
  StepViewToProto(*record, out->mutable_step());
  return absl::OkStatus();
}

v1::GenerateEvent StartedToProto(const TraceStartedEvent& e) {
  v1::GenerateEvent event;
  v1::TraceStarted* s = event.mutable_started();
  s->set_trace_id(e.trace.trace_id);
  s->set_header_leaf_hash(HashBytes(e.trace.header_leaf_hash));
  s->set_header_record(e.trace.header_record);
  s->set_signed_checkpoint(e.trace.signed_checkpoint);
  TraceHeaderToProto(e.header, s->mutable_header());
  s->set_prompt_salt(e.prompt_salt);
  return event;
}

v1::GenerateEvent StepToProto(const StepCommittedEvent& e) {
  v1::GenerateEvent event;
  v1::StepCommitted* s = event.mutable_step();
  s->set_leaf_index(e.step.leaf_index);
  s->set_leaf_hash(HashBytes(e.step.leaf_hash));
  s->set_record(e.step.encoded_record);
  s->set_signed_checkpoint(e.step.signed_checkpoint);
  StepViewToProto(e.record, s->mutable_step());
  return event;
}

v1::GenerateEvent SealedToProto(const TraceSealedEvent& e) {
  v1::GenerateEvent event;
  v1::TraceSealed* s = event.mutable_sealed();
  s->set_size(e.sealed.size);
  s->set_final_checkpoint(e.sealed.final_checkpoint);
  s->set_answer(e.answer);
  s->set_promise(e.sealed.promise);
  s->set_finish_reason(std::string(inference::FinishReasonName(e.finish)));
  s->set_prompt_tokens(static_cast<uint32_t>(e.prompt_tokens));
  s->set_generated_tokens(static_cast<uint32_t>(e.generated_tokens));
  return event;
}

}  // namespace stepproof::service
