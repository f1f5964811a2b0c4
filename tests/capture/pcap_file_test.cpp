// PcapReader against libpcap itself: for every file it accepts (the public capture corpus, then
// files built here byte by byte), the link type, the snapshot length, every record and the final
// state must be what pcap_next_ex() delivers on the same bytes.
#include "dnsmon/capture/detail/pcap_file.hpp"

#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include <pcap/pcap.h>

#include <catch2/catch.hpp>

#include "dnsmon/capture/detail/pcap_handle.hpp"

namespace {

namespace fs = std::filesystem;
using dnsmon::detail::ChunkedFile;
using dnsmon::detail::PcapReader;
using Status = PcapReader::Status;

using dnsmon::detail::PcapHandle;

// libpcap on a file, or on bytes in memory, as the daemon opens them.
PcapHandle open_libpcap(const std::string& path) {
  std::array<char, PCAP_ERRBUF_SIZE> err{};
  return PcapHandle{pcap_open_offline_with_tstamp_precision(
      path.c_str(), PCAP_TSTAMP_PRECISION_NANO, err.data())};
}

PcapHandle open_libpcap(std::span<const std::byte> bytes) {
  // fmemopen takes a non-const buffer but only reads it in "rb" mode.
  std::FILE* f = fmemopen(const_cast<std::byte*>(bytes.data()),  // NOLINT: see above
                          bytes.size(), "rb");
  if (f == nullptr) {
    return nullptr;
  }
  std::array<char, PCAP_ERRBUF_SIZE> err{};
  PcapHandle p{pcap_fopen_offline_with_tstamp_precision(f, PCAP_TSTAMP_PRECISION_NANO, err.data())};
  if (!p) {
    std::fclose(f);  // libpcap closes it only once it has taken it
  }
  return p;
}

struct Comparison {
  bool accepted = false;        // PcapReader::open() took the file
  bool libpcap_opened = false;  // so did libpcap
  int link_type = -1;
  std::uint32_t snaplen = 0;
  std::size_t frames = 0;
  std::vector<std::uint32_t> caplens;  // of the frames, as the reader gave them
  std::vector<std::int64_t> times;
  Status last = Status::End;
  std::string error;
  std::string mismatch;  // empty when the reader and libpcap agree on everything
};

// The reader on bytes given a window of `chunk` bytes at a time, as ChunkedFile gives it a file
// (chunk 0: all at once). Its windows always hold a whole record when the data has one (a
// ChunkedFile's 512 KiB does: no record the reader accepts is longer), so a window that cannot is
// widened to the end.
class Windowed {
 public:
  Windowed(std::span<const std::byte> bytes, std::size_t chunk) : bytes_(bytes), chunk_(chunk) {}

  std::optional<PcapReader> open() {
    auto reader = PcapReader::open(window(0));
    if (reader) {
      reader->more_follows(window(0).size() < bytes_.size());
    }
    return reader;
  }

  Status next(PcapReader& reader, PcapReader::Record& r) {
    for (;;) {
      const Status st = reader.next(r);
      if (st != Status::NeedMore) {
        return st;
      }
      const std::size_t consumed = reader.consumed();
      base_ += consumed;
      auto w = window(base_);
      if (consumed == 0 && w.size() <= last_window_) {
        w = bytes_.subspan(base_);  // the record is longer than the window
      }
      last_window_ = w.size();
      reader.rebase(w);
      reader.more_follows(base_ + w.size() < bytes_.size());
    }
  }

 private:
  [[nodiscard]] std::span<const std::byte> window(std::size_t from) const {
    return chunk_ == 0 ? bytes_.subspan(from)
                       : bytes_.subspan(from, std::min(chunk_, bytes_.size() - from));
  }

