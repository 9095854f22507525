#include "node/status_page.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <malloc.h>
#include <netdb.h>
#include <poll.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>
#include <httplib.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>

#include "node/status_json.h"
#include "sync/replica.h"

namespace aidsync {
namespace {

using SteadyClock = std::chrono::steady_clock;

// Worker threads: plenty for a few admins' browsers. A worker only ever
// sees a request whose head has fully arrived (PageServer), so clients that
// connect and send nothing, or trickle their headers, never hold one.
constexpr size_t kWorkers = 8;
// A request's head (request line and headers) must arrive whole within
// kHeadDeadline of the connection, in at most kMaxHeadBytes and
// kMaxHeaderLines lines; otherwise the connection is closed. At most
// kMaxWaitingHeads connections wait for their heads at once (a new one
// pushes out the oldest), and at most kMaxQueued complete requests wait for a
// worker (more get 503). Together they bound the page's memory and file
// descriptors whatever clients do.
constexpr auto kHeadDeadline = std::chrono::seconds(3);
constexpr size_t kMaxHeadBytes = 16 * 1024;
constexpr size_t kMaxHeaderLines = 64;
constexpr size_t kMaxWaitingHeads = 256;
constexpr size_t kMaxQueued = 64;
// Each write must make progress within kWriteTimeout, and a whole response
// go out within kResponseDeadline (a 5 MB county document to a slow LAN
// client), so a client that stops reading frees its worker.
constexpr auto kWriteTimeout = std::chrono::seconds(5);
constexpr auto kResponseDeadline = std::chrono::seconds(60);
constexpr auto kStopWait = std::chrono::seconds(3);

int MsUntil(SteadyClock::time_point deadline) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now()).count();
  return ms <= 0 ? 0 : static_cast<int>(std::min<int64_t>(ms, 60000));
}

// Waits until `fd` has `events` or `deadline` passes.
bool WaitFor(int fd, short events, SteadyClock::time_point deadline) {
  for (;;) {
    pollfd p{fd, events, 0};
    int n = ::poll(&p, 1, MsUntil(deadline));
    if (n > 0) return true;
    if (n == 0 || errno != EINTR) return false;
  }
}

// An accepted connection whose head PageServer has already read: httplib's
// request parser reads only that head; answers go to the socket.
class PrefetchedStream : public httplib::Stream {
 public:
  PrefetchedStream(int fd, std::string head)
      : fd_(fd),
        head_(std::move(head)),
        write_deadline_(SteadyClock::now() + kResponseDeadline) {}

  bool is_readable() const override { return pos_ < head_.size(); }
  bool is_writable() const override { return WaitFor(fd_, POLLOUT, WriteBy()); }

  // Only the collected head is ever read: the page takes no request body
  // (GET and HEAD only), so a worker never waits on the client's socket.
  ssize_t read(char* ptr, size_t size) override {
    if (pos_ >= head_.size()) return 0;
    size_t n = std::min(size, head_.size() - pos_);
    std::memcpy(ptr, head_.data() + pos_, n);
    pos_ += n;
    return static_cast<ssize_t>(n);
  }

