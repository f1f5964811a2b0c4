// What a profile tells about each frame it writes, for the --truth summary (truth.hpp).
#pragma once

#include <arpa/inet.h>
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace dnsmon::gen {

// A client's address: the first 4 bytes for IPv4, all 16 for IPv6.
struct Address {
  bool v6 = false;
  std::array<std::uint8_t, 16> bytes{};

  bool operator==(const Address&) const = default;

  [[nodiscard]] std::string text() const {
    std::array<char, INET6_ADDRSTRLEN> buf{};
    inet_ntop(v6 ? AF_INET6 : AF_INET, bytes.data(), buf.data(), buf.size());
    return buf.data();
  }
};

// What one written frame carries, for the --truth summary.
struct FrameFacts {
  enum class Kind : std::uint8_t { NoDns, Query, Response };
  Kind kind = Kind::NoDns;
  bool tcp = false, v6 = false, vlan = false;
  bool tc = false;  // response with TC=1
  bool edns = false, edns_do = false, cookie = false, ecs = false;
  bool answered = false;    // queries: the exchange's response follows (if the file goes on)
  bool fresh_name = false;  // no other exchange asks for this qname (the flood's labels)
  std::uint16_t qtype = 0;
  std::uint8_t rcode = 0;
  Address client;         // the client's address, whichever way the frame goes
  std::uint32_t txn = 0;  // exchange (query and its response) key
  std::uint32_t wire_len = 0;
  std::string qname;        // lowercase, without the trailing dot
  std::string_view domain;  // queries only: registrable domain of qname (static storage)
};

// Receives the facts of every frame in the order the frames are written.
class FactsSink {
 public:
  FactsSink() = default;
  FactsSink(const FactsSink&) = delete;
  FactsSink& operator=(const FactsSink&) = delete;
  FactsSink(FactsSink&&) = delete;
  FactsSink& operator=(FactsSink&&) = delete;
  virtual ~FactsSink() = default;

  virtual void add(const FrameFacts& f, std::int64_t ts_us) = 0;
};

}  // namespace dnsmon::gen
