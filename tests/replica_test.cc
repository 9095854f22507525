// Tests for sync/replica.h and sync/local_write.h: local writes and their
// validation, scopes, notice numbers, changeset size limits, creating and
// opening a data dir, rebuild, clocks and concurrent writers. Remote apply is
// in replica_apply_test.cc, the merge in merge_test.cc, the domain rules in
// domain_rules_test.cc; shared helpers in cluster_fixture.h.
#include "sync/replica.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "sync/changeset.h"
#include "sync/local_write.h"
#include "tests/cluster_fixture.h"

namespace aidsync {
namespace {

using testing::Cluster;
using testing::DeleteRow;
using testing::Dump;
using testing::DumpConflicts;
using testing::Exchange;
using testing::ExchangeBoth;
using testing::Field;
using testing::HlcOf;
using testing::MakeRoster;
using testing::Mentions;
using testing::Node;
using testing::OwnEnvelopes;
using testing::PutRow;
using testing::Roster;
using testing::Snapshot;
using testing::StatusOf;
using testing::TextField;
using testing::TotalChangesets;
using testing::ReadFile;
using testing::WriteFile;
using testing::kStationName;
using testing::kTownship;

// The hub receives everything `st` committed, refuses none of it (the
// changesets are well-formed for every receiver) and shows the same rows.
void RequireHubAcceptsAll(Cluster& cluster, Replica& st, int applied) {
  Replica& hub = *cluster.hub().replica;
  auto report = Exchange(st, hub);
  REQUIRE_OK(report);
  CHECK(report->rejected == 0);
  CHECK(report->applied == applied);
  CHECK(testing::ListText(hub, "consultations") == testing::ListText(st, "consultations"));
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
  RequireHubAcceptsAll(cluster, st, 2);
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
  RequireHubAcceptsAll(cluster, st, 2);
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

TEST_CASE("replica: a large value after many small rows is cut into its own changeset, and an oversized row is refused",
          "[replica][size]") {
  Cluster cluster;
  Replica& st = *cluster.AddStation(kStationName, "0512", kTownship).replica;
  Replica& hub = *cluster.hub().replica;
  const size_t limit = ChangesetLimits{}.max_envelope_bytes;
  {
    // ~420 rows of ~400 bytes nearly fill a changeset; the 60,000-byte value
    // must not be added to it, or it would be over the limit.
    auto tx = st.BeginLocal();
    REQUIRE_OK(tx);
    const std::string small(400, 's');
    for (int i = 0; i < 420; ++i)
      REQUIRE_OK((*tx)->Put("consultations", std::nullopt, std::nullopt, {{"summary", small}}));
    REQUIRE_OK((*tx)->Put("consultations", std::string("big-one"), std::nullopt,
                          {{"summary", std::string(60000, 'b')}}));
    auto summary = (*tx)->Commit();
    REQUIRE_OK(summary);
    tx->reset();
    CHECK(summary->changesets >= 2);
    CHECK(summary->rows == 421);
  }
  auto own = OwnEnvelopes(st);
  CHECK(own.size() >= 2);
  for (const auto& e : own) CHECK(e.size() <= limit);
  CHECK(Field(st, "consultations", "big-one", "summary") == Value::Text(std::string(60000, 'b')));
  auto report = Exchange(st, hub);
  REQUIRE_OK(report);
  CHECK(report->rejected == 0);
  CHECK(report->applied == static_cast<int>(own.size()));
  CHECK(Field(hub, "consultations", "big-one", "summary") == Value::Text(std::string(60000, 'b')));

  // One row whose values total more than half the target body size is
  // refused when it is put, and the transaction stays usable.
  std::string before = Snapshot(st);
  auto tx = st.BeginLocal();
  REQUIRE_OK(tx);
  const std::string part(30000, 'x');
  std::vector<std::pair<std::string, std::string>> huge;
  for (const char* column : {"applicant_name", "id_number", "phone", "address", "matter", "decision_basis",
                             "received_at", "decided_at"})
    huge.emplace_back(column, part);
  REQUIRE(huge.size() * part.size() > kTargetBodyBytes / 2);
  REQUIRE_CODE((*tx)->Put("applications", std::string("huge-row"), std::nullopt, huge),
               Status::Code::kInvalidArgument);
  auto summary = (*tx)->Commit();
  REQUIRE_OK(summary);
  CHECK(summary->changesets == 0);
  tx->reset();
  CHECK(Snapshot(st) == before);
  CHECK_FALSE(Field(st, "applications", "huge-row", "matter").has_value());
  REQUIRE_CODE(PutRow(st, "applications", std::nullopt, huge), Status::Code::kInvalidArgument);
  CHECK(Snapshot(st) == before);
  // Under the bound, a row of large values is fine.
  huge.resize(3);
  auto fits = PutRow(st, "applications", std::nullopt, huge);
  REQUIRE_OK(fits);
  CHECK(TextField(st, "applications", *fits, "phone") == part);
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

  // A number given explicitly under this station's code is kept, and the
  // counter moves past it so it is never issued again (a duplicate notice
  // number was possible before).
  auto given = PutRow(st, "cases", std::nullopt, {{"notice_number", "(2024)法援字第0512-0999号"}});
  REQUIRE_OK(given);
  CHECK(TextField(st, "cases", *given, "notice_number") == "(2024)法援字第0512-0999号");

  // Updates keep the number; the next new case continues the sequence.
  REQUIRE_OK(PutRow(st, "cases", *a, {{"status", "closed"}}));
  CHECK(TextField(st, "cases", *a, "notice_number") == "(2024)法援字第0512-0001号");
  auto c = PutRow(st, "cases", std::nullopt, {{"category", "civil"}});
  REQUIRE_OK(c);
  CHECK(TextField(st, "cases", *c, "notice_number") == "(2024)法援字第0512-1000号");

  // Two cases in one transaction get two numbers.
  auto tx = st.BeginLocal();
  REQUIRE_OK(tx);
  auto d = (*tx)->Put("cases", std::nullopt, std::nullopt, {});
  auto e = (*tx)->Put("cases", std::nullopt, std::nullopt, {});
  REQUIRE_OK(d);
  REQUIRE_OK(e);
  REQUIRE_OK((*tx)->Commit());
  tx->reset();
  CHECK(TextField(st, "cases", *d, "notice_number") == "(2024)法援字第0512-1001号");
  CHECK(TextField(st, "cases", *e, "notice_number") == "(2024)法援字第0512-1002号");

  // The hub numbers from its own code.
  Replica& hub = *cluster.hub().replica;
  auto h = PutRow(hub, "cases", std::nullopt, {{"category", "civil"}});
  REQUIRE_OK(h);
  CHECK(TextField(hub, "cases", *h, "notice_number") == "(2024)法援字第0500-0001号");
}

TEST_CASE("replica: a cases row put with an empty notice_number gets a generated one", "[replica][notice]") {
  Cluster cluster;
  Replica& st = *cluster.AddStation(kStationName, "0512", kTownship).replica;
  // `aidsync put cases new notice_number=` and a CSV import with an empty cell.
  auto empty = PutRow(st, "cases", std::nullopt, {{"notice_number", ""}, {"category", "civil"}});
  REQUIRE_OK(empty);
  CHECK(TextField(st, "cases", *empty, "notice_number") == "(2024)法援字第0512-0001号");
  auto none = PutRow(st, "cases", std::nullopt, {{"category", "civil"}});
  REQUIRE_OK(none);
  CHECK(TextField(st, "cases", *none, "notice_number") == "(2024)法援字第0512-0002号");
  // Typed values: an empty text or NULL is no number either.
  auto tx = st.BeginLocal();
  REQUIRE_OK(tx);
  auto typed_empty = (*tx)->PutValues("cases", std::nullopt, std::nullopt, {{"notice_number", Value::Text("")}});
  auto typed_null = (*tx)->PutValues("cases", std::nullopt, std::nullopt, {{"notice_number", Value::Null()}});
  REQUIRE_OK(typed_empty);
  REQUIRE_OK(typed_null);
  REQUIRE_OK((*tx)->Commit());
  tx->reset();
  CHECK(TextField(st, "cases", *typed_empty, "notice_number") == "(2024)法援字第0512-0003号");
  CHECK(TextField(st, "cases", *typed_null, "notice_number") == "(2024)法援字第0512-0004号");
  auto q = st.Query("SELECT count(*) FROM cases WHERE notice_number IS NULL OR notice_number = ''");
  REQUIRE_OK(q);
  CHECK(q->rows[0][0] == Value::Integer(0));
}

TEST_CASE("replica: a refused case transaction does not use up a notice number", "[replica][notice]") {
  Cluster cluster;
  Replica& st = *cluster.AddStation(kStationName, "0512", kTownship).replica;
  REQUIRE_CODE(PutRow(st, "cases", std::nullopt, {{"lawyer_id", "no-such-lawyer"}}), Status::Code::kRuleViolation);
  auto a = PutRow(st, "cases", std::nullopt, {{"category", "civil"}});
  REQUIRE_OK(a);
  CHECK(TextField(st, "cases", *a, "notice_number") == "(2024)法援字第0512-0001号");
}

// ---------------------------------------------------------------- data dirs

namespace {

NodeConfig StationConfig(const PublicKey& authority) {
  NodeConfig config;
  config.name = kStationName;
  config.code = "0512";
  config.scope = kTownship;
  config.role = Role::kStation;
  config.authority = authority;
  return config;
}

}  // namespace

TEST_CASE("replica: an init interrupted before node.key was written can be run again", "[replica][init]") {
  testing::TempDir tmp;
  testing::TestClock clock;
  testing::SeededRandom random(3);
  Env env;
  env.clock = &clock;
  env.random = &random;
  SigningKey authority = SigningKey::Generate(random);
  const NodeConfig config = StationConfig(authority.public_key());

  SECTION("a garbage replica.db") {
    const std::string dir = tmp.path() + "/garbage";
    REQUIRE(::mkdir(dir.c_str(), 0700) == 0);
    // A crashed init leaves its partial key first, then a torn database.
    WriteFile(dir + "/node.key.partial", "aidsync-ed25519-secret-v1 00");
    WriteFile(dir + "/replica.db", "not a database, half written by a crashed init\n");
    WriteFile(dir + "/replica.db-wal", "junk");
    REQUIRE_CODE(Replica::Open(dir, env), Status::Code::kNotFound);
    auto key = Replica::Create(dir, config, env);
    REQUIRE_OK(key);
    auto opened = Replica::Open(dir, env);
    REQUIRE_OK(opened);
    CHECK((*opened)->identity().key == *key);
    CHECK((*opened)->identity().code == "0512");
    CHECK(TotalChangesets(**opened) == 0);
    REQUIRE_CODE(Replica::Create(dir, config, env), Status::Code::kAlreadyExists);
  }
  SECTION("a complete replica.db whose node.key never appeared") {
    const std::string dir = tmp.path() + "/real";
    auto first = Replica::Create(dir, config, env);
    REQUIRE_OK(first);
    REQUIRE(::unlink((dir + "/node.key").c_str()) == 0);
    REQUIRE_CODE(Replica::Open(dir, env), Status::Code::kNotFound);
    auto second = Replica::Create(dir, config, env);
    REQUIRE_OK(second);
    CHECK_FALSE(*second == *first);
    auto opened = Replica::Open(dir, env);
    REQUIRE_OK(opened);
    CHECK((*opened)->identity().key == *second);
  }
  SECTION("a replica.db that no init of ours left is not deleted") {
    const std::string dir = tmp.path() + "/foreign";
    REQUIRE(::mkdir(dir.c_str(), 0700) == 0);
    WriteFile(dir + "/replica.db", "someone else's file\n");
    REQUIRE_CODE(Replica::Create(dir, config, env), Status::Code::kAlreadyExists);
    CHECK(ReadFile(dir + "/replica.db") == "someone else's file\n");
    CHECK_FALSE(std::filesystem::exists(dir + "/node.key.partial"));
  }
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
