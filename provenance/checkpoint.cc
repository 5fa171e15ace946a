#include "provenance/checkpoint.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "provenance/byte_codec.h"
#include "provenance/note.h"
#include "provenance/step_record.h"

namespace stepproof::provenance {
namespace {

absl::Status Bad(absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("malformed checkpoint: ", why));
}

}  // namespace

std::string Checkpoint::Marshal() const {
  std::string out = absl::StrCat(
      origin, "\n", size, "\n",
      absl::Base64Escape(absl::string_view(
          reinterpret_cast<const char*>(root.data()), root.size())),
      "\n");
  for (const std::string& e : extensions) absl::StrAppend(&out, e, "\n");
  return out;
}

bool Checkpoint::is_final() const {
  for (const std::string& e : extensions) {
    if (e == kFinalExtension) return true;
  }
  return false;
}

absl::StatusOr<Checkpoint> Checkpoint::Parse(absl::string_view text) {
  if (text.empty() || text.back() != '\n') {
    return Bad("text does not end in a newline");
  }
  std::vector<absl::string_view> lines =
      absl::StrSplit(text.substr(0, text.size() - 1), '\n');
  if (lines.size() < 3) {
    return Bad("fewer than 3 lines (origin, size, root)");
  }
  Checkpoint cp;
  if (lines[0].empty()) return Bad("empty origin line");
  cp.origin = std::string(lines[0]);
  auto size = ParseCanonicalUint64(lines[1]);
  if (!size.ok()) return Bad(absl::StrCat("size: ", size.status().message()));
  cp.size = *size;
  std::string root;
  if (!absl::Base64Unescape(lines[2], &root) ||
      absl::Base64Escape(root) != lines[2] || root.size() != merkle::kHashSize) {
    return Bad("root is not canonical padded base64 of 32 bytes");
  }
  std::copy(root.begin(), root.end(), cp.root.begin());
  for (size_t i = 3; i < lines.size(); ++i) {
    if (lines[i].empty()) return Bad("empty extension line");
    cp.extensions.emplace_back(lines[i]);
  }
  return cp;
}

std::string TraceOrigin(absl::string_view log_origin,
                        absl::string_view trace_id) {
  return absl::StrCat(log_origin, "/trace/", trace_id);
}

absl::StatusOr<ParsedTraceOrigin> ParseTraceOrigin(absl::string_view origin) {
  constexpr absl::string_view kSep = "/trace/";
  size_t at = origin.rfind(kSep);
  if (at == absl::string_view::npos || at == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "origin \"", origin, "\" is not \"<log origin>/trace/<trace id>\""));
  }
  ParsedTraceOrigin out;
  out.log_origin = std::string(origin.substr(0, at));
  out.trace_id = std::string(origin.substr(at + kSep.size()));
  if (!IsValidTraceId(out.trace_id)) {
    return absl::InvalidArgumentError(
        absl::StrCat("origin \"", origin,
                     "\": trace id is not 32 lowercase hex characters"));
  }
  return out;
}

absl::StatusOr<Checkpoint> OpenCheckpoint(absl::string_view note,
                                          const NoteVerifier& verifier) {
  auto text = OpenNote(note, verifier);
  if (!text.ok()) return text.status();
  return Checkpoint::Parse(*text);
}

}  // namespace stepproof::provenance
