// Checkpoints of the detection state (checkpoint.hpp): the engine's sections of the state file,
// their validation against the running configuration, and the pause of the shards.
#include "dnsmon/detect/checkpoint.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <type_traits>

#include "engine_shard.hpp"

namespace dnsmon::detect {
namespace {

constexpr std::uint32_t kByteOrderMark = 0x01020304;
constexpr unsigned kHllPrecision = 14;
constexpr std::size_t kHllBytes = std::size_t{1} << kHllPrecision;
constexpr std::size_t kPopulationDays = 14;
constexpr std::uint8_t kHllMaxRegister = 65 - kHllPrecision;
constexpr std::uint64_t kSharedSlackBytes = 64ULL << 20U;  // room for SharedState's members

static_assert(std::is_trivially_copyable_v<BaseEntry>);
static_assert(std::is_trivially_copyable_v<CandidateEntry>);
static_assert(std::is_trivially_copyable_v<WatchEntry>);

// The layout fingerprint: a file's raw records are read only if every field matches this build.
struct Fingerprint {
  std::uint32_t byte_order = kByteOrderMark;
  std::uint32_t layout_version = kStateLayoutVersion;
  std::uint32_t base_entry = sizeof(BaseEntry);
  std::uint32_t candidate_entry = sizeof(CandidateEntry);
  std::uint32_t watch_entry = sizeof(WatchEntry);
  std::uint32_t seen_slot = SeenFilter::kSlotBytes;
  std::uint32_t org_slots = sizeof(OrgSlots);
  std::uint32_t candidate_marks = sizeof(CandidateMarks);
  std::uint32_t daily_state = sizeof(DailyState);
  std::uint32_t event_state = sizeof(EventState);
  std::uint32_t hll_precision = kHllPrecision;
  std::uint32_t detectors = kDetectors;

