#include "provenance/step_record.h"

#include <bit>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "provenance/byte_codec.h"

namespace stepproof::provenance {
namespace {

constexpr absl::string_view kWhat = "step record";

absl::Status Bad(absl::string_view field, absl::string_view problem) {
  return absl::InvalidArgumentError(
      absl::StrCat(kWhat, ": ", field, ": ", problem));
}

bool BitsEqual(const std::optional<std::vector<float>>& a,
               const std::optional<std::vector<float>>& b) {
  if (a.has_value() != b.has_value()) return false;
  if (!a.has_value()) return true;
  if (a->size() != b->size()) return false;
  for (size_t i = 0; i < a->size(); ++i) {
    if (std::bit_cast<uint32_t>((*a)[i]) != std::bit_cast<uint32_t>((*b)[i])) {
      return false;
    }
  }
  return true;
}

}  // namespace

bool operator==(const StepRecord& a, const StepRecord& b) {
  return a.version == b.version && a.trace_id == b.trace_id &&
         a.index == b.index && a.kind == b.kind && a.start_ms == b.start_ms &&
         a.end_ms == b.end_ms && a.text == b.text &&
         a.token_ids == b.token_ids && BitsEqual(a.logprobs, b.logprobs) &&
         a.fingerprint == b.fingerprint && a.salt == b.salt;
}

absl::string_view StepKindName(StepKind kind) {
  switch (kind) {
    case StepKind::kHeader:
      return "header";
    case StepKind::kReasoning:
      return "reasoning";
    case StepKind::kAnswer:
      return "answer";
  }
  return "unknown";
}

absl::StatusOr<StepKind> StepKindFromName(absl::string_view name) {
  if (name == "header") return StepKind::kHeader;
  if (name == "reasoning") return StepKind::kReasoning;
  if (name == "answer") return StepKind::kAnswer;
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown step kind \"", name, "\" (header, reasoning or answer)"));
}

