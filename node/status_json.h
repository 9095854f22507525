// The JSON documents of the inspection commands and the status page:
// `status --json`, `conflicts --json` (node/commands_inspect.cc) and the
// status page's `/api/status` (node/status_page.cc), which is the first
// extended with `stations` and `conflicts` (DESIGN 8).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/status.h"
#include "sync/replica.h"

namespace aidsync {

// UTC, ISO 8601 to the second: "2015-04-02T08:30:00Z".
std::string IsoTime(int64_t ms);

// `status --json`.
nlohmann::json StatusToJson(const ReplicaStatus& s);

// `conflicts --json`: [{table, id, column, row_deleted, winner, losers}], each
// version {value, author, author_key, time, time_ms, changeset}. Without
// `with_values` every value is null and the version says "value_hidden": true
// (conflict values are personal data, DESIGN 6).
nlohmann::json ConflictsToJson(const std::vector<Conflict>& conflicts, bool with_values = true);

struct ApiStatusOptions {
  int silent_days = 3;       // a station silent longer than this is an alert
  int64_t now_ms = 0;        // the time "silent" is measured against
  bool with_values = true;   // conflict values shown (only to local clients)
};

// `/api/status`: StatusToJson, plus `stations` (every enrolled node but this
// one, with what this node knows of it as a peer and its alerts) and
// `conflicts` (ConflictsToJson). Stations silent too long are also added to
// the top-level `alerts`. Reads through `replica` only.
Result<nlohmann::json> ApiStatusJson(Replica& replica, const ApiStatusOptions& options);

}  // namespace aidsync
