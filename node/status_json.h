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

// The sync history of each station in `/api/status`: the last this many
// days, at most the newest this many sessions per station.
constexpr int kHistoryDays = 7;
constexpr int64_t kHistoryMaxSessions = 500;

struct ApiStatusOptions {
  int silent_days = 3;       // a station silent longer than this is an alert
  int64_t now_ms = 0;        // the time "silent", the history window and the figures' year are taken from
  bool with_values = true;   // conflict values shown (only to local clients)
};

// `/api/status`: StatusToJson, plus `stations` (every enrolled node but this
// one, with what this node knows of it as a peer, its alerts and its
// `history`: the sync sessions of the last kHistoryDays days, the newest
// kHistoryMaxSessions), `conflicts` (ConflictsToJson) and `figures` (the
// current local year's records per month and target progress, BuildReport).
// Stations silent too long are also added to the top-level `alerts`. Reads
// through `replica` only. docs/ARCHITECTURE.md section 12 has the fields.
Result<nlohmann::json> ApiStatusJson(Replica& replica, const ApiStatusOptions& options);

}  // namespace aidsync
