#include "sync/hybrid_clock.h"

#include <algorithm>

namespace aidsync {

uint64_t HybridClock::Next(uint64_t last) const {
  int64_t wall = std::max<int64_t>(wall_.NowMillis(), 0);
  uint64_t from_wall = MakeHlc(static_cast<uint64_t>(wall) & ((uint64_t{1} << 48) - 1), 0);
  // last + 1 carries a counter overflow into the milliseconds by construction.
  return std::max(from_wall, last + 1);
}

HybridClock::Observation HybridClock::Observe(uint64_t last, uint64_t remote) const {
  int64_t wall = wall_.NowMillis();
  int64_t ahead = static_cast<int64_t>(HlcMillis(remote)) - wall;
  if (ahead > kMaxAdoptAheadMs) return {last, true, ahead};
  return {std::max(last, remote), false, ahead};
}

}  // namespace aidsync
