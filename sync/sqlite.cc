#include "sync/sqlite.h"

#include <mutex>

#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iostream>

namespace aidsync {

Statement::Statement(Statement&& other) noexcept : db_(other.db_), stmt_(other.stmt_) {
  other.stmt_ = nullptr;
}

Statement& Statement::operator=(Statement&& other) noexcept {
  if (this != &other) {
    if (stmt_) sqlite3_finalize(stmt_);
    db_ = other.db_;
    stmt_ = other.stmt_;
    other.stmt_ = nullptr;
  }
  return *this;
}

Statement::~Statement() {
  if (stmt_) sqlite3_finalize(stmt_);
}

Statement& Statement::Bind(int index, int64_t value) {
  sqlite3_bind_int64(stmt_, index, value);
  return *this;
}
Statement& Statement::Bind(int index, double value) {
  sqlite3_bind_double(stmt_, index, value);
  return *this;
}
Statement& Statement::BindText(int index, std::string_view value) {
  sqlite3_bind_text(stmt_, index, value.data(), static_cast<int>(value.size()), SQLITE_TRANSIENT);
  return *this;
}
Statement& Statement::BindTextView(int index, std::string_view value) {
  sqlite3_bind_text(stmt_, index, value.data(), static_cast<int>(value.size()), SQLITE_STATIC);
  return *this;
}
Statement& Statement::BindBlobView(int index, std::string_view value) {
  static const char kEmpty = 0;  // as in BindBlob: empty is a blob, not NULL
  sqlite3_bind_blob(stmt_, index, value.empty() ? &kEmpty : value.data(), static_cast<int>(value.size()),
                    SQLITE_STATIC);
  return *this;
}
Statement& Statement::BindBlob(int index, std::string_view value) {
  // A zero-length blob must still be a blob, not NULL: SQLite binds NULL for a
  // null pointer, so give it a valid one.
  static const char kEmpty = 0;
  sqlite3_bind_blob(stmt_, index, value.empty() ? &kEmpty : value.data(),
                    static_cast<int>(value.size()), SQLITE_TRANSIENT);
  return *this;
}
Statement& Statement::BindNull(int index) {
  sqlite3_bind_null(stmt_, index);
  return *this;
}

Result<bool> Statement::Step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  const char* sql = sqlite3_sql(stmt_);
  std::string context = std::string("SQL ") + std::string(sql ? sql : "").substr(0, 60);
  return StatusFromSqlite(sqlite3_db_handle(stmt_), rc, context);
}

Status Statement::Run() {
  auto r = Step();
  if (!r.ok()) return r.status();
  return Status::OK();
}

void Statement::Reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

std::string_view Statement::ColumnText(int i) const {
  const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, i));
  return p ? std::string_view(p, sqlite3_column_bytes(stmt_, i)) : std::string_view();
}

std::string_view Statement::ColumnBlob(int i) const {
  const auto* p = static_cast<const char*>(sqlite3_column_blob(stmt_, i));
  return p ? std::string_view(p, sqlite3_column_bytes(stmt_, i)) : std::string_view();
}

Status StatusFromSqlite(int rc, const std::string& context, const char* sqlite_message) {
  std::string msg = context + ": " + (sqlite_message ? sqlite_message : sqlite3_errstr(rc));
  switch (rc & 0xff) {
    case SQLITE_FULL: return Status::IOError(context + ": the disk is full");
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return Status::Busy(msg + " (another aidsync process holds the database)");
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB: return Status::Corruption(msg);
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH:
    case SQLITE_RANGE:
    case SQLITE_ERROR: return Status::InvalidArgument(msg);
    case SQLITE_CANTOPEN: return Status::NotFound(msg);
    default: return Status::IOError(msg);
  }
}

