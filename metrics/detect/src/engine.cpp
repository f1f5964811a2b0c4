#include "dnsmon/detect/engine.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>

#include "dnsmon/common/civil_time.hpp"
#include "dnsmon/common/hash.hpp"

#include "engine_shard.hpp"

namespace dnsmon::detect {

std::string format_rfc3339(std::int64_t ns) {
  const std::int64_t days = LogicalClock::day(ns);
  const std::int64_t secs = (ns - days * kDayNs) / 1'000'000'000;
  const CivilDate date = civil_from_days(days);
  std::array<char, 40> buf{};
  std::snprintf(buf.data(), buf.size(), "%04lld-%02u-%02uT%02lld:%02lld:%02lldZ",
                static_cast<long long>(date.year), date.month, date.day,
                static_cast<long long>(secs / 3600), static_cast<long long>(secs / 60 % 60),
                static_cast<long long>(secs % 60));
  return buf.data();
}

WorkerPort::WorkerPort(Engine& engine, std::size_t index)
    : engine_(engine),
      generation_(engine.settings_generation()),
      normalizer_(engine.settings()->options, engine.settings()->orgs, engine.suffixes_,
                  engine.seed_) {
  for (auto& shard : engine.shards_) {
    rings_.push_back(shard->rings[index].get());
    bells_.push_back(&shard->bell);
  }
}

void WorkerPort::adopt_settings() noexcept {
  std::shared_ptr<const Engine::Settings> settings;
  generation_ = engine_.settings_.copy_to(settings);
  try {
    normalizer_.reconfigure(settings->options, settings->orgs);
  } catch (const std::bad_alloc&) {
    // Out of memory for the copy of the search suffixes: the normaliser keeps what it had.
  }
}

void WorkerPort::on_message(const DnsMessage& m, std::int64_t latency_ns, detail::QueryTag* tag,
                            std::size_t domain_length) noexcept {
  // one load per message, no lock
  if (engine_.settings_generation() != generation_) [[unlikely]] {
    adopt_settings();
  }
  if (!m.qr) {
    if (normalizer_.query(m, scratch_, domain_length)) {
      if (tag != nullptr) {
        Normalizer::fill_tag(scratch_, *tag);
      }
      queries_.add();
      if (scratch_.has(kFirstInDedupWindow)) {
        lookups_.add();
      }
      push(scratch_);
    }
  } else if (latency_ns >= 0 && normalizer_.response(m, scratch_, tag)) {
    responses_.add();
    push(scratch_);
  }
}

void WorkerPort::on_timeout(const detail::TimedOutQuery& query) noexcept {
  if (normalizer_.timeout(query, scratch_)) {
    timeouts_.add();
    push(scratch_);
  }
}

void WorkerPort::push(const LookupEvent& ev) noexcept {
  const std::size_t shard = (ev.domain_hash >> 32U) % rings_.size();
  SpscRing<LookupEvent>& ring = *rings_[shard];
  while (!ring.try_push_with([&ev](LookupEvent& slot) noexcept { ev.copy_used_to(slot); })) {
    if (engine_.live_) {
      dropped_.add();
      return;
    }
    bells_[shard]->ring();  // a replay waits for the shard to make room
    std::this_thread::yield();
  }
  // A sleeping shard is woken once a batch waits, not for every event: a futex wake per event
  // cost more than the detectors' work. Fewer events wait at most the shard's sleep timeout.
  if (bells_[shard]->sleeping() && ring.backlog_at_least(Engine::kWakeBacklog)) {
    bells_[shard]->ring();
  }
}

Engine::Engine(const DetectOptions& options, std::size_t workers, std::size_t shards,
               std::shared_ptr<const detail::PublicSuffixList> suffixes, std::FILE* events_log,
               bool live, std::uint64_t seed)
    : options_(options),
      live_(live),
      pending_(read_checkpoint(options_, std::max<std::size_t>(shards, 1), restore_)),
      seed_(pending_ ? pending_->seed : detail::seed_or_random(seed)),
      suffixes_(std::move(suffixes)),
      settings_(std::make_shared<const Settings>(Settings{
          options_,
          std::make_shared<const OrgResolver>(options.clients,
                                              options.clients.org_map_file.empty()
                                                  ? std::vector<OrgMapEntry>{}
                                                  : load_org_map(options.clients.org_map_file),
                                              seed_)})),
      shared_(pending_ ? std::move(pending_->shared)
                       : std::make_unique<SharedState>(options_, std::max<std::size_t>(shards, 1))),
      clock_(options.time.compression, pending_ ? pending_->origin : options.time.origin_ns),
      log_(events_log) {
  shared_->aggregate.set_max_lag(live ? 1 : AggregateMonitor::kPendingHours - 1);
  const std::shared_ptr<const Settings> initial = settings_.get();
  for (std::size_t s = 0; s < std::max<std::size_t>(shards, 1); ++s) {
    auto shard = std::make_unique<Shard>();
    shard->index = s;
    shard->transitions.reserve(AggregateMonitor::kSeries * 4);
    shard->settings = initial;
    shard->state = std::make_unique<DomainState>(
        initial->options, 1.0 / static_cast<double>(std::max<std::size_t>(shards, 1)), seed_,
        shared_.get());
    shard->state->set_orgs(initial->orgs.get());
    for (std::size_t w = 0; w < workers; ++w) {
      shard->rings.push_back(std::make_unique<SpscRing<LookupEvent>>(kRingEvents));
    }
    shards_.push_back(std::move(shard));
  }
  for (std::size_t w = 0; w < workers; ++w) {
    ports_.push_back(std::make_unique<WorkerPort>(*this, w));
  }
  for (auto& day : population_day_) {
    population_.push_back(std::make_unique<detail::HyperLogLog>(14));
    day = LogicalClock::kUnset;
  }
  if (pending_) {
    apply_checkpoint(*pending_);
    pending_.reset();
  }
}

Engine::~Engine() {
  finish();
}

std::shared_ptr<const OrgResolver> Engine::orgs() const {
  return settings()->orgs;
}

namespace {

bool same_map(const std::vector<OrgMapEntry>& a, const std::vector<OrgMapEntry>& b) {
  return std::equal(
      a.begin(), a.end(), b.begin(), b.end(), [](const OrgMapEntry& x, const OrgMapEntry& y) {
        return x.name == y.name && x.prefix.addr == y.prefix.addr && x.prefix.bits == y.prefix.bits;
      });
}

}  // namespace

Engine::Reconfigured Engine::reconfigure(const DetectOptions& next) {
  auto s = std::make_shared<Settings>();
  // What sizes or places the state stays the start's: memory, time, the files, enabled.
  DetectOptions& o = s->options;
  o = options_;
  o.vantage = next.vantage;
  o.clients.internal_networks = next.clients.internal_networks;
  o.clients.external_v4_prefix = next.clients.external_v4_prefix;
  o.clients.external_v6_prefix = next.clients.external_v6_prefix;
  o.clients.org_map_file = next.clients.org_map_file;
  o.normalize.search_suffixes = next.normalize.search_suffixes;
  o.normalize.dedup_window_s = next.normalize.dedup_window_s;
  o.normalize.reverse_zone_v4_octets = next.normalize.reverse_zone_v4_octets;
  o.normalize.reverse_zone_v6_nibbles = next.normalize.reverse_zone_v6_nibbles;
  o.detectors = next.detectors;
  o.exports.top_n_per_detector = next.exports.top_n_per_detector;
  o.exports.hold_seconds = next.exports.hold_seconds;
  o.exports.watchlist = next.exports.watchlist;
  o.exports.allowlist_domains = next.exports.allowlist_domains;
  o.exports.allowlist_orgs = next.exports.allowlist_orgs;
  s->orgs = std::make_shared<const OrgResolver>(o.clients,
                                                o.clients.org_map_file.empty()
                                                    ? std::vector<OrgMapEntry>{}
                                                    : load_org_map(o.clients.org_map_file),
                                                seed_);
  Reconfigured out;
  out.org_map_entries = s->orgs->map().size();
  const std::shared_ptr<const Settings> before = settings_.publish(s);
  out.org_map_changed = !same_map(before->orgs->map(), s->orgs->map());
  shared_->set_dead_ttl_days(o.detectors.successor.max_age_days);
  return out;
}

void Engine::adopt_settings(Shard& shard) {
  if (shard.generation == settings_.generation()) {
    return;
  }
  shard.generation = settings_.copy_to(shard.settings);
  shard.state->set_orgs(shard.settings->orgs.get());
  shard.state->reconfigure(shard.settings->options);
}

void Engine::start() {
  for (auto& shard : shards_) {
    threads_.emplace_back([this, s = shard.get()] { run_shard(*s); });
  }
  if (live_ && !options_.state_file.empty()) {
    checkpointer_ = std::jthread([this](const std::stop_token& stop) { run_checkpoints(stop); });
  }
  if (hour_writer_) {
    hour_gate_.store(!live_, std::memory_order_release);
    hourly_ = std::jthread([this](const std::stop_token& stop) { run_hourly(stop); });
  }
}

std::int64_t Engine::latest_logical_ns() const noexcept {
  std::int64_t logical = 0;  // no event yet
  for (const auto& shard : shards_) {
    logical = std::max(logical, shard->logical_ns.load(std::memory_order_relaxed));
  }
  return logical;
}

namespace {

std::int64_t hour_floor(std::int64_t ns) {
  return (ns >= 0 ? ns / kHourNs : (ns - kHourNs + 1) / kHourNs) * kHourNs;
}

}  // namespace

void Engine::gate_hour(std::int64_t logical) {
  std::unique_lock lock(hour_mutex_);
  if (next_hour_.load(std::memory_order_relaxed) == LogicalClock::kUnset) {
    next_hour_.store(hour_floor(logical) + kHourNs, std::memory_order_release);
    return;
  }
  while (hour_gate_.load(std::memory_order_relaxed) &&
         logical >= next_hour_.load(std::memory_order_relaxed)) {
    if (!hour_wanted_) {
      hour_wanted_ = true;
      hour_cv_.notify_all();
    }
    hour_cv_.wait(lock);
  }
}

void Engine::run_hourly(const std::stop_token& stop) {
  std::unique_lock lock(hour_mutex_);
  while (!stop.stop_requested() && !hour_failed_) {
    std::int64_t hour = 0;
    if (!live_) {
      hour_cv_.wait(lock, stop, [this] { return hour_wanted_; });
      if (stop.stop_requested()) {
        break;
      }
      hour = next_hour_.load(std::memory_order_relaxed);
    } else {
      hour_cv_.wait_for(lock, stop, kHourPollInterval, [] { return false; });
      const std::int64_t latest = latest_logical_ns();
      if (stop.stop_requested() || latest <= 0) {
        continue;
      }
      const std::int64_t next = next_hour_.load(std::memory_order_relaxed);
      if (next == LogicalClock::kUnset) {
        next_hour_.store(hour_floor(latest) + kHourNs, std::memory_order_relaxed);
        continue;
      }
      if (latest < next) {
        continue;
      }
      hour = hour_floor(latest);
    }
    lock.unlock();
    const bool ok = hour_writer_(hour);
    lock.lock();
    next_hour_.store(hour + kHourNs, std::memory_order_release);
    hour_wanted_ = false;
    if (!ok) {
      hour_failed_ = true;
      hour_gate_.store(false, std::memory_order_relaxed);
    }
    hour_cv_.notify_all();
  }
}

void Engine::finish() {
  if (threads_.empty()) {
    return;
  }
  if (checkpointer_.joinable()) {
    checkpointer_.request_stop();
    checkpointer_.join();
  }
  done_.store(true, std::memory_order_release);
  for (auto& shard : shards_) {
    shard->bell.ring_always();
  }
  threads_.clear();  // joins
  if (hourly_.joinable()) {
    hourly_.request_stop();
    hourly_.join();
  }
  for (auto& shard : shards_) {
    adopt_settings(*shard);  // a reload the shard did not see before its last batch
  }
  // The shards are joined: the state is this thread's now. The checkpoint holds the open logical
  // day as it is; the end of input then closes it (a replay's reports are complete), but not a
  // live stop with a state file, after which the next run continues the day.
  if (!options_.state_file.empty()) {
    final_checkpoint_failed_ = !write_checkpoint(true).ok();
  }
  if (options_.state_file.empty() || !live_) {
    for (auto& shard : shards_) {
      if (shard->day != LogicalClock::kUnset) {
        end_of_day(*shard, shard->day);
      }
    }
    // The hours every shard is past; the open (partial) hour is not evaluated.
    std::vector<AggregateMonitor::Transition> transitions;
    {
      const std::lock_guard lock(shared_->mutex);
      shared_->aggregate.flush(transitions);
    }
    report_transitions(*shards_.front(), transitions);
  }
  if (hour_writer_ && !hour_failed_) {
    const std::int64_t last = latest_logical_ns();
    const std::int64_t next = next_hour_.load(std::memory_order_relaxed);
    if (last > 0 && (next == LogicalClock::kUnset || last > next - kHourNs)) {
      hour_failed_ = !hour_writer_(last);
    }
  }
  if (log_ != nullptr) {
    const std::lock_guard lock(log_mutex_);
    if (std::fflush(log_) != 0) {
      log_failed_.store(true, std::memory_order_relaxed);
    }
  }
}

void Engine::run_shard(Shard& shard) {
  constexpr int kBatch = 64;
  // The base-table probe of an event is a cache miss, as a rule: while it processes one event, a
  // shard prefetches the set of the event kAhead places behind it in the ring, so that the
  // misses of the waiting events overlap instead of following one another.
  constexpr std::size_t kAhead = 8;
  for (;;) {
    if (pause_.load(std::memory_order_acquire)) {
      park();  // a safe point: between events
    }
    bool any = false;
    for (auto& ring : shard.rings) {
      for (std::size_t i = 0; i < kAhead; ++i) {
        const LookupEvent* next = ring->peek(i);
        if (next == nullptr) {
          break;
        }
        shard.state->prefetch(next->domain_hash);
      }
      for (int n = 0; n < kBatch; ++n) {
        const LookupEvent* ev = ring->front();
        if (ev == nullptr) {
          break;
        }
        if (const LookupEvent* next = ring->peek(kAhead); next != nullptr) {
          shard.state->prefetch(next->domain_hash);
        }
        // Pairs with the release in reconfigure(): one load per event, the mutex once per
        // reload. An event a worker made after reconfigure() returned is taken with the new
        // settings (the ring's hand-over orders it after them).
        if (settings_.generation() != shard.generation) {
          adopt_settings(shard);
        }
        process(shard, *ev);
        ring->pop();
        any = true;
      }
    }
    if (any) {
      continue;
    }
    // pairs with the release store in finish(): every push happened before it
    if (done_.load(std::memory_order_acquire)) {
      bool empty = true;
      for (auto& ring : shard.rings) {
        empty = empty && ring->front() == nullptr;
      }
      if (empty) {
        return;  // finish() closes the last day
      }
      continue;
    }
    const std::uint32_t ticket = shard.bell.prepare_sleep();
    bool waiting = false;
    for (auto& ring : shard.rings) {
      waiting = waiting || ring->front() != nullptr;
    }
    if (waiting || done_.load(std::memory_order_acquire) ||
        pause_.load(std::memory_order_acquire)) {
      shard.bell.cancel_sleep();
      continue;
    }
    shard.bell.sleep(ticket, kShardSleep);
  }
}

void Engine::process(Shard& shard, const LookupEvent& ev) {
  const std::int64_t logical = clock_.logical(ev.ts_ns);
  if (hour_gate_.load(std::memory_order_relaxed) &&
      logical >= next_hour_.load(std::memory_order_acquire)) {
    gate_hour(logical);
  }
  if (logical > shard.logical_ns.load(std::memory_order_relaxed)) {
    shard.logical_ns.store(logical, std::memory_order_relaxed);
  }
  // aggregate_anomaly's counts of the shard's open logical hour (no lock; the hour's hand-over
  // takes the shared state's mutex once an hour).
  const std::int64_t hour = logical >= 0 ? logical / kHourNs : (logical - kHourNs + 1) / kHourNs;
  AggregateMonitor::ShardHour& open = shared_->aggregate.shard_hour(shard.index);
  if (open.hour == AggregateMonitor::kUnset) {
    open.hour = hour;
  } else if (hour > open.hour) {
    close_hour(shard, hour);
  }
  if (ev.kind == EventKind::Query) {
    ++open.counts.queries;
  } else if (ev.kind == EventKind::Response) {
    ++open.counts.responses;
    open.counts.nxdomain += ev.rcode == 3 ? 1U : 0U;
    open.counts.servfail += ev.rcode == 2 ? 1U : 0U;
  }
  const std::int64_t day = LogicalClock::day(logical);
  if (shard.day == LogicalClock::kUnset) {
    shard.day = day;
  } else if (day > shard.day) {
    end_of_day(shard, shard.day);  // days without an event close with it
    shard.day = day;
  }
  if (day <= 0 || day >= 0xffff) {
    return;  // outside the 16-bit logical day numbers of the tables
  }
  DomainState& state = *shard.state;
  if (ev.kind == EventKind::Query) {
    state.on_query(ev, static_cast<Day>(day), logical);
    if (ev.has(kFirstInDedupWindow)) {
      shard.clients_today.add_hash(detail::hash_bytes(ev.client.data(), ev.client.size(), seed_));
      state.on_lookup(ev, static_cast<Day>(day), logical);
      if (ev.has(kSuffixLeak)) {
        const std::string_view name = ev.name();
        const std::string_view suffix = name.substr(std::size_t{ev.domain_off} + ev.domain_len + 1);
        Finding& f = state.findings().emplace_back();
        f.detector = Detector::SuffixLeak;
        f.event = "leak";
        f.domain = ev.domain();
        f.logical_ns = logical;
        f.reasons = kReasonSuffixLeak;
        f.detail_text("qname", name);
        f.detail_text("search_suffix", suffix);
        f.detail_text("org", shard.settings->orgs->label(ev));
      }
    }
  } else {
    state.on_response(ev, static_cast<Day>(day), logical);
  }
  if (!state.findings().empty()) {
    report(shard);
  }
}

void Engine::close_hour(Shard& shard, std::int64_t hour) {
  {
    const std::lock_guard lock(shared_->mutex);
    shared_->aggregate.close(shard.index, hour, shard.transitions);
  }
  report_transitions(shard, shard.transitions);
}

void Engine::report_transitions(Shard& shard,
                                std::vector<AggregateMonitor::Transition>& transitions) {
  if (transitions.empty()) {
    return;
  }
  constexpr HoltWintersParams kParams{};
  for (const AggregateMonitor::Transition& t : transitions) {
    Finding& f = shard.state->findings().emplace_back();
    f.detector = Detector::AggregateAnomaly;
    f.event = t.alarm ? "alarm" : "cleared";
    f.logical_ns = (t.hour + 1) * kHourNs - 1'000'000'000;  // the hour's last second
    f.score = t.alarm ? static_cast<double>(t.out_of_band) / kParams.window : 0;
    f.severity = t.alarm ? Severity::Low : Severity::Info;
    f.detail_text("series", AggregateMonitor::label(t.series));
    f.detail("value", t.value);
    f.detail("forecast", t.forecast);
    f.detail("band", t.band);
    f.detail("out_of_band", static_cast<std::int64_t>(t.out_of_band));
    f.detail("window", static_cast<std::int64_t>(kParams.window));
  }
  transitions.clear();
  report(shard);
}

void Engine::report(Shard& shard) {
  std::vector<Finding>& findings = shard.state->findings();
  const OrgResolver& orgs = *shard.settings->orgs;
  for (const Finding& f : findings) {
    const std::size_t severity = f.suppressed ? kSuppressed : static_cast<std::size_t>(f.severity);
    shard.events[static_cast<std::size_t>(f.detector)][severity].add();
    if (on_finding_ && !f.suppressed) {
      on_finding_(f);
    }
    if (log_ == nullptr || f.suppressed) {
      continue;
    }
    // The score with three decimals at most, without trailing zeros ("0", "0.85", "1").
    std::array<char, 32> buf{};
    std::snprintf(buf.data(), buf.size(), "%.3f", f.score);
    std::string score = buf.data();
    while (score.back() == '0') {
      score.pop_back();
    }
    if (score.back() == '.') {
      score.pop_back();
    }
    std::string line = R"({"ts":")" + format_rfc3339(f.logical_ns) + R"(","detector":")";
    line += to_string(f.detector);
    line += R"(","event":)" + json_string(f.event) + R"(,"domain":)" + json_string(f.domain) +
            R"(,"score":)" + score + R"(,"severity":")";
    line += to_string(f.severity);
    line += R"(","reasons":[)";
    bool first = true;
    for (std::size_t bit = 0; bit < kReasons; ++bit) {
      if ((f.reasons & (1U << bit)) != 0) {
        line += first ? R"(")" : R"(,")";
        line += reason_label(bit);
        line += R"(")";
        first = false;
      }
    }
    line += R"(],"details":{)";
    first = true;
    if (!f.top_orgs.empty()) {
      line += R"("top_orgs":[)";
      for (std::size_t i = 0; i < f.top_orgs.size(); ++i) {
        line += (i == 0 ? "" : ",") + json_string(orgs.label(f.top_orgs[i]));
      }
      line += "]";
      first = false;
    }
    for (const auto& [key, org] : f.org_details) {
      line += (first ? "" : ",") + json_string(key) + ":" + json_string(orgs.label(org));
      first = false;
    }
    for (const auto& [key, value] : f.details) {
      line += (first ? "" : ",") + json_string(key) + ":" + value;
      first = false;
    }
    line += "}}\n";
    write_line(line);
  }
  findings.clear();
}

