// Which leg of a resolver a query is on, from the addresses of the server dnsmon watches.
//
// On a resolver host one interface carries both legs: clients query the resolver (the client leg)
// and the resolver queries authoritative servers (the upstream leg). ServerAddresses holds the
// server's own addresses as a small set of prefixes; leg() decides a query's leg from its
// destination first, then its source:
// - destination in the set: Client (a query to the server), even when the source is in the set
//   too (a stub on the resolver host asking its resolver over loopback);
// - else source in the set: Upstream (a query from the server);
// - else, or when the set is empty (a replay without capture.local_networks): Unknown.
// A response is on its query's leg: its source is the query's destination.
//
// Thread-safety: built before the workers start, then only read (each worker holds its own copy).
//   A reload replaces the set through a ServerAddressBook (below), which each worker checks before
//   a message.
// Allocation: add() and add_address() may allocate; contains() and leg() never do. Both scan the
//   prefixes of the address's family in order, a few instructions each: a host has few addresses.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dnsmon/common/published.hpp"
#include "dnsmon/parser.hpp"

namespace dnsmon {

enum class Leg : std::uint8_t { Client, Upstream, Unknown, Count };
inline constexpr std::size_t kLegCount = static_cast<std::size_t>(Leg::Count);
inline constexpr std::array<std::string_view, kLegCount> kLegNames{"client", "upstream", "unknown"};

inline std::string_view leg_name(Leg leg) noexcept {
  return kLegNames[std::min(static_cast<std::size_t>(leg), kLegCount - 1)];
}

class ServerAddresses {
 public:
  // Adds a CIDR prefix ("10.0.0.53/32", "2001:db8::/48") or a single address (a host prefix).
  // Returns false, adding nothing, when text is not one: a malformed address, a length beyond
  // the family's, or bits set after the prefix.
  bool add(std::string_view text);

  // Adds one address as a host prefix (/32 or /128). An address of another family is ignored.
  void add_address(const IpAddr& address);

  [[nodiscard]] bool empty() const noexcept { return v4_.empty() && v6_.empty(); }

  [[nodiscard]] std::size_t size() const noexcept { return v4_.size() + v6_.size(); }

  [[nodiscard]] bool contains(const IpAddr& address) const noexcept;

  // The leg of a query from src to dst (see the top of this file).
  [[nodiscard]] Leg leg(const IpAddr& src, const IpAddr& dst) const noexcept {
    if (contains(dst)) {
      return Leg::Client;
    }
    return contains(src) ? Leg::Upstream : Leg::Unknown;
  }

  // The leg of a message: a query's own, a response's that of its query (src and dst swapped).
  [[nodiscard]] Leg leg(const DnsMessage& m) const noexcept {
    if (empty()) {
      return Leg::Unknown;
    }
    return m.qr ? leg(m.dst, m.src) : leg(m.src, m.dst);
  }

  // The prefixes in text form ("10.0.0.53/32"), for logs.
  [[nodiscard]] std::vector<std::string> describe() const;

 private:
  struct V4 {
    std::uint32_t net, mask;  // host byte order
  };

  struct V6 {
    std::uint64_t net_hi, net_lo, mask_hi, mask_lo;  // host byte order
  };

  void add_v4(std::uint32_t net, unsigned bits);
  void add_v6(std::uint64_t hi, std::uint64_t lo, unsigned bits);

  std::vector<V4> v4_;
  std::vector<V6> v6_;
};

// The server addresses a reload can replace (live, the host's own addresses are read again): the
// newest set, published whole (Published<>): each worker keeps its own copy and compares the
// generation with its copy's before a message (one atomic load, no lock); when it moved on, the
// worker copies the newest set, once per reload.
class ServerAddressBook {
 public:
  explicit ServerAddressBook(ServerAddresses initial)
      : empty_(initial.empty()), current_(std::move(initial)) {}

  // The control thread: the set the workers take from their next message on.
  void publish(ServerAddresses next) {
    const bool empty = next.empty();
    (void)current_.publish(std::move(next));
    empty_.store(empty, std::memory_order_relaxed);
  }

  [[nodiscard]] std::uint64_t generation() const noexcept { return current_.generation(); }

  // Replaces `out` with the newest set (allocates; `out` is unchanged if that throws) and
  // returns its generation.
  std::uint64_t copy_to(ServerAddresses& out) const { return current_.copy_to(out); }

  // Whether the newest set is empty (the exporter then leaves out the client and upstream legs).
  [[nodiscard]] bool empty() const noexcept { return empty_.load(std::memory_order_relaxed); }

 private:
  std::atomic<bool> empty_;
  Published<ServerAddresses> current_;
};

}  // namespace dnsmon
