// Process-level tests of the `aidsync` command line (DESIGN 8): the real
// binary, run without a shell in a fresh temporary directory per test case.
// The contract flow, convergence through bundles, concurrency and tampering;
// refused input is in cli_bad_input_test.cc, shared helpers in cli_fixture.h.
#include <sqlite3.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <map>
#include <optional>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "crypto/keys.h"
#include "sync/changeset.h"
#include "sync/hybrid_clock.h"
#include "sync/replica.h"
#include "sync/packing.h"
#include "tests/cli_fixture.h"
#include "tests/process.h"

namespace {

namespace proc = aidsync::proc;
using Catch::Matchers::Contains;
using nlohmann::json;
using proc::Result;
using namespace aidsync::clitest;

// ---------------------------------------------------------------------------
// The contract flow.

TEST_CASE("cli: authority hub and station set-up follow the contract", "[cli]") {
  proc::TempDir tmp;
  std::string akey = tmp / "authority.key";
  Result r = proc::Aidsync({"authority", "init", "--out", akey});
  std::string authority = Ok(r);
  CHECK(IsHex64(authority));
  CHECK(r.out == authority + "\n");
  CHECK(r.err.empty());
  CHECK(proc::FileMode(akey) == 0600);
  CHECK_FALSE(proc::Exists(tmp / "aidsync-data"));  // touches no data dir

  std::string hub = tmp / "hub";
  r = On(hub, {"init", "--name", "县法律援助中心", "--code", "0500", "--scope", "430123", "--authority", authority,
               "--hub", "--authority-key", akey});
  std::string hub_key = Ok(r);
  CHECK(IsHex64(hub_key));
  CHECK(r.out == hub_key + "\n");
  CHECK(hub_key != authority);
  CHECK(proc::FileMode(hub) == 0700);
  CHECK(proc::FileMode(hub + "/node.key") == 0600);

  // Options may come after positional arguments, and stdin may be closed.
  std::string station = tmp / "station";
  r = proc::Aidsync({"init", "--name", "城关镇工作站", "--code", "0512", "--scope", "430123/05", "--authority",
                     authority, "--data", station},
                    {.stdin_data = std::nullopt, .close_stdin = true, .cwd = ""});
  std::string station_key = Ok(r);
  CHECK(IsHex64(station_key));
  CHECK(proc::FileMode(station) == 0700);
  CHECK(proc::FileMode(station + "/node.key") == 0600);

  json before = ParseJson(Ok(station, {"status", "--json"}));
  CHECK(before.at("node").at("enrolled") == false);

  std::string cert = tmp / "0512.cert";
  r = On(hub, {"enroll", "--node-key", station_key, "--name", "城关镇工作站", "--code", "0512", "--scope", "430123/05",
               "--out", cert});
  Ok(r);
  CHECK(proc::Exists(cert));
  Ok(On(station, {"install-cert", cert}));

  json status = ParseJson(Ok(station, {"status", "--json"}));
  CHECK(status.at("node").at("enrolled") == true);
  CHECK(status.at("node").at("id") == station_key);
  CHECK(status.at("node").at("code") == "0512");
  CHECK(status.at("node").at("role") == "station");
  CHECK(status.at("node").at("scope") == "430123/05");
  CHECK(status.at("log").at("own_changesets").is_number_integer());
  CHECK(status.at("log").at("total_changesets").is_number_integer());
  CHECK(status.at("conflicts_open").is_number_integer());
  CHECK(status.at("rejected").is_object());
  CHECK(status.at("alerts").is_array());
  CHECK(status.at("peers").is_array());

  json hub_status = ParseJson(Ok(hub, {"status", "--json"}));
  CHECK(hub_status.at("node").at("role") == "hub");
  CHECK(hub_status.at("node").at("id") == hub_key);

  // The hub recorded the enrolment in the replicated stations table.
  json stations = ParseJson(ListJson(hub, "stations"));
  std::set<std::string> codes;
  for (const auto& s : stations) codes.insert(s.at("code").get<std::string>());
  CHECK(codes.count("0512") == 1);
}

TEST_CASE("cli: records through put get list query delete import and rebuild", "[cli]") {
  County county(1);
  const std::string& hub = county.hub;
  const Station& s = county.st[0];

  // put prints the id alone; get --json: id, scope and typed values.
  Result r = On(hub, {"put", "lawyers", "new", "name=王建国", "firm=正义律师事务所", "kind=lawyer", "practice_years=8",
                      "active=1"});
  std::string wang = Ok(r);
  CHECK(IsRowId(wang));
  CHECK(r.out == wang + "\n");
  CHECK(r.err.empty());
  json row = ParseJson(Ok(hub, {"get", "lawyers", wang, "--json"}));
  REQUIRE(row.is_object());
  CHECK(row.at("id") == wang);
  CHECK(row.at("scope") == "430123");
  CHECK(row.at("name") == "王建国");
  CHECK(row.at("kind") == "lawyer");
  CHECK(row.at("practice_years").is_number_integer());
  CHECK(row.at("practice_years") == 8);
  CHECK(row.at("active").is_number_integer());
  CHECK(row.at("active") == 1);
  CHECK(row.at("phone").is_null());
  std::set<std::string> keys;
  for (auto it = row.begin(); it != row.end(); ++it) keys.insert(it.key());
  CHECK(keys == std::set<std::string>{"id", "scope", "name", "firm", "kind", "practice_years", "phone", "active"});

  // An update by id keeps the other fields.
  CHECK(Ok(hub, {"put", "lawyers", wang, "phone=13800000001"}) == wang);
  row = ParseJson(Ok(hub, {"get", "lawyers", wang, "--json"}));
  CHECK(row.at("phone") == "13800000001");
  CHECK(row.at("practice_years") == 8);

  // Plain get prints the columns.
  CHECK_THAT(Ok(hub, {"get", "lawyers", wang}), Contains("王建国"));

  std::string li = Ok(hub, {"put", "lawyers", "new", "name=李晓", "kind=intern", "practice_years=1", "active=1"});
  json list = ParseJson(ListJson(hub, "lawyers"));
  REQUIRE(list.is_array());
  REQUIRE(list.size() == 2);
  CHECK(list[0].at("id") < list[1].at("id"));
  std::set<std::string> ids{list[0].at("id").get<std::string>(), list[1].at("id").get<std::string>()};
  CHECK(ids == std::set<std::string>{wang, li});
  CHECK(list[0] == ParseJson(Ok(hub, {"get", "lawyers", list[0].at("id").get<std::string>(), "--json"})));

  // query --json: an array of objects with numbers as numbers.
  CHECK(Query(hub, "SELECT 1 AS n") == R"([{"n":1}])");
  CHECK(ParseJson(Query(hub, "SELECT count(*) AS n FROM lawyers")) == json::parse(R"([{"n": 2}])"));
  CHECK(ParseJson(Query(hub, "SELECT 1.5 AS x, 'a' AS t, NULL AS z")) ==
        json::parse(R"([{"x": 1.5, "t": "a", "z": null}])"));
  CHECK(Ok(hub, {"query", "SELECT name FROM lawyers WHERE kind = 'intern'"}) == "name\n李晓");

  // The roster reaches the station; the station records a case with a REAL column.
  county.Down(s);
  std::string app = Ok(s.dir, {"put", "applications", "new", "applicant_name=张桂兰", "category=civil",
                               "received_at=2015-04-02", "status=received"});
  std::string case_id = Ok(s.dir, {"put", "cases", "new", "application_id=" + app, "lawyer_id=" + wang,
                                   "category=civil", "assigned_at=2015-04-03", "status=assigned",
                                   "recovered_amount=1234.5"});
  json c = ParseJson(Ok(s.dir, {"get", "cases", case_id, "--json"}));
  CHECK(c.at("scope") == "430123/05");
  CHECK(c.at("recovered_amount").is_number_float());
  CHECK(c.at("recovered_amount") == 1234.5);
  CHECK(c.at("notice_number") == "(2015)法援字第0512-0001号");

  // delete: gone from list and get.
  std::string gone = Ok(s.dir, {"put", "consultations", "new", "channel=walk_in", "topic=土地承包"});
  Ok(s.dir, {"delete", "consultations", gone});
  CHECK(ListJson(s.dir, "consultations") == "[]");
  RequireRefused(On(s.dir, {"get", "consultations", gone, "--json"}));

  // import of a 100-row CSV prints 100.
  std::string csv = "channel,topic,summary,consulted_at\n";
  for (int i = 0; i < 100; ++i) {
    if (i == 7) {
      csv += "phone,\"租赁, 押金\",\"他说\"\"退押金\"\"\",2015-04-02\n";
    } else if (i == 8) {
      csv += "online,工伤,\"第一行\n第二行\",2015-04-02\n";
    } else {
      csv += "walk_in,咨询" + std::to_string(i) + ",summary " + std::to_string(i) + ",2015-04-02\n";
    }
  }
  proc::WriteFile(county.tmp / "consultations.csv", csv);
  r = On(s.dir, {"import", "consultations", county.tmp / "consultations.csv"});
  CHECK(Ok(r) == "100");
  CHECK(r.err.empty());
  CHECK(Count(s.dir, "consultations") == 100);
  CHECK(ParseJson(Query(s.dir, "SELECT summary FROM consultations WHERE topic = '租赁, 押金'")) ==
        json::parse(R"([{"summary": "他说\"退押金\""}])"));
  CHECK(ParseJson(Query(s.dir, "SELECT summary FROM consultations WHERE topic = '工伤'")) ==
        json::parse(R"([{"summary": "第一行\n第二行"}])"));

