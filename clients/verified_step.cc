#include "clients/verified_step.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "clients/terminal_text.h"
#include "merkle/hash.h"
#include "nlohmann/json.hpp"
#include "provenance/checkpoint.h"
#include "provenance/rfc3339.h"
#include "provenance/verifier.h"

namespace stepproof::clients {
namespace {

using provenance::StepKind;
using provenance::StepKindName;

std::string Str(absl::string_view s) { return std::string(s.data(), s.size()); }

nlohmann::json HeaderToJson(const provenance::TraceHeader& h) {
  nlohmann::json j;
  j["model_name"] = h.model_name;
  j["model_digest"] = merkle::ToHex(h.model_digest);
  j["tokenizer_digest"] = merkle::ToHex(h.tokenizer_digest);
  j["sampling"] = {
      {"sampler", h.sampling.sampler},
      {"greedy", h.sampling.greedy},
      {"temperature", h.sampling.temperature},
      {"top_p", h.sampling.top_p},
      {"top_k", h.sampling.top_k},
      {"seed", h.sampling.seed},
      {"max_new_tokens", h.sampling.max_new_tokens},
  };
  if (h.prompt.has_value()) j["prompt"] = *h.prompt;
  if (h.prompt_commitment.has_value()) {
    j["prompt_commitment"] = merkle::ToHex(*h.prompt_commitment);
  }
  j["backend"] = h.backend;
  j["device"] = h.device;
  j["start_time"] = provenance::FormatRfc3339Millis(h.start_unix_ms);
  j["key_name"] = h.key_name;
  j["key_id"] = absl::StrFormat("%08x", h.key_id);
  return j;
}

}  // namespace

absl::StatusOr<VerifiedStep> VerifyStepBundle(
    const provenance::Bundle& bundle, const provenance::NoteVerifier& key) {
  if (absl::Status s = provenance::VerifyBundle(bundle, key); !s.ok()) {
    return s;
  }
  VerifiedStep out;
  out.key = key.verifier_key();
  out.trace_id = bundle.record.trace_id;
  out.index = bundle.record.index;
  out.kind = bundle.record.kind;
  out.start_ms = bundle.record.start_ms;
  out.end_ms = bundle.record.end_ms;
  out.token_count = bundle.record.token_ids.size();
  out.has_fingerprint = bundle.record.fingerprint.has_value();
  if (bundle.record.kind == StepKind::kHeader) {
    absl::StatusOr<provenance::TraceHeader> header =
        provenance::HeaderFromRecord(bundle.record);
    if (!header.ok()) return header.status();
    out.header = std::move(*header);
  } else {
    out.text = bundle.record.text;
  }
  // VerifyBundle has opened these notes already; re-opening only reads them.
  absl::StatusOr<provenance::Checkpoint> cp =
      provenance::OpenCheckpoint(bundle.trace_checkpoint, key);
  if (!cp.ok()) return cp.status();
  out.trace_origin = cp->origin;
  out.checkpoint_size = cp->size;
  out.checkpoint_final = cp->is_final();
  if (bundle.log.has_value()) {
    absl::StatusOr<provenance::Checkpoint> log_cp =
        provenance::OpenCheckpoint(bundle.log->checkpoint, key);
    if (!log_cp.ok()) return log_cp.status();
    out.log = VerifiedLogInclusion{log_cp->origin, bundle.log->leaf_index,
                                   log_cp->size};
  }
  out.promise_verified = bundle.promise.has_value();
  out.anchor = bundle.anchor;
  return out;
}

absl::StatusOr<VerifiedStep> VerifyStepBundleJson(
    absl::string_view json, const provenance::NoteVerifier& key) {
  absl::StatusOr<provenance::Bundle> bundle = provenance::BundleFromJson(json);
  if (!bundle.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("bundle does not parse: ", bundle.status().message()));
  }
  return VerifyStepBundle(*bundle, key);
}

