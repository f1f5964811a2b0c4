#include "dnsmon/capture.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <fcntl.h>
#include <filesystem>
#include <functional>
#include <set>
#include <stop_token>
#include <string>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include <pcap/pcap.h>

#include <catch2/catch.hpp>

#include "dnsmon/dedup.hpp"

namespace {

namespace fs = std::filesystem;
using dnsmon::CaptureError;
using dnsmon::CaptureOptions;
using dnsmon::FrameRing;
using dnsmon::FrameView;
using dnsmon::PacketSource;

// A UDP/IPv4 frame between two addresses; only the address bytes matter to these tests.
std::vector<std::uint8_t> ipv4_frame(std::uint8_t a, std::uint8_t b, std::size_t size = 60) {
  std::vector<std::uint8_t> f(size, 0);
  f[12] = 0x08;
  f[13] = 0x00;
  f[14] = 0x45;
  f[23] = 17;
  f[26] = 10;
  f[29] = a;
  f[30] = 10;
  f[33] = b;
  return f;
}

struct TempDir {
  fs::path path = fs::temp_directory_path() / ("dnsmon-capture-test-" + std::to_string(::getpid()));

  TempDir() { fs::create_directories(path); }

  ~TempDir() { fs::remove_all(path); }

  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

// Writes frames with timestamps sec.frac (frac in the file's precision).
void write_pcap(const fs::path& file, int precision, std::size_t count) {
  pcap_t* dead =
      pcap_open_dead_with_tstamp_precision(DLT_EN10MB, 65535, static_cast<u_int>(precision));
  pcap_dumper_t* d = pcap_dump_open(dead, file.c_str());
  REQUIRE(d != nullptr);
  for (std::size_t i = 0; i < count; ++i) {
    const auto frame = ipv4_frame(static_cast<std::uint8_t>(i), 1, 60 + i);
    pcap_pkthdr h{};
    h.ts.tv_sec = 1'700'000'000 + static_cast<long>(i);
    h.ts.tv_usec = 123;
    h.caplen = h.len = static_cast<bpf_u_int32>(frame.size());
    pcap_dump(reinterpret_cast<u_char*>(d), &h, frame.data());  // NOLINT: libpcap API
  }
  pcap_dump_close(d);
  pcap_close(dead);
}

std::vector<FrameView> drain(FrameRing& ring, std::vector<std::vector<std::byte>>& keep) {
  std::vector<FrameView> out;
  FrameView v;
  while (ring.front(v)) {
    keep.emplace_back(v.bytes.begin(), v.bytes.end());
    v.bytes = keep.back();
    out.push_back(v);
    ring.pop();
  }
  return out;
}

}  // namespace

TEST_CASE("files are read in order with timestamps in nanoseconds", "[capture]") {
  TempDir dir;
  write_pcap(dir.path / "a.pcap", PCAP_TSTAMP_PRECISION_MICRO, 3);
  write_pcap(dir.path / "b.pcap", PCAP_TSTAMP_PRECISION_NANO, 2);
  CaptureOptions options;
  auto source = PacketSource::open_files(
      {(dir.path / "a.pcap").string(), (dir.path / "b.pcap").string()}, options, 0);
  FrameRing ring(16, 4096);
  std::vector<FrameRing*> rings{&ring};
  std::stop_source stop;
  CHECK(source->run(stop.get_token(), rings).empty());
  std::vector<std::vector<std::byte>> keep;
  const auto frames = drain(ring, keep);
  REQUIRE(frames.size() == 5);
  CHECK(frames[0].header.ts_ns == 1'700'000'000LL * 1'000'000'000 + 123'000);  // 123 µs
  CHECK(frames[3].header.ts_ns == 1'700'000'000LL * 1'000'000'000 + 123);      // 123 ns
  CHECK(frames[0].header.link_type == DLT_EN10MB);
  CHECK(frames[2].bytes.size() == 62);
  CHECK(source->stats().received.get() == 5);
  CHECK(source->stats().ring_dropped.get() == 0);
  CHECK_FALSE(source->stats().up.load());
}

TEST_CASE("a replay waits for room in the ring instead of dropping", "[capture][threads]") {
  TempDir dir;
  write_pcap(dir.path / "many.pcap", PCAP_TSTAMP_PRECISION_MICRO, 500);
  auto source = PacketSource::open_files({(dir.path / "many.pcap").string()}, {}, 0);
  FrameRing ring(8, 256);
  std::vector<FrameRing*> rings{&ring};
  std::size_t seen = 0;
  {
    std::jthread producer(
        [&](const std::stop_token& st) { CHECK(source->run(st, rings).empty()); });
    FrameView v;
    while (seen < 500) {
      if (ring.front(v)) {
        ++seen;
        ring.pop();
      } else {
        std::this_thread::yield();
      }
    }
  }
  CHECK(seen == 500);
  CHECK(source->stats().ring_dropped.get() == 0);
}

TEST_CASE("an inline replay hands batches to its consumer in the same thread", "[capture]") {
  TempDir dir;
  constexpr std::size_t kFrames = 1000;
  write_pcap(dir.path / "many.pcap", PCAP_TSTAMP_PRECISION_MICRO, kFrames);
  write_pcap(dir.path / "few.pcap", PCAP_TSTAMP_PRECISION_NANO, 3);
  auto source = PacketSource::open_files(
      {(dir.path / "many.pcap").string(), (dir.path / "few.pcap").string()}, {}, 0);
  // 64 frames: the ring fills before a batch of kInlineBatch, so both paths are taken.
  FrameRing ring(64, 65535);
  std::vector<FrameRing*> rings{&ring};
  const auto reader = std::this_thread::get_id();
  std::size_t calls = 0;
  std::size_t largest = 0;
  std::vector<std::int64_t> times;
  const std::function<void()> consume = [&] {
    CHECK(std::this_thread::get_id() == reader);
    ++calls;
    std::size_t n = 0;
    FrameView v;
    while (ring.front(v)) {
      times.push_back(v.header.ts_ns);
      ring.pop();
      ++n;
    }
    largest = std::max(largest, n);
  };
  std::stop_source stop;
  CHECK(source->run_inline(stop.get_token(), rings, consume).empty());
  REQUIRE(times.size() == kFrames + 3);  // every frame, in order, none left in the ring
  CHECK(std::is_sorted(times.begin(), times.begin() + kFrames));
  CHECK(times[kFrames] == 1'700'000'000LL * 1'000'000'000 + 123);
  CHECK(ring.empty());
  CHECK(largest <= 64);
  CHECK(calls >= kFrames / 64);
  CHECK(source->stats().received.get() == kFrames + 3);
  CHECK(source->stats().ring_dropped.get() == 0);

  // Batches of kInlineBatch when the ring is large enough.
  auto again = PacketSource::open_files({(dir.path / "many.pcap").string()}, {}, 0);
  FrameRing big(4096, 65535);
  std::vector<FrameRing*> big_rings{&big};
  calls = 0;
  largest = 0;
  times.clear();
  const std::function<void()> consume_big = [&] {
    ++calls;
    std::size_t n = 0;
    FrameView v;
    while (big.front(v)) {
      big.pop();
      ++n;
    }
    largest = std::max(largest, n);
    times.resize(times.size() + n);
  };
  CHECK(again->run_inline(stop.get_token(), big_rings, consume_big).empty());
  CHECK(times.size() == kFrames);
  CHECK(largest == PacketSource::kInlineBatch);
  CHECK(calls >= kFrames / PacketSource::kInlineBatch);
}

TEST_CASE("frames are spread over rings by address, both directions together", "[capture]") {
  const auto ab = ipv4_frame(1, 2);
  const auto ba = ipv4_frame(2, 1);
  const auto as_bytes = [](const std::vector<std::uint8_t>& v) {
    return std::span<const std::byte>(reinterpret_cast<const std::byte*>(v.data()), v.size());
  };
  CHECK(dnsmon::flow_hash(DLT_EN10MB, as_bytes(ab)) == dnsmon::flow_hash(DLT_EN10MB, as_bytes(ba)));
  std::set<std::size_t> buckets;
  for (std::uint8_t a = 1; a < 65; ++a) {
    buckets.insert(dnsmon::flow_hash(DLT_EN10MB, as_bytes(ipv4_frame(a, 200))) % 4);
  }
  CHECK(buckets.size() == 4);
  CHECK(dnsmon::flow_hash(DLT_EN10MB, {}) == 0);  // too short: any ring will do
}

TEST_CASE("frames in PPPoE, MPLS, NFLOG and FDDI hash as the packet inside them", "[capture]") {
  const auto as_bytes = [](const std::vector<std::uint8_t>& v) {
    return std::span<const std::byte>(reinterpret_cast<const std::byte*>(v.data()), v.size());
  };
  // The IP packet of ipv4_frame(a, b), behind another link header.
  const auto wrap = [](std::uint8_t a, std::uint8_t b, std::vector<std::uint8_t> head) {
    const auto plain = ipv4_frame(a, b);
    head.insert(head.end(), plain.begin() + 14, plain.end());
    return head;
  };
  const std::vector<std::uint8_t> mac(12, 0x02);
  auto ether = [&](std::vector<std::uint8_t> rest) {
    std::vector<std::uint8_t> h = mac;
    h.insert(h.end(), rest.begin(), rest.end());
    return h;
  };
  // PPPoE session; PPPoE in 802.1Q; two MPLS labels; an Ethernet pseudowire (control word).
  const std::vector<std::vector<std::uint8_t>> heads{
      ether({0x88, 0x64, 0x11, 0x00, 0x00, 0x01, 0x00, 0x30, 0x00, 0x21}),
      ether({0x81, 0x00, 0x00, 0x0a, 0x88, 0x64, 0x11, 0x00, 0x00, 0x01, 0x00, 0x30, 0x00, 0x21}),
      ether({0x88, 0x47, 0x00, 0x10, 0x00, 0x40, 0x00, 0x11, 0x01, 0x40}),
      ether({0x88, 0x47, 0x00, 0x10, 0x01, 0x40, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02,
             0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x08, 0x00}),
  };
  for (std::size_t i = 0; i < heads.size(); ++i) {
    CAPTURE(i);
    for (const std::uint8_t a : {std::uint8_t{1}, std::uint8_t{7}, std::uint8_t{42}}) {
      const auto plain = dnsmon::flow_hash(DLT_EN10MB, as_bytes(ipv4_frame(a, 2)));
      CHECK(dnsmon::flow_hash(DLT_EN10MB, as_bytes(wrap(a, 2, heads[i]))) == plain);
      CHECK(dnsmon::flow_hash(DLT_EN10MB, as_bytes(wrap(2, a, heads[i]))) == plain);
    }
  }
  std::vector<std::uint8_t> fddi{0x50};
  fddi.resize(13, 0x02);
  fddi.insert(fddi.end(), {0xAA, 0xAA, 0x03, 0, 0, 0, 0x08, 0x00});
  // NFLOG: AF_INET, version, resource id, then the payload attribute (little-endian TLV).
  const std::vector<std::uint8_t> nflog{2, 0, 0, 1, 50, 0, 9, 0};
  for (const std::uint8_t a : {std::uint8_t{1}, std::uint8_t{7}, std::uint8_t{42}}) {
    const auto plain = dnsmon::flow_hash(DLT_EN10MB, as_bytes(ipv4_frame(a, 2)));
    CHECK(dnsmon::flow_hash(10, as_bytes(wrap(a, 2, fddi))) == plain);
    CHECK(dnsmon::flow_hash(239, as_bytes(wrap(a, 2, nflog))) == plain);
  }
}

TEST_CASE("a frame repeated within the window is a duplicate, whatever its link header",
          "[capture][dedup]") {
  const auto as_bytes = [](const std::vector<std::uint8_t>& v) {
    return std::span<const std::byte>(reinterpret_cast<const std::byte*>(v.data()), v.size());
  };
  constexpr std::int64_t kMs = 1'000'000;
  dnsmon::DuplicateFilter filter(64, 10 * kMs);
  CHECK(filter.capacity() == 64);
  const auto a = ipv4_frame(1, 2);
  const auto b = ipv4_frame(1, 3);
  CHECK_FALSE(filter.check(DLT_EN10MB, as_bytes(a), 0).duplicate);
  CHECK(filter.check(DLT_EN10MB, as_bytes(a), 5 * kMs).duplicate);
  CHECK(filter.check(DLT_EN10MB, as_bytes(a), 10 * kMs).duplicate);   // a third copy, at the edge
  CHECK_FALSE(filter.check(DLT_EN10MB, as_bytes(b), kMs).duplicate);  // another packet
  // The same IP packet in a Linux cooked capture (`-i any` beside an Ethernet tap).
  std::vector<std::uint8_t> sll(14, 0);
  sll.insert(sll.end(), {0x08, 0x00});
  sll.insert(sll.end(), a.begin() + 14, a.end());
  CHECK(filter.check(113, as_bytes(sll), 2 * kMs).duplicate);
  // One byte different is another packet.
  auto a2 = a;
  a2.back() ^= 1U;
  CHECK_FALSE(filter.check(DLT_EN10MB, as_bytes(a2), 3 * kMs).duplicate);
  // Later than the window: an original again, which the next copy repeats.
  CHECK_FALSE(filter.check(DLT_EN10MB, as_bytes(a), 11 * kMs).duplicate);
  CHECK(filter.check(DLT_EN10MB, as_bytes(a), 12 * kMs).duplicate);
  // Times going back a little (two sources merged) are still within the window.
  CHECK(filter.check(DLT_EN10MB, as_bytes(a), 9 * kMs).duplicate);
  // Frames that lead to no IP packet are compared whole.
  std::vector<std::uint8_t> arp(42, 0x11);
  arp[12] = 0x08;
  arp[13] = 0x06;
  CHECK_FALSE(filter.check(DLT_EN10MB, as_bytes(arp), 20 * kMs).duplicate);
  CHECK(filter.check(DLT_EN10MB, as_bytes(arp), 20 * kMs).duplicate);
  // A flood of distinct packets inside the window overflows the table: counted as evictions, and
  // an evicted packet's copy is then taken for an original. Every packet is remembered at once.
  dnsmon::DuplicateFilter small(8, 10 * kMs);
  std::size_t evicted = 0;
  for (std::uint8_t i = 0; i < 64; ++i) {
    const auto r = small.check(DLT_EN10MB, as_bytes(ipv4_frame(i, 200)), 30 * kMs);
    CHECK_FALSE(r.duplicate);
    evicted += r.evicted ? 1U : 0U;
  }
  CHECK(evicted >= 64 - 8);
  std::size_t found = 0;
  for (std::uint8_t i = 0; i < 64; ++i) {
    found += small.check(DLT_EN10MB, as_bytes(ipv4_frame(i, 200)), 31 * kMs).duplicate ? 1U : 0U;
  }
  CHECK(found <= 8);
  // Digests: equal bytes, equal digests; any length, any single byte changed, another digest.
  std::vector<std::byte> bytes(40);
  std::set<std::uint64_t> digests;
  for (std::size_t n = 0; n <= bytes.size(); ++n) {
    digests.insert(dnsmon::DuplicateFilter::digest(std::span(bytes).first(n)));
  }
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    auto changed = bytes;
    changed[i] = std::byte{1};
    digests.insert(dnsmon::DuplicateFilter::digest(changed));
  }
  CHECK(digests.size() == 41 + 40);
}

TEST_CASE("a missing or unreadable file is refused before capture starts", "[capture]") {
  TempDir dir;
  CHECK_THROWS_AS(PacketSource::open_files({(dir.path / "absent.pcap").string()}, {}, 0),
                  CaptureError);
  const auto junk = dir.path / "junk.pcap";
  std::FILE* f = std::fopen(junk.c_str(), "w");
  std::fputs("this is not a capture file", f);
  std::fclose(f);
  CHECK_THROWS_WITH(PacketSource::open_files({junk.string()}, {}, 0), Catch::Contains("junk.pcap"));
}

TEST_CASE("an invalid capture filter is refused with the expression", "[capture]") {
  TempDir dir;
  write_pcap(dir.path / "a.pcap", PCAP_TSTAMP_PRECISION_MICRO, 1);
  CaptureOptions options;
  options.bpf_filter = "udp port banana";
  CHECK_THROWS_WITH(PacketSource::open_files({(dir.path / "a.pcap").string()}, options, 0),
                    Catch::Contains("udp port banana"));
}

TEST_CASE("a filter given for files is applied", "[capture]") {
  TempDir dir;
  write_pcap(dir.path / "a.pcap", PCAP_TSTAMP_PRECISION_MICRO, 4);
  CaptureOptions options;
  options.bpf_filter = "src host 10.0.0.2";
  auto source = PacketSource::open_files({(dir.path / "a.pcap").string()}, options, 0);
  FrameRing ring(16, 4096);
  std::vector<FrameRing*> rings{&ring};
  std::stop_source stop;
  CHECK(source->run(stop.get_token(), rings).empty());
  CHECK(ring.size_approx() == 1);
}

TEST_CASE("opening an interface that does not exist says so", "[capture]") {
  CHECK_THROWS_AS(PacketSource::open_live("dnsmon-no-such0", {}, 0), CaptureError);
}

TEST_CASE("the default live filter admits every fragment of a response", "[capture][filter]") {
  CHECK(dnsmon::fragment_probes_rejected(std::string(dnsmon::kDefaultLiveFilter)).empty());
  // The filter for links without tags (the `any` device) misses only the tagged probes.
  CHECK(dnsmon::fragment_probes_rejected(std::string(dnsmon::kDefaultLiveFilterUntagged)) ==
        std::vector<std::string>{
            "IPv4 first fragment in an 802.1Q tag", "IPv4 later fragment in an 802.1Q tag",
            "IPv6 first fragment in an 802.1Q tag", "IPv6 later fragment in an 802.1Q tag"});
}

TEST_CASE("a filter that loses fragments is named with what it loses", "[capture][filter]") {
  const auto ports_only = dnsmon::fragment_probes_rejected("udp port 53 or tcp port 53");
  // `udp port 53` sees an IPv4 first fragment's ports, and nothing else of a fragmented answer.
  CHECK(ports_only ==
        std::vector<std::string>{
            "IPv4 later fragment", "IPv6 first fragment", "IPv6 later fragment",
            "IPv4 first fragment in an 802.1Q tag", "IPv4 later fragment in an 802.1Q tag",
            "IPv6 first fragment in an 802.1Q tag", "IPv6 later fragment in an 802.1Q tag"});
  CHECK(dnsmon::fragment_probes_rejected("ip or ip6 or (vlan and (ip or ip6))").empty());
  CHECK_THROWS_WITH(dnsmon::fragment_probes_rejected("udp port banana"),
                    Catch::Contains("udp port banana"));
}

TEST_CASE("the default live filter takes DNS and leaves other unfragmented traffic",
          "[capture][filter]") {
  pcap_t* dead = pcap_open_dead(DLT_EN10MB, 65535);
  REQUIRE(dead != nullptr);
  bpf_program program{};
  REQUIRE(pcap_compile(dead, &program, std::string(dnsmon::kDefaultLiveFilter).c_str(), 1,
                       PCAP_NETMASK_UNKNOWN) == 0);
  // IPv4/UDP from port `sport` to 40000, behind `tags` 802.1Q tags; `frag` sets the offset field.
  auto frame = [](int tags, std::uint8_t sport, std::uint16_t frag, std::uint8_t proto) {
    std::vector<std::uint8_t> f(12, 0x02);
    for (int i = 0; i < tags; ++i) {
      f.insert(f.end(), {0x81, 0x00, 0x00, 0x0a});
    }
    f.insert(f.end(), {0x08,
                       0x00,
                       0x45,
                       0,
                       0,
                       40,
                       0,
                       1,
                       static_cast<std::uint8_t>(frag >> 8U),
                       static_cast<std::uint8_t>(frag),
                       64,
                       proto,
                       0,
                       0,
                       10,
                       0,
                       0,
                       1,
                       10,
                       0,
                       0,
                       2,
                       0,
                       sport,
                       0x9c,
                       0x40,
                       0,
                       20,
                       0,
                       0});
    f.resize(f.size() + 12, 0);
    return f;
  };
  auto admits = [&](const std::vector<std::uint8_t>& f) {
    pcap_pkthdr h{};
    h.caplen = static_cast<bpf_u_int32>(f.size());
    h.len = h.caplen;
    return pcap_offline_filter(&program, &h, f.data()) != 0;
  };
  for (const int tags : {0, 1, 2}) {  // a third tag is beyond the filter
    CAPTURE(tags);
    CHECK(admits(frame(tags, 53, 0, 17)));             // DNS over UDP
    CHECK(admits(frame(tags, 53, 0, 6)));              // DNS over TCP
    CHECK_FALSE(admits(frame(tags, 123, 0, 17)));      // NTP
    CHECK(admits(frame(tags, 123, 0x2000, 17)));       // a first fragment: reassembly decides
    CHECK(admits(frame(tags, 123, 0x00b9, 17)));       // a later fragment
    CHECK_FALSE(admits(frame(tags, 123, 0x00b9, 1)));  // an ICMP fragment
  }
  pcap_freecode(&program);
  pcap_close(dead);
}

TEST_CASE("the default live filter takes DNS inside PPPoE sessions and MPLS label stacks",
          "[capture][filter]") {
  pcap_t* dead = pcap_open_dead(DLT_EN10MB, 65535);
  REQUIRE(dead != nullptr);
  bpf_program program{};
  REQUIRE(pcap_compile(dead, &program, std::string(dnsmon::kDefaultLiveFilter).c_str(), 1,
                       PCAP_NETMASK_UNKNOWN) == 0);
  using Frame = std::vector<std::uint8_t>;
  // IPv4 from port `sport` with `frag` in the offset field, or IPv6 with a UDP header (or, for a
  // fragment, a fragment header before UDP).
  auto ip4 = [](std::uint8_t proto, std::uint16_t sport, std::uint16_t frag) {
    Frame f{0x45,
            0,
            0,
            40,
            0,
            1,
            static_cast<std::uint8_t>(frag >> 8U),
            static_cast<std::uint8_t>(frag),
            64,
            proto,
            0,
            0,
            10,
            0,
            0,
            1,
            10,
            0,
            0,
            2,
            static_cast<std::uint8_t>(sport >> 8U),
            static_cast<std::uint8_t>(sport),
            0x9c,
            0x40,
            0,
            20,
            0,
            0};
    f.resize(f.size() + 12, 0);
    return f;
  };
  auto ip6 = [](std::uint8_t next, std::uint16_t sport) {
    Frame f{0x60, 0, 0, 0, 0, 20, next, 64};
    f.resize(40, 0x20);
    if (next == 44) {
      f.insert(f.end(), {17, 0, 0, 1, 0, 0, 0, 1});
    } else {
      f.insert(f.end(), {static_cast<std::uint8_t>(sport >> 8U), static_cast<std::uint8_t>(sport),
                         0x9c, 0x40, 0, 28, 0, 0});
    }
    f.resize(f.size() + 20, 0);
    return f;
  };
  auto ether = [](int tags, std::uint16_t ethertype, const Frame& body) {
    Frame f(12, 0x02);
    for (int i = 0; i < tags; ++i) {
      f.insert(f.end(), {static_cast<std::uint8_t>(i == 0 && tags > 1 ? 0x88 : 0x81),
                         static_cast<std::uint8_t>(i == 0 && tags > 1 ? 0xa8 : 0x00), 0, 10});
    }
    f.push_back(static_cast<std::uint8_t>(ethertype >> 8U));
    f.push_back(static_cast<std::uint8_t>(ethertype));
    f.insert(f.end(), body.begin(), body.end());
    return f;
  };
  auto pppoe = [](std::uint16_t protocol, const Frame& ip) {
    Frame f{0x11,
            0,
            0x12,
            0x34,
            0,
            static_cast<std::uint8_t>(ip.size() + 2),
            static_cast<std::uint8_t>(protocol >> 8U),
            static_cast<std::uint8_t>(protocol)};
    f.insert(f.end(), ip.begin(), ip.end());
    return f;
  };
  auto mpls = [](int labels, const Frame& ip) {
    Frame f;
    for (int i = 0; i < labels; ++i) {
      f.insert(f.end(), {0, 0x10, static_cast<std::uint8_t>(i + 1 == labels ? 1 : 0), 64});
    }
    f.insert(f.end(), ip.begin(), ip.end());
    return f;
  };
  auto admits = [&](const Frame& f) {
    pcap_pkthdr h{};
    h.caplen = static_cast<bpf_u_int32>(f.size());
    h.len = h.caplen;
    return pcap_offline_filter(&program, &h, f.data()) != 0;
  };
  for (const int tags : {0, 1, 2}) {
    CAPTURE(tags);
    CHECK(admits(ether(tags, 0x8864, pppoe(0x21, ip4(17, 53, 0)))));
    CHECK(admits(ether(tags, 0x8864, pppoe(0x21, ip4(6, 53, 0)))));
    CHECK_FALSE(admits(ether(tags, 0x8864, pppoe(0x21, ip4(17, 123, 0)))));
    CHECK(admits(ether(tags, 0x8864, pppoe(0x21, ip4(17, 123, 0x2000)))));       // first fragment
    CHECK(admits(ether(tags, 0x8864, pppoe(0x21, ip4(17, 123, 0x00b9)))));       // later fragment
    CHECK_FALSE(admits(ether(tags, 0x8864, pppoe(0x21, ip4(1, 123, 0x00b9)))));  // ICMP
    CHECK(admits(ether(tags, 0x8864, pppoe(0x57, ip6(17, 53)))));
    CHECK(admits(ether(tags, 0x8864, pppoe(0x57, ip6(44, 123)))));
    CHECK_FALSE(admits(ether(tags, 0x8864, pppoe(0x57, ip6(17, 123)))));
    CHECK_FALSE(admits(ether(tags, 0x8864, pppoe(0xc021, ip4(17, 53, 0)))));  // LCP
  }
  for (const int tags : {0, 1}) {
    for (const int labels : {1, 2, 3}) {
      CAPTURE(tags, labels);
      CHECK(admits(ether(tags, 0x8847, mpls(labels, ip4(17, 53, 0)))));
      CHECK(admits(ether(tags, 0x8848, mpls(labels, ip4(6, 53, 0)))));
      CHECK_FALSE(admits(ether(tags, 0x8847, mpls(labels, ip4(17, 123, 0)))));
      CHECK(admits(ether(tags, 0x8847, mpls(labels, ip4(17, 123, 0x00b9)))));
      CHECK(admits(ether(tags, 0x8847, mpls(labels, ip6(17, 53)))));
      CHECK(admits(ether(tags, 0x8847, mpls(labels, ip6(44, 123)))));
      CHECK_FALSE(admits(ether(tags, 0x8847, mpls(labels, ip6(17, 123)))));
    }
  }
  // Beyond the filter: four labels.
  CHECK_FALSE(admits(ether(0, 0x8847, mpls(4, ip4(17, 53, 0)))));
  pcap_freecode(&program);
  pcap_close(dead);
}

TEST_CASE("a FIFO is opened once, read as it comes, and a stop request ends the wait",
          "[capture][threads]") {
  TempDir dir;
  write_pcap(dir.path / "three.pcap", PCAP_TSTAMP_PRECISION_NANO, 3);
  std::vector<char> bytes;
  {
    std::FILE* f = std::fopen((dir.path / "three.pcap").c_str(), "rb");
    REQUIRE(f != nullptr);
    std::array<char, 4096> chunk{};
    std::size_t n = 0;
    while ((n = std::fread(chunk.data(), 1, chunk.size(), f)) > 0) {
      bytes.insert(bytes.end(), chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(n));
    }
    std::fclose(f);
  }
  const fs::path fifo = dir.path / "fifo";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  const bool with_filter = GENERATE(false, true);
  CAPTURE(with_filter);
  CaptureOptions options;
  if (with_filter) {
    options.bpf_filter = "udp";  // libpcap reads it, through the bytes already read
  }
  // No writer yet: opening must not wait for one.
  auto source = PacketSource::open_files({fifo.string()}, options, 0);
  FrameRing ring(16, 4096);
  std::vector<FrameRing*> rings{&ring};
  std::string error = "not run";
  std::jthread reader([&](const std::stop_token& st) { error = source->run(st, rings); });
  // The writer sends the whole capture and keeps the FIFO open: the reader must deliver every
  // frame without waiting for the end of input.
  const int w = ::open(fifo.c_str(), O_WRONLY | O_CLOEXEC);  // NOLINT: POSIX varargs
  REQUIRE(w >= 0);
  REQUIRE(::write(w, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()));
  for (int i = 0; i < 500 && source->stats().received.get() < 3; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  CHECK(source->stats().received.get() == 3);
  reader.request_stop();
  reader.join();  // returns: the stop request ends the wait for more bytes
  ::close(w);
  CHECK(error.empty());
  std::vector<std::vector<std::byte>> keep;
  CHECK(drain(ring, keep).size() == 3);
}

TEST_CASE("a stop request ends the wait for a FIFO that never gets a writer",
          "[capture][threads]") {
  TempDir dir;
  const fs::path fifo = dir.path / "fifo";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  auto source = PacketSource::open_files({fifo.string()}, {}, 0);
  FrameRing ring(16, 4096);
  std::vector<FrameRing*> rings{&ring};
  std::string error = "not run";
  std::jthread reader([&](const std::stop_token& st) { error = source->run(st, rings); });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  reader.request_stop();
  reader.join();
  CHECK(error.empty());
  CHECK(source->stats().received.get() == 0);
}