  // import of JSON lines, numbers and booleans included.
  std::string jsonl;
  for (int i = 0; i < 5; ++i)
    jsonl += R"({"name": "律师)" + std::to_string(i) + R"(", "kind": "lawyer", "practice_years": )" +
             std::to_string(3 + i) + R"(, "active": true})" + "\n";
  proc::WriteFile(county.tmp / "lawyers.jsonl", jsonl);
  CHECK(Ok(hub, {"import", "lawyers", county.tmp / "lawyers.jsonl"}) == "5");
  CHECK(ParseJson(Query(hub, "SELECT practice_years AS p, active AS a FROM lawyers WHERE name = '律师4'")) ==
        json::parse(R"([{"p": 7, "a": 1}])"));
  CHECK(Count(hub, "lawyers") == 7);

  // rebuild re-materializes the same tables.
  for (const std::string& dir : {hub, s.dir}) {
    std::string before = ListAll(dir);
    json status_before = ParseJson(Ok(dir, {"status", "--json"}));
    Ok(dir, {"rebuild"});
    CHECK(ListAll(dir) == before);
    json status_after = ParseJson(Ok(dir, {"status", "--json"}));
    CHECK(status_after.at("log") == status_before.at("log"));
  }
}

// ---------------------------------------------------------------------------
// Convergence through bundles.

