// The text of an errno value, as strerror() gives it, without strerror()'s buffer that every
// thread shares: strerror_r() writes into the caller's own.
//
// Thread-safety: safe from any thread. Allocation: the returned string.
#pragma once

#include <array>
#include <cstring>
#include <string>

namespace dnsmon::detail {

namespace errno_internal {

// glibc with _GNU_SOURCE (g++ defines it) returns the text, which may or may not be buf.
inline std::string text(const char* result, const char* /*buf*/, int /*e*/) {
  return result;
}

// POSIX returns 0 and fills buf.
inline std::string text(int result, const char* buf, int e) {
  return result == 0 ? std::string(buf) : "Unknown error " + std::to_string(e);
}

}  // namespace errno_internal

inline std::string errno_text(int e) {
  std::array<char, 256> buf{};
  return errno_internal::text(strerror_r(e, buf.data(), buf.size()), buf.data(), e);
}

}  // namespace dnsmon::detail
