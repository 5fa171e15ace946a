#include "provenance/rfc3339.h"

#include <cstdio>

#include "absl/strings/str_cat.h"

namespace stepproof::provenance {
namespace {

// Days since 1970-01-01 <-> civil date (H. Hinnant's algorithms).
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

void CivilFromDays(int64_t z, int64_t* y, unsigned* m, unsigned* d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = static_cast<int64_t>(yoe) + era * 400 + (*m <= 2);
}

int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

}  // namespace

std::string FormatRfc3339Millis(int64_t unix_ms) {
  int64_t days = FloorDiv(unix_ms, 86400000);
  int64_t rem = unix_ms - days * 86400000;
  int64_t y;
  unsigned m, d;
  CivilFromDays(days, &y, &m, &d);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04lld-%02u-%02uT%02lld:%02lld:%02lld.%03lldZ",
                static_cast<long long>(y), m, d,
                static_cast<long long>(rem / 3600000),
                static_cast<long long>(rem / 60000 % 60),
                static_cast<long long>(rem / 1000 % 60),
                static_cast<long long>(rem % 1000));
  return buf;
}

absl::StatusOr<int64_t> ParseRfc3339Millis(absl::string_view text) {
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("timestamp \"", text, "\": ", why,
                     " (want YYYY-MM-DDTHH:MM:SS.mmmZ, UTC)"));
  };
  static constexpr absl::string_view kShape = "dddd-dd-ddTdd:dd:dd.dddZ";
  if (text.size() != kShape.size()) return bad("wrong length");
  for (size_t i = 0; i < kShape.size(); ++i) {
    char want = kShape[i], got = text[i];
    if (want == 'd' ? (got < '0' || got > '9') : got != want) {
      return bad("malformed");
    }
  }
  auto num = [&](size_t pos, size_t len) {
    int64_t v = 0;
    for (size_t i = pos; i < pos + len; ++i) v = v * 10 + (text[i] - '0');
    return v;
  };
  int64_t y = num(0, 4), mo = num(5, 2), d = num(8, 2), h = num(11, 2),
          mi = num(14, 2), s = num(17, 2), ms = num(20, 3);
  if (mo < 1 || mo > 12) return bad("month out of range");
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  int64_t mdays = kDays[mo - 1] + (mo == 2 && leap ? 1 : 0);
  if (d < 1 || d > mdays) return bad("day out of range");
  if (h > 23 || mi > 59 || s > 59) return bad("time of day out of range");
  int64_t days = DaysFromCivil(y, static_cast<unsigned>(mo),
                               static_cast<unsigned>(d));
  return days * 86400000 + h * 3600000 + mi * 60000 + s * 1000 + ms;
}

}  // namespace stepproof::provenance
