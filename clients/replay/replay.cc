#include "clients/replay/replay.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "inference/bpe_tokenizer.h"
#include "inference/gguf.h"
#include "inference/gguf_tokenizer.h"
#include "inference/model.h"
#include "inference/step_segmenter.h"
#include "merkle/hash.h"
#include "nlohmann/json.hpp"
#include "provenance/bundle.h"
#include "provenance/trace_header.h"

namespace stepproof::clients {
namespace {

namespace inf = stepproof::inference;
namespace prov = stepproof::provenance;

constexpr int64_t kReplayChunk = 64;


inf::SamplingParams ToParams(const prov::SamplingSettings& s) {
  inf::SamplingParams p;
  p.greedy = s.greedy;
  p.temperature = s.temperature;
  p.top_p = s.top_p;
  p.top_k = static_cast<int32_t>(s.top_k);
  p.seed = s.seed;
  return p;
}

std::string KindName(prov::StepKind kind) { return std::string(prov::StepKindName(kind)); }

// The engine and tokenizer of `path` (no hashing).
absl::Status LoadEngine(const std::string& path, const ReplayOptions& options, ReplayModel* m) {
  absl::StatusOr<inf::GgufFile> file = inf::GgufFile::Open(path);
  if (!file.ok()) return file.status();
  absl::StatusOr<inf::BpeTokenizer> tokenizer = inf::LoadTokenizer(*file);
  if (!tokenizer.ok()) return tokenizer.status();
  inf::ModelOptions model_options;
  model_options.threads = options.threads;
  model_options.allow_avx2 = options.allow_avx2;
  absl::StatusOr<std::unique_ptr<inf::Model>> model = inf::Model::Load(*std::move(file), model_options);
  if (!model.ok()) return model.status();
  m->path = path;
  m->model = *std::move(model);
  m->tokenizer = std::make_unique<inf::BpeTokenizer>(*std::move(tokenizer));
  return absl::OkStatus();
}

// `loaded`: a model loaded (and hashed) beforehand, or null to hash and load
// `model_path` here.
absl::StatusOr<ReplayReport> Replay(absl::Span<const prov::StepRecord> records, const std::string& model_path,
                                    ReplayModel* loaded, const ReplayOptions& options) {
  const absl::Time t0 = absl::Now();
  if (options.device != "cpu") {
    if (options.device == "cuda") {
      return absl::UnimplementedError("replay on cuda is not built in; use --device cpu (the CPU engine)");
    }
    return absl::InvalidArgumentError(absl::StrCat("unknown device \"", options.device, "\" (cpu or cuda)"));
  }
  if (records.empty() || records[0].kind != prov::StepKind::kHeader) {
    return absl::InvalidArgumentError("a trace starts with its header record (index 0)");
  }
  for (size_t i = 0; i < records.size(); ++i) {
    if (records[i].index != i) {
      return absl::InvalidArgumentError(absl::StrCat("record ", i, " has index ", records[i].index));
    }
    if (i > 0 && records[i].kind == prov::StepKind::kHeader) {
      return absl::InvalidArgumentError(absl::StrCat("record ", i, " is a second header"));
    }
  }
  absl::StatusOr<prov::TraceHeader> header = prov::DecodeTraceHeader(records[0].text);
  if (!header.ok()) return header.status();

  ReplayReport report;
  report.trace_id = records[0].trace_id;
  // Steps and their token ranges.
  std::vector<int32_t> generated;
  for (size_t i = 1; i < records.size(); ++i) {
    StepReplay step;
    step.index = records[i].index;
    step.kind = KindName(records[i].kind);
    step.first_token = static_cast<int64_t>(generated.size());
    step.tokens = static_cast<int64_t>(records[i].token_ids.size());
    if (step.tokens > 0) {
      for (int64_t c = step.first_token / inf::kFingerprintChunkTokens;
           c <= (step.first_token + step.tokens - 1) / inf::kFingerprintChunkTokens; ++c) {
        step.chunks.push_back(c);
      }
    } else {
      step.reasons.push_back("the step has no tokens");
    }
    for (uint32_t id : records[i].token_ids) generated.push_back(static_cast<int32_t>(id));
    report.steps.push_back(std::move(step));
  }
  report.generated_tokens = static_cast<int64_t>(generated.size());
  auto fail_all = [&report](const std::string& why) {
    for (StepReplay& s : report.steps) s.reasons.push_back(why);
  };
  auto finish = [&report, t0]() {
    report.verified = !report.steps.empty();
    for (StepReplay& s : report.steps) {
      s.verified = s.reasons.empty();
      report.verified = report.verified && s.verified;
    }
    report.total_time = absl::Now() - t0;
    return report;
  };

  // 1. The model file is the one the header names.
  absl::StatusOr<merkle::Hash> digest = loaded != nullptr ? loaded->digest : ModelFileDigest(model_path);
  if (!digest.ok()) return digest.status();
  if (loaded == nullptr) report.digest_time = absl::Now() - t0;
  report.model_digest_matches = *digest == header->model_digest;
  if (!report.model_digest_matches) {
    fail_all(absl::StrCat("the model file's SHA-256 ", merkle::ToHex(*digest), " is not the header's ",
                          merkle::ToHex(header->model_digest)));
    return finish();
  }
  if (!header->prompt) {
    return absl::FailedPreconditionError("the trace withholds its prompt; replay needs the prompt text");
  }

  // The recorded fingerprints.
  std::optional<inf::ChunkFingerprint> claimed_prompt;
  std::map<int64_t, inf::ChunkFingerprint> claimed_chunks;
  int64_t expected_chunk = 0;
  for (size_t i = 1; i < records.size(); ++i) {
    StepReplay& step = report.steps[i - 1];
    if (!records[i].fingerprint) continue;
    absl::StatusOr<inf::StepFingerprint> fp = inf::DecodeStepFingerprint(*records[i].fingerprint);
    if (!fp.ok()) {
      step.reasons.push_back(absl::StrCat("its fingerprint does not decode: ", fp.status().message()));
      continue;
    }
    if (fp->prompt) {
      if (i == 1) {
        claimed_prompt = fp->prompt;
      } else {
        step.reasons.push_back("it carries a prompt fingerprint (only the first step may)");
      }
    }
    if (fp->chunks.empty()) continue;
    if (fp->first_chunk != expected_chunk) {
      step.reasons.push_back(absl::StrCat("it carries chunks from ", fp->first_chunk, "; chunk ", expected_chunk,
                                          " comes next"));
      continue;
    }
    for (const inf::ChunkFingerprint& c : fp->chunks) claimed_chunks[expected_chunk++] = c;
  }

  // 2. The model.
  ReplayModel own;
  if (loaded == nullptr) {
    if (absl::Status s = LoadEngine(model_path, options, &own); !s.ok()) return s;
    loaded = &own;
  }
  inf::Model* const model = loaded->model.get();
  const inf::BpeTokenizer* const tokenizer = loaded->tokenizer.get();
  const inf::ModelConfig& config = model->config();

  const std::string kernels = model->uses_avx2() ? "x86-64 avx2" : "portable";
  const bool cpu = header->backend == "cpu";
  const bool same_engine = cpu && header->device.compare(0, kernels.size() + 1, kernels + ",") == 0;
  report.rules = options.fingerprint_tolerance || options.token_tolerance
                     ? "the caller's tolerances"
                     : (same_engine ? "same-engine" : (cpu ? "cpu-other-kernels" : "cross-device"));
  const inf::FingerprintTolerance fp_tol = options.fingerprint_tolerance.value_or(
      same_engine ? inf::SameEngineTolerance() : (cpu ? inf::CpuKernelTolerance() : inf::CrossDeviceTolerance()));
  const TokenTolerance tok_tol =
      options.token_tolerance.value_or(same_engine ? TokenTolerance{} : TokenTolerance{0.05f, 1e-3});

  const std::vector<int32_t> prompt = tokenizer->Encode(*header->prompt, /*parse_special=*/true);
  const int64_t P = static_cast<int64_t>(prompt.size());
  const int64_t G = report.generated_tokens;
  report.prompt_tokens = P;
  if (P == 0) return absl::InvalidArgumentError("the header's prompt encodes to no tokens");
  if (P + G > config.context_length) {
    return absl::FailedPreconditionError(absl::StrCat("prompt (", P, ") + generated (", G,
                                                      ") tokens exceed the model's context of ",
                                                      config.context_length));
  }
  for (int64_t i = 0; i < G; ++i) {
    if (generated[i] < 0 || generated[i] >= config.n_vocab) {
      fail_all(absl::StrCat("generated token ", i, " (id ", generated[i], ") is outside the model's vocabulary"));
      return finish();
    }
  }
  std::vector<int32_t> sequence = prompt;
  sequence.insert(sequence.end(), generated.begin(), generated.end());
  // Step of each generated token.
  std::vector<size_t> step_of(G);
  for (size_t s = 0; s < report.steps.size(); ++s) {
    for (int64_t i = 0; i < report.steps[s].tokens; ++i) step_of[report.steps[s].first_token + i] = s;
  }

  // 3. One prefill over prompt + generated tokens.
  const int64_t E = config.n_embd;
  const int32_t n_vocab = config.n_vocab;
  const int32_t n_text = std::min(n_vocab, tokenizer->vocab_size());
  const inf::SamplingParams params = ToParams(header->sampling);
  if (absl::Status s = inf::ValidateSamplingParams(params, n_vocab); !s.ok()) {
    fail_all(absl::StrCat("the header's sampling settings are invalid: ", s.message()));
    return finish();
  }
  std::vector<std::vector<std::string>> token_reasons(report.steps.size());
  inf::KvCache cache(config, static_cast<int32_t>(P + G));
  inf::ForwardOutput out;
  std::vector<float> prompt_hidden;
  std::vector<float> chunk_rows;
  std::vector<int32_t> positions;
  std::vector<TokenCheck> checks;
  auto compare_chunk = [&](int64_t c) {
    ChunkReplay r;
    r.chunk = c;
    auto it = claimed_chunks.find(c);
    if (it != claimed_chunks.end()) {
      r.comparison = inf::CompareChunkFingerprint(it->second, chunk_rows, fp_tol);
      report.chunks.push_back(r);
    }
    chunk_rows.clear();
  };
  const absl::Time prefill_start = absl::Now();
  const int64_t n_total = P + G;
  for (int64_t begin = 0; begin < n_total; begin += kReplayChunk) {
    const int64_t end = std::min(n_total, begin + kReplayChunk);
    positions.resize(end - begin);
    for (int64_t t = begin; t < end; ++t) positions[t - begin] = static_cast<int32_t>(t);
    if (absl::Status s = model->Forward(absl::MakeConstSpan(sequence.data() + begin, end - begin), positions,
                                           cache, /*all_logits=*/true, &out, /*all_hidden=*/true);
        !s.ok()) {
      return s;
    }
    // The token checks of this chunk (each a sampler run over the whole
    // vocabulary: on a 152k vocabulary, as much work as a layer) are
    // independent: spread them over the model's threads.
    checks.assign(end - begin, TokenCheck{});
    model->pool().ParallelFor(end - begin, 1, [&](int64_t b, int64_t e) {
      for (int64_t t = begin + b; t < begin + e; ++t) {
        const int64_t i = t - P + 1;  // the generated token these logits choose
        if (i < 0 || i >= G) continue;
        float* logits = out.logits.data() + (t - begin) * n_vocab;
        for (int32_t v = n_text; v < n_vocab; ++v) logits[v] = -INFINITY;
        checks[t - begin] = CheckToken(absl::MakeConstSpan(logits, n_vocab), params, static_cast<uint64_t>(P + i),
                                       generated[i], tok_tol);
      }
    });
    for (int64_t t = begin; t < end; ++t) {
      const float* hidden = out.hidden.data() + (t - begin) * E;
      if (t < P) prompt_hidden.insert(prompt_hidden.end(), hidden, hidden + E);
      const int64_t i = t - P + 1;  // the generated token these logits choose
      if (i < 0 || i >= G) continue;
      const TokenCheck& check = checks[t - begin];
      if (!check.accepted) {
        ++report.tokens_rejected;
        token_reasons[step_of[i]].push_back(absl::StrCat("token ", i, " is ", generated[i], "; the sampler chooses ",
                                                         check.expected));
      }
      chunk_rows.insert(chunk_rows.end(), hidden, hidden + E);
      if ((i + 1) % inf::kFingerprintChunkTokens == 0 || i + 1 == G) compare_chunk(i / inf::kFingerprintChunkTokens);
    }
  }
  report.prefill_time = absl::Now() - prefill_start;
  if (claimed_prompt) {
    report.prompt = ChunkReplay{-1, inf::CompareChunkFingerprint(*claimed_prompt, prompt_hidden, fp_tol)};
  }

  // 4. Re-segmentation.
  inf::StepSegmenter segmenter(tokenizer, inf::SegmenterOptions{});
  std::vector<inf::Step> resegmented;
  for (int32_t id : generated) {
    for (inf::Step& s : segmenter.Push(id, 0.0f, absl::UnixEpoch())) resegmented.push_back(std::move(s));
  }
  for (inf::Step& s : segmenter.Finish(absl::UnixEpoch())) resegmented.push_back(std::move(s));

  // 5. Per step.
  std::map<int64_t, const ChunkReplay*> by_chunk;
  for (const ChunkReplay& c : report.chunks) by_chunk[c.chunk] = &c;
  for (size_t s = 0; s < report.steps.size(); ++s) {
    StepReplay& step = report.steps[s];
    const prov::StepRecord& record = records[s + 1];
    if (!report.prompt) {
      step.reasons.push_back("the trace carries no prompt fingerprint");
    } else if (!report.prompt->comparison.passed) {
      step.reasons.push_back(absl::StrFormat(
          "the prompt fingerprint does not match (%d/%d exponents, mantissa mean %.2f median %.1f)",
          report.prompt->comparison.exponent_matches, report.prompt->comparison.entries,
          report.prompt->comparison.mean_mantissa_diff, report.prompt->comparison.median_mantissa_diff));
    }
    for (int64_t c : step.chunks) {
      auto it = by_chunk.find(c);
      if (it == by_chunk.end()) {
        step.reasons.push_back(absl::StrCat("no fingerprint for chunk ", c, " (generated tokens ",
                                            c * inf::kFingerprintChunkTokens, "..)"));
      } else if (!it->second->comparison.passed) {
        const inf::FingerprintComparison& cmp = it->second->comparison;
        step.reasons.push_back(absl::StrFormat(
            "chunk %d fingerprint does not match (%d/%d exponents, mantissa mean %.2f median %.1f)", c,
            cmp.exponent_matches, cmp.entries, cmp.mean_mantissa_diff, cmp.median_mantissa_diff));
      }
    }
    for (std::string& r : token_reasons[s]) step.reasons.push_back(std::move(r));
    if (s >= resegmented.size()) {
      step.reasons.push_back("the tokens do not segment into this many steps");
      continue;
    }
    const inf::Step& mine = resegmented[s];
    const prov::StepKind kind =
        mine.kind == inf::StepKind::kAnswer ? prov::StepKind::kAnswer : prov::StepKind::kReasoning;
    std::vector<uint32_t> ids(mine.token_ids.begin(), mine.token_ids.end());
    if (kind != record.kind) step.reasons.push_back(absl::StrCat("the tokens make a ", KindName(kind), " step"));
    if (ids != record.token_ids) step.reasons.push_back("the step boundaries differ from the tokens' segmentation");
    if (mine.text != record.text) step.reasons.push_back("the text is not the decoded text of the tokens");
  }
  if (resegmented.size() > report.steps.size() && !report.steps.empty()) {
    report.steps.back().reasons.push_back("the tokens segment into more steps than the trace has");
  }
  return finish();
}

}  // namespace

ReplayModel::~ReplayModel() = default;

absl::StatusOr<merkle::Hash> ModelFileDigest(const std::string& model_path) {
  std::FILE* f = std::fopen(model_path.c_str(), "rb");
  if (f == nullptr) return absl::NotFoundError(absl::StrCat("cannot open model file ", model_path));
  merkle::Sha256 sha;
  std::vector<uint8_t> buf(1 << 20);
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), f)) > 0) sha.Update(absl::MakeConstSpan(buf.data(), n));
  const bool failed = std::ferror(f) != 0;
  std::fclose(f);
  if (failed) return absl::DataLossError(absl::StrCat("error reading model file ", model_path));
  return sha.Final();
}

