// stepproof-engine: run GGUF reasoning models on the CPU engine.
//
//   stepproof-engine info MODEL
//   stepproof-engine tokenize --model M TEXT
//   stepproof-engine generate --model M --prompt P [--raw] [--tokens "ID ..."]
//       [--greedy | --temperature T --top-p P --top-k K] [--seed N]
//       [--max-tokens N] [--ids] [--threads N] [--context N]
//   stepproof-engine bench --model M [--threads N] [--prompt-tokens N]
//       [--decode-tokens N]
//
// Flags may be written with dashes or underscores (--top-p == --top_p).

#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "inference/backend.h"
#include "inference/chat_template.h"
#include "inference/cli/help.h"
#include "inference/gguf.h"
#include "inference/gguf_tokenizer.h"
#include "inference/model.h"

ABSL_FLAG(std::string, model, "", "GGUF model file");
ABSL_FLAG(std::string, prompt, "", "generate: the user prompt (the R1 chat template is applied unless --raw)");
ABSL_FLAG(bool, raw, false, "generate: encode --prompt as is, without the chat template");
ABSL_FLAG(std::string, tokens, "", "generate: start from these token ids (space-separated) instead of --prompt");
ABSL_FLAG(bool, greedy, false, "generate: greedy decoding (argmax)");
ABSL_FLAG(double, temperature, 0.6, "generate: sampling temperature");
ABSL_FLAG(double, top_p, 0.95, "generate: nucleus sampling mass (written --top-p)");
ABSL_FLAG(int32_t, top_k, 0, "generate: keep only the K most likely tokens, 0 = off (written --top-k)");
ABSL_FLAG(uint64_t, seed, 0, "generate: sampling seed");
ABSL_FLAG(int32_t, max_tokens, 1024, "generate: most tokens to generate (written --max-tokens)");
ABSL_FLAG(bool, ids, false, "generate: also print the generated token ids");
ABSL_FLAG(int32_t, threads, 0, "threads, 0 = all cores");
ABSL_FLAG(int32_t, context, 0, "context length, 0 = the model's (capped at 4096)");
ABSL_FLAG(int32_t, prompt_tokens, 128, "bench: prompt length for the prefill measurement");
ABSL_FLAG(int32_t, decode_tokens, 32, "bench: tokens decoded for the decode measurement");

