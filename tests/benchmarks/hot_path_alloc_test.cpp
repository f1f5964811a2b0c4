// Proves, without timing anything, that the per-frame path allocates nothing in steady state: a
// frame goes into the ring, out of it, through the Parser and into the WorkerCounters, exactly as a
// worker does it, and every heap allocation in the process is counted meanwhile.
//
// Both doors to the heap are counted. operator new and delete are replaced here, and so are malloc
// and friends: ldns (and any C library) calls malloc directly, which a counting operator new alone
// would never see. Without a sanitizer, this binary defines malloc/free/calloc/realloc and the
// aligned forms, forwarding to glibc's __libc_* entry points; the dynamic linker then resolves
// every library's malloc to these. Under ASan or TSan, whose runtimes own malloc, the count comes
// from the sanitizer's allocation hook instead.
//
// The frames come from the project's generator (tools/gen_pcap --profile bench): the benchmark mix
// of IPv4/IPv6, VLAN tags, DNS over TCP with handshakes, EDNS options and compressed answers.
#include <array>
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <span>
#include <string>
#include <unistd.h>
#include <vector>

#include <catch2/catch.hpp>

#include "dnsmon/metrics.hpp"
#include "dnsmon/parser.hpp"
#include "dnsmon/ring.hpp"

#include "bench_capture.hpp"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define DNSMON_SANITIZER_MALLOC 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(memory_sanitizer)
#define DNSMON_SANITIZER_MALLOC 1
#endif
#endif

namespace {

// Relaxed: plain event counts, read on the thread that made the allocations.
std::atomic<std::uint64_t> g_allocs{0};       // every heap allocation (malloc level)
std::atomic<std::uint64_t> g_alloc_bytes{0};  // their requested sizes
std::atomic<std::uint64_t> g_news{0};         // of which through operator new

void count_alloc(std::size_t size) noexcept {
  g_allocs.fetch_add(1, std::memory_order_relaxed);
  g_alloc_bytes.fetch_add(size, std::memory_order_relaxed);
}

void* counted_new(std::size_t size) noexcept {
  g_news.fetch_add(1, std::memory_order_relaxed);
  return std::malloc(size == 0 ? 1 : size);  // counted at the malloc level
}

}  // namespace

#ifdef DNSMON_SANITIZER_MALLOC

// From <sanitizer/allocator_interface.h>, which GCC does not install; the ASan and TSan runtimes of
// both GCC and clang export it.
// NOLINTNEXTLINE(bugprone-reserved-identifier,readability-identifier-naming): its name
extern "C" int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void*,
                                                                             std::size_t),
                                                         void (*free_hook)(const volatile void*));

namespace {
void on_sanitizer_malloc(const volatile void* /*ptr*/, std::size_t size) {
  count_alloc(size);
}

void on_sanitizer_free(const volatile void* /*ptr*/) {
}

// Installed before main, so that the count covers everything the tests do.
[[maybe_unused]] const int g_hooks_installed =
    __sanitizer_install_malloc_and_free_hooks(on_sanitizer_malloc, on_sanitizer_free);
}  // namespace

#else

// glibc's own allocator, exported for exactly this purpose (replacing malloc while keeping it).
extern "C" {
// NOLINTBEGIN(bugprone-reserved-identifier,readability-identifier-naming): glibc's names
void* __libc_malloc(std::size_t size);
void __libc_free(void* ptr);
void* __libc_calloc(std::size_t n, std::size_t size);
void* __libc_realloc(void* ptr, std::size_t size);
void* __libc_memalign(std::size_t alignment, std::size_t size);

// NOLINTEND(bugprone-reserved-identifier,readability-identifier-naming)

void* malloc(std::size_t size) noexcept {
  count_alloc(size);
  return __libc_malloc(size);
}

void free(void* ptr) noexcept {
  __libc_free(ptr);
}

void* calloc(std::size_t n, std::size_t size) noexcept {
  count_alloc(n * size);
  return __libc_calloc(n, size);
}

void* realloc(void* ptr, std::size_t size) noexcept {
  count_alloc(size);  // growing in place still asks the allocator
  return __libc_realloc(ptr, size);
}

void* memalign(std::size_t alignment, std::size_t size) noexcept {
  count_alloc(size);
  return __libc_memalign(alignment, size);
}

void* aligned_alloc(std::size_t alignment, std::size_t size) noexcept {
  count_alloc(size);
  return __libc_memalign(alignment, size);
}

int posix_memalign(void** out, std::size_t alignment, std::size_t size) noexcept {
  count_alloc(size);
  void* p = __libc_memalign(alignment, size);
  if (p == nullptr) {
    return ENOMEM;
  }
  *out = p;
  return 0;
}

void* valloc(std::size_t size) noexcept {
  count_alloc(size);
  return __libc_memalign(static_cast<std::size_t>(sysconf(_SC_PAGESIZE)), size);
}
}

