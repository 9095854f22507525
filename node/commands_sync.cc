// Network commands: sync (one session now) and serve (the daemon, with its
// optional status page).
#include <csignal>
#include <iostream>
#include <random>

#include "node/cli.h"
#include "node/daemon.h"
#include "sync/sync_session.h"
#include "sync/zmq_transport.h"

namespace aidsync::cli {
namespace {

// Set by SIGINT/SIGTERM. A signal handler can reach nothing but a global.
std::atomic<bool> g_stop{false};
extern "C" void OnStopSignal(int) { g_stop.store(true); }

struct SyncArgs {
  std::string peer;
  double timeout_s = 30;
};

Status RunSync(Context& ctx, const SyncArgs& a) {
  ASSIGN_OR_RETURN(PeerSpec peer, ParsePeerSpec(a.peer));
  if (a.timeout_s <= 0) return Status::InvalidArgument("--timeout must be positive");
  ASSIGN_OR_RETURN(auto replica, ctx.OpenNode());
  ASSIGN_OR_RETURN(Certificate cert, ResolvePeer(*replica, peer));
  std::signal(SIGINT, OnStopSignal);
  std::signal(SIGTERM, OnStopSignal);
  zmq::context_t context;
  uint64_t session_id = std::random_device{}() | (static_cast<uint64_t>(std::random_device{}()) << 32);
  SyncClient client(*replica, cert, peer.endpoint, session_id);
  ASSIGN_OR_RETURN(CurveClientKeys keys, CurveClientKeys::For(replica->identity_key(), cert.fields().node_key));
  Status st = RunClientSession(context, peer.endpoint, keys, client,
                               std::chrono::milliseconds(static_cast<int64_t>(a.timeout_s * 1000)), g_stop);
  if (!st.ok()) {
    if (st.message().find("in time") != std::string::npos)
      return Status::Unavailable("could not sync with " + a.peer + " within " + std::to_string(a.timeout_s).substr(0, 5) +
                                 " s (unreachable?)");
    return st;
  }
  const SessionStats& s = client.stats();
  std::cout << "sent " << s.changesets_sent << ", received " << s.changesets_received << ", " << s.messages_sent
            << " round trips, " << s.bytes_sent + s.bytes_received << " bytes\n";
  if (s.rejected_by_peer > 0 || s.rejected_here > 0)
    return Status::InvalidArgument(std::to_string(s.rejected_by_peer) + " changesets refused by the peer and " +
                                   std::to_string(s.rejected_here) + " refused here (see `aidsync status`)");
  return Status::OK();
}

struct ServeArgs {
  std::string listen;
  std::vector<std::string> peers;
  std::string http;
  int interval_s = 15;
  int silent_days = 3;
};

Status RunServe(Context& ctx, const ServeArgs& a) {
  DaemonConfig config;
  config.data_dir = ctx.data_dir;
  config.env = ctx.env;
  if (!a.listen.empty()) config.listen = a.listen;
  for (const auto& p : a.peers) {
    ASSIGN_OR_RETURN(PeerSpec spec, ParsePeerSpec(p));
    config.peers.push_back(std::move(spec));
  }
  if (!a.http.empty()) {
    ASSIGN_OR_RETURN(HttpEndpoint http, ParseHttpEndpoint(a.http));
    config.http = std::move(http);
  }
  if (a.silent_days < 1 || a.silent_days > 3650) return Status::InvalidArgument("--silent-days must be 1 to 3650");
  config.silent_days = a.silent_days;
  if (a.interval_s < 1 || a.interval_s > 30) return Status::InvalidArgument("--interval must be 1 to 30 seconds");
  config.interval_ms = a.interval_s * 1000;
  if (!config.listen && config.peers.empty() && !config.http)
    return Status::InvalidArgument("serve needs --listen tcp://IP:PORT, at least one --peer, or --http IP:PORT");
  std::signal(SIGINT, OnStopSignal);
  std::signal(SIGTERM, OnStopSignal);
  return RunDaemon(config, g_stop);
}

}  // namespace

void RegisterSyncCommands(CLI::App& app, Context& ctx) {
  {
    auto [cmd, a] = AddCommand<SyncArgs>(app, ctx, "sync", "one sync session with a peer now", RunSync);
    cmd->add_option("--peer", a->peer, "tcp://HOST:PORT (the hub) or CODE@tcp://HOST:PORT")->required();
    cmd->add_option("--timeout", a->timeout_s,
                    "give up when the peer has not answered a request for this many seconds (default 30); "
                    "a peer that cannot be connected to at all fails after at most 10 s");
  }
  {
    auto [cmd, a] = AddCommand<ServeArgs>(app, ctx, "serve", "keep this node in sync: listen and/or call peers",
                                          RunServe);
    cmd->add_option("--listen", a->listen, "tcp://IP:PORT to accept sessions on");
    cmd->add_option("--peer", a->peers, "a peer to keep in sync with (repeatable)");
    cmd->add_option("--http", a->http,
                    "serve the read-only status page on IP:PORT (PORT alone: 127.0.0.1:PORT)");
    cmd->add_option("--silent-days", a->silent_days,
                    "the status page alerts on a station not seen for this many days (default 3)");
    cmd->add_option("--interval", a->interval_s, "seconds between routine syncs with each peer (1-30, default 15)");
  }
}

}  // namespace aidsync::cli
