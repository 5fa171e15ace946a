// The model built into stepproofd: the bytes of models/stepproof-arith.gguf
// as they were at build time (services/CMakeLists.txt embeds the file with
// an assembler .incbin, and rebuilds when it changes), or nothing when the
// file did not exist at configure time (then --model is required).
//
// Thread-safety: immutable data.
#ifndef STEPPROOF_SERVICES_EMBEDDED_MODEL_H_
#define STEPPROOF_SERVICES_EMBEDDED_MODEL_H_

#include <cstdint>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace stepproof::service {

// Empty when this build has no embedded model.
absl::Span<const uint8_t> EmbeddedModel();
// The embedded file's name ("stepproof-arith.gguf"), "" when none.
absl::string_view EmbeddedModelName();

}  // namespace stepproof::service

#endif  // STEPPROOF_SERVICES_EMBEDDED_MODEL_H_
