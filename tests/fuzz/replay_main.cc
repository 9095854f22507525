// Replays fuzz inputs through a target's LLVMFuzzerTestOneInput without
// libFuzzer, so the seed corpus and every kept crash input run as an ordinary
// test in every build (gcc included; CTest's fuzz_replay_<name>).
//
//   <name>_replay CORPUS_DIR [MORE_DIRS_OR_FILES...]
//
// Runs every regular file of each directory (sorted, so runs are repeatable),
// printing each file's name before running it: a crash or a broken invariant
// (which aborts) then names its input. The first directory is the seed
// corpus and must hold at least one file; later ones (tests/fuzz/regressions/
// <name>) may be missing or empty. At the end, prints how often inputs
// reached each depth the target counts, and fails if a depth listed in the
// target's ExpectedDepths() was never reached (a stale corpus).
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

namespace fs = std::filesystem;

std::vector<fs::path> FilesOf(const fs::path& path) {
  std::vector<fs::path> files;
  if (fs::is_regular_file(path)) return {path};
  if (!fs::is_directory(path)) return files;
  for (const auto& entry : fs::directory_iterator(path))
    if (entry.is_regular_file()) files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  return files;
}

std::string Slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR [MORE_DIRS_OR_FILES...]\n", argv[0]);
    return 2;
  }
  size_t total = 0;
  for (int i = 1; i < argc; ++i) {
    std::vector<fs::path> files = FilesOf(argv[i]);
    if (i == 1 && files.empty()) {
      std::fprintf(stderr, "%s: the seed corpus %s is missing or empty\n", argv[0], argv[1]);
      return 1;
    }
    for (const auto& file : files) {
      std::printf("replaying %s\n", file.c_str());
      std::fflush(stdout);
      std::string bytes = Slurp(file);
      LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
      ++total;
    }
  }
  std::printf("%zu inputs replayed without a crash\n", total);
  int status = 0;
  for (const auto& [depth, count] : aidsync::fuzz::Depths()) std::printf("  reached %-40s %lld times\n", depth.c_str(),
                                                                        static_cast<long long>(count));
  for (const auto& expected : aidsync::fuzz::ExpectedDepths()) {
    if (aidsync::fuzz::Depths().count(expected) == 0) {
      std::fprintf(stderr, "no input reached \"%s\": is the seed corpus stale? (rebuild it with make_corpus)\n",
                   expected.c_str());
      status = 1;
    }
  }
  return status;
}
