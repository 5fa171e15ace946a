#include "clients/cli_output.h"

#include "absl/strings/str_format.h"
#include "google/protobuf/util/json_util.h"

namespace stepproof::clients {

std::string ProtoJsonLine(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = false;
  options.preserve_proto_field_names = true;
  std::string out;
  if (!google::protobuf::util::MessageToJsonString(message, &out, options)
           .ok()) {
    return "{}";
  }
  return out;
}

std::string JsonLine(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

absl::string_view StepKindLabel(v1::StepKind kind) {
  switch (kind) {
    case v1::STEP_KIND_HEADER:
      return "header";
    case v1::STEP_KIND_REASONING:
      return "reasoning";
    case v1::STEP_KIND_ANSWER:
      return "answer";
    default:
      return "unknown";
  }
}

std::string HexBytes(absl::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) absl::StrAppendFormat(&out, "%02x", c);
  return out;
}

}  // namespace stepproof::clients
