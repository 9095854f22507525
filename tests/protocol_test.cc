// The sync protocol's messages (sync/protocol.h) and chain heads
// (sync/chain_head.h): encoding, packed changesets (sync/packing.h), the
// limits on what is decoded, and which changesets of a chain a peer is sent.
#include <capnp/message.h>
#include <capnp/serialize.h>
#include <zstd.h>

#include <algorithm>
#include <cstring>
#include <memory>
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

// ------------------------------------------------------------------ packed changesets

namespace {

std::string Raw(capnp::MallocMessageBuilder& builder) {
  auto words = capnp::messageToFlatArray(builder);
  auto raw = words.asBytes();
  return std::string(reinterpret_cast<const char*>(raw.begin()), raw.size());
}

// How an encoded Push or Batch carries its changesets on the wire.
struct Shape {
  size_t plain = 0;         // entries of the `changesets` list
  size_t packed_bytes = 0;  // size of the `packed` field
};
Shape ShapeOf(const std::string& bytes) {
  auto words = kj::heapArray<capnp::word>(bytes.size() / 8);
  std::memcpy(words.begin(), bytes.data(), bytes.size());
  capnp::FlatArrayMessageReader reader(words);
  auto m = reader.getRoot<wire::SyncMessage>();
  if (m.isPush()) return {m.getPush().getChangesets().size(), m.getPush().getPacked().size()};
  REQUIRE(m.isBatch());
  return {m.getBatch().getChangesets().size(), m.getBatch().getPacked().size()};
}

// A batch whose `packed` field holds `packed` verbatim (and `plain` in the list).
std::string BatchWithPacked(std::string_view packed, const std::vector<std::string>& plain = {}) {
  capnp::MallocMessageBuilder builder;
  auto m = builder.initRoot<wire::SyncMessage>();
  m.setProtocolVersion(kProtocolVersion);
  m.setSessionId(3);
  auto b = m.initBatch();
  b.setPacked(kj::arrayPtr(reinterpret_cast<const kj::byte*>(packed.data()), packed.size()));
  auto list = b.initChangesets(plain.size());
  for (size_t i = 0; i < plain.size(); ++i)
    list.set(i, kj::arrayPtr(reinterpret_cast<const kj::byte*>(plain[i].data()), plain[i].size()));
  return Raw(builder);
}

// The packed list format written by hand: u32 LE length, bytes; repeated.
std::string LengthPrefixed(const std::vector<std::string>& entries) {
  std::string out;
  for (const auto& e : entries) {
    const uint32_t n = static_cast<uint32_t>(e.size());
    for (int shift = 0; shift < 32; shift += 8) out.push_back(static_cast<char>(n >> shift));
    out += e;
  }
  return out;
}

// One zstd frame of `content`, with its content size in the header.
std::string Zstd(std::string_view content) {
  std::string frame(ZSTD_compressBound(content.size()), '\0');
  const size_t n = ZSTD_compress(frame.data(), frame.size(), content.data(), content.size(), 3);
  REQUIRE_FALSE(ZSTD_isError(n));
  frame.resize(n);
  return frame;
}

// Envelope-like blobs: a shared structure with a few varying bytes, as
// changesets of one chain are.
std::vector<std::string> Envelopes(int count) {
  std::vector<std::string> out;
  for (int i = 0; i < count; ++i)
    out.push_back("author-key-0512|scope 430123/05|consultations|channel=walk_in|topic=咨询 " + std::to_string(i) +
                  std::string(64, static_cast<char>('a' + i % 26)));
  return out;
}

SyncMsg Decoded(const std::string& bytes) {
  auto out = DecodeMessage(bytes);
  INFO(testing::StatusText(out));
  REQUIRE(out.ok());
  return std::move(*out);
}

Status DecodeFailure(const std::string& bytes, const ProtocolLimits& limits = {}) {
  auto decoded = DecodeMessage(bytes, limits);
  if (decoded.ok()) return Status::OK();
  return decoded.status();
}

}  // namespace

