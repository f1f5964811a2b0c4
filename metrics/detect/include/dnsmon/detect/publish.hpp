// The per-domain series of the export (detection spec 4.10): what each shard publishes at its
// day boundary about the domains its detectors flagged, and what the engine hands the exporter
// after choosing among them (the top N per detector by score, the watched domains, and the
// domains held for a while after they dropped out).
//
// Thread-safety: plain data. Allocation: at day boundaries and per scrape only.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "dnsmon/detect/finding.hpp"
#include "dnsmon/detect/formulas.hpp"

namespace dnsmon::detect {

struct DomainSeries {
  std::string domain;  // the registrable domain, as the event log writes it
  // The latest score of each detector that flagged the domain in the last 14 logical days (0:
  // none), and its severity.
  std::array<float, kDetectors> score{};
  std::array<Severity, kDetectors> severity{};
  std::uint16_t covert_reasons = 0;  // Reason bits of the latest covert_pair evaluation
  std::uint32_t events_1d = 0, events_14d = 0;
  double orgs_any = 0;  // distinct organisations over 14 days
  std::uint32_t orgs_1pct = 0;
  double top2_share = 0;
  float iat_cv = 0, burstiness = 0, beacon_score = 0, beacon_period_s = 0;
  double failing_s = -1;  // logical seconds since the first failure after the last success; -1 none
  std::uint32_t failures_since_success = 0;
  bool watched = false;
  std::int64_t last_seen_s = 0;  // logical time of the latest event: ties go to the most recent
};

struct PublishedDomains {
  std::vector<DomainSeries> domains;  // each detector's top N of the shard and its watched domains
  std::array<std::uint64_t, kDetectors> flagged{};  // domains with a score, all of them
};

// Escapes a domain for a label value: lowercase letters, digits, '-', '_' and '.' stay, every
// other byte becomes \xHH.
[[nodiscard]] std::string domain_label(std::string_view domain);

}  // namespace dnsmon::detect
