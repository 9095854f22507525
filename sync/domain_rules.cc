#include "sync/domain_rules.h"

#include <set>

namespace aidsync {

Result<std::vector<RuleViolation>> CheckRules(Database& db, const SchemaDef& schema,
                                              const std::vector<TouchedRow>& rows) {
  std::vector<RuleViolation> out;
  std::set<std::pair<std::string, std::string>> seen;
  for (const auto& row : rows) {
    if (!seen.insert({row.table->name, row.id}).second) continue;
    for (const auto& rule : schema.rules) {
      if (rule.table != row.table->name) continue;
      auto stmt = db.Cached("SELECT 1 FROM \"" + rule.table + "\" WHERE id = ? AND (" + rule.violation + ")");
      stmt->BindText(1, row.id);
      ASSIGN_OR_RETURN(bool violated, stmt->Step());
      if (violated) out.push_back({rule.name, rule.table, row.id, rule.message, rule.refuse_local_write});
    }
  }
  return out;
}

Result<std::vector<RuleViolation>> FindViolations(Database& db, const SchemaDef& schema, int limit) {
  std::vector<RuleViolation> out;
  for (const auto& rule : schema.rules) {
    auto stmt = db.Cached("SELECT id FROM \"" + rule.table + "\" WHERE (" + rule.violation +
                          ") ORDER BY id LIMIT ?");
    stmt->Bind(1, static_cast<int64_t>(limit));
    while (true) {
      ASSIGN_OR_RETURN(bool row, stmt->Step());
      if (!row) break;
      out.push_back({rule.name, rule.table, std::string(stmt->ColumnText(0)), rule.message,
                     rule.refuse_local_write});
    }
  }
  return out;
}

}  // namespace aidsync