  bool operator==(const Fingerprint&) const = default;
};

// Section 1 (layout 2).
struct EngineRecord {
  Fingerprint layout;
  std::uint32_t shards = 0;
  std::uint32_t reserved = 0;
  std::uint64_t seed = 0;
  double compression = 0;
  std::int64_t configured_origin_ns = LogicalClock::kUnset;  // kUnset: first_packet
  double population14 = 0;
  std::array<std::int64_t, kPopulationDays> population_day{};
};

static_assert(sizeof(EngineRecord) == 200 && std::is_trivially_copyable_v<EngineRecord>);

// Section 0x100 + 16 s (layout 2).
struct ShardRecord {
  DomainState::Capacity capacity;
  std::int64_t day = LogicalClock::kUnset;
  std::int64_t logical_ns = 0;
  std::array<std::uint64_t, DomainState::kTiers> evictions{}, rejected{};
  std::uint64_t flagged_qc = 0, flagged_qc_any = 0;
  std::array<std::uint64_t, kDetectors> flagged{};
  Day first_day = 0;
  std::array<std::uint16_t, 3> reserved{};
};

static_assert(sizeof(ShardRecord) == 216 && std::is_trivially_copyable_v<ShardRecord>);

template <class T>
std::span<const std::byte> bytes_of(const T& v) noexcept {
  return std::as_bytes(std::span<const T>(&v, 1));
}

template <class T>
std::span<const std::byte> bytes_of(const std::vector<T>& v) noexcept {
  return std::as_bytes(std::span<const T>(v));
}

template <class T>
T record_of(const StateSection& s) noexcept {
  T v;
  std::memcpy(&v, s.payload.data(), sizeof(T));
  return v;
}

bool valid_day(std::int64_t d) noexcept {
  return d == LogicalClock::kUnset || (d > 0 && d < 0xffff);
}

bool valid_registers(std::span<const std::byte> r) noexcept {
  return r.size() == kHllBytes && std::all_of(r.begin(), r.end(), [](std::byte b) {
           return std::to_integer<std::uint8_t>(b) <= kHllMaxRegister;
         });
}

std::span<const std::uint8_t> as_registers(std::span<const std::byte> r) noexcept {
  return {reinterpret_cast<const std::uint8_t*>(r.data()), r.size()};  // NOLINT: byte view
}

std::string describe(const Fingerprint& f) {
  return "layout " + std::to_string(f.layout_version) + ", entries of " +
         std::to_string(f.base_entry) + "/" + std::to_string(f.candidate_entry) + "/" +
         std::to_string(f.watch_entry) + "/" + std::to_string(f.seen_slot) +
         " bytes (base/candidate/watch/seen), candidate parts " + std::to_string(f.org_slots) +
         "/" + std::to_string(f.candidate_marks) + "/" + std::to_string(f.daily_state) + "/" +
         std::to_string(f.event_state) + ", HyperLogLog p=" + std::to_string(f.hll_precision) +
         ", " + std::to_string(f.detectors) + " detectors";
}

std::string describe(const DomainState::Capacity& c) {
  return std::to_string(c.base) + " base, " + std::to_string(c.candidates) + " candidate, " +
         std::to_string(c.watch) + " watch entries, " + std::to_string(c.seen_slots) +
         " seen-filter slots, " + std::to_string(c.doorkeeper_words * 64) + " doorkeeper bits";
}

std::string origin_text(std::int64_t ns) {
  return ns == LogicalClock::kUnset ? std::string("first_packet") : format_rfc3339(ns);
}

// A refused or corrupt file is kept next to the target (PATH.refused, replacing an older one), so
// the next checkpoint does not destroy what an operator may want back (a file refused for a
// configuration change is fine again once the change is undone).
std::string keep_aside(const std::string& path) {
  const std::string aside = path + ".refused";
  std::error_code ec;
  std::filesystem::rename(path, aside, ec);
  return ec ? "; could not keep it as " + aside + ": " + ec.message() : "; kept as " + aside;
}

using RestoreOutcome = RestoreStatus::Outcome;

std::nullptr_t refuse(RestoreStatus& status, RestoreOutcome outcome, const std::string& path,
                      const std::string& why) {
  status.outcome = outcome;
  status.message = "detection: state file " + path +
                   (outcome == RestoreOutcome::Refused ? " refused" : " is corrupt") + " (" + why +
                   "), starting fresh" + keep_aside(path);
  return nullptr;
}

}  // namespace

// --- Loading ---------------------------------------------------------------------------------

namespace {

// Layout 2: the sections of checkpoint.hpp, each validated; the pending restore holds the file.
struct LayoutReader {
  const DetectOptions& options;
  std::size_t shards;
  RestoreStatus& status;
  const std::string& path;

