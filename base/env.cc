#include "base/env.h"

#include <sodium.h>

#include <chrono>

namespace aidsync {

int64_t SystemClock::NowMillis() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

void SystemRandom::Fill(void* buf, size_t len) { randombytes_buf(buf, len); }

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
