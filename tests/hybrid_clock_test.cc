// Tests for sync/hybrid_clock.h: monotonic local stamps, counter carry, and
// the one-hour bound on adopting a remote clock.
#include "sync/hybrid_clock.h"

#include <catch2/catch.hpp>

#include "tests/cluster_fixture.h"

namespace aidsync {
namespace {

using testing::TestClock;

constexpr int64_t kT0 = 1718452800000;  // 2024-06-15T12:00:00Z
constexpr int64_t kHour = 60 * 60 * 1000;

}  // namespace

TEST_CASE("hlc packs 48-bit milliseconds and a 16-bit counter in clock order", "[hlc]") {
  uint64_t h = MakeHlc(kT0, 7);
  CHECK(HlcMillis(h) == static_cast<uint64_t>(kT0));
  CHECK(HlcCounter(h) == 7);
  CHECK(MakeHlc(kT0, 0xffff) < MakeHlc(kT0 + 1, 0));
  CHECK(MakeHlc(kT0, 1) > MakeHlc(kT0, 0));
}

TEST_CASE("hlc Next follows the wall clock when it is ahead of the last value", "[hlc]") {
  TestClock wall(kT0);
  HybridClock clock(wall);
  uint64_t first = clock.Next(0);
  CHECK(first == MakeHlc(kT0, 0));
  wall.Advance(5);
  CHECK(clock.Next(first) == MakeHlc(kT0 + 5, 0));
}

TEST_CASE("hlc Next is strictly monotonic while the wall clock stands still or goes back", "[hlc]") {
  TestClock wall(kT0);
  HybridClock clock(wall);
  uint64_t last = clock.Next(0);
  for (int i = 0; i < 100; ++i) {
    uint64_t next = clock.Next(last);
    REQUIRE(next > last);
    last = next;
  }
  CHECK(HlcMillis(last) == static_cast<uint64_t>(kT0));
  CHECK(HlcCounter(last) == 100);

  // The wall clock jumps back a day (a CMOS battery died): stamps keep rising.
  wall.Set(kT0 - 24 * kHour);
  for (int i = 0; i < 10; ++i) {
    uint64_t next = clock.Next(last);
    REQUIRE(next > last);
    REQUIRE(HlcMillis(next) == static_cast<uint64_t>(kT0));
    last = next;
  }
  // A wall clock before the epoch is treated as 0, never as a huge value.
  wall.Set(-5);
  CHECK(clock.Next(last) == last + 1);
  CHECK(clock.Next(0) == 1);
}

TEST_CASE("hlc counter overflow carries into the milliseconds", "[hlc]") {
  TestClock wall(kT0 - 1000);  // wall clock behind the last value
  HybridClock clock(wall);
  uint64_t last = MakeHlc(kT0, 0xfffe);
  uint64_t a = clock.Next(last);
  CHECK(a == MakeHlc(kT0, 0xffff));
  uint64_t b = clock.Next(a);
  CHECK(b > a);
  CHECK(HlcMillis(b) == static_cast<uint64_t>(kT0 + 1));
  CHECK(HlcCounter(b) == 0);
}

TEST_CASE("hlc Observe adopts a remote clock up to one hour ahead", "[hlc]") {
  TestClock wall(kT0);
  HybridClock clock(wall);
  uint64_t last = MakeHlc(kT0, 3);

  SECTION("a remote clock behind ours changes nothing") {
    auto seen = clock.Observe(last, MakeHlc(kT0 - 10, 9));
    CHECK_FALSE(seen.too_far_ahead);
    CHECK(seen.last == last);
    CHECK(seen.ahead_ms == -10);
  }
  SECTION("a remote clock 59 minutes ahead is adopted, and local stamps follow it") {
    uint64_t remote = MakeHlc(kT0 + 59 * 60 * 1000, 4);
    auto seen = clock.Observe(last, remote);
    CHECK_FALSE(seen.too_far_ahead);
    CHECK(seen.last == remote);
    CHECK(seen.ahead_ms == 59 * 60 * 1000);
    CHECK(clock.Next(seen.last) == remote + 1);
  }
  SECTION("exactly one hour ahead is still adopted") {
    uint64_t remote = MakeHlc(kT0 + kHour, 0);
    auto seen = clock.Observe(last, remote);
    CHECK_FALSE(seen.too_far_ahead);
    CHECK(seen.last == remote);
  }
  SECTION("more than one hour ahead is refused and flagged") {
    uint64_t remote = MakeHlc(kT0 + kHour + 1, 0);
    auto seen = clock.Observe(last, remote);
    CHECK(seen.too_far_ahead);
    CHECK(seen.last == last);
    CHECK(seen.ahead_ms == kHour + 1);
    CHECK(clock.Next(seen.last) < remote);
  }
  SECTION("a year ahead is refused") {
    auto seen = clock.Observe(last, MakeHlc(kT0 + 365 * 24 * kHour, 0));
    CHECK(seen.too_far_ahead);
    CHECK(seen.last == last);
  }
}

}  // namespace aidsync