void Engine::end_of_day(Shard& shard, std::int64_t day) {
  double population = 0;
  {
    const std::lock_guard lock(population_mutex_);
    const auto slot = static_cast<std::size_t>(day % 14);
    if (population_day_[slot] != day) {
      population_[slot]->clear();
      population_day_[slot] = day;
    }
    (void)population_[slot]->merge(shard.clients_today);
    detail::HyperLogLog window(14);
    for (std::size_t i = 0; i < population_.size(); ++i) {
      if (population_day_[i] != LogicalClock::kUnset && population_day_[i] > day - 14 &&
          population_day_[i] <= day) {
        (void)window.merge(*population_[i]);
      }
    }
    population = window.estimate();
  }
  shard.clients_today.clear();
  population14_.store(population, std::memory_order_relaxed);
  if (day > 0 && day < 0xffff) {
    (void)shard.state->end_of_day(static_cast<Day>(day), population);
    if (!shard.state->findings().empty()) {
      report(shard);
    }
    shard.state->publish(static_cast<Day>(day), (day + 1) * kDayNs,
                         shard.settings->options.exports.top_n_per_detector, shard.scratch);
    const std::lock_guard lock(shard.published_mutex);
    std::swap(shard.published, shard.scratch);
  }
  shard.days_closed.add();
}

