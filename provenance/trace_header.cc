#include "provenance/trace_header.h"

#include <bit>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "provenance/byte_codec.h"
#include "provenance/rfc3339.h"
#include "provenance/verifier_key.h"

namespace stepproof::provenance {
namespace {

constexpr absl::string_view kWhat = "trace header";
constexpr uint8_t kPromptDisclosed = 0;
constexpr uint8_t kPromptWithheld = 1;
// Years 0000..9999, the range RFC 3339's four-digit year can write.
constexpr int64_t kMinUnixMs = -62167219200000;  // 0000-01-01T00:00:00.000Z
constexpr int64_t kMaxUnixMs = 253402300799999;  // 9999-12-31T23:59:59.999Z

absl::string_view AsView(const merkle::Hash& h) {
  return absl::string_view(reinterpret_cast<const char*>(h.data()), h.size());
}

absl::Status Bad(absl::string_view field, absl::string_view problem) {
  return absl::InvalidArgumentError(
      absl::StrCat(kWhat, ": ", field, ": ", problem));
}

absl::Status CheckString(absl::string_view field, absl::string_view s,
                         size_t max_len, bool allow_empty) {
  if (s.size() > max_len) {
    return Bad(field, absl::StrCat("length ", s.size(), " exceeds the limit of ",
                                   max_len, " bytes"));
  }
  if (!allow_empty && s.empty()) return Bad(field, "must not be empty");
  if (!IsValidUtf8(s)) return Bad(field, "not valid UTF-8");
  return absl::OkStatus();
}

}  // namespace

bool operator==(const TraceHeader& a, const TraceHeader& b) {
  auto fbits = [](float f) { return std::bit_cast<uint32_t>(f); };
  return a.model_digest == b.model_digest &&
         a.tokenizer_digest == b.tokenizer_digest &&
         a.model_name == b.model_name && a.sampling.sampler == b.sampling.sampler &&
         a.sampling.greedy == b.sampling.greedy &&
         fbits(a.sampling.temperature) == fbits(b.sampling.temperature) &&
         fbits(a.sampling.top_p) == fbits(b.sampling.top_p) &&
         a.sampling.top_k == b.sampling.top_k &&
         a.sampling.seed == b.sampling.seed &&
         a.sampling.max_new_tokens == b.sampling.max_new_tokens &&
         a.prompt == b.prompt && a.prompt_commitment == b.prompt_commitment &&
         a.backend == b.backend && a.device == b.device &&
         a.start_unix_ms == b.start_unix_ms && a.key_name == b.key_name &&
         a.key_id == b.key_id;
}

merkle::Hash PromptCommitment(const std::array<uint8_t, 32>& salt,
                              absl::string_view prompt) {
  merkle::Sha256 sha;
  return sha.Digest(
      salt, absl::Span<const uint8_t>(
                reinterpret_cast<const uint8_t*>(prompt.data()), prompt.size()));
}

absl::Status ValidateTraceHeader(const TraceHeader& h) {
  if (auto s = CheckString("model_name", h.model_name, kMaxHeaderStringBytes,
                           /*allow_empty=*/false);
      !s.ok()) {
    return s;
  }
  if (auto s = CheckString("sampling.sampler", h.sampling.sampler,
                           kMaxHeaderStringBytes, false);
      !s.ok()) {
    return s;
  }
  if (!std::isfinite(h.sampling.temperature)) {
    return Bad("sampling.temperature", "must be finite");
  }
  if (!std::isfinite(h.sampling.top_p)) {
    return Bad("sampling.top_p", "must be finite");
  }
  if (h.prompt.has_value() == h.prompt_commitment.has_value()) {
    return Bad("prompt", "exactly one of prompt and prompt_commitment is set");
  }
  if (h.prompt.has_value()) {
    if (auto s = CheckString("prompt", *h.prompt, kMaxPromptBytes, true);
        !s.ok()) {
      return s;
    }
  }
  if (auto s = CheckString("backend", h.backend, kMaxHeaderStringBytes, false);
      !s.ok()) {
    return s;
  }
  if (auto s = CheckString("device", h.device, kMaxHeaderStringBytes, true);
      !s.ok()) {
    return s;
  }
  if (h.start_unix_ms < kMinUnixMs || h.start_unix_ms > kMaxUnixMs) {
    return Bad("start_time", "outside years 0000..9999");
  }
  if (h.key_name.size() > kMaxHeaderStringBytes || !IsValidKeyName(h.key_name)) {
    return Bad("key_name", "not a valid C2SP key name");
  }
  return absl::OkStatus();
}

std::string EncodeTraceHeader(const TraceHeader& h) {
  ByteWriter w;
  w.U8(kTraceHeaderVersion);
  w.Raw(AsView(h.model_digest));
  w.Raw(AsView(h.tokenizer_digest));
  w.Bytes(h.model_name);
  w.Bytes(h.sampling.sampler);
  w.U8(h.sampling.greedy ? 1 : 0);
  w.U32(std::bit_cast<uint32_t>(h.sampling.temperature));
  w.U32(std::bit_cast<uint32_t>(h.sampling.top_p));
  w.U32(h.sampling.top_k);
  w.U64(h.sampling.seed);
  w.U32(h.sampling.max_new_tokens);
  if (h.prompt.has_value()) {
    w.U8(kPromptDisclosed);
    w.Bytes(*h.prompt);
  } else {
    w.U8(kPromptWithheld);
    w.Raw(AsView(h.prompt_commitment.value_or(merkle::Hash{})));
  }
  w.Bytes(h.backend);
  w.Bytes(h.device);
  w.Bytes(FormatRfc3339Millis(h.start_unix_ms));
  w.Bytes(h.key_name);
  w.U32(h.key_id);
  return w.Take();
}

absl::StatusOr<TraceHeader> DecodeTraceHeader(absl::string_view bytes) {
  ByteReader r(bytes, kWhat);
  TraceHeader h;
#define SP_READ(var, expr)          \
  auto var = (expr);                \
  if (!var.ok()) return var.status()
  SP_READ(version, r.U8("version"));
  if (*version != kTraceHeaderVersion) {
    return r.Error("version", absl::StrCat("unsupported version ", *version));
  }
  SP_READ(model, r.Raw(32, "model_digest"));
  std::copy(model->begin(), model->end(), h.model_digest.begin());
  SP_READ(tok, r.Raw(32, "tokenizer_digest"));
  std::copy(tok->begin(), tok->end(), h.tokenizer_digest.begin());
  SP_READ(name, r.Bytes(kMaxHeaderStringBytes, "model_name"));
  h.model_name = std::string(*name);
  SP_READ(sampler, r.Bytes(kMaxHeaderStringBytes, "sampling.sampler"));
  h.sampling.sampler = std::string(*sampler);
  SP_READ(greedy, r.Flag("sampling.greedy"));
  h.sampling.greedy = *greedy;
  SP_READ(temp, r.U32("sampling.temperature"));
  h.sampling.temperature = std::bit_cast<float>(*temp);
  SP_READ(top_p, r.U32("sampling.top_p"));
  h.sampling.top_p = std::bit_cast<float>(*top_p);
  SP_READ(top_k, r.U32("sampling.top_k"));
  h.sampling.top_k = *top_k;
  SP_READ(seed, r.U64("sampling.seed"));
  h.sampling.seed = *seed;
  SP_READ(max_new, r.U32("sampling.max_new_tokens"));
  h.sampling.max_new_tokens = *max_new;
  SP_READ(mode, r.U8("prompt_mode"));
  if (*mode == kPromptDisclosed) {
    SP_READ(prompt, r.Bytes(kMaxPromptBytes, "prompt"));
    h.prompt = std::string(*prompt);
  } else if (*mode == kPromptWithheld) {
    SP_READ(c, r.Raw(32, "prompt_commitment"));
    merkle::Hash commitment;
    std::copy(c->begin(), c->end(), commitment.begin());
    h.prompt_commitment = commitment;
  } else {
    return r.Error("prompt_mode", absl::StrCat("unknown mode ", *mode,
                                               " (0 disclosed, 1 withheld)"));
  }
  SP_READ(backend, r.Bytes(kMaxHeaderStringBytes, "backend"));
  h.backend = std::string(*backend);
  SP_READ(device, r.Bytes(kMaxHeaderStringBytes, "device"));
  h.device = std::string(*device);
  SP_READ(start, r.Bytes(64, "start_time"));
  auto ms = ParseRfc3339Millis(*start);
  if (!ms.ok()) return r.Error("start_time", ms.status().message());
  h.start_unix_ms = *ms;
  SP_READ(key_name, r.Bytes(kMaxHeaderStringBytes, "key_name"));
  h.key_name = std::string(*key_name);
  SP_READ(key_id, r.U32("key_id"));
  h.key_id = *key_id;
#undef SP_READ
  if (auto s = r.Done(); !s.ok()) return s;
  if (auto s = ValidateTraceHeader(h); !s.ok()) return s;
  return h;
}

}  // namespace stepproof::provenance
