// Capture sources behind one interface (Source): live interfaces and pcap/pcapng files, read with
// libpcap, except classic pcap files (and the embedded demo) without a filter, which are read
// 512 KiB at a time and their records in place (capture/src/pcap_file.hpp: the same frames and
// errors as libpcap, without two stdio reads and a copy per record); and DNS messages already
// decoded from their transport (MessageSource), carried as records of dnsmon's own link type.
//
// A source runs its loop on the calling thread (the daemon gives each source its own thread). Each
// frame is copied into a worker's ring, chosen by a symmetric hash of the IP addresses so
// that both directions of a conversation, and every fragment of a datagram, reach the same worker.
// Live, each handle feeds one worker: with several workers, one handle per worker on each
// interface, the members of a PACKET_FANOUT group whose classic-BPF program makes the same choice
// by the address pair. No source drops a frame for want of room: when its ring is full it sleeps
// until the worker has emptied half of it (a live handle's kernel buffer queues meanwhile, and
// drops and counts what it cannot hold). A stop request ends the wait within 10 ms.
//
// Thread-safety: run() on one thread; stats() and up() from any thread; request_stop() from any.
// Allocation: none per frame (each frame is copied once, into the ring).
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "dnsmon/capture/dnstap.hpp"
#include "dnsmon/common/counter.hpp"
#include "dnsmon/common/message_record.hpp"
#include "dnsmon/ring.hpp"

