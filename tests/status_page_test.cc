// The drawings of the status page (issue 5, item 1; docs/ARCHITECTURE.md
// section 12): what /api/status gives them — each station's `history` (its
// sync sessions of the last 7 days) and the year's `figures` (records per
// month by category or channel, progress against each target) — read from a
// real hub process over HTTP after real syncs, the history's window, cap and
// failed sessions computed at a given time, and /app.js carrying the drawing
// code. Every wait is a poll against a deadline.
#include <httplib.h>

#include <catch2/catch.hpp>

#include <ctime>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "node/status_json.h"
#include "sync/peers.h"
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

constexpr int64_t kDay = 24 * 60 * 60 * 1000;

std::optional<json> ApiStatus(int port) {
  httplib::Client cli("127.0.0.1", port);
  cli.set_connection_timeout(5, 0);
  cli.set_read_timeout(10, 0);
  auto res = cli.Get("/api/status");
  if (!res || res->status != 200) return std::nullopt;
  json doc = json::parse(res->body, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return std::nullopt;
  return doc;
}

const json* StationByCode(const json& doc, const std::string& code) {
  for (const auto& s : doc.at("stations"))
    if (s.at("code") == code) return &s;
  return nullptr;
}

// The local calendar year now, as the node takes it for `figures`.
int ThisYear() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  return tm.tm_year + 1900;
}

// "sent N, received M, ..." of `aidsync sync`: {N, M}.
std::pair<int64_t, int64_t> SentReceived(const std::string& out) {
  std::smatch m;
  REQUIRE(std::regex_search(out, m, std::regex(R"(sent (\d+), received (\d+))")));
  return {std::stoll(m[1]), std::stoll(m[2])};
}

// Twelve months of a series, every key 0 but those given: {month, key, count}.
json Months(const std::vector<std::string>& keys, const std::vector<std::tuple<int, std::string, int>>& counts) {
  json months = json::array();
  for (int m = 1; m <= 12; ++m) {
    json month = json::object();
    for (const auto& k : keys) month[k] = 0;
    months.push_back(month);
  }
  for (const auto& [m, key, n] : counts) months[m - 1][key] = n;
  return months;
}

const std::vector<std::string> kCategories{"criminal", "civil", "administrative", "other"};
const std::vector<std::string> kChannels{"walk_in", "hotline_12348", "phone", "online", "other"};

std::string Application(const std::string& data, const std::string& received_at, const std::string& category) {
  std::vector<std::string> args{"put", "applications", "new", "applicant_name=张桂兰", "received_at=" + received_at};
  if (!category.empty()) args.push_back("category=" + category);
  return Ok(data, args);
}

// ---------------------------------------------------------------------------

