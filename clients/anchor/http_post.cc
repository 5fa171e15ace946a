#include "clients/anchor/http_post.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"

namespace stepproof::clients {
namespace {

constexpr size_t kMaxResponseBytes = 16u << 20;

// Owns a socket descriptor.
class Socket {
 public:
  explicit Socket(int fd) : fd_(fd) {}
  ~Socket() {
    if (fd_ >= 0) close(fd_);
  }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  int fd() const { return fd_; }

 private:
  int fd_;
};

int MillisLeft(absl::Time deadline) {
  const int64_t ms = absl::ToInt64Milliseconds(deadline - absl::Now());
  return ms < 0 ? 0 : static_cast<int>(ms > 1 << 30 ? 1 << 30 : ms);
}

// Waits for `events` on fd until the deadline. DEADLINE_EXCEEDED on timeout.
absl::Status Await(int fd, short events, absl::Time deadline,
                   absl::string_view what) {
  for (;;) {
    pollfd p{fd, events, 0};
    const int n = poll(&p, 1, MillisLeft(deadline));
    if (n > 0) return absl::OkStatus();
    if (n == 0) {
      return absl::DeadlineExceededError(absl::StrCat("timed out ", what));
    }
    if (errno != EINTR) {
      return absl::UnavailableError(
          absl::StrCat("poll failed ", what, ": ", std::strerror(errno)));
    }
  }
}

// Connects to one of host:port's addresses before the deadline.
absl::StatusOr<int> Connect(const HttpUrl& url, absl::Time deadline) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const std::string port = std::to_string(url.port);
  const int rc = getaddrinfo(url.host.c_str(), port.c_str(), &hints, &res);
  if (rc != 0) {
    return absl::UnavailableError(absl::StrCat(
        "cannot resolve ", url.host, ": ", gai_strerror(rc)));
  }
  std::string last_error = "no address";
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    const int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
                          ai->ai_protocol);
    if (fd < 0) {
      last_error = std::strerror(errno);
      continue;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
      freeaddrinfo(res);
      return fd;
    }
    if (errno == EINPROGRESS) {
      absl::Status s = Await(fd, POLLOUT, deadline, "connecting");
      int err = 0;
      socklen_t len = sizeof(err);
      if (s.ok() && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 &&
          err == 0) {
        freeaddrinfo(res);
        return fd;
      }
      last_error = s.ok() ? std::strerror(err) : std::string(s.message());
    } else {
      last_error = std::strerror(errno);
    }
    close(fd);
  }
  freeaddrinfo(res);
  return absl::UnavailableError(absl::StrCat("cannot connect to ", url.host,
                                             ":", url.port, ": ", last_error));
}

absl::Status SendAll(int fd, absl::string_view data, absl::Time deadline) {
  while (!data.empty()) {
    const ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n > 0) {
      data.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
      absl::Status s = Await(fd, POLLOUT, deadline, "sending the request");
      if (!s.ok()) return s;
      continue;
    }
    return absl::UnavailableError(
        absl::StrCat("sending the request failed: ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReceiveAll(int fd, absl::Time deadline) {
  std::string out;
  char buf[16384];
  for (;;) {
    const ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n > 0) {
      out.append(buf, static_cast<size_t>(n));
      if (out.size() > kMaxResponseBytes) {
        return absl::DataLossError("HTTP response over 16 MiB");
      }
      continue;
    }
    if (n == 0) return out;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
      absl::Status s = Await(fd, POLLIN, deadline, "waiting for the response");
      if (!s.ok()) return s;
      continue;
    }
    return absl::UnavailableError(
        absl::StrCat("reading the response failed: ", std::strerror(errno)));
  }
}

}  // namespace

absl::StatusOr<HttpUrl> ParseHttpUrl(absl::string_view url) {
  absl::string_view rest = url;
  if (absl::StartsWithIgnoreCase(rest, "https://")) {
    return absl::UnimplementedError(absl::StrCat(
        "https:// is not supported (no TLS here); use an http:// node "
        "or a local proxy: ", url));
  }
  if (!absl::ConsumePrefix(&rest, "http://")) {
    return absl::InvalidArgumentError(
        absl::StrCat("not an http:// URL: \"", url, "\""));
  }
  HttpUrl out;
  const size_t slash = rest.find('/');
  absl::string_view authority = rest.substr(0, slash);
  out.target = slash == absl::string_view::npos ? "/" : std::string(rest.substr(slash));
  if (authority.find('@') != absl::string_view::npos) {
    return absl::InvalidArgumentError("URLs with user info are not supported");
  }
  absl::string_view port_text;
  if (absl::ConsumePrefix(&authority, "[")) {  // [IPv6]:port
    const size_t close = authority.find(']');
    if (close == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat("bad IPv6 host in ", url));
    }
    out.host = std::string(authority.substr(0, close));
    absl::string_view after = authority.substr(close + 1);
    if (!after.empty() && !absl::ConsumePrefix(&after, ":")) {
      return absl::InvalidArgumentError(absl::StrCat("bad host in ", url));
    }
    port_text = after;
  } else {
    const size_t colon = authority.rfind(':');
    out.host = std::string(authority.substr(0, colon));
    if (colon != absl::string_view::npos) port_text = authority.substr(colon + 1);
  }
  if (out.host.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("no host in URL \"", url, "\""));
  }
  if (!port_text.empty()) {
    uint32_t port = 0;
    if (!absl::SimpleAtoi(port_text, &port) || port == 0 || port > 65535) {
      return absl::InvalidArgumentError(absl::StrCat("bad port in URL \"", url, "\""));
    }
    out.port = static_cast<uint16_t>(port);
  }
  return out;
}

