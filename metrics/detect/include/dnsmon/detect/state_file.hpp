// The detection state file: a versioned, checksummed container of typed sections in which the
// detection engine checkpoints its tables, so a restart resumes where the last run stopped.
// This header defines only the container; what a section holds is the engine's business.
//
// Layout (all integers little-endian; version 1):
//
//   header, header_size = 72 bytes
//     0  magic "DNSMSTAT"                      8 bytes
//     8  u16 format_version                    1
//    10  u16 header_size                       72
//    12  u32 flags                             bit 0 kStateFlagClean; other bits 0
//    16  producer, 32 bytes, NUL-padded        the writer, e.g. "dnsmon 0.9.0"
//    48  i64 logical_clock_ns                  the engine's logical time at the checkpoint
//    56  i64 origin_ns                         the logical clock's origin (detection.md 4.0)
//    64  u32 section_count
//    68  u32 header_crc                        CRC-32C of bytes [0, header_size - 4)
//   section_count sections, each
//     u32 id, u32 reserved (0), u64 length, `length` payload bytes,
//     u32 crc                                  CRC-32C of id, reserved, length and payload
//   trailer, 8 bytes
//     u32 end magic "DSTE", u32 file_crc      CRC-32C of every byte before file_crc
//
// Every version keeps the first 12 bytes (magic, format_version, header_size) and puts the header
// CRC in the header's last 4 bytes, so the loader can check a header before it dispatches on the
// version: a damaged version field reads as a corrupt header, never as a newer format. The
// loader reads each version it knows (kStateFormatVersion and every earlier one, through one
// parse function per version) and refuses newer ones.
//
// The loader validates the whole file (magic, version, sizes, every CRC, the trailer, no trailing
// bytes, no duplicate section ids) before it returns anything: it never half-loads, never throws
// and never trusts a length it has not bounded by the bytes actually present. The writer writes a
// temporary file next to the target, fsyncs it, renames it over the target and fsyncs the
// directory, so a crash leaves either the old file or the new one. The file is created with mode
// 0600 (sections hold domain names and client organisations). One writer per path at a time:
// the temporary's name is the target's plus the process id.
//
// Thread-safety: free functions without shared state. Allocation: the loaded sections and the
// encoded file; control plane only (checkpoint and restore), never the packet path.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace dnsmon::detect {

inline constexpr std::array<char, 8> kStateMagic{'D', 'N', 'S', 'M', 'S', 'T', 'A', 'T'};
inline constexpr std::array<char, 4> kStateEndMagic{'D', 'S', 'T', 'E'};
inline constexpr std::uint16_t kStateFormatVersion = 1;
inline constexpr std::size_t kStateHeaderSizeV1 = 72;
inline constexpr std::size_t kStateProducerBytes = 32;
inline constexpr std::size_t kStateSectionOverhead = 20;  // id, reserved, length, crc
inline constexpr std::size_t kStateTrailerBytes = 8;
inline constexpr std::uint32_t kStateMaxSections = 4096;
inline constexpr std::uint64_t kStateDefaultMaxFileBytes = 1ULL << 30;

// Header flag: the writer stopped cleanly (end of input or shutdown), not at a periodic
// checkpoint.
inline constexpr std::uint32_t kStateFlagClean = 1U << 0;

// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78, initial value and final xor ~0):
// crc32c("123456789") = 0xE3069283. Pass a previous result as `crc` to continue a running CRC.
[[nodiscard]] std::uint32_t crc32c(std::span<const std::byte> data, std::uint32_t crc = 0) noexcept;

struct StateHeader {
  std::uint16_t format_version = kStateFormatVersion;  // as read; a write always uses the current
  std::uint32_t flags = 0;
  std::string producer;  // at most kStateProducerBytes bytes, no NUL
  std::int64_t logical_clock_ns = 0;
  std::int64_t origin_ns = 0;
};

struct StateSection {
  std::uint32_t id = 0;
  std::vector<std::byte> payload;
};

// What write_state_file() takes: a section's id and a view of its payload.
struct StateSectionView {
  std::uint32_t id = 0;
  std::span<const std::byte> payload;
};

struct StateFile {
  StateHeader header;
  std::vector<StateSection> sections;  // in file order, ids distinct

  // The section with this id, or nullptr.
  [[nodiscard]] const StateSection* find(std::uint32_t id) const noexcept;
};

enum class StateFileError : std::uint8_t {
  None,
  NotFound,          // no file at the path (a first start)
  Io,                // open/read/write/fsync/rename failed, or not a regular file
  Empty,             // a zero-length file
  TooLarge,          // larger than the caller's limit
  Truncated,         // ends before the header, a section or the trailer is complete
  BadMagic,          // not a dnsmon state file
  BadVersion,        // format version 0 or a header size the version does not allow
  NewerVersion,      // written by a newer dnsmon: refused, not guessed at
  HeaderCorrupt,     // header CRC mismatch, or reserved/flag bits this version does not define
  SectionCorrupt,    // a section's CRC mismatch or reserved field not 0
  DuplicateSection,  // two sections with the same id
  FileCorrupt,       // trailer magic or whole-file CRC mismatch, or bytes after the trailer
  InvalidArgument,   // writer: producer too long or with a NUL, too many or duplicate sections
  OutOfMemory,
};

[[nodiscard]] std::string_view to_string(StateFileError e) noexcept;

struct StateFileStatus {
  StateFileError error = StateFileError::None;
  std::string detail;  // for the log: what was wrong and where (path, offset, section id, errno)

  [[nodiscard]] bool ok() const noexcept { return error == StateFileError::None; }
};

struct StateLoadResult {
  StateFileStatus status;
  StateFile file;  // empty unless status.ok()

  [[nodiscard]] bool ok() const noexcept { return status.ok(); }
};

// Validates and decodes a whole state file held in memory (what load_state_file() reads).
[[nodiscard]] StateLoadResult parse_state_file(std::span<const std::byte> bytes) noexcept;

// Reads and validates the file at `path`; files above `max_bytes` are refused unread.
[[nodiscard]] StateLoadResult load_state_file(
    const std::filesystem::path& path,
    std::uint64_t max_bytes = kStateDefaultMaxFileBytes) noexcept;

// The current format's bytes for this header and sections (header.format_version is ignored).
// Fails with InvalidArgument as write_state_file() does.
[[nodiscard]] StateFileStatus encode_state_file(const StateHeader& header,
                                                std::span<const StateSectionView> sections,
                                                std::vector<std::byte>& out) noexcept;

// Writes the file atomically (temporary file in the same directory, fsync, rename, fsync of the
// directory), streaming the sections from the caller's buffers (no copy of the file in memory);
// the bytes are encode_state_file()'s. On failure the previous file, if any, is left as it was
// and the temporary removed.
[[nodiscard]] StateFileStatus write_state_file(const std::filesystem::path& path,
                                               const StateHeader& header,
                                               std::span<const StateSectionView> sections) noexcept;

}  // namespace dnsmon::detect
