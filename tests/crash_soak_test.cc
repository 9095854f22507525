// Crash-loop soak test (issue 6, item 1): the promise that a write reported as
// done is never lost, tested by killing real `aidsync` processes with SIGKILL.
//
// A hub (`serve --listen`) and one station, made through the CLI as in the
// other net tests. Each iteration, with choices drawn from the test seed, the
// hub may record a row of the station's scope, and the station does one piece
// of acknowledged work: a burst of `put`s (ack: exit 0 and the row id), an
// `import` of a few hundred CSV or JSON-lines rows (ack: exit 0 and the count),
// or a `sync` with the hub (ack: exit 0). During it, the station's process
// and/or the hub daemon may be killed; whatever was killed is restarted at
// once, and then both replicas are checked:
//   - PRAGMA integrity_check is ok, and `status` (which opens read-write and
//     runs quick_check) works: a replica always opens after a kill;
//   - every acknowledged write is present, with its content, on the node that
//     acknowledged it, and on the other node once a sync has succeeded after it;
//   - a killed import is all or nothing; no changeset was rejected, no fork;
//   - no stray file (a temp file, a lock) is left in either data dir.
// Every AIDSYNC_SOAK_CONVERGE_EVERY iterations (default 5) and at the end the
// killing stops, the station syncs until a session moves nothing, and hub and
// station must hold the same rows in every table and the same chain heads.
// At the very end no process started by the test is left, nor its temp dir.
//
// Where a kill lands: the operation is started, and after a random delay (a
// fraction 0..1.1 of the time such an operation recently took for its amount
// of work, drawn from the seed; half of them in 0.6..1.1, where the work
// commits) the chosen processes are killed. The station's syncs go through a
// rate-capped Relay (tests/net_fixture.h) so that a sync lasts long enough for
// kills to land inside it. The delay only picks where the kill lands; no
// result is waited for by sleeping.
//
// Size: AIDSYNC_SOAK_ITERATIONS (default 20, the CI run); 200 or more for the
// long run whose figures go into docs/RELIABILITY.md. AIDSYNC_SEED=N replays a
// run's choices (not the exact moments the kills land). The last line on stdout
// sums the run up: iterations, kills of each process and during each kind of
// operation, acknowledged writes, and writes lost (always 0, or the test fails).
#include <dirent.h>
#include <poll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <array>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "tests/cli_fixture.h"
#include "tests/net_fixture.h"
#include "tests/process.h"
#include "tests/test_support.h"

namespace {

namespace proc = aidsync::proc;
using namespace std::chrono_literals;
using namespace aidsync::clitest;
using namespace aidsync::nettest;
using aidsync::testing::SeededRandom;
using nlohmann::json;

enum Op { kPut = 0, kImport = 1, kSync = 2 };
const char* const kOpNames[] = {"put", "import", "sync"};

// A row written by one node: its id and the topic that tags its content.
struct Write {
  std::string id, topic;
};

// The acknowledged writes of each node, in order, and how much of each list a
// successful sync has carried to the other node (a prefix: the writes
// acknowledged before that sync started).
struct Ledger {
  std::vector<Write> station, hub;
  size_t station_at_hub = 0, hub_at_station = 0;
};

// What the run did, for the summary line.
struct Figures {
  int iterations = 0;
  int station_kills = 0;  // station processes killed while running
  int hub_kills = 0;      // hub daemons killed (each one restarted)
  std::array<int, 3> during{};  // kills that landed while a put, import or sync ran
  int missed = 0;         // station kills that came after the process had ended
  int64_t puts = 0, import_rows = 0, hub_puts = 0;
  int syncs_ok = 0, syncs_failed = 0, convergences = 0;
  int64_t lost = 0;

