#include "services/stepproof_service.h"

#include <chrono>
#include <optional>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "provenance/bundle.h"
#include "provenance/checkpoint.h"
#include "provenance/step_record.h"
#include "services/anchoring.h"
#include "services/grpc_status.h"
#include "services/proto_convert.h"

namespace stepproof::service {

namespace v1 = ::stepproof::v1;
namespace prov = ::stepproof::provenance;

namespace {

absl::Status CheckTraceId(const std::string& id) {
  if (prov::IsValidTraceId(id)) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "trace_id: '", id.size() > 80 ? id.substr(0, 80) + "..." : id,
      "' is not 32 lowercase hex characters"));
}

std::string CodeName(const absl::Status& s) {
  return absl::StatusCodeToString(s.code());
}

absl::Time DeadlineOf(const grpc::ServerContext& context) {
  const std::chrono::system_clock::time_point d = context.deadline();
  if (d == std::chrono::system_clock::time_point::max()) {
    return absl::InfiniteFuture();
  }
  return absl::FromChrono(d);
}

}  // namespace

StepProofService::StepProofService(TraceGenerator* generator, prov::Ledger* ledger,
                                   const prov::Signer* signer, std::string log_origin,
                                   BearerAuth auth, EventLog* log)
    : generator_(generator),
      ledger_(ledger),
      signer_(signer),
      log_origin_(std::move(log_origin)),
      auth_(std::move(auth)),
      log_(log) {}

absl::Status StepProofService::CheckToken(const grpc::ServerContext& context) const {
  if (!auth_.required()) return absl::OkStatus();
  const auto& metadata = context.client_metadata();
  auto it = metadata.find("authorization");
  if (it == metadata.end()) return auth_.Check(std::nullopt);
  return auth_.Check(absl::string_view(it->second.data(), it->second.size()));
}

grpc::Status StepProofService::Finish(absl::string_view method, const absl::Status& status) {
  if (!status.ok()) {
    log_->Log("rpc.error", {{"method", std::string(method)},
                            {"code", CodeName(status)},
                            {"message", std::string(status.message())}});
  }
  return ToGrpcStatus(status);
}

grpc::Status StepProofService::Generate(grpc::ServerContext* context,
                                        const v1::GenerateRequest* request,
                                        grpc::ServerWriter<v1::GenerateEvent>* writer) {
  if (absl::Status s = CheckToken(*context); !s.ok()) return Finish("Generate", s);
  GenerateParams params = GenerateParamsFromProto(*request);
  params.deadline = DeadlineOf(*context);
  params.is_cancelled = [context] { return context->IsCancelled(); };
  // The generator gave up on this stream (the client does not read it): a
  // blocked writer->Write returns false once the call is cancelled.
  params.abort_stream = [context] { context->TryCancel(); };

  const absl::Status client_gone =
      absl::CancelledError("the client went away (stream write failed)");
  std::string trace_id;
  uint64_t steps = 0;
  TraceEvents events;
  events.on_started = [&](const TraceStartedEvent& e) -> absl::Status {
    trace_id = e.trace.trace_id;
    log_->Log("generate.started",
              {{"trace", trace_id},
               {"prompt_bytes", absl::StrCat(e.header.prompt.has_value()
                                                 ? e.header.prompt->size()
                                                 : 0)},
               {"withheld", e.header.prompt_commitment.has_value() ? "true" : "false"},
               {"max_tokens", absl::StrCat(e.header.sampling.max_new_tokens)}});
    return writer->Write(StartedToProto(e)) ? absl::OkStatus() : client_gone;
  };
  events.on_step = [&](const StepCommittedEvent& e) -> absl::Status {
    ++steps;
    return writer->Write(StepToProto(e)) ? absl::OkStatus() : client_gone;
  };
  events.on_sealed = [&](const TraceSealedEvent& e) -> absl::Status {
    return writer->Write(SealedToProto(e)) ? absl::OkStatus() : client_gone;
  };

  const absl::Time begin = absl::Now();
  absl::StatusOr<TraceSealedEvent> sealed = generator_->Generate(params, events);
  const std::string ms = absl::StrCat(absl::ToInt64Milliseconds(absl::Now() - begin));
  if (!sealed.ok()) {
    if (!trace_id.empty()) {
      // The trace exists and was sealed; the stream ended early.
      log_->Log("generate.aborted", {{"trace", trace_id},
                                     {"steps", absl::StrCat(steps)},
                                     {"code", CodeName(sealed.status())},
                                     {"message", std::string(sealed.status().message())},
                                     {"ms", ms}});
      return ToGrpcStatus(sealed.status());
    }
    return Finish("Generate", sealed.status());
  }
  log_->Log("generate.sealed", {{"trace", trace_id},
                                {"size", absl::StrCat(sealed->sealed.size)},
                                {"finish", std::string(inference::FinishReasonName(sealed->finish))},
                                {"prompt_tokens", absl::StrCat(sealed->prompt_tokens)},
                                {"generated_tokens", absl::StrCat(sealed->generated_tokens)},
                                {"ms", ms}});
  if (sealed->finish == inference::FinishReason::kDeadline) {
    // The engine stopped at the client's deadline (the trace is sealed and
    // its final event may have been sent). The call ends as gRPC ends any
    // call past its deadline, however the race with gRPC's own timer went.
    return ToGrpcStatus(absl::DeadlineExceededError(
        "the deadline passed; the trace was sealed with the steps produced so far"));
  }
  return grpc::Status::OK;
}

