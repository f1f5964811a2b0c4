#include "dnsmon/detect/finding.hpp"

#include <array>
#include <cstdio>

namespace dnsmon::detect {

std::string_view to_string(Detector d) noexcept {
  static constexpr std::array<std::string_view, kDetectors> kNames = {"querier_concentration",
                                                                      "dormant_reactivation",
                                                                      "newly_observed",
                                                                      "burst",
                                                                      "aggregate_anomaly",
                                                                      "beacon",
                                                                      "tunneling",
                                                                      "disappearance",
                                                                      "successor_name",
                                                                      "covert_pair",
                                                                      "suffix_leak"};
  return kNames[static_cast<std::size_t>(d)];
}

std::string_view severity_label(std::size_t i) noexcept {
  static constexpr std::array<std::string_view, kSeverityLabels> kNames = {
      "info", "low", "medium", "high", "critical", "suppressed"};
  return i < kNames.size() ? kNames[i] : "info";
}

std::string_view reason_label(std::size_t bit) noexcept {
  static constexpr std::array<std::string_view, kReasons> kNames = {
      "reactivated",  "new",         "accelerating",
      "intermittent", "disappeared", "disappeared_persisting",
      "successor",    "suffix_leak", "cache_refresh",
      "txt_heavy",    "level_shift"};
  return bit < kNames.size() ? kNames[bit] : "";
}

void Finding::detail(std::string key, double value) {
  std::array<char, 32> buf{};
  std::snprintf(buf.data(), buf.size(), "%.4g", value);
  details.emplace_back(std::move(key), buf.data());
}

void Finding::detail(std::string key, std::int64_t value) {
  details.emplace_back(std::move(key), std::to_string(value));
}

void Finding::detail_text(std::string key, std::string_view text) {
  details.emplace_back(std::move(key), json_string(text));
}

void Finding::detail_org(std::string key, const OrgRef& org) {
  org_details.emplace_back(std::move(key), org);
}

std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u >= 0x7f) {
      std::array<char, 8> buf{};
      std::snprintf(buf.data(), buf.size(), "\\u%04x", u);
      out += buf.data();
    } else {
      out += c;
    }
  }
  return out + "\"";
}

}  // namespace dnsmon::detect
