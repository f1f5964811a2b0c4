#include "demo_capture.hpp"

#include <vector>

#include "gen/demo.hpp"

namespace dnsmon {

// A few milliseconds of work. Running out of memory here ends the program.
std::span<const std::byte> demo_capture() noexcept {
  static const std::vector<std::byte> capture = gen::make_demo_capture(7, 4000, 100);
  return capture;
}

}  // namespace dnsmon
