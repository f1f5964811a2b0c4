#include "dnsmon/detect/state_file.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <new>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <unordered_set>

namespace dnsmon::detect {

namespace {

constexpr std::array<std::uint32_t, 256> make_crc_table() noexcept {
  std::array<std::uint32_t, 256> t{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) {
      c = (c & 1U) != 0 ? (c >> 1) ^ 0x82F63B78U : c >> 1;
    }
    t[i] = c;
  }
  return t;
}

constexpr auto kCrcTable = make_crc_table();

// Slicing-by-8: table k advances a byte's CRC by k more zero bytes, so eight bytes take one step
// (checkpoints are as large as the detection tables).
constexpr std::array<std::array<std::uint32_t, 256>, 8> make_crc_slices() noexcept {
  std::array<std::array<std::uint32_t, 256>, 8> t{};
  t[0] = kCrcTable;
  for (std::size_t k = 1; k < 8; ++k) {
    for (std::size_t i = 0; i < 256; ++i) {
      t[k][i] = (t[k - 1][i] >> 8) ^ kCrcTable[t[k - 1][i] & 0xFFU];
    }
  }
  return t;
}

constexpr auto kCrcSlices = make_crc_slices();

std::uint16_t get16(const std::byte* p) noexcept {
  return static_cast<std::uint16_t>(std::to_integer<unsigned>(p[0]) |
                                    (std::to_integer<unsigned>(p[1]) << 8));
}

std::uint32_t get32(const std::byte* p) noexcept {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i) {
    v = (v << 8) | std::to_integer<std::uint32_t>(p[i]);
  }
  return v;
}

std::uint64_t get64(const std::byte* p) noexcept {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) {
    v = (v << 8) | std::to_integer<std::uint64_t>(p[i]);
  }
  return v;
}

void put(std::vector<std::byte>& out, std::uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) {
    out.push_back(static_cast<std::byte>((v >> (8 * i)) & 0xFFU));
  }
}

StateLoadResult fail(StateFileError e, std::string detail) {
  StateLoadResult r;
  r.status = {e, std::move(detail)};
  return r;
}

std::string at(std::size_t offset) {
  return " at offset " + std::to_string(offset);
}

// Version 1 body: the header is already checked (magic, sizes, CRC). Validates everything, then
// copies the sections out.
StateLoadResult parse_v1(std::span<const std::byte> b, std::size_t header_size) {
  if (header_size != kStateHeaderSizeV1) {
    return fail(StateFileError::BadVersion,
                "version 1 header size " + std::to_string(header_size) + ", expected 72");
  }
  const std::byte* h = b.data();
  StateLoadResult r;
  StateHeader& hd = r.file.header;
  hd.format_version = 1;
  hd.flags = get32(h + 12);
  if ((hd.flags & ~kStateFlagClean) != 0) {
    return fail(StateFileError::HeaderCorrupt,
                "undefined header flags " + std::to_string(hd.flags));
  }
  const char* prod = reinterpret_cast<const char*>(h + 16);  // NOLINT: byte view of ASCII text
  const std::size_t prod_len = strnlen(prod, kStateProducerBytes);
  for (std::size_t i = prod_len; i < kStateProducerBytes; ++i) {
    if (prod[i] != '\0') {
      return fail(StateFileError::HeaderCorrupt, "producer field not NUL-padded");
    }
  }
  hd.logical_clock_ns = static_cast<std::int64_t>(get64(h + 48));
  hd.origin_ns = static_cast<std::int64_t>(get64(h + 56));
  const std::uint32_t count = get32(h + 64);
  if (count > kStateMaxSections) {
    return fail(StateFileError::HeaderCorrupt, "section count " + std::to_string(count) +
                                                   " above " + std::to_string(kStateMaxSections));
  }

  // Pass 1: bounds, section CRCs, distinct ids.
  struct Span {
    std::uint32_t id;
    std::size_t offset, length;
  };

  std::vector<Span> found;
  found.reserve(count);
  std::size_t pos = header_size;
  for (std::uint32_t s = 0; s < count; ++s) {
    if (b.size() - pos < kStateSectionOverhead) {
      return fail(StateFileError::Truncated, "section " + std::to_string(s) + " header" + at(pos));
    }
    const std::uint32_t id = get32(b.data() + pos);
    const std::uint32_t reserved = get32(b.data() + pos + 4);
    const std::uint64_t length = get64(b.data() + pos + 8);
    if (length > b.size() - pos - kStateSectionOverhead) {
      return fail(StateFileError::Truncated, "section id " + std::to_string(id) + " length " +
                                                 std::to_string(length) + at(pos));
    }
    const std::size_t body = pos + 16;
    const auto len = static_cast<std::size_t>(length);
    const std::uint32_t stored = get32(b.data() + body + len);
    if (crc32c(b.subspan(pos, 16 + len)) != stored) {
      return fail(StateFileError::SectionCorrupt,
                  "section id " + std::to_string(id) + " CRC mismatch" + at(pos));
    }
    if (reserved != 0) {
      return fail(StateFileError::SectionCorrupt,
                  "section id " + std::to_string(id) + " reserved field not 0" + at(pos));
    }
    for (const auto& f : found) {
      if (f.id == id) {
        return fail(StateFileError::DuplicateSection,
                    "section id " + std::to_string(id) + " twice" + at(pos));
      }
    }
    found.push_back({id, body, len});
    pos = body + len + 4;
  }
  if (b.size() - pos < kStateTrailerBytes) {
    return fail(StateFileError::Truncated, "trailer" + at(pos));
  }
  if (std::memcmp(b.data() + pos, kStateEndMagic.data(), kStateEndMagic.size()) != 0) {
    return fail(StateFileError::FileCorrupt, "no end magic" + at(pos));
  }
  if (crc32c(b.first(pos + 4)) != get32(b.data() + pos + 4)) {
    return fail(StateFileError::FileCorrupt, "file CRC mismatch");
  }
  if (b.size() != pos + kStateTrailerBytes) {
    return fail(StateFileError::FileCorrupt,
                std::to_string(b.size() - pos - kStateTrailerBytes) + " bytes after the trailer");
  }

  // Pass 2: everything checked; copy out.
  hd.producer.assign(prod, prod_len);
  r.file.sections.reserve(found.size());
  for (const auto& f : found) {
    const auto* first = b.data() + f.offset;
    r.file.sections.push_back({f.id, std::vector<std::byte>(first, first + f.length)});
  }
  return r;
}