TEST_CASE("cli: hub and stations converge through bundles both ways", "[cli][bundle]") {
  County county(2);
  const std::string& hub = county.hub;
  county.SeedRoster();
  Ok(hub, {"put", "notices", "new", "title=关于做好2015年法律援助工作的通知", "body=审批有依据，不批准也有依据。",
           "issued_at=2015-03-07"});
  Ok(hub, {"put", "targets", "new", "year=2015", "station_code=0512", "metric=cases", "value=180"});
  Ok(hub, {"put", "targets", "new", "year=2015", "station_code=0513", "metric=consultations", "value=300"});
  Ok(hub, {"put", "duty_rota", "new", "lawyer_id=" + county.senior, "station_code=0512", "date=2015-04-06",
           "shift=am"});
  Ok(hub, {"put", "duty_rota", "new", "lawyer_id=" + county.junior, "station_code=0513", "date=2015-04-07",
           "shift=pm"});
  // A county-level case record: it never goes down to a station.
  Ok(hub, {"put", "consultations", "new", "channel=hotline_12348", "topic=县级咨询", "consulted_at=2015-04-01"});
  for (const auto& s : county.st) county.Down(s);

  std::map<std::string, std::string> case_of;
  for (const auto& s : county.st) {
    auto [app, c] = county.SeedCase(s);
    case_of[s.code] = c;
    Ok(s.dir, {"put", "consultations", "new", "channel=walk_in", "topic=土地承包", "summary=" + s.name,
               "consulted_at=2015-04-02"});
    Ok(s.dir, {"put", "hotline_tickets", "new", "caller=刘先生", "phone=13700000003", "topic=工伤认定",
               "received_at=2015-04-02", "status=answered"});
    Ok(s.dir, {"put", "return_visits", "new", "case_id=" + c, "visited_at=2015-05-10", "satisfaction=5",
               "fee_charged=0", "note=满意"});
    Ok(s.dir, {"put", "complaints", "new", "case_id=" + c, "lawyer_id=" + county.senior, "received_at=2015-05-11",
               "content=律师未按时会见", "status=received"});
    Ok(s.dir, {"put", "quality_reviews", "new", "case_id=" + c, "reviewer=质量评估组", "score=92",
               "findings=卷宗齐全", "reviewed_at=2015-06-01"});
    Ok(s.dir, {"put", "applications", app, "matter=追索劳动报酬（更正）"});
  }
  for (const auto& s : county.st) county.Up(s);
  // The hub edits a station's case; the edit flows down to that station.
  Ok(hub, {"put", "cases", case_of["0512"], "outcome=调解结案", "status=closed", "closed_at=2015-07-01"});
  for (const auto& s : county.st) county.Down(s);

  for (const auto& t : kReferenceTables) {
    INFO("table " << t);
    std::string at_hub = ListJson(hub, t);
    CHECK(at_hub != "[]");
    for (const auto& s : county.st) CHECK(ListJson(s.dir, t) == at_hub);
  }
  for (const auto& t : kCaseTables) {
    INFO("table " << t);
    json at_hub = ParseJson(ListJson(hub, t));
    size_t station_rows = 0;
    for (const auto& s : county.st) {
      json visible = json::array();
      for (const auto& row : at_hub) {
        std::string scope = row.at("scope");
        if (scope == s.scope || scope.rfind(s.scope + "/", 0) == 0) visible.push_back(row);
      }
      std::string at_station = ListJson(s.dir, t);
      CHECK(at_station == Dump(visible));
      CHECK(!visible.empty());
      station_rows += visible.size();
    }
    size_t county_rows = t == "consultations" ? 1 : 0;
    CHECK(at_hub.size() == station_rows + county_rows);
  }
  json c = ParseJson(Ok(county.st[0].dir, {"get", "cases", case_of["0512"], "--json"}));
  CHECK(c.at("outcome") == "调解结案");
  CHECK(c.at("status") == "closed");

  // Nothing new: applying a bundle again is a no-op that succeeds.
  std::string file = county.NewBundlePath();
  Ok(hub, {"bundle", "create", "--for", "0512", "--out", file});
  std::string before = Snapshot(county.st[0].dir);
  CHECK_THAT(Ok(county.st[0].dir, {"bundle", "apply", file}), Contains("0 applied"));
  CHECK_THAT(Ok(county.st[0].dir, {"bundle", "apply", file}), Contains("0 applied"));
  CHECK(Snapshot(county.st[0].dir) == before);

  // Conflicts agree too.
  CHECK(Ok(hub, {"conflicts", "--json"}) == Ok(county.st[0].dir, {"conflicts", "--json"}));
}