absl::StatusOr<std::unique_ptr<ReplayModel>> LoadReplayModel(const std::string& model_path,
                                                             const ReplayOptions& options) {
  const absl::Time t0 = absl::Now();
  absl::StatusOr<merkle::Hash> digest = ModelFileDigest(model_path);
  if (!digest.ok()) return digest.status();
  auto m = std::make_unique<ReplayModel>();
  m->digest = *digest;
  m->digest_time = absl::Now() - t0;
  if (absl::Status s = LoadEngine(model_path, options, m.get()); !s.ok()) return s;
  return m;
}

absl::StatusOr<ReplayReport> ReplayTrace(absl::Span<const prov::StepRecord> records, const std::string& model_path,
                                         const ReplayOptions& options) {
  return Replay(records, model_path, nullptr, options);
}

absl::StatusOr<ReplayReport> ReplayTrace(absl::Span<const prov::StepRecord> records, ReplayModel& model,
                                         const ReplayOptions& options) {
  return Replay(records, model.path, &model, options);
}

absl::StatusOr<std::vector<prov::StepRecord>> RecordsFromTraceFile(const TraceFile& trace) {
  std::vector<prov::StepRecord> records;
  for (size_t i = 0; i < trace.steps.size(); ++i) {
    absl::StatusOr<prov::Bundle> bundle = prov::BundleFromJson(trace.steps[i].bundle_json);
    if (!bundle.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("steps[", i, "].bundle: ", bundle.status().message()));
    }
    absl::StatusOr<prov::StepRecord> record = prov::DecodeStepRecord(bundle->encoded_record);
    if (!record.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("steps[", i, "].bundle: ", record.status().message()));
    }
    records.push_back(*std::move(record));
  }
  return records;
}

