// The scenarios of `aidsync import` and of sync between real processes: a
// hub daemon (`aidsync serve`) and stations running `aidsync sync`, over
// ZeroMQ with CurveZMQ on 127.0.0.1, through a bench/link.h Link that counts
// every byte (handshake included) and, for the last scenario, throttles the
// link to a poor township line.
#pragma once

#include <cstdint>
#include <string>

#include "base/status.h"
#include "bench/report.h"

namespace aidsync::bench {

struct SyncSizes {
  int64_t records = 100000;            // imported at the hub; the initial sync moves them all
  int import_repeats = 3;              // imports (and plain inserts) timed; the fastest counts
  int64_t new_records = 10;            // per "new records" sync
  int repeats = 5;                     // "new records" syncs per replica size; the median counts
  int64_t throttled_records = 10000;   // moved over the throttled link
  int64_t link_bits_per_second = 256000;
  int link_round_trip_ms = 300;
};

// Runs import, initial sync, new-records syncs (on a full and an empty
// replica), the nothing-new sync and the throttled initial sync in `dir`
// (which must exist and be empty), emitting one line each. Fails if a
// command fails or a station does not end up with every record.
Status RunSyncScenarios(const std::string& dir, const SyncSizes& sizes, Report& report);

}  // namespace aidsync::bench
