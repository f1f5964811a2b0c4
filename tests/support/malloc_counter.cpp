// malloc, calloc, realloc and the aligned forms, counted (alloc_counter.hpp).
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <unistd.h>

#include "alloc_counter.hpp"

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

void count_alloc(std::size_t size) noexcept {
  g_allocs.fetch_add(1, std::memory_order_relaxed);
  g_alloc_bytes.fetch_add(size, std::memory_order_relaxed);
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

namespace dnsmon::test {

std::uint64_t malloc_calls() noexcept {
  return g_allocs.load(std::memory_order_relaxed);
}

std::uint64_t malloc_bytes() noexcept {
  return g_alloc_bytes.load(std::memory_order_relaxed);
}

}  // namespace dnsmon::test