namespace dnsmon {

// What the live default admits: DNS on port 53 over UDP or TCP, and every IPv4 or IPv6 fragment
// of a UDP or TCP datagram. Fragments after the first carry no ports, and an IPv6 fragment's
// transport header follows the fragment header, where `udp port 53` does not look; so every
// fragment is taken and reassembly decides (a datagram that turns out not to be DNS is counted as
// not_dns). The IPv6 test sees a fragment header that follows the fixed header directly, as
// senders put it. The same again inside one or two 802.1Q/802.1ad tags. libpcap moves the offsets
// of everything after a `vlan` keyword by one tag for the rest of the expression, parentheses
// notwithstanding, so the two-tag test nests inside the one-tag test.
//
// The same again inside PPPoE sessions (untagged, one or two tags) and MPLS label stacks (one to
// three labels, untagged or in one tag; IP after the bottom-of-stack label, told by its version
// nibble). libpcap's `pppoes` and `mpls` keywords shift offsets as `vlan` does, so no two of them
// can stand side by side in one expression: these clauses read the frame at absolute offsets
// (`ether[]`, which no keyword moves), with the IPv4 header length taken from the packet. Where the
// kernel has taken the outer 802.1Q tag off (Linux), the filter sees the frame without it and the
// clause for one tag fewer matches. Deeper encapsulations (MPLS pseudowires, GTP-U, L2TP, VXLAN,
// Geneve, GRE) need a filter of their own (README, "Capture filters").
inline constexpr std::string_view kDefaultLiveFilter =
    "(udp port 53 or tcp port 53 or (ip[6:2] & 0x3fff != 0 and (ip[9] = 17 or ip[9] = 6)) or "
    "(ip6[6] = 44 and (ip6[40] = 17 or ip6[40] = 6))) or "
    "(vlan and ("
    "(udp port 53 or tcp port 53 or (ip[6:2] & 0x3fff != 0 and (ip[9] = 17 or ip[9] = 6)) or "
    "(ip6[6] = 44 and (ip6[40] = 17 or ip6[40] = 6))) or "
    "(vlan and "
    "(udp port 53 or tcp port 53 or (ip[6:2] & 0x3fff != 0 and (ip[9] = 17 or ip[9] = 6)) or "
    "(ip6[6] = 44 and (ip6[40] = 17 or ip6[40] = 6))))))"
    // PPPoE session, untagged.
    " or (ether[12:2] = 0x8864 and (ether[20:2] = 0x21 or ether[20:2] = 0x57) and ((ether[22] & "
    "0xf0 = 0x40 and (ether[31] = 17 or ether[31] = 6) and (ether[28:2] & 0x3fff != 0 or ether[22"
    " + ((ether[22] & 0xf) << 2):2] = 53 or ether[24 + ((ether[22] & 0xf) << 2):2] = 53)) or "
    "(ether[22] & 0xf0 = 0x60 and ((ether[28] = 17 or ether[28] = 6) and (ether[62:2] = 53 or "
    "ether[64:2] = 53) or (ether[28] = 44 and (ether[62] = 17 or ether[62] = 6))))))"
    // PPPoE session, in one tag.
    " or ((ether[12:2] = 0x8100 or ether[12:2] = 0x88a8 or ether[12:2] = 0x9100) and ether[16:2] "
    "= 0x8864 and (ether[24:2] = 0x21 or ether[24:2] = 0x57) and ((ether[26] & 0xf0 = 0x40 and "
    "(ether[35] = 17 or ether[35] = 6) and (ether[32:2] & 0x3fff != 0 or ether[26 + ((ether[26] &"
    " 0xf) << 2):2] = 53 or ether[28 + ((ether[26] & 0xf) << 2):2] = 53)) or (ether[26] & 0xf0 = "
    "0x60 and ((ether[32] = 17 or ether[32] = 6) and (ether[66:2] = 53 or ether[68:2] = 53) or "
    "(ether[32] = 44 and (ether[66] = 17 or ether[66] = 6))))))"
    // PPPoE session, in two tags.
    " or ((ether[12:2] = 0x8100 or ether[12:2] = 0x88a8 or ether[12:2] = 0x9100) and ether[16:2] "
    "= 0x8100 and ether[20:2] = 0x8864 and (ether[28:2] = 0x21 or ether[28:2] = 0x57) and "
    "((ether[30] & 0xf0 = 0x40 and (ether[39] = 17 or ether[39] = 6) and (ether[36:2] & 0x3fff !="
    " 0 or ether[30 + ((ether[30] & 0xf) << 2):2] = 53 or ether[32 + ((ether[30] & 0xf) << 2):2] "
    "= 53)) or (ether[30] & 0xf0 = 0x60 and ((ether[36] = 17 or ether[36] = 6) and (ether[70:2] ="
    " 53 or ether[72:2] = 53) or (ether[36] = 44 and (ether[70] = 17 or ether[70] = 6))))))"
    // MPLS, untagged, 1 label.
    " or ((ether[12:2] = 0x8847 or ether[12:2] = 0x8848) and ether[16] & 1 = 1 and ((ether[18] & "
    "0xf0 = 0x40 and (ether[27] = 17 or ether[27] = 6) and (ether[24:2] & 0x3fff != 0 or ether[18"
    " + ((ether[18] & 0xf) << 2):2] = 53 or ether[20 + ((ether[18] & 0xf) << 2):2] = 53)) or "
    "(ether[18] & 0xf0 = 0x60 and ((ether[24] = 17 or ether[24] = 6) and (ether[58:2] = 53 or "
    "ether[60:2] = 53) or (ether[24] = 44 and (ether[58] = 17 or ether[58] = 6))))))"
    // MPLS, untagged, 2 labels.
    " or ((ether[12:2] = 0x8847 or ether[12:2] = 0x8848) and ether[16] & 1 = 0 and ether[20] & 1 "
    "= 1 and ((ether[22] & 0xf0 = 0x40 and (ether[31] = 17 or ether[31] = 6) and (ether[28:2] & "
    "0x3fff != 0 or ether[22 + ((ether[22] & 0xf) << 2):2] = 53 or ether[24 + ((ether[22] & 0xf) "
    "<< 2):2] = 53)) or (ether[22] & 0xf0 = 0x60 and ((ether[28] = 17 or ether[28] = 6) and "
    "(ether[62:2] = 53 or ether[64:2] = 53) or (ether[28] = 44 and (ether[62] = 17 or ether[62] ="
    " 6))))))"
    // MPLS, untagged, 3 labels.
    " or ((ether[12:2] = 0x8847 or ether[12:2] = 0x8848) and ether[16] & 1 = 0 and ether[20] & 1 "
    "= 0 and ether[24] & 1 = 1 and ((ether[26] & 0xf0 = 0x40 and (ether[35] = 17 or ether[35] = "
    "6) and (ether[32:2] & 0x3fff != 0 or ether[26 + ((ether[26] & 0xf) << 2):2] = 53 or ether[28"
    " + ((ether[26] & 0xf) << 2):2] = 53)) or (ether[26] & 0xf0 = 0x60 and ((ether[32] = 17 or "
    "ether[32] = 6) and (ether[66:2] = 53 or ether[68:2] = 53) or (ether[32] = 44 and (ether[66] "
    "= 17 or ether[66] = 6))))))"
    // MPLS, in one tag, 1 label.
    " or ((ether[12:2] = 0x8100 or ether[12:2] = 0x88a8 or ether[12:2] = 0x9100) and (ether[16:2]"
    " = 0x8847 or ether[16:2] = 0x8848) and ether[20] & 1 = 1 and ((ether[22] & 0xf0 = 0x40 and "
    "(ether[31] = 17 or ether[31] = 6) and (ether[28:2] & 0x3fff != 0 or ether[22 + ((ether[22] &"
    " 0xf) << 2):2] = 53 or ether[24 + ((ether[22] & 0xf) << 2):2] = 53)) or (ether[22] & 0xf0 = "
    "0x60 and ((ether[28] = 17 or ether[28] = 6) and (ether[62:2] = 53 or ether[64:2] = 53) or "
    "(ether[28] = 44 and (ether[62] = 17 or ether[62] = 6))))))"
    // MPLS, in one tag, 2 labels.
    " or ((ether[12:2] = 0x8100 or ether[12:2] = 0x88a8 or ether[12:2] = 0x9100) and (ether[16:2]"
    " = 0x8847 or ether[16:2] = 0x8848) and ether[20] & 1 = 0 and ether[24] & 1 = 1 and "
    "((ether[26] & 0xf0 = 0x40 and (ether[35] = 17 or ether[35] = 6) and (ether[32:2] & 0x3fff !="
    " 0 or ether[26 + ((ether[26] & 0xf) << 2):2] = 53 or ether[28 + ((ether[26] & 0xf) << 2):2] "
    "= 53)) or (ether[26] & 0xf0 = 0x60 and ((ether[32] = 17 or ether[32] = 6) and (ether[66:2] ="
    " 53 or ether[68:2] = 53) or (ether[32] = 44 and (ether[66] = 17 or ether[66] = 6))))))"
    // MPLS, in one tag, 3 labels.
    " or ((ether[12:2] = 0x8100 or ether[12:2] = 0x88a8 or ether[12:2] = 0x9100) and (ether[16:2]"
    " = 0x8847 or ether[16:2] = 0x8848) and ether[20] & 1 = 0 and ether[24] & 1 = 0 and ether[28]"
    " & 1 = 1 and ((ether[30] & 0xf0 = 0x40 and (ether[39] = 17 or ether[39] = 6) and "
    "(ether[36:2] & 0x3fff != 0 or ether[30 + ((ether[30] & 0xf) << 2):2] = 53 or ether[32 + "
    "((ether[30] & 0xf) << 2):2] = 53)) or (ether[30] & 0xf0 = 0x60 and ((ether[36] = 17 or "
    "ether[36] = 6) and (ether[70:2] = 53 or ether[72:2] = 53) or (ether[36] = 44 and (ether[70] "
    "= 17 or ether[70] = 6))))))";

// The default live filter on links that carry no 802.1Q tags (Linux cooked capture on the `any`
// device, loopback, raw IP...), where libpcap refuses the `vlan` keyword: the same without them.
inline constexpr std::string_view kDefaultLiveFilterUntagged =
    "udp port 53 or tcp port 53 or (ip[6:2] & 0x3fff != 0 and (ip[9] = 17 or ip[9] = 6)) or "
    "(ip6[6] = 44 and (ip6[40] = 17 or ip6[40] = 6))";

// The fragments of a DNS response that a live filter must let through: built-in Ethernet frames
// (IPv4 and IPv6, first and later fragments, with and without an 802.1Q tag). Returns the
// descriptions of those that `filter` rejects (empty when it admits them all). Throws
// CaptureError when the filter does not compile.
std::vector<std::string> fragment_probes_rejected(const std::string& filter);

struct CaptureOptions {
  std::vector<std::string> interfaces;  // live capture, one source each
  std::vector<std::string> files;       // offline: read in order as one source
  std::string bpf_filter;               // empty: kDefaultLiveFilter live, no filter offline
  std::uint32_t snaplen = 4096;         // bytes kept per frame (the largest a ring keeps)
  bool snaplen_given = false;           // set by the operator; otherwise replays keep whole frames
  std::uint32_t buffer_bytes = 64U << 20U;  // kernel capture buffer per interface
  bool promiscuous = true;
  std::uint32_t timeout_ms = 50;     // libpcap read timeout: batches frames, no immediate mode
  std::uint32_t ring_slots = 16384;  // frames per worker and source (8 MiB, ring.hpp)
  double replay_speed = 0;  // offline pacing: 0 as fast as possible, 1 real time, 10 ten times
  bool dedup = true;        // drop frames that repeat one seen within 10 ms (dedup.hpp)
  std::vector<std::string> dnstap_sockets;  // live: Unix sockets that DNS servers send dnstap to
  std::string dnstap_socket_mode = "0660";  // the socket files' permission bits, in octal
  std::string dnstap_socket_group;          // their group ("" the daemon's own)
};

// The longest path a Unix socket address holds (sockaddr_un's 108 bytes less the final NUL).
inline constexpr std::size_t kMaxSocketPathBytes = 107;

// Permission bits written in octal, 1 to 4 digits, at most 0777 ("0660", "660", "0"): the value
// in mode, or false.
inline bool parse_socket_mode(std::string_view text, std::uint32_t& mode) noexcept {
  if (text.empty() || text.size() > 4) {
    return false;
  }
  std::uint32_t v = 0;
  for (const char c : text) {
    if (c < '0' || c > '7') {
      return false;
    }
    v = v * 8 + static_cast<std::uint32_t>(c - '0');
  }
  if (v > 0777U) {
    return false;
  }
  mode = v;
  return true;
}

class CaptureError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct CaptureStats {
  SingleWriterCounter received, bytes, kernel_dropped, if_dropped, ring_dropped, snaplen_cut;
  std::atomic<bool> up{false};
  // A replay's progress through its inputs: the bytes read from them so far, and their total
  // size when every input is a regular file (0 when one is a pipe, FIFO or the standard input).
  SingleWriterCounter input_read_bytes;
  std::uint64_t input_size_bytes = 0;  // set before run(), read-only after
  // A dnstap source's: its data frames by what became of them (dnstap::FrameResult), the
  // connections it accepted and refused (beyond DnstapSource::kMaxConnections), those open now.
  bool dnstap = false;  // set before run(), read-only after
  std::array<SingleWriterCounter, dnstap::kFrameResultCount> dnstap_frames;
  SingleWriterCounter dnstap_accepted, dnstap_refused, dnstap_open;
};

// Picks a worker for a frame: symmetric in source and destination address.
std::size_t flow_hash(std::uint16_t link_type, std::span<const std::byte> frame) noexcept;

// What every source of frames implements: it runs its loop on the calling thread (the daemon
// gives each source its own thread), writing into the rings it is given, one per worker that it
// feeds; the pipeline that consumes the rings does not know which kind of source fills them. A
// source yields frames of a libpcap link type (PacketSource: interfaces, files, memory) or DNS
// messages already decoded from their transport, as records of dnsmon's own link type
// (MessageSource, common/message_record.hpp). Each frame is copied into one ring.
class Source {
 public:
  virtual ~Source() = default;
  Source(const Source&) = delete;
  Source& operator=(const Source&) = delete;
  Source(Source&&) = delete;
  Source& operator=(Source&&) = delete;