#endif  // DNSMON_SANITIZER_MALLOC

// Every unaligned form is replaced (a sanitizer runtime would otherwise supply the missing ones and
// mismatch them with these deletes); the aligned forms keep the library's, which use
// aligned_alloc/posix_memalign and are therefore counted at the malloc level.
void* operator new(std::size_t size) {
  if (void* p = counted_new(size)) {
    return p;
  }
  throw std::bad_alloc();
}

void* operator new[](std::size_t size) {
  if (void* p = counted_new(size)) {
    return p;
  }
  throw std::bad_alloc();
}

void* operator new(std::size_t size, const std::nothrow_t& /*tag*/) noexcept {
  return counted_new(size);
}

void* operator new[](std::size_t size, const std::nothrow_t& /*tag*/) noexcept {
  return counted_new(size);
}

// noinline: inlined, free() here meets the new-expression in a test and GCC reports a
// new/free mismatch (-Wmismatched-new-delete), although the pair is ours and consistent.
[[gnu::noinline]] void operator delete(void* p) noexcept {
  std::free(p);
}

[[gnu::noinline]] void operator delete[](void* p) noexcept {
  std::free(p);
}

[[gnu::noinline]] void operator delete(void* p, std::size_t /*size*/) noexcept {
  std::free(p);
}

[[gnu::noinline]] void operator delete[](void* p, std::size_t /*size*/) noexcept {
  std::free(p);
}

[[gnu::noinline]] void operator delete(void* p, const std::nothrow_t& /*tag*/) noexcept {
  std::free(p);
}

[[gnu::noinline]] void operator delete[](void* p, const std::nothrow_t& /*tag*/) noexcept {
  std::free(p);
}

namespace {

struct AllocSnapshot {
  std::uint64_t allocs = 0, bytes = 0, news = 0;

  static AllocSnapshot now() noexcept {
    return {g_allocs.load(std::memory_order_relaxed), g_alloc_bytes.load(std::memory_order_relaxed),
            g_news.load(std::memory_order_relaxed)};
  }

  AllocSnapshot operator-(const AllocSnapshot& before) const noexcept {
    return {allocs - before.allocs, bytes - before.bytes, news - before.news};
  }
};

constexpr std::size_t kWarmupFrames = 5'000;
constexpr std::size_t kMeasuredFrames = 100'000;

using Frame = dnsmon::bench::CapturedFrame;
using Capture = dnsmon::bench::BenchCapture;

const Capture& bench_capture() {
  static const Capture capture =
      dnsmon::bench::load_bench_capture(kWarmupFrames + kMeasuredFrames, 5);
  return capture;
}

// What a worker's sink does with each message (daemon/src/pipeline.cpp), minus the message log.
struct CountingSink final : dnsmon::MessageSink {
  dnsmon::WorkerCounters* counters = nullptr;
  std::uint64_t messages = 0;

  void on_message(const dnsmon::DnsMessage& m) override {
    ++messages;
    if (!m.malformed_question) {
      counters->record_message(m);
    }
  }
};

}  // namespace

// A volatile store keeps the compiler from eliding the new/delete pair of the self-check.
int* volatile g_escape = nullptr;

TEST_CASE("the allocation counter sees operator new and malloc called inside C libraries",
          "[alloc]") {
  const auto before = AllocSnapshot::now();
  g_escape = new int(42);  // NOLINT(cppcoreguidelines-owning-memory): the point of the test
  char* copy = strdup("counted by malloc, not by operator new");  // libc calls malloc itself
  const auto used = AllocSnapshot::now() - before;
  delete g_escape;  // NOLINT(cppcoreguidelines-owning-memory)
  std::free(copy);
  CHECK(used.news == 1);
  CHECK(used.allocs == 2);
}

