// The event-level detectors (detection spec 4.6, 4.7, 4.8): tunneling on raw queries,
// disappearance and successor_name on responses, over the state kept in CandidateEntry::events,
// the base entry's response bytes and per-hour name bitmap, and the recently-dead map of the
// SharedState (docs/detection.md, "Event-level detectors").
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>

#include "dnsmon/common/hash.hpp"
#include "dnsmon/detect/tables.hpp"

namespace dnsmon::detect {
namespace {

constexpr std::int64_t kNsPerSecond = 1'000'000'000;
constexpr std::int64_t kNsPerHour = 3600 * kNsPerSecond;
// A base entry whose name bitmap reaches this many of its 64 bits within a logical hour is a
// tunneling suspect (3.4): about 90 distinct names.
constexpr int kSuspectBits = 48;
// A unit is evaluated every this many of its queries (at least as often as every 64th new name)
// and at the hour boundary.
constexpr std::uint8_t kCheckEvery = 64;
constexpr std::uint8_t kRcodeMask = 0x1f;
constexpr std::uint8_t kHadData =
    BaseEntry::kHadDataA | BaseEntry::kHadDataAaaa | BaseEntry::kHadDataOther;
constexpr std::uint64_t kFilterSeed = 0x6465616470617468ULL;  // "deadpath"

std::uint8_t had_data_bit(std::uint16_t qtype) noexcept {
  return qtype == 1 ? BaseEntry::kHadDataA
                    : (qtype == 28 ? BaseEntry::kHadDataAaaa : BaseEntry::kHadDataOther);
}

std::uint8_t rcode_bits(std::uint16_t rcode) noexcept {
  return static_cast<std::uint8_t>(std::min<std::uint16_t>(rcode, kRcodeMask));
}

std::uint32_t org32(std::uint64_t org_hash) noexcept {
  return static_cast<std::uint32_t>(org_hash) | 1U;
}

// The three filter bits of an address.
std::array<std::uint32_t, 3> filter_bits(const std::array<std::uint8_t, 16>& addr) noexcept {
  const std::uint64_t h = detail::hash_bytes(addr.data(), addr.size(), kFilterSeed);
  return {static_cast<std::uint32_t>(h & 0xffffU), static_cast<std::uint32_t>((h >> 16U) & 0xffffU),
          static_cast<std::uint32_t>((h >> 32U) & 0xffffU)};
}

// "192.0.2.25" or "2001:db8::1" for an answer address.
std::string address_text(const std::array<std::uint8_t, 16>& a) {
  std::array<char, 48> buf{};
  const bool v4 = std::all_of(a.begin(), a.begin() + 10, [](std::uint8_t b) { return b == 0; }) &&
                  a[10] == 0xff && a[11] == 0xff;
  if (v4) {
    std::snprintf(buf.data(), buf.size(), "%u.%u.%u.%u", a[12], a[13], a[14], a[15]);
  } else {
    // Plain groups, no "::" compression: only used in the details of a rare event.
    std::snprintf(buf.data(), buf.size(), "%x:%x:%x:%x:%x:%x:%x:%x", (a[0] << 8U) | a[1],
                  (a[2] << 8U) | a[3], (a[4] << 8U) | a[5], (a[6] << 8U) | a[7],
                  (a[8] << 8U) | a[9], (a[10] << 8U) | a[11], (a[12] << 8U) | a[13],
                  (a[14] << 8U) | a[15]);
  }
  return buf.data();
}

std::uint8_t nibble(const TunnelUnit& u, std::size_t i) noexcept {
  return static_cast<std::uint8_t>((static_cast<unsigned>(u.reg[i / 2]) >> ((i % 2) * 4U)) & 0xfU);
}

}  // namespace

// --- SharedState: the recently-dead map ----------------------------------------------------

SharedState::SharedState(const DetectOptions& options, std::size_t shards)
    : aggregate(shards, HoltWintersParams{}, AggregateMonitor::kPendingHours - 1),
      ttl_days_(options.detectors.successor.max_age_days),
      dead_(kDeadEntries) {
}

void SharedState::save(StateSink& out) const {
  out.put(covert_cap);
  out.put(static_cast<std::uint64_t>(dead_.size()));
  for (const DeadRecord& r : dead_) {
    out.put(r);
  }
  out.put(dead_used_);
  out.put(dead_inserted_);
  out.put(dead_dropped_);
  aggregate.save(out);
}

bool SharedState::load(StateSource& in) {
  std::uint64_t n = 0;
  if (!in.get(covert_cap) || !in.get(n) || n != dead_.size()) {
    return false;
  }
  std::uint64_t used = 0;
  for (DeadRecord& r : dead_) {
    if (!in.get(r)) {
      return false;
    }
    used += r.domain_key != 0 ? 1 : 0;
  }
  if (!in.get(dead_used_) || !in.get(dead_inserted_) || !in.get(dead_dropped_) ||
      dead_used_ != used || !aggregate.load(in)) {
    return false;
  }
  rebuild_filter();
  dead_live_.store(static_cast<std::uint32_t>(dead_used_), std::memory_order_release);
  return true;
}

bool SharedState::dead_maybe(const std::array<std::uint8_t, 16>& addr) const noexcept {
  if (!dead_any()) {
    return false;
  }
  for (const std::uint32_t bit : filter_bits(addr)) {
    const std::uint64_t w = filter_[bit / 64].load(std::memory_order_acquire);
    if ((w & (std::uint64_t{1} << (bit % 64))) == 0) {
      return false;
    }
  }
  return true;
}

bool SharedState::dead_maybe(const LookupEvent& response) const noexcept {
  for (std::size_t i = 0; i < response.answer_count && i < LookupEvent::kMaxAnswers; ++i) {
    if (dead_maybe(response.answers[i].addr)) {
      return true;
    }
  }
  return false;
}

void SharedState::filter_add(const std::array<std::uint8_t, 16>& addr) noexcept {
  for (const std::uint32_t bit : filter_bits(addr)) {
    filter_[bit / 64].fetch_or(std::uint64_t{1} << (bit % 64), std::memory_order_release);
  }
}

void SharedState::rebuild_filter() noexcept {
  std::array<std::uint64_t, kDeadFilterWords> words{};
  for (const DeadRecord& r : dead_) {
    if (r.domain_key != 0) {
      for (const std::uint32_t bit : filter_bits(r.addr)) {
        words[bit / 64] |= std::uint64_t{1} << (bit % 64);
      }
    }
  }
  // Each word stored holds every live entry's bits, so a reader between two stores misses none.
  for (std::size_t i = 0; i < kDeadFilterWords; ++i) {
    filter_[i].store(words[i], std::memory_order_release);
  }
  filter_stale_ = 0;
}

void SharedState::expire(std::uint16_t today) noexcept {
  for (DeadRecord& r : dead_) {
    if (r.domain_key != 0 && today > r.died &&
        static_cast<unsigned>(today - r.died) > dead_ttl_days()) {
      r = DeadRecord{};
      --dead_used_;
      ++dead_dropped_;
      ++filter_stale_;
    }
  }
}

void SharedState::dead_insert(const DeadRecord& rec, std::uint16_t today) noexcept {
  // Entries age by whole logical days, so a scan finds nothing new until the day moves on or a
  // reload changes the TTL: the first insertion of each newer day scans, the others do not (a
  // shard a day behind the others would expire no more than the newer day's scan did). A full
  // map scans before it drops its oldest entry.
  const std::uint32_t ttl = dead_ttl_days();
  if (today > expired_day_ || ttl != expired_ttl_ || dead_used_ >= dead_.size()) {
    expire(today);
    expired_day_ = std::max(expired_day_, today);
    expired_ttl_ = ttl;
  }
  DeadRecord* slot = nullptr;
  DeadRecord* oldest = nullptr;
  for (DeadRecord& r : dead_) {
    if (r.domain_key != 0 && r.addr == rec.addr) {
      slot = &r;  // the newest death on an address replaces the older one
      break;
    }
    if (slot == nullptr && r.domain_key == 0) {
      slot = &r;
    }
    if (r.domain_key != 0 && (oldest == nullptr || r.died < oldest->died)) {
      oldest = &r;
    }
  }
  if (slot == nullptr) {
    slot = oldest;  // full: the oldest death goes
    ++dead_dropped_;
    ++filter_stale_;
  } else if (slot->domain_key == 0) {
    ++dead_used_;
  }
  filter_add(rec.addr);
  *slot = rec;
  ++dead_inserted_;
  if (filter_stale_ > dead_used_ / 2 + 64) {
    rebuild_filter();
  }
  dead_live_.store(static_cast<std::uint32_t>(dead_used_), std::memory_order_release);
}

DeadRecord* SharedState::dead_find(const std::array<std::uint8_t, 16>& addr,
                                   std::uint16_t today) noexcept {
  for (DeadRecord& r : dead_) {
    if (r.domain_key != 0 && r.addr == addr) {
      const bool live = today <= r.died || static_cast<unsigned>(today - r.died) <= dead_ttl_days();
      return live ? &r : nullptr;
    }
  }
  return nullptr;
}

// --- DomainState: the event-level detectors ------------------------------------------------

struct EventDetectors {
  // Promotes e at once (a detector needs it), with today's lookups all in the candidate's ring.
  static CandidateEntry* promote(DomainState& s, BaseEntry& e, const LookupEvent& ev,
                                 Day day) noexcept {
    const bool was = e.candidate != 0;
    CandidateEntry* c = s.maybe_promote(e, ev, day, false, /*force=*/true);
    if (c != nullptr && !was && e.last_active == day) {
      c->day_ring[day % 64] = e.day_ring[day % 8];  // the caller adds no event of its own
    }
    return c;
  }

