#include "sync/local_write.h"

#include <algorithm>
#include <ctime>

#include "schema/scope.h"
#include "sync/domain_rules.h"
#include "sync/ids.h"
#include "sync/replica.h"

namespace aidsync {
namespace {

std::string ColumnList(const TableDef& table) {
  std::string out;
  for (const auto& c : table.columns) out += (out.empty() ? "" : ", ") + c.name;
  return out;
}

// Cuts a changeset before its dependency or column indexes would overflow u16.
constexpr size_t kMaxDepsPerChangeset = 60000;

}  // namespace

LocalTransaction::LocalTransaction(Replica& replica, std::unique_ptr<Transaction> tx)
    : replica_(replica), tx_(std::move(tx)), id_random_(*replica.env_.random) {}

LocalTransaction::~LocalTransaction() = default;  // tx_ rolls back unless committed

Result<std::string> LocalTransaction::Put(const std::string& table, std::optional<std::string> id,
                                          std::optional<std::string> scope,
                                          const std::vector<std::pair<std::string, std::string>>& text_values) {
  const TableDef* def = replica_.schema_.FindTable(table);
  if (def == nullptr) return Status::NotFound("table '" + table + "' is not in the schema");
  std::vector<std::pair<std::string, Value>> values;
  values.reserve(text_values.size());
  for (const auto& [column, text] : text_values) {
    int index = def->ColumnIndex(column);
    if (index < 0)
      return Status::InvalidArgument("table '" + table + "' has no column '" + column +
                                     "' (columns: " + ColumnList(*def) + ")");
    ASSIGN_OR_RETURN(Value v, ParseValue(def->columns[index], text));
    values.emplace_back(column, std::move(v));
  }
  return PutValues(table, std::move(id), std::move(scope), std::move(values));
}

Result<std::string> LocalTransaction::PutValues(const std::string& table, std::optional<std::string> id,
                                                std::optional<std::string> scope,
                                                std::vector<std::pair<std::string, Value>> values) {
  if (failed_) return Status::InvalidArgument("the transaction already failed");
  const NodeIdentity& node = replica_.identity_;
  const TableDef* def = replica_.schema_.FindTable(table);
  if (def == nullptr) return Status::NotFound("table '" + table + "' is not in the schema");
  if (def->cls == TableClass::kReference && node.role != Role::kHub)
    return Status::Unauthorized("table '" + table + "' is reference data: only the county hub writes it");

  std::vector<std::pair<uint32_t, Value>> typed;
  typed.reserve(values.size() + 1);  // + a notice number
  bool has_notice = false;
  std::optional<std::string> typed_notice;
  for (auto& [column, value] : values) {
    int index = def->ColumnIndex(column);
    if (index < 0)
      return Status::InvalidArgument("table '" + table + "' has no column '" + column +
                                     "' (columns: " + ColumnList(*def) + ")");
    const ColumnDef& col = def->columns[index];
    RETURN_IF_ERROR(CheckValueType(col, value));
    RETURN_IF_ERROR(CheckValueAllowed(col, value));
    if (col.name == "notice_number") {
      // An empty cell is no number: a new case then gets one (DESIGN 3).
      if (value.is_null() || value.ToDisplay().empty()) continue;
      has_notice = true;
      typed_notice = value.ToDisplay();  // checked once the row is known, below
    }
    typed.emplace_back(static_cast<uint32_t>(index), std::move(value));
  }
  size_t row_bytes = 0;
  for (const auto& [index, value] : typed) row_bytes += EncodedFieldBytes(value, 1) + kEncodedDepBytes;
  if (row_bytes > kTargetBodyBytes / 2)
    return Status::InvalidArgument("the row's values total " + std::to_string(row_bytes) +
                                   " bytes; a row may hold at most " + std::to_string(kTargetBodyBytes / 2));

  std::string row_id;
  if (id) {
    RETURN_IF_ERROR(ValidateRowId(*id));
    row_id = *id;
  } else {
    row_id = NewRowId(*replica_.env_.clock, id_random_);
  }

  // A fresh UUIDv7 names no stored row (74 random bits): no lookup.
  std::optional<StoredRow> stored;
  if (id) {
    ASSIGN_OR_RETURN(stored, LoadRowMeta(*replica_.db_, table, row_id));
  }
  bool is_new = !stored && pending_rows_.count({table, row_id}) == 0;
  std::string row_scope;
  if (auto it = pending_rows_.find({table, row_id}); it != pending_rows_.end()) {
    row_scope = it->second.first;
    // Deleted earlier in this transaction: a write after it would put values
    // into a deleted row op, which every receiver refuses as malformed.
    const Pending& p = pending_.at(it->second);
    for (const auto& t : p.content.tables) {
      auto r = p.row_index.find({table, row_id});
      if (t.name == table && r != p.row_index.end() && t.rows[r->second].deleted)
        return Status::InvalidArgument("row " + table + "/" + row_id + " was deleted; deletes are permanent");
    }
  } else if (stored) {
    if (stored->meta.deleted)
      return Status::InvalidArgument("row " + table + "/" + row_id + " was deleted; deletes are permanent");
    row_scope = stored->scope;
  } else {
    row_scope = scope.value_or(node.scope);
  }
  if (scope && *scope != row_scope)
    return Status::InvalidArgument("row " + table + "/" + row_id + " belongs to scope " + row_scope +
                                   "; a row's scope never changes (delete it and create a new row)");
  RETURN_IF_ERROR(ValidateScope(row_scope));
  RETURN_IF_ERROR(CheckMayWrite(*def, row_scope));

  if (typed_notice) {
    ASSIGN_OR_RETURN(bool write, TakeTypedNoticeNumber(row_id, is_new, *typed_notice));
    if (!write) {
      // The row already holds this number: writing it again would change nothing.
      const auto column = static_cast<uint32_t>(def->ColumnIndex("notice_number"));
      typed.erase(std::remove_if(typed.begin(), typed.end(), [&](const auto& t) { return t.first == column; }),
                  typed.end());
    }
  }
  if (is_new && table == "cases" && !has_notice) {
    std::optional<std::string> assigned_at;
    for (const auto& [index, value] : typed)
      if (def->columns[index].name == "assigned_at" && !value.is_null()) assigned_at = value.ToDisplay();
    ASSIGN_OR_RETURN(std::string notice, NextNoticeNumber(assigned_at));
    NoteNoticeNumber(notice, row_id);
    typed.emplace_back(static_cast<uint32_t>(def->ColumnIndex("notice_number")), Value::Text(notice));
  }
  RETURN_IF_ERROR(AddRowOp(*def, row_scope, row_id, false, std::move(typed), std::move(stored), /*fresh_id=*/!id));
  return row_id;
}

Status LocalTransaction::Delete(const std::string& table, const std::string& id) {
  if (failed_) return Status::InvalidArgument("the transaction already failed");
  const TableDef* def = replica_.schema_.FindTable(table);
  if (def == nullptr) return Status::NotFound("table '" + table + "' is not in the schema");
  if (pending_rows_.count({table, id})) {
    // The row was written earlier in this transaction: seal first so the
    // delete covers that write too.
    for (auto& [key, pending] : pending_) RETURN_IF_ERROR(Seal(pending));
  }
  ASSIGN_OR_RETURN(std::optional<StoredRow> stored, LoadRowMeta(*replica_.db_, table, id));
  if (!stored || stored->meta.deleted)
    return Status::NotFound("no row " + table + "/" + id);
  RETURN_IF_ERROR(CheckMayWrite(*def, stored->scope));
  const std::string scope = stored->scope;
  return AddRowOp(*def, scope, id, true, {}, std::move(stored));
}

Status LocalTransaction::CheckMayWrite(const TableDef& table, const std::string& scope) const {
  if (failed_) return Status::InvalidArgument("the transaction already failed");
  const NodeIdentity& node = replica_.identity_;
  if (table.cls == TableClass::kReference && node.role != Role::kHub)
    return Status::Unauthorized("table '" + table.name + "' is reference data: only the county hub writes it");
  if (!ScopeContains(node.scope, scope))
    return Status::Unauthorized("scope " + scope + " is outside this node's jurisdiction " + node.scope);
  return Status::OK();
}

Status LocalTransaction::Resolve(const std::string& table, const std::string& id, const std::string& column,
                                 const std::string& text_value) {
  const TableDef* def = replica_.schema_.FindTable(table);
  if (def == nullptr) return Status::NotFound("table '" + table + "' is not in the schema");
  ASSIGN_OR_RETURN(std::optional<StoredRow> stored, LoadRowMeta(*replica_.db_, table, id));
  if (!stored) return Status::NotFound("no row " + table + "/" + id);
  if (stored->meta.deleted) {
    RETURN_IF_ERROR(CheckMayWrite(*def, stored->scope));
    const std::string scope = stored->scope;
    return AddRowOp(*def, scope, id, true, {}, std::move(stored));
  }
  return Put(table, id, std::nullopt, {{column, text_value}}).status();
}

Result<LocalTransaction::Pending*> LocalTransaction::PendingFor(const std::string& scope, TableClass cls) {
  auto [it, inserted] = pending_.try_emplace(ChainKey{scope, cls});
  if (inserted) {
    it->second.content.author = replica_.identity_.key;
    it->second.content.scope = scope;
    it->second.content.cls = cls;
  }
  return &it->second;
}

Result<Digest> LocalTransaction::LogHash(int64_t log_id) {
  auto stmt = replica_.db_->Cached("SELECT hash FROM aidsync_log WHERE id = ?");
  stmt->Bind(1, log_id);
  ASSIGN_OR_RETURN(bool row, stmt->Step());
  if (!row) return Status::Corruption("row metadata names changeset #" + std::to_string(log_id) +
                                      ", which is not in the log");
  return Digest::FromBytes(stmt->ColumnBlob(0));
}

Status LocalTransaction::AddRowOp(const TableDef& table, const std::string& scope, const std::string& id,
                                  bool deleted, std::vector<std::pair<uint32_t, Value>> values,
                                  std::optional<StoredRow> stored, bool fresh_id) {
  ASSIGN_OR_RETURN(Pending * p, PendingFor(scope, table.cls));
  // Seal first if this row could push the changeset past its target size;
  // PutValues bounds a row at half the target, so every row fits a fresh one.
  size_t row_bytes = EncodedRowBytes(id);
  for (const auto& [column, value] : values) row_bytes += EncodedFieldBytes(value, 1) + kEncodedDepBytes;
  if (deleted) row_bytes += table.columns.size() * (EncodedFieldBytes(Value::Null(), 4) + 4 * kEncodedDepBytes);
  if (p->content.deps.size() > kMaxDepsPerChangeset || p->approx_bytes + row_bytes > kTargetBodyBytes) {
    RETURN_IF_ERROR(Seal(*p));
    // Sealing may have materialized this very row (written earlier in the
    // transaction): its metadata is read again.
    ASSIGN_OR_RETURN(stored, LoadRowMeta(*replica_.db_, table.name, id));
  }

  // The table's entry in this changeset, with its column dictionary.
  auto& tables = p->content.tables;
  auto table_it = std::find_if(tables.begin(), tables.end(),
                               [&](const TableOpsList& t) { return t.name == table.name; });
  if (table_it == tables.end()) {
    tables.push_back(TableOpsList{table.name, {}, {}});
    for (const auto& c : table.columns) tables.back().columns.push_back(c.name);
    table_it = std::prev(tables.end());
  }
  auto [row_it, new_row] = p->row_index.try_emplace({table.name, id}, table_it->rows.size());
  if (new_row) {
    if (!fresh_id) p->only_new_rows = false;
    table_it->rows.push_back(RowOp{id, deleted, {}});
    p->approx_bytes += EncodedRowBytes(id);
    pending_rows_[{table.name, id}] = ChainKey{scope, table.cls};
  }
  RowOp& op = table_it->rows[row_it->second];

  // Every current head of a field is overwritten by a local write.
  auto overwrites_of = [&](uint32_t column) -> Result<std::vector<uint16_t>> {
    std::vector<uint16_t> out;
    if (!stored) return out;
    for (const auto& field : stored->meta.fields) {
      if (field.column != column) continue;
      for (const auto& head : field.heads) {
        ASSIGN_OR_RETURN(Digest hash, LogHash(head.log_id));
        auto [dep, added] = p->dep_index.try_emplace(hash, static_cast<uint16_t>(p->content.deps.size()));
        if (added) {
          p->content.deps.push_back(hash);
          p->approx_bytes += kEncodedDepBytes;
        }
        out.push_back(dep->second);
      }
    }
    return out;
  };

  if (deleted) {
    // Already deleted in this changeset (resolve twice on a deleted row): its
    // tombstones cover the same heads; writing them again would be malformed.
    if (!new_row) return Status::OK();
    for (const auto& field : stored->meta.fields) {
      if (field.heads.empty()) continue;
      FieldWriteOp fw;
      fw.column = static_cast<uint16_t>(field.column);
      fw.tombstone = true;
      ASSIGN_OR_RETURN(fw.overwrites, overwrites_of(field.column));
      p->approx_bytes += EncodedFieldBytes(fw.value, fw.overwrites.size());
      op.fields.push_back(std::move(fw));
    }
    return Status::OK();
  }
  op.fields.reserve(op.fields.size() + values.size());
  for (auto& [column, value] : values) {
    // A plain copy: clang 14 cannot capture a structured binding.
    const auto index = column;
    auto existing = std::find_if(op.fields.begin(), op.fields.end(),
                                 [&](const FieldWriteOp& f) { return f.column == index; });
    if (existing != op.fields.end()) {
      p->approx_bytes += EncodedFieldBytes(value, 0);
      existing->value = std::move(value);  // written twice in one transaction: the last value wins
      continue;
    }
    FieldWriteOp fw;
    fw.column = static_cast<uint16_t>(column);
    ASSIGN_OR_RETURN(fw.overwrites, overwrites_of(column));
    p->approx_bytes += EncodedFieldBytes(value, fw.overwrites.size());
    fw.value = std::move(value);
    op.fields.push_back(std::move(fw));
  }
  return Status::OK();
}

Status LocalTransaction::Seal(Pending& p) {
  Status st = SealOnce(p);
  // A seal that failed halfway may have logged its changeset: the
  // transaction can only be rolled back now, or a later Commit would seal
  // the same sequence number again and fork this node's own chain.
  if (!st.ok()) failed_ = true;
  return st;
}

Status LocalTransaction::SealOnce(Pending& p) {
  if (p.content.tables.empty()) return Status::OK();
  Database& db = *replica_.db_;
  ChangesetContent& c = p.content;
  {
    auto chain = db.Cached("SELECT seq, hash FROM aidsync_chains WHERE author = ? AND scope = ? AND class = ?");
    chain->BindBlob(1, c.author.view()).BindText(2, c.scope).Bind(3, static_cast<int64_t>(c.cls));
    ASSIGN_OR_RETURN(bool row, chain->Step());
    c.seq = row ? static_cast<uint64_t>(chain->ColumnInt(0)) + 1 : 1;
    c.prev.reset();
    if (row) {
      ASSIGN_OR_RETURN(Digest prev, Digest::FromBytes(chain->ColumnBlob(1)));
      c.prev = prev;
    }
  }
  ASSIGN_OR_RETURN(c.hlc, replica_.NextLocalHlc());
  c.schema_version = replica_.schema_.version;
  RETURN_IF_ERROR(replica_.AppendAndApplyLocal(c, p.only_new_rows, &touched_).status());
  ++sealed_;
  for (const auto& [key, index] : p.row_index) pending_rows_.erase(key);
  // Start the chain's next changeset: same author, scope and class.
  Pending next;
  next.content.author = c.author;
  next.content.scope = c.scope;
  next.content.cls = c.cls;
  p = std::move(next);
  return Status::OK();
}

Result<bool> LocalTransaction::TakeTypedNoticeNumber(const std::string& id, bool is_new, const std::string& notice) {
  // The number the row holds now, if any: given earlier in this transaction,
  // or stored.
  std::optional<std::string> held;
  if (auto it = case_notice_.find(id); it != case_notice_.end()) {
    held = it->second;
  } else if (!is_new) {
    auto stmt = replica_.db_->Cached("SELECT notice_number FROM cases WHERE id = ?");
    stmt->BindText(1, id);
    ASSIGN_OR_RETURN(bool row, stmt->Step());
    if (row && !stmt->IsNull(0) && !stmt->ColumnText(0).empty()) held = std::string(stmt->ColumnText(0));
    stmt->Reset();
  }
  if (held && *held == notice) return false;
  if (held)
    return Status::InvalidArgument("notice_number of cases " + id + " is " + *held +
                                   "; an issued notice number never changes");
  RETURN_IF_ERROR(replica_.CheckOwnNoticeNumber(notice));
  std::optional<std::string> other;
  if (auto it = notice_case_.find(notice); it != notice_case_.end() && it->second != id) {
    other = it->second;
  } else {
    ASSIGN_OR_RETURN(other, replica_.NoticeNumberHolder(notice, id));
  }
  if (other)
    return Status::InvalidArgument("notice_number " + notice + " is already used by cases " + *other +
                                   "; a notice number is never used twice, even after its case is deleted");
  // Used now: the counter moves past it so it is never issued again.
  RETURN_IF_ERROR(replica_.AdvanceNoticeCounter(notice));
  NoteNoticeNumber(notice, id);
  return true;
}

void LocalTransaction::NoteNoticeNumber(const std::string& notice, const std::string& id) {
  notice_case_[notice] = id;
  case_notice_[id] = notice;
}

Result<std::string> LocalTransaction::NextNoticeNumber(const std::optional<std::string>& assigned_at) {
  int year = 0;
  if (assigned_at && assigned_at->size() >= 4) {
    for (int i = 0; i < 4; ++i) {
      char ch = (*assigned_at)[i];
      if (ch < '0' || ch > '9') { year = 0; break; }
      year = year * 10 + (ch - '0');
    }
  }
  if (year == 0) {
    std::time_t now = static_cast<std::time_t>(replica_.env_.clock->NowMillis() / 1000);
    std::tm tm{};
    localtime_r(&now, &tm);
    year = tm.tm_year + 1900;
  }
  Database& db = *replica_.db_;
  // `last` is the last number issued for the year; the write lock taken by
  // BEGIN IMMEDIATE keeps two processes from issuing the same one. Only this
  // station's own numbers move it: a number under this code that another
  // author wrote is not passed over (a hostile station could otherwise use
  // up the year's numbers); the case holding it shares the number, and the
  // duplicate alert raised at commit names both.
  auto issue = db.Cached(
      "INSERT INTO aidsync_notice_counters(year, last) VALUES (?, 1) "
      "ON CONFLICT(year) DO UPDATE SET last = last + 1 RETURNING last");
  issue->Bind(1, static_cast<int64_t>(year));
  ASSIGN_OR_RETURN(bool row, issue->Step());
  if (!row) return Status::IOError("could not allocate a notice number");
  int64_t n = issue->ColumnInt(0);
  issue->Reset();
  return FormatNoticeNumber(year, replica_.identity_.code, n);
}

Result<CommitSummary> LocalTransaction::Commit() {
  if (failed_) return Status::InvalidArgument("the transaction already failed");
  failed_ = true;  // until proven otherwise: a failed commit leaves nothing
  auto result = [&]() -> Result<CommitSummary> {
    for (auto& [key, pending] : pending_) RETURN_IF_ERROR(Seal(pending));
    for (const auto& [notice, id] : notice_case_) {
      RETURN_IF_ERROR(replica_.RegisterNoticeNumber(notice, id));
      RETURN_IF_ERROR(replica_.RefreshNoticeDuplicate(notice));
    }
    CommitSummary summary;
    summary.changesets = sealed_;
    summary.rows = static_cast<int>(touched_.size());
    ASSIGN_OR_RETURN(std::vector<RuleViolation> violations,
                     CheckRules(*replica_.db_, replica_.schema_, touched_));
    for (const auto& v : violations) {
      std::string text = v.table + " " + v.id + ": " + v.message;
      if (v.refuse) return Status::RuleViolation(text);
      summary.alerts.push_back(text);
    }
    RETURN_IF_ERROR(tx_->Commit());
    return summary;
  }();
  if (result.ok()) {
    failed_ = false;
  } else {
    tx_.reset();  // roll back now, not when this object dies: nothing remains, the lock is free
  }
  return result;
}

}  // namespace aidsync
