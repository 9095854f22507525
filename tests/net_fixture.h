// Shared helpers for the process-level network tests (net_test.cc,
// trust_net_test.cc, http_status_test.cc, browser_test.cc): polling against
// deadlines, a `serve` daemon run in the background, one-shot syncs, the
// county behind the status page tests, a TCP relay that can delay, cut and
// record the bytes of a link, and a raw CurveZMQ DEALER that plays a
// (modified) client.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "crypto/keys.h"
#include "sync/protocol.h"
#include "tests/cli_fixture.h"
#include "tests/process.h"

namespace aidsync::nettest {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr auto kConverge = 20s;  // how long a poll for convergence may take

std::string Endpoint(int port);

int64_t MsSince(Clock::time_point start);

// A TCP connection to 127.0.0.1:`port`; -1 if it cannot be made. The caller
// closes it.
int ConnectLoopback(int port);

// Calls `ok` every `every` until it returns true or `timeout` passes. The
// sleep is a poll period, never a wait standing in for a result.
bool Eventually(const std::function<bool()>& ok, std::chrono::milliseconds timeout = kConverge,
                std::chrono::milliseconds every = 100ms);

// stdout of a command that may fail while a poll is under way (nullopt then).
std::optional<std::string> Try(const std::string& data, std::vector<std::string> args);
std::optional<nlohmann::json> TryJson(const std::string& data, std::vector<std::string> args);
std::optional<int64_t> TryCount(const std::string& data, const std::string& table);

// True when `data` has row `id` of `table`.
bool Has(const std::string& data, const std::string& table, const std::string& id);

// A `serve` running in the background, its stdout and stderr in a log file.
// Killed (SIGKILL) and reaped on destruction unless it was stopped already.
class Daemon {
 public:
  Daemon(const std::string& data, std::vector<std::string> serve_args, std::string log);
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;
  ~Daemon();

  pid_t pid() const { return pid_; }
  std::string Log() const;
  std::string Describe() const;

  // True while the process has not ended (reaps it if it has).
  bool Running();

  // Polls the log until it contains `text`.
  bool WaitForLog(const std::string& text, std::chrono::milliseconds timeout = kConverge);

  // Sends `sig` and waits up to `timeout` for the process to end.
  std::optional<proc::Exit> Stop(int sig, std::chrono::milliseconds timeout);

 private:
  std::string log_;
  std::vector<std::string> argv_;
  pid_t pid_ = -1;
  std::optional<proc::Exit> exit_;
};

// A hub serving on a free port; waits until it listens.
std::unique_ptr<Daemon> StartHub(clitest::County& c, int port, const std::string& log_name = "hub.log");

proc::Result SyncOnce(const std::string& data, const std::string& peer, int timeout_s = 20);

std::string PutApplication(const std::string& data, const std::string& who);
std::string PutLawyer(const std::string& data, const std::string& name, int years);

// The line `serve --http 127.0.0.1:PORT` logs: "http: status page at http://127.0.0.1:PORT/".
std::string PagePrefix(int http);

// The county of the status page tests (http_status_test.cc, browser_test.cc):
// a hub serving sync and its page (`serve --listen ... --http 127.0.0.1:PORT`)
// and two stations, A and B, that synced to it. B recorded a return visit that
// charged a fee (an alert of the hub and of B); the hub (调解结案) and A
// (判决胜诉) set the outcome of A's case while apart (one open conflict). The
// constructor returns once the hub's `status --json` shows both stations'
// syncs, the conflict and the alert.
struct PageCounty : clitest::County {
  PageCounty();

  std::string case_a, case_b;      // a case of each station
  std::string visit;               // B's return visit that records a fee
  int port = 0;                    // sync (--listen)
  int http = 0;                    // the page (--http)
  std::unique_ptr<Daemon> daemon;  // the hub's `serve`

  std::string PageUrl() const;  // http://127.0.0.1:PORT/
};

// ---------------------------------------------------------------------------
// A TCP relay between a node and its peer: forwards bytes both ways, may
// delay each chunk, cap the rate, cut connections at random moments, and
// record every byte it forwards.

struct RelayOptions {
  uint64_t seed = 1;
  int min_life_ms = 0;         // each connection is cut after a random life in
  int max_life_ms = 0;         // [min, max] ms; 0: never cut
  int cut_connections = 1000;  // only the first this many connections are cut
  int max_delay_ms = 0;           // each chunk waits a random 0..max ms
  int64_t bytes_per_second = 0;   // 0: no cap
  bool capture = false;           // keep a copy of every byte forwarded
};

class Relay {
 public:
  Relay(int upstream_port, RelayOptions options);
  Relay(const Relay&) = delete;
  Relay& operator=(const Relay&) = delete;
  ~Relay();

  int port() const { return port_; }
  int connections() const { return connections_; }
  int cuts() const { return cuts_; }
  int64_t bytes() const { return bytes_; }

  // With options.capture: every byte forwarded from the connecting side to
  // the upstream port, and back, in the order forwarded (all connections).
  std::string CapturedUp() const;
  std::string CapturedDown() const;

 private:
  void AcceptLoop();
  void Pump(int client, uint64_t conn_seed);
  void Record(int from, const char* data, size_t n);

  int upstream_;
  RelayOptions options_;
  std::mt19937_64 rng_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::atomic<int> cuts_{0};
  std::atomic<int> cut_candidates_{0};
  std::atomic<int64_t> bytes_{0};
  std::thread acceptor_;
  std::mutex mu_;
  std::vector<std::thread> pumps_;
  mutable std::mutex capture_mu_;
  std::string captured_[2];  // [0] from the connecting side, [1] from upstream
};

// ---------------------------------------------------------------------------
// A raw ZeroMQ DEALER that completes the CurveZMQ handshake with `own`'s key
// against the node whose identity key is `server_key_hex`, and then sends
// whatever a test wants: a client that does not follow the protocol.

class CurveDealer {
 public:
  CurveDealer(zmq::context_t& context, const SigningKey& own, const std::string& server_key_hex,
              const std::string& endpoint);

  void Send(const SyncMsg& msg);
  void SendRaw(std::string_view bytes, zmq::send_flags flags = zmq::send_flags::none);
  // The next reply decoded, or nullopt when none comes within `timeout` or it does not decode.
  std::optional<SyncMsg> Reply(std::chrono::milliseconds timeout = 10s);

 private:
  zmq::socket_t socket_;
};

// The reason of a Refused reply; "(no reply)" or "(not a refusal)" otherwise.
std::string RefusedReason(const std::optional<SyncMsg>& m);

}  // namespace aidsync::nettest
