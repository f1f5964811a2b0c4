// Bounds-checked big-endian reader over untrusted bytes.
//
// Reads past the end do not throw: they return zero and make the reader fail, and every later read
// is a no-op, so a decoder can read several fields and check failed() once.
// Thread-safety: a value type; not shared. Allocation: none.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "dnsmon/common/bytes.hpp"

namespace dnsmon::detail {

class WireReader {
 public:
  explicit WireReader(std::span<const std::byte> data) noexcept : data_(data) {}

  [[nodiscard]] std::uint8_t u8() noexcept {
    if (!need(1)) {
      return 0;
    }
    return std::to_integer<std::uint8_t>(data_[pos_++]);
  }

  [[nodiscard]] std::uint16_t u16() noexcept {
    if (!need(2)) {
      return 0;
    }
    const std::uint16_t v = bytes::load_be16(data_, pos_);
    pos_ += 2;
    return v;
  }

  [[nodiscard]] std::uint32_t u32() noexcept {
    const std::uint32_t hi = u16();
    const std::uint32_t lo = u16();
    return (hi << 16U) | lo;
  }

  void skip(std::size_t n) noexcept {
    if (need(n)) {
      pos_ += n;
    }
  }

  // The next n bytes as a view, advancing past them (empty and failed if fewer remain).
  [[nodiscard]] std::span<const std::byte> take(std::size_t n) noexcept {
    if (!need(n)) {
      return {};
    }
    auto out = data_.subspan(pos_, n);
    pos_ += n;
    return out;
  }

  [[nodiscard]] std::span<const std::byte> rest() const noexcept { return data_.subspan(pos_); }

  [[nodiscard]] std::size_t remaining() const noexcept { return data_.size() - pos_; }

  [[nodiscard]] std::size_t position() const noexcept { return pos_; }

  [[nodiscard]] bool failed() const noexcept { return failed_; }

 private:
  bool need(std::size_t n) noexcept {
    if (failed_ || data_.size() - pos_ < n) {
      failed_ = true;
      return false;
    }
    return true;
  }

  std::span<const std::byte> data_;
  std::size_t pos_ = 0;
  bool failed_ = false;
};

}  // namespace dnsmon::detail
