#include "dnsmon/ring.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

namespace {

using dnsmon::FrameHeader;
using dnsmon::FrameRing;
using dnsmon::FrameView;

std::vector<std::byte> bytes_of(std::uint32_t value, std::size_t size) {
  std::vector<std::byte> out(size);
  for (std::size_t i = 0; i < size; ++i) {
    out[i] = static_cast<std::byte>((value + i) & 0xFFU);
  }
  return out;
}

static_assert(noexcept(std::declval<FrameRing&>().try_push(FrameHeader{}, {})));
static_assert(noexcept(std::declval<FrameRing&>().pop()));

}  // namespace

TEST_CASE("an empty ring has no front", "[ring]") {
  FrameRing ring(4, 64);
  FrameView v;
  CHECK_FALSE(ring.front(v));
  CHECK(ring.empty());
  CHECK(ring.capacity() == 4);
}

TEST_CASE("frames come out in order with their headers and bytes", "[ring]") {
  FrameRing ring(8, 128);
  for (std::uint32_t i = 0; i < 5; ++i) {
    FrameHeader h;
    h.ts_ns = 1000 + i;
    h.wire_len = 100 + i;
    h.link_type = 1;
    h.source = static_cast<std::uint16_t>(i);
    const auto data = bytes_of(i, 10 + i);
    REQUIRE(ring.try_push(h, data));
  }
  CHECK(ring.size_approx() == 5);
  for (std::uint32_t i = 0; i < 5; ++i) {
    FrameView v;
    REQUIRE(ring.front(v));
    CHECK(v.header.ts_ns == 1000 + i);
    CHECK(v.header.wire_len == 100 + i);
    CHECK(v.header.source == i);
    const auto expected = bytes_of(i, 10 + i);
    REQUIRE(v.bytes.size() == expected.size());
    CHECK(std::memcmp(v.bytes.data(), expected.data(), expected.size()) == 0);
    ring.pop();
  }
  FrameView v;
  CHECK_FALSE(ring.front(v));
}

TEST_CASE("a full ring refuses the frame and keeps what it holds", "[ring]") {
  FrameRing ring(3, 16);
  const auto data = bytes_of(7, 4);
  CHECK(ring.try_push({}, data));
  CHECK(ring.try_push({}, data));
  CHECK(ring.try_push({}, data));
  CHECK_FALSE(ring.try_push({}, data));
  CHECK(ring.size_approx() == 3);
  FrameView v;
  REQUIRE(ring.front(v));
  ring.pop();
  CHECK(ring.try_push({}, data));  // room again after one pop
  CHECK_FALSE(ring.try_push({}, data));
}

TEST_CASE("frames longer than a slot are cut to the slot size", "[ring]") {
  FrameRing ring(2, 32);
  FrameHeader h;
  h.wire_len = 1500;
  const auto data = bytes_of(1, 1500);
  REQUIRE(ring.try_push(h, data));
  FrameView v;
  REQUIRE(ring.front(v));
  CHECK(v.bytes.size() == 32);
  CHECK(v.header.cap_len == 32);
  CHECK(v.header.wire_len == 1500);
  CHECK(std::memcmp(v.bytes.data(), data.data(), 32) == 0);
}

TEST_CASE("indices wrap around many times", "[ring]") {
  FrameRing ring(5, 8);
  std::uint32_t next_in = 0;
  std::uint32_t next_out = 0;
  for (int round = 0; round < 1000; ++round) {
    while (ring.try_push({}, bytes_of(next_in, 8))) {
      ++next_in;
    }
    FrameView v;
    for (int k = 0; k < 3 && ring.front(v); ++k) {
      CHECK(std::to_integer<std::uint32_t>(v.bytes[0]) == (next_out & 0xFFU));
      ring.pop();
      ++next_out;
    }
  }
  CHECK(next_in - next_out == ring.size_approx());
}

TEST_CASE("a zero-sized ring is refused", "[ring]") {
  CHECK_THROWS_AS(FrameRing(0, 64), std::invalid_argument);
  CHECK_THROWS_AS(FrameRing(4, 0), std::invalid_argument);
}

