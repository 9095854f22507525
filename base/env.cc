#include "base/env.h"

#include <sodium.h>

#include <algorithm>
#include <chrono>
#include <cstring>

namespace aidsync {

int64_t SystemClock::NowMillis() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

void SystemRandom::Fill(void* buf, size_t len) { randombytes_buf(buf, len); }

BufferedRandom::~BufferedRandom() { sodium_memzero(buffer_, sizeof buffer_); }

void BufferedRandom::Fill(void* buf, size_t len) {
  std::lock_guard<std::mutex> lock(mu_);
  auto* out = static_cast<unsigned char*>(buf);
  while (len > 0) {
    if (used_ == sizeof buffer_) {
      source_.Fill(buffer_, sizeof buffer_);
      used_ = 0;
    }
    const size_t n = std::min(len, sizeof buffer_ - used_);
    std::memcpy(out, buffer_ + used_, n);
    sodium_memzero(buffer_ + used_, n);  // an output is never kept once given out
    used_ += n;
    out += n;
    len -= n;
  }
}

Env Env::Default() {
  // Function-local statics: the production clock and random source are
  // stateless, so sharing one instance is not hidden global state.
  static SystemClock clock;
  static SystemRandom random;
  Env env;
  env.clock = &clock;
  env.random = &random;
  return env;
}

}  // namespace aidsync