TEST_CASE("the ring and the worker counters allocate nothing per frame", "[alloc]") {
  const Capture& cap = bench_capture();
  REQUIRE(cap.frames.size() == kWarmupFrames + kMeasuredFrames);
  dnsmon::MetricsHub hub(dnsmon::BuildInfo{"test", "ldns", "pcap"});
  dnsmon::WorkerCounters& counters = hub.add_worker();
  dnsmon::FrameRing ring(1024, 4096);

  // A few hundred decoded messages, made before the measurement, stand in for the parser's output.
  dnsmon::Parser parser;
  std::vector<dnsmon::DnsMessage> samples;

  struct Keep final : dnsmon::MessageSink {
    std::vector<dnsmon::DnsMessage>* out = nullptr;

    void on_message(const dnsmon::DnsMessage& m) override {
      if (out->size() < 512) {
        out->push_back(m);
      }
    }
  } keep;

  keep.out = &samples;
  for (std::size_t i = 0; i < kWarmupFrames; ++i) {
    dnsmon::FrameView v{cap.frames[i].header, cap.data(cap.frames[i])};
    (void)parser.parse(v, keep);
  }
  REQUIRE(samples.size() == 512);

  // No Catch2 assertion inside the measured loops: its reporters may allocate.
  std::uint64_t frames_seen = 0;
  auto run = [&](std::size_t first, std::size_t count) {
    for (std::size_t i = first; i < first + count; ++i) {
      const Frame& f = cap.frames[i];
      dnsmon::FrameView v;
      if (!ring.try_push(f.header, cap.data(f)) || !ring.front(v)) {
        return;
      }
      counters.record_frame(v.header.wire_len, dnsmon::ParseStatus::Ok);
      counters.record_message(samples[i % samples.size()]);
      ring.pop();
      ++frames_seen;
    }
  };
  run(0, kWarmupFrames);
  const auto before = AllocSnapshot::now();
  run(kWarmupFrames, kMeasuredFrames);
  const auto used = AllocSnapshot::now() - before;
  REQUIRE(frames_seen == kWarmupFrames + kMeasuredFrames);
  INFO(used.allocs << " allocations (" << used.bytes << " bytes, " << used.news
                   << " through operator new) over " << kMeasuredFrames << " frames");
  CHECK(used.allocs == 0);
}

// The parser decodes question names itself: ldns_wire2dname malloc'ed twice per message.
TEST_CASE("the whole hot path (ring, parser, counters) allocates nothing per frame in steady state",
          "[alloc]") {
  const Capture& cap = bench_capture();
  REQUIRE(cap.frames.size() == kWarmupFrames + kMeasuredFrames);
  dnsmon::MetricsHub hub(dnsmon::BuildInfo{"test", "ldns", "pcap"});
  dnsmon::WorkerCounters& counters = hub.add_worker();
  dnsmon::FrameRing ring(1024, 4096);
  dnsmon::Parser parser;
  CountingSink sink;
  sink.counters = &counters;

  // No Catch2 assertion inside the measured loops: its reporters may allocate.
  std::array<std::uint64_t, dnsmon::kParseStatusCount> statuses{};
  std::uint64_t frames_seen = 0;
  auto run = [&](std::size_t first, std::size_t count) {
    for (std::size_t i = first; i < first + count; ++i) {
      const Frame& f = cap.frames[i];
      dnsmon::FrameView v;
      if (!ring.try_push(f.header, cap.data(f)) || !ring.front(v)) {
        return;
      }
      ++frames_seen;
      const auto status = parser.parse(v, sink);
      counters.record_frame(v.header.wire_len, status);
      ++statuses[static_cast<std::size_t>(status)];
      ring.pop();
    }
  };
  run(0, kWarmupFrames);
  const auto messages_before = sink.messages;
  const auto before = AllocSnapshot::now();
  run(kWarmupFrames, kMeasuredFrames);
  const auto used = AllocSnapshot::now() - before;
  const auto messages = sink.messages - messages_before;

  // The mix must really have gone through the decoder, or zero allocations would prove nothing.
  REQUIRE(frames_seen == kWarmupFrames + kMeasuredFrames);
  REQUIRE(messages > kMeasuredFrames * 9 / 10);
  REQUIRE(statuses[static_cast<std::size_t>(dnsmon::ParseStatus::Ok)] >
          (kWarmupFrames + kMeasuredFrames) * 9 / 10);

  char per_message[32];
  std::snprintf(per_message, sizeof per_message, "%.2f",
                static_cast<double>(used.allocs) / static_cast<double>(messages));
  INFO("steady state: " << used.allocs << " heap allocations (" << used.bytes << " bytes; "
                        << used.news << " through operator new, the rest straight malloc) over "
                        << kMeasuredFrames << " frames and " << messages << " DNS messages = "
                        << per_message << " per message. Straight malloc calls come from C "
                        << "libraries such as ldns.");
  CHECK(used.allocs == 0);
}
