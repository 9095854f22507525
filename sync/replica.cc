// Replica reads: rows, queries, conflicts, status, and the log for senders.
#include "sync/replica.h"

#include "sync/packing.h"

#include <algorithm>
#include <cctype>
#include <set>
#include <string_view>

#include "schema/scope.h"
#include "sync/domain_rules.h"

namespace aidsync {
namespace {

std::string SelectRowSql(const TableDef& table) {
  std::string sql = "SELECT id, scope";
  for (const auto& c : table.columns) sql += ", \"" + c.name + "\"";
  return sql + " FROM \"" + table.name + "\"";
}

Row ReadRow(const TableDef& table, const Statement& stmt) {
  Row row;
  row.emplace_back("id", ColumnValue(stmt, 0));
  row.emplace_back("scope", ColumnValue(stmt, 1));
  for (size_t i = 0; i < table.columns.size(); ++i)
    row.emplace_back(table.columns[i].name, ColumnValue(stmt, static_cast<int>(i) + 2));
  return row;
}

}  // namespace

Result<std::optional<Row>> Replica::Get(const std::string& table, const std::string& id) {
  const TableDef* def = schema_.FindTable(table);
  if (def == nullptr) return Status::NotFound("table '" + table + "' is not in the schema");
  auto stmt = db_->Cached(SelectRowSql(*def) + " WHERE id = ?");
  stmt->BindText(1, id);
  ASSIGN_OR_RETURN(bool found, stmt->Step());
  if (!found) return std::optional<Row>();
  return std::optional<Row>(ReadRow(*def, *stmt));
}

Result<std::vector<Row>> Replica::List(const std::string& table) {
  const TableDef* def = schema_.FindTable(table);
  if (def == nullptr) return Status::NotFound("table '" + table + "' is not in the schema");
  ASSIGN_OR_RETURN(Statement stmt, db_->Prepare(SelectRowSql(*def) + " ORDER BY id"));
  std::vector<Row> rows;
  while (true) {
    ASSIGN_OR_RETURN(bool found, stmt.Step());
    if (!found) break;
    rows.push_back(ReadRow(*def, stmt));
  }
  return rows;
}

namespace {

// What `query` may do, decided by SQLite's authorizer while the statement
// compiles: read this replica's own tables (the main database; no ATTACH),
// call functions but not those that reach past the database (native
// pointers, files, extensions), and run the pragmas that only read the
// schema or check the file (an admin's `PRAGMA integrity_check`). Nothing else:
// no writes, no PRAGMA that sets anything, no transactions.
struct QueryAuthorizer {
  std::string refused;  // what was refused first, for the error message

