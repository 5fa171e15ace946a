// A minimal HTTP/1.1 POST client over a plain TCP socket, for JSON-RPC to a
// chain node at an http:// URL (a local node, or one behind a proxy on the
// same host). No TLS, no redirects, no proxies, no keep-alive: one request
// per connection ("Connection: close"), the response read to EOF, bodies
// with Content-Length, chunked transfer coding, or delimited by close.
//
// Thread-safety: a pure function; concurrent calls are independent.
#ifndef STEPPROOF_CLIENTS_ANCHOR_HTTP_POST_H_
#define STEPPROOF_CLIENTS_ANCHOR_HTTP_POST_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace stepproof::clients {

struct HttpUrl {
  std::string host;      // name or IPv4/IPv6 literal (without brackets)
  uint16_t port = 80;
  std::string target;    // path and query, "/" when the URL has none
};

// Parses "http://host[:port][/path]". INVALID_ARGUMENT naming the problem;
// UNIMPLEMENTED for https:// (no TLS here: use a local node or proxy).
absl::StatusOr<HttpUrl> ParseHttpUrl(absl::string_view url);

struct HttpResponse {
  int status = 0;     // e.g. 200
  std::string body;   // de-chunked
};

// POSTs `body` with `content_type` to `url` and returns the response (any
// status code). Errors:
//   INVALID_ARGUMENT / UNIMPLEMENTED  as ParseHttpUrl
//   UNAVAILABLE        host not resolved, connection refused or reset
//   DEADLINE_EXCEEDED  no complete response within `timeout`
//   DATA_LOSS          malformed status line, headers or chunking, or a
//                      response over 16 MiB
absl::StatusOr<HttpResponse> HttpPost(absl::string_view url,
                                      absl::string_view content_type,
                                      absl::string_view body,
                                      absl::Duration timeout);

// Decodes a chunked transfer-coded body. DATA_LOSS if malformed.
absl::StatusOr<std::string> DecodeChunked(absl::string_view chunked);

}  // namespace stepproof::clients

#endif  // STEPPROOF_CLIENTS_ANCHOR_HTTP_POST_H_
