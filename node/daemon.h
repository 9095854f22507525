// `aidsync serve`: the daemon that keeps a node in sync (DESIGN 5).
//
// Threads, each with its own Replica (SQLite coordinates them, as it does
// separate processes): one serves the --listen endpoint; one per --peer runs
// sessions with it — at start, within a second of any new changeset in the
// log (written by this daemon or by any other process on the data dir, such
// as `aidsync put`), and every `interval` — retrying an unreachable peer with
// capped exponential backoff. With --http, the status page (node/status_page.h)
// serves on threads of its own, each request on its own read-only Replica.
// The calling thread watches the log and `stop`.
#pragma once

#include <atomic>
#include <optional>
#include <string>
#include <vector>

#include "base/env.h"
#include "base/status.h"
#include "node/status_page.h"
#include "sync/replica.h"

namespace aidsync {

// A --peer argument: `tcp://HOST:PORT` is the hub; `CODE@tcp://HOST:PORT` is
// the node with that station code.
struct PeerSpec {
  std::optional<std::string> code;
  std::string endpoint;
  std::string text;  // as given
};
// InvalidArgument naming what is wrong with `text`.
Result<PeerSpec> ParsePeerSpec(const std::string& text);

// The certificate of the node `peer` names: the hub's, or the one enrolled
// with its station code. NotFound (saying which) if this node does not know it.
Result<Certificate> ResolvePeer(Replica& replica, const PeerSpec& peer);

struct DaemonConfig {
  std::string data_dir;
  Env env;
  std::optional<std::string> listen;  // tcp://IP:PORT
  std::vector<PeerSpec> peers;
  std::optional<HttpEndpoint> http;   // the status page, if any
  int silent_days = 3;                // the page's alert for a station silent this long
  int interval_ms = 15000;            // steady re-sync (DESIGN 5: at least every 30 s)
  int min_backoff_ms = 500;
  int max_backoff_ms = 30000;         // the cap on retries of an unreachable peer
  int reply_timeout_ms = 60000;       // a peer silent this long after a request has failed
  int watch_interval_ms = 250;        // how often the log is checked for new changesets
};

// Runs until `stop` becomes true (the caller sets it from SIGINT/SIGTERM).
// Fails at once if the node cannot be opened or the listen or http endpoint
// bound;
// afterwards errors are logged (one line on stderr) and retried, never fatal.
Status RunDaemon(const DaemonConfig& config, std::atomic<bool>& stop);

}  // namespace aidsync
