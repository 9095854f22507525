// Process-level tests of the `aidsync` command line (DESIGN 8): refused input.
// Every case here expects a non-zero exit, one line on stderr, nothing on
// stdout and nothing stored. Shared helpers are in cli_fixture.h.
#include <sys/stat.h>

#include <catch2/catch.hpp>

#include <cstdint>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "crypto/certificate.h"
#include "crypto/keys.h"
#include "tests/cli_fixture.h"
#include "tests/process.h"

namespace {

namespace proc = aidsync::proc;
using nlohmann::json;
using proc::Result;
using namespace aidsync::clitest;

// ---------------------------------------------------------------------------
// Bad input: a non-zero exit, one line on stderr, nothing on stdout, nothing stored.

TEST_CASE("cli: a put to an unknown table is refused", "[cli][bad-input]") {
  Seeded c;
  std::string before = Snapshot(c.st[0].dir);
  RequireRefused(On(c.st[0].dir, {"put", "no_such_table", "new", "name=x"}), "no_such_table");
  RequireRefused(On(c.st[0].dir, {"get", "no_such_table", c.case_id}), "no_such_table");
  RequireRefused(On(c.st[0].dir, {"list", "no_such_table", "--json"}), "no_such_table");
  CHECK(Snapshot(c.st[0].dir) == before);
}

TEST_CASE("cli: a put to an unknown column is refused", "[cli][bad-input]") {
  Seeded c;
  std::string before = Snapshot(c.st[0].dir);
  SECTION("new row") {
    RequireRefused(On(c.st[0].dir, {"put", "consultations", "new", "channel=walk_in", "colour=blue"}), "colour");
  }
  SECTION("existing row") {
    RequireRefused(On(c.st[0].dir, {"put", "cases", c.case_id, "outcome=x", "colour=blue"}), "colour");
  }
  CHECK(Snapshot(c.st[0].dir) == before);
}

TEST_CASE("cli: text where an INTEGER is due is refused", "[cli][bad-input]") {
  Seeded c;
  std::string before = Snapshot(c.hub);
  RequireRefused(On(c.hub, {"put", "lawyers", "new", "name=孙", "kind=lawyer", "practice_years=abc"}),
                 "practice_years");
  RequireRefused(On(c.hub, {"put", "lawyers", c.senior, "practice_years=8.5"}), "practice_years");
  RequireRefused(On(c.hub, {"put", "targets", "new", "year=二〇一五", "metric=cases"}), "year");
  CHECK(Snapshot(c.hub) == before);
}

TEST_CASE("cli: a value outside the allowed list or range is refused", "[cli][bad-input]") {
  Seeded c;
  const std::string& st = c.st[0].dir;
  std::string before = Snapshot(st);
  SECTION("category") {
    RequireRefused(On(st, {"put", "applications", "new", "applicant_name=x", "category=foo", "status=received"}),
                   "category");
  }
  SECTION("status of an existing row") {
    RequireRefused(On(st, {"put", "cases", c.case_id, "status=lost"}), "status");
  }
  SECTION("satisfaction 1-5") {
    RequireRefused(On(st, {"put", "return_visits", "new", "case_id=" + c.case_id, "satisfaction=6"}),
                   "satisfaction");
  }
  SECTION("fee_charged 0/1") {
    RequireRefused(On(st, {"put", "return_visits", "new", "case_id=" + c.case_id, "fee_charged=2"}), "fee_charged");
  }
  CHECK(Snapshot(st) == before);
}

TEST_CASE("cli: a put without an id argument is refused", "[cli][bad-input]") {
  Seeded c;
  std::string before = Snapshot(c.hub);
  SECTION("table only") { RequireRefused(On(c.hub, {"put", "lawyers"})); }
  SECTION("nothing") { RequireRefused(On(c.hub, {"put"})); }
  SECTION("column=value where the id belongs (forgot `new`)") {
    RequireRefused(On(c.hub, {"put", "lawyers", "name=Sun", "kind=lawyer"}), "new");
    RequireRefused(On(c.hub, {"put", "lawyers", "name=Sun"}), "new");
  }
  SECTION("the id as a column") {
    RequireRefused(On(c.hub, {"put", "lawyers", "new", "id=abc", "name=孙"}), "id");
  }
  CHECK(Snapshot(c.hub) == before);
}

TEST_CASE("cli: get of a missing id fails", "[cli][bad-input]") {
  Seeded c;
  RequireRefused(On(c.st[0].dir, {"get", "cases", "01a00000-0000-7000-8000-000000000000"}));
  RequireRefused(On(c.st[0].dir, {"get", "cases", "01a00000-0000-7000-8000-000000000000", "--json"}));
  // A row of a table that exists, asked for under another table.
  RequireRefused(On(c.st[0].dir, {"get", "applications", c.case_id, "--json"}));
  RequireRefused(On(c.st[0].dir, {"delete", "cases", "01a00000-0000-7000-8000-000000000000"}));
}

TEST_CASE("cli: a query that tries to write is refused", "[cli][bad-input]") {
  Seeded c;
  const std::string& st = c.st[0].dir;
  std::string before = Snapshot(st);
  std::string sql;
  SECTION("DELETE") { sql = "DELETE FROM cases"; }
  SECTION("INSERT") { sql = "INSERT INTO cases(id, scope) VALUES ('x', '430123/05')"; }
  SECTION("UPDATE") { sql = "UPDATE cases SET outcome = 'x'"; }
  SECTION("two statements") { sql = "SELECT 1; DELETE FROM cases"; }
  SECTION("DROP") { sql = "DROP TABLE cases"; }
  SECTION("CTE with DELETE") { sql = "WITH x AS (SELECT 1) DELETE FROM cases"; }
  SECTION("internal table") { sql = "DELETE FROM aidsync_log"; }
  SECTION("writable PRAGMA") { sql = "PRAGMA user_version = 7"; }
  RequireRefused(On(st, {"query", sql}));
  RequireRefused(On(st, {"query", sql, "--json"}));
  CHECK(Snapshot(st) == before);
  CHECK(Count(st, "cases") == 1);
}

TEST_CASE("cli: a missing data dir is an error and is not created", "[cli][bad-input]") {
  proc::TempDir tmp;
  std::string missing = tmp / "nonexistent";
  const std::vector<std::vector<std::string>> commands{
      {"list", "cases", "--json"},
      {"get", "cases", "x"},
      {"put", "consultations", "new", "topic=x"},
      {"delete", "cases", "x"},
      {"query", "SELECT 1"},
      {"status", "--json"},
      {"conflicts"},
      {"rebuild"},
      {"import", "consultations", tmp / "none.csv"},
      {"bundle", "create", "--for", "0500", "--out", tmp / "x.bundle"},
      {"bundle", "apply", tmp / "x.bundle"},
      {"resolve", "cases", "x", "outcome", "y"},
  };
  for (const auto& cmd : commands) {
    RequireRefused(On(missing, cmd));
    CHECK_FALSE(proc::Exists(missing));
  }
  RequireRefused(On("/nonexistent", {"list", "cases", "--json"}));
  CHECK_FALSE(proc::Exists("/nonexistent"));
}

TEST_CASE("cli: a corrupted data dir gives a clear error and is left alone", "[cli][bad-input]") {
  Seeded c;
  const std::string& st = c.st[0].dir;
  std::string db = st + "/replica.db";
  REQUIRE(proc::Exists(db));
  for (const char* suffix : {"-wal", "-shm"}) std::remove((db + suffix).c_str());
  SECTION("the whole file is garbage") { proc::WriteFile(db, Garbage(64 * 1024, 7)); }
  SECTION("the header survives, the pages after it do not") {
    std::string bytes = proc::ReadFile(db);
    REQUIRE(bytes.size() > 3 * 4096);
    bytes.replace(3 * 4096, bytes.size() - 3 * 4096, Garbage(bytes.size() - 3 * 4096, 11));
    proc::WriteFile(db, bytes);
  }
  std::string corrupt = proc::ReadFile(db);
  const std::vector<std::vector<std::string>> commands{
      {"status", "--json"}, {"rebuild"}, {"put", "consultations", "new", "topic=x"}, {"list", "cases", "--json"},
      {"get", "cases", c.case_id}, {"query", "SELECT count(*) FROM cases"}, {"bundle", "create", "--for", "0500",
      "--out", c.tmp / "x.bundle"},
  };
  for (const auto& cmd : commands) {
    Result r = On(st, cmd);
    RequireRefused(r);
    INFO(r.err);
    CHECK((r.err.find("replica.db") != std::string::npos || r.err.find("corrupt") != std::string::npos));
  }
  CHECK(proc::ReadFile(db) == corrupt);
  CHECK_FALSE(proc::Exists(c.tmp / "x.bundle"));
}

TEST_CASE("cli: a key file readable by others is refused", "[cli][bad-input]") {
  Seeded c;
  const std::string& st = c.st[0].dir;
  std::string before = Snapshot(st);
  std::string key = st + "/node.key";
  REQUIRE(::chmod(key.c_str(), 0644) == 0);
  for (const auto& cmd : std::vector<std::vector<std::string>>{{"put", "consultations", "new", "topic=x"},
                                                               {"status", "--json"},
                                                               {"list", "cases", "--json"},
                                                               {"bundle", "create", "--for", "0500", "--out",
                                                                c.tmp / "x.bundle"},
                                                               {"rebuild"}}) {
    RequireRefused(On(st, cmd), "node.key");
  }
  CHECK(proc::FileMode(key) == 0644);  // not silently "fixed"
  REQUIRE(::chmod(key.c_str(), 0600) == 0);
  CHECK(Snapshot(st) == before);

  // The hub's copy of the authority key: enrolment refuses it too.
  std::string akey = c.hub + "/authority.key";
  REQUIRE(::chmod(akey.c_str(), 0640) == 0);
  RequireRefused(On(c.hub, {"enroll", "--node-key", std::string(64, 'a'), "--name", "X", "--code", "0599", "--scope",
                            "430123/09", "--out", c.tmp / "x.cert"}),
                 "authority.key");
  CHECK_FALSE(proc::Exists(c.tmp / "x.cert"));
}

TEST_CASE("cli: a missing bundle file is an error", "[cli][bad-input][bundle]") {
  Seeded c;
  std::string before = Snapshot(c.hub);
  RequireRefused(On(c.hub, {"bundle", "apply", c.tmp / "no-such.bundle"}), "no-such.bundle");
  CHECK(Snapshot(c.hub) == before);
}

TEST_CASE("cli: a corrupted or truncated bundle applies nothing", "[cli][bad-input][bundle]") {
  Seeded c;
  std::string good = c.NewBundlePath();
  Ok(c.st[0].dir, {"bundle", "create", "--for", "0500", "--out", good});
  std::string bytes = proc::ReadFile(good);
  REQUIRE(bytes.size() > 256);
  std::string bad = c.tmp / "bad.bundle";
  SECTION("one byte flipped in the middle") {
    std::string b = bytes;
    b[b.size() / 2] = static_cast<char>(b[b.size() / 2] ^ 0x01);
    proc::WriteFile(bad, b);
  }
  SECTION("one byte flipped near the end") {
    std::string b = bytes;
    b[b.size() - 20] = static_cast<char>(b[b.size() - 20] ^ 0x80);
    proc::WriteFile(bad, b);
  }
  SECTION("truncated to half") { proc::WriteFile(bad, bytes.substr(0, bytes.size() / 2)); }
  SECTION("last bytes missing") { proc::WriteFile(bad, bytes.substr(0, bytes.size() - 7)); }
  SECTION("empty") { proc::WriteFile(bad, ""); }
  std::string before = Snapshot(c.hub);
  RequireRefused(On(c.hub, {"bundle", "apply", bad}));
  CHECK(Snapshot(c.hub) == before);
  CHECK(Count(c.hub, "cases") == 0);
  // The intact bundle still applies afterwards.
  Ok(On(c.hub, {"bundle", "apply", good}));
  CHECK(Count(c.hub, "cases") == 1);
}

// Known bug (sync/bundle.cc reading crypto/sealed_stream.cc): bytes after the
// sealed stream's final frame are ignored, so a damaged file applies.
TEST_CASE("cli: a bundle with bytes after its final frame is refused", "[cli][bad-input][bundle]") {
  Seeded c;
  std::string good = c.NewBundlePath();
  Ok(c.st[0].dir, {"bundle", "create", "--for", "0500", "--out", good});
  std::string bad = c.tmp / "bad.bundle";
  proc::WriteFile(bad, proc::ReadFile(good) + Garbage(100, 3));
  std::string before = Snapshot(c.hub);
  RequireRefused(On(c.hub, {"bundle", "apply", bad}));
  CHECK(Snapshot(c.hub) == before);
}

TEST_CASE("cli: a bundle made for another station is refused", "[cli][bad-input][bundle]") {
  County c(2);
  c.SeedRoster();
  Ok(c.hub, {"put", "notices", "new", "title=只给白沙镇", "issued_at=2015-03-07"});
  std::string file = c.NewBundlePath();
  Ok(c.hub, {"bundle", "create", "--for", "0513", "--out", file});
  std::string before = Snapshot(c.st[0].dir);
  RequireRefused(On(c.st[0].dir, {"bundle", "apply", file}));
  CHECK(Snapshot(c.st[0].dir) == before);
  // The right station can open it.
  Ok(On(c.st[1].dir, {"bundle", "apply", file}));
}

TEST_CASE("cli: a bundle opened by the wrong node is refused", "[cli][bad-input][bundle]") {
  County c(2);
  c.SeedRoster();
  c.SeedCase(c.st[0]);
  SECTION("the hub applies what it made for a station") {
    std::string file = c.NewBundlePath();
    Ok(c.hub, {"bundle", "create", "--for", "0512", "--out", file});
    std::string before = Snapshot(c.hub);
    RequireRefused(On(c.hub, {"bundle", "apply", file}));
    CHECK(Snapshot(c.hub) == before);
  }
  SECTION("another station applies what a station made for the hub") {
    std::string file = c.NewBundlePath();
    Ok(c.st[0].dir, {"bundle", "create", "--for", "0500", "--out", file});
    std::string before = Snapshot(c.st[1].dir);
    RequireRefused(On(c.st[1].dir, {"bundle", "apply", file}));
    CHECK(Snapshot(c.st[1].dir) == before);
    CHECK(Count(c.st[1].dir, "cases") == 0);
  }
  SECTION("a bundle for an unknown station code is not made") {
    RequireRefused(On(c.hub, {"bundle", "create", "--for", "9999", "--out", c.tmp / "x.bundle"}), "9999");
    CHECK_FALSE(proc::Exists(c.tmp / "x.bundle"));
  }
}

TEST_CASE("cli: an import with one bad row imports nothing", "[cli][bad-input][import]") {
  Seeded c;
  const std::string& st = c.st[0].dir;
  std::string file = c.tmp / "in.csv";
  SECTION("a value outside the allowed list in row 57 of 100") {
    std::string csv = "channel,topic,consulted_at\n";
    for (int i = 0; i < 100; ++i)
      csv += std::string(i == 56 ? "carrier_pigeon" : "walk_in") + ",t" + std::to_string(i) + ",2015-04-02\n";
    proc::WriteFile(file, csv);
  }
  SECTION("a row with a missing field") {
    std::string csv = "channel,topic,consulted_at\n";
    for (int i = 0; i < 100; ++i)
      csv += i == 80 ? "walk_in,short\n" : "walk_in,t" + std::to_string(i) + ",2015-04-02\n";
    proc::WriteFile(file, csv);
  }
  SECTION("an unknown column in the header") {
    proc::WriteFile(file, "channel,topic,colour\nwalk_in,a,red\nwalk_in,b,blue\n");
  }
  SECTION("JSON lines with one line not an object") {
    std::string lines;
    for (int i = 0; i < 20; ++i)
      lines += i == 13 ? "[1, 2]\n" : R"({"channel": "walk_in", "topic": "t)" + std::to_string(i) + "\"}\n";
    proc::WriteFile(file, lines);
  }
  SECTION("JSON lines with text for an INTEGER") {
    proc::WriteFile(file, R"({"case_id": "x", "satisfaction": 5})" "\n" R"({"case_id": "y", "satisfaction": "good"})"
                          "\n");
  }
  std::string table = proc::ReadFile(file).find("satisfaction") != std::string::npos ? "return_visits"
                                                                                      : "consultations";
  std::string before = Snapshot(st);
  int64_t count = Count(st, table);
  RequireRefused(On(st, {"import", table, file}), "line");
  CHECK(Count(st, table) == count);
  CHECK(Snapshot(st) == before);
}

