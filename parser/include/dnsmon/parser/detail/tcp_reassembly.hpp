// Per-direction TCP stream reassembly for DNS over TCP (RFC 7766 §8: every message is preceded by
// a two-byte big-endian length).
//
// Each direction of a connection is one flow. A message that lies within one segment, the common
// case, is handed to the caller straight from the segment; only a message that spans segments, or
// data that arrives ahead of a hole, is copied into the flow's buffer. A hole that does not fill
// (the flow's buffer is full, a segment lands beyond the window, or the hole is older than
// hole_timeout_ns) is given up on. The next message boundary is then unknown, so the flow waits for
// a segment whose first bytes look like a message start (a length of at least 12 followed by a DNS
// header whose counts fit in it) and continues from there; flows first seen without a SYN start the
// same way. Every table has a fixed capacity: when the flow table or the byte pool is full, the
// least recently used flow is evicted and counted.
//
// Thread-safety: one worker thread calls add(), expire(), flows() and memory_bytes(); any thread
//   may read stats() (each counter has one writer, see TcpReassemblyStats).
// Allocation: the constructor allocates everything (flow table, hash buckets, the byte pool of
//   memory_budget_bytes, and a 64 KiB scratch buffer); add() and expire() never allocate. The
//   pages of the flow table, of its chunk slots and of the byte pool are touched only as flows and
//   chunks are first used, so a worker that sees little TCP neither pays for them at start-up nor
//   keeps them resident.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <type_traits>
#include <vector>

#include "dnsmon/common/counter.hpp"

namespace dnsmon::detail {

// TCP header flag bits (byte 13 of the header) that add() looks at.
inline constexpr std::uint8_t kTcpFin = 0x01;
inline constexpr std::uint8_t kTcpSyn = 0x02;
inline constexpr std::uint8_t kTcpRst = 0x04;

// One direction of a TCP connection: segments from src:sport to dst:dport.
struct TcpFlowKey {
  std::array<std::uint8_t, 16> src{}, dst{};  // IPv4 uses the first 4 bytes; the rest stay zero
  std::uint16_t sport = 0, dport = 0;
  std::uint8_t family = 0;  // 4 or 6

  friend bool operator==(const TcpFlowKey&, const TcpFlowKey&) = default;
};

struct TcpReassemblyOptions {
  std::size_t max_flows = 4096;            // directions tracked at once
  std::size_t max_flow_bytes = 65535 + 2;  // bytes held per direction: one maximum-size message
  std::size_t memory_budget_bytes = std::size_t{16} << 20U;  // bytes held by all flows together
  // A segment starting further than this ahead of the next expected byte is taken as a capture gap:
  // everything held is dropped and the stream resynchronises at that segment. One this far behind
  // is an old duplicate, unless 8 in a row continue one another (then it is the stream).
  std::uint32_t window_bytes = 256 * 1024;
  // Packet time without data (or SYN, FIN) after which a flow is dropped, and packet time a hole
  // may wait for its bytes before the stream goes on without them.
  std::int64_t idle_timeout_ns = 60'000'000'000;
  std::int64_t hole_timeout_ns = 1'000'000'000;
  std::uint64_t hash_seed = 0;  // keys the flow hash against collision floods; 0 picks a random one
};

// Counters since construction.
// Each counter has a single writer, the worker thread, which updates it with a relaxed load and
// store rather than a read-modify-write: no increment can be lost with one writer, and a plain
// store is cheaper than a locked add. Readers get each counter whole and never decreasing, but
// counters are not a consistent snapshot of one another.
struct TcpReassemblyStats {
  SingleWriterCounter segments;       // add() calls, bare ACKs included
  SingleWriterCounter messages;       // messages passed to on_message
  SingleWriterCounter out_of_order;   // segments held until a hole before them filled
  SingleWriterCounter duplicates;     // segments carrying bytes that had already arrived
  SingleWriterCounter gaps;           // holes given up on
  SingleWriterCounter resyncs;        // message starts found again after a gap
  SingleWriterCounter bytes_skipped;  // payload bytes captured but never delivered
  SingleWriterCounter midstream;      // flows first seen without a SYN
  SingleWriterCounter evicted;        // flows dropped because the table or pool was full
  SingleWriterCounter timed_out;      // flows dropped after idle_timeout_ns
  // Messages that span segments and, with their length prefix, exceed max_flow_bytes: skipped
  // (one that lies whole in a segment is delivered straight from it, unless a resync had
  // buffered its start).
  SingleWriterCounter oversized;
  SingleWriterCounter flows_closed;  // flows ended by FIN or RST
};

// A borrowed callable taking (const TcpFlowKey&, std::span<const std::byte>): the direction a
// message was sent in and the message. Like a function_ref, passing it costs no allocation; the
// callable must outlive the call it is passed to.
class MessageSink {
 public:
  // Not a copy constructor: a sink is never wrapped in another.
  template <class F,
            std::enable_if_t<!std::is_same_v<std::remove_cvref_t<F>, MessageSink>, int> = 0>
  explicit MessageSink(F& f) noexcept
      : target_(const_cast<void*>(static_cast<const void*>(std::addressof(f)))), call_(&call<F>) {}