TEST_CASE("status_page: the hub's /api/status has each station's sync history and the year's figures",
          "[status_page][http]") {
  County c(2);
  const Station& a = c.st[0];
  const Station& b = c.st[1];
  const std::string y = std::to_string(ThisYear());
  const std::string last_year = std::to_string(ThisYear() - 1);
  const int64_t t0 = aidsync::Env::Default().clock->NowMillis();

  // Applications at A: dated this year (one with a one-digit month, one
  // without a category, one whose month is not a month) and one last year.
  Application(a.dir, y + "-01-15", "criminal");
  Application(a.dir, y + "-01-20T09:30:00", "criminal");
  Application(a.dir, y + "-01-31", "civil");
  Application(a.dir, y + "-02-10", "");
  Application(a.dir, y + "-03-05", "administrative");
  Application(a.dir, y + "-3-9", "civil");
  Application(a.dir, y + "-13-01", "civil");
  Application(a.dir, last_year + "-01-15", "criminal");

  int port = proc::FreePort();
  int http = proc::FreePort();
  Daemon hub(c.hub, {"--listen", Endpoint(port), "--http", "127.0.0.1:" + std::to_string(http)}, c.tmp / "hub.log");
  INFO(hub.Describe());
  REQUIRE(hub.WaitForLog("http: status page at"));
  REQUIRE(hub.WaitForLog("listening on"));
  // The hub's targets for the year: A's cases, the county's consultations, a 0 target.
  for (const auto& [code, metric, value] : std::vector<std::tuple<std::string, std::string, int>>{
           {a.code, "cases", 6}, {"0500", "consultations", 10}, {a.code, "consultations", 0}})
    Ok(c.hub, {"put", "targets", "new", "year=" + y, "station_code=" + code, "metric=" + metric,
               "value=" + std::to_string(value)});

  // A syncs twice, with something new each time; B once.
  auto first = SentReceived(Ok(SyncOnce(a.dir, Endpoint(port))));
  for (const auto& [date, category] : std::vector<std::pair<std::string, std::string>>{
           {y + "-02-03", "criminal"}, {y + "-02-04", "civil"}, {y + "-11-30", "administrative"}})
    Ok(a.dir, {"put", "cases", "new", "category=" + category, "assigned_at=" + date, "status=assigned"});
  for (const auto& [date, channel] : std::vector<std::pair<std::string, std::string>>{
           {y + "-01-05", "walk_in"}, {y + "-01-06", "hotline_12348"}, {y + "-01-07", "hotline_12348"},
           {y + "-06-15", "phone"}, {y + "-12-31", "online"}, {last_year + "-12-31", "online"}})
    Ok(a.dir, {"put", "consultations", "new", "channel=" + channel, "consulted_at=" + date, "topic=劳动争议"});
  auto second = SentReceived(Ok(SyncOnce(a.dir, Endpoint(port))));
  Ok(SyncOnce(b.dir, Endpoint(port)));
  REQUIRE(first.first > 0);
  REQUIRE(second.first > 0);

  // The hub records a session when it ends, which may be just after the
  // client has its answer: poll.
  json doc;
  bool shown = Eventually([&] {
    auto d = ApiStatus(http);
    if (!d) return false;
    doc = *d;
    const json* sa = StationByCode(doc, a.code);
    const json* sb = StationByCode(doc, b.code);
    return sa && sb && sa->at("history").size() >= 2 && !sb->at("history").empty();
  });
  INFO(doc.dump(2));
  REQUIRE(shown);
  const int64_t t1 = aidsync::Env::Default().clock->NowMillis();

  CHECK(doc.at("history_days") == 7);
  CHECK(doc.at("history_from").is_string());
  const json& sa = *StationByCode(doc, a.code);
  CHECK(sa.at("history_truncated") == false);
  std::vector<json> ok;
  for (const auto& h : sa.at("history")) {
    CHECK(h.at("as_server") == true);
    CHECK(h.at("start_ms").get<int64_t>() >= t0);
    CHECK(h.at("start_ms").get<int64_t>() <= h.at("end_ms").get<int64_t>());
    CHECK(h.at("end_ms").get<int64_t>() <= t1);
    CHECK(h.at("start") == aidsync::IsoTime(h.at("start_ms")));
    CHECK(h.at("end") == aidsync::IsoTime(h.at("end_ms")));
    CHECK(h.at("bytes_received").is_number_integer());
    CHECK(h.at("bytes_sent").is_number_integer());
    if (h.at("ok") == true) {
      CHECK(h.at("error").is_null());
      ok.push_back(h);
    }
  }
  // The hub's side of A's two syncs, in order: it received what A sent and
  // sent what A received.
  REQUIRE(ok.size() >= 2);
  const json& s1 = ok[ok.size() - 2];
  const json& s2 = ok.back();
  CHECK(s1.at("received") == first.first);
  CHECK(s1.at("sent") == first.second);
  CHECK(s2.at("received") == second.first);
  CHECK(s2.at("sent") == second.second);
  CHECK(s1.at("bytes_received").get<int64_t>() > 0);
  CHECK(s1.at("end_ms").get<int64_t>() <= s2.at("start_ms").get<int64_t>());

  // The figures of this year, month by month, as put at A.
  const json& f = doc.at("figures");
  CHECK(f.at("year") == ThisYear());
  const json& apps = f.at("applications");
  CHECK(apps.at("by") == "category");
  CHECK(apps.at("keys") == json(kCategories));
  CHECK(apps.at("months") == Months(kCategories, {{1, "criminal", 2}, {1, "civil", 1}, {2, "other", 1},
                                                  {3, "administrative", 1}, {3, "civil", 1}}));
  CHECK(apps.at("no_month") == 1);
  CHECK(apps.at("total") == 7);
  const json& cases = f.at("cases");
  CHECK(cases.at("by") == "category");
  CHECK(cases.at("months") == Months(kCategories, {{2, "criminal", 1}, {2, "civil", 1}, {11, "administrative", 1}}));
  CHECK(cases.at("no_month") == 0);
  CHECK(cases.at("total") == 3);
  const json& consultations = f.at("consultations");
  CHECK(consultations.at("by") == "channel");
  CHECK(consultations.at("keys") == json(kChannels));
  CHECK(consultations.at("months") == Months(kChannels, {{1, "walk_in", 1}, {1, "hotline_12348", 2},
                                                         {6, "phone", 1}, {12, "online", 1}}));
  CHECK(consultations.at("total") == 5);

  // The totals and targets are `report`'s for the year on the hub.
  json report = ParseJson(Ok(c.hub, {"report", "--json", "--year", y}));
  CHECK(apps.at("total") == report.at("applications").at("received"));
  CHECK(cases.at("total") == report.at("cases").at("total"));
  CHECK(consultations.at("total") == report.at("consultations").at("total"));
  const json& targets = f.at("targets");
  REQUIRE(targets.size() == report.at("targets").size());
  REQUIRE(targets.size() == 3);
  for (size_t i = 0; i < targets.size(); ++i) {
    json t = targets[i];
    INFO("target " << t.dump());
    CHECK(t.at("station_name") == (t.at("station_code") == a.code ? json(a.name) : json("县法律援助中心")));
    t.erase("station_name");
    CHECK(t == report.at("targets")[i]);
  }
  auto target = [&](const std::string& code, const std::string& metric) {
    for (const auto& t : targets)
      if (t.at("station_code") == code && t.at("metric") == metric) return t;
    FAIL("no target " << code << " " << metric);
    return json();
  };
  CHECK(target(a.code, "cases").at("actual") == 3);
  CHECK(target(a.code, "cases").at("progress") == 0.5);
  CHECK(target("0500", "consultations").at("actual") == 5);
  CHECK(target("0500", "consultations").at("progress") == 0.5);
  CHECK(target(a.code, "consultations").at("progress").is_null());
  CHECK(hub.Running());
}