namespace stepproof::inference {
namespace {

constexpr char kUsage[] =
    "runs GGUF reasoning models on the CPU engine.\n"
    "usage:\n"
    "  stepproof-engine info MODEL\n"
    "  stepproof-engine tokenize --model M TEXT\n"
    "  stepproof-engine generate --model M --prompt P [--raw] [--tokens \"ID ID ...\"]\n"
    "      [--greedy | --temperature T --top-p P --top-k K] [--seed N] [--max-tokens N] [--ids]\n"
    "  stepproof-engine bench --model M [--threads N]\n";

int Fail(const absl::Status& s) {
  std::fprintf(stderr, "stepproof-engine: %s\n", std::string(s.ToString()).c_str());
  return 1;
}
int Fail(const std::string& message) {
  std::fprintf(stderr, "stepproof-engine: %s\n", message.c_str());
  return 2;
}

std::string Describe(const GgufValue& v) {
  switch (v.type) {
    case GgufValueType::kString: {
      std::string s(v.str.substr(0, 200));
      return absl::StrCat("\"", s, v.str.size() > 200 ? "...\"" : "\"");
    }
    case GgufValueType::kArray:
      return absl::StrCat("array[", v.array_count, "]",
                          v.array_type == GgufValueType::kString && !v.array_strings.empty()
                              ? absl::StrCat(" first \"", std::string(v.array_strings[0].substr(0, 40)), "\"")
                              : "");
    case GgufValueType::kFloat32:
    case GgufValueType::kFloat64: return absl::StrCat(v.f);
    case GgufValueType::kBool: return v.u ? "true" : "false";
    case GgufValueType::kUint64: return absl::StrCat(v.u);
    default: return absl::StrCat(v.i);
  }
}

int Info(const std::string& path) {
  absl::StatusOr<GgufFile> f = GgufFile::Open(path);
  if (!f.ok()) return Fail(f.status());
  std::printf("file: %s (%llu bytes, GGUF v%u, alignment %llu)\n", path.c_str(),
              static_cast<unsigned long long>(f->file_size()), f->version(),
              static_cast<unsigned long long>(f->alignment()));
  std::printf("metadata (%zu keys):\n", f->metadata().size());
  for (const auto& [key, value] : f->metadata()) std::printf("  %s = %s\n", key.c_str(), Describe(value).c_str());
  int64_t params = 0;
  uint64_t bytes = 0;
  std::map<std::string, int> types;
  for (const GgufTensor& t : f->tensors()) {
    params += t.n_elements;
    bytes += t.n_bytes;
    ++types[std::string(TensorTypeName(t.type))];
  }
  std::string type_list;
  for (const auto& [name, n] : types) absl::StrAppend(&type_list, type_list.empty() ? "" : ", ", name, " x", n);
  std::printf("tensors: %zu (%lld parameters, %llu bytes; %s)\n", f->tensors().size(),
              static_cast<long long>(params), static_cast<unsigned long long>(bytes), type_list.c_str());
  if (f->tensors().empty()) return 0;
  absl::StatusOr<ModelConfig> c = ReadModelConfig(*f);
  if (!c.ok()) return Fail(c.status());
  std::printf("model: %s, %d layers, hidden %d, ffn %d, heads %d (kv %d, dim %d), vocab %d, context %d, "
              "rope base %g, rms eps %g, %s, %s output\n",
              c->architecture.c_str(), c->n_layer, c->n_embd, c->n_ff, c->n_head, c->n_head_kv, c->head_dim,
              c->n_vocab, c->context_length, c->rope_freq_base, c->rms_eps, c->qkv_bias ? "qkv bias" : "no bias",
              c->tied_output ? "tied" : "separate");
  return 0;
}

int Tokenize(const std::vector<char*>& args) {
  const std::string path = absl::GetFlag(FLAGS_model);
  if (path.empty()) return Fail("tokenize needs --model");
  if (args.size() != 3) return Fail("tokenize needs exactly one TEXT argument");
  absl::StatusOr<GgufFile> f = GgufFile::Open(path);
  if (!f.ok()) return Fail(f.status());
  absl::StatusOr<BpeTokenizer> tok = LoadTokenizer(*f);
  if (!tok.ok()) return Fail(tok.status());
  std::printf("%s\n", absl::StrJoin(tok->Encode(args[2], /*parse_special=*/true), " ").c_str());
  return 0;
}

absl::StatusOr<std::vector<int32_t>> ParseIds(const std::string& text) {
  std::vector<int32_t> ids;
  for (absl::string_view piece : absl::StrSplit(text, absl::ByAnyChar(" ,\t\n"), absl::SkipEmpty())) {
    int32_t id;
    if (!absl::SimpleAtoi(piece, &id)) {
      return absl::InvalidArgumentError(absl::StrCat("--tokens: '", std::string(piece), "' is not a token id"));
    }
    ids.push_back(id);
  }
  if (ids.empty()) return absl::InvalidArgumentError("--tokens is empty");
  return ids;
}

absl::StatusOr<std::unique_ptr<Backend>> Open() {
  const std::string path = absl::GetFlag(FLAGS_model);
  if (path.empty()) return absl::InvalidArgumentError("--model is required");
  return OpenCpuBackend(path, CpuBackendOptions{absl::GetFlag(FLAGS_threads), absl::GetFlag(FLAGS_context)});
}

int Generate() {
  absl::StatusOr<std::unique_ptr<Backend>> backend = Open();
  if (!backend.ok()) return Fail(backend.status());
  const BpeTokenizer& tok = (*backend)->tokenizer();
  GenerationRequest req;
  if (!absl::GetFlag(FLAGS_tokens).empty()) {
    absl::StatusOr<std::vector<int32_t>> ids = ParseIds(absl::GetFlag(FLAGS_tokens));
    if (!ids.ok()) return Fail(ids.status());
    req.prompt_tokens = *ids;
  } else {
    const std::string prompt = absl::GetFlag(FLAGS_prompt);
    if (prompt.empty()) return Fail("generate needs --prompt or --tokens");
    req.prompt_tokens = tok.Encode(absl::GetFlag(FLAGS_raw) ? prompt : FormatR1Prompt("", prompt), true);
  }
  req.sampling.greedy = absl::GetFlag(FLAGS_greedy);
  req.sampling.temperature = static_cast<float>(absl::GetFlag(FLAGS_temperature));
  req.sampling.top_p = static_cast<float>(absl::GetFlag(FLAGS_top_p));
  req.sampling.top_k = absl::GetFlag(FLAGS_top_k);
  req.sampling.seed = absl::GetFlag(FLAGS_seed);
  req.max_tokens = absl::GetFlag(FLAGS_max_tokens);
  std::vector<int32_t> generated;
  bool in_answer = false;
  absl::StatusOr<GenerationResult> r = (*backend)->Generate(req, [&](const Step& step) {
    if (step.kind == StepKind::kAnswer && !in_answer) {
      in_answer = true;
      std::fputs("</think>", stdout);
    }
    std::fwrite(step.text.data(), 1, step.text.size(), stdout);
    std::fflush(stdout);
    generated.insert(generated.end(), step.token_ids.begin(), step.token_ids.end());
    return absl::OkStatus();
  });
  if (!r.ok()) return Fail(r.status());
  if (r->finish == FinishReason::kEndOfSequence) generated.push_back(tok.eos_id());
  std::printf("\n");
  if (absl::GetFlag(FLAGS_ids)) std::printf("ids: %s\n", absl::StrJoin(generated, " ").c_str());
  std::fflush(stdout);
  const double decode_s = absl::ToDoubleSeconds(r->decode_time);
  std::fprintf(stderr, "[%s; prompt %d tokens in %.3f s, generated %d tokens in %.3f s (%.2f tokens/s); %s]\n",
               std::string(FinishReasonName(r->finish)).c_str(), r->prompt_tokens,
               absl::ToDoubleSeconds(r->prefill_time), r->generated_tokens, decode_s,
               decode_s > 0 ? r->generated_tokens / decode_s : 0.0, (*backend)->device().device.c_str());
  return 0;
}

// Prefill and decode throughput of the model's forward pass alone.
int Bench() {
  const std::string path = absl::GetFlag(FLAGS_model);
  if (path.empty()) return Fail("bench needs --model");
  absl::StatusOr<GgufFile> f = GgufFile::Open(path);
  if (!f.ok()) return Fail(f.status());
  absl::StatusOr<std::unique_ptr<Model>> model = Model::Load(*std::move(f), ModelOptions{absl::GetFlag(FLAGS_threads), true});
  if (!model.ok()) return Fail(model.status());
  Model& m = **model;
  const int32_t n_prompt = absl::GetFlag(FLAGS_prompt_tokens);
  const int32_t n_decode = absl::GetFlag(FLAGS_decode_tokens);
  if (n_prompt < 1 || n_decode < 1) return Fail("--prompt-tokens and --decode-tokens must be >= 1");
  const int32_t n_ctx = n_prompt + n_decode;
  if (n_ctx > m.config().context_length) return Fail("prompt + decode tokens exceed the model's context");
  KvCache cache(m.config(), n_ctx);
  std::vector<int32_t> tokens(n_prompt), pos(n_prompt);
  for (int32_t i = 0; i < n_prompt; ++i) {
    tokens[i] = (i * 7919 + 13) % m.config().n_vocab;
    pos[i] = i;
  }
  ForwardOutput out;
  const absl::Time t0 = absl::Now();
  for (int32_t b = 0; b < n_prompt; b += 64) {
    const int32_t e = std::min(n_prompt, b + 64);
    absl::Status s = m.Forward(absl::MakeConstSpan(tokens).subspan(b, e - b),
                               absl::MakeConstSpan(pos).subspan(b, e - b), cache, false, &out);
    if (!s.ok()) return Fail(s);
  }
  const absl::Time t1 = absl::Now();
  for (int32_t i = 0; i < n_decode; ++i) {
    const int32_t tok = (i * 31 + 7) % m.config().n_vocab, p = n_prompt + i;
    absl::Status s = m.Forward(absl::MakeConstSpan(&tok, 1), absl::MakeConstSpan(&p, 1), cache, false, &out);
    if (!s.ok()) return Fail(s);
  }
  const absl::Time t2 = absl::Now();
  const double prefill = n_prompt / absl::ToDoubleSeconds(t1 - t0);
  const double decode = n_decode / absl::ToDoubleSeconds(t2 - t1);
  std::printf("model %s: %lld params, %.1f MB of weights read per token; %d threads%s\n", path.c_str(),
              static_cast<long long>(m.n_params()), m.weight_bytes_per_token() / 1e6, m.threads(),
              m.uses_avx2() ? ", avx2" : ", portable");
  std::printf("prefill: %d tokens, %.2f tokens/s\n", n_prompt, prefill);
  std::printf("decode:  %d tokens, %.2f tokens/s (%.2f GB/s of weights)\n", n_decode, decode,
              decode * m.weight_bytes_per_token() / 1e9);
  return 0;
}

}  // namespace
}  // namespace stepproof::inference