  ssize_t write(const char* ptr, size_t size) override {
    for (;;) {
      if (!WaitFor(fd_, POLLOUT, WriteBy())) return -1;
      ssize_t n = ::send(fd_, ptr, size, MSG_NOSIGNAL);
      if (n >= 0 || (errno != EINTR && errno != EAGAIN)) return n;
    }
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override { Address(true, ip, port); }
  void get_local_ip_and_port(std::string& ip, int& port) const override { Address(false, ip, port); }
  socket_t socket() const override { return fd_; }

 private:
  SteadyClock::time_point WriteBy() const { return std::min(SteadyClock::now() + kWriteTimeout, write_deadline_); }

  void Address(bool remote, std::string& ip, int& port) const {
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    auto* sa = reinterpret_cast<sockaddr*>(&addr);
    if ((remote ? ::getpeername(fd_, sa, &len) : ::getsockname(fd_, sa, &len)) != 0) return;
    char host[NI_MAXHOST], serv[NI_MAXSERV];
    if (::getnameinfo(sa, len, host, sizeof host, serv, sizeof serv, NI_NUMERICHOST | NI_NUMERICSERV) != 0) return;
    ip = host;
    port = std::atoi(serv);
  }

  int fd_;
  std::string head_;
  size_t pos_ = 0;
  SteadyClock::time_point write_deadline_;
};

// Runs each task at once on the calling thread: httplib's accept loop hands
// each connection straight to PageServer::process_and_close_socket.
class InlineQueue : public httplib::TaskQueue {
 public:
  void enqueue(std::function<void()> fn) override { fn(); }
  void shutdown() override {}
};

void CloseSocket(int fd) {
  ::shutdown(fd, SHUT_RDWR);
  ::close(fd);
}

// Best effort: a short error answer to a client that is being dropped.
void SendAndClose(int fd, const char* status_line) {
  std::string text = std::string("HTTP/1.1 ") + status_line +
                     "\r\nContent-Length: 0\r\nConnection: close\r\nCache-Control: no-store\r\n\r\n";
  (void)!::send(fd, text.data(), text.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  CloseSocket(fd);
}

}  // namespace

// httplib 0.11 gives each accepted connection a worker thread at once, and
// a worker then waits for the request as long as the client keeps sending
// a byte per read timeout: a few hundred idle or trickling connections left
// every worker waiting and the page unreachable. It also builds every range
// of a `Range` header in memory (thousands of copies of the body for one
// request). So connections come here from httplib's accept loop: one thread
// collects each request's head under the limits above, and only a complete
// head reaches a worker, where httplib parses and answers it with the Range
// header dropped (every answer is the whole body).
class PageServer : public httplib::Server {
 public:
  PageServer() { new_task_queue = [] { return new InlineQueue; }; }
  ~PageServer() override { StopConnections(); }

  // Before the accept loop runs, and after it has returned.
  void StartConnections() {
    if (::pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) wake_[0] = wake_[1] = -1;
    pool_ = std::make_unique<httplib::ThreadPool>(kWorkers);
    collector_ = std::thread([this] { CollectHeads(); });
  }
  void StopConnections() {
    if (!collector_.joinable()) return;
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    Wake();
    collector_.join();
    pool_->shutdown();
    pool_.reset();
    std::lock_guard<std::mutex> lock(mu_);
    for (int fd : incoming_) ::close(fd);
    incoming_.clear();
    if (wake_[0] >= 0) ::close(wake_[0]);
    if (wake_[1] >= 0) ::close(wake_[1]);
    wake_[0] = wake_[1] = -1;
  }

 private:
  struct Waiting {
    int fd;
    std::string head;
    SteadyClock::time_point deadline;
  };

  // On the accept thread: queue the socket for the collector.
  bool process_and_close_socket(socket_t sock) override {
    int flags = ::fcntl(sock, F_GETFL);
    if (flags < 0 || ::fcntl(sock, F_SETFL, flags | O_NONBLOCK) != 0) {
      ::close(sock);
      return false;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_ || wake_[1] < 0) {
        ::close(sock);
        return false;
      }
      incoming_.push_back(sock);
    }
    Wake();
    return true;
  }

  void Wake() {
    if (wake_[1] >= 0) (void)!::write(wake_[1], "x", 1);
  }

  // The end of the head: the first empty line. Only CRLF ends a line:
  // httplib 0.11 skips a line that ends in a bare LF and reads on, so a
  // bare-LF "end" would let it read more head from the socket, past the
  // limits here (BareLineFeed refuses such heads).
  static size_t HeadEnd(const std::string& s) {
    size_t crlf = s.find("\r\n\r\n");
    return crlf == std::string::npos ? std::string::npos : crlf + 4;
  }
  static bool BareLineFeed(const std::string& s, size_t end) {
    for (size_t i = 0; i < end && i < s.size(); ++i)
      if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r')) return true;
    return false;
  }

