// Tests for sync/bundle.h, in process: a bundle carries what its recipient
// may see (its own changesets included), applies all or nothing, and is
// sealed to the recipient.
#include "sync/bundle.h"

#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <string>
#include <vector>

#include "sync/replica.h"
#include "tests/cluster_fixture.h"

namespace aidsync {
namespace {

using testing::Cluster;
using testing::CopyDataDir;
using testing::Exchange;
using testing::ListText;
using testing::MakeRoster;
using testing::Node;
using testing::OpenCopy;
using testing::OwnEnvelopes;
using testing::PutRow;
using testing::ReadFile;
using testing::Roster;
using testing::Snapshot;
using testing::StatusOf;
using testing::TextField;
using testing::TotalChangesets;
using testing::kStationName;
using testing::kTownship;
using testing::WriteFile;

bool KnowsCode(Replica& r, const std::string& code) {
  auto cert = r.CertificateByCode(code);
  REQUIRE_OK(cert);
  return cert->has_value();
}

}  // namespace

TEST_CASE("bundle: round trip from the hub to a station", "[bundle]") {
  Cluster cluster;
  Replica& hub = *cluster.hub().replica;
  Replica& st = *cluster.AddStation(kStationName, "0512", kTownship).replica;
  Replica& other = *cluster.AddStation("东山镇工作站", "0613", "430123/06").replica;
  Roster roster = MakeRoster(hub);
  auto notice = PutRow(hub, "notices", std::nullopt, {{"title", "值班安排"}, {"issued_at", "2024-06-15"}});
  REQUIRE_OK(notice);
  auto other_row = PutRow(other, "consultations", std::nullopt, {{"topic", "东山"}});
  REQUIRE_OK(other_row);
  REQUIRE_OK(Exchange(other, hub));

  const std::string path = cluster.root() + "/to-0512.bundle";
  auto created = CreateBundle(hub, "0512", path);
  REQUIRE_OK(created);
  CHECK(created->changesets == static_cast<int64_t>(testing::EnvelopesVisibleTo(hub, kTownship).size()));
  CHECK(created->certificates >= 3);
  struct stat info;
  REQUIRE(::stat(path.c_str(), &info) == 0);
  CHECK((info.st_mode & 0777) == 0600);
  CHECK_FALSE(std::filesystem::exists(path + ".partial"));

  auto applied = ApplyBundle(st, path);
  REQUIRE_OK(applied);
  CHECK(applied->report.applied == created->changesets);
  CHECK(applied->report.rejected == 0);
  CHECK(applied->report.held == 0);
  CHECK(applied->certificates_rejected == 0);
  CHECK(ListText(st, "lawyers") == ListText(hub, "lawyers"));
  CHECK(ListText(st, "notices") == ListText(hub, "notices"));
  CHECK(TextField(st, "lawyers", roster.senior, "name") == "李律师");
  CHECK(KnowsCode(st, testing::kHubCode));
  // Case records of another township never travel down.
  CHECK_FALSE(TextField(st, "consultations", *other_row, "topic").has_value());

  // Applying it again changes nothing.
  std::string before = Snapshot(st);
  auto again = ApplyBundle(st, path);
  REQUIRE_OK(again);
  CHECK(again->report.applied == 0);
  CHECK(again->report.duplicates == created->changesets);
  CHECK(Snapshot(st) == before);

  REQUIRE_CODE(CreateBundle(hub, "0512", path), Status::Code::kAlreadyExists);
  REQUIRE_CODE(CreateBundle(hub, "9999", cluster.root() + "/nobody.bundle"), Status::Code::kNotFound);
  // A bundle sealed to another station opens nowhere else.
  const std::string elsewhere = cluster.root() + "/to-0613.bundle";
  REQUIRE_OK(CreateBundle(hub, "0613", elsewhere));
  REQUIRE_CODE(ApplyBundle(st, elsewhere), Status::Code::kCorruption);
  REQUIRE_CODE(ApplyBundle(st, cluster.root() + "/missing.bundle"), Status::Code::kNotFound);
  CHECK(Snapshot(st) == before);
}

TEST_CASE("bundle: a truncated bundle applies nothing", "[bundle]") {
  Cluster cluster;
  Replica& hub = *cluster.hub().replica;
  Replica& st = *cluster.AddStation(kStationName, "0512", kTownship).replica;
  cluster.AddStation("东山镇工作站", "0613", "430123/06");
  MakeRoster(hub);
  for (int i = 0; i < 10; ++i)
    REQUIRE_OK(PutRow(hub, "notices", std::nullopt, {{"title", "通知" + std::to_string(i)}}));
  const std::string path = cluster.root() + "/to-0512.bundle";
  auto created = CreateBundle(hub, "0512", path);
  REQUIRE_OK(created);
  REQUIRE(created->changesets >= 15);
  const std::string bytes = ReadFile(path);

  const int64_t total = TotalChangesets(st);
  const std::string before = Snapshot(st);
  REQUIRE_FALSE(KnowsCode(st, "0613"));
  // Small batches: the early ones are applied before the damage is found.
  BundleReadOptions options;
  options.batch_changesets = 2;
  const size_t n = bytes.size();
  for (size_t cut : {size_t{0}, size_t{1}, size_t{40}, n / 5, n / 3, n / 2, 2 * n / 3, n - 40, n - 17, n - 1}) {
    INFO("cut at " << cut << " of " << n << " bytes");
    const std::string damaged = cluster.root() + "/cut-" + std::to_string(cut) + ".bundle";
    WriteFile(damaged, bytes.substr(0, cut));
    auto result = ApplyBundle(st, damaged, options);
    REQUIRE_FALSE(result.ok());
    CHECK(result.status().code() == Status::Code::kCorruption);
    CHECK(TotalChangesets(st) == total);
    CHECK(Snapshot(st) == before);
    CHECK_FALSE(KnowsCode(st, "0613"));  // no certificate either
    CHECK(StatusOf(st).rejected.empty());
  }
  // The whole file applies.
  auto whole = ApplyBundle(st, path, options);
  REQUIRE_OK(whole);
  CHECK(whole->report.applied == created->changesets);
  CHECK(TotalChangesets(st) == total + created->changesets);
  CHECK(KnowsCode(st, "0613"));
}

TEST_CASE("bundle: a station restored from an old backup gets its own changesets back", "[bundle]") {
  Cluster cluster;
  Replica& hub = *cluster.hub().replica;
  Node& st_node = cluster.AddStation(kStationName, "0512", kTownship);
  const std::string backup = cluster.root() + "/backup-0512";
  CopyDataDir(cluster, st_node, backup);  // taken before the station wrote anything
  Replica& st = *st_node.replica;

  auto a = PutRow(st, "consultations", std::nullopt, {{"topic", "备份之后"}});
  REQUIRE_OK(a);
  REQUIRE_OK(PutRow(st, "consultations", *a, {{"summary", "第二次"}}));
  auto v = PutRow(st, "return_visits", std::nullopt, {{"satisfaction", "5"}}, std::string("430123/05/017"));
  REQUIRE_OK(v);
  auto sent = Exchange(st, hub);
  REQUIRE_OK(sent);
  CHECK(sent->applied == 3);

  const std::string path = cluster.root() + "/restore-0512.bundle";
  auto created = CreateBundle(hub, "0512", path);
  REQUIRE_OK(created);

  Node restored = OpenCopy(cluster, backup);
  Replica& r = *restored.replica;
  REQUIRE(r.identity().key == st.identity().key);
  REQUIRE(OwnEnvelopes(r).empty());
  auto applied = ApplyBundle(r, path);
  REQUIRE_OK(applied);
  CHECK(applied->report.rejected == 0);
  CHECK(applied->report.held == 0);
  CHECK(OwnEnvelopes(r) == OwnEnvelopes(st));
  CHECK(ListText(r, "consultations") == ListText(st, "consultations"));
  CHECK(ListText(r, "return_visits") == ListText(st, "return_visits"));
  CHECK(TextField(r, "consultations", *a, "summary") == "第二次");
  CHECK(StatusOf(r).own_changesets == 3);

  // It continues its own chains: no sequence number is reused, so the hub
  // sees no fork.
  REQUIRE_OK(PutRow(r, "consultations", *a, {{"topic", "恢复之后"}}));
  REQUIRE_OK(PutRow(r, "return_visits", *v, {{"note", "恢复之后"}}));
  auto after = Exchange(r, hub);
  REQUIRE_OK(after);
  CHECK(after->applied == 2);
  CHECK(after->rejected == 0);
  CHECK(after->held == 0);
  CHECK(StatusOf(hub).forks.empty());
  CHECK(TextField(hub, "consultations", *a, "topic") == "恢复之后");
}

TEST_CASE("bundle: a station restored from an old backup does not reissue its notice numbers",
          "[bundle][notice]") {
  Cluster cluster;
  Replica& hub = *cluster.hub().replica;
  Node& st_node = cluster.AddStation(kStationName, "0512", kTownship);
  const std::string backup = cluster.root() + "/backup-0512";
  CopyDataDir(cluster, st_node, backup);
  Replica& st = *st_node.replica;
  auto first = PutRow(st, "cases", std::nullopt, {{"category", "civil"}});
  REQUIRE_OK(first);
  REQUIRE(TextField(st, "cases", *first, "notice_number") == "(2024)法援字第0512-0001号");
  REQUIRE_OK(Exchange(st, hub));
  const std::string path = cluster.root() + "/restore-0512.bundle";
  REQUIRE_OK(CreateBundle(hub, "0512", path));

  Node restored = OpenCopy(cluster, backup);
  Replica& r = *restored.replica;
  REQUIRE_OK(ApplyBundle(r, path));
  REQUIRE(TextField(r, "cases", *first, "notice_number") == "(2024)法援字第0512-0001号");
  auto next = PutRow(r, "cases", std::nullopt, {{"category", "civil"}});
  REQUIRE_OK(next);
  CHECK(TextField(r, "cases", *next, "notice_number") != "(2024)法援字第0512-0001号");
  auto dup = r.Query("SELECT notice_number FROM cases GROUP BY notice_number HAVING count(*) > 1");
  REQUIRE_OK(dup);
  CHECK(dup->rows.empty());
}

// Issue 3: bundles and network sync carry the same changeset stream, so a
// station can alternate between a USB stick and the network with no
// duplicates sent and no gaps.
TEST_CASE("bundle: a station alternating between USB bundles and network sync has no gaps or resends",
          "[bundle][sync]") {
  Cluster cluster;
  Replica& hub = *cluster.hub().replica;
  Replica& st = *cluster.AddStation(kStationName, "0512", kTownship).replica;
  // As offline enrolment does: the station knows the hub's certificate.
  auto hub_cert = hub.CertificateByKey(hub.identity().key);
  REQUIRE(hub_cert.ok());
  REQUIRE(hub_cert->has_value());
  REQUIRE(st.AddCertificate((*hub_cert)->bytes()).ok());
  REQUIRE(testing::RunSession(st, hub).complete);  // the hub's roster comes down first
  for (int round = 0; round < 3; ++round) {
    // Two rows go by USB stick...
    for (int i = 0; i < 2; ++i)
      REQUIRE(PutRow(st, "consultations", std::nullopt, {{"topic", "usb " + std::to_string(round)}}).ok());
    const std::string path = cluster.root() + "/up-" + std::to_string(round) + ".bundle";
    REQUIRE(CreateBundle(st, "0500", path).ok());
    auto applied = ApplyBundle(hub, path);
    REQUIRE(applied.ok());
    CHECK(applied->report.rejected == 0);
    CHECK(applied->report.held == 0);
    // ...one by the network: the session sends exactly the one new changeset.
    REQUIRE(PutRow(st, "consultations", std::nullopt, {{"topic", "net " + std::to_string(round)}}).ok());
    testing::SessionRun run = testing::RunSession(st, hub);
    REQUIRE(run.status.ok());
    CHECK(run.complete);
    CHECK(run.changesets_pushed == 1);
    CHECK(run.changesets_returned == 0);
  }
  CHECK(ListText(hub, "consultations") == ListText(st, "consultations"));
  auto rows = hub.List("consultations");
  REQUIRE(rows.ok());
  CHECK(rows->size() == 9);
  CHECK(StatusOf(hub).held_changesets == 0);
  // A final session finds nothing to do: one round trip.
  testing::SessionRun idle = testing::RunSession(st, hub);
  REQUIRE(idle.status.ok());
  CHECK(idle.up_to_date);
  CHECK(idle.round_trips == 1);
}

}  // namespace aidsync