  // Starts the candidate's success history from the base entry's lookups of the last 7 days
  // when the domain was not failing: the base table does not keep successes apart, and a
  // domain answering NOERROR has its lookups succeed. Today's count leaves out the current
  // event, which its own outcome counts.
  static void seed(const BaseEntry& e, CandidateEntry& c, Day day) noexcept {
    EventState& st = c.events;
    if (st.seeded != 0) {
      return;
    }
    st.seeded = 1;
    if (e.consecutive_failures != 0 || (e.last_rcode & kHadData) == 0) {
      return;
    }
    DisappearanceState& d = st.disappearance;
    d.success_days.fill(0);
    d.success_ring_day = day;
    for (int back = 0; back < 7; ++back) {
      const int dd = static_cast<int>(day) - back;
      if (dd <= 0 || dd > e.last_active || e.last_active - dd >= 8) {
        continue;
      }
      std::uint32_t n = e.day_ring[static_cast<unsigned>(dd) % 8];
      if (back == 0 && n > 0) {
        --n;
      }
      d.success_days[static_cast<std::size_t>(dd % 7)] = n;
    }
    d.last_success_s = static_cast<double>(e.last_seen_s);
  }

  // Remembers the newest answer addresses of a success (newest first, distinct).
  static void remember_addresses(EventState& st, const LookupEvent& ev) noexcept {
    for (std::size_t i = ev.answer_count; i-- > 0;) {
      const auto& a = ev.answers[i].addr;
      std::size_t at = 0;
      while (at < st.addr_count && st.addrs[at] != a) {
        ++at;
      }
      if (at == st.addr_count) {
        at = std::min<std::size_t>(st.addr_count, EventState::kAddrs - 1);
        st.addr_count = static_cast<std::uint8_t>(
            std::min<std::size_t>(std::size_t{st.addr_count} + 1, EventState::kAddrs));
      }
      for (std::size_t j = at; j > 0; --j) {
        st.addrs[j] = st.addrs[j - 1];
      }
      st.addrs[0] = a;
    }
  }

