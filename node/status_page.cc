#include "node/status_page.h"

#include <arpa/inet.h>
#include <malloc.h>
#include <sys/socket.h>
#include <httplib.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>

#include "node/status_json.h"
#include "sync/replica.h"

namespace aidsync {

struct StatusPage::Shared {
  StatusPageOptions options;
  httplib::Server server;
  int port = 0;  // as bound
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;  // the server thread has returned
  std::mutex log_mu;
  std::string last_error;  // logged once until it changes
  // One status document is built at a time: each takes tens of MiB while
  // it is built (ReleaseFreedMemory), so the hub's peak memory does not
  // grow with the number of admins' browsers asking at once.
  std::mutex build_mu;

  void Log(const std::string& line) {
    if (options.log) options.log(line);
  }
};

namespace {

using SteadyClock = std::chrono::steady_clock;

// Worker threads: plenty for a few admins' browsers. One request per
// connection (no keep-alive: a page refreshing every 5 s gains nothing from
// it), so a client holds a worker for at most kFirstByteS before it sends,
// or kReadTimeoutS between two packets of its request.
constexpr size_t kWorkers = 8;
constexpr time_t kReadTimeoutS = 2;
constexpr time_t kWriteTimeoutS = 5;
constexpr time_t kFirstByteS = 2;
constexpr auto kStopWait = std::chrono::seconds(3);

const char* const kCsp =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

bool IsIpv4(const std::string& s) {
  in_addr a{};
  return inet_pton(AF_INET, s.c_str(), &a) == 1;
}
bool IsIpv6(const std::string& s) {
  in6_addr a{};
  return inet_pton(AF_INET6, s.c_str(), &a) == 1;
}

bool AllDigits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c) != 0; });
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// The request came from this machine: only then are conflict values shown (DESIGN 6).
bool IsLoopback(const std::string& addr) {
  return addr.rfind("127.", 0) == 0 || addr == "::1" || addr.rfind("::ffff:127.", 0) == 0;
}

// The Host header names this endpoint: the bound address, localhost or
// 127.0.0.1, with the bound port (no port only for port 80). A page bound to
// a wildcard address also accepts any IP literal. A DNS name an attacker
// points at this machine (DNS rebinding) is never accepted.
bool HostAllowed(const StatusPage::Shared& s, const std::string& header) {
  std::string host = Lower(header);
  std::string name, port;
  if (!host.empty() && host[0] == '[') {
    size_t close = host.find(']');
    if (close == std::string::npos) return false;
    name = host.substr(1, close - 1);
    std::string rest = host.substr(close + 1);
    if (!rest.empty() && (rest[0] != ':' || rest.size() == 1)) return false;
    if (!rest.empty()) port = rest.substr(1);
    if (!IsIpv6(name)) return false;
  } else {
    size_t colon = host.find(':');
    name = host.substr(0, colon);
    if (colon != std::string::npos) port = host.substr(colon + 1);
    if (colon != std::string::npos && port.empty()) return false;
  }
  if (port.empty() ? s.port != 80 : port != std::to_string(s.port)) return false;
  const std::string& bound = s.options.endpoint.ip;
  if (name == "localhost" || name == "127.0.0.1" || name == Lower(bound)) return true;
  return (bound == "0.0.0.0" || bound == "::") && (IsIpv4(name) || IsIpv6(name));
}

void SetText(httplib::Response& res, int status, const std::string& text) {
  res.status = status;
  res.set_content(text + "\n", "text/plain; charset=utf-8");
}

void ServeApiStatus(StatusPage::Shared& s, const httplib::Request& req, httplib::Response& res) {
  std::lock_guard<std::mutex> one_at_a_time(s.build_mu);
  auto build = [&]() -> Result<nlohmann::json> {
    ASSIGN_OR_RETURN(auto replica,
                     Replica::Open(s.options.data_dir, s.options.env, {.quick_check = false, .read_only = true}));
    ApiStatusOptions o;
    o.silent_days = s.options.silent_days;
    o.now_ms = s.options.env.clock->NowMillis();
    o.with_values = IsLoopback(req.remote_addr);
    return ApiStatusJson(*replica, o);
  };
  Result<nlohmann::json> doc = build();
  if (!doc.ok()) {
    {
      std::lock_guard<std::mutex> lock(s.log_mu);
      if (s.last_error != doc.status().message()) {
        s.last_error = doc.status().message();
        s.Log("http: /api/status: " + s.last_error);
      }
    }
    res.status = 503;
    res.set_content(nlohmann::json{{"error", doc.status().message()}}.dump(-1, ' ', false,
                                                                           nlohmann::json::error_handler_t::replace),
                    "application/json; charset=utf-8");
    return;
  }
  res.set_content(doc->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                  "application/json; charset=utf-8");
}

// The status document of a county is large while it is built (50 stations
// with a week of history: about 40 MiB of JSON values for a 5 MB answer), and
// glibc keeps what a thread frees in that thread's arena: each worker would
// keep its own peak for good (tests/load_test.cc measured 350 MiB). RunDaemon
// limits the process to two arenas before any thread starts; each request
// gives its heap back here.
void ReleaseFreedMemory() {
#ifdef __GLIBC__
  malloc_trim(0);
#endif
}

