// pcap_read_baseline: the floor for reading a capture. Reads every record of the given files with
// pcap_next_ex and touches each packet (its first and last captured byte), nothing more. Whatever
// dnsmon costs per packet above this line is decoding, queuing and counting.
//
//   pcap_read_baseline FILE...   prints "packets bytes checksum" on stdout
//
// tools/bench.sh runs it next to dnsmon and the peer tools (docs/performance.md).
#include <cstdint>
#include <cstdio>

#include <pcap/pcap.h>

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: pcap_read_baseline FILE...\n");
    return 2;
  }
  std::uint64_t packets = 0;
  std::uint64_t bytes = 0;
  std::uint64_t touch = 0;  // printed, so the reads cannot be optimised away
  for (int i = 1; i < argc; ++i) {
    char err[PCAP_ERRBUF_SIZE] = {};
    pcap_t* p = pcap_open_offline(argv[i], err);
    if (p == nullptr) {
      std::fprintf(stderr, "pcap_read_baseline: %s: %s\n", argv[i], err);
      return 1;
    }
    pcap_pkthdr* h = nullptr;
    const u_char* data = nullptr;
    int rc = 0;
    while ((rc = pcap_next_ex(p, &h, &data)) == 1) {
      ++packets;
      bytes += h->caplen;
      if (h->caplen != 0) {
        touch += data[0] ^ data[h->caplen - 1];
      }
    }
    if (rc == PCAP_ERROR) {
      std::fprintf(stderr, "pcap_read_baseline: %s: %s\n", argv[i], pcap_geterr(p));
      pcap_close(p);
      return 1;
    }
    pcap_close(p);
  }
  std::printf("%llu %llu %llu\n", static_cast<unsigned long long>(packets),
              static_cast<unsigned long long>(bytes), static_cast<unsigned long long>(touch));
  return 0;
}