  // The candidate's top-2 organisations over the 14 days ending at `day`.
  static std::size_t top2(const CandidateEntry& c, Day day,
                          std::array<std::size_t, 2>& slots) noexcept {
    const OrgSlots::Window w = c.orgs.window(day);
    const auto order = w.order();
    std::size_t n = 0;
    for (std::size_t k = 0; k < 2; ++k) {
      if (w.counts[order[k]] > 0 && c.orgs.org[order[k]] != 0) {
        slots[n++] = order[k];
      }
    }
    return n;
  }

  static bool covert_medium(const DomainState& s, const CandidateEntry& c) noexcept {
    return c.marks.covert_max >= CandidateMarks::units(s.options_->detectors.covert_pair.medium);
  }

  // Records a transition in the recently-dead map, one entry per remembered answer address.
  static void record_dead(DomainState& s, const BaseEntry& e, const CandidateEntry& c, Day day) {
    const EventState& st = c.events;
    if (st.addr_count == 0) {
      return;
    }
    DeadRecord r;
    r.domain_key = e.key;
    std::array<std::size_t, 2> slots{};
    const std::size_t n = top2(c, day, slots);
    for (std::size_t k = 0; k < n; ++k) {
      r.top_org[k] = c.orgs.org[slots[k]];
    }
    r.died = day;
    r.covert_medium = covert_medium(s, c) ? 1 : 0;
    r.name_len = static_cast<std::uint8_t>(std::min<std::size_t>(c.name_len, r.name.size()));
    std::copy_n(c.name.data(), r.name_len, r.name.data());
    const std::lock_guard lock(s.shared_->mutex);
    for (std::size_t i = 0; i < st.addr_count; ++i) {
      r.addr = st.addrs[i];
      s.shared_->dead_insert(r, day);
    }
  }

