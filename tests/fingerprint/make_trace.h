// Test and benchmark support: one generation turned into the step records
// that services/generation.cc commits (header record 0, then one record per
// step with its tokens, log-probabilities and fingerprint), without a ledger:
// the input replay (clients/replay) checks. Header-only; used by
// tests/fingerprint/replay_test.cc and bench/fingerprint/replay_bench.cc.
#ifndef STEPPROOF_TESTS_FINGERPRINT_MAKE_TRACE_H_
#define STEPPROOF_TESTS_FINGERPRINT_MAKE_TRACE_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "inference/backend.h"
#include "merkle/hash.h"
#include "provenance/step_record.h"
#include "provenance/trace_header.h"

namespace stepproof::testing {

struct MadeTrace {
  std::vector<provenance::StepRecord> records;
  inference::GenerationResult result;
};

// Generates from `prompt` (the templated prompt text; its tokens are
// `prompt_tokens` when given, else the backend's encoding of it) and returns
// the records, under a header that names `model_digest` and `model_name`.
inline absl::StatusOr<MadeTrace> MakeTrace(inference::Backend& backend, const merkle::Hash& model_digest,
                                           const std::string& model_name, const std::string& prompt,
                                           const std::vector<int32_t>* prompt_tokens,
                                           const inference::SamplingParams& sampling, int max_tokens) {
  namespace prov = ::stepproof::provenance;
  namespace inf = ::stepproof::inference;
  MadeTrace t;
  prov::TraceHeader h;
  h.model_digest = model_digest;
  h.model_name = model_name;
  h.sampling.greedy = sampling.greedy;
  h.sampling.temperature = sampling.temperature;
  h.sampling.top_p = sampling.top_p;
  h.sampling.top_k = static_cast<uint32_t>(sampling.top_k);
  h.sampling.seed = sampling.seed;
  h.sampling.max_new_tokens = static_cast<uint32_t>(max_tokens);
  h.prompt = prompt;
  h.backend = backend.device().backend;
  h.device = backend.device().device;
  h.start_unix_ms = 1700000000000;
  h.key_name = "test";
  prov::StepRecord header;
  header.trace_id = "000102030405060708090a0b0c0d0e0f";
  header.index = 0;
  header.kind = prov::StepKind::kHeader;
  header.text = prov::EncodeTraceHeader(h);
  t.records.push_back(header);
  inf::GenerationRequest req;
  req.prompt_tokens = prompt_tokens != nullptr ? *prompt_tokens : backend.tokenizer().Encode(prompt, true);
  req.sampling = sampling;
  req.max_tokens = max_tokens;
  absl::StatusOr<inf::GenerationResult> r = backend.Generate(req, [&](const inf::Step& s) {
    prov::StepRecord rec;
    rec.trace_id = header.trace_id;
    rec.index = t.records.size();
    rec.kind = s.kind == inf::StepKind::kAnswer ? prov::StepKind::kAnswer : prov::StepKind::kReasoning;
    rec.text = s.text;
    rec.token_ids.assign(s.token_ids.begin(), s.token_ids.end());
    rec.logprobs = s.logprobs;
    if (!s.fingerprint.empty()) rec.fingerprint = s.fingerprint;
    t.records.push_back(std::move(rec));
    return absl::OkStatus();
  });
  if (!r.ok()) return r.status();
  t.result = *r;
  return t;
}

}  // namespace stepproof::testing

#endif  // STEPPROOF_TESTS_FINGERPRINT_MAKE_TRACE_H_
