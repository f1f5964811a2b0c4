// Every form of operator new and delete, counted (alloc_counter.hpp). The aligned forms are
// replaced too: a sanitizer runtime would otherwise supply them, and pairing its operator new with
// this operator delete is a mismatch.
#include "alloc_counter.hpp"

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <new>

namespace {

std::atomic<std::uint64_t> g_news{0};

// nullptr when the memory cannot be had.
void* counted_alloc(std::size_t size, std::size_t align) noexcept {
  g_news.fetch_add(1, std::memory_order_relaxed);
  size = std::max<std::size_t>(size, 1);
  if (align <= alignof(std::max_align_t)) {
    return std::malloc(size);  // NOLINT(cppcoreguidelines-no-malloc): this is operator new
  }
  return std::aligned_alloc(align, (size + align - 1) / align * align);
}

void* counted_or_throw(std::size_t size, std::size_t align) {
  if (void* p = counted_alloc(size, align)) {
    return p;
  }
  throw std::bad_alloc();
}

std::size_t alignment(std::align_val_t a) {
  return static_cast<std::size_t>(a);
}

}  // namespace

namespace dnsmon::test {

std::uint64_t new_calls() noexcept {
  return g_news.load(std::memory_order_relaxed);
}

}  // namespace dnsmon::test

void* operator new(std::size_t size) {
  return counted_or_throw(size, 0);
}

void* operator new[](std::size_t size) {
  return counted_or_throw(size, 0);
}

void* operator new(std::size_t size, std::align_val_t a) {
  return counted_or_throw(size, alignment(a));
}

void* operator new[](std::size_t size, std::align_val_t a) {
  return counted_or_throw(size, alignment(a));
}

void* operator new(std::size_t size, const std::nothrow_t& /*tag*/) noexcept {
  return counted_alloc(size, 0);
}

void* operator new[](std::size_t size, const std::nothrow_t& /*tag*/) noexcept {
  return counted_alloc(size, 0);
}

void* operator new(std::size_t size, std::align_val_t a, const std::nothrow_t& /*tag*/) noexcept {
  return counted_alloc(size, alignment(a));
}

void* operator new[](std::size_t size, std::align_val_t a, const std::nothrow_t& /*tag*/) noexcept {
  return counted_alloc(size, alignment(a));
}

// Every form of delete frees what one of the above allocated.
void operator delete(void* p) noexcept {
  std::free(p);
}

void operator delete[](void* p) noexcept {
  std::free(p);
}

void operator delete(void* p, std::size_t /*size*/) noexcept {
  std::free(p);
}

void operator delete[](void* p, std::size_t /*size*/) noexcept {
  std::free(p);
}

void operator delete(void* p, std::align_val_t /*align*/) noexcept {
  std::free(p);
}

void operator delete[](void* p, std::align_val_t /*align*/) noexcept {
  std::free(p);
}

void operator delete(void* p, std::size_t /*size*/, std::align_val_t /*align*/) noexcept {
  std::free(p);
}

void operator delete[](void* p, std::size_t /*size*/, std::align_val_t /*align*/) noexcept {
  std::free(p);
}

void operator delete(void* p, const std::nothrow_t& /*tag*/) noexcept {
  std::free(p);
}

void operator delete[](void* p, const std::nothrow_t& /*tag*/) noexcept {
  std::free(p);
}

void operator delete(void* p, std::align_val_t /*align*/, const std::nothrow_t& /*tag*/) noexcept {
  std::free(p);
}

void operator delete[](void* p, std::align_val_t /*align*/,
                       const std::nothrow_t& /*tag*/) noexcept {
  std::free(p);
}
