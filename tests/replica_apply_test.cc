// Tests for Replica::ApplyRemote (sync/replica_apply.cc): duplicates, held
// changesets, rejections and their counts, unknown tables and columns, forks,
// rows two stations created under one id, and tampering.
#include <algorithm>
#include <filesystem>
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "sync/changeset.h"
#include "sync/replica.h"
#include "tests/cluster_fixture.h"

namespace aidsync {
namespace {

using testing::Cluster;
using testing::Dump;
using testing::DumpConflicts;
using testing::Exchange;
using testing::Field;
using testing::FilesUnder;
using testing::HandBuilt;
using testing::Holding;
using testing::IdOf;
using testing::Mentions;
using testing::Node;
using testing::OneRow;
using testing::OwnEnvelopes;
using testing::PutRow;
using testing::Snapshot;
using testing::StatusOf;
using testing::TextField;
using testing::TotalChangesets;
using testing::kStationName;
using testing::kTownship;

}  // namespace

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
  // Refused input is an alert for the admin (issue 5), with its reasons.
  CHECK(testing::Mentions(StatusOf(hub).alerts, "refused inputs: 1", "unknown_author=1"));

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

// ------------------------------------------------------ rejection counts

TEST_CASE("remote apply: a refused changeset delivered again is counted once in status rejected",
          "[replica][remote][rejected]") {
  Cluster cluster;
  Replica& hub = *cluster.hub().replica;
  Replica& stranger = *cluster.AddStation("未登记站", "0999", kTownship, /*enrol_at_hub=*/false).replica;
  REQUIRE_OK(PutRow(stranger, "consultations", "row-x", {{"topic", "x"}}));
  auto own = OwnEnvelopes(stranger);
  REQUIRE(own.size() == 1);

  // A peer offers the same refused changeset every session, and twice in one batch.
  for (int delivery = 0; delivery < 3; ++delivery) {
    INFO("delivery " << delivery);
    auto report = hub.ApplyRemote(delivery == 2 ? std::vector<std::string>{own[0], own[0]} : own);
    REQUIRE_OK(report);
    CHECK(report->applied == 0);
    CHECK(report->rejected >= 1);  // refused again each time it is offered
    for (const auto& why : report->rejections) CHECK(why.rfind("unknown_author", 0) == 0);
    ReplicaStatus status = StatusOf(hub);
    CHECK(status.rejected["unknown_author"] == 1);  // distinct changesets, not deliveries
  }
  CHECK_FALSE(Field(hub, "consultations", "row-x", "topic").has_value());

  // A second, different refused changeset does count.
  REQUIRE_OK(PutRow(stranger, "consultations", "row-y", {{"topic", "y"}}));
  auto both = OwnEnvelopes(stranger);
  REQUIRE(both.size() == 2);
  REQUIRE_OK(hub.ApplyRemote(both));
  REQUIRE_OK(hub.ApplyRemote(both));
  CHECK(StatusOf(hub).rejected["unknown_author"] == 2);
}

TEST_CASE("remote apply: a refused changeset accepted once its author is known no longer counts as rejected",
          "[replica][remote][rejected]") {
  Cluster cluster;
  Replica& hub = *cluster.hub().replica;
  Node& stranger_node = cluster.AddStation("未登记站", "0999", kTownship, /*enrol_at_hub=*/false);
  Replica& stranger = *stranger_node.replica;
  REQUIRE_OK(PutRow(stranger, "consultations", "row-x", {{"topic", "x"}}));
  REQUIRE_OK(PutRow(stranger, "consultations", "row-y", {{"topic", "y"}}));
  auto own = OwnEnvelopes(stranger);
  REQUIRE(own.size() == 2);

  auto refused = hub.ApplyRemote(own);
  REQUIRE_OK(refused);
  CHECK(refused->rejected == 2);
  CHECK(StatusOf(hub).rejected["unknown_author"] == 2);

  auto added = hub.AddCertificate(cluster.CertificateOf(stranger_node).bytes());
  REQUIRE_OK(added);
  CHECK(*added);
  // The first one again: applied, and one fewer counted as rejected.
  auto first = hub.ApplyRemote({own[0]});
  REQUIRE_OK(first);
  CHECK(first->applied == 1);
  CHECK(first->rejected == 0);
  CHECK(TextField(hub, "consultations", "row-x", "topic") == "x");
  CHECK(StatusOf(hub).rejected["unknown_author"] == 1);
  // The second: applied, and the reason disappears once its count is zero.
  auto second = hub.ApplyRemote({own[1]});
  REQUIRE_OK(second);
  CHECK(second->applied == 1);
  CHECK(TextField(hub, "consultations", "row-y", "topic") == "y");
  ReplicaStatus status = StatusOf(hub);
  CHECK(status.rejected.count("unknown_author") == 0);
  CHECK(status.rejected.empty());
  CHECK(status.held_changesets == 0);
  // Delivered again, they are duplicates and the counts stay as they are.
  auto again = hub.ApplyRemote(own);
  REQUIRE_OK(again);
  CHECK(again->duplicates == 2);
  CHECK(StatusOf(hub).rejected.empty());
}

// ------------------------------------------------------- one id, two scopes

TEST_CASE("remote apply: two stations that chose one row id: the first scope keeps the row, the other "
          "changeset is applied and its chain continues, and an alert names the row",
          "[replica][remote][scope]") {
  Cluster cluster;
  Replica& hub = *cluster.hub().replica;
  Replica& a = *cluster.AddStation(kStationName, "0512", kTownship).replica;
  Replica& b = *cluster.AddStation("东山镇工作站", "0613", "430123/06").replica;
  // Both import legacy records that carry the same id.
  REQUIRE_OK(PutRow(a, "consultations", "legacy-1", {{"channel", "walk_in"}, {"topic", "城关镇的记录"}}));
  {
    auto tx = b.BeginLocal();
    REQUIRE_OK(tx);
    REQUIRE_OK((*tx)->Put("consultations", std::string("legacy-1"), std::nullopt,
                          {{"channel", "phone"}, {"topic", "东山镇的记录"}}));
    REQUIRE_OK((*tx)->Put("consultations", std::string("b-first"), std::nullopt, {{"topic", "同批"}}));
    REQUIRE_OK((*tx)->Commit());
  }
  REQUIRE_OK(PutRow(b, "consultations", "b-later", {{"topic", "后来的记录"}}));
  REQUIRE(OwnEnvelopes(b).size() == 2);

  auto from_a = Exchange(a, hub);
  REQUIRE_OK(from_a);
  CHECK(from_a->applied == 1);
  auto from_b = Exchange(b, hub);
  REQUIRE_OK(from_b);
  CHECK(from_b->applied == 2);
  CHECK(from_b->rejected == 0);
  CHECK(from_b->held == 0);

  ReplicaStatus status = StatusOf(hub);
  CHECK(status.held_changesets == 0);
  CHECK(status.rejected.empty());
  CHECK(Mentions(status.alerts, "legacy-1", "scope"));
  // The row keeps the scope and values of the station that created it first here.
  CHECK(TextField(hub, "consultations", "legacy-1", "scope") == kTownship);
  CHECK(TextField(hub, "consultations", "legacy-1", "topic") == "城关镇的记录");
  CHECK(TextField(hub, "consultations", "legacy-1", "channel") == "walk_in");
  // The other station's other rows are there, before and after the clash.
  CHECK(TextField(hub, "consultations", "b-first", "topic") == "同批");
  CHECK(TextField(hub, "consultations", "b-first", "scope") == "430123/06");
  CHECK(TextField(hub, "consultations", "b-later", "topic") == "后来的记录");
  CHECK(TextField(hub, "consultations", "b-later", "scope") == "430123/06");
  CHECK(DumpConflicts(hub).empty());

  // The log is the truth: a rebuild gives the same rows.
  std::string before = testing::DumpTables(hub);
  REQUIRE_OK(hub.Rebuild());
  CHECK(testing::DumpTables(hub) == before);
}

// Refused input comes from the network: it must not be a way to fill the
// disk, nor to store what nobody vouches for (a prefix can hold names).
TEST_CASE("remote apply: bytes that do not decode are counted and described, not kept", "[replica][remote]") {
  Cluster cluster;
  Replica& hub = *cluster.hub().replica;
  std::string garbage(100 * 1024, '\x5a');
  auto report = hub.ApplyRemote({garbage});
  REQUIRE(report.ok());
  CHECK(report->rejected == 1);
  auto kept = hub.Query("SELECT reason, envelope IS NULL, author IS NULL, scope IS NULL FROM aidsync_rejected");
  REQUIRE(kept.ok());
  REQUIRE(kept->rows.size() == 1);
  CHECK(kept->rows[0][0] == Value::Text("malformed"));
  CHECK(kept->rows[0][1] == Value::Integer(1));
  CHECK(kept->rows[0][2] == Value::Integer(1));
  CHECK(kept->rows[0][3] == Value::Integer(1));
}

// Regression (red-team review): a refused changeset was kept whole (signed)
// or in its first 4 KiB (unknown author) in aidsync_rejected, so a hostile
// township could put village B's applicants on village A's disk.
TEST_CASE("remote apply: a village keeps nothing of another village's records it refused, in any of its files",
          "[replica][remote][rejected]") {
  Cluster cluster;
  Node& a_node = cluster.AddStation("新华村联系点", "0514", "430123/05/017");
  Node& t_node = cluster.AddStation(kStationName, "0512", kTownship);
  Node& b_node = cluster.AddStation("东风村联系点", "0515", "430123/05/018");
  Replica& a = *a_node.replica;
  for (Node* n : {&t_node, &b_node}) REQUIRE_OK(a.AddCertificate(cluster.CertificateOf(*n).bytes()));
  const std::string b_scope = "430123/05/018";
  const std::string name = "东风村申请人-赵秀英";
  const std::string id_number = "430123198807150048";
  auto applicant = [&](const std::string& row) {
    return OneRow("applications", row, {{"applicant_name", name}, {"id_number", id_number}, {"category", "civil"}});
  };
  testing::SeededRandom rng(77);
  SigningKey stranger = SigningKey::Generate(rng);
  SigningKey township = cluster.KeyOf(t_node);
  const uint64_t hlc = MakeHlc(testing::kDefaultStartMs, 1);
  // The township (a real enrolled key) writing at B's scope; the same chain
  // further on, its predecessor never sent (were it checked after the chain,
  // it would be held, body and all); B's own key; a key nobody enrolled.
  auto by_township = HandBuilt(township, b_scope, TableClass::kCase, 1, std::nullopt, hlc, {applicant("b-app-1")});
  auto never_sent = HandBuilt(township, b_scope, TableClass::kCase, 2, by_township.id, hlc + 1, {applicant("b-app-2")});
  auto after_gap = HandBuilt(township, b_scope, TableClass::kCase, 3, never_sent.id, hlc + 2, {applicant("b-app-3")});
  auto by_b = HandBuilt(cluster.KeyOf(b_node), b_scope, TableClass::kCase, 1, std::nullopt, hlc, {applicant("b-app-4")});
  auto unknown = HandBuilt(stranger, b_scope, TableClass::kCase, 1, std::nullopt, hlc, {applicant("b-app-5")});
  // A key nobody enrolled at A's own scope: nobody vouches for it either.
  auto unknown_here =
      HandBuilt(stranger, "430123/05/017", TableClass::kCase, 1, std::nullopt, hlc, {applicant("b-app-6")});

  // A's own applicant: the scan below does see records in these files.
  const std::string own_name = "新华村申请人-钱本村";
  REQUIRE_OK(PutRow(a, "applications", std::nullopt, {{"applicant_name", own_name}, {"category", "civil"}}));

  auto report = a.ApplyRemote(
      {after_gap.envelope, by_township.envelope, by_b.envelope, unknown.envelope, unknown_here.envelope});
  REQUIRE_OK(report);
  CHECK(report->applied == 0);
  CHECK(report->held == 0);
  CHECK(report->rejected == 5);

  auto files = FilesUnder(a_node.dir);
  std::string listing;
  for (const auto& [path, bytes] : files) listing += path + " (" + std::to_string(bytes.size()) + " bytes)\n";
  INFO("village A's data dir:\n" << listing);
  CHECK_FALSE(Holding(files, own_name).empty());
  CHECK(Holding(files, name).empty());
  CHECK(Holding(files, id_number).empty());

  // Stored compressed, a body would escape the byte scan: the rows say it.
  auto rows = a.Query(
      "SELECT reason, envelope IS NULL, scope, class, seq, author IS NOT NULL FROM aidsync_rejected ORDER BY reason, seq");
  REQUIRE_OK(rows);
  REQUIRE(rows->rows.size() == 5);
  int not_for_this_node = 0;
  for (const auto& row : rows->rows) {
    INFO(row[0].ToDisplay() << " seq " << row[4].ToDisplay());
    CHECK(row[1] == Value::Integer(1));  // no body
    CHECK(row[3] == Value::Integer(static_cast<int64_t>(TableClass::kCase)));
    CHECK(row[5] == Value::Integer(1));  // what decoded is kept: author, scope, class, seq
    if (row[0] == Value::Text("not_for_this_node")) {
      ++not_for_this_node;
      CHECK(row[2] == Value::Text(b_scope));
    } else {
      CHECK(row[0] == Value::Text("unknown_author"));
    }
  }
  CHECK(not_for_this_node == 3);
  auto held = a.Query("SELECT count(*) FROM aidsync_held");
  REQUIRE_OK(held);
  CHECK(held->rows[0][0] == Value::Integer(0));
  CHECK(StatusOf(a).rejected["not_for_this_node"] == 3);
  CHECK(StatusOf(a).rejected["unknown_author"] == 2);

  // A body this node may hold is still kept: the township at A's own scope,
  // refused as a broken chain (its predecessor is A's changeset).
  auto own = testing::OwnEnvelopes(a);
  REQUIRE(own.size() == 1);
  auto broken = HandBuilt(township, "430123/05/017", TableClass::kCase, 2, IdOf(own[0]), hlc + 5,
                          {OneRow("consultations", "a-c-1", {{"topic", "本村"}})});
  auto refused = a.ApplyRemote({broken.envelope});
  REQUIRE_OK(refused);
  REQUIRE(refused->rejections.size() == 1);
  CHECK(refused->rejections[0].rfind("broken_chain", 0) == 0);
  auto kept = a.Query("SELECT reason FROM aidsync_rejected WHERE envelope IS NOT NULL");
  REQUIRE_OK(kept);
  REQUIRE(kept->rows.size() == 1);
  CHECK(kept->rows[0][0] == Value::Text("broken_chain"));
}


// Regression (issue 7 review): a local changeset is merged before it is
// signed, while its id is still unknown. It was merged as the all-zero id,
// so a modified peer that named that id as a version it overwrote (pending)
// made the next local write of the field vanish on this node alone: no
// head, a NULL value, and a Rebuild (which knows the id) that disagreed.
TEST_CASE("remote apply: a peer naming the all-zero version cannot swallow a later local write",
          "[replica][remote][regression]") {
  Cluster cluster(31);
  Node& a = cluster.AddStation(kStationName, "0512", kTownship);
  Node& b = cluster.AddStation("城关镇第二工作站", "0513", kTownship);
  REQUIRE_OK(a->AddCertificate(cluster.CertificateOf(b).bytes()));

  ChangesetContent c;
  c.author = cluster.KeyOf(b).public_key();
  c.scope = kTownship;
  c.cls = TableClass::kCase;
  c.seq = 1;
  c.hlc = uint64_t{testing::kDefaultStartMs} << 16;
  c.schema_version = 1;
  c.deps = {Digest{}};  // the all-zero id, which no signed changeset has
  const std::string row = "0190a0b0-0000-7000-8000-000000000001";
  c.tables = {OneRow("consultations", row, {{"channel", "walk_in"}, {"topic", "旧的"}})};
  c.tables[0].rows[0].fields[1].overwrites = {0};
  auto signed_cs = SignChangeset(c, cluster.KeyOf(b));
  REQUIRE_OK(signed_cs);
  auto report = a->ApplyRemote({signed_cs->envelope});
  REQUIRE_OK(report);
  REQUIRE(report->applied == 1);

  REQUIRE_OK(PutRow(*a.replica, "consultations", row, {{"topic", "新的"}}));
  CHECK(Field(*a.replica, "consultations", row, "topic") == std::optional<Value>(Value::Text("新的")));
  const std::string before = Dump(*a.replica);
  REQUIRE_OK(a->Rebuild());
  CHECK(Dump(*a.replica) == before);
}

}  // namespace aidsync

