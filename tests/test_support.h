// Helpers every test may use: a temporary directory, a seeded random source
// and whole-file reads and writes. Part of aidsync_test_main, which every test
// executable links.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "base/env.h"

namespace aidsync::testing {

// A directory made with mkdtemp under /tmp, removed with its content on
// destruction. Throws std::runtime_error if it cannot be made.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // path() + "/" + name
  std::string File(const std::string& name) const { return path_ + "/" + name; }
  // The same as File(name).
  std::string operator/(const std::string& name) const { return File(name); }

 private:
  std::string path_;
};

// Deterministic random bytes (splitmix64), the same on every run for a seed.
// Thread-safe.
class SeededRandom final : public RandomSource {
 public:
  explicit SeededRandom(uint64_t seed) : state_(seed) {}
  void Fill(void* buf, size_t len) override;
  uint64_t Next();
  // Uniform in [0, n).
  uint64_t Uniform(uint64_t n) { return n == 0 ? 0 : Next() % n; }
  // True with probability p.
  bool Chance(double p) { return static_cast<double>(Next() >> 11) / 9007199254740992.0 < p; }

 private:
  std::mutex mu_;
  uint64_t state_;
};

// The seed of this test process: AIDSYNC_SEED=N when set (to replay a
// failure), otherwise one drawn from the OS once per process. Every test that
// draws random inputs derives them from it; the test main prints it when each
// test case starts, and again when one fails, with the command line that
// replays that case. Thread-safe.
uint64_t TestSeed();

// A seed for one purpose within a test (a round, a station), derived from
// TestSeed() so that one AIDSYNC_SEED replays all of them.
uint64_t DerivedSeed(uint64_t purpose);

// The size of a heavy test from the environment variable `name` (the CI
// default is `fallback`; a long run sets it), clamped to [min, max]. An unset
// or empty variable gives `fallback`; one that is not a whole number throws
// std::runtime_error rather than silently running the default size.
int64_t EnvCount(const char* name, int64_t fallback, int64_t min = 1, int64_t max = INT64_MAX);

// Whole-file helpers; they throw std::runtime_error on failure.
std::string ReadFile(const std::string& path);
// Creates or truncates `path`.
void WriteFile(const std::string& path, const std::string& bytes);

// Every regular file under `dir` (a data dir: replica.db, its -wal and -shm,
// keys), by path, with its bytes.
std::vector<std::pair<std::string, std::string>> FilesUnder(const std::string& dir);
// The paths among `files` whose bytes contain `needle`.
std::vector<std::string> Holding(const std::vector<std::pair<std::string, std::string>>& files,
                                 const std::string& needle);

}  // namespace aidsync::testing
