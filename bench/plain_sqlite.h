// The reference every scenario is compared with: the same records inserted
// into a plain SQLite table (id, scope and the ten columns; WAL,
// synchronous=FULL, like the replica), with no CRDT metadata, log, signature
// or network. The figures are ratios against this, measured in the
// same run on the same disk, because absolute rates differ between machines.
#pragma once

#include <cstdint>
#include <string>

#include "base/status.h"

namespace aidsync::bench {

// Inserts records [0, count) (bench/records.h) into a fresh database at
// `path` with `rows_per_transaction` rows per BEGIN ... COMMIT, ids made the
// way aidsync makes them (UUIDv7 text). Returns the seconds the inserts and
// commits took (opening and creating the table excluded); with
// `include_close`, also closing the database, which checkpoints the WAL into
// it: the reference for whole commands (`import`, `sync`), whose own time
// includes their close. IOError naming the step on failure.
Result<double> PlainInsertSeconds(const std::string& path, int64_t count, int64_t rows_per_transaction,
                                  bool include_close = false);

}  // namespace aidsync::bench
