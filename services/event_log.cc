#include "services/event_log.h"

#include <cstdio>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "provenance/rfc3339.h"

namespace stepproof::service {

EventLog::EventLog(Sink sink, std::function<absl::Time()> clock)
    : sink_(std::move(sink)), clock_(std::move(clock)) {
  if (!clock_) clock_ = [] { return absl::Now(); };
}

EventLog EventLog::Stderr() {
  return EventLog([](const std::string& line) {
    std::fwrite(line.data(), 1, line.size(), stderr);
    std::fflush(stderr);
  });
}

std::string EventLog::FormatValue(absl::string_view value) {
  bool plain = !value.empty();
  for (char c : value) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f || c == '"' || c == '=' || c == '\\') {
      plain = false;
      break;
    }
  }
  if (plain) return std::string(value);
  return absl::StrCat("\"", absl::CEscape(value), "\"");
}

void EventLog::Log(absl::string_view event,
                   std::initializer_list<Field> fields) {
  std::string line = absl::StrCat(
      "ts=", provenance::FormatRfc3339Millis(absl::ToUnixMillis(clock_())),
      " event=", FormatValue(event));
  for (const Field& f : fields) {
    absl::StrAppend(&line, " ", f.first, "=", FormatValue(f.second));
  }
  line.push_back('\n');
  absl::MutexLock lock(&mu_);
  sink_(line);
}

}  // namespace stepproof::service
