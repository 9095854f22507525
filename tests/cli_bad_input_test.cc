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
