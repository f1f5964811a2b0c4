// The detection state file: round trips through the atomic writer, a version 1 file built byte by
// byte from the documented layout (with a CRC written independently here), and every kind of bad
// file the loader must refuse with a clear error instead of loading part of it.
#include "dnsmon/detect/state_file.hpp"

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>
#include <vector>

#include <catch2/catch.hpp>

namespace {

using namespace dnsmon::detect;
namespace fs = std::filesystem;

std::vector<std::byte> bytes_of(std::string_view s) {
  std::vector<std::byte> out;
  for (char c : s) {
    out.push_back(static_cast<std::byte>(c));
  }
  return out;
}

// Bitwise CRC-32C, independent of the library's table.
std::uint32_t slow_crc32c(const std::vector<std::byte>& data, std::size_t from, std::size_t to) {
  std::uint32_t crc = 0xFFFFFFFFU;
  for (std::size_t i = from; i < to; ++i) {
    crc ^= std::to_integer<std::uint32_t>(data[i]);
    for (int k = 0; k < 8; ++k) {
      crc = (crc & 1U) != 0 ? (crc >> 1) ^ 0x82F63B78U : crc >> 1;
    }
  }
  return ~crc;
}

void le(std::vector<std::byte>& out, std::uint64_t v, int n) {
  for (int i = 0; i < n; ++i) {
    out.push_back(static_cast<std::byte>((v >> (8 * i)) & 0xFF));
  }
}

// A version 1 file laid out by hand from the format comment in state_file.hpp.
std::vector<std::byte> hand_built_v1(std::uint16_t version = 1) {
  std::vector<std::byte> f = bytes_of("DNSMSTAT");
  le(f, version, 2);
  le(f, 72, 2);
  le(f, 1, 4);  // flags: clean
  std::string producer = "dnsmon test";
  producer.resize(32, '\0');
  const auto p = bytes_of(producer);
  f.insert(f.end(), p.begin(), p.end());
  le(f, 1'462'320'000'000'000'000ULL, 8);  // logical clock 2016-05-04
  le(f, 1'459'728'000'000'000'000ULL, 8);  // origin 2016-04-04
  le(f, 2, 4);
  le(f, slow_crc32c(f, 0, f.size()), 4);
  REQUIRE(f.size() == 72);
  const std::pair<std::uint32_t, std::string> sections[] = {{7, "seven"}, {1, ""}};
  for (const auto& [id, text] : sections) {
    const std::size_t start = f.size();
    le(f, id, 4);
    le(f, 0, 4);
    le(f, text.size(), 8);
    const auto t = bytes_of(text);
    f.insert(f.end(), t.begin(), t.end());
    le(f, slow_crc32c(f, start, f.size()), 4);
  }
  const auto end = bytes_of("DSTE");
  f.insert(f.end(), end.begin(), end.end());
  le(f, slow_crc32c(f, 0, f.size()), 4);
  return f;
}

std::vector<std::byte> sample_file() {
  const auto a = bytes_of("domain table");
  std::vector<std::byte> big(5000);
  for (std::size_t i = 0; i < big.size(); ++i) {
    big[i] = static_cast<std::byte>(i * 31);
  }
  const StateSectionView sections[] = {{1, a}, {2, {}}, {0xFFFFFFFFU, big}};
  StateHeader h;
  h.producer = "dnsmon";
  h.logical_clock_ns = 42;
  h.origin_ns = -7;
  std::vector<std::byte> out;
  REQUIRE(encode_state_file(h, sections, out).ok());
  return out;
}

// A directory of its own under the system temporary directory, removed at the end.
struct TempDir {
  fs::path path;

  TempDir() {
    path = fs::temp_directory_path() / ("dnsmon_state_test_" + std::to_string(::getpid()) + "_" +
                                        std::to_string(reinterpret_cast<std::uintptr_t>(this)));
    fs::remove_all(path);
    fs::create_directories(path);
  }

  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }

  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

void write_raw(const fs::path& p, const std::vector<std::byte>& b) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

}  // namespace