  // Reads until the input ends, an error occurs or stop is requested. Returns an empty string on
  // a clean end, or the error.
  virtual std::string run(std::stop_token stop, std::span<FrameRing* const> rings) = 0;

  // A replay read in its consumer's own thread (not for live capture: throws std::logic_error):
  // consume() is called every kInlineBatch frames, whenever a ring is full, and at the end of
  // each batch of input, and must empty every ring before it returns, and must not throw (it may
  // run inside libpcap's callback). The frames then go from the input into the ring and out of
  // it in one core's cache.
  static constexpr std::size_t kInlineBatch = 256;
  virtual std::string run_inline(std::stop_token stop, std::span<FrameRing* const> rings,
                                 const std::function<void()>& consume) = 0;

  [[nodiscard]] const CaptureStats& stats() const noexcept { return stats_; }

  // The interface's name for live capture; what the metrics label the source with.
  [[nodiscard]] const std::string& name() const noexcept { return name_; }

  [[nodiscard]] bool is_live() const noexcept { return live_; }

 protected:
  Source(std::string name, bool live, std::uint16_t index)
      : name_(std::move(name)), live_(live), index_(index) {}

  std::string name_;
  bool live_;
  std::uint16_t index_;  // FrameHeader::source of every frame
  CaptureStats stats_;
};

class PacketSource final : public Source {
 public:
  // Opens an interface for live capture. Throws CaptureError with libpcap's reason.
  static std::unique_ptr<PacketSource> open_live(const std::string& interface,
                                                 const CaptureOptions& options,
                                                 std::uint16_t index);
  // Opens `members` handles on an interface that share its traffic as the members of one
  // PACKET_FANOUT group, one per worker: a classic-BPF program sends both directions of a
  // conversation and every fragment of a datagram to one member, by a hash of the IP addresses
  // only. The group's id is the kernel's pick, unique on the host. One member: one handle, no
  // group. Each handle has its own kernel buffer and capture filter. Throws CaptureError.
  static std::vector<std::unique_ptr<PacketSource>> open_live_group(const std::string& interface,
                                                                    const CaptureOptions& options,
                                                                    std::uint16_t first_index,
                                                                    std::size_t members);
  // Checks every regular file (it opens, its header, the filter), opens everything else once
  // (FIFOs, pipes such as /dev/stdin or `<(...)`, "-" for the standard input: never reopened,
  // never blocking here), then reads them in order from run(), where a stop request ends any wait
  // for a stream's data within 100 ms. Throws CaptureError.
  static std::unique_ptr<PacketSource> open_files(const std::vector<std::string>& paths,
                                                  const CaptureOptions& options,
                                                  std::uint16_t index);
  // Reads a capture held in memory (the embedded demo). The bytes must outlive the source.
  static std::unique_ptr<PacketSource> open_memory(std::span<const std::byte> capture,
                                                   std::string name, const CaptureOptions& options,
                                                   std::uint16_t index);

