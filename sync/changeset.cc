#include "sync/changeset.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>

#include <algorithm>
#include <cstring>
#include <set>

#include "schema/canonical.h"
#include "schema/changeset.capnp.h"
#include "schema/scope.h"

namespace aidsync {
namespace {

kj::ArrayPtr<const kj::byte> Bytes(std::string_view s) {
  return kj::arrayPtr(reinterpret_cast<const kj::byte*>(s.data()), s.size());
}

std::string_view View(capnp::Data::Reader d) {
  return {reinterpret_cast<const char*>(d.begin()), d.size()};
}

void FillValue(const FieldWriteOp& op, wire::FieldWrite::Builder out) {
  auto value = out.initValue();
  if (op.tombstone) {
    value.setTombstone();
  } else if (auto* i = std::get_if<int64_t>(&op.value.v)) {
    value.setInteger(*i);
  } else if (auto* d = std::get_if<double>(&op.value.v)) {
    value.setReal(*d);
  } else if (auto* s = std::get_if<std::string>(&op.value.v)) {
    value.setText(capnp::Text::Reader(s->data(), s->size()));
  } else {
    value.setNone();
  }
}

void FillTable(const TableOpsList& table, wire::TableOps::Builder out) {
  out.setName(table.name);
  auto columns = out.initColumns(table.columns.size());
  for (size_t i = 0; i < table.columns.size(); ++i) columns.set(i, table.columns[i]);
  auto rows = out.initRows(table.rows.size());
  for (size_t r = 0; r < table.rows.size(); ++r) {
    const RowOp& row = table.rows[r];
    auto rb = rows[r];
    rb.setId(row.id);
    rb.setDeleted(row.deleted);
    auto fields = rb.initFields(row.fields.size());
    for (size_t f = 0; f < row.fields.size(); ++f) {
      const FieldWriteOp& op = row.fields[f];
      auto fb = fields[f];
      fb.setColumn(op.column);
      auto ow = fb.initOverwrites(op.overwrites.size());
      for (size_t k = 0; k < op.overwrites.size(); ++k) ow.set(k, op.overwrites[k]);
      FillValue(op, fb);
    }
  }
}

std::string EncodeBody(const ChangesetContent& c) {
  capnp::MallocMessageBuilder message;
  auto body = message.initRoot<wire::ChangesetBody>();
  body.setAuthor(Bytes(c.author.view()));
  body.setScope(c.scope);
  body.setTableClass(c.cls == TableClass::kReference ? wire::TableClass::REFERENCE : wire::TableClass::CASE);
  body.setSeq(c.seq);
  if (c.prev) body.setPrev(Bytes(c.prev->view()));
  body.setHlc(c.hlc);
  body.setSchemaVersion(c.schema_version);
  auto deps = body.initDeps(c.deps.size());
  for (size_t i = 0; i < c.deps.size(); ++i) deps.set(i, Bytes(c.deps[i].view()));
  auto tables = body.initTables(c.tables.size());
  for (size_t t = 0; t < c.tables.size(); ++t) FillTable(c.tables[t], tables[t]);
  return SerializeCanonical(body.asReader());
}

Result<Value> ReadValue(wire::FieldWrite::Value::Reader v, bool* tombstone) {
  *tombstone = false;
  switch (v.which()) {
    case wire::FieldWrite::Value::NONE: return Value::Null();
    case wire::FieldWrite::Value::INTEGER: return Value::Integer(v.getInteger());
    case wire::FieldWrite::Value::REAL: return Value::Real(v.getReal());
    case wire::FieldWrite::Value::TEXT: {
      auto t = v.getText();
      return Value::Text(std::string(t.begin(), t.size()));
    }
    case wire::FieldWrite::Value::TOMBSTONE: *tombstone = true; return Value::Null();
  }
  return Status::Corruption("changeset: unknown value kind (written by a newer version?)");
}

Result<RowOp> ReadRow(wire::RowOp::Reader rr, size_t ncolumns, size_t ndeps) {
  RowOp row;
  auto id = rr.getId();
  row.id.assign(id.begin(), id.size());
  row.deleted = rr.getDeleted();
  for (auto fr : rr.getFields()) {
    FieldWriteOp op;
    op.column = fr.getColumn();
    if (op.column >= ncolumns) return Status::Corruption("changeset: column index out of range");
    for (uint16_t k : fr.getOverwrites()) {
      if (k >= ndeps) return Status::Corruption("changeset: dependency index out of range");
      op.overwrites.push_back(k);
    }
    ASSIGN_OR_RETURN(op.value, ReadValue(fr.getValue(), &op.tombstone));
    if (op.tombstone != row.deleted)
      return Status::Corruption("changeset: tombstones belong in deleted rows only");
    row.fields.push_back(std::move(op));
  }
  // A field written twice in one changeset would make the merge depend on
  // arrival order (the second write could become a head on one node and not
  // on another), so it is malformed.
  std::vector<uint16_t> columns;
  for (const auto& f : row.fields) columns.push_back(f.column);
  std::sort(columns.begin(), columns.end());
  if (std::adjacent_find(columns.begin(), columns.end()) != columns.end())
    return Status::Corruption("changeset: a field is written twice in one row op");
  return row;
}

// Untrusted bytes of the wrong size are Corruption, not a caller's InvalidArgument.
template <typename T>
Result<T> Sized(Result<T> parsed, const char* what) {
  if (parsed.ok()) return parsed;
  return Status::Corruption(std::string("changeset: ") + what + ": " + parsed.status().message());
}

Result<ChangesetContent> ReadBody(wire::ChangesetBody::Reader body) {
  ChangesetContent c;
  ASSIGN_OR_RETURN(c.author, Sized(PublicKey::FromBytes(View(body.getAuthor())), "author"));
  auto scope = body.getScope();
  c.scope.assign(scope.begin(), scope.size());
  switch (body.getTableClass()) {
    case wire::TableClass::REFERENCE: c.cls = TableClass::kReference; break;
    case wire::TableClass::CASE: c.cls = TableClass::kCase; break;
    default: return Status::Corruption("changeset: unknown table class");
  }
  c.seq = body.getSeq();
  if (c.seq == 0) return Status::Corruption("changeset: sequence numbers start at 1");
  if (body.hasPrev() && body.getPrev().size() > 0) {
    ASSIGN_OR_RETURN(Digest prev, Sized(Digest::FromBytes(View(body.getPrev())), "prev"));
    c.prev = prev;
  }
  if ((c.seq == 1) != !c.prev.has_value())
    return Status::Corruption("changeset: only the first of a chain may lack a predecessor");
  c.hlc = body.getHlc();
  c.schema_version = body.getSchemaVersion();
  for (auto d : body.getDeps()) {
    ASSIGN_OR_RETURN(Digest dep, Sized(Digest::FromBytes(View(d)), "dependency"));
    c.deps.push_back(dep);
  }
  // Each table, each column of a table, and each row of a table appear once:
  // otherwise one field could be written twice (see ReadRow).
  std::set<std::string> table_names;
  for (auto tr : body.getTables()) {
    TableOpsList table;
    auto name = tr.getName();
    table.name.assign(name.begin(), name.size());
    if (!table_names.insert(table.name).second) return Status::Corruption("changeset: a table appears twice");
    std::set<std::string> column_names;
    for (auto col : tr.getColumns()) {
      table.columns.emplace_back(col.begin(), col.size());
      if (!column_names.insert(table.columns.back()).second)
        return Status::Corruption("changeset: a column is listed twice");
    }
    std::set<std::string> row_ids;
    for (auto rr : tr.getRows()) {
      ASSIGN_OR_RETURN(RowOp row, ReadRow(rr, table.columns.size(), c.deps.size()));
      if (!row_ids.insert(row.id).second) return Status::Corruption("changeset: a row appears twice");
      table.rows.push_back(std::move(row));
    }
    c.tables.push_back(std::move(table));
  }
  return c;
}

std::string EncodeEnvelope(std::string_view body, const Signature& sig) {
  capnp::MallocMessageBuilder message;
  auto env = message.initRoot<wire::SignedChangeset>();
  env.setBody(Bytes(body));
  env.setSignature(kj::arrayPtr(sig.data(), sig.size()));
  return SerializeCanonical(env.asReader());
}

capnp::ReaderOptions ReaderOptionsFrom(const ChangesetLimits& limits) {
  capnp::ReaderOptions options;
  options.traversalLimitInWords = limits.traversal_limit_words;
  options.nestingLimit = limits.nesting_limit;
  return options;
}

}  // namespace

namespace {
size_t TextWords(size_t bytes) { return (bytes + 1 + 7) / 8 * 8; }
}  // namespace

size_t EncodedRowBytes(const std::string& id) { return 32 + TextWords(id.size()); }

size_t EncodedFieldBytes(const Value& value, size_t overwrites) {
  size_t text = 0;
  if (const auto* s = std::get_if<std::string>(&value.v)) text = TextWords(s->size());
  return 32 + text + (overwrites ? 8 + (2 * overwrites + 7) / 8 * 8 : 0);
}

bool ChangesetVisibleTo(std::string_view node_scope, std::string_view changeset_scope, TableClass cls) {
  if (cls == TableClass::kCase) return ScopeContains(node_scope, changeset_scope);
  // Reference data flows down to the nodes below its scope, through the
  // nodes above it that relay it (a township relays a notice for one of its
  // villages); it holds no personal data.
  return ScopeContains(changeset_scope, node_scope) || ScopeContains(node_scope, changeset_scope);
}

Result<SignedChangeset> SignChangeset(const ChangesetContent& content, const SigningKey& author_key,
                                      const ChangesetLimits& limits) {
  if (!(author_key.public_key() == content.author))
    return Status::InvalidArgument("changeset author is not the signing key");
  std::string body = EncodeBody(content);
  SignedChangeset out;
  out.id = ComputeDigest(kChangesetContext, body);
  out.envelope = EncodeEnvelope(body, author_key.SignDigest(out.id));
  if (out.envelope.size() > limits.max_envelope_bytes)
    return Status::InvalidArgument("a changeset would be " + std::to_string(out.envelope.size()) +
                                   " bytes, over the limit of " +
                                   std::to_string(limits.max_envelope_bytes) + " (a value is too large)");
  return out;
}

Result<ChangesetContent> DecodeChangeset(std::string_view envelope, Digest* id,
                                         const ChangesetLimits& limits) {
  if (envelope.size() > limits.max_envelope_bytes)
    return Status::Corruption("changeset of " + std::to_string(envelope.size()) + " bytes is over the limit");
  // Both the envelope (not covered by the signature) and the body must be
  // canonical: then no byte anywhere can change without detection.
  ASSIGN_OR_RETURN(auto outer, CanonicalMessage::Parse(envelope, ReaderOptionsFrom(limits), "changeset"));
  try {
    auto env = outer->Root<wire::SignedChangeset>();
    std::string_view body = View(env.getBody());
    auto sig_reader = env.getSignature();
    if (sig_reader.size() != kSignatureBytes) return Status::Corruption("changeset signature is not 64 bytes");
    Signature sig;
    std::memcpy(sig.data(), sig_reader.begin(), sig.size());
    ASSIGN_OR_RETURN(auto inner, CanonicalMessage::Parse(body, ReaderOptionsFrom(limits), "changeset body"));
    ASSIGN_OR_RETURN(ChangesetContent content, ReadBody(inner->Root<wire::ChangesetBody>()));
    Digest digest = ComputeDigest(kChangesetContext, body);
    if (!VerifyDigestSignature(content.author, digest, sig))
      return Status::BadSignature("changeset " + digest.Hex().substr(0, 16) +
                                  " is not signed by its author " + content.author.Hex().substr(0, 16));
    *id = digest;
    return content;
  } catch (const kj::Exception& e) {
    return Status::Corruption(std::string("changeset is malformed: ") + e.getDescription().cStr());
  }
}

}  // namespace aidsync
