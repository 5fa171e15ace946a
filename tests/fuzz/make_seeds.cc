// Writes the generated part of the seed corpora (tests/fuzz/corpus/) with the
// project's own encoders: small GGUF files (GgufWriter), step records and
// trace headers (TraceBuilder, EncodeStepRecord), signed notes, checkpoints,
// promises and verifier keys (Signer), and bundles (TraceBuilder::MakeBundle).
// Deterministic: the vector key, fixed salts, fixed times. Not a test; built
// on demand:
//   cmake --build BUILD --target fuzz_make_seeds
//   BUILD/tests/fuzz_make_seeds tests/fuzz/corpus

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "byte_level.h"
#include "fuzz_keys.h"
#include "inference/gguf_writer.h"
#include "merkle/hash.h"
#include "provenance/bundle.h"
#include "provenance/checkpoint.h"
#include "provenance/note.h"
#include "provenance/promise.h"
#include "provenance/signer.h"
#include "provenance/step_record.h"
#include "provenance/trace_builder.h"
#include "provenance/trace_header.h"

namespace inf = stepproof::inference;
namespace sp = stepproof::provenance;
using stepproof::fuzz::Check;

namespace {

void Put(const std::filesystem::path& root, const std::string& target, const std::string& name, const std::string& bytes) {
  const auto dir = root / target;
  std::filesystem::create_directories(dir);
  std::ofstream out(dir / name, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  Check(static_cast<bool>(out), "seed file written");
}

template <typename T>
T Must(absl::StatusOr<T> v, const char* what) {
  if (!v.ok()) std::fprintf(stderr, "%s: %s\n", what, std::string(v.status().message()).c_str());
  Check(v.ok(), what);
  return *std::move(v);
}

void GgufSeeds(const std::filesystem::path& root) {
  const auto bt = stepproof::fuzz::ByteTexts();
  // Vocabulary-only file: the tokenizer keys a model file carries.
  inf::GgufWriter vocab;
  vocab.SetString("general.architecture", "qwen2");
  vocab.SetString("tokenizer.ggml.model", "gpt2");
  vocab.SetString("tokenizer.ggml.pre", "qwen2");
  std::vector<std::string> tokens(bt.begin(), bt.end());
  tokens.push_back("he");
  tokens.push_back(bt[' '] + "t");
  tokens.push_back("<think>");
  tokens.push_back("</think>");
  std::vector<int32_t> types(tokens.size(), 1);
  types[types.size() - 2] = 3;
  types[types.size() - 1] = 3;
  vocab.SetStringArray("tokenizer.ggml.tokens", tokens);
  vocab.SetInt32Array("tokenizer.ggml.token_type", types);
  vocab.SetStringArray("tokenizer.ggml.merges", std::vector<std::string>{"h e", bt[' '] + " t"});
  vocab.SetUint32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(tokens.size() - 1));
  vocab.SetInt32("tokenizer.ggml.bos_token_id", -1);
  Put(root, "gguf", "vocab_only.gguf", vocab.Serialize());

  // One tensor of each supported type, small shapes, plus scalar keys.
  inf::GgufWriter model;
  model.SetString("general.architecture", "qwen2");
  model.SetUint32("qwen2.block_count", 1);
  model.SetUint64("qwen2.context_length", 64);
  model.SetFloat32("qwen2.attention.layer_norm_rms_epsilon", 1e-6f);
  model.SetBool("general.flag", true);
  std::vector<float> v(256);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i % 17) / 8.0f - 1.0f;
  model.AddTensorFromFloats("f32", inf::TensorType::kF32, {4, 2}, absl::MakeSpan(v).subspan(0, 8));
  model.AddTensorFromFloats("f16", inf::TensorType::kF16, {8}, absl::MakeSpan(v).subspan(0, 8));
  model.AddTensorFromFloats("bf16", inf::TensorType::kBF16, {2, 2, 2}, absl::MakeSpan(v).subspan(0, 8));
  model.AddTensorFromFloats("q8_0", inf::TensorType::kQ8_0, {32}, absl::MakeSpan(v).subspan(0, 32));
  model.AddTensorFromFloats("q4_k", inf::TensorType::kQ4_K, {256}, v);
  model.AddTensorFromFloats("q6_k", inf::TensorType::kQ6_K, {256}, v);
  Put(root, "gguf", "tensors.gguf", model.Serialize());

