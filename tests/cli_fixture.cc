#include "tests/cli_fixture.h"

#include <catch2/catch.hpp>

#include <regex>
#include <tuple>

namespace aidsync::clitest {

using Catch::Matchers::Contains;
using nlohmann::json;
using proc::Result;

const std::vector<std::string> kReferenceTables{"stations", "lawyers", "notices", "targets", "duty_rota"};
const std::vector<std::string> kCaseTables{"applications",  "cases",      "consultations",  "hotline_tickets",
                                           "return_visits", "complaints", "quality_reviews"};

std::vector<std::string> AllTables() {
  std::vector<std::string> all = kReferenceTables;
  all.insert(all.end(), kCaseTables.begin(), kCaseTables.end());
  return all;
}

Result On(const std::string& data, std::vector<std::string> args) {
  args.insert(args.begin(), {"--data", data});
  return proc::Aidsync(std::move(args));
}

std::string Ok(const Result& r) {
  INFO(r.Describe());
  REQUIRE(r.term_signal == 0);
  REQUIRE(r.exit_code == 0);
  return r.Out();
}

std::string Ok(const std::string& data, std::vector<std::string> args) { return Ok(On(data, std::move(args))); }

void RequireRefused(const Result& r, const std::string& mention) {
  INFO(r.Describe());
  CHECK(r.term_signal == 0);
  CHECK(r.exit_code != 0);
  CHECK(r.out.empty());
  REQUIRE(r.ErrLines().size() == 1);
  CHECK(r.err.back() == '\n');
  CHECK(r.ErrLines()[0].size() > 10);
  if (!mention.empty()) CHECK_THAT(r.err, Contains(mention, Catch::CaseSensitive::No));
}

json ParseJson(const std::string& text) {
  INFO(text);
  json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  REQUIRE(!doc.is_discarded());
  return doc;
}

std::string Dump(const json& doc) { return doc.dump(-1, ' ', false, json::error_handler_t::replace); }

std::string Query(const std::string& data, const std::string& sql) { return Ok(data, {"query", sql, "--json"}); }

int64_t Count(const std::string& data, const std::string& table) {
  json rows = ParseJson(Query(data, "SELECT count(*) AS n FROM " + table));
  return rows.at(0).at("n").get<int64_t>();
}

std::string ListJson(const std::string& data, const std::string& table) {
  return Ok(data, {"list", table, "--json"});
}

std::string ListAll(const std::string& data) {
  std::string out;
  for (const auto& t : AllTables()) out += t + " " + ListJson(data, t) + "\n";
  return out;
}

std::string Snapshot(const std::string& data) {
  std::string out = ListAll(data);
  json status = ParseJson(Ok(data, {"status", "--json"}));
  out += "log " + Dump(status.at("log")) + "\n";
  out += "conflicts " + Dump(status.at("conflicts_open")) + " forks " + Dump(status.at("forks")) + "\n";
  out += Query(data, "SELECT count(*) AS n, max(id) AS last, max(hlc) AS hlc FROM aidsync_log") + "\n";
  out += Query(data, "SELECT * FROM aidsync_notice_counters ORDER BY 1") + "\n";
  out += Query(data, "SELECT (SELECT count(*) FROM aidsync_held) AS held, "
                     "(SELECT count(*) FROM aidsync_row_meta) AS meta") + "\n";
  return out;
}

bool IsHex64(const std::string& s) { return std::regex_match(s, std::regex("[0-9a-f]{64}")); }
bool IsRowId(const std::string& s) { return std::regex_match(s, std::regex("[0-9A-Za-z._:-]{1,64}")); }

County::County(int stations) {
  authority_key = tmp / "authority.key";
  authority = Ok(proc::Aidsync({"authority", "init", "--out", authority_key}));
  hub = tmp / "hub";
  hub_key = Ok(On(hub, {"init", "--name", "县法律援助中心", "--code", "0500", "--scope", "430123", "--authority",
                        authority, "--hub", "--authority-key", authority_key}));
  static const char* kStations[][3] = {
      {"城关镇工作站", "0512", "430123/05"}, {"白沙镇工作站", "0513", "430123/06"}, {"新华村联系点", "0514", "430123/05/017"}};
  for (int i = 0; i < stations; ++i) AddStation(kStations[i][0], kStations[i][1], kStations[i][2]);
}

Station& County::AddStation(const std::string& name, const std::string& code, const std::string& scope) {
  Station s{name, code, scope, tmp / ("station-" + code), ""};
  s.key = Ok(On(s.dir, {"init", "--name", name, "--code", code, "--scope", scope, "--authority", authority}));
  std::string cert = tmp / (code + ".cert");
  Ok(On(hub, {"enroll", "--node-key", s.key, "--name", name, "--code", code, "--scope", scope, "--out", cert}));
  Ok(On(s.dir, {"install-cert", cert}));
  st.push_back(s);
  return st.back();
}

Result County::Carry(const std::string& from, const std::string& code, const std::string& to) {
  std::string file = NewBundlePath();
  Ok(On(from, {"bundle", "create", "--for", code, "--out", file}));
  return On(to, {"bundle", "apply", file});
}

void County::Down(const Station& s) { Ok(Carry(hub, s.code, s.dir)); }
void County::Up(const Station& s) { Ok(Carry(s.dir, "0500", hub)); }

std::string County::NewBundlePath() { return tmp / ("b" + std::to_string(++bundles_) + ".bundle"); }

void County::SeedRoster() {
  senior = Ok(hub, {"put", "lawyers", "new", "name=王建国", "firm=正义律师事务所", "kind=lawyer", "practice_years=8",
                    "phone=13800000001", "active=1"});
  junior = Ok(hub, {"put", "lawyers", "new", "name=赵新", "firm=正义律师事务所", "kind=lawyer", "practice_years=2",
                    "active=1"});
  intern = Ok(hub, {"put", "lawyers", "new", "name=李晓", "kind=intern", "practice_years=1", "active=1"});
  for (const auto& s : st) Down(s);
}

std::pair<std::string, std::string> County::SeedCase(const Station& s) {
  std::string app = Ok(s.dir, {"put", "applications", "new", "applicant_name=张桂兰", "id_number=430123195804120021",
                               "category=civil", "matter=追索劳动报酬", "income_status=low_income",
                               "received_at=2015-04-02", "status=approved", "decision_basis=《法律援助条例》第十条",
                               "decided_at=2015-04-03"});
  std::string c = Ok(s.dir, {"put", "cases", "new", "application_id=" + app, "lawyer_id=" + senior,
                             "category=civil", "assigned_at=2015-04-03", "status=assigned", "funding=regular"});
  return {app, c};
}

Seeded::Seeded() : County(1) {
  SeedRoster();
  std::tie(app, case_id) = SeedCase(st[0]);
}

std::string Garbage(size_t n, uint64_t seed) {
  std::string out(n, '\0');
  for (auto& c : out) {
    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    c = static_cast<char>(seed >> 56);
  }
  return out;
}

}  // namespace aidsync::clitest