std::string FormatReplayReport(const ReplayReport& report) {
  std::string out = absl::StrCat("replay of trace ", report.trace_id, "\n");
  absl::StrAppend(&out, "  model digest: ", report.model_digest_matches ? "matches the header" : "DIFFERS", "\n");
  if (!report.rules.empty()) absl::StrAppend(&out, "  rules: ", report.rules, "\n");
  absl::StrAppend(&out, "  tokens: ", report.prompt_tokens, " prompt, ", report.generated_tokens, " generated, ",
                  report.tokens_rejected, " rejected\n");
  if (report.prompt) {
    const auto& c = report.prompt->comparison;
    absl::StrAppendFormat(&out, "  prompt fingerprint: %s (%d/%d exponents, mantissa mean %.2f median %.1f)\n",
                          c.passed ? "matches" : "DIFFERS", c.exponent_matches, c.entries, c.mean_mantissa_diff,
                          c.median_mantissa_diff);
  }
  for (const StepReplay& s : report.steps) {
    absl::StrAppend(&out, s.verified ? "VERIFIED" : "NOT VERIFIED", " step ", s.index, " (", s.kind, ", tokens ",
                    s.first_token, "..", s.first_token + s.tokens - 1, ", chunks ",
                    s.chunks.empty() ? std::string("-") : absl::StrCat(s.chunks.front(), "..", s.chunks.back()), ")\n");
    for (const std::string& r : s.reasons) absl::StrAppend(&out, "    ", r, "\n");
  }
  absl::StrAppend(&out, report.verified ? "trace VERIFIED" : "trace NOT VERIFIED",
                  absl::StrFormat(" (digest %.2fs, prefill %.2fs, total %.2fs)\n",
                                  absl::ToDoubleSeconds(report.digest_time),
                                  absl::ToDoubleSeconds(report.prefill_time),
                                  absl::ToDoubleSeconds(report.total_time)));
  return out;
}

