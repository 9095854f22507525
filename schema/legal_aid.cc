#include "schema/legal_aid.h"

namespace aidsync {
namespace {

ColumnDef Text(std::string name, std::vector<std::string> allowed = {}) {
  return ColumnDef{std::move(name), ColumnType::kText, std::move(allowed), std::nullopt, false};
}
// Prose that may run over several lines (newlines and tabs allowed).
ColumnDef FreeText(std::string name) { return ColumnDef{std::move(name), ColumnType::kText, {}, std::nullopt, true}; }
ColumnDef Integer(std::string name, std::optional<std::pair<int64_t, int64_t>> range = std::nullopt) {
  return ColumnDef{std::move(name), ColumnType::kInteger, {}, range, false};
}
ColumnDef Real(std::string name) { return ColumnDef{std::move(name), ColumnType::kReal, {}, std::nullopt, false}; }

std::vector<TableDef> LegalAidTables() {
  const auto kRef = TableClass::kReference;
  const auto kCase = TableClass::kCase;
  return {
      {"stations", kRef,
       {Text("code"), Text("name"), Text("role", {"hub", "station"}), Text("public_key"),
        Text("certificate")}},
      {"lawyers", kRef,
       {Text("name"), Text("firm"), Text("kind", {"lawyer", "intern", "assistant", "grassroots"}),
        Integer("practice_years", std::pair<int64_t, int64_t>{0, 80}), Text("phone"),
        Integer("active", std::pair<int64_t, int64_t>{0, 1})}},
      {"notices", kRef, {Text("title"), FreeText("body"), Text("issued_at")}},
      {"targets", kRef,
       {Integer("year", std::pair<int64_t, int64_t>{1990, 2200}), Text("station_code"),
        Text("metric", {"cases", "consultations", "lottery_cases"}),
        Integer("value", std::pair<int64_t, int64_t>{0, 100000000})}},
      {"duty_rota", kRef, {Text("lawyer_id"), Text("station_code"), Text("date"), Text("shift")}},
      {"applications", kCase,
       {Text("applicant_name"), Text("id_number"), Text("phone"), Text("address"),
        Text("category", {"criminal", "civil", "administrative"}), FreeText("matter"),
        Text("income_status", {"subsistence", "low_income", "other"}), Text("received_at"),
        Text("status", {"received", "approved", "rejected"}), FreeText("decision_basis"),
        Text("decided_at")}},
      {"cases", kCase,
       {Text("application_id"), Text("notice_number"), Text("lawyer_id"),
        Text("category", {"criminal", "civil", "administrative"}), Text("assigned_at"),
        Text("status", {"assigned", "in_progress", "closed"}), Text("funding", {"regular", "lottery"}),
        Text("outcome"), Real("recovered_amount"), Text("closed_at")}},
      {"consultations", kCase,
       {Text("channel", {"walk_in", "hotline_12348", "phone", "online"}), Text("topic"),
        FreeText("summary"), Text("consulted_at")}},
      {"hotline_tickets", kCase,
       {Text("caller"), Text("phone"), Text("topic"), FreeText("summary"), Text("received_at"),
        Text("status")}},
      {"return_visits", kCase,
       {Text("case_id"), Text("visited_at"), Integer("satisfaction", std::pair<int64_t, int64_t>{1, 5}),
        Integer("fee_charged", std::pair<int64_t, int64_t>{0, 1}), FreeText("note")}},
      {"complaints", kCase,
       {Text("case_id"), Text("lawyer_id"), Text("received_at"), FreeText("content"), Text("status"),
        FreeText("result")}},
      {"quality_reviews", kCase,
       {Text("case_id"), Text("reviewer"), Integer("score", std::pair<int64_t, int64_t>{0, 100}),
        FreeText("findings"), Text("reviewed_at")}},
  };
}

// The county's rules (shared/domain: "审批有依据，不批准也有依据", "实习律师及律师助理
// 不得办理法律援助案件，刑事法律援助案件必须指派执业三年以上的律师办理",
// "守住法律援助无偿服务的底线").
std::vector<RuleDef> LegalAidRules() {
  return {
      {"decision_basis", "applications",
       "status IN ('approved','rejected') AND trim(coalesce(decision_basis,'')) = ''",
       "an approval or rejection needs its legal basis (decision_basis)", true},
      {"known_lawyer", "cases",
       "lawyer_id IS NOT NULL AND lawyer_id NOT IN (SELECT id FROM lawyers)",
       "the case is assigned to a lawyer who is not in the roster", true},
      {"lawyer_kind", "cases",
       "lawyer_id IN (SELECT id FROM lawyers WHERE coalesce(kind,'') <> 'lawyer')",
       "interns, assistants and grassroots legal workers may not be assigned legal-aid cases", true},
      {"criminal_lawyer_experience", "cases",
       "category = 'criminal' AND lawyer_id IN "
       "(SELECT id FROM lawyers WHERE coalesce(practice_years,0) < 3)",
       "a criminal case must be assigned to a lawyer with at least three years of practice", true},
      {"no_fee", "return_visits", "fee_charged = 1",
       "the return visit records a fee charged: legal aid is free of charge", false},
  };
}

}  // namespace

const char* ColumnTypeName(ColumnType type) {
  switch (type) {
    case ColumnType::kInteger: return "INTEGER";
    case ColumnType::kReal: return "REAL";
    case ColumnType::kText: return "TEXT";
  }
  return "TEXT";
}

const char* TableClassName(TableClass cls) {
  return cls == TableClass::kReference ? "reference" : "case";
}

int TableDef::ColumnIndex(std::string_view column) const {
  for (size_t i = 0; i < columns.size(); ++i)
    if (columns[i].name == column) return static_cast<int>(i);
  return -1;
}

const TableDef* SchemaDef::FindTable(std::string_view name) const {
  for (const auto& t : tables)
    if (t.name == name) return &t;
  return nullptr;
}

SchemaDef LegalAidSchema() {
  SchemaDef schema;
  schema.version = 1;
  schema.tables = LegalAidTables();
  schema.rules = LegalAidRules();
  return schema;
}

}  // namespace aidsync
