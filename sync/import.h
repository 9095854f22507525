// Bulk import of legacy records (DESIGN 8 `aidsync import`): CSV with a header
// row of column names (RFC 4180, parsed by libcsv), or JSON lines (one object
// per line, parsed by nlohmann-json). Every row goes through the same checks
// as `put`, all rows in one LocalTransaction: all of them are stored, or none.
//
// Two optional columns are not table columns: `id` (a legacy record's own id;
// a fresh UUIDv7 otherwise) and `scope` (the node's own scope otherwise).
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "base/status.h"
#include "sync/replica.h"

namespace aidsync {

enum class ImportFormat { kAuto, kCsv, kJsonLines };

// Limits on an import file, which may come from anywhere.
struct ImportOptions {
  ImportFormat format = ImportFormat::kAuto;  // kAuto: JSON lines if the file starts with '{'
  // Longest CSV field or JSON line: stops one malformed quote from swallowing
  // the whole file into memory.
  size_t max_record_bytes = 1 << 20;
  // Widest header: no table has more columns than this.
  size_t max_columns = 256;
  // Called every few thousand rows with the rows stored so far and how far
  // into the file the reader is (for a progress display with time left).
  std::function<void(int64_t rows, int64_t bytes_read, int64_t bytes_total)> progress;
};

// Imports every record of `path` into `table`. Returns the number of rows
// stored. On any error — "line N: ..." naming the first bad record — nothing
// is stored. NotFound for a missing file or table.
Result<int64_t> ImportFile(Replica& replica, const std::string& table, const std::string& path,
                           const ImportOptions& options = {});

}  // namespace aidsync
