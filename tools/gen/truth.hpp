// The --truth summary: what a capture holds, counted from the facts of its frames as they are
// written, and written out as JSON (the top of tools/gen_pcap.cpp describes every key).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "gen/facts.hpp"
#include "gen/profile.hpp"

namespace dnsmon::gen {

class Truth : public FactsSink {
 public:
  // Writes the summary to path; false when it cannot. profile names the profile that ran.
  [[nodiscard]] virtual bool write(const std::string& path, const Options& o,
                                   std::string_view profile) const = 0;
};

std::unique_ptr<Truth> make_truth();

}  // namespace dnsmon::gen