TEST_CASE("cli: an import of a missing file is an error", "[cli][bad-input][import]") {
  Seeded c;
  std::string before = Snapshot(c.st[0].dir);
  RequireRefused(On(c.st[0].dir, {"import", "consultations", c.tmp / "missing.csv"}), "missing.csv");
  RequireRefused(On(c.st[0].dir, {"import", "no_such_table", c.tmp / "missing.csv"}));
  CHECK(Snapshot(c.st[0].dir) == before);
}

TEST_CASE("cli: a station may not write reference tables", "[cli][bad-input][authority]") {
  Seeded c;
  const std::string& st = c.st[0].dir;
  std::string before = Snapshot(st);
  RequireRefused(On(st, {"put", "lawyers", "new", "name=冒充", "kind=lawyer", "practice_years=20"}), "lawyers");
  RequireRefused(On(st, {"put", "lawyers", c.intern, "kind=lawyer", "practice_years=20"}), "lawyers");
  RequireRefused(On(st, {"delete", "lawyers", c.junior}), "lawyers");
  RequireRefused(On(st, {"put", "notices", "new", "title=假通知"}), "notices");
  RequireRefused(On(st, {"put", "duty_rota", "new", "station_code=0512"}), "duty_rota");
  RequireRefused(On(st, {"put", "stations", "new", "code=0599"}), "stations");
  std::string jsonl = c.tmp / "l.jsonl";
  proc::WriteFile(jsonl, R"({"name": "冒充", "kind": "lawyer", "practice_years": 20})" "\n");
  RequireRefused(On(st, {"import", "lawyers", jsonl}), "lawyers");
  CHECK(Snapshot(st) == before);
}

