// What the disk-fault tests (power_loss_test.cc, io_fault_test.cc) share: a
// hub and a station with some acknowledged history, closed in base data dirs
// so that every trial starts from a fresh copy; the station's workload (local
// signed writes and a batch of the hub's changesets applied), recording what
// each step acknowledged; and the checks a trial ends with once the station
// is reopened on the ordinary VFS.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tests/cluster_fixture.h"

namespace aidsync::testing {

// A row a workload step wrote: the values it set (not those the node fills in).
struct WrittenRow {
  std::string table, id;
  TextValues values;
  bool update = false;  // of an existing row (else a new one)
};

// One step of the workload and what it returned.
struct WorkloadStep {
  std::string what;
  Status status;                        // OK: acknowledged
  bool ran = false;
  std::vector<WrittenRow> rows;         // a local write's rows (ids known even if the commit failed)
  std::vector<std::string> envelopes;   // a remote apply's changesets
};

// A hub and a station ("城关镇工作站", 0512, 430123/05) that hold each
// other's certificates and some records, both closed.
class FaultWorld {
 public:
  explicit FaultWorld(uint64_t seed);

  const std::string& station_base() const { return station_base_; }
  const std::string& hub_base() const { return hub_base_; }
  // The hub's changesets the station does not hold yet (the workload applies them).
  const std::vector<std::string>& incoming() const { return incoming_; }
  // Consultations the station wrote before (the workload updates the first).
  const std::vector<std::string>& station_rows() const { return station_rows_; }
  SeededRandom& random() { return cluster_.random(); }

  // Runs the station's workload on `station`: a local write, the incoming
  // batch applied, a local transaction of several rows, another local
  // write. `round` makes the values differ between trials. With
  // stop_at_failure the steps after the first failure do not run.
  std::vector<WorkloadStep> RunWorkload(Replica& station, int round, bool stop_at_failure);

 private:
  Cluster cluster_;
  std::string station_base_, hub_base_;
  std::vector<std::string> incoming_;
  std::vector<std::string> station_rows_;
};

// One trial's own copies of the base data dirs, removed at the end.
class Trial {
 public:
  explicit Trial(FaultWorld& world);

  const std::string& station_dir() const { return station_dir_; }
  // Opens the station copy through SQLite VFS `vfs` (empty: the default).
  Result<std::unique_ptr<Replica>> OpenStation(const std::string& vfs = "");
  // Opens the hub copy; REQUIREs success.
  std::unique_ptr<Replica> OpenHub();

 private:
  TempDir dir_;
  std::string station_dir_, hub_dir_;
  TestClock clock_;
  Env station_env_, hub_env_;
};

// PRAGMA integrity_check of the replica in data dir `dir`, through the default
// VFS: "ok", or what SQLite found.
std::string IntegrityCheck(const std::string& dir);

// REQUIREs that nothing in `r` is half-applied: the tables, row metadata and
// conflicts equal what Rebuild makes from the log, and every chain head
// (seq, count) matches the changesets the log holds.
void RequireConsistent(Replica& r);

// REQUIREs that every acknowledged step is in `r` (its rows with their values,
// its changesets). A step that failed is all or nothing; with
// failed_may_survive false it must have left nothing at all. Returns how many
// failed steps are there whole (their commit reached the disk, its answer not).
int RequireAcknowledged(Replica& r, const std::vector<WorkloadStep>& steps, bool failed_may_survive);

// REQUIREs that `station` accepts a new write and that a sync session with
// `hub` completes and leaves both with the same records.
void RequireWritesAndConverges(Replica& station, Replica& hub, int round);


}  // namespace aidsync::testing
