#include "dnsmon/capture.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <iterator>
#include <linux/filter.h>
#include <linux/if_packet.h>
#include <optional>
#include <sys/socket.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

#include <pcap/pcap.h>

#include "dnsmon/capture/detail/pcap_file.hpp"
#include "dnsmon/capture/detail/pcap_handle.hpp"
#include "dnsmon/common/errno_text.hpp"
#include "dnsmon/common/hash.hpp"
#include "dnsmon/common/link.hpp"

#include "dispatch.hpp"

namespace dnsmon {
namespace detail {

// The end of a batch of input: wakes every worker that sleeps with frames waiting, or (inline)
// lets the consumer take them.
void flush_rings(DispatchContext& ctx) {
  if (ctx.consume != nullptr) {
    (*ctx.consume)();
    ctx.pending = 0;
    return;
  }
  for (FrameRing* ring : ctx.rings) {
    ring->ring_consumer(true);
  }
}

// One frame, from libpcap or from PcapReader: into its worker's ring.
void deliver(DispatchContext& ctx, std::int64_t ts_ns, std::uint32_t wire_len,
             std::span<const std::byte> data) {
  ctx.stats->received.add();
  ctx.stats->bytes.add(wire_len);
  FrameHeader header;
  header.ts_ns = ts_ns;
  header.wire_len = wire_len;
  header.link_type = ctx.link_type;
  header.source = ctx.index;
  FrameRing* ring = ctx.rings[0];
  if (ctx.rings.size() > 1) {
    ring = ctx.rings[flow_hash(ctx.link_type, data) % ctx.rings.size()];
  }
  if (wire_len > std::min<std::size_t>(data.size(), ring->slot_bytes())) {
    ctx.stats->snaplen_cut.add();
  }
  if (!ctx.live && ctx.replay_speed > 0) {
    if (ctx.first_ts_ns < 0) {
      ctx.first_ts_ns = header.ts_ns;
      ctx.replay_start = std::chrono::steady_clock::now();
    }
    // In double, clamped: packet times of a damaged capture can be anything, and an int64
    // difference or a cast of an out-of-range double would be undefined behaviour.
    constexpr double kMaxWaitNs = 1e17;  // three years
    const double wait_ns =
        (static_cast<double>(header.ts_ns) - static_cast<double>(ctx.first_ts_ns)) /
        ctx.replay_speed;
    const auto offset =
        std::chrono::nanoseconds(static_cast<std::int64_t>(std::clamp(wait_ns, 0.0, kMaxWaitNs)));
    const auto due = ctx.replay_start + offset;
    if (std::chrono::steady_clock::now() < due) {
      detail::flush_rings(ctx);  // the worker sees what came before the pause
    }
    while (std::chrono::steady_clock::now() < due && !ctx.stop->stop_requested()) {
      std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(
          due - std::chrono::steady_clock::now(), std::chrono::milliseconds(50)));
    }
  }
  if (ctx.consume != nullptr) {
    // Inline: a full ring is emptied here, and an empty ring takes any frame (its storage holds
    // two of the largest).
    if (!ring->try_push(header, data)) {
      detail::flush_rings(ctx);
      if (!ring->try_push(header, data)) {
        ctx.stats->ring_dropped.add();  // not reached: the consumer must empty the ring
        return;
      }
    }
    if (++ctx.pending >= Source::kInlineBatch) {
      detail::flush_rings(ctx);
    }
    return;
  }
  if (ctx.drop_when_full) {
    if (!ring->try_push(header, data)) {
      ctx.stats->ring_dropped.add();
      ring->ring_consumer(true);
      return;
    }
    ring->ring_consumer(false);
    return;
  }
  // Live capture and replays wait for room rather than lose frames: the thread sleeps until the
  // worker has emptied half the ring (the timeout only bounds how long a stop request waits).
  // Live, the kernel buffer is the larger queue meanwhile: what it cannot hold it drops and
  // counts (ps_drop).
  while (!ring->try_push(header, data)) {
    if (ctx.stop->stop_requested()) {
      ctx.stats->ring_dropped.add();
      return;
    }
    ring->ring_consumer(true);
    ring->wait_for_room(data.size(), std::chrono::milliseconds(10));
  }
  ring->ring_consumer(false);
}

}  // namespace detail

