// Fuzz target `import`: `aidsync import` of CSV and JSON-lines files
// (sync/import.h, libcsv and nlohmann-json under the product's limits) into a
// real replica of station 0512 (tests/fuzz/fuzz_county.h). An import file may
// come from any old spreadsheet; none may crash the node or store part of
// itself.
//
// Input: byte 0 chooses the format (0 CSV, 1 JSON lines, 2 auto-detect, mod
// 3), byte 1 the table (mod the schema's table count), the rest is the file.
//
// Checked per input: an import that fails leaves the log and the table exactly
// as they were (all rows or none); one that succeeds adds at most as many
// rows to the table as it reports.
#include <cstdint>
#include <string>

#include "sync/import.h"
#include "tests/fuzz/fuzz_county.h"
#include "tests/fuzz/fuzz_support.h"

namespace aidsync::fuzz {

std::vector<std::string> ExpectedDepths() { return {"import stored rows", "import refused a record"}; }

namespace {

std::string TableText(Replica& replica, const std::string& table) {
  auto rows = replica.List(table);
  if (!rows.ok()) Fail("cannot list " + table + ": " + rows.status().ToString());
  std::string out;
  for (const auto& row : *rows) {
    for (const auto& [column, value] : row) out += column + "=" + value.ToDisplay() + " ";
    out += "\n";
  }
  return out;
}

size_t RowCount(Replica& replica, const std::string& table) {
  auto rows = replica.List(table);
  return rows.ok() ? rows->size() : 0;
}

}  // namespace
}  // namespace aidsync::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace aidsync;
  using namespace aidsync::fuzz;
  if (size < 2) return 0;
  County& county = County::Get();
  ImportOptions options;  // the product's limits
  const ImportFormat formats[] = {ImportFormat::kCsv, ImportFormat::kJsonLines, ImportFormat::kAuto};
  options.format = formats[data[0] % 3];
  const std::string path = county.ScratchFile("import-input");
  testing::WriteFile(path, std::string(reinterpret_cast<const char*>(data) + 2, size - 2));

  Replica& replica = *county.Fresh(NodeId::k0512).replica;
  const auto& tables = replica.schema().tables;
  const std::string table = tables[data[1] % tables.size()].name;
  const int64_t log_before = LogSize(replica);
  const std::string table_before = TableText(replica, table);
  const size_t rows_before = RowCount(replica, table);

  auto imported = ImportFile(replica, table, path, options);
  Note("import into " + table + ": " + (imported.ok() ? std::to_string(*imported) + " rows" : imported.status().ToString()));
  if (!imported.ok()) {
    Reached("import refused a record");
    AIDSYNC_FUZZ_CHECK(LogSize(replica) == log_before, "a failed import changed the log: " + imported.status().ToString());
    AIDSYNC_FUZZ_CHECK(TableText(replica, table) == table_before,
                       "a failed import changed " + table + ": " + imported.status().ToString());
    return 0;
  }
  if (*imported > 0) Reached("import stored rows");
  AIDSYNC_FUZZ_CHECK(*imported >= 0, "negative row count");
  AIDSYNC_FUZZ_CHECK(RowCount(replica, table) <= rows_before + static_cast<size_t>(*imported),
                     "the import added more rows than it reported");
  return 0;
}