TEST_CASE("CRC-32C check value", "[detect][state_file]") {
  const auto b = bytes_of("123456789");
  CHECK(crc32c(b) == 0xE3069283U);
  CHECK(slow_crc32c(b, 0, b.size()) == 0xE3069283U);
  // Continuing a running CRC equals one pass.
  const std::span<const std::byte> s(b);
  CHECK(crc32c(s.subspan(4), crc32c(s.first(4))) == 0xE3069283U);
}

TEST_CASE("a hand-built version 1 file loads", "[detect][state_file]") {
  const auto f = hand_built_v1();
  const auto r = parse_state_file(f);
  INFO(r.status.detail);
  REQUIRE(r.ok());
  CHECK(r.file.header.format_version == 1);
  CHECK(r.file.header.flags == kStateFlagClean);
  CHECK(r.file.header.producer == "dnsmon test");
  CHECK(r.file.header.logical_clock_ns == 1'462'320'000'000'000'000LL);
  CHECK(r.file.header.origin_ns == 1'459'728'000'000'000'000LL);
  REQUIRE(r.file.sections.size() == 2);
  CHECK(r.file.sections[0].id == 7);
  CHECK(r.file.sections[0].payload == bytes_of("seven"));
  CHECK(r.file.sections[1].id == 1);
  CHECK(r.file.sections[1].payload.empty());
  CHECK(r.file.find(7) == &r.file.sections[0]);
  CHECK(r.file.find(3) == nullptr);
  // The writer produces exactly these bytes for the same content.
  const auto seven = bytes_of("seven");
  const StateSectionView views[] = {{7, seven}, {1, {}}};
  StateHeader h = r.file.header;
  std::vector<std::byte> again;
  REQUIRE(encode_state_file(h, views, again).ok());
  CHECK(again == f);
}

TEST_CASE("versions: newer refused, 0 refused, damaged version field is a corrupt header",
          "[detect][state_file]") {
  CHECK(parse_state_file(hand_built_v1(2)).status.error == StateFileError::NewerVersion);
  CHECK(parse_state_file(hand_built_v1(0xFFFF)).status.error == StateFileError::NewerVersion);
  CHECK(parse_state_file(hand_built_v1(0)).status.error == StateFileError::BadVersion);
  auto f = hand_built_v1();
  f[8] = std::byte{2};  // version 2 without a matching header CRC
  CHECK(parse_state_file(f).status.error == StateFileError::HeaderCorrupt);
}

TEST_CASE("round trip through the atomic writer", "[detect][state_file]") {
  TempDir dir;
  const fs::path file = dir.path / "detect.state";
  const auto a = bytes_of("first section");
  std::vector<std::byte> big(100000);
  for (std::size_t i = 0; i < big.size(); ++i) {
    big[i] = static_cast<std::byte>(i ^ (i >> 8));
  }
  const StateSectionView sections[] = {{10, a}, {11, big}, {12, {}}};
  StateHeader h;
  h.producer = std::string(32, 'p');  // the longest producer
  h.flags = kStateFlagClean;
  h.logical_clock_ns = 1'475'000'000'000'000'000LL;
  h.origin_ns = 1'459'728'000'000'000'000LL;
  const auto w = write_state_file(file, h, sections);
  INFO(w.detail);
  REQUIRE(w.ok());
  auto r = load_state_file(file);
  INFO(r.status.detail);
  REQUIRE(r.ok());
  CHECK(r.file.header.producer == h.producer);
  CHECK(r.file.header.flags == h.flags);
  CHECK(r.file.header.logical_clock_ns == h.logical_clock_ns);
  CHECK(r.file.header.origin_ns == h.origin_ns);
  REQUIRE(r.file.sections.size() == 3);
  CHECK(r.file.sections[0].payload == a);
  CHECK(r.file.sections[1].payload == big);
  CHECK(r.file.sections[2].payload.empty());
  // Only the file itself is left in the directory: the temporary was renamed.
  CHECK(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator{}) == 1);

  SECTION("a second write replaces the file") {
    const StateSectionView one[] = {{99, a}};
    REQUIRE(write_state_file(file, StateHeader{}, one).ok());
    r = load_state_file(file);
    REQUIRE(r.ok());
    REQUIRE(r.file.sections.size() == 1);
    CHECK(r.file.sections[0].id == 99);
    CHECK(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator{}) == 1);
  }
  SECTION("a refused write leaves the previous file as it was") {
    StateHeader bad;
    bad.producer = std::string(33, 'x');
    CHECK(write_state_file(file, bad, sections).error == StateFileError::InvalidArgument);
    const StateSectionView dup[] = {{1, a}, {1, a}};
    CHECK(write_state_file(file, StateHeader{}, dup).error == StateFileError::InvalidArgument);
    bad = {};
    bad.flags = 0x80;
    CHECK(write_state_file(file, bad, sections).error == StateFileError::InvalidArgument);
    const auto still = load_state_file(file);
    REQUIRE(still.ok());
    CHECK(still.file.sections.size() == 3);
    CHECK(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator{}) == 1);
  }
  SECTION("a write into a missing directory fails with the path in the message") {
    const auto st = write_state_file(dir.path / "missing" / "x.state", h, sections);
    CHECK(st.error == StateFileError::Io);
    CHECK(st.detail.find("missing") != std::string::npos);
  }
}