// One parse function per format version this build reads; index = version.
using VersionParser = StateLoadResult (*)(std::span<const std::byte>, std::size_t);
constexpr std::array<VersionParser, kStateFormatVersion + 1> kParsers{nullptr, &parse_v1};

std::string errno_text(const char* what, const std::filesystem::path& p, int err) {
  return std::string(what) + " " + p.string() + ": " + std::system_category().message(err);
}

bool write_all(int fd, const std::byte* p, std::size_t n) noexcept {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) {
        continue;
      }
      return false;
    }
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

}  // namespace

std::uint32_t crc32c(std::span<const std::byte> data, std::uint32_t crc) noexcept {
  crc = ~crc;
  const std::byte* p = data.data();
  std::size_t n = data.size();
  for (; n >= 8; p += 8, n -= 8) {
    const std::uint32_t lo = crc ^ get32(p);
    const std::uint32_t hi = get32(p + 4);
    crc = kCrcSlices[7][lo & 0xFFU] ^ kCrcSlices[6][(lo >> 8) & 0xFFU] ^
          kCrcSlices[5][(lo >> 16) & 0xFFU] ^ kCrcSlices[4][lo >> 24] ^ kCrcSlices[3][hi & 0xFFU] ^
          kCrcSlices[2][(hi >> 8) & 0xFFU] ^ kCrcSlices[1][(hi >> 16) & 0xFFU] ^
          kCrcSlices[0][hi >> 24];
  }
  for (; n > 0; ++p, --n) {
    crc = kCrcTable[(crc ^ std::to_integer<std::uint32_t>(*p)) & 0xFFU] ^ (crc >> 8);
  }
  return ~crc;
}

const StateSection* StateFile::find(std::uint32_t id) const noexcept {
  for (const auto& s : sections) {
    if (s.id == id) {
      return &s;
    }
  }
  return nullptr;
}

std::string_view to_string(StateFileError e) noexcept {
  switch (e) {
    case StateFileError::None:
      return "ok";
    case StateFileError::NotFound:
      return "not found";
    case StateFileError::Io:
      return "I/O error";
    case StateFileError::Empty:
      return "empty file";
    case StateFileError::TooLarge:
      return "file too large";
    case StateFileError::Truncated:
      return "truncated";
    case StateFileError::BadMagic:
      return "not a dnsmon state file";
    case StateFileError::BadVersion:
      return "invalid format version";
    case StateFileError::NewerVersion:
      return "written by a newer format version";
    case StateFileError::HeaderCorrupt:
      return "corrupt header";
    case StateFileError::SectionCorrupt:
      return "corrupt section";
    case StateFileError::DuplicateSection:
      return "duplicate section";
    case StateFileError::FileCorrupt:
      return "corrupt file";
    case StateFileError::InvalidArgument:
      return "invalid argument";
    case StateFileError::OutOfMemory:
      return "out of memory";
  }
  return "unknown";
}