TEST_CASE("cli: a station may not write outside its scope", "[cli][bad-input][authority]") {
  Seeded c;
  const std::string& st = c.st[0].dir;
  std::string before = Snapshot(st);
  SECTION("a sibling township via --scope") {
    RequireRefused(On(st, {"put", "consultations", "new", "topic=x", "--scope", "430123/06"}), "430123/06");
  }
  SECTION("a sibling township via scope=") {
    RequireRefused(On(st, {"put", "consultations", "new", "topic=x", "scope=430123/06"}), "430123/06");
  }
  SECTION("the county above it") {
    RequireRefused(On(st, {"put", "consultations", "new", "topic=x", "--scope", "430123"}), "430123");
  }
  SECTION("a scope that merely shares a prefix") {
    RequireRefused(On(st, {"put", "consultations", "new", "topic=x", "--scope", "430123/050"}), "430123/050");
  }
  SECTION("another scope for an existing row") {
    RequireRefused(On(st, {"put", "cases", c.case_id, "outcome=x", "--scope", "430123/05/017"}), "scope");
  }
  SECTION("an import naming another scope") {
    std::string file = c.tmp / "in.csv";
    proc::WriteFile(file, "scope,channel,topic\n430123/05,walk_in,a\n430123/06,walk_in,b\n");
    RequireRefused(On(st, {"import", "consultations", file}), "430123/06");
  }
  CHECK(Snapshot(st) == before);
}

