#include "dnsmon/parser/detail/ip_reassembly.hpp"

#include <algorithm>
#include <bit>
#include <cassert>
#include <cstring>
#include <stdexcept>
#include <string>

#include "dnsmon/common/bytes.hpp"
#include "dnsmon/common/siphash.hpp"

namespace dnsmon::detail {
namespace {

bool same_key(const FragmentKey& a, const FragmentKey& b) noexcept {
  if (a.family != b.family || a.id != b.id) {
    return false;
  }
  if (a.family == 4) {
    return a.proto == b.proto && std::memcmp(a.src.data(), b.src.data(), 4) == 0 &&
           std::memcmp(a.dst.data(), b.dst.data(), 4) == 0;
  }
  return a.src == b.src && a.dst == b.dst;  // IPv6: Next Header is not part of the identity
}

void require(bool ok, const char* what) {
  if (!ok) {
    throw std::invalid_argument(std::string("IpReassemblyOptions: ") + what);
  }
}

}  // namespace

IpReassemblyStats IpReassemblyCounters::snapshot() const noexcept {
  IpReassemblyStats s;
  s.fragments = fragments.get();
  s.reassembled = reassembled.get();
  s.timed_out = timed_out.get();
  s.evicted = evicted.get();
  s.over_budget = over_budget.get();
  s.too_large = too_large.get();
  s.too_many_fragments = too_many_fragments.get();
  s.overlaps = overlaps.get();
  s.duplicates = duplicates.get();
  s.invalid = invalid.get();
  s.in_progress = in_progress.get();
  s.memory_bytes = memory_bytes.get();
  return s;
}

IpReassembler::IpReassembler(IpReassemblyOptions options) : options_(options) {
  // The upper bounds keep slot and page indices in 32 bits and the tables of a reasonable size.
  require(options_.max_datagrams >= 1 && options_.max_datagrams <= (std::size_t{1} << 24U),
          "max_datagrams must be between 1 and 2^24");
  require(options_.max_datagram_bytes >= 1 && options_.max_datagram_bytes <= 65535,
          "max_datagram_bytes must be between 1 and 65535 (the IP length fields are 16 bits)");
  require(options_.max_fragments >= 1 && options_.max_fragments <= 65536 / 8,
          "max_fragments must be between 1 and 8192 (8-byte fragments of 64 KiB)");
  require(options_.memory_budget_bytes >= kPageBytes &&
              options_.memory_budget_bytes / kPageBytes < kNone,
          "memory_budget_bytes must hold between 1 and 2^32 - 2 pages of 512 bytes");
  require(options_.timeout_ns > 0, "timeout_ns must be positive");

  sip_key_ = derive_keys<2>(seed_or_random(options_.hash_seed));

  pages_per_slot_ = (options_.max_datagram_bytes + kPageBytes - 1) / kPageBytes;
  const std::size_t page_count = options_.memory_budget_bytes / kPageBytes;
  const std::size_t bucket_count = std::bit_ceil(2 * options_.max_datagrams);

  slots_.resize(options_.max_datagrams);
  ranges_ =
      std::make_unique_for_overwrite<Range[]>(options_.max_datagrams * options_.max_fragments);
  page_map_ =
      std::make_unique_for_overwrite<std::uint32_t[]>(options_.max_datagrams * pages_per_slot_);
  buckets_.assign(bucket_count, kNone);
  // Both free lists are stacks whose capacity is reserved here, so push_back never allocates.
  free_slots_.reserve(options_.max_datagrams);
  for (std::size_t i = options_.max_datagrams; i-- > 0;) {
    free_slots_.push_back(static_cast<std::uint32_t>(i));
  }
  free_pages_.reserve(page_count);
  for (std::size_t i = page_count; i-- > 0;) {
    free_pages_.push_back(static_cast<std::uint32_t>(i));
  }
  // Not zeroed: a page is written before it is read, and untouched pages stay unbacked by the OS.
  pool_ = std::make_unique_for_overwrite<std::byte[]>(page_count * kPageBytes);
  assembly_.resize(options_.max_datagram_bytes);
}

std::size_t IpReassembler::planned_bytes(const IpReassemblyOptions& o) noexcept {
  const std::size_t pages_per_slot = (o.max_datagram_bytes + kPageBytes - 1) / kPageBytes;
  const std::size_t page_count = o.memory_budget_bytes / kPageBytes;
  return o.max_datagrams * (sizeof(Slot) + o.max_fragments * sizeof(Range) +
                            pages_per_slot * sizeof(std::uint32_t) + sizeof(std::uint32_t)) +
         std::bit_ceil(2 * o.max_datagrams) * sizeof(std::uint32_t) +
         page_count * (kPageBytes + sizeof(std::uint32_t)) + o.max_datagram_bytes;
}

void IpReassembler::check_owner() noexcept {
#ifndef NDEBUG
  if (owner_ == std::thread::id{}) {
    owner_ = std::this_thread::get_id();
  }
  assert(owner_ == std::this_thread::get_id() && "an IpReassembler is used by one thread");
#endif
}

std::uint64_t IpReassembler::hash(const FragmentKey& key) const noexcept {
  SipHasher h{sip_key_};
  if (key.family == 4) {
    h.word(std::uint64_t{key.id} | (std::uint64_t{key.proto} << 32U) | (std::uint64_t{4} << 40U));
    h.word(std::uint64_t{bytes::load_host32(key.src.data())} |
           (std::uint64_t{bytes::load_host32(key.dst.data())} << 32U));
  } else {
    h.word(std::uint64_t{key.id} | (std::uint64_t{6} << 40U));
    h.word(bytes::load_host64(key.src.data()));
    h.word(bytes::load_host64(key.src.data() + 8));
    h.word(bytes::load_host64(key.dst.data()));
    h.word(bytes::load_host64(key.dst.data() + 8));
  }
  return h.finish();
}

std::uint32_t IpReassembler::find(const FragmentKey& key, std::uint32_t bucket) const noexcept {
  for (std::uint32_t i = buckets_[bucket]; i != kNone; i = slots_[i].bucket_next) {
    if (same_key(slots_[i].key, key)) {
      return i;
    }
  }
  return kNone;
}

std::uint32_t IpReassembler::create(const FragmentKey& key, std::uint32_t bucket,
                                    std::int64_t now_ns) noexcept {
  if (free_slots_.empty()) {
    release(age_head_);
    counters_.evicted.add();
  }
  const std::uint32_t index = free_slots_.back();
  free_slots_.pop_back();
  Slot& s = slots_[index];
  s = Slot{};
  const auto map = pages(index);
  std::fill(map.begin(), map.end(), kNone);  // release() keeps it so; here for a first use
  s.key = key;
  s.first_seen_ns = now_ns;
  s.bucket = bucket;
  s.bucket_next = buckets_[bucket];
  buckets_[bucket] = index;
  s.proto = key.family == 4 ? key.proto : 0;  // IPv6 takes it from the offset-zero fragment
  // The clock never runs backwards, so appending keeps the age list sorted by first-seen time.
  s.older = age_tail_;
  if (age_tail_ != kNone) {
    slots_[age_tail_].newer = index;
  } else {
    age_head_ = index;
  }
  age_tail_ = index;
  ++in_progress_;
  return index;
}

void IpReassembler::release(std::uint32_t index) noexcept {
  assert(index < slots_.size() && "release() needs a slot in use");
  Slot& s = slots_[index];
  std::uint32_t* link = &buckets_[s.bucket];
  while (*link != index) {
    assert(*link != kNone && "a slot in use is in its bucket chain");
    link = &slots_[*link].bucket_next;
  }
  *link = s.bucket_next;

  if (s.older != kNone) {
    slots_[s.older].newer = s.newer;
  } else {
    age_head_ = s.newer;
  }
  if (s.newer != kNone) {
    slots_[s.newer].older = s.older;
  } else {
    age_tail_ = s.older;
  }

  // Pages lie below max_end only, so this loop is as short as the datagram.
  const auto map = pages(index);
  const std::size_t used = (std::size_t{s.max_end} + kPageBytes - 1) / kPageBytes;
  for (std::size_t p = 0; p < used; ++p) {
    if (map[p] != kNone) {
      free_pages_.push_back(map[p]);
      map[p] = kNone;
      --used_pages_;
    }
  }
  s = Slot{};
  free_slots_.push_back(index);
  --in_progress_;
}

void IpReassembler::expire_until(std::int64_t now_ns) noexcept {
  clock_ns_ = std::max(clock_ns_, now_ns);
  // Unsigned arithmetic: the age is exact even when hostile timestamps span more than 2^63 ns.
  const auto now = static_cast<std::uint64_t>(clock_ns_);
  const auto timeout = static_cast<std::uint64_t>(options_.timeout_ns);
  while (age_head_ != kNone &&
         now - static_cast<std::uint64_t>(slots_[age_head_].first_seen_ns) > timeout) {
    release(age_head_);
    counters_.timed_out.add();
  }
}

void IpReassembler::expire(std::int64_t now_ns) noexcept {
  check_owner();
  expire_until(now_ns);
  publish_gauges();
}

void IpReassembler::publish_gauges() noexcept {
  counters_.in_progress.set(in_progress_);
  counters_.memory_bytes.set(used_pages_ * kPageBytes);
}

std::span<IpReassembler::Range> IpReassembler::ranges(std::uint32_t slot) noexcept {
  return {ranges_.get() + std::size_t{slot} * options_.max_fragments, options_.max_fragments};
}

std::span<std::uint32_t> IpReassembler::pages(std::uint32_t slot) noexcept {
  return {page_map_.get() + std::size_t{slot} * pages_per_slot_, pages_per_slot_};
}

std::byte* IpReassembler::page(std::uint32_t index) noexcept {
  return pool_.get() + std::size_t{index} * kPageBytes;
}

// Calls piece(page bytes, payload bytes, n) for each run of payload that lies in one page, in
// order, until piece returns false; returns whether every call returned true.
template <class Piece>
bool IpReassembler::each_page_piece(std::uint32_t slot, std::uint32_t offset,
                                    std::span<const std::byte> payload, Piece piece) noexcept {
  const auto map = pages(slot);
  std::size_t done = 0;
  while (done < payload.size()) {
    const std::size_t at = offset + done;
    const std::size_t in_page = at % kPageBytes;
    const std::size_t n = std::min(kPageBytes - in_page, payload.size() - done);
    assert(map[at / kPageBytes] != kNone && "a held range has its pages (reserve_pages() ran)");
    if (!piece(page(map[at / kPageBytes]) + in_page, payload.data() + done, n)) {
      return false;
    }
    done += n;
  }
  return true;
}

bool IpReassembler::same_bytes(std::uint32_t slot, std::uint32_t offset,
                               std::span<const std::byte> payload) noexcept {
  return each_page_piece(slot, offset, payload,
                         [](const std::byte* held, const std::byte* in, std::size_t n) {
                           return std::memcmp(held, in, n) == 0;
                         });
}

void IpReassembler::store(std::uint32_t slot, std::uint32_t offset,
                          std::span<const std::byte> payload) noexcept {
  each_page_piece(slot, offset, payload, [](std::byte* held, const std::byte* in, std::size_t n) {
    std::memcpy(held, in, n);
    return true;
  });
}

bool IpReassembler::reserve_pages(std::uint32_t slot, std::uint32_t start,
                                  std::uint32_t end) noexcept {
  const auto map = pages(slot);
  const std::size_t first = start / kPageBytes;
  const std::size_t last = (end - 1) / kPageBytes;
  std::size_t need = 0;
  for (std::size_t p = first; p <= last; ++p) {
    need += map[p] == kNone ? 1U : 0U;
  }
  // Evicting everything else would still not make room: keep the others and drop this one.
  if (need > free_pages_.size() + (used_pages_ - slots_[slot].page_count)) {
    return false;
  }
  while (free_pages_.size() < need) {
    const std::uint32_t victim = age_head_ != slot ? age_head_ : slots_[age_head_].newer;
    assert(victim != kNone && "the check above leaves another datagram to evict");
    release(victim);
    counters_.over_budget.add();
  }
  for (std::size_t p = first; p <= last; ++p) {
    if (map[p] == kNone) {
      map[p] = free_pages_.back();
      free_pages_.pop_back();
      ++used_pages_;
      ++slots_[slot].page_count;
    }
  }
  return true;
}

std::span<const std::byte> IpReassembler::assemble(std::uint32_t slot) noexcept {
  const auto map = pages(slot);
  const std::size_t size = slots_[slot].end_bytes;
  for (std::size_t at = 0; at < size; at += kPageBytes) {
    assert(map[at / kPageBytes] != kNone && "a complete datagram has every page");
    std::memcpy(assembly_.data() + at, page(map[at / kPageBytes]), std::min(kPageBytes, size - at));
  }
  return std::span<const std::byte>(assembly_).first(size);
}

FragmentResult IpReassembler::add(const FragmentKey& key, std::uint32_t offset_bytes, bool more,
                                  std::span<const std::byte> payload, std::int64_t now_ns,
                                  ReassembledDatagram& out) noexcept {
  check_owner();
  counters_.fragments.add();
  expire_until(now_ns);
  const FragmentResult result = add_fragment(key, offset_bytes, more, payload, out);
  publish_gauges();
  return result;
}

FragmentResult IpReassembler::add_fragment(const FragmentKey& key, std::uint32_t offset, bool more,
                                           std::span<const std::byte> payload,
                                           ReassembledDatagram& out) noexcept {
  // Refused alone: no correct stack sends these, and they say nothing reliable about a datagram.
  if ((key.family != 4 && key.family != 6) || payload.empty() || offset % 8 != 0 ||
      (more && payload.size() % 8 != 0)) {
    counters_.invalid.add();
    return FragmentResult::Dropped;
  }
  const std::uint64_t end64 = std::uint64_t{offset} + payload.size();
  const bool too_large = end64 > options_.max_datagram_bytes;
  if (offset == 0 && !more) {
    if (too_large) {
      counters_.too_large.add();
      return FragmentResult::Dropped;
    }
    // RFC 6946: an atomic fragment is a whole datagram and never joins a queue under its key.
    out = ReassembledDatagram{payload, key.proto};
    counters_.reassembled.add();
    return FragmentResult::Complete;
  }

  const auto bucket = static_cast<std::uint32_t>(hash(key) & (buckets_.size() - 1));
  std::uint32_t slot = find(key, bucket);
  if (too_large) {
    if (slot != kNone) {
      release(slot);  // it can never complete within the bound; free its pages now
    }
    counters_.too_large.add();
    return FragmentResult::Dropped;
  }
  const auto start = offset;
  const auto end = static_cast<std::uint32_t>(end64);
  if (slot == kNone) {
    slot = create(key, bucket, clock_ns_);
  }
  Slot& s = slots_[slot];
  auto drop = [&](SingleWriterCounter& reason) noexcept {
    release(slot);
    reason.add();
    return FragmentResult::Dropped;
  };

  if (!more && ((s.has_end && s.end_bytes != end) || end < s.max_end)) {
    return drop(counters_.invalid);  // a second, different end, or bytes held past this end
  }
  if (more && s.has_end && end > s.end_bytes) {
    return drop(counters_.invalid);
  }
  // Held ranges are sorted and disjoint: the first one ending after start is the only candidate
  // for an overlap, and otherwise the place to insert.
  const auto held = ranges(slot).first(s.fragments);
  const auto it =
      std::find_if(held.begin(), held.end(), [&](const Range& r) { return r.end > start; });
  if (it != held.end() && it->start < end) {
    if (it->start != start || it->end != end || !same_bytes(slot, start, payload)) {
      return drop(counters_.overlaps);
    }
    const bool held_is_last = s.has_end && s.end_bytes == end;
    if (held_is_last == more) {
      return drop(counters_.invalid);  // same bytes, but only one copy says it is the last
    }
    counters_.duplicates.add();
    return FragmentResult::Held;
  }
  if (s.fragments == options_.max_fragments) {
    return drop(counters_.too_many_fragments);
  }
  if (!reserve_pages(slot, start, end)) {
    return drop(counters_.over_budget);
  }

  store(slot, start, payload);
  const auto pos = static_cast<std::size_t>(it - held.begin());
  const auto all = ranges(slot);
  std::copy_backward(all.begin() + static_cast<std::ptrdiff_t>(pos),
                     all.begin() + static_cast<std::ptrdiff_t>(s.fragments),
                     all.begin() + static_cast<std::ptrdiff_t>(s.fragments) + 1);
  all[pos] = Range{start, end};
  ++s.fragments;
  s.held_bytes += static_cast<std::uint32_t>(payload.size());
  s.max_end = std::max(s.max_end, end);
  if (!more) {
    s.has_end = true;
    s.end_bytes = end;
  }
  if (start == 0 && key.family == 6) {
    s.proto = key.proto;
  }
  // Ranges are disjoint and end by end_bytes, so once they add up to it there is no hole left.
  if (!s.has_end || s.held_bytes != s.end_bytes) {
    return FragmentResult::Held;
  }
  out = ReassembledDatagram{assemble(slot), s.proto};
  release(slot);
  counters_.reassembled.add();
  return FragmentResult::Complete;
}

}  // namespace dnsmon::detail
