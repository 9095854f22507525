// The status page of `aidsync serve --http` (DESIGN 6, 8; node/status_page.h):
// a real hub process with two stations that sync to it, read over HTTP with
// cpp-httplib's client; the HTTP rules (GET/HEAD only, Host check, headers,
// local-only assets); a slow client that must not hold up sync or shutdown;
// and the stations' alerts (silent, clock) computed against a given time.
// Every wait is a poll against a deadline.
#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <csignal>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "node/status_json.h"
#include "sync/replica.h"
#include "tests/cli_fixture.h"
#include "tests/net_fixture.h"
#include "tests/process.h"

namespace {

namespace proc = aidsync::proc;
using namespace std::chrono_literals;
using namespace aidsync::clitest;
using namespace aidsync::nettest;
using Catch::Matchers::Contains;
using nlohmann::json;

std::unique_ptr<httplib::Client> Client(int port) {
  auto cli = std::make_unique<httplib::Client>("127.0.0.1", port);
  cli->set_connection_timeout(5, 0);
  cli->set_read_timeout(10, 0);
  return cli;
}

std::optional<json> ApiStatus(int port) {
  auto res = Client(port)->Get("/api/status");
  if (!res || res->status != 200) return std::nullopt;
  json doc = json::parse(res->body, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return std::nullopt;
  return doc;
}

// The headers every response carries, errors included.
void CheckHeaders(const httplib::Response& res) {
  INFO("status " << res.status);
  CHECK(res.get_header_value("Cache-Control") == "no-store");
  CHECK(res.get_header_value("X-Content-Type-Options") == "nosniff");
  CHECK(res.get_header_value("Referrer-Policy") == "no-referrer");
  std::string csp = res.get_header_value("Content-Security-Policy");
  CHECK_THAT(csp, Contains("default-src 'self'"));
  CHECK(csp.find("unsafe-inline") == std::string::npos);
  CHECK(csp.find("unsafe-eval") == std::string::npos);
}

const json* StationByCode(const json& doc, const std::string& code) {
  for (const auto& s : doc.at("stations"))
    if (s.at("code") == code) return &s;
  return nullptr;
}

bool AnyContains(const json& texts, const std::string& needle) {
  for (const auto& t : texts)
    if (t.get<std::string>().find(needle) != std::string::npos) return true;
  return false;
}

// A TCP connection to the page that sends part of a request and then nothing.
class HalfRequest {
 public:
  explicit HalfRequest(int port) {
    fd_ = ConnectLoopback(port);
    REQUIRE(fd_ >= 0);
    std::string half = "GET /api/status HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) + "\r\nX-Slow: ";
    REQUIRE(::send(fd_, half.data(), half.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(half.size()));
  }
  ~HalfRequest() { ::close(fd_); }
  HalfRequest(const HalfRequest&) = delete;
  HalfRequest& operator=(const HalfRequest&) = delete;

 private:
  int fd_ = -1;
};

// A raw TCP connection to the page on 127.0.0.1.
int Connect(int port) {
  int fd = ConnectLoopback(port);
  REQUIRE(fd >= 0);
  return fd;
}

// The peak resident memory of process `pid` in KiB (VmHWM), or -1.
int64_t PeakRssKib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6));
  return -1;
}

