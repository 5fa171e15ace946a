// make_vectors: writes the provenance test vectors (docs/FORMAT.md, "Test
// vectors") into a directory: a fixed key (RFC 8032 TEST 1 seed), a fixed
// 3-record trace (header, reasoning, answer) with fixed salts and times, its
// encodings, leaf hashes, root and signed checkpoints, a 3-leaf global log
// holding the trace's final checkpoint, the inclusion promise, and one proof
// bundle (plus one for the header record). Everything is deterministic (Ed25519 signatures are), so re-running
// it reproduces the committed files byte for byte.
//
// The values are checked independently by clients/python/stepproof_verify.py
// (its own encoder, hashing and Ed25519), registered as a ctest.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "inference/cli/help.h"
#include "merkle/compact_range.h"
#include "merkle/hash.h"
#include "merkle/proof_builder.h"
#include "provenance/bundle.h"
#include "provenance/checkpoint.h"
#include "provenance/promise.h"
#include "provenance/signer.h"
#include "provenance/trace_builder.h"
#include "provenance/verifier.h"

ABSL_FLAG(std::string, out, "tests/provenance/vectors",
          "directory to write the vector files into (must exist)");

namespace sp = stepproof::provenance;
namespace mk = stepproof::merkle;
using Json = nlohmann::ordered_json;

namespace {

constexpr char kSeedHex[] =
    "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
constexpr char kLogOrigin[] = "log.stepproof.example";
constexpr char kTraceId[] = "000102030405060708090a0b0c0d0e0f";
constexpr int64_t kStartUnixMs = 1767323045678;  // 2026-01-02T03:04:05.678Z
constexpr int64_t kSubmittedUnixMs = 1767323046000;

std::string Hex(absl::string_view s) { return absl::BytesToHexString(s); }
std::string Hex(const mk::Hash& h) {
  return Hex(absl::string_view(reinterpret_cast<const char*>(h.data()), 32));
}
mk::Hash Fill(uint8_t b) {
  mk::Hash h;
  h.fill(b);
  return h;
}

bool Write(const std::string& path, const std::string& data) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << data;
  return static_cast<bool>(f);
}

