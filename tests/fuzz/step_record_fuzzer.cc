// Fuzz target: the step record decoder (provenance/step_record.h) and the
// trace header decoder (provenance/trace_header.h).
//
// Properties (both encodings are canonical, docs/FORMAT.md):
//   - DecodeStepRecord accepts only bytes that EncodeStepRecord gives back
//     unchanged, and the decoded record passes ValidateStepRecord;
//   - a decoded header record's payload decodes to a TraceHeader that
//     re-encodes to the payload;
//   - DecodeTraceHeader on the raw input: decode -> encode is the identity.

#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_check.h"
#include "provenance/step_record.h"
#include "provenance/trace_header.h"

namespace sp = stepproof::provenance;
using stepproof::fuzz::Check;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view in(reinterpret_cast<const char*>(data), size);

  absl::StatusOr<sp::StepRecord> rec = sp::DecodeStepRecord(in);
  if (rec.ok()) {
    Check(sp::ValidateStepRecord(*rec).ok(), "a decoded record validates");
    Check(sp::EncodeStepRecord(*rec) == in, "decode -> encode gives the input bytes");
    if (rec->kind == sp::StepKind::kHeader) {
      absl::StatusOr<sp::TraceHeader> h = sp::HeaderFromRecord(*rec);
      Check(h.ok(), "a decoded header record's payload decodes");
      Check(sp::EncodeTraceHeader(*h) == rec->text, "header payload re-encodes unchanged");
    }
    absl::StatusOr<sp::StepRecord> again = sp::DecodeStepRecord(sp::EncodeStepRecord(*rec));
    Check(again.ok() && *again == *rec, "re-decoding gives an equal record");
  }

  absl::StatusOr<sp::TraceHeader> header = sp::DecodeTraceHeader(in);
  if (header.ok()) {
    Check(sp::ValidateTraceHeader(*header).ok(), "a decoded header validates");
    Check(sp::EncodeTraceHeader(*header) == in, "header decode -> encode gives the input bytes");
  }
  return 0;
}