  ~PacketSource() override;
  PacketSource(const PacketSource&) = delete;
  PacketSource& operator=(const PacketSource&) = delete;
  PacketSource(PacketSource&&) = delete;
  PacketSource& operator=(PacketSource&&) = delete;

  std::string run(std::stop_token stop, std::span<FrameRing* const> rings) override;
  std::string run_inline(std::stop_token stop, std::span<FrameRing* const> rings,
                         const std::function<void()>& consume) override;

  struct Impl;

 private:
  PacketSource(std::string name, bool live, CaptureOptions options, std::uint16_t index);
  std::string run_with(std::stop_token stop, std::span<FrameRing* const> rings,
                       const std::function<void()>* consume);

  CaptureOptions options_;
  std::unique_ptr<Impl> impl_;
};

// One DNS message for a MessageSource: its time, where it was seen and its wire bytes.
struct SourceMessage {
  std::int64_t ts_ns = 0;
  record::Header header;
  std::vector<std::byte> wire;
};

// DNS messages already decoded from their transport, delivered as records of record::kLinkType.
// Like a replay it waits for the workers and drops nothing; a record goes to the worker that the
// symmetric hash of its addresses picks, as a frame of the same addresses would.
class MessageSource final : public Source {
 public:
  // Messages held in memory (tests, and the shape of a dnstap source).
  static std::unique_ptr<MessageSource> open_memory(std::vector<SourceMessage> messages,
                                                    std::string name, std::uint16_t index);