absl::StatusOr<std::string> DecodeChunked(absl::string_view chunked) {
  std::string out;
  for (;;) {
    const size_t eol = chunked.find("\r\n");
    if (eol == absl::string_view::npos) {
      return absl::DataLossError("chunked body: missing chunk size line");
    }
    absl::string_view size_text = chunked.substr(0, eol);
    size_text = size_text.substr(0, size_text.find(';'));  // chunk extensions
    size_text = absl::StripAsciiWhitespace(size_text);
    uint64_t size = 0;
    if (size_text.empty() || size_text.size() > 8 ||
        !absl::SimpleHexAtoi(size_text, &size)) {
      return absl::DataLossError("chunked body: bad chunk size");
    }
    chunked.remove_prefix(eol + 2);
    if (size == 0) return out;  // trailers, if any, are ignored
    if (chunked.size() < size + 2 || chunked.substr(size, 2) != "\r\n") {
      return absl::DataLossError("chunked body: truncated chunk");
    }
    out.append(chunked.data(), size);
    chunked.remove_prefix(size + 2);
  }
}

absl::StatusOr<HttpResponse> HttpPost(absl::string_view url,
                                      absl::string_view content_type,
                                      absl::string_view body,
                                      absl::Duration timeout) {
  absl::StatusOr<HttpUrl> parsed = ParseHttpUrl(url);
  if (!parsed.ok()) return parsed.status();
  const absl::Time deadline = absl::Now() + timeout;
  absl::StatusOr<int> fd = Connect(*parsed, deadline);
  if (!fd.ok()) return fd.status();
  Socket socket(*fd);

  const bool ipv6 = parsed->host.find(':') != std::string::npos;
  const std::string host_header =
      absl::StrCat(ipv6 ? "[" : "", parsed->host, ipv6 ? "]" : "", ":", parsed->port);
  const std::string request = absl::StrCat(
      "POST ", parsed->target, " HTTP/1.1\r\nHost: ", host_header,
      "\r\nContent-Type: ", content_type, "\r\nContent-Length: ", body.size(),
      "\r\nAccept: application/json\r\nConnection: close\r\n\r\n", body);
  if (absl::Status s = SendAll(socket.fd(), request, deadline); !s.ok()) return s;
  absl::StatusOr<std::string> raw = ReceiveAll(socket.fd(), deadline);
  if (!raw.ok()) return raw.status();

  absl::string_view text = *raw;
  const size_t header_end = text.find("\r\n\r\n");
  if (header_end == absl::string_view::npos) {
    return absl::DataLossError(absl::StrCat(
        "HTTP response from ", url, " has no complete header (",
        text.size(), " bytes)"));
  }
  std::vector<absl::string_view> lines =
      absl::StrSplit(text.substr(0, header_end), "\r\n");
  // "HTTP/1.x NNN reason"
  std::vector<absl::string_view> status_parts =
      absl::StrSplit(lines[0], absl::MaxSplits(' ', 2));
  HttpResponse response;
  if (status_parts.size() < 2 || !absl::StartsWith(status_parts[0], "HTTP/1.") ||
      status_parts[1].size() != 3 ||
      !absl::SimpleAtoi(status_parts[1], &response.status)) {
    return absl::DataLossError(absl::StrCat("bad HTTP status line from ", url));
  }
  bool chunked = false;
  int64_t content_length = -1;
  for (size_t i = 1; i < lines.size(); ++i) {
    const size_t colon = lines[i].find(':');
    if (colon == absl::string_view::npos) {
      return absl::DataLossError(absl::StrCat("bad HTTP header line from ", url));
    }
    const std::string name = absl::AsciiStrToLower(lines[i].substr(0, colon));
    const absl::string_view value =
        absl::StripAsciiWhitespace(lines[i].substr(colon + 1));
    if (name == "transfer-encoding") {
      chunked = absl::AsciiStrToLower(value).find("chunked") != std::string::npos;
    } else if (name == "content-length") {
      if (!absl::SimpleAtoi(value, &content_length) || content_length < 0) {
        return absl::DataLossError(absl::StrCat("bad Content-Length from ", url));
      }
    }
  }
  absl::string_view payload = text.substr(header_end + 4);
  if (chunked) {
    absl::StatusOr<std::string> decoded = DecodeChunked(payload);
    if (!decoded.ok()) return decoded.status();
    response.body = *std::move(decoded);
  } else if (content_length >= 0) {
    if (payload.size() < static_cast<size_t>(content_length)) {
      return absl::DataLossError(absl::StrCat(
          "HTTP body from ", url, " truncated: ", payload.size(), " of ",
          content_length, " bytes"));
    }
    response.body = std::string(payload.substr(0, content_length));
  } else {
    response.body = std::string(payload);
  }
  return response;
}

}  // namespace stepproof::clients
