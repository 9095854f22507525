#include "sync/merge.h"

#include <algorithm>

#include "sync/ids.h"

namespace aidsync {
namespace {

// Binds without a copy: `value` must outlive the statement's next Run.
void BindValue(Statement& stmt, int index, const Value& value) {
  if (auto* i = std::get_if<int64_t>(&value.v)) {
    stmt.Bind(index, *i);
  } else if (auto* d = std::get_if<double>(&value.v)) {
    stmt.Bind(index, *d);
  } else if (auto* s = std::get_if<std::string>(&value.v)) {
    stmt.BindTextView(index, *s);
  } else {
    stmt.BindNull(index);
  }
}

// The domain row as it stood before this changeset, read at most once and only
// when a head's value must move from the domain table into the metadata.
class DomainRowSnapshot {
 public:
  DomainRowSnapshot(Database& db, const TableDef& table, const std::string& id)
      : db_(db), table_(table), id_(id) {}

  Result<Value> Get(uint32_t column) {
    if (!loaded_) {
      std::string sql = "SELECT ";
      for (size_t i = 0; i < table_.columns.size(); ++i)
        sql += (i ? ", \"" : "\"") + table_.columns[i].name + "\"";
      sql += " FROM \"" + table_.name + "\" WHERE id = ?";
      auto stmt = db_.Cached(sql);
      stmt->BindText(1, id_);
      ASSIGN_OR_RETURN(bool row, stmt->Step());
      values_.assign(table_.columns.size(), Value::Null());
      if (row)
        for (size_t i = 0; i < table_.columns.size(); ++i) values_[i] = ColumnValue(*stmt, static_cast<int>(i));
      loaded_ = true;
    }
    return column < values_.size() ? values_[column] : Value::Null();
  }

