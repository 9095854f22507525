// The Catch2 entry point shared by every test executable.
//
// It also makes every failure replayable (issue 6): the process's seed
// (tests/test_support.h, TestSeed) is printed with each failed test case,
// together with the command line that runs that case again with that seed.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
#include <filesystem>
#include <iostream>
#include <system_error>

#include "tests/test_support.h"

namespace {

struct SeedReporter : Catch::TestEventListenerBase {
  using TestEventListenerBase::TestEventListenerBase;

  void testCaseStarting(Catch::TestCaseInfo const& info) override {
    TestEventListenerBase::testCaseStarting(info);
    // Printed before the test runs too: a sanitizer that stops the process
    // on an error exits without testCaseEnded. (ctest shows a test's output
    // only when it fails.)
    std::cerr << "seed: " << aidsync::testing::TestSeed() << std::endl;
  }

  void testCaseEnded(Catch::TestCaseStats const& stats) override {
    if (!stats.totals.assertions.allOk() || stats.totals.testCases.failed > 0) {
      std::cerr << "seed: " << aidsync::testing::TestSeed() << " (replay: AIDSYNC_SEED="
                << aidsync::testing::TestSeed() << " " << executable_ << " \"" << stats.testInfo.name << "\")"
                << std::endl;
    }
    TestEventListenerBase::testCaseEnded(stats);
  }

  void testRunStarting(Catch::TestRunInfo const& info) override {
    TestEventListenerBase::testRunStarting(info);
    // The full path, so that the replay line can be pasted anywhere.
    std::error_code ec;
    executable_ = std::filesystem::read_symlink("/proc/self/exe", ec).string();
    if (ec) executable_ = info.name;
  }

  std::string executable_;
};

}  // namespace

CATCH_REGISTER_LISTENER(SeedReporter)
