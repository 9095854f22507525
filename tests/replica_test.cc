// Tests for sync/replica.h and sync/local_write.h: local writes and their
// validation, domain rules, notice numbers, conflicts, deletes, remote apply
// (duplicates, held, rejected, forks), rebuild and tamper detection.
#include "sync/replica.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <string>
#include <thread>
#include <vector>

#include "sync/changeset.h"
#include "sync/local_write.h"
#include "tests/cluster_fixture.h"

namespace aidsync {
namespace {

using testing::Cluster;
using testing::Node;
using testing::TextValues;
using testing::DeleteRow;
using testing::Dump;
using testing::DumpConflicts;
using testing::DumpTables;
using testing::Exchange;
using testing::ExchangeBoth;
using testing::Field;
using testing::OwnEnvelopes;
using testing::PutRow;
using testing::PutRowSummary;
using testing::TotalChangesets;

constexpr const char* kTownship = "430123/05";
constexpr const char* kStationName = "城关镇工作站";

// Everything a refused write must leave untouched.
std::string Snapshot(Replica& r) {
  return Dump(r) + "[log]\n" + std::to_string(TotalChangesets(r)) + "\n";
}

std::optional<std::string> TextField(Replica& r, const std::string& table, const std::string& id,
                                     const std::string& column) {
  auto v = Field(r, table, id, column);
  if (!v) return std::nullopt;
  return v->ToDisplay();
}

bool Mentions(const std::vector<std::string>& lines, const std::string& a, const std::string& b = "") {
  for (const auto& line : lines)
    if (line.find(a) != std::string::npos && line.find(b) != std::string::npos) return true;
  return false;
}

ReplicaStatus StatusOf(Replica& r) {
  auto s = r.GetStatus();
  REQUIRE_OK(s);
  return *s;
}

// A changeset built by hand, for inputs a well-behaved node never produces.
SignedChangeset HandBuilt(const SigningKey& key, const std::string& scope, TableClass cls, uint64_t seq,
                          std::optional<Digest> prev, uint64_t hlc, std::vector<TableOpsList> tables) {
  ChangesetContent c;
  c.author = key.public_key();
  c.scope = scope;
  c.cls = cls;
  c.seq = seq;
  c.prev = prev;
  c.hlc = hlc;
  c.schema_version = 1;
  c.tables = std::move(tables);
  auto signed_cs = SignChangeset(c, key);
  REQUIRE_OK(signed_cs);
  return *signed_cs;
}

// One table op writing text columns of one new row.
TableOpsList OneRow(const std::string& table, const std::string& id, const TextValues& values) {
  TableOpsList ops{table, {}, {}};
  RowOp row{id, false, {}};
  for (const auto& [column, text] : values) {
    row.fields.push_back(FieldWriteOp{static_cast<uint16_t>(ops.columns.size()), {}, false, Value::Text(text)});
    ops.columns.push_back(column);
  }
  ops.rows.push_back(row);
  return ops;
}

uint64_t HlcOf(const std::string& envelope) {
  Digest id;
  auto c = DecodeChangeset(envelope, &id);
  REQUIRE_OK(c);
  return c->hlc;
}

Digest IdOf(const std::string& envelope) {
  Digest id;
  REQUIRE_OK(DecodeChangeset(envelope, &id));
  return id;
}

// The hub's lawyer roster for rule tests, sent down to `station`.
struct Roster {
  std::string senior, junior, intern, assistant, grassroots;
};
Roster MakeRoster(Replica& hub) {
  Roster r;
  auto put = [&](const std::string& name, const std::string& kind, const std::string& years) {
    auto id = PutRow(hub, "lawyers", std::nullopt,
                     {{"name", name}, {"firm", "湘法律师事务所"}, {"kind", kind}, {"practice_years", years},
                      {"active", "1"}});
    REQUIRE_OK(id);
    return *id;
  };
  r.senior = put("李律师", "lawyer", "5");
  r.junior = put("张律师", "lawyer", "2");
  r.intern = put("实习生", "intern", "1");
  r.assistant = put("助理", "assistant", "4");
  r.grassroots = put("基层法律工作者", "grassroots", "10");
  return r;
}

}  // namespace

// ---------------------------------------------------------------- local writes

TEST_CASE("replica: put, get and list a row", "[replica]") {
  Cluster cluster;
  Replica& st = *cluster.AddStation(kStationName, "0512", kTownship).replica;
  auto id = PutRow(st, "consultations", std::nullopt,
                   {{"channel", "walk_in"}, {"topic", "劳动争议"}, {"consulted_at", "2024-06-15"}});
  REQUIRE_OK(id);
  CHECK(id->size() == 36);  // a UUIDv7

  auto row = st.Get("consultations", *id);
  REQUIRE_OK(row);
  REQUIRE(row->has_value());
  const Row& r = **row;
  REQUIRE(r.size() == 2 + st.schema().FindTable("consultations")->columns.size());
  CHECK(r[0] == std::pair<std::string, Value>{"id", Value::Text(*id)});
  CHECK(r[1] == std::pair<std::string, Value>{"scope", Value::Text(kTownship)});
  CHECK(r[2] == std::pair<std::string, Value>{"channel", Value::Text("walk_in")});
  CHECK(r[3] == std::pair<std::string, Value>{"topic", Value::Text("劳动争议")});
  CHECK(r[4].second.is_null());  // summary never written
  CHECK(r[5] == std::pair<std::string, Value>{"consulted_at", Value::Text("2024-06-15")});

  auto second = PutRow(st, "consultations", "legacy-0001", {{"channel", "phone"}});
  REQUIRE_OK(second);
  CHECK(*second == "legacy-0001");
  auto list = st.List("consultations");
  REQUIRE_OK(list);
  REQUIRE(list->size() == 2);
  CHECK(((*list)[0][0].second.ToDisplay() < (*list)[1][0].second.ToDisplay()));  // ordered by id

  auto missing = st.Get("consultations", "no-such-row");
  REQUIRE_OK(missing);
  CHECK_FALSE(missing->has_value());
  CHECK(StatusOf(st).own_changesets == 2);
}

TEST_CASE("replica: an update of one field keeps the others", "[replica]") {
  Cluster cluster;
  Replica& st = *cluster.AddStation(kStationName, "0512", kTownship).replica;
  auto id = PutRow(st, "return_visits", std::nullopt,
                   {{"visited_at", "2024-06-01"}, {"satisfaction", "3"}, {"note", "满意"}});
  REQUIRE_OK(id);
  REQUIRE_OK(PutRow(st, "return_visits", *id, {{"satisfaction", "5"}}));
  CHECK(Field(st, "return_visits", *id, "satisfaction") == Value::Integer(5));
  CHECK(Field(st, "return_visits", *id, "note") == Value::Text("满意"));
  CHECK(Field(st, "return_visits", *id, "visited_at") == Value::Text("2024-06-01"));
  // Setting a field to empty makes an INTEGER column NULL.
  REQUIRE_OK(PutRow(st, "return_visits", *id, {{"satisfaction", ""}}));
  CHECK(Field(st, "return_visits", *id, "satisfaction") == Value::Null());
  CHECK(DumpConflicts(st).empty());
}

TEST_CASE("replica: a delete is permanent", "[replica]") {
  Cluster cluster;
  Replica& st = *cluster.AddStation(kStationName, "0512", kTownship).replica;
  auto id = PutRow(st, "hotline_tickets", std::nullopt, {{"caller", "刘某"}, {"topic", "欠薪"}});
  REQUIRE_OK(id);
  auto keep = PutRow(st, "hotline_tickets", std::nullopt, {{"caller", "陈某"}});
  REQUIRE_OK(keep);
  REQUIRE_OK(DeleteRow(st, "hotline_tickets", *id));

  auto gone = st.Get("hotline_tickets", *id);
  REQUIRE_OK(gone);
  CHECK_FALSE(gone->has_value());
  auto list = st.List("hotline_tickets");
  REQUIRE_OK(list);
  REQUIRE(list->size() == 1);
  CHECK((*list)[0][0].second == Value::Text(*keep));

  std::string before = Snapshot(st);
  REQUIRE_CODE(PutRow(st, "hotline_tickets", *id, {{"caller", "刘某"}}), Status::Code::kInvalidArgument);
  REQUIRE_CODE(DeleteRow(st, "hotline_tickets", *id), Status::Code::kNotFound);
  REQUIRE_CODE(DeleteRow(st, "hotline_tickets", "never-existed"), Status::Code::kNotFound);
  CHECK(Snapshot(st) == before);
  CHECK(DumpConflicts(st).empty());  // a delete alone is no conflict

  // The delete is a replicated fact: the hub sees the row gone too.
  Replica& hub = *cluster.hub().replica;
  REQUIRE_OK(Exchange(st, hub));
  auto at_hub = hub.Get("hotline_tickets", *id);
  REQUIRE_OK(at_hub);
  CHECK_FALSE(at_hub->has_value());
  REQUIRE_CODE(PutRow(hub, "hotline_tickets", *id, {{"caller", "x"}}), Status::Code::kInvalidArgument);
}

TEST_CASE("replica: a put then a delete of one row in one transaction commits and replicates", "[replica]") {
  Cluster cluster;
  Replica& st = *cluster.AddStation(kStationName, "0512", kTownship).replica;
  auto tx = st.BeginLocal();
  REQUIRE_OK(tx);
  auto a = (*tx)->Put("consultations", "row-a", std::nullopt, {{"topic", "a"}});
  REQUIRE_OK(a);
  auto b = (*tx)->Put("consultations", "row-b", std::nullopt, {{"topic", "b"}});
  REQUIRE_OK(b);
  REQUIRE_OK((*tx)->Delete("consultations", "row-a"));
  // A row written after the delete in the same chain goes into a later changeset.
  REQUIRE_OK((*tx)->Put("consultations", "row-c", std::nullopt, {{"topic", "c"}}));
  auto summary = (*tx)->Commit();
  REQUIRE_OK(summary);
  CHECK(summary->changesets == 2);
  tx->reset();

  CHECK_FALSE(Field(st, "consultations", "row-a", "topic").has_value());
  CHECK(TextField(st, "consultations", "row-b", "topic") == "b");
  CHECK(TextField(st, "consultations", "row-c", "topic") == "c");
  Replica& hub = *cluster.hub().replica;
  auto report = Exchange(st, hub);
  REQUIRE_OK(report);
  CHECK(report->rejected == 0);
  CHECK(report->applied == 2);
  CHECK(testing::ListText(hub, "consultations") == testing::ListText(st, "consultations"));
}

TEST_CASE("replica: a put after a delete of the same row in one transaction is refused", "[replica]") {
  Cluster cluster;
  Replica& st = *cluster.AddStation(kStationName, "0512", kTownship).replica;
  REQUIRE_OK(PutRow(st, "consultations", "row-a", {{"topic", "a"}}));
  auto tx = st.BeginLocal();
  REQUIRE_OK(tx);
  REQUIRE_OK((*tx)->Delete("consultations", "row-a"));
  REQUIRE_CODE((*tx)->Put("consultations", "row-a", std::nullopt, {{"topic", "back"}}),
               Status::Code::kInvalidArgument);
  REQUIRE_OK((*tx)->Commit());
  tx->reset();
  CHECK_FALSE(Field(st, "consultations", "row-a", "topic").has_value());
  // What was committed is well-formed for every receiver.
  Replica& hub = *cluster.hub().replica;
  auto report = Exchange(st, hub);
  REQUIRE_OK(report);
  CHECK(report->rejected == 0);
  CHECK(report->applied == 2);
  CHECK(testing::ListText(hub, "consultations") == testing::ListText(st, "consultations"));
}

TEST_CASE("replica: a transaction over the changeset size limit becomes several changesets", "[replica]") {
  Cluster cluster;
  Replica& st = *cluster.AddStation(kStationName, "0512", kTownship).replica;
  auto tx = st.BeginLocal();
  REQUIRE_OK(tx);
  const std::string summary_text(1000, 's');
  for (int i = 0; i < 500; ++i)
    REQUIRE_OK((*tx)->Put("consultations", "bulk-" + std::to_string(i), std::nullopt,
                          {{"topic", "t" + std::to_string(i)}, {"summary", summary_text}}));
  auto summary = (*tx)->Commit();
  REQUIRE_OK(summary);
  tx->reset();
  CHECK(summary->changesets >= 2);
  CHECK(summary->rows == 500);
  auto own = OwnEnvelopes(st);
  REQUIRE(own.size() == static_cast<size_t>(summary->changesets));
  for (const auto& e : own) CHECK(e.size() <= ChangesetLimits{}.max_envelope_bytes);

  Replica& hub = *cluster.hub().replica;
  auto report = Exchange(st, hub);
  REQUIRE_OK(report);
  CHECK(report->rejected == 0);
  CHECK(report->applied == summary->changesets);
  auto rows = hub.List("consultations");
  REQUIRE_OK(rows);
  CHECK(rows->size() == 500);
}

TEST_CASE("replica: a failed commit leaves nothing behind, even before the transaction is destroyed",
          "[replica]") {
  Cluster cluster;
  Replica& hub = *cluster.hub().replica;
  std::string before = Snapshot(hub);
  auto tx = hub.BeginLocal();
  REQUIRE_OK(tx);
  REQUIRE_OK((*tx)->Put("applications", std::nullopt, std::nullopt,
                        {{"applicant_name", "王某"}, {"status", "approved"}}));
  REQUIRE_CODE((*tx)->Commit(), Status::Code::kRuleViolation);
  CHECK(Snapshot(hub) == before);
  // The write lock is released: the next transaction can start at once.
  REQUIRE_OK(PutRow(hub, "notices", std::nullopt, {{"title", "通知"}}));
  tx->reset();
}

// ------------------------------------------------------------------- scopes

TEST_CASE("replica scope: default scope, outside the jurisdiction refused, a row's scope is fixed",
          "[replica][scope]") {
  Cluster cluster;
  Replica& st = *cluster.AddStation(kStationName, "0512", kTownship).replica;
  auto id = PutRow(st, "consultations", std::nullopt, {{"topic", "默认"}});
  REQUIRE_OK(id);
  CHECK(TextField(st, "consultations", *id, "scope") == kTownship);
  auto village = PutRow(st, "consultations", std::nullopt, {{"topic", "村"}}, std::string("430123/05/017"));
  REQUIRE_OK(village);
  CHECK(TextField(st, "consultations", *village, "scope") == "430123/05/017");

  std::string before = Snapshot(st);
  for (const char* outside : {"430123/06", "430123", "430123/050", "430124/05"}) {
    INFO("scope " << outside);
    REQUIRE_CODE(PutRow(st, "consultations", std::nullopt, {{"topic", "x"}}, std::string(outside)),
                 Status::Code::kUnauthorized);
  }
  REQUIRE_CODE(PutRow(st, "consultations", std::nullopt, {{"topic", "x"}}, std::string("430123//05")),
               Status::Code::kInvalidArgument);
  // An existing row keeps its scope: naming another one is refused.
  REQUIRE_CODE(PutRow(st, "consultations", *id, {{"topic", "moved"}}, std::string("430123/05/017")),
               Status::Code::kInvalidArgument);
  REQUIRE_CODE(PutRow(st, "consultations", *village, {{"topic", "moved"}}, std::string(kTownship)),
               Status::Code::kInvalidArgument);
  CHECK(Snapshot(st) == before);
  // Naming its own scope, or none, is fine.
  REQUIRE_OK(PutRow(st, "consultations", *village, {{"topic", "村2"}}, std::string("430123/05/017")));
  REQUIRE_OK(PutRow(st, "consultations", *village, {{"topic", "村3"}}));
  CHECK(TextField(st, "consultations", *village, "topic") == "村3");
  CHECK(TextField(st, "consultations", *village, "scope") == "430123/05/017");
}

TEST_CASE("replica: a station may not write reference tables", "[replica][scope]") {
  Cluster cluster;
  Replica& hub = *cluster.hub().replica;
  Replica& st = *cluster.AddStation(kStationName, "0512", kTownship).replica;
  auto lawyer = PutRow(hub, "lawyers", std::nullopt, {{"name", "李律师"}, {"kind", "lawyer"}});
  REQUIRE_OK(lawyer);
  REQUIRE_OK(Exchange(hub, st));
  REQUIRE(TextField(st, "lawyers", *lawyer, "name") == "李律师");

  std::string before = Snapshot(st);
  REQUIRE_CODE(PutRow(st, "lawyers", std::nullopt, {{"name", "冒名"}}), Status::Code::kUnauthorized);
  REQUIRE_CODE(PutRow(st, "lawyers", *lawyer, {{"phone", "110"}}), Status::Code::kUnauthorized);
  REQUIRE_CODE(PutRow(st, "targets", std::nullopt, {{"year", "2024"}}), Status::Code::kUnauthorized);
  REQUIRE_CODE(DeleteRow(st, "lawyers", *lawyer), Status::Code::kUnauthorized);
  CHECK(Snapshot(st) == before);
}

TEST_CASE("replica: case rows flow only up, reference rows flow down", "[replica][scope]") {
  Cluster cluster;
  Replica& hub = *cluster.hub().replica;
  Replica& town = *cluster.AddStation(kStationName, "0512", kTownship).replica;
  Replica& other = *cluster.AddStation("东山镇工作站", "0613", "430123/06").replica;
  Replica& village = *cluster.AddStation("石桥村服务点", "0512-017", "430123/05/017").replica;

  auto lawyer = PutRow(hub, "lawyers", std::nullopt, {{"name", "李律师"}});
  REQUIRE_OK(lawyer);
  auto town_row = PutRow(town, "consultations", std::nullopt, {{"topic", "镇"}});
  auto other_row = PutRow(other, "consultations", std::nullopt, {{"topic", "东山"}});
  auto village_row = PutRow(village, "consultations", std::nullopt, {{"topic", "村"}});
  REQUIRE_OK(town_row);
  REQUIRE_OK(other_row);
  REQUIRE_OK(village_row);

  // village -> township -> county; county -> everyone.
  REQUIRE_OK(Exchange(village, town));
  REQUIRE_OK(Exchange(town, hub));
  REQUIRE_OK(Exchange(other, hub));
  REQUIRE_OK(Exchange(hub, town));
  REQUIRE_OK(Exchange(hub, other));
  REQUIRE_OK(Exchange(town, village));

  auto has = [](Replica& r, const std::string& id) { return Field(r, "consultations", id, "topic").has_value(); };
  CHECK(has(hub, *town_row));
  CHECK(has(hub, *other_row));
  CHECK(has(hub, *village_row));  // relayed by the township
  CHECK(has(town, *village_row));
  CHECK_FALSE(has(town, *other_row));
  CHECK_FALSE(has(other, *town_row));
  CHECK_FALSE(has(other, *village_row));
  CHECK_FALSE(has(village, *town_row));
  for (Replica* r : {&town, &other, &village}) CHECK(TextField(*r, "lawyers", *lawyer, "name") == "李律师");
  // Every node lists every station (the stations table is reference data).
  auto stations = village.List("stations");
  REQUIRE_OK(stations);
  CHECK(stations->size() == 4);
}

// ------------------------------------------------------------------ validation

TEST_CASE("replica refuses unknown tables and columns, mistyped and disallowed values, storing nothing",
          "[replica]") {
  Cluster cluster;
  Replica& st = *cluster.AddStation(kStationName, "0512", kTownship).replica;
  auto visit = PutRow(st, "return_visits", std::nullopt, {{"satisfaction", "4"}});
  REQUIRE_OK(visit);
  std::string before = Snapshot(st);

  auto tx = st.BeginLocal();
  REQUIRE_OK(tx);
  LocalTransaction& t = **tx;
  REQUIRE_CODE(t.Put("lawers", std::nullopt, std::nullopt, {{"name", "x"}}), Status::Code::kNotFound);
  REQUIRE_CODE(t.Put("return_visits", std::nullopt, std::nullopt, {{"satisfation", "4"}}),
               Status::Code::kInvalidArgument);
  REQUIRE_CODE(t.Put("return_visits", std::nullopt, std::nullopt, {{"satisfaction", "很满意"}}),
               Status::Code::kInvalidArgument);
  REQUIRE_CODE(t.Put("return_visits", *visit, std::nullopt, {{"satisfaction", "4.5"}}),
               Status::Code::kInvalidArgument);
  REQUIRE_CODE(t.Put("return_visits", std::nullopt, std::nullopt, {{"satisfaction", "9"}}),
               Status::Code::kInvalidArgument);
  REQUIRE_CODE(t.Put("cases", std::nullopt, std::nullopt, {{"recovered_amount", "一万"}}),
               Status::Code::kInvalidArgument);
  REQUIRE_CODE(t.Put("cases", std::nullopt, std::nullopt, {{"category", "traffic"}}),
               Status::Code::kInvalidArgument);
  REQUIRE_CODE(t.Put("consultations", std::nullopt, std::nullopt, {{"channel", "WeChat"}}),
               Status::Code::kInvalidArgument);
  REQUIRE_CODE(t.Put("consultations", std::string("has space"), std::nullopt, {{"topic", "x"}}),
               Status::Code::kInvalidArgument);
  REQUIRE_CODE(t.Put("consultations", std::string("new"), std::nullopt, {{"topic", "x"}}),
               Status::Code::kInvalidArgument);
  REQUIRE_CODE(t.PutValues("return_visits", std::nullopt, std::nullopt, {{"satisfaction", Value::Text("4")}}),
               Status::Code::kInvalidArgument);
  REQUIRE_CODE(t.PutValues("cases", std::nullopt, std::nullopt, {{"notice_number", Value::Integer(7)}}),
               Status::Code::kInvalidArgument);
  REQUIRE_CODE(t.Delete("lawers", "x"), Status::Code::kNotFound);
  // The refusals leave the transaction usable, and committing it stores nothing.
  auto summary = t.Commit();
  REQUIRE_OK(summary);
  CHECK(summary->changesets == 0);
  tx->reset();
  CHECK(Snapshot(st) == before);

  REQUIRE_CODE(st.Get("lawers", "x"), Status::Code::kNotFound);
  REQUIRE_CODE(st.List("lawers"), Status::Code::kNotFound);
}

TEST_CASE("replica Query runs one read-only statement", "[replica]") {
  Cluster cluster;
  Replica& st = *cluster.AddStation(kStationName, "0512", kTownship).replica;
  REQUIRE_OK(PutRow(st, "consultations", std::nullopt, {{"channel", "phone"}}));
  auto q = st.Query("SELECT channel, count(*) FROM consultations GROUP BY channel");
  REQUIRE_OK(q);
  REQUIRE(q->rows.size() == 1);
  CHECK(q->columns == std::vector<std::string>{"channel", "count(*)"});
  CHECK(q->rows[0][0] == Value::Text("phone"));
  CHECK(q->rows[0][1] == Value::Integer(1));
  REQUIRE_CODE(st.Query("DELETE FROM consultations"), Status::Code::kInvalidArgument);
  REQUIRE_CODE(st.Query("SELECT 1; SELECT 2"), Status::Code::kInvalidArgument);
  auto rows = st.List("consultations");
  REQUIRE_OK(rows);
  CHECK(rows->size() == 1);
}

// -------------------------------------------------------------- notice numbers

TEST_CASE("replica: a cases row without notice_number gets this station's next number", "[replica][notice]") {
  Cluster cluster;
  Replica& st = *cluster.AddStation(kStationName, "0512", kTownship).replica;
  auto a = PutRow(st, "cases", std::nullopt, {{"category", "civil"}});
  auto b = PutRow(st, "cases", std::nullopt, {{"category", "civil"}});
  REQUIRE_OK(a);
  REQUIRE_OK(b);
  CHECK(TextField(st, "cases", *a, "notice_number") == "(2024)法援字第0512-0001号");
  CHECK(TextField(st, "cases", *b, "notice_number") == "(2024)法援字第0512-0002号");

  // The year comes from assigned_at when given, with its own counter.
  auto old = PutRow(st, "cases", std::nullopt, {{"assigned_at", "2015-03-02"}});
  REQUIRE_OK(old);
  CHECK(TextField(st, "cases", *old, "notice_number") == "(2015)法援字第0512-0001号");

  // A number given explicitly is kept and uses no number of the counter.
  auto given = PutRow(st, "cases", std::nullopt, {{"notice_number", "(2024)法援字第0512-0999号"}});
  REQUIRE_OK(given);
  CHECK(TextField(st, "cases", *given, "notice_number") == "(2024)法援字第0512-0999号");

  // Updates keep the number; the next new case continues the sequence.
  REQUIRE_OK(PutRow(st, "cases", *a, {{"status", "closed"}}));
  CHECK(TextField(st, "cases", *a, "notice_number") == "(2024)法援字第0512-0001号");
  auto c = PutRow(st, "cases", std::nullopt, {{"category", "civil"}});
  REQUIRE_OK(c);
  CHECK(TextField(st, "cases", *c, "notice_number") == "(2024)法援字第0512-0003号");

  // Two cases in one transaction get two numbers.
  auto tx = st.BeginLocal();
  REQUIRE_OK(tx);
  auto d = (*tx)->Put("cases", std::nullopt, std::nullopt, {});
  auto e = (*tx)->Put("cases", std::nullopt, std::nullopt, {});
  REQUIRE_OK(d);
  REQUIRE_OK(e);
  REQUIRE_OK((*tx)->Commit());
  tx->reset();
  CHECK(TextField(st, "cases", *d, "notice_number") == "(2024)法援字第0512-0004号");
  CHECK(TextField(st, "cases", *e, "notice_number") == "(2024)法援字第0512-0005号");

  // The hub numbers from its own code.
  Replica& hub = *cluster.hub().replica;
  auto h = PutRow(hub, "cases", std::nullopt, {{"category", "civil"}});
  REQUIRE_OK(h);
  CHECK(TextField(hub, "cases", *h, "notice_number") == "(2024)法援字第0500-0001号");
}

TEST_CASE("replica: a refused case transaction does not use up a notice number", "[replica][notice]") {
  Cluster cluster;
  Replica& st = *cluster.AddStation(kStationName, "0512", kTownship).replica;
  REQUIRE_CODE(PutRow(st, "cases", std::nullopt, {{"lawyer_id", "no-such-lawyer"}}), Status::Code::kRuleViolation);
  auto a = PutRow(st, "cases", std::nullopt, {{"category", "civil"}});
  REQUIRE_OK(a);
  CHECK(TextField(st, "cases", *a, "notice_number") == "(2024)法援字第0512-0001号");
}

// ---------------------------------------------------------------- domain rules

TEST_CASE("rule: an approval or rejection needs its decision basis", "[replica][rules]") {
  Cluster cluster;
  Replica& st = *cluster.AddStation(kStationName, "0512", kTownship).replica;
  std::string before = Snapshot(st);
  REQUIRE_CODE(PutRow(st, "applications", std::nullopt, {{"applicant_name", "王某"}, {"status", "approved"}}),
               Status::Code::kRuleViolation);
  REQUIRE_CODE(PutRow(st, "applications", std::nullopt, {{"applicant_name", "王某"}, {"status", "rejected"}}),
               Status::Code::kRuleViolation);
  REQUIRE_CODE(PutRow(st, "applications", std::nullopt,
                      {{"applicant_name", "王某"}, {"status", "rejected"}, {"decision_basis", "   "}}),
               Status::Code::kRuleViolation);
  CHECK(Snapshot(st) == before);

  auto app = PutRow(st, "applications", std::nullopt, {{"applicant_name", "王某"}, {"status", "received"}});
  REQUIRE_OK(app);
  REQUIRE_OK(PutRow(st, "applications", *app,
                    {{"status", "approved"}, {"decision_basis", "《法律援助法》第三十一条"}}));
  // Clearing the basis of an approved application is refused too.
  before = Snapshot(st);
  REQUIRE_CODE(PutRow(st, "applications", *app, {{"decision_basis", ""}}), Status::Code::kRuleViolation);
  CHECK(Snapshot(st) == before);
  CHECK(TextField(st, "applications", *app, "decision_basis") == "《法律援助法》第三十一条");
}

TEST_CASE("rule: a case may only go to a known lawyer of kind 'lawyer'", "[replica][rules]") {
  Cluster cluster;
  Replica& hub = *cluster.hub().replica;
  Replica& st = *cluster.AddStation(kStationName, "0512", kTownship).replica;
  Roster roster = MakeRoster(hub);
  REQUIRE_OK(Exchange(hub, st));

  std::string before = Snapshot(st);
  REQUIRE_CODE(PutRow(st, "cases", std::nullopt, {{"lawyer_id", "no-such-lawyer"}, {"category", "civil"}}),
               Status::Code::kRuleViolation);
  for (const auto& who : {roster.intern, roster.assistant, roster.grassroots}) {
    INFO("lawyer " << who);
    REQUIRE_CODE(PutRow(st, "cases", std::nullopt, {{"lawyer_id", who}, {"category", "civil"}}),
                 Status::Code::kRuleViolation);
  }
  CHECK(Snapshot(st) == before);

  auto ok = PutRow(st, "cases", std::nullopt, {{"lawyer_id", roster.junior}, {"category", "civil"}});
  REQUIRE_OK(ok);
  // Reassigning an existing case to an intern is refused as well.
  before = Snapshot(st);
  REQUIRE_CODE(PutRow(st, "cases", *ok, {{"lawyer_id", roster.intern}}), Status::Code::kRuleViolation);
  CHECK(Snapshot(st) == before);
}

TEST_CASE("rule: a criminal case needs a lawyer with at least three years of practice", "[replica][rules]") {
  Cluster cluster;
  Replica& hub = *cluster.hub().replica;
  Replica& st = *cluster.AddStation(kStationName, "0512", kTownship).replica;
  Roster roster = MakeRoster(hub);
  auto three = PutRow(hub, "lawyers", std::nullopt, {{"name", "赵律师"}, {"kind", "lawyer"}, {"practice_years", "3"}});
  REQUIRE_OK(three);
  REQUIRE_OK(Exchange(hub, st));

  std::string before = Snapshot(st);
  REQUIRE_CODE(PutRow(st, "cases", std::nullopt, {{"lawyer_id", roster.junior}, {"category", "criminal"}}),
               Status::Code::kRuleViolation);
  CHECK(Snapshot(st) == before);
  REQUIRE_OK(PutRow(st, "cases", std::nullopt, {{"lawyer_id", *three}, {"category", "criminal"}}));
  REQUIRE_OK(PutRow(st, "cases", std::nullopt, {{"lawyer_id", roster.senior}, {"category", "criminal"}}));
  // A civil case assigned to the junior lawyer may not turn criminal.
  auto civil = PutRow(st, "cases", std::nullopt, {{"lawyer_id", roster.junior}, {"category", "civil"}});
  REQUIRE_OK(civil);
  REQUIRE_CODE(PutRow(st, "cases", *civil, {{"category", "criminal"}}), Status::Code::kRuleViolation);
  CHECK(TextField(st, "cases", *civil, "category") == "civil");
}

TEST_CASE("rule: a return visit with a fee charged is accepted and raises an alert", "[replica][rules]") {
  Cluster cluster;
  Replica& st = *cluster.AddStation(kStationName, "0512", kTownship).replica;
  std::string clean;
  auto ok = PutRowSummary(st, "return_visits", std::nullopt, {{"fee_charged", "0"}}, &clean);
  REQUIRE_OK(ok);
  CHECK(ok->alerts.empty());
  CHECK_FALSE(Mentions(StatusOf(st).alerts, clean));

  std::string id;
  auto summary = PutRowSummary(st, "return_visits", std::nullopt, {{"fee_charged", "1"}, {"note", "收了200元"}}, &id);
  REQUIRE_OK(summary);
  REQUIRE(summary->alerts.size() == 1);
  CHECK(Mentions(summary->alerts, id, "fee"));
  CHECK(Field(st, "return_visits", id, "fee_charged") == Value::Integer(1));
  CHECK(Mentions(StatusOf(st).alerts, id, "fee"));

  // Alerts are computed from the replica: the hub raises it for what it received.
  Replica& hub = *cluster.hub().replica;
  REQUIRE_OK(Exchange(st, hub));
  CHECK(Mentions(StatusOf(hub).alerts, id, "fee"));
  // Correcting the record clears the alert.
  REQUIRE_OK(PutRow(st, "return_visits", id, {{"fee_charged", "0"}}));
  CHECK_FALSE(Mentions(StatusOf(st).alerts, id));
}

TEST_CASE("rule: a received changeset that breaks a rule is applied and raises an alert", "[replica][rules]") {
  Cluster cluster;
  Replica& hub = *cluster.hub().replica;
  Replica& st = *cluster.AddStation(kStationName, "0512", kTownship).replica;
  Roster roster = MakeRoster(hub);
  REQUIRE_OK(Exchange(hub, st));
  // Offline, the station assigns a criminal case to a senior lawyer while the
  // hub finds the lawyer is in fact an intern.
  std::string case_id;
  REQUIRE_OK(PutRowSummary(st, "cases", std::nullopt, {{"lawyer_id", roster.senior}, {"category", "criminal"}},
                           &case_id));
  REQUIRE_OK(PutRow(hub, "lawyers", roster.senior, {{"kind", "intern"}}));
  auto report = Exchange(st, hub);
  REQUIRE_OK(report);
  CHECK(report->rejected == 0);
  CHECK(TextField(hub, "cases", case_id, "lawyer_id") == roster.senior);
  CHECK(Mentions(StatusOf(hub).alerts, case_id, "interns"));
}

// ------------------------------------------------------------------ conflicts

TEST_CASE("conflict: concurrent edits of one field converge and list the same open conflict on both nodes",
          "[replica][conflict]") {
  Cluster cluster;
  Node& hub_node = cluster.hub();
  Node& st_node = cluster.AddStation(kStationName, "0512", kTownship);
  Replica& hub = *hub_node.replica;
  Replica& st = *st_node.replica;
  auto id = PutRow(st, "consultations", std::nullopt, {{"channel", "walk_in"}, {"topic", "工资"}});
  REQUIRE_OK(id);
  ExchangeBoth(st, hub);
  REQUIRE(TextField(hub, "consultations", *id, "topic") == "工资");

  // Offline edits: the station's is the later one.
  hub_node.clock->Advance(1000);
  st_node.clock->Advance(2000);
  REQUIRE_OK(PutRow(hub, "consultations", *id, {{"topic", "中心的意见"}}));
  REQUIRE_OK(PutRow(st, "consultations", *id, {{"topic", "工作站的意见"}}));
  ExchangeBoth(hub, st);

  CHECK(TextField(hub, "consultations", *id, "topic") == "工作站的意见");
  CHECK(TextField(st, "consultations", *id, "topic") == "工作站的意见");
  CHECK(TextField(hub, "consultations", *id, "channel") == "walk_in");
  for (Replica* r : {&hub, &st}) {
    auto conflicts = r->Conflicts();
    REQUIRE_OK(conflicts);
    REQUIRE(conflicts->size() == 1);
    const Conflict& c = conflicts->front();
    CHECK(c.table == "consultations");
    CHECK(c.id == *id);
    CHECK(c.column == "topic");
    CHECK_FALSE(c.row_deleted);
    REQUIRE(c.winner.has_value());
    CHECK(c.winner->value == Value::Text("工作站的意见"));
    CHECK(c.winner->author == kStationName);
    CHECK(c.winner->author_key == st.identity().key.Hex());
    REQUIRE(c.losers.size() == 1);
    CHECK(c.losers[0].value == Value::Text("中心的意见"));
    CHECK(c.losers[0].author == testing::kHubName);
    CHECK(c.losers[0].time_ms > 0);
    CHECK(c.winner->time_ms > c.losers[0].time_ms);
    CHECK(StatusOf(*r).conflicts_open == 1);
  }
  CHECK(DumpConflicts(hub) == DumpConflicts(st));
  CHECK(DumpTables(hub) == DumpTables(st));

  // Resolving is an ordinary write over all heads; it closes the conflict everywhere.
  REQUIRE_OK(PutRow(hub, "consultations", *id, {{"topic", "已协调"}}));
  CHECK(DumpConflicts(hub).empty());
  ExchangeBoth(hub, st);
  for (Replica* r : {&hub, &st}) {
    CHECK(TextField(*r, "consultations", *id, "topic") == "已协调");
    CHECK(DumpConflicts(*r).empty());
    CHECK(StatusOf(*r).conflicts_open == 0);
  }
  CHECK(Dump(hub) == Dump(st));
}

TEST_CASE("conflict: equal clocks are ordered by author key on every node", "[replica][conflict]") {
  Cluster cluster;
  Replica& hub = *cluster.hub().replica;
  Replica& st = *cluster.AddStation(kStationName, "0512", kTownship).replica;
  auto id = PutRow(st, "consultations", std::nullopt, {{"topic", "t0"}});
  REQUIRE_OK(id);
  ExchangeBoth(st, hub);
  // Both clocks stand still: both writes get the same HLC.
  REQUIRE_OK(PutRow(hub, "consultations", *id, {{"topic", "hub"}}));
  REQUIRE_OK(PutRow(st, "consultations", *id, {{"topic", "station"}}));
  REQUIRE(HlcOf(OwnEnvelopes(hub).back()) == HlcOf(OwnEnvelopes(st).back()));
  ExchangeBoth(hub, st);
  std::string expected = st.identity().key < hub.identity().key ? "hub" : "station";
  CHECK(TextField(hub, "consultations", *id, "topic") == expected);
  CHECK(TextField(st, "consultations", *id, "topic") == expected);
  CHECK(Dump(hub) == Dump(st));
}

TEST_CASE("conflict: a delete concurrent with an edit is listed on both nodes", "[replica][conflict]") {
  Cluster cluster;
  Replica& hub = *cluster.hub().replica;
  Replica& st = *cluster.AddStation(kStationName, "0512", kTownship).replica;
  auto id = PutRow(st, "complaints", std::nullopt, {{"content", "律师不回电话"}, {"status", "open"}});
  REQUIRE_OK(id);
  ExchangeBoth(st, hub);

  REQUIRE_OK(DeleteRow(st, "complaints", *id));
  REQUIRE_OK(PutRow(hub, "complaints", *id, {{"status", "investigating"}}));
  ExchangeBoth(hub, st);

  for (Replica* r : {&hub, &st}) {
    auto row = r->Get("complaints", *id);
    REQUIRE_OK(row);
    CHECK_FALSE(row->has_value());  // the delete wins: the row stays gone
    auto conflicts = r->Conflicts();
    REQUIRE_OK(conflicts);
    REQUIRE(conflicts->size() == 1);
    const Conflict& c = conflicts->front();
    CHECK(c.id == *id);
    CHECK(c.column == "status");
    CHECK(c.row_deleted);
    CHECK_FALSE(c.winner.has_value());
    REQUIRE(c.losers.size() == 1);
    CHECK(c.losers[0].value == Value::Text("investigating"));
    CHECK(c.losers[0].author == testing::kHubName);
    CHECK(StatusOf(*r).conflicts_open == 1);
  }
  CHECK(Dump(hub) == Dump(st));
  // Nobody can write the row back.
  REQUIRE_CODE(PutRow(hub, "complaints", *id, {{"status", "x"}}), Status::Code::kInvalidArgument);
  REQUIRE_CODE(PutRow(st, "complaints", *id, {{"status", "x"}}), Status::Code::kInvalidArgument);
}

TEST_CASE("merge: a version that arrives after the write that overwrote it never becomes a head",
          "[replica][conflict]") {
  Cluster cluster;
  Replica& hub = *cluster.hub().replica;
  Replica& a = *cluster.AddStation(kStationName, "0512", kTownship).replica;
  Replica& b = *cluster.AddStation("城关镇第二工作站", "0514", kTownship).replica;
  REQUIRE_OK(PutRow(a, "consultations", "r", {{"topic", "v1"}, {"channel", "phone"}}));
  REQUIRE_OK(Exchange(a, b));

  SECTION("an overwriting edit") {
    REQUIRE_OK(PutRow(b, "consultations", "r", {{"topic", "v2"}}));
    // The hub gets b's edit before a's original write (different chains).
    auto edit = hub.ApplyRemote(OwnEnvelopes(b));
    REQUIRE_OK(edit);
    REQUIRE(edit->applied == 1);
    CHECK(TextField(hub, "consultations", "r", "topic") == "v2");
    auto original = hub.ApplyRemote(OwnEnvelopes(a));
    REQUIRE_OK(original);
    REQUIRE(original->applied == 1);
    CHECK(TextField(hub, "consultations", "r", "topic") == "v2");
    CHECK(TextField(hub, "consultations", "r", "channel") == "phone");  // not overwritten: a head
  }
  SECTION("an overwriting delete") {
    REQUIRE_OK(DeleteRow(b, "consultations", "r"));
    REQUIRE_OK(hub.ApplyRemote(OwnEnvelopes(b)));
    CHECK_FALSE(Field(hub, "consultations", "r", "topic").has_value());
    REQUIRE_OK(hub.ApplyRemote(OwnEnvelopes(a)));
    CHECK_FALSE(Field(hub, "consultations", "r", "topic").has_value());
  }
  CHECK(DumpConflicts(hub).empty());
  CHECK(DumpConflicts(b).empty());
  CHECK(testing::ListText(hub, "consultations") == testing::ListText(b, "consultations"));
  REQUIRE_OK(hub.Rebuild());
  CHECK(DumpConflicts(hub).empty());
  CHECK(testing::ListText(hub, "consultations") == testing::ListText(b, "consultations"));
}

// --------------------------------------------------------------- remote apply

TEST_CASE("remote apply: a duplicate is a no-op", "[replica][remote]") {
  Cluster cluster;
  Replica& hub = *cluster.hub().replica;
  Replica& st = *cluster.AddStation(kStationName, "0512", kTownship).replica;
  REQUIRE_OK(PutRow(st, "consultations", std::nullopt, {{"topic", "a"}}));
  REQUIRE_OK(PutRow(st, "consultations", std::nullopt, {{"topic", "b"}}));
  auto own = OwnEnvelopes(st);
  REQUIRE(own.size() == 2);

  auto first = hub.ApplyRemote(own);
  REQUIRE_OK(first);
  CHECK(first->applied == 2);
  CHECK(first->duplicates == 0);
  std::string after_first = Snapshot(hub);

  auto again = hub.ApplyRemote({own[0], own[1], own[0]});
  REQUIRE_OK(again);
  CHECK(again->applied == 0);
  CHECK(again->duplicates == 3);
  CHECK(again->rejected == 0);
  CHECK(Snapshot(hub) == after_first);
  // The author's own changesets coming back are duplicates too.
  auto back = st.ApplyRemote(own);
  REQUIRE_OK(back);
  CHECK(back->duplicates == 2);
}

TEST_CASE("remote apply: a changeset whose predecessor is missing is held until it arrives",
          "[replica][remote]") {
  Cluster cluster;
  Replica& hub = *cluster.hub().replica;
  Replica& st = *cluster.AddStation(kStationName, "0512", kTownship).replica;
  auto id = PutRow(st, "consultations", std::nullopt, {{"topic", "v1"}});
  REQUIRE_OK(id);
  REQUIRE_OK(PutRow(st, "consultations", *id, {{"topic", "v2"}}));
  REQUIRE_OK(PutRow(st, "consultations", *id, {{"topic", "v3"}}));
  auto own = OwnEnvelopes(st);
  REQUIRE(own.size() == 3);
  int64_t total = TotalChangesets(hub);

  auto third = hub.ApplyRemote({own[2]});
  REQUIRE_OK(third);
  CHECK(third->applied == 0);
  CHECK(third->held == 1);
  REQUIRE(third->held_ids.size() == 1);
  CHECK(third->held_ids[0] == IdOf(own[2]));
  auto second = hub.ApplyRemote({own[1]});
  REQUIRE_OK(second);
  CHECK(second->held == 1);
  ReplicaStatus waiting = StatusOf(hub);
  CHECK(waiting.held_changesets == 2);
  CHECK(waiting.total_changesets == total);  // held is not applied
  CHECK(Mentions(waiting.alerts, "held"));
  CHECK_FALSE(Field(hub, "consultations", *id, "topic").has_value());
  // A held changeset arriving again is still held, not duplicated.
  auto repeat = hub.ApplyRemote({own[2]});
  REQUIRE_OK(repeat);
  CHECK(repeat->held == 1);
  CHECK(StatusOf(hub).held_changesets == 2);

  auto first = hub.ApplyRemote({own[0]});
  REQUIRE_OK(first);
  CHECK(first->applied == 3);
  CHECK(first->held == 0);
  ReplicaStatus done = StatusOf(hub);
  CHECK(done.held_changesets == 0);
  CHECK(done.total_changesets == total + 3);
  CHECK(TextField(hub, "consultations", *id, "topic") == "v3");
  CHECK(DumpConflicts(hub).empty());
}

TEST_CASE("remote apply: a held changeset refused once its predecessor arrives is no longer counted as held",
          "[replica][remote]") {
  Cluster cluster;
  Replica& hub = *cluster.hub().replica;
  Node& st_node = cluster.AddStation(kStationName, "0512", kTownship);
  SigningKey key = cluster.KeyOf(st_node);
  const std::string scope = "430123/05/019";
  auto first = HandBuilt(key, scope, TableClass::kCase, 1, std::nullopt, MakeHlc(testing::kDefaultStartMs, 1),
                         {OneRow("consultations", "ok-row", {{"topic", "好"}})});
  // Text in the INTEGER column satisfaction: a signed but malformed write.
  auto second = HandBuilt(key, scope, TableClass::kCase, 2, first.id, MakeHlc(testing::kDefaultStartMs, 2),
                          {OneRow("return_visits", "bad-row", {{"satisfaction", "五"}})});
  auto held = hub.ApplyRemote({second.envelope});
  REQUIRE_OK(held);
  CHECK(held->held == 1);
  CHECK(StatusOf(hub).held_changesets == 1);

  auto report = hub.ApplyRemote({first.envelope});
  REQUIRE_OK(report);
  CHECK(report->applied == 1);
  CHECK(report->rejected == 1);
  CHECK(report->held == 0);
  ReplicaStatus status = StatusOf(hub);
  CHECK(status.held_changesets == 0);
  CHECK_FALSE(Mentions(status.alerts, "held"));
  CHECK(status.rejected["malformed"] == 1);
  CHECK(TextField(hub, "consultations", "ok-row", "topic") == "好");
  CHECK_FALSE(Field(hub, "return_visits", "bad-row", "satisfaction").has_value());
}

TEST_CASE("remote apply: a whole chain in reverse order in one batch is applied", "[replica][remote]") {
  Cluster cluster;
  Replica& hub = *cluster.hub().replica;
  Replica& st = *cluster.AddStation(kStationName, "0512", kTownship).replica;
  auto id = PutRow(st, "consultations", std::nullopt, {{"topic", "0"}});
  REQUIRE_OK(id);
  for (int i = 1; i < 20; ++i) REQUIRE_OK(PutRow(st, "consultations", *id, {{"topic", std::to_string(i)}}));
  auto own = OwnEnvelopes(st);
  std::vector<std::string> reversed(own.rbegin(), own.rend());
  auto report = hub.ApplyRemote(reversed);
  REQUIRE_OK(report);
  CHECK(report->applied == 20);
  CHECK(report->held == 0);
  CHECK(report->held_ids.size() == 19);
  CHECK(TextField(hub, "consultations", *id, "topic") == "19");
  CHECK(StatusOf(hub).held_changesets == 0);
}

TEST_CASE("remote apply: a changeset from an author without a certificate is rejected", "[replica][remote]") {
  Cluster cluster;
  Replica& hub = *cluster.hub().replica;
  Node& stranger_node = cluster.AddStation("未登记站", "0999", kTownship, /*enrol_at_hub=*/false);
  Replica& stranger = *stranger_node.replica;
  REQUIRE_OK(PutRow(stranger, "consultations", "row-x", {{"topic", "x"}}));
  std::string before = Snapshot(hub);

  auto report = hub.ApplyRemote(OwnEnvelopes(stranger));
  REQUIRE_OK(report);
  CHECK(report->rejected == 1);
  CHECK(report->applied == 0);
  REQUIRE(report->rejections.size() == 1);
  CHECK(report->rejections[0].rfind("unknown_author", 0) == 0);
  CHECK(Snapshot(hub) == before);
  CHECK(StatusOf(hub).rejected["unknown_author"] == 1);

  // Once its certificate is known, the same bytes are accepted.
  REQUIRE_OK(hub.AddCertificate(cluster.CertificateOf(stranger_node).bytes()));
  auto retry = hub.ApplyRemote(OwnEnvelopes(stranger));
  REQUIRE_OK(retry);
  CHECK(retry->applied == 1);
  CHECK(TextField(hub, "consultations", "row-x", "topic") == "x");
}

TEST_CASE("remote apply: a station's changeset outside its scope is rejected out_of_scope", "[replica][remote]") {
  Cluster cluster;
  Replica& hub = *cluster.hub().replica;
  Node& st_node = cluster.AddStation(kStationName, "0512", kTownship);
  SigningKey key = cluster.KeyOf(st_node);
  std::string before = Snapshot(hub);
  int n = 0;
  for (const char* scope : {"430123/06", "430123", "430123/050"}) {
    INFO("scope " << scope);
    auto cs = HandBuilt(key, scope, TableClass::kCase, 1, std::nullopt, MakeHlc(testing::kDefaultStartMs, 0),
                        {OneRow("consultations", "intruder-" + std::to_string(n++), {{"topic", "越权"}})});
    auto report = hub.ApplyRemote({cs.envelope});
    REQUIRE_OK(report);
    CHECK(report->rejected == 1);
    CHECK(report->applied == 0);
    REQUIRE(report->rejections.size() == 1);
    CHECK(report->rejections[0].rfind("out_of_scope", 0) == 0);
  }
  CHECK(Snapshot(hub) == before);
  CHECK(StatusOf(hub).rejected["out_of_scope"] == 3);
}

TEST_CASE("remote apply: a station's reference changeset is rejected unauthorized_table", "[replica][remote]") {
  Cluster cluster;
  Replica& hub = *cluster.hub().replica;
  Node& st_node = cluster.AddStation(kStationName, "0512", kTownship);
  SigningKey key = cluster.KeyOf(st_node);
  std::string before = Snapshot(hub);
  auto reference = HandBuilt(key, kTownship, TableClass::kReference, 1, std::nullopt, 1,
                             {OneRow("lawyers", "fake-lawyer", {{"name", "假律师"}, {"kind", "lawyer"}})});
  // A case changeset that smuggles a reference table in.
  auto smuggled = HandBuilt(key, kTownship, TableClass::kCase, 1, std::nullopt, 1,
                            {OneRow("lawyers", "fake-lawyer", {{"name", "假律师"}, {"kind", "lawyer"}})});
  auto report = hub.ApplyRemote({reference.envelope, smuggled.envelope});
  REQUIRE_OK(report);
  CHECK(report->rejected == 2);
  CHECK(report->applied == 0);
  for (const auto& why : report->rejections) {
    INFO(why);
    CHECK(why.rfind("unauthorized_table", 0) == 0);
  }
  CHECK(Snapshot(hub) == before);
  CHECK(StatusOf(hub).rejected["unauthorized_table"] == 2);
}

TEST_CASE("remote apply: unknown tables and columns stay in the log and the known parts are applied",
          "[replica][remote]") {
  Cluster cluster;
  Replica& hub = *cluster.hub().replica;
  Node& st_node = cluster.AddStation(kStationName, "0512", kTownship);
  SigningKey key = cluster.KeyOf(st_node);
  const std::string scope = "430123/05/017";  // a chain of its own
  auto newer = HandBuilt(key, scope, TableClass::kCase, 1, std::nullopt, MakeHlc(testing::kDefaultStartMs, 1),
                         {OneRow("consultations", "from-v2", {{"topic", "已知列"}, {"mood", "未知列"}}),
                          OneRow("mediations", "m-1", {{"party", "甲"}})});
  int64_t total = TotalChangesets(hub);
  auto report = hub.ApplyRemote({newer.envelope});
  REQUIRE_OK(report);
  CHECK(report->applied == 1);
  CHECK(report->rejected == 0);
  CHECK(TotalChangesets(hub) == total + 1);
  CHECK(TextField(hub, "consultations", "from-v2", "topic") == "已知列");
  auto complete = hub.Query("SELECT complete FROM aidsync_log WHERE hash = x'" + newer.id.Hex() + "'");
  REQUIRE_OK(complete);
  REQUIRE(complete->rows.size() == 1);
  CHECK(complete->rows[0][0] == Value::Integer(0));

  // The chain continues normally, the stored bytes relay unchanged, and a
  // rebuild keeps the changeset.
  auto next = HandBuilt(key, scope, TableClass::kCase, 2, newer.id, MakeHlc(testing::kDefaultStartMs, 2),
                        {OneRow("consultations", "from-v2", {{"summary", "续"}})});
  auto report2 = hub.ApplyRemote({next.envelope});
  REQUIRE_OK(report2);
  CHECK(report2->applied == 1);
  std::vector<std::string> relayed = testing::EnvelopesVisibleTo(hub, kTownship);
  CHECK(std::find(relayed.begin(), relayed.end(), newer.envelope) != relayed.end());
  std::string before = Dump(hub);
  REQUIRE_OK(hub.Rebuild());
  CHECK(Dump(hub) == before);
  CHECK(TotalChangesets(hub) == total + 2);
}

TEST_CASE("remote apply: a fork (two changesets at one chain position) keeps both and raises an alarm",
          "[replica][remote][fork]") {
  Cluster cluster;
  Replica& hub = *cluster.hub().replica;
  Node& st_node = cluster.AddStation(kStationName, "0512", kTownship);
  Replica& peer = *cluster.AddStation("城关镇第二工作站", "0514", kTownship).replica;
  SigningKey key = cluster.KeyOf(st_node);
  const std::string scope = "430123/05/018";
  auto a = HandBuilt(key, scope, TableClass::kCase, 1, std::nullopt, MakeHlc(testing::kDefaultStartMs, 1),
                     {OneRow("consultations", "fork-a", {{"topic", "原机"}})});
  auto b = HandBuilt(key, scope, TableClass::kCase, 1, std::nullopt, MakeHlc(testing::kDefaultStartMs, 2),
                     {OneRow("consultations", "fork-b", {{"topic", "复制机"}})});
  REQUIRE_FALSE(a.id == b.id);
  auto report = hub.ApplyRemote({a.envelope, b.envelope});
  REQUIRE_OK(report);
  CHECK(report->applied == 2);
  CHECK(report->rejected == 0);
  CHECK(TextField(hub, "consultations", "fork-a", "topic") == "原机");
  CHECK(TextField(hub, "consultations", "fork-b", "topic") == "复制机");
  ReplicaStatus status = StatusOf(hub);
  REQUIRE(status.forks.size() == 1);
  CHECK(status.forks[0].seq == 1);
  CHECK(status.forks[0].scope == scope);
  CHECK(status.forks[0].author == kStationName);
  CHECK(status.forks[0].author_key == key.public_key().Hex());
  CHECK(Mentions(status.alerts, "fork", kStationName));

  // The evidence replicates to every node that holds the chain.
  REQUIRE_OK(Exchange(hub, peer));
  ReplicaStatus at_peer = StatusOf(peer);
  REQUIRE(at_peer.forks.size() == 1);
  CHECK(at_peer.forks[0].seq == 1);
  CHECK(TextField(peer, "consultations", "fork-b", "topic") == "复制机");
}

TEST_CASE("rebuild re-materializes the same tables and conflicts from the log", "[replica][rebuild]") {
  Cluster cluster;
  Node& hub_node = cluster.hub();
  Node& st_node = cluster.AddStation(kStationName, "0512", kTownship);
  Replica& hub = *hub_node.replica;
  Replica& st = *st_node.replica;
  Roster roster = MakeRoster(hub);
  REQUIRE_OK(Exchange(hub, st));
  auto c1 = PutRow(st, "cases", std::nullopt,
                   {{"lawyer_id", roster.senior}, {"category", "criminal"}, {"recovered_amount", "1234.5"}});
  auto v1 = PutRow(st, "return_visits", std::nullopt, {{"satisfaction", "4"}, {"fee_charged", "1"}});
  auto k1 = PutRow(st, "complaints", std::nullopt, {{"status", "open"}});
  REQUIRE_OK(c1);
  REQUIRE_OK(v1);
  REQUIRE_OK(k1);
  ExchangeBoth(st, hub);
  st_node.clock->Advance(10);
  REQUIRE_OK(PutRow(st, "cases", *c1, {{"outcome", "胜诉"}}));
  REQUIRE_OK(PutRow(hub, "cases", *c1, {{"outcome", "调解"}}));
  REQUIRE_OK(DeleteRow(st, "complaints", *k1));
  REQUIRE_OK(PutRow(hub, "complaints", *k1, {{"status", "closed"}}));
  REQUIRE_OK(DeleteRow(hub, "lawyers", roster.intern));
  ExchangeBoth(hub, st);
  REQUIRE(StatusOf(hub).conflicts_open == 2);

  for (Node* node : {&hub_node, &st_node}) {
    Replica& r = *node->replica;
    std::string before = Dump(r);
    int64_t conflicts = StatusOf(r).conflicts_open;
    REQUIRE_OK(r.Rebuild());
    CHECK(Dump(r) == before);
    CHECK(StatusOf(r).conflicts_open == conflicts);
    cluster.Reopen(*node);
    CHECK(Dump(*node->replica) == before);
  }
  CHECK(Dump(*hub_node.replica) == Dump(*st_node.replica));
}

TEST_CASE("remote apply: every single-byte tampering of a changeset is rejected and applies nothing",
          "[replica][remote][tamper]") {
  Cluster cluster;
  Replica& hub = *cluster.hub().replica;
  Replica& st = *cluster.AddStation(kStationName, "0512", kTownship).replica;
  REQUIRE_OK(PutRow(st, "consultations", "r1", {{"topic", "t"}}));
  auto own = OwnEnvelopes(st);
  REQUIRE(own.size() == 1);
  const std::string& envelope = own[0];
  std::string before = Snapshot(hub);

  std::vector<std::string> tampered;
  for (size_t i = 0; i < envelope.size(); ++i) {
    std::string bad = envelope;
    bad[i] = static_cast<char>(static_cast<uint8_t>(bad[i]) ^ 0x01);
    tampered.push_back(bad);
  }
  auto report = hub.ApplyRemote(tampered);
  REQUIRE_OK(report);
  CHECK(report->applied == 0);
  CHECK(report->held == 0);
  CHECK(report->duplicates == 0);
  CHECK(report->rejected == static_cast<int>(envelope.size()));
  CHECK(Snapshot(hub) == before);
  ReplicaStatus status = StatusOf(hub);
  CHECK(status.rejected["malformed"] + status.rejected["bad_signature"] == static_cast<int64_t>(envelope.size()));

  // The genuine bytes still apply afterwards.
  auto genuine = hub.ApplyRemote({envelope});
  REQUIRE_OK(genuine);
  CHECK(genuine->applied == 1);
  CHECK(TextField(hub, "consultations", "r1", "topic") == "t");
}

// ----------------------------------------------------------------------- clocks

TEST_CASE("clock: a station with a slow clock stamps its writes after everything it has seen", "[replica][hlc]") {
  Cluster cluster;
  Node& hub_node = cluster.hub();
  Node& st_node = cluster.AddStation(kStationName, "0512", kTownship);
  Replica& hub = *hub_node.replica;
  Replica& st = *st_node.replica;
  st_node.clock->Advance(-30LL * 60 * 1000);  // half an hour slow
  auto id = PutRow(st, "consultations", std::nullopt, {{"topic", "初始"}});
  REQUIRE_OK(id);
  ExchangeBoth(st, hub);
  REQUIRE_OK(PutRow(hub, "consultations", *id, {{"topic", "中心"}}));
  ExchangeBoth(hub, st);
  REQUIRE_OK(PutRow(st, "consultations", *id, {{"topic", "工作站更正"}}));
  CHECK(HlcOf(OwnEnvelopes(st).back()) > HlcOf(OwnEnvelopes(hub).back()));
  CHECK(HlcMillis(HlcOf(OwnEnvelopes(st).back())) >= static_cast<uint64_t>(hub_node.clock->NowMillis()));
  ExchangeBoth(st, hub);
  CHECK(TextField(hub, "consultations", *id, "topic") == "工作站更正");
  CHECK(DumpConflicts(hub).empty());
  CHECK(Dump(hub) == Dump(st));
}

TEST_CASE("clock: with a clock a day slow, a station's causal overwrite still wins", "[replica][hlc]") {
  Cluster cluster;
  Node& hub_node = cluster.hub();
  Node& st_node = cluster.AddStation(kStationName, "0512", kTownship);
  Replica& hub = *hub_node.replica;
  Replica& st = *st_node.replica;
  st_node.clock->Advance(-24LL * 3600 * 1000);
  auto id = PutRow(st, "consultations", std::nullopt, {{"topic", "初始"}});
  REQUIRE_OK(id);
  ExchangeBoth(st, hub);
  REQUIRE_OK(PutRow(hub, "consultations", *id, {{"topic", "中心"}}));
  ExchangeBoth(hub, st);
  // The hub's clock looks a day ahead to the station: not adopted, an alert.
  CHECK(Mentions(StatusOf(st).alerts, "clock", testing::kHubName));
  REQUIRE_OK(PutRow(st, "consultations", *id, {{"topic", "工作站更正"}}));
  ExchangeBoth(st, hub);
  for (Replica* r : {&hub, &st}) {
    CHECK(TextField(*r, "consultations", *id, "topic") == "工作站更正");
    CHECK(DumpConflicts(*r).empty());
  }
}

TEST_CASE("clock: a remote clock more than an hour ahead is applied, not adopted, and raises an alert",
          "[replica][hlc]") {
  Cluster cluster;
  Node& hub_node = cluster.hub();
  Node& st_node = cluster.AddStation(kStationName, "0512", kTownship);
  Replica& hub = *hub_node.replica;
  Replica& st = *st_node.replica;
  st_node.clock->Advance(3LL * 3600 * 1000);  // three hours fast
  auto id = PutRow(st, "consultations", std::nullopt, {{"topic", "未来"}});
  REQUIRE_OK(id);
  auto report = Exchange(st, hub);
  REQUIRE_OK(report);
  CHECK(report->applied == 1);
  CHECK(TextField(hub, "consultations", *id, "topic") == "未来");
  CHECK(Mentions(StatusOf(hub).alerts, "clock", kStationName));
  REQUIRE_OK(PutRow(hub, "notices", std::nullopt, {{"title", "t"}}));
  CHECK(HlcOf(OwnEnvelopes(hub).back()) < HlcOf(OwnEnvelopes(st).back()));

  // Within the hour: adopted silently.
  Cluster near;
  Node& near_station = near.AddStation(kStationName, "0512", kTownship);
  near_station.clock->Advance(30LL * 60 * 1000);
  REQUIRE_OK(PutRow(*near_station.replica, "consultations", std::nullopt, {{"topic", "稍快"}}));
  REQUIRE_OK(Exchange(*near_station.replica, *near.hub().replica));
  CHECK_FALSE(Mentions(StatusOf(*near.hub().replica).alerts, "clock"));
  REQUIRE_OK(PutRow(*near.hub().replica, "notices", std::nullopt, {{"title", "t"}}));
  CHECK(HlcOf(OwnEnvelopes(*near.hub().replica).back()) > HlcOf(OwnEnvelopes(*near_station.replica).back()));
}

// ------------------------------------------------------------------ concurrency

TEST_CASE("concurrency: two writers on one data dir never reuse a seq, hlc or notice number",
          "[replica][concurrency]") {
  Cluster cluster;
  Node& st_node = cluster.AddStation(kStationName, "0512", kTownship);
  st_node.replica.reset();
  constexpr int kPerThread = 200;
  std::vector<std::string> errors[2];
  auto writer = [&](int t) {
    auto opened = Replica::Open(st_node.dir, st_node.env);
    if (!opened.ok()) {
      errors[t].push_back(opened.status().ToString());
      return;
    }
    Replica& r = **opened;
    for (int i = 0; i < kPerThread; ++i) {
      auto id = PutRow(r, "cases", std::nullopt, {{"category", "civil"}, {"outcome", std::to_string(t)}});
      if (!id.ok()) errors[t].push_back(id.status().ToString());
    }
  };
  std::thread a(writer, 0), b(writer, 1);
  a.join();
  b.join();
  INFO((errors[0].empty() ? "" : errors[0][0]) << (errors[1].empty() ? "" : errors[1][0]));
  REQUIRE(errors[0].empty());
  REQUIRE(errors[1].empty());

  cluster.Reopen(st_node);
  Replica& st = *st_node.replica;
  auto query = [&](const std::string& sql) {
    auto q = st.Query(sql);
    REQUIRE_OK(q);
    return *q;
  };
  std::string me = "x'" + st.identity().key.Hex() + "'";
  CHECK(query("SELECT author, scope, class, seq, count(*) FROM aidsync_log "
              "GROUP BY author, scope, class, seq HAVING count(*) > 1").rows.empty());
  CHECK(query("SELECT hlc, count(*) FROM aidsync_log WHERE author = " + me +
              " GROUP BY hlc HAVING count(*) > 1").rows.empty());
  CHECK(query("SELECT notice_number, count(*) FROM cases GROUP BY notice_number HAVING count(*) > 1").rows.empty());
  auto counts = query("SELECT count(*), min(seq), max(seq) FROM aidsync_log WHERE author = " + me +
                      " AND class = 1");
  CHECK(counts.rows[0][0] == Value::Integer(2 * kPerThread));
  CHECK(counts.rows[0][1] == Value::Integer(1));
  CHECK(counts.rows[0][2] == Value::Integer(2 * kPerThread));
  auto cases = query("SELECT count(*), count(DISTINCT notice_number) FROM cases");
  CHECK(cases.rows[0][0] == Value::Integer(2 * kPerThread));
  CHECK(cases.rows[0][1] == Value::Integer(2 * kPerThread));
  // The interleaved chain is well-formed for a receiver.
  Replica& hub = *cluster.hub().replica;
  auto report = Exchange(st, hub);
  REQUIRE_OK(report);
  CHECK(report->applied == 2 * kPerThread);
  CHECK(report->rejected == 0);
  CHECK(report->held == 0);
}

}  // namespace aidsync