TEST_CASE("cli: an unknown subcommand is an error", "[cli][bad-input]") {
  proc::TempDir tmp;
  RequireRefused(proc::Aidsync({"frobnicate"}), "frobnicate");
  RequireRefused(proc::Aidsync({"--data", tmp / "d", "frobnicate", "--json"}), "frobnicate");
  RequireRefused(proc::Aidsync({"bundle", "frobnicate"}), "frobnicate");
  RequireRefused(proc::Aidsync({}));
  RequireRefused(proc::Aidsync({"list", "cases", "--no-such-flag"}), "--no-such-flag");
  CHECK_FALSE(proc::Exists(tmp / "d"));
}

TEST_CASE("cli: domain rules are enforced at write time", "[cli][bad-input][rules]") {
  Seeded c;
  const std::string& st = c.st[0].dir;
  std::string criminal_app = Ok(st, {"put", "applications", "new", "applicant_name=陈某", "category=criminal",
                                     "received_at=2015-04-02", "status=approved", "decision_basis=刑事诉讼法第三十四条"});
  std::string before = Snapshot(st);
  SECTION("an approval without its basis") {
    RequireRefused(On(st, {"put", "applications", "new", "applicant_name=x", "category=civil", "status=approved",
                           "received_at=2015-04-02"}),
                   "basis");
  }
  SECTION("a rejection without its basis") {
    RequireRefused(On(st, {"put", "applications", "new", "applicant_name=x", "category=civil", "status=rejected"}),
                   "basis");
  }
  SECTION("an existing application approved without a basis") {
    std::string app =
        Ok(st, {"put", "applications", "new", "applicant_name=x", "category=civil", "status=received"});
    before = Snapshot(st);
    RequireRefused(On(st, {"put", "applications", app, "status=rejected"}), "basis");
  }
  SECTION("a criminal case to a lawyer with two years of practice") {
    RequireRefused(On(st, {"put", "cases", "new", "application_id=" + criminal_app, "lawyer_id=" + c.junior,
                           "category=criminal", "status=assigned", "assigned_at=2015-04-03"}),
                   "three years");
  }
  SECTION("an existing criminal case reassigned to a junior lawyer") {
    std::string cs = Ok(st, {"put", "cases", "new", "application_id=" + criminal_app, "lawyer_id=" + c.senior,
                             "category=criminal", "status=assigned", "assigned_at=2015-04-03"});
    before = Snapshot(st);
    RequireRefused(On(st, {"put", "cases", cs, "lawyer_id=" + c.junior}), "three years");
  }
  SECTION("a case to an intern") {
    RequireRefused(On(st, {"put", "cases", "new", "application_id=" + c.app, "lawyer_id=" + c.intern,
                           "category=civil", "status=assigned", "assigned_at=2015-04-03"}),
                   "intern");
  }
  SECTION("a case to an unknown lawyer") {
    RequireRefused(On(st, {"put", "cases", "new", "application_id=" + c.app,
                           "lawyer_id=01a00000-0000-7000-8000-000000000000", "category=civil", "status=assigned"}));
  }
  SECTION("an import with one case for an intern") {
    std::string file = c.tmp / "cases.csv";
    std::string csv = "application_id,lawyer_id,category,status\n";
    for (int i = 0; i < 30; ++i)
      csv += c.app + "," + (i == 17 ? c.intern : c.senior) + ",civil,assigned\n";
    proc::WriteFile(file, csv);
    RequireRefused(On(st, {"import", "cases", file}), "intern");
  }
  CHECK(Snapshot(st) == before);
  // The notice counter was not consumed by the refused writes.
  std::string next = Ok(st, {"put", "cases", "new", "application_id=" + c.app, "lawyer_id=" + c.senior,
                             "category=civil", "status=assigned", "assigned_at=2015-04-05"});
  json row = ParseJson(Ok(st, {"get", "cases", next, "--json"}));
  int64_t cases = ParseJson(Query(st, "SELECT count(*) AS n FROM cases WHERE assigned_at LIKE '2015%'"))
                      .at(0)
                      .at("n")
                      .get<int64_t>();
  char expected[64];
  std::snprintf(expected, sizeof expected, "(2015)法援字第0512-%04lld号", static_cast<long long>(cases));
  CHECK(row.at("notice_number") == std::string(expected));
}