  static int Decide(void* self, int action, const char* a1, const char* a2, const char* db, const char*) {
    auto* auth = static_cast<QueryAuthorizer*>(self);
    std::string why;
    switch (action) {
      case SQLITE_SELECT:
      case SQLITE_RECURSIVE:
        return SQLITE_OK;
      case SQLITE_READ:
        if (db == nullptr || std::string_view(db) == "main") return SQLITE_OK;
        why = "reading database '" + std::string(db) + "'";
        break;
      case SQLITE_FUNCTION: {
        static const std::set<std::string, std::less<>> kRefused = {
            "fts3_tokenizer", "load_extension", "readfile", "writefile", "edit"};
        std::string name = a2 != nullptr ? a2 : "";
        for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (kRefused.count(name) == 0) return SQLITE_OK;
        why = "the function " + name + "()";
        break;
      }
      case SQLITE_PRAGMA: {
        static const std::set<std::string, std::less<>> kSchemaPragmas = {
            "table_info",       "table_xinfo",     "index_list",     "index_info",
            "index_xinfo",      "foreign_key_list", "integrity_check", "quick_check"};
        std::string name = a1 != nullptr ? a1 : "";
        for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (kSchemaPragmas.count(name) != 0 && (db == nullptr || std::string_view(db) == "main")) return SQLITE_OK;
        why = "PRAGMA " + name;
        break;
      }
      case SQLITE_UPDATE:
        // SQLite asks this of sqlite_master's columns when a statement first
        // uses an eponymous virtual table (json_each, pragma_table_info). A
        // real UPDATE of sqlite_master is still refused: it is no read-only
        // statement (checked below), writable_schema is refused above, the
        // connection is read-only and defensive.
        if (a1 != nullptr && std::string_view(a1) == "sqlite_master" && db != nullptr &&
            std::string_view(db) == "main")
          return SQLITE_OK;
        why = "statements that change anything";
        break;
      case SQLITE_ATTACH:
      case SQLITE_DETACH:
        why = "ATTACH and DETACH";
        break;
      default:
        why = "statements that change anything";
        break;
    }
    if (auth->refused.empty()) auth->refused = why;
    return SQLITE_DENY;
  }
};

// Bounds of the query connection: no value or row over 16 MiB (a value is
// at most 64 KiB), no statement over 1 MiB, nothing attached.
constexpr int kQueryMaxLength = 16 << 20;
constexpr int kQueryMaxSqlLength = 1 << 20;

}  // namespace

Result<QueryResult> Replica::Query(const std::string& sql) {
  // A read-only connection: even a statement that slipped past the checks
  // below could not write.
  Database::Options options;
  options.read_only = true;
  options.vfs = env_.sqlite_vfs;
  ASSIGN_OR_RETURN(std::unique_ptr<Database> ro, Database::Open(dir_ + "/replica.db", options));
  // Hardened, since the SQL is anyone's: defensive mode (no writable_schema,
  // no raw page writes), no fts3_tokenizer pointers, no extensions, no
  // functions from the schema trusted, and the authorizer above.
  sqlite3* db = ro->raw();
  for (auto [op, on] : {std::pair{SQLITE_DBCONFIG_DEFENSIVE, 1}, std::pair{SQLITE_DBCONFIG_ENABLE_FTS3_TOKENIZER, 0},
                        std::pair{SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0}, std::pair{SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0}}) {
    if (sqlite3_db_config(db, op, on, nullptr) != SQLITE_OK) return ro->LastError("query: configuring the connection");
  }
  sqlite3_limit(db, SQLITE_LIMIT_LENGTH, kQueryMaxLength);
  sqlite3_limit(db, SQLITE_LIMIT_SQL_LENGTH, kQueryMaxSqlLength);
  sqlite3_limit(db, SQLITE_LIMIT_ATTACHED, 0);
  QueryAuthorizer authorizer;
  sqlite3_set_authorizer(db, &QueryAuthorizer::Decide, &authorizer);
  sqlite3_stmt* raw = nullptr;
  const char* tail = nullptr;
  int rc = sqlite3_prepare_v2(db, sql.c_str(), static_cast<int>(sql.size()), &raw, &tail);
  if (rc != SQLITE_OK && !authorizer.refused.empty())
    return Status::InvalidArgument("query may only read this node's tables; refused: " + authorizer.refused);
  if (rc != SQLITE_OK) return StatusFromSqlite(db, rc, "query");
  Statement stmt(ro.get(), raw);
  if (raw == nullptr) return Status::InvalidArgument("query is empty");
  for (const char* p = tail; p && *p; ++p) {
    if (!std::isspace(static_cast<unsigned char>(*p)) && *p != ';')
      return Status::InvalidArgument("query must be exactly one statement");
  }
  if (!sqlite3_stmt_readonly(raw))
    return Status::InvalidArgument("query must be read-only: use put, delete or import to change records");
  QueryResult result;
  for (int i = 0; i < stmt.ColumnCount(); ++i) result.columns.emplace_back(stmt.ColumnName(i));
  while (true) {
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    std::vector<Value> values;
    for (int i = 0; i < stmt.ColumnCount(); ++i) values.push_back(ColumnValue(stmt, i));
    result.rows.push_back(std::move(values));
  }
  return result;
}

Result<std::string> Replica::AuthorName(std::string_view author_key) {
  auto stmt = db_->Cached("SELECT name FROM aidsync_certificates WHERE node_key = ?");
  stmt->BindBlob(1, author_key);
  ASSIGN_OR_RETURN(bool row, stmt->Step());
  if (row) return std::string(stmt->ColumnText(0));
  return "key " + ToHex(author_key).substr(0, 16);
}

Result<std::vector<Conflict>> Replica::Conflicts() {
  ASSIGN_OR_RETURN(Statement stmt, db_->Prepare(
      "SELECT tbl, id, meta FROM aidsync_row_meta WHERE conflicts > 0 ORDER BY tbl, id"));
  std::vector<Conflict> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    std::string table(stmt.ColumnText(0));
    const TableDef* def = schema_.FindTable(table);
    ASSIGN_OR_RETURN(RowMeta meta, DecodeRowMeta(stmt.ColumnBlob(2)));
    if (def == nullptr) continue;
    for (const auto& field : meta.fields) {
      bool open = meta.deleted ? !field.heads.empty() : field.heads.size() > 1;
      if (!open || field.column >= def->columns.size()) continue;
      Conflict c;
      c.table = table;
      c.id = std::string(stmt.ColumnText(1));
      c.column = def->columns[field.column].name;
      c.row_deleted = meta.deleted;
      for (size_t i = 0; i < field.heads.size(); ++i) {
        const Head& head = field.heads[i];
        auto log = db_->Cached("SELECT author, hash FROM aidsync_log WHERE id = ?");
        log->Bind(1, head.log_id);
        ASSIGN_OR_RETURN(bool found, log->Step());
        if (!found) return Status::Corruption("a conflict names a changeset missing from the log");
        ConflictVersion v;
        v.value = head.value.value_or(Value::Null());
        v.author_key = ToHex(log->ColumnBlob(0));
        v.changeset = ToHex(log->ColumnBlob(1));
        v.time_ms = static_cast<int64_t>(HlcMillis(head.hlc));
        std::string author_blob(log->ColumnBlob(0));
        ASSIGN_OR_RETURN(v.author, AuthorName(author_blob));
        if (i == 0 && !meta.deleted) {
          c.winner = std::move(v);
        } else {
          c.losers.push_back(std::move(v));
        }
      }
      out.push_back(std::move(c));
    }
  }
  return out;
}

