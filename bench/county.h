// A county run as real processes for the sync scenarios: the `aidsync`
// binary creates the authority and the hub, imports, serves sync over
// ZeroMQ + CurveZMQ on 127.0.0.1, and enrols stations by invite and join,
// exactly as an administrator would (README, scripts/demo.sh). The bench
// measures these processes from outside: wall time, peak resident memory
// (the kernel's own account: GNU time's %M for a command, VmHWM for the
// daemon), and the bytes on the wire through a bench/link.h Link.
//
// Not thread-safe. Every method runs processes to completion; failures
// come back as a Status naming the command and its stderr.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "bench/records.h"

namespace aidsync::bench {

// One finished command.
struct CommandRun {
  double seconds = 0;
  int64_t peak_rss_kib = 0;  // its peak resident memory, measured by GNU time
  std::string out;           // stdout without trailing newlines
};

// What `aidsync sync` reported and cost.
struct SyncRun {
  CommandRun command;
  int64_t round_trips = 0;   // requests the station sent, hello included
  int64_t received = 0;      // changesets applied at the station
};

class County {
 public:
  // Creates an authority and a hub (县法律援助中心, code 0500, scope 430123)
  // under `dir` (created if missing). The hub is not serving yet.
  static Result<County> Create(const std::string& dir);

  County(County&& other) noexcept;
  County& operator=(County&&) = delete;
  County(const County&) = delete;
  County& operator=(const County&) = delete;
  // Stops the hub daemon if it is still serving.
  ~County();

  const std::string& hub_dir() const { return hub_dir_; }

  // Runs `aidsync import` of the CSV file `csv` into the hub's applications.
  Result<CommandRun> ImportAtHub(const std::string& csv);
  // Runs `aidsync <args>` with the hub's --data; fails on a non-zero exit.
  Result<CommandRun> AtHub(std::vector<std::string> args);

  // Starts `aidsync serve --listen` on a free port and waits until it
  // listens. Its endpoint is hub_port().
  Status StartHub();
  int hub_port() const { return hub_port_; }
  // The serving hub's peak resident memory so far (VmHWM), in KiB.
  Result<int64_t> HubPeakRssKib() const;
  // Stops the serving hub (SIGTERM) and waits for it to exit.
  Status StopHub();

  // Enrols a station over the network (invite at the hub, join at the
  // station, directly on the hub's port) in dir/<code>. Returns its data dir.
  Result<std::string> EnrolStation(const std::string& name, const std::string& code, const std::string& scope);

  // One `aidsync sync` of `station_dir` with the hub at 127.0.0.1:`port`
  // (the hub's own port, or a Link in front of it).
  Result<SyncRun> Sync(const std::string& station_dir, int port);

  // OK if the node in `data_dir` holds exactly records [0, count) with all
  // their values (`aidsync query` of RecordsCheckSql); Corruption naming
  // `what` and the difference otherwise.
  Status CheckRecords(const std::string& data_dir, int64_t count, const std::string& what);

 private:
  County(std::string dir, std::string hub_dir) : dir_(std::move(dir)), hub_dir_(std::move(hub_dir)) {}

  std::string dir_;
  std::string hub_dir_;
  pid_t hub_pid_ = -1;
  int hub_port_ = 0;
};

// Runs the aidsync binary with `args` to completion. Fails (naming the
// command and its first stderr line) on a non-zero exit.
Result<CommandRun> RunAidsync(const std::vector<std::string>& args);

}  // namespace aidsync::bench
