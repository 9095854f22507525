// The legal-aid domain rules (schema/legal_aid.h RuleDef) run against the
// replica: to refuse a local write, and to raise alerts about rows already
// stored, including rows received from other nodes (a received changeset is a
// signed fact and is applied; the rule it breaks becomes an alert).
#pragma once

#include <string>
#include <vector>

#include "base/status.h"
#include "schema/legal_aid.h"
#include "sync/merge.h"
#include "sync/sqlite.h"

namespace aidsync {

struct RuleViolation {
  std::string rule;     // RuleDef::name
  std::string table;
  std::string id;
  std::string message;
  bool refuse = true;   // RuleDef::refuse_local_write
};

// Checks every rule of each touched row's table against that row as it now
// stands in `db` (deleted rows break no rule). Each (row, rule) reported once,
// in (table, id) order.
Result<std::vector<RuleViolation>> CheckRules(Database& db, const SchemaDef& schema,
                                              const std::vector<TouchedRow>& rows);

// Every row in the replica that breaks a rule, at most `limit` per rule.
Result<std::vector<RuleViolation>> FindViolations(Database& db, const SchemaDef& schema, int limit);

}  // namespace aidsync