Result<ReplicaStatus> Replica::GetStatus() {
  ReplicaStatus s;
  s.node = identity_;
  auto count = [&](const std::string& sql, int64_t* out) -> aidsync::Status {
    auto stmt = db_->Cached(sql);
    ASSIGN_OR_RETURN(bool row, stmt->Step());
    *out = row ? stmt->ColumnInt(0) : 0;
    return aidsync::Status::OK();
  };
  {
    auto own = db_->Cached("SELECT count(*) FROM aidsync_log WHERE author = ?");
    own->BindBlob(1, identity_.key.view());
    ASSIGN_OR_RETURN(bool row, own->Step());
    s.own_changesets = row ? own->ColumnInt(0) : 0;
  }
  RETURN_IF_ERROR(count("SELECT count(*) FROM aidsync_log", &s.total_changesets));
  RETURN_IF_ERROR(count("SELECT count(*) FROM aidsync_held", &s.held_changesets));
  RETURN_IF_ERROR(count("SELECT coalesce(sum(conflicts), 0) FROM aidsync_row_meta WHERE conflicts > 0",
                        &s.conflicts_open));

  ASSIGN_OR_RETURN(Statement forks, db_->Prepare(
      "SELECT DISTINCT author, scope, class, seq FROM aidsync_forks "
      // A revoked key's fork alarm has been answered (DESIGN 4).
      "WHERE author NOT IN (SELECT node_key FROM aidsync_revocations) ORDER BY author, scope, class, seq"));
  while (true) {
    ASSIGN_OR_RETURN(bool row, forks.Step());
    if (!row) break;
    ForkRecord f;
    std::string author(forks.ColumnBlob(0));
    f.author_key = ToHex(author);
    ASSIGN_OR_RETURN(f.author, AuthorName(author));
    f.scope = std::string(forks.ColumnText(1));
    f.cls = forks.ColumnInt(2) == 0 ? TableClass::kReference : TableClass::kCase;
    f.seq = static_cast<uint64_t>(forks.ColumnInt(3));
    s.alerts.push_back("fork: " + f.author + " (" + f.author_key.substr(0, 16) +
                       ") signed two different changesets at position " + std::to_string(f.seq) +
                       " of its " + TableClassName(f.cls) + " chain in " + f.scope +
                       ": a copied data dir or a stolen key; revoke the key");
    s.forks.push_back(std::move(f));
  }

  ASSIGN_OR_RETURN(s.revoked, RevokedNodes());
  for (const auto& r : s.revoked) {
    if (r.key != identity_.key.Hex()) continue;
    s.self_revoked = true;
    s.alerts.push_back("this node's key was revoked by the county: it can no longer write or sync; "
                       "re-enrol the machine under a new key");
  }

  ASSIGN_OR_RETURN(Statement rejected, db_->Prepare("SELECT reason, n FROM aidsync_rejected_counts"));
  while (true) {
    ASSIGN_OR_RETURN(bool row, rejected.Step());
    if (!row) break;
    s.rejected[std::string(rejected.ColumnText(0))] = rejected.ColumnInt(1);
  }
  if (!s.rejected.empty()) {
    // Refused input means a misbehaving peer, a stranger, or a revoked key
    // still trying: an admin should look (DESIGN 6, issue 5's alerts).
    int64_t total = 0;
    std::string by_reason;
    for (const auto& [reason, n] : s.rejected) {
      total += n;
      by_reason += (by_reason.empty() ? "" : ", ") + reason + "=" + std::to_string(n);
    }
    s.alerts.push_back("refused inputs: " + std::to_string(total) + " (" + by_reason +
                       "); the rejected store keeps them for review");
  }
  if (s.held_changesets > 0)
    s.alerts.push_back(std::to_string(s.held_changesets) +
                       " received changesets are held waiting for their chain predecessors");

  ASSIGN_OR_RETURN(Statement alerts, db_->Prepare("SELECT message FROM aidsync_alerts ORDER BY key"));
  while (true) {
    ASSIGN_OR_RETURN(bool row, alerts.Step());
    if (!row) break;
    s.alerts.emplace_back(alerts.ColumnText(0));
  }
  ASSIGN_OR_RETURN(s.peers, Peers());
  for (const auto& p : s.peers) {
    if (std::llabs(p.clock_offset_ms) > kClockAlertMs)
      s.alerts.push_back("clock: " + p.name + " (" + p.code + ") is " + std::to_string(p.clock_offset_ms / 60000) +
                         " minutes off this node's clock");
  }
  ASSIGN_OR_RETURN(std::vector<RuleViolation> violations, FindViolations(*db_, schema_, 20));
  for (const auto& v : violations) s.alerts.push_back(v.table + " " + v.id + ": " + v.message);
  return s;
}

