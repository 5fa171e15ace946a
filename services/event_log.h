// EventLog: the server's structured log. One line per event:
//   ts=2026-01-02T03:04:05.678Z event=generate.sealed trace=ab12... steps=7
// Values with spaces, quotes, '=' or control characters are written quoted
// with C escapes. Callers never pass keys, tokens or prompts (the service
// logs sizes and ids only).
//
// Thread-safety: thread-safe; each line is written with one call under a
// mutex, so lines from different threads never interleave.
// Ownership: the sink is borrowed and must outlive the log.
#ifndef STEPPROOF_SERVICES_EVENT_LOG_H_
#define STEPPROOF_SERVICES_EVENT_LOG_H_

#include <functional>
#include <initializer_list>
#include <string>
#include <utility>

#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace stepproof::service {

class EventLog {
 public:
  using Sink = std::function<void(const std::string& line)>;
  using Field = std::pair<absl::string_view, std::string>;

  // `sink` gets each line with its trailing newline. `clock` defaults to
  // absl::Now.
  explicit EventLog(Sink sink, std::function<absl::Time()> clock = nullptr);

  // A log that writes to stderr.
  static EventLog Stderr();

  void Log(absl::string_view event, std::initializer_list<Field> fields);

  // The value as written in a line (quoted when needed).
  static std::string FormatValue(absl::string_view value);

 private:
  Sink sink_;
  std::function<absl::Time()> clock_;
  absl::Mutex mu_;
};

}  // namespace stepproof::service

#endif  // STEPPROOF_SERVICES_EVENT_LOG_H_
