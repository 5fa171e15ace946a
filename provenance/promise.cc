#include "provenance/promise.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "provenance/byte_codec.h"
#include "provenance/checkpoint.h"
#include "provenance/rfc3339.h"

namespace stepproof::provenance {
namespace {

std::string B64(const merkle::Hash& h) {
  return absl::Base64Escape(
      absl::string_view(reinterpret_cast<const char*>(h.data()), h.size()));
}

absl::Status Bad(absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("malformed promise: ", why));
}

absl::StatusOr<merkle::Hash> HashFromB64(absl::string_view s,
                                         absl::string_view field) {
  std::string raw;
  if (!absl::Base64Unescape(s, &raw) || absl::Base64Escape(raw) != s ||
      raw.size() != merkle::kHashSize) {
    return Bad(absl::StrCat(field,
                            " is not canonical padded base64 of 32 bytes"));
  }
  merkle::Hash h;
  std::copy(raw.begin(), raw.end(), h.begin());
  return h;
}

}  // namespace

std::string InclusionPromise::Marshal() const {
  return absl::StrCat(kPromiseType, "\n", log_origin, "\n", trace_origin, "\n",
                      trace_size, "\n", B64(trace_root), "\n", B64(leaf_hash),
                      "\n", FormatRfc3339Millis(submitted_unix_ms), "\n",
                      max_delay_seconds, "\n");
}

absl::StatusOr<InclusionPromise> InclusionPromise::Parse(
    absl::string_view text) {
  if (text.empty() || text.back() != '\n') {
    return Bad("text does not end in a newline");
  }
  std::vector<absl::string_view> lines =
      absl::StrSplit(text.substr(0, text.size() - 1), '\n');
  if (lines.size() != 8) {
    return Bad(absl::StrCat(lines.size(), " lines, want 8"));
  }
  if (lines[0] != kPromiseType) {
    return Bad(absl::StrCat("type line is \"", lines[0], "\", want \"",
                            kPromiseType, "\""));
  }
  InclusionPromise p;
  if (lines[1].empty()) return Bad("empty log origin");
  if (lines[2].empty()) return Bad("empty trace origin");
  p.log_origin = std::string(lines[1]);
  p.trace_origin = std::string(lines[2]);
  auto size = ParseCanonicalUint64(lines[3]);
  if (!size.ok()) return Bad(absl::StrCat("trace size ", size.status().message()));
  p.trace_size = *size;
  auto root = HashFromB64(lines[4], "trace root");
  if (!root.ok()) return root.status();
  p.trace_root = *root;
  auto leaf = HashFromB64(lines[5], "leaf hash");
  if (!leaf.ok()) return leaf.status();
  p.leaf_hash = *leaf;
  auto when = ParseRfc3339Millis(lines[6]);
  if (!when.ok()) return Bad(absl::StrCat("submission time: ", when.status().message()));
  p.submitted_unix_ms = *when;
  auto delay = ParseCanonicalUint64(lines[7]);
  if (!delay.ok()) {
    return Bad(absl::StrCat("maximum delay ", delay.status().message()));
  }
  p.max_delay_seconds = *delay;
  return p;
}

absl::StatusOr<InclusionPromise> MakePromise(absl::string_view log_origin,
                                             absl::string_view final_trace_note,
                                             int64_t submitted_unix_ms,
                                             uint64_t max_delay_seconds) {
  auto note = ParseNote(final_trace_note);
  if (!note.ok()) return note.status();
  auto cp = Checkpoint::Parse(note->text);
  if (!cp.ok()) return cp.status();
  InclusionPromise p;
  p.log_origin = std::string(log_origin);
  p.trace_origin = cp->origin;
  p.trace_size = cp->size;
  p.trace_root = cp->root;
  p.leaf_hash = merkle::HashLeaf(
      std::string_view(final_trace_note.data(), final_trace_note.size()));
  p.submitted_unix_ms = submitted_unix_ms;
  p.max_delay_seconds = max_delay_seconds;
  return p;
}

absl::StatusOr<InclusionPromise> VerifyPromise(
    absl::string_view promise_note, const NoteVerifier& log_key,
    absl::string_view final_trace_note) {
  auto text = OpenNote(promise_note, log_key);
  if (!text.ok()) {
    return absl::Status(text.status().code(),
                        absl::StrCat("promise: ", text.status().message()));
  }
  auto p = InclusionPromise::Parse(*text);
  if (!p.ok()) return p.status();
  auto note = ParseNote(final_trace_note);
  if (!note.ok()) return note.status();
  auto cp = Checkpoint::Parse(note->text);
  if (!cp.ok()) return cp.status();
  auto mismatch = [](absl::string_view what) {
    return absl::FailedPreconditionError(
        absl::StrCat("promise ", what, " does not match the trace checkpoint"));
  };
  if (p->trace_origin != cp->origin) return mismatch("trace origin");
  if (p->trace_size != cp->size) return mismatch("trace size");
  if (p->trace_root != cp->root) return mismatch("trace root");
  if (p->leaf_hash != merkle::HashLeaf(std::string_view(
                          final_trace_note.data(), final_trace_note.size()))) {
    return mismatch("leaf hash (HashLeaf of the checkpoint note)");
  }
  return p;
}

}  // namespace stepproof::provenance
