// Days since 1970-01-01 of a proleptic Gregorian date, and back (H. Hinnant's public-domain
// algorithms, "chrono-Compatible Low-Level Date Algorithms"): for the detection's logical days
// and RFC 3339 instants, and the scenario generator's dates.
//
// Thread-safety: pure functions. Allocation: none.
#pragma once

#include <cstdint>

namespace dnsmon {

struct CivilDate {
  std::int64_t year = 1970;
  unsigned month = 1;  // 1 to 12
  unsigned day = 1;    // 1 to 31
};

constexpr std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) noexcept {
  y -= m <= 2 ? 1 : 0;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

constexpr CivilDate civil_from_days(std::int64_t z) noexcept {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  CivilDate out;
  out.day = doy - (153 * mp + 2) / 5 + 1;
  out.month = mp < 10 ? mp + 3 : mp - 9;
  out.year = static_cast<std::int64_t>(yoe) + era * 400 + (out.month <= 2 ? 1 : 0);
  return out;
}

static_assert(days_from_civil(1970, 1, 1) == 0 && days_from_civil(2016, 4, 4) == 16895);
static_assert(civil_from_days(16895).year == 2016 && civil_from_days(16895).month == 4 &&
              civil_from_days(16895).day == 4);

}  // namespace dnsmon