// Regression (red-team review): a station could type a notice number under
// another station's code (the hub's `0500-999999` exhausted the hub's year
// once received), reuse one already issued, or change a case's number.
TEST_CASE("cli: a typed notice_number must be this station's own, unused, and never changes",
          "[cli][bad-input][notice]") {
  Seeded c;
  const std::string& st = c.st[0].dir;
  const std::string issued = ParseJson(Ok(st, {"get", "cases", c.case_id, "--json"})).at("notice_number");
  REQUIRE(issued == "(2015)法援字第0512-0001号");
  std::vector<std::string> new_case{"put",        "cases",          "new", "application_id=" + c.app,
                                    "lawyer_id=" + c.senior, "category=civil", "status=assigned",
                                    "assigned_at=2015-04-05"};
  auto with = [&](const std::string& notice) {
    std::vector<std::string> args = new_case;
    args.push_back("notice_number=" + notice);
    return args;
  };
  std::string before = Snapshot(st);
  SECTION("under the hub's code") {
    RequireRefused(On(st, with("(2015)法援字第0500-999999号")), "notice_number");
  }
  SECTION("under another station's code") {
    RequireRefused(On(st, with("(2015)法援字第0513-0001号")), "notice_number");
  }
  SECTION("not of the form this station issues") {
    RequireRefused(On(st, with("法援字0512-0077")), "notice_number");
    RequireRefused(On(st, with("(2015)法援字第0512-77号")), "notice_number");
  }
  SECTION("already used by another case") {
    RequireRefused(On(st, with(issued)), "already used");
  }
  SECTION("used by a deleted case") {
    Ok(st, {"delete", "cases", c.case_id});
    before = Snapshot(st);
    RequireRefused(On(st, with(issued)), "already used");
  }
  SECTION("changing a case's number") {
    RequireRefused(On(st, {"put", "cases", c.case_id, "notice_number=(2015)法援字第0512-0077号"}), "never changes");
  }
  SECTION("an import with one row under another code") {
    std::string file = c.tmp / "cases.csv";
    std::string csv = "application_id,lawyer_id,category,status,notice_number\n";
    for (int i = 0; i < 5; ++i)
      csv += c.app + "," + c.senior + ",civil,assigned,(2015)法援字第" + (i == 3 ? "0500" : "0512") + "-00" +
             std::to_string(20 + i) + "号\n";
    proc::WriteFile(file, csv);
    RequireRefused(On(st, {"import", "cases", file}), "line 5");
  }
  SECTION("an import with two rows of one number") {
    std::string file = c.tmp / "cases.csv";
    std::string csv = "application_id,lawyer_id,category,status,notice_number\n";
    for (int i = 0; i < 5; ++i)
      csv += c.app + "," + c.senior + ",civil,assigned,(2015)法援字第0512-00" + std::to_string(i == 4 ? 20 : 20 + i) +
             "号\n";
    proc::WriteFile(file, csv);
    RequireRefused(On(st, {"import", "cases", file}), "already used");
  }
  CHECK(Snapshot(st) == before);
  // A number of this station's, unused, is taken, and the same number again
  // on the same case changes nothing.
  std::string typed = Ok(st, with("(2015)法援字第0512-0077号"));
  Ok(st, {"put", "cases", typed, "notice_number=(2015)法援字第0512-0077号"});
  CHECK(ParseJson(Ok(st, {"get", "cases", typed, "--json"})).at("notice_number") == "(2015)法援字第0512-0077号");
}

}  // namespace