// Enrolment is offline: the enrolment file carries the hub's certificate, so a
// station can seal a bundle for the hub before any bundle has come down.
TEST_CASE("cli: a station enrolled offline can send a bundle to the hub before hearing from it", "[cli][bundle]") {
  County county(1);
  const Station& s = county.st[0];
  std::string id = Ok(s.dir, {"put", "consultations", "new", "channel=walk_in", "topic=土地承包",
                              "summary=先于中心来信", "consulted_at=2015-04-02"});
  std::string file = county.NewBundlePath();
  Ok(s.dir, {"bundle", "create", "--for", "0500", "--out", file});
  CHECK(proc::Exists(file));
  Result r = On(county.hub, {"bundle", "apply", file});
  std::string summary = Ok(r);
  INFO(summary);
  CHECK(summary.rfind("0 applied", 0) != 0);  // the station's changeset was applied, not held
  json row = ParseJson(Ok(county.hub, {"get", "consultations", id, "--json"}));
  CHECK(row.at("id") == id);
  CHECK(row.at("scope") == "430123/05");
  CHECK(row.at("topic") == "土地承包");
  CHECK(row.at("summary") == "先于中心来信");
  CHECK(Count(county.hub, "consultations") == 1);
  CHECK(ListJson(county.hub, "consultations") == ListJson(s.dir, "consultations"));
}