namespace {

using detail::DispatchContext;
using detail::PcapHandle;

// A classic pcap file header; PcapReader needs it whole to accept a file.
constexpr std::size_t kPcapFileHeaderBytes = 24;

void on_frame(u_char* user, const pcap_pkthdr* h, const u_char* bytes) {
  auto& ctx = *reinterpret_cast<DispatchContext*>(user);  // NOLINT: libpcap's callback contract
  // Files are opened with nanosecond precision, and live handles ask for it, so tv_usec holds
  // nanoseconds here.
  // In unsigned arithmetic: a damaged pcapng file can hold a time past 2262, which then wraps
  // instead of overflowing (undefined behaviour, found by tests/fuzz/pcap_file_fuzz).
  const std::uint64_t ts_ns = static_cast<std::uint64_t>(h->ts.tv_sec) * 1'000'000'000U +
                              static_cast<std::uint64_t>(h->ts.tv_usec);
  detail::deliver(ctx, static_cast<std::int64_t>(ts_ns), h->len,
                  std::span<const std::byte>(reinterpret_cast<const std::byte*>(bytes),  // NOLINT
                                             h->caplen));
}

// Checks a capture file before any thread starts: libpcap reads its header (and compiles the
// filter) through a duplicate of fd, which is then back at the file's start. Throws CaptureError.
void check_offline_file(int fd, const std::string& path, const std::string& filter);

// Why an input could not be opened, with what to do when descriptors ran out.
CaptureError open_error(const std::string& path, int e) {
  // NOLINTNEXTLINE(modernize-return-braced-init-list): the inherited constructor is explicit
  return CaptureError("cannot read capture file " + path + ": " + detail::errno_text(e) +
                      (e == EMFILE || e == ENFILE
                           ? " (every input stays open from the start: raise the limit on open "
                             "files, ulimit -n, or replay fewer files at once)"
                           : ""));
}

void apply_filter(pcap_t* p, const std::string& filter, const std::string& what) {
  if (filter.empty()) {
    return;
  }
  bpf_program program{};
  if (pcap_compile(p, &program, filter.c_str(), 1, PCAP_NETMASK_UNKNOWN) != 0) {
    throw CaptureError("invalid capture filter for " + what + " (\"" + filter +
                       "\"): " + pcap_geterr(p));
  }
  const int rc = pcap_setfilter(p, &program);
  pcap_freecode(&program);
  if (rc != 0) {
    throw CaptureError("cannot set the capture filter on " + what + ": " + pcap_geterr(p));
  }
}

void check_offline_file(int fd, const std::string& path, const std::string& filter) {
  const int copy = ::dup(fd);
  std::FILE* f = copy < 0 ? nullptr : ::fdopen(copy, "rb");
  if (f == nullptr) {
    const int e = errno;
    if (copy >= 0) {
      ::close(copy);
    }
    throw open_error(path, e);
  }
  std::array<char, PCAP_ERRBUF_SIZE> err{};
  const PcapHandle p{
      pcap_fopen_offline_with_tstamp_precision(f, PCAP_TSTAMP_PRECISION_NANO, err.data())};
  if (!p) {
    std::fclose(f);
    throw CaptureError("cannot read capture file " + path + ": " + err.data());
  }
  apply_filter(p.get(), filter, path);
  if (::lseek(fd, 0, SEEK_SET) != 0) {
    throw CaptureError("cannot read capture file " + path + ": " + detail::errno_text(errno));
  }
}

}  // namespace

struct PacketSource::Impl {
  // A file to replay, opened once by open_files() and read from that descriptor.
  struct Input {
    std::string path;
    std::optional<detail::ChunkedFile> stream;
  };

  PcapHandle handle;  // live
  std::vector<Input> inputs;
  std::span<const std::byte> memory;
};

