#include "dnsmon/parser/detail/tcp_reassembly.hpp"

#include <algorithm>
#include <bit>
#include <cassert>
#include <cstring>
#include <stdexcept>
#include <string>

#include "dnsmon/common/bytes.hpp"
#include "dnsmon/common/hash.hpp"

#include "wire_reader.hpp"

// How the pieces fit (invariants the code below relies on):
// - rcv_nxt: every byte before it has arrived, or was given up with a hole.
// - msg: where the next message starts (Synced), or where a candidate start waits to be judged
//   (Resync). Only bytes in [msg, msg + max_flow_bytes) are ever stored. msg > rcv_nxt happens
//   only while skipping the rest of an oversized message.
// - held: out-of-order ranges after rcv_nxt, sorted and disjoint; each begins at a segment start.
// - Stored bytes live in 2 KiB chunks from one pool. Byte `seq` of a flow goes to slot
//   (seq / 2 KiB) mod S of that flow, with S a power of two and (S - 1) chunks covering
//   max_flow_bytes: no two stored bytes share a slot, and because S * 2 KiB divides 2^32, the
//   mapping is the same on both sides of a sequence wrap-around.
// - A flow is in holes_ exactly when it holds ranges, in buffered_ exactly when it holds chunks.

namespace dnsmon::detail {
namespace {

// 2 KiB chunks: a typical 1460-byte segment fits in one or two, and a maximum-size message needs
// 33 of them.
constexpr unsigned kChunkShift = 11;
constexpr std::uint32_t kChunkBytes = 1U << kChunkShift;
constexpr std::uint32_t kBlockMask = (1U << (32U - kChunkShift)) - 1U;  // chunk numbers wrap here

// Out-of-order ranges per flow. Ranges that merely touch are kept apart, so that each keeps the
// segment start that a resync after a gap may need; a deeper reordering than this is a lost
// segment.
constexpr std::size_t kMaxHeld = 16;
constexpr std::size_t kLengthBytes = 2;
constexpr std::size_t kDnsHeaderBytes = 12;
constexpr std::size_t kProbeBytes = kLengthBytes + kDnsHeaderBytes;
constexpr std::size_t kMaxMessageBytes = 65535;
constexpr std::size_t kMinFlowBytes = 64;
// Consecutive segments far behind the window, each continuing the last, after which the flow takes
// them as the real stream (we jumped on a bogus segment, or a connection we never saw the SYN of
// reuses the ports) rather than as old retransmissions.
constexpr std::uint8_t kBehindRunToJump = 8;
// Far above any captured segment (snaplen tops out at 262144); sequence arithmetic needs segments
// well below 2^31.
constexpr std::size_t kMaxSegmentBytes = std::size_t{1} << 24U;

// RFC 1982 serial-number arithmetic on 32-bit sequence numbers: how far `to` lies after `from`,
// negative when before. Valid while the two are less than 2^31 apart.
std::int64_t seq_diff(std::uint32_t to, std::uint32_t from) noexcept {
  return static_cast<std::int32_t>(to - from);
}

std::uint32_t seq_add(std::uint32_t seq, std::size_t n) noexcept {
  return static_cast<std::uint32_t>(seq + n);
}

// The length prefix at the start of b (which holds at least 2 bytes) plus the prefix itself.
std::size_t framed_size(std::span<const std::byte> b) noexcept {
  return kLengthBytes + bytes::load_be16(b, 0);
}

// Whether b (at least kProbeBytes) can be the start of a framed DNS message. Used only where the
// message boundary is unknown, so it errs on the strict side: a false start would misframe every
// message after it, a missed one only delays the resync to the next segment.
bool plausible_start(std::span<const std::byte> b) noexcept {
  WireReader r{b};
  const std::uint32_t length = r.u16();
  r.skip(2);  // id
  const std::uint16_t flags = r.u16();
  const std::size_t qd = r.u16();
  const std::size_t records = std::size_t{r.u16()} + r.u16() + r.u16();
  if (r.failed() || length < kDnsHeaderBytes || (flags & 0x0040U) != 0) {  // Z must be zero
    return false;
  }
  // A question takes at least 5 bytes (root name, type, class), a record at least 11.
  if (kDnsHeaderBytes + qd * 5U + records * 11U > length) {
    return false;
  }
  const bool qr = (flags & 0x8000U) != 0;
  switch ((flags >> 11U) & 0xFU) {
    case 0:  // QUERY
    case 4:  // NOTIFY
    case 5:  // UPDATE (the zone section has exactly one entry)
      // Zone transfer responses after the first may leave the question out (RFC 5936 §2.2.1).
      return qd == 1 || (qd == 0 && qr && records != 0);
    case 6:  // DSO, which exists only over TCP and has all counts zero (RFC 8490 §5.4)
      return qd == 0 && records == 0;
    default:
      return false;
  }
}

// now - then for packet times. They come from the capture, so a hostile file can put them anywhere
// in the 64-bit range: the difference is taken modulo 2^64 instead of overflowing.
std::int64_t elapsed(std::int64_t now, std::int64_t then) noexcept {
  return static_cast<std::int64_t>(static_cast<std::uint64_t>(now) -
                                   static_cast<std::uint64_t>(then));
}

}  // namespace

struct TcpReassembler::Flow {
  struct Range {  // sequence numbers [begin, end)
    std::uint32_t begin = 0;
    std::uint32_t end = 0;
  };