grpc::Status StepProofService::GetTrace(grpc::ServerContext*,
                                        const v1::GetTraceRequest* request,
                                        v1::GetTraceResponse* response) {
  auto run = [&]() -> absl::Status {
    if (absl::Status s = CheckTraceId(request->trace_id()); !s.ok()) return s;
    absl::StatusOr<prov::TraceRecord> trace = ledger_->GetTrace(request->trace_id());
    if (!trace.ok()) return trace.status();
    if (absl::Status s = TraceSummaryToProto(*trace, response->mutable_trace()); !s.ok()) {
      return s;
    }
    response->set_header_record(trace->header);
    if (request->include_steps()) {
      for (uint64_t i = 0; i < trace->size; ++i) {
        absl::StatusOr<prov::StepRow> row = ledger_->store().GetStep(trace->trace_id, i);
        if (!row.ok()) return row.status();
        if (absl::Status s = StepEntryToProto(*row, response->add_steps()); !s.ok()) return s;
      }
    }
    return absl::OkStatus();
  };
  return Finish("GetTrace", run());
}

grpc::Status StepProofService::ListTraces(grpc::ServerContext*,
                                          const v1::ListTracesRequest* request,
                                          v1::ListTracesResponse* response) {
  auto run = [&]() -> absl::Status {
    if (request->page_size() < 0 || request->page_size() > 1000) {
      return absl::InvalidArgumentError(absl::StrCat(
          "page_size ", request->page_size(), " is not in [0, 1000] (0 means 50)"));
    }
    absl::StatusOr<prov::TracePage> page =
        ledger_->ListTraces(request->page_token(), request->page_size());
    if (!page.ok()) return page.status();
    for (const prov::TraceRecord& t : page->traces) {
      if (absl::Status s = TraceSummaryToProto(t, response->add_traces()); !s.ok()) return s;
    }
    response->set_next_page_token(page->next_page_token);
    return absl::OkStatus();
  };
  return Finish("ListTraces", run());
}

grpc::Status StepProofService::GetStepProof(grpc::ServerContext*,
                                            const v1::GetStepProofRequest* request,
                                            v1::GetStepProofResponse* response) {
  auto run = [&]() -> absl::Status {
    if (absl::Status s = CheckTraceId(request->trace_id()); !s.ok()) return s;
    absl::StatusOr<prov::Bundle> bundle =
        ledger_->GetStepBundle(request->trace_id(), request->index());
    if (!bundle.ok()) return bundle.status();
    response->set_bundle_json(prov::BundleToJson(*bundle));
    response->set_in_log(bundle->log.has_value());
    response->set_anchored(bundle->anchor.has_value());
    return absl::OkStatus();
  };
  return Finish("GetStepProof", run());
}

grpc::Status StepProofService::GetTraceConsistency(
    grpc::ServerContext*, const v1::GetTraceConsistencyRequest* request,
    v1::GetTraceConsistencyResponse* response) {
  auto run = [&]() -> absl::Status {
    if (absl::Status s = CheckTraceId(request->trace_id()); !s.ok()) return s;
    absl::StatusOr<std::vector<merkle::Hash>> proof = ledger_->GetTraceConsistency(
        request->trace_id(), request->size1(), request->size2());
    if (!proof.ok()) return proof.status();
    for (const merkle::Hash& h : *proof) response->add_proof(HashBytes(h));
    absl::StatusOr<std::string> c1 =
        ledger_->store().GetTraceCheckpoint(request->trace_id(), request->size1());
    if (!c1.ok()) return c1.status();
    absl::StatusOr<std::string> c2 =
        ledger_->store().GetTraceCheckpoint(request->trace_id(), request->size2());
    if (!c2.ok()) return c2.status();
    response->set_checkpoint1(*c1);
    response->set_checkpoint2(*c2);
    return absl::OkStatus();
  };
  return Finish("GetTraceConsistency", run());
}

grpc::Status StepProofService::GetLogCheckpoint(grpc::ServerContext*,
                                                const v1::GetLogCheckpointRequest* request,
                                                v1::GetLogCheckpointResponse* response) {
  auto run = [&]() -> absl::Status {
    absl::StatusOr<prov::LogCheckpointRow> row =
        request->size() == 0 ? ledger_->LatestLogCheckpoint()
                             : ledger_->store().GetLogCheckpoint(request->size());
    if (!row.ok()) {
      if (absl::IsNotFound(row.status())) {
        return absl::NotFoundError(
            request->size() == 0
                ? std::string("the log has no checkpoint yet (no trace was sealed and integrated)")
                : absl::StrCat("no log checkpoint was signed at size ", request->size()));
      }
      return row.status();
    }
    absl::StatusOr<prov::Checkpoint> checkpoint =
        prov::OpenCheckpoint(row->note, signer_->verifier());
    if (!checkpoint.ok()) {
      return absl::DataLossError(absl::StrCat("stored log checkpoint does not open: ",
                                              checkpoint.status().message()));
    }
    response->set_size(row->size);
    response->set_checkpoint(row->note);
    response->set_root(HashBytes(checkpoint->root));
    response->set_integrated_unix_ms(absl::ToUnixMillis(row->integrated));
    return absl::OkStatus();
  };
  return Finish("GetLogCheckpoint", run());
}