namespace {

// One fragment of a 3,000-byte DNS response from 192.0.2.53 (2001:db8::53) port 53, in an Ethernet
// frame with `vlan_tags` 802.1Q tags. `first`: offset 0 with more to come and the UDP header;
// otherwise a later, last fragment whose payload starts with no header at all.
std::vector<unsigned char> fragment_probe(bool ipv6, bool first, int vlan_tags) {
  std::vector<unsigned char> f = {0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1};
  for (int i = 0; i < vlan_tags; ++i) {
    f.insert(f.end(), {0x81, 0x00, 0x00, 0x0a});
  }
  const unsigned offset_units = first ? 0 : 185;  // 1,480 bytes in
  std::vector<unsigned char> payload(first ? 1480 : 1528, 0x5a);
  if (first) {  // UDP header: 53 -> 40000, length of the whole datagram
    const unsigned char udp[8] = {0, 53, 0x9c, 0x40, 0x0b, 0xc0, 0, 0};
    std::copy(std::begin(udp), std::end(udp), payload.begin());
  }
  if (!ipv6) {
    f.insert(f.end(), {0x08, 0x00});
    const unsigned total = 20 + static_cast<unsigned>(payload.size());
    const unsigned flags_offset = (first ? 0x2000U : 0U) | offset_units;
    f.insert(f.end(), {0x45,
                       0,
                       static_cast<unsigned char>(total >> 8U),
                       static_cast<unsigned char>(total),
                       0x12,
                       0x34,
                       static_cast<unsigned char>(flags_offset >> 8U),
                       static_cast<unsigned char>(flags_offset),
                       64,
                       17,
                       0,
                       0,
                       192,
                       0,
                       2,
                       53,
                       192,
                       0,
                       2,
                       1});
  } else {
    f.insert(f.end(), {0x86, 0xdd});
    const unsigned length = 8 + static_cast<unsigned>(payload.size());
    f.insert(f.end(), {0x60, 0, 0, 0, static_cast<unsigned char>(length >> 8U),
                       static_cast<unsigned char>(length), 44, 64});
    const std::array<unsigned char, 16> src = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0,
                                               0,    0,    0,    0,    0, 0, 0, 0x53};
    std::array<unsigned char, 16> dst = src;
    dst[15] = 1;
    f.insert(f.end(), src.begin(), src.end());
    f.insert(f.end(), dst.begin(), dst.end());
    const unsigned offset_flags = (offset_units << 3U) | (first ? 1U : 0U);
    f.insert(f.end(), {17, 0, static_cast<unsigned char>(offset_flags >> 8U),
                       static_cast<unsigned char>(offset_flags), 0, 0, 0x56, 0x78});
  }
  f.insert(f.end(), payload.begin(), payload.end());
  return f;
}

}  // namespace

std::vector<std::string> fragment_probes_rejected(const std::string& filter) {
  const PcapHandle dead{pcap_open_dead(DLT_EN10MB, 65535)};
  if (!dead) {
    throw CaptureError("cannot check the capture filter: libpcap could not open a dead handle");
  }
  bpf_program program{};
  if (pcap_compile(dead.get(), &program, filter.c_str(), 1, PCAP_NETMASK_UNKNOWN) != 0) {
    throw CaptureError("invalid capture filter (\"" + filter + "\"): " + pcap_geterr(dead.get()));
  }
  std::vector<std::string> rejected;
  for (const int tags : {0, 1}) {
    for (const bool ipv6 : {false, true}) {
      for (const bool first : {true, false}) {
        const auto frame = fragment_probe(ipv6, first, tags);
        pcap_pkthdr header{};
        header.caplen = static_cast<bpf_u_int32>(frame.size());
        header.len = header.caplen;
        if (pcap_offline_filter(&program, &header, frame.data()) == 0) {
          rejected.push_back(std::string(ipv6 ? "IPv6" : "IPv4") +
                             (first ? " first fragment" : " later fragment") +
                             (tags > 0 ? " in an 802.1Q tag" : ""));
        }
      }
    }
  }
  pcap_freecode(&program);
  return rejected;
}

