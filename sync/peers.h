// What a node remembers about each peer it syncs with (status `peers`,
// DESIGN 8): when it was seen and synced, what is pending each way, its clock
// offset and the last error. Kept in the replica's `aidsync_peers` table.
#pragma once

#include <cstdint>
#include <string>

namespace aidsync {

struct PeerRecord {
  std::string id;            // the peer's node key, 64 hex
  std::string name;
  std::string code;
  std::string address;       // where we reach it (client side), or "" for peers that call us
  int64_t last_seen_ms = 0;  // last message received from it
  int64_t last_sync_ms = 0;  // last session that completed with both sides up to date
  int64_t pending_out = 0;   // changesets it lacks, as of the last session
  int64_t pending_in = 0;    // changesets we lack from it, as of the last session
  int64_t clock_offset_ms = 0;  // its wall clock minus ours, at the last hello
  std::string last_error;    // in words; "" after a good session
};

// One finished (or failed) sync session with a peer, for the status page's
// timeline: when it was in touch and how much moved. Kept in the replica's
// `aidsync_sessions` table, the newest kMaxSessionsKept.
struct SessionRecord {
  std::string peer;          // the peer's node key, 64 hex
  int64_t started_ms = 0;
  int64_t ended_ms = 0;
  bool as_server = false;    // the peer called us
  int64_t changesets_sent = 0;
  int64_t changesets_received = 0;
  int64_t bytes_sent = 0;
  int64_t bytes_received = 0;
  std::string error;         // "" for a session that completed
};

// Enough for 50 stations syncing every 30 s for about a day and a half;
// older records are dropped, so the table cannot grow without bound.
constexpr int64_t kMaxSessionsKept = 200000;

// A peer's clock this far off ours is an alert (DESIGN 3).
constexpr int64_t kClockAlertMs = 5 * 60 * 1000;

}  // namespace aidsync
