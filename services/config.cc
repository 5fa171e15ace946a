#include "services/config.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"
#include "provenance/step_record.h"
#include "provenance/trace_header.h"
#include "provenance/verifier_key.h"

namespace stepproof::service {

absl::StatusOr<DeviceChoice> ParseDeviceChoice(absl::string_view text) {
  if (text == "auto") return DeviceChoice::kAuto;
  if (text == "cpu") return DeviceChoice::kCpu;
  if (text == "cuda") return DeviceChoice::kCuda;
  return absl::InvalidArgumentError(
      absl::StrCat("--device: '", text, "' is not one of auto, cpu, cuda"));
}

absl::string_view DeviceChoiceName(DeviceChoice device) {
  switch (device) {
    case DeviceChoice::kAuto: return "auto";
    case DeviceChoice::kCpu: return "cpu";
    case DeviceChoice::kCuda: return "cuda";
  }
  return "auto";
}

absl::StatusOr<ListenAddress> ParseListenAddress(absl::string_view listen) {
  ListenAddress out;
  if (absl::StartsWith(listen, "unix:")) {
    if (listen.size() == 5) {
      return absl::InvalidArgumentError("--listen: unix: needs a socket path");
    }
    out.host = std::string(listen);
    out.is_unix = true;
    return out;
  }
  absl::string_view host;
  absl::string_view port;
  if (absl::StartsWith(listen, "[")) {
    size_t close = listen.find(']');
    if (close == absl::string_view::npos || close + 1 >= listen.size() ||
        listen[close + 1] != ':') {
      return absl::InvalidArgumentError(absl::StrCat(
          "--listen: '", listen, "' is not [ipv6-address]:port"));
    }
    host = listen.substr(1, close - 1);
    port = listen.substr(close + 2);
  } else {
    size_t colon = listen.rfind(':');
    if (colon == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("--listen: '", listen, "' has no :port"));
    }
    host = listen.substr(0, colon);
    port = listen.substr(colon + 1);
    if (host.find(':') != absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--listen: '", listen, "': write IPv6 addresses as [addr]:port"));
    }
  }
  if (host.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--listen: '", listen, "' has an empty host"));
  }
  int port_number = -1;
  if (port.empty() || port.size() > 5 ||
      port.find_first_not_of("0123456789") != absl::string_view::npos ||
      !absl::SimpleAtoi(port, &port_number) || port_number > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--listen: port '", port, "' is not a number in [0, 65535]"));
  }
  out.host = std::string(host);
  out.port = port_number;
  return out;
}

bool IsLoopback(const ListenAddress& address) {
  if (address.is_unix) return true;
  if (address.host == "localhost") return true;
  in_addr v4{};
  if (inet_pton(AF_INET, address.host.c_str(), &v4) == 1) {
    return (ntohl(v4.s_addr) >> 24) == 127;
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, address.host.c_str(), &v6) == 1) {
    static const in6_addr kLoopback = IN6ADDR_LOOPBACK_INIT;
    return memcmp(&v6, &kLoopback, sizeof(v6)) == 0;
  }
  return false;
}

absl::Status ValidateServerConfig(const ServerConfig& c) {
  if (c.data_dir.empty()) {
    return absl::InvalidArgumentError("--data-dir must not be empty");
  }
  absl::StatusOr<ListenAddress> listen = ParseListenAddress(c.listen);
  if (!listen.ok()) return listen.status();
  if (c.log_origin.empty() || !provenance::IsValidKeyName(c.log_origin) ||
      c.log_origin.size() > 200) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--log-origin: '", c.log_origin,
        "' must be a non-empty name of at most 200 bytes without '+', "
        "spaces or control characters"));
  }
  if (c.threads < 0 || c.threads > 1024) {
    return absl::InvalidArgumentError(
        absl::StrCat("--threads: ", c.threads, " is not in [0, 1024]"));
  }
  if (c.max_concurrent_generations < 1 ||
      c.max_concurrent_generations > 10000) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max-concurrent-generations: ",
                     c.max_concurrent_generations, " is not in [1, 10000]"));
  }
  if (c.max_prompt_bytes < 1 ||
      c.max_prompt_bytes > static_cast<int64_t>(provenance::kMaxPromptBytes)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--max-prompt-bytes: ", c.max_prompt_bytes, " is not in [1, ",
        provenance::kMaxPromptBytes, "] (the trace header's limit)"));
  }
  if (c.max_tokens < 1 ||
      c.max_tokens > static_cast<int64_t>(provenance::kMaxTokens)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max-tokens: ", c.max_tokens, " is not in [1, ",
                     provenance::kMaxTokens, "]"));
  }
  if (c.max_pending_steps < 1 || c.max_pending_steps > 65536) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--max-pending-steps: ", c.max_pending_steps, " is not in [1, 65536]"));
  }
  if (c.max_event_wait_seconds < 1 || c.max_event_wait_seconds > 86400) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max-event-wait-seconds: ", c.max_event_wait_seconds,
                     " is not in [1, 86400]"));
  }
  const bool has_cert = !c.tls_cert.empty();
  const bool has_key = !c.tls_key.empty();
  if (has_cert != has_key) {
    return absl::InvalidArgumentError(
        "--tls-cert and --tls-key must be given together");
  }
  if (!c.tls_client_ca.empty() && !has_cert) {
    return absl::InvalidArgumentError(
        "--tls-client-ca needs --tls-cert and --tls-key");
  }
  if (!has_cert && !c.insecure && !IsLoopback(*listen)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "refusing to listen on non-loopback address ", c.listen,
        " without TLS: give --tls-cert and --tls-key, or --insecure"));
  }
  return absl::OkStatus();
}

}  // namespace stepproof::service