std::size_t flow_hash(std::uint16_t link_type, std::span<const std::byte> frame) noexcept {
  if (link_type == record::kLinkType) {  // a message record: the same hash of its addresses
    record::Header h;
    std::span<const std::byte> message;
    if (!record::decode(frame, h, message)) {
      return 0;
    }
    std::uint64_t x = 0;
    for (std::size_t i = 0; i < (h.family == 4 ? 4U : 16U); ++i) {
      x = x * 31 + (h.src[i] ^ h.dst[i]);
    }
    return static_cast<std::size_t>(detail::mix64(x));
  }
  // The parser's own link-layer walk: the hash reads the IP header that the parser reads.
  const link::Packet packet = link::walk(link_type, frame);
  if (packet.status != link::Status::Ok) {
    return 0;
  }
  const std::size_t addr = packet.version == 4 ? 12 : 8;
  const std::size_t len = packet.version == 4 ? 4 : 16;
  if (packet.bytes.size() < addr + 2 * len) {
    return 0;
  }
  // XOR of the two addresses is the same in both directions; then mix64(). Unkeyed on purpose: a
  // replay gives every worker the same frames in every run, and live capture's kernel hash is a
  // fixed one too (fanout_program()).
  std::uint64_t x = 0;
  for (std::size_t i = 0; i < len; ++i) {
    const auto b =
        std::to_integer<std::uint64_t>(packet.bytes[addr + i] ^ packet.bytes[addr + len + i]);
    x = x * 31 + b;
  }
  return static_cast<std::size_t>(detail::mix64(x));
}

PacketSource::PacketSource(std::string name, bool live, CaptureOptions options, std::uint16_t index)
    : Source(std::move(name), live, index),
      options_(std::move(options)),
      impl_(std::make_unique<Impl>()) {
}

PacketSource::~PacketSource() = default;

