// Env: the outside world a node touches, passed in explicitly.
//
// There are no singletons in aidsync: the wall clock, the random source and the
// SQLite VFS are handed to every component that needs them, so tests can hand in
// a clock that jumps, a random source with a fixed seed, or a fault-injecting
// VFS. An Env does not own what it points to; the caller keeps those objects
// alive for as long as any component that was given the Env.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>

namespace aidsync {

// A source of wall-clock time. Implementations must be thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  // Milliseconds since the Unix epoch, as the machine believes it (may be wrong).
  virtual int64_t NowMillis() = 0;
};

// A source of random bytes. Implementations must be thread-safe.
class RandomSource {
 public:
  virtual ~RandomSource() = default;
  // Fills buf[0..len) with random bytes. Never fails.
  virtual void Fill(void* buf, size_t len) = 0;
};

// The real clock (CLOCK_REALTIME).
class SystemClock final : public Clock {
 public:
  int64_t NowMillis() override;
};

// libsodium's randombytes_buf: cryptographically secure.
class SystemRandom final : public RandomSource {
 public:
  void Fill(void* buf, size_t len) override;
};

// Serves reads from a buffer refilled from `source` 4 KiB at a time, for
// public values drawn in bulk: a LocalTransaction draws its row ids from one,
// so an import makes one system call per ~400 ids instead of one per id
// (getrandom was about 8% of an import's time, docs/PERFORMANCE.md). Not for
// key material: the buffer holds future outputs in memory. Thread-safe;
// `source` must outlive it. The buffer is wiped on destruction.
class BufferedRandom final : public RandomSource {
 public:
  explicit BufferedRandom(RandomSource& source) : source_(source) {}
  ~BufferedRandom() override;
  BufferedRandom(const BufferedRandom&) = delete;
  BufferedRandom& operator=(const BufferedRandom&) = delete;
  void Fill(void* buf, size_t len) override;

 private:
  RandomSource& source_;
  std::mutex mu_;
  unsigned char buffer_[4096];
  size_t used_ = sizeof buffer_;  // all used: the first Fill refills
};

struct Env {
  Clock* clock = nullptr;
  RandomSource* random = nullptr;
  // Name of the SQLite VFS to open databases with; empty means SQLite's default.
  std::string sqlite_vfs;

  // The production environment: SystemClock, SystemRandom, default VFS.
  // The returned objects live for the whole process.
  static Env Default();
};

}  // namespace aidsync