  std::string Line(uint64_t seed) const {
    std::ostringstream s;
    s << "crash soak: seed " << seed << ", " << iterations << " iterations, " << station_kills
      << " station kills, " << hub_kills << " hub kills (restarts), kills during put " << during[kPut]
      << ", import " << during[kImport] << ", sync " << during[kSync] << ", " << missed
      << " kills after the process ended; acknowledged writes " << puts + import_rows + hub_puts << " (station puts "
      << puts << ", imported rows " << import_rows << ", hub puts " << hub_puts << "); syncs " << syncs_ok
      << " ok, " << syncs_failed << " failed by a kill; " << convergences << " convergence checks; lost: " << lost;
    return s.str();
  }
};

// Which processes to kill during one station command, and when: after
// `fraction` of the time the command is expected to take, reckoned from the
// recent duration of such commands per unit of `work` (rows to write or send,
// plus a share for starting the process).
struct Kill {
  bool station = false, hub = false;
  double fraction = 0;
  double work = 1;
};

// Half the kills anywhere in the command, half in its last stretch, where a
// put or import commits and a sync applies what it received.
double KillFraction(SeededRandom& rng) {
  const bool late = rng.Chance(0.5);
  return late ? 0.6 + static_cast<double>(rng.Uniform(500)) / 1000.0
              : static_cast<double>(rng.Uniform(1100)) / 1000.0;
}

// How a station command ended, and whether a kill landed while it ran.
struct Outcome {
  proc::Result result;
  bool station_killed = false;  // the station process died of our SIGKILL
  bool hub_killed_during = false;  // the hub was killed while the command ran
  double ms = 0;
};

// Waits up to `timeout` for the child to end, without reaping it. A pidfd
// wakes the moment the child ends, so the operation durations that place the
// kills are not rounded up to a poll period; without pidfds (Linux < 5.3),
// Process::Ended's 10 ms poll.
bool EndsWithin(proc::Process& p, std::chrono::milliseconds timeout) {
  const int fd = static_cast<int>(::syscall(SYS_pidfd_open, p.pid(), 0));
  if (fd < 0) return p.Ended(timeout);
  pollfd pfd{fd, POLLIN, 0};
  int ready;
  do {
    ready = ::poll(&pfd, 1, static_cast<int>(timeout.count()));
  } while (ready < 0 && errno == EINTR);
  ::close(fd);
  return ready > 0;
}

// id -> topic of every consultation a node holds.
std::unordered_map<std::string, std::string> Topics(const std::string& data) {
  std::unordered_map<std::string, std::string> out;
  for (const auto& row : ParseJson(Query(data, "SELECT id, topic FROM consultations")))
    out[row.at("id").get<std::string>()] = row.at("topic").get<std::string>();
  return out;
}

// The writes of `ledger[0, n)` that `rows` lacks or holds with other content.
std::vector<std::string> Missing(const std::unordered_map<std::string, std::string>& rows,
                                 const std::vector<Write>& ledger, size_t n) {
  std::vector<std::string> missing;
  for (size_t i = 0; i < n; ++i) {
    auto it = rows.find(ledger[i].id);
    if (it == rows.end() || it->second != ledger[i].topic) missing.push_back(ledger[i].id);
  }
  return missing;
}

// Files in a data dir other than the keys and SQLite's database, WAL and shm.
std::vector<std::string> StrayFiles(const std::string& dir) {
  static const std::set<std::string> kExpected{".",          "..",         "node.key", "authority.key",
                                               "replica.db", "replica.db-wal", "replica.db-shm"};
  std::vector<std::string> stray;
  std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(dir.c_str()), ::closedir);
  REQUIRE(d);
  while (dirent* e = ::readdir(d.get()))
    if (!kExpected.count(e->d_name)) stray.push_back(e->d_name);
  return stray;
}

// Pids of live processes whose command line mentions `text` (the test's temp
// dir: every process the test starts names its data dir).
std::vector<int> ProcessesMentioning(const std::string& text) {
  std::vector<int> pids;
  std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir("/proc"), ::closedir);
  REQUIRE(d);
  while (dirent* e = ::readdir(d.get())) {
    int pid = std::atoi(e->d_name);
    if (pid <= 0 || pid == ::getpid()) continue;
    std::string cmdline;
    try {
      cmdline = proc::ReadFile("/proc/" + std::to_string(pid) + "/cmdline");
    } catch (const std::exception&) {
      continue;  // ended meanwhile
    }
    if (cmdline.find(text) != std::string::npos) pids.push_back(pid);
  }
  return pids;
}

