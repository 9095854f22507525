// The status page of `serve --http` in a real browser (issue 5): headless
// Chromium loads the page of a hub with two stations that synced, an alert and
// a conflict (tests/net_fixture.h: PageCounty), runs app.js, which fetches
// /api/status and fills the page in, and the test reads the DOM it rendered.
// Then a screenshot, kept as build/tests/artifacts/status-page.png.
//
// Chromium is Debian's `chromium` package, which scripts/test.sh installs:
// without it this test fails (it does not skip). Each browser runs in its own
// process group, killed when the run ends (or at its deadline), helpers and all.
// Every wait is a poll against a deadline.
#include <signal.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

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

const std::string kChromium = "/usr/bin/chromium";  // Debian's `chromium` package
constexpr auto kBrowserDeadline = 60s;               // one browser run, start to exit

struct BrowserRun {
  proc::Result result;
  bool in_time = false;  // false: killed at the deadline
  int64_t ms = 0;        // start to exit
  bool gone = false;     // no process of this browser left afterwards
};

// The live processes (zombies aside) whose command line mentions `text`.
std::vector<pid_t> LiveProcessesMentioning(const std::string& text) {
  std::vector<pid_t> found;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream cmdline(entry.path() / "cmdline", std::ios::binary);
    std::string args((std::istreambuf_iterator<char>(cmdline)), std::istreambuf_iterator<char>());
    if (args.find(text) == std::string::npos) continue;
    std::ifstream stat_file(entry.path() / "stat");
    std::string stat((std::istreambuf_iterator<char>(stat_file)), std::istreambuf_iterator<char>());
    size_t paren = stat.rfind(')');  // "pid (comm) S ...": the state follows the last ')'
    if (paren == std::string::npos || paren + 2 >= stat.size() || stat[paren + 2] == 'Z') continue;
    found.push_back(static_cast<pid_t>(std::stol(name)));
  }
  return found;
}

// Runs headless Chromium on `url` with `args`, a fresh profile and a fresh
// HOME (its crash handler keeps its database there, not in the user's
// ~/.config), in a new process group. When the browser ends, or at the
// deadline, the group is killed (SIGKILL), and so is any process left that
// names this run's directory: the crash handlers, which start sessions of
// their own. Returns once none is left, or after 10 s.
BrowserRun RunChromium(const std::vector<std::string>& args, const std::string& url) {
  proc::TempDir dir;
  const std::string home = dir / "home";
  const std::string profile = dir / "profile";
  std::filesystem::create_directories(home);
  std::vector<std::string> argv{"/usr/bin/env", "HOME=" + home, "XDG_CONFIG_HOME=" + home + "/.config",
                                "XDG_CACHE_HOME=" + home + "/.cache", kChromium, "--headless", "--no-sandbox",
                                "--disable-gpu", "--user-data-dir=" + profile};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.push_back(url);
  BrowserRun run;
  const auto start = Clock::now();
  proc::Process browser = proc::Process::Start(argv, {.new_process_group = true});
  run.in_time = browser.Ended(kBrowserDeadline);
  run.ms = MsSince(start);
  browser.SignalGroup(SIGKILL);  // its helpers, or all of it at the deadline
  run.result = browser.Wait();
  run.gone = Eventually(
      [&] {
        std::vector<pid_t> left = LiveProcessesMentioning(dir.path());
        for (pid_t pid : left) proc::Signal(pid, SIGKILL);
        return left.empty();
      },
      10s, 10ms);
  return run;
}

// `text` as the DOM serializer writes a text node.
std::string HtmlText(const std::string& text) {
  std::string out;
  for (char ch : text) {
    switch (ch) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      default: out += ch;
    }
  }
  return out;
}

// The part of `dom` from the element whose id is `id` to the first `end` after it ("" if none).
std::string Element(const std::string& dom, const std::string& id, const std::string& end) {
  size_t from = dom.find("id=\"" + id + "\"");
  if (from == std::string::npos) return "";
  size_t to = dom.find(end, from);
  return to == std::string::npos ? "" : dom.substr(from, to - from);
}

