#include "node/daemon.h"

#include <malloc.h>
#include <sys/resource.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <iostream>
#include <mutex>
#include <random>
#include <thread>

#include "node/cli.h"
#include "sync/replica.h"
#include "sync/sync_session.h"
#include "sync/zmq_transport.h"

namespace aidsync {
namespace {

using Clock = std::chrono::steady_clock;

std::string Timestamp() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// One line on stderr; lines from several threads never interleave. Lines
// quote peers' names and errors: shown through DisplayText.
void Log(const std::string& line) {
  static std::mutex mu;
  std::string shown = cli::DisplayText(line);
  std::lock_guard<std::mutex> lock(mu);
  std::cerr << Timestamp() << " " << shown << "\n" << std::flush;
}

std::string Kib(int64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f KiB", static_cast<double>(bytes) / 1024.0);
  return buf;
}

// Wakes the peer threads: new data in the log, or shutdown.
class Trigger {
 public:
  void Fire() {
    std::lock_guard<std::mutex> lock(mu_);
    ++generation_;
    cv_.notify_all();
  }
  // Waits until `until` passes or stop, and, when `wake_on_fire`, until the
  // generation moves past `seen`. Returns the generation.
  uint64_t Wait(uint64_t seen, Clock::time_point until, const std::atomic<bool>& stop, bool wake_on_fire) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_until(lock, until, [&] { return (wake_on_fire && generation_ != seen) || stop.load(); });
    return generation_;
  }
  uint64_t generation() {
    std::lock_guard<std::mutex> lock(mu_);
    return generation_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t generation_ = 0;
};

void ServeLoop(const DaemonConfig& config, std::unique_ptr<SyncListener> listener, Trigger& trigger,
               std::atomic<bool>& stop) {
  auto replica = Replica::Open(config.data_dir, config.env);
  if (!replica.ok()) {
    Log("serve: cannot open the node: " + replica.status().message());
    stop = true;
    trigger.Fire();
    return;
  }
  SyncServer server(**replica, SyncOptions{}, [](const std::string& line) { Log(line); });
  while (!stop.load()) {
    Status st = listener->Poll(server, 100);
    if (!st.ok()) Log("serve: " + st.message());
    server.Expire(5 * 60 * 1000);
    if (server.TakeNewData()) trigger.Fire();
  }
}

void PeerLoop(const DaemonConfig& config, const PeerSpec& peer, zmq::context_t& context, Trigger& trigger,
              std::atomic<bool>& stop) {
  auto replica = Replica::Open(config.data_dir, config.env);
  if (!replica.ok()) {
    Log("peer " + peer.text + ": cannot open the node: " + replica.status().message());
    return;
  }
  std::mt19937_64 jitter(std::random_device{}());
  int backoff_ms = config.min_backoff_ms;
  uint64_t seen = trigger.generation();
  Clock::time_point due = Clock::now();
  bool backing_off = false;
  while (!stop.load()) {
    // While backing off from an unreachable peer, new local writes do not
    // cut the wait short: they are sent when the peer answers again.
    seen = trigger.Wait(seen, due, stop, !backing_off);
    if (stop.load()) break;
    auto cert = ResolvePeer(**replica, peer);
    if (!cert.ok()) {
      Log("sync " + peer.text + ": " + cert.status().message());
      due = Clock::now() + std::chrono::milliseconds(config.max_backoff_ms);
      backing_off = true;
      continue;
    }
    uint64_t session_id = jitter();
    SyncClient client(**replica, *cert, peer.endpoint, session_id);
    auto keys = CurveClientKeys::For((*replica)->identity_key(), cert->fields().node_key);
    auto start = Clock::now();
    Status st = keys.ok() ? RunClientSession(context, peer.endpoint, *keys, client,
                                             std::chrono::milliseconds(config.reply_timeout_ms), stop)
                          : keys.status();
    if (stop.load()) break;
    const SessionStats& s = client.stats();
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
    Log("sync " + cert->fields().code + " " + cert->fields().name + " " + peer.endpoint + ": sent " +
        std::to_string(s.changesets_sent) + " (" + Kib(s.bytes_sent) + "), received " +
        std::to_string(s.changesets_received) + " (" + Kib(s.bytes_received) + "), " + std::to_string(ms) +
        " ms, " + (st.ok() ? "ok" : "failed: " + st.message()));
    backing_off = !st.ok();
    if (st.ok()) {
      backoff_ms = config.min_backoff_ms;
      due = Clock::now() + std::chrono::milliseconds(config.interval_ms);
    } else {
      // Capped exponential backoff with jitter, so stations that lost the hub
      // together do not all come back in the same instant.
      int wait = backoff_ms / 2 + static_cast<int>(jitter() % static_cast<uint64_t>(backoff_ms / 2 + 1));
      due = Clock::now() + std::chrono::milliseconds(wait);
      backoff_ms = std::min(backoff_ms * 2, config.max_backoff_ms);
    }
  }
}

// Every connection holds an open file, and libzmq keeps one whose handshake
// never completes for up to its handshake interval (30 s: rural links are
// slow). Under a service manager's low soft limit (systemd: 1024) anyone who
// can reach the port could hold that many half-finished handshakes and leave
// no file for a station's connection, so the daemon takes the hard limit.
// (tests/net_test.cc: half-finished handshakes past the soft limit.)
void RaiseOpenFileLimit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == limit.rlim_max) return;
  const rlim_t soft = limit.rlim_cur;
  limit.rlim_cur = limit.rlim_max;
  if (::setrlimit(RLIMIT_NOFILE, &limit) != 0)
    Log("serve: cannot raise the limit on open files from " + std::to_string(soft) + ": " + std::strerror(errno));
}