namespace {

PcapHandle open_live_handle(const std::string& interface, const CaptureOptions& options) {
  std::array<char, PCAP_ERRBUF_SIZE> err{};
  PcapHandle p{pcap_create(interface.c_str(), err.data())};
  if (!p) {
    throw CaptureError("cannot open interface " + interface + ": " + err.data());
  }
  pcap_set_snaplen(p.get(), static_cast<int>(options.snaplen));
  pcap_set_promisc(p.get(), options.promiscuous ? 1 : 0);
  pcap_set_timeout(p.get(), static_cast<int>(options.timeout_ms));
  pcap_set_buffer_size(p.get(), static_cast<int>(options.buffer_bytes));
  pcap_set_immediate_mode(p.get(), 0);  // immediate mode lost a third of the frames at 150k pps
  pcap_set_tstamp_precision(p.get(), PCAP_TSTAMP_PRECISION_NANO);
  const int rc = pcap_activate(p.get());
  if (rc < 0) {
    std::string why = pcap_geterr(p.get());
    if (rc == PCAP_ERROR_PERM_DENIED) {
      why += " (live capture needs root or CAP_NET_RAW)";
    } else if (rc == PCAP_ERROR_NO_SUCH_DEVICE) {
      why += " (no such interface)";
    }
    throw CaptureError("cannot capture on " + interface + ": " + why);
  }
  // Nanosecond precision is not available everywhere; a handle that refused it reports
  // microseconds, which on_frame expects as nanoseconds: fall back to scaling there.
  if (pcap_get_tstamp_precision(p.get()) != PCAP_TSTAMP_PRECISION_NANO) {
    throw CaptureError("cannot capture on " + interface +
                       ": the kernel does not offer nanosecond timestamps");
  }
  // The VLAN clauses of the default filter only compile on Ethernet.
  std::string filter = options.bpf_filter;
  if (filter.empty()) {
    filter = pcap_datalink(p.get()) == DLT_EN10MB ? std::string(kDefaultLiveFilter)
                                                  : std::string(kDefaultLiveFilterUntagged);
  }
  apply_filter(p.get(), filter, interface);
  return p;
}

// The fanout program (PACKET_FANOUT_CBPF). It reads the packet relative to its network header
// (SKF_NET_OFF): frames received there start at it, but frames sent from this host start at
// their link-layer header. Received, the protocol comes from the socket buffer's metadata: with
// VLAN offload that is the inner protocol already and the tag is metadata; without, 0x8100 (or
// 0x88a8, 0x9100) and one or two tags come first. Sent, the network header is the IP header
// itself (a tag sent in-band is in the link-layer header), whose version nibble tells IPv4 from
// IPv6. The program returns a hash of the IP address pair that both directions share, and that
// IP fragments share with their datagram (ports never enter it): A = src ^ dst (IPv4 addresses,
// or the last 32-bit words of IPv6's), A *= 0x9E3779B1, A >>= 16. The kernel takes it modulo the
// group's members. What is not IP goes to member 0.
std::vector<sock_filter> fanout_program() {
  constexpr std::uint16_t kLdW = BPF_LD | BPF_W | BPF_ABS;
  constexpr std::uint16_t kLdH = BPF_LD | BPF_H | BPF_ABS;
  constexpr std::uint16_t kLdB = BPF_LD | BPF_B | BPF_ABS;
  constexpr std::uint16_t kLdInd = BPF_LD | BPF_W | BPF_IND;
  // BPF_W and BPF_IMM are both 0, but an opcode names every one of its fields.
  // NOLINTNEXTLINE(misc-redundant-expression): see above
  constexpr std::uint16_t kLdX = BPF_LDX | BPF_W | BPF_IMM;
  constexpr std::uint16_t kJeq = BPF_JMP | BPF_JEQ | BPF_K;
  constexpr auto kAnc = [](int field) { return static_cast<std::uint32_t>(SKF_AD_OFF + field); };
  constexpr auto kNet = [](int at) { return static_cast<std::uint32_t>(SKF_NET_OFF + at); };
  // Jump offsets count from the next instruction; the targets are the indices in the comments.
  return {
      /* 0 */ BPF_STMT(kLdW, kAnc(SKF_AD_PKTTYPE)),
      /* 1 */ BPF_JUMP(kJeq, PACKET_OUTGOING, 0, 6),  // received -> 8
      /* 2 */ BPF_STMT(kLdX, 0),                      // X: where the IP header starts
      /* 3 */ BPF_STMT(kLdB, kNet(0)),
      /* 4 */ BPF_STMT(BPF_ALU | BPF_RSH | BPF_K, 4),
      /* 5 */ BPF_JUMP(kJeq, 4, 21, 0),  // -> 27
      /* 6 */ BPF_JUMP(kJeq, 6, 24, 0),  // -> 31
      /* 7 */ BPF_STMT(BPF_RET | BPF_K, 0),
      /* 8 */ BPF_STMT(kLdW, kAnc(SKF_AD_PROTOCOL)),
      /* 9 */ BPF_STMT(kLdX, 0),
      /* 10 */ BPF_JUMP(kJeq, link::kEtherIpv4, 16, 0),    // -> 27
      /* 11 */ BPF_JUMP(kJeq, link::kEtherIpv6, 19, 0),    // -> 31
      /* 12 */ BPF_JUMP(kJeq, link::kEtherVlan, 3, 0),     // -> 16
      /* 13 */ BPF_JUMP(kJeq, link::kEtherQinQ, 2, 0),     // -> 16
      /* 14 */ BPF_JUMP(kJeq, link::kEtherQinQOld, 1, 0),  // -> 16
      /* 15 */ BPF_STMT(BPF_RET | BPF_K, 0),
      /* 16 */ BPF_STMT(kLdH, kNet(2)),  // a tag in the data: its TCI, then the next type
      /* 17 */ BPF_STMT(kLdX, 4),
      /* 18 */ BPF_JUMP(kJeq, link::kEtherIpv4, 8, 0),   // -> 27
      /* 19 */ BPF_JUMP(kJeq, link::kEtherIpv6, 11, 0),  // -> 31
      /* 20 */ BPF_JUMP(kJeq, link::kEtherVlan, 1, 0),   // -> 22
      /* 21 */ BPF_STMT(BPF_RET | BPF_K, 0),
      /* 22 */ BPF_STMT(kLdH, kNet(6)),  // a second tag
      /* 23 */ BPF_STMT(kLdX, 8),
      /* 24 */ BPF_JUMP(kJeq, link::kEtherIpv4, 2, 0),  // -> 27
      /* 25 */ BPF_JUMP(kJeq, link::kEtherIpv6, 5, 0),  // -> 31
      /* 26 */ BPF_STMT(BPF_RET | BPF_K, 0),
      /* 27 */ BPF_STMT(kLdInd, kNet(12)),  // IPv4 source
      /* 28 */ BPF_STMT(BPF_ST, 0),
      /* 29 */ BPF_STMT(kLdInd, kNet(16)),           // IPv4 destination
      /* 30 */ BPF_JUMP(BPF_JMP | BPF_JA, 3, 0, 0),  // -> 34
      /* 31 */ BPF_STMT(kLdInd, kNet(20)),           // the last word of the IPv6 source
      /* 32 */ BPF_STMT(BPF_ST, 0),
      /* 33 */ BPF_STMT(kLdInd, kNet(36)),  // the last word of the IPv6 destination
      /* 34 */ BPF_STMT(BPF_LDX | BPF_W | BPF_MEM, 0),
      /* 35 */ BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
      /* 36 */ BPF_STMT(BPF_ALU | BPF_MUL | BPF_K, 0x9E3779B1U),
      /* 37 */ BPF_STMT(BPF_ALU | BPF_RSH | BPF_K, 16),
      /* 38 */ BPF_STMT(BPF_RET | BPF_A, 0),
  };
}

// Puts a live handle's socket into fanout group `id` (0: a new group with an id that the kernel
// picks, unique on this host) and sets the group's program; returns the group's id.
std::uint16_t join_fanout(pcap_t* p, std::uint16_t id, const std::string& interface) {
  const int fd = pcap_fileno(p);
  std::uint32_t arg = id | (std::uint32_t{PACKET_FANOUT_CBPF} << 16U);
  if (id == 0) {
    arg |= std::uint32_t{PACKET_FANOUT_FLAG_UNIQUEID} << 16U;
  }
  if (::setsockopt(fd, SOL_PACKET, PACKET_FANOUT, &arg, sizeof arg) != 0) {
    throw CaptureError("cannot capture on " + interface +
                       " with several workers: PACKET_FANOUT: " + detail::errno_text(errno));
  }
  std::uint32_t got = 0;
  socklen_t len = sizeof got;
  if (::getsockopt(fd, SOL_PACKET, PACKET_FANOUT, &got, &len) != 0) {
    throw CaptureError("cannot capture on " + interface +
                       " with several workers: PACKET_FANOUT: " + detail::errno_text(errno));
  }
  auto program = fanout_program();
  sock_fprog fprog{};
  fprog.len = static_cast<unsigned short>(program.size());
  fprog.filter = program.data();
  if (::setsockopt(fd, SOL_PACKET, PACKET_FANOUT_DATA, &fprog, sizeof fprog) != 0) {
    throw CaptureError("cannot capture on " + interface +
                       " with several workers: PACKET_FANOUT_DATA: " + detail::errno_text(errno));
  }
  const auto joined = static_cast<std::uint16_t>(got & 0xFFFFU);
  if (id != 0 && joined != id) {  // not the group of the first member: it would see every frame
    throw CaptureError("cannot capture on " + interface +
                       " with several workers: a member joined fanout group " +
                       std::to_string(joined) + " instead of " + std::to_string(id));
  }
  return joined;
}

}  // namespace

