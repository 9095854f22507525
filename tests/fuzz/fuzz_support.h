// Helpers shared by the libFuzzer targets of tests/fuzz (issue 6, item 4):
// splitting one fuzz input into several parts, reading small choices from it,
// failing loudly on a broken invariant, and counting how deep inputs reach.
//
// Input layout convention: many targets take a list of byte strings (protocol
// messages, changeset envelopes, bundle frames). They are joined with
// kPartSeparator, a marker long enough not to occur in real data by chance
// and short enough for libFuzzer's comparison hints to rediscover it; a
// separator-based split survives mutation better than length prefixes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace aidsync::fuzz {

inline constexpr std::string_view kPartSeparator = "\n#aidsync-part#\n";

// Splits `input` at every kPartSeparator. An input without one is one part.
inline std::vector<std::string_view> SplitParts(std::string_view input) {
  std::vector<std::string_view> parts;
  while (true) {
    size_t at = input.find(kPartSeparator);
    if (at == std::string_view::npos) break;
    parts.push_back(input.substr(0, at));
    input.remove_prefix(at + kPartSeparator.size());
  }
  parts.push_back(input);
  return parts;
}

// The inverse of SplitParts (used by tests/fuzz/make_corpus.cc).
inline std::string JoinParts(const std::vector<std::string>& parts) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) out += kPartSeparator;
    out += parts[i];
  }
  return out;
}

// Reads small choices off the front of an input; past the end it yields zeros,
// so every input, however short, is a valid script.
class ByteReader {
 public:
  explicit ByteReader(std::string_view bytes) : rest_(bytes) {}
  uint8_t Byte() {
    if (rest_.empty()) return 0;
    uint8_t b = static_cast<uint8_t>(rest_.front());
    rest_.remove_prefix(1);
    return b;
  }
  uint64_t Uint(int bytes) {
    uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v |= static_cast<uint64_t>(Byte()) << (8 * i);
    return v;
  }
  // Up to `max` bytes, the count taken from the input first.
  std::string_view Bytes(size_t max) {
    size_t n = Byte() % (max + 1);
    if (n > rest_.size()) n = rest_.size();
    std::string_view out = rest_.substr(0, n);
    rest_.remove_prefix(n);
    return out;
  }
  bool empty() const { return rest_.empty(); }
  std::string_view rest() const { return rest_; }

 private:
  std::string_view rest_;
};

// A broken invariant: print what and abort, which libFuzzer reports as a
// crash and keeps the input (and replay_main names the file it was reading).
[[noreturn]] inline void Fail(const std::string& what) {
  std::fprintf(stderr, "aidsync fuzz invariant broken: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

#define AIDSYNC_FUZZ_CHECK(cond, what)                                              \
  do {                                                                             \
    if (!(cond)) ::aidsync::fuzz::Fail(std::string(#cond " failed: ") + (what));   \
  } while (0)

// AIDSYNC_FUZZ_VERBOSE=1: targets print what became of each input (while
// writing seeds or reading a crash); silent otherwise, as fuzzing needs.
inline bool Verbose() {
  static const bool verbose = [] {
    const char* env = std::getenv("AIDSYNC_FUZZ_VERBOSE");
    return env != nullptr && *env != '\0' && *env != '0';
  }();
  return verbose;
}
inline void Note(const std::string& what) {
  if (Verbose()) std::fprintf(stderr, "  %s\n", what.c_str());
}

// How often inputs reached a named depth ("changeset applied", "session
// complete"). replay_main prints these after a corpus replay and fails if a
// depth the target lists in ExpectedDepths() was never reached: a seed corpus
// gone stale (say, signed by keys the county no longer makes) would otherwise
// leave only the outer checks exercised without anyone noticing.
inline std::map<std::string, int64_t>& Depths() {
  static std::map<std::string, int64_t> depths;
  return depths;
}
inline void Reached(const char* depth) { ++Depths()[depth]; }

// Defined by each target: the depths its seed corpus must reach.
std::vector<std::string> ExpectedDepths();

}  // namespace aidsync::fuzz