// The highest log id: grows exactly when a changeset is added by anyone.
Result<int64_t> LogWatermark(Database& db) {
  auto stmt = db.Cached("SELECT coalesce(max(id), 0) FROM aidsync_log");
  ASSIGN_OR_RETURN(bool row, stmt->Step());
  return row ? stmt->ColumnInt(0) : 0;
}

// At most two malloc arenas for the whole daemon, set before any thread
// (libzmq's, the status page's workers) starts: glibc otherwise gives each
// thread an arena of its own (up to 8 per core) and keeps in it the peak of
// whatever that thread built, such as a 5 MB /api/status (node/status_page.cc).
void LimitHeapArenas() {
#ifdef __GLIBC__
  mallopt(M_ARENA_MAX, 2);
#endif
}

}  // namespace

Result<Certificate> ResolvePeer(Replica& replica, const PeerSpec& peer) {
  std::optional<Certificate> cert;
  if (peer.code) {
    ASSIGN_OR_RETURN(cert, replica.CertificateByCode(*peer.code));
    if (!cert) return Status::NotFound("no enrolled node with station code " + *peer.code + " is known here");
  } else {
    ASSIGN_OR_RETURN(cert, replica.HubCertificate());
    if (!cert) return Status::NotFound("the hub's certificate is not known here (enrol this node first)");
  }
  return *cert;
}

Result<PeerSpec> ParsePeerSpec(const std::string& text) {
  PeerSpec spec;
  spec.text = text;
  std::string rest = text;
  size_t at = text.find('@');
  if (at != std::string::npos) {
    spec.code = text.substr(0, at);
    rest = text.substr(at + 1);
    if (spec.code->empty()) return Status::InvalidArgument("peer '" + text + "' has an empty station code");
  }
  size_t colon = rest.rfind(':');
  if (rest.rfind("tcp://", 0) != 0 || colon == std::string::npos || colon < 6 || colon + 1 >= rest.size())
    return Status::InvalidArgument("peer '" + text + "' must be tcp://HOST:PORT or CODE@tcp://HOST:PORT");
  for (char c : rest.substr(colon + 1))
    if (c < '0' || c > '9') return Status::InvalidArgument("peer '" + text + "' has a port that is not a number");
  spec.endpoint = rest;
  return spec;
}

Status RunDaemon(const DaemonConfig& config, std::atomic<bool>& stop) {
  LimitHeapArenas();
  RaiseOpenFileLimit();
  // Open once up front so a missing or corrupt node fails the command at once.
  ASSIGN_OR_RETURN(auto replica, Replica::Open(config.data_dir, config.env, {.quick_check = true, .read_only = false}));
  if (!replica->identity().enrolled) return Status::Unauthorized("this node is not enrolled yet");
  for (const auto& peer : config.peers) RETURN_IF_ERROR(ResolvePeer(*replica, peer).status());
  std::unique_ptr<StatusPage> page;
  if (config.http) {
    ASSIGN_OR_RETURN(page, StatusPage::Bind({.data_dir = config.data_dir, .env = config.env, .endpoint = *config.http,
                                             .silent_days = config.silent_days,
                                             .log = [](const std::string& line) { Log(line); }}));
  }
  zmq::context_t context;
  std::unique_ptr<SyncListener> listener;
  if (config.listen) {
    ASSIGN_OR_RETURN(listener, SyncListener::Bind(context, *config.listen, replica->identity_key()));
    Log("serve: " + replica->identity().name + " (" + replica->identity().code + ") listening on " +
        listener->endpoint());
    // Remembered for `invite`; a node that cannot write it still serves.
    Status saved = replica->SaveListenEndpoint(listener->endpoint());
    if (!saved.ok()) Log("serve: " + saved.message());
  }
  if (page) {
    page->Start();
    Log("http: status page at " + page->url());
  }
  Trigger trigger;
  std::vector<std::thread> threads;
  if (listener) threads.emplace_back(ServeLoop, std::cref(config), std::move(listener), std::ref(trigger), std::ref(stop));
  for (const auto& peer : config.peers)
    threads.emplace_back(PeerLoop, std::cref(config), std::cref(peer), std::ref(context), std::ref(trigger),
                         std::ref(stop));

  Database::Options watch_options;
  watch_options.read_only = true;
  watch_options.vfs = config.env.sqlite_vfs;
  auto watch = Database::Open(config.data_dir + "/replica.db", watch_options);
  int64_t watermark = 0;
  if (watch.ok()) {
    auto w = LogWatermark(**watch);
    if (w.ok()) watermark = *w;
  }
  while (!stop.load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(config.watch_interval_ms));  // a poll period, not a wait for a result
    if (!watch.ok()) continue;
    auto w = LogWatermark(**watch);
    if (w.ok() && *w != watermark) {
      watermark = *w;
      trigger.Fire();
    }
  }
  trigger.Fire();  // wakes every waiting thread to see `stop`
  if (page) page->Stop();
  for (auto& t : threads) t.join();
  Log("serve: stopped");
  return Status::OK();
}

}  // namespace aidsync