TEST_CASE("status_page: a station's history is its last 7 days, the newest 500 sessions, failures marked",
          "[status_page]") {
  County c(2);
  c.SeedRoster();
  const Station& a = c.st[0];
  const Station& b = c.st[1];
  c.SeedCase(a);  // an application and a case of 2015-04 at A
  const int64_t now = aidsync::Env::Default().clock->NowMillis();
  {
    auto hub = aidsync::Replica::Open(c.hub, aidsync::Env::Default());
    REQUIRE(hub.ok());
    auto session = [&](const std::string& peer, int64_t start, int64_t sent, int64_t received,
                       const std::string& error) {
      REQUIRE((*hub)->RecordSession({peer, start, start + 1500, true, sent, received, sent * 700, received * 900,
                                     error}).ok());
    };
    // A: one 8 days ago (outside the window), 520 in the last days, the newest failed.
    session(a.key, now - 8 * kDay, 1, 1, "");
    for (int i = 0; i < 520; ++i) session(a.key, now - 3 * kDay + i * 60000, i % 3, i % 5, "");
    session(a.key, now - 1000 * 60, 0, 0, "timed out waiting for the peer");
    // B: one 8 days ago, one 6 days ago.
    session(b.key, now - 8 * kDay, 4, 0, "");
    session(b.key, now - 6 * kDay, 2, 3, "");
  }
  auto hub = aidsync::Replica::Open(c.hub, aidsync::Env::Default(), {.quick_check = false, .read_only = true});
  REQUIRE(hub.ok());
  auto doc = aidsync::ApiStatusJson(**hub, {.silent_days = 3, .now_ms = now, .with_values = true});
  REQUIRE(doc.ok());
  INFO(doc->at("stations").dump(1).substr(0, 4000));

  const json& ha = StationByCode(*doc, a.code)->at("history");
  CHECK(StationByCode(*doc, a.code)->at("history_truncated") == true);
  REQUIRE(ha.size() == 500);
  CHECK(ha.back().at("ok") == false);
  CHECK(ha.back().at("error") == "timed out waiting for the peer");
  CHECK(ha.back().at("start_ms") == now - 1000 * 60);
  // Oldest first, and the newest 500 of the 521 in the window.
  CHECK(ha.front().at("start_ms") == now - 3 * kDay + 21 * 60000);
  for (size_t i = 1; i < ha.size(); ++i) CHECK(ha[i - 1].at("start_ms") < ha[i].at("start_ms"));
  const json& h = ha[10];  // session i = 31
  CHECK(h.at("sent") == 31 % 3);
  CHECK(h.at("received") == 31 % 5);
  CHECK(h.at("bytes_sent") == (31 % 3) * 700);
  CHECK(h.at("bytes_received") == (31 % 5) * 900);
  CHECK(h.at("end_ms").get<int64_t>() - h.at("start_ms").get<int64_t>() == 1500);
  CHECK(h.at("ok") == true);
  CHECK(h.at("error").is_null());

  const json& hb = StationByCode(*doc, b.code)->at("history");
  REQUIRE(hb.size() == 1);
  CHECK(hb[0].at("start_ms") == now - 6 * kDay);
  CHECK(hb[0].at("sent") == 2);
  CHECK(hb[0].at("received") == 3);
  CHECK(StationByCode(*doc, b.code)->at("history_truncated") == false);
  CHECK(doc->at("history_from") == aidsync::IsoTime(now - 7 * kDay));

  // The figures' year is the local year of the given time: at A, in mid-2015,
  // its seeded application and case (April 2015).
  auto at_a = aidsync::Replica::Open(a.dir, aidsync::Env::Default(), {.quick_check = false, .read_only = true});
  REQUIRE(at_a.ok());
  std::tm mid{};
  mid.tm_year = 2015 - 1900;
  mid.tm_mon = 6;
  mid.tm_mday = 1;
  mid.tm_hour = 12;
  const int64_t in_2015 = static_cast<int64_t>(std::mktime(&mid)) * 1000;
  auto old = aidsync::ApiStatusJson(**at_a, {.silent_days = 3, .now_ms = in_2015, .with_values = true});
  REQUIRE(old.ok());
  const json& f = old->at("figures");
  CHECK(f.at("year") == 2015);
  CHECK(f.at("applications").at("months") == Months(kCategories, {{4, "civil", 1}}));
  CHECK(f.at("cases").at("months") == Months(kCategories, {{4, "civil", 1}}));
  CHECK(f.at("consultations").at("total") == 0);
  CHECK(f.at("targets").empty());
}

