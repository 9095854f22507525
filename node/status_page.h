// The read-only HTTP status page of `aidsync serve --http` (DESIGN 6, 8).
//
// cpp-httplib serves it on a thread of its own, with a small pool of worker
// threads that only ever see a request whose head has fully arrived (within
// a few seconds and 16 KiB; status_page.cc); a `Range` header is ignored
// (every answer is the whole body); every request opens its own read-only Replica, so a page request
// never waits for, or holds up, the sync threads (SQLite WAL readers do not
// block writers). Paths: `/` (the page), `/app.js`, `/style.css` (embedded,
// node/status_page_assets.cc) and `/api/status` (ApiStatusJson). Only GET and
// HEAD; the Host header must name this endpoint (DNS-rebinding defence).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "base/env.h"
#include "base/status.h"

namespace aidsync {

// Where the page listens: a numeric address, bound exactly.
struct HttpEndpoint {
  std::string ip;    // "127.0.0.1", "192.168.1.5", "0.0.0.0", "::1", ...
  int port = 0;      // 0: any free port (the one chosen is in StatusPage::url)
  std::string text;  // as given
};

// Parses `serve --http`: "PORT" or ":PORT" (127.0.0.1), "IP:PORT",
// "[IPV6]:PORT", "localhost:PORT" (127.0.0.1). InvalidArgument otherwise; a
// host name other than localhost is refused (it would bind whatever it
// resolves to).
Result<HttpEndpoint> ParseHttpEndpoint(const std::string& text);

// The embedded files (node/status_page_assets.cc).
extern const char* const kStatusPageHtml;
extern const char* const kStatusPageJs;
extern const char* const kStatusPageCss;

struct StatusPageOptions {
  std::string data_dir;
  Env env;
  HttpEndpoint endpoint;
  int silent_days = 3;  // `serve --silent-days`
  std::function<void(const std::string&)> log;  // one line, no newline
};

class StatusPage {
 public:
  // Binds the endpoint now (fails at once if the address is not this
  // machine's or the port is taken); serves nothing until Start.
  static Result<std::unique_ptr<StatusPage>> Bind(StatusPageOptions options);
  ~StatusPage();  // Stop()
  StatusPage(const StatusPage&) = delete;
  StatusPage& operator=(const StatusPage&) = delete;

  // "http://IP:PORT/" with the port actually bound.
  std::string url() const;
  // Serves on a thread of its own until Stop.
  void Start();
  // Stops accepting and waits for requests in progress, at most a few
  // seconds (a client that keeps a request half-sent is abandoned: the
  // process is about to exit).
  void Stop();

  struct Shared;  // the server and what its handlers use (status_page.cc)

 private:
  explicit StatusPage(std::shared_ptr<Shared> shared) : shared_(std::move(shared)) {}
  std::shared_ptr<Shared> shared_;
  std::thread thread_;
};

}  // namespace aidsync
