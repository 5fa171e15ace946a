#include "clients/trace_file.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "clients/terminal_text.h"
#include "nlohmann/json.hpp"
#include "provenance/bundle.h"
#include "provenance/checkpoint.h"
#include "provenance/promise.h"
#include "provenance/step_record.h"
#include "provenance/verifier.h"

namespace stepproof::clients {
namespace {

using nlohmann::json;

std::string Str(absl::string_view s) { return std::string(s.data(), s.size()); }

absl::Status PathError(absl::string_view path, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", problem));
}

// Reads a string member; absent members give `fallback` unless required.
absl::Status GetString(const json& obj, const char* key, absl::string_view path,
                       bool required, std::string* out) {
  auto it = obj.find(key);
  if (it == obj.end()) {
    if (required) return PathError(path, "missing");
    return absl::OkStatus();
  }
  if (!it->is_string()) return PathError(path, "expected a string");
  *out = it->get<std::string>();
  return absl::OkStatus();
}

std::string Dump(const json& j, int indent) {
  return j.dump(indent, ' ', false, json::error_handler_t::replace);
}

}  // namespace

absl::StatusOr<std::string> TraceFileToJson(const TraceFile& t) {
  json doc = json::object();
  doc["format"] = Str(kTraceFileFormat);
  doc["trace_id"] = t.trace_id;
  doc["prompt"] = t.prompt;
  if (!t.prompt_salt_hex.empty()) doc["prompt_salt"] = t.prompt_salt_hex;
  doc["finish_reason"] = t.finish_reason;
  doc["answer"] = t.answer;
  doc["final_checkpoint"] = t.final_checkpoint;
  if (!t.promise.empty()) doc["promise"] = t.promise;
  json steps = json::array();
  for (size_t i = 0; i < t.steps.size(); ++i) {
    const TraceFileStep& s = t.steps[i];
    json bundle = json::parse(s.bundle_json, nullptr, false);
    if (bundle.is_discarded() || !bundle.is_object()) {
      return absl::InvalidArgumentError(
          absl::StrCat("step ", s.index, ": the bundle is not a JSON object"));
    }
    json step = json::object();
    step["index"] = s.index;
    step["kind"] = s.kind;
    step["text"] = s.text;
    step["bundle"] = std::move(bundle);
    steps.push_back(std::move(step));
  }
  doc["steps"] = std::move(steps);
  return Dump(doc, 2) + "\n";
}

absl::StatusOr<TraceFile> TraceFileFromJson(absl::string_view text) {
  json doc = json::parse(text.begin(), text.end(), nullptr, false);
  if (doc.is_discarded()) {
    return absl::InvalidArgumentError("trace file is not valid JSON");
  }
  if (!doc.is_object()) return PathError("(top level)", "expected an object");
  std::string format;
  if (absl::Status s = GetString(doc, "format", "format", true, &format);
      !s.ok()) {
    return s;
  }
  if (format != kTraceFileFormat) {
    return PathError("format", absl::StrCat("expected \"", kTraceFileFormat,
                                            "\", got \"", format, "\""));
  }
  TraceFile t;
  struct Field {
    const char* key;
    bool required;
    std::string* out;
  };
  for (const Field& f : {Field{"trace_id", true, &t.trace_id},
                         Field{"prompt", false, &t.prompt},
                         Field{"prompt_salt", false, &t.prompt_salt_hex},
                         Field{"finish_reason", false, &t.finish_reason},
                         Field{"answer", false, &t.answer},
                         Field{"final_checkpoint", false, &t.final_checkpoint},
                         Field{"promise", false, &t.promise}}) {
    if (absl::Status s = GetString(doc, f.key, f.key, f.required, f.out);
        !s.ok()) {
      return s;
    }
  }
  auto steps = doc.find("steps");
  if (steps == doc.end()) return PathError("steps", "missing");
  if (!steps->is_array()) return PathError("steps", "expected an array");
  for (size_t i = 0; i < steps->size(); ++i) {
    const json& step = (*steps)[i];
    std::string path = absl::StrCat("steps[", i, "]");
    if (!step.is_object()) return PathError(path, "expected an object");
    TraceFileStep s;
    auto index = step.find("index");
    if (index == step.end()) return PathError(path + ".index", "missing");
    if (!index->is_number_unsigned()) {
      return PathError(path + ".index", "expected a non-negative integer");
    }
    s.index = index->get<uint64_t>();
    if (absl::Status st = GetString(step, "kind", path + ".kind", true, &s.kind);
        !st.ok()) {
      return st;
    }
    if (absl::Status st = GetString(step, "text", path + ".text", false, &s.text);
        !st.ok()) {
      return st;
    }
    auto bundle = step.find("bundle");
    if (bundle == step.end()) return PathError(path + ".bundle", "missing");
    if (!bundle->is_object()) {
      return PathError(path + ".bundle", "expected an object");
    }
    s.bundle_json = Dump(*bundle, -1);
    t.steps.push_back(std::move(s));
  }
  return t;
}

absl::StatusOr<VerifiedTrace> VerifyTraceFile(
    const TraceFile& t, const provenance::NoteVerifier& key) {
  auto fail = [](absl::string_view what) {
    return absl::FailedPreconditionError(what);
  };
  if (!provenance::IsValidTraceId(t.trace_id)) {
    return absl::InvalidArgumentError(
        "trace_id: expected 32 lowercase hex characters");
  }
  if (t.steps.empty()) return fail("the trace file has no steps");
  if (t.final_checkpoint.empty()) {
    return fail(
        "the trace file has no final checkpoint (the stream ended before the "
        "trace was sealed); verify its steps one by one with `stepproof-audit "
        "verify`");
  }
  VerifiedTrace out;
  out.trace_id = t.trace_id;
  std::vector<std::string> encoded;
  encoded.reserve(t.steps.size());
  for (size_t i = 0; i < t.steps.size(); ++i) {
    const TraceFileStep& s = t.steps[i];
    std::string where = absl::StrCat("step ", i, ": ");
    if (s.index != i) {
      return fail(absl::StrCat(where, "listed with index ", s.index,
                               " (steps must be in leaf order from 0)"));
    }
    absl::StatusOr<provenance::Bundle> bundle =
        provenance::BundleFromJson(s.bundle_json);
    if (!bundle.ok()) {
      return absl::Status(bundle.status().code(),
                          absl::StrCat(where, "bundle does not parse: ",
                                       bundle.status().message()));
    }
    absl::StatusOr<VerifiedStep> v = VerifyStepBundle(*bundle, key);
    if (!v.ok()) {
      return absl::Status(v.status().code(),
                          absl::StrCat(where, v.status().message()));
    }
    if (v->trace_id != t.trace_id) {
      return fail(absl::StrCat(where, "bundle is of trace ", v->trace_id,
                               ", not ", t.trace_id));
    }
    if (v->index != i) {
      return fail(absl::StrCat(where, "bundle is for step ", v->index));
    }
    if (s.kind != provenance::StepKindName(v->kind)) {
      return fail(absl::StrCat(where, "listed as kind \"", s.kind,
                               "\" but the committed record is \"",
                               provenance::StepKindName(v->kind), "\""));
    }
    if (v->kind != provenance::StepKind::kHeader && s.text != v->text) {
      return fail(absl::StrCat(
          where, "the text shown in the trace file differs from the committed "
                 "record"));
    }
    encoded.push_back(bundle->encoded_record);
    out.steps.push_back(std::move(*v));
  }
  absl::StatusOr<std::vector<provenance::StepRecord>> records =
      provenance::VerifyTrace(encoded, t.final_checkpoint, key);
  if (!records.ok()) {
    return absl::Status(records.status().code(),
                        absl::StrCat("final checkpoint: ",
                                     records.status().message()));
  }
  absl::StatusOr<provenance::Checkpoint> final_cp =
      provenance::OpenCheckpoint(t.final_checkpoint, key);
  if (!final_cp.ok()) return final_cp.status();
  out.final_size = final_cp->size;
  if (!t.promise.empty()) {
    absl::StatusOr<provenance::InclusionPromise> promise =
        provenance::VerifyPromise(t.promise, key, t.final_checkpoint);
    if (!promise.ok()) {
      return absl::Status(promise.status().code(),
                          absl::StrCat("promise: ", promise.status().message()));
    }
    out.promise_verified = true;
  }
  return out;
}

std::string FormatVerifiedTrace(const VerifiedTrace& t) {
  std::string out = absl::StrCat("VERIFIED trace ", t.trace_id, ": ",
                                 t.steps.size(), " steps\n");
  for (const VerifiedStep& s : t.steps) {
    if (s.header.has_value()) {
      absl::StrAppend(&out, "  [0] header\n",
                      FormatTraceHeader(*s.header, "      "));
    } else {
      std::string label = absl::StrCat("  [", s.index, "] ",
                                       provenance::StepKindName(s.kind), ": ");
      absl::StrAppend(&out, label,
                      StepTextForTerminal(s.text, std::string(label.size(), ' ')),
                      "\n");
    }
  }
  absl::StrAppend(&out, "  every step is included in the trace, and the trace "
                        "is complete: its final checkpoint (size ",
                  t.final_size, ") commits to exactly these ", t.steps.size(),
                  " records, signed by ",
                  t.steps.empty() ? "" : t.steps.front().key, "\n");
  if (t.promise_verified) {
    absl::StrAppend(&out,
                    "  inclusion promise: signed, about this final checkpoint\n");
  }
  const VerifiedStep* logged = nullptr;
  for (const VerifiedStep& s : t.steps) {
    if (s.log.has_value()) logged = &s;
  }
  if (logged != nullptr) {
    absl::StrAppend(&out, "  log inclusion: the trace is leaf ",
                    logged->log->leaf_index, " of the log checkpoint of size ",
                    logged->log->log_size, "\n");
  } else {
    absl::StrAppend(&out,
                    "  log inclusion: not in these bundles (fetch a fresh "
                    "bundle with `stepproof proof` once the log has "
                    "integrated the trace)\n");
  }
  return out;
}

std::string VerifiedTraceToJson(const VerifiedTrace& t) {
  json j;
  j["verified"] = true;
  j["trace_id"] = t.trace_id;
  j["final_size"] = t.final_size;
  j["promise_verified"] = t.promise_verified;
  json steps = json::array();
  for (const VerifiedStep& s : t.steps) {
    json step = json::parse(VerifiedStepToJson(s), nullptr, false);
    steps.push_back(std::move(step));
  }
  j["steps"] = std::move(steps);
  return Dump(j, -1);
}

}  // namespace stepproof::clients