// Regression: `enroll --out` used to replace an existing file.
TEST_CASE("cli: enroll never overwrites an existing --out file", "[cli][bad-input][enroll]") {
  County c(0);
  std::string existing = c.tmp / "keep.cert";
  proc::WriteFile(existing, "a file that must survive");
  std::string key = Ok(On(c.tmp / "st", {"init", "--name", "城关镇工作站", "--code", "0512", "--scope", "430123/05",
                                          "--authority", c.authority}));
  std::string before = Snapshot(c.hub);
  RequireRefused(On(c.hub, {"enroll", "--node-key", key, "--name", "城关镇工作站", "--code", "0512", "--scope",
                            "430123/05", "--out", existing}),
                 "exists");
  CHECK(proc::ReadFile(existing) == "a file that must survive");
  CHECK(Snapshot(c.hub) == before);
}

TEST_CASE("cli: a value with control characters or invalid UTF-8 is refused at put, naming the column",
          "[cli][bad-input][text]") {
  Seeded c;
  const std::string& st = c.st[0].dir;
  std::string before = Snapshot(st);
  struct Bad {
    std::string column, value;
  };
  const std::vector<Bad> bad{
      {"topic", "\x1b]0;owned\a\x1b[2J"},    // ESC, BEL: sets the terminal title, clears it
      {"summary", "ok\x1b[31mred"},          // free text takes newlines and tabs, not ESC
      {"summary", "bell\a"},                 //
      {"topic", "two\nlines"},               // a one-line column
      {"topic", "tab\there"},                //
      {"topic", "cr\rforged"},               //
      {"summary", "del\x7f"},                // DEL
      {"summary", "c1 \xc2\x9b" "31m"},      // U+009B, the one-byte CSI
      {"topic", "latin1 caf\xe9"},           // invalid UTF-8
      {"topic", "overlong \xc0\xaf"},        //
      {"topic", "surrogate \xed\xa0\x80"},   //
  };
  for (const auto& b : bad) {
    INFO(b.column << " " << b.value);
    Result r = On(st, {"put", "consultations", "new", "channel=walk_in", b.column + "=" + b.value});
    RequireRefused(r, "column '" + b.column + "'");
    // The refusal itself never echoes the control characters.
    CHECK(r.err.find('\x1b') == std::string::npos);
  }
  RequireRefused(On(st, {"put", "cases", c.case_id, "outcome=\x1b[2J"}), "outcome");
  RequireRefused(On(st, {"resolve", "cases", c.case_id, "outcome", "\x07"}), "outcome");
  CHECK(Snapshot(st) == before);

  // Newlines and tabs are fine in free text; any printable UTF-8 anywhere.
  std::string id = Ok(On(st, {"put", "consultations", "new", "channel=walk_in", "topic=工伤 «赔偿» ✓",
                              "summary=第一行\n第二行\twith a tab"}));
  CHECK(ParseJson(Query(st, "SELECT topic, summary FROM consultations WHERE id = '" + id + "'")) ==
        json::parse(R"([{"topic": "工伤 «赔偿» ✓", "summary": "第一行\n第二行\twith a tab"}])"));
}

TEST_CASE("cli: an import with a control character or NUL in any row stores none of its rows",
          "[cli][bad-input][text]") {
  Seeded c;
  const std::string& st = c.st[0].dir;
  std::string before = Snapshot(st);
  std::string file;
  std::string column;
  SECTION("ESC in a CSV row") {
    file = c.tmp / "esc.csv";
    proc::WriteFile(file, "channel,topic,summary\nwalk_in,a,ok\nwalk_in,b,\"fine\nover lines\"\nphone,\x1b[2Jc,x\n");
    column = "topic";
  }
  SECTION("NUL in a CSV row") {
    file = c.tmp / "nul.csv";
    static const char kCsv[] = "channel,topic,summary\nwalk_in,a,ok\nphone,b,nul\0here\n";
    proc::WriteFile(file, std::string(kCsv, sizeof kCsv - 1));
    column = "summary";
  }
  SECTION("NUL in a JSON line") {
    file = c.tmp / "nul.jsonl";
    proc::WriteFile(file, "{\"channel\": \"walk_in\", \"topic\": \"a\"}\n"
                          "{\"channel\": \"phone\", \"topic\": \"b\\u0000c\"}\n");
    column = "topic";
  }
  SECTION("invalid UTF-8 (Latin-1) in a CSV row") {
    file = c.tmp / "latin1.csv";
    proc::WriteFile(file, "channel,topic\nwalk_in,ok\nphone,caf\xe9\n");
    column = "topic";
  }
  RequireRefused(On(st, {"import", "consultations", file}), column);
  CHECK(Snapshot(st) == before);
}