  void operator()(const TcpFlowKey& key, std::span<const std::byte> message) const noexcept {
    call_(target_, key, message);
  }

 private:
  template <class F>
  static void call(void* target, const TcpFlowKey& key,
                   std::span<const std::byte> message) noexcept {
    (*static_cast<F*>(target))(key, message);
  }

  void* target_;
  void (*call_)(void*, const TcpFlowKey&, std::span<const std::byte>) noexcept;
};

class TcpReassembler {
 public:
  // Throws std::invalid_argument for options that cannot work (zero capacities, a budget smaller
  // than one flow's buffer, non-positive timeouts) and std::bad_alloc.
  explicit TcpReassembler(TcpReassemblyOptions options = {});
  // What the constructor allocates for these options (valid ones).
  static std::size_t planned_bytes(const TcpReassemblyOptions& options) noexcept;
  ~TcpReassembler();
  TcpReassembler(const TcpReassembler&) = delete;
  TcpReassembler& operator=(const TcpReassembler&) = delete;

  // One TCP segment of a DNS-port flow. flags holds the TCP header flags (kTcpSyn, kTcpFin,
  // kTcpRst); payload is the TCP payload. Every message completed by this segment is passed,
  // without its length prefix, to on_message(key, message) before add() returns. The span is valid
  // only during that call, and on_message must not call back into this object. now_ns is packet
  // time; it should not go backwards by more than the timeouts.
  template <class F>
  void add(const TcpFlowKey& key, std::uint32_t seq, std::uint8_t flags,
           std::span<const std::byte> payload, std::int64_t now_ns, F&& on_message) noexcept {
    static_assert(std::is_nothrow_invocable_v<F&, const TcpFlowKey&, std::span<const std::byte>>,
                  "on_message(key, message) must be noexcept, as add() is");
    add_segment(key, seq, flags, payload, now_ns, MessageSink{on_message});
  }

  // add() and expire() for callers that already hold a MessageSink.
  void add_segment(const TcpFlowKey& key, std::uint32_t seq, std::uint8_t flags,
                   std::span<const std::byte> payload, std::int64_t now_ns,
                   MessageSink on_message) noexcept;

  // Drops flows idle for idle_timeout_ns and gives up holes older than hole_timeout_ns. Messages
  // that skipping such a hole lets through go to on_message(key, message), key telling which flow
  // they belong to; an idle flow that holds data behind a hole gives up its holes first, so what
  // waited behind them is delivered before the flow goes. Call it every second or so of packet
  // time: it costs O(1) per flow it drops or hole it skips.
  template <class F>
  void expire(std::int64_t now_ns, F&& on_message) noexcept {
    static_assert(std::is_nothrow_invocable_v<F&, const TcpFlowKey&, std::span<const std::byte>>,
                  "on_message(key, message) must be noexcept, as expire() is");
    expire_flows(now_ns, MessageSink{on_message});
  }

  // Only drops idle flows. Holes are then given up when their flow's next segment arrives.
  void expire(std::int64_t now_ns) noexcept;

  // At the end of the input: gives up every hole of every flow, as a hole that timed out is given
  // up (counted in gaps, resyncs and bytes_skipped), so the messages that waited behind them go to
  // on_message. The flows stay, with nothing held.
  template <class F>
  void flush(std::int64_t now_ns, F&& on_message) noexcept {
    static_assert(std::is_nothrow_invocable_v<F&, const TcpFlowKey&, std::span<const std::byte>>,
                  "on_message(key, message) must be noexcept, as flush() is");
    flush_holes(now_ns, MessageSink{on_message});
  }

  void flush_holes(std::int64_t now_ns, MessageSink on_message) noexcept;

  void expire_flows(std::int64_t now_ns, MessageSink on_message) noexcept;

  [[nodiscard]] const TcpReassemblyStats& stats() const noexcept { return stats_; }

  // Flows in the table (at most max_flows).
  [[nodiscard]] std::size_t flows() const noexcept { return flow_count_; }

  // Bytes of the pool held by flows, counted in whole chunks (at most memory_budget_bytes).
  [[nodiscard]] std::size_t memory_bytes() const noexcept;

 private:
  static constexpr std::uint32_t kNoIndex = 0xFFFF'FFFF;

  struct Link {  // a flow's place in one List
    std::uint32_t prev = kNoIndex;
    std::uint32_t next = kNoIndex;
  };

