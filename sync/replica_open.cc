// Creating and opening a replica: the data dir, the identity key, the
// database schema and its upgrades.
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/durable_file.h"
#include "schema/scope.h"
#include "sync/local_write.h"
#include "sync/replica.h"

namespace aidsync {
namespace {

// The engine's own tables. Specified field by field in docs/FORMATS.md.
constexpr const char* kInternalSchema = R"sql(
CREATE TABLE IF NOT EXISTS aidsync_node(key TEXT PRIMARY KEY, value) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS aidsync_log(
  id INTEGER PRIMARY KEY,
  hash BLOB NOT NULL UNIQUE,
  author BLOB NOT NULL,
  scope TEXT NOT NULL,
  class INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  hlc INTEGER NOT NULL,
  envelope BLOB NOT NULL,
  complete INTEGER NOT NULL DEFAULT 1,
  received_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS aidsync_log_chain ON aidsync_log(author, scope, class, seq);
CREATE TABLE IF NOT EXISTS aidsync_chains(
  author BLOB NOT NULL, scope TEXT NOT NULL, class INTEGER NOT NULL,
  seq INTEGER NOT NULL, hash BLOB NOT NULL,
  count INTEGER NOT NULL, fingerprint BLOB NOT NULL,
  PRIMARY KEY(author, scope, class)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS aidsync_row_meta(
  tbl TEXT NOT NULL, id TEXT NOT NULL, scope TEXT NOT NULL,
  conflicts INTEGER NOT NULL, meta BLOB NOT NULL,
  PRIMARY KEY(tbl, id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS aidsync_row_meta_conflicts ON aidsync_row_meta(conflicts) WHERE conflicts > 0;
CREATE TABLE IF NOT EXISTS aidsync_held(
  hash BLOB PRIMARY KEY, prev BLOB NOT NULL, envelope BLOB NOT NULL, received_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS aidsync_held_prev ON aidsync_held(prev);
CREATE TABLE IF NOT EXISTS aidsync_rejected(
  hash BLOB PRIMARY KEY, reason TEXT NOT NULL, detail TEXT NOT NULL,
  envelope BLOB, received_at INTEGER NOT NULL,
  author BLOB, scope TEXT, class INTEGER, seq INTEGER);
CREATE TABLE IF NOT EXISTS aidsync_rejected_counts(reason TEXT PRIMARY KEY, n INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS aidsync_certificates(
  node_key BLOB PRIMARY KEY, code TEXT NOT NULL, name TEXT NOT NULL, role TEXT NOT NULL,
  scope TEXT NOT NULL, issued_at INTEGER NOT NULL, cert BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS aidsync_certificates_code ON aidsync_certificates(code);
CREATE TABLE IF NOT EXISTS aidsync_forks(
  author BLOB NOT NULL, scope TEXT NOT NULL, class INTEGER NOT NULL, seq INTEGER NOT NULL,
  hash_a BLOB NOT NULL, hash_b BLOB NOT NULL, detected_at INTEGER NOT NULL,
  PRIMARY KEY(author, scope, class, seq, hash_a, hash_b));
CREATE TABLE IF NOT EXISTS aidsync_alerts(key TEXT PRIMARY KEY, message TEXT NOT NULL, raised_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS aidsync_peers(
  id TEXT PRIMARY KEY, name TEXT NOT NULL, code TEXT NOT NULL, address TEXT NOT NULL,
  last_seen INTEGER NOT NULL, last_sync INTEGER NOT NULL, pending_out INTEGER NOT NULL,
  pending_in INTEGER NOT NULL, clock_offset_ms INTEGER NOT NULL, last_error TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS aidsync_notice_counters(year INTEGER PRIMARY KEY, last INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS aidsync_notice_numbers(
  number TEXT NOT NULL, case_id TEXT NOT NULL, PRIMARY KEY(number, case_id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS aidsync_notice_numbers_case ON aidsync_notice_numbers(case_id);
CREATE TABLE IF NOT EXISTS aidsync_revocations(
  node_key BLOB PRIMARY KEY, curve_key BLOB NOT NULL, id BLOB NOT NULL,
  revoked_at INTEGER NOT NULL, bytes BLOB NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS aidsync_revocations_curve ON aidsync_revocations(curve_key);
CREATE TABLE IF NOT EXISTS aidsync_revoked_chains(
  node_key BLOB NOT NULL, scope TEXT NOT NULL, class INTEGER NOT NULL, last_seq INTEGER NOT NULL,
  PRIMARY KEY(node_key, scope, class)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS aidsync_invites(
  id BLOB PRIMARY KEY, name TEXT NOT NULL, code TEXT NOT NULL, scope TEXT NOT NULL,
  created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, used_by BLOB, used_at INTEGER) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS aidsync_sessions(
  id INTEGER PRIMARY KEY, peer TEXT NOT NULL, started_at INTEGER NOT NULL, ended_at INTEGER NOT NULL,
  as_server INTEGER NOT NULL, changesets_sent INTEGER NOT NULL, changesets_received INTEGER NOT NULL,
  bytes_sent INTEGER NOT NULL, bytes_received INTEGER NOT NULL, error TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS aidsync_sessions_peer ON aidsync_sessions(peer, ended_at);
)sql";

// Bumped whenever kInternalSchema gains a table, so Upgrade adds it to
// existing data dirs, or the stored forms change. 2: revocations and
// invites. 3: session history. 4: the log may store envelopes compressed and
// row metadata in format 2 (issue 7; both old forms are still read): an
// aidsync from before cannot read such a store, and this number lets every
// aidsync from now on refuse a store newer than itself. 5: aidsync_rejected
// keeps a refused changeset's author, scope, class and seq, and its body only
// when this node may hold it (the migration strips the others); the
// registry of notice numbers, aidsync_notice_numbers.
constexpr int64_t kInternalSchemaVersion = 5;

std::string DbPath(const std::string& dir) { return dir + "/replica.db"; }
std::string KeyPath(const std::string& dir) { return dir + "/node.key"; }

bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

// What an interrupted init leaves in a data dir (and a hub's authority key,
// which the user may have put there first): the only entries an existing
// directory may hold for init to use it.
bool InitLeftover(const std::string& name) {
  return name == "node.key.partial" || name == "replica.db" || name == "replica.db-wal" ||
         name == "replica.db-shm" || name == "replica.db-journal" || name == "authority.key";
}

// The data dir of a new node: created 0700 if it does not exist. An existing
// directory is used only as it is: a directory of this user's, private
// already (no group or other access; its mode is never changed, so a shared
// directory such as a 1777 one keeps its sticky bit and its other users'
// files), and empty but for what an interrupted init leaves. Checked before
// anything is written; a refusal changes nothing.
Status PrepareDataDir(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0700) == 0) {
    // Our own directory: exactly 0700 whatever the umask.
    if (::chmod(dir.c_str(), 0700) != 0)
      return Status::IOError("cannot make data dir " + dir + " private: " + std::strerror(errno));
    return Status::OK();
  }
  if (errno != EEXIST) return Status::IOError("cannot create data dir " + dir + ": " + std::strerror(errno));
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) return Status::IOError("cannot read data dir " + dir + ": " + std::strerror(errno));
  if (!S_ISDIR(st.st_mode)) return Status::AlreadyExists(dir + " exists and is not a directory; name a new data dir");
  if (st.st_uid != ::geteuid())
    return Status::Unauthorized("data dir " + dir + " belongs to another user; name a new data dir (init creates it)");
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return Status::Unauthorized("data dir " + dir + " has mode " + mode +
                                "; init uses an existing directory only if it is private already: name a new "
                                "data dir (init creates it) or chmod 700 " + dir + " yourself; nothing was changed");
  }
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return Status::IOError("cannot list data dir " + dir + ": " + std::strerror(errno));
  std::string foreign;
  while (const dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name != "." && name != ".." && !InitLeftover(name)) {
      foreign = name;
      break;
    }
  }
  ::closedir(d);
  if (!foreign.empty())
    return Status::AlreadyExists("data dir " + dir + " holds '" + foreign +
                                 "', which is not aidsync's: init uses a new or empty directory; nothing was changed");
  return Status::OK();
}

Status CheckPrivateDir(const std::string& dir) {
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    return Status::NotFound("no aidsync data dir at " + dir + " (run `aidsync init` or `aidsync join` first)");
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%03o", st.st_mode & 0777);
    return Status::Unauthorized("data dir " + dir + " has mode " + mode +
                                "; it holds personal data and must be private (chmod 700 " + dir + ")");
  }
  return Status::OK();
}

Status CreateDomainTables(Database& db, const SchemaDef& schema) {
  for (const auto& table : schema.tables) {
    std::string sql = "CREATE TABLE IF NOT EXISTS \"" + table.name + "\"(id TEXT PRIMARY KEY, scope TEXT NOT NULL";
    for (const auto& c : table.columns) sql += ", \"" + c.name + "\" " + ColumnTypeName(c.type);
    RETURN_IF_ERROR(db.Exec(sql + ")"));
    // Columns added by a newer schema version to a table an older one made.
    ASSIGN_OR_RETURN(Statement info, db.Prepare("SELECT name FROM pragma_table_info('" + table.name + "')"));
    std::vector<std::string> have;
    while (true) {
      ASSIGN_OR_RETURN(bool row, info.Step());
      if (!row) break;
      have.emplace_back(info.ColumnText(0));
    }
    for (const auto& c : table.columns) {
      if (std::find(have.begin(), have.end(), c.name) == have.end())
        RETURN_IF_ERROR(db.Exec("ALTER TABLE \"" + table.name + "\" ADD COLUMN \"" + c.name + "\" " +
                                ColumnTypeName(c.type)));
    }
  }
  return Status::OK();
}

Status SetNodeValue(Database& db, const std::string& key, std::string_view text) {
  auto stmt = db.Cached("INSERT OR REPLACE INTO aidsync_node(key, value) VALUES (?, ?)");
  stmt->BindText(1, key).BindText(2, text);
  return stmt->Run();
}

Status ValidateConfig(const NodeConfig& config) {
  if (config.name.empty() || config.name.size() > 200)
    return Status::InvalidArgument("--name must be 1 to 200 bytes");
  // The name is shown on every node's screens: one line of UTF-8, no controls.
  RETURN_IF_ERROR(CheckTextContent(ColumnDef{"--name"}, config.name));
  RETURN_IF_ERROR(ValidatePublicKey(config.authority).WithContext("--authority"));
  RETURN_IF_ERROR(ValidateStationCode(config.code));
  return ValidateScope(config.scope);
}

}  // namespace

Replica::Replica(std::string dir, const Env& env, SigningKey key, std::unique_ptr<Database> db)
    : dir_(std::move(dir)),
      env_(env),
      key_(std::move(key)),
      db_(std::move(db)),
      schema_(LegalAidSchema()),
      clock_(*env.clock),
      applier_(*db_, schema_) {}

Replica::~Replica() = default;

Result<PublicKey> Replica::Create(const std::string& dir, const NodeConfig& config, const Env& env,
                                  const SigningKey* authority_key) {
  RETURN_IF_ERROR(ValidateConfig(config));
  if (config.role == Role::kHub) {
    if (authority_key == nullptr)
      return Status::InvalidArgument("a hub needs the authority key (--authority-key FILE)");
    if (!(authority_key->public_key() == config.authority))
      return Status::InvalidArgument("--authority-key does not match --authority");
  }
  // A node exists once node.key does: it is put in place last, by rename, so
  // an init interrupted at any point leaves no half-made node, only leftovers
  // that the next init clears.
  if (Exists(KeyPath(dir))) return Status::AlreadyExists("data dir " + dir + " already holds a node");
  RETURN_IF_ERROR(PrepareDataDir(dir));
  const std::string partial_key = KeyPath(dir) + ".partial";
  // A hub checks a copy of the authority key already in the dir before
  // writing anything, so a refusal leaves nothing behind.
  if (config.role == Role::kHub && Exists(AuthorityKeyPath(dir))) {
    ASSIGN_OR_RETURN(SigningKey existing, SigningKey::Load(AuthorityKeyPath(dir)));
    if (!(existing.public_key() == authority_key->public_key()))
      return Status::AlreadyExists(AuthorityKeyPath(dir) + " holds another authority's key; move it away first");
  }
  if (Exists(DbPath(dir)) && !Exists(partial_key)) {
    // A replica.db not left by an init of ours (that always leaves
    // node.key.partial, durably, before it creates replica.db). Only an
    // aidsync replica with an empty log, whose key went missing, is cleared:
    // records are never deleted, nor is a file that is not aidsync's.
    Database::Options probe;
    probe.read_only = true;
    probe.vfs = env.sqlite_vfs;
    std::optional<int64_t> records;
    if (auto db = Database::Open(DbPath(dir), probe); db.ok()) {
      if (auto count = (*db)->Prepare("SELECT count(*) FROM aidsync_log"); count.ok()) {
        if (auto row = count->Step(); row.ok() && *row) records = count->ColumnInt(0);
      }
    }
    if (!records)
      return Status::AlreadyExists(DbPath(dir) + " is not an aidsync replica; move it away or name a new data "
                                   "dir; nothing was changed");
    if (*records > 0)
      return Status::AlreadyExists(DbPath(dir) + " holds records but " + KeyPath(dir) +
                                   " is missing: restore the key file; nothing was changed");
  }
  for (const std::string& leftover : {partial_key, DbPath(dir), DbPath(dir) + "-wal", DbPath(dir) + "-shm"})
    ::unlink(leftover.c_str());
  SigningKey key = SigningKey::Generate(*env.random);
  RETURN_IF_ERROR(key.Save(partial_key));
  // The mark of an init of ours is on disk before replica.db is created.
  RETURN_IF_ERROR(SyncParentDirectory(partial_key));
  PublicKey node_key = key.public_key();
  Database::Options options;
  options.create = true;
  options.vfs = env.sqlite_vfs;
  ASSIGN_OR_RETURN(std::unique_ptr<Database> db, Database::Open(DbPath(dir), options));
  // Applicants' personal data: private even if the dir's mode is loosened.
  // SQLite gives its -wal and -shm files the database file's mode.
  if (::chmod(DbPath(dir).c_str(), 0600) != 0)
    return Status::IOError("cannot make " + DbPath(dir) + " private: " + std::strerror(errno));
  {
    ASSIGN_OR_RETURN(auto tx, Transaction::Begin(*db));
    RETURN_IF_ERROR(db->Exec(kInternalSchema));
    SchemaDef schema = LegalAidSchema();
    RETURN_IF_ERROR(CreateDomainTables(*db, schema));
    RETURN_IF_ERROR(SetNodeValue(*db, "name", config.name));
    RETURN_IF_ERROR(SetNodeValue(*db, "code", config.code));
    RETURN_IF_ERROR(SetNodeValue(*db, "scope", config.scope));
    RETURN_IF_ERROR(SetNodeValue(*db, "role", RoleName(config.role)));
    RETURN_IF_ERROR(SetNodeValue(*db, "authority", config.authority.Hex()));
    RETURN_IF_ERROR(SetNodeValue(*db, "schema_version", std::to_string(schema.version)));
    RETURN_IF_ERROR(SetNodeValue(*db, "internal_version", std::to_string(kInternalSchemaVersion)));
    RETURN_IF_ERROR(tx->Commit());
  }
  if (config.role == Role::kHub) {
    // The hub enrols itself at once: certificate, trust store, stations row.
    std::unique_ptr<Replica> replica(new Replica(dir, env, std::move(key), std::move(db)));
    RETURN_IF_ERROR(replica->LoadIdentity());
    CertificateFields fields;
    fields.node_key = node_key;
    fields.name = config.name;
    fields.code = config.code;
    fields.role = Role::kHub;
    fields.scope = config.scope;
    fields.issued_at_ms = env.clock->NowMillis();
    ASSIGN_OR_RETURN(Certificate cert, Certificate::Issue(fields, *authority_key));
    RETURN_IF_ERROR(replica->InstallOwnCertificate(cert.bytes()));
    RETURN_IF_ERROR(replica->RecordStation(cert));
    // The hub signs enrolments with its own copy of the authority key; it is
    // in place before node.key, so a hub that exists can always enrol.
    // A key already there (the user's own file, or a leftover of an
    // interrupted init) is never deleted: kept if it is this authority's,
    // refused otherwise.
    // (Checked above to be this authority's when present.)
    if (!Exists(AuthorityKeyPath(dir))) RETURN_IF_ERROR(authority_key->Save(AuthorityKeyPath(dir)));
  }
  if (::rename(partial_key.c_str(), KeyPath(dir).c_str()) != 0)
    return Status::IOError("cannot create " + KeyPath(dir) + ": " + std::strerror(errno));
  RETURN_IF_ERROR(SyncParentDirectory(KeyPath(dir)));
  return node_key;
}

Status Replica::RecordStation(const Certificate& cert) {
  ASSIGN_OR_RETURN(auto tx, BeginLocal());
  RETURN_IF_ERROR(RecordStationIn(*tx, cert));
  return tx->Commit().status();
}

Status Replica::RecordStationIn(LocalTransaction& tx, const Certificate& cert) {
  const CertificateFields& f = cert.fields();
  // One row per station code, at the county scope so it flows to every node.
  std::vector<std::pair<std::string, Value>> values = {
      {"code", Value::Text(f.code)},
      {"name", Value::Text(f.name)},
      {"role", Value::Text(RoleName(f.role))},
      {"public_key", Value::Text(f.node_key.Hex())},
      {"certificate", Value::Text(ToHex(cert.bytes()))},
  };
  auto existing = db_->Cached("SELECT id FROM stations WHERE code = ?");
  existing->BindText(1, f.code);
  ASSIGN_OR_RETURN(bool found, existing->Step());
  std::optional<std::string> id;
  if (found) id = std::string(existing->ColumnText(0));
  existing->Reset();
  RETURN_IF_ERROR(tx.PutValues("stations", id, found ? std::nullopt : std::optional(identity_.scope), values)
                      .status());
  // In the same transaction as the stations row: both or neither.
  return AddCertificate(cert.bytes()).status();
}

Result<std::unique_ptr<Replica>> Replica::Open(const std::string& dir, const Env& env,
                                               const OpenOptions& options) {
  RETURN_IF_ERROR(CheckPrivateDir(dir));
  if (!Exists(KeyPath(dir)) || !Exists(DbPath(dir)))
    return Status::NotFound("no aidsync node in " + dir + " (run `aidsync init` or `aidsync join` first)");
  ASSIGN_OR_RETURN(SigningKey key, SigningKey::Load(KeyPath(dir)));
  Database::Options db_options;
  db_options.read_only = options.read_only;
  db_options.vfs = env.sqlite_vfs;
  auto db = Database::Open(DbPath(dir), db_options);
  if (!db.ok()) return db.status();
  if (options.quick_check) RETURN_IF_ERROR((*db)->QuickCheck().WithContext(DbPath(dir)));
  std::unique_ptr<Replica> replica(new Replica(dir, env, std::move(key), std::move(db).value()));
  auto identity = replica->LoadIdentity();
  if (!identity.ok()) return identity.WithContext(DbPath(dir));
  // Read-only opens too: they would misread forms they do not know.
  ASSIGN_OR_RETURN(int64_t store_version, replica->StoreVersion());
  if (store_version > kInternalSchemaVersion)
    return Status::InvalidArgument("the data dir " + dir + " was written by a newer aidsync (store version " +
                                   std::to_string(store_version) + "; this one knows up to " +
                                   std::to_string(kInternalSchemaVersion) + "): run that version or a newer one");
  if (!options.read_only) RETURN_IF_ERROR(replica->Upgrade());
  return replica;
}

Result<int64_t> Replica::StoreVersion() {
  auto internal = db_->Cached("SELECT value FROM aidsync_node WHERE key = 'internal_version'");
  ASSIGN_OR_RETURN(bool has_internal, internal->Step());
  // Absent in a data dir made before version 2.
  return has_internal ? std::stoll(std::string(internal->ColumnText(0))) : 1;
}

Status Replica::Upgrade() {
  auto stmt = db_->Cached("SELECT value FROM aidsync_node WHERE key = 'schema_version'");
  ASSIGN_OR_RETURN(bool row, stmt->Step());
  int64_t stored = row ? std::stoll(std::string(stmt->ColumnText(0))) : 0;
  stmt->Reset();
  ASSIGN_OR_RETURN(int64_t stored_internal, StoreVersion());
  if (stored >= schema_.version && stored_internal >= kInternalSchemaVersion) return Status::OK();
  // Before version 5 the rejected store could hold bodies this node may not
  // hold (another village's records): they are overwritten with zeros where
  // they lay (secure_delete), and the WAL that held the old pages is emptied.
  const bool strip_rejected = stored_internal < 5;
  if (strip_rejected) RETURN_IF_ERROR(db_->Exec("PRAGMA secure_delete = ON"));
  {
    ASSIGN_OR_RETURN(auto tx, Transaction::Begin(*db_));
    RETURN_IF_ERROR(db_->Exec(kInternalSchema));
    RETURN_IF_ERROR(CreateDomainTables(*db_, schema_));
    if (strip_rejected) {
      RETURN_IF_ERROR(MigrateRejectedStore());
      RETURN_IF_ERROR(RebuildNoticeNumbers());
    }
    RETURN_IF_ERROR(tx->Commit());
  }
  if (strip_rejected) {
    RETURN_IF_ERROR(db_->Exec("PRAGMA secure_delete = OFF"));
    RETURN_IF_ERROR(db_->Exec("PRAGMA wal_checkpoint(TRUNCATE)"));
  }
  // Changesets that named tables or columns the old schema lacked can now be
  // materialized in full. The version is recorded only after that worked, so
  // an interrupted upgrade is simply redone at the next open.
  int64_t incomplete_count = 0;
  {
    auto incomplete = db_->Cached("SELECT count(*) FROM aidsync_log WHERE complete = 0");
    ASSIGN_OR_RETURN(bool has, incomplete->Step());
    incomplete_count = has ? incomplete->ColumnInt(0) : 0;
  }
  if (incomplete_count > 0) RETURN_IF_ERROR(Rebuild());
  ASSIGN_OR_RETURN(auto tx, Transaction::Begin(*db_));
  RETURN_IF_ERROR(SetNodeValue(*db_, "schema_version", std::to_string(schema_.version)));
  RETURN_IF_ERROR(SetNodeValue(*db_, "internal_version", std::to_string(kInternalSchemaVersion)));
  return tx->Commit();
}

Status Replica::LoadIdentity() {
  ASSIGN_OR_RETURN(Statement stmt, db_->Prepare("SELECT key, value FROM aidsync_node"));
  std::map<std::string, std::string> kv;
  while (true) {
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    kv[std::string(stmt.ColumnText(0))] = std::string(stmt.ColumnText(1));
  }
  if (!kv.count("authority")) return Status::Corruption("the node table is incomplete");
  identity_.key = key_.public_key();
  identity_.name = kv["name"];
  identity_.code = kv["code"];
  identity_.scope = kv["scope"];
  identity_.role = kv["role"] == "hub" ? Role::kHub : Role::kStation;
  ASSIGN_OR_RETURN(identity_.authority, PublicKey::FromHex(kv["authority"]));
  identity_.enrolled = kv.count("certificate") > 0;
  return Status::OK();
}

Status Replica::InstallOwnCertificate(std::string_view cert_bytes) {
  ASSIGN_OR_RETURN(Certificate cert, Certificate::Parse(cert_bytes, identity_.authority));
  const CertificateFields& f = cert.fields();
  if (!(f.node_key == identity_.key))
    return Status::Unauthorized("the certificate is for node " + f.node_key.Hex() + ", not this node (" +
                                identity_.key.Hex() + ")");
  {
    ASSIGN_OR_RETURN(auto tx, Transaction::Begin(*db_));
    // Never back to an older certificate: servers go by the newest they hold
    // for a key and refuse an older one, and an older one may grant more.
    ASSIGN_OR_RETURN(std::optional<Certificate> held, CertificateByKey(identity_.key));
    if (held && held->bytes() != cert.bytes() && held->fields().issued_at_ms >= f.issued_at_ms)
      return Status::InvalidArgument("this node already holds a newer certificate for its key (" +
                                     held->fields().code + " " + held->fields().name + ", scope " +
                                     held->fields().scope + "); a certificate issued earlier is not installed");
    RETURN_IF_ERROR(SetNodeValue(*db_, "certificate", ToHex(cert.bytes())));
    RETURN_IF_ERROR(SetNodeValue(*db_, "name", f.name));
    RETURN_IF_ERROR(SetNodeValue(*db_, "code", f.code));
    RETURN_IF_ERROR(SetNodeValue(*db_, "scope", f.scope));
    RETURN_IF_ERROR(SetNodeValue(*db_, "role", RoleName(f.role)));
    RETURN_IF_ERROR(tx->Commit());
  }
  RETURN_IF_ERROR(LoadIdentity());
  return AddCertificate(cert.bytes()).status();
}

Result<bool> Replica::AddCertificate(std::string_view cert_bytes) {
  ASSIGN_OR_RETURN(Certificate cert, Certificate::Parse(cert_bytes, identity_.authority));
  const CertificateFields& f = cert.fields();
  auto stmt = db_->Cached(
      "INSERT INTO aidsync_certificates(node_key, code, name, role, scope, issued_at, cert) "
      "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(node_key) DO UPDATE SET "
      "code = excluded.code, name = excluded.name, role = excluded.role, scope = excluded.scope, "
      "issued_at = excluded.issued_at, cert = excluded.cert WHERE excluded.issued_at > issued_at "
      // Two issued in one millisecond: every node keeps the same one, since
      // a server refuses a hello with any but the one it holds.
      "OR (excluded.issued_at = issued_at AND excluded.cert < cert)");
  stmt->BindBlob(1, f.node_key.view()).BindText(2, f.code).BindText(3, f.name).BindText(4, RoleName(f.role));
  stmt->BindText(5, f.scope).Bind(6, f.issued_at_ms).BindBlob(7, cert.bytes());
  RETURN_IF_ERROR(stmt->Run());
  return db_->Changes() > 0;
}

Result<std::unique_ptr<LocalTransaction>> Replica::BeginLocal() {
  if (!identity_.enrolled)
    return Status::Unauthorized("this node has no certificate yet: run `aidsync install-cert FILE` or "
                                "`aidsync join TOKEN` first");
  ASSIGN_OR_RETURN(auto tx, Transaction::Begin(*db_));
  // A revoked node's writes would be refused everywhere: say so now.
  ASSIGN_OR_RETURN(std::optional<Revocation> revoked, RevocationOf(identity_.key));
  if (revoked)
    return Status::Unauthorized("the county revoked this node's key (" + revoked->fields().reason +
                                "); it can no longer write: re-enrol the machine under a new key");
  return std::unique_ptr<LocalTransaction>(new LocalTransaction(*this, std::move(tx)));
}

Result<uint64_t> Replica::NextLocalHlc() {
  auto read = db_->Cached("SELECT value FROM aidsync_node WHERE key = 'hlc'");
  ASSIGN_OR_RETURN(bool row, read->Step());
  uint64_t last = row ? static_cast<uint64_t>(read->ColumnInt(0)) : 0;
  uint64_t next = clock_.Next(last);
  auto write = db_->Cached("INSERT OR REPLACE INTO aidsync_node(key, value) VALUES ('hlc', ?)");
  write->Bind(1, static_cast<int64_t>(next));
  RETURN_IF_ERROR(write->Run());
  return next;
}

}  // namespace aidsync