int Fail(const absl::Status& s) {
  std::cerr << "make_vectors: " << s << "\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Writes the StepProof provenance test vectors.\nUsage: make_vectors "
      "[--out DIR]");
  if (stepproof::AnswerHelp(argc, argv, "make_vectors.")) return 0;
  absl::ParseCommandLine(argc, argv);
  const std::string out = absl::GetFlag(FLAGS_out);

  std::string seed = absl::HexStringToBytes(kSeedHex);
  auto signer = sp::Signer::FromSeed(
      kLogOrigin, absl::MakeConstSpan(
                      reinterpret_cast<const uint8_t*>(seed.data()), 32));
  if (!signer.ok()) return Fail(signer.status());

  sp::TraceHeader header;
  header.model_digest = Fill(0x11);
  header.tokenizer_digest = Fill(0x22);
  header.model_name = "stepproof-tiny-arith";
  header.sampling.sampler = "stepproof.sampler/v1";
  header.sampling.greedy = false;
  header.sampling.temperature = 0.6f;
  header.sampling.top_p = 0.95f;
  header.sampling.top_k = 40;
  header.sampling.seed = 42;
  header.sampling.max_new_tokens = 256;
  header.prompt = "What is 2 + 3?";
  header.backend = "cpu";
  header.device = "x86-64";
  header.start_unix_ms = kStartUnixMs;
  header.key_name = signer->key_name();
  header.key_id = signer->key_id();

  // Salts: 32 bytes of 0xa0 for the header, 0xa1 and 0xa2 for the steps.
  uint8_t next_salt = 0xa0;
  auto salts = [&](absl::Span<uint8_t> s) {
    std::fill(s.begin(), s.end(), next_salt++);
  };
  auto builder = sp::TraceBuilder::Start(kLogOrigin, kTraceId, header,
                                         &*signer, salts);
  if (!builder.ok()) return Fail(builder.status());

  sp::StepRecord step1;
  step1.kind = sp::StepKind::kReasoning;
  step1.start_ms = 12;
  step1.end_ms = 250;
  step1.text = "Add 2 and 3 \xe2\x86\x92 5.";  // "→": a non-ASCII character
  step1.token_ids = {2212, 220, 17, 323, 220, 18};
  step1.logprobs = std::vector<float>{-0.5f, -0.25f, -1.0f, -0.125f, 0.0f,
                                      -2.0f};
  step1.fingerprint = std::string("\x01\x02\x03\x04\xfe\xff", 6);
  sp::StepRecord step2;
  step2.kind = sp::StepKind::kAnswer;
  step2.start_ms = 250;
  step2.end_ms = 400;
  step2.text = "2 + 3 = 5";
  step2.token_ids = {17, 488, 220, 18, 284, 220, 20};
  for (const sp::StepRecord& s : {step1, step2}) {
    auto a = builder->AppendStep(s);
    if (!a.ok()) return Fail(a.status());
  }
  auto final_note = builder->Finish();
  if (!final_note.ok()) return Fail(final_note.status());

  // The global log: two placeholder leaves, then this trace's final note.
  std::vector<std::string> log_leaves = {"placeholder log leaf 0\n",
                                         "placeholder log leaf 1\n",
                                         *final_note};
  mk::CompactRange log_range;
  mk::InMemoryNodeStore log_nodes;
  for (const std::string& leaf : log_leaves) {
    log_range.Append(mk::HashLeaf(leaf),
                     [&](const mk::NodeId& id, const mk::Hash& h) {
                       log_nodes.Put(id, h);
                     });
  }
  sp::Checkpoint log_cp;
  log_cp.origin = kLogOrigin;
  log_cp.size = log_range.size();
  log_cp.root = log_range.Root();
  auto log_note = sp::SignNote(log_cp.Marshal(), *signer);
  if (!log_note.ok()) return Fail(log_note.status());
  auto log_proof = mk::MakeInclusionProof(log_nodes, 2, log_range.size());
  if (!log_proof.ok()) return Fail(log_proof.status());

  auto promise = sp::MakePromise(kLogOrigin, *final_note, kSubmittedUnixMs, 60);
  if (!promise.ok()) return Fail(promise.status());
  auto promise_note = sp::SignPromise(*promise, *signer);
  if (!promise_note.ok()) return Fail(promise_note.status());

  // The bundle for step 1 with every optional part.
  auto bundle = builder->MakeBundle(1);
  if (!bundle.ok()) return Fail(bundle.status());
  bundle->log = sp::LogInclusion{2, *log_proof, *log_note};
  bundle->promise = *promise_note;
  bundle->anchor = sp::ChainAnchor{
      "31337", "0x5fbdb2315678afecb367f032d93f642f64180aa3",
      "0x" + std::string(64, 'a'), 7};
  if (auto s = sp::VerifyBundle(*bundle, signer->verifier()); !s.ok()) {
    return Fail(s);
  }
  const std::string bundle_json = sp::BundleToJson(*bundle);
  // The header record's bundle (trace inclusion only).
  auto header_bundle = builder->MakeBundle(0);
  if (!header_bundle.ok()) return Fail(header_bundle.status());
  if (auto s = sp::VerifyBundle(*header_bundle, signer->verifier()); !s.ok()) {
    return Fail(s);
  }

  // The tampered copy: one character of step 1's text changed ("5" -> "6").
  std::string tampered = bundle_json;
  size_t at = tampered.find("\\u2192 5.");
  if (at == std::string::npos) at = tampered.find("\xe2\x86\x92 5.");
  if (at == std::string::npos) {
    return Fail(absl::InternalError("step text not found in bundle"));
  }
  size_t five = tampered.find('5', at);
  tampered[five] = '6';

  Json v;
  v["description"] =
      "StepProof provenance test vectors (docs/FORMAT.md). Generated by "
      "tests/provenance/make_vectors.cc; checked independently by "
      "clients/python/stepproof_verify.py --vectors.";
  Json key;
  key["seed"] = kSeedHex;
  key["name"] = signer->key_name();
  key["public_key"] = Hex(absl::string_view(
      reinterpret_cast<const char*>(signer->public_key().data()), 32));
  key["key_id"] = absl::StrFormat("%08x", signer->key_id());
  key["verifier_key"] = signer->verifier_key();
  v["key"] = key;
  v["log_origin"] = kLogOrigin;
  v["trace_id"] = kTraceId;
  Json records = Json::array();
  for (uint64_t i = 0; i < builder->size(); ++i) {
    auto b = builder->MakeBundle(i);
    if (!b.ok()) return Fail(b.status());
    Json r;
    r["fields"] = Json::parse(sp::BundleToJson(*b))["record"];
    r["encoding"] = Hex(builder->appended()[i].encoded_record);
    r["leaf_hash"] = Hex(builder->appended()[i].leaf_hash);
    records.push_back(r);
  }
  v["records"] = records;
  v["root"] = Hex(builder->root());
  Json cps = Json::array();
  for (uint64_t n = 1; n <= builder->size(); ++n) {
    cps.push_back(*builder->checkpoint(n));
  }
  v["checkpoints"] = cps;
  v["final_checkpoint"] = *final_note;
  Json cons = Json::array();
  for (uint64_t n = 1; n < builder->size(); ++n) {
    auto p = builder->ConsistencyProof(n, builder->size());
    if (!p.ok()) return Fail(p.status());
    Json c;
    c["from_size"] = n;
    c["to_size"] = builder->size();
    Json hs = Json::array();
    for (const mk::Hash& h : *p) hs.push_back(Hex(h));
    c["proof"] = hs;
    cons.push_back(c);
  }
  v["consistency_proofs"] = cons;
  Json log;
  Json leaves = Json::array();
  for (const std::string& l : log_leaves) leaves.push_back(Hex(l));
  log["leaves"] = leaves;
  log["root"] = Hex(log_range.Root());
  log["checkpoint"] = *log_note;
  log["trace_leaf_index"] = 2;
  Json lp = Json::array();
  for (const mk::Hash& h : *log_proof) lp.push_back(Hex(h));
  log["inclusion_proof"] = lp;
  v["log"] = log;
  v["promise"] = *promise_note;

  const std::string dir = out + "/";
  if (!Write(dir + "vectors.json", v.dump(2) + "\n") ||
      !Write(dir + "bundle.json", bundle_json) ||
      !Write(dir + "bundle_header.json", sp::BundleToJson(*header_bundle)) ||
      !Write(dir + "bundle_tampered.json", tampered) ||
      !Write(dir + "verifier_key.txt", signer->verifier_key() + "\n")) {
    std::cerr << "make_vectors: cannot write into " << out << "\n";
    return 1;
  }
  std::cout << "wrote vectors.json, bundle.json, bundle_header.json, "
               "bundle_tampered.json, "
               "verifier_key.txt into "
            << out << "\n";
  return 0;
}