// Sends `request` on a fresh connection and reads until the server closes it
// (at most `timeout`); the status line, or "" if none came.
std::string RawStatusLine(int port, const std::string& request, std::chrono::milliseconds timeout = 10s) {
  int fd = Connect(port);
  ::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  std::string got;
  auto deadline = Clock::now() + timeout;
  char buf[4096];
  while (Clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return got.substr(0, got.find("\r\n"));
}

// ---------------------------------------------------------------------------

TEST_CASE("http: the hub's page lists both stations with their syncs, an alert and a conflict", "[http]") {
  PageCounty c;  // two stations synced: B's return visit with a fee, a conflict on A's case
  const Station& a = c.st[0];
  const Station& b = c.st[1];
  const std::string& case_a = c.case_a;
  const std::string& visit = c.visit;
  const int http = c.http;
  Daemon& hub = *c.daemon;
  INFO(hub.Describe());

  json doc;
  bool shown = Eventually([&] {
    auto d = ApiStatus(http);
    if (!d) return false;
    doc = *d;
    const json* sa = StationByCode(doc, a.code);
    const json* sb = StationByCode(doc, b.code);
    return sa && sb && sa->at("last_sync").is_string() && sb->at("last_sync").is_string() &&
           !doc.at("conflicts").empty();
  });
  INFO(doc.dump(2));
  REQUIRE(shown);

  // `status --json`, extended: every key of it is there with the same value.
  json status = ParseJson(Ok(c.hub, {"status", "--json"}));
  for (const auto& [key, value] : status.items()) {
    INFO("key " << key);
    if (key == "alerts") {
      for (const auto& alert : value) CHECK(AnyContains(doc.at("alerts"), alert.get<std::string>()));
    } else {
      CHECK(doc.at(key) == value);
    }
  }
  CHECK(doc.at("conflicts_open") == 1);
  CHECK(doc.at("values_hidden") == false);

  // Both stations (the hub itself is `node`, not a station).
  REQUIRE(doc.at("stations").size() == 2);
  CHECK(StationByCode(doc, "0500") == nullptr);
  for (const Station* s : {&a, &b}) {
    const json& row = *StationByCode(doc, s->code);
    CHECK(row.at("name") == s->name);
    CHECK(row.at("scope") == s->scope);
    CHECK(row.at("role") == "station");
    CHECK(row.at("key") == s->key);
    CHECK(row.at("revoked") == false);
    CHECK(row.at("last_seen").is_string());
    CHECK(row.at("last_sync").is_string());
    CHECK(row.at("pending_out").is_number_integer());
    CHECK(row.at("pending_in").is_number_integer());
    CHECK(row.at("clock_offset_ms").is_number_integer());
    CHECK(row.at("last_error").is_null());
    CHECK(row.at("alerts").is_array());
  }

  // The fee-charged return visit: a node alert, and an alert of station B
  // (the visit is in its scope), not of A.
  CHECK(AnyContains(doc.at("alerts"), visit));
  CHECK(AnyContains(StationByCode(doc, b.code)->at("alerts"), visit));
  CHECK_FALSE(AnyContains(StationByCode(doc, a.code)->at("alerts"), visit));

  // The conflict inbox: as `conflicts --json`, with both values and authors.
  const json& conflicts = doc.at("conflicts");
  CHECK(conflicts == ParseJson(Ok(c.hub, {"conflicts", "--json"})));
  REQUIRE(conflicts.size() == 1);
  const json& conflict = conflicts.at(0);
  CHECK(conflict.at("table") == "cases");
  CHECK(conflict.at("id") == case_a);
  CHECK(conflict.at("column") == "outcome");
  REQUIRE(conflict.at("winner").is_object());
  REQUIRE(conflict.at("losers").size() == 1);
  std::set<std::string> values{conflict.at("winner").at("value"), conflict.at("losers").at(0).at("value")};
  std::set<std::string> authors{conflict.at("winner").at("author"), conflict.at("losers").at(0).at("author")};
  CHECK(values == std::set<std::string>{"调解结案", "判决胜诉"});
  CHECK(authors == std::set<std::string>{"县法律援助中心", a.name});
  CHECK(conflict.at("winner").at("time").is_string());
  CHECK(hub.Running());
}

TEST_CASE("http: a page-only hub serves GET of its own files to its own address, and nothing else", "[http]") {
  County c(1);
  int http = proc::FreePort();
  // No --listen and no --peer: a hub admin may run the page alone. PORT alone is 127.0.0.1.
  Daemon hub(c.hub, {"--http", std::to_string(http)}, c.tmp / "hub.log");
  INFO(hub.Describe());
  REQUIRE(hub.WaitForLog(PagePrefix(http)));
  auto cli = Client(http);

  auto page = cli->Get("/");
  REQUIRE(page);
  CHECK(page->status == 200);
  CHECK_THAT(page->get_header_value("Content-Type"), Contains("text/html"));
  CheckHeaders(*page);
  const std::string& html = page->body;
  CHECK_THAT(html, Contains("/app.js") && Contains("/style.css"));
  // Only local paths: no scheme, no protocol-relative URL, no inline script or style.
  CHECK(html.find("http://") == std::string::npos);
  CHECK(html.find("https://") == std::string::npos);
  static const std::regex attr(R"re((src|href)\s*=\s*"([^"]*)")re");
  std::vector<std::string> local;
  for (auto it = std::sregex_iterator(html.begin(), html.end(), attr); it != std::sregex_iterator(); ++it) {
    std::string url = (*it)[2];
    INFO("url " << url);
    CHECK(((url.rfind("/", 0) == 0 && url.rfind("//", 0) != 0) || url.rfind("?", 0) == 0));
    if (url.rfind("/", 0) == 0) local.push_back(url);
  }
  CHECK(local.size() >= 2);
  static const std::regex script(R"(<script\b[^>]*>)");
  for (auto it = std::sregex_iterator(html.begin(), html.end(), script); it != std::sregex_iterator(); ++it)
    CHECK_THAT(it->str(), Contains("src=\"/"));
  CHECK(html.find("<style") == std::string::npos);
  CHECK_FALSE(std::regex_search(html, std::regex(R"(\son[a-z]+\s*=)")));
  for (const auto& url : local) {
    auto res = cli->Get(url);
    INFO("GET " << url);
    REQUIRE(res);
    CHECK(res->status == 200);
  }

  auto js = cli->Get("/app.js");
  REQUIRE(js);
  CHECK(js->status == 200);
  CHECK_THAT(js->get_header_value("Content-Type"), Contains("javascript"));
  CHECK_THAT(js->body, Contains("/api/status"));
  // No URL but the SVG namespace name (createElementNS; never fetched).
  CHECK(std::regex_replace(js->body, std::regex("'http://www\\.w3\\.org/2000/svg'"), "").find("http") ==
        std::string::npos);
  CheckHeaders(*js);
  auto css = cli->Get("/style.css");
  REQUIRE(css);
  CHECK(css->status == 200);
  CHECK_THAT(css->get_header_value("Content-Type"), Contains("text/css"));
  CHECK(css->body.find("url(") == std::string::npos);
  CHECK(css->body.find("@import") == std::string::npos);

  auto api = cli->Get("/api/status");
  REQUIRE(api);
  CHECK(api->status == 200);
  CHECK_THAT(api->get_header_value("Content-Type"), Contains("application/json"));
  CheckHeaders(*api);
  json doc = ParseJson(api->body);
  CHECK(doc.at("node").at("code") == "0500");
  CHECK(doc.at("stations").size() == 1);
  CHECK(doc.at("conflicts").empty());

  auto head = cli->Head("/");
  REQUIRE(head);
  CHECK(head->status == 200);
  CHECK(head->body.empty());

  for (const char* path : {"/nope", "/api/status/x", "/api", "/../replica.db"}) {
    auto res = cli->Get(path);
    INFO("GET " << path);
    REQUIRE(res);
    CHECK(res->status == 404);
    CheckHeaders(*res);
  }

  auto post = cli->Post("/", "x=1", "application/x-www-form-urlencoded");
  REQUIRE(post);
  CHECK(post->status == 405);
  CHECK(post->get_header_value("Allow") == "GET, HEAD");
  CheckHeaders(*post);
  auto post_api = cli->Post("/api/status", "{}", "application/json");
  REQUIRE(post_api);
  CHECK(post_api->status == 405);
  auto put = cli->Put("/api/status", "{}", "application/json");
  REQUIRE(put);
  CHECK(put->status == 405);
  auto del = cli->Delete("/");
  REQUIRE(del);
  CHECK(del->status == 405);

  // DNS rebinding: a name that is not this page's address is refused.
  const std::string p = std::to_string(http);
  for (const std::string& host :
       std::vector<std::string>{"evil.example:" + p, "evil.example", "127.0.0.1:1", "localhost.evil.example:" + p}) {
    auto res = cli->Get("/api/status", {{"Host", host}});
    INFO("Host: " << host);
    REQUIRE(res);
    CHECK(res->status == 403);
    CHECK(res->body.find("0500") == std::string::npos);
    CheckHeaders(*res);
  }
  for (const std::string& host : std::vector<std::string>{"127.0.0.1:" + p, "localhost:" + p, "LOCALHOST:" + p}) {
    auto res = cli->Get("/api/status", {{"Host", host}});
    INFO("Host: " << host);
    REQUIRE(res);
    CHECK(res->status == 200);
  }

  // Bad --http values and a taken port are refused at once, in one line.
  const std::string& st = c.st[0].dir;
  RequireRefused(On(st, {"serve", "--http", "example.com:8080"}), "address");
  RequireRefused(On(st, {"serve", "--http", "127.0.0.1:99999"}), "port");
  RequireRefused(On(st, {"serve", "--http", "127.0.0.1:80x"}), "port");
  RequireRefused(On(st, {"serve", "--http", "::1:8080"}), "brackets");
  RequireRefused(On(st, {"serve", "--http", p}), "taken");
  RequireRefused(On(st, {"serve", "--http", p, "--silent-days", "0"}), "silent-days");
  CHECK(hub.Running());
}

TEST_CASE("http: slow page clients hold up neither a station's sync nor SIGTERM", "[http]") {
  County c(1);
  const Station& s = c.st[0];
  int port = proc::FreePort();
  int http = proc::FreePort();
  Daemon hub(c.hub, {"--listen", Endpoint(port), "--http", "127.0.0.1:" + std::to_string(http)}, c.tmp / "hub.log");
  INFO(hub.Describe());
  REQUIRE(hub.WaitForLog(PagePrefix(http)));
  REQUIRE(hub.WaitForLog("listening on"));
  REQUIRE(ApiStatus(http));

  // More half-sent requests than the page has worker threads.
  std::vector<std::unique_ptr<HalfRequest>> slow;
  for (int i = 0; i < 8; ++i) slow.push_back(std::make_unique<HalfRequest>(http));
  std::string app = PutApplication(s.dir, "张桂兰");
  auto start = Clock::now();
  Ok(SyncOnce(s.dir, Endpoint(port)));
  WARN("a sync with 8 half-sent page requests open took " << MsSince(start) << " ms");
  CHECK(Has(c.hub, "applications", app));
  CHECK(MsSince(start) < 10000);

  // The page still answers once the slow clients time out.
  CHECK(Eventually([&] { return ApiStatus(http).has_value(); }, 20s));

  // SIGTERM with fresh half-sent requests open: the daemon ends promptly, exit 0.
  slow.clear();
  for (int i = 0; i < 8; ++i) slow.push_back(std::make_unique<HalfRequest>(http));
  start = Clock::now();
  auto exit = hub.Stop(SIGTERM, 15s);
  int64_t ms = MsSince(start);
  REQUIRE(exit);
  CHECK(exit->exit_code == 0);
  WARN("serve --http stopped " << ms << " ms after SIGTERM with 8 half-sent requests open");
  CHECK(ms < 6000);
  CHECK_THAT(hub.Log(), Contains("serve: stopped"));
}

TEST_CASE("http: a Range header of thousands of ranges gets the whole body once, in bounded memory", "[http]") {
  County c(1);
  int http = proc::FreePort();
  Daemon hub(c.hub, {"--http", std::to_string(http)}, c.tmp / "hub.log");
  INFO(hub.Describe());
  REQUIRE(hub.WaitForLog(PagePrefix(http)));
  auto plain = Client(http)->Get("/app.js");
  REQUIRE(plain);
  REQUIRE(plain->status == 200);
  const int64_t before = PeakRssKib(hub.pid());
  REQUIRE(before > 0);

  // 2,600 ranges each naming the whole file: httplib 0.11 answered with a
  // multipart body of 2,600 copies of it, built in memory.
  std::string ranges = "bytes=0-";
  for (int i = 1; i < 2600; ++i) ranges += ",0-";
  auto ranged = [&](const std::string& path) {
    for (int i = 0; i < 8; ++i) {
      auto res = Client(http)->Get(path, {{"Range", ranges}});
      INFO(path << " request " << i);
      REQUIRE(res);
      CHECK(res->status == 200);
      CHECK(res->get_header_value("Content-Range").empty());
      CHECK(res->body.size() < 2 * 1024 * 1024);
      if (path == "/app.js") CHECK(res->body == plain->body);
    }
  };
  ranged("/app.js");
  const int64_t after_js = PeakRssKib(hub.pid());
  WARN("the page's peak RSS: " << before << " KiB before, " << after_js << " KiB after 8 requests of 2,600 ranges");
  CHECK(after_js - before < 8 * 1024);
  // The status document is built per request (tens of MiB at its peak), never once per range.
  ranged("/api/status");
  const int64_t after_api = PeakRssKib(hub.pid());
  WARN("... and " << after_api << " KiB after 8 more on /api/status");
  CHECK(after_api - before < 32 * 1024);

  // One range, too: nothing here needs ranges, so none are served.
  auto one = Client(http)->Get("/app.js", {{"Range", "bytes=0-9"}});
  REQUIRE(one);
  CHECK(one->status == 200);
  CHECK(one->body == plain->body);
  CHECK(hub.Running());
}

TEST_CASE("http: oversized request heads are refused and trickling clients are cut off", "[http]") {
  County c(1);
  int http = proc::FreePort();
  Daemon hub(c.hub, {"--http", std::to_string(http)}, c.tmp / "hub.log");
  INFO(hub.Describe());
  REQUIRE(hub.WaitForLog(PagePrefix(http)));
  const std::string start = "GET /app.js HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(http) + "\r\n";

  std::string many = start;
  for (int i = 0; i < 200; ++i) many += "X-H" + std::to_string(i) + ": 1\r\n";
  CHECK(RawStatusLine(http, many + "\r\n") == "HTTP/1.1 431 Request Header Fields Too Large");
  std::string big = start;
  for (int i = 0; i < 4; ++i) big += "X-Big" + std::to_string(i) + ": " + std::string(6000, 'a') + "\r\n";
  CHECK(RawStatusLine(http, big + "\r\n") == "HTTP/1.1 431 Request Header Fields Too Large");
  CHECK(RawStatusLine(http, start + "\r\n") == "HTTP/1.1 200 OK");
  // A head "ended" by bare line feeds would let httplib, which skips such
  // lines, read on from the socket past every limit: refused whole.
  CHECK(RawStatusLine(http, start + "X-A: 1\n\n" + "Range: bytes=0-0\r\n\r\n") == "HTTP/1.1 400 Bad Request");
  // A body the page never takes is not read: the request is answered, and
  // the worker never waits on the client's socket for it.
  std::string post = "POST /api/status HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(http) +
                     "\r\nContent-Length: 4000\r\n\r\n";
  CHECK_FALSE(RawStatusLine(http, post).empty());

  // A client that sends one more header byte every 200 ms, well inside any
  // per-read timeout, is cut off once its head has taken a few seconds.
  int fd = Connect(http);
  REQUIRE(::send(fd, start.data(), start.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(start.size()));
  REQUIRE(::send(fd, "X-Slow: ", 8, MSG_NOSIGNAL) == 8);
  auto began = Clock::now();
  bool closed = false;
  while (!closed && Clock::now() - began < 15s) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 200) > 0) {
      char buf[512];
      closed = ::recv(fd, buf, sizeof buf, 0) <= 0;  // the 408 line, then the end
    } else {
      closed = ::send(fd, "a", 1, MSG_NOSIGNAL) != 1;
    }
  }
  ::close(fd);
  int64_t ms = MsSince(began);
  WARN("a trickling client was cut off after " << ms << " ms");
  CHECK(closed);
  CHECK(ms < 8000);
}

TEST_CASE("http: hundreds of idle and half-sent connections do not keep the page from answering", "[http]") {
  County c(1);
  int http = proc::FreePort();
  Daemon hub(c.hub, {"--http", std::to_string(http)}, c.tmp / "hub.log");
  INFO(hub.Describe());
  REQUIRE(hub.WaitForLog(PagePrefix(http)));
  REQUIRE(ApiStatus(http));

  std::vector<int> idle;
  for (int i = 0; i < 200; ++i) {
    int fd = Connect(http);
    REQUIRE(::send(fd, "G", 1, MSG_NOSIGNAL) == 1);
    idle.push_back(fd);
  }
  std::vector<std::unique_ptr<HalfRequest>> half;
  for (int i = 0; i < 16; ++i) half.push_back(std::make_unique<HalfRequest>(http));

  // Each fresh request is answered at once, while every idle one is still open.
  for (int i = 0; i < 3; ++i) {
    auto cli = Client(http);
    cli->set_read_timeout(5, 0);
    auto started = Clock::now();
    auto res = cli->Get("/api/status");
    int64_t ms = MsSince(started);
    INFO("request " << i << " took " << ms << " ms");
    REQUIRE(res);
    CHECK(res->status == 200);
    CHECK(ms < 2000);
  }
  for (int fd : idle) ::close(fd);
  CHECK(hub.Running());
}

TEST_CASE("http: station alerts for silence and clock offset, measured at a given time", "[http]") {
  County c(2);
  const Station& a = c.st[0];
  const Station& b = c.st[1];
  const int64_t now = aidsync::Env::Default().clock->NowMillis();
  const int64_t day = 24 * 60 * 60 * 1000;
  auto replica = aidsync::Replica::Open(c.hub, aidsync::Env::Default());
  REQUIRE(replica.ok());
  // The hub last heard from B now, with B's clock ten minutes fast; A never called.
  aidsync::PeerRecord peer;
  peer.id = b.key;
  peer.name = b.name;
  peer.code = b.code;
  peer.last_seen_ms = now;
  peer.last_sync_ms = now;
  peer.clock_offset_ms = 10 * 60 * 1000;
  REQUIRE((*replica)->SavePeer(peer).ok());

  auto at = [&](int64_t when, int silent_days) {
    auto doc = aidsync::ApiStatusJson(**replica, {.silent_days = silent_days, .now_ms = when, .with_values = true});
    REQUIRE(doc.ok());
    return *doc;
  };
  json soon = at(now + day, 3);
  INFO(soon.dump(2));
  REQUIRE(soon.at("stations").size() == 2);
  CHECK(StationByCode(soon, a.code)->at("alerts").empty());
  CHECK(StationByCode(soon, a.code)->at("last_sync").is_null());
  const json& b_alerts = StationByCode(soon, b.code)->at("alerts");
  CHECK(AnyContains(b_alerts, "clock: "));
  CHECK_FALSE(AnyContains(b_alerts, "silent"));
  CHECK_FALSE(AnyContains(soon.at("alerts"), "silent"));

  json later = at(now + 4 * day, 3);
  INFO(later.dump(2));
  CHECK(AnyContains(StationByCode(later, a.code)->at("alerts"), "silent: " + a.name + " (" + a.code + ") never seen"));
  CHECK(AnyContains(StationByCode(later, b.code)->at("alerts"), "silent: " + b.name + " (" + b.code + ") last seen"));
  CHECK(AnyContains(later.at("alerts"), "silent: " + a.name));
  CHECK(AnyContains(later.at("alerts"), "silent: " + b.name));
  json patient = at(now + 4 * day, 7);
  CHECK_FALSE(AnyContains(patient.at("alerts"), "silent"));

  // Conflict values are personal data: hidden unless asked for (local clients).
  aidsync::ConflictVersion v{aidsync::Value::Text("判决胜诉"), a.name, a.key, now, "00"};
  aidsync::Conflict conflict{"cases", "c1", "outcome", false, v, {v}};
  json hidden = aidsync::ConflictsToJson({conflict}, false);
  CHECK(hidden.at(0).at("winner").at("value").is_null());
  CHECK(hidden.at(0).at("winner").at("value_hidden") == true);
  CHECK(hidden.at(0).at("losers").at(0).at("value").is_null());
  CHECK(hidden.dump().find("判决胜诉") == std::string::npos);
  CHECK(aidsync::ConflictsToJson({conflict}).at(0).at("winner").at("value") == "判决胜诉");
}

}  // namespace
