#include "provenance/bundle.h"

#include <bit>
#include <cmath>
#include <nlohmann/json.hpp>
#include <set>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "provenance/rfc3339.h"
#include "provenance/status_macros.h"
#include "provenance/trace_header.h"

namespace stepproof::provenance {
namespace {

using Json = nlohmann::ordered_json;

std::string Hex(absl::Span<const uint8_t> b) {
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(b.data()), b.size()));
}

Json HashList(const std::vector<merkle::Hash>& hashes) {
  Json a = Json::array();
  for (const merkle::Hash& h : hashes) a.push_back(Hex(h));
  return a;
}

Json HeaderToJson(const TraceHeader& h) {
  Json j;
  j["model_digest"] = Hex(h.model_digest);
  j["tokenizer_digest"] = Hex(h.tokenizer_digest);
  j["model_name"] = h.model_name;
  Json s;
  s["sampler"] = h.sampling.sampler;
  s["greedy"] = h.sampling.greedy;
  s["temperature"] = static_cast<double>(h.sampling.temperature);
  s["top_p"] = static_cast<double>(h.sampling.top_p);
  s["top_k"] = h.sampling.top_k;
  s["seed"] = h.sampling.seed;
  s["max_new_tokens"] = h.sampling.max_new_tokens;
  j["sampling"] = std::move(s);
  if (h.prompt.has_value()) {
    j["prompt"] = *h.prompt;
  } else {
    j["prompt_commitment"] = Hex(h.prompt_commitment.value_or(merkle::Hash{}));
  }
  j["backend"] = h.backend;
  j["device"] = h.device;
  j["start_time"] = FormatRfc3339Millis(h.start_unix_ms);
  j["key_name"] = h.key_name;
  j["key_id"] = absl::StrFormat("%08x", h.key_id);
  return j;
}

Json RecordToJson(const StepRecord& r) {
  Json j;
  j["version"] = r.version;
  j["trace_id"] = r.trace_id;
  j["index"] = r.index;
  j["kind"] = std::string(StepKindName(r.kind));
  j["start_ms"] = r.start_ms;
  j["end_ms"] = r.end_ms;
  if (r.kind == StepKind::kHeader) {
    auto h = DecodeTraceHeader(r.text);
    j["header"] = h.ok() ? HeaderToJson(*h) : Json(nullptr);
  } else {
    j["text"] = r.text;
  }
  j["token_ids"] = r.token_ids;
  if (r.logprobs.has_value()) {
    Json bits = Json::array();
    for (float f : *r.logprobs) bits.push_back(std::bit_cast<uint32_t>(f));
    j["logprob_bits"] = std::move(bits);
  }
  if (r.fingerprint.has_value()) {
    j["fingerprint"] = absl::Base64Escape(*r.fingerprint);
  }
  j["salt"] = Hex(r.salt);
  return j;
}

// Strict reader of one JSON object: typed getters that name the JSON path in
// errors, and a final check that no unknown member is present.
class ObjectReader {
 public:
  ObjectReader(const Json& j, std::string path) : j_(j), path_(std::move(path)) {}

  absl::Status CheckIsObject() const {
    if (!j_.is_object()) return Error("", "expected an object");
    return absl::OkStatus();
  }
  bool Has(const std::string& key) const { return j_.contains(key); }