TEST_CASE("missing, empty, directory, oversized and foreign files", "[detect][state_file]") {
  TempDir dir;
  auto r = load_state_file(dir.path / "nothing.state");
  CHECK(r.status.error == StateFileError::NotFound);
  CHECK(r.status.detail.find("nothing.state") != std::string::npos);
  CHECK(r.file.sections.empty());

  write_raw(dir.path / "empty.state", {});
  CHECK(load_state_file(dir.path / "empty.state").status.error == StateFileError::Empty);
  CHECK(parse_state_file({}).status.error == StateFileError::Empty);

  CHECK(load_state_file(dir.path).status.error == StateFileError::Io);

  write_raw(dir.path / "big.state", sample_file());
  CHECK(load_state_file(dir.path / "big.state", 100).status.error == StateFileError::TooLarge);
  CHECK(load_state_file(dir.path / "big.state").ok());

  // A YAML file, a pcap header, a short foreign file.
  CHECK(parse_state_file(bytes_of("detection:\n  time: {compression: 1440}\n")).status.error ==
        StateFileError::BadMagic);
  const std::vector<std::byte> pcap{
      std::byte{0xd4}, std::byte{0xc3}, std::byte{0xb2}, std::byte{0xa1}, std::byte{2},
      std::byte{0},    std::byte{4},    std::byte{0},    std::byte{0},    std::byte{0},
      std::byte{0},    std::byte{0},    std::byte{0},    std::byte{0},    std::byte{0},
      std::byte{0},    std::byte{0xff}, std::byte{0xff}, std::byte{0},    std::byte{0},
      std::byte{1},    std::byte{0},    std::byte{0},    std::byte{0}};
  CHECK(parse_state_file(pcap).status.error == StateFileError::BadMagic);
  CHECK(parse_state_file(bytes_of("DN")).status.error == StateFileError::Truncated);
  CHECK(parse_state_file(bytes_of("XY")).status.error == StateFileError::BadMagic);
}

TEST_CASE("every truncation of a valid file is refused", "[detect][state_file]") {
  const auto f = sample_file();
  REQUIRE(parse_state_file(f).ok());
  for (std::size_t len = 0; len < f.size(); ++len) {
    CAPTURE(len);
    const auto r = parse_state_file(std::span<const std::byte>(f).first(len));
    CHECK_FALSE(r.ok());
    CHECK(r.file.sections.empty());
    CHECK((r.status.error == StateFileError::Truncated || r.status.error == StateFileError::Empty ||
           r.status.error == StateFileError::FileCorrupt));
  }
}