 private:
  Database& db_;
  const TableDef& table_;
  const std::string& id_;
  bool loaded_ = false;
  std::vector<Value> values_;
};

bool Contains(const std::vector<Digest>& v, const Digest& d) {
  return std::find(v.begin(), v.end(), d) != v.end();
}

}  // namespace

Value ColumnValue(const Statement& stmt, int i) {
  switch (stmt.ColumnType(i)) {
    case SQLITE_INTEGER: return Value::Integer(stmt.ColumnInt(i));
    case SQLITE_FLOAT: return Value::Real(stmt.ColumnDouble(i));
    case SQLITE_TEXT: return Value::Text(std::string(stmt.ColumnText(i)));
    case SQLITE_BLOB: return Value::Text(ToHex(stmt.ColumnBlob(i)));
    default: return Value::Null();
  }
}

Result<std::optional<StoredRow>> LoadRowMeta(Database& db, const std::string& table, const std::string& id) {
  auto stmt = db.Cached("SELECT scope, meta FROM aidsync_row_meta WHERE tbl = ? AND id = ?");
  stmt->BindTextView(1, table).BindTextView(2, id);
  ASSIGN_OR_RETURN(bool row, stmt->Step());
  if (!row) return std::optional<StoredRow>();
  StoredRow out;
  out.scope = std::string(stmt->ColumnText(0));
  auto meta = DecodeRowMeta(stmt->ColumnBlob(1));
  if (!meta.ok()) return meta.status().WithContext("row " + table + "/" + id);
  out.meta = std::move(meta).value();
  return std::optional<StoredRow>(std::move(out));
}

Status ChangesetApplier::Apply(const ChangesetContent& content, const Digest* id, int64_t log_id,
                               bool* complete, std::vector<TouchedRow>* touched, bool rows_are_new) {
  *complete = true;
  // Versions are named on the wire by changeset id; locally by log id.
  std::vector<std::optional<int64_t>> dep_log_ids(content.deps.size());
  for (size_t i = 0; i < content.deps.size(); ++i) {
    auto stmt = db_.Cached("SELECT id FROM aidsync_log WHERE hash = ?");
    stmt->BindBlob(1, content.deps[i].view());
    ASSIGN_OR_RETURN(bool row, stmt->Step());
    // "Known" means materialized already: everything logged before log_id.
    // Normally that is the whole log; during Rebuild it is the replay so far.
    if (row && stmt->ColumnInt(0) < log_id) dep_log_ids[i] = stmt->ColumnInt(0);
  }
  for (const auto& table : content.tables) {
    const TableDef* def = schema_.FindTable(table.name);
    if (def == nullptr) {
      *complete = false;  // kept in the log, materialized after an upgrade
      continue;
    }
    if (def->cls != content.cls)
      return Status::Unauthorized("table '" + def->name + "' is a " + TableClassName(def->cls) +
                                  " table, written in a " + TableClassName(content.cls) + " changeset");
    std::vector<int> ordinals;
    for (const auto& column : table.columns) ordinals.push_back(def->ColumnIndex(column));
    for (const auto& row : table.rows) {
      RETURN_IF_ERROR(ApplyRow(content, id, log_id, *def, ordinals, row, dep_log_ids, rows_are_new, complete));
      if (touched) touched->push_back({def, row.id});
    }
  }
  return Status::OK();
}

Status ChangesetApplier::ApplyField(const Digest* id, int64_t log_id, uint64_t hlc, const FieldWriteOp& op,
                                    const std::vector<Digest>& deps,
                                    const std::vector<std::optional<int64_t>>& dep_log_ids,
                                    FieldState* field) {
  for (uint16_t k : op.overwrites) {
    if (dep_log_ids[k]) {
      auto& heads = field->heads;
      heads.erase(std::remove_if(heads.begin(), heads.end(),
                                 [&](const Head& h) { return h.log_id == *dep_log_ids[k]; }),
                  heads.end());
    } else if (!Contains(field->pending, deps[k])) {
      field->pending.push_back(deps[k]);  // overwritten before it arrived
    }
  }
  if (op.tombstone) return Status::OK();
  // A local changeset (id unknown yet) is named in no pending list.
  if (id != nullptr) {
    auto it = std::find(field->pending.begin(), field->pending.end(), *id);
    if (it != field->pending.end()) {
      field->pending.erase(it);  // arrived after the write that overwrote it: never a head
      return Status::OK();
    }
  }
  for (const auto& h : field->heads)
    if (h.log_id == log_id) return Status::OK();
  field->heads.push_back(Head{log_id, hlc, op.value});
  return Status::OK();
}

Result<bool> ChangesetApplier::HeadLess(const Head& a, const Head& b) {
  if (a.hlc != b.hlc) return a.hlc < b.hlc;
  // Same HLC from two authors (or two forks of one): order by author key,
  // then changeset id, both read from the log. Rare.
  std::string key[2];
  const Head* heads[2] = {&a, &b};
  for (int i = 0; i < 2; ++i) {
    auto stmt = db_.Cached("SELECT author || hash FROM aidsync_log WHERE id = ?");
    stmt->Bind(1, heads[i]->log_id);
    ASSIGN_OR_RETURN(bool row, stmt->Step());
    if (!row) return Status::Corruption("row metadata names a changeset missing from the log");
    key[i] = std::string(stmt->ColumnBlob(0));
  }
  return key[0] < key[1];
}

Status ChangesetApplier::ApplyRow(const ChangesetContent& content, const Digest* id, int64_t log_id,
                                  const TableDef& table, const std::vector<int>& ordinals, const RowOp& row,
                                  const std::vector<std::optional<int64_t>>& dep_log_ids, bool row_is_new,
                                  bool* complete) {
  RETURN_IF_ERROR(ValidateRowId(row.id));
  std::optional<StoredRow> stored;
  if (!row_is_new) {
    ASSIGN_OR_RETURN(stored, LoadRowMeta(db_, table.name, row.id));
  }
  if (stored && stored->scope != content.scope) {
    // A row's scope is fixed at creation. Honest writers read it from the row,
    // so this is two stations that chose one id (legacy imports) or a
    // modified client. Refusing the whole changeset would stall its author's
    // chain for good; instead this row op is left unapplied (it stays in the
    // log) and the admin is alerted.
    auto alert = db_.Cached("INSERT OR REPLACE INTO aidsync_alerts(key, message, raised_at) VALUES (?, ?, 0)");
    const std::string id_hex = id != nullptr ? id->Hex() : std::string(64, '0');
    alert->BindText(1, "scope:" + table.name + "/" + row.id + ":" + id_hex);
    alert->BindText(2, "row " + table.name + " " + row.id + " belongs to scope " + stored->scope +
                           "; changeset " + id_hex.substr(0, 16) + " writes it in " + content.scope +
                           " and was not applied to it (two stations used one id?)");
    return alert->Run();
  }
  StoredRow state = stored ? std::move(*stored) : StoredRow{content.scope, RowMeta{}};
  RowMeta& meta = state.meta;
  const bool was_deleted = meta.deleted;

  std::vector<uint32_t> columns;
  for (const auto& op : row.fields) {
    int ordinal = ordinals[op.column];
    if (ordinal < 0) {
      *complete = false;
      continue;
    }
    if (!op.tombstone) RETURN_IF_ERROR(CheckValueType(table.columns[ordinal], op.value));
    columns.push_back(static_cast<uint32_t>(ordinal));
    RETURN_IF_ERROR(ApplyField(id, log_id, content.hlc, op, content.deps, dep_log_ids,
                               &meta.Field(static_cast<uint32_t>(ordinal))));
  }
  if (row.deleted) meta.deleted = true;

  // Keep head values in the metadata exactly while they are not the single
  // visible value of the domain table.
  DomainRowSnapshot domain(db_, table, row.id);
  for (auto& field : meta.fields) {
    bool keep_values = meta.deleted || field.heads.size() > 1;
    for (auto& head : field.heads) {
      if (keep_values && !head.value && stored && !was_deleted) {
        ASSIGN_OR_RETURN(Value v, domain.Get(field.column));
        head.value = std::move(v);
      }
    }
  }
  // Order heads with the visible one first; every replica sorts the same way.
  for (auto& field : meta.fields) {
    Status sort_status;
    std::sort(field.heads.begin(), field.heads.end(), [&](const Head& a, const Head& b) {
      auto less = HeadLess(b, a);
      if (!less.ok()) sort_status = less.status();
      return less.ok() && *less;
    });
    RETURN_IF_ERROR(sort_status);
  }

  if (meta.deleted && !was_deleted) {
    auto del = db_.Cached("DELETE FROM \"" + table.name + "\" WHERE id = ?");
    del->BindText(1, row.id);
    RETURN_IF_ERROR(del->Run());
  } else if (!meta.deleted) {
    RETURN_IF_ERROR(WriteDomainRow(table, row.id, state.scope, meta, columns));
  }
  for (auto& field : meta.fields) {
    if (!meta.deleted && field.heads.size() <= 1)
      for (auto& head : field.heads) head.value.reset();
  }

  auto save = db_.Cached(
      "INSERT OR REPLACE INTO aidsync_row_meta(tbl, id, scope, conflicts, meta) VALUES (?, ?, ?, ?, ?)");
  const std::string blob = EncodeRowMeta(meta);  // bound without a copy: outlives Run
  save->BindTextView(1, table.name).BindTextView(2, row.id).BindTextView(3, state.scope);
  save->Bind(4, static_cast<int64_t>(meta.OpenConflicts())).BindBlobView(5, blob);
  return save->Run();
}

const std::string& ChangesetApplier::UpsertSql(const TableDef& table, const std::vector<uint32_t>& columns) {
  // Built once per (table, columns): every row of an import or a sync batch
  // writes the same columns, and building the text per row cost about 4% of
  // an import (docs/PERFORMANCE.md).
  auto [it, added] = upsert_sql_.try_emplace({&table, columns});
  if (!added) return it->second;
  std::string names, params, updates;
  for (uint32_t c : columns) {
    const std::string& name = table.columns[c].name;
    names += ", \"" + name + "\"";
    params += ", ?";
    updates += std::string(updates.empty() ? "" : ", ") + "\"" + name + "\" = excluded.\"" + name + "\"";
  }
  std::string& sql = it->second;
  sql = "INSERT INTO \"" + table.name + "\"(id, scope" + names + ") VALUES (?, ?" + params + ")";
  sql += updates.empty() ? " ON CONFLICT(id) DO NOTHING" : " ON CONFLICT(id) DO UPDATE SET " + updates;
  return sql;
}

Status ChangesetApplier::WriteDomainRow(const TableDef& table, const std::string& id, const std::string& scope,
                                        RowMeta& meta, const std::vector<uint32_t>& columns) {
  // One statement text per (table, set of columns written), prepared once.
  // A winner without a stored value is the one the domain table already shows.
  std::vector<uint32_t> write;
  for (uint32_t c : columns) {
    const FieldState& field = meta.Field(c);
    if (field.heads.empty() || field.heads.front().value) write.push_back(c);
  }
  std::sort(write.begin(), write.end());
  write.erase(std::unique(write.begin(), write.end()), write.end());
  auto stmt = db_.Cached(UpsertSql(table, write));
  // Everything bound lives in the caller's row and metadata until Run.
  stmt->BindTextView(1, id).BindTextView(2, scope);
  int index = 3;
  for (uint32_t c : write) {
    const FieldState& field = meta.Field(c);
    if (field.heads.empty()) {
      stmt->BindNull(index++);
    } else {
      BindValue(*stmt, index++, *field.heads.front().value);
    }
  }
  return stmt->Run();
}

}  // namespace aidsync
