// Builds signed traces, bundles and log checkpoints for the clients/ tests
// with the real signing side (provenance::Signer, TraceBuilder) and the
// reference Merkle functions (merkle/tree.h): the audit code under test only
// ever sees what a server would hand out.
#ifndef STEPPROOF_TESTS_CLIENTS_TEST_TRACE_H_
#define STEPPROOF_TESTS_CLIENTS_TEST_TRACE_H_

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "clients/trace_file.h"
#include "merkle/hash.h"
#include "merkle/tree.h"
#include "provenance/bundle.h"
#include "provenance/checkpoint.h"
#include "provenance/note.h"
#include "provenance/promise.h"
#include "provenance/signer.h"
#include "provenance/trace_builder.h"

namespace stepproof::clients::testing {

inline constexpr char kLogOrigin[] = "stepproof.test/log";

inline provenance::Signer MakeSigner(uint8_t seed_byte,
                                     const std::string& name = kLogOrigin) {
  std::array<uint8_t, 32> seed;
  seed.fill(seed_byte);
  return *provenance::Signer::FromSeed(name, seed);
}

inline provenance::TraceHeader MakeHeader(const provenance::Signer& signer,
                                          const std::string& prompt) {
  provenance::TraceHeader h;
  h.model_digest = merkle::Sha256Of(std::string_view("weights"));
  h.tokenizer_digest = merkle::Sha256Of(std::string_view("tokenizer"));
  h.model_name = "test-model";
  h.sampling.seed = 42;
  h.sampling.max_new_tokens = 64;
  h.prompt = prompt;
  h.backend = "cpu";
  h.device = "test device";
  h.start_unix_ms = 1767225600000;  // 2026-01-01T00:00:00.000Z
  h.key_name = signer.key_name();
  h.key_id = signer.key_id();
  return h;
}

// A sealed trace with the given step texts (the last one is the answer).
struct BuiltTrace {
  std::string trace_id;
  std::vector<std::string> texts;  // texts[i] is leaf i + 1
  std::vector<provenance::Bundle> bundles;  // leaf order, header first
  std::string final_checkpoint;
  std::string promise;
};

inline BuiltTrace BuildTrace(const provenance::Signer& signer,
                             const std::string& trace_id,
                             const std::vector<std::string>& texts) {
  BuiltTrace out;
  out.trace_id = trace_id;
  out.texts = texts;
  uint8_t counter = 0;
  auto random = [&counter](absl::Span<uint8_t> bytes) {
    for (uint8_t& b : bytes) b = ++counter;
  };
  absl::StatusOr<provenance::TraceBuilder> builder =
      provenance::TraceBuilder::Start(kLogOrigin, trace_id,
                                      MakeHeader(signer, "What is 2 + 3?"),
                                      &signer, random);
  if (!builder.ok()) return out;
  for (size_t i = 0; i < texts.size(); ++i) {
    provenance::StepRecord step;
    step.kind = i + 1 == texts.size() ? provenance::StepKind::kAnswer
                                      : provenance::StepKind::kReasoning;
    step.text = texts[i];
    step.token_ids = {static_cast<uint32_t>(100 + i), 7};
    step.start_ms = 10 * i;
    step.end_ms = 10 * i + 5;
    if (!builder->AppendStep(step).ok()) return out;
  }
  out.final_checkpoint = *builder->Finish();
  for (uint64_t i = 0; i < builder->size(); ++i) {
    out.bundles.push_back(*builder->MakeBundle(i));
  }
  absl::StatusOr<provenance::InclusionPromise> promise =
      provenance::MakePromise(kLogOrigin, out.final_checkpoint,
                              1767225601000, 60);
  out.promise = *provenance::SignPromise(*promise, signer);
  return out;
}

// The trace file `stepproof generate --out` would write for `trace`.
inline TraceFile ToTraceFile(const BuiltTrace& trace) {
  TraceFile file;
  file.trace_id = trace.trace_id;
  file.prompt = "What is 2 + 3?";
  file.finish_reason = "end_of_sequence";
  file.answer = trace.texts.empty() ? "" : trace.texts.back();
  file.final_checkpoint = trace.final_checkpoint;
  file.promise = trace.promise;
  for (size_t i = 0; i < trace.bundles.size(); ++i) {
    TraceFileStep step;
    step.index = i;
    step.kind = i == 0 ? "header"
                       : (i == trace.texts.size() ? "answer" : "reasoning");
    step.text = i == 0 ? "" : trace.texts[i - 1];
    step.bundle_json = provenance::BundleToJson(trace.bundles[i]);
    file.steps.push_back(std::move(step));
  }
  return file;
}

// A signed log checkpoint over `leaves` (reference root).
inline std::string SignedLogCheckpoint(const provenance::Signer& signer,
                                       absl::Span<const merkle::Hash> leaves,
                                       const std::string& origin = kLogOrigin) {
  provenance::Checkpoint cp;
  cp.origin = origin;
  cp.size = leaves.size();
  cp.root = merkle::ReferenceRoot(leaves);
  return *provenance::SignNote(cp.Marshal(), signer);
}

inline std::vector<merkle::Hash> Leaves(const std::string& prefix, int n) {
  std::vector<merkle::Hash> out;
  for (int i = 0; i < n; ++i) {
    out.push_back(merkle::HashLeaf(std::string_view(absl::StrCat(prefix, i))));
  }
  return out;
}

}  // namespace stepproof::clients::testing

#endif  // STEPPROOF_TESTS_CLIENTS_TEST_TRACE_H_