// ---------------------------------------------------------------------------
// Domain rules that accept a write and raise an alert.

TEST_CASE("cli: a return visit with a fee charged is accepted and raises an alert", "[cli][rules]") {
  Seeded c;
  const std::string& st = c.st[0].dir;
  Result r = On(st, {"put", "return_visits", "new", "case_id=" + c.case_id, "visited_at=2015-05-10",
                     "satisfaction=2", "fee_charged=1", "note=当事人反映律师收取了费用"});
  std::string visit = Ok(r);
  CHECK(IsRowId(visit));
  CHECK(r.out == visit + "\n");
  CHECK(Count(st, "return_visits") == 1);
  json status = ParseJson(Ok(st, {"status", "--json"}));
  REQUIRE(status.at("alerts").is_array());
  bool mentioned = false;
  for (const auto& a : status.at("alerts")) {
    std::string text = a.get<std::string>();
    if (text.find(visit) != std::string::npos && text.find("fee") != std::string::npos) mentioned = true;
  }
  INFO(status.dump());
  CHECK(mentioned);

  // The hub computes the same alert for the record it receives.
  c.Up(c.st[0]);
  json hub_status = ParseJson(Ok(c.hub, {"status", "--json"}));
  mentioned = false;
  for (const auto& a : hub_status.at("alerts"))
    if (a.get<std::string>().find(visit) != std::string::npos) mentioned = true;
  INFO(hub_status.dump());
  CHECK(mentioned);
}

// ---------------------------------------------------------------------------
// Concurrency: processes on one data dir never reuse a sequence number, HLC
// value or notice number.

std::vector<std::string> CasePut() {
  return {"put", "cases", "new", "category=civil", "status=in_progress", "funding=regular"};
}

void CheckAllocations(const std::string& data, int64_t expected_cases) {
  // One chain per (author, scope, class), numbered 1..n without holes or repeats.
  json chains = ParseJson(Query(data,
                                "SELECT hex(author) AS author, scope, class, count(*) AS n, "
                                "count(DISTINCT seq) AS distinct_seq, min(seq) AS lo, max(seq) AS hi "
                                "FROM aidsync_log GROUP BY author, scope, class"));
  for (const auto& ch : chains) {
    INFO(ch.dump());
    CHECK(ch.at("n") == ch.at("distinct_seq"));
    CHECK(ch.at("lo") == 1);
    CHECK(ch.at("hi") == ch.at("n"));
  }
  CHECK(Query(data, "SELECT count(*) - count(DISTINCT hlc) AS dup FROM aidsync_log") == R"([{"dup":0}])");
  // HLCs grow with the sequence numbers of a chain.
  CHECK(Query(data,
              "SELECT count(*) AS n FROM aidsync_log a JOIN aidsync_log b ON a.author = b.author AND "
              "a.scope = b.scope AND a.class = b.class AND b.seq = a.seq + 1 WHERE b.hlc <= a.hlc") ==
        R"([{"n":0}])");
  json cases = ParseJson(Query(data,
                               "SELECT count(*) AS n, count(notice_number) AS numbered, "
                               "count(DISTINCT notice_number) AS distinct_numbers FROM cases"));
  CHECK(cases.at(0).at("n") == expected_cases);
  CHECK(cases.at(0).at("numbered") == expected_cases);
  CHECK(cases.at(0).at("distinct_numbers") == expected_cases);
  // Per year, the counters run 1..n.
  json years = ParseJson(Query(data,
                               "SELECT substr(notice_number, 2, 4) AS year, count(*) AS n, "
                               "max(CAST(substr(notice_number, -5, 4) AS INTEGER)) AS hi FROM cases GROUP BY year"));
  for (const auto& y : years) {
    INFO(y.dump());
    CHECK(y.at("n") == y.at("hi"));
  }
}