std::string ReplayReportToJson(const ReplayReport& report) {
  nlohmann::json j;
  j["trace_id"] = report.trace_id;
  j["verified"] = report.verified;
  j["model_digest_matches"] = report.model_digest_matches;
  j["rules"] = report.rules;
  j["prompt_tokens"] = report.prompt_tokens;
  j["generated_tokens"] = report.generated_tokens;
  j["tokens_rejected"] = report.tokens_rejected;
  auto cmp = [](const ChunkReplay& c) {
    return nlohmann::json{{"chunk", c.chunk},
                          {"passed", c.comparison.passed},
                          {"entries", c.comparison.entries},
                          {"exponent_matches", c.comparison.exponent_matches},
                          {"mean_mantissa_diff", c.comparison.mean_mantissa_diff},
                          {"median_mantissa_diff", c.comparison.median_mantissa_diff}};
  };
  if (report.prompt) j["prompt_fingerprint"] = cmp(*report.prompt);
  j["chunks"] = nlohmann::json::array();
  for (const ChunkReplay& c : report.chunks) j["chunks"].push_back(cmp(c));
  j["steps"] = nlohmann::json::array();
  for (const StepReplay& s : report.steps) {
    j["steps"].push_back({{"index", s.index},
                          {"kind", s.kind},
                          {"first_token", s.first_token},
                          {"tokens", s.tokens},
                          {"chunks", s.chunks},
                          {"verified", s.verified},
                          {"reasons", s.reasons}});
  }
  j["digest_seconds"] = absl::ToDoubleSeconds(report.digest_time);
  j["prefill_seconds"] = absl::ToDoubleSeconds(report.prefill_time);
  j["total_seconds"] = absl::ToDoubleSeconds(report.total_time);
  return j.dump();
}

}  // namespace stepproof::clients