  // A disappearance event (4.7) of candidate c.
  static void disappearance(DomainState& s, BaseEntry& e, CandidateEntry& c,
                            const DisappearanceEvent& r, Day day, std::int64_t ns) {
    const bool transition = r.kind == DisappearanceEventKind::Transition;
    c.marks.set_score(Detector::Disappearance, r.score, day);
    c.marks.lifecycle |= transition ? CandidateMarks::kLifeDisappeared
                                    : static_cast<std::uint8_t>(CandidateMarks::kLifeDisappeared |
                                                                CandidateMarks::kLifePersisting);
    c.last_flagged = day;
    {
      Finding& f = s.emit(Detector::Disappearance, transition ? "transition" : "persisting",
                          c.domain(), ns, r.score, r.severity);
      f.reasons = transition ? kReasonDisappeared : kReasonDisappearedPersisting;
      std::array<std::size_t, 2> slots{};
      const std::size_t n = top2(c, day, slots);
      for (std::size_t k = 0; k < n; ++k) {
        f.top_orgs.push_back(c.orgs.ref[slots[k]]);
      }
      const DisappearanceState& d = c.events.disappearance;
      f.detail("failures_since_success", std::int64_t{d.failures_since_success});
      f.detail_text("fail_rcode", to_string(d.fail_kind));
    }
    if (transition) {
      record_dead(s, e, c, day);
    }
    s.evaluate_covert(e, c, day, ns, /*immediate=*/true);
  }

  // Collects a successor mark left for disappeared candidate c in the recently-dead map (by
  // its own shard or another), once per change of the shared generation.
  static void collect_mark(DomainState& s, BaseEntry& e, CandidateEntry& c, Day day,
                           std::int64_t ns) {
    constexpr std::uint8_t kWant = CandidateMarks::kLifeDisappeared;
    if ((c.marks.lifecycle & kWant) == 0 ||
        (c.marks.lifecycle & CandidateMarks::kLifeSuccessorFound) != 0) {
      return;
    }
    const std::uint32_t gen = s.shared_->successor_generation.load(std::memory_order_acquire);
    if (gen == c.events.successor_generation) {
      return;
    }
    c.events.successor_generation = gen;
    bool found = false;
    {
      const std::lock_guard lock(s.shared_->mutex);
      for (DeadRecord& r : s.shared_->dead_entries()) {
        if (r.domain_key == c.key && r.successor != 0) {
          r.successor = 2;
          found = true;
        }
      }
    }
    if (found) {
      c.marks.lifecycle |= CandidateMarks::kLifeSuccessorFound;
      c.last_flagged = day;
      s.evaluate_covert(e, c, day, ns, /*immediate=*/true);
    }
  }