grpc::Status StepProofService::GetLogInclusion(grpc::ServerContext*,
                                               const v1::GetLogInclusionRequest* request,
                                               v1::GetLogInclusionResponse* response) {
  auto run = [&]() -> absl::Status {
    absl::StatusOr<prov::LogInclusionProof> proof;
    switch (request->leaf_case()) {
      case v1::GetLogInclusionRequest::kTraceId:
        if (absl::Status s = CheckTraceId(request->trace_id()); !s.ok()) return s;
        proof = ledger_->LogInclusionForTrace(request->trace_id(), request->tree_size());
        break;
      case v1::GetLogInclusionRequest::kLeafIndex:
        proof = ledger_->LogInclusionForLeaf(request->leaf_index(), request->tree_size());
        break;
      default:
        return absl::InvalidArgumentError("give trace_id or leaf_index");
    }
    if (!proof.ok()) return proof.status();
    absl::StatusOr<prov::LogLeaf> leaf = ledger_->store().GetLogLeaf(proof->leaf_index);
    if (!leaf.ok()) return leaf.status();
    response->set_leaf_index(proof->leaf_index);
    response->set_tree_size(proof->tree_size);
    response->set_leaf_hash(HashBytes(proof->leaf_hash));
    for (const merkle::Hash& h : proof->hashes) response->add_proof(HashBytes(h));
    response->set_log_checkpoint(proof->log_checkpoint);
    response->set_leaf(leaf->leaf);
    response->set_trace_id(leaf->trace_id);
    return absl::OkStatus();
  };
  return Finish("GetLogInclusion", run());
}

grpc::Status StepProofService::GetLogConsistency(grpc::ServerContext*,
                                                 const v1::GetLogConsistencyRequest* request,
                                                 v1::GetLogConsistencyResponse* response) {
  auto run = [&]() -> absl::Status {
    absl::StatusOr<std::vector<merkle::Hash>> proof =
        ledger_->LogConsistency(request->size1(), request->size2());
    if (!proof.ok()) return proof.status();
    for (const merkle::Hash& h : *proof) response->add_proof(HashBytes(h));
    for (auto [size, out] : {std::pair{request->size1(), response->mutable_checkpoint1()},
                             std::pair{request->size2(), response->mutable_checkpoint2()}}) {
      absl::StatusOr<prov::LogCheckpointRow> row = ledger_->store().GetLogCheckpoint(size);
      if (row.ok()) {
        *out = row->note;
      } else if (!absl::IsNotFound(row.status())) {
        return row.status();
      }
    }
    return absl::OkStatus();
  };
  return Finish("GetLogConsistency", run());
}

grpc::Status StepProofService::GetVerifierKey(grpc::ServerContext*,
                                              const v1::GetVerifierKeyRequest*,
                                              v1::GetVerifierKeyResponse* response) {
  response->set_verifier_key(signer_->verifier_key());
  response->set_key_name(signer_->key_name());
  response->set_key_id(signer_->key_id());
  response->set_log_origin(log_origin_);
  return grpc::Status::OK;
}

grpc::Status StepProofService::RecordAnchor(grpc::ServerContext* context,
                                            const v1::RecordAnchorRequest* request,
                                            v1::RecordAnchorResponse* response) {
  auto run = [&]() -> absl::Status {
    if (absl::Status s = CheckToken(*context); !s.ok()) return s;
    AnchorRequest anchor;
    anchor.log_size = request->log_size();
    anchor.root = request->root();
    anchor.chain_id = request->chain_id();
    anchor.contract_address = request->contract_address();
    anchor.tx_hash = request->tx_hash();
    anchor.block_number = request->block_number();
    if (request->block_time_unix_ms() != 0) {
      anchor.block_time = absl::FromUnixMillis(request->block_time_unix_ms());
    }
    absl::StatusOr<std::string> note =
        RecordVerifiedAnchor(*ledger_, signer_->verifier(), anchor, absl::Now());
    if (!note.ok()) return note.status();
    response->set_checkpoint(*note);
    log_->Log("anchor.recorded", {{"log_size", absl::StrCat(anchor.log_size)},
                                  {"chain_id", absl::StrCat(anchor.chain_id)},
                                  {"tx", anchor.tx_hash},
                                  {"block", absl::StrCat(anchor.block_number)}});
    return absl::OkStatus();
  };
  return Finish("RecordAnchor", run());
}

}  // namespace stepproof::service
