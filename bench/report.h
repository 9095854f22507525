// The benchmark's output: one JSON object per line per scenario (figures,
// the plain-SQLite reference of the same run, the ratio, and each target
// with whether it was met), then one summary line. JSON lines so that a
// script, CI or a spreadsheet can read them without parsing prose.
//
// Not thread-safe: scenarios run one after another.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "base/status.h"

#include <nlohmann/json.hpp>

namespace aidsync::bench {

using nlohmann::json;

// A target of the issue: `value` compared with `limit` by `op` ("<=", ">=",
// "<"). `timed`: the value is a timing or a memory figure, which small
// sizes, busy machines and sanitizers (ASan's shadow memory) distort; the
// others (bytes on the wire, round trips) hold anywhere, so the smoke run
// enforces them.
json Target(const std::string& name, double value, const std::string& op, double limit, bool timed = true);

class Report {
 public:
  // Prints `line` on stdout at once (flushed, so a long run shows progress)
  // and counts its targets for the summary.
  void Emit(json line);
  // The summary line: how many targets were met, and the names of those missed.
  json Summary() const;
  bool all_met() const { return missed_.empty(); }
  // Whether every target that is not a timing was met.
  bool untimed_met() const { return untimed_missed_ == 0; }

 private:
  int targets_ = 0;
  int untimed_missed_ = 0;
  std::vector<std::string> missed_;
};

// The fastest of `repeats` runs of `run(r)` (each returns seconds): the run
// least disturbed by whatever else the machine did. aidsync and plain SQLite
// are measured alike. Fails with the first failing run.
Result<double> Fastest(int repeats, const std::function<Result<double>(int)>& run);

// seconds rounded for display (milliseconds resolution under 10 s).
double Round(double value, int digits = 3);

}  // namespace aidsync::bench