int main(int argc, char** argv) {
  // Accept --top-p style spellings: dashes in a flag's name become underscores.
  std::vector<std::string> storage(argv, argv + argc);
  for (size_t i = 1; i < storage.size(); ++i) {
    std::string& a = storage[i];
    if (a == "--") break;
    if (a.rfind("--", 0) != 0) continue;
    const size_t end = a.find('=') == std::string::npos ? a.size() : a.find('=');
    for (size_t j = 2; j < end; ++j) {
      if (a[j] == '-') a[j] = '_';
    }
  }
  std::vector<char*> fixed;
  for (std::string& s : storage) fixed.push_back(s.data());
  absl::SetProgramUsageMessage(stepproof::inference::kUsage);
  absl::FlagsUsageConfig usage_config;
  auto ours = [](absl::string_view file) { return absl::StrContains(file, "inference/cli/"); };
  usage_config.contains_help_flags = ours;
  usage_config.contains_helpshort_flags = ours;
  absl::SetFlagsUsageConfig(usage_config);
  if (stepproof::AnswerHelp(argc, argv, "inference/cli/")) return 0;
  std::vector<char*> args = absl::ParseCommandLine(static_cast<int>(fixed.size()), fixed.data());
  using namespace stepproof::inference;
  if (args.size() < 2) {
    std::fprintf(stderr, "%s", kUsage);
    return 2;
  }
  const std::string cmd = args[1];
  if (cmd == "info") {
    if (args.size() != 3) return Fail("info needs exactly one MODEL argument");
    return Info(args[2]);
  }
  if (cmd == "tokenize") return Tokenize(args);
  if (cmd == "generate" || cmd == "bench") {
    if (args.size() != 2) return Fail(absl::StrCat(cmd, " takes no positional arguments (got '", args[2], "')"));
    return cmd == "generate" ? Generate() : Bench();
  }
  return Fail(absl::StrCat("unknown command '", cmd, "' (info, tokenize, generate, bench)"));
}
