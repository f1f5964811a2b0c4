// libFuzzer target: the input is a whole detection state file, given to parse_state_file (what
// load_state_file runs on the bytes it read).
//
// Besides the sanitizers, it checks the loader's all-or-nothing promise (a refused file hands back
// no section and says why) and that an accepted file is canonical: encoding what was loaded gives
// back the input byte for byte, so nothing in an accepted file goes unchecked.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "dnsmon/detect/state_file.hpp"

#include "fuzz_check.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace dnsmon::detect;
  const std::span<const std::byte> in(reinterpret_cast<const std::byte*>(data), size);
  const StateLoadResult r = parse_state_file(in);
  FUZZ_CHECK(to_string(r.status.error) != "unknown");
  if (!r.ok()) {
    FUZZ_CHECK(r.file.sections.empty());
    FUZZ_CHECK(!r.status.detail.empty() || r.status.error == StateFileError::OutOfMemory);
    FUZZ_CHECK(r.status.error != StateFileError::NotFound && r.status.error != StateFileError::Io &&
               r.status.error != StateFileError::InvalidArgument);
    return 0;
  }
  FUZZ_CHECK(r.file.header.format_version == kStateFormatVersion);
  std::vector<StateSectionView> views;
  std::size_t payload = 0;
  for (const auto& s : r.file.sections) {
    FUZZ_CHECK(r.file.find(s.id) == &s);
    views.push_back({s.id, s.payload});
    payload += s.payload.size();
  }
  FUZZ_CHECK(size == kStateHeaderSizeV1 + kStateTrailerBytes +
                         kStateSectionOverhead * views.size() + payload);
  std::vector<std::byte> again;
  FUZZ_CHECK(encode_state_file(r.file.header, views, again).ok());
  FUZZ_CHECK(again.size() == size);
  FUZZ_CHECK(std::equal(again.begin(), again.end(), in.begin()));
  return 0;
}
