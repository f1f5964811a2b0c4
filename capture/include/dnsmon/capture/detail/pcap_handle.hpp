// An owning libpcap handle: pcap_close() runs when it goes out of scope. Used by the capture
// code and by the tests and fuzzer that compare our own replay reader with libpcap.
#pragma once

#include <memory>

#include <pcap/pcap.h>

namespace dnsmon::detail {

struct PcapCloser {
  void operator()(pcap_t* p) const noexcept { pcap_close(p); }
};

using PcapHandle = std::unique_ptr<pcap_t, PcapCloser>;

}  // namespace dnsmon::detail