  struct List {  // intrusive doubly linked list of flow indices, oldest first
    std::uint32_t head = kNoIndex;
    std::uint32_t tail = kNoIndex;
    std::size_t size = 0;
  };

  struct Flow;

  // Flow table.
  [[nodiscard]] std::uint64_t hash_key(const TcpFlowKey& key) const noexcept;
  [[nodiscard]] std::uint32_t find(const TcpFlowKey& key, std::uint64_t hash) const noexcept;
  std::uint32_t create(const TcpFlowKey& key, std::uint64_t hash, std::int64_t now_ns) noexcept;
  void remove(std::uint32_t index) noexcept;
  void close(std::uint32_t index) noexcept;
  void close_if_finished(Flow& f) noexcept;
  void touch(Flow& f, std::int64_t now_ns) noexcept;
  void list_push_back(List& list, Link Flow::*link, std::uint32_t index) noexcept;
  void list_remove(List& list, Link Flow::*link, std::uint32_t index) noexcept;
  [[nodiscard]] std::uint32_t index_of(const Flow& f) const noexcept;
  // sink: where an idle flow's messages behind its holes go before it is dropped (null: lost).
  void expire_idle(std::int64_t now_ns, MessageSink* sink) noexcept;
  // Gives up the flow's holes one after the other until it holds nothing.
  void skip_all_holes(Flow& f, std::int64_t now_ns, MessageSink& sink) noexcept;

  // Byte pool.
  [[nodiscard]] std::size_t slot_of(const Flow& f, std::uint32_t seq) const noexcept;
  [[nodiscard]] std::uint32_t alloc_chunk(std::uint32_t owner) noexcept;
  void free_chunk(Flow& f, std::size_t slot) noexcept;
  void free_all_chunks(Flow& f) noexcept;
  void release_if_empty(Flow& f) noexcept;
  void store(Flow& f, std::uint32_t seq, std::span<const std::byte> data) noexcept;
  void load(const Flow& f, std::uint32_t seq, std::span<std::byte> out) const noexcept;
  [[nodiscard]] std::span<const std::byte> view(const Flow& f, std::uint32_t seq,
                                                std::size_t size) noexcept;
  void advance_msg(Flow& f, std::uint32_t seq) noexcept;

  // Stream.
  void process(Flow& f, std::uint32_t seq, std::span<const std::byte> data, std::int64_t now_ns,
               MessageSink& sink) noexcept;
  void consume(Flow& f, std::span<const std::byte> data, bool segment_start,
               MessageSink& sink) noexcept;
  [[nodiscard]] bool hold(Flow& f, std::uint32_t seq, std::span<const std::byte> data,
                          std::int64_t now_ns) noexcept;
  void absorb(Flow& f, std::int64_t now_ns, MessageSink& sink) noexcept;
  void drain(Flow& f, MessageSink& sink) noexcept;
  [[nodiscard]] bool find_start(Flow& f) noexcept;
  void synced(Flow& f) noexcept;
  void give_up_hole(Flow& f, std::uint32_t target) noexcept;
  void skip_hole(Flow& f, std::int64_t now_ns, MessageSink& sink) noexcept;
  void jump(Flow& f, std::uint32_t seq) noexcept;
  [[nodiscard]] std::uint64_t pending_bytes(const Flow& f) const noexcept;
  void deliver(const Flow& f, std::span<const std::byte> message, MessageSink& sink) noexcept;

  TcpReassemblyOptions options_;
  std::array<std::uint64_t, 5> hash_keys_{};  // one per 8-byte word of a key, from hash_seed
  std::uint32_t slots_per_flow_;  // power of two, so slot addressing survives sequence wrap-around
  std::uint32_t bucket_mask_;

  std::vector<Flow> flows_;
  std::vector<std::uint32_t> buckets_;  // head flow index of each hash chain
  // Per flow, the chunk index for each slot of its window; written by create(), not before.
  std::unique_ptr<std::uint32_t[]> slots_;
  std::uint32_t free_flow_ = kNoIndex;  // head of the free-slot chain through Flow::bucket_next
  std::size_t flow_count_ = 0;
  List lru_;       // all flows, by last data
  List buffered_;  // flows holding chunks, by last data: evicted first when the pool runs dry
  List holes_;     // flows waiting on a hole, by when the hole appeared

  std::unique_ptr<std::byte[]> pool_;
  std::vector<std::uint32_t> chunk_next_;  // free chunk chain
  std::uint32_t pool_chunks_;
  std::uint32_t free_chunk_;
  std::uint32_t untouched_chunk_ = 0;  // chunks from here on were never used: no page touched yet
  std::uint32_t chunks_used_ = 0;

  std::unique_ptr<std::byte[]> scratch_;  // a message that spans chunks, copied whole
  bool in_callback_ = false;

  TcpReassemblyStats stats_;
};

}  // namespace dnsmon::detail