  // successor_name (4.8) on the first success of newly observed domain e.
  static void successor(DomainState& s, BaseEntry& e, const LookupEvent& ev, Day day,
                        std::int64_t ns) {
    SharedState& sh = *s.shared_;
    if (!sh.dead_maybe(ev)) {
      return;
    }
    const SuccessorParams& p = s.options_->detectors.successor;
    bool found = false;
    std::uint64_t dead_key = 0;
    DeadRecord dead;
    {
      const std::lock_guard lock(sh.mutex);
      for (std::size_t i = 0; i < ev.answer_count; ++i) {
        DeadRecord* r = sh.dead_find(ev.answers[i].addr, day);
        if (r == nullptr || r->domain_key == e.key) {
          continue;
        }
        // The shared-hosting guard: the newly observed domains answered with this address since
        // it entered the map, this one included.
        const auto* const known = std::find(r->new_domains.begin(), r->new_domains.end(), e.key);
        if (known == r->new_domains.end()) {
          if (r->new_count < r->new_domains.size()) {
            r->new_domains[r->new_count] = e.key;
          }
          r->new_count = static_cast<std::uint8_t>(std::min(r->new_count + 1, 255));
        }
        SuccessorCandidate sc;
        sc.ip_recently_dead = true;
        sc.dead_age_days = day >= r->died ? day - r->died : 0;
        sc.first_querier_in_dead_top2 =
            r->top_org[0] == org32(ev.org_hash) || r->top_org[1] == org32(ev.org_hash);
        sc.domains_for_ip_30d = r->new_count;
        if (!found && successor_name_matches(sc, p)) {
          found = true;
          dead = *r;
          dead_key = r->domain_key;
        }
      }
      if (found) {
        for (DeadRecord& r : sh.dead_entries()) {
          if (r.domain_key == dead_key && r.successor == 0) {
            r.successor = 1;
          }
        }
        sh.successor_generation.fetch_add(1, std::memory_order_release);
      }
    }
    if (!found) {
      return;
    }
    e.flags |= BaseEntry::kWatched;  // auto-watched: pinned in the base table
    CandidateEntry* c = promote(s, e, ev, day);
    const Severity severity = successor_severity(dead.covert_medium != 0);
    if (c != nullptr) {
      c->marks.set_score(Detector::SuccessorName, kSuccessorScore, day);
      c->marks.lifecycle |= CandidateMarks::kLifeAutoWatched;
      c->last_flagged = day;
      remember_addresses(c->events, ev);
    }
    {
      Finding& f =
          s.emit(Detector::SuccessorName, "successor", ev.domain(), ns, kSuccessorScore, severity);
      f.reasons = kReasonSuccessor;
      f.detail_text("predecessor", dead.domain());
      f.detail_text("address", address_text(dead.addr));
      f.detail("dead_days", std::int64_t{day >= dead.died ? day - dead.died : 0});
      f.detail_org("first_querier", OrgRef::of(ev));
    }
    if (c != nullptr) {
      s.evaluate_covert(e, *c, day, ns, /*immediate=*/true);
    }
    // The dead domain on this shard gets its mark now; on another, at its next event.
    if (BaseEntry* d = s.find_mut(dead_key); d != nullptr && d->candidate != 0) {
      CandidateEntry& dc = s.candidates_[d->candidate - 1];
      if (dc.key == dead_key) {
        collect_mark(s, *d, dc, day, ns);
      }
    }
  }

  // Evaluates a tunneling unit (4.6); `ev` is the query that triggered the check, if it is the
  // unit's organisation's.
  static void tunnel_check(DomainState& s, CandidateEntry& c, TunnelUnit& u, const LookupEvent* ev,
                           Day day, std::int64_t ns) {
    TunnelHour h;
    for (std::size_t i = 0; i < 64; ++i) {
      // A hash with the register's index and rank: index in the top 6 bits, rank - 1 zeros next.
      if (const std::uint8_t r = nibble(u, i); r != 0) {
        h.names.add_hash((std::uint64_t{i} << 58U) | (std::uint64_t{1} << (58U - r)));
      }
    }
    h.queries = u.queries;
    h.prefix_len_sum = u.prefix_len_sum;
    h.entropy_sum = u.entropy_q8 / 256.0;
    h.entropy_n = u.entropy_n;
    h.odd = u.odd;
    const TunnelStats st = tunnel_stats(h);
    const TunnelVerdict v = tunneling_verdict(st, s.options_->detectors.tunneling);
    if (!v.fires) {
      return;
    }
    u.fired = 1;
    c.marks.set_score(Detector::Tunneling, v.score, day);
    c.last_flagged = day;
    Finding& f = s.emit(Detector::Tunneling, "tunnel", c.domain(), ns, v.score, kTunnelingSeverity);
    f.reasons = v.txt_heavy ? kReasonTxtHeavy : 0;
    if (ev != nullptr && org32(ev->org_hash) == u.org) {
      f.detail_org("org", OrgRef::of(*ev));
    } else {
      for (std::size_t i = 0; i < OrgSlots::kSlots; ++i) {
        if (c.orgs.org[i] == u.org) {
          f.detail_org("org", c.orgs.ref[i]);
          break;
        }
      }
    }
    f.detail("unique", static_cast<std::int64_t>(std::lround(st.unique)));
    f.detail("mean_prefix_len", st.mean_prefix_len);
    f.detail("entropy", st.mean_entropy);
    f.detail("info_bytes", static_cast<std::int64_t>(std::lround(st.info_bytes)));
    f.detail("odd_share", st.odd_share);
  }

