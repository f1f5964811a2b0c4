// What a detector reports (detection spec 4.10): the detector, the event, the domain, a score,
// a severity, reasons from a fixed set and details, turned into one JSON Lines record of the
// event log and counted in dnsmon_detector_events_total{detector, severity}.
//
// Findings are rare (a few per domain and day at most): they are built on the shard threads
// only when a detector fires, and may allocate then. Nothing here runs per lookup event.
//
// Thread-safety: plain data.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dnsmon/detect/event.hpp"
#include "dnsmon/detect/formulas.hpp"

namespace dnsmon::detect {

// The detectors, in the order of the exported label values.
enum class Detector : std::uint8_t {
  QuerierConcentration,
  DormantReactivation,
  NewlyObserved,
  Burst,
  AggregateAnomaly,
  Beacon,
  Tunneling,
  Disappearance,
  SuccessorName,
  CovertPair,
  SuffixLeak,
};

inline constexpr std::size_t kDetectors = 11;

[[nodiscard]] std::string_view to_string(Detector d) noexcept;

// The severities an event is counted under: Severity's five, then "suppressed" (a covert_pair
// medium-or-above over the daily cap, 4.12 item 7).
inline constexpr std::size_t kSeverityLabels = 6;
inline constexpr std::size_t kSuppressed = 5;
[[nodiscard]] std::string_view severity_label(std::size_t i) noexcept;

// The fixed reason set of dnsmon_domain_flag_info (4.10), as bits of Finding::reasons.
inline constexpr std::uint16_t kReasonReactivated = 1U << 0U;
inline constexpr std::uint16_t kReasonNew = 1U << 1U;
inline constexpr std::uint16_t kReasonAccelerating = 1U << 2U;
inline constexpr std::uint16_t kReasonIntermittent = 1U << 3U;
inline constexpr std::uint16_t kReasonDisappeared = 1U << 4U;
inline constexpr std::uint16_t kReasonDisappearedPersisting = 1U << 5U;
inline constexpr std::uint16_t kReasonSuccessor = 1U << 6U;
inline constexpr std::uint16_t kReasonSuffixLeak = 1U << 7U;
inline constexpr std::uint16_t kReasonCacheRefresh = 1U << 8U;
inline constexpr std::uint16_t kReasonTxtHeavy = 1U << 9U;
inline constexpr std::uint16_t kReasonLevelShift = 1U << 10U;

inline constexpr std::size_t kReasons = 11;
// The reason's label value for bit i ("reactivated", ..., "level_shift").
[[nodiscard]] std::string_view reason_label(std::size_t bit) noexcept;

// Enough of an organisation to print its label (OrgResolver::label): one of its clients and how
// the organisation was found. Stored in the candidate tier for each tracked organisation.
struct OrgRef {
  std::array<std::uint8_t, 16> client{};
  std::uint32_t org_index = 0;
  OrgKind org_kind = OrgKind::Prefix;
  std::uint8_t org_bits = 0;
  std::uint16_t reserved = 0;

  static OrgRef of(const LookupEvent& ev) noexcept {
    OrgRef r;
    r.client = ev.client;
    r.org_index = ev.org_index;
    r.org_kind = ev.org_kind;
    r.org_bits = ev.org_bits;
    return r;
  }
};

static_assert(sizeof(OrgRef) == 24);

struct Finding {
  Detector detector = Detector::CovertPair;
  std::string event;   // "reactivated", "transition", "persisting", "score", ...
  std::string domain;  // the registrable domain
  std::int64_t logical_ns = 0;
  double score = 0;
  Severity severity = Severity::Info;
  bool suppressed = false;       // counted as "suppressed", not written (the daily cap)
  std::uint16_t reasons = 0;     // Reason bits
  std::vector<OrgRef> top_orgs;  // printed as "top_orgs": [labels] in the details
  // Organisations printed as "key": "label" in the details (e.g. a beacon's querier).
  std::vector<std::pair<std::string, OrgRef>> org_details;
  // Further details: key and a JSON value as it is written (a number, or a quoted string made
  // with json_string()).
  std::vector<std::pair<std::string, std::string>> details;

  void detail(std::string key, double value);
  void detail(std::string key, std::int64_t value);
  void detail_text(std::string key, std::string_view text);
  void detail_org(std::string key, const OrgRef& org);
};

// A JSON string literal of s: quotes, backslashes and control bytes escaped; bytes >= 0x7f as
// \u00XX so the line stays valid UTF-8 whatever the name holds.
[[nodiscard]] std::string json_string(std::string_view s);

}  // namespace dnsmon::detect