// Two long texts (whole tables) that must be equal, reported without printing them.
void CheckSame(const std::string& what, const std::string& hub, const std::string& station) {
  if (hub == station) return;
  size_t at = 0;
  while (at < hub.size() && at < station.size() && hub[at] == station[at]) ++at;
  INFO(what << " differ: hub " << hub.size() << " bytes, station " << station.size() << " bytes, first difference at "
            << at << ": hub …" << hub.substr(at, 300) << "… station …" << station.substr(at, 300) << "…");
  CHECK(false);
}

// ---------------------------------------------------------------------------

// The county under the soak: hub, station, the hub's daemon behind a
// rate-capped relay, the ledger of acknowledged writes and the figures.
class Soak {
 public:
  Soak();
  Soak(const Soak&) = delete;
  Soak& operator=(const Soak&) = delete;

  const std::string& dir() const { return c_.tmp.path(); }
  const Figures& figures() const { return figures_; }

  // One iteration: maybe a hub write, then one station operation with kills.
  void Iteration(int i);
  // No kills: syncs until quiet, then hub and station must agree.
  void Converge();
  // Stops the hub daemon (SIGTERM) for good.
  void StopHub();

 private:
  const std::string& station() const { return c_.st[0].dir; }
  void RestartHub();
  void HubPut(int i);
  Outcome RunStation(Op op, std::vector<std::string> args, const Kill& kill);
  void Puts(int i, SeededRandom& rng, bool kill);
  void Import(int i, SeededRandom& rng, bool kill);
  void Sync(SeededRandom& rng, bool kill_station, bool kill_hub);
  void Check(const std::string& after, bool converged = false);

  County c_{1};
  int port_ = 0;
  int hub_starts_ = 0;
  std::unique_ptr<Daemon> hub_;
  std::unique_ptr<Relay> relay_;
  Ledger ledger_;
  Figures figures_;
  // Recent duration of each operation when not killed, per unit of its work
  // (Kill::work): where the next kill of that operation lands.
  std::array<double, 3> ms_per_unit_{};
};

Soak::Soak() {
  port_ = proc::FreePort();
  RestartHub();
  // About 100 KB per imported 300 rows: at 1 MiB/s a sync that carries an
  // import lasts long enough (a few hundred ms) for a kill to land inside it.
  relay_ = std::make_unique<Relay>(port_, RelayOptions{.seed = aidsync::testing::DerivedSeed(1),
                                                       .max_delay_ms = 1,
                                                       .bytes_per_second = 1 << 20});
  // One of each operation, not killed: the first figures for where kills land.
  SeededRandom rng(aidsync::testing::DerivedSeed(2));
  Puts(0, rng, false);
  Import(0, rng, false);
  Sync(rng, false, false);
  Check("the first put, import and sync");
}

void Soak::RestartHub() {
  hub_.reset();  // a killed daemon is reaped by its destructor
  hub_ = StartHub(c_, port_, "hub-" + std::to_string(++hub_starts_) + ".log");
}

void Soak::StopHub() {
  auto exit = hub_->Stop(SIGTERM, 20s);
  INFO(hub_->Describe());
  REQUIRE(exit);
  CHECK(exit->exit_code == 0);
}

void Soak::HubPut(int i) {
  std::string topic = "hub-" + std::to_string(i);
  std::string id = Ok(c_.hub, {"put", "consultations", "new", "--scope", c_.st[0].scope, "channel=phone",
                               "topic=" + topic, "summary=县中心代录", "consulted_at=2015-05-06"});
  ledger_.hub.push_back({id, topic});
  ++figures_.hub_puts;
}