// What the page must show once app.js has rendered /api/status: empty when it all shows,
// else what is missing.
std::vector<std::string> Missing(const std::string& dom, const PageCounty& c, const std::string& alert) {
  std::vector<std::string> missing;
  auto need = [&](const std::string& part, const std::string& where, const std::string& what) {
    if (part.find(what) == std::string::npos) missing.push_back(where + ": " + what);
  };
  need(dom, "updated", "更新于 ");
  need(dom, "node", "县法律援助中心 (0500)");
  const std::string stations = Element(dom, "stations", "</table>");
  for (const Station& s : c.st) {
    need(stations, "stations", "<td>" + HtmlText(s.name) + "</td>");
    need(stations, "stations", ">" + s.code + "</td>");
  }
  // B's row (from its name to the row's end) lists the alert.
  const std::string b_cell = "<td>" + HtmlText(c.st[1].name) + "</td>";
  const size_t b_at = stations.find(b_cell);
  const std::string b_row = b_at == std::string::npos ? "" : stations.substr(b_at, stations.find("</tr>", b_at) - b_at);
  need(b_row, "stations, B's row", "<li>" + HtmlText(alert) + "</li>");
  need(Element(dom, "alerts", "</ul>"), "alerts", "<li>" + HtmlText(alert) + "</li>");
  const std::string conflicts = Element(dom, "conflicts", "</table>");
  for (const std::string& what : {std::string(">案件 cases</td>"), ">" + c.case_a + "</td>", std::string(">outcome</td>"),
                                  std::string(">调解结案</span>"), std::string(">判决胜诉</span>"),
                                  std::string(">县法律援助中心 · "), ">" + HtmlText(c.st[0].name) + " · "})
    need(conflicts, "conflicts", what);
  return missing;
}

std::string Join(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) out += "  " + l + "\n";
  return out;
}

// ---------------------------------------------------------------------------

TEST_CASE("browser: headless Chromium renders the hub's page with both stations, the alert and the conflict",
          "[browser][http]") {
  if (!proc::Exists(kChromium))
    FAIL("headless Chromium is not installed (" << kChromium
                                                 << "): scripts/test.sh installs it, or `apt-get install chromium`");
  const auto test_start = Clock::now();
  PageCounty c;
  INFO(c.daemon->Describe());
  const int64_t setup_ms = MsSince(test_start);
  std::string alert;  // the hub's alert for B's return visit, as `status --json` words it
  const json status = ParseJson(Ok(c.hub, {"status", "--json"}));
  for (const auto& a : status.at("alerts"))
    if (a.get<std::string>().find(c.visit) != std::string::npos) alert = a.get<std::string>();
  REQUIRE_FALSE(alert.empty());

  // The rendered DOM, once app.js has fetched /api/status (virtual time lets
  // the page's timers and its fetch finish before the dump).
  BrowserRun dump;
  std::vector<std::string> missing;
  int runs = 0;
  const auto dom_start = Clock::now();
  bool shown = Eventually(
      [&] {
        ++runs;
        dump = RunChromium({"--virtual-time-budget=10000", "--dump-dom"}, c.PageUrl());
        INFO(dump.result.Describe());
        REQUIRE(dump.in_time);
        REQUIRE(dump.gone);
        missing = Missing(dump.result.out, c, alert);
        return missing.empty();
      },
      kBrowserDeadline);
  INFO(dump.result.Describe());
  INFO("missing from the page:\n" << Join(missing));
  REQUIRE(shown);
  CHECK(dump.result.exit_code == 0);
  CHECK(dump.result.out.find("updated failed") == std::string::npos);
  WARN("chromium --dump-dom: " << runs << " run(s), " << MsSince(dom_start) << " ms (the last " << dump.ms
                               << " ms); county and hub set up in " << setup_ms << " ms");

  // A screenshot, kept for people to look at.
  const std::filesystem::path dir = std::filesystem::path(AIDSYNC_ARTIFACT_DIR);
  std::filesystem::create_directories(dir);
  const std::string png = (dir / "status-page.png").string();
  std::filesystem::remove(png);
  BrowserRun shot = RunChromium({"--virtual-time-budget=10000", "--hide-scrollbars", "--window-size=1280,1600",
                                 "--screenshot=" + png},
                                c.PageUrl());
  INFO(shot.result.Describe());
  REQUIRE(shot.in_time);
  CHECK(shot.gone);
  CHECK(shot.result.exit_code == 0);
  REQUIRE(proc::Exists(png));
  const std::string bytes = proc::ReadFile(png);
  REQUIRE(bytes.size() > 24);
  CHECK(bytes.substr(0, 8) == std::string("\x89PNG\r\n\x1a\n", 8));
  // IHDR: width and height, big-endian, at bytes 16 and 20.
  auto be32 = [&](size_t at) {
    uint32_t v = 0;
    for (size_t i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(bytes[at + i]);
    return v;
  };
  CHECK(bytes.substr(12, 4) == "IHDR");
  CHECK(be32(16) == 1280);
  CHECK(be32(20) == 1600);
  WARN("screenshot of the status page: " << png << " (" << bytes.size() << " bytes, chromium " << shot.ms
                                         << " ms); browser test " << MsSince(test_start) << " ms in all");
  CHECK(c.daemon->Running());
}

}  // namespace
