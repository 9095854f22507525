// Network enrolment by invite (DESIGN 6 "Enrolment"): invite tokens
// (crypto/invite.h), the hub's invite store (Replica::CreateInvite /
// RedeemInvite, sync/replica_invites.cc) and the join exchange
// (SyncServer::Handle with a JoinMsg, JoinClient; sync/sync_session.cc).
// In process, on real SQLite files.
#include <set>

#include "crypto/invite.h"
#include "sync/protocol.h"
#include "sync/sqlite.h"
#include "sync/sync_session.h"
#include "tests/trust_fixture.h"

namespace aidsync {
namespace {

using testing::AuthorityOf;
using testing::Body;
using testing::Cluster;
using testing::CopyOf;
using testing::Counts;
using testing::CurveHex;
using testing::Invites;
using testing::kHourMs;
using testing::NewSecret;
using testing::Node;
using testing::PutRow;
using testing::RejectedTotal;
using testing::RunSession;
using testing::SessionOptions;
using testing::Snapshot;
using testing::StatusOf;
using testing::TokenFor;

bool SameToken(const InviteToken& a, const InviteToken& b) {
  return a.address == b.address && a.hub_key == b.hub_key && a.authority == b.authority &&
         a.secret.bytes == b.secret.bytes && a.expires_at_ms == b.expires_at_ms;
}

// Everything a refused redemption must leave untouched: tables, log, invites, trust store.
std::string HubState(Replica& hub) {
  std::string out = Snapshot(hub);
  for (const auto& line : Invites(hub)) out += line + "\n";
  auto trust = hub.Query("SELECT count(*) FROM aidsync_certificates");
  REQUIRE_OK(trust);
  out += "certificates " + trust->rows.at(0).at(0).ToDisplay() + "\n";
  return out;
}

}  // namespace

// ------------------------------------------------------------------ tokens

TEST_CASE("invite: a token round-trips, and every cut or changed character fails cleanly or changes a field",
          "[invite][token]") {
  testing::SeededRandom random(3);
  SigningKey hub = SigningKey::Generate(random);
  SigningKey authority = SigningKey::Generate(random);
  InviteToken token;
  token.address = "tcp://192.168.10.2:7700";
  token.hub_key = hub.public_key();
  token.authority = authority.public_key();
  token.secret = NewSecret(random);
  token.expires_at_ms = testing::kDefaultStartMs + 7 * 24 * kHourMs;

  const std::string text = EncodeInviteToken(token);
  REQUIRE(text.rfind(kInviteTokenPrefix, 0) == 0);
  CHECK(text.size() < 400);
  CHECK(text.find_first_of(" \n\t=+/") == std::string::npos);  // one word, base64url without padding
  auto decoded = DecodeInviteToken(text);
  REQUIRE_OK(decoded);
  CHECK(SameToken(*decoded, token));

  int refused = 0, differing = 0;
  auto check = [&](const std::string& what, const std::string& input) {
    auto r = DecodeInviteToken(input);
    if (!r.ok()) {
      INFO(what << ": " << r.status().ToString());
      CHECK(r.status().code() == Status::Code::kInvalidArgument);
      ++refused;
    } else {
      INFO(what << " decoded to the same token");
      CHECK_FALSE(SameToken(*r, token));
      ++differing;
    }
  };
  for (size_t n = 0; n < text.size(); ++n) check("cut to " + std::to_string(n), text.substr(0, n));
  const std::string alphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/ .\n\t%~";
  std::vector<std::string> others;
  for (char c : alphabet) others.push_back(std::string(1, c));
  others.push_back(std::string(1, '\0'));
  others.push_back("\xc3");
  for (size_t i = 0; i < text.size(); ++i) {
    for (const auto& c : others) {
      if (c[0] == text[i]) continue;
      std::string changed = text;
      changed[i] = c[0];
      check("character " + std::to_string(i) + " -> " + std::to_string(static_cast<unsigned char>(c[0])), changed);
    }
  }
  CHECK(refused > 0);
  INFO("changes that decoded to another token: " << differing);

  // Length and prefix.
  REQUIRE_CODE(DecodeInviteToken(std::string(1025, 'A')), Status::Code::kInvalidArgument);
  REQUIRE_CODE(DecodeInviteToken(text + std::string(1024, 'A')), Status::Code::kInvalidArgument);
  InviteTokenParseOptions tight;
  tight.max_chars = text.size() - 1;
  REQUIRE_CODE(DecodeInviteToken(text, tight), Status::Code::kInvalidArgument);
  tight.max_chars = text.size();
  REQUIRE_OK(DecodeInviteToken(text, tight));
  const std::string b64 = text.substr(std::string(kInviteTokenPrefix).size());
  REQUIRE_CODE(DecodeInviteToken(b64), Status::Code::kInvalidArgument);
  REQUIRE_CODE(DecodeInviteToken("AIDSYNC-INVITE-" + b64), Status::Code::kInvalidArgument);
  REQUIRE_CODE(DecodeInviteToken("aidsync-join-" + b64), Status::Code::kInvalidArgument);
  REQUIRE_CODE(DecodeInviteToken(kInviteTokenPrefix), Status::Code::kInvalidArgument);
  REQUIRE_CODE(DecodeInviteToken(""), Status::Code::kInvalidArgument);
  REQUIRE_CODE(DecodeInviteToken(text + "\n"), Status::Code::kInvalidArgument);
  // Well-formed, but the hub's address is not tcp://.
  InviteToken http;
  http.address = "http://192.168.10.2:7700";
  http.hub_key = token.hub_key;
  http.authority = token.authority;
  http.secret = CopyOf(token.secret);
  REQUIRE_CODE(DecodeInviteToken(EncodeInviteToken(http)), Status::Code::kInvalidArgument);

  // The hub keeps only a digest of the secret; the join proof names the key.
  CHECK_FALSE(InviteId(token.secret).view() == token.secret.view());
  InviteSecret other = NewSecret(random);
  CHECK_FALSE(InviteId(other) == InviteId(token.secret));
  CHECK_FALSE(JoinProofDigest(token.secret, hub.public_key()) == JoinProofDigest(token.secret, authority.public_key()));
  CHECK_FALSE(JoinProofDigest(token.secret, hub.public_key()) == JoinProofDigest(other, hub.public_key()));
}

// ------------------------------------------------------------------ the hub's invite store

TEST_CASE("invite: CreateInvite and RedeemInvite enrol once, bound to the first key, from the stored spec",
          "[invite][replica]") {
  Cluster cluster;
  Replica& hub = *cluster.hub().replica;
  testing::TestClock& clock = *cluster.hub().clock;
  Node& st = cluster.AddStation("城关镇工作站", "0512", "430123/05");
  const SigningKey& authority = cluster.authority();
  const InviteSpec spec{"东山乡工作站", "0530", "430123/03"};
  InviteSecret secret = NewSecret(cluster.random());
  REQUIRE_OK(hub.CreateInvite(spec, secret, clock.NowMillis() + kHourMs, authority));
  REQUIRE(Invites(hub).size() == 1);
  CHECK(Invites(hub)[0] == InviteId(secret).Hex() + "|东山乡工作站|0530|430123/03|" +
                               std::to_string(clock.NowMillis() + kHourMs) + "||NULL|");  // not used yet

  // What CreateInvite refuses.
  InviteSecret spare = NewSecret(cluster.random());
  REQUIRE_CODE(hub.CreateInvite({"重复", "0512", "430123/05"}, spare, clock.NowMillis() + kHourMs, authority),
               Status::Code::kAlreadyExists);  // a code already enrolled
  REQUIRE_CODE(hub.CreateInvite({"重复", testing::kHubCode, "430123/05"}, spare, clock.NowMillis() + kHourMs, authority),
               Status::Code::kAlreadyExists);
  REQUIRE_CODE(hub.CreateInvite({"外县", "0900", "430999"}, spare, clock.NowMillis() + kHourMs, authority),
               Status::Code::kInvalidArgument);  // outside the county
  REQUIRE_CODE(hub.CreateInvite({"", "0901", "430123/09"}, spare, clock.NowMillis() + kHourMs, authority),
               Status::Code::kInvalidArgument);
  REQUIRE_CODE(hub.CreateInvite({"坏代码", "09 01", "430123/09"}, spare, clock.NowMillis() + kHourMs, authority),
               Status::Code::kInvalidArgument);
  REQUIRE_CODE(st->CreateInvite({"站点", "0902", "430123/05"}, spare, clock.NowMillis() + kHourMs, authority),
               Status::Code::kUnauthorized);
  CHECK(Invites(hub).size() == 1);

  SigningKey first = SigningKey::Generate(cluster.random());
  SigningKey second = SigningKey::Generate(cluster.random());
  const char* reason = "unset";

  // The stations row and the consumption are one transaction: a failing stations write consumes nothing.
  {
    const std::string before = HubState(hub);
    auto side = Database::Open(hub.dir() + "/replica.db", {});
    REQUIRE_OK(side);
    REQUIRE_OK((*side)->Exec("CREATE TRIGGER fail_stations BEFORE INSERT ON stations WHEN NEW.code = '0530' "
                             "BEGIN SELECT RAISE(ABORT, 'injected failure'); END"));
    auto failed = hub.RedeemInvite(secret, first.public_key(), AuthorityOf(hub), &reason);
    CHECK_FALSE(failed.ok());
    CHECK(HubState(hub) == before);
    REQUIRE_OK((*side)->Exec("DROP TRIGGER fail_stations"));
  }

  clock.Advance(1000);
  const int64_t redeemed_at = clock.NowMillis();
  const std::string before_first = HubState(hub);
  const int64_t log_before = testing::TotalChangesets(hub);
  reason = "unset";
  auto cert = hub.RedeemInvite(secret, first.public_key(), AuthorityOf(hub), &reason);
  REQUIRE_OK(cert);
  CHECK(reason == nullptr);
  const CertificateFields& f = cert->fields();
  CHECK(f.node_key == first.public_key());
  CHECK(f.name == spec.name);
  CHECK(f.code == spec.code);
  CHECK(f.scope == spec.scope);
  CHECK(f.role == Role::kStation);
  CHECK(f.issued_at_ms == redeemed_at);
  REQUIRE_OK(Certificate::Parse(cert->bytes(), authority.public_key()));
  CHECK(testing::TotalChangesets(hub) == log_before + 1);  // the stations row
  CHECK(hub.CertificateByKey(first.public_key())->has_value());
  auto by_code = hub.CertificateByCode("0530");
  REQUIRE_OK(by_code);
  REQUIRE(by_code->has_value());
  CHECK((*by_code)->bytes() == cert->bytes());
  auto station = hub.Query("SELECT name, role, public_key, lower(certificate), scope FROM stations WHERE code = '0530'");
  REQUIRE_OK(station);
  REQUIRE(station->rows.size() == 1);
  CHECK(station->rows[0][0].ToDisplay() == spec.name);
  CHECK(station->rows[0][1].ToDisplay() == "station");
  CHECK(station->rows[0][2].ToDisplay() == first.public_key().Hex());
  CHECK(station->rows[0][3].ToDisplay() == ToHex(cert->bytes()));
  CHECK(station->rows[0][4].ToDisplay() == testing::kCountyScope);
  CHECK(Invites(hub)[0].find("|" + first.public_key().Hex() + "|" + std::to_string(redeemed_at) + "|") !=
        std::string::npos);
  const std::string after_first = HubState(hub);
  CHECK(after_first != before_first);

  // Another key: the invite is used; nothing changes.
  reason = "unset";
  REQUIRE_CODE(hub.RedeemInvite(secret, second.public_key(), AuthorityOf(hub), &reason), Status::Code::kUnauthorized);
  CHECK(std::string(reason) == "invite_used");
  CHECK(HubState(hub) == after_first);
  CHECK_FALSE(hub.CertificateByKey(second.public_key())->has_value());

  // The first key again (its reply was lost): the same certificate, nothing new written, even after expiry.
  for (int64_t later : {int64_t{0}, 2 * kHourMs}) {
    clock.Advance(later);
    auto again = hub.RedeemInvite(secret, first.public_key(), AuthorityOf(hub), &reason);
    REQUIRE_OK(again);
    CHECK(again->bytes() == cert->bytes());
    CHECK(HubState(hub) == after_first);
  }

  // Expiry is the hub's clock: valid up to expires_at, refused after it.
  InviteSecret short_lived = NewSecret(cluster.random());
  REQUIRE_OK(hub.CreateInvite({"西山乡工作站", "0540", "430123/04"}, short_lived, clock.NowMillis() + 1000, authority));
  clock.Advance(1001);
  const std::string before_expired = HubState(hub);
  reason = "unset";
  REQUIRE_CODE(hub.RedeemInvite(short_lived, second.public_key(), AuthorityOf(hub), &reason), Status::Code::kUnauthorized);
  CHECK(std::string(reason) == "invite_expired");
  CHECK(HubState(hub) == before_expired);

  // A secret the hub never issued.
  InviteSecret unknown = NewSecret(cluster.random());
  reason = "unset";
  REQUIRE_CODE(hub.RedeemInvite(unknown, second.public_key(), AuthorityOf(hub), &reason), Status::Code::kNotFound);
  CHECK(std::string(reason) == "invite_unknown");
  CHECK(HubState(hub) == before_expired);

  // Two invites for one code: the second is refused once the first enrolled it.
  InviteSecret twin_a = NewSecret(cluster.random()), twin_b = NewSecret(cluster.random());
  REQUIRE_OK(hub.CreateInvite({"南山乡工作站", "0550", "430123/06"}, twin_a, clock.NowMillis() + kHourMs, authority));
  REQUIRE_OK(hub.CreateInvite({"南山乡工作站", "0550", "430123/06"}, twin_b, clock.NowMillis() + kHourMs, authority));
  REQUIRE_OK(hub.RedeemInvite(twin_a, second.public_key(), AuthorityOf(hub), &reason));
  const std::string before_twin = HubState(hub);
  SigningKey third = SigningKey::Generate(cluster.random());
  reason = "unset";
  REQUIRE_CODE(hub.RedeemInvite(twin_b, third.public_key(), AuthorityOf(hub), &reason), Status::Code::kAlreadyExists);
  CHECK(std::string(reason) == "invite_refused");
  CHECK(HubState(hub) == before_twin);

  // A revoked key cannot enrol again, whatever the invite.
  REQUIRE_OK(hub.Revoke(second.public_key(), "遗失", authority));
  InviteSecret fresh = NewSecret(cluster.random());
  REQUIRE_OK(hub.CreateInvite({"北山乡工作站", "0560", "430123/08"}, fresh, clock.NowMillis() + kHourMs, authority));
  const std::string before_revoked = HubState(hub);
  reason = "unset";
  REQUIRE_CODE(hub.RedeemInvite(fresh, second.public_key(), AuthorityOf(hub), &reason), Status::Code::kUnauthorized);
  CHECK(std::string(reason) == "invite_refused");
  CHECK(HubState(hub) == before_revoked);
  CHECK(RejectedTotal(hub) == 0);  // the replica API itself counts nothing: the server does

  // Everything survives a reopen.
  cluster.Reopen(cluster.hub());
  CHECK(HubState(*cluster.hub().replica) == before_revoked);
}

// ------------------------------------------------------------------ the join exchange

TEST_CASE("invite: join end to end through SyncServer::Handle, with mismatched keys, bad signatures and "
          "spent invites refused and counted",
          "[invite][join]") {
  Cluster cluster;
  Node& hub_node = cluster.hub();
  Replica& hub = *hub_node.replica;
  const SigningKey& authority = cluster.authority();
  const Certificate hub_cert = cluster.CertificateOf(hub_node);
  Node& other = cluster.AddStation("城关镇工作站", "0512", "430123/05");
  auto prior = hub.Revoke(other->identity().key, "遗失", authority);  // a revocation the joiner must learn
  REQUIRE_OK(prior);

  // The joining machine: a node made with `init`, not yet enrolled.
  const std::string dir = cluster.root() + "/joiner";
  testing::TestClock joiner_clock;
  Env joiner_env;
  joiner_env.clock = &joiner_clock;
  joiner_env.random = &cluster.random();
  NodeConfig config{"东山乡工作站", "0530", "430123/03", Role::kStation, authority.public_key()};
  REQUIRE_OK(Replica::Create(dir, config, joiner_env));
  auto key = SigningKey::Load(dir + "/node.key");
  REQUIRE_OK(key);

  auto token_for = [&](const InviteSecret& secret) {
    return TokenFor(hub, authority.public_key(), secret, hub_node.clock->NowMillis() + kHourMs);
  };
  InviteSecret secret = NewSecret(cluster.random());
  REQUIRE_OK(hub.CreateInvite({"东山乡工作站", "0530", "430123/03"}, secret, hub_node.clock->NowMillis() + kHourMs,
                              authority));
  const InviteToken token = token_for(secret);
  SyncServer server(hub);
  Counts expected;
  auto refused = [&](const std::string& what, const std::string& curve_hex, const std::string& request,
                     const std::string& reason) {
    INFO(what);
    const std::string before = HubState(hub);
    RefusedMsg r = Body<RefusedMsg>(server.Handle("join-conn", curve_hex, request));
    CHECK(r.reason == reason);
    CHECK_FALSE(r.detail.empty());
    ++expected[reason];
    CHECK(StatusOf(hub).rejected == expected);
    CHECK(HubState(hub) == before);
  };
  auto join_msg = [](const InviteSecret& s, const PublicKey& node, const Signature& sig) {
    JoinMsg join;
    join.secret = CopyOf(s);
    join.node_key = node;
    join.signature = sig;
    return EncodeMessage(SyncMsg{kProtocolVersion, 5, std::move(join)});
  };

  // The join names the machine's key, but the connection was made with another key.
  SigningKey intruder = SigningKey::Generate(cluster.random());
  {
    JoinClient client(*key, token, 5);
    auto request = client.Start();
    REQUIRE_OK(request);
    const std::string before = HubState(hub);
    const std::string reply = server.Handle("join-conn", CurveHex(intruder.public_key()), *request);
    CHECK(Body<RefusedMsg>(reply).reason == "join_key_mismatch");
    ++expected["join_key_mismatch"];
    CHECK(StatusOf(hub).rejected == expected);
    CHECK(HubState(hub) == before);
    auto answer = client.OnReply(reply);
    REQUIRE_CODE(answer, Status::Code::kUnauthorized);
    CHECK(answer.status().message().find("join_key_mismatch") != std::string::npos);
  }
  // Bad signatures: altered, made by another key, or over another secret.
  const PublicKey node_key = key->public_key();
  Signature good = key->SignDigest(JoinProofDigest(secret, node_key));
  Signature altered = good;
  altered[10] ^= 0x01;
  refused("altered signature", CurveHex(node_key), join_msg(secret, node_key, altered), "join_bad_signature");
  refused("signed by another key", CurveHex(node_key),
          join_msg(secret, node_key, intruder.SignDigest(JoinProofDigest(secret, node_key))), "join_bad_signature");
  InviteSecret elsewhere = NewSecret(cluster.random());
  refused("signed over another secret", CurveHex(node_key),
          join_msg(secret, node_key, key->SignDigest(JoinProofDigest(elsewhere, node_key))), "join_bad_signature");
  refused("a secret the hub never issued", CurveHex(node_key),
          join_msg(elsewhere, node_key, key->SignDigest(JoinProofDigest(elsewhere, node_key))), "invite_unknown");
  {
    SyncServer station_server(*other);
    const std::string reply = station_server.Handle("join-conn", CurveHex(node_key), join_msg(secret, node_key, good));
    CHECK(Body<RefusedMsg>(reply).reason == "not_the_hub");
  }

  // The real join: enrolled with the invite's fields, the hub's certificate and the revocations.
  JoinClient client(*key, token, 6);
  auto request = client.Start();
  REQUIRE_OK(request);
  const int64_t log_before = testing::TotalChangesets(hub);
  auto answer = client.OnReply(server.Handle("join-conn", CurveHex(node_key), *request));
  REQUIRE_OK(answer);
  CHECK_FALSE(answer->has_value());
  const EnrolledMsg& enrolled = client.enrolled();
  auto cert = Certificate::Parse(enrolled.certificate, authority.public_key());
  REQUIRE_OK(cert);
  CHECK(cert->fields().node_key == node_key);
  CHECK(cert->fields().name == "东山乡工作站");
  CHECK(cert->fields().code == "0530");
  CHECK(cert->fields().scope == "430123/03");
  CHECK(enrolled.hub_certificate == hub_cert.bytes());
  CHECK(enrolled.revocations == std::vector<std::string>{prior->bytes()});
  CHECK(testing::TotalChangesets(hub) == log_before + 1);  // its stations row
  CHECK(StatusOf(hub).rejected == expected);               // a success counts nothing

  // A lost reply: the same machine asks again and gets the same certificate; nothing new is written.
  {
    JoinClient retry(*key, token, 7);
    auto again = retry.OnReply(server.Handle("join-conn-2", CurveHex(node_key), *retry.Start()));
    REQUIRE_OK(again);
    CHECK(retry.enrolled().certificate == enrolled.certificate);
    CHECK(testing::TotalChangesets(hub) == log_before + 1);
  }
  // Another machine with the same token.
  {
    JoinClient late(intruder, token, 8);
    refused("a used invite", CurveHex(intruder.public_key()), *late.Start(), "invite_used");
  }
  // An expired invite.
  InviteSecret expiring = NewSecret(cluster.random());
  REQUIRE_OK(hub.CreateInvite({"西山乡工作站", "0540", "430123/04"}, expiring, hub_node.clock->NowMillis() + 1000,
                              authority));
  hub_node.clock->Advance(1001);
  {
    const InviteToken expired_token = token_for(expiring);
    JoinClient late(intruder, expired_token, 9);
    refused("an expired invite", CurveHex(intruder.public_key()), *late.Start(), "invite_expired");
  }
  CHECK(StatusOf(hub).rejected == Counts{{"join_bad_signature", 3}, {"invite_expired", 1}, {"invite_unknown", 1},
                                         {"invite_used", 1}, {"join_key_mismatch", 1}});

  // The client checks the hub's certificate against the token.
  {
    InviteSecret decoy = NewSecret(cluster.random());
    REQUIRE_OK(hub.CreateInvite({"南山乡工作站", "0550", "430123/06"}, decoy, hub_node.clock->NowMillis() + kHourMs,
                                authority));
    InviteToken wrong_hub = token_for(decoy);
    wrong_hub.hub_key = intruder.public_key();
    JoinClient fooled(intruder, wrong_hub, 10);
    auto r = fooled.OnReply(server.Handle("join-conn", CurveHex(intruder.public_key()), *fooled.Start()));
    REQUIRE_CODE(r, Status::Code::kUnauthorized);
  }

  // The joined node installs what it received and syncs with the hub.
  auto joined = Replica::Open(dir, joiner_env);
  REQUIRE_OK(joined);
  Replica& station = **joined;
  REQUIRE_OK(station.InstallOwnCertificate(enrolled.certificate));
  REQUIRE_OK(station.AddCertificate(enrolled.hub_certificate));
  REQUIRE_OK(AbsorbRevocations(station, enrolled.revocations));
  CHECK(station.RevocationOf(other->identity().key)->has_value());
  auto row = PutRow(station, "consultations", std::nullopt, {{"channel", "walk_in"}, {"topic", "入网后第一条"}});
  REQUIRE_OK(row);
  SessionOptions to_hub;
  to_hub.server = &server;
  to_hub.connection = "sync-conn";
  auto run = RunSession(station, hub, to_hub);
  REQUIRE_OK(run.status);
  CHECK(run.complete);
  auto at_hub = hub.Get("consultations", *row);
  REQUIRE_OK(at_hub);
  CHECK(at_hub->has_value());
  CHECK(RejectedTotal(station) == 0);
}

}  // namespace aidsync
