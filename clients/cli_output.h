// How the client CLIs print API values: protobuf messages and JSON objects
// as one line each (the --json output), step kinds by their bundle names,
// bytes as hex.
//
// Thread-safety: pure functions.
#ifndef STEPPROOF_CLIENTS_CLI_OUTPUT_H_
#define STEPPROOF_CLIENTS_CLI_OUTPUT_H_

#include <string>

#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"
#include "nlohmann/json.hpp"
#include "stepproof/v1/stepproof.pb.h"

namespace stepproof::clients {

// The protobuf JSON mapping on one line, field names as in the .proto
// (bytes in base64, 64-bit integers as strings); "{}" if it cannot print.
std::string ProtoJsonLine(const google::protobuf::Message& message);

// `j` on one line; invalid UTF-8 in strings is replaced, never thrown.
std::string JsonLine(const nlohmann::json& j);

// "header", "reasoning", "answer" (as in bundles), or "unknown".
absl::string_view StepKindLabel(v1::StepKind kind);

// Lowercase hex of `bytes`.
std::string HexBytes(absl::string_view bytes);

}  // namespace stepproof::clients

#endif  // STEPPROOF_CLIENTS_CLI_OUTPUT_H_
