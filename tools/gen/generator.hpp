// A profile that writes its frames in one run and keeps its names until it is destroyed.
#pragma once

#include <cstdint>

namespace dnsmon::gen {

class Generator {
 public:
  Generator() = default;
  Generator(const Generator&) = delete;
  Generator& operator=(const Generator&) = delete;
  Generator(Generator&&) = delete;
  Generator& operator=(Generator&&) = delete;
  virtual ~Generator() = default;

  // Writes every frame; returns how many. The facts it gave about them may view names it owns.
  virtual std::uint64_t run() = 0;
};

}  // namespace dnsmon::gen