void Configure(StatusPage::Shared& s) {
  httplib::Server& server = s.server;
  server.new_task_queue = [] { return new httplib::ThreadPool(kWorkers); };
  server.set_read_timeout(kReadTimeoutS, 0);
  server.set_write_timeout(kWriteTimeoutS, 0);
  server.set_keep_alive_timeout(kFirstByteS);
  server.set_keep_alive_max_count(1);
  server.set_payload_max_length(4096);
  // httplib's default also sets SO_REUSEPORT, which would let a second
  // process bind the same port and take part of the requests.
  server.set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  server.set_default_headers({
      {"Cache-Control", "no-store"},
      {"X-Content-Type-Options", "nosniff"},
      {"Content-Security-Policy", kCsp},
      {"Referrer-Policy", "no-referrer"},
      {"X-Frame-Options", "DENY"},
      {"Cross-Origin-Resource-Policy", "same-origin"},
  });
  StatusPage::Shared* sp = &s;  // the handlers live in s.server: s outlives them
  server.set_pre_routing_handler([sp](const httplib::Request& req, httplib::Response& res) {
    if (!HostAllowed(*sp, req.get_header_value("Host"))) {
      SetText(res, 403, "403 forbidden: the Host header must name this page's address");
      return httplib::Server::HandlerResponse::Handled;
    }
    if (req.method != "GET" && req.method != "HEAD") {
      res.set_header("Allow", "GET, HEAD");
      SetText(res, 405, "405 method not allowed: the status page is read-only");
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  server.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (res.body.empty()) SetText(res, res.status, std::to_string(res.status) + (res.status == 404 ? " not found" : " error"));
  });
  server.set_exception_handler([sp](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "unknown error";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    sp->Log("http: " + req.path + ": " + what);
    SetText(res, 500, "500 internal error");
  });
  server.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(kStatusPageHtml, "text/html; charset=utf-8");
  });
  server.Get("/app.js", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(kStatusPageJs, "text/javascript; charset=utf-8");
  });
  server.Get("/style.css", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(kStatusPageCss, "text/css; charset=utf-8");
  });
  server.Get("/api/status", [sp](const httplib::Request& req, httplib::Response& res) {
    ServeApiStatus(*sp, req, res);
    ReleaseFreedMemory();
  });
}

}  // namespace

Result<HttpEndpoint> ParseHttpEndpoint(const std::string& text) {
  auto bad = [&](const std::string& why) {
    return Status::InvalidArgument("--http '" + text + "': " + why);
  };
  HttpEndpoint e;
  e.text = text;
  std::string host, port;
  if (!text.empty() && text[0] == '[') {
    size_t close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return bad("must be [IPV6]:PORT");
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
    if (!IsIpv6(host)) return bad("'" + host + "' is not an IPv6 address");
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string::npos) {
      port = text;
    } else {
      host = text.substr(0, colon);
      port = text.substr(colon + 1);
    }
    if (host.find(':') != std::string::npos) return bad("write an IPv6 address in brackets, as [::1]:PORT");
    if (host.empty() || Lower(host) == "localhost") host = "127.0.0.1";
    if (!IsIpv4(host)) return bad("'" + host + "' is not an IP address (give the address to listen on)");
  }
  if (!AllDigits(port) || port.size() > 5 || std::stoi(port) > 65535) return bad("the port must be a number 0-65535");
  e.ip = host;
  e.port = std::stoi(port);
  return e;
}

Result<std::unique_ptr<StatusPage>> StatusPage::Bind(StatusPageOptions options) {
  auto shared = std::make_shared<Shared>();
  shared->options = std::move(options);
  Configure(*shared);
  const HttpEndpoint& ep = shared->options.endpoint;
  std::string where = (ep.ip.find(':') != std::string::npos ? "[" + ep.ip + "]" : ep.ip) + ":" + std::to_string(ep.port);
  errno = 0;
  if (ep.port == 0) {
    shared->port = shared->server.bind_to_any_port(ep.ip);
  } else if (shared->server.bind_to_port(ep.ip, ep.port)) {
    shared->port = ep.port;
  }
  if (shared->port <= 0) {
    int err = errno;
    if (err == EADDRINUSE) return Status::Unavailable("--http: cannot listen on " + where + ": the port is taken");
    return Status::InvalidArgument("--http: cannot listen on " + where +
                                   (err != 0 ? std::string(": ") + std::strerror(err) : std::string()));
  }
  return std::unique_ptr<StatusPage>(new StatusPage(std::move(shared)));
}

StatusPage::~StatusPage() { Stop(); }

std::string StatusPage::url() const {
  const std::string& ip = shared_->options.endpoint.ip;
  return "http://" + (ip.find(':') != std::string::npos ? "[" + ip + "]" : ip) + ":" + std::to_string(shared_->port) +
         "/";
}

void StatusPage::Start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([shared = shared_] {
    shared->server.listen_after_bind();
    std::lock_guard<std::mutex> lock(shared->mu);
    shared->done = true;
    shared->cv.notify_all();
  });
}

void StatusPage::Stop() {
  if (!thread_.joinable()) return;
  Shared& s = *shared_;
  std::unique_lock<std::mutex> lock(s.mu);
  // httplib's stop() does nothing before its accept loop has started, so wait
  // for that first (it starts at once).
  const auto start_deadline = SteadyClock::now() + kStopWait;
  while (!s.done && !s.server.is_running() && SteadyClock::now() < start_deadline)
    s.cv.wait_for(lock, std::chrono::milliseconds(10));
  if (!s.done && s.server.is_running()) s.server.stop();
  bool finished = s.cv.wait_for(lock, kStopWait, [&] { return s.done; });
  lock.unlock();
  if (finished) {
    thread_.join();
  } else {
    // A client keeps a request open: the thread keeps `shared_` alive and
    // ends with the process.
    s.Log("http: a request is still open after " + std::to_string(kStopWait.count()) + " s; not waiting for it");
    thread_.detach();
  }
}

}  // namespace aidsync