TEST_CASE("status_page: the page has places for the drawings and /app.js draws them with SVG DOM calls",
          "[status_page][http]") {
  County c(1);
  int http = proc::FreePort();
  Daemon hub(c.hub, {"--http", std::to_string(http)}, c.tmp / "hub.log");
  INFO(hub.Describe());
  REQUIRE(hub.WaitForLog("http: status page at"));
  httplib::Client cli("127.0.0.1", http);
  cli.set_connection_timeout(5, 0);
  cli.set_read_timeout(10, 0);
  auto page = cli.Get("/");
  auto js = cli.Get("/app.js");
  auto css = cli.Get("/style.css");
  REQUIRE(page);
  REQUIRE(js);
  REQUIRE(css);
  REQUIRE(js->status == 200);
  const std::string& html = page->body;
  const std::string& app = js->body;

  // Where each drawing goes, found by the script.
  for (const char* id : {"history", "charts", "targets", "figures-title"}) {
    INFO("id " << id);
    CHECK_THAT(html, Contains(std::string("id=\"") + id + "\""));
    CHECK_THAT(app, Contains(std::string("'") + id + "'"));
  }
  CHECK(html.find("<svg") == std::string::npos);  // drawn by the script, not in the shell

  // The drawing code paths: SVG elements made with createElementNS, hover
  // titles, and the three drawings fed from the new fields.
  for (const char* code : {"function drawTimeline(", "function drawMonthly(", "function drawProgress(",
                           "function renderHistory(", "function renderFigures(", "function renderTargets(",
                           "renderHistory(doc, now)", "renderFigures(doc)", "renderTargets(doc, now)",
                           "document.createElementNS(SVG_NS", "svg('title'", "svg('rect'", "s.history",
                           "doc.history_from", "doc.figures", "series.months", "g.progress", "'tl-fail'"}) {
    INFO("code " << code);
    CHECK_THAT(app, Contains(code));
  }
  // Data only ever as text: no HTML parsing, no code from strings.
  for (const char* bad : {"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "Function(",
                          "setAttribute('style'", "setAttribute('on", "import("}) {
    INFO("bad " << bad);
    CHECK(app.find(bad) == std::string::npos);
  }
  // The one URL-like text is the SVG namespace name (never fetched).
  std::string rest = std::regex_replace(app, std::regex("'http://www\\.w3\\.org/2000/svg'"), "");
  CHECK(rest.size() < app.size());
  CHECK(rest.find("http") == std::string::npos);
  CHECK(rest.find("//www") == std::string::npos);

  // Both languages label the drawings.
  for (const char* label : {"近 7 天同步记录", "Sync history, last 7 days", "目标进度", "Progress against targets",
                            "刑事", "Criminal", "12348 热线", "12348 hotline", "同步失败"}) {
    INFO("label " << label);
    CHECK_THAT(app, Contains(label));
  }
  // Colours come from the stylesheet, by class.
  for (const char* rule : {".tl-ok", ".tl-idle", ".tl-fail", ".k-criminal", ".k-civil", ".k-administrative",
                           ".k-walk_in", ".k-hotline_12348", ".k-phone", ".k-online", ".k-other", ".pg-fill",
                           "svg.timeline", "svg.bars", "svg.progress"}) {
    INFO("rule " << rule);
    CHECK_THAT(css->body, Contains(rule));
  }
  CHECK(hub.Running());
}

}  // namespace