TEST_CASE("a producer and a consumer thread pass a million frames intact", "[ring][threads]") {
  constexpr std::uint32_t kFrames = 1'000'000;
  FrameRing ring(1024, 64);
  std::uint64_t sum_out = 0;
  std::uint32_t count_out = 0;
  bool order_ok = true;
  {
    std::jthread consumer([&] {
      FrameView v;
      std::uint32_t expect = 0;
      while (count_out < kFrames) {
        if (!ring.front(v)) {
          std::this_thread::yield();
          continue;
        }
        std::uint32_t value = 0;
        std::memcpy(&value, v.bytes.data(), sizeof value);
        if (value != expect || v.header.ts_ns != static_cast<std::int64_t>(value)) {
          order_ok = false;
        }
        sum_out += value;
        ++expect;
        ++count_out;
        ring.pop();
      }
    });
    std::jthread producer([&] {
      for (std::uint32_t i = 0; i < kFrames; ++i) {
        FrameHeader h;
        h.ts_ns = i;
        std::array<std::byte, 16> data{};
        std::memcpy(data.data(), &i, sizeof i);
        while (!ring.try_push(h, data)) {
          std::this_thread::yield();
        }
      }
    });
  }
  CHECK(order_ok);
  CHECK(count_out == kFrames);
  CHECK(sum_out == static_cast<std::uint64_t>(kFrames) * (kFrames - 1) / 2);
  CHECK(ring.empty());
}

TEST_CASE("frames of every size pack, wrap and come back intact", "[ring]") {
  // Storage for about 3 frames of 200 bytes: records of 32 to 288 bytes wrap through skip
  // markers at every possible offset.
  FrameRing ring(64, 256, 600);
  std::uint32_t in = 0;
  std::uint32_t out = 0;
  std::uint64_t state = 12345;
  auto next_size = [&] {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<std::size_t>((state >> 33U) % 300);  // above 256 gets cut
  };
  std::vector<std::size_t> sizes;
  for (int round = 0; round < 20000; ++round) {
    for (;;) {
      const std::size_t size = next_size();
      FrameHeader h;
      h.ts_ns = in;
      if (!ring.try_push(h, bytes_of(in, size))) {
        state = state * 6364136223846793005ULL + 1;  // a different size next time
        break;
      }
      sizes.push_back(size);
      ++in;
    }
    FrameView v;
    for (int k = 0; k < 2 && ring.front(v); ++k) {
      const std::size_t size = std::min<std::size_t>(sizes[out], 256);
      REQUIRE(v.header.ts_ns == out);
      REQUIRE(v.bytes.size() == size);
      REQUIRE(v.header.cap_len == size);
      const auto expected = bytes_of(out, size);
      REQUIRE((size == 0 || std::memcmp(v.bytes.data(), expected.data(), size) == 0));
      ring.pop();
      ++out;
    }
  }
  CHECK(in > 20000);
  CHECK(in - out == ring.size_approx());
}

TEST_CASE("a ring is full when its storage is, before its frame count", "[ring]") {
  FrameRing ring(100, 1000, 2048);  // 2048 bytes + one largest frame (1024-byte record)
  CHECK(ring.memory_bytes() == 2048 + 1024);
  const auto big = bytes_of(1, 1000);
  CHECK(ring.try_push({}, big));
  CHECK(ring.try_push({}, big));
  CHECK(ring.try_push({}, big));
  CHECK_FALSE(ring.try_push({}, big));
  CHECK(ring.size_approx() == 3);
  FrameView v;
  REQUIRE(ring.front(v));
  ring.pop();
  CHECK(ring.try_push({}, big));
}

TEST_CASE("producer and consumer sleep instead of spinning, and lose nothing", "[ring][threads]") {
  // The consumer sleeps on its doorbell whenever the ring is empty, the producer in
  // wait_for_room() whenever it is full; frames of random sizes must arrive intact and in order.
  constexpr std::uint32_t kFrames = 300'000;
  FrameRing ring(512, 300);
  dnsmon::Doorbell bell;
  ring.set_doorbell(&bell);
  std::atomic<bool> done{false};
  std::uint32_t count_out = 0;
  bool intact = true;
  {
    std::jthread consumer([&] {
      FrameView v;
      while (true) {
        int n = 0;
        for (; n < 64 && ring.front(v); ++n) {
          const auto expected = bytes_of(count_out, v.bytes.size());
          if (v.header.ts_ns != count_out || v.bytes.size() != (count_out * 7U) % 301U % 300U ||
              (!expected.empty() &&
               std::memcmp(v.bytes.data(), expected.data(), expected.size()) != 0)) {
            intact = false;
          }
          ++count_out;
          ring.pop();
        }
        if (n != 0) {
          ring.release_producer();
          continue;
        }
        const std::uint32_t ticket = bell.prepare_sleep();
        const bool finished = done.load(std::memory_order_acquire);
        if (ring.front(v) || finished) {
          bell.cancel_sleep();
          if (finished && !ring.front(v)) {
            return;
          }
          continue;
        }
        bell.sleep(ticket, std::chrono::seconds(5));  // a lost wake-up would show as a slow test
      }
    });
    std::jthread producer([&] {
      for (std::uint32_t i = 0; i < kFrames; ++i) {
        FrameHeader h;
        h.ts_ns = i;
        const auto data = bytes_of(i, (i * 7U) % 301U % 300U);
        while (!ring.try_push(h, data)) {
          ring.ring_consumer(true);
          ring.wait_for_room(data.size(), std::chrono::seconds(5));
        }
        ring.ring_consumer(i % 1000 == 0);
      }
      ring.ring_consumer(true);
      done.store(true, std::memory_order_release);
      bell.ring_always();
    });
  }
  CHECK(intact);
  CHECK(count_out == kFrames);
  CHECK(ring.empty());
}

