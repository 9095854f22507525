#include "bench/plain_sqlite.h"

#include <chrono>
#include <vector>

#include "base/env.h"
#include "bench/records.h"
#include "sync/ids.h"
#include "sync/sqlite.h"

namespace aidsync::bench {

Result<double> PlainInsertSeconds(const std::string& path, int64_t count, int64_t rows_per_transaction,
                                  bool include_close) {
  Database::Options options;
  options.create = true;
  ASSIGN_OR_RETURN(auto db, Database::Open(path, options));  // WAL, synchronous=FULL
  std::string create = "CREATE TABLE records(id TEXT PRIMARY KEY, scope TEXT NOT NULL";
  std::string insert = "INSERT INTO records VALUES(?, ?";
  for (const auto& column : RecordColumns()) {
    create += ", " + column + " TEXT";
    insert += ", ?";
  }
  RETURN_IF_ERROR(db->Exec(create + ")"));
  ASSIGN_OR_RETURN(Statement stmt, db->Prepare(insert + ")"));

  // The same economies as aidsync's writers: ids from a buffered random
  // source, values bound without SQLite's copy.
  Env env = Env::Default();
  BufferedRandom random(*env.random);
  const auto start = std::chrono::steady_clock::now();
  for (int64_t done = 0; done < count;) {
    RETURN_IF_ERROR(db->Exec("BEGIN IMMEDIATE"));
    for (int64_t i = 0; i < rows_per_transaction && done < count; ++i, ++done) {
      // The record is made inside the timed loop, as aidsync's writers make theirs.
      const auto record = MakeRecord(done);
      const std::string id = NewRowId(*env.clock, random);
      stmt.BindTextView(1, id).BindTextView(2, "430123/05");
      for (size_t c = 0; c < record.size(); ++c) stmt.BindTextView(static_cast<int>(c) + 3, record[c].second);
      RETURN_IF_ERROR(stmt.Run());
      stmt.Reset();
    }
    RETURN_IF_ERROR(db->Exec("COMMIT"));
  }
  if (include_close) {
    stmt = Statement();
    db.reset();  // the last connection checkpoints the WAL into the database
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace aidsync::bench
