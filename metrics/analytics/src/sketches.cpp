#include "dnsmon/analytics/detail/sketches.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <string>

namespace dnsmon::detail {

namespace {

unsigned checked_precision(unsigned precision) {
  if (precision < HyperLogLog::kMinPrecision || precision > HyperLogLog::kMaxPrecision) {
    throw std::invalid_argument("HyperLogLog precision must be in [" +
                                std::to_string(HyperLogLog::kMinPrecision) + ", " +
                                std::to_string(HyperLogLog::kMaxPrecision) + "]");
  }
  return precision;
}

}  // namespace

HyperLogLog::HyperLogLog(Uncleared /*tag*/, unsigned precision)
    : registers_(std::size_t{1} << checked_precision(precision)), precision_(precision) {
}

HyperLogLog::HyperLogLog(unsigned precision) : HyperLogLog(kUncleared, precision) {
  clear();
}

namespace {

// Ertl, "New cardinality estimation algorithms for HyperLogLog sketches" (2017), section 4.
// sigma() folds the empty registers in (the linear-counting term), tau() the saturated ones.
double sigma(double x) noexcept {
  if (x == 1.0) {
    return std::numeric_limits<double>::infinity();  // every register empty: estimate 0
  }
  double y = 1.0;
  double z = x;
  for (;;) {
    x *= x;
    const double z_old = z;
    z += x * y;
    y += y;
    if (z == z_old) {
      return z;
    }
  }
}

double tau(double x) noexcept {
  if (x == 0.0 || x == 1.0) {
    return 0.0;
  }
  double y = 1.0;
  double z = 1.0 - x;
  for (;;) {
    x = std::sqrt(x);
    const double z_old = z;
    y *= 0.5;
    z -= (1.0 - x) * (1.0 - x) * y;
    if (z == z_old) {
      return z / 3.0;
    }
  }
}

}  // namespace

double HyperLogLog::estimate() const noexcept {
  const unsigned q = 64 - precision_;  // register values are 0 .. q + 1
  std::array<double, 66> histogram{};
  for (const std::uint8_t r : registers_) {
    histogram[r] += 1.0;
  }
  const auto m = static_cast<double>(registers_.size());
  double z = m * tau(1.0 - histogram[q + 1] / m);
  for (unsigned k = q; k >= 1; --k) {
    z = 0.5 * (z + histogram[k]);
  }
  z += m * sigma(histogram[0] / m);
  constexpr double kAlphaInf = 0.7213475204444817;  // 1 / (2 ln 2)
  return kAlphaInf * m * m / z;
}

bool HyperLogLog::merge(const HyperLogLog& other) noexcept {
  if (other.precision_ != precision_) {
    return false;
  }
  for (std::size_t i = 0; i < registers_.size(); ++i) {
    registers_[i] = std::max(registers_[i], other.registers_[i]);
  }
  return true;
}

void HyperLogLog::clear() noexcept {
  std::fill(registers_.begin(), registers_.end(), std::uint8_t{0});
}

double HyperLogLog::standard_error(unsigned precision) noexcept {
  return 1.04 / std::sqrt(std::ldexp(1.0, static_cast<int>(precision)));
}

}  // namespace dnsmon::detail