TEST_CASE("cli: query may only read this node's tables", "[cli][bad-input][query]") {
  Seeded c;
  const std::string& st = c.st[0].dir;
  std::string before = Snapshot(st);
  proc::WriteFile(c.tmp / "other.db", "");
  const std::vector<std::pair<std::string, std::string>> refused{
      // A native pointer out (one argument) and in (two): the FTS3 tokenizer.
      {"SELECT fts3_tokenizer('simple')", "fts3_tokenizer"},
      {"SELECT fts3_tokenizer('simple', x'4141414141414141')", "fts3_tokenizer"},
      {"ATTACH '" + c.tmp / "other.db" + "' AS other", "ATTACH"},
      {"SELECT * FROM other.sqlite_master", ""},
      {"PRAGMA writable_schema = 1", "writable_schema"},
      {"PRAGMA writable_schema", "writable_schema"},
      {"PRAGMA journal_mode = DELETE", "journal_mode"},
      {"SELECT load_extension('/nonexistent/x.so')", "load_extension"},
      {"SELECT readfile('" + st + "/node.key')", "readfile"},
      {"SELECT edit('x', 'true')", "edit"},
      {"SELECT writefile('" + c.tmp / "out" + "', 'x')", "writefile"},
      {"SELECT * FROM temp.sqlite_master", ""},
      {"UPDATE sqlite_master SET sql = ''", ""},
  };
  for (const auto& [sql, mention] : refused) {
    INFO(sql);
    RequireRefused(On(st, {"query", sql}), mention);
    RequireRefused(On(st, {"query", sql, "--json"}), mention);
  }
  CHECK_FALSE(proc::Exists(c.tmp / "out"));
  CHECK(proc::ReadFile(c.tmp / "other.db").empty());
  CHECK(Snapshot(st) == before);

  // Real reads still work: a join, an aggregate, a recursive CTE, a window, JSON, the schema and integrity pragmas.
  CHECK(ParseJson(Query(st, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3), "
                            "c AS (SELECT a.id AS app, k.category AS cat FROM cases k JOIN applications a "
                            "ON a.id = k.application_id) "
                            "SELECT (SELECT sum(i) FROM n) AS s, count(*) AS cases, max(cat) AS cat, "
                            "json_object('k', 1) AS j, row_number() OVER () AS r FROM c")) ==
        json::parse(R"([{"s": 6, "cases": 1, "cat": "civil", "j": "{\"k\":1}", "r": 1}])"));
  CHECK(Query(st, "PRAGMA integrity_check") == kIntegrityOk);
  CHECK(ParseJson(Query(st, "SELECT count(*) AS n FROM pragma_table_info('cases') WHERE name = 'outcome'")) ==
        json::parse(R"([{"n": 1}])"));
}

TEST_CASE("cli: init never takes over a directory it did not make", "[cli][bad-input][init]") {
  proc::TempDir tmp;
  const std::string authority = Ok(proc::Aidsync({"authority", "init", "--out", tmp / "authority.key"}));
  auto init = [&](const std::string& dir, const std::string& key) {
    return On(dir, {"init", "--name", "城关镇工作站", "--code", "0512", "--scope", "430123/05", "--authority", key});
  };

  SECTION("a shared 1777 directory, empty or with another user's file") {
    std::string dir = tmp / "shared";
    REQUIRE(::mkdir(dir.c_str(), 0700) == 0);
    REQUIRE(::chmod(dir.c_str(), 01777) == 0);
    RequireRefused(init(dir, authority), "mode 1777");
    CHECK(proc::FileMode(dir) == 01777);
    proc::WriteFile(dir + "/notes.txt", "someone's notes");
    RequireRefused(init(dir, authority));
    CHECK(proc::FileMode(dir) == 01777);
    CHECK(proc::ReadFile(dir + "/notes.txt") == "someone's notes");
    CHECK_FALSE(proc::Exists(dir + "/replica.db"));
    CHECK_FALSE(proc::Exists(dir + "/node.key"));
    CHECK_FALSE(proc::Exists(dir + "/node.key.partial"));
  }
  SECTION("a group-readable directory") {
    std::string dir = tmp / "group";
    REQUIRE(::mkdir(dir.c_str(), 0700) == 0);
    REQUIRE(::chmod(dir.c_str(), 0750) == 0);
    RequireRefused(init(dir, authority), "chmod 700");
    CHECK(proc::FileMode(dir) == 0750);
  }
  SECTION("a private directory holding a replica.db that is not aidsync's") {
    std::string dir = tmp / "foreign";
    REQUIRE(::mkdir(dir.c_str(), 0700) == 0);
    proc::WriteFile(dir + "/replica.db", "another program's database");
    RequireRefused(init(dir, authority), "replica.db");
    CHECK(proc::ReadFile(dir + "/replica.db") == "another program's database");
    CHECK_FALSE(proc::Exists(dir + "/node.key"));
    CHECK_FALSE(proc::Exists(dir + "/node.key.partial"));
  }
  SECTION("a private directory holding anything else") {
    std::string dir = tmp / "busy";
    REQUIRE(::mkdir(dir.c_str(), 0700) == 0);
    proc::WriteFile(dir + "/thesis.tex", "\\documentclass{article}");
    RequireRefused(init(dir, authority), "thesis.tex");
    CHECK(proc::ReadFile(dir + "/thesis.tex") == "\\documentclass{article}");
    CHECK_FALSE(proc::Exists(dir + "/replica.db"));
  }
  SECTION("an authority key that no one can sign for") {
    for (const std::string& key : {std::string(64, '0'),                 // all zero
                                   "01" + std::string(62, '0'),          // the identity point
                                   "ec" + std::string(60, 'f') + "7f",   // order 2 (y = -1)
                                   "ed" + std::string(60, 'f') + "7f",   // non-canonical (y = p)
                                   std::string(64, 'f')}) {              // non-canonical, sign bit set
      INFO(key);
      RequireRefused(init(tmp / "st", key), "authority");
      CHECK_FALSE(proc::Exists(tmp / "st"));
    }
    RequireRefused(init(tmp / "st", std::string(63, 'a')), "64 hex");
    RequireRefused(init(tmp / "st", std::string(64, 'g')), "hex");
    CHECK_FALSE(proc::Exists(tmp / "st"));
  }
  SECTION("a new directory, or an empty private one, works") {
    CHECK(IsHex64(Ok(init(tmp / "new", authority))));
    CHECK(proc::FileMode(tmp / "new") == 0700);
    std::string dir = tmp / "empty";
    REQUIRE(::mkdir(dir.c_str(), 0700) == 0);
    CHECK(IsHex64(Ok(init(dir, authority))));
    CHECK(proc::FileMode(dir) == 0700);
    CHECK(Ok(On(dir, {"status", "--json"})).find("0512") != std::string::npos);
    RequireRefused(init(dir, authority), "already holds a node");
  }
}