TEST_CASE("protocol: packed changesets: a push or batch written packed decodes to the same changesets",
          "[protocol][packed]") {
  Packer packer;
  const EncodeOptions packed{&packer};
  SECTION("batch") {
    BatchMsg b{{"cert"}, Envelopes(40), true, 7, 1};
    const std::string bytes = EncodeMessage(SyncMsg{kProtocolVersion, 8, b}, packed);
    const Shape shape = ShapeOf(bytes);
    CHECK(shape.plain == 0);
    CHECK(shape.packed_bytes > 0);
    CHECK(bytes.size() * 3 < EncodeMessage(SyncMsg{kProtocolVersion, 8, b}).size());  // it does compress
    const SyncMsg out = Decoded(bytes);
    const auto& got = std::get<BatchMsg>(out.body);
    CHECK(got.changesets == b.changesets);
    CHECK(got.certificates == b.certificates);
    CHECK(got.more);
    CHECK(got.applied == 7);
    CHECK(got.rejected == 1);
  }
  SECTION("push, with heads and revocations beside the packed changesets") {
    PushMsg p;
    p.has_heads = true;
    p.heads = SomeHeads();
    p.changesets = {"cs1", std::string("cs\0two", 6), "", std::string(70000, '\x01')};
    p.revocations = {"revocation"};
    p.more = true;
    const std::string bytes = EncodeMessage(SyncMsg{kProtocolVersion, 6, p}, packed);
    CHECK(ShapeOf(bytes).packed_bytes > 0);
    const SyncMsg out = Decoded(bytes);
    const auto& got = std::get<PushMsg>(out.body);
    CHECK(got.has_heads);
    CHECK(got.heads == p.heads);
    CHECK(got.changesets == p.changesets);
    CHECK(got.revocations == p.revocations);
    CHECK(got.more);
  }
  SECTION("one Packer serves many messages; each frame decodes on its own") {
    for (int i = 1; i <= 3; ++i) {
      BatchMsg b{{}, Envelopes(10 * i), false, 0, 0};
      const std::string bytes = EncodeMessage(SyncMsg{kProtocolVersion, 8, b}, packed);
      CHECK(std::get<BatchMsg>(Decoded(bytes).body).changesets == b.changesets);
    }
  }
  SECTION("no changesets, or no packer: the plain list") {
    const std::string empty = EncodeMessage(SyncMsg{kProtocolVersion, 8, BatchMsg{{}, {}, false, 3, 0}}, packed);
    CHECK(ShapeOf(empty).packed_bytes == 0);
    const std::string plain = EncodeMessage(SyncMsg{kProtocolVersion, 8, BatchMsg{{}, Envelopes(3), false, 0, 0}});
    CHECK(ShapeOf(plain).plain == 3);
    CHECK(ShapeOf(plain).packed_bytes == 0);
  }
  SECTION("hello and welcome carry what each side accepts") {
    HelloMsg h{"c", 1, std::nullopt, std::nullopt, kAcceptsPacked};
    CHECK(std::get<HelloMsg>(RoundTrip(SyncMsg{kProtocolVersion, 1, h}).body).accepts == kAcceptsPacked);
    WelcomeMsg w{"s", 1, false, SomeHeads()};
    w.accepts = kAcceptsPacked | 0x80;  // a bit this version does not know is kept, not refused
    CHECK(std::get<WelcomeMsg>(RoundTrip(SyncMsg{kProtocolVersion, 1, w}).body).accepts == (kAcceptsPacked | 0x80));
    CHECK(std::get<HelloMsg>(RoundTrip(SyncMsg{kProtocolVersion, 1, HelloMsg{"c", 1}}).body).accepts == 0);
  }
}

TEST_CASE("protocol: messages written before packing still decode", "[protocol][packed]") {
  // Bytes as written by protocol version 1 before `accepts` and `packed`
  // existed (commit bb24794): smaller Hello and Batch structs.
  auto bytes = [](const char* hex) {
    auto raw = FromHex(hex);
    REQUIRE_OK(raw);
    return *raw;
  };
  auto hello = DecodeMessage(bytes(
      "0000000009000000" "0000000002000100" "0100000000000000" "8877665544332211"
      "0000000001000300" "00cac41b90010000" "0900000022000000" "0000000000000000"
      "0000000000000000" "6365727400000000"));
  REQUIRE_OK(hello);
  CHECK(hello->session == 0x1122334455667788ULL);
  const auto& h = std::get<HelloMsg>(hello->body);
  CHECK(h.certificate == "cert");
  CHECK(h.wall_ms == 1718452800000);
  CHECK(h.accepts == 0);  // an old client: it gets plain batches

  auto batch = DecodeMessage(bytes(
      "000000000e000000" "0000000002000100" "0100000003000000" "8877665544332211"
      "0000000002000200" "0100000002000000" "0100000000000000" "050000000e000000"
      "0900000016000000" "0100000022000000" "6365727400000000" "0500000032000000"
      "0500000032000000" "63732d6f6e650000" "63732d74776f0000"));
  REQUIRE_OK(batch);
  const auto& b = std::get<BatchMsg>(batch->body);
  CHECK(b.certificates == std::vector<std::string>{"cert"});
  CHECK(b.changesets == std::vector<std::string>{"cs-one", "cs-two"});
  CHECK(b.more);
  CHECK(b.applied == 2);
  CHECK(b.rejected == 1);
}