void Engine::write_line(const std::string& line) {
  const std::lock_guard lock(log_mutex_);
  if (log_failed_.load(std::memory_order_relaxed)) {
    log_lost_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (std::fwrite(line.data(), 1, line.size(), log_) != line.size()) {
    log_failed_.store(true, std::memory_order_relaxed);
    log_lost_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  log_bytes_ += line.size();
  if (log_max_bytes_ != 0 && log_bytes_ >= log_max_bytes_ && reopen_) {
    (void)std::fflush(log_);
    if (std::FILE* f = reopen_(log_, true); f != nullptr) {
      log_ = f;
      log_bytes_ = 0;
    } else {
      log_max_bytes_ = 0;  // the callback said why; no retry per line
    }
  }
}

void Engine::reopen_log() {
  const std::lock_guard lock(log_mutex_);
  if (!reopen_ || log_ == nullptr) {
    return;
  }
  (void)std::fflush(log_);
  if (std::FILE* f = reopen_(log_, false); f != nullptr) {
    log_ = f;
    log_bytes_ = 0;
    log_failed_.store(false, std::memory_order_relaxed);
  }
}

DetectionSnapshot Engine::snapshot() const {
  DetectionSnapshot s;
  for (const auto& p : ports_) {
    s.queries += p->queries_.get();
    s.lookups += p->lookups_.get();
    s.responses += p->responses_.get();
    s.timeouts += p->timeouts_.get();
    s.dropped += p->dropped_.get();
  }
  std::int64_t logical = 0;
  for (const auto& shard : shards_) {
    for (std::size_t d = 0; d < kDetectors; ++d) {
      for (std::size_t v = 0; v < kSeverityLabels; ++v) {
        s.detector_events[d][v] += shard->events[d][v].get();
      }
    }
    logical = std::max(logical, shard->logical_ns.load(std::memory_order_relaxed));
    for (const auto& r : shard->rings) {
      s.ring_bytes += r->capacity() * sizeof(LookupEvent);
    }
  }
  s.logical_time_s = static_cast<double>(logical) / 1e9;
  for (const auto& shard : shards_) {
    const DomainState::Counters& c = shard->state->counters();
    for (std::size_t t = 0; t < 3; ++t) {
      s.entries[t] += c.entries[t].load(std::memory_order_relaxed);
      s.capacity[t] += c.capacity[t].load(std::memory_order_relaxed);
      s.evictions[t] += c.evictions[t].load(std::memory_order_relaxed);
      s.rejected[t] += c.rejected[t].load(std::memory_order_relaxed);
    }
    for (std::size_t t = 0; t < s.table_bytes.size(); ++t) {
      s.table_bytes[t] += c.bytes[t].load(std::memory_order_relaxed);
    }
    s.seen_filter_entries += c.seen_filter_entries.load(std::memory_order_relaxed);
    s.seen_filter_capacity += c.seen_filter_capacity.load(std::memory_order_relaxed);
    s.flagged_querier_concentration += c.flagged_qc.load(std::memory_order_relaxed);
    for (std::size_t d = 0; d < kDetectors; ++d) {
      s.flagged[d] += c.flagged[d].load(std::memory_order_relaxed);
    }
    s.flagged_querier_concentration_any += c.flagged_qc_any.load(std::memory_order_relaxed);
  }
  for (std::size_t i = 0; i < AggregateMonitor::kSeries; ++i) {
    s.aggregate_anomaly[i] = shared_->aggregate.alarm(static_cast<AggregateMonitor::Series>(i));
  }
  {
    const std::lock_guard lock(shared_->mutex);
    s.recently_dead_dropped = shared_->dead_dropped();
    s.aggregate_late = shared_->aggregate.late_events();
  }
  s.recently_dead_entries = shared_->dead_live();
  s.recently_dead_capacity = SharedState::kDeadEntries;
  s.population14 = population14_.load(std::memory_order_relaxed);
  s.log_lines_lost = log_lost_.load(std::memory_order_relaxed);
  select_domains(s);
  return s;
}

void Engine::select_domains(DetectionSnapshot& s) const {
  std::vector<DomainSeries> pool;
  std::array<std::uint64_t, kDetectors> flagged{};
  for (const auto& shard : shards_) {
    const std::lock_guard lock(shard->published_mutex);
    pool.insert(pool.end(), shard->published.domains.begin(), shard->published.domains.end());
    for (std::size_t d = 0; d < kDetectors; ++d) {
      flagged[d] += shard->published.flagged[d];
    }
  }
  // Each detector's top N by score over the shards (ties by recency), then the watched ones.
  std::vector<bool> keep(pool.size(), false);
  std::vector<std::size_t> idx;
  const std::shared_ptr<const Settings> settings = this->settings();
  const std::size_t top_n = settings->options.exports.top_n_per_detector;
  for (std::size_t d = 0; d < kDetectors; ++d) {
    idx.clear();
    for (std::size_t i = 0; i < pool.size(); ++i) {
      if (pool[i].score[d] > 0) {
        idx.push_back(i);
      }
    }
    const std::size_t n = std::min(top_n, idx.size());
    std::partial_sort(idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(n), idx.end(),
                      [&](std::size_t a, std::size_t b) {
                        return pool[a].score[d] != pool[b].score[d]
                                   ? pool[a].score[d] > pool[b].score[d]
                                   : pool[a].last_seen_s > pool[b].last_seen_s;
                      });
    for (std::size_t k = 0; k < n; ++k) {
      keep[idx[k]] = true;
    }
  }
  std::size_t watched = 0;
  for (std::size_t i = 0; i < pool.size() && watched < kMaxWatchedExported; ++i) {
    if (pool[i].watched && !keep[i]) {
      keep[i] = true;
      ++watched;
    }
  }
  for (std::size_t i = 0; i < pool.size(); ++i) {
    if (keep[i] && s.domains.size() < kMaxExportedDomains) {
      s.domains.push_back(std::move(pool[i]));
    }
  }
  // The hold: a domain that drops out stays exported, with its last values, for hold_seconds.
  const auto now = std::chrono::steady_clock::now();
  const auto hold = std::chrono::seconds(settings->options.exports.hold_seconds);
  const std::lock_guard lock(held_mutex_);
  std::map<std::string, bool> current;
  for (const DomainSeries& d : s.domains) {
    held_[d.domain] = {d, now + hold};
    current[d.domain] = true;
  }
  for (auto it = held_.begin(); it != held_.end();) {
    if (it->second.until <= now) {
      it = held_.erase(it);
      continue;
    }
    if (current.count(it->first) == 0 && s.domains.size() < kMaxExportedDomains) {
      s.domains.push_back(it->second.series);
    }
    ++it;
  }
  while (held_.size() > 4 * kMaxExportedDomains) {  // the oldest holds go first
    auto oldest = held_.begin();
    for (auto it = held_.begin(); it != held_.end(); ++it) {
      oldest = it->second.until < oldest->second.until ? it : oldest;
    }
    held_.erase(oldest);
  }
  for (std::size_t d = 0; d < kDetectors; ++d) {
    std::uint64_t exported = 0;
    for (const DomainSeries& x : s.domains) {
      exported += x.score[d] > 0 ? 1U : 0U;
    }
    s.truncated[d] = flagged[d] > exported ? flagged[d] - exported : 0;
  }
}

}  // namespace dnsmon::detect