// Runs `aidsync --data STATION args...`; with a kill chosen, waits until the
// moment `kill` names and kills the station process and/or the hub, then
// restarts the hub at once so that a sync in flight meets the new daemon.
Outcome Soak::RunStation(Op op, std::vector<std::string> args, const Kill& kill) {
  args.insert(args.begin(), {proc::AidsyncBinary(), "--data", station()});
  const auto start = Clock::now();
  proc::Process p = proc::Process::Start(std::move(args), {.new_process_group = true});
  Outcome o;
  if (kill.station || kill.hub) {
    // The delay picks where the kill lands; it waits for nothing.
    std::this_thread::sleep_for(std::chrono::microseconds(
        static_cast<int64_t>(kill.fraction * ms_per_unit_[op] * kill.work * 1000)));
    const bool running = !p.Ended(0ms);
    if (kill.station) p.SignalGroup(SIGKILL);
    if (kill.hub) {
      auto exit = hub_->Stop(SIGKILL, 10s);
      INFO(hub_->Describe());
      REQUIRE(exit);
      REQUIRE(exit->term_signal == SIGKILL);  // the hub was up until the kill
      o.hub_killed_during = running;
      ++figures_.hub_kills;
      RestartHub();
    }
  }
  REQUIRE(EndsWithin(p, 90s));
  o.result = p.Wait();
  o.ms = static_cast<double>(MsSince(start));
  o.station_killed = o.result.term_signal == SIGKILL;
  if (o.station_killed) ++figures_.station_kills;
  if (kill.station && !o.station_killed) ++figures_.missed;
  if (o.station_killed || o.hub_killed_during) ++figures_.during[op];
  if (!kill.station && !kill.hub) {
    const double per_unit = o.ms / kill.work;
    ms_per_unit_[op] = ms_per_unit_[op] == 0 ? per_unit : 0.7 * ms_per_unit_[op] + 0.3 * per_unit;
  }
  return o;
}

// A burst of puts; with `kill`, the last one is killed at a random moment.
void Soak::Puts(int i, SeededRandom& rng, bool kill) {
  const int n = 1 + static_cast<int>(rng.Uniform(5));
  for (int k = 0; k < n; ++k) {
    const bool victim = kill && k == n - 1;
    std::string topic = "put-" + std::to_string(i) + "-" + std::to_string(k);
    Outcome o = RunStation(kPut,
                           {"put", "consultations", "new", "channel=walk_in", "topic=" + topic,
                            "summary=咨询土地承包经营权流转 当事人询问流转合同的效力", "consulted_at=2015-04-02"},
                           Kill{.station = victim, .fraction = victim ? KillFraction(rng) : 0});
    if (o.station_killed) return;  // unknown: the row may or may not be there, whole
    std::string id = Ok(o.result);
    REQUIRE(IsRowId(id));
    ledger_.station.push_back({id, topic});
    ++figures_.puts;
  }
}

// An import of 300 to 800 consultations with ids of their own, as CSV or JSON
// lines; with `kill`, killed at a random moment. A killed import must be all
// or nothing.
void Soak::Import(int i, SeededRandom& rng, bool kill) {
  const int rows = 300 + static_cast<int>(rng.Uniform(501));
  const bool csv = rng.Chance(0.5);
  const std::string prefix = "imp-" + std::to_string(i) + "-";
  std::vector<Write> writes;
  std::string text = csv ? "id,channel,topic,summary,consulted_at\n" : "";
  for (int k = 0; k < rows; ++k) {
    Write w{prefix + std::to_string(k), "import " + std::to_string(i) + "/" + std::to_string(k)};
    std::string summary = "当事人询问劳动合同解除后的经济补偿 第" + std::to_string(k) + "条";
    if (csv) {
      text += w.id + ",walk_in," + w.topic + "," + summary + ",2015-04-02\n";
    } else {
      text += json{{"id", w.id}, {"channel", "online"}, {"topic", w.topic}, {"summary", summary},
                   {"consulted_at", "2015-04-03"}}.dump() + "\n";
    }
    writes.push_back(std::move(w));
  }
  const std::string file = c_.tmp / ("import-" + std::to_string(i) + (csv ? ".csv" : ".jsonl"));
  proc::WriteFile(file, text);
  // Starting the process weighs about as much as writing 200 rows.
  Outcome o = RunStation(kImport, {"import", "consultations", file},
                         Kill{.station = kill, .fraction = kill ? KillFraction(rng) : 0, .work = 200.0 + rows});
  std::remove(file.c_str());
  if (o.station_killed) {
    int64_t found = ParseJson(Query(station(), "SELECT count(*) AS n FROM consultations WHERE id LIKE '" + prefix +
                                                   "%'")).at(0).at("n").get<int64_t>();
    INFO("a killed import of " << rows << " rows left " << found);
    CHECK((found == 0 || found == rows));
    return;
  }
  REQUIRE(Ok(o.result) == std::to_string(rows));
  ledger_.station.insert(ledger_.station.end(), writes.begin(), writes.end());
  figures_.import_rows += rows;
}