  void CollectHeads() {
    std::deque<Waiting> waiting;  // oldest first
    std::vector<pollfd> fds;
    char buf[4096];
    for (;;) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (stopping_) break;
        for (int fd : incoming_) waiting.push_back({fd, {}, SteadyClock::now() + kHeadDeadline});
        incoming_.clear();
      }
      while (waiting.size() > kMaxWaitingHeads) {
        SendAndClose(waiting.front().fd, "408 Request Timeout");
        waiting.pop_front();
      }
      auto next = SteadyClock::now() + std::chrono::seconds(60);
      fds.assign(1, pollfd{wake_[0], POLLIN, 0});
      for (const auto& w : waiting) {
        fds.push_back(pollfd{w.fd, POLLIN, 0});
        next = std::min(next, w.deadline);
      }
      int n = ::poll(fds.data(), fds.size(), MsUntil(next));
      if (n < 0 && errno != EINTR) break;
      if (fds[0].revents != 0)
        while (::read(wake_[0], buf, sizeof buf) > 0) {
        }
      const auto now = SteadyClock::now();
      std::deque<Waiting> still;
      for (size_t i = 0; i < waiting.size(); ++i) {
        Waiting& w = waiting[i];
        if (n > 0 && fds[i + 1].revents != 0) {
          ssize_t got = ::recv(w.fd, buf, sizeof buf, 0);
          if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) {
            CloseSocket(w.fd);
            continue;
          }
          if (got > 0) w.head.append(buf, static_cast<size_t>(got));
          size_t end = HeadEnd(w.head);
          size_t head_bytes = end == std::string::npos ? w.head.size() : end;
          if (head_bytes > kMaxHeadBytes ||
              static_cast<size_t>(std::count(w.head.begin(), w.head.begin() + static_cast<ptrdiff_t>(head_bytes),
                                             '\n')) > kMaxHeaderLines + 1) {
            SendAndClose(w.fd, "431 Request Header Fields Too Large");
            continue;
          }
          if (BareLineFeed(w.head, head_bytes)) {
            SendAndClose(w.fd, "400 Bad Request");
            continue;
          }
          if (end != std::string::npos) {
            Dispatch(w.fd, WithoutRange(w.head, end));
            continue;
          }
        }
        if (now >= w.deadline) {
          SendAndClose(w.fd, "408 Request Timeout");
          continue;
        }
        still.push_back(std::move(w));
      }
      waiting.swap(still);
    }
    for (const auto& w : waiting) CloseSocket(w.fd);
  }

  // The head without its Range header lines (and their continuations):
  // httplib would match each against a regular expression whose recursion
  // takes megabytes of a worker's stack for a long header, before any
  // handler could drop it. `end` is where the head ends in `in`.
  static std::string WithoutRange(const std::string& in, size_t end) {
    std::string out;
    out.reserve(in.size());
    bool dropping = false;
    for (size_t at = 0; at < end;) {
      size_t eol = in.find('\n', at);
      size_t next = eol == std::string::npos || eol >= end ? end : eol + 1;
      std::string_view line(in.data() + at, next - at);
      bool continuation = at > 0 && !line.empty() && (line[0] == ' ' || line[0] == '\t');
      if (!continuation) {
        dropping = at > 0 && line.size() >= 6 && line[5] == ':' && ::strncasecmp(line.data(), "range", 5) == 0;
      }
      if (!dropping) out.append(line);
      at = next;
    }
    out.append(in, end, std::string::npos);
    return out;
  }

  void Dispatch(int fd, std::string head) {
    if (queued_.load() >= kMaxQueued + kWorkers) {
      SendAndClose(fd, "503 Service Unavailable");
      return;
    }
    ++queued_;
    pool_->enqueue([this, fd, head = std::move(head)]() mutable {
      if (stopping_) {  // the daemon is stopping: queued requests go unanswered
        CloseSocket(fd);
        --queued_;
        return;
      }
      PrefetchedStream stream(fd, std::move(head));
      bool closed = false;
      process_request(stream, /*close_connection=*/true, closed, [](httplib::Request& req) {
        req.ranges.clear();
        req.headers.erase("Range");
      });
      CloseSocket(fd);
      --queued_;
    });
  }

  std::mutex mu_;
  std::atomic<bool> stopping_{false};
  std::vector<int> incoming_;
  int wake_[2] = {-1, -1};
  std::atomic<size_t> queued_{0};  // requests dispatched and not yet answered
  std::unique_ptr<httplib::ThreadPool> pool_;
  std::thread collector_;
};

struct StatusPage::Shared {
  StatusPageOptions options;
  PageServer server;
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
  // One request per connection (no keep-alive: a page refreshing every 5 s
  // gains nothing from it); PageServer bounds everything else.
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
    shared->server.StartConnections();
    shared->server.listen_after_bind();
    shared->server.StopConnections();
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