namespace aidsync {

// Regression: with every key of a code revoked, CertificateByCode names the
// revoked key, and `bundle create --for CODE` sealed the county's records to
// it (a stolen laptop's key).
TEST_CASE("bundle: a bundle for a code whose only key is revoked is refused, and goes to the replacement key and "
          "the newest certificate's scope",
          "[bundle][revocation]") {
  Cluster cluster;
  Replica& hub = *cluster.hub().replica;
  Node& stolen = cluster.AddStation(kStationName, "0512", kTownship);
  Node& village = cluster.AddStation("新华村联系点", "0517", "430123/05/017");
  MakeRoster(hub);
  auto township_row = PutRow(hub, "consultations", std::nullopt, {{"topic", "镇里的记录"}}, std::string(kTownship));
  REQUIRE_OK(township_row);
  REQUIRE_OK(hub.Revoke(stolen->identity().key, "笔记本电脑被盗", cluster.authority()));

  const std::string path = cluster.root() + "/to-0512.bundle";
  REQUIRE_CODE(CreateBundle(hub, "0512", path), Status::Code::kUnauthorized);
  CHECK_FALSE(std::filesystem::exists(path));
  CHECK_FALSE(std::filesystem::exists(path + ".partial"));

  // The genuine machine's replacement key: the bundle is sealed to it.
  Node& replacement = cluster.AddStation(kStationName, "0512", kTownship);
  REQUIRE_OK(CreateBundle(hub, "0512", path));
  REQUIRE_CODE(ApplyBundle(*stolen, path), Status::Code::kCorruption);
  auto applied = ApplyBundle(*replacement, path);
  REQUIRE_OK(applied);
  CHECK(TextField(*replacement, "consultations", *township_row, "topic") == "镇里的记录");

  // A village key that also has an older certificate for the whole township
  // gets what its newest certificate's scope sees, whichever arrived last.
  CertificateFields wider = cluster.CertificateOf(village).fields();
  wider.scope = kTownship;
  wider.issued_at_ms -= 1000;
  auto older = Certificate::Issue(wider, cluster.authority());
  REQUIRE_OK(older);
  REQUIRE_OK(hub.AddCertificate(older->bytes()));
  const std::string to_village = cluster.root() + "/to-0517.bundle";
  auto created = CreateBundle(hub, "0517", to_village);
  REQUIRE_OK(created);
  CHECK(created->changesets == static_cast<int64_t>(testing::EnvelopesVisibleTo(hub, "430123/05/017").size()));
  REQUIRE_OK(ApplyBundle(*village, to_village));
  CHECK_FALSE(TextField(*village, "consultations", *township_row, "topic").has_value());
}

}  // namespace aidsync