std::string FormatTraceHeader(const provenance::TraceHeader& h,
                              absl::string_view indent) {
  std::string out;
  auto line = [&](absl::string_view name, absl::string_view value) {
    absl::StrAppend(&out, indent, name, ": ", EscapeForTerminal(value), "\n");
  };
  line("model", h.model_name);
  line("model digest", merkle::ToHex(h.model_digest));
  line("tokenizer digest", merkle::ToHex(h.tokenizer_digest));
  line("sampling",
       h.sampling.greedy
           ? absl::StrFormat("%s greedy, seed %d, max %d new tokens",
                             h.sampling.sampler, h.sampling.seed,
                             h.sampling.max_new_tokens)
           : absl::StrFormat(
                 "%s temperature %g, top-p %g, top-k %d, seed %d, max %d new "
                 "tokens",
                 h.sampling.sampler, h.sampling.temperature, h.sampling.top_p,
                 h.sampling.top_k, h.sampling.seed,
                 h.sampling.max_new_tokens));
  if (h.prompt.has_value()) {
    // The templated prompt usually ends in a newline; show it without.
    absl::string_view prompt = *h.prompt;
    while (!prompt.empty() && prompt.back() == '\n') prompt.remove_suffix(1);
    absl::StrAppend(&out, indent, "prompt: ",
                    IndentForTerminal(prompt, absl::StrCat(indent, "  ")),
                    "\n");
  }
  if (h.prompt_commitment.has_value()) {
    line("prompt", absl::StrCat("withheld; commitment ",
                                merkle::ToHex(*h.prompt_commitment)));
  }
  line("backend", absl::StrCat(h.backend, " on ", h.device));
  line("started", provenance::FormatRfc3339Millis(h.start_unix_ms));
  line("signing key",
       absl::StrCat(h.key_name, "+", absl::StrFormat("%08x", h.key_id)));
  return out;
}

std::string FormatVerifiedStep(const VerifiedStep& s) {
  std::string out = absl::StrCat("VERIFIED step ", s.index, " (",
                                 StepKindName(s.kind), ") of trace ",
                                 s.trace_id, "\n");
  if (s.header.has_value()) {
    absl::StrAppend(&out, "  the trace header:\n",
                    FormatTraceHeader(*s.header, "    "));
  } else {
    absl::StrAppend(&out, "  text: ", StepTextForTerminal(s.text, "        "),
                    "\n");
    absl::StrAppend(&out, "  tokens: ", s.token_count, ", produced ",
                    s.start_ms, "-", s.end_ms, " ms after the trace start",
                    s.has_fingerprint ? ", with an execution fingerprint" : "",
                    "\n");
  }
  absl::StrAppend(&out, "  included in the trace checkpoint of size ",
                  s.checkpoint_size,
                  s.checkpoint_final ? " (final: the sealed trace)"
                                     : " (not final: the trace was still open)",
                  ", signed by ", s.key, "\n");
  if (s.log.has_value()) {
    absl::StrAppend(&out, "  log inclusion: the trace is leaf ",
                    s.log->leaf_index, " of the log checkpoint of size ",
                    s.log->log_size, " (", EscapeForTerminal(s.log->log_origin),
                    "), signed by the same key\n");
  } else {
    absl::StrAppend(&out,
                    "  log inclusion: not in this bundle (the trace was not "
                    "yet integrated into the log when it was exported)\n");
  }
  if (s.promise_verified) {
    absl::StrAppend(&out,
                    "  inclusion promise: signed and about this trace's final "
                    "checkpoint\n");
  }
  if (s.anchor.has_value()) {
    absl::StrAppend(&out, "  chain anchor (not checked offline): chain ",
                    EscapeForTerminal(s.anchor->chain_id), ", tx ",
                    EscapeForTerminal(s.anchor->tx_hash), ", block ",
                    s.anchor->block_number, "\n");
  }
  return out;
}

std::string VerifiedStepToJson(const VerifiedStep& s) {
  nlohmann::json j;
  j["verified"] = true;
  j["trace_id"] = s.trace_id;
  j["trace_origin"] = s.trace_origin;
  j["index"] = s.index;
  j["kind"] = Str(StepKindName(s.kind));
  if (s.header.has_value()) {
    j["header"] = HeaderToJson(*s.header);
  } else {
    j["text"] = s.text;
    j["tokens"] = s.token_count;
    j["start_ms"] = s.start_ms;
    j["end_ms"] = s.end_ms;
    j["has_fingerprint"] = s.has_fingerprint;
  }
  j["checkpoint_size"] = s.checkpoint_size;
  j["checkpoint_final"] = s.checkpoint_final;
  j["key"] = s.key;
  if (s.log.has_value()) {
    j["log"] = {{"origin", s.log->log_origin},
                {"leaf_index", s.log->leaf_index},
                {"size", s.log->log_size}};
  } else {
    j["log"] = nullptr;
  }
  j["promise_verified"] = s.promise_verified;
  if (s.anchor.has_value()) {
    j["anchor"] = {{"chain_id", s.anchor->chain_id},
                   {"contract_address", s.anchor->contract_address},
                   {"tx_hash", s.anchor->tx_hash},
                   {"block_number", s.anchor->block_number},
                   {"checked", false}};
  }
  // Invalid UTF-8 cannot reach here (the record decoder rejects it), but be
  // safe: replace rather than throw.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace stepproof::clients