  inf::GgufWriter aligned;
  aligned.SetAlignment(64);
  aligned.SetStringArray("a.strings", std::vector<std::string>{"x", "", "yz"});
  aligned.SetInt32Array("a.ints", std::vector<int32_t>{1, -2, 3});
  aligned.AddTensorFromFloats("t", inf::TensorType::kF32, {3}, absl::MakeSpan(v).subspan(0, 3));
  aligned.AddTensorFromFloats("u", inf::TensorType::kF32, {1, 1, 1, 2}, absl::MakeSpan(v).subspan(0, 2));
  Put(root, "gguf", "aligned64.gguf", aligned.Serialize());

  inf::GgufWriter empty;
  Put(root, "gguf", "empty_v3.gguf", empty.Serialize());
}

sp::TraceHeader Header(const sp::Signer& signer, bool withhold_prompt) {
  sp::TraceHeader h;
  h.model_digest.fill(0x11);
  h.tokenizer_digest.fill(0x22);
  h.model_name = "stepproof-tiny-arith";
  h.sampling.top_k = 40;
  h.sampling.seed = 42;
  h.sampling.max_new_tokens = 256;
  if (withhold_prompt) {
    std::array<uint8_t, 32> salt{};
    salt.fill(0x5a);
    h.prompt_commitment = sp::PromptCommitment(salt, "What is 2 + 3?");
  } else {
    h.prompt = "What is 2 + 3?";
  }
  h.backend = "cpu";
  h.device = "x86-64";
  h.start_unix_ms = 1767323045678;
  h.key_name = signer.key_name();
  h.key_id = signer.key_id();
  return h;
}