TEST_CASE("cli: concurrent put loops never reuse a sequence number or HLC or notice number",
          "[cli][concurrency]") {
  County c(1);
  const std::string& st = c.st[0].dir;
  std::vector<std::string> put = CasePut();
  put.insert(put.begin(), {"--data", st});
  std::vector<std::vector<std::vector<std::string>>> lanes(2, std::vector<std::vector<std::string>>(40, put));
  auto results = proc::RunLanes(lanes);
  std::set<std::string> ids;
  for (const auto& lane : results) {
    REQUIRE(lane.size() == 40);
    for (const auto& r : lane) {
      ids.insert(Ok(r));
      CHECK(r.err.empty());
    }
  }
  CHECK(ids.size() == 80);
  CheckAllocations(st, 80);
  json status = ParseJson(Ok(st, {"status", "--json"}));
  CHECK(status.at("log").at("own_changesets") == 80);
}

std::string CasesCsv(int rows) {
  std::string csv = "category,status,funding,assigned_at\n";
  for (int i = 0; i < rows; ++i) csv += "civil,in_progress,regular,2015-0" + std::to_string(1 + i % 9) + "-01\n";
  return csv;
}

void ImportWhilePutting(int rows) {
  County c(1);
  const std::string& st = c.st[0].dir;
  std::string file = c.tmp / "cases.csv";
  proc::WriteFile(file, CasesCsv(rows));
  std::vector<std::string> put = CasePut();
  put.insert(put.begin(), {"--data", st});
  std::vector<std::string> put_2015 = put;
  put_2015.push_back("assigned_at=2015-12-31");
  std::vector<std::vector<std::vector<std::string>>> lanes{
      {{"--data", st, "import", "cases", file}},
      std::vector<std::vector<std::string>>(40, put),
      std::vector<std::vector<std::string>>(20, put_2015),
  };
  auto results = proc::RunLanes(lanes);
  CHECK(Ok(results[0][0]) == std::to_string(rows));
  for (size_t lane = 1; lane < results.size(); ++lane)
    for (const auto& r : results[lane]) Ok(r);
  CheckAllocations(st, rows + 60);
}

TEST_CASE("cli: an import running beside put loops shares the allocators safely", "[cli][concurrency][import]") {
  ImportWhilePutting(400);
}

// Several changesets per import (DESIGN 4: a changeset has a bounded size).
TEST_CASE("cli: an import of 2000 cases beside put loops", "[cli][concurrency][import]") {
  ImportWhilePutting(2000);
}

// DESIGN 4: a large local transaction becomes several consecutive changesets,
// each valid on its own on the wire. Short values stress the size estimate.
TEST_CASE("cli: a large import becomes several changesets that all commit together", "[cli][import]") {
  County c(1);
  const Station& s = c.st[0];
  c.SeedRoster();
  std::string table, csv;
  SECTION("short values") {
    table = "consultations";
    csv = "channel,topic,summary,consulted_at\n";
    for (int i = 0; i < 3000; ++i)
      csv += "walk_in,t" + std::to_string(i) + ",summary " + std::to_string(i) + ",2015-04-02\n";
  }
  SECTION("cases naming their application and lawyer") {
    table = "cases";
    std::string app = Ok(s.dir, {"put", "applications", "new", "applicant_name=张桂兰", "category=civil",
                                 "status=received"});
    csv = "application_id,lawyer_id,category,status\n";
    for (int i = 0; i < 3000; ++i) csv += app + "," + c.senior + ",civil,assigned\n";
  }
  proc::WriteFile(c.tmp / "big.csv", csv);
  json before = ParseJson(Ok(s.dir, {"status", "--json"}));
  Result r = On(s.dir, {"import", table, c.tmp / "big.csv"});
  CHECK(Ok(r) == "3000");
  CHECK(r.err.empty());
  CHECK(Count(s.dir, table) == 3000);
  json after = ParseJson(Ok(s.dir, {"status", "--json"}));
  CHECK(after.at("log").at("own_changesets").get<int64_t>() - before.at("log").at("own_changesets").get<int64_t>() >=
        2);
  CheckAllocations(s.dir, table == "cases" ? 3000 : 0);
  // The changesets travel and verify on the hub.
  c.Up(s);
  CHECK(Count(c.hub, table) == 3000);
  CHECK(ListJson(c.hub, table) == ListJson(s.dir, table));
}

// ---------------------------------------------------------------------------
// Tampering: the log is the source of truth and is re-verified on rebuild.

