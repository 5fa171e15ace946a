// Built when no model file existed at configure time.
#include "services/embedded_model.h"

namespace stepproof::service {

absl::Span<const uint8_t> EmbeddedModel() { return {}; }
absl::string_view EmbeddedModelName() { return ""; }

}  // namespace stepproof::service
