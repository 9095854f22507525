// Packed changesets between SyncClient and SyncServer (docs/PROTOCOL.md 2.7.1,
// 3.4), back to back in process as in sync_session_test.cc: the negotiation
// in Hello and Welcome, old peers that announce nothing, hostile packed
// fields, and the byte bound of a batch.
#include <capnp/message.h>
#include <capnp/serialize.h>
#include <zstd.h>

#include <cstring>
#include <map>

#include "schema/sync.capnp.h"
#include "sync/protocol.h"
#include "sync/sync_session.h"
#include "tests/cluster_fixture.h"

namespace aidsync {
namespace {

using testing::Cluster;
using testing::ListText;
using testing::MakeRoster;
using testing::Node;
using testing::PutRow;
using testing::RejectedTotal;
using testing::RunSession;
using testing::SessionOptions;
using testing::SessionRun;
using testing::StatusOf;

Node& Enrol(Cluster& cluster, const std::string& name, const std::string& code, const std::string& scope) {
  Node& node = cluster.AddStation(name, code, scope);
  REQUIRE_OK(node->AddCertificate(cluster.CertificateOf(cluster.hub()).bytes()));
  return node;
}

SessionRun Sync(Replica& client, Replica& server, const SessionOptions& options = {}) {
  SessionRun run = RunSession(client, server, options);
  REQUIRE_OK(run.status);
  REQUIRE(run.complete);
  return run;
}

// Consultations at the station (case rows, up) and notices at the hub
// (reference rows, down), one changeset each, of `count` different sizes.
void WriteBothWays(Replica& hub, Replica& station, int count, size_t text_bytes) {
  for (int i = 0; i < count; ++i) {
    const std::string text(text_bytes / 2 + (i * 997) % text_bytes, static_cast<char>('a' + i % 26));
    REQUIRE_OK(PutRow(station, "consultations", std::nullopt,
                      {{"channel", "walk_in"}, {"topic", "咨询 " + std::to_string(i)}, {"summary", text}}));
    REQUIRE_OK(PutRow(hub, "notices", std::nullopt,
                      {{"title", "通知 " + std::to_string(i)}, {"body", text}, {"issued_at", "2024-06-15"}}));
  }
}

void CheckConverged(Replica& hub, Replica& station) {
  CHECK(ListText(station, "notices") == ListText(hub, "notices"));
  CHECK(ListText(station, "lawyers") == ListText(hub, "lawyers"));
  CHECK(ListText(station, "consultations") == ListText(hub, "consultations"));
  CHECK(StatusOf(station).held_changesets == 0);
  CHECK(StatusOf(hub).held_changesets == 0);
  CHECK(RejectedTotal(station) == 0);
  CHECK(RejectedTotal(hub) == 0);
}

// How one encoded Push or Batch carries its changesets (nullopt for other kinds).
struct Shape {
  size_t plain = 0;
  size_t packed_bytes = 0;
};
std::optional<Shape> ShapeOf(const std::string& bytes) {
  auto words = kj::heapArray<capnp::word>(bytes.size() / 8);
  std::memcpy(words.begin(), bytes.data(), bytes.size());
  capnp::FlatArrayMessageReader reader(words);
  auto m = reader.getRoot<wire::SyncMessage>();
  if (m.isPush()) return Shape{m.getPush().getChangesets().size(), m.getPush().getPacked().size()};
  if (m.isBatch()) return Shape{m.getBatch().getChangesets().size(), m.getBatch().getPacked().size()};
  return std::nullopt;
}

// Counts the Push/Batch messages among `messages` that carry changesets,
// plain and packed.
struct Carried {
  int plain = 0, packed = 0;
};
Carried Count(const std::vector<std::string>& messages) {
  Carried c;
  for (const auto& m : messages) {
    auto shape = ShapeOf(m);
    if (!shape) continue;
    CHECK((shape->plain == 0 || shape->packed_bytes == 0));
    if (shape->plain > 0) ++c.plain;
    if (shape->packed_bytes > 0) ++c.packed;
  }
  return c;
}

template <typename Msg>
Msg Body(const std::string& bytes) {
  auto msg = DecodeMessage(bytes);
  REQUIRE_OK(msg);
  REQUIRE(std::holds_alternative<Msg>(msg->body));
  return std::get<Msg>(msg->body);
}

std::string Raw(capnp::MallocMessageBuilder& builder) {
  auto words = capnp::messageToFlatArray(builder);
  auto raw = words.asBytes();
  return std::string(reinterpret_cast<const char*>(raw.begin()), raw.size());
}

}  // namespace

TEST_CASE("sync: packing: an old peer that announces nothing gets plain changesets, and both converge",
          "[sync][packed]") {
  Cluster cluster;
  Replica& hub = *cluster.hub().replica;
  MakeRoster(hub);
  Node& st = Enrol(cluster, "城关镇工作站", "0512", "430123/05");
  WriteBothWays(hub, *st, 5, 400);

  SessionOptions options;
  options.keep_messages = true;
  SECTION("an old client and a new server") {
    options.sync.packing = false;  // the client's options
    SyncServer server(hub);        // a server with the defaults: packing on
    options.server = &server;
    SessionRun run = Sync(*st, hub, options);
    CHECK(Body<HelloMsg>(run.requests.front()).accepts == 0);
    CHECK(Body<WelcomeMsg>(run.replies.front()).accepts == kAcceptsPacked);  // announced, not used
    CHECK(Count(run.replies).plain > 0);
    CHECK(Count(run.replies).packed == 0);
    CHECK(Count(run.requests).plain > 0);
    CHECK(Count(run.requests).packed == 0);
  }
  SECTION("a new client and an old server") {
    SyncOptions old_server;
    old_server.packing = false;
    SyncServer server(hub, old_server);
    options.server = &server;
    SessionRun run = Sync(*st, hub, options);
    CHECK(Body<HelloMsg>(run.requests.front()).accepts == kAcceptsPacked);
    CHECK(Body<WelcomeMsg>(run.replies.front()).accepts == 0);
    CHECK(Count(run.requests).plain > 0);
    CHECK(Count(run.requests).packed == 0);
    CHECK(Count(run.replies).plain > 0);
    CHECK(Count(run.replies).packed == 0);
  }
  CheckConverged(hub, *st);
  CHECK(ListText(*st, "notices").size() == 5);
  CHECK(ListText(hub, "consultations").size() == 5);
  CHECK(Sync(*st, hub).round_trips == 1);
}

TEST_CASE("sync: packing: a new pair packs both ways, moves fewer bytes, and converges", "[sync][packed]") {
  Cluster cluster;
  Replica& hub = *cluster.hub().replica;
  MakeRoster(hub);
  Node& st = Enrol(cluster, "城关镇工作站", "0512", "430123/05");
  WriteBothWays(hub, *st, 20, 600);

  SessionOptions options;
  options.keep_messages = true;
  options.sync.batch_bytes = 8 << 10;  // several batches each way
  SessionRun run = Sync(*st, hub, options);
  const Carried up = Count(run.requests), down = Count(run.replies);
  CHECK(up.plain == 0);
  CHECK(up.packed >= 2);
  CHECK(down.plain == 0);
  CHECK(down.packed >= 2);
  // The same messages written plain, as an old pair would have sent them.
  int64_t plain_bytes = 0;
  for (const auto* list : {&run.requests, &run.replies})
    for (const auto& m : *list) {
      auto msg = DecodeMessage(m);
      REQUIRE_OK(msg);
      plain_bytes += static_cast<int64_t>(EncodeMessage(*msg).size());
    }
  INFO("packed " << run.wire_bytes() << " bytes, plain " << plain_bytes);
  CHECK(run.wire_bytes() * 2 < plain_bytes);
  CheckConverged(hub, *st);
  CHECK(ListText(hub, "consultations").size() == 20);
  CHECK(ListText(*st, "notices").size() == 20);
}

TEST_CASE("sync: a batch never goes past batch_bytes unless it is a single changeset", "[sync][packed]") {
  // Regression: a batch used to take the changeset that crossed the budget,
  // so it could reach batch_bytes plus a whole changeset, too long for a slow
  // link within the heartbeat timeout.
  Cluster cluster;
  Replica& hub = *cluster.hub().replica;
  MakeRoster(hub);
  Node& st = Enrol(cluster, "城关镇工作站", "0512", "430123/05");
  WriteBothWays(hub, *st, 30, 1200);
  const std::string big(6000, 'z');  // one changeset over the budget on each side
  REQUIRE_OK(PutRow(*st, "consultations", std::nullopt, {{"channel", "walk_in"}, {"topic", "长"}, {"summary", big}}));
  REQUIRE_OK(PutRow(hub, "notices", std::nullopt, {{"title", "长"}, {"body", big}, {"issued_at", "2024-06-15"}}));

  const size_t budget = 4096;
  SessionOptions options;
  options.keep_messages = true;
  options.sync.batch_bytes = budget;
  options.sync.max_packed_batch_factor = 1;  // the budget in envelope bytes, as unpacked
  SessionRun run = Sync(*st, hub, options);
  int several = 0, alone_over = 0;
  for (const auto* list : {&run.requests, &run.replies})
    for (const auto& m : *list) {
      auto msg = DecodeMessage(m);
      REQUIRE_OK(msg);
      const std::vector<std::string>* changesets = nullptr;
      if (auto* p = std::get_if<PushMsg>(&msg->body)) changesets = &p->changesets;
      if (auto* b = std::get_if<BatchMsg>(&msg->body)) changesets = &b->changesets;
      if (changesets == nullptr) continue;
      size_t bytes = 0;
      for (const auto& cs : *changesets) bytes += cs.size();
      INFO(changesets->size() << " changesets, " << bytes << " bytes");
      CHECK((bytes <= budget || changesets->size() == 1));
      if (changesets->size() > 1) ++several;
      if (bytes > budget) ++alone_over;
    }
  CHECK(several >= 4);     // the budget is used, not one changeset a batch
  CHECK(alone_over == 2);  // each large changeset went alone
  CheckConverged(hub, *st);
  CHECK(ListText(hub, "consultations").size() == 31);
  CHECK(ListText(*st, "notices").size() == 31);
}

// Packed, the server sizes each batch by its bytes on the wire: a batch of
// well-compressing changesets takes up to max_packed_batch_factor times the
// budget of envelopes, so an initial sync takes fewer round trips and
// commits, while what crosses the wire stays near the budget.
TEST_CASE("sync: packed batches are sized by their bytes on the wire", "[sync][packed]") {
  Cluster cluster;
  Replica& hub = *cluster.hub().replica;
  MakeRoster(hub);
  Node& st = Enrol(cluster, "城关镇工作站", "0512", "430123/05");
  WriteBothWays(hub, *st, 60, 200);  // the hub's notices are the batches the station receives

  const size_t budget = 4096;
  SessionOptions options;
  options.keep_messages = true;
  options.sync.batch_bytes = budget;
  SessionRun run = Sync(*st, hub, options);
  size_t largest = 0, raw_over_budget = 0;
  for (const auto& m : run.replies) {
    auto msg = DecodeMessage(m);
    REQUIRE_OK(msg);
    auto* b = std::get_if<BatchMsg>(&msg->body);
    if (b == nullptr) continue;
    size_t bytes = 0;
    for (const auto& cs : b->changesets) bytes += cs.size();
    INFO(b->changesets.size() << " changesets, " << bytes << " envelope bytes, " << m.size() << " on the wire");
    CHECK((bytes <= 4 * budget || b->changesets.size() == 1));
    if (bytes > budget) ++raw_over_budget;
    largest = std::max(largest, m.size());
  }
  CHECK(raw_over_budget > 0);     // packing let batches take more than the budget of envelopes
  CHECK(largest <= 4 * budget);   // and no message went far past it on the wire
  CheckConverged(hub, *st);
}

TEST_CASE("sync: packing: hostile packed fields are refused, counted, and apply nothing", "[sync][packed][hostile]") {
  Cluster cluster;
  Replica& hub = *cluster.hub().replica;
  MakeRoster(hub);
  Node& st = Enrol(cluster, "城关镇工作站", "0512", "430123/05");
  for (int i = 0; i < 3; ++i)
    REQUIRE_OK(PutRow(*st, "consultations", std::nullopt, {{"channel", "walk_in"}, {"topic", std::to_string(i)}}));
  const std::vector<std::string> envelopes = testing::OwnEnvelopes(*st);
  const int64_t hub_log = testing::TotalChangesets(hub);
  Packer packer;
  auto good = packer.Pack(envelopes);
  REQUIRE_OK(good);

  // A first push (it carries heads) whose changesets are `packed`, verbatim.
  auto push_with = [](const std::string& packed) {
    capnp::MallocMessageBuilder builder;
    auto m = builder.initRoot<wire::SyncMessage>();
    m.setProtocolVersion(kProtocolVersion);
    m.setSessionId(77);
    auto p = m.initPush();
    p.initHeads(0);
    p.setPacked(kj::arrayPtr(reinterpret_cast<const kj::byte*>(packed.data()), packed.size()));
    return Raw(builder);
  };
  std::string bomb(ZSTD_compressBound(ProtocolLimits{}.max_unpacked_bytes + 8), '\0');
  {
    const std::string zeros(ProtocolLimits{}.max_unpacked_bytes + 8, '\0');
    const size_t n = ZSTD_compress(bomb.data(), bomb.size(), zeros.data(), zeros.size(), 1);
    REQUIRE_FALSE(ZSTD_isError(n));
    bomb.resize(n);
  }
  const std::map<std::string, std::string> hostile = {
      {"truncated frame", good->substr(0, good->size() / 2)},
      {"garbage", std::string("\x28\xb5\x2f\xfd", 4) + std::string(64, '\x5a')},
      {"zip bomb", bomb},
      {"trailing bytes", *good + "tail"},
  };

  SyncServer server(hub);
  const int64_t rejected_before = RejectedTotal(hub);
  HelloMsg hello{cluster.CertificateOf(st).bytes(), 0, std::nullopt, std::nullopt, kAcceptsPacked};
  for (const auto& [what, packed] : hostile) {
    INFO(what);
    // A fresh hello each time: a refusal ends the session it came in.
    REQUIRE(std::holds_alternative<WelcomeMsg>(
        DecodeMessage(server.Handle("c", testing::CurveKeyHex(*st), EncodeMessage({kProtocolVersion, 77, hello})))
            ->body));
    const RefusedMsg r = Body<RefusedMsg>(server.Handle("c", testing::CurveKeyHex(*st), push_with(packed)));
    CHECK(r.reason == "malformed_message");
    CHECK(r.detail.find("packed") != std::string::npos);
  }
  CHECK(RejectedTotal(hub) == rejected_before + static_cast<int64_t>(hostile.size()));
  CHECK(StatusOf(hub).rejected["malformed_message"] == static_cast<int64_t>(hostile.size()));
  CHECK(testing::TotalChangesets(hub) == hub_log);  // nothing applied

  // The same envelopes well packed are applied.
  const BatchMsg batch = Body<BatchMsg>(server.Handle("c", testing::CurveKeyHex(*st), push_with(*good)));
  CHECK(batch.applied == envelopes.size());
  CHECK(testing::TotalChangesets(hub) == hub_log + static_cast<int64_t>(envelopes.size()));

  SECTION("a client given a hostile packed batch fails and applies nothing") {
    auto hub_cert = st->HubCertificate();
    REQUIRE_OK(hub_cert);
    REQUIRE(hub_cert->has_value());
    const std::string before = testing::Snapshot(*st);
    SyncClient client(*st, **hub_cert, "inproc", 900);
    auto first = client.Start();
    REQUIRE_OK(first);
    auto push = client.OnReply(server.Handle("c2", testing::CurveKeyHex(*st), *first));
    REQUIRE_OK(push);
    REQUIRE(push->has_value());
    capnp::MallocMessageBuilder builder;
    auto m = builder.initRoot<wire::SyncMessage>();
    m.setProtocolVersion(kProtocolVersion);
    m.setSessionId(900);
    m.initBatch().setPacked(kj::arrayPtr(reinterpret_cast<const kj::byte*>(bomb.data()), bomb.size()));
    auto next = client.OnReply(Raw(builder));
    REQUIRE_FALSE(next.ok());
    CHECK(next.status().message().find("over the limit") != std::string::npos);
    CHECK_FALSE(client.complete());
    CHECK(testing::Snapshot(*st) == before);
  }
}

}  // namespace aidsync

