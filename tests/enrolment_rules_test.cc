// Who may be enrolled under which station code (DESIGN 6 "Enrolment",
// ARCHITECTURE.md decisions 21, 42, 43): one key is one station
// (Replica::CheckMayEnrol, used by `enroll`, CreateInvite and RedeemInvite),
// a revoked key never enrols again, not even by retrying its own invite, and
// a revoked key's station code may be enrolled again to a new key
// (CertificateByCode prefers a key that is not revoked). In process, on real
// SQLite files; joins go through SyncServer::Handle.
#include "crypto/invite.h"
#include "sync/protocol.h"
#include "sync/sync_session.h"
#include "tests/trust_fixture.h"

namespace aidsync {
namespace {

using testing::AuthorityOf;
using testing::Body;
using testing::Cluster;
using testing::Counts;
using testing::CurveHex;
using testing::Enrol;
using testing::Invites;
using testing::kHourMs;
using testing::kTownship;
using testing::NewSecret;
using testing::Node;
using testing::QueryRows;
using testing::RunSession;
using testing::Snapshot;
using testing::StatusOf;
using testing::TokenFor;

// Everything a refused enrolment must leave untouched: tables, log, invites
// (with their use), trust store and revocations.
std::string HubState(Replica& hub) {
  std::string out = Snapshot(hub);
  for (const auto& rows :
       {Invites(hub), QueryRows(hub, "SELECT lower(hex(node_key)), code FROM aidsync_certificates ORDER BY node_key"),
        QueryRows(hub, "SELECT lower(hex(node_key)) FROM aidsync_revocations ORDER BY node_key")}) {
    for (const auto& line : rows) out += line + "\n";
    out += "--\n";
  }
  return out;
}

// A join by `key` with `token`, through the hub's SyncServer as the
// transport would deliver it; returns the hub's reply.
std::string JoinThrough(SyncServer& server, const SigningKey& key, const InviteToken& token, uint64_t session) {
  JoinClient client(key, token, session);
  auto request = client.Start();
  REQUIRE_OK(request);
  return server.Handle("join-conn", CurveHex(key.public_key()), *request);
}

// The stations rows of `code` as "public_key|certificate hex".
std::vector<std::string> StationRows(Replica& r, const std::string& code) {
  auto q = r.Query("SELECT public_key, lower(certificate) FROM stations WHERE code = '" + code + "'");
  REQUIRE_OK(q);
  std::vector<std::string> out;
  for (const auto& row : q->rows) out.push_back(row.at(0).ToDisplay() + "|" + row.at(1).ToDisplay());
  return out;
}

}  // namespace

// ------------------------------------------------------------------ one key, one station

TEST_CASE("enrolment: a key enrolled as one station cannot enrol as another, by invite or offline",
          "[enrolment][invite]") {
  Cluster cluster;
  Node& hub_node = cluster.hub();
  Replica& hub = *hub_node.replica;
  const SigningKey& authority = cluster.authority();
  Node& st = cluster.AddStation("城关镇工作站", "0512", kTownship);  // station A
  const PublicKey a_key = st->identity().key;
  const int64_t expires = hub_node.clock->NowMillis() + kHourMs;
  InviteSecret secret = NewSecret(cluster.random());
  REQUIRE_OK(hub.CreateInvite({"东山乡工作站", "0530", "430123/03"}, secret, expires, authority));

  // A redeeming the invite for 0530: refused, and nothing changes (the invite stays unused).
  const std::string before = HubState(hub);
  const char* reason = "unset";
  REQUIRE_CODE(hub.RedeemInvite(secret, a_key, AuthorityOf(hub), &reason), Status::Code::kAlreadyExists);
  REQUIRE(reason != nullptr);
  CHECK(std::string(reason) == "invite_refused");
  CHECK(HubState(hub) == before);
  CHECK_FALSE(hub.CertificateByCode("0530")->has_value());
  auto a_cert = hub.CertificateByKey(a_key);
  REQUIRE_OK(a_cert);
  REQUIRE(a_cert->has_value());
  CHECK((*a_cert)->fields().code == "0512");
  CHECK(StationRows(hub, "0530").empty());

  // The same over the wire: A's machine joining with the token is refused and counted.
  SyncServer server(hub);
  const InviteToken token = TokenFor(hub, authority.public_key(), secret, expires);
  const SigningKey a_signing = cluster.KeyOf(st);
  RefusedMsg refused = Body<RefusedMsg>(JoinThrough(server, a_signing, token, 5));
  CHECK(refused.reason == "invite_refused");
  CHECK(refused.detail.find("one key, one station") != std::string::npos);
  CHECK(StatusOf(hub).rejected == Counts{{"invite_refused", 1}});
  CHECK(HubState(hub) == before);

  // Offline enrolment (`aidsync enroll`) checks the same rule.
  REQUIRE_CODE(hub.CheckMayEnrol("0530", std::nullopt, a_key), Status::Code::kAlreadyExists);
  REQUIRE_CODE(hub.CheckMayEnrol("0530", std::nullopt, hub.identity().key), Status::Code::kAlreadyExists);  // the hub is 0500
  REQUIRE_OK(hub.CheckMayEnrol("0512", std::nullopt, a_key));  // A again under its own code (`enroll` run again)
  SigningKey fresh = SigningKey::Generate(cluster.random());
  REQUIRE_OK(hub.CheckMayEnrol("0530", std::nullopt, fresh.public_key()));
  REQUIRE_OK(hub.CheckMayEnrol("0530", std::nullopt, std::nullopt));
  REQUIRE_CODE(hub.CheckMayEnrol("0512", std::nullopt, fresh.public_key()), Status::Code::kAlreadyExists);  // A's code

  // The invite was not spent: a fresh machine enrols with it.
  reason = "unset";
  auto cert = hub.RedeemInvite(secret, fresh.public_key(), AuthorityOf(hub), &reason);
  REQUIRE_OK(cert);
  CHECK(reason == nullptr);
  CHECK(cert->fields().code == "0530");
  CHECK(cert->fields().node_key == fresh.public_key());
  // ... and now that key is 0530: it cannot also become A's code or a third one.
  REQUIRE_CODE(hub.CheckMayEnrol("0540", std::nullopt, fresh.public_key()), Status::Code::kAlreadyExists);
  CHECK(StatusOf(hub).rejected == Counts{{"invite_refused", 1}});
}

// ------------------------------------------------------------------ a revoked key retrying its invite

TEST_CASE("enrolment: a revoked key retrying its own used invite is refused invite_refused, not given its "
          "certificate",
          "[enrolment][invite][revocation]") {
  Cluster cluster;
  Node& hub_node = cluster.hub();
  Replica& hub = *hub_node.replica;
  const SigningKey& authority = cluster.authority();
  const int64_t expires = hub_node.clock->NowMillis() + kHourMs;
  InviteSecret secret = NewSecret(cluster.random());
  REQUIRE_OK(hub.CreateInvite({"东山乡工作站", "0530", "430123/03"}, secret, expires, authority));
  SigningKey key = SigningKey::Generate(cluster.random());
  const InviteToken token = TokenFor(hub, authority.public_key(), secret, expires);
  SyncServer server(hub);

  // Enrolled by the invite; a retry (a lost reply) gets the same certificate while the key is live.
  auto enrolled = Body<EnrolledMsg>(JoinThrough(server, key, token, 1));
  auto retried = Body<EnrolledMsg>(JoinThrough(server, key, token, 2));
  CHECK(retried.certificate == enrolled.certificate);

  REQUIRE_OK(hub.Revoke(key.public_key(), "笔记本电脑被盗", authority));
  const std::string before = HubState(hub);
  const char* reason = "unset";
  REQUIRE_CODE(hub.RedeemInvite(secret, key.public_key(), AuthorityOf(hub), &reason), Status::Code::kUnauthorized);
  REQUIRE(reason != nullptr);
  CHECK(std::string(reason) == "invite_refused");
  CHECK(HubState(hub) == before);

  // Over the wire: a refusal, counted, not the certificate; also once the invite has expired.
  const std::string reply = JoinThrough(server, key, token, 3);
  CHECK(Body<RefusedMsg>(reply).reason == "invite_refused");
  JoinClient client(key, token, 4);
  auto request = client.Start();
  REQUIRE_OK(request);
  auto answer = client.OnReply(server.Handle("join-conn", CurveHex(key.public_key()), *request));
  REQUIRE_CODE(answer, Status::Code::kUnauthorized);
  CHECK(answer.status().message().find("invite_refused") != std::string::npos);
  hub_node.clock->Advance(2 * kHourMs);
  CHECK(Body<RefusedMsg>(JoinThrough(server, key, token, 5)).reason == "invite_refused");
  CHECK(StatusOf(hub).rejected == Counts{{"invite_refused", 3}});
  CHECK(HubState(hub) == before);
}

// ------------------------------------------------------------------ re-enrolment under a revoked key's code

// (No ';' in test names: catch_discover_tests would cut the CTest name there.)
TEST_CASE("enrolment: a revoked key's station code can be enrolled again to a new key, but a live key's code "
          "cannot",
          "[enrolment][invite][revocation]") {
  Cluster cluster;
  Node& hub_node = cluster.hub();
  Replica& hub = *hub_node.replica;
  testing::TestClock& clock = *hub_node.clock;
  const SigningKey& authority = cluster.authority();
  Node& old = cluster.AddStation("城关镇工作站", "0512", kTownship);
  Node& sibling = Enrol(cluster, "城关镇第二工作站", "0514", kTownship);
  const PublicKey old_key = old->identity().key;
  SigningKey renewed = SigningKey::Generate(cluster.random());  // the genuine machine's new key
  SigningKey third = SigningKey::Generate(cluster.random());
  InviteSecret spare = NewSecret(cluster.random());

  // While the old key is live its code is taken, by invite and offline.
  REQUIRE_CODE(hub.CreateInvite({"城关镇工作站", "0512", kTownship}, spare, clock.NowMillis() + kHourMs, authority),
               Status::Code::kAlreadyExists);
  REQUIRE_CODE(hub.CheckMayEnrol("0512", std::nullopt, renewed.public_key()), Status::Code::kAlreadyExists);
  REQUIRE_CODE(hub.CheckMayEnrol("0512", std::nullopt, std::nullopt), Status::Code::kAlreadyExists);

  REQUIRE_OK(hub.Revoke(old_key, "数据目录被复制", authority));
  REQUIRE_OK(hub.CheckMayEnrol("0512", std::nullopt, renewed.public_key()));
  REQUIRE_OK(hub.CheckMayEnrol("0512", std::nullopt, std::nullopt));
  REQUIRE_CODE(hub.CheckMayEnrol("0512", std::nullopt, old_key), Status::Code::kUnauthorized);  // not the revoked key itself
  // Regression: a revoked code is enrolled again only in its old scope, where
  // the old key's case rows (and their notice numbers) reach the new key.
  REQUIRE_OK(hub.CheckMayEnrol("0512", std::string(kTownship), renewed.public_key()));
  REQUIRE_CODE(hub.CheckMayEnrol("0512", std::string("430123/06"), renewed.public_key()),
               Status::Code::kInvalidArgument);

  // The hub's clock was set back: the new certificate is issued before the revoked one, so only the
  // preference for a live key (not the latest issue time) makes the code name the new key.
  clock.Set(testing::kDefaultStartMs - kHourMs);
  InviteSecret first = NewSecret(cluster.random()), second = NewSecret(cluster.random());
  const InviteSpec spec{"城关镇工作站（新机）", "0512", kTownship};
  REQUIRE_OK(hub.CreateInvite(spec, first, clock.NowMillis() + kHourMs, authority));
  REQUIRE_OK(hub.CreateInvite(spec, second, clock.NowMillis() + kHourMs, authority));
  const char* reason = "unset";
  auto cert = hub.RedeemInvite(first, renewed.public_key(), AuthorityOf(hub), &reason);
  REQUIRE_OK(cert);
  CHECK(reason == nullptr);
  CHECK(cert->fields().code == "0512");
  CHECK(cert->fields().node_key == renewed.public_key());
  REQUIRE(cert->fields().issued_at_ms < cluster.CertificateOf(old).fields().issued_at_ms);

  auto by_code = hub.CertificateByCode("0512");
  REQUIRE_OK(by_code);
  REQUIRE(by_code->has_value());
  CHECK((*by_code)->bytes() == cert->bytes());
  CHECK(StationRows(hub, "0512") == std::vector<std::string>{renewed.public_key().Hex() + "|" + ToHex(cert->bytes())});
  // The old key stays in the trust store and in the revoked list, under its code.
  CHECK(hub.CertificateByKey(old_key)->has_value());
  auto status = StatusOf(hub);
  REQUIRE(status.revoked.size() == 1);
  CHECK(status.revoked[0].key == old_key.Hex());
  CHECK(status.revoked[0].code == "0512");

  // The code is now held by a live key again: refused, by the second invite, a new invite and offline.
  const std::string before = HubState(hub);
  reason = "unset";
  REQUIRE_CODE(hub.RedeemInvite(second, third.public_key(), AuthorityOf(hub), &reason), Status::Code::kAlreadyExists);
  REQUIRE(reason != nullptr);
  CHECK(std::string(reason) == "invite_refused");
  CHECK(HubState(hub) == before);
  REQUIRE_CODE(hub.CreateInvite(spec, spare, clock.NowMillis() + kHourMs, authority), Status::Code::kAlreadyExists);
  REQUIRE_CODE(hub.CheckMayEnrol("0512", std::nullopt, third.public_key()), Status::Code::kAlreadyExists);
  REQUIRE_OK(hub.CheckMayEnrol("0512", std::nullopt, renewed.public_key()));

  // Another station learns both the revocation and the new stations row at its next sync.
  auto run = RunSession(*sibling, hub);
  REQUIRE_OK(run.status);
  REQUIRE(run.complete);
  CHECK(sibling->RevocationOf(old_key)->has_value());
  auto there = sibling->CertificateByCode("0512");
  REQUIRE_OK(there);
  REQUIRE(there->has_value());
  CHECK((*there)->fields().node_key == renewed.public_key());
  CHECK(StationRows(*sibling, "0512") == StationRows(hub, "0512"));
}

}  // namespace aidsync