Result<std::optional<Certificate>> Replica::CertificateByCode(const std::string& code) {
  // A code re-enrolled after its old key was revoked names the new key.
  auto stmt = db_->Cached(
      "SELECT cert FROM aidsync_certificates WHERE code = ? "
      "ORDER BY node_key IN (SELECT node_key FROM aidsync_revocations), issued_at DESC LIMIT 1");
  stmt->BindText(1, code);
  ASSIGN_OR_RETURN(bool row, stmt->Step());
  if (!row) return std::optional<Certificate>();
  ASSIGN_OR_RETURN(Certificate cert, Certificate::Parse(stmt->ColumnBlob(0), identity_.authority));
  return std::optional<Certificate>(std::move(cert));
}

Status Replica::CheckMayEnrol(const std::string& code, const std::optional<std::string>& scope,
                              const std::optional<PublicKey>& key, const std::optional<std::string>& name) {
  ASSIGN_OR_RETURN(std::optional<Certificate> same_code, CertificateByCode(code));
  if (same_code && (!key || !(same_code->fields().node_key == *key))) {
    ASSIGN_OR_RETURN(std::optional<Revocation> revoked, RevocationOf(same_code->fields().node_key));
    if (!revoked)
      return Status::AlreadyExists("station code " + code + " is already enrolled to another key (" +
                                   same_code->fields().name + "); station codes number notices and must be unique");
    // The new key numbers notices under the old code: it must be in the old
    // key's scope, where the old key's case rows (and so its notice numbers,
    // which the counter moves past) reach it.
    if (scope && *scope != same_code->fields().scope)
      return Status::InvalidArgument("station code " + code + " was revoked in scope " + same_code->fields().scope +
                                     "; it can be enrolled again only in that scope");
  }
  if (!key) return Status::OK();
  ASSIGN_OR_RETURN(std::optional<Revocation> revoked, RevocationOf(*key));
  if (revoked) return Status::Unauthorized("key " + key->Hex().substr(0, 16) + " was revoked; it cannot enrol again");
  ASSIGN_OR_RETURN(std::optional<Certificate> enrolled, CertificateByKey(*key));
  if (!enrolled) return Status::OK();
  const CertificateFields& held = enrolled->fields();
  if (held.code != code)
    return Status::AlreadyExists("key " + key->Hex().substr(0, 16) + " is already enrolled as " + held.name + " (" +
                                 held.code + "); one key, one station");
  // The same key under its own code, but another scope, name or role: a
  // second certificate would leave the first one valid too, and a node
  // presenting the older, wider one would be served by its scope.
  if (held.role != Role::kStation || (scope && held.scope != *scope) || (name && held.name != *name))
    return Status::AlreadyExists("key " + key->Hex().substr(0, 16) + " is already enrolled as " + held.name + " (" +
                                 held.code + ", " + RoleName(held.role) + ", scope " + held.scope +
                                 ") and is not revoked; to change its enrolment, revoke the key first, or "
                                 "enrol a replacement key");
  return Status::OK();
}

