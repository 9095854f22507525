// Tests for sync/merge.h through the replica: concurrent edits and deletes
// converge and list the same open conflicts, ties are broken by author key,
// and a field's heads do not depend on the order changesets arrive in.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "sync/changeset.h"
#include "sync/replica.h"
#include "tests/cluster_fixture.h"

namespace aidsync {
namespace {

using testing::Cluster;
using testing::DeleteRow;
using testing::Dump;
using testing::DumpConflicts;
using testing::DumpTables;
using testing::Exchange;
using testing::ExchangeBoth;
using testing::Field;
using testing::HlcOf;
using testing::Node;
using testing::OwnEnvelopes;
using testing::PutRow;
using testing::StatusOf;
using testing::TextField;
using testing::kStationName;
using testing::kTownship;

}  // namespace

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

}  // namespace aidsync