TEST_CASE("every flipped bit of a valid file is refused", "[detect][state_file]") {
  const auto f = hand_built_v1();
  for (std::size_t i = 0; i < f.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      auto g = f;
      g[i] ^= static_cast<std::byte>(1U << bit);
      CAPTURE(i, bit);
      const auto r = parse_state_file(g);
      CHECK_FALSE(r.ok());
      CHECK(r.file.sections.empty());
    }
  }
  // Where the damage is decides the error.
  auto g = f;
  g[20] ^= std::byte{1};  // producer
  CHECK(parse_state_file(g).status.error == StateFileError::HeaderCorrupt);
  g = f;
  g[72 + 16] ^= std::byte{1};  // first section's payload
  CHECK(parse_state_file(g).status.error == StateFileError::SectionCorrupt);
  g = f;
  g[g.size() - 1] ^= std::byte{1};  // file CRC
  CHECK(parse_state_file(g).status.error == StateFileError::FileCorrupt);
  g = f;
  g[0] = std::byte{'X'};
  CHECK(parse_state_file(g).status.error == StateFileError::BadMagic);
}

TEST_CASE("structural damage with valid CRCs is refused", "[detect][state_file]") {
  SECTION("bytes after the trailer") {
    auto f = sample_file();
    f.push_back(std::byte{0});
    CHECK(parse_state_file(f).status.error == StateFileError::FileCorrupt);
  }
  SECTION("a section length beyond the end of the file") {
    std::vector<std::byte> f = bytes_of("DNSMSTAT");
    le(f, 1, 2);
    le(f, 72, 2);
    le(f, 0, 4);
    f.resize(64, std::byte{0});
    le(f, 1, 4);
    le(f, slow_crc32c(f, 0, f.size()), 4);
    le(f, 5, 4);
    le(f, 0, 4);
    le(f, ~0ULL, 8);  // 2^64 - 1 bytes
    le(f, 0, 4);
    const auto r = parse_state_file(f);
    CHECK(r.status.error == StateFileError::Truncated);
    CHECK(r.status.detail.find("section id 5") != std::string::npos);
  }
  SECTION("a section count above the limit, and a v1 header of the wrong size") {
    std::vector<std::byte> f = bytes_of("DNSMSTAT");
    le(f, 1, 2);
    le(f, 72, 2);
    le(f, 0, 4);
    f.resize(64, std::byte{0});
    le(f, kStateMaxSections + 1, 4);
    le(f, slow_crc32c(f, 0, f.size()), 4);
    CHECK(parse_state_file(f).status.error == StateFileError::HeaderCorrupt);
    std::vector<std::byte> g = bytes_of("DNSMSTAT");
    le(g, 1, 2);
    le(g, 20, 2);
    le(g, 0, 4);
    le(g, slow_crc32c(g, 0, g.size()), 4);
    CHECK(parse_state_file(g).status.error == StateFileError::BadVersion);
  }
  SECTION("two sections with one id") {
    std::vector<std::byte> f = bytes_of("DNSMSTAT");
    le(f, 1, 2);
    le(f, 72, 2);
    le(f, 0, 4);
    f.resize(64, std::byte{0});
    le(f, 2, 4);
    le(f, slow_crc32c(f, 0, f.size()), 4);
    for (int k = 0; k < 2; ++k) {
      const std::size_t start = f.size();
      le(f, 3, 4);
      le(f, 0, 4);
      le(f, 0, 8);
      le(f, slow_crc32c(f, start, f.size()), 4);
    }
    const auto end = bytes_of("DSTE");
    f.insert(f.end(), end.begin(), end.end());
    le(f, slow_crc32c(f, 0, f.size()), 4);
    CHECK(parse_state_file(f).status.error == StateFileError::DuplicateSection);
  }
}

TEST_CASE("every error has a name", "[detect][state_file]") {
  for (int e = 0; e <= static_cast<int>(StateFileError::OutOfMemory); ++e) {
    CHECK(to_string(static_cast<StateFileError>(e)) != "unknown");
  }
}