namespace {

// Why the database of `db` could not be written (SQLITE_IOERR,
// SQLITE_READONLY) or opened (SQLITE_CANTOPEN), when the file system says:
// SQLite does not keep the OS error of a failed COMMIT (sqlite3_system_errno
// is 0 then), and "disk I/O error" alone does not tell the user what to fix.
// "" when nothing is found.
std::string DiagnoseDiskProblem(sqlite3* db) {
  const char* file = sqlite3_db_filename(db, "main");
  if (file == nullptr || *file == '\0') return "";
  std::string dir(file);
  const size_t slash = dir.find_last_of('/');
  dir = slash == std::string::npos ? "." : slash == 0 ? "/" : dir.substr(0, slash);
  struct statvfs fs {};
  if (::statvfs(dir.c_str(), &fs) == 0) {
    if ((fs.f_flag & ST_RDONLY) != 0) return "the file system of " + dir + " is read-only";
    if (fs.f_bavail == 0) return "the disk holding " + dir + " is full";
  }
  // A file size limit on this process, which the database or its -wal reached
  // (a write past it fails with EFBIG; main() ignores SIGXFSZ so that it does
  // not kill the process first). The write that failed was at most one WAL
  // frame, so a file that close to the limit is the one that hit it.
  constexpr uint64_t kLargestWrite = 2 * (4096 + 24);  // two WAL frames of our 4096-byte pages
  struct rlimit limit {};
  if (::getrlimit(RLIMIT_FSIZE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return "";
  for (const std::string& path : {std::string(file), std::string(file) + "-wal"}) {
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0 && static_cast<uint64_t>(st.st_size) + kLargestWrite >= limit.rlim_cur)
      return "this process may not write files larger than " + std::to_string(limit.rlim_cur) +
             " bytes (ulimit -f)";
  }
  return "";
}

}  // namespace

Status StatusFromSqlite(sqlite3* db, int rc, const std::string& context) {
  if (db == nullptr) return StatusFromSqlite(rc, context, nullptr);
  std::string msg = context + ": " + sqlite3_errmsg(db);
  switch (rc & 0xff) {
    case SQLITE_CANTOPEN: {
      // A missing file is NotFound; one there that cannot be opened (the
      // -shm of a WAL database on a read-only disk, ...) is a problem of the
      // disk. SQLite keeps the OS error on some of these paths only.
      const int err = sqlite3_system_errno(db);
      if (err != 0 && err != ENOENT) return Status::IOError(msg + " (" + std::strerror(err) + ")");
      const std::string cause = DiagnoseDiskProblem(db);
      if (!cause.empty()) return Status::IOError(msg + ": " + cause);
      return Status::NotFound(msg);
    }
    case SQLITE_READONLY:  // "attempt to write a readonly database": say why, if the file system knows
    case SQLITE_IOERR: {
      const std::string cause = DiagnoseDiskProblem(db);
      return Status::IOError(cause.empty() ? msg : msg + ": " + cause);
    }
    default: return StatusFromSqlite(rc, context, sqlite3_errmsg(db));
  }
}

Result<std::unique_ptr<Database>> Database::Open(const std::string& path, const Options& options) {
  // Before SQLite's first use in the process: no global memory statistics.
  // They take a process-wide mutex on every allocation SQLite makes (about
  // 2.5% of a write's instructions); nothing here reads them.
  static std::once_flag configured;
  std::call_once(configured, [] { (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); });
  int flags = SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
  flags |= options.read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE;
  if (options.create && !options.read_only) flags |= SQLITE_OPEN_CREATE;
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags, options.vfs.empty() ? nullptr : options.vfs.c_str());
  if (rc != SQLITE_OK) {
    Status st = StatusFromSqlite(raw, rc, "cannot open database " + path);
    sqlite3_close_v2(raw);
    return st;
  }
  std::unique_ptr<Database> db(new Database(raw));
  sqlite3_busy_timeout(raw, options.busy_timeout_ms);
  sqlite3_extended_result_codes(raw, 1);
  if (!options.read_only) {
    // WAL + synchronous=FULL: a committed transaction survives power loss
    // (DESIGN 7). journal_mode answers with a row, so use Prepare/Step.
    auto mode = db->Prepare("PRAGMA journal_mode=WAL");
    if (!mode.ok()) return mode.status().WithContext(path);
    auto step = mode->Step();
    if (!step.ok()) return step.status().WithContext(path);
    RETURN_IF_ERROR(db->Exec("PRAGMA synchronous=FULL; PRAGMA foreign_keys=OFF;"));
  }
  return db;
}

Database::~Database() {
  cache_.clear();  // finalize statements before closing
  sqlite3_close_v2(db_);
}

Status Database::Exec(const std::string& sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
  if (rc == SQLITE_OK) return Status::OK();
  sqlite3_free(err);  // the text of sqlite3_errmsg, which StatusFromSqlite reads
  return StatusFromSqlite(db_, rc, "SQL " + sql.substr(0, 60));
}

Result<Statement> Database::Prepare(std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  const char* tail = nullptr;
  int rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt, &tail);
  if (rc != SQLITE_OK) return StatusFromSqlite(db_, rc, "SQL");
  if (stmt == nullptr) return Status::InvalidArgument("SQL: empty statement");
  return Statement(this, stmt);
}

CachedStatement Database::Cached(const std::string& sql) {
  auto it = cache_.find(sql);
  if (it == cache_.end()) {
    auto stmt = Prepare(sql);
    if (!stmt.ok()) {
      // Cached statements are the engine's own SQL: failing to compile one is
      // a bug, not a user error.
      std::cerr << "aidsync: internal SQL does not compile: " << stmt.status().message() << "\n";
      std::abort();
    }
    it = cache_.emplace(sql, std::make_unique<Statement>(std::move(stmt).value())).first;
  }
  return CachedStatement(it->second.get());
}

Status Database::LastError(const std::string& context) const {
  return StatusFromSqlite(db_, sqlite3_extended_errcode(db_), context);
}

Status Database::QuickCheck() {
  ASSIGN_OR_RETURN(Statement stmt, Prepare("PRAGMA quick_check"));
  ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return Status::Corruption("quick_check returned nothing");
  std::string first(stmt.ColumnText(0));
  if (first != "ok") return Status::Corruption("integrity check failed: " + first);
  return Status::OK();
}

Result<std::unique_ptr<Transaction>> Transaction::Begin(Database& db) {
  RETURN_IF_ERROR(db.Exec("BEGIN IMMEDIATE"));
  return std::unique_ptr<Transaction>(new Transaction(db));
}

Status Transaction::Commit() {
  Status st = db_.Exec("COMMIT");
  if (st.ok()) done_ = true;
  return st;
}

Transaction::~Transaction() {
  if (!done_) db_.Exec("ROLLBACK");
}

Result<std::unique_ptr<Savepoint>> Savepoint::Begin(Database& db) {
  RETURN_IF_ERROR(db.Exec("SAVEPOINT apply_one"));
  return std::unique_ptr<Savepoint>(new Savepoint(db));
}

Status Savepoint::Release() {
  Status st = db_.Exec("RELEASE apply_one");
  if (st.ok()) done_ = true;
  return st;
}

Savepoint::~Savepoint() {
  if (!done_) {
    db_.Exec("ROLLBACK TO apply_one");
    db_.Exec("RELEASE apply_one");
  }
}

}  // namespace aidsync