  [[nodiscard]] std::nullptr_t fail(RestoreOutcome o, const std::string& why) const {
    return refuse(status, o, path, why);
  }
};

}  // namespace

std::unique_ptr<Engine::PendingRestore> Engine::read_checkpoint(const DetectOptions& options,
                                                                std::size_t shards,
                                                                RestoreStatus& status) {
  const std::string& path = options.state_file;
  if (path.empty()) {
    status = {RestoreOutcome::Off, {}};
    return nullptr;
  }
  // The file of this configuration has a known size; allow the shared state room on top.
  const DomainState::Capacity cap =
      DomainState::capacity_for(options, 1.0 / static_cast<double>(shards));
  const std::uint64_t per_shard = sizeof(ShardRecord) + kHllBytes + cap.base * sizeof(BaseEntry) +
                                  cap.candidates * sizeof(CandidateEntry) +
                                  cap.watch * sizeof(WatchEntry) +
                                  cap.seen_slots * SeenFilter::kSlotBytes +
                                  cap.doorkeeper_words * 8 + 7 * kStateSectionOverhead;
  const std::uint64_t limit = kStateHeaderSizeV1 + kStateTrailerBytes + sizeof(EngineRecord) +
                              kPopulationDays * kHllBytes + per_shard * shards + kSharedSlackBytes;

  StateLoadResult r = load_state_file(path, limit);
  if (!r.ok()) {
    switch (r.status.error) {
      case StateFileError::NotFound:
        status = {RestoreOutcome::Missing,
                  "detection: no state file at " + path + " yet, starting fresh"};
        return nullptr;
      case StateFileError::Io:
        status = {RestoreOutcome::Corrupt, "detection: cannot read the state file (" +
                                               r.status.detail + "), starting fresh"};
        return nullptr;
      case StateFileError::TooLarge:
        return refuse(status, RestoreOutcome::Refused, path,
                      "larger than the state of this configuration can be, " +
                          std::to_string(limit) +
                          " bytes: written with larger tables (detection.memory)?");
      case StateFileError::BadMagic:
      case StateFileError::NewerVersion:
        return refuse(status, RestoreOutcome::Refused, path,
                      std::string(to_string(r.status.error)) + ": " + r.status.detail);
      default:
        return refuse(status, RestoreOutcome::Corrupt, path,
                      std::string(to_string(r.status.error)) + ": " + r.status.detail);
    }
  }
  const StateFile& file = r.file;
  const LayoutReader in{options, shards, status, path};
  const StateSection* engine = file.find(kSectionEngine);
  if (engine == nullptr || engine->payload.size() < 8) {
    return in.fail(RestoreOutcome::Refused, "no engine section: not a detection checkpoint");
  }
  std::uint32_t mark = 0, layout = 0;
  std::memcpy(&mark, engine->payload.data(), 4);
  std::memcpy(&layout, engine->payload.data() + 4, 4);
  if (mark != kByteOrderMark) {
    return in.fail(RestoreOutcome::Refused, "written on a machine of another byte order");
  }
  // One reader per layout this build reads; a next layout adds the reader of the one before it
  // (converting its records) next to its own.
  if (layout != kStateLayoutVersion) {
    return in.fail(RestoreOutcome::Refused, "record layout " + std::to_string(layout) +
                                                ", this build reads layout " +
                                                std::to_string(kStateLayoutVersion));
  }

  // Layout 2.
  if (engine->payload.size() != sizeof(EngineRecord)) {
    return in.fail(RestoreOutcome::Corrupt,
                   "engine section of " + std::to_string(engine->payload.size()) + " bytes");
  }
  const auto er = record_of<EngineRecord>(*engine);
  if (!(er.layout == Fingerprint{})) {
    return in.fail(RestoreOutcome::Refused, "record layout differs: file " + describe(er.layout) +
                                                "; this build " + describe(Fingerprint{}));
  }
  if (er.shards != shards) {
    return in.fail(RestoreOutcome::Refused, "written by " + std::to_string(er.shards) +
                                                " detection shard(s), this configuration has " +
                                                std::to_string(shards) +
                                                " (one per two capture.workers)");
  }
  if (er.compression != options.time.compression) {
    return in.fail(RestoreOutcome::Refused, "written with detection.time.compression " +
                                                std::to_string(er.compression) + ", configured " +
                                                std::to_string(options.time.compression));
  }
  const std::int64_t origin = file.header.origin_ns;
  if (options.time.origin_ns && origin != LogicalClock::kUnset &&
      origin != *options.time.origin_ns) {
    return in.fail(RestoreOutcome::Refused, "logical clock origin " + origin_text(origin) +
                                                ", configured " + options.time.origin);
  }
  if (!std::isfinite(er.population14) || er.population14 < 0 ||
      !std::all_of(er.population_day.begin(), er.population_day.end(), valid_day)) {
    return in.fail(RestoreOutcome::Corrupt, "population ring out of range");
  }
  if (file.sections.size() != 3 + 7 * shards) {
    return in.fail(RestoreOutcome::Refused, std::to_string(file.sections.size()) +
                                                " sections, expected " +
                                                std::to_string(3 + 7 * shards));
  }
  const StateSection* population = file.find(kSectionPopulation);
  if (population == nullptr || population->payload.size() != kPopulationDays * kHllBytes) {
    return in.fail(RestoreOutcome::Corrupt, "population section missing or of another size");
  }
  for (std::size_t i = 0; i < kPopulationDays; ++i) {
    if (!valid_registers(std::span(population->payload).subspan(i * kHllBytes, kHllBytes))) {
      return in.fail(RestoreOutcome::Corrupt, "population HyperLogLog register out of range");
    }
  }
  const StateSection* shared = file.find(kSectionShared);
  if (shared == nullptr) {
    return in.fail(RestoreOutcome::Corrupt, "no shared-state section");
  }
  auto shared_state = std::make_unique<SharedState>(options, shards);
  StateSource shared_in(shared->payload);
  if (!shared_state->load(shared_in) || !shared_in.done()) {
    return in.fail(RestoreOutcome::Corrupt, "the shared-state section does not decode");
  }

  for (std::size_t s = 0; s < shards; ++s) {
    const auto section = [&](ShardSection k) { return file.find(shard_section(s, k)); };
    const std::string where = "shard " + std::to_string(s) + ": ";
    const StateSection* rec = section(ShardSection::Record);
    if (rec == nullptr || rec->payload.size() != sizeof(ShardRecord)) {
      return in.fail(RestoreOutcome::Corrupt, where + "record missing or of another size");
    }
    const auto sr = record_of<ShardRecord>(*rec);
    if (!(sr.capacity == cap)) {
      return in.fail(RestoreOutcome::Refused, where + "table capacities differ: file " +
                                                  describe(sr.capacity) + "; configured " +
                                                  describe(cap) + " (detection.memory)");
    }
    if (!valid_day(sr.day)) {
      return in.fail(RestoreOutcome::Corrupt, where + "logical day out of range");
    }
    const StateSection* clients = section(ShardSection::ClientsToday);
    if (clients == nullptr || !valid_registers(clients->payload)) {
      return in.fail(RestoreOutcome::Corrupt, where + "clients of the day invalid");
    }
    const std::array<std::pair<ShardSection, std::uint64_t>, 5> sizes{{
        {ShardSection::Base, cap.base * sizeof(BaseEntry)},
        {ShardSection::Candidates, cap.candidates * sizeof(CandidateEntry)},
        {ShardSection::Watch, cap.watch * sizeof(WatchEntry)},
        {ShardSection::SeenFilter, cap.seen_slots * SeenFilter::kSlotBytes},
        {ShardSection::Doorkeeper, cap.doorkeeper_words * 8},
    }};
    for (const auto& [k, bytes] : sizes) {
      const StateSection* t = section(k);
      if (t == nullptr || t->payload.size() != bytes) {
        return in.fail(RestoreOutcome::Corrupt, where + "table section " +
                                                    std::to_string(static_cast<unsigned>(k)) +
                                                    " missing or of another size");
      }
    }
    // What the tables use as an index must be in range: a base entry's candidate, which must
    // point back at it. (A record field that indexes or sizes anything is checked here.)
    const auto& base = section(ShardSection::Base)->payload;
    const auto& cands = section(ShardSection::Candidates)->payload;
    for (std::uint64_t i = 0; i < cap.base; ++i) {
      BaseEntry e;
      std::memcpy(&e, base.data() + i * sizeof(BaseEntry), sizeof(BaseEntry));
      if (e.candidate == 0) {
        continue;
      }
      std::uint64_t key = 0;
      if (e.key == 0 || e.candidate > cap.candidates ||
          (std::memcpy(&key, cands.data() + (e.candidate - 1) * sizeof(CandidateEntry), 8),
           key != e.key)) {
        return in.fail(RestoreOutcome::Corrupt,
                       where + "base entry " + std::to_string(i) + " names a wrong candidate");
      }
    }
  }

  auto pending = std::make_unique<PendingRestore>();
  pending->seed = er.seed;
  pending->origin =
      origin != LogicalClock::kUnset ? std::optional<std::int64_t>(origin) : options.time.origin_ns;
  pending->shared = std::move(shared_state);
  pending->file = std::move(r.file);
  return pending;
}

void Engine::apply_checkpoint(PendingRestore& pending) {
  const StateFile& file = pending.file;
  const auto er = record_of<EngineRecord>(*file.find(kSectionEngine));
  const auto& pop = file.find(kSectionPopulation)->payload;
  for (std::size_t i = 0; i < kPopulationDays; ++i) {
    (void)population_[i]->assign_registers(
        as_registers(std::span(pop).subspan(i * kHllBytes, kHllBytes)));
    population_day_[i] = er.population_day[i];
  }
  population14_.store(er.population14, std::memory_order_relaxed);
  std::uint64_t domains = 0, candidates = 0, watched = 0;
  for (std::size_t s = 0; s < shards_.size(); ++s) {
    Shard& shard = *shards_[s];
    DomainState& st = *shard.state;
    const auto payload = [&](ShardSection k) -> const std::vector<std::byte>& {
      return file.find(shard_section(s, k))->payload;
    };
    const auto sr = record_of<ShardRecord>(*file.find(shard_section(s, ShardSection::Record)));
    shard.day = sr.day;
    shard.logical_ns.store(sr.logical_ns, std::memory_order_relaxed);
    (void)shard.clients_today.assign_registers(as_registers(payload(ShardSection::ClientsToday)));
    std::memcpy(st.base_.data(), payload(ShardSection::Base).data(),
                payload(ShardSection::Base).size());
    std::memcpy(st.candidates_.data(), payload(ShardSection::Candidates).data(),
                payload(ShardSection::Candidates).size());
    std::memcpy(st.seen_.slots_.data(), payload(ShardSection::SeenFilter).data(),
                payload(ShardSection::SeenFilter).size());
    std::memcpy(st.doorkeeper_.words_.data(), payload(ShardSection::Doorkeeper).data(),
                payload(ShardSection::Doorkeeper).size());
    // Watch entries sit at their domain's position in export.watchlist: place each at its
    // position in today's list, and drop those no longer listed.
    std::vector<WatchEntry> loaded(st.watch_.size());
    std::memcpy(loaded.data(), payload(ShardSection::Watch).data(),
                payload(ShardSection::Watch).size());
    std::fill(st.watch_.begin(), st.watch_.end(), WatchEntry{});
    for (const WatchEntry& w : loaded) {
      for (std::size_t i = 0; w.key != 0 && i < st.watch_keys_.size() && i < st.watch_.size();
           ++i) {
        if (st.watch_keys_[i] == w.key) {
          st.watch_[i] = w;
        }
      }
    }
    std::vector<std::uint64_t> watch_keys;
    for (const std::uint64_t k : st.watch_keys_) {
      watch_keys.push_back(k | 1U);
    }
    std::sort(watch_keys.begin(), watch_keys.end());
    std::array<std::uint64_t, DomainState::kTiers> entries{};
    for (BaseEntry& e : st.base_) {
      if (e.key == 0) {
        continue;
      }
      ++entries[DomainState::kBase];
      e.flags = std::binary_search(watch_keys.begin(), watch_keys.end(), e.key)
                    ? static_cast<std::uint8_t>(e.flags | BaseEntry::kWatched)
                    : static_cast<std::uint8_t>(e.flags & ~BaseEntry::kWatched);
    }
    for (const CandidateEntry& c : st.candidates_) {
      entries[DomainState::kCandidate] += c.key != 0 ? 1 : 0;
    }
    for (const WatchEntry& w : st.watch_) {
      entries[DomainState::kWatch] += w.key != 0 ? 1 : 0;
    }
    st.seen_.used_ = static_cast<std::uint64_t>(
        std::count_if(st.seen_.slots_.begin(), st.seen_.slots_.end(),
                      [](const SeenFilter::Slot& slot) { return slot.fp != 0; }));
    st.first_day_ = sr.first_day;
    DomainState::Counters& c = st.counters_;
    for (std::size_t t = 0; t < DomainState::kTiers; ++t) {
      c.entries[t].store(entries[t], std::memory_order_relaxed);
      c.evictions[t].store(sr.evictions[t], std::memory_order_relaxed);
      c.rejected[t].store(sr.rejected[t], std::memory_order_relaxed);
    }
    c.seen_filter_entries.store(st.seen_.used_, std::memory_order_relaxed);
    c.flagged_qc.store(sr.flagged_qc, std::memory_order_relaxed);
    c.flagged_qc_any.store(sr.flagged_qc_any, std::memory_order_relaxed);
    for (std::size_t d = 0; d < kDetectors; ++d) {
      c.flagged[d].store(sr.flagged[d], std::memory_order_relaxed);
    }
    domains += entries[DomainState::kBase];
    candidates += entries[DomainState::kCandidate];
    watched += entries[DomainState::kWatch];
  }
  std::int64_t logical = LogicalClock::kUnset;
  for (const auto& shard : shards_) {
    logical = std::max(logical, shard->day == LogicalClock::kUnset
                                    ? LogicalClock::kUnset
                                    : shard->logical_ns.load(std::memory_order_relaxed));
  }
  restore_.outcome = RestoreOutcome::Loaded;
  restore_.message =
      "detection: state loaded from " + options_.state_file + " (written by " +
      (file.header.producer.empty() ? std::string("?") : file.header.producer) +
      ((file.header.flags & kStateFlagClean) != 0 ? " at a stop" : " at a checkpoint") +
      "): logical time " +
      (logical == LogicalClock::kUnset ? std::string("not started") : format_rfc3339(logical)) +
      ", origin " + origin_text(clock_.origin()) + ", " + std::to_string(domains) + " domains, " +
      std::to_string(candidates) + " candidates, " + std::to_string(watched) + " watch entries";
}

// --- Saving ----------------------------------------------------------------------------------

void Engine::set_checkpoint_log(CheckpointLog log, std::string producer) {
  checkpoint_log_ = std::move(log);
  producer_ = std::move(producer);
  if (producer_.size() > kStateProducerBytes) {
    producer_.resize(kStateProducerBytes);
  }
  std::replace(producer_.begin(), producer_.end(), '\0', ' ');
}

StateFileStatus Engine::write_checkpoint(bool clean) {
  if (options_.state_file.empty()) {
    return {StateFileError::InvalidArgument, "no detection.state_file"};
  }
  const auto started = std::chrono::steady_clock::now();
  EngineRecord er;
  er.shards = static_cast<std::uint32_t>(shards_.size());
  er.seed = seed_;
  er.compression = options_.time.compression;
  er.configured_origin_ns = options_.time.origin_ns.value_or(LogicalClock::kUnset);
  er.population14 = population14_.load(std::memory_order_relaxed);
  std::vector<std::byte> population;
  population.reserve(kPopulationDays * kHllBytes);
  for (std::size_t i = 0; i < kPopulationDays; ++i) {
    er.population_day[i] = population_day_[i];
    const auto regs = std::as_bytes(population_[i]->registers());
    population.insert(population.end(), regs.begin(), regs.end());
  }
  std::vector<std::byte> shared;
  StateSink shared_out(shared);
  shared_->save(shared_out);

  std::vector<ShardRecord> records(shards_.size());
  std::vector<StateSectionView> views{
      {kSectionEngine, bytes_of(er)}, {kSectionPopulation, population}, {kSectionShared, shared}};
  std::int64_t logical = 0;
  std::uint64_t domains = 0;
  for (std::size_t s = 0; s < shards_.size(); ++s) {
    const Shard& shard = *shards_[s];
    const DomainState& st = *shard.state;
    ShardRecord& sr = records[s];
    sr.capacity = {st.base_.size(), st.candidates_.size(), st.watch_.size(), st.seen_.slots_.size(),
                   st.doorkeeper_.words_.size()};
    sr.day = shard.day;
    sr.logical_ns = shard.logical_ns.load(std::memory_order_relaxed);
    logical = std::max(logical, sr.logical_ns);
    const DomainState::Counters& c = st.counters_;
    for (std::size_t t = 0; t < DomainState::kTiers; ++t) {
      sr.evictions[t] = c.evictions[t].load(std::memory_order_relaxed);
      sr.rejected[t] = c.rejected[t].load(std::memory_order_relaxed);
    }
    domains += c.entries[DomainState::kBase].load(std::memory_order_relaxed);
    sr.flagged_qc = c.flagged_qc.load(std::memory_order_relaxed);
    sr.flagged_qc_any = c.flagged_qc_any.load(std::memory_order_relaxed);
    for (std::size_t d = 0; d < kDetectors; ++d) {
      sr.flagged[d] = c.flagged[d].load(std::memory_order_relaxed);
    }
    sr.first_day = st.first_day_;
    views.push_back({shard_section(s, ShardSection::Record), bytes_of(sr)});
    views.push_back({shard_section(s, ShardSection::ClientsToday),
                     std::as_bytes(shard.clients_today.registers())});
    views.push_back({shard_section(s, ShardSection::Base), bytes_of(st.base_)});
    views.push_back({shard_section(s, ShardSection::Candidates), bytes_of(st.candidates_)});
    views.push_back({shard_section(s, ShardSection::Watch), bytes_of(st.watch_)});
    views.push_back({shard_section(s, ShardSection::SeenFilter), bytes_of(st.seen_.slots_)});
    views.push_back({shard_section(s, ShardSection::Doorkeeper), bytes_of(st.doorkeeper_.words_)});
  }
  StateHeader header;
  header.flags = clean ? kStateFlagClean : 0;
  header.producer = producer_;
  header.logical_clock_ns = logical;
  header.origin_ns = clock_.origin();
  StateFileStatus st = write_state_file(options_.state_file, header, views);
  if (checkpoint_log_) {
    std::uint64_t bytes = kStateHeaderSizeV1 + kStateTrailerBytes;
    for (const auto& v : views) {
      bytes += kStateSectionOverhead + v.payload.size();
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    std::array<char, 64> size{};
    std::snprintf(size.data(), size.size(), "%.1f MiB in %.2f s",
                  static_cast<double>(bytes) / (1024.0 * 1024.0), seconds);
    if (st.ok()) {
      checkpoint_log_(false, "detection: state saved to " + options_.state_file + " (" +
                                 size.data() + (clean ? ", at the stop" : "") + "; " +
                                 std::to_string(domains) + " domains, logical time " +
                                 format_rfc3339(logical) + ")");
    } else {
      checkpoint_log_(true, "detection: cannot save the state to " + options_.state_file + ": " +
                                std::string(to_string(st.error)) + ": " + st.detail);
    }
  }
  return st;
}

// --- Pausing the shards ----------------------------------------------------------------------

void Engine::park() {
  std::unique_lock lock(pause_mutex_);
  ++parked_;
  pause_cv_.notify_all();
  pause_cv_.wait(lock, [this] { return !pause_.load(std::memory_order_relaxed); });
  --parked_;
}

void Engine::pause_shards() {
  {
    const std::lock_guard lock(pause_mutex_);
    pause_.store(true, std::memory_order_release);
  }
  for (auto& shard : shards_) {
    shard->bell.ring_always();
  }
  std::unique_lock lock(pause_mutex_);
  pause_cv_.wait(lock, [this] { return parked_ == shards_.size(); });
}

void Engine::resume_shards() {
  {
    const std::lock_guard lock(pause_mutex_);
    pause_.store(false, std::memory_order_release);
  }
  pause_cv_.notify_all();
}

StateFileStatus Engine::checkpoint() {
  const std::lock_guard lock(checkpoint_mutex_);
  if (threads_.empty()) {
    return write_checkpoint(false);
  }
  pause_shards();
  StateFileStatus st = write_checkpoint(false);
  resume_shards();
  return st;
}

void Engine::run_checkpoints(const std::stop_token& stop) {
  std::unique_lock lock(checkpointer_mutex_);
  while (!stop.stop_requested()) {
    (void)checkpointer_cv_.wait_for(lock, stop, kCheckpointInterval, [] { return false; });
    if (stop.stop_requested()) {
      break;
    }
    lock.unlock();
    {
      const std::lock_guard one(checkpoint_mutex_);
      pause_shards();
      (void)write_checkpoint(false);
      resume_shards();
    }
    lock.lock();
  }
}

}  // namespace dnsmon::detect
