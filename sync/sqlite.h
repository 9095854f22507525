// RAII wrappers over the SQLite C API: a Database owns a connection and its
// cached prepared statements; a Statement owns one sqlite3_stmt; a
// Transaction rolls back unless committed.
//
// None of these are thread-safe: one Database per thread (SQLite's own
// locking coordinates several connections and processes on one file).
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "base/status.h"

namespace aidsync {

class Database;

// One prepared statement. Movable, not copyable; finalized on destruction.
class Statement {
 public:
  Statement() = default;
  Statement(Database* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&& other) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement();

  // Binders use 1-based parameter indexes, as SQLite does. Text and blobs are
  // copied by SQLite (SQLITE_TRANSIENT), so the caller's buffer may go away.
  Statement& Bind(int index, int64_t value);
  Statement& Bind(int index, double value);
  Statement& BindText(int index, std::string_view value);
  Statement& BindBlob(int index, std::string_view value);
  Statement& BindNull(int index);
  // The same without SQLite's copy (SQLITE_STATIC), for hot paths: the
  // caller keeps `value`'s bytes alive and unchanged until the statement is
  // reset (a CachedStatement going out of scope) or the parameter rebound.
  // Copying every value of a sync batch or an import was about 8% of its
  // instructions (docs/PERFORMANCE.md).
  Statement& BindTextView(int index, std::string_view value);
  Statement& BindBlobView(int index, std::string_view value);

  // Advances. Returns true when a row is ready, false when done; an error
  // Status (IOError, Corruption, Busy, ...) naming the statement otherwise.
  Result<bool> Step();
  // Step() for statements that return no rows.
  Status Run();
  // Resets and clears bindings so the statement can run again.
  void Reset();

  int ColumnCount() const { return sqlite3_column_count(stmt_); }
  int ColumnType(int i) const { return sqlite3_column_type(stmt_, i); }
  bool IsNull(int i) const { return ColumnType(i) == SQLITE_NULL; }
  int64_t ColumnInt(int i) const { return sqlite3_column_int64(stmt_, i); }
  double ColumnDouble(int i) const { return sqlite3_column_double(stmt_, i); }
  // Valid until the next Step/Reset.
  std::string_view ColumnText(int i) const;
  std::string_view ColumnBlob(int i) const;
  const char* ColumnName(int i) const { return sqlite3_column_name(stmt_, i); }

  sqlite3_stmt* raw() const { return stmt_; }

 private:
  Database* db_ = nullptr;
  sqlite3_stmt* stmt_ = nullptr;
};

// A statement borrowed from the Database's cache: reset (and its bindings
// cleared) when the borrow ends, so the next user finds it clean.
class CachedStatement {
 public:
  explicit CachedStatement(Statement* stmt) : stmt_(stmt) {}
  ~CachedStatement() { stmt_->Reset(); }
  CachedStatement(const CachedStatement&) = delete;
  CachedStatement& operator=(const CachedStatement&) = delete;
  Statement* operator->() { return stmt_; }
  Statement& operator*() { return *stmt_; }

 private:
  Statement* stmt_;
};

class Database {
 public:
  struct Options {
    bool read_only = false;
    bool create = false;           // create the file if missing
    std::string vfs;               // empty: SQLite's default VFS
    int busy_timeout_ms = 30000;   // how long to wait for another process's write
  };

  // Opens `path`. NotFound if it is missing and !create; Corruption if it is
  // not a SQLite database; IOError otherwise. Read-write connections are put
  // in WAL mode with synchronous=FULL and foreign keys off.
  static Result<std::unique_ptr<Database>> Open(const std::string& path, const Options& options);

  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // Runs one or more statements that return no rows.
  Status Exec(const std::string& sql);
  // Prepares one statement. InvalidArgument with SQLite's message if it does not compile.
  Result<Statement> Prepare(std::string_view sql);
  // A prepared statement kept for the connection's lifetime, for hot paths.
  // Aborts (programming error) if `sql` does not compile.
  CachedStatement Cached(const std::string& sql);

  // Converts the connection's last error into a Status with `context`.
  Status LastError(const std::string& context) const;
  // Runs PRAGMA quick_check; Corruption naming the first problem if not "ok".
  Status QuickCheck();

  int64_t LastInsertRowId() const { return sqlite3_last_insert_rowid(db_); }
  int Changes() const { return sqlite3_changes(db_); }
  // True inside BEGIN ... COMMIT on this connection.
  bool InTransaction() const { return sqlite3_get_autocommit(db_) == 0; }
  sqlite3* raw() const { return db_; }

 private:
  explicit Database(sqlite3* db) : db_(db) {}
  sqlite3* db_;
  std::unordered_map<std::string, std::unique_ptr<Statement>> cache_;
};

// Maps an SQLite result code to a Status: SQLITE_FULL is an IOError saying the
// disk is full, SQLITE_BUSY/LOCKED is Busy, SQLITE_CORRUPT/NOTADB Corruption,
// SQLITE_READONLY/CANTOPEN/IOERR IOError, constraint failures InvalidArgument.
Status StatusFromSqlite(int rc, const std::string& context, const char* sqlite_message);
// The same for the last error of connection `db`, naming the cause that
// SQLite's own message ("disk I/O error", "unable to open database file")
// leaves out: the OS error when SQLite kept it, else a read-only or full file
// system under the database, or a file size limit (ulimit -f) on this process
// that its files reached. SQLITE_CANTOPEN is NotFound only when no such cause
// is found (a missing file), IOError otherwise.
Status StatusFromSqlite(sqlite3* db, int rc, const std::string& context);

// BEGIN IMMEDIATE ... COMMIT; rolls back on destruction unless committed.
// IMMEDIATE takes the write lock up front, so counters read inside the
// transaction (sequence numbers, HLC, notice numbers) cannot be read by two
// processes at once.
class Transaction {
 public:
  static Result<std::unique_ptr<Transaction>> Begin(Database& db);
  Status Commit();
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

 private:
  explicit Transaction(Database& db) : db_(db) {}
  Database& db_;
  bool done_ = false;
};

// A SAVEPOINT inside a transaction: rolls back to its start on destruction
// unless released. Used to apply one received changeset so a refusal halfway
// leaves nothing of it behind.
class Savepoint {
 public:
  static Result<std::unique_ptr<Savepoint>> Begin(Database& db);
  Status Release();
  ~Savepoint();
  Savepoint(const Savepoint&) = delete;
  Savepoint& operator=(const Savepoint&) = delete;

 private:
  explicit Savepoint(Database& db) : db_(db) {}
  Database& db_;
  bool done_ = false;
};

}  // namespace aidsync
