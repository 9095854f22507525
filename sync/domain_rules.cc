#include "sync/domain_rules.h"

#include <algorithm>
#include <tuple>

namespace aidsync {

Result<std::vector<RuleViolation>> CheckRules(Database& db, const SchemaDef& schema,
                                              const std::vector<TouchedRow>& rows) {
  // Each row once, in (table, id) order. Pointers into `rows`, not copies of
  // the ids: an import of a million rows checks them without a second copy.
  std::vector<const TouchedRow*> order;
  order.reserve(rows.size());
  for (const auto& row : rows) order.push_back(&row);
  auto key = [](const TouchedRow* r) { return std::tie(r->table->name, r->id); };
  std::sort(order.begin(), order.end(), [&](const TouchedRow* a, const TouchedRow* b) { return key(a) < key(b); });
  order.erase(std::unique(order.begin(), order.end(), [&](const TouchedRow* a, const TouchedRow* b) { return key(a) == key(b); }),
              order.end());

  // The statement text of each rule, made once per call rather than per row.
  std::vector<std::pair<const RuleDef*, std::string>> checks;
  for (const auto& rule : schema.rules)
    checks.emplace_back(&rule, "SELECT 1 FROM \"" + rule.table + "\" WHERE id = ? AND (" + rule.violation + ")");

  std::vector<RuleViolation> out;
  for (const TouchedRow* row : order) {
    for (const auto& [rule, sql] : checks) {
      if (rule->table != row->table->name) continue;
      auto stmt = db.Cached(sql);
      stmt->BindText(1, row->id);
      ASSIGN_OR_RETURN(bool violated, stmt->Step());
      if (violated) out.push_back({rule->name, rule->table, row->id, rule->message, rule->refuse_local_write});
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
