// The sync protocol's messages (sync/protocol.h) and chain heads
// (sync/chain_head.h): encoding, the limits on what is decoded, and which
// changesets of a chain a peer is sent.
#include <capnp/message.h>
#include <capnp/serialize.h>

#include <algorithm>
#include <random>

#include "schema/sync.capnp.h"
#include "sync/chain_head.h"
#include "sync/protocol.h"
#include "tests/cluster_fixture.h"

namespace aidsync {
namespace {

using testing::SeededRandom;

Digest D(const std::string& seed) { return ComputeDigest("protocol test", seed); }

PublicKey Key(uint8_t fill) {
  auto key = PublicKey::FromBytes(std::string(kPublicKeyBytes, static_cast<char>(fill)));
  REQUIRE(key.ok());
  return *key;
}

ChainHead MakeHead(uint8_t author, const std::string& scope, TableClass cls, uint64_t seq, uint64_t count,
               const std::string& head_seed) {
  ChainHead h;
  h.chain = {Key(author), scope, cls};
  h.seq = seq;
  h.count = count;
  h.head = D(head_seed);
  h.fingerprint = D("fp:" + head_seed + ":" + std::to_string(count));
  return h;
}

SyncMsg RoundTrip(const SyncMsg& in) {
  std::string bytes = EncodeMessage(in);
  CHECK(bytes.size() % 8 == 0);
  auto out = DecodeMessage(bytes);
  INFO(testing::StatusText(out));
  REQUIRE(out.ok());
  CHECK(out->version == in.version);
  CHECK(out->session == in.session);
  CHECK(out->body.index() == in.body.index());
  return std::move(*out);
}

std::vector<ChainHead> SomeHeads() {
  return {MakeHead(1, "430123", TableClass::kReference, 7, 7, "a"),
          MakeHead(2, "430123/05", TableClass::kCase, 3, 4, "b"),
          MakeHead(3, "430123/05/017", TableClass::kCase, 1, 1, "c")};
}

}  // namespace

// ------------------------------------------------------------------ messages

TEST_CASE("protocol: every message kind survives encode and decode", "[protocol]") {
  SECTION("hello with and without a digest") {
    SyncMsg in{kProtocolVersion, 0x0123456789abcdefULL, HelloMsg{"certificate bytes\0\x01", -42, D("digest")}};
    SyncMsg out = RoundTrip(in);
    const auto& h = std::get<HelloMsg>(out.body);
    CHECK(h.certificate == std::get<HelloMsg>(in.body).certificate);
    CHECK(h.wall_ms == -42);
    REQUIRE(h.digest.has_value());
    CHECK(*h.digest == D("digest"));

    SyncMsg none = RoundTrip(SyncMsg{kProtocolVersion, 1, HelloMsg{"c", 1718452800000, std::nullopt}});
    CHECK_FALSE(std::get<HelloMsg>(none.body).digest.has_value());
    CHECK(std::get<HelloMsg>(none.body).wall_ms == 1718452800000);
  }
  SECTION("welcome") {
    WelcomeMsg w{"server cert", 99, false, SomeHeads()};
    SyncMsg out = RoundTrip(SyncMsg{kProtocolVersion, 5, w});
    const auto& got = std::get<WelcomeMsg>(out.body);
    CHECK(got.certificate == "server cert");
    CHECK(got.wall_ms == 99);
    CHECK_FALSE(got.up_to_date);
    CHECK(got.heads == w.heads);

    SyncMsg done = RoundTrip(SyncMsg{kProtocolVersion, 5, WelcomeMsg{"s", 1, true, {}}});
    CHECK(std::get<WelcomeMsg>(done.body).up_to_date);
    CHECK(std::get<WelcomeMsg>(done.body).heads.empty());
  }
  SECTION("push, first (with heads) and later (without)") {
    PushMsg p;
    p.has_heads = true;
    p.heads = SomeHeads();
    p.certificates = {"cert one", std::string(300, '\xff')};
    p.changesets = {"cs1", std::string("cs\0two", 6), ""};
    p.more = true;
    SyncMsg out = RoundTrip(SyncMsg{kProtocolVersion, 6, p});
    const auto& got = std::get<PushMsg>(out.body);
    CHECK(got.has_heads);
    CHECK(got.heads == p.heads);
    CHECK(got.certificates == p.certificates);
    CHECK(got.changesets == p.changesets);
    CHECK(got.more);

    PushMsg later;
    later.changesets = {"x"};
    SyncMsg out2 = RoundTrip(SyncMsg{kProtocolVersion, 6, later});
    CHECK_FALSE(std::get<PushMsg>(out2.body).has_heads);
    CHECK_FALSE(std::get<PushMsg>(out2.body).more);
    CHECK(std::get<PushMsg>(out2.body).changesets == later.changesets);
  }
  SECTION("a first push from a node with no chains still says it carries heads") {
    PushMsg p;
    p.has_heads = true;
    SyncMsg out = RoundTrip(SyncMsg{kProtocolVersion, 7, p});
    CHECK(std::get<PushMsg>(out.body).has_heads);
    CHECK(std::get<PushMsg>(out.body).heads.empty());
  }
  SECTION("batch") {
    BatchMsg b{{"cert"}, {"a", "bb", "ccc"}, true, 12, 3};
    SyncMsg out = RoundTrip(SyncMsg{kProtocolVersion, 8, b});
    const auto& got = std::get<BatchMsg>(out.body);
    CHECK(got.certificates == b.certificates);
    CHECK(got.changesets == b.changesets);
    CHECK(got.more);
    CHECK(got.applied == 12);
    CHECK(got.rejected == 3);
  }
  SECTION("refused") {
    SyncMsg out = RoundTrip(SyncMsg{kProtocolVersion, 9, RefusedMsg{"protocol_version", "speaks 1"}});
    CHECK(std::get<RefusedMsg>(out.body).reason == "protocol_version");
    CHECK(std::get<RefusedMsg>(out.body).detail == "speaks 1");
  }
  SECTION("another protocol version is returned as sent, for the caller to refuse") {
    auto out = DecodeMessage(EncodeMessage(SyncMsg{99, 10, RefusedMsg{"x", "y"}}));
    REQUIRE_OK(out);
    CHECK(out->version == 99);
    CHECK(out->session == 10);
  }
}

TEST_CASE("protocol: DecodeMessage refuses garbage and messages over its limits", "[protocol]") {
  SECTION("too many chain heads") {
    std::string bytes = EncodeMessage(SyncMsg{kProtocolVersion, 1, WelcomeMsg{"c", 0, false, SomeHeads()}});
    ProtocolLimits limits;
    limits.max_heads = 2;
    auto decoded = DecodeMessage(bytes, limits);
    REQUIRE_FALSE(decoded.ok());
    CHECK(decoded.status().code() == Status::Code::kCorruption);
    CHECK(decoded.status().message().find("heads") != std::string::npos);
    limits.max_heads = 3;
    CHECK(DecodeMessage(bytes, limits).ok());

    PushMsg p;
    p.has_heads = true;
    p.heads = SomeHeads();
    limits.max_heads = 2;
    CHECK_FALSE(DecodeMessage(EncodeMessage(SyncMsg{kProtocolVersion, 1, p}), limits).ok());
  }
  SECTION("over the byte limit") {
    std::string bytes =
        EncodeMessage(SyncMsg{kProtocolVersion, 1, BatchMsg{{}, {std::string(4096, 'x')}, false, 0, 0}});
    ProtocolLimits limits;
    limits.max_message_bytes = 1024;
    auto decoded = DecodeMessage(bytes, limits);
    REQUIRE_FALSE(decoded.ok());
    CHECK(decoded.status().code() == Status::Code::kCorruption);
    CHECK(DecodeMessage(bytes).ok());
  }
  SECTION("over the traversal limit") {
    std::string bytes =
        EncodeMessage(SyncMsg{kProtocolVersion, 1, BatchMsg{{}, {std::string(8192, 'x')}, false, 0, 0}});
    ProtocolLimits limits;
    limits.traversal_limit_words = 64;
    CHECK_FALSE(DecodeMessage(bytes, limits).ok());
  }
  SECTION("garbage") {
    CHECK_FALSE(DecodeMessage("").ok());
    CHECK_FALSE(DecodeMessage("hello").ok());
    CHECK_FALSE(DecodeMessage(std::string(7, '\0')).ok());
    CHECK_FALSE(DecodeMessage(std::string(64, '\xff')).ok());
    SeededRandom random(testing::TestSeed());
    int refused = 0;
    for (int i = 0; i < 200; ++i) {
      std::string bytes(8 * (1 + random.Uniform(64)), '\0');
      random.Fill(bytes.data(), bytes.size());
      if (!DecodeMessage(bytes).ok()) ++refused;
    }
    CHECK(refused == 200);
  }
  SECTION("trailing bytes after a whole message") {
    std::string bytes = EncodeMessage(SyncMsg{kProtocolVersion, 1, HelloMsg{"cert", 5, std::nullopt}});
    REQUIRE(DecodeMessage(bytes).ok());
    CHECK_FALSE(DecodeMessage(bytes + std::string(8, '\0')).ok());
    CHECK_FALSE(DecodeMessage(bytes + bytes).ok());
  }
  SECTION("truncated at every 8-byte boundary") {
    std::string bytes = EncodeMessage(SyncMsg{kProtocolVersion, 1, WelcomeMsg{"cert", 5, false, SomeHeads()}});
    for (size_t n = 0; n < bytes.size(); n += 8) {
      INFO("truncated to " << n << " of " << bytes.size());
      CHECK_FALSE(DecodeMessage(bytes.substr(0, n)).ok());
    }
  }
  SECTION("a chain head with a short key or digest") {
    capnp::MallocMessageBuilder builder;
    auto m = builder.initRoot<wire::SyncMessage>();
    m.setProtocolVersion(kProtocolVersion);
    auto heads = m.initWelcome().initHeads(1);
    std::string short_key(31, 'k');
    heads[0].setAuthor(kj::arrayPtr(reinterpret_cast<const kj::byte*>(short_key.data()), short_key.size()));
    heads[0].setScope("430123");
    auto words = capnp::messageToFlatArray(builder);
    auto raw = words.asBytes();
    CHECK_FALSE(DecodeMessage(std::string(reinterpret_cast<const char*>(raw.begin()), raw.size())).ok());
  }
  SECTION("a hello digest of the wrong length") {
    capnp::MallocMessageBuilder builder;
    auto m = builder.initRoot<wire::SyncMessage>();
    m.setProtocolVersion(kProtocolVersion);
    std::string digest(5, 'd');
    m.initHello().setDigest(kj::arrayPtr(reinterpret_cast<const kj::byte*>(digest.data()), digest.size()));
    auto words = capnp::messageToFlatArray(builder);
    auto raw = words.asBytes();
    CHECK_FALSE(DecodeMessage(std::string(reinterpret_cast<const char*>(raw.begin()), raw.size())).ok());
  }
}

// ------------------------------------------------------------------ chain heads

TEST_CASE("protocol: chain heads: GapsFor sends each chain from where the peer is",
          "[protocol][chain_head]") {
  const ChainHead mine = MakeHead(2, "430123/05", TableClass::kCase, 5, 5, "h5");
  auto holds_all = [](const Digest&) { return true; };
  auto holds_none = [](const Digest&) { return false; };

  SECTION("peer lacks the chain: from the start") {
    auto gaps = GapsFor({mine}, {}, holds_all);
    REQUIRE(gaps.size() == 1);
    CHECK(gaps[0].chain == mine.chain);
    CHECK(gaps[0].after_seq == 0);
    CHECK(gaps[0].missing == 5);
    // A chain of the same author in another scope or class is another chain.
    ChainHead other = mine;
    other.chain.scope = "430123/06";
    CHECK(GapsFor({mine}, {other}, holds_all).at(0).after_seq == 0);
  }
  SECTION("peer holds the same: nothing") {
    CHECK(GapsFor({mine}, {mine}, holds_none).empty());
  }
  SECTION("peer behind on the same straight chain: after its seq") {
    ChainHead theirs = MakeHead(2, "430123/05", TableClass::kCase, 2, 2, "h2");
    std::vector<Digest> asked;
    auto gaps = GapsFor({mine}, {theirs}, [&](const Digest& id) {
      asked.push_back(id);
      return true;
    });
    REQUIRE(gaps.size() == 1);
    CHECK(gaps[0].after_seq == 2);
    CHECK(gaps[0].missing == 3);
    REQUIRE(asked.size() == 1);
    CHECK(asked[0] == theirs.head);
  }
  SECTION("peer's head unknown here (a fork): the whole chain") {
    ChainHead theirs = MakeHead(2, "430123/05", TableClass::kCase, 2, 2, "other branch");
    auto gaps = GapsFor({mine}, {theirs}, holds_none);
    REQUIRE(gaps.size() == 1);
    CHECK(gaps[0].after_seq == 0);
  }
  SECTION("counts that do not add up (a fork held here): the whole chain") {
    ChainHead forked = MakeHead(2, "430123/05", TableClass::kCase, 5, 6, "h5");
    ChainHead theirs = MakeHead(2, "430123/05", TableClass::kCase, 2, 2, "h2");
    auto gaps = GapsFor({forked}, {theirs}, holds_all);
    REQUIRE(gaps.size() == 1);
    CHECK(gaps[0].after_seq == 0);
  }
  SECTION("counts that do not add up (a fork held by the peer): the whole chain") {
    ChainHead theirs = MakeHead(2, "430123/05", TableClass::kCase, 2, 3, "h2");
    auto gaps = GapsFor({mine}, {theirs}, holds_all);
    REQUIRE(gaps.size() == 1);
    CHECK(gaps[0].after_seq == 0);
  }
  SECTION("same seq, different changesets (a fork at the head): the whole chain") {
    ChainHead theirs = MakeHead(2, "430123/05", TableClass::kCase, 5, 5, "h5 elsewhere");
    auto gaps = GapsFor({mine}, {theirs}, holds_all);
    REQUIRE(gaps.size() == 1);
    CHECK(gaps[0].after_seq == 0);
  }
  SECTION("peer ahead on the same straight chain: nothing (it holds all we hold)") {
    // Found by "sync: only what is new crosses the wire": the hub sent a
    // station's whole chain back to it whenever the station had written more.
    ChainHead theirs = MakeHead(2, "430123/05", TableClass::kCase, 9, 9, "h9");
    CHECK(GapsFor({mine}, {theirs}, holds_none).empty());
  }
  SECTION("several chains: one gap per differing chain, in our order") {
    std::vector<ChainHead> ours = SomeHeads();
    std::vector<ChainHead> theirs = {ours[1]};
    auto gaps = GapsFor(ours, theirs, holds_all);
    REQUIRE(gaps.size() == 2);
    CHECK(gaps[0].chain == ours[0].chain);
    CHECK(gaps[1].chain == ours[2].chain);
  }
}

TEST_CASE("protocol: chain heads: HeadsDigest does not depend on the order of the heads",
          "[protocol][chain_head]") {
  std::vector<ChainHead> heads = SomeHeads();
  heads.push_back(MakeHead(1, "430123", TableClass::kCase, 2, 2, "d"));
  heads.push_back(MakeHead(1, "430123/05", TableClass::kReference, 4, 4, "e"));
  const Digest expected = HeadsDigest(heads);
  std::mt19937 shuffle(7);
  for (int i = 0; i < 20; ++i) {
    std::shuffle(heads.begin(), heads.end(), shuffle);
    CHECK(HeadsDigest(heads) == expected);
  }
  // ... but on every field of every head.
  auto changed = [&](const std::function<void(ChainHead&)>& change) {
    std::vector<ChainHead> copy = heads;
    change(copy[2]);
    return HeadsDigest(copy);
  };
  CHECK(changed([](ChainHead& h) { ++h.seq; }) != expected);
  CHECK(changed([](ChainHead& h) { ++h.count; }) != expected);
  CHECK(changed([](ChainHead& h) { h.head = D("other"); }) != expected);
  CHECK(changed([](ChainHead& h) { h.fingerprint = D("other"); }) != expected);
  CHECK(changed([](ChainHead& h) { h.chain.scope += "1"; }) != expected);
  CHECK(changed([](ChainHead& h) {
          h.chain.cls = h.chain.cls == TableClass::kCase ? TableClass::kReference : TableClass::kCase;
        }) != expected);
  CHECK(changed([](ChainHead& h) { h.chain.author = Key(9); }) != expected);
  std::vector<ChainHead> fewer(heads.begin(), heads.end() - 1);
  CHECK(HeadsDigest(fewer) != expected);
  CHECK(HeadsDigest({}) != expected);
}

TEST_CASE("protocol: chain heads: the fingerprint is the same whatever order changesets arrive in",
          "[protocol][chain_head]") {
  Digest a, b;
  std::vector<Digest> ids = {D("1"), D("2"), D("3"), D("4")};
  for (const auto& id : ids) FoldIntoFingerprint(id, &a);
  for (auto it = ids.rbegin(); it != ids.rend(); ++it) FoldIntoFingerprint(*it, &b);
  CHECK(a == b);
  Digest c;
  for (size_t i = 0; i + 1 < ids.size(); ++i) FoldIntoFingerprint(ids[i], &c);
  CHECK_FALSE(a == c);
}

}  // namespace aidsync