// Flips one byte in the middle of the envelope of one log entry chosen by
// `where`. The log may keep an envelope zstd-compressed (docs/FORMATS.md):
// with `damage_frame` the byte is flipped in the stored frame itself;
// otherwise the envelope is unpacked, altered and stored verbatim, a form
// the log accepts, so only its signature can give it away.
void TamperWithLog(const std::string& db_path, const std::string& where, bool damage_frame = false) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK);
  sqlite3_stmt* select = nullptr;
  std::string sql = "SELECT id, envelope FROM aidsync_log WHERE " + where + " ORDER BY id LIMIT 1";
  REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &select, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_step(select) == SQLITE_ROW);
  sqlite3_int64 id = sqlite3_column_int64(select, 0);
  const auto* blob = static_cast<const char*>(sqlite3_column_blob(select, 1));
  std::string envelope(blob, static_cast<size_t>(sqlite3_column_bytes(select, 1)));
  sqlite3_finalize(select);
  if (!damage_frame) {
    auto unpacked = aidsync::UnpackStoredEnvelope(envelope, aidsync::ChangesetLimits{}.max_envelope_bytes);
    REQUIRE(unpacked.ok());
    envelope = *unpacked;
  }
  REQUIRE(envelope.size() > 64);
  envelope[envelope.size() / 2] = static_cast<char>(envelope[envelope.size() / 2] ^ 0x01);

  sqlite3_stmt* update = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, "UPDATE aidsync_log SET envelope = ? WHERE id = ?", -1, &update, nullptr) ==
          SQLITE_OK);
  sqlite3_bind_blob(update, 1, envelope.data(), static_cast<int>(envelope.size()), SQLITE_TRANSIENT);
  sqlite3_bind_int64(update, 2, id);
  REQUIRE(sqlite3_step(update) == SQLITE_DONE);
  REQUIRE(sqlite3_changes(db) == 1);
  sqlite3_finalize(update);
  REQUIRE(sqlite3_close(db) == SQLITE_OK);
}

TEST_CASE("cli: rebuild refuses a log whose changeset was tampered with", "[cli][tamper]") {
  Seeded c;
  const Station& s = c.st[0];
  Ok(s.dir, {"put", "consultations", "new", "channel=walk_in", "topic=土地承包"});
  c.Up(s);
  Ok(c.hub, {"put", "notices", "new", "title=通知", "issued_at=2015-03-07"});
  c.Down(s);
  std::string before = ListAll(s.dir);

  std::string where;
  bool damage_frame = false;
  SECTION("a changeset received from the hub") { where = "hex(author) = upper('" + c.hub_key + "')"; }
  SECTION("one of the station's own changesets") { where = "hex(author) = upper('" + s.key + "')"; }
  SECTION("the compressed form the log keeps of a changeset") {
    where = "hex(author) = upper('" + s.key + "') AND substr(envelope, 1, 4) = x'28b52ffd'";
    damage_frame = true;
  }
  TamperWithLog(s.dir + "/replica.db", where, damage_frame);

  Result r = On(s.dir, {"rebuild"});
  RequireRefused(r);
  INFO(r.err);
  std::string err = r.err;
  std::transform(err.begin(), err.end(), err.begin(), [](unsigned char ch) { return std::tolower(ch); });
  CHECK(err.find("log") != std::string::npos);
  CHECK((err.find("sign") != std::string::npos || err.find("corrupt") != std::string::npos ||
         err.find("tamper") != std::string::npos || err.find("damaged") != std::string::npos));
  // A failed rebuild loses nothing that was materialized.
  CHECK(ListAll(s.dir) == before);
}

}  // namespace

