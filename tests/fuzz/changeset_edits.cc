// The changeset fuzz target's edit scripts (see changeset_edits.h).
#include "tests/fuzz/changeset_edits.h"

#include <cstring>

#include "schema/legal_aid.h"
#include "tests/fuzz/fuzz_support.h"

namespace aidsync::fuzz {
namespace {

// Scopes a hostile author might claim: the county's own, a sibling's, ones
// no node has, and malformed ones.
const char* const kScopes[] = {"430123", "430123/05", "430123/06", "430123/05/017", "430123/05/018",
                               "430124", "",          "430123/",   "430123//05",    "430123/05/017/001/02/9"};
// Names a table or column might be given: the schema's, SQLite's and the
// replica's own bookkeeping, and SQL meant to break out of an identifier.
const char* const kOddNames[] = {"id", "scope", "aidsync_log", "sqlite_master", "aidsync_row_meta", "\"; DROP TABLE cases; --",
                                 "", "名称"};

// Reads a text argument: [len][bytes], at most 64 bytes.
std::string Text(ByteReader& in) { return std::string(in.Bytes(64)); }

template <typename T>
T* Pick(std::vector<T>& items, ByteReader& in) {
  if (items.empty()) {
    in.Byte();
    return nullptr;
  }
  return &items[in.Byte() % items.size()];
}

// An id for prev or deps: none (nullopt only for prev), a base changeset's,
// a hub log entry's, or 32 input bytes.
std::optional<Digest> PickId(County& county, const std::vector<Digest>& base_ids, ByteReader& in) {
  switch (in.Byte() % 4) {
    case 0: return std::nullopt;
    case 1: return base_ids[in.Byte() % base_ids.size()];
    case 2: {
      const auto& log = county.hub_envelopes();
      const std::string& envelope = log[in.Byte() % log.size()];
      Digest id;
      if (DecodeChangeset(envelope, &id).ok()) return id;
      return std::nullopt;
    }
    default: {
      std::string raw(32, '\0');
      for (auto& c : raw) c = static_cast<char>(in.Byte());
      auto id = Digest::FromBytes(raw);
      return id.ok() ? std::optional<Digest>(*id) : std::nullopt;
    }
  }
}

std::string PickName(ByteReader& in, const std::vector<std::string>& names) {
  const size_t k = in.Byte();
  if (k < names.size()) return names[k];
  if (k - names.size() < std::size(kOddNames)) return kOddNames[k - names.size()];
  return Text(in);
}

std::vector<std::string> TableNames() {
  std::vector<std::string> names;
  for (const auto& t : LegalAidSchema().tables) names.push_back(t.name);
  return names;
}

std::vector<std::string> ColumnNames() {
  std::vector<std::string> names;
  for (const auto& t : LegalAidSchema().tables)
    for (const auto& c : t.columns) names.push_back(c.name);
  return names;
}

Value PickValue(ByteReader& in) {
  switch (in.Byte() % 4) {
    case 0: return Value::Null();
    case 1: return Value::Integer(static_cast<int64_t>(in.Uint(8)));
    case 2: {
      uint64_t bits = in.Uint(8);
      double d;
      std::memcpy(&d, &bits, sizeof d);
      return Value::Real(d);
    }
    default: return Value::Text(Text(in));
  }
}

// One edit of `cs` (the selected changeset) or of the list.
void ApplyEdit(County& county, Edit op, ByteReader& in, std::vector<ChangesetContent>& list, size_t& selected,
               const std::vector<Digest>& base_ids) {
  ChangesetContent& cs = list[selected];
  auto table = [&]() { return Pick(cs.tables, in); };
  auto row = [&]() -> RowOp* {
    TableOpsList* t = table();
    return t ? Pick(t->rows, in) : nullptr;
  };
  switch (op) {
    case kSelect: selected = in.Byte() % list.size(); break;
    case kSeq: cs.seq = in.Byte(); break;
    case kPrev: cs.prev = PickId(county, base_ids, in); break;
    case kHlc: cs.hlc = in.Uint(8); break;
    case kHlcForward: cs.hlc += in.Uint(2) << 16; break;
    case kScope: {
      const size_t k = in.Byte();
      cs.scope = k < std::size(kScopes) ? kScopes[k] : Text(in);
      break;
    }
    case kClass:
      cs.cls = cs.cls == TableClass::kCase ? TableClass::kReference : TableClass::kCase;
      break;
    case kSchemaVersion: cs.schema_version = static_cast<uint32_t>(in.Uint(4)); break;
    case kAddDep:
      if (auto id = PickId(county, base_ids, in)) cs.deps.push_back(*id);
      break;
    case kTableName:
      if (TableOpsList* t = table()) t->name = PickName(in, TableNames());
      break;
    case kColumnName:
      if (TableOpsList* t = table(); t && !t->columns.empty())
        t->columns[in.Byte() % t->columns.size()] = PickName(in, ColumnNames());
      break;
    case kRowId:
      if (RowOp* r = row()) {
        const std::vector<std::string> ids = {county.case_id(), county.senior_lawyer_id()};
        r->id = PickName(in, ids);
      }
      break;
    case kToggleDeleted:
      if (RowOp* r = row()) {
        r->deleted = !r->deleted;
        if (in.Byte() % 2)
          for (auto& f : r->fields) f.tombstone = r->deleted;
      }
      break;
    case kValue:
      if (RowOp* r = row(); r && !r->fields.empty()) r->fields[in.Byte() % r->fields.size()].value = PickValue(in);
      break;
    case kAddOverwrite:
      if (RowOp* r = row(); r && !r->fields.empty())
        r->fields[in.Byte() % r->fields.size()].overwrites.push_back(in.Byte());
      break;
    case kAddField:
      if (RowOp* r = row()) r->fields.push_back(FieldWriteOp{in.Byte(), {}, r->deleted, PickValue(in)});
      break;
    case kDuplicateRow:
      if (TableOpsList* t = table(); t && !t->rows.empty()) t->rows.push_back(t->rows[in.Byte() % t->rows.size()]);
      break;
    case kAuthor: {
      const SigningKey* keys[] = {&county.KeyOf(NodeId::kHub), &county.KeyOf(NodeId::k0512),
                                  &county.KeyOf(NodeId::k0513), &county.KeyOf(NodeId::k0514), &county.stranger()};
      cs.author = keys[in.Byte() % std::size(keys)]->public_key();
      break;
    }
    case kClone:  // changes the list itself: RunEditScript does it
    case kEditCount: break;
  }
}

}  // namespace

const SigningKey* KeyFor(County& county, const PublicKey& author) {
  for (NodeId node : {NodeId::kHub, NodeId::k0512, NodeId::k0513, NodeId::k0514})
    if (county.KeyOf(node).public_key() == author) return &county.KeyOf(node);
  if (county.stranger().public_key() == author) return &county.stranger();
  return nullptr;
}

std::vector<ChangesetContent> BaseContents(County& county) {
  static const std::vector<ChangesetContent> base = [&county] {
    std::vector<ChangesetContent> out;
    for (const auto& envelope : county.unsynced_envelopes()) {
      Digest id;
      auto content = DecodeChangeset(envelope, &id);
      if (!content.ok()) Fail("the county's own changeset does not decode: " + content.status().ToString());
      out.push_back(*content);
    }
    return out;
  }();
  return base;
}

std::vector<std::string> RunEditScript(County& county, std::string_view script) {
  static const std::vector<Digest> base_ids = [&county] {
    std::vector<Digest> ids;
    for (const auto& envelope : county.unsynced_envelopes()) {
      Digest id;
      (void)DecodeChangeset(envelope, &id);
      ids.push_back(id);
    }
    return ids;
  }();
  std::vector<ChangesetContent> list = BaseContents(county);
  size_t selected = 0;
  ByteReader in(script);
  while (!in.empty()) {
    const auto op = static_cast<Edit>(in.Byte() % kEditCount);
    if (op == kClone) {
      if (list.size() < 32) {
        ChangesetContent copy = list[selected];
        list.push_back(std::move(copy));
        selected = list.size() - 1;
      }
      continue;
    }
    ApplyEdit(county, op, in, list, selected, base_ids);
  }
  std::vector<std::string> envelopes;
  for (const auto& content : list) {
    const SigningKey* key = KeyFor(county, content.author);
    if (key == nullptr) continue;
    auto signed_cs = SignChangeset(content, *key);
    if (signed_cs.ok()) envelopes.push_back(std::move(signed_cs->envelope));
  }
  return envelopes;
}

}  // namespace aidsync::fuzz
