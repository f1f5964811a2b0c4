// Byte runs of a detection checkpoint section (checkpoint.hpp): StateSink appends trivially
// copyable values as they lie in memory, StateSource reads them back and says when the bytes run
// out. A section written with them is a raw record of this build, so what it holds is part of the
// layout fingerprint: a change of what a writer puts bumps kStateLayoutVersion.
//
// Thread-safety: plain objects. Allocation: StateSink grows its vector (control plane only).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <type_traits>
#include <vector>

namespace dnsmon::detect {

class StateSink {
 public:
  explicit StateSink(std::vector<std::byte>& out) : out_(&out) {}

  template <class T>
  void put(const T& v) {
    static_assert(std::is_trivially_copyable_v<T>);
    const auto* p = reinterpret_cast<const std::byte*>(&v);  // NOLINT: object representation
    out_->insert(out_->end(), p, p + sizeof(T));
  }

  void put_bytes(std::span<const std::byte> bytes) {
    out_->insert(out_->end(), bytes.begin(), bytes.end());
  }

 private:
  std::vector<std::byte>* out_;
};

class StateSource {
 public:
  explicit StateSource(std::span<const std::byte> in) : in_(in) {}

  // False, leaving v as it was, when fewer than sizeof(T) bytes are left.
  template <class T>
  [[nodiscard]] bool get(T& v) noexcept {
    static_assert(std::is_trivially_copyable_v<T>);
    if (in_.size() < sizeof(T)) {
      return false;
    }
    std::memcpy(&v, in_.data(), sizeof(T));
    in_ = in_.subspan(sizeof(T));
    return true;
  }

  [[nodiscard]] bool get_bytes(std::span<std::byte> out) noexcept {
    if (in_.size() < out.size()) {
      return false;
    }
    std::memcpy(out.data(), in_.data(), out.size());
    in_ = in_.subspan(out.size());
    return true;
  }

  // Whether every byte was read (a loader refuses a section with bytes left over).
  [[nodiscard]] bool done() const noexcept { return in_.empty(); }

 private:
  std::span<const std::byte> in_;
};

}  // namespace dnsmon::detect
