// The per-domain series a shard publishes at its day boundary (detection spec 4.10).
#include <algorithm>
#include <array>
#include <cstdio>

#include "dnsmon/detect/tables.hpp"

namespace dnsmon::detect {

std::string domain_label(std::string_view domain) {
  std::string out;
  out.reserve(domain.size());
  for (const char c : domain) {
    const bool plain =
        (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
    if (plain) {
      out += c;
    } else {
      std::array<char, 8> buf{};
      std::snprintf(buf.data(), buf.size(), "\\x%02x", static_cast<unsigned char>(c));
      out += buf.data();
    }
  }
  return out;
}

namespace {

// The severity a detector's latest score stands for on the per-domain flag series.
Severity severity_of(Detector d, const CandidateMarks& m, double score,
                     const CovertPairParams& covert) {
  switch (d) {
    case Detector::CovertPair:
      return covert_pair_severity(score, covert);
    case Detector::QuerierConcentration:
      return kQuerierConcentrationSeverity;
    case Detector::DormantReactivation:
      return kDormantReactivationSeverity;
    case Detector::NewlyObserved:
      return kNewlyObservedSeverity;
    case Detector::Burst:
      return kBurstSeverity;
    case Detector::Beacon:
      return kBeaconSeverity;
    case Detector::Tunneling:
      return kTunnelingSeverity;
    case Detector::Disappearance:
      return (m.lifecycle & CandidateMarks::kLifePersisting) != 0 &&
                     m.covert_max >= CandidateMarks::units(covert.medium)
                 ? Severity::High
                 : Severity::Medium;
    case Detector::SuccessorName:
      return Severity::Medium;
    default:
      return severity_for_score(score);
  }
}

}  // namespace

void DomainState::publish(Day today, std::int64_t logical_ns, std::uint32_t top_n,
                          PublishedDomains& out) const {
  out.domains.clear();
  out.flagged.fill(0);
  const CovertPairParams& covert = options_->detectors.covert_pair;
  std::vector<DomainSeries> all;
  for (const CandidateEntry& c : candidates_) {
    if (c.key == 0) {
      continue;
    }
    const BaseEntry* e = find(c.key);
    const bool watched = e != nullptr && (e->flags & BaseEntry::kWatched) != 0;
    const bool auto_watched = (c.marks.lifecycle & CandidateMarks::kLifeAutoWatched) != 0;
    DomainSeries s;
    bool flagged = false;
    for (std::size_t d = 0; d < kDetectors; ++d) {
      const Day day = c.marks.score_day[d];
      if (c.marks.score[d] == 0 || day == 0 || day + 13 < today) {
        continue;
      }
      const auto det = static_cast<Detector>(d);
      s.score[d] = static_cast<float>(c.marks.score_of(det));
      s.severity[d] = severity_of(det, c.marks, s.score[d], covert);
      ++out.flagged[d];
      flagged = true;
    }
    if (!flagged && !watched && !auto_watched) {
      continue;
    }
    s.domain = c.domain();
    s.watched = watched || auto_watched;
    s.covert_reasons = c.marks.reasons;
    const OrgSlots::Window w = c.orgs.window(today);
    s.events_14d = w.total();
    s.events_1d = c.last_active == today ? c.day_ring[today % 64] : 0;
    std::uint32_t orgs = 0;
    for (std::size_t i = 0; i < OrgSlots::kSlots; ++i) {
      orgs += w.counts[i] > 0 ? 1U : 0U;
      s.orgs_1pct += w.counts[i] > 0 && w.counts[i] * 100 >= s.events_14d ? 1U : 0U;
    }
    s.orgs_any =
        e != nullptr ? std::max<double>(orgs + (w.others > 0 ? 1 : 0), e->distinct_orgs()) : orgs;
    const auto order = w.order();
    s.top2_share = s.events_14d > 0
                       ? static_cast<double>(w.counts[order[0]] + w.counts[order[1]]) / s.events_14d
                       : 0;
    s.iat_cv = c.marks.iat_cv;
    s.burstiness = c.marks.burstiness;
    s.beacon_score = c.marks.beacon_score;
    s.beacon_period_s = c.marks.beacon_period_s;
    if (const DisappearanceState& d = c.events.disappearance; d.failures_since_success > 0) {
      s.failing_s = std::max(0.0, static_cast<double>(logical_ns) / 1e9 - d.fail_since_s);
      s.failures_since_success = d.failures_since_success;
    }
    s.last_seen_s = e != nullptr ? e->last_seen_s : 0;
    all.push_back(std::move(s));
  }
  // Each detector's top N by score, ties by recency, and every watched domain.
  std::vector<bool> keep(all.size(), false);
  std::vector<std::size_t> idx;
  for (std::size_t d = 0; d < kDetectors; ++d) {
    idx.clear();
    for (std::size_t i = 0; i < all.size(); ++i) {
      if (all[i].score[d] > 0) {
        idx.push_back(i);
      }
    }
    const std::size_t n = std::min<std::size_t>(top_n, idx.size());
    std::partial_sort(idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(n), idx.end(),
                      [&](std::size_t a, std::size_t b) {
                        return all[a].score[d] != all[b].score[d]
                                   ? all[a].score[d] > all[b].score[d]
                                   : all[a].last_seen_s > all[b].last_seen_s;
                      });
    for (std::size_t k = 0; k < n; ++k) {
      keep[idx[k]] = true;
    }
  }
  for (std::size_t i = 0; i < all.size(); ++i) {
    if (keep[i] || all[i].watched) {
      out.domains.push_back(std::move(all[i]));
    }
  }
}

}  // namespace dnsmon::detect