StateLoadResult parse_state_file(std::span<const std::byte> b) noexcept {
  try {
    if (b.empty()) {
      return fail(StateFileError::Empty, "empty file");
    }
    if (b.size() < 12) {
      if (std::memcmp(b.data(), kStateMagic.data(), std::min(b.size(), kStateMagic.size())) != 0) {
        return fail(StateFileError::BadMagic, "no state file magic");
      }
      return fail(StateFileError::Truncated, std::to_string(b.size()) + " bytes, no header");
    }
    if (std::memcmp(b.data(), kStateMagic.data(), kStateMagic.size()) != 0) {
      return fail(StateFileError::BadMagic, "no state file magic");
    }
    const std::uint16_t version = get16(b.data() + 8);
    const std::size_t header_size = get16(b.data() + 10);
    if (header_size < 16) {
      return fail(StateFileError::BadVersion, "header size " + std::to_string(header_size));
    }
    if (b.size() < header_size) {
      return fail(StateFileError::Truncated,
                  std::to_string(b.size()) + " bytes, header of " + std::to_string(header_size));
    }
    if (crc32c(b.first(header_size - 4)) != get32(b.data() + header_size - 4)) {
      return fail(StateFileError::HeaderCorrupt, "header CRC mismatch");
    }
    if (version == 0) {
      return fail(StateFileError::BadVersion, "format version 0");
    }
    if (version > kStateFormatVersion) {
      return fail(StateFileError::NewerVersion, "format version " + std::to_string(version) +
                                                    ", this build reads up to " +
                                                    std::to_string(kStateFormatVersion));
    }
    return kParsers[version](b, header_size);
  } catch (const std::bad_alloc&) {
    StateLoadResult r;
    r.status.error = StateFileError::OutOfMemory;
    return r;
  }
}

StateLoadResult load_state_file(const std::filesystem::path& path,
                                std::uint64_t max_bytes) noexcept {
  try {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      const int err = errno;
      return fail(err == ENOENT ? StateFileError::NotFound : StateFileError::Io,
                  errno_text("open", path, err));
    }

    struct FdCloser {
      int fd;

      explicit FdCloser(int f) : fd(f) {}

      FdCloser(const FdCloser&) = delete;
      FdCloser& operator=(const FdCloser&) = delete;
      FdCloser(FdCloser&&) = delete;
      FdCloser& operator=(FdCloser&&) = delete;

      ~FdCloser() { ::close(fd); }
    } closer(fd);

    struct stat st {};

    if (::fstat(fd, &st) != 0) {
      return fail(StateFileError::Io, errno_text("stat", path, errno));
    }
    if (!S_ISREG(st.st_mode)) {
      return fail(StateFileError::Io, path.string() + ": not a regular file");
    }
    const auto size = static_cast<std::uint64_t>(st.st_size);
    if (size == 0) {
      return fail(StateFileError::Empty, path.string() + ": empty file");
    }
    if (size > max_bytes) {
      return fail(StateFileError::TooLarge, path.string() + ": " + std::to_string(size) +
                                                " bytes, limit " + std::to_string(max_bytes));
    }
    std::vector<std::byte> bytes(static_cast<std::size_t>(size));
    std::size_t got = 0;
    while (got < bytes.size()) {
      const ssize_t n = ::read(fd, bytes.data() + got, bytes.size() - got);
      if (n < 0) {
        if (errno == EINTR) {
          continue;
        }
        return fail(StateFileError::Io, errno_text("read", path, errno));
      }
      if (n == 0) {
        break;  // shrank under us: parse what is there, which will not validate
      }
      got += static_cast<std::size_t>(n);
    }
    bytes.resize(got);
    auto r = parse_state_file(bytes);
    if (!r.ok()) {
      r.status.detail = path.string() + ": " + r.status.detail;
    }
    return r;
  } catch (const std::bad_alloc&) {
    StateLoadResult r;
    r.status.error = StateFileError::OutOfMemory;
    return r;
  }
}

namespace {

StateFileStatus check_arguments(const StateHeader& header,
                                std::span<const StateSectionView> sections) {
  if (header.producer.size() > kStateProducerBytes ||
      header.producer.find('\0') != std::string::npos) {
    return {StateFileError::InvalidArgument, "producer must be at most 32 bytes without NUL"};
  }
  if ((header.flags & ~kStateFlagClean) != 0) {
    return {StateFileError::InvalidArgument, "undefined header flags"};
  }
  if (sections.size() > kStateMaxSections) {
    return {StateFileError::InvalidArgument, "too many sections"};
  }
  std::unordered_set<std::uint32_t> ids;
  for (const auto& s : sections) {
    if (!ids.insert(s.id).second) {
      return {StateFileError::InvalidArgument, "section id " + std::to_string(s.id) + " twice"};
    }
  }
  return {};
}

// The header of the current version, with its CRC.
void put_header(std::vector<std::byte>& out, const StateHeader& header, std::size_t sections) {
  for (char c : kStateMagic) {
    out.push_back(static_cast<std::byte>(c));
  }
  put(out, kStateFormatVersion, 2);
  put(out, kStateHeaderSizeV1, 2);
  put(out, header.flags, 4);
  for (std::size_t i = 0; i < kStateProducerBytes; ++i) {
    out.push_back(static_cast<std::byte>(i < header.producer.size() ? header.producer[i] : 0));
  }
  put(out, static_cast<std::uint64_t>(header.logical_clock_ns), 8);
  put(out, static_cast<std::uint64_t>(header.origin_ns), 8);
  put(out, sections, 4);
  put(out, crc32c(out), 4);
}

// A section's 16 bytes before its payload.
std::vector<std::byte> section_head(const StateSectionView& s) {
  std::vector<std::byte> head;
  put(head, s.id, 4);
  put(head, 0, 4);
  put(head, s.payload.size(), 8);
  return head;
}

}  // namespace

