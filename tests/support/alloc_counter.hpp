// Counts the heap allocations of a test binary, so that a test can show that a loop makes none.
//
// Link the object library dnsmon_alloc_counter (alloc_counter.cpp): it replaces every form of
// operator new and delete for the whole binary. Only the count is new: the memory still comes from
// malloc or aligned_alloc (or a sanitizer's, which then sees malloc/free pairs) and goes back
// through free.
//
// Link dnsmon_malloc_counter (malloc_counter.cpp) as well to count at the malloc level too, where
// C libraries such as ldns allocate without operator new. Without a sanitizer it replaces malloc,
// calloc, realloc and the aligned forms, forwarding to glibc's __libc_* entry points (the dynamic
// linker then resolves every library's malloc to them); under ASan or TSan, whose runtimes own
// malloc, the count comes from the sanitizer's allocation hook instead.
//
// The counts are relaxed atomics: exact when read on the thread that allocated.
#pragma once

#include <cstdint>

namespace dnsmon::test {

// Calls to operator new, any form, since the program started (dnsmon_alloc_counter).
std::uint64_t new_calls() noexcept;

// Allocations at the malloc level since the program started, operator new's included, and the
// bytes they asked for (dnsmon_malloc_counter).
std::uint64_t malloc_calls() noexcept;
std::uint64_t malloc_bytes() noexcept;

}  // namespace dnsmon::test