std::unique_ptr<PacketSource> PacketSource::open_live(const std::string& interface,
                                                      const CaptureOptions& options,
                                                      std::uint16_t index) {
  std::unique_ptr<PacketSource> s(new PacketSource(interface, true, options, index));
  s->impl_->handle = open_live_handle(interface, options);
  return s;
}

std::vector<std::unique_ptr<PacketSource>> PacketSource::open_live_group(
    const std::string& interface, const CaptureOptions& options, std::uint16_t first_index,
    std::size_t members) {
  std::vector<std::unique_ptr<PacketSource>> out;
  if (members <= 1) {
    out.push_back(open_live(interface, options, first_index));
    return out;
  }
  std::uint16_t group = 0;
  for (std::size_t k = 0; k < members; ++k) {
    auto s = open_live(interface, options, static_cast<std::uint16_t>(first_index + k));
    group = join_fanout(s->impl_->handle.get(), group, interface);
    out.push_back(std::move(s));
  }
  return out;
}

std::unique_ptr<PacketSource> PacketSource::open_files(const std::vector<std::string>& paths,
                                                       const CaptureOptions& options,
                                                       std::uint16_t index) {
  std::unique_ptr<PacketSource> s(new PacketSource("offline", false, options, index));
  bool standard_input = false;
  for (const auto& path : paths) {
    Impl::Input input{.path = path, .stream = std::nullopt};
    if (path == "-") {
      if (standard_input) {
        throw CaptureError("-: standard input can be read only once");
      }
      standard_input = true;
      input.stream.emplace(STDIN_FILENO, false);
      s->impl_->inputs.push_back(std::move(input));
      continue;
    }
    struct stat st = {};
    if (::stat(path.c_str(), &st) != 0) {
      throw CaptureError("cannot read capture file " + path + ": " + detail::errno_text(errno));
    }
    if (S_ISDIR(st.st_mode)) {
      throw CaptureError("cannot read capture file " + path + ": " + detail::errno_text(EISDIR));
    }
    // Every input is opened once, here, and read from that descriptor by run(): a FIFO or a pipe
    // (`<(...)`, /dev/stdin) loses none of its bytes to a check, and a file replaced after the
    // start is not read in its new version. A FIFO is opened without blocking (without a writer,
    // open() would wait for one); its header is read by run().
    const int flags =
        S_ISREG(st.st_mode) ? O_RDONLY | O_CLOEXEC : O_RDONLY | O_NONBLOCK | O_CLOEXEC;
    const int fd = ::open(path.c_str(), flags);  // NOLINT: varargs
    if (fd < 0) {
      throw open_error(path, errno);
    }
    input.stream.emplace(fd, true);
    if (S_ISREG(st.st_mode)) {
      check_offline_file(fd, path, options.bpf_filter);  // fail early, before any thread starts
    }
    s->impl_->inputs.push_back(std::move(input));
  }
  std::uint64_t total = 0;
  for (auto& input : s->impl_->inputs) {
    if (!input.stream->regular()) {
      total = 0;  // a stream's size is not known: no percentage
      break;
    }
    total += input.stream->size_bytes();
  }
  s->stats_.input_size_bytes = total;
  return s;
}

