#include "dnsmon/analytics/legs.hpp"

#include <arpa/inet.h>
#include <charconv>
#include <cstring>
#include <string>

namespace dnsmon {

namespace {

std::uint32_t be32(const std::uint8_t* p) noexcept {
  return (std::uint32_t{p[0]} << 24U) | (std::uint32_t{p[1]} << 16U) | (std::uint32_t{p[2]} << 8U) |
         std::uint32_t{p[3]};
}

std::uint64_t be64(const std::uint8_t* p) noexcept {
  return (std::uint64_t{be32(p)} << 32U) | be32(p + 4);
}

std::uint32_t mask32(unsigned bits) noexcept {
  return bits == 0 ? 0 : ~std::uint32_t{0} << (32U - bits);
}

std::uint64_t mask64(unsigned bits) noexcept {
  return bits == 0 ? 0 : bits >= 64 ? ~std::uint64_t{0} : ~std::uint64_t{0} << (64U - bits);
}

}  // namespace

void ServerAddresses::add_v4(std::uint32_t net, unsigned bits) {
  const V4 p{net, mask32(bits)};
  for (const V4& o : v4_) {
    if (o.net == p.net && o.mask == p.mask) {
      return;
    }
  }
  v4_.push_back(p);
}

void ServerAddresses::add_v6(std::uint64_t hi, std::uint64_t lo, unsigned bits) {
  const V6 p{hi, lo, mask64(bits), mask64(bits > 64 ? bits - 64 : 0)};
  for (const V6& o : v6_) {
    if (o.net_hi == p.net_hi && o.net_lo == p.net_lo && o.mask_hi == p.mask_hi &&
        o.mask_lo == p.mask_lo) {
      return;
    }
  }
  v6_.push_back(p);
}

bool ServerAddresses::add(std::string_view text) {
  std::string_view addr = text;
  int bits = -1;
  if (const auto slash = text.find('/'); slash != std::string_view::npos) {
    addr = text.substr(0, slash);
    const std::string_view len = text.substr(slash + 1);
    unsigned v = 0;
    const auto [end, ec] = std::from_chars(len.data(), len.data() + len.size(), v);
    if (len.empty() || len.size() > 3 || ec != std::errc{} || end != len.data() + len.size()) {
      return false;
    }
    bits = static_cast<int>(v);
  }
  const std::string a(addr);
  std::array<std::uint8_t, 16> bytes{};
  if (inet_pton(AF_INET, a.c_str(), bytes.data()) == 1) {
    const unsigned b = bits < 0 ? 32U : static_cast<unsigned>(bits);
    const std::uint32_t net = be32(bytes.data());
    if (b > 32 || (net & ~mask32(b)) != 0) {
      return false;
    }
    add_v4(net, b);
    return true;
  }
  if (inet_pton(AF_INET6, a.c_str(), bytes.data()) == 1) {
    const unsigned b = bits < 0 ? 128U : static_cast<unsigned>(bits);
    const std::uint64_t hi = be64(bytes.data());
    const std::uint64_t lo = be64(bytes.data() + 8);
    if (b > 128 || (hi & ~mask64(b)) != 0 || (lo & ~mask64(b > 64 ? b - 64 : 0)) != 0) {
      return false;
    }
    add_v6(hi, lo, b);
    return true;
  }
  return false;
}

void ServerAddresses::add_address(const IpAddr& address) {
  if (address.family == 4) {
    add_v4(be32(address.bytes.data()), 32);
  } else if (address.family == 6) {
    add_v6(be64(address.bytes.data()), be64(address.bytes.data() + 8), 128);
  }
}

bool ServerAddresses::contains(const IpAddr& address) const noexcept {
  if (address.family == 4) {
    const std::uint32_t a = be32(address.bytes.data());
    for (const V4& p : v4_) {
      if ((a & p.mask) == p.net) {
        return true;
      }
    }
    return false;
  }
  if (address.family == 6) {
    const std::uint64_t hi = be64(address.bytes.data());
    const std::uint64_t lo = be64(address.bytes.data() + 8);
    for (const V6& p : v6_) {
      if ((hi & p.mask_hi) == p.net_hi && (lo & p.mask_lo) == p.net_lo) {
        return true;
      }
    }
  }
  return false;
}

std::vector<std::string> ServerAddresses::describe() const {
  std::vector<std::string> out;
  for (const V4& p : v4_) {
    std::array<std::uint8_t, 4> b{
        static_cast<std::uint8_t>(p.net >> 24U), static_cast<std::uint8_t>(p.net >> 16U),
        static_cast<std::uint8_t>(p.net >> 8U), static_cast<std::uint8_t>(p.net)};
    std::array<char, INET_ADDRSTRLEN> s{};
    inet_ntop(AF_INET, b.data(), s.data(), s.size());
    out.push_back(std::string(s.data()) + "/" + std::to_string(__builtin_popcount(p.mask)));
  }
  for (const V6& p : v6_) {
    std::array<std::uint8_t, 16> b{};
    for (unsigned i = 0; i < 8; ++i) {
      b[i] = static_cast<std::uint8_t>(p.net_hi >> (56U - 8U * i));
      b[8 + i] = static_cast<std::uint8_t>(p.net_lo >> (56U - 8U * i));
    }
    std::array<char, INET6_ADDRSTRLEN> s{};
    inet_ntop(AF_INET6, b.data(), s.data(), s.size());
    out.push_back(
        std::string(s.data()) + "/" +
        std::to_string(__builtin_popcountll(p.mask_hi) + __builtin_popcountll(p.mask_lo)));
  }
  return out;
}

}  // namespace dnsmon