void ProvenanceSeeds(const std::filesystem::path& root) {
  const sp::Signer key = stepproof::fuzz::VectorSigner();
  const std::string seed2(32, '\x07');
  const sp::Signer other = Must(
      sp::Signer::FromSeed("other.example",
                           absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(seed2.data()), 32)),
      "second key");
  auto salts = [n = uint8_t{0xa0}](absl::Span<uint8_t> out) mutable {
    std::fill(out.begin(), out.end(), n++);
  };
  sp::TraceBuilder b = Must(sp::TraceBuilder::Start(stepproof::fuzz::kVectorKeyName,
                                                    "000102030405060708090a0b0c0d0e0f",
                                                    Header(key, false), &key, salts),
                            "trace start");
  sp::StepRecord s1;
  s1.kind = sp::StepKind::kReasoning;
  s1.start_ms = 12;
  s1.end_ms = 250;
  s1.text = "Add 2 and 3 \xe2\x86\x92 5.";
  s1.token_ids = {2212, 220, 17, 323, 220, 18};
  s1.logprobs = std::vector<float>{-0.5f, -0.25f, -1.0f, -0.125f, 0.0f, -2.0f};
  s1.fingerprint = std::string("\x01\x02\x03\x04\xfe\xff", 6);
  Must(b.AppendStep(s1), "step 1");
  sp::StepRecord s2;
  s2.kind = sp::StepKind::kAnswer;
  s2.start_ms = 250;
  s2.end_ms = 300;
  s2.text = "5";
  s2.token_ids = {20};
  Must(b.AppendStep(s2), "step 2");
  const std::string final_note = Must(b.Finish(), "finish");

  // Step records and trace headers.
  for (const auto& a : b.appended()) {
    Put(root, "step_record", "record_" + std::to_string(a.leaf_index), a.encoded_record);
  }
  const sp::StepRecord header_rec = Must(b.record(0), "header record");
  Put(root, "step_record", "trace_header", header_rec.text);
  sp::StepRecord withheld = sp::MakeHeaderRecord("ffeeddccbbaa99887766554433221100",
                                                 Header(key, true), sp::Salt{});
  Put(root, "step_record", "record_header_withheld", sp::EncodeStepRecord(withheld));

  // Notes: per-step and final trace checkpoints, a log checkpoint, a promise,
  // a note with two signatures, verifier keys, bare checkpoint text.
  Put(root, "note", "trace_checkpoint_1", b.appended()[1].signed_checkpoint);
  Put(root, "note", "trace_checkpoint_final", final_note);
  sp::Checkpoint log_cp;
  log_cp.origin = stepproof::fuzz::kVectorKeyName;
  log_cp.size = 5;
  log_cp.root.fill(0x42);
  const std::string log_note = Must(sp::SignNote(log_cp.Marshal(), key), "log note");
  Put(root, "note", "log_checkpoint", log_note);
  Put(root, "note", "checkpoint_text", log_cp.Marshal());
  const sp::InclusionPromise promise = Must(
      sp::MakePromise(stepproof::fuzz::kVectorKeyName, final_note, 1767323046000, 60), "promise");
  Put(root, "note", "promise", Must(sp::SignPromise(promise, key), "sign promise"));
  Put(root, "note", "promise_text", promise.Marshal());
  const std::string cosigned = Must(sp::SignNote(log_cp.Marshal(), other), "cosign");
  Put(root, "note", "two_signatures", cosigned + log_note.substr(log_note.rfind("\n\n") + 2));
  Put(root, "note", "verifier_key", key.verifier_key());
  Put(root, "note", "verifier_key_other", other.verifier_key());

  // Bundles: a reasoning step with log part and promise, the header, the answer.
  for (uint64_t i = 0; i < 3; ++i) {
    sp::Bundle bundle = Must(b.MakeBundle(i), "bundle");
    if (i == 1) {
      sp::LogInclusion log;
      log.leaf_index = 0;
      log.checkpoint = Must(sp::SignNote(
          [&] {
            sp::Checkpoint c;
            c.origin = stepproof::fuzz::kVectorKeyName;
            c.size = 1;
            c.root = stepproof::merkle::HashLeaf(std::string_view(final_note));
            return c.Marshal();
          }(),
          key), "log checkpoint of one");
      bundle.log = log;
      bundle.promise = Must(sp::SignPromise(promise, key), "sign promise");
    }
    Put(root, "bundle", "generated_" + std::to_string(i) + ".json", sp::BundleToJson(bundle));
  }
}

void TextSeeds(const std::filesystem::path& root) {
  Put(root, "tokenizer", "plain", "Hello, world! The answer is 42.\n");
  Put(root, "tokenizer", "think", "<|im_start|>user\nWhat is 2 + 3?<|im_end|>\n<think>\nAdd 2 and 3 \xe2\x86\x92 5.\n</think>\n\n5");
  Put(root, "tokenizer", "unicode", "caf\xc3\xa9 na\xc3\xafve \xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\x98\x80 it's   \t\r\n\n  x");
  Put(root, "tokenizer", "invalid_utf8", std::string("a\xc3\x28\xff\xfe\xe2\x82 \xf0\x9f\x98 <th</th", 20));
  Put(root, "tokenizer_data", "full_vocab", std::string("\x03\xff\x00\xff", 4) +
      "nhe\nnthe\nn\xc4\xa0the\nm" "h e\nmt he\nm\xc4\xa0 the\nc<think>\nc</think>\nu<tool>\nx<unused>\n"
      "sthe theory <think> then\\n</think>\nsthe\n");
  Put(root, "tokenizer_data", "missing_bytes", std::string("\x00\xff\xff\xff", 4) + "na\nnb\nnab\nmab\nsab\n");
  Put(root, "tokenizer_data", "bad_merge", std::string("\x01\xff\xff\xff", 4) + "mq z\nsqz\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2 || std::string(argv[1]) == "--help") {
    std::fprintf(stderr, "usage: %s CORPUS_ROOT\nWrites the generated fuzz seeds under CORPUS_ROOT/<target>/.\n",
                 argv[0]);
    return argc == 2 ? 0 : 2;
  }
  const std::filesystem::path root = argv[1];
  GgufSeeds(root);
  ProvenanceSeeds(root);
  TextSeeds(root);
  return 0;
}