// A sync through the relay. Success acknowledges that everything each node had
// acknowledged before it started is now on the other.
void Soak::Sync(SeededRandom& rng, bool kill_station, bool kill_hub) {
  const size_t station_writes = ledger_.station.size(), hub_writes = ledger_.hub.size();
  // The rows acknowledged since the last sync (not those of killed commands
  // that committed), plus a share for the handshake and an empty round trip.
  const double rows = static_cast<double>(station_writes - ledger_.station_at_hub + hub_writes - ledger_.hub_at_station);
  const bool kill = kill_station || kill_hub;
  Outcome o = RunStation(kSync, {"sync", "--peer", Endpoint(relay_->port()), "--timeout", "5"},
                         Kill{.station = kill_station, .hub = kill_hub, .fraction = kill ? KillFraction(rng) : 0,
                              .work = 100.0 + rows});
  INFO(o.result.Describe() << hub_->Describe());
  if (o.result.ok()) {
    ledger_.station_at_hub = std::max(ledger_.station_at_hub, station_writes);
    ledger_.hub_at_station = std::max(ledger_.hub_at_station, hub_writes);
    ++figures_.syncs_ok;
    return;
  }
  // Only a kill may make a sync fail.
  REQUIRE((o.station_killed || o.hub_killed_during));
  ++figures_.syncs_failed;
}

void Soak::Iteration(int i) {
  SeededRandom rng(aidsync::testing::DerivedSeed(1000 + static_cast<uint64_t>(i)));
  if (rng.Chance(0.3)) HubPut(i);
  const uint64_t draw = rng.Uniform(100);
  const Op op = draw < 35 ? kPut : draw < 65 ? kImport : kSync;
  // Kills of the hub only during syncs: otherwise it is idle.
  const uint64_t target = rng.Uniform(100);
  bool kill_station = false, kill_hub = false;
  if (op == kSync) {
    kill_station = (target >= 20 && target < 50) || target >= 80;
    kill_hub = target >= 50;
  } else {
    kill_station = target >= 25;
  }
  std::string what = std::string(kOpNames[op]) + (kill_station ? ", killing the station" : "") +
                     (kill_hub ? ", killing the hub" : "");
  INFO("iteration " << i << ": " << what);
  switch (op) {
    case kPut: Puts(i, rng, kill_station); break;
    case kImport: Import(i, rng, kill_station); break;
    case kSync: Sync(rng, kill_station, kill_hub); break;
  }
  Check(what);
  ++figures_.iterations;
}

