// The sync protocol's state machines (sync/sync_session.h) driven back to
// back in process: SyncClient on one replica, SyncServer on another, every
// message handed over by RunSession (tests/cluster_fixture.h), no sockets.
// DESIGN 5: what flows where, resumption, the one-round-trip no-op sync,
// refusals of hostile input, and the peer status each side keeps.
#include <filesystem>
#include <map>
#include <set>

#include "schema/scope.h"
#include "sync/protocol.h"
#include "sync/sync_session.h"
#include "tests/cluster_fixture.h"

namespace aidsync {
namespace {

using testing::Cluster;
using testing::CopyDataDir;
using testing::Dump;
using testing::DumpConflicts;
using testing::DumpTables;
using testing::ListText;
using testing::MakeRoster;
using testing::Node;
using testing::OpenCopy;
using testing::PutRow;
using testing::RejectedTotal;
using testing::RunSession;
using testing::SessionOptions;
using testing::SessionRun;
using testing::ServerCertificateFor;
using testing::StatusOf;
using testing::TextField;

// A station enrolled at the hub that also holds the hub's certificate, as
// the enrolment file gives it.
Node& Enrol(Cluster& cluster, const std::string& name, const std::string& code, const std::string& scope) {
  Node& node = cluster.AddStation(name, code, scope);
  REQUIRE_OK(node->AddCertificate(cluster.CertificateOf(cluster.hub()).bytes()));
  return node;
}

std::string Consult(Replica& r, const std::string& topic) {
  auto id = PutRow(r, "consultations", std::nullopt,
                   {{"channel", "walk_in"}, {"topic", topic}, {"summary", "来访咨询：" + topic}});
  REQUIRE_OK(id);
  return *id;
}

std::string Notice(Replica& hub, const std::string& title) {
  auto id = PutRow(hub, "notices", std::nullopt,
                   {{"title", title}, {"body", "通知正文"}, {"issued_at", "2024-06-15"}});
  REQUIRE_OK(id);
  return *id;
}

// A session that must complete.
SessionRun Sync(Replica& client, Replica& server, SessionOptions options = {}) {
  SessionRun run = RunSession(client, server, options);
  INFO(client.identity().name << " -> " << server.identity().name);
  REQUIRE_OK(run.status);
  REQUIRE(run.complete);
  REQUIRE_FALSE(run.cut);
  return run;
}

std::vector<std::string> ReferenceTables(Replica& r) {
  std::vector<std::string> out;
  for (const auto& t : r.schema().tables)
    if (t.cls == TableClass::kReference) out.push_back(t.name);
  return out;
}
std::vector<std::string> CaseTables(Replica& r) {
  std::vector<std::string> out;
  for (const auto& t : r.schema().tables)
    if (t.cls == TableClass::kCase) out.push_back(t.name);
  return out;
}

// Rows of `table` (as ListText) whose scope is `scope` or below it.
std::vector<std::string> RowsUnder(Replica& r, const std::string& table, const std::string& scope) {
  auto rows = r.List(table);
  REQUIRE_OK(rows);
  auto all = ListText(r, table);
  std::vector<std::string> out;
  for (size_t i = 0; i < rows->size(); ++i) {
    const Value& s = (*rows)[i].at(1).second;
    if (ScopeContains(scope, s.ToDisplay())) out.push_back(all[i]);
  }
  return out;
}

int64_t LogCount(Replica& r, const std::string& where) {
  auto q = r.Query("SELECT count(*) FROM aidsync_log WHERE " + where);
  REQUIRE_OK(q);
  return std::stoll(q->rows.at(0).at(0).ToDisplay());
}
int64_t AuthoredBy(Replica& r, const Replica& author) {
  return LogCount(r, "author = x'" + author.identity().key.Hex() + "'");
}

PeerRecord PeerOf(Replica& r, const Replica& peer) {
  auto peers = r.Peers();
  REQUIRE_OK(peers);
  for (const auto& p : *peers)
    if (p.id == peer.identity().key.Hex()) return p;
  FAIL(r.identity().name << " lists no peer " << peer.identity().name);
  return {};
}

bool Has(Replica& r, const std::string& table, const std::string& id) {
  auto row = r.Get(table, id);
  REQUIRE_OK(row);
  return row->has_value();
}

RefusedMsg RefusalIn(const std::string& reply) {
  auto msg = DecodeMessage(reply);
  REQUIRE_OK(msg);
  auto* refused = std::get_if<RefusedMsg>(&msg->body);
  REQUIRE(refused != nullptr);
  return *refused;
}

}  // namespace

// ------------------------------------------------------------------ hub and stations

TEST_CASE("sync: a hub and three stations converge, reference rows flow down, case rows up", "[sync]") {
  Cluster cluster;
  Replica& hub = *cluster.hub().replica;
  MakeRoster(hub);
  Notice(hub, "关于开展法律援助质量评查的通知");

  struct Station {
    Node* node;
    std::string scope;
    std::vector<std::string> rows;
  };
  std::vector<Station> stations = {{&Enrol(cluster, "城关镇工作站", "0512", "430123/05"), "430123/05", {}},
                                   {&Enrol(cluster, "白沙镇工作站", "0612", "430123/06"), "430123/06", {}},
                                   {&Enrol(cluster, "麻田镇工作站", "0712", "430123/07"), "430123/07", {}}};
  for (auto& s : stations) {
    for (int i = 0; i < 3; ++i) s.rows.push_back(Consult(**s.node, s.scope + " 咨询 " + std::to_string(i)));
  }

  // Station-to-hub sessions, round after round, until a whole round moves nothing.
  int rounds = 0;
  bool quiet = false;
  while (!quiet && rounds < 5) {
    ++rounds;
    quiet = true;
    for (auto& s : stations) {
      SessionRun run = Sync(**s.node, hub);
      if (run.client.changesets_sent > 0 || run.client.changesets_received > 0 || run.round_trips > 1)
        quiet = false;
    }
  }
  REQUIRE(quiet);
  CHECK(rounds == 2);  // the second round finds every pair up to date

  for (auto& s : stations) {
    Replica& st = **s.node;
    INFO(st.identity().name);
    // Every station has the hub's reference rows (lawyers, notices, stations), identical.
    for (const auto& table : ReferenceTables(hub)) CHECK(ListText(st, table) == ListText(hub, table));
    CHECK(ListText(st, "lawyers").size() == 5);
    CHECK(ListText(st, "stations").size() == ListText(hub, "stations").size());
    // The hub has every station's case rows, identical; the station no other station's.
    for (const auto& id : s.rows) CHECK(Has(hub, "consultations", id));
    for (const auto& table : CaseTables(hub)) {
      CHECK(RowsUnder(hub, table, s.scope) == ListText(st, table));
    }
    CHECK(ListText(st, "consultations").size() == 3);
    for (auto& other : stations)
      if (&other != &s)
        for (const auto& id : other.rows) CHECK_FALSE(Has(st, "consultations", id));
    CHECK(StatusOf(st).held_changesets == 0);
    CHECK(RejectedTotal(st) == 0);
  }
  CHECK(ListText(hub, "consultations").size() == 9);
  CHECK(StatusOf(hub).held_changesets == 0);
  CHECK(RejectedTotal(hub) == 0);

  SECTION("only what is new crosses the wire") {
    std::string notice = Notice(hub, "值班表调整");
    std::vector<std::string> fresh;
    for (auto& s : stations) fresh.push_back(Consult(**s.node, "新咨询 " + s.scope));
    for (size_t i = 0; i < stations.size(); ++i) {
      Replica& st = **stations[i].node;
      INFO(st.identity().name);
      SessionRun run = Sync(st, hub);
      CHECK(run.changesets_pushed == 1);    // the station's new changeset, not the hub's chain back
      CHECK(run.changesets_returned == 1);  // the new notice, not the station's own chain back
      CHECK(run.client.changesets_received == 1);
      CHECK(run.round_trips == 2);
      CHECK(Has(st, "notices", notice));
      CHECK(Has(hub, "consultations", fresh[i]));
    }
    for (auto& s : stations) CHECK(Sync(**s.node, hub).round_trips == 1);
  }
}

TEST_CASE("sync: a sync with nothing new is one round trip of under 2 KiB", "[sync]") {
  Cluster cluster;
  Replica& hub = *cluster.hub().replica;
  MakeRoster(hub);
  Node& st = Enrol(cluster, "城关镇工作站", "0512", "430123/05");
  Enrol(cluster, "白沙镇工作站", "0612", "430123/06");
  Enrol(cluster, "麻田镇工作站", "0712", "430123/07");
  for (int i = 0; i < 5; ++i) Consult(*st, "咨询 " + std::to_string(i));

  SessionRun first = Sync(*st, hub);
  REQUIRE(first.round_trips > 1);
  REQUIRE(first.changesets_pushed == 5);

  SyncServer server(hub);
  SessionOptions options;
  options.server = &server;
  SessionRun again = Sync(*st, hub, options);
  WARN("no-op sync: " << again.round_trips << " round trip, " << again.request_bytes << " bytes of hello + "
                      << again.reply_bytes << " bytes of welcome = " << again.wire_bytes() << " bytes");
  CHECK(again.round_trips == 1);
  CHECK(again.up_to_date);
  CHECK(again.client.messages_sent == 1);
  CHECK(again.client.messages_received == 1);
  CHECK(again.client.bytes_sent + again.client.bytes_received == again.wire_bytes());
  CHECK(again.changesets_pushed == 0);
  CHECK(again.changesets_returned == 0);
  CHECK(again.wire_bytes() < 2048);
  CHECK(server.open_sessions() == 0);  // nothing kept for a finished session
}

TEST_CASE("sync: concurrent edits at two stations of one township converge with one open conflict",
          "[sync][conflict]") {
  Cluster cluster;
  Replica& hub = *cluster.hub().replica;
  Node& a_node = Enrol(cluster, "城关镇工作站", "0512", "430123/05");
  Node& b_node = Enrol(cluster, "城关镇第二工作站", "0514", "430123/05");
  Replica& a = *a_node;
  Replica& b = *b_node;

  std::string id = Consult(a, "工资");
  Sync(a, hub);
  Sync(b, hub);
  REQUIRE(TextField(b, "consultations", id, "topic") == "工资");

  // Both edit the same field offline; b's edit is the later one.
  a_node.clock->Advance(1000);
  b_node.clock->Advance(2000);
  REQUIRE_OK(PutRow(a, "consultations", id, {{"topic", "甲站的意见"}}));
  REQUIRE_OK(PutRow(b, "consultations", id, {{"topic", "乙站的意见"}}));
  Sync(a, hub);
  Sync(b, hub);
  Sync(a, hub);

  for (Replica* r : {&hub, &a, &b}) {
    INFO(r->identity().name);
    CHECK(TextField(*r, "consultations", id, "topic") == "乙站的意见");
    auto conflicts = r->Conflicts();
    REQUIRE_OK(conflicts);
    REQUIRE(conflicts->size() == 1);
    const Conflict& c = conflicts->front();
    CHECK(c.table == "consultations");
    CHECK(c.id == id);
    CHECK(c.column == "topic");
    REQUIRE(c.winner.has_value());
    CHECK(c.winner->author_key == b.identity().key.Hex());
    REQUIRE(c.losers.size() == 1);
    CHECK(c.losers[0].value == Value::Text("甲站的意见"));
    CHECK(c.losers[0].author_key == a.identity().key.Hex());
    CHECK(StatusOf(*r).conflicts_open == 1);
  }
  CHECK(DumpConflicts(a) == DumpConflicts(hub));
  CHECK(DumpConflicts(b) == DumpConflicts(hub));
  CHECK(Dump(a) == Dump(hub));
  CHECK(Dump(b) == Dump(hub));
  for (Replica* r : {&a, &b}) CHECK(Sync(*r, hub).round_trips == 1);
}

// ------------------------------------------------------------------ resumption

TEST_CASE("sync: an interrupted session loses at most the batch in flight", "[sync][resume]") {
  Cluster cluster;
  Replica& hub = *cluster.hub().replica;
  Node& st_node = Enrol(cluster, "城关镇工作站", "0512", "430123/05");
  Replica& st = *st_node;

  // An import-sized transaction: 3000 rows, several bounded changesets.
  {
    auto tx = st.BeginLocal();
    REQUIRE_OK(tx);
    const std::string summary(250, 'x');
    for (int i = 0; i < 3000; ++i) {
      REQUIRE_OK((*tx)->Put("consultations", std::nullopt, std::nullopt,
                            {{"channel", "hotline_12348"}, {"topic", "历史记录 " + std::to_string(i)},
                             {"summary", "导入的旧记录 " + summary + std::to_string(i)}}));
    }
    auto committed = (*tx)->Commit();
    REQUIRE_OK(committed);
    REQUIRE(committed->changesets >= 5);
  }
  const int64_t total = StatusOf(st).own_changesets;
  REQUIRE(total >= 5);

  SyncServer server(hub);
  SessionOptions options;
  options.sync.batch_bytes = 16 << 10;
  options.server = &server;
  options.keep_messages = true;

  // Hello, Welcome, Push 1, Batch 1, Push 2, Batch 2, Push 3: the hub applies
  // push 3, and the link drops before its reply arrives.
  SessionOptions cut = options;
  cut.cut_after = 7;
  SessionRun first = RunSession(st, hub, cut);
  REQUIRE_OK(first.status);
  REQUIRE(first.cut);
  REQUIRE_FALSE(first.complete);
  REQUIRE(first.requests.size() == 4);
  const int64_t hub_had = AuthoredBy(hub, st);
  CHECK(hub_had > 0);
  CHECK(hub_had < total);
  CHECK(hub_had == first.changesets_pushed);  // every push delivered was applied, the last one too
  CHECK(StatusOf(hub).held_changesets == 0);
  {
    PeerRecord p = PeerOf(st, hub);
    CHECK(p.last_sync_ms == 0);
    CHECK(p.pending_out == total);
  }
  CHECK(server.open_sessions() == 1);
  cluster.hub().clock->Advance(10 * 60 * 1000);
  server.Expire(5 * 60 * 1000);
  CHECK(server.open_sessions() == 0);

  // A new session sends only what the hub still lacks.
  SessionRun second = Sync(st, hub, options);
  CHECK(second.client.changesets_sent == total - hub_had);
  CHECK(second.changesets_pushed == total - hub_had);
  CHECK(second.changesets_returned == 0);  // the hub has nothing the station lacks
  const int64_t in_flight = testing::ChangesetsInMessage(first.requests.back());
  CHECK(first.client.changesets_sent + second.client.changesets_sent <= total + in_flight);
  CHECK(AuthoredBy(hub, st) == total);
  CHECK(ListText(hub, "consultations") == ListText(st, "consultations"));
  CHECK(ListText(hub, "consultations").size() == 3000);
  {
    PeerRecord p = PeerOf(st, hub);
    CHECK(p.last_sync_ms > 0);
    CHECK(p.pending_out == 0);
    CHECK(p.pending_in == 0);
  }
  CHECK(Sync(st, hub).round_trips == 1);
}

TEST_CASE("sync: a session cut right after the hello, or right after the welcome, leaves nothing half-done",
          "[sync][resume]") {
  Cluster cluster;
  Replica& hub = *cluster.hub().replica;
  MakeRoster(hub);
  Node& st = Enrol(cluster, "城关镇工作站", "0512", "430123/05");
  Consult(*st, "咨询");
  for (int cut_after : {1, 2, 3}) {
    SessionOptions cut;
    cut.cut_after = cut_after;
    SessionRun run = RunSession(*st, hub, cut);
    REQUIRE_OK(run.status);
    CHECK(run.cut);
  }
  SessionRun run = Sync(*st, hub);
  CHECK(run.changesets_returned > 0);  // the roster: never sent in a completed batch before
  CHECK(Dump(*st).find("李律师") != std::string::npos);
  CHECK(AuthoredBy(hub, *st) == 1);
  CHECK(Sync(*st, hub).round_trips == 1);
}

// ------------------------------------------------------------------ topologies

TEST_CASE("sync: village to township to hub and back (multi-hop)", "[sync][multihop]") {
  Cluster cluster;
  Replica& hub = *cluster.hub().replica;
  Node& town = Enrol(cluster, "城关镇工作站", "0510", "430123/05");
  Node& village = Enrol(cluster, "城关镇新村服务点", "0517", "430123/05/017");

  // The village once synced with the hub: it learned the township's
  // certificate from the replicated `stations` table.
  Sync(*village, hub);
  auto town_cert = village->CertificateByCode("0510");
  REQUIRE_OK(town_cert);
  REQUIRE(town_cert->has_value());
  CHECK((*town_cert)->fields().node_key == town->identity().key);

  // Offline from now on the village reaches only its township.
  MakeRoster(hub);
  std::string notice = Notice(hub, "关于村级服务点值班的通知");
  // Reference data for this village alone: the township relays it.
  auto village_notice = PutRow(hub, "notices", std::nullopt,
                               {{"title", "新村专项通知"}, {"body", "仅限新村"}, {"issued_at", "2024-06-15"}},
                               "430123/05/017");
  REQUIRE_OK(village_notice);
  std::vector<std::string> village_rows = {Consult(*village, "土地承包"), Consult(*village, "赡养纠纷")};
  std::string town_row = Consult(*town, "乡镇的咨询");

  SessionOptions via_code;
  via_code.server_certificate = **town_cert;  // CODE@tcp://... : the certificate named by station code
  Sync(*village, *town, via_code);
  for (const auto& id : village_rows) CHECK(Has(*town, "consultations", id));
  CHECK_FALSE(Has(*village, "consultations", town_row));  // case rows flow up only

  Sync(*town, hub);
  for (const auto& id : village_rows) CHECK(Has(hub, "consultations", id));
  CHECK(Has(*town, "notices", notice));

  Sync(*village, *town, via_code);
  CHECK(Has(*village, "notices", notice));
  CHECK(Has(*village, "notices", *village_notice));
  CHECK(Has(*town, "notices", *village_notice));
  for (const auto& table : ReferenceTables(hub)) CHECK(ListText(*village, table) == ListText(hub, table));
  CHECK_FALSE(Has(*village, "consultations", town_row));
  CHECK(ListText(*village, "consultations") == RowsUnder(hub, "consultations", "430123/05/017"));
  CHECK(ListText(*town, "consultations") == RowsUnder(hub, "consultations", "430123/05"));
  for (Replica* r : {&hub, &*town, &*village}) {
    CHECK(RejectedTotal(*r) == 0);
    CHECK(StatusOf(*r).held_changesets == 0);
  }
  // The village never talked to the hub again: its rows got there through the township.
  CHECK(AuthoredBy(hub, *village) == 2);
  CHECK(Sync(*village, *town, via_code).round_trips == 1);
  CHECK(Sync(*town, hub).round_trips == 1);

  // A neighbouring village of the same township, synced through it, gets the
  // township-wide reference rows but neither the other village's notice nor its cases.
  Node& neighbour = Enrol(cluster, "城关镇旧村服务点", "0518", "430123/05/018");
  Sync(*town, hub);  // the neighbour's stations row, for the township to know it
  SessionOptions to_town;
  to_town.server_certificate = cluster.CertificateOf(town);
  Sync(*neighbour, *town, to_town);
  CHECK(Has(*neighbour, "notices", notice));
  CHECK_FALSE(Has(*neighbour, "notices", *village_notice));
  for (const auto& id : village_rows) CHECK_FALSE(Has(*neighbour, "consultations", id));
  CHECK(RejectedTotal(*neighbour) == 0);
}

TEST_CASE("sync: station to station, same township both ways, other townships get nothing", "[sync][p2p]") {
  Cluster cluster;
  Replica& hub = *cluster.hub().replica;
  MakeRoster(hub);
  Node& a = Enrol(cluster, "城关镇工作站", "0512", "430123/05");
  Node& b = Enrol(cluster, "城关镇第二工作站", "0514", "430123/05");
  Node& c = Enrol(cluster, "白沙镇工作站", "0612", "430123/06");
  for (Node* n : {&a, &b, &c}) Sync(**n, hub);  // certificates and the roster

  std::string a_row = Consult(*a, "甲站咨询");
  std::string b_row = Consult(*b, "乙站咨询");
  std::string c_row = Consult(*c, "白沙咨询");

  auto cert_of = [&](const std::string& code) {
    auto cert = a->CertificateByCode(code);
    REQUIRE_OK(cert);
    REQUIRE(cert->has_value());
    return **cert;
  };

  SECTION("siblings in one township exchange both ways") {
    SessionOptions to_b;
    to_b.server_certificate = cert_of("0514");
    SessionRun run = Sync(*a, *b, to_b);
    CHECK(run.changesets_pushed == 1);
    CHECK(run.changesets_returned == 1);
    CHECK(Has(*b, "consultations", a_row));
    CHECK(Has(*a, "consultations", b_row));
    CHECK(DumpTables(*a) == DumpTables(*b));
    CHECK(Sync(*a, *b, to_b).round_trips == 1);
    // Through the hub afterwards: nothing is sent twice.
    SessionRun up = Sync(*a, hub);
    CHECK(up.changesets_pushed == 2);  // a's and b's rows
    CHECK(Sync(*b, hub).changesets_pushed == 0);
  }

  SECTION("stations of different townships see nothing of each other's cases") {
    SessionOptions to_c;
    to_c.server_certificate = cert_of("0612");
    SessionRun run = Sync(*a, *c, to_c);
    CHECK(run.changesets_pushed == 0);
    CHECK(run.changesets_returned == 0);
    CHECK(run.round_trips == 1);  // the heads each may see agree: only the hub's chains
    CHECK_FALSE(Has(*c, "consultations", a_row));
    CHECK_FALSE(Has(*a, "consultations", c_row));

    // A forged push: a's case changesets offered to c anyway are refused.
    auto own = a->CertificateByKey(a->identity().key);
    REQUIRE_OK(own);
    SyncServer server(*c);
    const uint64_t session = 4242;
    std::string welcome = server.Handle(
        "p", testing::CurveKeyHex(*a), EncodeMessage(SyncMsg{kProtocolVersion, session, HelloMsg{(*own)->bytes(), 0, std::nullopt}}));
    auto w = DecodeMessage(welcome);
    REQUIRE_OK(w);
    REQUIRE(std::holds_alternative<WelcomeMsg>(w->body));
    PushMsg push;
    push.has_heads = true;
    auto heads = a->HeadsVisibleTo("430123");
    REQUIRE_OK(heads);
    push.heads = *heads;
    push.certificates = {(*own)->bytes()};
    push.changesets = testing::OwnEnvelopes(*a);
    REQUIRE(push.changesets.size() == 1);
    std::string reply = server.Handle("p", testing::CurveKeyHex(*a), EncodeMessage(SyncMsg{kProtocolVersion, session, push}));
    auto batch = DecodeMessage(reply);
    REQUIRE_OK(batch);
    REQUIRE(std::holds_alternative<BatchMsg>(batch->body));
    CHECK(std::get<BatchMsg>(batch->body).rejected == 1);
    CHECK(std::get<BatchMsg>(batch->body).applied == 0);
    CHECK(std::get<BatchMsg>(batch->body).changesets.empty());  // c holds nothing a may see that a lacks
    CHECK_FALSE(Has(*c, "consultations", a_row));
    CHECK(StatusOf(*c).rejected["not_for_this_node"] == 1);
  }
}

// ------------------------------------------------------------------ more topologies and histories

TEST_CASE("sync: two sessions interleaved on one server, same session id on two connections",
          "[sync][concurrent]") {
  Cluster cluster;
  Replica& hub = *cluster.hub().replica;
  MakeRoster(hub);
  Node& a = Enrol(cluster, "城关镇工作站", "0512", "430123/05");
  Node& b = Enrol(cluster, "城关镇第二工作站", "0514", "430123/05");
  for (int i = 0; i < 20; ++i) {
    Consult(*a, "甲站 " + std::to_string(i));
    Consult(*b, "乙站 " + std::to_string(i));
  }
  SyncOptions small;
  small.batch_bytes = 512;  // one changeset a batch: many round trips each
  SyncServer server(hub, small);
  auto hub_cert = ServerCertificateFor(*a, hub);
  REQUIRE(hub_cert.has_value());
  SyncClient ca(*a, *hub_cert, "inproc", 1, small);
  SyncClient cb(*b, *hub_cert, "inproc", 1, small);
  auto ra = ca.Start();
  auto rb = cb.Start();
  REQUIRE_OK(ra);
  REQUIRE_OK(rb);
  std::optional<std::string> next_a = *ra, next_b = *rb;
  int steps = 0;
  while ((next_a || next_b) && ++steps < 1000) {
    if (next_a) {
      auto r = ca.OnReply(server.Handle("conn-a", testing::CurveKeyHex(*a), *next_a));
      REQUIRE_OK(r);
      next_a = *r;
    }
    if (next_b) {
      auto r = cb.OnReply(server.Handle("conn-b", testing::CurveKeyHex(*b), *next_b));
      REQUIRE_OK(r);
      next_b = *r;
    }
    if (steps == 3) CHECK(server.open_sessions() == 2);
  }
  CHECK(ca.complete());
  CHECK(cb.complete());
  CHECK(ca.stats().changesets_sent == 20);
  CHECK(cb.stats().changesets_sent == 20);
  CHECK(server.open_sessions() == 0);
  CHECK(ListText(hub, "consultations").size() == 40);
  // Each got the other's rows only if the hub had them when its session began.
  Sync(*a, hub);
  Sync(*b, hub);
  CHECK(Dump(*a) == Dump(hub));
  CHECK(Dump(*b) == Dump(hub));
}

TEST_CASE("sync: a station restored from an old backup gets its own later changesets back", "[sync][resume]") {
  Cluster cluster;
  Replica& hub = *cluster.hub().replica;
  Node& st = Enrol(cluster, "城关镇工作站", "0512", "430123/05");
  std::string r1 = Consult(*st, "第一条");
  Sync(*st, hub);
  const std::string backup = cluster.root() + "/backup";
  CopyDataDir(cluster, st, backup);
  std::string r2 = Consult(*st, "第二条");
  std::string r3 = Consult(*st, "第三条");
  Sync(*st, hub);

  // The disk dies; the backup is restored.
  st.replica.reset();
  std::filesystem::remove_all(st.dir);
  std::filesystem::copy(backup, st.dir, std::filesystem::copy_options::recursive);
  std::filesystem::permissions(st.dir, std::filesystem::perms::owner_all, std::filesystem::perm_options::replace);
  cluster.Reopen(st);
  REQUIRE_FALSE(Has(*st, "consultations", r2));

  SessionRun run = Sync(*st, hub);
  CHECK(run.changesets_returned == 2);  // after the station's seq, not its whole chain
  CHECK(run.changesets_pushed == 0);
  CHECK(Has(*st, "consultations", r2));
  CHECK(Has(*st, "consultations", r3));
  // Writing again continues the chain: no fork anywhere.
  Consult(*st, "第四条");
  CHECK(Sync(*st, hub).changesets_pushed == 1);
  CHECK(StatusOf(hub).forks.empty());
  CHECK(StatusOf(*st).forks.empty());
  CHECK(Dump(*st) == Dump(hub));
}

TEST_CASE("sync: a forked chain (a copied data dir) reaches every node whole, with the fork alarm",
          "[sync][fork]") {
  Cluster cluster;
  Replica& hub = *cluster.hub().replica;
  Node& st = Enrol(cluster, "城关镇工作站", "0512", "430123/05");
  Node& sibling = Enrol(cluster, "城关镇第二工作站", "0514", "430123/05");
  Consult(*st, "共同的第一条");
  Sync(*st, hub);
  const std::string copy_dir = cluster.root() + "/stolen";
  CopyDataDir(cluster, st, copy_dir);
  Node copy = OpenCopy(cluster, copy_dir, st.clock->NowMillis());

  // Both machines write with the one key: two branches after seq 1.
  std::string genuine_a = Consult(*st, "真机 一");
  std::string genuine_b = Consult(*st, "真机 二");
  std::string stolen = Consult(*copy, "复制机");

  std::vector<Node*> nodes = {&st, &copy, &sibling};
  int rounds = 0;
  bool quiet = false;
  while (!quiet && rounds < 6) {
    ++rounds;
    quiet = true;
    for (Node* n : nodes) {
      SessionRun run = Sync(**n, hub);
      if (run.round_trips > 1) quiet = false;
    }
  }
  REQUIRE(quiet);
  CHECK(rounds <= 4);
  for (Replica* r : {&hub, &*st, &*copy, &*sibling}) {
    INFO(r->identity().name << " " << r->dir());
    for (const auto& id : {genuine_a, genuine_b, stolen}) CHECK(Has(*r, "consultations", id));
    auto status = StatusOf(*r);
    CHECK(status.forks.size() == 1);
    CHECK(testing::Mentions(status.alerts, "fork"));
    CHECK(status.held_changesets == 0);
    CHECK(Dump(*r) == Dump(hub));
  }
}

// ------------------------------------------------------------------ hostile input

TEST_CASE("sync: the server refuses hostile input, counts it, and keeps serving", "[sync][hostile]") {
  Cluster cluster(7);
  Replica& hub = *cluster.hub().replica;
  MakeRoster(hub);
  Node& st = Enrol(cluster, "城关镇工作站", "0512", "430123/05");
  const std::string st_row = Consult(*st, "咨询");
  const Certificate& st_cert = cluster.CertificateOf(st);
  const int64_t hub_log = testing::TotalChangesets(hub);

  SyncServer server(hub);
  const int64_t rejected_before = RejectedTotal(hub);
  int hostile = 0;
  std::map<std::string, int> by_reason;
  auto refused = [&](const std::string& what, std::string_view request, const std::string& reason) {
    INFO(what);
    std::string reply = server.Handle("evil", testing::CurveKeyHex(*st), request);
    ++hostile;
    RefusedMsg r = RefusalIn(reply);
    CHECK(r.reason == reason);
    CHECK_FALSE(r.detail.empty());
    ++by_reason[r.reason];
  };
  auto hello = [&](std::string cert, uint32_t version = kProtocolVersion) {
    return EncodeMessage(SyncMsg{version, 77, HelloMsg{std::move(cert), 0, std::nullopt}});
  };

  refused("empty", "", "malformed_message");
  for (int i = 0; i < 200; ++i) {
    std::string bytes(cluster.random().Uniform(4097), '\0');
    cluster.random().Fill(bytes.data(), bytes.size());
    refused("random bytes #" + std::to_string(i), bytes, "malformed_message");
  }
  const std::string valid_hello = hello(st_cert.bytes());
  for (size_t n = 0; n < valid_hello.size(); n += 8)
    refused("hello truncated to " + std::to_string(n), valid_hello.substr(0, n), "malformed_message");
  {
    PushMsg big;
    big.has_heads = true;
    big.changesets = testing::OwnEnvelopes(*st);
    const std::string push = EncodeMessage(SyncMsg{kProtocolVersion, 77, big});
    for (size_t n = 0; n < push.size(); n += 8)
      refused("push truncated to " + std::to_string(n), push.substr(0, n), "malformed_message");
  }
  const size_t limit = ProtocolLimits{}.max_message_bytes;
  refused("zeros over the size limit", std::string(limit + 8, '\0'), "malformed_message");
  refused("a well-formed batch over the size limit",
          EncodeMessage(SyncMsg{kProtocolVersion, 77, BatchMsg{{}, {std::string(limit, 'x')}, false, 0, 0}}),
          "malformed_message");
  refused("protocol version 99", hello(st_cert.bytes(), 99), "protocol_version");
  {
    PushMsg push;
    push.has_heads = true;
    push.changesets = testing::OwnEnvelopes(*st);
    refused("push without hello", EncodeMessage(SyncMsg{kProtocolVersion, 77, push}), "no_session");
  }
  refused("a welcome sent to a server", EncodeMessage(SyncMsg{kProtocolVersion, 77, WelcomeMsg{}}),
          "unexpected_message");
  refused("a batch sent to a server", EncodeMessage(SyncMsg{kProtocolVersion, 77, BatchMsg{}}),
          "unexpected_message");
  refused("hello without a certificate", hello(""), "bad_certificate");
  {
    std::string garbage(300, '\0');
    cluster.random().Fill(garbage.data(), garbage.size());
    refused("hello with garbage for a certificate", hello(garbage), "bad_certificate");
  }
  {
    std::string forged = st_cert.bytes();
    forged[forged.size() - 10] ^= 0x01;  // inside the signature
    refused("hello with a certificate whose signature was altered", hello(forged), "bad_certificate");
    std::string renamed = st_cert.bytes();
    size_t at = renamed.find("0512");
    REQUIRE(at != std::string::npos);
    renamed[at + 3] = '9';  // another station code, same signature
    refused("hello with a certificate whose fields were altered", hello(renamed), "bad_certificate");
  }
  {
    // Keys whose certificates were signed by an authority other than the county's.
    SigningKey rogue = SigningKey::Generate(cluster.random());
    SigningKey stranger = SigningKey::Generate(cluster.random());
    for (const PublicKey& key : {stranger.public_key(), st->identity().key}) {
      CertificateFields fields = st_cert.fields();
      fields.node_key = key;
      auto cert = Certificate::Issue(fields, rogue);
      REQUIRE_OK(cert);
      refused("hello with a certificate from another authority", hello(cert->bytes()), "bad_certificate");
    }
  }

  // A session opened on one connection cannot be continued from another.
  {
    std::string welcome = server.Handle("conn-x", testing::CurveKeyHex(*st), valid_hello);
    auto w = DecodeMessage(welcome);
    REQUIRE_OK(w);
    REQUIRE(std::holds_alternative<WelcomeMsg>(w->body));
    PushMsg push;
    push.has_heads = true;
    push.changesets = testing::OwnEnvelopes(*st);
    refused("push on another connection than its hello", EncodeMessage(SyncMsg{kProtocolVersion, 77, push}),
            "no_session");
  }

  auto status = StatusOf(hub);
  CHECK(RejectedTotal(hub) == rejected_before + hostile);
  for (const auto& [reason, n] : by_reason) {
    INFO(reason);
    CHECK(status.rejected[reason] == n);
  }
  CHECK(testing::TotalChangesets(hub) == hub_log);  // nothing applied
  CHECK_FALSE(Has(hub, "consultations", st_row));

  // Bad changesets inside a well-formed session are refused one by one, not the session.
  {
    PushMsg push;
    push.has_heads = true;
    push.changesets = {"not a changeset", std::string(64, '\x07')};
    push.certificates = {"not a certificate"};
    const int64_t bad_certs = StatusOf(hub).rejected["bad_certificate"];
    auto reply = DecodeMessage(server.Handle("conn-x", testing::CurveKeyHex(*st), EncodeMessage(SyncMsg{kProtocolVersion, 77, push})));
    REQUIRE_OK(reply);
    REQUIRE(std::holds_alternative<BatchMsg>(reply->body));
    CHECK(std::get<BatchMsg>(reply->body).rejected == 2);
    CHECK(StatusOf(hub).rejected["malformed"] == 2);
    // A certificate that does not verify is not trusted, and is counted.
    CHECK(StatusOf(hub).rejected["bad_certificate"] == bad_certs + 1);
  }

  // A legitimate station on another connection is served as if nothing happened.
  SessionOptions legit;
  legit.server = &server;
  legit.connection = "conn-2";
  SessionRun run = Sync(*st, hub, legit);
  CHECK(run.changesets_pushed == 1);
  CHECK(ListText(hub, "consultations") == ListText(*st, "consultations"));
  CHECK(ListText(*st, "lawyers") == ListText(hub, "lawyers"));
}

// ------------------------------------------------------------------ client errors

TEST_CASE("sync: a bad reply fails the client cleanly and is recorded in the peer status", "[sync][client]") {
  Cluster cluster;
  Replica& hub = *cluster.hub().replica;
  MakeRoster(hub);
  Node& st_node = Enrol(cluster, "城关镇工作站", "0512", "430123/05");
  Replica& st = *st_node;
  Node& other = Enrol(cluster, "白沙镇工作站", "0612", "430123/06");
  auto hub_cert = st.HubCertificate();
  REQUIRE_OK(hub_cert);
  REQUIRE(hub_cert->has_value());
  SyncServer server(hub);
  const std::string before = testing::Snapshot(st);

  auto expect_failure = [&](SyncClient& client, const std::string& reply, const std::string& words) {
    auto next = client.OnReply(reply);
    REQUIRE_FALSE(next.ok());
    CHECK_FALSE(client.complete());
    PeerRecord p = PeerOf(st, hub);
    INFO(p.last_error);
    CHECK(p.last_error.find(words) != std::string::npos);
    CHECK(p.last_sync_ms == 0);
    CHECK(p.address == "inproc");
    CHECK(testing::Snapshot(st) == before);  // nothing applied
    return next.status();
  };

  SECTION("a reply for another session") {
    SyncClient client(st, **hub_cert, "inproc", 500);
    auto hello = client.Start();
    REQUIRE_OK(hello);
    auto welcome = DecodeMessage(server.Handle("c", testing::CurveKeyHex(st), *hello));
    REQUIRE_OK(welcome);
    welcome->session = 501;
    Status st_fail = expect_failure(client, EncodeMessage(*welcome), "another session");
    CHECK(st_fail.code() == Status::Code::kCorruption);
    // A batch of the hub's changesets under another session id is not applied either.
    SyncClient client2(st, **hub_cert, "inproc", 502);
    auto hello2 = client2.Start();
    REQUIRE_OK(hello2);
    auto w2 = client2.OnReply(server.Handle("c", testing::CurveKeyHex(st), *hello2));
    REQUIRE_OK(w2);
    REQUIRE(w2->has_value());
    auto batch = DecodeMessage(server.Handle("c", testing::CurveKeyHex(st), **w2));
    REQUIRE_OK(batch);
    REQUIRE(std::holds_alternative<BatchMsg>(batch->body));
    REQUIRE_FALSE(std::get<BatchMsg>(batch->body).changesets.empty());
    batch->session = 503;
    expect_failure(client2, EncodeMessage(*batch), "another session");
  }
  SECTION("a batch before the welcome") {
    SyncClient client(st, **hub_cert, "inproc", 600);
    REQUIRE_OK(client.Start());
    auto envelopes = testing::OwnEnvelopes(hub);
    expect_failure(client, EncodeMessage(SyncMsg{kProtocolVersion, 600, BatchMsg{{}, envelopes, false, 0, 0}}),
                   "out of sequence");
  }
  SECTION("a reply after the session ended") {
    SyncClient client(st, **hub_cert, "inproc", 610);
    REQUIRE_OK(client.Start());
    expect_failure(client, "garbage!", "reply from");
    expect_failure(client, EncodeMessage(SyncMsg{kProtocolVersion, 610, BatchMsg{}}), "out of sequence");
  }
  SECTION("a welcome from another node than the one expected") {
    SyncClient client(st, **hub_cert, "inproc", 700);
    REQUIRE_OK(client.Start());
    WelcomeMsg w;
    w.certificate = cluster.CertificateOf(other).bytes();
    expect_failure(client, EncodeMessage(SyncMsg{kProtocolVersion, 700, w}), other->identity().name);
  }
  SECTION("a refusal") {
    SyncClient client(st, **hub_cert, "inproc", 800);
    REQUIRE_OK(client.Start());
    Status s = expect_failure(
        client, EncodeMessage(SyncMsg{kProtocolVersion, 800, RefusedMsg{"protocol_version", "speaks 2"}}),
        "protocol_version");
    CHECK(s.code() == Status::Code::kUnavailable);
  }
  SECTION("a refusal of a message the server could not read (session 0)") {
    SyncClient client(st, **hub_cert, "inproc", 850);
    REQUIRE_OK(client.Start());
    std::string refusal = server.Handle("c", testing::CurveKeyHex(st), "not a message");
    REQUIRE(RefusalIn(refusal).reason == "malformed_message");
    Status s = expect_failure(client, refusal, "malformed_message");
    CHECK(s.code() == Status::Code::kUnavailable);
  }
  SECTION("another protocol version") {
    SyncClient client(st, **hub_cert, "inproc", 900);
    REQUIRE_OK(client.Start());
    expect_failure(client, EncodeMessage(SyncMsg{2, 900, WelcomeMsg{}}), "protocol version 2");
  }

  // The next good session clears the error.
  Sync(st, hub);
  PeerRecord p = PeerOf(st, hub);
  CHECK(p.last_error.empty());
  CHECK(p.last_sync_ms > 0);
}

// ------------------------------------------------------------------ peer status

TEST_CASE("sync: both sides record the other in their peer status, with the clock offset", "[sync][status]") {
  Cluster cluster;
  Replica& hub = *cluster.hub().replica;
  MakeRoster(hub);
  Node& st_node = Enrol(cluster, "城关镇工作站", "0512", "430123/05");
  Node& near_node = Enrol(cluster, "白沙镇工作站", "0612", "430123/06");
  Replica& st = *st_node;
  st_node.clock->Advance(10 * 60 * 1000);   // ten minutes fast: an alert
  near_node.clock->Advance(2 * 60 * 1000);  // two minutes fast: no alert
  Consult(st, "咨询");
  Consult(*near_node, "咨询");

  Sync(st, hub);
  Sync(*near_node, hub);

  PeerRecord at_hub = PeerOf(hub, st);
  CHECK(at_hub.name == "城关镇工作站");
  CHECK(at_hub.code == "0512");
  CHECK(at_hub.last_sync_ms == cluster.hub().clock->NowMillis());
  CHECK(at_hub.last_seen_ms == at_hub.last_sync_ms);
  CHECK(at_hub.pending_in == 0);
  CHECK(at_hub.pending_out == 0);
  CHECK(at_hub.clock_offset_ms == 10 * 60 * 1000);
  CHECK(at_hub.last_error.empty());

  PeerRecord at_station = PeerOf(st, hub);
  CHECK(at_station.name == testing::kHubName);
  CHECK(at_station.code == testing::kHubCode);
  CHECK(at_station.address == "inproc");
  CHECK(at_station.last_sync_ms == st_node.clock->NowMillis());
  CHECK(at_station.pending_in == 0);
  CHECK(at_station.pending_out == 0);
  CHECK(at_station.clock_offset_ms == -10 * 60 * 1000);
  CHECK(at_station.last_error.empty());

  CHECK(PeerOf(hub, *near_node).clock_offset_ms == 2 * 60 * 1000);
  auto hub_status = StatusOf(hub);
  CHECK(hub_status.peers.size() == 2);
  CHECK(testing::Mentions(hub_status.alerts, "clock", "城关镇工作站"));
  CHECK(testing::Mentions(hub_status.alerts, "clock", "10 minutes"));
  CHECK_FALSE(testing::Mentions(hub_status.alerts, "clock", "白沙镇工作站"));
  CHECK(testing::Mentions(StatusOf(st).alerts, "clock", testing::kHubName));
  CHECK_FALSE(testing::Mentions(StatusOf(*near_node).alerts, "clock"));

  // A no-op sync later refreshes last_sync on both sides.
  cluster.hub().clock->Advance(60000);
  st_node.clock->Advance(60000);
  CHECK(Sync(st, hub).round_trips == 1);
  CHECK(PeerOf(hub, st).last_sync_ms == cluster.hub().clock->NowMillis());
  CHECK(PeerOf(st, hub).last_sync_ms == st_node.clock->NowMillis());
}

TEST_CASE("sync: both sides keep a history of sessions, with what moved and how each ended", "[sync][status]") {
  Cluster cluster;
  Replica& hub = *cluster.hub().replica;
  MakeRoster(hub);
  Node& st_node = Enrol(cluster, "城关镇工作站", "0512", "430123/05");
  Replica& st = *st_node;
  Consult(st, "咨询一");
  Consult(st, "咨询二");
  const int64_t t0 = cluster.hub().clock->NowMillis();

  SessionRun first = Sync(st, hub);
  REQUIRE_OK(first.status);
  CHECK(Sync(st, hub).round_trips == 1);  // nothing new
  SessionOptions cut;
  cut.cut_after = 1;  // the hello reaches the hub, the welcome is lost
  Consult(st, "咨询三");
  SessionRun broken = testing::RunSession(st, hub, cut);
  REQUIRE(broken.cut);

  auto at_hub = hub.Sessions(st.identity().key.Hex(), t0);
  REQUIRE_OK(at_hub);
  // Complete and up-to-date sessions are recorded when they end; the cut one
  // is still open at the hub (it is recorded when it expires).
  REQUIRE(at_hub->size() == 2);
  CHECK((*at_hub)[0].as_server);
  CHECK((*at_hub)[0].changesets_received == first.changesets_pushed);
  CHECK((*at_hub)[0].changesets_received > 0);
  CHECK((*at_hub)[0].error.empty());
  CHECK((*at_hub)[1].changesets_received == 0);
  CHECK((*at_hub)[1].error.empty());

  auto at_station = st.Sessions(hub.identity().key.Hex(), 0);
  REQUIRE_OK(at_station);
  // The station records its side of the two sessions that ended; the cut
  // session never got a reply, so it ends when the transport gives up.
  REQUIRE(at_station->size() >= 2);
  CHECK_FALSE((*at_station)[0].as_server);
  CHECK((*at_station)[0].changesets_sent == first.changesets_pushed);
  CHECK((*at_station)[0].bytes_sent > 0);
  CHECK((*at_station)[1].changesets_sent == 0);

  // A session the server abandons is recorded with its outcome.
  SyncServer server(hub);
  SessionOptions open;
  open.server = &server;
  open.cut_after = 2;  // hello and welcome pass; the first push is lost
  Consult(st, "咨询四");
  REQUIRE(testing::RunSession(st, hub, open).cut);
  cluster.hub().clock->Advance(10 * 60 * 1000);
  server.Expire(5 * 60 * 1000);
  auto after = hub.Sessions(st.identity().key.Hex(), t0);
  REQUIRE_OK(after);
  REQUIRE(after->size() == 3);
  CHECK(after->back().error == "abandoned by the peer");
}

}  // namespace aidsync
