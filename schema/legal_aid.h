// The replicated tables: the declaration the engine is generic over, and the
// legal-aid schema that ships (DESIGN section 3).
//
// Every replicated table also has `id` (TEXT PRIMARY KEY) and `scope` (TEXT);
// they are not listed in `columns`. Names are the contract other programs and
// reports query: never rename a table or column; add columns at the end only.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace aidsync {

enum class ColumnType { kInteger, kReal, kText };
const char* ColumnTypeName(ColumnType type);  // "INTEGER", "REAL", "TEXT"

// Which way a table's rows flow between nodes (DESIGN 3).
enum class TableClass : uint8_t {
  kReference = 0,  // hub-written roster, notices, targets: flows down the scope tree
  kCase = 1,       // applicants' records: flows only up the scope tree
};
const char* TableClassName(TableClass cls);  // "reference" / "case"

struct ColumnDef {
  std::string name;
  ColumnType type = ColumnType::kText;
  // For enumerated TEXT columns, the values a local write may use; empty = any.
  std::vector<std::string> allowed;
  // For INTEGER columns, the inclusive range a local write may use.
  std::optional<std::pair<int64_t, int64_t>> range;
  // A TEXT column of free prose (a summary, a note): a local write may put
  // newlines and tabs in it. Every other column holds one line without
  // control characters (CheckTextContent in sync/values.h).
  bool free_text = false;
};

struct TableDef {
  std::string name;
  TableClass cls = TableClass::kCase;
  std::vector<ColumnDef> columns;

  // Index of `column` in `columns`, or -1.
  int ColumnIndex(std::string_view column) const;
};

// A legal-aid domain rule (DESIGN 3), as an SQL predicate over one table's
// rows that is true for a row that breaks the rule. The same predicate refuses
// local writes (when `refuse_local_write`) and raises alerts for rows already
// in the replica, so there is one definition of each rule.
struct RuleDef {
  std::string name;        // short stable id, e.g. "criminal_lawyer_experience"
  std::string table;
  std::string violation;   // SQL boolean expression over the table's columns
  std::string message;     // what is wrong, in words an admin can act on
  bool refuse_local_write = true;  // false: allowed, but raises an alert (no-fee rule)
};

struct SchemaDef {
  // Bumped when tables or columns are added; a replica that stored changesets
  // naming unknown columns re-materializes them after an upgrade.
  uint32_t version = 0;
  std::vector<TableDef> tables;
  std::vector<RuleDef> rules;

  // The table named `name`, or nullptr.
  const TableDef* FindTable(std::string_view name) const;
};

// The legal-aid schema of DESIGN section 3, built fresh (a value, not a global).
SchemaDef LegalAidSchema();

}  // namespace aidsync
