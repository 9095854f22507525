// The hybrid logical clock (DESIGN 3): 48-bit wall milliseconds and a 16-bit
// counter packed into one uint64 (ms << 16 | counter), so plain integer order
// is clock order and a counter overflow carries into the milliseconds.
//
// HybridClock is stateless: the last value issued lives in the replica's
// database and is read and written inside the writing transaction, so several
// processes on one data dir never issue the same value. Thread-safe.
#pragma once

#include <cstdint>

#include "base/env.h"

namespace aidsync {

inline uint64_t HlcMillis(uint64_t hlc) { return hlc >> 16; }
inline uint64_t HlcCounter(uint64_t hlc) { return hlc & 0xffff; }
inline uint64_t MakeHlc(uint64_t millis, uint64_t counter) { return (millis << 16) | (counter & 0xffff); }

class HybridClock {
 public:
  // A received clock this far ahead of our wall clock is not adopted.
  static constexpr int64_t kMaxAdoptAheadMs = 60 * 60 * 1000;

  explicit HybridClock(Clock& wall) : wall_(wall) {}

  // The next value to stamp a local write with, given the last value this
  // node issued or adopted: greater than `last` and than the wall clock.
  uint64_t Next(uint64_t last) const;

  struct Observation {
    uint64_t last;          // the new "last" to persist
    bool too_far_ahead;     // the remote clock was not adopted: raise a clock alert
    int64_t ahead_ms;       // how far the remote clock is ahead of our wall clock
  };
  // Folds a received clock into `last`. A remote value more than an hour
  // ahead of the wall clock is not adopted (a station with a wrong clock must
  // not drag everyone into the future); the write itself is still applied.
  Observation Observe(uint64_t last, uint64_t remote) const;

 private:
  Clock& wall_;
};

}  // namespace aidsync