  absl::StatusOr<const Json*> Member(const std::string& key) {
    seen_.insert(key);
    auto it = j_.find(key);
    if (it == j_.end()) return Error(key, "missing");
    return &*it;
  }
  absl::StatusOr<std::string> String(const std::string& key) {
    SP_ASSIGN_OR_RETURN(const Json* v, Member(key));
    if (!v->is_string()) return Error(key, "expected a string");
    return v->get<std::string>();
  }
  absl::StatusOr<uint64_t> Uint(const std::string& key, uint64_t max = UINT64_MAX) {
    SP_ASSIGN_OR_RETURN(const Json* v, Member(key));
    return UintValue(*v, key, max);
  }
  absl::StatusOr<bool> Bool(const std::string& key) {
    SP_ASSIGN_OR_RETURN(const Json* v, Member(key));
    if (!v->is_boolean()) return Error(key, "expected true or false");
    return v->get<bool>();
  }
  // A binary32 value written as a JSON number; must be exactly a float.
  absl::StatusOr<float> Float32(const std::string& key) {
    SP_ASSIGN_OR_RETURN(const Json* v, Member(key));
    if (!v->is_number()) return Error(key, "expected a number");
    double d = v->get<double>();
    float f = static_cast<float>(d);
    if (!std::isfinite(d) || static_cast<double>(f) != d) {
      return Error(key, "not exactly representable as an IEEE-754 binary32");
    }
    return f;
  }
  absl::StatusOr<merkle::Hash> Hash(const std::string& key) {
    SP_ASSIGN_OR_RETURN(std::string s, String(key));
    return HashValue(s, key);
  }
  absl::StatusOr<std::string> Base64(const std::string& key) {
    SP_ASSIGN_OR_RETURN(std::string s, String(key));
    std::string raw;
    if (!absl::Base64Unescape(s, &raw) || absl::Base64Escape(raw) != s) {
      return Error(key, "expected canonical padded base64");
    }
    return raw;
  }
  absl::StatusOr<std::vector<merkle::Hash>> HashArray(const std::string& key) {
    SP_ASSIGN_OR_RETURN(const Json* v, Member(key));
    if (!v->is_array()) return Error(key, "expected an array of hex hashes");
    std::vector<merkle::Hash> out;
    for (size_t i = 0; i < v->size(); ++i) {
      const Json& e = (*v)[i];
      std::string k = absl::StrCat(key, "[", i, "]");
      if (!e.is_string()) return Error(k, "expected a string");
      SP_ASSIGN_OR_RETURN(merkle::Hash h, HashValue(e.get<std::string>(), k));
      out.push_back(h);
    }
    return out;
  }
  absl::StatusOr<std::vector<uint32_t>> Uint32Array(const std::string& key) {
    SP_ASSIGN_OR_RETURN(const Json* v, Member(key));
    if (!v->is_array()) return Error(key, "expected an array of integers");
    std::vector<uint32_t> out;
    out.reserve(v->size());
    for (size_t i = 0; i < v->size(); ++i) {
      SP_ASSIGN_OR_RETURN(uint64_t x, UintValue((*v)[i], absl::StrCat(key, "[", i, "]"),
                                                UINT32_MAX));
      out.push_back(static_cast<uint32_t>(x));
    }
    return out;
  }
  std::string Path(const std::string& key) const {
    return path_.empty() ? key : key.empty() ? path_ : absl::StrCat(path_, ".", key);
  }
  absl::Status Error(const std::string& key, absl::string_view problem) const {
    return absl::InvalidArgumentError(
        absl::StrCat("bundle: ", Path(key), ": ", problem));
  }
  // INVALID_ARGUMENT naming the first member no getter asked for.
  absl::Status Finish() const {
    for (auto it = j_.begin(); it != j_.end(); ++it) {
      if (!seen_.count(it.key())) return Error(it.key(), "unknown field");
    }
    return absl::OkStatus();
  }

 private:
  absl::StatusOr<uint64_t> UintValue(const Json& v, const std::string& key,
                                     uint64_t max) const {
    if (!v.is_number_unsigned()) {
      return Error(key, "expected a non-negative integer");
    }
    uint64_t x = v.get<uint64_t>();
    if (x > max) return Error(key, absl::StrCat("exceeds ", max));
    return x;
  }
  absl::StatusOr<merkle::Hash> HashValue(const std::string& s,
                                         const std::string& key) const {
    bool ok = s.size() == 64;
    for (char c : s) ok = ok && ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
    if (!ok) return Error(key, "expected 64 lowercase hex characters");
    std::string raw = absl::HexStringToBytes(s);
    merkle::Hash h;
    std::copy(raw.begin(), raw.end(), h.begin());
    return h;
  }

  const Json& j_;
  std::string path_;
  std::set<std::string> seen_;
};

