#include "clients/anchor/anchor_check.h"

#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "clients/anchor/http_post.h"
#include "nlohmann/json.hpp"
#include "provenance/checkpoint.h"

namespace stepproof::clients {
namespace {

bool IsHex(absl::string_view s) {
  for (char c : s) {
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

absl::Status CheckAddress(absl::string_view contract) {
  if (contract.size() != 42 || !absl::StartsWith(contract, "0x") ||
      !IsHex(contract.substr(2))) {
    return absl::InvalidArgumentError(absl::StrCat(
        "contract address must be 0x + 40 hex digits, got \"", contract, "\""));
  }
  return absl::OkStatus();
}

}  // namespace

merkle::Hash AnchorLogId(absl::string_view log_origin) {
  return merkle::Sha256Of(std::string_view(log_origin.data(), log_origin.size()));
}

std::string EncodeRootOfCall(const merkle::Hash& log_id, uint64_t tree_size) {
  // selector || bytes32 logId || uint64 treeSize left-padded to 32 bytes.
  return absl::StrCat("0x", kRootOfSelector, merkle::ToHex(log_id),
                      std::string(48, '0'), absl::StrFormat("%016x", tree_size));
}

absl::StatusOr<merkle::Hash> DecodeBytes32Result(absl::string_view result) {
  if (result == "0x") {
    return absl::FailedPreconditionError(
        "eth_call returned no data: the address holds no RootAnchor contract "
        "on this chain");
  }
  if (result.size() != 66 || !absl::StartsWith(result, "0x")) {
    return absl::DataLossError(absl::StrCat(
        "eth_call result is not one bytes32 (0x + 64 hex): \"",
        result.substr(0, 80), "\""));
  }
  absl::StatusOr<merkle::Hash> h = merkle::HashFromHex(
      std::string_view(result.data() + 2, result.size() - 2));
  if (!h.ok()) return absl::DataLossError("eth_call result is not hex");
  return h;
}

absl::StatusOr<merkle::Hash> FetchAnchoredRoot(absl::string_view rpc_url,
                                               absl::string_view contract,
                                               const merkle::Hash& log_id,
                                               uint64_t tree_size,
                                               absl::Duration timeout) {
  if (absl::Status s = CheckAddress(contract); !s.ok()) return s;
  const nlohmann::json request = {
      {"jsonrpc", "2.0"},
      {"id", 1},
      {"method", "eth_call"},
      {"params",
       {{{"to", std::string(contract)},
         {"data", EncodeRootOfCall(log_id, tree_size)}},
        "latest"}}};
  absl::StatusOr<HttpResponse> response =
      HttpPost(rpc_url, "application/json", request.dump(), timeout);
  if (!response.ok()) {
    return absl::Status(response.status().code(),
                        absl::StrCat("chain RPC ", rpc_url, ": ",
                                     response.status().message()));
  }
  if (response->status != 200) {
    return absl::UnavailableError(absl::StrCat(
        "chain RPC ", rpc_url, " answered HTTP ", response->status));
  }
  const nlohmann::json reply =
      nlohmann::json::parse(response->body, nullptr, /*allow_exceptions=*/false);
  if (reply.is_discarded() || !reply.is_object()) {
    return absl::DataLossError(
        absl::StrCat("chain RPC ", rpc_url, " answered non-JSON"));
  }
  if (auto e = reply.find("error"); e != reply.end()) {
    std::string message = "unknown error";
    if (e->is_object()) {
      if (auto m = e->find("message"); m != e->end() && m->is_string()) {
        message = m->get<std::string>();
      }
    }
    return absl::FailedPreconditionError(absl::StrCat(
        "eth_call of rootOf on ", contract, " failed: ", message));
  }
  auto result = reply.find("result");
  if (result == reply.end() || !result->is_string()) {
    return absl::DataLossError(
        absl::StrCat("chain RPC ", rpc_url, " answered without a result"));
  }
  return DecodeBytes32Result(result->get<std::string>());
}

absl::Status CheckAnchored(absl::string_view rpc_url,
                           absl::string_view contract,
                           const merkle::Hash& log_id, uint64_t tree_size,
                           const merkle::Hash& root) {
  if (tree_size == 0) {
    return absl::InvalidArgumentError("an empty log (size 0) is never anchored");
  }
  absl::StatusOr<merkle::Hash> anchored =
      FetchAnchoredRoot(rpc_url, contract, log_id, tree_size);
  if (!anchored.ok()) return anchored.status();
  if (*anchored == merkle::Hash{}) {
    return absl::NotFoundError(absl::StrCat(
        "not anchored: contract ", contract, " holds no root for log id ",
        merkle::ToHex(log_id), " at size ", tree_size));
  }
  if (*anchored != root) {
    return absl::FailedPreconditionError(absl::StrCat(
        "anchored root differs at size ", tree_size, ": chain has ",
        merkle::ToHex(*anchored), ", checkpoint has ", merkle::ToHex(root)));
  }
  return absl::OkStatus();
}

absl::Status CheckLogCheckpointAnchored(
    absl::string_view rpc_url, absl::string_view contract,
    absl::string_view signed_log_checkpoint,
    const provenance::NoteVerifier& log_key) {
  absl::StatusOr<provenance::Checkpoint> checkpoint =
      provenance::OpenCheckpoint(signed_log_checkpoint, log_key);
  if (!checkpoint.ok()) {
    return absl::Status(checkpoint.status().code(),
                        absl::StrCat("log checkpoint: ",
                                     checkpoint.status().message()));
  }
  return CheckAnchored(rpc_url, contract, AnchorLogId(checkpoint->origin),
                       checkpoint->size, checkpoint->root);
}

}  // namespace stepproof::clients