namespace {

// A one-row changeset signed with `key`, as a node from before the write-time
// checks could still send: its values are never checked on arrival (signed
// facts), so every output must make them harmless.
aidsync::SignedChangeset OldNodeWrite(const aidsync::SigningKey& key, const std::string& scope, uint64_t seq,
                                      std::optional<aidsync::Digest> prev, const std::string& row,
                                      const std::vector<std::pair<std::string, std::string>>& values) {
  aidsync::ChangesetContent c;
  c.author = key.public_key();
  c.scope = scope;
  c.cls = aidsync::TableClass::kCase;
  c.seq = seq;
  c.prev = prev;
  c.hlc = aidsync::MakeHlc(static_cast<uint64_t>(aidsync::Env::Default().clock->NowMillis()), seq);
  c.schema_version = 1;
  aidsync::TableOpsList ops{"consultations", {}, {}};
  aidsync::RowOp op{row, false, {}};
  for (const auto& [column, text] : values) {
    op.fields.push_back(aidsync::FieldWriteOp{static_cast<uint16_t>(ops.columns.size()), {}, false,
                                              aidsync::Value::Text(text)});
    ops.columns.push_back(column);
  }
  ops.rows.push_back(op);
  c.tables.push_back(ops);
  auto signed_cs = aidsync::SignChangeset(c, key);
  REQUIRE(signed_cs.ok());
  return *signed_cs;
}

// No byte that a terminal acts on: C0 controls but newline, DEL, and the C1 controls in UTF-8.
bool HasTerminalControls(const std::string& text) {
  for (size_t i = 0; i < text.size(); ++i) {
    auto b = static_cast<unsigned char>(text[i]);
    if ((b < 0x20 && b != '\n' && b != '\t') || b == 0x7f) return true;
    if (b == 0xc2 && i + 1 < text.size() && static_cast<unsigned char>(text[i + 1]) < 0xa0) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("cli: control characters in values received from another node print escaped", "[cli][text]") {
  County c(1);
  const Station& s = c.st[0];
  auto key = aidsync::SigningKey::Load(s.dir + "/node.key");
  REQUIRE(key.ok());
  const std::string row = "0190a000-0000-7000-8000-00000000e5c0";
  const std::string title = "\x1b]0;owned\a\x1b[2J";
  const std::string c1 = "csi \xc2\x9b" "31m del\x7f";
  auto first = OldNodeWrite(*key, s.scope, 1, std::nullopt, row,
                            {{"channel", "walk_in"}, {"topic", title}, {"summary", "one\nforged line\x1b[1A"}});
  // A second write of topic that overwrites nothing: an open conflict of two such values.
  auto second = OldNodeWrite(*key, s.scope, 2, first.id, row, {{"topic", c1}});
  {
    auto hub = aidsync::Replica::Open(c.hub, aidsync::Env::Default());
    REQUIRE(hub.ok());
    auto report = (*hub)->ApplyRemote({first.envelope, second.envelope});
    REQUIRE(report.ok());
    REQUIRE(report->applied == 2);
  }

  const std::vector<std::vector<std::string>> text_commands{
      {"list", "consultations"},
      {"get", "consultations", row},
      {"query", "SELECT id, topic, summary FROM consultations"},
      {"conflicts"},
      {"status"},
  };
  for (const auto& cmd : text_commands) {
    INFO(cmd[0]);
    std::string out = Ok(On(c.hub, cmd));
    CHECK_FALSE(HasTerminalControls(out));
    if (cmd[0] == "list" || cmd[0] == "query") {
      // A header and one line: the newline in summary forged no line.
      CHECK(std::count(out.begin(), out.end(), '\n') == 1);
      CHECK_THAT(out, Contains("one\\nforged line\\x1b[1A"));
    }
  }
  std::string conflicts = Ok(On(c.hub, {"conflicts"}));
  CHECK_THAT(conflicts, Contains("\\x1b]0;owned\\x07\\x1b[2J"));
  CHECK_THAT(conflicts, Contains("csi \\u009b31m del\\x7f"));
  std::string get = Ok(On(c.hub, {"get", "consultations", row}));
  CHECK_THAT(get, Contains("summary\tone\\nforged line\\x1b[1A\n"));

  // JSON keeps the values exactly, as escapes only.
  for (const auto& cmd : std::vector<std::vector<std::string>>{{"list", "consultations", "--json"},
                                                                {"get", "consultations", row, "--json"},
                                                                {"query", "SELECT topic, summary FROM consultations",
                                                                 "--json"},
                                                                {"conflicts", "--json"}}) {
    INFO(cmd[0]);
    std::string out = Ok(On(c.hub, cmd));
    CHECK_FALSE(HasTerminalControls(out));
    CHECK(out.find('\n') == std::string::npos);
    ParseJson(out);
    CHECK((out.find(R"(\u001b]0;owned\u0007\u001b[2J)") != std::string::npos ||
           out.find(R"(csi \u009b31m del\u007f)") != std::string::npos));
  }
}
