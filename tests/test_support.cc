#include "tests/test_support.h"

#include <stdlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <system_error>

namespace aidsync::testing {

TempDir::TempDir() {
  char tmpl[] = "/tmp/aidsync-test-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) throw std::runtime_error(std::string("mkdtemp: ") + std::strerror(errno));
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

uint64_t SeededRandom::Next() {
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

void SeededRandom::Fill(void* buf, size_t len) {
  auto* out = static_cast<uint8_t*>(buf);
  while (len > 0) {
    uint64_t word = Next();
    size_t n = len < sizeof word ? len : sizeof word;
    std::memcpy(out, &word, n);
    out += n;
    len -= n;
  }
}

uint64_t TestSeed() {
  static const uint64_t seed = [] {
    if (const char* env = std::getenv("AIDSYNC_SEED"); env != nullptr && *env != '\0') {
      char* end = nullptr;
      errno = 0;
      const unsigned long long parsed = std::strtoull(env, &end, 10);
      if (errno != 0 || end == env || *end != '\0') {
        throw std::runtime_error(std::string("AIDSYNC_SEED is not a decimal number: ") + env);
      }
      return static_cast<uint64_t>(parsed);
    }
    std::random_device device;
    return (static_cast<uint64_t>(device()) << 32) | device();
  }();
  return seed;
}

uint64_t DerivedSeed(uint64_t purpose) {
  SeededRandom mix(TestSeed() ^ (purpose * 0x9e3779b97f4a7c15ULL));
  return mix.Next();
}

int64_t EnvCount(const char* name, int64_t fallback, int64_t min, int64_t max) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return fallback;
  char* end = nullptr;
  errno = 0;
  const long long n = std::strtoll(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0') {
    throw std::runtime_error(std::string(name) + " is not a whole number: " + text);
  }
  return std::clamp<int64_t>(n, min, max);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<std::pair<std::string, std::string>> FilesUnder(const std::string& dir) {
  std::vector<std::pair<std::string, std::string>> files;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir))
    if (entry.is_regular_file()) files.emplace_back(entry.path().string(), ReadFile(entry.path().string()));
  return files;
}

std::vector<std::string> Holding(const std::vector<std::pair<std::string, std::string>>& files,
                                 const std::string& needle) {
  std::vector<std::string> out;
  for (const auto& [path, bytes] : files)
    if (bytes.find(needle) != std::string::npos) out.push_back(path);
  return out;
}

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw std::runtime_error("cannot create " + path);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) throw std::runtime_error("cannot write " + path);
}

}  // namespace aidsync::testing