Result<std::optional<Certificate>> Replica::HubCertificate() {
  auto stmt = db_->Cached(
      "SELECT cert FROM aidsync_certificates WHERE role = 'hub' ORDER BY issued_at DESC LIMIT 1");
  ASSIGN_OR_RETURN(bool row, stmt->Step());
  if (!row) return std::optional<Certificate>();
  ASSIGN_OR_RETURN(Certificate cert, Certificate::Parse(stmt->ColumnBlob(0), identity_.authority));
  return std::optional<Certificate>(std::move(cert));
}

Result<std::optional<Certificate>> Replica::CertificateByKey(const PublicKey& key) {
  auto stmt = db_->Cached("SELECT cert FROM aidsync_certificates WHERE node_key = ?");
  stmt->BindBlob(1, key.view());
  ASSIGN_OR_RETURN(bool row, stmt->Step());
  if (!row) return std::optional<Certificate>();
  ASSIGN_OR_RETURN(Certificate cert, Certificate::Parse(stmt->ColumnBlob(0), identity_.authority));
  return std::optional<Certificate>(std::move(cert));
}

Status Replica::ForEachChangesetVisibleTo(const std::string& scope,
                                          const std::function<aidsync::Status(std::string_view)>& fn) {
  ASSIGN_OR_RETURN(Statement stmt, db_->Prepare("SELECT scope, class, envelope FROM aidsync_log ORDER BY id"));
  while (true) {
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    auto cls = stmt.ColumnInt(1) == 0 ? TableClass::kReference : TableClass::kCase;
    if (!ChangesetVisibleTo(scope, stmt.ColumnText(0), cls)) continue;
    ASSIGN_OR_RETURN(std::string envelope, UnpackStoredEnvelope(stmt.ColumnBlob(2), ChangesetLimits{}.max_envelope_bytes));
    RETURN_IF_ERROR(fn(envelope));
  }
  return aidsync::Status::OK();
}

Result<std::vector<std::string>> Replica::CertificatesVisibleTo(const std::string& /*scope*/) {
  // Certificates are public (they replicate to everyone in `stations`), so a
  // recipient gets all of them: it can then check every author it is sent.
  return FirstColumnOfEach("SELECT cert FROM aidsync_certificates ORDER BY issued_at");
}