// ------------------------------------------------------------------ a live key keeps its enrolment

namespace aidsync {

// Regression: the hub enrolled a live key again at another scope (offline or
// by an invite made before the key was enrolled), leaving two valid
// certificates of one key, the older one wider.
TEST_CASE("enrolment: a live key is not enrolled again at another scope, name or role, by invite or offline, "
          "and the same enrolment again gets the same certificate",
          "[enrolment][invite]") {
  Cluster cluster;
  Node& hub_node = cluster.hub();
  Replica& hub = *hub_node.replica;
  const SigningKey& authority = cluster.authority();
  const std::string kVillage = "430123/05/017";
  const std::string kName = "新华村联系点";
  const int64_t expires = hub_node.clock->NowMillis() + kHourMs;
  // Two invites for code 0517 made before any key held it: the village's own
  // scope, and the whole township.
  InviteSecret narrow = NewSecret(cluster.random()), wide = NewSecret(cluster.random());
  REQUIRE_OK(hub.CreateInvite({kName, "0517", kVillage}, narrow, expires, authority));
  REQUIRE_OK(hub.CreateInvite({kName, "0517", kTownship}, wide, expires, authority));
  SigningKey key = SigningKey::Generate(cluster.random());
  SyncServer server(hub);
  const InviteToken narrow_token = TokenFor(hub, authority.public_key(), narrow, expires);
  const InviteToken wide_token = TokenFor(hub, authority.public_key(), wide, expires);
  auto enrolled = Body<EnrolledMsg>(JoinThrough(server, key, narrow_token, 1));
  auto cert = Certificate::Parse(enrolled.certificate, authority.public_key());
  REQUIRE_OK(cert);
  CHECK(cert->fields().scope == kVillage);

  // The same key redeeming the township's invite: refused, counted, nothing changes (that invite stays unused).
  hub_node.clock->Advance(1000);
  const std::string before = HubState(hub);
  const char* reason = "unset";
  auto again = hub.RedeemInvite(wide, key.public_key(), AuthorityOf(hub), &reason);
  REQUIRE_CODE(again, Status::Code::kAlreadyExists);
  REQUIRE(reason != nullptr);
  CHECK(std::string(reason) == "invite_refused");
  CHECK(again.status().message().find("revoke the key first, or enrol a replacement key") != std::string::npos);
  CHECK(HubState(hub) == before);
  RefusedMsg refused = Body<RefusedMsg>(JoinThrough(server, key, wide_token, 2));
  CHECK(refused.reason == "invite_refused");
  CHECK(refused.detail.find("scope " + kVillage) != std::string::npos);
  CHECK(HubState(hub) == before);
  auto held = hub.CertificateByKey(key.public_key());
  REQUIRE_OK(held);
  REQUIRE(held->has_value());
  CHECK((*held)->bytes() == enrolled.certificate);

  // Offline (`enroll` runs CheckMayEnrol with the same fields): another
  // scope, another name, or the hub's own key as a station are refused; the
  // identical enrolment passes, and the invite retry gets the same certificate.
  REQUIRE_CODE(hub.CheckMayEnrol("0517", std::string(kTownship), key.public_key(), kName),
               Status::Code::kAlreadyExists);
  REQUIRE_CODE(hub.CheckMayEnrol("0517", std::string("430123/05/018"), key.public_key(), kName),
               Status::Code::kAlreadyExists);
  REQUIRE_CODE(hub.CheckMayEnrol("0517", kVillage, key.public_key(), std::string("新华村第二联系点")),
               Status::Code::kAlreadyExists);
  REQUIRE_CODE(hub.CheckMayEnrol(testing::kHubCode, std::string(testing::kCountyScope), hub.identity().key,
                                 std::string(testing::kHubName)),
               Status::Code::kAlreadyExists);
  REQUIRE_OK(hub.CheckMayEnrol("0517", kVillage, key.public_key(), kName));
  CHECK(Body<EnrolledMsg>(JoinThrough(server, key, narrow_token, 3)).certificate == enrolled.certificate);
  CHECK(StatusOf(hub).rejected == Counts{{"invite_refused", 1}});

  // Revoked, the key enrols nowhere; a replacement key takes the code in its scope.
  REQUIRE_OK(hub.Revoke(key.public_key(), "换新机器", authority));
  REQUIRE_CODE(hub.CheckMayEnrol("0517", kVillage, key.public_key(), kName), Status::Code::kUnauthorized);
  SigningKey replacement = SigningKey::Generate(cluster.random());
  REQUIRE_OK(hub.CheckMayEnrol("0517", kVillage, replacement.public_key(), kName));
}

}  // namespace aidsync
