// Checkpoints of the detection state (checkpoint.hpp): a state with entries in every tier
// survives a save and a load byte for byte (with the logical clock, its origin and the seed that
// keys the tables), and every file that does not belong to the running configuration (damaged,
// truncated, foreign, another layout, other capacities, shards or clock) is refused: the engine
// starts fresh, keeps the refused file aside and runs on, never half-loaded.
#include "dnsmon/detect/checkpoint.hpp"

#include <cstddef>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <span>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "dnsmon/detect/engine.hpp"
#include "dnsmon/detect/shared.hpp"
#include "dnsmon/detect/state_file.hpp"

#include "detect_messages.hpp"

namespace dnsmon::detect {
namespace {

constexpr std::int64_t kS = 1'000'000'000;
constexpr std::int64_t kOrigin = std::int64_t{1459728000} * kS;  // 2016-04-04T00:00:00Z
constexpr std::int64_t kPacketDay = 60 * kS;                     // a logical day at x1440

struct TempDir {
  std::filesystem::path path;

  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "dnsmon-ckpt-XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }

  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

std::shared_ptr<const detail::PublicSuffixList> test_list() {
  return detail::PublicSuffixList::from_text("com\nexample\n", "test list");
}

// A query from 203.0.<net>.<host> (one organisation per /24).
DnsMessage query(const std::string& name, std::uint8_t net, std::uint8_t host, std::int64_t ts) {
  return test::a_message(name, {203, 0, net, host}, ts);
}

// Tiny tables: one base set of 8 ways, so that the filler domains evict each other into the seen
// filter, while the candidate and the watched domain stay.
DetectOptions options(const std::filesystem::path& state) {
  DetectOptions o;
  o.enabled = true;
  o.time.compression = 1440;
  o.time.origin = "2016-04-04T00:00:00Z";
  o.time.origin_ns = kOrigin;
  o.memory = {8, 4, 2, 64, 4096};
  o.exports.watchlist = {"watched.example"};
  o.state_file = state.string();
  return o;
}

// Days [first, last) of traffic: a concentrated pair (two organisations, 12 lookups a day), a
// watched domain, and twenty filler domains looked up twice each (evicting each other).
void feed(Engine& engine, int first, int last, std::int64_t origin = kOrigin) {
  for (int day = first; day < last; ++day) {
    std::int64_t t = origin + day * kPacketDay + kS;
    const auto next = [&t] { return t += kS / 10; };  // 144 logical seconds apart
    for (int n = 0; n < 12; ++n) {
      engine.port(0).on_message(
          query("www.pair.example", static_cast<std::uint8_t>(n % 2), 7, next()), -1);
    }
    engine.port(0).on_message(query("watched.example", 9, 9, next()), -1);
    for (int d = 0; d < 20; ++d) {
      const std::string name = "f" + std::to_string(d) + ".example";
      engine.port(0).on_message(query(name, 50, static_cast<std::uint8_t>(d), next()), -1);
      engine.port(0).on_message(query(name, 50, static_cast<std::uint8_t>(d), next()), -1);
    }
  }
}

std::vector<std::byte> read_bytes(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  const std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> out(s.size());
  std::memcpy(out.data(), s.data(), s.size());
  return out;
}

void write_bytes(const std::filesystem::path& p, const std::vector<std::byte>& b) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

// Rewrites a valid state file with one section changed (CRCs made right again).
void rewrite(const std::filesystem::path& p, std::uint32_t id,
             const std::function<void(std::vector<std::byte>&)>& change) {
  StateLoadResult r = load_state_file(p);
  REQUIRE(r.ok());
  std::vector<StateSectionView> views;
  for (auto& s : r.file.sections) {
    if (s.id == id) {
      change(s.payload);
    }
    views.push_back({s.id, s.payload});
  }
  REQUIRE(write_state_file(p, r.file.header, views).ok());
}

// The state of a run over days [0, 20) written at its end.
void write_reference(const DetectOptions& o) {
  Engine engine(o, 1, 1, test_list(), nullptr, false, 11);
  REQUIRE(engine.restore_status().outcome == RestoreStatus::Outcome::Missing);
  engine.start();
  feed(engine, 0, 20);
  engine.finish();
  REQUIRE_FALSE(engine.final_checkpoint_failed());
}

bool fresh(const Engine& e) {
  const DetectionSnapshot s = e.snapshot();
  return s.entries[0] == 0 && s.entries[1] == 0 && s.entries[2] == 0 &&
         s.seen_filter_entries == 0 && s.logical_time_s == 0;
}

// A refused file leaves a fresh engine that runs, keeps the file aside and writes a new one.
void check_refused(const DetectOptions& o, RestoreStatus::Outcome outcome, const std::string& why,
                   std::size_t shards = 1) {
  Engine engine(o, 1, shards, test_list(), nullptr, false, 11);
  CAPTURE(engine.restore_status().message);
  CHECK(engine.restore_status().outcome == outcome);
  CHECK(engine.restore_status().message.find(why) != std::string::npos);
  CHECK(engine.restore_status().message.find("starting fresh") != std::string::npos);
  CHECK(fresh(engine));
  CHECK(std::filesystem::exists(o.state_file + ".refused"));
  CHECK_FALSE(std::filesystem::exists(o.state_file));
  engine.start();
  feed(engine, 30, 32);
  engine.finish();
  CHECK(engine.snapshot().entries[0] >= 8);
  Engine again(o, 1, shards, test_list(), nullptr, false);
  CHECK(again.restore_status().outcome == RestoreStatus::Outcome::Loaded);
}

}  // namespace

TEST_CASE("a checkpoint round-trips every tier, the clock, the origin and the seed",
          "[detect][checkpoint]") {
  const TempDir dir;
  const DetectOptions o = options(dir.path / "detect.state");
  {
    Engine none(DetectOptions{}, 1, 1, test_list(), nullptr, false);
    CHECK(none.restore_status().outcome == RestoreStatus::Outcome::Off);
  }
  write_reference(o);
  Engine a(o, 1, 1, test_list(), nullptr, false, 99);  // the file's seed wins over 99
  CAPTURE(a.restore_status().message);
  REQUIRE(a.restore_status().outcome == RestoreStatus::Outcome::Loaded);
  CHECK(a.restore_status().message.find("logical time 2016-04-23T") != std::string::npos);
  const DetectionSnapshot s = a.snapshot();
  CHECK(s.entries[0] == 8);  // base (full)
  CHECK(s.entries[1] >= 2);  // candidates: the pair, the watched domain, maybe fillers
  CHECK(s.entries[2] == 1);  // watch
  CHECK(s.seen_filter_entries > 0);
  CHECK(s.evictions[0] > 0);
  CHECK(s.population14 > 0);
  CHECK(s.logical_time_s >= static_cast<double>(kOrigin + 19 * kDayNs) / 1e9);
  CHECK(a.clock().origin() == kOrigin);

  // Saved again without a change, every section is the same byte for byte.
  const auto again = dir.path / "again.state";
  DetectOptions o2 = o;
  o2.state_file = again.string();
  std::filesystem::copy_file(o.state_file, again);
  Engine b(o2, 1, 1, test_list(), nullptr, false);
  REQUIRE(b.restore_status().outcome == RestoreStatus::Outcome::Loaded);
  REQUIRE(b.checkpoint().ok());
  const StateLoadResult first = load_state_file(o.state_file);
  const StateLoadResult second = load_state_file(again);
  REQUIRE(first.ok());
  REQUIRE(second.ok());
  CHECK(first.file.header.flags == kStateFlagClean);  // written by finish()
  CHECK(second.file.header.flags == 0);               // a checkpoint of a running engine
  CHECK(first.file.header.origin_ns == second.file.header.origin_ns);
  CHECK(first.file.header.logical_clock_ns == second.file.header.logical_clock_ns);
  REQUIRE(first.file.sections.size() == 3 + 7);
  REQUIRE(second.file.sections.size() == first.file.sections.size());
  for (std::size_t i = 0; i < first.file.sections.size(); ++i) {
    CAPTURE(first.file.sections[i].id);
    CHECK(first.file.sections[i].id == second.file.sections[i].id);
    CHECK(first.file.sections[i].payload == second.file.sections[i].payload);
  }

  // The run continues: the same domains, under the same keys (the file's seed), stay.
  a.start();
  feed(a, 20, 22);
  a.finish();
  const DetectionSnapshot after = a.snapshot();
  CHECK(after.entries[1] == s.entries[1]);
  CHECK(after.entries[2] == 1);
  CHECK(after.logical_time_s >= static_cast<double>(kOrigin + 21 * kDayNs) / 1e9);
}

TEST_CASE("the origin of the first packet survives a restart", "[detect][checkpoint]") {
  const TempDir dir;
  DetectOptions o = options(dir.path / "detect.state");
  o.time.origin = "first_packet";
  o.time.origin_ns.reset();
  const std::int64_t first = kOrigin + 3 * kPacketDay + 5 * kS;
  {
    Engine a(o, 1, 1, test_list(), nullptr, false);
    a.start();
    a.port(0).on_message(query("www.pair.example", 1, 1, first), -1);
    a.finish();
    CHECK(a.clock().origin() == first);
  }
  Engine b(o, 1, 1, test_list(), nullptr, false);
  REQUIRE(b.restore_status().outcome == RestoreStatus::Outcome::Loaded);
  CHECK(b.clock().origin() == first);
  CHECK(b.clock().logical(first + kS) == first + 1440 * kS);  // not a new origin
  // A configured origin that differs from the file's is refused (its days would not match).
  o.time.origin = "2016-04-04T00:00:00Z";
  o.time.origin_ns = kOrigin;
  check_refused(o, RestoreStatus::Outcome::Refused, "logical clock origin");
}

TEST_CASE("a live engine checkpoints with its shards paused and runs on", "[detect][checkpoint]") {
  const TempDir dir;
  const DetectOptions o = options(dir.path / "detect.state");
  Engine engine(o, 1, 2, test_list(), nullptr, true, 5);
  engine.start();
  feed(engine, 0, 3);
  REQUIRE(engine.checkpoint().ok());
  feed(engine, 3, 4);
  REQUIRE(engine.checkpoint().ok());
  engine.finish();
  Engine next(o, 1, 2, test_list(), nullptr, true);
  CHECK(next.restore_status().outcome == RestoreStatus::Outcome::Loaded);
  CHECK(next.snapshot().entries[0] == engine.snapshot().entries[0]);
}

TEST_CASE("damaged, truncated and foreign files are refused and the engine starts fresh",
          "[detect][checkpoint]") {
  const TempDir dir;
  const DetectOptions o = options(dir.path / "detect.state");
  write_reference(o);
  const std::vector<std::byte> good = read_bytes(o.state_file);
  REQUIRE(good.size() > 1000);

  SECTION("a corrupt byte") {
    std::vector<std::byte> bad = good;
    bad[bad.size() / 2] ^= std::byte{0x40};
    write_bytes(o.state_file, bad);
    check_refused(o, RestoreStatus::Outcome::Corrupt, "CRC mismatch");
  }
  SECTION("a truncated file") {
    write_bytes(o.state_file, std::vector<std::byte>(good.begin(), good.begin() + 5000));
    check_refused(o, RestoreStatus::Outcome::Corrupt, "truncated");
  }
  SECTION("an empty file") {
    write_bytes(o.state_file, {});
    check_refused(o, RestoreStatus::Outcome::Corrupt, "empty");
  }
  SECTION("a foreign file") {
    const std::string text = "detection:\n  enabled: true\n";
    std::vector<std::byte> foreign(text.size());
    std::memcpy(foreign.data(), text.data(), text.size());
    write_bytes(o.state_file, foreign);
    check_refused(o, RestoreStatus::Outcome::Refused, "not a dnsmon state file");
  }
  SECTION("a state file container without the engine's sections") {
    const std::vector<std::byte> payload(16, std::byte{1});
    const std::vector<StateSectionView> views{{7, payload}};
    REQUIRE(write_state_file(o.state_file, StateHeader{}, views).ok());
    check_refused(o, RestoreStatus::Outcome::Refused, "no engine section");
  }
  SECTION("a newer record layout") {
    rewrite(o.state_file, kSectionEngine, [](std::vector<std::byte>& p) {
      const std::uint32_t next = kStateLayoutVersion + 1;
      std::memcpy(p.data() + 4, &next, 4);
    });
    check_refused(o, RestoreStatus::Outcome::Refused,
                  "record layout " + std::to_string(kStateLayoutVersion + 1));
  }
  SECTION("another record size in the fingerprint") {
    rewrite(o.state_file, kSectionEngine, [](std::vector<std::byte>& p) {
      const std::uint32_t other = sizeof(BaseEntry) + 8;
      std::memcpy(p.data() + 8, &other, 4);
    });
    check_refused(o, RestoreStatus::Outcome::Refused, "record layout differs");
  }
  SECTION("a base entry naming a candidate out of range") {
    rewrite(o.state_file, shard_section(0, ShardSection::Base), [](std::vector<std::byte>& p) {
      for (std::size_t at = 0; at + sizeof(BaseEntry) <= p.size(); at += sizeof(BaseEntry)) {
        BaseEntry e;
        std::memcpy(&e, p.data() + at, sizeof e);
        if (e.candidate != 0) {
          e.candidate = 1000;
          std::memcpy(p.data() + at, &e, sizeof e);
          return;
        }
      }
      FAIL("no candidate in the base table");
    });
    check_refused(o, RestoreStatus::Outcome::Corrupt, "names a wrong candidate");
  }
  SECTION("a HyperLogLog register out of range") {
    rewrite(o.state_file, kSectionPopulation,
            [](std::vector<std::byte>& p) { p[123] = std::byte{200}; });
    check_refused(o, RestoreStatus::Outcome::Corrupt, "register out of range");
  }
  SECTION("a shared-state section with bytes it does not read") {
    rewrite(o.state_file, kSectionShared,
            [](std::vector<std::byte>& p) { p.push_back(std::byte{0}); });
    check_refused(o, RestoreStatus::Outcome::Corrupt, "shared-state section");
  }
}

TEST_CASE("a file of other capacities, shards or clock is refused, saying why",
          "[detect][checkpoint]") {
  const TempDir dir;
  const DetectOptions o = options(dir.path / "detect.state");
  write_reference(o);
  SECTION("more candidates") {
    DetectOptions other = o;
    other.memory.candidate_entries = 8;
    check_refused(other, RestoreStatus::Outcome::Refused, "table capacities differ");
  }
  SECTION("a larger base table") {
    DetectOptions other = o;
    other.memory.base_entries = 16;
    check_refused(other, RestoreStatus::Outcome::Refused, "table capacities differ");
  }
  SECTION("fewer candidates") {
    DetectOptions other = o;
    other.memory.candidate_entries = 1;
    check_refused(other, RestoreStatus::Outcome::Refused, "table capacities differ");
  }
  SECTION("two shards") {
    check_refused(o, RestoreStatus::Outcome::Refused, "detection shard(s)", 2);
  }
  SECTION("another compression") {
    DetectOptions other = o;
    other.time.compression = 60;
    check_refused(other, RestoreStatus::Outcome::Refused, "compression");
  }
}

TEST_CASE("a missing file is a first start, and a failed write is reported",
          "[detect][checkpoint]") {
  const TempDir dir;
  DetectOptions o = options(dir.path / "none" / "detect.state");
  Engine engine(o, 1, 1, test_list(), nullptr, false);
  CHECK(engine.restore_status().outcome == RestoreStatus::Outcome::Missing);
  std::string logged;
  engine.set_checkpoint_log(
      [&logged](bool failed, const std::string& line) {
        CHECK(failed);
        logged = line;
      },
      "dnsmon test");
  engine.start();
  feed(engine, 0, 1);
  engine.finish();
  CHECK(engine.final_checkpoint_failed());
  CHECK(logged.find("cannot save the state to") != std::string::npos);
}

}  // namespace dnsmon::detect

namespace dnsmon::detect {
namespace {

TEST_CASE("the shared state's checkpoint keeps the covert_pair cap and the recently-dead map",
          "[detect][checkpoint]") {
  DetectOptions o;
  SharedState a(o);
  a.covert_cap.day = 16'930;
  a.covert_cap.admitted = 3;
  a.covert_cap.suppressed = 7;
  DeadRecord r;
  r.addr = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 198, 51, 100, 7};
  r.domain_key = 42;
  r.died = 16'929;
  r.name_len = 12;
  std::memcpy(r.name.data(), "dead.example", 12);
  a.dead_insert(r, 16'930);
  std::vector<std::byte> bytes;
  StateSink out(bytes);
  a.save(out);

  SharedState b(o);
  StateSource in(bytes);
  REQUIRE(b.load(in));
  CHECK(in.done());
  CHECK(b.covert_cap.day == 16'930);
  CHECK(b.covert_cap.admitted == 3);
  CHECK(b.covert_cap.suppressed == 7);
  CHECK(b.dead_live() == 1);
  CHECK(b.dead_maybe(r.addr));
  const DeadRecord* found = b.dead_find(r.addr, 16'931);
  REQUIRE(found != nullptr);
  CHECK(found->domain() == "dead.example");

  // Too few bytes, or an entry count that is not the map's: refused.
  for (const std::size_t keep : {std::size_t{0}, bytes.size() / 2, bytes.size() - 1}) {
    SharedState c(o);
    StateSource cut(std::span<const std::byte>(bytes.data(), keep));
    CHECK_FALSE(c.load(cut));
  }
  std::vector<std::byte> wrong = bytes;
  wrong[sizeof(NewAlertCap)] = std::byte{1};  // the low byte of the entry count
  SharedState d(o);
  StateSource bad(wrong);
  CHECK_FALSE(d.load(bad));
}

}  // namespace
}  // namespace dnsmon::detect