// After every operation and restart: both replicas open, pass integrity_check,
// hold every acknowledged write, rejected nothing, and hold no stray file.
void Soak::Check(const std::string& after, bool converged) {
  INFO("checking after " << after);
  INFO(hub_->Describe());
  REQUIRE(hub_->Running());  // the hub never dies of its own accord
  for (const std::string& node : {c_.hub, station()}) {
    INFO("replica " << node);
    CHECK(Query(node, "PRAGMA integrity_check") == kIntegrityOk);
    json status = ParseJson(Ok(node, {"status", "--json"}));  // read-write open, quick_check
    CHECK(status.at("rejected").empty());
    CHECK(status.at("forks").empty());
    // A session cut short may leave changesets held for a missing predecessor;
    // once the nodes have converged, none.
    if (converged) CHECK(status.at("log").at("held_changesets") == 0);
    std::vector<std::string> stray = StrayFiles(node);
    INFO("stray files: " << json(stray).dump());
    CHECK(stray.empty());
  }
  auto at_station = Topics(station());
  auto at_hub = Topics(c_.hub);
  struct {
    const char* what;
    std::vector<std::string> missing;
  } checks[] = {
      {"station writes missing at the station", Missing(at_station, ledger_.station, ledger_.station.size())},
      {"hub writes missing at the hub", Missing(at_hub, ledger_.hub, ledger_.hub.size())},
      {"synced station writes missing at the hub", Missing(at_hub, ledger_.station, ledger_.station_at_hub)},
      {"synced hub writes missing at the station", Missing(at_station, ledger_.hub, ledger_.hub_at_station)},
  };
  for (const auto& check : checks) {
    INFO(check.what << ": " << check.missing.size() << ", the first "
                    << json(std::vector<std::string>(check.missing.begin(),
                                                     check.missing.begin() + std::min<size_t>(5, check.missing.size())))
                           .dump());
    figures_.lost += static_cast<int64_t>(check.missing.size());
    CHECK(check.missing.empty());
  }
  REQUIRE(figures_.lost == 0);
}

// The killing stops: the station syncs straight with the hub until a session
// moves nothing; then both hold the same rows in every table and the same
// chain heads, and every acknowledged write of each is on the other.
void Soak::Converge() {
  bool quiet = false;
  for (int round = 0; round < 5 && !quiet; ++round) {
    const size_t station_writes = ledger_.station.size(), hub_writes = ledger_.hub.size();
    proc::Result r = SyncOnce(station(), Endpoint(port_), 30);
    INFO(hub_->Describe());
    std::string out = Ok(r);
    ledger_.station_at_hub = station_writes;
    ledger_.hub_at_station = hub_writes;
    quiet = out.rfind("sent 0, received 0,", 0) == 0;
  }
  REQUIRE(quiet);
  Check("syncing until quiet", true);
  for (const auto& table : AllTables()) CheckSame("table " + table, ListJson(c_.hub, table), ListJson(station(), table));
  const std::string heads = "SELECT hex(author) AS author, scope, class, seq, hex(hash) AS hash FROM aidsync_chains "
                            "ORDER BY author, scope, class";
  CheckSame("chain heads", Query(c_.hub, heads), Query(station(), heads));
  ++figures_.convergences;
}

}  // namespace

TEST_CASE("crash soak: SIGKILL of station and hub during put, import and sync loses no acknowledged write",
          "[soak][net]") {
  const int iterations = static_cast<int>(aidsync::testing::EnvCount("AIDSYNC_SOAK_ITERATIONS", 20, 1, 1000000));
  const int every = static_cast<int>(aidsync::testing::EnvCount("AIDSYNC_SOAK_CONVERGE_EVERY", 5, 1, 1000000));
  const uint64_t seed = aidsync::testing::TestSeed();
  INFO("seed " << seed << ", " << iterations << " iterations, converging every " << every);
  std::string dir;
  Figures figures;
  {
    Soak soak;
    dir = soak.dir();
    for (int i = 1; i <= iterations; ++i) {
      soak.Iteration(i);
      if (i % every == 0 || i == iterations) {
        INFO("converging after iteration " << i);
        soak.Converge();
      }
    }
    soak.StopHub();
    std::vector<int> left = ProcessesMentioning(dir);
    INFO("processes left behind: " << json(left).dump());
    CHECK(left.empty());
    figures = soak.figures();
  }
  // A soak whose kills all came too late would prove nothing.
  if (iterations >= 10) CHECK(figures.during[kPut] + figures.during[kImport] + figures.during[kSync] > 0);
  CHECK_FALSE(proc::Exists(dir));  // the temp dir went with the test
  std::cout << figures.Line(seed) << std::endl;
}