  std::string run(std::stop_token stop, std::span<FrameRing* const> rings) override;
  std::string run_inline(std::stop_token stop, std::span<FrameRing* const> rings,
                         const std::function<void()>& consume) override;

 private:
  MessageSource(std::vector<SourceMessage> messages, std::string name, std::uint16_t index);
  std::string run_with(const std::stop_token& stop, std::span<FrameRing* const> rings,
                       const std::function<void()>* consume);

  std::vector<SourceMessage> messages_;
  std::vector<std::byte> record_;  // the record being written; reused for every message
};

// DNS messages from DNS servers over dnstap (dnsmon/capture/dnstap.hpp): a Unix socket that
// servers connect to, each connection a Frame Streams session whose messages become records of
// record::kLinkType. open() creates the socket (as root, before privileges are dropped): a stale
// socket file at the path is removed first, the new one gets capture.dnstap_socket_mode and
// capture.dnstap_socket_group so that the server's user can connect, and the destructor removes
// it. run() serves every connection from one thread with poll(): it never blocks on a connection
// or on the workers. A full ring drops the message and counts it (a writer must not be held up:
// DNS servers drop what they cannot send), a malformed frame is counted and skipped, a connection
// that breaks the protocol is closed; none of these ends the source.
class DnstapSource final : public Source {
 public:
  static constexpr std::size_t kMaxConnections = 64;

  // Throws CaptureError (the path, and why: too long, not a socket, bind, the group...).
  static std::unique_ptr<DnstapSource> open(const std::string& path, const CaptureOptions& options,
                                            std::uint16_t index);

  ~DnstapSource() override;
  DnstapSource(const DnstapSource&) = delete;
  DnstapSource& operator=(const DnstapSource&) = delete;
  DnstapSource(DnstapSource&&) = delete;
  DnstapSource& operator=(DnstapSource&&) = delete;

  // Serves connections until stop is requested (checked every 100 ms).
  std::string run(std::stop_token stop, std::span<FrameRing* const> rings) override;
  // Live input: throws std::logic_error.
  std::string run_inline(std::stop_token stop, std::span<FrameRing* const> rings,
                         const std::function<void()>& consume) override;

  [[nodiscard]] const std::string& path() const noexcept { return path_; }

  struct Impl;

 private:
  DnstapSource(std::string path, std::uint16_t index);

  std::string path_;
  std::unique_ptr<Impl> impl_;
};

// The libpcap version string, for the build info metric.
std::string pcap_version();

}  // namespace dnsmon
