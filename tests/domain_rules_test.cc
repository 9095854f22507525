// Tests for sync/domain_rules.h through the replica: the county's rules are
// enforced on local writes, and a received changeset that breaks one is
// applied and raises an alert.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "sync/replica.h"
#include "tests/cluster_fixture.h"

namespace aidsync {
namespace {

using testing::Cluster;
using testing::Exchange;
using testing::Field;
using testing::MakeRoster;
using testing::Mentions;
using testing::PutRow;
using testing::PutRowSummary;
using testing::Roster;
using testing::Snapshot;
using testing::StatusOf;
using testing::TextField;
using testing::kStationName;
using testing::kTownship;

}  // namespace

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

}  // namespace aidsync
