// Revocations (DESIGN 4 "Forks", 6 "Revocation"): the authority's signed
// revocation (crypto/revocation.h), how a replica stores it and refuses or
// takes back a revoked key's later changesets (sync/replica_revocations.cc,
// CheckAuthority in sync/replica_apply.cc), and how sync sessions carry
// revocations and refuse revoked peers (sync/sync_session.cc). In process,
// on real SQLite files; sessions run back to back through RunSession.
#include <algorithm>
#include <set>

#include "crypto/signed_body.h"
#include "schema/canonical.h"
#include "schema/revocation.capnp.h"
#include "sync/protocol.h"
#include "sync/sqlite.h"
#include "sync/sync_session.h"
#include "tests/trust_fixture.h"

namespace aidsync {
namespace {

using testing::Body;
using testing::Cluster;
using testing::Counts;
using testing::CurveRaw;
using testing::Dump;
using testing::Enrol;
using testing::Exchange;
using testing::IdOf;
using testing::kTownship;
using testing::ListText;
using testing::Node;
using testing::OwnEnvelopes;
using testing::PutRow;
using testing::RejectedTotal;
using testing::RunSession;
using testing::SessionOptions;
using testing::SessionRun;
using testing::StatusOf;
using testing::TextField;

constexpr const char* kVillage = "430123/05/017";

std::string Consult(Replica& r, const std::string& topic) {
  auto id = PutRow(r, "consultations", std::nullopt, {{"channel", "walk_in"}, {"topic", topic}, {"summary", topic}});
  REQUIRE_OK(id);
  return *id;
}

bool Has(Replica& r, const std::string& table, const std::string& id) {
  auto row = r.Get(table, id);
  REQUIRE_OK(row);
  return row->has_value();
}

int64_t Count(Replica& r, const std::string& sql) {
  auto q = r.Query(sql);
  REQUIRE_OK(q);
  return std::stoll(q->rows.at(0).at(0).ToDisplay());
}
// Changesets of `author` in `r`'s log.
int64_t AuthoredBy(Replica& r, const Replica& author) {
  return Count(r, "SELECT count(*) FROM aidsync_log WHERE author = x'" + author.identity().key.Hex() + "'");
}
// Ids (hex) of the changesets kept in the rejected store under `reason`.
std::set<std::string> RejectedIds(Replica& r, const std::string& reason) {
  auto q = r.Query("SELECT lower(hex(hash)) FROM aidsync_rejected WHERE reason = '" + reason + "'");
  REQUIRE_OK(q);
  std::set<std::string> out;
  for (const auto& row : q->rows) out.insert(row.at(0).ToDisplay());
  return out;
}

// A session that must complete.
SessionRun Sync(Replica& client, Replica& server, SessionOptions options = {}) {
  SessionRun run = RunSession(client, server, options);
  INFO(client.identity().name << " -> " << server.identity().name);
  REQUIRE_OK(run.status);
  REQUIRE(run.complete);
  return run;
}
SessionOptions To(const Certificate& server, bool keep = false) {
  SessionOptions o;
  o.server_certificate = server;
  o.keep_messages = keep;
  return o;
}

// The heads of `author`'s chains held by `r`.
std::vector<ChainHead> ChainsOf(Replica& r, const Replica& author) {
  auto heads = r.HeadsVisibleTo(testing::kCountyScope);
  REQUIRE_OK(heads);
  std::vector<ChainHead> out;
  for (const auto& h : *heads)
    if (h.chain.author == author.identity().key) out.push_back(h);
  return out;
}

// Syncs every node with `hub` in turn until a whole round moves nothing (a fork needs more than one).
void SyncUntilQuiet(const std::vector<Node*>& nodes, Replica& hub) {
  bool quiet = false;
  for (int round = 0; round < 6 && !quiet; ++round) {
    quiet = true;
    for (Node* n : nodes)
      if (Sync(**n, hub).round_trips > 1) quiet = false;
  }
  REQUIRE(quiet);
}

// A revocation body built by hand, so a test can sign what Issue would refuse.
std::string HandBody(const PublicKey& node, const PublicKey& authority, const std::vector<ChainLimit>& chains,
                     const std::string& reason = "hand built") {
  capnp::MallocMessageBuilder message;
  auto body = message.initRoot<wire::RevocationBody>();
  body.setNodeKey(DataOf(node.view()));
  auto list = body.initChains(static_cast<unsigned>(chains.size()));
  for (size_t i = 0; i < chains.size(); ++i) {
    list[i].setScope(chains[i].scope);
    list[i].setTableClass(chains[i].cls == TableClass::kReference ? wire::TableClass::REFERENCE
                                                                   : wire::TableClass::CASE);
    list[i].setLastSeq(chains[i].last_seq);
  }
  body.setRevokedAtMs(testing::kDefaultStartMs);
  body.setReason(reason);
  body.setAuthority(DataOf(authority.view()));
  return SerializeCanonical(body.asReader());
}
std::string SignHand(const std::string& body, const SigningKey& signer) {
  return signed_body::Build<wire::SignedRevocation>(body, signer.SignDigest(ComputeDigest("aidsync revocation v1", body)));
}

}  // namespace

// ------------------------------------------------------------------ the signed revocation

TEST_CASE("revocation: Issue/Parse round trip, and any flipped byte, another authority or a limit is refused",
          "[revocation][format]") {
  testing::SeededRandom random(11);
  SigningKey authority = SigningKey::Generate(random);
  SigningKey node = SigningKey::Generate(random);
  SigningKey rogue = SigningKey::Generate(random);
  RevocationFields fields;
  fields.node_key = node.public_key();
  fields.chains = {{kVillage, TableClass::kCase, 2}, {kTownship, TableClass::kCase, 7},
                   {kTownship, TableClass::kReference, 3}};
  fields.revoked_at_ms = testing::kDefaultStartMs;
  fields.reason = "笔记本电脑被盗";
  auto issued = Revocation::Issue(fields, authority);
  REQUIRE_OK(issued);

  auto parsed = Revocation::Parse(issued->bytes(), authority.public_key());
  REQUIRE_OK(parsed);
  CHECK(parsed->bytes() == issued->bytes());
  CHECK(parsed->id() == issued->id());
  std::vector<ChainLimit> sorted = fields.chains;
  std::sort(sorted.begin(), sorted.end());
  CHECK(parsed->fields().chains == sorted);
  CHECK(parsed->fields().node_key == node.public_key());
  CHECK(parsed->fields().authority == authority.public_key());
  CHECK(parsed->fields().reason == fields.reason);
  CHECK(parsed->fields().revoked_at_ms == fields.revoked_at_ms);
  CHECK(parsed->LastValidSeq(kTownship, TableClass::kCase) == 7);
  CHECK(parsed->LastValidSeq(kTownship, TableClass::kReference) == 3);
  CHECK(parsed->LastValidSeq(kVillage, TableClass::kCase) == 2);
  CHECK(parsed->LastValidSeq("430123/06", TableClass::kCase) == 0);  // unlisted: keeps nothing
  // Deterministic: the same fields in any order sign to the same bytes.
  auto again = Revocation::Issue(RevocationFields{node.public_key(), sorted, fields.revoked_at_ms, fields.reason, {}},
                                 authority);
  REQUIRE_OK(again);
  CHECK(again->bytes() == issued->bytes());

  // Every single flipped byte, three ways, is refused; so is every truncation and any extension.
  const std::string& good = issued->bytes();
  std::string accepted;  // the damaged copies that parsed
  std::set<Status::Code> codes;
  for (size_t i = 0; i < good.size(); ++i) {
    for (uint8_t mask : {0x01, 0x80, 0xff}) {
      std::string bad = good;
      bad[i] = static_cast<char>(bad[i] ^ mask);
      auto r = Revocation::Parse(bad, authority.public_key());
      if (r.ok()) accepted += " byte " + std::to_string(i) + "^" + std::to_string(mask);
      else codes.insert(r.status().code());
    }
  }
  for (size_t n = 0; n < good.size(); ++n)
    if (Revocation::Parse(good.substr(0, n), authority.public_key()).ok()) accepted += " cut " + std::to_string(n);
  for (const std::string& tail : {std::string(1, '\0'), std::string(8, '\0'), std::string("x")})
    if (Revocation::Parse(good + tail, authority.public_key()).ok()) accepted += " extended";
  CHECK(accepted == "");
  for (Status::Code c : codes)
    CHECK((c == Status::Code::kCorruption || c == Status::Code::kBadSignature || c == Status::Code::kUnauthorized));
  CHECK(codes.count(Status::Code::kBadSignature) == 1);  // the body and signature bytes are covered

  // Another authority's revocation; and one that names ours but carries another key's signature.
  auto foreign = Revocation::Issue(fields, rogue);
  REQUIRE_OK(foreign);
  REQUIRE_CODE(Revocation::Parse(foreign->bytes(), authority.public_key()), Status::Code::kUnauthorized);
  const std::string body = HandBody(node.public_key(), authority.public_key(), {});
  REQUIRE_CODE(Revocation::Parse(SignHand(body, rogue), authority.public_key()), Status::Code::kBadSignature);
  REQUIRE_OK(Revocation::Parse(SignHand(body, authority), authority.public_key()));  // the same body, signed right

  // Limits.
  std::vector<ChainLimit> many;
  for (int i = 0; i < 1025; ++i) many.push_back({"430123/c" + std::to_string(i), TableClass::kCase, 1});
  std::sort(many.begin(), many.end());
  REQUIRE_CODE(Revocation::Issue({node.public_key(), many, 0, "", {}}, authority), Status::Code::kInvalidArgument);
  REQUIRE_CODE(Revocation::Parse(SignHand(HandBody(node.public_key(), authority.public_key(), many), authority),
                                 authority.public_key()),
               Status::Code::kCorruption);  // too many chains, though signed by the authority
  many.pop_back();
  auto widest = Revocation::Issue({node.public_key(), many, 0, "", {}}, authority);
  REQUIRE_OK(widest);
  REQUIRE_OK(Revocation::Parse(widest->bytes(), authority.public_key()));
  RevocationParseOptions narrow;
  narrow.max_chains = 1023;
  REQUIRE_CODE(Revocation::Parse(widest->bytes(), authority.public_key(), narrow), Status::Code::kCorruption);
  RevocationParseOptions small;
  small.max_bytes = good.size() - 1;
  REQUIRE_CODE(Revocation::Parse(good, authority.public_key(), small), Status::Code::kCorruption);
  small.max_bytes = good.size();
  REQUIRE_OK(Revocation::Parse(good, authority.public_key(), small));
  REQUIRE_CODE(Revocation::Parse(std::string(64 * 1024 + 1, '\0'), authority.public_key()), Status::Code::kCorruption);

  // What Issue refuses never parses, even when the authority signed it.
  REQUIRE_CODE(Revocation::Issue({node.public_key(), {}, 0, std::string(501, 'r'), {}}, authority),
               Status::Code::kInvalidArgument);
  REQUIRE_OK(Revocation::Issue({node.public_key(), {}, 0, std::string(500, 'r'), {}}, authority));
  REQUIRE_CODE(Revocation::Issue({PublicKey{}, {}, 0, "", {}}, authority), Status::Code::kInvalidArgument);
  REQUIRE_CODE(Revocation::Issue({node.public_key(), {{"430123//05", TableClass::kCase, 1}}, 0, "", {}}, authority),
               Status::Code::kInvalidArgument);
  const std::vector<ChainLimit> twice = {{kTownship, TableClass::kCase, 1}, {kTownship, TableClass::kCase, 9}};
  REQUIRE_CODE(Revocation::Issue({node.public_key(), twice, 0, "", {}}, authority), Status::Code::kInvalidArgument);
  REQUIRE_CODE(Revocation::Parse(SignHand(HandBody(node.public_key(), authority.public_key(), twice), authority),
                                 authority.public_key()),
               Status::Code::kCorruption);
}

TEST_CASE("revocation: only the hub revokes, once, a key that was enrolled and is not its own", "[revocation]") {
  Cluster cluster;
  Replica& hub = *cluster.hub().replica;
  Node& st = Enrol(cluster, "城关镇工作站", "0512", kTownship);
  SigningKey stranger = SigningKey::Generate(cluster.random());
  REQUIRE_CODE(st->Revoke(hub.identity().key, "x", cluster.authority()), Status::Code::kUnauthorized);
  REQUIRE_CODE(hub.Revoke(hub.identity().key, "x", cluster.authority()), Status::Code::kInvalidArgument);
  REQUIRE_CODE(hub.Revoke(stranger.public_key(), "x", cluster.authority()), Status::Code::kNotFound);
  CHECK(hub.Revocations()->empty());
  auto rev = hub.Revoke(st->identity().key, "遗失", cluster.authority());
  REQUIRE_OK(rev);
  CHECK(rev->fields().chains.empty());  // the hub holds none of its changesets: it keeps nothing
  REQUIRE_CODE(hub.Revoke(st->identity().key, "again", cluster.authority()), Status::Code::kAlreadyExists);
  CHECK(*hub.Revocations() == std::vector<std::string>{rev->bytes()});
  // Adding a revocation is idempotent, and the digest follows the list.
  auto empty_digest = st->RevocationsDigest();
  REQUIRE_OK(empty_digest);
  CHECK(*st->AddRevocation(rev->bytes()) == true);
  CHECK(*st->AddRevocation(rev->bytes()) == false);
  CHECK(*st->RevocationsDigest() == *hub.RevocationsDigest());
  CHECK_FALSE(*st->RevocationsDigest() == *empty_digest);
  CHECK(*st->IsRevokedCurveKey(CurveRaw(st->identity().key)) == true);
  CHECK(*st->IsRevokedCurveKey(CurveRaw(hub.identity().key)) == false);
  CHECK(*st->IsRevokedCurveKey(std::string(st->identity().key.view())) == false);  // the ed25519 key is not the Curve key
}

TEST_CASE("revocation: a reason with a control character is refused by Issue, Parse, Revoke and on receipt",
          "[revocation][format]") {
  Cluster cluster;
  Replica& hub = *cluster.hub().replica;
  Node& st = Enrol(cluster, "城关镇工作站", "0512", kTownship);
  Node& other = Enrol(cluster, "城关镇第二工作站", "0514", kTownship);
  const SigningKey& authority = cluster.authority();
  const PublicKey key = st->identity().key;
  REQUIRE_CODE(Revocation::Issue({key, {}, 0, std::string("a\0b", 3), {}}, authority), Status::Code::kInvalidArgument);
  for (const std::string& reason : std::vector<std::string>{"\x1b[2J", "遗失\n伪造的第二行", "\t", "del\x7f", "\x1f"}) {
    INFO("reason bytes: " << ToHex(reason));
    REQUIRE_CODE(Revocation::Issue({key, {}, 0, reason, {}}, authority), Status::Code::kInvalidArgument);
    // Signed by the authority by hand: still refused, as an invalid field.
    const std::string signed_by_hand = SignHand(HandBody(key, authority.public_key(), {}, reason), authority);
    auto parsed = Revocation::Parse(signed_by_hand, authority.public_key());
    REQUIRE_CODE(parsed, Status::Code::kCorruption);
    CHECK(parsed.status().message().find("control character") != std::string::npos);
  }
  // Printable text, Chinese included, is fine, issued or signed by hand.
  REQUIRE_OK(Revocation::Issue({key, {}, 0, "笔记本电脑被盗 (2024-06-15)", {}}, authority));
  REQUIRE_OK(Revocation::Parse(SignHand(HandBody(key, authority.public_key(), {}, "笔记本电脑被盗 ~"), authority),
                               authority.public_key()));

  // `revoke` on the hub refuses it and stores nothing.
  REQUIRE_CODE(hub.Revoke(key, "\x1b[2J", authority), Status::Code::kInvalidArgument);
  CHECK(hub.Revocations()->empty());

  // A node handed one (in a welcome, a push or at join) counts it and does not store it.
  const std::string bad = SignHand(HandBody(key, authority.public_key(), {}, "\x1b[2J"), authority);
  REQUIRE_CODE(other->AddRevocation(bad), Status::Code::kCorruption);
  REQUIRE_OK(AbsorbRevocations(*other, {bad}));
  CHECK(StatusOf(*other).rejected == Counts{{"bad_revocation", 1}});
  CHECK(other->Revocations()->empty());
  CHECK(*other->IsRevokedCurveKey(CurveRaw(key)) == false);
}

// ------------------------------------------------------------------ changesets of a revoked key

TEST_CASE("revocation: a revoked station's changesets up to the limit are accepted, later ones refused as "
          "revoked_author",
          "[revocation][apply]") {
  Cluster cluster;
  Replica& hub = *cluster.hub().replica;
  Node& town = Enrol(cluster, "城关镇工作站", "0510", kTownship);
  Node& village = Enrol(cluster, "城关镇新村服务点", "0517", kVillage);
  std::vector<std::string> kept = {Consult(*village, "一"), Consult(*village, "二"), Consult(*village, "三")};
  auto to_hub = Exchange(*village, hub);
  REQUIRE_OK(to_hub);
  REQUIRE(to_hub->applied == 3);
  std::vector<std::string> late = {Consult(*village, "四"), Consult(*village, "五")};
  const std::vector<std::string> envelopes = OwnEnvelopes(*village);
  REQUIRE(envelopes.size() == 5);

  auto rev = hub.Revoke(village->identity().key, "服务点电脑被盗", cluster.authority());
  REQUIRE_OK(rev);
  CHECK(rev->fields().chains == std::vector<ChainLimit>{{kVillage, TableClass::kCase, 3}});

  // The township never had any of them; it learns of the revocation first.
  REQUIRE(*town->AddRevocation(rev->bytes()) == true);
  auto report = Exchange(*village, *town);
  REQUIRE_OK(report);
  CHECK(report->applied == 3);
  CHECK(report->rejected == 2);
  CHECK(report->held == 0);
  CHECK(testing::Mentions(report->rejections, "revoked_author"));
  for (const auto& id : kept) CHECK(Has(*town, "consultations", id));
  for (const auto& id : late) CHECK_FALSE(Has(*town, "consultations", id));
  CHECK(AuthoredBy(*town, *village) == 3);
  CHECK(StatusOf(*town).rejected == Counts{{"revoked_author", 2}});
  CHECK(RejectedIds(*town, "revoked_author") == std::set<std::string>{IdOf(envelopes[3]).Hex(), IdOf(envelopes[4]).Hex()});
  for (size_t i : {3, 4})  // kept whole, for the admin
    CHECK(Count(*town, "SELECT count(*) FROM aidsync_rejected WHERE envelope = x'" + ToHex(envelopes[i]) + "'") == 1);

  // Offered again: refused again, counted once.
  auto again = Exchange(*village, *town);
  REQUIRE_OK(again);
  CHECK(again->duplicates == 3);
  CHECK(again->rejected == 2);
  CHECK(StatusOf(*town).rejected == Counts{{"revoked_author", 2}});

  // The hub refuses them the same way, whatever order they come in.
  auto at_hub = hub.ApplyRemote({envelopes[4], envelopes[3]});
  REQUIRE_OK(at_hub);
  CHECK(at_hub->rejected == 2);
  CHECK(at_hub->held == 0);
  CHECK(StatusOf(hub).rejected == Counts{{"revoked_author", 2}});
  CHECK(StatusOf(hub).held_changesets == 0);
  for (const auto& id : late) CHECK_FALSE(Has(hub, "consultations", id));
  CHECK(ListText(hub, "consultations") == ListText(*town, "consultations"));
}

TEST_CASE("revocation: a node that applied a revoked key's later changesets takes them back when the "
          "revocation arrives",
          "[revocation][takeback]") {
  Cluster cluster;
  Replica& hub = *cluster.hub().replica;
  Node& town = Enrol(cluster, "城关镇工作站", "0510", kTownship);
  Node& other = Enrol(cluster, "城关镇第二工作站", "0511", kTownship);
  Node& relay = Enrol(cluster, "城关镇第三工作站", "0513", kTownship);
  Node& village = Enrol(cluster, "城关镇新村服务点", "0517", kVillage);
  const std::string row = Consult(*village, "原始");  // seq 1
  const std::string kept = Consult(*village, "保留");  // seq 2
  REQUIRE(Exchange(*village, hub)->applied == 2);
  REQUIRE_OK(PutRow(*village, "consultations", row, {{"topic", "被篡改"}}));  // seq 3: an edit of seq 1's row
  const std::string added = Consult(*village, "新增");                         // seq 4
  Consult(*village, "未到");                                                   // seq 5: never delivered
  const std::string lone = Consult(*village, "单独");                          // seq 6: held at the township
  const std::vector<std::string> env = OwnEnvelopes(*village);
  REQUIRE(env.size() == 6);

  // Three township nodes apply seq 1..4 before anyone revokes; the township also holds seq 6.
  for (Node* n : {&town, &other, &relay}) {
    REQUIRE_OK((*n)->AddCertificate(cluster.CertificateOf(village).bytes()));
    auto r = (*n)->ApplyRemote({env[0], env[1], env[2], env[3]});
    REQUIRE_OK(r);
    REQUIRE(r->applied == 4);
    CHECK(TextField(**n, "consultations", row, "topic") == "被篡改");
  }
  REQUIRE(town->ApplyRemote({env[5]})->held == 1);
  REQUIRE(StatusOf(*town).held_changesets == 1);

  auto rev = hub.Revoke(village->identity().key, "冒用", cluster.authority());
  REQUIRE_OK(rev);
  REQUIRE(rev->LastValidSeq(kVillage, TableClass::kCase) == 2);

  // The township is handed the revocation directly.
  const int64_t log_before = testing::TotalChangesets(*town);
  REQUIRE(*town->AddRevocation(rev->bytes()) == true);
  CHECK(TextField(*town, "consultations", row, "topic") == "原始");
  CHECK(Has(*town, "consultations", kept));
  CHECK_FALSE(Has(*town, "consultations", added));
  CHECK_FALSE(Has(*town, "consultations", lone));
  CHECK(testing::TotalChangesets(*town) == log_before - 2);
  CHECK(AuthoredBy(*town, *village) == 2);
  auto status = StatusOf(*town);
  CHECK(status.held_changesets == 0);
  CHECK(status.rejected == Counts{{"revoked_author", 3}});
  CHECK(RejectedIds(*town, "revoked_author") ==
        std::set<std::string>{IdOf(env[2]).Hex(), IdOf(env[3]).Hex(), IdOf(env[5]).Hex()});
  CHECK(ChainsOf(*town, *village) == ChainsOf(hub, *village));  // the chain head recomputed

  // Rebuild (the log is the truth) and a reopen give the same state.
  const std::string after = Dump(*town);
  REQUIRE_OK(town->Rebuild());
  CHECK(Dump(*town) == after);
  cluster.Reopen(town);
  CHECK(Dump(*town) == after);

  // The township converges with the hub, which never had them: then one round trip says "up to date".
  Sync(*town, hub);
  SessionRun quiet = Sync(*town, hub);
  CHECK(quiet.up_to_date);
  CHECK(quiet.round_trips == 1);
  CHECK(ListText(*town, "consultations") == ListText(hub, "consultations"));

  // The other township node learns of the revocation in its session's welcome.
  Sync(*other, hub);
  CHECK(TextField(*other, "consultations", row, "topic") == "原始");
  CHECK_FALSE(Has(*other, "consultations", added));
  CHECK(StatusOf(*other).rejected == Counts{{"revoked_author", 2}});
  CHECK(ChainsOf(*other, *village) == ChainsOf(hub, *village));
  SessionRun other_quiet = Sync(*other, hub);
  CHECK(other_quiet.up_to_date);
  CHECK(other_quiet.round_trips == 1);
  CHECK(ListText(*other, "consultations") == ListText(hub, "consultations"));

  // The third one serves the hub, whose first push carries the revocation.
  Sync(hub, *relay, To(cluster.CertificateOf(relay)));
  CHECK(TextField(*relay, "consultations", row, "topic") == "原始");
  CHECK_FALSE(Has(*relay, "consultations", added));
  CHECK(StatusOf(*relay).rejected == Counts{{"revoked_author", 2}});
  CHECK(Sync(*relay, hub).round_trips == 1);
  CHECK(ListText(*relay, "consultations") == ListText(hub, "consultations"));
  CHECK(RejectedTotal(hub) == 0);
}

// Fills the node's refused-input store up to its bound of 10,000 kept
// records with filler rows, the replica closed meanwhile, then reopens it.
void FillRejectedStore(Cluster& cluster, Node& node) {
  node.replica.reset();
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2((node.dir + "/replica.db").c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK);
  const char* fill =
      "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000) "
      "INSERT INTO aidsync_rejected(hash, reason, detail, envelope, received_at) "
      "SELECT randomblob(32), 'malformed', 'filler', NULL, 0 FROM n";
  CHECK(sqlite3_exec(db, fill, nullptr, nullptr, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_close(db) == SQLITE_OK);
  cluster.Reopen(node);
}

int64_t KeptRevokedAuthor(Node& node) {
  return Count(*node, "SELECT count(*) FROM aidsync_rejected WHERE reason = 'revoked_author' "
                               "AND envelope IS NOT NULL");
}

TEST_CASE("revocation: past 10,000 kept refusals a revoked key's changesets refused on receipt are only "
          "counted, and those a revocation takes back out of the log are still kept whole",
          "[revocation][bound]") {
  Cluster cluster;
  Replica& hub = *cluster.hub().replica;
  Node& town = Enrol(cluster, "城关镇工作站", "0510", kTownship);
  Node& relay = Enrol(cluster, "城关镇第二工作站", "0511", kTownship);
  Node& village = Enrol(cluster, "城关镇新村服务点", "0517", kVillage);
  Consult(*village, "一");
  REQUIRE(Exchange(*village, hub)->applied == 1);
  Consult(*village, "二");
  Consult(*village, "三");
  const std::vector<std::string> env = OwnEnvelopes(*village);
  REQUIRE(env.size() == 3);
  // The relay applied all three before the revocation reached it.
  REQUIRE_OK(relay->AddCertificate(cluster.CertificateOf(village).bytes()));
  REQUIRE(relay->ApplyRemote(env)->applied == 3);
  auto rev = hub.Revoke(village->identity().key, "服务点电脑被盗", cluster.authority());
  REQUIRE_OK(rev);
  FillRejectedStore(cluster, town);
  FillRejectedStore(cluster, relay);

  // Refused on receipt: counted, not kept, and the store says it is full.
  REQUIRE(*town->AddRevocation(rev->bytes()) == true);
  auto report = Exchange(*village, *town);
  REQUIRE_OK(report);
  CHECK(report->applied == 1);
  CHECK(report->rejected == 2);
  CHECK(StatusOf(*town).rejected == Counts{{"revoked_author", 2}});
  CHECK(Count(*town, "SELECT count(*) FROM aidsync_rejected WHERE reason = 'revoked_author'") == 0);
  auto alerts = StatusOf(*town).alerts;
  CHECK(std::any_of(alerts.begin(), alerts.end(), [](const std::string& a) { return a.find("10000") != std::string::npos; }));

  // Taken back out of the log: they exist nowhere else on the node, so they are kept.
  REQUIRE(*relay->AddRevocation(rev->bytes()) == true);
  CHECK(StatusOf(*relay).rejected == Counts{{"revoked_author", 2}});
  CHECK(KeptRevokedAuthor(relay) == 2);
}

TEST_CASE("revocation: of two different revocations of one key every node keeps the one with the smaller id, "
          "in any order, and nodes converge",
          "[revocation][takeback]") {
  for (uint64_t kept_limit : {1, 3}) {
    INFO("the revocation every node keeps allows " << kept_limit << " changesets");
    Cluster cluster(kept_limit);
    Node& a = Enrol(cluster, "城关镇工作站", "0510", kTownship);
    Node& b = Enrol(cluster, "城关镇第二工作站", "0511", kTownship);
    Node& village = Enrol(cluster, "城关镇新村服务点", "0517", kVillage);
    for (int i = 1; i <= 4; ++i) Consult(*village, "第" + std::to_string(i) + "条");
    const std::vector<std::string> env = OwnEnvelopes(*village);
    for (Node* n : {&a, &b}) {
      REQUIRE_OK((*n)->AddCertificate(cluster.CertificateOf(village).bytes()));
      REQUIRE((*n)->ApplyRemote(env)->applied == 4);
    }
    // The authority signed two revocations of the key (two admins, say); find a pair whose smaller id has kept_limit.
    std::optional<Revocation> kept, other;
    for (int64_t t = 0; !kept; ++t) {
      auto issue = [&](uint64_t last) {
        auto r = Revocation::Issue(
            {village->identity().key, {{kVillage, TableClass::kCase, last}}, testing::kDefaultStartMs + t, "", {}},
            cluster.authority());
        REQUIRE_OK(r);
        return *r;
      };
      Revocation k = issue(kept_limit), o = issue(4 - kept_limit);
      if (k.id() < o.id()) kept = k, other = o;
    }
    REQUIRE(*a->AddRevocation(other->bytes()) == true);  // A hears of the other one first
    REQUIRE(*a->AddRevocation(kept->bytes()) == true);
    REQUIRE(*b->AddRevocation(kept->bytes()) == true);
    CHECK(*b->AddRevocation(other->bytes()) == false);
    testing::ExchangeBoth(*a, *b);
    for (Replica* r : {&*a, &*b}) {
      INFO(r->identity().name);
      CHECK(*r->Revocations() == std::vector<std::string>{kept->bytes()});
      CHECK(AuthoredBy(*r, *village) == static_cast<int64_t>(kept_limit));
      CHECK(StatusOf(*r).rejected == Counts{{"revoked_author", 4 - static_cast<int64_t>(kept_limit)}});
    }
    CHECK(Dump(*a) == Dump(*b));
    CHECK(ChainsOf(*a, *village) == ChainsOf(*b, *village));
  }
}

// ------------------------------------------------------------------ sessions

TEST_CASE("revocation: revocations travel in sessions, hub to township to village, and revoked peers are "
          "refused both ways",
          "[revocation][sync]") {
  Cluster cluster;
  Replica& hub = *cluster.hub().replica;
  Node& town = Enrol(cluster, "城关镇工作站", "0510", kTownship);
  Node& village = Enrol(cluster, "城关镇新村服务点", "0517", kVillage);
  Node& sibling = Enrol(cluster, "城关镇第二工作站", "0511", kTownship);
  Node& lost = Enrol(cluster, "东山乡工作站", "0570", "430123/07");
  const Certificate town_cert = cluster.CertificateOf(town);
  const std::string before_lost = Consult(*lost, "吊销前");
  Sync(*lost, hub);
  Sync(*town, hub);
  Sync(*village, *town, To(town_cert));
  const Digest empty_list = *village->RevocationsDigest();

  auto rev = hub.Revoke(lost->identity().key, "失窃", cluster.authority());
  REQUIRE_OK(rev);
  const std::vector<std::string> list = {rev->bytes()};

  // The township's hello announces the old list: the hub's welcome carries the revocation.
  SessionRun run = Sync(*town, hub, To(cluster.CertificateOf(cluster.hub()), true));
  CHECK(Body<HelloMsg>(run.requests.at(0)).revocations_digest == empty_list);
  auto welcome = Body<WelcomeMsg>(run.replies.at(0));
  CHECK(welcome.revocations == list);
  CHECK(welcome.revocations_digest == *hub.RevocationsDigest());
  CHECK_FALSE(welcome.up_to_date);  // the lists differ, even though the heads agree
  CHECK(town->RevocationOf(lost->identity().key)->has_value());

  // The village syncs only with its township, which sends it on: the village's hello had the old list.
  run = Sync(*village, *town, To(town_cert, true));
  CHECK(Body<HelloMsg>(run.requests.at(0)).revocations_digest == empty_list);
  CHECK(Body<WelcomeMsg>(run.replies.at(0)).revocations == list);
  CHECK(village->RevocationOf(lost->identity().key)->has_value());
  // Lists and heads agree now: one round trip, nothing sent again.
  run = Sync(*village, *town, To(town_cert, true));
  CHECK(run.round_trips == 1);
  CHECK(run.up_to_date);
  CHECK(Body<WelcomeMsg>(run.replies.at(0)).revocations.empty());

  // A server with the old list gets it in the client's first push.
  run = Sync(*town, *sibling, To(cluster.CertificateOf(sibling), true));
  REQUIRE(run.requests.size() >= 2);
  auto push = Body<PushMsg>(run.requests.at(1));
  CHECK(push.has_heads);
  CHECK(push.revocations == list);
  CHECK(sibling->RevocationOf(lost->identity().key)->has_value());
  CHECK(*sibling->RevocationsDigest() == *hub.RevocationsDigest());
  for (Replica* r : {&hub, &*town, &*village, &*sibling}) CHECK(RejectedTotal(*r) == 0);

  // A revoked client is refused by the hub and by a township that heard of it.
  const std::string after_lost = Consult(*lost, "吊销后");
  SessionRun refused = RunSession(*lost, hub);
  REQUIRE_CODE(refused.status, Status::Code::kUnavailable);
  CHECK(refused.status.message().find("revoked_key") != std::string::npos);
  CHECK(refused.round_trips == 1);
  CHECK(StatusOf(hub).rejected == Counts{{"revoked_key", 1}});
  refused = RunSession(*lost, *town, To(town_cert));
  CHECK(refused.status.message().find("revoked_key") != std::string::npos);
  CHECK(StatusOf(*town).rejected == Counts{{"revoked_key", 1}});
  // The transport's ZAP decision refuses it too, and counts it; others are admitted.
  SyncServer server(hub);
  CHECK(server.AdmitCurveKey(CurveRaw(lost->identity().key)) == 400);
  CHECK(server.AdmitCurveKey(CurveRaw(town->identity().key)) == 200);
  CHECK(StatusOf(hub).rejected == Counts{{"revoked_key", 2}});
  CHECK(Has(hub, "consultations", before_lost));
  CHECK_FALSE(Has(hub, "consultations", after_lost));

  // A client that knows of the revocation refuses a revoked server.
  refused = RunSession(hub, *lost, To(cluster.CertificateOf(lost)));
  REQUIRE_CODE(refused.status, Status::Code::kUnauthorized);
  CHECK(refused.status.message().find("revoked") != std::string::npos);
  CHECK(refused.round_trips == 1);
  CHECK(refused.changesets_pushed == 0);
  CHECK_FALSE(refused.complete);
  CHECK_FALSE(Has(hub, "consultations", after_lost));
  auto peers = hub.Peers();
  REQUIRE_OK(peers);
  bool recorded = false;
  for (const auto& p : *peers)
    if (p.id == lost->identity().key.Hex()) recorded = p.last_error.find("revoked") != std::string::npos;
  CHECK(recorded);
}

TEST_CASE("revocation: a session open when the client's key is revoked is cut at its next push, and nothing of "
          "that push is applied",
          "[revocation][sync]") {
  Cluster cluster;
  Replica& hub = *cluster.hub().replica;
  Node& town = Enrol(cluster, "城关镇工作站", "0510", kTownship);
  Node& village = Enrol(cluster, "城关镇新村服务点", "0517", kVillage);
  const std::string from_village = Consult(*village, "服务点的记录");
  Sync(*village, *town, To(cluster.CertificateOf(town)));  // the township relays it: a push may carry others' records
  const std::string from_town = Consult(*town, "镇上的记录");
  REQUIRE(AuthoredBy(*town, *village) == 1);

  // The township's session with the hub, by hand: one changeset per push, so the session has more to come.
  SyncOptions small;
  small.batch_bytes = 1;
  SyncServer server(hub, small);
  SyncClient client(*town, cluster.CertificateOf(cluster.hub()), "inproc", 41, small);
  const std::string curve = testing::CurveKeyHex(*town);
  auto hello = client.Start();
  REQUIRE_OK(hello);
  auto push = client.OnReply(server.Handle("conn-t", curve, *hello));
  REQUIRE_OK(push);
  REQUIRE(push->has_value());
  REQUIRE(testing::ChangesetsInMessage(**push) == 1);
  REQUIRE(Body<PushMsg>(**push).more);

  // The admin revokes the township between its hello and its push.
  REQUIRE_OK(hub.Revoke(town->identity().key, "会话中吊销", cluster.authority()));
  const std::string before = testing::Snapshot(hub);
  const std::string reply = server.Handle("conn-t", curve, **push);
  RefusedMsg refused = Body<RefusedMsg>(reply);
  CHECK(refused.reason == "revoked_key");
  CHECK(StatusOf(hub).rejected == Counts{{"revoked_key", 1}});
  auto answer = client.OnReply(reply);
  REQUIRE_CODE(answer, Status::Code::kUnavailable);
  CHECK(answer.status().message().find("revoked_key") != std::string::npos);

  // The session is gone: a further push on it, carrying the village's record, gets no_session.
  PushMsg more;
  more.changesets = OwnEnvelopes(*village);
  CHECK(Body<RefusedMsg>(server.Handle("conn-t", curve, EncodeMessage(SyncMsg{kProtocolVersion, 41, more}))).reason ==
        "no_session");

  // Nothing of either push was applied or even looked at (no revoked_author refusal either).
  CHECK(testing::Snapshot(hub) == before);
  CHECK_FALSE(Has(hub, "consultations", from_village));
  CHECK_FALSE(Has(hub, "consultations", from_town));
  CHECK(AuthoredBy(hub, *village) == 0);
  CHECK(AuthoredBy(hub, *town) == 0);
  CHECK(Count(hub, "SELECT count(*) FROM aidsync_rejected") == 0);
  CHECK(StatusOf(hub).rejected == Counts{{"no_session", 1}, {"revoked_key", 1}});
  CHECK_FALSE(server.TakeNewData());

  // The server goes on serving: the township's new hello is refused, the village's own session delivers its record.
  SessionOptions via;
  via.server = &server;
  SessionRun again = RunSession(*town, hub, via);
  CHECK(again.status.message().find("revoked_key") != std::string::npos);
  Sync(*village, hub, via);
  CHECK(Has(hub, "consultations", from_village));
  CHECK(StatusOf(hub).rejected == Counts{{"no_session", 1}, {"revoked_key", 2}});
}

TEST_CASE("revocation: the ZAP decision is 200 for a live key, 400 counted revoked_key for a revoked key, 300 "
          "uncounted when the store cannot be read",
          "[revocation][zap]") {
  Cluster cluster;
  Replica& hub = *cluster.hub().replica;
  Node& st = Enrol(cluster, "城关镇工作站", "0512", kTownship);
  Node& live = Enrol(cluster, "城关镇第二工作站", "0514", kTownship);
  SigningKey stranger = SigningKey::Generate(cluster.random());
  SyncServer server(hub);
  CHECK(server.AdmitCurveKey(CurveRaw(st->identity().key)) == 200);
  CHECK(server.AdmitCurveKey(CurveRaw(stranger.public_key())) == 200);  // enrolment is proven in the hello
  CHECK(RejectedTotal(hub) == 0);

  REQUIRE_OK(hub.Revoke(st->identity().key, "遗失", cluster.authority()));
  CHECK(server.AdmitCurveKey(CurveRaw(st->identity().key)) == 400);
  CHECK(StatusOf(hub).rejected == Counts{{"revoked_key", 1}});
  CHECK(server.AdmitCurveKey(CurveRaw(live->identity().key)) == 200);

  // The store cannot answer (the revocations table is out of reach): nobody is admitted, nothing is counted.
  auto side = Database::Open(hub.dir() + "/replica.db", {});
  REQUIRE_OK(side);
  REQUIRE_OK((*side)->Exec("ALTER TABLE aidsync_revocations RENAME TO aidsync_revocations_away"));
  CHECK(server.AdmitCurveKey(CurveRaw(st->identity().key)) == 300);
  CHECK(server.AdmitCurveKey(CurveRaw(live->identity().key)) == 300);
  REQUIRE_OK((*side)->Exec("ALTER TABLE aidsync_revocations_away RENAME TO aidsync_revocations"));
  CHECK(StatusOf(hub).rejected == Counts{{"revoked_key", 1}});
  CHECK(server.AdmitCurveKey(CurveRaw(st->identity().key)) == 400);
  CHECK(server.AdmitCurveKey(CurveRaw(live->identity().key)) == 200);
  CHECK(StatusOf(hub).rejected == Counts{{"revoked_key", 2}});
}

// ------------------------------------------------------------------ forks

TEST_CASE("revocation: revoking a forked key answers the fork alarm and keeps the records at or below the "
          "limits",
          "[revocation][fork]") {
  Cluster cluster;
  Replica& hub = *cluster.hub().replica;
  Node& st = Enrol(cluster, "城关镇工作站", "0512", kTownship);
  Node& sibling = Enrol(cluster, "城关镇第二工作站", "0514", kTownship);
  const std::string first = Consult(*st, "共同的第一条");
  Sync(*st, hub);
  const std::string copy_dir = cluster.root() + "/copied";
  testing::CopyDataDir(cluster, st, copy_dir);  // copies with the replica closed, then reopens it
  Node copy = testing::OpenCopy(cluster, copy_dir, st.clock->NowMillis());

  // Both machines write two records with the one key: positions 2 and 3 forked.
  std::vector<std::string> records = {first, Consult(*st, "真机 一"), Consult(*st, "真机 二"),
                                      Consult(*copy, "复制机 一"), Consult(*copy, "复制机 二")};
  SyncUntilQuiet({&st, &copy, &sibling}, hub);
  for (Replica* r : {&hub, &*sibling}) {
    INFO(r->identity().name);
    auto status = StatusOf(*r);
    REQUIRE(status.forks.size() == 2);
    CHECK(status.forks[0].author_key == st->identity().key.Hex());
    CHECK(status.forks[0].seq == 2);
    CHECK(status.forks[1].seq == 3);
    CHECK(status.forks[0].scope == kTownship);
    CHECK(testing::Mentions(status.alerts, "fork"));
    for (const auto& id : records) CHECK(Has(*r, "consultations", id));
  }

  auto rev = hub.Revoke(st->identity().key, "数据目录被复制", cluster.authority());
  REQUIRE_OK(rev);
  CHECK(rev->LastValidSeq(kTownship, TableClass::kCase) == 3);
  Sync(*sibling, hub);
  for (Replica* r : {&hub, &*sibling}) {
    INFO(r->identity().name);
    auto status = StatusOf(*r);
    CHECK(status.forks.empty());
    CHECK_FALSE(testing::Mentions(status.alerts, "fork"));
    for (const auto& id : records) CHECK(Has(*r, "consultations", id));
    CHECK(AuthoredBy(*r, *st) == 5);
    CHECK(RejectedTotal(*r) == 0);
  }
  CHECK(ListText(*sibling, "consultations") == ListText(hub, "consultations"));

  // Past the limit nothing more is taken from either machine, by session or by hand.
  const std::string late = Consult(*copy, "复制机 三");
  SessionRun refused = RunSession(*copy, hub);
  CHECK(refused.status.message().find("revoked_key") != std::string::npos);
  auto carried = Exchange(*copy, hub);
  REQUIRE_OK(carried);
  CHECK(carried->applied == 0);
  CHECK(carried->rejected == 1);
  CHECK_FALSE(Has(hub, "consultations", late));
  CHECK(StatusOf(hub).rejected == Counts{{"revoked_author", 1}, {"revoked_key", 1}});
  CHECK(StatusOf(hub).forks.empty());
}

TEST_CASE("revocation: a node whose own key is revoked cannot begin a local write", "[revocation][local]") {
  Cluster cluster;
  Replica& hub = *cluster.hub().replica;
  Node& st = Enrol(cluster, "城关镇工作站", "0512", kTownship);
  const std::string row = Consult(*st, "吊销前");
  auto rev = hub.Revoke(st->identity().key, "调离", cluster.authority());
  REQUIRE_OK(rev);
  REQUIRE(*st->AddRevocation(rev->bytes()) == true);
  // Its own changeset past the limit (the hub never had it) is taken back too.
  CHECK_FALSE(Has(*st, "consultations", row));
  CHECK(StatusOf(*st).own_changesets == 0);
  const std::string before = testing::Snapshot(*st);
  REQUIRE_CODE(st->BeginLocal(), Status::Code::kUnauthorized);
  REQUIRE_CODE(PutRow(*st, "consultations", std::nullopt, {{"topic", "吊销后"}}), Status::Code::kUnauthorized);
  cluster.Reopen(st);
  REQUIRE_CODE(st->BeginLocal(), Status::Code::kUnauthorized);
  CHECK(testing::Snapshot(*st) == before);
  // Another node is not affected.
  REQUIRE_OK(hub.BeginLocal());
}

// ------------------------------------------------------------------ hello bound to the connection

TEST_CASE("revocation: a hello must carry the certificate of the connection's own key", "[revocation][hello]") {
  Cluster cluster;
  Replica& hub = *cluster.hub().replica;
  Node& a = Enrol(cluster, "城关镇工作站", "0512", kTownship);
  Node& b = Enrol(cluster, "城关镇第二工作站", "0514", kTownship);
  SyncServer server(hub);
  auto hello = [](const Certificate& cert) {
    return EncodeMessage(SyncMsg{kProtocolVersion, 77, HelloMsg{cert.bytes(), 0, std::nullopt, std::nullopt}});
  };
  auto refusal = [&](const std::string& curve_hex, const std::string& request) {
    return Body<RefusedMsg>(server.Handle("conn-b", curve_hex, request));
  };
  const std::string b_curve = testing::CurveKeyHex(*b);

  // A's certificate is public; B presenting it over B's connection is refused.
  RefusedMsg r = refusal(b_curve, hello(cluster.CertificateOf(a)));
  CHECK(r.reason == "certificate_not_yours");
  CHECK_FALSE(r.detail.empty());
  CHECK(refusal(b_curve, hello(cluster.CertificateOf(cluster.hub()))).reason == "certificate_not_yours");
  CHECK(refusal("", hello(cluster.CertificateOf(b))).reason == "certificate_not_yours");
  CHECK(refusal(std::string(64, '0'), hello(cluster.CertificateOf(b))).reason == "certificate_not_yours");
  // The refused hellos opened no session: a push on that connection has none.
  PushMsg push;
  push.has_heads = true;
  push.changesets = OwnEnvelopes(*a);
  CHECK(refusal(b_curve, EncodeMessage(SyncMsg{kProtocolVersion, 77, push})).reason == "no_session");
  CHECK(StatusOf(hub).rejected == Counts{{"certificate_not_yours", 4}, {"no_session", 1}});
  auto peers = hub.Peers();
  REQUIRE_OK(peers);
  for (const auto& p : *peers) CHECK(p.id != a->identity().key.Hex());  // A was never recorded as a peer

  // B with its own certificate is welcomed on the same connection.
  auto welcome = Body<WelcomeMsg>(server.Handle("conn-b", b_curve, hello(cluster.CertificateOf(b))));
  CHECK(welcome.certificate == cluster.CertificateOf(cluster.hub()).bytes());
  CHECK(RejectedTotal(hub) == 5);
}

// ------------------------------------------------------------------ a superseded certificate

namespace {

// A certificate of `node`'s key with `scope`, issued `delta_ms` after (or
// before) the one it was enrolled with: what a hub that re-enrolled a live key
// issued, before enrolment refused that.
Certificate Reissued(Cluster& cluster, const Node& node, const std::string& scope, int64_t delta_ms) {
  CertificateFields fields = cluster.CertificateOf(node).fields();
  fields.scope = scope;
  fields.issued_at_ms += delta_ms;
  auto cert = Certificate::Issue(fields, cluster.authority());
  REQUIRE_OK(cert);
  return *cert;
}

}  // namespace

// Regression: servers filtered by whatever valid certificate a hello carried,
// so a village presenting its key's older, wider certificate was sent the
// township's and the other villages' records.
TEST_CASE("revocation: a hello with a certificate older than the one the server holds for its key is refused "
          "certificate_superseded, at the hub and at a township",
          "[revocation][hello]") {
  Cluster cluster;
  Replica& hub = *cluster.hub().replica;
  Node& town = Enrol(cluster, "城关镇工作站", "0512", kTownship);
  Node& village = Enrol(cluster, "新华村联系点", "0517", kVillage);
  Node& other = Enrol(cluster, "东风村联系点", "0518", "430123/05/018");
  // The village's key was first enrolled for the whole township.
  const Certificate wide = Reissued(cluster, village, kTownship, -1000);
  const std::string town_record = Consult(*town, "镇工作站记录");
  const std::string other_record = Consult(*other, "东风村记录");
  Sync(*town, hub);
  Sync(*other, hub);
  Sync(*town, hub);  // the township holds the stations rows, so the village's newest certificate

  auto hello = [](const Certificate& cert) {
    return EncodeMessage(SyncMsg{kProtocolVersion, 78, HelloMsg{cert.bytes(), 0, std::nullopt, std::nullopt}});
  };
  const std::string curve = testing::CurveKeyHex(*village);
  for (Replica* server_replica : {&hub, &*town}) {
    INFO("server " << server_replica->identity().name);
    SyncServer server(*server_replica);
    RefusedMsg r = Body<RefusedMsg>(server.Handle("conn-v", curve, hello(wide)));
    CHECK(r.reason == "certificate_superseded");
    CHECK(r.detail.find("scope " + std::string(kVillage)) != std::string::npos);
    // No session was opened: a push on that connection has none.
    PushMsg push;
    push.has_heads = true;
    CHECK(Body<RefusedMsg>(server.Handle("conn-v", curve, EncodeMessage(SyncMsg{kProtocolVersion, 78, push}))).reason ==
          "no_session");
    CHECK(StatusOf(*server_replica).rejected == Counts{{"certificate_superseded", 1}, {"no_session", 1}});
    // The newer certificate stays the one held.
    auto held = server_replica->CertificateByKey(village->identity().key);
    REQUIRE_OK(held);
    REQUIRE(held->has_value());
    CHECK((*held)->bytes() == cluster.CertificateOf(village).bytes());
    // With its newest certificate the village is welcomed, and offered only its own scope.
    auto welcome = Body<WelcomeMsg>(server.Handle("conn-v", curve, hello(cluster.CertificateOf(village))));
    for (const auto& head : welcome.heads) {
      CHECK_FALSE(head.chain.author == town->identity().key);
      CHECK_FALSE(head.chain.author == other->identity().key);
    }
  }
  Sync(*village, hub);
  CHECK_FALSE(Has(*village, "consultations", town_record));
  CHECK_FALSE(Has(*village, "consultations", other_record));
}

TEST_CASE("revocation: a client refuses a welcome whose certificate is older than the one it holds for the "
          "server's key, and learns a newer one",
          "[revocation][hello]") {
  Cluster cluster;
  Replica& hub = *cluster.hub().replica;
  Node& town = Enrol(cluster, "城关镇工作站", "0512", kTownship);
  Node& village = Enrol(cluster, "新华村联系点", "0517", kVillage);
  Sync(*town, hub);
  Sync(*village, hub);

  // The village holds a newer certificate of the township's key than the township itself.
  const Certificate newer = Reissued(cluster, town, kTownship, 1000);
  REQUIRE_OK(village->AddCertificate(newer.bytes()));
  Consult(*village, "村联系点记录");
  const int64_t town_log = testing::TotalChangesets(*town);
  SessionRun run = RunSession(*village, *town, To(newer));
  REQUIRE_CODE(run.status, Status::Code::kUnauthorized);
  CHECK(run.status.message().find("superseded") != std::string::npos);
  CHECK_FALSE(run.complete);
  CHECK(run.changesets_pushed == 0);
  CHECK(testing::TotalChangesets(*town) == town_log);

  // Once the township installs it, the session goes ahead; a client that held
  // only the older one learns the newer one from the welcome.
  REQUIRE_OK(town->InstallOwnCertificate(newer.bytes()));
  Sync(*village, *town, To(newer));
  Node& second = Enrol(cluster, "新华村第二联系点", "0519", kVillage);
  Sync(*second, hub);
  auto before = second->CertificateByKey(town->identity().key);
  REQUIRE_OK(before);
  REQUIRE(before->has_value());
  CHECK((*before)->bytes() == cluster.CertificateOf(town).bytes());
  Sync(*second, *town, To(**before));
  auto after = second->CertificateByKey(town->identity().key);
  REQUIRE_OK(after);
  REQUIRE(after->has_value());
  CHECK((*after)->bytes() == newer.bytes());
}

}  // namespace aidsync