absl::StatusOr<TraceHeader> HeaderFromJson(const Json& j, const std::string& path) {
  ObjectReader o(j, path);
  SP_RETURN_IF_ERROR(o.CheckIsObject());
  TraceHeader h;
  SP_ASSIGN_OR_RETURN(h.model_digest, o.Hash("model_digest"));
  SP_ASSIGN_OR_RETURN(h.tokenizer_digest, o.Hash("tokenizer_digest"));
  SP_ASSIGN_OR_RETURN(h.model_name, o.String("model_name"));
  SP_ASSIGN_OR_RETURN(const Json* sj, o.Member("sampling"));
  ObjectReader s(*sj, o.Path("sampling"));
  SP_RETURN_IF_ERROR(s.CheckIsObject());
  SP_ASSIGN_OR_RETURN(h.sampling.sampler, s.String("sampler"));
  SP_ASSIGN_OR_RETURN(h.sampling.greedy, s.Bool("greedy"));
  SP_ASSIGN_OR_RETURN(h.sampling.temperature, s.Float32("temperature"));
  SP_ASSIGN_OR_RETURN(h.sampling.top_p, s.Float32("top_p"));
  SP_ASSIGN_OR_RETURN(uint64_t top_k, s.Uint("top_k", UINT32_MAX));
  h.sampling.top_k = static_cast<uint32_t>(top_k);
  SP_ASSIGN_OR_RETURN(h.sampling.seed, s.Uint("seed"));
  SP_ASSIGN_OR_RETURN(uint64_t max_new, s.Uint("max_new_tokens", UINT32_MAX));
  h.sampling.max_new_tokens = static_cast<uint32_t>(max_new);
  SP_RETURN_IF_ERROR(s.Finish());
  bool has_prompt = o.Has("prompt"), has_commitment = o.Has("prompt_commitment");
  if (has_prompt == has_commitment) {
    return o.Error("prompt", "exactly one of prompt and prompt_commitment");
  }
  if (has_prompt) {
    SP_ASSIGN_OR_RETURN(h.prompt, o.String("prompt"));
  } else {
    SP_ASSIGN_OR_RETURN(h.prompt_commitment, o.Hash("prompt_commitment"));
  }
  SP_ASSIGN_OR_RETURN(h.backend, o.String("backend"));
  SP_ASSIGN_OR_RETURN(h.device, o.String("device"));
  SP_ASSIGN_OR_RETURN(std::string start, o.String("start_time"));
  auto ms = ParseRfc3339Millis(start);
  if (!ms.ok()) return o.Error("start_time", ms.status().message());
  h.start_unix_ms = *ms;
  SP_ASSIGN_OR_RETURN(h.key_name, o.String("key_name"));
  SP_ASSIGN_OR_RETURN(std::string key_id, o.String("key_id"));
  bool ok = key_id.size() == 8;
  for (char c : key_id) ok = ok && ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
  if (!ok) return o.Error("key_id", "expected 8 lowercase hex characters");
  h.key_id = static_cast<uint32_t>(std::stoul(key_id, nullptr, 16));
  SP_RETURN_IF_ERROR(o.Finish());
  return h;
}

absl::StatusOr<StepRecord> RecordFromJson(const Json& j) {
  ObjectReader o(j, "record");
  SP_RETURN_IF_ERROR(o.CheckIsObject());
  StepRecord r;
  SP_ASSIGN_OR_RETURN(uint64_t version, o.Uint("version", 255));
  r.version = static_cast<uint8_t>(version);
  SP_ASSIGN_OR_RETURN(r.trace_id, o.String("trace_id"));
  SP_ASSIGN_OR_RETURN(r.index, o.Uint("index"));
  SP_ASSIGN_OR_RETURN(std::string kind, o.String("kind"));
  auto k = StepKindFromName(kind);
  if (!k.ok()) return o.Error("kind", k.status().message());
  r.kind = *k;
  SP_ASSIGN_OR_RETURN(r.start_ms, o.Uint("start_ms"));
  SP_ASSIGN_OR_RETURN(r.end_ms, o.Uint("end_ms"));
  if (r.kind == StepKind::kHeader) {
    if (o.Has("text")) return o.Error("text", "a header record has \"header\", not \"text\"");
    SP_ASSIGN_OR_RETURN(const Json* hj, o.Member("header"));
    SP_ASSIGN_OR_RETURN(TraceHeader h, HeaderFromJson(*hj, o.Path("header")));
    // Reject what the header decoder would reject (e.g. an invalid key name),
    // so every bundle that parses also prints and re-parses (fuzz finding
    // tests/fuzz/corpus/bundle/finding_bundle_header_invalid_key_name.json).
    if (absl::Status s = ValidateTraceHeader(h); !s.ok()) {
      return o.Error("header", s.message());
    }
    r.text = EncodeTraceHeader(h);
  } else {
    if (o.Has("header")) return o.Error("header", "only the header record has \"header\"");
    SP_ASSIGN_OR_RETURN(r.text, o.String("text"));
  }
  SP_ASSIGN_OR_RETURN(r.token_ids, o.Uint32Array("token_ids"));
  if (o.Has("logprob_bits")) {
    SP_ASSIGN_OR_RETURN(std::vector<uint32_t> bits, o.Uint32Array("logprob_bits"));
    std::vector<float> lp;
    lp.reserve(bits.size());
    for (uint32_t b : bits) lp.push_back(std::bit_cast<float>(b));
    r.logprobs = std::move(lp);
  }
  if (o.Has("fingerprint")) {
    SP_ASSIGN_OR_RETURN(r.fingerprint, o.Base64("fingerprint"));
  }
  SP_ASSIGN_OR_RETURN(merkle::Hash salt, o.Hash("salt"));
  std::copy(salt.begin(), salt.end(), r.salt.begin());
  SP_RETURN_IF_ERROR(o.Finish());
  return r;
}

}  // namespace