  enum class Mode : std::uint8_t { Synced, Resync };

  TcpFlowKey key;
  std::uint64_t hash = 0;
  std::int64_t last_ns = 0;        // packet time of the last segment with data, FIN or SYN
  std::int64_t hole_since_ns = 0;  // when the first hole appeared
  std::uint32_t rcv_nxt = 0;
  std::uint32_t msg = 0;
  std::uint32_t next_piece = 0;   // Resync: a later segment start to judge if the one at msg fails
  std::uint32_t behind_next = 0;  // where the last far-behind segment ended
  std::uint32_t isn = 0;
  std::uint32_t fin_seq = 0;
  std::uint32_t bucket_next = kNoIndex;  // hash chain while in use, free-slot chain otherwise
  std::uint32_t chunks = 0;
  Link lru, buffered, holes;
  std::array<Range, kMaxHeld> held{};
  std::uint8_t held_count = 0;
  std::uint8_t behind_run = 0;  // consecutive far-behind segments, each continuing the last
  Mode mode = Mode::Synced;
  bool has_isn = false;
  bool fin_seen = false;
  bool after_gap = false;  // Resync entered through a gap (counted in resyncs), not midstream
  bool has_next_piece = false;
};

TcpReassembler::TcpReassembler(TcpReassemblyOptions options) : options_(options) {
  if (options_.max_flows == 0 || options_.max_flows > (std::size_t{1} << 30U)) {
    throw std::invalid_argument("tcp max_flows must be between 1 and 2^30");
  }
  if (options_.max_flow_bytes < kMinFlowBytes || options_.max_flow_bytes > kMaxSegmentBytes) {
    throw std::invalid_argument("tcp max_flow_bytes must be between 64 and 16 MiB");
  }
  if (options_.window_bytes == 0 || options_.window_bytes > (1U << 30U)) {
    throw std::invalid_argument("tcp window_bytes must be between 1 and 2^30");
  }
  if (options_.idle_timeout_ns <= 0 || options_.hole_timeout_ns <= 0) {
    throw std::invalid_argument("tcp timeouts must be positive");
  }
  // One slot more than max_flow_bytes needs, since the held range need not start on a chunk.
  slots_per_flow_ = std::bit_ceil(
      static_cast<std::uint32_t>((options_.max_flow_bytes + kChunkBytes - 1) / kChunkBytes + 1));
  const std::size_t chunks =
      std::min<std::size_t>(options_.memory_budget_bytes / kChunkBytes, kNoIndex - 1);
  if (chunks < slots_per_flow_) {
    // Below this, the current flow could find the pool empty with nobody else to evict.
    throw std::invalid_argument("tcp memory_budget_bytes must hold one flow's buffer (" +
                                std::to_string(std::size_t{slots_per_flow_} * kChunkBytes) +
                                " bytes for this max_flow_bytes)");
  }
  pool_chunks_ = static_cast<std::uint32_t>(chunks);
  free_chunk_ = kNoIndex;

  hash_keys_ = derive_keys<5>(seed_or_random(options_.hash_seed));

  const auto buckets = std::bit_ceil(options_.max_flows * 2);  // chains average under one flow
  bucket_mask_ = static_cast<std::uint32_t>(buckets - 1);
  buckets_.assign(buckets, kNoIndex);
  // Flows are constructed as the table first needs them (create()), within this capacity, so no
  // reallocation ever moves them; the slots of a flow are set when it is created.
  flows_.reserve(options_.max_flows);
  slots_ = std::make_unique_for_overwrite<std::uint32_t[]>(options_.max_flows * slots_per_flow_);
  chunk_next_.assign(pool_chunks_, kNoIndex);
  // make_unique_for_overwrite leaves the bytes uninitialised, so the pool's pages stay untouched
  // until a chunk is first used: resident memory follows use, up to the budget.
  pool_ = std::make_unique_for_overwrite<std::byte[]>(std::size_t{pool_chunks_} * kChunkBytes);
  scratch_ = std::make_unique_for_overwrite<std::byte[]>(kMaxMessageBytes);
}

TcpReassembler::~TcpReassembler() = default;

std::size_t TcpReassembler::planned_bytes(const TcpReassemblyOptions& o) noexcept {
  const std::size_t slots_per_flow =
      std::bit_ceil((o.max_flow_bytes + kChunkBytes - 1) / kChunkBytes + 1);
  const std::size_t chunks =
      std::min<std::size_t>(o.memory_budget_bytes / kChunkBytes, kNoIndex - 1);
  return std::bit_ceil(o.max_flows * 2) * sizeof(std::uint32_t) +
         o.max_flows * (sizeof(Flow) + slots_per_flow * sizeof(std::uint32_t)) +
         chunks * (kChunkBytes + sizeof(std::uint32_t)) + kMaxMessageBytes;
}

std::size_t TcpReassembler::memory_bytes() const noexcept {
  return std::size_t{chunks_used_} * kChunkBytes;
}

// ---- flow table -----------------------------------------------------------------------------

std::uint64_t TcpReassembler::hash_key(const TcpFlowKey& key) const noexcept {
  // Keyed by the seed, so that senders cannot aim many flows at one chain without knowing it. The
  // words are mixed independently (in parallel on the CPU), then once more together.
  const std::uint64_t ports =
      key.sport | (std::uint64_t{key.dport} << 16U) | (std::uint64_t{key.family} << 32U);
  return mix64(mix64(bytes::load_host64(key.src.data()) ^ hash_keys_[0]) +
               mix64(bytes::load_host64(key.src.data() + 8) ^ hash_keys_[1]) +
               mix64(bytes::load_host64(key.dst.data()) ^ hash_keys_[2]) +
               mix64(bytes::load_host64(key.dst.data() + 8) ^ hash_keys_[3]) +
               mix64(ports ^ hash_keys_[4]));
}

std::uint32_t TcpReassembler::find(const TcpFlowKey& key, std::uint64_t hash) const noexcept {
  for (auto i = buckets_[hash & bucket_mask_]; i != kNoIndex; i = flows_[i].bucket_next) {
    if (flows_[i].hash == hash && flows_[i].key == key) {
      return i;
    }
  }
  return kNoIndex;
}

std::uint32_t TcpReassembler::create(const TcpFlowKey& key, std::uint64_t hash,
                                     std::int64_t now_ns) noexcept {
  if (free_flow_ == kNoIndex && flows_.size() < options_.max_flows) {
    flows_.emplace_back();  // within the reserved capacity: no allocation, nothing moves
    free_flow_ = static_cast<std::uint32_t>(flows_.size() - 1);
    flows_.back().bucket_next = kNoIndex;
  }
  if (free_flow_ == kNoIndex) {
    assert(lru_.head != kNoIndex && "a full table has a least recently used flow");
    stats_.evicted.add();
    remove(lru_.head);
  }
  const auto index = free_flow_;
  Flow& f = flows_[index];
  free_flow_ = f.bucket_next;
  f = Flow{};
  std::fill_n(slots_.get() + std::size_t{index} * slots_per_flow_, slots_per_flow_, kNoIndex);
  f.key = key;
  f.hash = hash;
  f.last_ns = now_ns;
  auto& head = buckets_[hash & bucket_mask_];
  f.bucket_next = head;
  head = index;
  list_push_back(lru_, &Flow::lru, index);
  ++flow_count_;
  return index;
}

void TcpReassembler::remove(std::uint32_t index) noexcept {
  Flow& f = flows_[index];
  if (const auto pending = pending_bytes(f); pending != 0) {
    stats_.bytes_skipped.add(pending);
  }
  free_all_chunks(f);
  if (f.held_count != 0) {
    f.held_count = 0;
    list_remove(holes_, &Flow::holes, index);
  }
  list_remove(lru_, &Flow::lru, index);
  auto* link = &buckets_[f.hash & bucket_mask_];
  while (*link != index) {
    link = &flows_[*link].bucket_next;
  }
  *link = f.bucket_next;
  f.bucket_next = free_flow_;
  free_flow_ = index;
  --flow_count_;
}

void TcpReassembler::close(std::uint32_t index) noexcept {
  stats_.flows_closed.add();
  remove(index);
}

void TcpReassembler::touch(Flow& f, std::int64_t now_ns) noexcept {
  f.last_ns = now_ns;
  const auto index = index_of(f);
  if (lru_.tail != index) {
    list_remove(lru_, &Flow::lru, index);
    list_push_back(lru_, &Flow::lru, index);
  }
  if (f.chunks != 0 && buffered_.tail != index) {
    list_remove(buffered_, &Flow::buffered, index);
    list_push_back(buffered_, &Flow::buffered, index);
  }
}

void TcpReassembler::list_push_back(List& list, Link Flow::*link, std::uint32_t index) noexcept {
  Link& l = flows_[index].*link;
  l.prev = list.tail;
  l.next = kNoIndex;
  if (list.tail == kNoIndex) {
    list.head = index;
  } else {
    (flows_[list.tail].*link).next = index;
  }
  list.tail = index;
  ++list.size;
}

void TcpReassembler::list_remove(List& list, Link Flow::*link, std::uint32_t index) noexcept {
  Link& l = flows_[index].*link;
  if (l.prev == kNoIndex) {
    list.head = l.next;
  } else {
    (flows_[l.prev].*link).next = l.next;
  }
  if (l.next == kNoIndex) {
    list.tail = l.prev;
  } else {
    (flows_[l.next].*link).prev = l.prev;
  }
  l = Link{};
  --list.size;
}

std::uint32_t TcpReassembler::index_of(const Flow& f) const noexcept {
  return static_cast<std::uint32_t>(&f - flows_.data());
}

// ---- byte pool ------------------------------------------------------------------------------

std::size_t TcpReassembler::slot_of(const Flow& f, std::uint32_t seq) const noexcept {
  return std::size_t{index_of(f)} * slots_per_flow_ +
         ((seq >> kChunkShift) & (slots_per_flow_ - 1));
}

std::uint32_t TcpReassembler::alloc_chunk(std::uint32_t owner) noexcept {
  if (free_chunk_ == kNoIndex && untouched_chunk_ == pool_chunks_) {
    auto victim = buffered_.head;
    if (victim == owner) {
      victim = flows_[victim].buffered.next;
    }
    if (victim == kNoIndex) {
      return kNoIndex;  // unreachable: the constructor makes the pool hold one whole flow
    }
    stats_.evicted.add();
    remove(victim);
  }
  std::uint32_t chunk = 0;
  if (free_chunk_ != kNoIndex) {
    chunk = free_chunk_;
    free_chunk_ = chunk_next_[chunk];
  } else {
    chunk = untouched_chunk_++;
  }
  ++chunks_used_;
  return chunk;
}

void TcpReassembler::free_chunk(Flow& f, std::size_t slot) noexcept {
  const auto chunk = slots_[slot];
  chunk_next_[chunk] = free_chunk_;
  free_chunk_ = chunk;
  slots_[slot] = kNoIndex;
  --chunks_used_;
  if (--f.chunks == 0) {
    list_remove(buffered_, &Flow::buffered, index_of(f));
  }
}

void TcpReassembler::free_all_chunks(Flow& f) noexcept {
  const std::size_t base = std::size_t{index_of(f)} * slots_per_flow_;
  for (std::size_t s = base; f.chunks != 0 && s < base + slots_per_flow_; ++s) {
    if (slots_[s] != kNoIndex) {
      free_chunk(f, s);
    }
  }
}

void TcpReassembler::release_if_empty(Flow& f) noexcept {
  if (f.chunks != 0 && f.held_count == 0 && seq_diff(f.rcv_nxt, f.msg) <= 0) {
    free_all_chunks(f);
  }
}

void TcpReassembler::store(Flow& f, std::uint32_t seq, std::span<const std::byte> data) noexcept {
  if (const auto before = seq_diff(f.msg, seq); before > 0) {  // not needed: before msg
    if (static_cast<std::size_t>(before) >= data.size()) {
      return;
    }
    data = data.subspan(static_cast<std::size_t>(before));
    seq = f.msg;
  }
  assert(seq_diff(seq_add(seq, data.size()), f.msg) <=
             static_cast<std::int64_t>(options_.max_flow_bytes) &&
         "stored bytes stay within max_flow_bytes of msg");
  while (!data.empty()) {
    const auto slot = slot_of(f, seq);
    if (slots_[slot] == kNoIndex) {
      const auto chunk = alloc_chunk(index_of(f));
      if (chunk == kNoIndex) {
        return;
      }
      slots_[slot] = chunk;
      if (f.chunks++ == 0) {
        list_push_back(buffered_, &Flow::buffered, index_of(f));
      }
    }
    const std::uint32_t offset = seq & (kChunkBytes - 1);
    const auto n = std::min<std::size_t>(kChunkBytes - offset, data.size());
    std::memcpy(pool_.get() + std::size_t{slots_[slot]} * kChunkBytes + offset, data.data(), n);
    seq = seq_add(seq, n);
    data = data.subspan(n);
  }
}

void TcpReassembler::load(const Flow& f, std::uint32_t seq,
                          std::span<std::byte> out) const noexcept {
  while (!out.empty()) {
    const auto chunk = slots_[slot_of(f, seq)];
    const std::uint32_t offset = seq & (kChunkBytes - 1);
    const auto n = std::min<std::size_t>(kChunkBytes - offset, out.size());
    if (chunk == kNoIndex) {
      std::memset(out.data(), 0, n);  // unreachable while the invariants hold; never read garbage
    } else {
      std::memcpy(out.data(), pool_.get() + std::size_t{chunk} * kChunkBytes + offset, n);
    }
    seq = seq_add(seq, n);
    out = out.subspan(n);
  }
}

std::span<const std::byte> TcpReassembler::view(const Flow& f, std::uint32_t seq,
                                                std::size_t size) noexcept {
  assert(size <= kMaxMessageBytes);
  const std::uint32_t offset = seq & (kChunkBytes - 1);
  const auto chunk = slots_[slot_of(f, seq)];
  if (offset + size <= kChunkBytes && chunk != kNoIndex) {
    return {pool_.get() + std::size_t{chunk} * kChunkBytes + offset, size};
  }
  const std::span<std::byte> out{scratch_.get(), size};
  load(f, seq, out);
  return out;
}

void TcpReassembler::advance_msg(Flow& f, std::uint32_t seq) noexcept {
  assert(seq_diff(seq, f.msg) >= 0 && "msg only moves forward");
  if (f.chunks != 0) {
    // Chunks wholly before the new msg are done with. Walking more than S of them would only
    // revisit slots.
    const std::uint32_t first = f.msg >> kChunkShift;
    const std::uint32_t blocks = ((seq >> kChunkShift) - first) & kBlockMask;
    const std::size_t base = std::size_t{index_of(f)} * slots_per_flow_;
    for (std::uint32_t i = 0; i < std::min(blocks, slots_per_flow_) && f.chunks != 0; ++i) {
      const auto slot = base + ((first + i) & (slots_per_flow_ - 1));
      if (slots_[slot] != kNoIndex) {
        free_chunk(f, slot);
      }
    }
  }
  f.msg = seq;
}

// ---- stream ---------------------------------------------------------------------------------

void TcpReassembler::add_segment(const TcpFlowKey& key, std::uint32_t seq, std::uint8_t flags,
                                 std::span<const std::byte> payload, std::int64_t now_ns,
                                 MessageSink on_message) noexcept {
  assert(!in_callback_ && "on_message must not call back into the reassembler");
  stats_.segments.add();
  if (payload.empty() && (flags & (kTcpSyn | kTcpFin | kTcpRst)) == 0) {
    return;  // a bare ACK: no lookup
  }
  if (payload.size() > kMaxSegmentBytes) {
    stats_.bytes_skipped.add(payload.size());
    return;
  }
  const auto hash = hash_key(key);
  auto index = find(key, hash);
  if (index != kNoIndex && elapsed(now_ns, flows_[index].last_ns) >= options_.idle_timeout_ns) {
    stats_.timed_out.add();  // expire() has not run since; the same result as if it had
    if (flows_[index].held_count != 0) {
      skip_all_holes(flows_[index], now_ns, on_message);
    }
    remove(index);
    index = kNoIndex;
  }
  if ((flags & kTcpRst) != 0) {
    if (index != kNoIndex) {
      close(index);  // an abort: whatever is still incomplete will never complete
    }
    return;
  }
  if ((flags & kTcpSyn) != 0) {
    // A retransmitted SYN repeats the sequence number and keeps the flow; any other SYN starts a
    // new connection on the same addresses and ports.
    if (index == kNoIndex || !flows_[index].has_isn || flows_[index].isn != seq) {
      if (index != kNoIndex) {
        remove(index);
      }
      index = create(key, hash, now_ns);
      Flow& f = flows_[index];
      f.has_isn = true;
      f.isn = seq;
      f.rcv_nxt = f.msg = seq_add(seq, 1);
      f.mode = Flow::Mode::Synced;
    }
    seq = seq_add(seq, 1);  // the SYN takes one sequence number; TCP Fast Open data follows it
  } else if (index == kNoIndex) {
    if (payload.empty()) {
      return;  // a FIN for a flow we do not track
    }
    index = create(key, hash, now_ns);
    Flow& f = flows_[index];
    f.rcv_nxt = f.msg = seq;
    f.mode = Flow::Mode::Resync;  // the first segment starts a message only if it looks like one
    stats_.midstream.add();
  }
  Flow& f = flows_[index];
  touch(f, now_ns);
  if (!payload.empty()) {
    process(f, seq, payload, now_ns, on_message);
  }
  if ((flags & kTcpFin) != 0) {
    f.fin_seen = true;
    f.fin_seq = seq_add(seq, payload.size());
  }
  close_if_finished(f);
}

void TcpReassembler::close_if_finished(Flow& f) noexcept {
  // A FIN ahead of a hole waits for it: the bytes before the FIN may still come, reordered.
  if (f.fin_seen && f.held_count == 0 && seq_diff(f.rcv_nxt, f.fin_seq) >= 0) {
    close(index_of(f));
  }
}

void TcpReassembler::process(Flow& f, std::uint32_t seq, std::span<const std::byte> data,
                             std::int64_t now_ns, MessageSink& sink) noexcept {
  if (f.held_count != 0 && elapsed(now_ns, f.hole_since_ns) >= options_.hole_timeout_ns) {
    skip_hole(f, now_ns, sink);
  }
  const std::int64_t window = options_.window_bytes;
  // Each pass finishes, jumps (then the next one finishes) or gives up one hole, so at most
  // kMaxHeld + 2 passes are needed and the bound is never reached.
  for (std::size_t pass = 0; pass < kMaxHeld + 3; ++pass) {
    const auto ahead = seq_diff(seq, f.rcv_nxt);
    if (ahead < -window) {
      // Retransmissions reach back at most the sender's window, so this is most likely old data:
      // jumping back would deliver its messages twice. Only a run of them is taken as the stream.
      f.behind_run = static_cast<std::uint8_t>(
          f.behind_run != 0 && seq == f.behind_next ? f.behind_run + 1 : 1);
      f.behind_next = seq_add(seq, data.size());
      if (f.behind_run < kBehindRunToJump) {
        stats_.duplicates.add();
        break;
      }
    }
    f.behind_run = 0;
    if (ahead > window || ahead < -window) {
      jump(f, seq);  // a capture gap larger than the window: start over at this segment
      continue;
    }
    if (ahead <= 0) {
      const auto behind = static_cast<std::size_t>(-ahead);
      if (behind >= data.size()) {
        stats_.duplicates.add();
        break;
      }
      if (behind != 0) {
        stats_.duplicates.add();
      }
      consume(f, data.subspan(behind), behind == 0, sink);
      absorb(f, now_ns, sink);
      break;
    }
    if (hold(f, seq, data, now_ns)) {
      break;
    }
    // No room to hold it: give up the first hole, which may deliver and free what waited behind it.
    if (f.held_count != 0) {
      skip_hole(f, now_ns, sink);
    } else {
      give_up_hole(f, seq);
    }
  }
  release_if_empty(f);
}

void TcpReassembler::consume(Flow& f, std::span<const std::byte> data, bool segment_start,
                             MessageSink& sink) noexcept {
  while (!data.empty()) {
    if (f.mode == Flow::Mode::Resync) {
      const bool candidate_pending = f.msg != f.rcv_nxt;
      if (!segment_start && !candidate_pending) {
        // The middle of a segment (the new part of a partial retransmission) is never a start.
        stats_.bytes_skipped.add(data.size());
        f.rcv_nxt = seq_add(f.rcv_nxt, data.size());
        advance_msg(f, f.rcv_nxt);
        return;
      }
      if (!candidate_pending && data.size() >= kProbeBytes) {
        // The common case: judge the segment start in place, without buffering.
        if (!plausible_start(data)) {
          stats_.bytes_skipped.add(data.size());
          f.rcv_nxt = seq_add(f.rcv_nxt, data.size());
          advance_msg(f, f.rcv_nxt);
          return;
        }
        synced(f);
        continue;
      }
      // A segment too short to judge alone (some stubs send the length prefix by itself), or one
      // following such a segment: judge from the buffer.
      if (candidate_pending && segment_start && !f.has_next_piece) {
        f.next_piece = f.rcv_nxt;
        f.has_next_piece = true;
      }
      const auto take = std::min(data.size(), kProbeBytes);
      store(f, f.rcv_nxt, data.first(take));
      f.rcv_nxt = seq_add(f.rcv_nxt, take);
      data = data.subspan(take);
      if (find_start(f)) {
        // What the probe buffered may hold whole messages, or a message shorter than the buffer or
        // too long to hold: drain it first, so that the synced steps below start from what is left.
        drain(f, sink);
        segment_start = false;
        continue;
      }
      if (f.msg == f.rcv_nxt) {  // every candidate failed, this segment's start included
        stats_.bytes_skipped.add(data.size());
        f.rcv_nxt = seq_add(f.rcv_nxt, data.size());
        advance_msg(f, f.rcv_nxt);
        return;
      }
      assert(data.empty() && "a pending candidate has fewer than kProbeBytes bytes after it");
      return;
    }
    segment_start = false;
    const auto msg_ahead = seq_diff(f.msg, f.rcv_nxt);
    if (msg_ahead > 0) {  // the rest of an oversized message
      const auto n = std::min(static_cast<std::size_t>(msg_ahead), data.size());
      stats_.bytes_skipped.add(n);
      f.rcv_nxt = seq_add(f.rcv_nxt, n);
      data = data.subspan(n);
      continue;
    }
    if (msg_ahead == 0) {
      // Nothing buffered: deliver whole messages straight from the segment.
      std::size_t pos = 0;
      while (data.size() - pos >= kLengthBytes) {
        const auto size = framed_size(data.subspan(pos));
        if (data.size() - pos < size) {
          break;
        }
        deliver(f, data.subspan(pos + kLengthBytes, size - kLengthBytes), sink);
        pos += size;
      }
      if (pos != 0) {
        f.rcv_nxt = seq_add(f.rcv_nxt, pos);
        advance_msg(f, f.rcv_nxt);
        data = data.subspan(pos);
      }
      if (data.empty()) {
        break;
      }
      if (data.size() >= kLengthBytes) {
        if (const auto size = framed_size(data); size > options_.max_flow_bytes) {
          stats_.oversized.add();  // it can never be held whole; its length says where to go on
          advance_msg(f, seq_add(f.msg, size));
          continue;
        }
      }
    }
    // Complete the message at msg, buffering no more than it needs.
    const auto have = static_cast<std::size_t>(seq_diff(f.rcv_nxt, f.msg));
    std::size_t need = kLengthBytes - std::min(have, kLengthBytes);
    if (need == 0) {
      std::array<std::byte, kLengthBytes> prefix{};
      load(f, f.msg, prefix);
      need = framed_size(prefix) - have;
    }
    const auto n = std::min(need, data.size());
    store(f, f.rcv_nxt, data.first(n));
    f.rcv_nxt = seq_add(f.rcv_nxt, n);
    data = data.subspan(n);
    drain(f, sink);
  }
}

bool TcpReassembler::hold(Flow& f, std::uint32_t seq, std::span<const std::byte> data,
                          std::int64_t now_ns) noexcept {
  const auto end = seq_add(seq, data.size());
  // Offsets from rcv_nxt order everything held (all of it lies within the window ahead) without
  // caring where the sequence numbers wrap.
  auto offset = [&](std::uint32_t s) noexcept { return s - f.rcv_nxt; };
  const auto b = offset(seq);
  const auto e = offset(end);
  std::size_t first = 0;  // held[first, last) overlap [b, e)
  while (first < f.held_count && offset(f.held[first].end) <= b) {
    ++first;
  }
  std::size_t last = first;
  while (last < f.held_count && offset(f.held[last].begin) < e) {
    ++last;
  }
  if (last == first + 1 && offset(f.held[first].begin) <= b && offset(f.held[first].end) >= e) {
    stats_.duplicates.add();
    return true;
  }
  if (f.held_count - (last - first) + 1 > kMaxHeld ||
      seq_diff(end, f.msg) > static_cast<std::int64_t>(options_.max_flow_bytes)) {
    return false;
  }
  stats_.out_of_order.add();
  if (last > first) {
    stats_.duplicates.add();
  }
  store(f, seq, data);
  Flow::Range merged{seq, end};
  if (last > first) {
    if (offset(f.held[first].begin) < b) {
      merged.begin = f.held[first].begin;
    }
    if (offset(f.held[last - 1].end) > e) {
      merged.end = f.held[last - 1].end;
    }
  }
  const bool was_empty = f.held_count == 0;
  // Replace held[first, last) by the merged range.
  const std::size_t merged_away = last - first;
  if (merged_away == 0) {
    for (std::size_t i = f.held_count; i > first; --i) {
      f.held[i] = f.held[i - 1];
    }
  } else {
    for (std::size_t i = last; i < f.held_count; ++i) {
      f.held[i - merged_away + 1] = f.held[i];
    }
  }
  f.held[first] = merged;
  f.held_count = static_cast<std::uint8_t>(f.held_count - merged_away + 1);
  if (was_empty) {
    f.hole_since_ns = now_ns;
    list_push_back(holes_, &Flow::holes, index_of(f));
  }
  return true;
}

void TcpReassembler::absorb(Flow& f, std::int64_t now_ns, MessageSink& sink) noexcept {
  bool popped = false;
  while (f.held_count != 0 && seq_diff(f.held[0].begin, f.rcv_nxt) <= 0) {
    const auto range = f.held[0];
    for (std::size_t i = 1; i < f.held_count; ++i) {
      f.held[i - 1] = f.held[i];
    }
    --f.held_count;
    popped = true;
    if (seq_diff(range.end, f.rcv_nxt) <= 0) {
      continue;
    }
    const bool segment_start = range.begin == f.rcv_nxt;
    const auto from = f.rcv_nxt;
    f.rcv_nxt = range.end;  // these bytes are stored already (those at or after msg)
    if (f.mode == Flow::Mode::Synced) {
      if (const auto msg_ahead = seq_diff(f.msg, from); msg_ahead > 0) {
        stats_.bytes_skipped.add(
            std::min<std::uint64_t>(static_cast<std::uint64_t>(msg_ahead), range.end - from));
      }
      drain(f, sink);
    } else if (f.msg == from && !segment_start) {
      stats_.bytes_skipped.add(range.end - from);  // the rest of a segment already rejected
      advance_msg(f, f.rcv_nxt);
    } else {
      if (f.msg != from && segment_start && !f.has_next_piece) {
        f.next_piece = from;
        f.has_next_piece = true;
      }
      if (find_start(f)) {
        drain(f, sink);
      }
    }
  }
  if (popped) {
    const auto index = index_of(f);
    list_remove(holes_, &Flow::holes, index);
    if (f.held_count != 0) {
      f.hole_since_ns = now_ns;  // a new first hole
      list_push_back(holes_, &Flow::holes, index);
    }
  }
}

void TcpReassembler::drain(Flow& f, MessageSink& sink) noexcept {
  while (f.mode == Flow::Mode::Synced) {
    const auto have = seq_diff(f.rcv_nxt, f.msg);
    if (have < static_cast<std::int64_t>(kLengthBytes)) {
      break;
    }
    std::array<std::byte, kLengthBytes> prefix{};
    load(f, f.msg, prefix);
    const auto size = framed_size(prefix);
    if (size > options_.max_flow_bytes) {
      stats_.oversized.add();
      stats_.bytes_skipped.add(std::min(size, static_cast<std::size_t>(have)));
      advance_msg(f, seq_add(f.msg, size));
      continue;
    }
    if (static_cast<std::size_t>(have) < size) {
      break;
    }
    deliver(f, view(f, seq_add(f.msg, kLengthBytes), size - kLengthBytes), sink);
    advance_msg(f, seq_add(f.msg, size));
  }
  release_if_empty(f);
}

bool TcpReassembler::find_start(Flow& f) noexcept {
  for (;;) {
    const auto have = seq_diff(f.rcv_nxt, f.msg);
    if (have < static_cast<std::int64_t>(kProbeBytes)) {
      return false;  // wait for more bytes after the candidate (or there is no candidate)
    }
    std::array<std::byte, kProbeBytes> probe{};
    load(f, f.msg, probe);
    if (plausible_start(probe)) {
      synced(f);
      return true;
    }
    auto next = f.rcv_nxt;
    if (f.has_next_piece && seq_diff(f.next_piece, f.msg) > 0 &&
        seq_diff(f.next_piece, f.rcv_nxt) < 0) {
      next = f.next_piece;
    }
    f.has_next_piece = false;
    stats_.bytes_skipped.add(next - f.msg);
    advance_msg(f, next);
  }
}

void TcpReassembler::synced(Flow& f) noexcept {
  f.mode = Flow::Mode::Synced;
  if (f.after_gap) {
    stats_.resyncs.add();
  }
  f.after_gap = false;
  f.has_next_piece = false;
}

void TcpReassembler::give_up_hole(Flow& f, std::uint32_t target) noexcept {
  stats_.gaps.add();
  if (f.mode == Flow::Mode::Synced && seq_diff(f.msg, target) >= 0) {
    f.rcv_nxt = target;  // the hole lies in an oversized message being skipped: framing survives
    return;
  }
  if (const auto partial = seq_diff(f.rcv_nxt, f.msg); partial > 0) {
    stats_.bytes_skipped.add(static_cast<std::uint64_t>(partial));
  }
  f.rcv_nxt = target;
  advance_msg(f, target);
  f.mode = Flow::Mode::Resync;
  f.after_gap = true;
  f.has_next_piece = false;
}

void TcpReassembler::skip_hole(Flow& f, std::int64_t now_ns, MessageSink& sink) noexcept {
  assert(f.held_count != 0);
  give_up_hole(f, f.held[0].begin);
  absorb(f, now_ns, sink);
}

void TcpReassembler::jump(Flow& f, std::uint32_t seq) noexcept {
  stats_.gaps.add();
  if (const auto pending = pending_bytes(f); pending != 0) {
    stats_.bytes_skipped.add(pending);
  }
  free_all_chunks(f);
  if (f.held_count != 0) {
    f.held_count = 0;
    list_remove(holes_, &Flow::holes, index_of(f));
  }
  f.rcv_nxt = f.msg = seq;
  f.mode = Flow::Mode::Resync;
  f.after_gap = true;
  f.has_next_piece = false;
}

std::uint64_t TcpReassembler::pending_bytes(const Flow& f) const noexcept {
  std::uint64_t total = 0;
  if (const auto partial = seq_diff(f.rcv_nxt, f.msg); partial > 0) {
    total += static_cast<std::uint64_t>(partial);
  }
  for (std::size_t i = 0; i < f.held_count; ++i) {
    total += f.held[i].end - f.held[i].begin;
  }
  return total;
}

void TcpReassembler::deliver(const Flow& f, std::span<const std::byte> message,
                             MessageSink& sink) noexcept {
  stats_.messages.add();
  in_callback_ = true;
  sink(f.key, message);
  in_callback_ = false;
}

// ---- expiry ---------------------------------------------------------------------------------

void TcpReassembler::expire(std::int64_t now_ns) noexcept {
  assert(!in_callback_ && "on_message must not call back into the reassembler");
  expire_idle(now_ns, nullptr);
}

void TcpReassembler::expire_flows(std::int64_t now_ns, MessageSink on_message) noexcept {
  assert(!in_callback_ && "on_message must not call back into the reassembler");
  expire_idle(now_ns, &on_message);
  // holes_ is ordered by hole age; a flow whose hole is skipped either leaves it or goes to the
  // back with a fresh hole, so one pass over the current members is enough.
  for (auto n = holes_.size; n != 0 && holes_.head != kNoIndex; --n) {
    Flow& f = flows_[holes_.head];
    if (elapsed(now_ns, f.hole_since_ns) < options_.hole_timeout_ns) {
      break;
    }
    skip_hole(f, now_ns, on_message);
    release_if_empty(f);
    close_if_finished(f);
  }
}

void TcpReassembler::expire_idle(std::int64_t now_ns, MessageSink* sink) noexcept {
  while (lru_.head != kNoIndex &&
         elapsed(now_ns, flows_[lru_.head].last_ns) >= options_.idle_timeout_ns) {
    stats_.timed_out.add();
    const std::uint32_t index = lru_.head;
    if (sink != nullptr && flows_[index].held_count != 0) {
      skip_all_holes(flows_[index], now_ns, *sink);  // delivers; leaves the flow where it is
    }
    remove(index);
  }
}

void TcpReassembler::flush_holes(std::int64_t now_ns, MessageSink on_message) noexcept {
  assert(!in_callback_ && "on_message must not call back into the reassembler");
  // Each flow leaves holes_ once it holds nothing; the count bounds the pass all the same.
  for (auto n = holes_.size; n != 0 && holes_.head != kNoIndex; --n) {
    Flow& f = flows_[holes_.head];
    skip_all_holes(f, now_ns, on_message);
    release_if_empty(f);
    close_if_finished(f);
  }
}

void TcpReassembler::skip_all_holes(Flow& f, std::int64_t now_ns, MessageSink& sink) noexcept {
  // Each skip gives up at least the first held range, so kMaxHeld + 1 rounds empty the flow.
  for (std::size_t round = 0; round <= kMaxHeld && f.held_count != 0; ++round) {
    skip_hole(f, now_ns, sink);
  }
}

}  // namespace dnsmon::detail
