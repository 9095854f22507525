// The in-process scenarios: local signed writes through a LocalTransaction
// (one record per transaction, and many), and the remote apply of the
// resulting changesets (verify + merge) into the hub's replica, empty and
// again when it already holds them (duplicates). They call the library the
// way `aidsync put` and a sync session do, without process start-up, so the
// figures are the replica's own cost.
#pragma once

#include <cstdint>
#include <string>

#include "base/status.h"
#include "bench/report.h"

namespace aidsync::bench {

struct LocalSizes {
  int64_t single_records = 1000;    // written one record per transaction
  int64_t batched_records = 100000; // written `per_transaction` records per transaction
  int64_t per_transaction = 100;
  int repeats = 5;  // each measurement, aidsync's and plain SQLite's, is the fastest of this many
};

// Runs the local-write and remote-apply scenarios in `dir` (which must
// exist and be empty), emitting one line each. Fails if a write fails or a
// receiving replica does not end up with every record (a benchmark of a
// wrong result is worthless).
Status RunLocalScenarios(const std::string& dir, const LocalSizes& sizes, Report& report);

}  // namespace aidsync::bench