StateFileStatus encode_state_file(const StateHeader& header,
                                  std::span<const StateSectionView> sections,
                                  std::vector<std::byte>& out) noexcept {
  try {
    if (auto st = check_arguments(header, sections); !st.ok()) {
      return st;
    }
    std::size_t total = kStateHeaderSizeV1 + kStateTrailerBytes;
    for (const auto& s : sections) {
      total += kStateSectionOverhead + s.payload.size();
    }
    out.clear();
    out.reserve(total);
    put_header(out, header, sections.size());
    for (const auto& s : sections) {
      const std::size_t start = out.size();
      const auto head = section_head(s);
      out.insert(out.end(), head.begin(), head.end());
      out.insert(out.end(), s.payload.begin(), s.payload.end());
      put(out, crc32c(std::span<const std::byte>(out).subspan(start)), 4);
    }
    for (char c : kStateEndMagic) {
      out.push_back(static_cast<std::byte>(c));
    }
    put(out, crc32c(out), 4);
    return {};
  } catch (const std::bad_alloc&) {
    return {StateFileError::OutOfMemory, "encoding the state file"};
  }
}

StateFileStatus write_state_file(const std::filesystem::path& path, const StateHeader& header,
                                 std::span<const StateSectionView> sections) noexcept {
  try {
    if (auto st = check_arguments(header, sections); !st.ok()) {
      return st;
    }
    const std::filesystem::path dir =
        path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
    const std::filesystem::path tmp =
        dir / ("." + path.filename().string() + ".tmp." + std::to_string(::getpid()));
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
      return {StateFileError::Io, errno_text("create", tmp, errno)};
    }
    const auto abandon = [&](const char* what, int err) {
      ::close(fd);
      ::unlink(tmp.c_str());
      return StateFileStatus{StateFileError::Io, errno_text(what, tmp, err)};
    };
    // Streamed from the caller's buffers (the tables themselves), CRCs computed on the way: no
    // copy of the whole file in memory.
    std::vector<std::byte> chunk;
    put_header(chunk, header, sections.size());
    std::uint32_t file_crc = crc32c(chunk);
    if (!write_all(fd, chunk.data(), chunk.size())) {
      return abandon("write", errno);
    }
    for (const auto& s : sections) {
      const auto head = section_head(s);
      const std::uint32_t crc = crc32c(s.payload, crc32c(head));
      chunk.clear();
      put(chunk, crc, 4);
      file_crc = crc32c(chunk, crc32c(s.payload, crc32c(head, file_crc)));
      if (!write_all(fd, head.data(), head.size()) ||
          !write_all(fd, s.payload.data(), s.payload.size()) ||
          !write_all(fd, chunk.data(), chunk.size())) {
        return abandon("write", errno);
      }
    }
    chunk.clear();
    for (char c : kStateEndMagic) {
      chunk.push_back(static_cast<std::byte>(c));
    }
    file_crc = crc32c(chunk, file_crc);
    put(chunk, file_crc, 4);
    if (!write_all(fd, chunk.data(), chunk.size())) {
      return abandon("write", errno);
    }
    if (::fsync(fd) != 0) {
      return abandon("fsync", errno);
    }
    if (::close(fd) != 0) {
      const int err = errno;
      ::unlink(tmp.c_str());
      return {StateFileError::Io, errno_text("close", tmp, err)};
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
      const int err = errno;
      ::unlink(tmp.c_str());
      return {StateFileError::Io, errno_text("rename to", path, err)};
    }
    const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
      return {StateFileError::Io, errno_text("open directory", dir, errno)};
    }
    const int rc = ::fsync(dfd);
    const int err = errno;
    ::close(dfd);
    if (rc != 0) {
      return {StateFileError::Io, errno_text("fsync directory", dir, err)};
    }
    return {};
  } catch (const std::bad_alloc&) {
    return {StateFileError::OutOfMemory, "writing the state file"};
  }
}

}  // namespace dnsmon::detect