TEST_CASE("protocol: packed changesets: hostile packed fields are refused", "[protocol][packed]") {
  const std::string list = LengthPrefixed({"one", "two", "three"});
  const std::string frame = Zstd(list);
  {
    auto ok = DecodeMessage(BatchWithPacked(frame));
    REQUIRE_OK(ok);
    CHECK(std::get<BatchMsg>(ok->body).changesets == std::vector<std::string>{"one", "two", "three"});
  }
  auto refused = [](const std::string& bytes, const std::string& words, const ProtocolLimits& limits = {}) {
    Status st = DecodeFailure(bytes, limits);
    INFO(st.ToString());
    CHECK(st.code() == Status::Code::kCorruption);
    CHECK(st.message().find(words) != std::string::npos);
  };
  SECTION("a truncated frame, at every length") {
    for (size_t n = 1; n < frame.size(); ++n) {
      INFO("truncated to " << n << " of " << frame.size());
      CHECK(DecodeFailure(BatchWithPacked(frame.substr(0, n))).code() == Status::Code::kCorruption);
    }
  }
  SECTION("bytes after the frame, or a second frame") {
    refused(BatchWithPacked(frame + "x"), "after their zstd frame");
    refused(BatchWithPacked(frame + frame), "after their zstd frame");
  }
  SECTION("garbage, and garbage behind zstd's magic number") {
    refused(BatchWithPacked("not zstd at all"), "not a zstd frame");
    SeededRandom random(testing::TestSeed());
    for (int i = 0; i < 200; ++i) {
      std::string junk(4 + random.Uniform(200), '\0');
      random.Fill(junk.data(), junk.size());
      std::memcpy(junk.data(), frame.data(), 4);  // the magic number
      INFO("junk #" << i);
      CHECK(DecodeFailure(BatchWithPacked(junk)).code() == Status::Code::kCorruption);
    }
    // A skippable frame is zstd, but not what a sender writes.
    refused(BatchWithPacked(std::string("\x50\x2a\x4d\x18\x04\x00\x00\x00" "abcd", 12)), "not a zstd frame");
  }
  SECTION("a frame that unpacks to more than the limit (a zip bomb)") {
    const std::string bomb = Zstd(std::string(ProtocolLimits{}.max_unpacked_bytes + 1, '\0'));
    CHECK(bomb.size() < 4096);
    refused(BatchWithPacked(bomb), "over the limit");
    ProtocolLimits small;
    small.max_unpacked_bytes = list.size() - 1;
    refused(BatchWithPacked(frame), "over the limit", small);
    small.max_unpacked_bytes = list.size();
    CHECK(DecodeMessage(BatchWithPacked(frame), small).ok());
  }
  SECTION("a frame header claiming a huge content size is refused before anything is allocated") {
    // Magic; descriptor 0xC0 (8-byte content size, a window byte); window
    // byte; content size 2^40; one empty last raw block.
    std::string header("\x28\xb5\x2f\xfd\xc0\x00", 6);
    for (int i = 0; i < 8; ++i) header.push_back(static_cast<char>(i == 5 ? 1 : 0));
    header += std::string("\x01\x00\x00", 3);
    refused(BatchWithPacked(header), "over the limit");
  }
  SECTION("a frame that does not declare its size") {
    std::unique_ptr<ZSTD_CCtx, size_t (*)(ZSTD_CCtx*)> cctx(ZSTD_createCCtx(), &ZSTD_freeCCtx);
    REQUIRE(!ZSTD_isError(ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_contentSizeFlag, 0)));
    std::string sizeless(ZSTD_compressBound(list.size()), '\0');
    const size_t n = ZSTD_compress2(cctx.get(), sizeless.data(), sizeless.size(), list.data(), list.size());
    REQUIRE_FALSE(ZSTD_isError(n));
    sizeless.resize(n);
    refused(BatchWithPacked(sizeless), "do not declare");
  }
  SECTION("a malformed list inside a good frame") {
    refused(BatchWithPacked(Zstd(std::string("\x10\x00\x00\x00" "short", 9))), "runs past the end");
    refused(BatchWithPacked(Zstd(list + std::string("\x01\x00", 2))), "inside a length");
    refused(BatchWithPacked(Zstd("")), "no changeset");
  }
  SECTION("more changesets than the limit, packed or plain") {
    ProtocolLimits limits;
    limits.max_changesets = 2;
    refused(BatchWithPacked(frame), "more than 2", limits);
    refused(BatchWithPacked(Zstd(LengthPrefixed(std::vector<std::string>(5, "")))), "more than 2", limits);
    refused(EncodeMessage(SyncMsg{kProtocolVersion, 1, BatchMsg{{}, {"a", "b", "c"}, false, 0, 0}}),
            "too many changesets", limits);
    limits.max_changesets = 3;
    CHECK(DecodeMessage(BatchWithPacked(frame), limits).ok());
  }
  SECTION("plain and packed changesets in one message") {
    refused(BatchWithPacked(frame, {"plain"}), "both plain and packed");
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