// ------------------------------------------------------------ notice numbers

namespace aidsync {
namespace {

// Whether one alert names every one of `parts`.
bool OneAlertNames(const std::vector<std::string>& alerts, const std::vector<std::string>& parts) {
  for (const auto& alert : alerts) {
    bool all = true;
    for (const auto& p : parts) all = all && alert.find(p) != std::string::npos;
    if (all) return true;
  }
  return false;
}

}  // namespace

// Regression (red-team review): a station wrote the hub's code with number
// 999999, and the hub, receiving it, moved its own counter past it: its next
// number was 0500-1000000.
TEST_CASE("remote apply: a number under this node's code written by another station never moves its counter",
          "[replica][remote][notice]") {
  Cluster cluster;
  Replica& hub = *cluster.hub().replica;
  Node& st_node = cluster.AddStation(kStationName, "0512", kTownship);
  Replica& st = *st_node.replica;
  const std::string far = "(2024)法援字第0500-999999号";
  const std::string next = "(2024)法援字第0500-0001号";

  // Refused where it is typed.
  auto typed = PutRow(st, "cases", std::nullopt, {{"notice_number", far}, {"category", "civil"}});
  REQUIRE_CODE(typed, Status::Code::kInvalidArgument);
  CHECK(typed.status().message().find("notice_number") != std::string::npos);

  // A modified station sends it anyway, and the hub's next number too.
  auto forged = HandBuilt(cluster.KeyOf(st_node), kTownship, TableClass::kCase, 1, std::nullopt,
                          MakeHlc(testing::kDefaultStartMs, 1),
                          {{"cases", {"notice_number", "category"},
                            {RowOp{"forged-far", false, {{0, {}, false, Value::Text(far)}, {1, {}, false, Value::Text("civil")}}},
                             RowOp{"forged-next", false, {{0, {}, false, Value::Text(next)}}}}}});
  auto report = hub.ApplyRemote({forged.envelope});
  REQUIRE_OK(report);
  CHECK(report->applied == 1);  // a signed fact: applied
  CHECK(TextField(hub, "cases", "forged-far", "notice_number") == far);

  auto counters = hub.Query("SELECT count(*) FROM aidsync_notice_counters");
  REQUIRE_OK(counters);
  CHECK(counters->rows[0][0] == Value::Integer(0));
  // The hub's next case: not 1000000, nor 0002: the forged row's number is
  // not the hub's, so it is not passed over; the two cases sharing it are
  // named in an alert.
  auto h = PutRow(hub, "cases", std::nullopt, {{"category", "civil"}});
  REQUIRE_OK(h);
  CHECK(TextField(hub, "cases", *h, "notice_number") == next);
  CHECK(OneAlertNames(StatusOf(hub).alerts, {next, *h, "forged-next"}));
  // A thousand forged claims move it no further.
  std::vector<RowOp> claims;
  for (int i = 2; i < 1002; ++i) {
    char number[64];
    std::snprintf(number, sizeof number, "(2024)法援字第0500-%04d号", i);
    claims.push_back(RowOp{"claim-" + std::to_string(i), false, {{0, {}, false, Value::Text(number)}}});
  }
  auto flood = HandBuilt(cluster.KeyOf(st_node), kTownship, TableClass::kCase, 2, forged.id,
                         MakeHlc(testing::kDefaultStartMs, 2), {{"cases", {"notice_number"}, claims}});
  REQUIRE(hub.ApplyRemote({flood.envelope})->applied == 1);
  auto h2 = PutRow(hub, "cases", std::nullopt, {{"category", "civil"}});
  REQUIRE_OK(h2);
  CHECK(TextField(hub, "cases", *h2, "notice_number") == "(2024)法援字第0500-0002号");
}

TEST_CASE("remote apply: a deleted case's notice number stays used after a rebuild", "[replica][remote][notice]") {
  Cluster cluster;
  Replica& hub = *cluster.hub().replica;
  auto h = PutRow(hub, "cases", std::nullopt, {{"category", "civil"}});
  REQUIRE_OK(h);
  const std::string number = TextField(hub, "cases", *h, "notice_number").value_or("");
  REQUIRE(number == "(2024)法援字第0500-0001号");
  auto tx = hub.BeginLocal();
  REQUIRE_OK(tx);
  REQUIRE_OK((*tx)->Delete("cases", *h));
  REQUIRE_OK((*tx)->Commit());
  REQUIRE_OK(hub.Rebuild());
  auto typed = PutRow(hub, "cases", std::nullopt, {{"notice_number", number}, {"category", "civil"}});
  REQUIRE_CODE(typed, Status::Code::kInvalidArgument);
  CHECK(typed.status().message().find("notice_number") != std::string::npos);
}

TEST_CASE("remote apply: a received notice number another case holds is applied and raises an alert naming both",
          "[replica][remote][notice]") {
  Cluster cluster;
  Replica& hub = *cluster.hub().replica;
  Node& st_node = cluster.AddStation(kStationName, "0512", kTownship);
  auto h = PutRow(hub, "cases", std::nullopt, {{"category", "civil"}});
  REQUIRE_OK(h);
  const std::string number = "(2024)法援字第0500-0001号";
  REQUIRE(TextField(hub, "cases", *h, "notice_number") == number);

  auto forged = HandBuilt(cluster.KeyOf(st_node), kTownship, TableClass::kCase, 1, std::nullopt,
                          MakeHlc(testing::kDefaultStartMs, 1),
                          {OneRow("cases", "forged-dup", {{"notice_number", number}, {"category", "civil"}})});
  auto report = hub.ApplyRemote({forged.envelope});
  REQUIRE_OK(report);
  CHECK(report->applied == 1);
  CHECK(TextField(hub, "cases", "forged-dup", "notice_number") == number);
  CHECK(TextField(hub, "cases", *h, "notice_number") == number);
  CHECK(OneAlertNames(StatusOf(hub).alerts, {number, *h, "forged-dup"}));

  // It stands while the duplicate does: after a rebuild and a reopen too.
  REQUIRE_OK(hub.Rebuild());
  cluster.Reopen(cluster.hub());
  Replica& reopened = *cluster.hub().replica;
  CHECK(OneAlertNames(StatusOf(reopened).alerts, {number, *h, "forged-dup"}));
  // The number is used: typing it on the hub is refused.
  REQUIRE_CODE(PutRow(reopened, "cases", std::nullopt, {{"notice_number", number}}), Status::Code::kInvalidArgument);

  // Once the other row holds another number, no alert.
  auto moved = HandBuilt(cluster.KeyOf(st_node), kTownship, TableClass::kCase, 2, forged.id,
                         MakeHlc(testing::kDefaultStartMs + 60000, 0),
                         {OneRow("cases", "forged-dup", {{"notice_number", "(2024)法援字第0512-0077号"}})});
  auto again = reopened.ApplyRemote({moved.envelope});
  REQUIRE_OK(again);
  CHECK(again->applied == 1);
  REQUIRE(TextField(reopened, "cases", "forged-dup", "notice_number") == "(2024)法援字第0512-0077号");
  CHECK_FALSE(OneAlertNames(StatusOf(reopened).alerts, {number}));
}

}  // namespace aidsync