Result<std::vector<std::string>> Replica::FirstColumnOfEach(const std::string& sql) {
  ASSIGN_OR_RETURN(Statement stmt, db_->Prepare(sql));
  std::vector<std::string> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    out.emplace_back(stmt.ColumnBlob(0));
  }
  return out;
}

Status Replica::Rebuild(const std::function<void(int64_t done, int64_t total)>& progress) {
  return InWriteTransaction([&] { return RebuildInTransaction(progress); });
}

Status Replica::RebuildInTransaction(const std::function<void(int64_t done, int64_t total)>& progress) {
  int64_t total = 0, done = 0;
  {
    auto count = db_->Cached("SELECT count(*) FROM aidsync_log");
    ASSIGN_OR_RETURN(bool row, count->Step());
    total = row ? count->ColumnInt(0) : 0;
  }
  for (const auto& table : schema_.tables) RETURN_IF_ERROR(db_->Exec("DELETE FROM \"" + table.name + "\""));
  RETURN_IF_ERROR(db_->Exec("DELETE FROM aidsync_row_meta"));
  // Replay in log order; batches keep the read statement off the rows being
  // updated. The merge is order-independent, so the result equals the state
  // the log produced originally.
  int64_t after = 0;
  while (true) {
    ASSIGN_OR_RETURN(Statement batch, db_->Prepare(
        "SELECT id, envelope FROM aidsync_log WHERE id > ? ORDER BY id LIMIT 512"));
    batch.Bind(1, after);
    std::vector<std::pair<int64_t, std::string>> rows;
    while (true) {
      ASSIGN_OR_RETURN(bool row, batch.Step());
      if (!row) break;
      auto envelope = UnpackStoredEnvelope(batch.ColumnBlob(1), ChangesetLimits{}.max_envelope_bytes);
      if (!envelope.ok())
        return envelope.status().WithContext("changeset #" + std::to_string(batch.ColumnInt(0)) +
                                             " in the log is damaged or was tampered with");
      rows.emplace_back(batch.ColumnInt(0), std::move(envelope).value());
    }
    if (rows.empty()) break;
    for (const auto& [log_id, envelope] : rows) {
      Digest id;
      auto content = DecodeChangeset(envelope, &id);
      if (!content.ok())
        return content.status().WithContext("changeset #" + std::to_string(log_id) +
                                            " in the log is damaged or was tampered with");
      bool complete = true;
      ASSIGN_OR_RETURN(auto savepoint, Savepoint::Begin(*db_));
      Status applied = applier_.Apply(*content, &id, log_id, &complete);
      if (!applied.ok()) {
        // Only parts this schema did not know before an upgrade can fail
        // here (everything else passed these checks on arrival). The log
        // keeps the changeset; the admin sees why it is not materialized.
        if (applied.code() != Status::Code::kInvalidArgument && applied.code() != Status::Code::kUnauthorized)
          return applied;
        savepoint.reset();
        complete = false;
        auto alert = db_->Cached("INSERT OR REPLACE INTO aidsync_alerts(key, message, raised_at) VALUES (?, ?, ?)");
        alert->BindText(1, "materialize:" + id.Hex());
        alert->BindText(2, "changeset " + id.Hex().substr(0, 16) + " stays in the log but cannot be shown: " +
                               applied.message());
        alert->Bind(3, env_.clock->NowMillis());
        RETURN_IF_ERROR(alert->Run());
      } else {
        RETURN_IF_ERROR(savepoint->Release());
      }
      auto mark = db_->Cached("UPDATE aidsync_log SET complete = ? WHERE id = ?");
      mark->Bind(1, static_cast<int64_t>(complete ? 1 : 0)).Bind(2, log_id);
      RETURN_IF_ERROR(mark->Run());
      after = log_id;
      ++done;
    }
    if (progress) progress(done, total);
  }
  return RebuildNoticeNumbers();
}

}  // namespace aidsync
