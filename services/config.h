// ServerConfig: every setting of stepproofd, as plain values. main() fills it
// from the command-line flags (the only place flags are read) and checks it
// with ValidateServerConfig before anything is opened; tests build one
// directly.
//
// Thread-safety: plain values and pure functions.
#ifndef STEPPROOF_SERVICES_CONFIG_H_
#define STEPPROOF_SERVICES_CONFIG_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace stepproof::service {

enum class DeviceChoice { kAuto, kCpu, kCuda };

struct ServerConfig {
  std::string data_dir = "./stepproof-data";
  std::string listen = "127.0.0.1:7700";  // host:port; port 0 = any free port
  std::string port_file;                  // write the bound address here
  std::string model;                      // "" = the embedded model
  DeviceChoice device = DeviceChoice::kAuto;
  std::string log_origin = "stepproof.local/log";
  int32_t threads = 0;  // engine threads; 0 = all cores
  int32_t max_concurrent_generations = 4;
  int64_t max_prompt_bytes = 64 * 1024;
  int32_t max_tokens = 1024;  // default and cap for GenerateRequest.max_tokens
  // A client that does not read its Generate stream (findings ): at
  // most this many steps wait to be sent, and no event waits longer than
  // max_event_wait_seconds; past either the generation is stopped.
  int32_t max_pending_steps = 256;
  int32_t max_event_wait_seconds = 30;
  std::string api_token_file;
  std::string tls_cert;
  std::string tls_key;
  std::string tls_client_ca;
  bool insecure = false;  // allow a non-loopback address without TLS
};

// "auto", "cpu", "cuda". INVALID_ARGUMENT names the accepted values.
absl::StatusOr<DeviceChoice> ParseDeviceChoice(absl::string_view text);
absl::string_view DeviceChoiceName(DeviceChoice device);

// A listen address split into host and port. Accepts "host:port",
// "[v6addr]:port" and "unix:/path" (host = the whole string, port = 0).
struct ListenAddress {
  std::string host;  // without brackets
  int port = 0;
  bool is_unix = false;
};
// INVALID_ARGUMENT naming the problem: no port, port not a number in
// [0, 65535], empty host.
absl::StatusOr<ListenAddress> ParseListenAddress(absl::string_view listen);

// True for "localhost", 127.0.0.0/8, ::1 and unix sockets. Names other than
// "localhost" are never loopback (they could resolve anywhere).
bool IsLoopback(const ListenAddress& address);

// Checks every field. INVALID_ARGUMENT naming the flag and the problem:
// empty data dir, bad listen address, non-positive limits, max_prompt_bytes
// over the trace format's limit (1 MiB), max_tokens over 262144, a TLS
// certificate without its key (or the reverse), --tls-client-ca without TLS,
// a log origin that is not a valid key name (no '+', spaces or newlines).
// FAILED_PRECONDITION for a non-loopback listen address without TLS unless
// `insecure`.
absl::Status ValidateServerConfig(const ServerConfig& config);

}  // namespace stepproof::service

#endif  // STEPPROOF_SERVICES_CONFIG_H_