  // A raw query of candidate c for its organisation's unit of the current logical hour.
  static void tunnel_add(DomainState& s, CandidateEntry& c, const LookupEvent& ev,
                         std::uint64_t name_hash, Day day, std::int64_t ns) {
    EventState& st = c.events;
    const auto hour = static_cast<std::uint32_t>(ns / kNsPerHour);
    if (hour < st.hour) {
      return;  // a query older than the hour counted (out of order): left out
    }
    if (hour != st.hour) {
      if (st.hour != 0) {
        // The hour boundary: a last look at the hour that closed, dated at its end.
        const std::int64_t end = (std::int64_t{st.hour} + 1) * kNsPerHour - kNsPerSecond;
        const auto end_day = static_cast<Day>(end / (24 * kNsPerHour));
        for (TunnelUnit& u : st.units) {
          if (u.org != 0 && u.queries != 0 && u.fired == 0) {
            tunnel_check(s, c, u, nullptr, end_day, end);
          }
        }
      }
      st.units = {};
      st.hour = hour;
    }
    const std::uint32_t org = org32(ev.org_hash);
    TunnelUnit* unit = nullptr;
    TunnelUnit* free = nullptr;
    for (TunnelUnit& u : st.units) {
      if (u.org == org) {
        unit = &u;
        break;
      }
      if (u.org == 0 && free == nullptr) {
        free = &u;
      }
    }
    if (unit == nullptr) {
      if (free == nullptr) {
        return;  // the hour's first four organisations have the units (4.6's limitation)
      }
      unit = free;
      unit->org = org;
    }
    TunnelUnit& u = *unit;
    // HyperLogLog (p = 6), 4-bit registers.
    const std::size_t idx = name_hash >> 58U;
    const std::uint64_t rest = name_hash << 6U;
    const auto rank =
        static_cast<std::uint8_t>(rest == 0 ? 15 : std::min(15, std::countl_zero(rest) + 1));
    if (rank > nibble(u, idx)) {
      const unsigned shift = (idx % 2) * 4U;
      u.reg[idx / 2] = static_cast<std::uint8_t>((u.reg[idx / 2] & ~(0xfU << shift)) |
                                                 (unsigned{rank} << shift));
    }
    if (u.queries < 0xffff) {
      const std::string_view prefix = ev.domain_off > 0
                                          ? ev.name().substr(0, std::size_t{ev.domain_off} - 1)
                                          : std::string_view{};
      ++u.queries;
      u.prefix_len_sum += static_cast<std::uint32_t>(prefix.size());
      if (prefix.size() >= TunnelHour::kMinEntropyPrefix) {
        u.entropy_q8 += static_cast<std::uint32_t>(std::lround(shannon_entropy(prefix) * 256));
        ++u.entropy_n;
      }
      u.odd = static_cast<std::uint16_t>(u.odd + (odd_qtype(ev.qtype) ? 1U : 0U));
    }
    if (u.fired == 0 && ++u.since_check >= kCheckEvery) {
      u.since_check = 0;
      tunnel_check(s, c, u, &ev, day, ns);
    }
  }
};

void DomainState::events_on_query(BaseEntry* e, const LookupEvent& ev, Day day,
                                  std::int64_t logical_ns) noexcept {
  if (e == nullptr || ev.has(kSuffixLeak) || ev.has(kReverseZone) || logical_ns < 0) {
    return;
  }
  const std::uint64_t h = detail::hash_bytes(ev.name());
  const std::int64_t now_s = logical_ns / kNsPerSecond;
  const auto hour = static_cast<std::uint8_t>(logical_ns / kNsPerHour);
  // The bitmap counts the names of one logical hour: its low 8 bits tell the hour, and a lookup
  // an hour ago or more (last_seen_s) tells a stale bitmap of the same low bits.
  if (e->fqdn_hour != hour || now_s - static_cast<std::int64_t>(e->last_seen_s) >= 3600) {
    e->fqdn_bitmap = 0;
    e->fqdn_hour = hour;
  }
  const int before = std::popcount(e->fqdn_bitmap);
  e->fqdn_bitmap |= std::uint64_t{1} << (h >> 58U);
  CandidateEntry* c = e->candidate != 0 ? &candidates_[e->candidate - 1] : nullptr;
  if (c == nullptr) {
    if (before >= kSuspectBits || std::popcount(e->fqdn_bitmap) < kSuspectBits) {
      return;
    }
    c = EventDetectors::promote(*this, *e, ev, day);  // a tunneling suspect
    if (c == nullptr) {
      return;
    }
  }
  try {
    EventDetectors::collect_mark(*this, *e, *c, day, logical_ns);
    EventDetectors::tunnel_add(*this, *c, ev, h, day, logical_ns);
  } catch (...) {
    // Only a finding allocates: without memory for it, the event is lost, not the shard.
  }
}

void DomainState::events_on_response(BaseEntry& e, const LookupEvent& ev, Day day,
                                     std::int64_t logical_ns) noexcept {
  if (ev.has(kSuffixLeak)) {
    return;  // the name failed for the search suffix, not for the embedded domain
  }
  const DisappearanceParams& p = options_->detectors.disappearance;
  const bool timeout = ev.kind == EventKind::Timeout;
  if (timeout && !p.count_timeouts) {
    return;
  }
  const std::uint8_t had_bit = had_data_bit(ev.qtype);
  CandidateEntry* c = e.candidate != 0 ? &candidates_[e.candidate - 1] : nullptr;
  try {
    if (c != nullptr) {
      EventDetectors::seed(e, *c, day);
      EventDetectors::collect_mark(*this, e, *c, day, logical_ns);
    }
    const double now_s = static_cast<double>(logical_ns) / 1e9;
    if (!timeout && ev.has(kSuccess)) {
      const bool first_success = (e.last_rcode & kHadData) == 0;
      e.last_rcode =
          static_cast<std::uint8_t>((e.last_rcode & kHadData) | had_bit | rcode_bits(ev.rcode));
      e.consecutive_failures = 0;
      if (c != nullptr) {
        c->events.disappearance.on_success(now_s);
        EventDetectors::remember_addresses(c->events, ev);
      }
      if (first_success && (e.flags & BaseEntry::kNewPending) != 0 && ev.answer_count > 0 &&
          shared_->dead_any()) {
        EventDetectors::successor(*this, e, ev, day, logical_ns);
      }
      return;
    }
    FailureKind kind = FailureKind::ServFail;
    if (timeout) {
      kind = FailureKind::Timeout;
    } else if (ev.has(kFailure)) {
      kind = ev.rcode == 3   ? FailureKind::NxDomain
             : ev.rcode == 5 ? FailureKind::Refused
                             : FailureKind::ServFail;
    } else if (ev.has(kNodata) && (e.last_rcode & had_bit) != 0) {
      kind = FailureKind::NoData;  // NODATA for a question type that had data
    } else {
      e.last_rcode = static_cast<std::uint8_t>((e.last_rcode & kHadData) | rcode_bits(ev.rcode));
      return;
    }
    if (!timeout) {  // a timeout has no rcode: the last one stays
      e.last_rcode = static_cast<std::uint8_t>((e.last_rcode & kHadData) | rcode_bits(ev.rcode));
    }
    if (c == nullptr) {
      // The first failure after >= min_successes_7d lookups that succeeded: a transition may
      // follow, so the domain takes a candidate slot.
      if (e.consecutive_failures != 0 || (e.last_rcode & kHadData) == 0 ||
          e.events_in(day, 7) < p.min_successes_7d) {
        e.consecutive_failures =
            static_cast<std::uint8_t>(std::min(e.consecutive_failures + 1, 255));
        return;
      }
      c = EventDetectors::promote(*this, e, ev, day);
      if (c == nullptr) {
        e.consecutive_failures = 1;
        return;
      }
      EventDetectors::seed(e, *c, day);
    }
    e.consecutive_failures = static_cast<std::uint8_t>(std::min(e.consecutive_failures + 1, 255));
    const auto qc = static_cast<std::size_t>(Detector::QuerierConcentration);
    const bool qc14 = c->marks.score[qc] > 0 && day >= c->marks.score_day[qc] &&
                      day - c->marks.score_day[qc] < 14;
    const DisappearanceEvent r = c->events.disappearance.on_failure(
        now_s, kind, qc14, EventDetectors::covert_medium(*this, *c), p);
    if (r.kind != DisappearanceEventKind::None) {
      EventDetectors::disappearance(*this, e, *c, r, day, logical_ns);
    }
  } catch (...) {
    // Only a finding allocates: without memory for it, the event is lost, not the shard.
  }
}

}  // namespace dnsmon::detect