TEST_CASE("front() twice before pop() returns the same frame, also after a skip marker", "[ring]") {
  // Storage 608 + one largest record (288) = 896 bytes: three 288-byte records end at 864, and
  // the fourth goes back to offset 0 behind a skip marker.
  FrameRing ring(64, 256, 600);
  REQUIRE(ring.memory_bytes() == 896);
  for (std::uint32_t i = 0; i < 3; ++i) {
    FrameHeader h;
    h.ts_ns = i;
    REQUIRE(ring.try_push(h, bytes_of(i, 250)));
    FrameView v;
    REQUIRE(ring.front(v));
    ring.pop();
  }
  for (std::uint32_t i = 3; i < 40; ++i) {
    FrameHeader h;
    h.ts_ns = i;
    REQUIRE(ring.try_push(h, bytes_of(i, 250)));
    FrameView first;
    FrameView again;
    REQUIRE(ring.front(first));
    REQUIRE(ring.front(again));
    CHECK(first.bytes.data() == again.bytes.data());
    CHECK(again.header.ts_ns == i);
    const auto expected = bytes_of(i, 250);
    REQUIRE(again.bytes.size() == 250);
    CHECK(std::memcmp(again.bytes.data(), expected.data(), 250) == 0);
    ring.pop();
    FrameView none;
    CHECK_FALSE(ring.front(none));
    CHECK(ring.bytes_approx() == 0);
  }
}

TEST_CASE("an empty ring takes a largest frame wherever its write offset is", "[ring]") {
  // A replay ring with few slots and whole frames: storage 16 x 512 would be smaller than one
  // 64 KiB frame, so the ring reserves two largest records.
  FrameRing ring(16, 65535);
  CHECK(ring.memory_bytes() >= 2 * (65535 + sizeof(FrameHeader)));
  const auto big = bytes_of(9, 65535);
  for (std::size_t size = 1; size < 70000; size += 997) {
    REQUIRE(ring.try_push({}, bytes_of(1, size)));  // moves the write offset
    FrameView v;
    REQUIRE(ring.front(v));
    ring.pop();
    REQUIRE(ring.try_push({}, big));
    REQUIRE(ring.front(v));
    REQUIRE(v.bytes.size() == 65535);
    ring.pop();
    ring.wait_for_room(big.size(), std::chrono::seconds(5));  // returns at once: it fits
  }
}

TEST_CASE("an SpscRing's peek sees the waiting records in order without taking them", "[ring]") {
  dnsmon::SpscRing<std::uint64_t> ring(8);
  CHECK(ring.peek(0) == nullptr);
  // Many laps, so that peeks cross the wrap of the slots' indices.
  std::uint64_t next_in = 0;
  std::uint64_t next_out = 0;
  for (int lap = 0; lap < 40; ++lap) {
    const std::size_t fill = 1 + static_cast<std::size_t>(lap) % ring.capacity();
    while (next_in - next_out < fill) {
      REQUIRE(ring.try_push(next_in));
      ++next_in;
    }
    const std::size_t waiting = next_in - next_out;
    for (std::size_t i = 0; i < waiting; ++i) {
      const std::uint64_t* p = ring.peek(i);
      REQUIRE(p != nullptr);
      CHECK(*p == next_out + i);
    }
    CHECK(ring.peek(waiting) == nullptr);
    CHECK(ring.peek(waiting + ring.capacity()) == nullptr);
    REQUIRE(ring.front() == ring.peek(0));
    CHECK(ring.size_approx() == waiting);  // peeking took nothing
    // Take half of them; peek(0) follows front().
    for (std::size_t i = 0; i < (waiting + 1) / 2; ++i) {
      REQUIRE(ring.front() != nullptr);
      CHECK(*ring.front() == next_out);
      ring.pop();
      ++next_out;
      CHECK(ring.peek(0) == ring.front());
    }
  }
  // A record pushed after a peek that found none is seen by the next peek.
  while (ring.front() != nullptr) {
    ring.pop();
  }
  CHECK(ring.peek(0) == nullptr);
  REQUIRE(ring.try_push(7));
  REQUIRE(ring.peek(0) != nullptr);
  CHECK(*ring.peek(0) == 7);
  CHECK(ring.peek(1) == nullptr);
}
