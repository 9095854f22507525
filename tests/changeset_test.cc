// Tests for sync/changeset.h (signing, decoding untrusted bytes, the flow
// rule), sync/row_meta.h (the per-row metadata blob) and sync/values.h.
#include "sync/changeset.h"

#include <capnp/message.h>
#include <capnp/serialize.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "schema/canonical.h"
#include "schema/changeset.capnp.h"
#include "sync/row_meta.h"
#include "sync/values.h"
#include "tests/cluster_fixture.h"

namespace aidsync {
namespace {

using testing::SeededRandom;

Digest DigestOf(const std::string& text) { return ComputeDigest("test", text); }

// A small changeset with every kind of value, a delete and a dependency.
ChangesetContent SampleContent(const PublicKey& author) {
  ChangesetContent c;
  c.author = author;
  c.scope = "430123/05";
  c.cls = TableClass::kCase;
  c.seq = 2;
  c.prev = DigestOf("prev");
  c.hlc = (uint64_t{1718452800000} << 16) | 3;
  c.schema_version = 1;
  c.deps = {DigestOf("dep0")};
  TableOpsList consultations{"consultations", {"channel", "topic", "summary"}, {}};
  RowOp written{"row-1", false, {}};
  written.fields.push_back(FieldWriteOp{1, {0}, false, Value::Text("劳动争议 — 工资")});
  written.fields.push_back(FieldWriteOp{2, {}, false, Value::Null()});
  RowOp deleted{"row-2", true, {}};
  deleted.fields.push_back(FieldWriteOp{0, {0}, true, Value::Null()});
  consultations.rows = {written, deleted};
  TableOpsList visits{"return_visits", {"satisfaction", "note"}, {}};
  RowOp visit{"row-3", false, {}};
  visit.fields.push_back(FieldWriteOp{0, {}, false, Value::Integer(-5)});
  visit.fields.push_back(FieldWriteOp{1, {}, false, Value::Real(-2.5)});
  visits.rows = {visit};
  c.tables = {consultations, visits};
  return c;
}

struct Signer {
  SeededRandom random{7};
  SigningKey key = SigningKey::Generate(random);
  SigningKey other = SigningKey::Generate(random);
};

std::string BodyOf(const std::string& envelope) {
  auto words = kj::heapArray<capnp::word>(envelope.size() / 8);
  std::memcpy(words.begin(), envelope.data(), envelope.size());
  capnp::FlatArrayMessageReader reader(words);
  auto body = reader.getRoot<wire::SignedChangeset>().getBody();
  return std::string(reinterpret_cast<const char*>(body.begin()), body.size());
}

std::string EnvelopeOf(const std::string& body, const Signature& sig) {
  capnp::MallocMessageBuilder message;
  auto env = message.initRoot<wire::SignedChangeset>();
  env.setBody(kj::arrayPtr(reinterpret_cast<const kj::byte*>(body.data()), body.size()));
  env.setSignature(kj::arrayPtr(sig.data(), sig.size()));
  auto bytes = capnp::messageToFlatArray(message);
  return std::string(reinterpret_cast<const char*>(bytes.asBytes().begin()), bytes.asBytes().size());
}

}  // namespace

TEST_CASE("changeset sign/decode round trip keeps every field", "[changeset]") {
  Signer s;
  ChangesetContent in = SampleContent(s.key.public_key());
  auto signed_cs = SignChangeset(in, s.key);
  REQUIRE_OK(signed_cs);
  CHECK(signed_cs->envelope.size() % 8 == 0);
  CHECK(signed_cs->id == ComputeDigest(kChangesetContext, BodyOf(signed_cs->envelope)));

  Digest id;
  auto out = DecodeChangeset(signed_cs->envelope, &id);
  REQUIRE_OK(out);
  CHECK(id == signed_cs->id);
  CHECK(out->author == in.author);
  CHECK(out->scope == in.scope);
  CHECK(out->cls == in.cls);
  CHECK(out->seq == in.seq);
  REQUIRE(out->prev.has_value());
  CHECK(*out->prev == *in.prev);
  CHECK(out->hlc == in.hlc);
  CHECK(out->schema_version == in.schema_version);
  CHECK(out->deps == in.deps);
  REQUIRE(out->tables.size() == in.tables.size());
  for (size_t t = 0; t < in.tables.size(); ++t) {
    const auto& a = in.tables[t];
    const auto& b = out->tables[t];
    CHECK(b.name == a.name);
    CHECK(b.columns == a.columns);
    REQUIRE(b.rows.size() == a.rows.size());
    for (size_t r = 0; r < a.rows.size(); ++r) {
      CHECK(b.rows[r].id == a.rows[r].id);
      CHECK(b.rows[r].deleted == a.rows[r].deleted);
      REQUIRE(b.rows[r].fields.size() == a.rows[r].fields.size());
      for (size_t f = 0; f < a.rows[r].fields.size(); ++f) {
        const auto& fa = a.rows[r].fields[f];
        const auto& fb = b.rows[r].fields[f];
        CHECK(fb.column == fa.column);
        CHECK(fb.overwrites == fa.overwrites);
        CHECK(fb.tombstone == fa.tombstone);
        CHECK(fb.value == fa.value);
      }
    }
  }
}

TEST_CASE("changeset with seq 1 has no predecessor and the same content signs to the same id", "[changeset]") {
  Signer s;
  ChangesetContent in = SampleContent(s.key.public_key());
  in.seq = 1;
  in.prev.reset();
  auto a = SignChangeset(in, s.key);
  auto b = SignChangeset(in, s.key);
  REQUIRE_OK(a);
  REQUIRE_OK(b);
  CHECK(a->id == b->id);
  Digest id;
  auto out = DecodeChangeset(a->envelope, &id);
  REQUIRE_OK(out);
  CHECK_FALSE(out->prev.has_value());

  in.hlc += 1;
  auto c = SignChangeset(in, s.key);
  REQUIRE_OK(c);
  CHECK_FALSE(c->id == a->id);
}

TEST_CASE("changeset whose seq and predecessor disagree is refused as corrupt", "[changeset]") {
  Signer s;
  ChangesetContent first = SampleContent(s.key.public_key());
  first.seq = 1;  // but prev is set
  auto a = SignChangeset(first, s.key);
  REQUIRE_OK(a);
  Digest id;
  REQUIRE_CODE(DecodeChangeset(a->envelope, &id), Status::Code::kCorruption);

  ChangesetContent later = SampleContent(s.key.public_key());
  later.prev.reset();  // seq 2 without prev
  auto b = SignChangeset(later, s.key);
  REQUIRE_OK(b);
  REQUIRE_CODE(DecodeChangeset(b->envelope, &id), Status::Code::kCorruption);
}

TEST_CASE("changeset: every single-byte flip of an envelope makes decoding fail", "[changeset]") {
  Signer s;
  ChangesetContent in = SampleContent(s.key.public_key());
  in.tables.resize(1);
  in.tables[0].rows.resize(1);
  auto signed_cs = SignChangeset(in, s.key);
  REQUIRE_OK(signed_cs);
  const std::string& envelope = signed_cs->envelope;
  Digest id;
  REQUIRE_OK(DecodeChangeset(envelope, &id));
  int checked = 0;
  for (uint8_t mask : {uint8_t{0x01}, uint8_t{0x80}, uint8_t{0xff}}) {
    for (size_t i = 0; i < envelope.size(); ++i) {
      std::string bad = envelope;
      bad[i] = static_cast<char>(static_cast<uint8_t>(bad[i]) ^ mask);
      Digest bad_id;
      auto decoded = DecodeChangeset(bad, &bad_id);
      INFO("byte " << i << " of " << envelope.size() << " xor " << int(mask) << ": " << decoded.status().ToString());
      REQUIRE_FALSE(decoded.ok());
      REQUIRE((decoded.status().code() == Status::Code::kCorruption ||
               decoded.status().code() == Status::Code::kBadSignature));
      ++checked;
    }
  }
  CHECK(checked == static_cast<int>(3 * envelope.size()));
}

TEST_CASE("changeset: truncated or extended envelopes are refused as corrupt", "[changeset]") {
  Signer s;
  auto signed_cs = SignChangeset(SampleContent(s.key.public_key()), s.key);
  REQUIRE_OK(signed_cs);
  const std::string& envelope = signed_cs->envelope;
  for (size_t n = 0; n < envelope.size(); ++n) {
    Digest id;
    auto decoded = DecodeChangeset(std::string_view(envelope).substr(0, n), &id);
    INFO("prefix of " << n << " bytes");
    REQUIRE_CODE(decoded, Status::Code::kCorruption);
  }
  Digest id;
  REQUIRE_CODE(DecodeChangeset(envelope + std::string(8, '\0'), &id), Status::Code::kCorruption);
  REQUIRE_CODE(DecodeChangeset(envelope + "x", &id), Status::Code::kCorruption);
}

TEST_CASE("changeset over the size limit is refused when signing and when decoding", "[changeset]") {
  Signer s;
  ChangesetContent big = SampleContent(s.key.public_key());
  big.tables[0].rows[0].fields[0].value = Value::Text(std::string(300 * 1024, 'x'));
  REQUIRE_CODE(SignChangeset(big, s.key), Status::Code::kInvalidArgument);

  // Signed under a generous limit, it is still refused by a default decoder.
  ChangesetLimits generous;
  generous.max_envelope_bytes = 1 << 20;
  auto signed_big = SignChangeset(big, s.key, generous);
  REQUIRE_OK(signed_big);
  Digest id;
  REQUIRE_CODE(DecodeChangeset(signed_big->envelope, &id), Status::Code::kCorruption);

  // A small changeset against a smaller limit.
  auto small = SignChangeset(SampleContent(s.key.public_key()), s.key);
  REQUIRE_OK(small);
  ChangesetLimits tight;
  tight.max_envelope_bytes = small->envelope.size() - 8;
  REQUIRE_CODE(DecodeChangeset(small->envelope, &id, tight), Status::Code::kCorruption);
  tight.max_envelope_bytes = small->envelope.size();
  REQUIRE_OK(DecodeChangeset(small->envelope, &id, tight));
}

TEST_CASE("changeset signed by a key other than its author is refused", "[changeset]") {
  Signer s;
  ChangesetContent in = SampleContent(s.key.public_key());
  // The signer refuses to sign in someone else's name.
  REQUIRE_CODE(SignChangeset(in, s.other), Status::Code::kInvalidArgument);

  // A hand-built envelope: the author's body, another key's signature over its id.
  auto genuine = SignChangeset(in, s.key);
  REQUIRE_OK(genuine);
  std::string body = BodyOf(genuine->envelope);
  std::string forged = EnvelopeOf(body, s.other.SignDigest(genuine->id));
  Digest id;
  REQUIRE_CODE(DecodeChangeset(forged, &id), Status::Code::kBadSignature);
  // The same construction with the right key is accepted (the helper is sound).
  std::string rebuilt = EnvelopeOf(body, s.key.SignDigest(genuine->id));
  CHECK(rebuilt == genuine->envelope);
  REQUIRE_OK(DecodeChangeset(rebuilt, &id));
}

namespace {

kj::ArrayPtr<const kj::byte> BytesOf(std::string_view s) {
  return kj::arrayPtr(reinterpret_cast<const kj::byte*>(s.data()), s.size());
}

std::string FlatText(const kj::Array<capnp::word>& words) {
  auto bytes = words.asBytes();
  return std::string(reinterpret_cast<const char*>(bytes.begin()), bytes.size());
}

// `reader` copied into a builder whose segments hold one word each: the same
// content, serialized as a many-segment (so non-canonical) message.
template <typename T>
std::string MultiSegment(typename T::Reader reader, size_t* segments) {
  capnp::MallocMessageBuilder message(1, capnp::AllocationStrategy::FIXED_SIZE);
  message.setRoot(reader);
  *segments = message.getSegmentsForOutput().size();
  return FlatText(capnp::messageToFlatArray(message));
}

// A canonical envelope around `body`, signed by `key` over the body's digest.
std::string SignedEnvelope(const std::string& body, const SigningKey& key) {
  capnp::MallocMessageBuilder message;
  auto env = message.initRoot<wire::SignedChangeset>();
  env.setBody(BytesOf(body));
  Signature sig = key.SignDigest(ComputeDigest(kChangesetContext, body));
  env.setSignature(kj::arrayPtr(sig.data(), sig.size()));
  return SerializeCanonical(env.asReader());
}

}  // namespace

TEST_CASE("changeset: an envelope or body with the same content but not in canonical form is refused",
          "[changeset][canonical]") {
  Signer s;
  auto genuine = SignChangeset(SampleContent(s.key.public_key()), s.key);
  REQUIRE_OK(genuine);
  std::string body = BodyOf(genuine->envelope);
  // The helper is sound: canonical bytes decode to the genuine changeset.
  REQUIRE(SignedEnvelope(body, s.key) == genuine->envelope);

  auto words = kj::heapArray<capnp::word>(genuine->envelope.size() / 8);
  std::memcpy(words.begin(), genuine->envelope.data(), genuine->envelope.size());
  capnp::FlatArrayMessageReader envelope_reader(words);
  auto body_words = kj::heapArray<capnp::word>(body.size() / 8);
  std::memcpy(body_words.begin(), body.data(), body.size());
  capnp::FlatArrayMessageReader body_reader(body_words);

  SECTION("the envelope re-serialized in many segments") {
    size_t segments = 0;
    std::string multi = MultiSegment<wire::SignedChangeset>(
        envelope_reader.getRoot<wire::SignedChangeset>(), &segments);
    REQUIRE(segments > 1);
    REQUIRE(multi != genuine->envelope);
    // Same content: a plain Cap'n Proto reader sees the same body.
    auto multi_words = kj::heapArray<capnp::word>(multi.size() / 8);
    std::memcpy(multi_words.begin(), multi.data(), multi.size());
    capnp::FlatArrayMessageReader multi_reader(multi_words);
    auto multi_body = multi_reader.getRoot<wire::SignedChangeset>().getBody();
    REQUIRE(std::string(reinterpret_cast<const char*>(multi_body.begin()), multi_body.size()) == body);
    Digest id;
    REQUIRE_CODE(DecodeChangeset(multi, &id), Status::Code::kCorruption);
  }
  SECTION("the body re-serialized in many segments and signed by its author") {
    size_t segments = 0;
    std::string multi_body = MultiSegment<wire::ChangesetBody>(body_reader.getRoot<wire::ChangesetBody>(),
                                                               &segments);
    REQUIRE(segments > 1);
    REQUIRE(multi_body != body);
    // A valid signature over other bytes for the same content: a second id
    // for one changeset, which canonical form exists to rule out.
    Digest id;
    REQUIRE_CODE(DecodeChangeset(SignedEnvelope(multi_body, s.key), &id), Status::Code::kCorruption);
  }
}

TEST_CASE("changeset: a body with an unknown table class is refused as corrupt", "[changeset]") {
  Signer s;
  auto build = [&](wire::TableClass cls) {
    capnp::MallocMessageBuilder message;
    auto body = message.initRoot<wire::ChangesetBody>();
    body.setAuthor(BytesOf(s.key.public_key().view()));
    body.setScope("430123/05");
    body.setTableClass(cls);
    body.setSeq(1);
    body.setHlc((uint64_t{1718452800000} << 16) | 1);
    body.setSchemaVersion(1);
    auto table = body.initTables(1)[0];
    table.setName("consultations");
    table.initColumns(1).set(0, "topic");
    auto row = table.initRows(1)[0];
    row.setId("row-1");
    auto field = row.initFields(1)[0];
    field.setColumn(0);
    field.initValue().setText("t");
    return SignedEnvelope(SerializeCanonical(body.asReader()), s.key);
  };
  // The same construction with a known class decodes (the helper is sound).
  Digest id;
  auto known = DecodeChangeset(build(wire::TableClass::CASE), &id);
  REQUIRE_OK(known);
  CHECK(known->cls == TableClass::kCase);
  for (uint16_t raw : {uint16_t{2}, uint16_t{7}, uint16_t{0xffff}}) {
    INFO("tableClass " << raw);
    REQUIRE_CODE(DecodeChangeset(build(static_cast<wire::TableClass>(raw)), &id), Status::Code::kCorruption);
  }
}

TEST_CASE("changeset flow rule: reference data flows down, case data flows up", "[changeset][scope]") {
  const auto kRef = TableClass::kReference;
  const auto kCase = TableClass::kCase;
  // Reference changesets reach nodes at or below their scope.
  CHECK(ChangesetVisibleTo("430123", "430123", kRef));
  CHECK(ChangesetVisibleTo("430123/05", "430123", kRef));
  CHECK(ChangesetVisibleTo("430123/05/017", "430123", kRef));
  CHECK(ChangesetVisibleTo("430123", "430123/05", kRef));        // held above, to relay it down
  CHECK(ChangesetVisibleTo("430123/05", "430123/05/017", kRef));  // a township relays its village's notice
  CHECK_FALSE(ChangesetVisibleTo("430123/06", "430123/05/017", kRef));
  CHECK_FALSE(ChangesetVisibleTo("430123/06", "430123/05", kRef));
  // Case changesets reach nodes at or above their scope.
  CHECK(ChangesetVisibleTo("430123", "430123/05/017", kCase));
  CHECK(ChangesetVisibleTo("430123/05", "430123/05/017", kCase));
  CHECK(ChangesetVisibleTo("430123/05", "430123/05", kCase));
  CHECK_FALSE(ChangesetVisibleTo("430123/05/017", "430123/05", kCase));
  CHECK_FALSE(ChangesetVisibleTo("430123/05/018", "430123/05/017", kCase));
  CHECK_FALSE(ChangesetVisibleTo("430123/06", "430123/05", kCase));
  CHECK_FALSE(ChangesetVisibleTo("430123/05", "430123", kCase));
  // Ancestry is by whole components: 430123/05 is not above 430123/050.
  CHECK_FALSE(ChangesetVisibleTo("430123/05", "430123/050", kCase));
  CHECK_FALSE(ChangesetVisibleTo("430123/050", "430123/05", kRef));
  CHECK_FALSE(ChangesetVisibleTo("43012", "430123", kCase));
}

TEST_CASE("row metadata encode/decode round trip", "[row_meta]") {
  RowMeta meta;
  meta.deleted = true;
  FieldState& b = meta.Field(7);
  b.heads.push_back(Head{12, (uint64_t{1718452800000} << 16) | 9, Value::Text("王某某，身份证 4301…")});
  b.heads.push_back(Head{3, 77, Value::Integer(-123456789)});
  b.pending.push_back(DigestOf("pending-1"));
  FieldState& a = meta.Field(2);
  a.heads.push_back(Head{1, 5, std::nullopt});
  a.heads.push_back(Head{2, 6, Value::Real(-0.125)});
  a.heads.push_back(Head{4, 8, Value::Null()});
  meta.Field(9).pending.push_back(DigestOf("pending-2"));
  // Field() keeps fields sorted by column and finds existing ones.
  REQUIRE(meta.fields.size() == 3);
  CHECK(meta.fields[0].column == 2);
  CHECK(meta.fields[1].column == 7);
  CHECK(meta.fields[2].column == 9);
  CHECK(&meta.Field(7) == &meta.fields[1]);

  std::string blob = EncodeRowMeta(meta);
  auto decoded = DecodeRowMeta(blob);
  REQUIRE_OK(decoded);
  CHECK(decoded->deleted);
  REQUIRE(decoded->fields.size() == meta.fields.size());
  for (size_t i = 0; i < meta.fields.size(); ++i) {
    const auto& x = meta.fields[i];
    const auto& y = decoded->fields[i];
    CHECK(y.column == x.column);
    CHECK(y.pending == x.pending);
    REQUIRE(y.heads.size() == x.heads.size());
    for (size_t h = 0; h < x.heads.size(); ++h) {
      CHECK(y.heads[h].log_id == x.heads[h].log_id);
      CHECK(y.heads[h].hlc == x.heads[h].hlc);
      CHECK(y.heads[h].value == x.heads[h].value);
    }
  }
  CHECK(EncodeRowMeta(*decoded) == blob);
  // Deleted: every field with a head is an open conflict.
  CHECK(decoded->OpenConflicts() == 2);
  decoded->deleted = false;
  CHECK(decoded->OpenConflicts() == 2);  // two fields with several heads
  decoded->fields[1].heads.resize(1);
  CHECK(decoded->OpenConflicts() == 1);

  RowMeta empty;
  auto round = DecodeRowMeta(EncodeRowMeta(empty));
  REQUIRE_OK(round);
  CHECK_FALSE(round->deleted);
  CHECK(round->fields.empty());
}

// A format-1 blob as replicas before issue 7 stored it (docs/FORMATS.md 9),
// written out byte by byte: such replicas must keep reading their rows.
TEST_CASE("row metadata: format 1 blobs still decode", "[row_meta]") {
  static const char kBytes[] =
      "\x01\x00\x02"                          // version 1, flags 0, 2 fields
      "\x00\x01\x07\xb4\x24\x00\x00"          // column 0: head (log 7, hlc 0x1234), no value; no pending
      "\x03\x02"                              // column 3: 2 heads
      "\x05\x63\x01\x03\x03\xe7\x8e\x8b"      //   (log 5, hlc 99) value TEXT "王"
      "\x06\x64\x01\x01\x06"                  //   (log 6, hlc 100) value INTEGER 3
      "\x01";                                 // 1 pending id, its 32 bytes follow
  const std::string v1 = std::string(kBytes, sizeof kBytes - 1) + std::string(32, '\xab');
  auto meta = DecodeRowMeta(v1);
  REQUIRE_OK(meta);
  CHECK_FALSE(meta->deleted);
  REQUIRE(meta->fields.size() == 2);
  CHECK(meta->fields[0].column == 0);
  REQUIRE(meta->fields[0].heads.size() == 1);
  CHECK(meta->fields[0].heads[0].log_id == 7);
  CHECK(meta->fields[0].heads[0].hlc == 0x1234);
  CHECK_FALSE(meta->fields[0].heads[0].value.has_value());
  const FieldState& f = meta->fields[1];
  CHECK(f.column == 3);
  REQUIRE(f.heads.size() == 2);
  CHECK(f.heads[0].log_id == 5);
  CHECK(f.heads[0].hlc == 99);
  CHECK(f.heads[0].value == Value::Text("王"));
  CHECK(f.heads[1].log_id == 6);
  CHECK(f.heads[1].value == Value::Integer(3));
  REQUIRE(f.pending.size() == 1);
  CHECK(f.pending[0].view() == std::string(32, '\xab'));
  // Written again, it is format 2 and means the same.
  std::string v2 = EncodeRowMeta(*meta);
  CHECK(v2[0] == 2);
  auto again = DecodeRowMeta(v2);
  REQUIRE_OK(again);
  CHECK(EncodeRowMeta(*again) == v2);
  CHECK(again->fields[1].heads[1].log_id == 6);
  CHECK(again->fields[1].heads[1].hlc == 100);
}

// Format 2 writes the version shared by a row's fields once: a new row of
// ten fields costs about 4 bytes a field, not 13 as in format 1.
TEST_CASE("row metadata: a row written once is compact", "[row_meta]") {
  RowMeta meta;
  for (uint32_t c = 0; c < 10; ++c) meta.Field(c).heads.push_back(Head{123456, uint64_t{1718452800000} << 16, {}});
  std::string blob = EncodeRowMeta(meta);
  CHECK(blob.size() <= 16 + 10 * 4);
  auto decoded = DecodeRowMeta(blob);
  REQUIRE_OK(decoded);
  for (const auto& f : decoded->fields) {
    REQUIRE(f.heads.size() == 1);
    CHECK(f.heads[0].log_id == 123456);
    CHECK(f.heads[0].hlc == uint64_t{1718452800000} << 16);
  }
}

TEST_CASE("row metadata: malformed blobs are Corruption", "[row_meta]") {
  RowMeta meta;
  FieldState& f = meta.Field(1);
  f.heads.push_back(Head{5, 99, Value::Text("abc")});
  f.heads.push_back(Head{6, 100, Value::Integer(3)});
  f.pending.push_back(DigestOf("p"));
  std::string blob = EncodeRowMeta(meta);
  for (size_t n = 0; n < blob.size(); ++n) {
    INFO("prefix of " << n << " bytes");
    REQUIRE_CODE(DecodeRowMeta(blob.substr(0, n)), Status::Code::kCorruption);
  }
  REQUIRE_CODE(DecodeRowMeta(blob + "x"), Status::Code::kCorruption);
  std::string wrong_version = blob;
  wrong_version[0] = 3;
  REQUIRE_CODE(DecodeRowMeta(wrong_version), Status::Code::kCorruption);
  // A field count far beyond the bytes present.
  std::string huge;
  PutVarint(1, &huge);
  PutVarint(0, &huge);
  PutVarint(uint64_t{1} << 40, &huge);
  REQUIRE_CODE(DecodeRowMeta(huge), Status::Code::kCorruption);
  // A value with an unknown tag.
  std::string bad_value;
  PutVarint(1, &bad_value);
  PutVarint(0, &bad_value);
  PutVarint(1, &bad_value);  // one field
  PutVarint(0, &bad_value);  // column 0
  PutVarint(1, &bad_value);  // one head
  PutVarint(1, &bad_value);  // log id
  PutVarint(1, &bad_value);  // hlc
  bad_value.push_back(1);    // has value
  bad_value.push_back(9);    // unknown tag
  PutVarint(0, &bad_value);
  REQUIRE_CODE(DecodeRowMeta(bad_value), Status::Code::kCorruption);
  // An overlong varint (more than 64 bits of continuation).
  REQUIRE_CODE(DecodeRowMeta(std::string(11, '\x80')), Status::Code::kCorruption);
}

TEST_CASE("values: ParseValue by column type", "[values]") {
  ColumnDef integer{"satisfaction", ColumnType::kInteger, {}, std::pair<int64_t, int64_t>{1, 5}};
  ColumnDef real{"recovered_amount", ColumnType::kReal, {}, std::nullopt};
  ColumnDef text{"topic", ColumnType::kText, {}, std::nullopt};

  auto neg = ParseValue(integer, "-42");
  REQUIRE_OK(neg);
  CHECK(*neg == Value::Integer(-42));
  auto max = ParseValue(integer, "9223372036854775807");
  REQUIRE_OK(max);
  CHECK(*max == Value::Integer(std::numeric_limits<int64_t>::max()));
  REQUIRE_CODE(ParseValue(integer, "9223372036854775808"), Status::Code::kInvalidArgument);
  REQUIRE_CODE(ParseValue(integer, "abc"), Status::Code::kInvalidArgument);
  REQUIRE_CODE(ParseValue(integer, "3.5"), Status::Code::kInvalidArgument);
  REQUIRE_CODE(ParseValue(integer, "12 "), Status::Code::kInvalidArgument);
  auto null_int = ParseValue(integer, "");
  REQUIRE_OK(null_int);
  CHECK(null_int->is_null());

  auto r = ParseValue(real, "-1234.5");
  REQUIRE_OK(r);
  CHECK(*r == Value::Real(-1234.5));
  REQUIRE_CODE(ParseValue(real, "inf"), Status::Code::kInvalidArgument);
  REQUIRE_CODE(ParseValue(real, "nan"), Status::Code::kInvalidArgument);
  REQUIRE_CODE(ParseValue(real, "1e999"), Status::Code::kInvalidArgument);
  REQUIRE_CODE(ParseValue(real, "12元"), Status::Code::kInvalidArgument);

  auto t = ParseValue(text, "城关镇 — 工资拖欠");
  REQUIRE_OK(t);
  CHECK(*t == Value::Text("城关镇 — 工资拖欠"));
  auto empty_text = ParseValue(text, "");
  REQUIRE_OK(empty_text);
  CHECK(*empty_text == Value::Text(""));
}

TEST_CASE("values: CheckValueType and CheckValueAllowed", "[values]") {
  ColumnDef integer{"satisfaction", ColumnType::kInteger, {}, std::pair<int64_t, int64_t>{1, 5}};
  ColumnDef real{"recovered_amount", ColumnType::kReal, {}, std::nullopt};
  ColumnDef kind{"kind", ColumnType::kText, {"lawyer", "intern"}, std::nullopt};

  REQUIRE_OK(CheckValueType(integer, Value::Integer(3)));
  REQUIRE_OK(CheckValueType(integer, Value::Null()));
  REQUIRE_CODE(CheckValueType(integer, Value::Text("3")), Status::Code::kInvalidArgument);
  REQUIRE_CODE(CheckValueType(integer, Value::Real(3.0)), Status::Code::kInvalidArgument);
  REQUIRE_OK(CheckValueType(real, Value::Real(0.5)));
  REQUIRE_CODE(CheckValueType(real, Value::Integer(1)), Status::Code::kInvalidArgument);
  REQUIRE_CODE(CheckValueType(kind, Value::Integer(1)), Status::Code::kInvalidArgument);

  REQUIRE_OK(CheckValueAllowed(integer, Value::Integer(1)));
  REQUIRE_OK(CheckValueAllowed(integer, Value::Integer(5)));
  REQUIRE_CODE(CheckValueAllowed(integer, Value::Integer(0)), Status::Code::kInvalidArgument);
  REQUIRE_CODE(CheckValueAllowed(integer, Value::Integer(6)), Status::Code::kInvalidArgument);
  REQUIRE_OK(CheckValueAllowed(kind, Value::Text("intern")));
  REQUIRE_OK(CheckValueAllowed(kind, Value::Null()));
  REQUIRE_CODE(CheckValueAllowed(kind, Value::Text("judge")), Status::Code::kInvalidArgument);
  REQUIRE_CODE(CheckValueAllowed(kind, Value::Text("Lawyer")), Status::Code::kInvalidArgument);
}

TEST_CASE("values: EncodeValue/DecodeValue round trip", "[values]") {
  const Value values[] = {
      Value::Null(),
      Value::Integer(0),
      Value::Integer(1),
      Value::Integer(-1),
      Value::Integer(-64),
      Value::Integer(64),
      Value::Integer(std::numeric_limits<int64_t>::min()),
      Value::Integer(std::numeric_limits<int64_t>::max()),
      Value::Real(0.0),
      Value::Real(-2.75),
      Value::Real(1e300),
      Value::Text(""),
      Value::Text("(2024)法援字第0512-0001号"),
      Value::Text(std::string("nul\0inside", 10)),
      Value::Text(std::string(300, 'a')),
  };
  std::string all;
  for (const auto& v : values) {
    std::string one;
    EncodeValue(v, &one);
    std::string_view in = one;
    auto decoded = DecodeValue(&in);
    INFO("value " << v.ToDisplay());
    REQUIRE_OK(decoded);
    CHECK(*decoded == v);
    CHECK(in.empty());
    // Truncating the encoding is always detected.
    for (size_t n = 0; n < one.size(); ++n) {
      std::string_view cut = std::string_view(one).substr(0, n);
      REQUIRE_CODE(DecodeValue(&cut), Status::Code::kCorruption);
    }
    all += one;
  }
  // Values decode back to back from one buffer.
  std::string_view in = all;
  for (const auto& v : values) {
    auto decoded = DecodeValue(&in);
    REQUIRE_OK(decoded);
    CHECK(*decoded == v);
  }
  CHECK(in.empty());
  // Small negative integers stay small (zigzag).
  std::string minus_one;
  EncodeValue(Value::Integer(-1), &minus_one);
  CHECK(minus_one.size() == 2);
}

// Regression: a changeset that writes one field twice (directly, through a
// column listed twice, or a row or table appearing twice) made the merge depend
// on arrival order, so two replicas holding the same changesets could differ.
TEST_CASE("changeset: one field written twice in a changeset is refused as malformed", "[changeset]") {
  Signer s;
  auto refused = [&](const ChangesetContent& c) {
    auto signed_cs = SignChangeset(c, s.key);
    REQUIRE(signed_cs.ok());
    Digest id;
    auto decoded = DecodeChangeset(signed_cs->envelope, &id);
    INFO(decoded.status().ToString());
    return !decoded.ok() && decoded.status().code() == Status::Code::kCorruption;
  };
  SECTION("the same column twice in one row op") {
    ChangesetContent c = SampleContent(s.key.public_key());
    c.tables[0].rows[0].fields.push_back(FieldWriteOp{1, {}, false, Value::Text("second")});
    CHECK(refused(c));
  }
  SECTION("a column name listed twice") {
    ChangesetContent c = SampleContent(s.key.public_key());
    c.tables[0].columns.push_back("topic");
    c.tables[0].rows[0].fields.push_back(FieldWriteOp{3, {}, false, Value::Text("second")});
    CHECK(refused(c));
  }
  SECTION("one row twice in a table") {
    ChangesetContent c = SampleContent(s.key.public_key());
    c.tables[0].rows.push_back(c.tables[0].rows[0]);
    CHECK(refused(c));
  }
  SECTION("one table twice") {
    ChangesetContent c = SampleContent(s.key.public_key());
    c.tables.push_back(c.tables[1]);
    CHECK(refused(c));
  }
  SECTION("the sample itself decodes") {
    CHECK_FALSE(refused(SampleContent(s.key.public_key())));
  }
}

}  // namespace aidsync