bool IsValidTraceId(absl::string_view id) {
  if (id.size() != 32) return false;
  for (char c : id) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

absl::Status ValidateStepRecord(const StepRecord& r) {
  if (r.version != kStepRecordVersion) {
    return Bad("version", absl::StrCat("unsupported version ", r.version));
  }
  if (!IsValidTraceId(r.trace_id)) {
    return Bad("trace_id", "must be 32 lowercase hex characters");
  }
  if (r.kind != StepKind::kHeader && r.kind != StepKind::kReasoning &&
      r.kind != StepKind::kAnswer) {
    return Bad("kind", absl::StrCat("unknown kind ", static_cast<int>(r.kind)));
  }
  if ((r.kind == StepKind::kHeader) != (r.index == 0)) {
    return Bad("kind", "the header is exactly the record at index 0");
  }
  if (r.start_ms > r.end_ms) return Bad("end_ms", "before start_ms");
  if (r.text.size() > kMaxTextBytes) {
    return Bad("text", absl::StrCat("length ", r.text.size(),
                                    " exceeds the limit of ", kMaxTextBytes,
                                    " bytes"));
  }
  if (r.token_ids.size() > kMaxTokens) {
    return Bad("token_ids", absl::StrCat(r.token_ids.size(),
                                         " tokens exceed the limit of ",
                                         kMaxTokens));
  }
  if (r.logprobs.has_value() && r.logprobs->size() != r.token_ids.size()) {
    return Bad("logprobs", absl::StrCat(r.logprobs->size(),
                                        " log-probabilities for ",
                                        r.token_ids.size(), " tokens"));
  }
  if (r.fingerprint.has_value() && r.fingerprint->size() > kMaxFingerprintBytes) {
    return Bad("fingerprint", absl::StrCat("length ", r.fingerprint->size(),
                                           " exceeds the limit of ",
                                           kMaxFingerprintBytes, " bytes"));
  }
  if (r.kind == StepKind::kHeader) {
    if (r.start_ms != 0 || r.end_ms != 0) {
      return Bad("start_ms", "the header record's times are 0");
    }
    if (!r.token_ids.empty() || r.logprobs.has_value() ||
        r.fingerprint.has_value()) {
      return Bad("token_ids",
                 "the header record has no tokens, log-probabilities or "
                 "fingerprint");
    }
    auto header = DecodeTraceHeader(r.text);
    if (!header.ok()) {
      return Bad("text", absl::StrCat("header payload: ",
                                      header.status().message()));
    }
  } else if (!IsValidUtf8(r.text)) {
    return Bad("text", "not valid UTF-8");
  }
  return absl::OkStatus();
}

std::string EncodeStepRecord(const StepRecord& r) {
  ByteWriter w;
  w.U8(r.version);
  // The trace id travels as its 16 raw bytes; an id that is not 32 hex
  // characters encodes as zeros (and fails validation).
  std::string raw = IsValidTraceId(r.trace_id) ? absl::HexStringToBytes(r.trace_id)
                                              : std::string(16, '\0');
  w.Raw(raw);
  w.U64(r.index);
  w.U8(static_cast<uint8_t>(r.kind));
  w.U64(r.start_ms);
  w.U64(r.end_ms);
  w.Bytes(r.text);
  w.U32(static_cast<uint32_t>(r.token_ids.size()));
  for (uint32_t t : r.token_ids) w.U32(t);
  w.U8(r.logprobs.has_value() ? 1 : 0);
  if (r.logprobs.has_value()) {
    for (size_t i = 0; i < r.token_ids.size(); ++i) {
      float f = i < r.logprobs->size() ? (*r.logprobs)[i] : 0.0f;
      w.U32(std::bit_cast<uint32_t>(f));
    }
  }
  w.U8(r.fingerprint.has_value() ? 1 : 0);
  if (r.fingerprint.has_value()) w.Bytes(*r.fingerprint);
  w.Raw(absl::string_view(reinterpret_cast<const char*>(r.salt.data()),
                          r.salt.size()));
  return w.Take();
}

absl::StatusOr<StepRecord> DecodeStepRecord(absl::string_view bytes) {
  ByteReader rd(bytes, kWhat);
  StepRecord r;
#define SP_READ(var, expr)          \
  auto var = (expr);                \
  if (!var.ok()) return var.status()
  SP_READ(version, rd.U8("version"));
  if (*version != kStepRecordVersion) {
    return rd.Error("version", absl::StrCat("unsupported version ", *version));
  }
  r.version = *version;
  SP_READ(tid, rd.Raw(16, "trace_id"));
  r.trace_id = absl::BytesToHexString(*tid);
  SP_READ(index, rd.U64("index"));
  r.index = *index;
  SP_READ(kind, rd.U8("kind"));
  if (*kind > static_cast<uint8_t>(StepKind::kAnswer)) {
    return rd.Error("kind", absl::StrCat("unknown kind ", *kind));
  }
  r.kind = static_cast<StepKind>(*kind);
  SP_READ(start, rd.U64("start_ms"));
  r.start_ms = *start;
  SP_READ(end, rd.U64("end_ms"));
  r.end_ms = *end;
  SP_READ(text, rd.Bytes(kMaxTextBytes, "text"));
  r.text = std::string(*text);
  SP_READ(ntok, rd.U32("token_ids"));
  if (*ntok > kMaxTokens) {
    return rd.Error("token_ids", absl::StrCat(*ntok, " tokens exceed the limit of ",
                                              kMaxTokens));
  }
  if (rd.remaining() / 4 < *ntok) {
    return rd.Error("token_ids", absl::StrCat("truncated (", *ntok,
                                              " tokens declared)"));
  }
  r.token_ids.reserve(*ntok);
  for (uint32_t i = 0; i < *ntok; ++i) {
    SP_READ(t, rd.U32("token_ids"));
    r.token_ids.push_back(*t);
  }
  SP_READ(has_lp, rd.Flag("logprobs"));
  if (*has_lp) {
    std::vector<float> lp;
    lp.reserve(*ntok);
    for (uint32_t i = 0; i < *ntok; ++i) {
      SP_READ(bits, rd.U32("logprobs"));
      lp.push_back(std::bit_cast<float>(*bits));
    }
    r.logprobs = std::move(lp);
  }
  SP_READ(has_fp, rd.Flag("fingerprint"));
  if (*has_fp) {
    SP_READ(fp, rd.Bytes(kMaxFingerprintBytes, "fingerprint"));
    r.fingerprint = std::string(*fp);
  }
  SP_READ(salt, rd.Raw(kSaltSize, "salt"));
  std::copy(salt->begin(), salt->end(), r.salt.begin());
#undef SP_READ
  if (auto s = rd.Done(); !s.ok()) return s;
  if (auto s = ValidateStepRecord(r); !s.ok()) return s;
  return r;
}

StepRecord MakeHeaderRecord(std::string trace_id, const TraceHeader& header,
                            const Salt& salt) {
  StepRecord r;
  r.trace_id = std::move(trace_id);
  r.index = 0;
  r.kind = StepKind::kHeader;
  r.text = EncodeTraceHeader(header);
  r.salt = salt;
  return r;
}

absl::StatusOr<TraceHeader> HeaderFromRecord(const StepRecord& record) {
  if (record.kind != StepKind::kHeader) {
    return absl::InvalidArgumentError(absl::StrCat(
        "record ", record.index, " is a ", StepKindName(record.kind),
        " record, not the header"));
  }
  return DecodeTraceHeader(record.text);
}

}  // namespace stepproof::provenance