  std::span<const std::byte> bytes_;
  std::size_t chunk_;
  std::size_t base_ = 0;
  std::size_t last_window_ = 0;
};

// Reads both in lockstep. A file the reader declines is not compared (libpcap may open it or not).
Comparison compare(std::span<const std::byte> bytes, const PcapHandle& p, std::size_t chunk = 0) {
  Comparison c;
  Windowed windowed(bytes, chunk);
  auto reader = windowed.open();
  c.accepted = reader.has_value();
  c.libpcap_opened = p != nullptr;
  if (!reader) {
    return c;
  }
  c.link_type = reader->link_type();
  c.snaplen = reader->snaplen();
  std::ostringstream why;
  if (!p) {
    c.mismatch = "libpcap does not open a file the reader accepted";
    return c;
  }
  if (pcap_get_tstamp_precision(p.get()) != PCAP_TSTAMP_PRECISION_NANO) {
    why << "libpcap not in nanoseconds; ";
  }
  if (pcap_datalink(p.get()) != reader->link_type()) {
    why << "link type " << reader->link_type() << " != libpcap's " << pcap_datalink(p.get())
        << "; ";
  }
  if (static_cast<std::uint32_t>(pcap_snapshot(p.get())) != reader->snaplen()) {
    why << "snaplen " << reader->snaplen() << " != libpcap's " << pcap_snapshot(p.get()) << "; ";
  }
  for (;;) {
    pcap_pkthdr* h = nullptr;
    const u_char* data = nullptr;
    const int rc = pcap_next_ex(p.get(), &h, &data);
    PcapReader::Record r;
    c.last = windowed.next(*reader, r);
    const std::size_t i = c.frames;
    if (rc == 1 && c.last == Status::Frame) {
      ++c.frames;
      c.caplens.push_back(r.caplen);
      c.times.push_back(r.ts_ns);
      // As capture.cpp computes it from libpcap's header.
      const auto ts =
          static_cast<std::int64_t>(static_cast<std::uint64_t>(h->ts.tv_sec) * 1'000'000'000U +
                                    static_cast<std::uint64_t>(h->ts.tv_usec));
      if (ts != r.ts_ns) {
        why << "frame " << i << ": ts_ns " << r.ts_ns << " != libpcap's " << ts << "; ";
      }
      if (h->caplen != r.caplen || h->len != r.len || r.data.size() != r.caplen) {
        why << "frame " << i << ": caplen/len " << r.caplen << "/" << r.len << " (" << r.data.size()
            << " bytes) != libpcap's " << h->caplen << "/" << h->len << "; ";
      } else if (r.caplen != 0 && std::memcmp(r.data.data(), data, r.caplen) != 0) {
        why << "frame " << i << ": bytes differ; ";
      }
      if (!why.str().empty()) {
        break;
      }
      continue;
    }
    if (rc == PCAP_ERROR_BREAK && c.last == Status::End) {
      break;
    }
    if (rc == PCAP_ERROR && c.last == Status::Error) {
      c.error = std::string(reader->error());
      if (c.error != pcap_geterr(p.get())) {
        why << "after " << i << " frames: error \"" << c.error << "\" != libpcap's \""
            << pcap_geterr(p.get()) << "\"; ";
      }
      break;
    }
    why << "after " << i << " frames: status " << static_cast<int>(c.last)
        << " != libpcap's return " << rc << (rc == PCAP_ERROR ? " " : "")
        << (rc == PCAP_ERROR ? pcap_geterr(p.get()) : "") << "; ";
    break;
  }
  PcapReader::Record again;
  if (c.last != Status::Frame &&
      (windowed.next(*reader, again) != c.last || windowed.next(*reader, again) != c.last)) {
    why << "the reader's end is not final; ";
  }
  c.mismatch = why.str();
  if (c.last == Status::Frame) {
    c.last = Status::Error;  // stopped on a mismatch
  }
  return c;
}

// Also read in windows that cut the records at every kind of place: a window barely larger than
// the largest record, and a few more.
Comparison compare_in_memory(const std::vector<std::byte>& bytes) {
  const PcapHandle p = open_libpcap(bytes);
  Comparison c = compare(bytes, p);
  INFO(c.mismatch);
  CHECK(c.mismatch.empty());
  for (const std::size_t chunk : {std::size_t{40}, std::size_t{41}, std::size_t{97},
                                  std::size_t{1600}, bytes.size() / 2 + 1}) {
    const Comparison w = compare(bytes, open_libpcap(bytes), chunk);
    INFO("window of " << chunk << " bytes: " << w.mismatch);
    CHECK(w.mismatch.empty());
    CHECK(w.frames == c.frames);
    CHECK(w.last == c.last);
  }
  return c;
}

std::vector<std::byte> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> out(chars.size());
  if (!chars.empty()) {
    std::memcpy(out.data(), chars.data(), chars.size());
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Building files

enum class Order { Little, Big };

constexpr std::uint32_t kMicro = 0xa1b2c3d4U;
constexpr std::uint32_t kNano = 0xa1b23c4dU;

struct FileSpec {
  Order order = Order::Little;
  std::uint32_t magic = kMicro;
  std::uint16_t major = 2;
  std::uint16_t minor = 4;
  std::uint32_t snaplen = 65535;
  std::uint32_t linktype = 1;
};

void put16(std::vector<std::byte>& out, std::uint16_t v, Order o) {
  for (int i = 0; i < 2; ++i) {
    const int shift = o == Order::Little ? 8 * i : 8 * (1 - i);
    out.push_back(static_cast<std::byte>((static_cast<unsigned>(v) >> shift) & 0xffU));
  }
}

void put32(std::vector<std::byte>& out, std::uint32_t v, Order o) {
  for (int i = 0; i < 4; ++i) {
    const int shift = o == Order::Little ? 8 * i : 8 * (3 - i);
    out.push_back(static_cast<std::byte>((v >> shift) & 0xffU));
  }
}

std::vector<std::byte> file_header(const FileSpec& s) {
  std::vector<std::byte> out;
  put32(out, s.magic, s.order);
  put16(out, s.major, s.order);
  put16(out, s.minor, s.order);
  put32(out, 0, s.order);  // thiszone
  put32(out, 0, s.order);  // sigfigs
  put32(out, s.snaplen, s.order);
  put32(out, s.linktype, s.order);
  return out;
}

// A record header, then `body` bytes (a pattern that differs by record), whatever caplen says.
void add_record(std::vector<std::byte>& out, Order o, std::uint32_t sec, std::uint32_t frac,
                std::uint32_t caplen, std::uint32_t len, std::size_t body) {
  put32(out, sec, o);
  put32(out, frac, o);
  put32(out, caplen, o);
  put32(out, len, o);
  for (std::size_t i = 0; i < body; ++i) {
    out.push_back(static_cast<std::byte>((i * 7 + sec + caplen) & 0xffU));
  }
}

void add_record(std::vector<std::byte>& out, Order o, std::uint32_t sec, std::uint32_t frac,
                std::uint32_t caplen) {
  add_record(out, o, sec, frac, caplen, caplen, caplen);
}

std::vector<std::byte> three_records(const FileSpec& s) {
  auto f = file_header(s);
  add_record(f, s.order, 1'700'000'000, 1, 60);
  add_record(f, s.order, 1'700'000'001, 999'999, 74, 1514, 74);
  add_record(f, s.order, 1'700'000'002, 123'456'789, 1);
  return f;
}

struct TempDir {
  fs::path path =
      fs::temp_directory_path() / ("dnsmon-pcap-file-test-" + std::to_string(::getpid()));

  TempDir() { fs::create_directories(path); }

  ~TempDir() { fs::remove_all(path); }

  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  [[nodiscard]] fs::path write(const std::string& name, const std::vector<std::byte>& bytes) const {
    fs::path file = path / name;
    std::ofstream out(file, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()),  // NOLINT: ostream takes char
              static_cast<std::streamsize>(bytes.size()));
    return file;
  }
};

// The public capture corpus: $DNSMON_PCAPS, else ../shared/pcaps beside the source tree (the
// default of the DNSMON_PCAPS cache variable in tests/daemon and tests/fuzz).
fs::path corpus_dir() {
  // Nothing in the tests calls setenv(), so reading the environment races with nothing.
  // NOLINTNEXTLINE(concurrency-mt-unsafe): see above
  if (const char* env = std::getenv("DNSMON_PCAPS"); env != nullptr && *env != '\0') {
    return env;
  }
  return fs::path(__FILE__).parent_path() / ".." / ".." / ".." / "shared" / "pcaps";
}

std::vector<std::string> split_tabs(const std::string& line) {
  std::vector<std::string> out;
  std::string field;
  std::istringstream in(line);
  while (std::getline(in, field, '\t')) {
    out.push_back(field);
  }
  return out;
}

}  // namespace

TEST_CASE("pcap reader: every classic pcap file of the public corpus reads as libpcap reads it",
          "[capture][pcap_file]") {
  const fs::path dir = corpus_dir();
  std::ifstream manifest(dir / "MANIFEST.tsv");
  if (!manifest) {
    WARN("SKIP: no capture corpus at " << dir.string() << " (set DNSMON_PCAPS)");
    return;
  }
  std::string line;
  std::getline(manifest, line);
  const auto columns = split_tabs(line);
  std::size_t file_col = columns.size();
  std::size_t format_col = columns.size();
  for (std::size_t i = 0; i < columns.size(); ++i) {
    file_col = columns[i] == "file" ? i : file_col;
    format_col = columns[i] == "file_format" ? i : format_col;
  }
  REQUIRE(file_col < columns.size());
  REQUIRE(format_col < columns.size());

  std::size_t accepted = 0;
  std::size_t frames = 0;
  std::size_t ended_in_error = 0;
  std::vector<std::string> declined;
  while (std::getline(manifest, line)) {
    const auto row = split_tabs(line);
    if (row.size() <= std::max(file_col, format_col) || row[format_col] == "pcapng") {
      continue;  // classic pcap only: "pcap" and "nsecpcap"
    }
    const std::string path = (dir / row[file_col]).string();
    INFO(row[file_col]);
    const auto bytes = read_file(path);
    const Comparison c = compare(bytes, open_libpcap(path));
    CHECK(c.mismatch.empty());
    if (!c.mismatch.empty()) {
      WARN(row[file_col] << ": " << c.mismatch);
    }
    for (const std::size_t chunk : {std::size_t{2048}, std::size_t{4099}}) {
      const Comparison w = compare(bytes, open_libpcap(path), chunk);
      INFO("window of " << chunk << " bytes");
      CHECK(w.mismatch.empty());
      CHECK(w.frames == c.frames);
    }
    if (c.accepted) {
      ++accepted;
      frames += c.frames;
      ended_in_error += c.last == Status::Error ? 1 : 0;
    } else {
      declined.push_back(row[file_col]);
    }
  }
  std::ostringstream summary;
  summary << "pcap reader: " << accepted << " corpus files accepted (" << frames << " frames, "
          << ended_in_error << " ending in libpcap's error), " << declined.size() << " declined:";
  for (const auto& d : declined) {
    summary << " " << d;
  }
  WARN(summary.str());
  CHECK(accepted + declined.size() > 0);
  CHECK(accepted >= 9 * (accepted + declined.size()) / 10);  // link types we do not read, only
}

TEST_CASE("pcap reader: both byte orders, microsecond and nanosecond magic",
          "[capture][pcap_file]") {
  for (const Order order : {Order::Little, Order::Big}) {
    for (const std::uint32_t magic : {kMicro, kNano}) {
      FileSpec s;
      s.order = order;
      s.magic = magic;
      INFO("big-endian " << (order == Order::Big) << ", nanoseconds " << (magic == kNano));
      const Comparison c = compare_in_memory(three_records(s));
      REQUIRE(c.accepted);
      CHECK(c.frames == 3);
      CHECK(c.last == Status::End);
      CHECK(c.link_type == DLT_EN10MB);
      CHECK(c.snaplen == 65535);
      REQUIRE(c.times.size() == 3);
      CHECK(c.times[0] == 1'700'000'000'000'000'000 + (magic == kNano ? 1 : 1000));
      CHECK(c.times[2] == 1'700'000'002'000'000'000 +
                              (magic == kNano ? 123'456'789 : std::int64_t{123'456'789} * 1000));
    }
  }
}

TEST_CASE("pcap reader: time stamps with the top bit set are libpcap's, in either byte order",
          "[capture][pcap_file]") {
  for (const Order order : {Order::Little, Order::Big}) {
    for (const std::uint32_t magic : {kMicro, kNano}) {
      FileSpec s;
      s.order = order;
      s.magic = magic;
      auto f = file_header(s);
      add_record(f, order, 0xffffffffU, 0xffffffffU, 10);
      add_record(f, order, 0x80000000U, 0x80000000U, 10);
      add_record(f, order, 0x7fffffffU, 0x7fffffffU, 10);
      add_record(f, order, 254, 0xffffff00U, 10);
      add_record(f, order, 0, 1'000'000'000U, 10);  // a fraction too large: passed through
      INFO("big-endian " << (order == Order::Big) << ", nanoseconds " << (magic == kNano));
      const Comparison c = compare_in_memory(f);
      REQUIRE(c.accepted);
      CHECK(c.frames == 5);
      CHECK(c.last == Status::End);
    }
  }
}

TEST_CASE("pcap reader: files libpcap does not open, or not as a classic pcap, are declined",
          "[capture][pcap_file]") {
  const auto full = three_records(FileSpec{});
  SECTION("empty") {
    const TempDir tmp;
    const auto file = ChunkedFile::open(tmp.write("empty.pcap", {}).string());
    REQUIRE(file.has_value());
    CHECK(file->bytes().empty());
    CHECK(file->at_end());
    CHECK_FALSE(PcapReader::open(file->bytes()).has_value());
    CHECK(open_libpcap((tmp.path / "empty.pcap").string()) == nullptr);
  }
  SECTION("a truncated file header") {
    for (const std::size_t n : {1U, 3U, 4U, 10U, 23U}) {
      const std::vector<std::byte> cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
      INFO(n << " bytes");
      CHECK_FALSE(PcapReader::open(cut).has_value());
      CHECK(open_libpcap(cut) == nullptr);
    }
  }
  SECTION("pcapng") {
    // A section header block (little-endian, no options) and an Ethernet interface.
    std::vector<std::byte> ng;
    for (const std::uint32_t word :
         {0x0a0d0d0aU, 28U, 0x1a2b3c4dU, 1U, 0xffffffffU, 0xffffffffU, 28U, 1U, 20U, 1U, 0U, 20U}) {
      put32(ng, word, Order::Little);  // the version (1.0) as one word: little-endian 1, 0
    }
    CHECK_FALSE(PcapReader::open(ng).has_value());
    CHECK(open_libpcap(ng) != nullptr);  // libpcap reads it: the caller falls back to it
  }
  SECTION("other magic numbers: Kuznetzov's, Navtel's, none") {
    for (const std::uint32_t magic : {0xa1b2cd34U, 0xa12b3c4dU, 0x12345678U}) {
      FileSpec s;
      s.magic = magic;
      CHECK_FALSE(PcapReader::open(three_records(s)).has_value());
    }
  }
  SECTION("versions other than 2.0 to 2.4") {
    for (const auto& [major, minor] : std::vector<std::pair<std::uint16_t, std::uint16_t>>{
             {1, 0}, {2, 5}, {3, 0}, {543, 0}, {0x0400, 0x0200}}) {
      FileSpec s;
      s.major = major;
      s.minor = minor;
      INFO(major << "." << minor);
      CHECK_FALSE(PcapReader::open(three_records(s)).has_value());
    }
  }
  SECTION("link types whose DLT is not certain, or not read here") {
    for (const std::uint32_t lt :
         {105U, 127U, 12U, 147U, 258U, 192U, 0xffffU, 0x00010001U, 0x02000001U, 0x03ff0000U}) {
      FileSpec s;
      s.linktype = lt;
      INFO("link type field " << lt);
      CHECK_FALSE(PcapReader::open(three_records(s)).has_value());
    }
  }
  SECTION("LINUX_SLL and LINUX_SLL2 in the other byte order (libpcap rewrites SocketCAN IDs)") {
    for (const std::uint32_t lt : {113U, 276U}) {
      FileSpec s;
      s.linktype = lt;
      s.order = Order::Big;
      CHECK_FALSE(PcapReader::open(three_records(s)).has_value());
      s.order = Order::Little;
      CHECK(PcapReader::open(three_records(s)).has_value());
    }
  }
}

TEST_CASE("pcap reader: every link type read here has libpcap's DLT, FCS bits or not",
          "[capture][pcap_file]") {
  for (const std::uint32_t lt : {0U, 1U, 101U, 108U, 113U, 228U, 229U, 276U}) {
    // LT_FCS_LENGTH_PRESENT with a length of 4, and every one of the upper 6 bits.
    for (const std::uint32_t ext : {0U, 0x44000000U, 0xfc000000U, 0x04000000U}) {
      FileSpec s;
      s.linktype = lt | ext;
      INFO("link type field " << s.linktype);
      const Comparison c = compare_in_memory(three_records(s));
      CHECK(c.accepted);
      CHECK(c.last == Status::End);
    }
  }
  FileSpec raw;
  raw.linktype = 101;
  const auto reader = PcapReader::open(three_records(raw));
  REQUIRE(reader.has_value());
  CHECK(reader->link_type() == DLT_RAW);
  CHECK(DLT_RAW == 12);  // on Linux, whatever LINKTYPE_RAW (101) is
}

TEST_CASE("pcap reader: a damaged record ends the file with libpcap's error, after its frames",
          "[capture][pcap_file]") {
  const FileSpec s;
  SECTION("a truncated record header") {
    for (std::size_t n = 1; n < 16; ++n) {
      auto f = three_records(s);
      add_record(f, s.order, 5, 5, 40);
      f.resize(f.size() - 40 - 16 + n);
      INFO(n << " header bytes");
      const Comparison c = compare_in_memory(f);
      CHECK(c.frames == 3);
      CHECK(c.last == Status::Error);
      CHECK(c.error ==
            "truncated dump file; tried to read 16 header bytes, only got " + std::to_string(n));
    }
  }
  SECTION("a truncated record body, or no body at all") {
    for (const std::size_t n : {0U, 1U, 39U}) {
      auto f = three_records(s);
      add_record(f, s.order, 5, 5, 40);
      f.resize(f.size() - 40 + n);
      INFO(n << " body bytes");
      const Comparison c = compare_in_memory(f);
      CHECK(c.frames == 3);
      CHECK(c.error ==
            "truncated dump file; tried to read 40 captured bytes, only got " + std::to_string(n));
    }
  }
  SECTION("a caplen above the maximum snapshot length, however large") {
    for (const std::uint32_t caplen : {262145U, 0x7fffffffU, 0x80000000U, 0xffffffffU}) {
      auto f = three_records(s);
      add_record(f, s.order, 5, 5, caplen, caplen, 100);
      INFO("caplen " << caplen);
      const Comparison c = compare_in_memory(f);
      CHECK(c.frames == 3);
      CHECK(c.error == "invalid packet capture length " + std::to_string(caplen) +
                           ", bigger than snaplen of 65535");
    }
  }
  SECTION("a caplen above the snapshot length, the file ending before it") {
    FileSpec small = s;
    small.snaplen = 98;
    for (const std::size_t body : {0U, 50U, 97U, 98U, 99U, 199U}) {
      auto f = file_header(small);
      add_record(f, s.order, 5, 5, 60);
      add_record(f, s.order, 6, 6, 200, 300, body);
      INFO(body << " of 200 bytes");
      const Comparison c = compare_in_memory(f);
      CHECK(c.frames == 1);
      CHECK(c.last == Status::Error);
    }
  }
}

TEST_CASE("pcap reader: records longer than the snapshot length are cut to it, as libpcap does",
          "[capture][pcap_file]") {
  for (const std::uint32_t snaplen : {1U, 98U, 65535U, 262143U}) {
    FileSpec s;
    s.snaplen = snaplen;
    auto f = file_header(s);
    add_record(f, s.order, 1, 1, snaplen + 1);
    add_record(f, s.order, 2, 2, 262144, 262144, 262144);
    add_record(f, s.order, 3, 3, snaplen);
    add_record(f, s.order, 4, 4, 0);
    INFO("snaplen " << snaplen);
    const Comparison c = compare_in_memory(f);
    CHECK(c.frames == 4);
    CHECK(c.last == Status::End);
    CHECK(c.caplens == std::vector<std::uint32_t>{snaplen, snaplen, snaplen, 0});
  }
}

TEST_CASE("pcap reader: a snapshot length of 0 or above INT_MAX is libpcap's 262144",
          "[capture][pcap_file]") {
  for (const std::uint32_t snaplen : {0U, 0x80000000U, 0xffffffffU}) {
    FileSpec s;
    s.snaplen = snaplen;
    auto f = file_header(s);
    add_record(f, s.order, 1, 1, 262144);
    add_record(f, s.order, 2, 2, 262145, 262145, 0);
    INFO("snaplen " << snaplen);
    const Comparison c = compare_in_memory(f);
    CHECK(c.snaplen == 262144);
    CHECK(c.frames == 1);
    CHECK(c.error == "invalid packet capture length 262145, bigger than snaplen of 262144");
  }
}

TEST_CASE("pcap reader: a snapshot length above 262144 is kept, but no caplen above 262144 is",
          "[capture][pcap_file]") {
  for (const std::uint32_t snaplen : {262144U, 262145U, 1'000'000U, 0x7fffffffU}) {
    for (const std::uint32_t caplen : {262145U, 1'000'000U, 1'000'001U, 0xffffffffU}) {
      FileSpec s;
      s.snaplen = snaplen;
      auto f = file_header(s);
      add_record(f, s.order, 1, 1, 262144);
      add_record(f, s.order, 2, 2, caplen, caplen, 64);
      INFO("snaplen " << snaplen << ", caplen " << caplen);
      const Comparison c = compare_in_memory(f);
      CHECK(c.snaplen == snaplen);
      CHECK(c.frames == 1);
      CHECK(c.error == "invalid packet capture length " + std::to_string(caplen) +
                           (caplen > snaplen ? ", bigger than snaplen of " + std::to_string(snaplen)
                                             : std::string(", bigger than maximum of 262144")));
    }
  }
}

TEST_CASE("pcap reader: zero-length records", "[capture][pcap_file]") {
  for (const Order order : {Order::Little, Order::Big}) {
    FileSpec s;
    s.order = order;
    auto f = file_header(s);
    add_record(f, order, 1, 1, 0, 0, 0);
    add_record(f, order, 2, 2, 0, 60, 0);
    add_record(f, order, 3, 3, 0, 0, 0);
    const Comparison c = compare_in_memory(f);
    CHECK(c.frames == 3);
    CHECK(c.last == Status::End);
    CHECK(c.caplens == std::vector<std::uint32_t>{0, 0, 0});
  }
}

TEST_CASE("pcap reader: versions 2.0 to 2.3 with their caplen and len interchanged",
          "[capture][pcap_file]") {
  for (const std::uint16_t minor : std::initializer_list<std::uint16_t>{0, 1, 2, 3, 4}) {
    for (const Order order : {Order::Little, Order::Big}) {
      FileSpec s;
      s.minor = minor;
      s.order = order;
      auto f = file_header(s);
      // (caplen, len) as written: equal, caplen < len, caplen > len.
      add_record(f, order, 1, 1, 60, 60, 60);
      add_record(f, order, 2, 2, 40, 80, 40);
      add_record(f, order, 3, 3, 80, 40, 80);
      add_record(f, order, 4, 4, 40, 80, 80);
      add_record(f, order, 5, 5, 80, 40, 40);
      INFO("2." << minor << ", big-endian " << (order == Order::Big));
      const Comparison c = compare_in_memory(f);
      CHECK(c.accepted);
      CHECK(c.last != Status::Frame);
    }
  }
}

// Reads a file as capture.cpp does: a ChunkedFile's buffer, refilled whenever the reader needs
// more.
Comparison compare_chunked_file(const std::string& path) {
  Comparison c;
  auto file = ChunkedFile::open(path);
  REQUIRE(file.has_value());
  auto reader = PcapReader::open(file->bytes());
  REQUIRE(reader.has_value());
  reader->more_follows(!file->at_end());
  const PcapHandle p = open_libpcap(path);
  REQUIRE(p != nullptr);
  std::ostringstream why;
  for (;;) {
    PcapReader::Record r;
    c.last = reader->next(r);
    if (c.last == Status::NeedMore) {
      std::string error;
      REQUIRE(file->refill(reader->consumed(), error));
      reader->rebase(file->bytes());
      reader->more_follows(!file->at_end());
      continue;
    }
    pcap_pkthdr* h = nullptr;
    const u_char* data = nullptr;
    const int rc = pcap_next_ex(p.get(), &h, &data);
    if (rc == 1 && c.last == Status::Frame) {
      if (h->caplen != r.caplen || h->len != r.len ||
          (r.caplen != 0 && std::memcmp(r.data.data(), data, r.caplen) != 0)) {
        why << "frame " << c.frames << " differs; ";
        break;
      }
      ++c.frames;
      continue;
    }
    if (rc == PCAP_ERROR && c.last == Status::Error) {
      c.error = std::string(reader->error());
      if (c.error != pcap_geterr(p.get())) {
        why << "error \"" << c.error << "\" != libpcap's \"" << pcap_geterr(p.get()) << "\"; ";
      }
    } else if (!(rc == PCAP_ERROR_BREAK && c.last == Status::End)) {
      why << "after " << c.frames << " frames: status " << static_cast<int>(c.last)
          << " != libpcap's return " << rc << "; ";
    }
    break;
  }
  c.mismatch = why.str();
  return c;
}

TEST_CASE("chunked file: records across refills read as libpcap reads them",
          "[capture][pcap_file]") {
  const TempDir tmp;
  FileSpec spec;
  auto bytes = file_header(spec);
  // About 3.5 MiB: records of 0 to 1,499 bytes and a few near the 262,144-byte maximum, so that
  // refills cut headers and bodies at many offsets.
  std::uint32_t n = 0;
  while (bytes.size() < (std::size_t{7} << 19U)) {
    const std::uint32_t caplen = n % 97 == 0 ? 262'000 + n % 144 : (n * 7919U) % 1500U;
    add_record(bytes, spec.order, 1'700'000'000 + n, n % 1'000'000, caplen);
    ++n;
  }
  const std::string path = tmp.write("big.pcap", bytes).string();
  const Comparison c = compare_chunked_file(path);
  INFO(c.mismatch);
  CHECK(c.mismatch.empty());
  CHECK(c.frames == n);
  CHECK(c.last == Status::End);

  // Cut inside a record past the first refill: libpcap's "truncated dump file" error, after the
  // same frames.
  const std::vector<std::byte> cut(bytes.begin(),
                                   bytes.begin() + static_cast<std::ptrdiff_t>(bytes.size() - 700));
  const Comparison t = compare_chunked_file(tmp.write("cut.pcap", cut).string());
  INFO(t.mismatch);
  CHECK(t.mismatch.empty());
  CHECK(t.last == Status::Error);
  CHECK_THAT(t.error, Catch::Contains("truncated dump file"));
}

TEST_CASE("chunked file: regular files only, moves, an empty file is at its end",
          "[capture][pcap_file]") {
  const TempDir tmp;
  const auto bytes = three_records(FileSpec{});
  const std::string path = tmp.write("a.pcap", bytes).string();
  auto file = ChunkedFile::open(path);
  REQUIRE(file.has_value());
  REQUIRE(file->bytes().size() == bytes.size());
  CHECK(file->at_end());
  CHECK(std::memcmp(file->bytes().data(), bytes.data(), bytes.size()) == 0);

  ChunkedFile moved = std::move(*file);
  CHECK(file->bytes().empty());  // NOLINT(bugprone-use-after-move): moved-from is empty
  CHECK(moved.bytes().size() == bytes.size());
  auto other = ChunkedFile::open(tmp.write("empty", {}).string());
  REQUIRE(other.has_value());
  CHECK(other->bytes().empty());
  *other = std::move(moved);
  CHECK(other->bytes().size() == bytes.size());
  const Comparison c = compare(other->bytes(), open_libpcap(path));
  CHECK(c.mismatch.empty());
  CHECK(c.frames == 3);

  CHECK_FALSE(ChunkedFile::open(tmp.path.string()).has_value());  // a directory
  CHECK_FALSE(ChunkedFile::open((tmp.path / "missing.pcap").string()).has_value());
  CHECK_FALSE(ChunkedFile::open("-").has_value());  // libpcap's standard input
  CHECK_FALSE(ChunkedFile::open("/dev/null").has_value());
  const fs::path fifo = tmp.path / "fifo";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  CHECK_FALSE(ChunkedFile::open(fifo.string()).has_value());  // and it does not block
}