std::string BundleToJson(const Bundle& b) {
  Json j;
  j["format"] = std::string(kBundleFormat);
  j["record"] = RecordToJson(b.record);
  j["encoded_record"] = absl::Base64Escape(b.encoded_record);
  j["leaf_index"] = b.leaf_index;
  j["inclusion_proof"] = HashList(b.inclusion_proof);
  j["trace_checkpoint"] = b.trace_checkpoint;
  if (b.log.has_value()) {
    Json l;
    l["leaf_index"] = b.log->leaf_index;
    l["inclusion_proof"] = HashList(b.log->proof);
    l["checkpoint"] = b.log->checkpoint;
    j["log"] = std::move(l);
  }
  if (b.promise.has_value()) j["promise"] = *b.promise;
  if (b.anchor.has_value()) {
    Json a;
    a["chain_id"] = b.anchor->chain_id;
    a["contract_address"] = b.anchor->contract_address;
    a["tx_hash"] = b.anchor->tx_hash;
    a["block_number"] = b.anchor->block_number;
    j["anchor"] = std::move(a);
  }
  // Invalid UTF-8 (only possible in an invalid record) is replaced rather
  // than thrown; such a bundle then fails verification.
  return j.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

absl::StatusOr<Bundle> BundleFromJson(absl::string_view text) {
  // Duplicate keys would make the meaning depend on the parser: reject them.
  std::vector<std::set<std::string>> keys;
  bool duplicate = false;
  std::string duplicate_key;
  Json::parser_callback_t cb = [&](int /*depth*/, Json::parse_event_t event,
                                   Json& parsed) {
    if (event == Json::parse_event_t::object_start) keys.emplace_back();
    if (event == Json::parse_event_t::object_end && !keys.empty()) keys.pop_back();
    if (event == Json::parse_event_t::key && !keys.empty() && parsed.is_string()) {
      if (!keys.back().insert(parsed.get<std::string>()).second && !duplicate) {
        duplicate = true;
        duplicate_key = parsed.get<std::string>();
      }
    }
    return true;
  };
  Json j = Json::parse(text.begin(), text.end(), cb, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return absl::InvalidArgumentError("bundle: not valid JSON");
  }
  if (duplicate) {
    return absl::InvalidArgumentError(
        absl::StrCat("bundle: duplicate key \"", duplicate_key, "\""));
  }
  ObjectReader o(j, "");
  SP_RETURN_IF_ERROR(o.CheckIsObject());
  SP_ASSIGN_OR_RETURN(std::string format, o.String("format"));
  if (format != kBundleFormat) {
    return o.Error("format", absl::StrCat("\"", format, "\" is not \"",
                                          kBundleFormat, "\""));
  }
  Bundle b;
  SP_ASSIGN_OR_RETURN(const Json* rj, o.Member("record"));
  SP_ASSIGN_OR_RETURN(b.record, RecordFromJson(*rj));
  SP_ASSIGN_OR_RETURN(b.encoded_record, o.Base64("encoded_record"));
  SP_ASSIGN_OR_RETURN(b.leaf_index, o.Uint("leaf_index"));
  SP_ASSIGN_OR_RETURN(b.inclusion_proof, o.HashArray("inclusion_proof"));
  SP_ASSIGN_OR_RETURN(b.trace_checkpoint, o.String("trace_checkpoint"));
  if (o.Has("log")) {
    SP_ASSIGN_OR_RETURN(const Json* lj, o.Member("log"));
    ObjectReader l(*lj, "log");
    SP_RETURN_IF_ERROR(l.CheckIsObject());
    LogInclusion log;
    SP_ASSIGN_OR_RETURN(log.leaf_index, l.Uint("leaf_index"));
    SP_ASSIGN_OR_RETURN(log.proof, l.HashArray("inclusion_proof"));
    SP_ASSIGN_OR_RETURN(log.checkpoint, l.String("checkpoint"));
    SP_RETURN_IF_ERROR(l.Finish());
    b.log = std::move(log);
  }
  if (o.Has("promise")) {
    SP_ASSIGN_OR_RETURN(b.promise, o.String("promise"));
  }
  if (o.Has("anchor")) {
    SP_ASSIGN_OR_RETURN(const Json* aj, o.Member("anchor"));
    ObjectReader a(*aj, "anchor");
    SP_RETURN_IF_ERROR(a.CheckIsObject());
    ChainAnchor anchor;
    SP_ASSIGN_OR_RETURN(anchor.chain_id, a.String("chain_id"));
    SP_ASSIGN_OR_RETURN(anchor.contract_address, a.String("contract_address"));
    SP_ASSIGN_OR_RETURN(anchor.tx_hash, a.String("tx_hash"));
    SP_ASSIGN_OR_RETURN(anchor.block_number, a.Uint("block_number"));
    SP_RETURN_IF_ERROR(a.Finish());
    b.anchor = std::move(anchor);
  }
  SP_RETURN_IF_ERROR(o.Finish());
  return b;
}

}  // namespace stepproof::provenance