namespace {

// The certificate an enrolment file holds for its station, and the file's hub certificate.
std::pair<aidsync::Certificate, std::string> ReadEnrolmentFile(const std::string& path, const std::string& authority) {
  auto enrolment = aidsync::DecodeEnrolment(proc::ReadFile(path));
  REQUIRE(enrolment.ok());
  auto authority_key = aidsync::PublicKey::FromHex(authority);
  REQUIRE(authority_key.ok());
  auto cert = aidsync::Certificate::Parse(enrolment->certificate, *authority_key);
  REQUIRE(cert.ok());
  return {*cert, enrolment->hub_certificate};
}

// An enrolment file at `path` for `fields`, signed with the county's authority key.
void WriteEnrolmentFile(const County& c, const aidsync::CertificateFields& fields, const std::string& hub_cert,
                        const std::string& path) {
  auto authority = aidsync::SigningKey::Load(c.authority_key);
  REQUIRE(authority.ok());
  auto cert = aidsync::Certificate::Issue(fields, *authority);
  REQUIRE(cert.ok());
  proc::WriteFile(path, aidsync::EncodeEnrolment({cert->bytes(), hub_cert}));
}

// What install-cert may change: the node's identity and certificate, and its trust store.
std::string InstalledState(const std::string& data) {
  return Snapshot(data) + Query(data, "SELECT key, value FROM aidsync_node ORDER BY key") +
         Query(data, "SELECT lower(hex(node_key)), code, scope, issued_at, lower(hex(cert)) FROM aidsync_certificates "
                     "ORDER BY node_key");
}

}  // namespace

// Regression: install-cert used to accept any certificate of the node's key,
// so a village could go back to an older, wider certificate and sync with it.
TEST_CASE("cli: install-cert refuses a certificate older than the one the node holds, and changes nothing",
          "[cli][bad-input][enroll]") {
  County c(0);
  Station& village = c.AddStation("新华村联系点", "0517", "430123/05/017");
  auto [current, hub_cert] = ReadEnrolmentFile(c.tmp / "0517.cert", c.authority);
  aidsync::CertificateFields fields = current.fields();

  // Issued a minute earlier, for the whole township: refused.
  aidsync::CertificateFields older = fields;
  older.scope = "430123/05";
  older.issued_at_ms -= 60 * 1000;
  const std::string older_file = c.tmp / "0517-older.cert";
  WriteEnrolmentFile(c, older, hub_cert, older_file);
  const std::string before = InstalledState(village.dir);
  RequireRefused(On(village.dir, {"install-cert", older_file}), "newer certificate");
  CHECK(InstalledState(village.dir) == before);
  CHECK(ParseJson(Ok(village.dir, {"status", "--json"})).at("node").at("scope") == "430123/05/017");

  // A different certificate issued at the same moment is no newer either.
  aidsync::CertificateFields same_time = fields;
  same_time.scope = "430123/05";
  const std::string same_time_file = c.tmp / "0517-same-time.cert";
  WriteEnrolmentFile(c, same_time, hub_cert, same_time_file);
  RequireRefused(On(village.dir, {"install-cert", same_time_file}), "newer certificate");
  CHECK(InstalledState(village.dir) == before);

  // The installed file again is fine, and so is a newer certificate; after
  // it, the one that was installed is the older one.
  Ok(On(village.dir, {"install-cert", c.tmp / "0517.cert"}));
  CHECK(InstalledState(village.dir) == before);
  aidsync::CertificateFields newer = fields;
  newer.name = "新华村法律援助联系点";
  newer.issued_at_ms += 60 * 1000;
  const std::string newer_file = c.tmp / "0517-newer.cert";
  WriteEnrolmentFile(c, newer, hub_cert, newer_file);
  Ok(On(village.dir, {"install-cert", newer_file}));
  CHECK(ParseJson(Ok(village.dir, {"status", "--json"})).at("node").at("name") == "新华村法律援助联系点");
  const std::string after = InstalledState(village.dir);
  RequireRefused(On(village.dir, {"install-cert", c.tmp / "0517.cert"}), "newer certificate");
  CHECK(InstalledState(village.dir) == after);
}