std::unique_ptr<PacketSource> PacketSource::open_memory(std::span<const std::byte> capture,
                                                        std::string name,
                                                        const CaptureOptions& options,
                                                        std::uint16_t index) {
  std::unique_ptr<PacketSource> s(new PacketSource(std::move(name), false, options, index));
  s->impl_->memory = capture;
  return s;
}

std::string PacketSource::run_inline(std::stop_token stop, std::span<FrameRing* const> rings,
                                     const std::function<void()>& consume) {
  if (live_) {
    throw std::logic_error("run_inline() is for replays: live capture needs its own thread");
  }
  return run_with(std::move(stop), rings, &consume);
}

std::string PacketSource::run(std::stop_token stop, std::span<FrameRing* const> rings) {
  return run_with(std::move(stop), rings, nullptr);
}

std::string PacketSource::run_with(std::stop_token stop, std::span<FrameRing* const> rings,
                                   const std::function<void()>* consume) {
  DispatchContext ctx;
  ctx.consume = consume;
  ctx.rings = rings;
  ctx.stats = &stats_;
  ctx.stop = &stop;
  ctx.live = live_;
  ctx.index = index_;
  ctx.replay_speed = options_.replay_speed;
  auto* user = reinterpret_cast<u_char*>(&ctx);  // NOLINT: libpcap's callback contract

  // Reads one handle to its end (or an error, or stop).
  auto drain = [&](pcap_t* p) -> std::string {
    ctx.link_type = static_cast<std::uint16_t>(pcap_datalink(p));
    std::stop_callback wake(stop, [p] { pcap_breakloop(p); });
    stats_.up.store(true, std::memory_order_relaxed);
    while (!stop.stop_requested()) {
      const int n = pcap_dispatch(p, -1, on_frame, user);
      detail::flush_rings(ctx);
      if (live_ && n == 0) {
        // A read timeout without a frame: the kernel holds nothing for this handle now.
        const std::int64_t now_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count();
        for (FrameRing* ring : rings) {
          ring->set_quiet_at(now_ns);
        }
      }
      if (live_) {
        pcap_stat ps{};
        if (pcap_stats(p, &ps) == 0) {
          stats_.kernel_dropped.set(ps.ps_drop);
          stats_.if_dropped.set(ps.ps_ifdrop);
        }
      }
      if (n == PCAP_ERROR_BREAK) {
        break;
      }
      if (n == PCAP_ERROR) {
        return pcap_geterr(p);
      }
      if (n == 0 && !live_) {
        break;  // end of file
      }
    }
    return {};
  };

  // Reads a classic pcap file in place (pcap_file.hpp): from a ChunkedFile's buffer, 512 KiB
  // at a time (file), or from memory (the demo; file is null).
  auto drain_chunked = [&](detail::PcapReader& reader, detail::ChunkedFile* file) -> std::string {
    ctx.link_type = static_cast<std::uint16_t>(reader.link_type());
    stats_.up.store(true, std::memory_order_relaxed);
    reader.more_follows(file != nullptr && !file->at_end());
    detail::PcapReader::Record record;
    std::string error;
    while (!stop.stop_requested()) {
      const auto status = reader.next(record);
      if (status == detail::PcapReader::Status::Frame) {
        detail::deliver(ctx, record.ts_ns, record.len, record.data);
        continue;
      }
      if (status == detail::PcapReader::Status::NeedMore) {  // only with a file
        if (file == nullptr || !file->refill(reader.consumed(), error)) {
          break;
        }
        reader.rebase(file->bytes());
        reader.more_follows(!file->at_end());
        continue;
      }
      if (status == detail::PcapReader::Status::Error) {
        error = reader.error();
      }
      break;
    }
    detail::flush_rings(ctx);
    return error;
  };
  // One input, from its first bytes: PcapReader reads a classic pcap file in place; libpcap reads
  // what PcapReader declines (pcapng, rare link types and layouts) and every input when a filter
  // is set, through file.stream(), which hands it the bytes already read first. A stop request
  // ends any wait for a stream's bytes: the input then ends without an error.
  auto read_input = [&](detail::ChunkedFile& file, const std::string& path) -> std::string {
    file.watch(&stop, [&ctx] { detail::flush_rings(ctx); });
    file.count_reads(&stats_.input_read_bytes);
    std::string error;
    if (!file.fill(kPcapFileHeaderBytes, error)) {
      return error;
    }
    std::optional<detail::PcapReader> reader;
    if (options_.bpf_filter.empty()) {
      reader = detail::PcapReader::open(file.bytes());
    }
    if (reader) {
      error = drain_chunked(*reader, &file);
    } else if (!file.stopped()) {
      std::FILE* f = file.stream();
      if (f == nullptr) {
        return std::string("cannot read it: ") + detail::errno_text(errno);
      }
      std::array<char, PCAP_ERRBUF_SIZE> err{};
      PcapHandle p{
          pcap_fopen_offline_with_tstamp_precision(f, PCAP_TSTAMP_PRECISION_NANO, err.data())};
      if (!p) {
        std::fclose(f);
        error = err.data();
      } else {
        apply_filter(p.get(), options_.bpf_filter, path);
        error = drain(p.get());
      }
    }
    return file.stopped() ? std::string() : error;
  };

  std::string error;
  if (live_) {
    error = drain(impl_->handle.get());
  } else if (!impl_->inputs.empty()) {
    for (auto& input : impl_->inputs) {
      if (stop.stop_requested()) {
        break;
      }
      try {
        error = read_input(*input.stream, input.path);
        input.stream.reset();  // closes it
      } catch (const CaptureError& e) {
        error = e.what();
      }
      if (!error.empty()) {
        error.insert(0, input.path + ": ");
        break;
      }
    }
  } else if (auto reader = detail::PcapReader::open(impl_->memory)) {
    error = drain_chunked(*reader, nullptr);  // the demo has no filter to apply
  } else {
    // fmemopen takes a non-const buffer but only reads it in "rb" mode.
    std::FILE* f = fmemopen(const_cast<std::byte*>(impl_->memory.data()),  // NOLINT: see above
                            impl_->memory.size(), "rb");
    std::array<char, PCAP_ERRBUF_SIZE> err{};
    PcapHandle p{f != nullptr ? pcap_fopen_offline_with_tstamp_precision(
                                    f, PCAP_TSTAMP_PRECISION_NANO, err.data())
                              : nullptr};
    if (!p) {
      if (f != nullptr) {
        std::fclose(f);
      }
      error = name_ + ": " + err.data();
    } else {
      error = drain(p.get());
    }
  }
  stats_.up.store(false, std::memory_order_relaxed);
  return error;
}

std::string pcap_version() {
  return pcap_lib_version();
}

}  // namespace dnsmon
