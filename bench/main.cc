// aidsync-bench: the performance benchmark of issue 7 (docs/PERFORMANCE.md).
//
// Runs every scenario once, each next to the same work done by plain SQLite
// in the same run, and prints one JSON line per scenario, then a summary of
// the targets. Exit status: 0 when every scenario ran and checked its
// result (and, with --check-targets, every target was met); 1 when a target
// was missed under --check-targets, or under --smoke a target that is not a
// timing or memory figure (bytes on the wire, round trips); 2 when a scenario failed or produced a
// wrong result (a record or a value missing at the receiver, a command failing).
//
//   aidsync-bench                    the sizes (100,000 records; minutes)
//   aidsync-bench --smoke            small sizes, for CI: it cannot rot
//   aidsync-bench --records N ...    any size
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <optional>
#include <stdexcept>

#include <CLI/CLI.hpp>

#include "bench/local_scenarios.h"
#include "bench/sync_scenarios.h"
#include "tests/test_support.h"

namespace {

struct Options {
  aidsync::bench::LocalSizes local;
  aidsync::bench::SyncSizes sync;
  bool smoke = false;
  bool check_targets = false;
  bool only_local = false;
  bool only_sync = false;
  std::string dir;  // kept after the run when given
};

void ApplySmokeSizes(Options& o) {
  o.local.single_records = 50;
  o.local.batched_records = 2000;
  o.local.repeats = 1;
  o.sync.import_repeats = 1;
  o.sync.records = 2000;
  o.sync.repeats = 2;
  o.sync.throttled_records = 100;
  // A faster link keeps the smoke run short; the model is the same.
  o.sync.link_bits_per_second = 2000000;
  o.sync.link_round_trip_ms = 20;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"aidsync-bench: sync and storage throughput against plain SQLite (docs/PERFORMANCE.md)"};
  app.add_flag("--smoke", o.smoke, "small sizes (CI): checks the scenarios run and give right results");
  app.add_flag("--check-targets", o.check_targets, "exit 1 if a target of issue 7 is missed");
  app.add_flag("--only-local", o.only_local, "only the in-process scenarios (local writes, remote apply)");
  app.add_flag("--only-sync", o.only_sync, "only the import and sync scenarios");
  app.add_option("--records", o.sync.records, "records imported and moved by the initial sync")
      ->check(CLI::Range(int64_t{10}, int64_t{10000000}));
  app.add_option("--local-records", o.local.batched_records, "records written 100 per transaction")
      ->check(CLI::Range(int64_t{100}, int64_t{10000000}));
  app.add_option("--single-records", o.local.single_records, "records written one per transaction")
      ->check(CLI::Range(int64_t{1}, int64_t{1000000}));
  app.add_option("--throttled-records", o.sync.throttled_records, "records sent over the throttled link")
      ->check(CLI::Range(int64_t{1}, int64_t{1000000}));
  app.add_option("--repeats", o.sync.repeats, "new-records syncs per replica size (the median counts)")
      ->check(CLI::Range(1, 100));
  app.add_option("--local-repeats", o.local.repeats, "runs of each in-process measurement (the fastest counts)")
      ->check(CLI::Range(1, 20));
  app.add_option("--import-repeats", o.sync.import_repeats, "imports timed, into fresh hubs (the fastest counts)")
      ->check(CLI::Range(1, 20));
  app.add_option("--dir", o.dir, "work in this new directory and keep it (default: a temporary one, removed)");
  CLI11_PARSE(app, argc, argv);
  if (o.smoke) ApplySmokeSizes(o);

  aidsync::bench::Report report;
  try {
    std::optional<aidsync::testing::TempDir> temp;
    if (o.dir.empty()) o.dir = temp.emplace().path();
    else if (!std::filesystem::create_directory(o.dir)) throw std::runtime_error(o.dir + " already exists");
    const std::string dir = o.dir;
    aidsync::Status st = aidsync::Status::OK();
    if (!o.only_sync) {
      std::filesystem::create_directory(dir + "/local");
      st = aidsync::bench::RunLocalScenarios(dir + "/local", o.local, report);
    }
    if (st.ok() && !o.only_local) {
      std::filesystem::create_directory(dir + "/sync");
      st = aidsync::bench::RunSyncScenarios(dir + "/sync", o.sync, report);
    }
    if (!st.ok()) {
      std::cerr << "aidsync-bench: " << st.ToString() << "\n";
      return 2;
    }
  } catch (const std::exception& e) {
    std::cerr << "aidsync-bench: " << e.what() << "\n";
    return 2;
  }
  report.Emit(report.Summary());
  if (o.check_targets && !report.all_met()) return 1;
  // Bytes on the wire and round trips hold at any size: the smoke run enforces them.
  if (o.smoke && !report.untimed_met()) return 1;
  return 0;
}
