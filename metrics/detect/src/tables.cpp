#include "dnsmon/detect/tables.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "dnsmon/common/civil_time.hpp"
#include "dnsmon/common/hash.hpp"

namespace dnsmon::detect {
namespace {

constexpr unsigned kWays = 8;
constexpr unsigned kSeenWays = 4;

std::uint64_t remix(std::uint64_t h, std::uint64_t i) noexcept {
  h ^= (i + 1) * 0x9e3779b97f4a7c15ULL;
  h ^= h >> 31U;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 29U;
  return h;
}

// (hi 64 bits of h × n): an index in [0, n) without a division.
std::uint64_t reduce(std::uint64_t h, std::uint64_t n) noexcept {
  __extension__ using U128 = unsigned __int128;
  return static_cast<std::uint64_t>((static_cast<U128>(h) * n) >> 64U);
}

std::uint16_t sat16(std::uint32_t v) noexcept {
  return static_cast<std::uint16_t>(std::min<std::uint32_t>(v, 0xffff));
}

// "2016-05-04" for a logical day number.
std::string day_text(Day d) {
  const CivilDate date = civil_from_days(d);
  std::array<char, 48> buf{};
  std::snprintf(buf.data(), buf.size(), "%04lld-%02u-%02u", static_cast<long long>(date.year),
                date.month, date.day);
  return buf.data();
}

}  // namespace

// --- Doorkeeper ---------------------------------------------------------------------------

Doorkeeper::Doorkeeper(std::uint64_t bits)
    : words_(std::max<std::uint64_t>(1, (bits + 63) / 64)), bits_(words_.size() * 64) {
}

bool Doorkeeper::test_and_set(std::uint64_t key) noexcept {
  bool all = true;
  for (std::uint64_t i = 0; i < 4; ++i) {
    const std::uint64_t bit = reduce(remix(key, i), bits_);
    std::uint64_t& w = words_[bit / 64];
    const std::uint64_t mask = std::uint64_t{1} << (bit % 64);
    all = all && (w & mask) != 0;
    w |= mask;
  }
  return all;
}

void Doorkeeper::clear() noexcept {
  std::fill(words_.begin(), words_.end(), 0);
}

// --- SeenFilter ---------------------------------------------------------------------------

SeenFilter::SeenFilter(std::uint64_t entries)
    : slots_(std::max<std::uint64_t>(kSeenWays, (entries + kSeenWays - 1) / kSeenWays * kSeenWays)),
      buckets_(slots_.size() / kSeenWays) {
}

void SeenFilter::insert(std::uint64_t key, Record r) noexcept {
  const std::uint64_t h = remix(key, 17);
  const auto fp = static_cast<std::uint16_t>((h & 0xffffU) | 1U);
  Slot* b = &slots_[reduce(h >> 16U, buckets_) * kSeenWays];
  Slot* victim = b;
  for (unsigned i = 0; i < kSeenWays; ++i) {
    if (b[i].fp == fp || b[i].fp == 0) {
      victim = &b[i];
      break;
    }
    if (b[i].last_active < victim->last_active) {
      victim = &b[i];
    }
  }
  if (victim->fp == 0) {
    ++used_;
  }
  *victim = {fp, r.first_seen, r.last_active};
}

bool SeenFilter::take(std::uint64_t key, Record& out) noexcept {
  const std::uint64_t h = remix(key, 17);
  const auto fp = static_cast<std::uint16_t>((h & 0xffffU) | 1U);
  Slot* b = &slots_[reduce(h >> 16U, buckets_) * kSeenWays];
  for (unsigned i = 0; i < kSeenWays; ++i) {
    if (b[i].fp == fp) {
      out = {b[i].first_seen, b[i].last_active};
      b[i] = {};
      --used_;
      return true;
    }
  }
  return false;
}

// --- BaseEntry ----------------------------------------------------------------------------

std::uint32_t BaseEntry::events_in(Day today, unsigned days) const noexcept {
  if (last_active == 0 || today < last_active ||
      static_cast<unsigned>(today - last_active) >= days) {
    return 0;
  }
  std::uint32_t sum = 0;
  // The ring holds the days (last_active - 7, last_active]; count those after today - days.
  for (unsigned back = 0; back < 8; ++back) {
    const int d = last_active - static_cast<int>(back);
    if (d <= static_cast<int>(today) - static_cast<int>(days) || d <= 0) {
      break;
    }
    sum += day_ring[static_cast<unsigned>(d) % 8];
  }
  return sum;
}

double BaseEntry::distinct_orgs() const noexcept {
  const int zeros = 64 - std::popcount(orgs_bitmap);
  return zeros == 0 ? 64 * std::log(64.0) : -64 * std::log(zeros / 64.0);
}

double BaseEntry::top2_share() const noexcept {
  const double top = static_cast<double>(top_count[0]) + top_count[1];
  const double all = top + others;
  return all > 0 ? top / all : 0;
}

// --- OrgSlots -----------------------------------------------------------------------------

void OrgSlots::add(const LookupEvent& ev, Day day) noexcept {
  if (day != last_day) {
    // Clear the days between the newest one held and today.
    for (int d = last_day + 1; d <= day && d <= last_day + static_cast<int>(kDays); ++d) {
      const auto i = static_cast<std::size_t>(d) % kDays;
      for (auto& slot : days) {
        slot[i] = 0;
      }
      others[i] = 0;
    }
    last_day = std::max(last_day, day);
  }
  const std::size_t today = day % kDays;
  const auto hash = static_cast<std::uint32_t>(ev.org_hash) | 1U;
  std::size_t free = kSlots;
  for (std::size_t i = 0; i < kSlots; ++i) {
    if (org[i] == hash) {
      days[i][today] = sat16(days[i][today] + 1U);
      return;
    }
    if (free == kSlots) {
      std::uint32_t sum = 0;
      for (const auto n : days[i]) {
        sum += n;
      }
      free = org[i] == 0 || sum == 0 ? i : kSlots;
    }
  }
  if (free == kSlots) {
    others[today] = sat16(others[today] + 1U);
    return;
  }
  org[free] = hash;
  ref[free] = OrgRef::of(ev);
  days[free].fill(0);
  days[free][today] = 1;
}

OrgSlots::Window OrgSlots::window(Day today) const noexcept {
  Window w;
  for (std::size_t back = 0; back < kDays; ++back) {
    const int d = static_cast<int>(today) - static_cast<int>(back);
    if (d <= 0 || d > last_day || last_day - d >= static_cast<int>(kDays)) {
      continue;
    }
    const auto i = static_cast<std::size_t>(d) % kDays;
    for (std::size_t s = 0; s < kSlots; ++s) {
      w.counts[s] += days[s][i];
    }
    w.others += others[i];
  }
  return w;
}

std::uint32_t OrgSlots::Window::total() const noexcept {
  std::uint32_t sum = others;
  for (const auto n : counts) {
    sum += n;
  }
  return sum;
}

std::array<std::size_t, OrgSlots::kSlots> OrgSlots::Window::order() const noexcept {
  std::array<std::size_t, kSlots> idx{0, 1, 2, 3};
  std::stable_sort(idx.begin(), idx.end(),
                   [this](std::size_t a, std::size_t b) { return counts[a] > counts[b]; });
  return idx;
}

bool OrgSlots::in_top2(std::uint64_t org_hash, Day today) const noexcept {
  const Window w = window(today);
  const auto order = w.order();
  const auto hash = static_cast<std::uint32_t>(org_hash) | 1U;
  for (std::size_t k = 0; k < 2; ++k) {
    if (org[order[k]] == hash && w.counts[order[k]] > 0) {
      return true;
    }
  }
  return false;
}

// --- DomainState --------------------------------------------------------------------------

DomainState::Capacity DomainState::capacity_for(const DetectOptions& options,
                                                double share) noexcept {
  const auto part = [share](std::uint64_t n) {
    return static_cast<std::uint64_t>(std::ceil(static_cast<double>(n) * share));
  };
  Capacity c;
  c.base = std::max<std::uint64_t>(
               1, static_cast<std::uint64_t>(std::ceil(
                      static_cast<double>(options.memory.base_entries) * share / kWays))) *
           kWays;
  c.candidates = std::max<std::uint64_t>(1, part(options.memory.candidate_entries));
  c.watch = std::max<std::uint64_t>(1, part(options.memory.watch_entries));
  c.seen_slots = std::max<std::uint64_t>(
      kSeenWays,
      (part(options.memory.seen_filter_entries) + kSeenWays - 1) / kSeenWays * kSeenWays);
  c.doorkeeper_words = std::max<std::uint64_t>(1, (part(options.memory.doorkeeper_bits) + 63) / 64);
  return c;
}

DomainState::DomainState(const DetectOptions& options, double share, std::uint64_t seed,
                         SharedState* shared)
    : options_(&options),
      seed_(seed),
      qc_(options.detectors.querier_concentration),
      dr_(options.detectors.dormant_reactivation),
      no_(options.detectors.newly_observed),
      own_shared_(shared == nullptr ? std::make_unique<SharedState>(options) : nullptr),
      shared_(shared == nullptr ? own_shared_.get() : shared),
      sets_(capacity_for(options, share).base / kWays),
      base_(capacity_for(options, share).base),
      candidates_(capacity_for(options, share).candidates),
      watch_(capacity_for(options, share).watch),
      seen_(capacity_for(options, share).seen_slots),
      doorkeeper_(capacity_for(options, share).doorkeeper_words * 64) {
  take_lists();
  counters_.capacity[kBase].store(base_.size(), std::memory_order_relaxed);
  counters_.capacity[kCandidate].store(candidates_.size(), std::memory_order_relaxed);
  counters_.capacity[kWatch].store(watch_.size(), std::memory_order_relaxed);
  counters_.seen_filter_capacity.store(seen_.capacity(), std::memory_order_relaxed);
  counters_.bytes[0].store(base_.size() * sizeof(BaseEntry), std::memory_order_relaxed);
  counters_.bytes[1].store(candidates_.size() * sizeof(CandidateEntry), std::memory_order_relaxed);
  counters_.bytes[2].store(watch_.size() * sizeof(WatchEntry), std::memory_order_relaxed);
  counters_.bytes[3].store(seen_.bytes(), std::memory_order_relaxed);
  counters_.bytes[4].store(doorkeeper_.bytes(), std::memory_order_relaxed);
  findings_.reserve(64);
}

void DomainState::take_lists() {
  watch_keys_.clear();
  watch_names_.clear();
  for (const std::string& name : options_->exports.watchlist) {
    watch_keys_.push_back(detail::hash_bytes(name, seed_));
    watch_names_.push_back(name);
  }
  allow_orgs_.clear();
  allow_org_names_.clear();
  for (const std::string& org : options_->exports.allowlist_orgs) {
    if (const auto prefix = parse_cidr(org)) {
      allow_orgs_.push_back(*prefix);
    } else {
      allow_org_names_.push_back(org);
    }
  }
}

void DomainState::reconfigure(const DetectOptions& options) {
  const std::vector<std::uint64_t> before = watch_keys_;
  options_ = &options;
  qc_ = options.detectors.querier_concentration;
  dr_ = options.detectors.dormant_reactivation;
  no_ = options.detectors.newly_observed;
  take_lists();
  const auto listed = [this](std::uint64_t key) {
    return std::find(watch_keys_.begin(), watch_keys_.end(), key) != watch_keys_.end();
  };
  // Watch entries sit at their domain's position in the list: those still listed move to their
  // new position, the others go.
  std::vector<WatchEntry> kept;
  for (const WatchEntry& w : watch_) {
    if (w.key != 0 && listed(w.key)) {
      kept.push_back(w);
    }
  }
  std::fill(watch_.begin(), watch_.end(), WatchEntry{});
  for (const WatchEntry& w : kept) {
    for (std::size_t i = 0; i < watch_keys_.size() && i < watch_.size(); ++i) {
      if (watch_keys_[i] == w.key) {
        watch_[i] = w;
      }
    }
  }
  counters_.entries[kWatch].store(
      static_cast<std::uint64_t>(std::count_if(watch_.begin(), watch_.end(),
                                               [](const WatchEntry& w) { return w.key != 0; })),
      std::memory_order_relaxed);
  // The pins of the base table: dropped for the domains no longer listed (but not for those
  // covert_pair auto-watched), set for the listed ones already in the table.
  for (const std::uint64_t key : before) {
    BaseEntry* e = listed(key) ? nullptr : find_mut(key | 1U);
    if (e == nullptr) {
      continue;
    }
    const CandidateEntry* c = candidate(*e);
    if (c == nullptr || (c->marks.lifecycle & CandidateMarks::kLifeAutoWatched) == 0) {
      e->flags &= static_cast<std::uint8_t>(~BaseEntry::kWatched);
    }
  }
  for (const std::uint64_t key : watch_keys_) {
    if (BaseEntry* e = find_mut(key | 1U); e != nullptr) {
      e->flags |= BaseEntry::kWatched;
    }
  }
}

BaseEntry* DomainState::find_mut(std::uint64_t key) noexcept {
  BaseEntry* set = &base_[reduce(key, sets_) * kWays];
  for (unsigned i = 0; i < kWays; ++i) {
    if (set[i].key == key) {
      return &set[i];
    }
  }
  return nullptr;
}

void DomainState::prefetch(std::uint64_t domain_hash) const noexcept {
  // Every cache line of the set: the probe reads each way's key, update() the whole entry.
  constexpr std::size_t kLine = 64;
  constexpr std::size_t kSetBytes = kWays * sizeof(BaseEntry);
  const char* set =
      reinterpret_cast<const char*>(base_.data() + reduce(domain_hash | 1U, sets_) * kWays);
  for (std::size_t off = 0; off < kSetBytes; off += kLine) {
    __builtin_prefetch(set + off);
  }
  __builtin_prefetch(set + kSetBytes - 1);  // the set's last line, when it does not start one
}

const BaseEntry* DomainState::find(std::uint64_t key) const noexcept {
  return const_cast<DomainState*>(this)->find_mut(key | 1U);
}

BaseEntry* DomainState::admit(const LookupEvent& ev, std::uint64_t key, Day day,
                              bool successor) noexcept {
  BaseEntry* set = &base_[reduce(key, sets_) * kWays];
  const bool watched =
      std::find(watch_keys_.begin(), watch_keys_.end(), ev.domain_hash) != watch_keys_.end();
  BaseEntry* slot = nullptr;
  for (unsigned i = 0; i < kWays && slot == nullptr; ++i) {
    slot = set[i].key == 0 ? &set[i] : nullptr;
  }
  if (slot == nullptr) {
    // A full set: only a domain seen before today (the doorkeeper), a watched one or a possible
    // successor gets in.
    if (!doorkeeper_.test_and_set(key) && !watched && !successor) {
      add(counters_.rejected[kBase], 1);
      return nullptr;
    }
    double lowest = std::numeric_limits<double>::infinity();
    for (unsigned i = 0; i < kWays; ++i) {
      const BaseEntry& e = set[i];
      if (e.candidate != 0 || (e.flags & BaseEntry::kWatched) != 0) {
        continue;
      }
      const double events7 = e.events_in(day, 7);
      const double orgs = e.distinct_orgs();
      const double r = std::log2(1 + events7) + ((orgs <= 3 && events7 >= 5) ? 4 : 0) -
                       (orgs >= 32 ? 4 : 0) - (day - e.last_active) / 7.0;
      if (r < lowest) {
        lowest = r;
        slot = &set[i];
      }
    }
    if (slot == nullptr) {
      add(counters_.rejected[kBase], 1);
      return nullptr;
    }
    seen_.insert(slot->key, {slot->first_seen, slot->last_active});
    add(counters_.evictions[kBase], 1);
    add(counters_.entries[kBase], -1);
  }
  *slot = BaseEntry{};
  slot->key = key;
  slot->first_seen = day;
  SeenFilter::Record before;
  if (seen_.take(key, before)) {
    slot->first_seen = before.first_seen;
    slot->last_active = before.last_active;  // update() moves it to prev_active
  } else if (day >= first_day_ + no_.warmup_days) {
    slot->flags |= BaseEntry::kNewPending;  // a first sighting after the warm-up
  }
  if (watched) {
    slot->flags |= BaseEntry::kWatched;
  }
  add(counters_.entries[kBase], 1);
  return slot;
}

Finding& DomainState::emit(Detector d, std::string_view event, std::string_view domain,
                           std::int64_t logical_ns, double score, Severity severity) {
  Finding& f = findings_.emplace_back();
  f.detector = d;
  f.event = event;
  f.domain = domain;
  f.logical_ns = logical_ns;
  f.score = score;
  f.severity = severity;
  return f;
}

void DomainState::on_query(const LookupEvent& ev, Day day, std::int64_t logical_ns) noexcept {
  BaseEntry* e = find_mut(ev.domain_hash | 1U);
  if (e != nullptr && e->candidate != 0) {
    daily_on_query(candidates_[e->candidate - 1], ev, day);
  }
  events_on_query(e, ev, day, logical_ns);
}

void DomainState::on_response(const LookupEvent& ev, Day day, std::int64_t logical_ns) noexcept {
  BaseEntry* e = find_mut(ev.domain_hash | 1U);
  if (e == nullptr) {
    e = admit_successor(ev, day, logical_ns);
  }
  if (e != nullptr) {
    if (e->candidate != 0) {
      daily_on_response(candidates_[e->candidate - 1], ev);
    }
    events_on_response(*e, ev, day, logical_ns);
  }
}

BaseEntry* DomainState::admit_successor(const LookupEvent& ev, Day day,
                                        std::int64_t logical_ns) noexcept {
  if (ev.kind != EventKind::Response || !ev.has(kSuccess) || ev.has(kSuffixLeak) ||
      shared_ == nullptr || !shared_->dead_maybe(ev)) {
    return nullptr;
  }
  BaseEntry* e = admit(ev, ev.domain_hash | 1U, day, /*successor=*/true);
  if (e != nullptr) {
    update(*e, ev, day, logical_ns);  // the lookup its query could not count
  }
  return e;
}

void DomainState::on_lookup(const LookupEvent& ev, Day day, std::int64_t logical_ns) noexcept {
  if (first_day_ == 0) {
    first_day_ = day;
  }
  const std::uint64_t key = ev.domain_hash | 1U;  // 0 marks an empty slot
  BaseEntry* e = find_mut(key);
  if (e == nullptr) {
    e = admit(ev, key, day);
    if (e == nullptr) {
      return;
    }
  }
  update(*e, ev, day, logical_ns);
  counters_.seen_filter_entries.store(seen_.entries(), std::memory_order_relaxed);
}

void DomainState::update(BaseEntry& e, const LookupEvent& ev, Day day,
                         std::int64_t logical_ns) noexcept {
  bool fired = false;
  bool reactivated = false;
  if (day != e.last_active) {
    if (e.last_active != 0 && day > e.last_active) {
      // Clear the ring's days between the last active day and today.
      for (int d = e.last_active + 1; d <= day && d <= e.last_active + 8; ++d) {
        e.day_ring[static_cast<unsigned>(d) % 8] = 0;
      }
      reactivated = day - e.last_active >= static_cast<int>(dr_.min_gap_days);
      e.prev_active = e.last_active;
    } else if (e.last_active == 0) {
      e.day_ring.fill(0);
    }
    e.last_active = std::max(e.last_active, day);
  }
  e.day_ring[day % 8] = sat16(e.day_ring[day % 8] + 1U);
  e.total_events += e.total_events != 0xffffffffU ? 1 : 0;
  e.last_seen_s = static_cast<std::uint32_t>(
      std::min<std::int64_t>(std::max<std::int64_t>(logical_ns / 1'000'000'000, 0), 0xffffffff));
  // The top-2 organisations and the others. An organisation outside the two takes the smaller
  // slot with probability 1/(that slot's count + 1) (a deterministic draw from the key, the
  // organisation and the event count), the slot's count moving to the others; else it counts among
  // the others. Either way the three counts hold the same events, and an organisation that keeps
  // coming takes the slot after about as many events as the slot's count.
  const auto org = static_cast<std::uint32_t>(ev.org_hash);
  if (e.top_count[0] != 0 && e.top_org[0] == org) {
    e.top_count[0] = sat16(e.top_count[0] + 1U);
  } else if (e.top_count[1] != 0 && e.top_org[1] == org) {
    e.top_count[1] = sat16(e.top_count[1] + 1U);
  } else if (e.top_count[0] == 0 || e.top_count[1] == 0) {
    const unsigned i = e.top_count[0] == 0 ? 0 : 1;
    e.top_org[i] = org;
    e.top_count[i] = 1;
  } else if (remix(e.key ^ org, e.total_events) % (e.top_count[1] + 1U) == 0) {
    e.others = sat16(e.others + std::uint32_t{e.top_count[1]});
    e.top_org[1] = org;
    e.top_count[1] = 1;
  } else {
    e.others = sat16(e.others + 1U);
  }
  if (e.top_count[1] > e.top_count[0]) {
    std::swap(e.top_count[0], e.top_count[1]);
    std::swap(e.top_org[0], e.top_org[1]);
  }
  e.orgs_bitmap |= std::uint64_t{1} << (ev.org_hash >> 58U);
  (void)maybe_promote(e, ev, day, reactivated);
  if (e.candidate != 0) {
    CandidateEntry& c = candidates_[e.candidate - 1];
    if (c.last_active != day) {
      for (int d = c.last_active + 1; d <= day && d <= c.last_active + 64; ++d) {
        c.day_ring[static_cast<unsigned>(d) % 64] = 0;
      }
      c.last_active = day;
    }
    c.day_ring[day % 64] = sat16(c.day_ring[day % 64] + 1U);
    c.orgs.add(ev, day);
    // dormant_reactivation (4.2): a run after >= min_gap_days of silence, with
    // >= min_history_days of history, reaching min_events on min_active_days days within its
    // post window, evaluated as it happens.
    if (reactivated && e.first_seen != 0 &&
        day - e.first_seen >= static_cast<int>(dr_.min_history_days)) {
      c.reactivation_pending = 1;
      c.run_start = day;
      c.marks.lifecycle = 0;  // a new episode
      c.marks.episode_start = day;
      c.marks.covert_max = 0;
      c.gap_days = static_cast<Day>(day - e.prev_active);
      c.history_days = static_cast<Day>(day - e.first_seen);
    }
    if (c.reactivation_pending != 0) {
      if (day - c.run_start >= static_cast<int>(std::min(dr_.post_window_days, 64U))) {
        c.reactivation_pending = 0;  // the post window closed without enough events
      } else {
        std::uint32_t events = 0, active = 0;
        for (unsigned d = c.run_start; d <= day; ++d) {
          events += c.day_ring[d % 64];
          active += c.day_ring[d % 64] != 0 ? 1U : 0U;
        }
        if (events >= dr_.min_events && active >= dr_.min_active_days) {
          c.reactivation_pending = 0;
          c.last_flagged = day;
          c.marks.lifecycle |= CandidateMarks::kLifeReactivated;
          const double score = dormant_reactivation_score(c.gap_days);
          c.marks.set_score(Detector::DormantReactivation, score, day);
          Finding& f = emit(Detector::DormantReactivation, "reactivated", c.domain(), logical_ns,
                            score, kDormantReactivationSeverity);
          f.reasons = kReasonReactivated;
          f.detail_text("run_start", day_text(c.run_start));
          f.detail("gap_days", std::int64_t{c.gap_days});
          f.detail("history_days", std::int64_t{c.history_days});
          f.detail("events", std::int64_t{events});
          f.detail("active_days", std::int64_t{active});
          fired = true;
        }
      }
    }
  }
  // newly_observed (4.3): a first sighting after the warm-up, then min_events_7d events within
  // 7 days of it.
  if ((e.flags & BaseEntry::kNewPending) != 0 && !fired) {
    if (day - e.first_seen >= 7) {
      e.flags &= static_cast<std::uint8_t>(~BaseEntry::kNewPending);
    } else if (const std::uint32_t events = e.events_in(day, 7); events >= no_.min_events_7d) {
      e.flags &= static_cast<std::uint8_t>(~BaseEntry::kNewPending);
      CandidateEntry* c = e.candidate != 0 ? &candidates_[e.candidate - 1] : nullptr;
      if (c != nullptr) {
        c->marks.set_score(Detector::NewlyObserved, 1, day);
        if ((c->marks.lifecycle & CandidateMarks::kLifeReactivated) == 0) {
          c->marks.lifecycle |= CandidateMarks::kLifeNew;
          c->marks.episode_start = e.first_seen;
        }
      }
      Finding& f =
          emit(Detector::NewlyObserved, "new", ev.domain(), logical_ns, 0, kNewlyObservedSeverity);
      f.reasons = kReasonNew;
      f.detail_text("first_seen", day_text(e.first_seen));
      f.detail("events_7d", std::int64_t{events});
    }
  }
  if ((e.flags & BaseEntry::kWatched) != 0) {
    for (std::size_t i = 0; i < watch_keys_.size() && i < watch_.size(); ++i) {
      if (watch_keys_[i] != ev.domain_hash) {
        continue;
      }
      WatchEntry& w = watch_[i];
      if (w.key == 0) {
        w.key = ev.domain_hash;
        w.name_len = static_cast<std::uint8_t>(std::min<std::size_t>(watch_names_[i].size(), 255));
        std::copy_n(watch_names_[i].data(), w.name_len, w.name.data());
        add(counters_.entries[kWatch], 1);
      }
      if (w.last_active != day) {
        for (int d = w.last_active + 1; d <= day && d <= w.last_active + 180; ++d) {
          w.day_ring[static_cast<unsigned>(d) % 180] = 0;
        }
        w.last_active = day;
      }
      w.day_ring[day % 180] = sat16(w.day_ring[day % 180] + 1U);
    }
  }
  if (e.candidate != 0) {
    daily_on_lookup(e, candidates_[e.candidate - 1], ev, day, logical_ns);
  }
  burst_on_lookup(e, ev, day, logical_ns);
}

CandidateEntry* DomainState::maybe_promote(BaseEntry& e, const LookupEvent& ev, Day day,
                                           bool reactivated, bool force) noexcept {
  if (e.candidate != 0) {
    return &candidates_[e.candidate - 1];
  }
  // Tried on the first event of a day, when the 7-day count reaches 10, on a reactivation and
  // for a watched domain: at most a few scans of the tier per domain and day.
  const std::uint32_t events7 = e.events_in(day, 7);
  const bool watched = (e.flags & BaseEntry::kWatched) != 0;
  const bool try_now = e.day_ring[day % 8] == 1 || events7 == 10 || reactivated || watched || force;
  const bool concentrated = events7 >= 10 && e.distinct_orgs() <= 3;
  if (!try_now || (!concentrated && !reactivated && !watched && !force)) {
    return nullptr;
  }
  // A free candidate while the tier fills; then, from a hand that moves on, the least recently
  // active of the first kCandidateSample entries not flagged in the last 14 days (sampled LRU:
  // a bounded scan per promotion, where a scan of the whole tier cost more than the detectors).
  const std::size_t n = candidates_.size();
  std::size_t pick = n;
  if (candidates_used_ < n) {
    for (std::size_t k = 0; k < n; ++k) {
      const std::size_t i = (candidate_hand_ + k) % n;
      if (candidates_[i].key == 0) {
        pick = i;
        candidate_hand_ = (i + 1) % n;
        ++candidates_used_;
        break;
      }
    }
    if (pick == n) {
      candidates_used_ = n;  // full (as after loading a checkpoint)
    }
  }
  if (pick == n) {
    Day oldest = std::numeric_limits<Day>::max();
    std::size_t k = 0;
    for (; k < n && (pick == n || k < kCandidateSample); ++k) {
      const CandidateEntry& c = candidates_[(candidate_hand_ + k) % n];
      if ((c.last_flagged == 0 || day - c.last_flagged >= 14) && c.last_active < oldest) {
        oldest = c.last_active;
        pick = (candidate_hand_ + k) % n;
      }
    }
    candidate_hand_ = n == 0 ? 0 : (candidate_hand_ + k) % n;
  }
  if (pick == candidates_.size()) {
    add(counters_.rejected[kCandidate], 1);
    return nullptr;
  }
  CandidateEntry& c = candidates_[pick];
  if (c.key != 0) {
    if (BaseEntry* old = find_mut(c.key); old != nullptr) {
      old->candidate = 0;
    }
    add(counters_.evictions[kCandidate], 1);
  } else {
    add(counters_.entries[kCandidate], 1);
  }
  c = CandidateEntry{};
  c.key = e.key;
  c.promoted = day;
  c.last_active = e.last_active;
  const std::string_view name = ev.domain();
  c.name_len = static_cast<std::uint8_t>(name.size());
  std::copy(name.begin(), name.end(), c.name.begin());
  // The base ring's last 8 days start the candidate's 64-day ring (today's event is added by
  // the caller).
  for (unsigned back = 0; back < 8 && day > back; ++back) {
    const unsigned d = day - back;
    c.day_ring[d % 64] = static_cast<std::uint16_t>(e.day_ring[d % 8] -
                                                    (back == 0 && e.day_ring[d % 8] > 0 ? 1 : 0));
  }
  c.marks.episode_start = e.first_seen;
  e.candidate = static_cast<std::uint32_t>(pick + 1);
  return &c;
}

}  // namespace dnsmon::detect