// ---- the log's stored envelopes (sync/packing.h, docs/FORMATS.md) ----------

namespace aidsync {
namespace {

TEST_CASE("stored envelopes: compressed when smaller, read back exactly, verbatim otherwise", "[packing][stored]") {
  Cluster cluster(21);
  Node& station = Enrol(cluster, testing::kStationName, "0512", testing::kTownship);
  {
    auto tx = station->BeginLocal();
    REQUIRE_OK(tx);
    for (int i = 0; i < 50; ++i)
      REQUIRE_OK((*tx)->Put("consultations", std::nullopt, std::nullopt,
                            {{"channel", "walk_in"}, {"topic", "赡养纠纷"}, {"summary", "来访" + std::to_string(i)}}));
    REQUIRE_OK((*tx)->Commit());
  }
  const std::vector<std::string> envelopes = testing::OwnEnvelopes(*station.replica);
  REQUIRE_FALSE(envelopes.empty());
  Packer packer(kStoredEnvelopeLevel);
  const std::string& big = envelopes.back();  // the 50-row changeset
  const std::string stored = packer.PackStored(big);
  CHECK(stored.size() < big.size() / 2);
  CHECK(stored.substr(0, 4) == std::string("\x28\xb5\x2f\xfd", 4));
  auto back = UnpackStoredEnvelope(stored, ChangesetLimits{}.max_envelope_bytes);
  REQUIRE_OK(back);
  CHECK(*back == big);
  // A verbatim envelope (as every store before issue 7 holds) reads as itself.
  auto verbatim = UnpackStoredEnvelope(big, ChangesetLimits{}.max_envelope_bytes);
  REQUIRE_OK(verbatim);
  CHECK(*verbatim == big);
  // Bytes zstd cannot shrink are kept verbatim.
  const std::string tiny("\0\0\0\0\x01\0\0\0", 8);
  CHECK(packer.PackStored(tiny) == tiny);
}

TEST_CASE("stored envelopes: a damaged compressed envelope is Corruption, never a huge allocation",
          "[packing][stored]") {
  const std::string envelope(4096, 'a');
  const std::string stored = Packer(kStoredEnvelopeLevel).PackStored(envelope);
  REQUIRE(stored.size() < envelope.size());
  for (size_t n = 4; n < stored.size(); ++n) {
    INFO("truncated to " << n << " bytes");
    CHECK(UnpackStoredEnvelope(stored.substr(0, n), 1 << 20).status().code() == Status::Code::kCorruption);
  }
  CHECK(UnpackStoredEnvelope(stored + "x", 1 << 20).status().code() == Status::Code::kCorruption);
  // Over the reader's limit: refused from the frame header, before allocating.
  CHECK(UnpackStoredEnvelope(stored, 1024).status().code() == Status::Code::kCorruption);
  // A frame header claiming 2^40 bytes: magic; descriptor 0xC0 (8-byte
  // content size, a window byte); window byte; the size; one empty last raw block.
  std::string claim("\x28\xb5\x2f\xfd\xc0\x00", 6);
  for (int i = 0; i < 8; ++i) claim.push_back(static_cast<char>(i == 5 ? 1 : 0));
  claim += std::string("\x01\x00\x00", 3);
  CHECK(UnpackStoredEnvelope(claim, ChangesetLimits{}.max_envelope_bytes).status().message().find("over the limit") !=
        std::string::npos);
  CHECK(UnpackStoredEnvelope(claim, ChangesetLimits{}.max_envelope_bytes).status().code() ==
        Status::Code::kCorruption);
}

}  // namespace
}  // namespace aidsync
