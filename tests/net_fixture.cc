#include "tests/net_fixture.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <csignal>
#include <cerrno>

#include "sync/zmq_transport.h"

namespace aidsync::nettest {

using clitest::County;
using clitest::Ok;
using clitest::On;
using nlohmann::json;
using proc::Result;

std::string Endpoint(int port) { return "tcp://127.0.0.1:" + std::to_string(port); }

int ConnectLoopback(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

int64_t MsSince(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
}

bool Eventually(const std::function<bool()>& ok, std::chrono::milliseconds timeout, std::chrono::milliseconds every) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    if (ok()) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(every);
  }
}

std::optional<std::string> Try(const std::string& data, std::vector<std::string> args) {
  Result r = On(data, std::move(args));
  if (!r.ok()) return std::nullopt;
  return r.Out();
}

std::optional<json> TryJson(const std::string& data, std::vector<std::string> args) {
  auto out = Try(data, std::move(args));
  if (!out) return std::nullopt;
  json doc = json::parse(*out, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return std::nullopt;
  return doc;
}

std::optional<int64_t> TryCount(const std::string& data, const std::string& table) {
  auto rows = TryJson(data, {"query", "SELECT count(*) AS n FROM " + table, "--json"});
  if (!rows || !rows->is_array() || rows->empty()) return std::nullopt;
  return rows->at(0).at("n").get<int64_t>();
}

bool Has(const std::string& data, const std::string& table, const std::string& id) {
  return Try(data, {"get", table, id, "--json"}).has_value();
}

// ---- Daemon -------------------------------------------------------------------

Daemon::Daemon(const std::string& data, std::vector<std::string> serve_args, std::string log) : log_(std::move(log)) {
  serve_args.insert(serve_args.begin(), {"--data", data, "serve"});
  argv_ = serve_args;
  pid_ = proc::StartBackground(serve_args, log_);
}

Daemon::~Daemon() {
  if (!exit_) {
    proc::Signal(pid_, SIGKILL);
    (void)proc::WaitExit(pid_, 10s);
  }
}

std::string Daemon::Log() const { return proc::Exists(log_) ? proc::ReadFile(log_) : std::string(); }

std::string Daemon::Describe() const {
  std::string s = "daemon pid " + std::to_string(pid_) + ":";
  for (const auto& a : argv_) s += " " + a;
  return s + "\n--- log ---\n" + Log() + "-----------\n";
}

bool Daemon::Running() {
  if (!exit_) exit_ = proc::WaitExit(pid_, 0ms);
  return !exit_;
}

bool Daemon::WaitForLog(const std::string& text, std::chrono::milliseconds timeout) {
  return Eventually([&] { return Log().find(text) != std::string::npos; }, timeout, 20ms);
}

std::optional<proc::Exit> Daemon::Stop(int sig, std::chrono::milliseconds timeout) {
  if (exit_) return exit_;
  proc::Signal(pid_, sig);
  exit_ = proc::WaitExit(pid_, timeout);
  return exit_;
}

std::unique_ptr<Daemon> StartHub(County& c, int port, const std::string& log_name) {
  auto hub = std::make_unique<Daemon>(c.hub, std::vector<std::string>{"--listen", Endpoint(port)}, c.tmp / log_name);
  INFO(hub->Describe());
  REQUIRE(hub->WaitForLog("listening on"));
  return hub;
}

Result SyncOnce(const std::string& data, const std::string& peer, int timeout_s) {
  return On(data, {"sync", "--peer", peer, "--timeout", std::to_string(timeout_s)});
}

std::string PutApplication(const std::string& data, const std::string& who) {
  return Ok(data, {"put", "applications", "new", "applicant_name=" + who, "id_number=430123195804120021",
                   "category=civil", "matter=追索劳动报酬", "income_status=low_income", "received_at=2015-04-02",
                   "status=approved", "decision_basis=《法律援助条例》第十条", "decided_at=2015-04-03"});
}

std::string PutLawyer(const std::string& data, const std::string& name, int years) {
  return Ok(data, {"put", "lawyers", "new", "name=" + name, "firm=正义律师事务所", "kind=lawyer",
                   "practice_years=" + std::to_string(years), "active=1"});
}

std::string PagePrefix(int http) { return "http: status page at http://127.0.0.1:" + std::to_string(http) + "/"; }

PageCounty::PageCounty() : County(2) {
  SeedRoster();  // the roster reaches both stations by bundle
  const clitest::Station& a = st[0];
  const clitest::Station& b = st[1];
  case_a = SeedCase(a).second;
  case_b = SeedCase(b).second;
  visit = Ok(b.dir, {"put", "return_visits", "new", "case_id=" + case_b, "visited_at=2015-05-10", "satisfaction=2",
                     "fee_charged=1", "note=当事人反映律师收取了费用"});

  port = proc::FreePort();
  http = proc::FreePort();
  daemon = std::make_unique<Daemon>(hub, std::vector<std::string>{"--listen", Endpoint(port), "--http",
                                                                  "127.0.0.1:" + std::to_string(http)},
                                    tmp / "hub.log");
  INFO(daemon->Describe());
  REQUIRE(daemon->WaitForLog(PagePrefix(http)));
  REQUIRE(daemon->WaitForLog("listening on"));
  Ok(SyncOnce(a.dir, Endpoint(port)));
  Ok(SyncOnce(b.dir, Endpoint(port)));
  // A concurrent edit of one field: the hub and station A, then A syncs.
  Ok(hub, {"put", "cases", case_a, "outcome=调解结案"});
  Ok(a.dir, {"put", "cases", case_a, "outcome=判决胜诉"});
  Ok(SyncOnce(a.dir, Endpoint(port)));

  json status;
  bool ready = Eventually([&] {
    auto doc = TryJson(hub, {"status", "--json"});
    if (!doc) return false;
    status = *doc;
    int synced = 0;
    for (const auto& p : status.at("peers"))
      if ((p.at("code") == a.code || p.at("code") == b.code) && p.at("last_sync").is_string()) ++synced;
    bool alert = false;
    for (const auto& text : status.at("alerts"))
      if (text.get<std::string>().find(visit) != std::string::npos) alert = true;
    return synced == 2 && status.at("conflicts_open") == 1 && alert;
  });
  INFO("hub status --json: " << status.dump(2));
  REQUIRE(ready);
}

std::string PageCounty::PageUrl() const { return "http://127.0.0.1:" + std::to_string(http) + "/"; }

// ---- Relay --------------------------------------------------------------------

namespace {

sockaddr_in Loopback(int port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  return addr;
}

// Closes a socket, with a reset (SO_LINGER 0) when `reset`.
void Cut(int fd, bool reset) {
  if (reset) {
    linger l{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  }
  ::close(fd);
}

bool WriteAll(int fd, const char* data, size_t n) {
  while (n > 0) {
    ssize_t w = ::send(fd, data, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    data += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

}  // namespace

Relay::Relay(int upstream_port, RelayOptions options) : upstream_(upstream_port), options_(options), rng_(options.seed) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(listen_fd_ >= 0);
  int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr = Loopback(0);
  REQUIRE(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  socklen_t len = sizeof addr;
  REQUIRE(::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  port_ = ntohs(addr.sin_port);
  REQUIRE(::listen(listen_fd_, 64) == 0);
  acceptor_ = std::thread([this] { AcceptLoop(); });
}

Relay::~Relay() {
  stop_ = true;
  acceptor_.join();
  std::vector<std::thread> pumps;
  {
    std::lock_guard<std::mutex> lock(mu_);
    pumps.swap(pumps_);
  }
  for (auto& t : pumps) t.join();
  ::close(listen_fd_);
}

std::string Relay::CapturedUp() const {
  std::lock_guard<std::mutex> lock(capture_mu_);
  return captured_[0];
}

std::string Relay::CapturedDown() const {
  std::lock_guard<std::mutex> lock(capture_mu_);
  return captured_[1];
}

void Relay::Record(int from, const char* data, size_t n) {
  if (!options_.capture) return;
  std::lock_guard<std::mutex> lock(capture_mu_);
  captured_[from].append(data, n);
}

void Relay::AcceptLoop() {
  while (!stop_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 20) <= 0) continue;
    int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) continue;
    ++connections_;
    uint64_t conn_seed = rng_();
    std::lock_guard<std::mutex> lock(mu_);
    pumps_.emplace_back([this, client, conn_seed] { Pump(client, conn_seed); });
  }
}

void Relay::Pump(int client, uint64_t conn_seed) {
  std::mt19937_64 rng(conn_seed);
  int server = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr = Loopback(upstream_);
  if (server < 0 || ::connect(server, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    if (server >= 0) ::close(server);
    ::close(client);
    return;
  }
  const auto start = Clock::now();
  std::optional<Clock::time_point> cut_at;
  if (options_.max_life_ms > 0 && ++cut_candidates_ <= options_.cut_connections) {
    int span = options_.max_life_ms - options_.min_life_ms;
    cut_at = start + std::chrono::milliseconds(options_.min_life_ms +
                                               static_cast<int>(rng() % static_cast<uint64_t>(span + 1)));
  }
  int64_t forwarded = 0;
  char buf[16384];
  bool open = true;
  while (open && !stop_) {
    if (cut_at && Clock::now() >= *cut_at) {
      ++cuts_;
      bool reset = rng() % 2 == 0;
      Cut(client, reset);
      Cut(server, reset);
      return;
    }
    pollfd p[2] = {{client, POLLIN, 0}, {server, POLLIN, 0}};
    if (::poll(p, 2, 10) <= 0) continue;
    for (int i = 0; i < 2 && open; ++i) {
      if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t n = ::recv(p[i].fd, buf, sizeof buf, 0);
      if (n <= 0) {
        open = false;
        break;
      }
      if (options_.max_delay_ms > 0)
        std::this_thread::sleep_for(
            std::chrono::milliseconds(rng() % static_cast<uint64_t>(options_.max_delay_ms + 1)));
      forwarded += n;
      bytes_ += n;
      if (options_.bytes_per_second > 0) {
        // Hold the average rate of this connection under the cap.
        auto due = start + std::chrono::microseconds(forwarded * 1000000 / options_.bytes_per_second);
        std::this_thread::sleep_until(due);
      }
      Record(i, buf, static_cast<size_t>(n));
      if (!WriteAll(p[1 - i].fd, buf, static_cast<size_t>(n))) open = false;
    }
  }
  ::close(client);
  ::close(server);
}

// ---- CurveDealer ----------------------------------------------------------------

CurveDealer::CurveDealer(zmq::context_t& context, const SigningKey& own, const std::string& server_key_hex,
                         const std::string& endpoint)
    : socket_(context, zmq::socket_type::dealer) {
  auto server = PublicKey::FromHex(server_key_hex);
  REQUIRE(server.ok());
  auto keys = CurveClientKeys::For(own, *server);
  REQUIRE(keys.ok());
  socket_.set(zmq::sockopt::linger, 0);
  REQUIRE(zmq_setsockopt(socket_.handle(), ZMQ_CURVE_SERVERKEY, keys->server_public.data(), 32) == 0);
  REQUIRE(zmq_setsockopt(socket_.handle(), ZMQ_CURVE_PUBLICKEY, keys->client_public.data(), 32) == 0);
  REQUIRE(zmq_setsockopt(socket_.handle(), ZMQ_CURVE_SECRETKEY, keys->client_secret.data(), 32) == 0);
  socket_.connect(endpoint);
}

void CurveDealer::Send(const SyncMsg& msg) { SendRaw(EncodeMessage(msg)); }

void CurveDealer::SendRaw(std::string_view bytes, zmq::send_flags flags) {
  socket_.send(zmq::buffer(bytes.data(), bytes.size()), flags);
}

std::optional<SyncMsg> CurveDealer::Reply(std::chrono::milliseconds timeout) {
  zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
  zmq::poll(&item, 1, timeout);
  if (!(item.revents & ZMQ_POLLIN)) return std::nullopt;
  zmq::message_t m;
  (void)socket_.recv(m, zmq::recv_flags::none);
  auto msg = DecodeMessage(std::string_view(static_cast<const char*>(m.data()), m.size()));
  if (!msg.ok()) return std::nullopt;
  return std::move(*msg);
}

std::string RefusedReason(const std::optional<SyncMsg>& m) {
  if (!m) return "(no reply)";
  auto* refused = std::get_if<RefusedMsg>(&m->body);
  return refused ? refused->reason : "(not a refusal)";
}

}  // namespace aidsync::nettest
