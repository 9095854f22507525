#include "node/report.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <string_view>

#include "crypto/certificate.h"
#include "crypto/keys.h"
#include "schema/scope.h"
#include "sync/sqlite.h"

namespace aidsync {
namespace {

double Round(double x, int decimals) {
  double f = std::pow(10.0, decimals);
  return std::round(x * f) / f;
}

// The year's rows of one table, counted per scope.
struct ScopeCounts {
  int64_t rows = 0;
  int64_t lottery = 0;  // cases only
};
using ByScope = std::map<std::string, ScopeCounts>;

// Runs `sql` with ?1 = "YYYY-" and returns its single row of numbers (NULL as
// unset).
Result<std::vector<std::optional<double>>> OneRow(Database& db, const std::string& sql, const std::string& prefix) {
  ASSIGN_OR_RETURN(Statement stmt, db.Prepare(sql));
  stmt.BindText(1, prefix);
  ASSIGN_OR_RETURN(bool row, stmt.Step());
  std::vector<std::optional<double>> out;
  if (!row) return out;
  for (int i = 0; i < stmt.ColumnCount(); ++i)
    out.push_back(stmt.IsNull(i) ? std::nullopt : std::optional<double>(stmt.ColumnDouble(i)));
  return out;
}

int64_t Int(const std::optional<double>& v) { return v ? static_cast<int64_t>(std::llround(*v)) : 0; }

// `SELECT scope, count(*), <extra> FROM table WHERE <date> in the year GROUP BY scope`.
Result<ByScope> CountByScope(Database& db, const std::string& table, const std::string& date,
                             const std::string& prefix, bool with_lottery) {
  std::string sql = "SELECT scope, count(*), " +
                    std::string(with_lottery ? "coalesce(sum(funding = 'lottery'), 0)" : "0") + " FROM \"" + table +
                    "\" WHERE substr(\"" + date + "\", 1, 5) = ?1 GROUP BY scope";
  ASSIGN_OR_RETURN(Statement stmt, db.Prepare(sql));
  stmt.BindText(1, prefix);
  ByScope out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    out[std::string(stmt.ColumnText(0))] = {stmt.ColumnInt(1), stmt.ColumnInt(2)};
  }
  return out;
}

// Sum over every scope in the subtree of `root`.
ScopeCounts SubtreeSum(const ByScope& counts, const std::string& root) {
  ScopeCounts sum;
  for (const auto& [scope, c] : counts) {
    if (ValidateScope(scope).ok() && ScopeContains(root, scope)) {
      sum.rows += c.rows;
      sum.lottery += c.lottery;
    }
  }
  return sum;
}

struct KnownStation {
  std::string code, name, scope;
};

// Every station of the `stations` table whose certificate verifies against
// this node's authority, by code; its scope is the certificate's (the row's
// own scope is the hub's: the row flows to every node).
Result<std::map<std::string, KnownStation>> KnownStations(Database& db, const PublicKey& authority) {
  ASSIGN_OR_RETURN(Statement stmt, db.Prepare("SELECT code, name, certificate FROM stations ORDER BY code, id"));
  std::map<std::string, KnownStation> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    if (stmt.IsNull(0) || stmt.IsNull(2)) continue;
    std::string code(stmt.ColumnText(0));
    if (out.count(code)) continue;
    auto bytes = FromHex(stmt.ColumnText(2));
    if (!bytes.ok()) continue;
    auto cert = Certificate::Parse(*bytes, authority);
    if (!cert.ok() || cert->fields().code != code) continue;
    std::string name = stmt.IsNull(1) ? cert->fields().name : std::string(stmt.ColumnText(1));
    out[code] = {code, name, cert->fields().scope};
  }
  return out;
}

Status FillTotals(Database& db, const std::string& p, Report* r) {
  ASSIGN_OR_RETURN(auto a, OneRow(db,
      "SELECT count(*), coalesce(sum(status = 'approved'), 0), coalesce(sum(status = 'rejected'), 0) "
      "FROM applications WHERE substr(received_at, 1, 5) = ?1", p));
  r->applications = {Int(a[0]), Int(a[1]), Int(a[2]), Int(a[0]) - Int(a[1]) - Int(a[2])};

  ASSIGN_OR_RETURN(auto c, OneRow(db,
      "SELECT count(*), coalesce(sum(category = 'criminal'), 0), coalesce(sum(category = 'civil'), 0), "
      "coalesce(sum(category = 'administrative'), 0), coalesce(sum(funding = 'lottery'), 0), "
      "coalesce(sum(status = 'closed'), 0), total(recovered_amount) "
      "FROM cases WHERE substr(assigned_at, 1, 5) = ?1", p));
  Report::Cases& cases = r->cases;
  cases.total = Int(c[0]);
  cases.criminal = Int(c[1]);
  cases.civil = Int(c[2]);
  cases.administrative = Int(c[3]);
  cases.lottery = Int(c[4]);
  cases.closed = Int(c[5]);
  cases.recovered_amount = Round(c[6].value_or(0), 2);
  if (cases.total > 0) cases.criminal_share = Round(static_cast<double>(cases.criminal) / cases.total, 3);

  ASSIGN_OR_RETURN(auto k, OneRow(db,
      "SELECT count(*), coalesce(sum(channel = 'walk_in'), 0), coalesce(sum(channel = 'hotline_12348'), 0), "
      "coalesce(sum(channel = 'phone'), 0), coalesce(sum(channel = 'online'), 0) "
      "FROM consultations WHERE substr(consulted_at, 1, 5) = ?1", p));
  r->consultations = {Int(k[0]), Int(k[1]), Int(k[2]), Int(k[3]), Int(k[4])};

  ASSIGN_OR_RETURN(auto h, OneRow(db,
      "SELECT count(*) FROM hotline_tickets WHERE substr(received_at, 1, 5) = ?1", p));
  r->hotline_tickets = Int(h[0]);

  ASSIGN_OR_RETURN(auto v, OneRow(db,
      "SELECT count(*), avg(satisfaction), coalesce(sum(satisfaction >= 4), 0), coalesce(sum(fee_charged = 1), 0) "
      "FROM return_visits WHERE substr(visited_at, 1, 5) = ?1", p));
  r->return_visits.total = Int(v[0]);
  if (v[1]) r->return_visits.satisfaction_avg = Round(*v[1], 2);
  r->return_visits.satisfied = Int(v[2]);
  r->return_visits.fee_charged = Int(v[3]);

  ASSIGN_OR_RETURN(Statement stmt, db.Prepare(
      "SELECT coalesce(nullif(trim(status), ''), '(unset)'), count(*) FROM complaints "
      "WHERE substr(received_at, 1, 5) = ?1 GROUP BY 1 ORDER BY 1"));
  stmt.BindText(1, p);
  while (true) {
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    int64_t n = stmt.ColumnInt(1);
    r->complaints.by_status[std::string(stmt.ColumnText(0))] += n;
    r->complaints.total += n;
  }
  return Status::OK();
}

void FillStations(const std::map<std::string, KnownStation>& known, const ByScope& apps, const ByScope& cases,
                  const ByScope& consultations, Report* r) {
  // Stations by scope; only those inside this node's scope are shown.
  std::map<std::string, std::vector<const KnownStation*>> at_scope;
  for (const auto& [code, s] : known) at_scope[s.scope].push_back(&s);
  auto count = [](const ByScope& m, const std::string& scope) {
    auto it = m.find(scope);
    return it == m.end() ? int64_t{0} : it->second.rows;
  };
  std::set<std::string> shown;
  for (const auto& [scope, group] : at_scope) {
    if (!ValidateScope(scope).ok() || !ScopeContains(r->node_scope, scope)) continue;
    Report::Station s;
    std::string codes, names;
    for (const KnownStation* k : group) {
      codes += (codes.empty() ? "" : "+") + k->code;
      names += (names.empty() ? "" : "、") + k->name;
    }
    s.code = codes;
    s.name = names;
    s.scope = scope;
    s.applications = count(apps, scope);
    s.cases = count(cases, scope);
    s.consultations = count(consultations, scope);
    r->stations.push_back(std::move(s));
    shown.insert(scope);
  }
  std::sort(r->stations.begin(), r->stations.end(),
            [](const Report::Station& a, const Report::Station& b) { return *a.code < *b.code; });
  // Scopes that are no shown station's, in scope order.
  std::set<std::string> others;
  for (const ByScope* m : {&apps, &cases, &consultations})
    for (const auto& [scope, c] : *m)
      if (!shown.count(scope)) others.insert(scope);
  for (const std::string& scope : others) {
    Report::Station s;
    s.scope = scope;
    s.applications = count(apps, scope);
    s.cases = count(cases, scope);
    s.consultations = count(consultations, scope);
    r->stations.push_back(std::move(s));
  }
}

Status FillTargets(Database& db, int year, const std::map<std::string, KnownStation>& known, const ByScope& cases,
                   const ByScope& consultations, Report* r) {
  ASSIGN_OR_RETURN(Statement stmt, db.Prepare(
      "SELECT station_code, metric, value FROM targets WHERE year = ?1 AND station_code IS NOT NULL "
      "AND metric IS NOT NULL AND value IS NOT NULL ORDER BY station_code, metric, id"));
  stmt.Bind(1, static_cast<int64_t>(year));
  while (true) {
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    Report::Target t;
    t.station_code = std::string(stmt.ColumnText(0));
    t.metric = std::string(stmt.ColumnText(1));
    t.target = stmt.ColumnInt(2);
    auto it = known.find(t.station_code);
    if (it != known.end()) {
      const std::string& scope = it->second.scope;
      if (!ValidateScope(scope).ok() || !ScopeContains(r->node_scope, scope)) continue;  // not this node's
      t.scope = scope;
      if (t.metric == "cases") t.actual = SubtreeSum(cases, scope).rows;
      if (t.metric == "lottery_cases") t.actual = SubtreeSum(cases, scope).lottery;
      if (t.metric == "consultations") t.actual = SubtreeSum(consultations, scope).rows;
      if (t.actual && t.target > 0) t.progress = Round(static_cast<double>(*t.actual) / t.target, 3);
    }
    r->targets.push_back(std::move(t));
  }
  return Status::OK();
}

// The month of a date of the year from what follows "YYYY-" (up to three
// characters): one or two digits then a non-digit or the end, 1-12; 0 if none.
int MonthOf(std::string_view after) {
  auto digit = [&](size_t i) { return i < after.size() && after[i] >= '0' && after[i] <= '9'; };
  if (!digit(0)) return 0;
  int m = after[0] - '0';
  if (digit(1)) {
    if (digit(2)) return 0;
    m = m * 10 + (after[1] - '0');
  }
  return m >= 1 && m <= 12 ? m : 0;
}

// One series of MonthlyFigures: `table`'s records of the year by the month of
// `date` and the value of `by`.
Status FillSeries(Database& db, const SchemaDef& schema, const std::string& table, const std::string& date,
                  const std::string& by, const std::string& prefix, MonthlyFigures::Series* out) {
  out->keys.clear();
  if (const TableDef* t = schema.FindTable(table)) {
    for (const ColumnDef& c : t->columns)
      if (c.name == by) out->keys = c.allowed;
  }
  out->keys.push_back("other");
  for (auto& month : out->months)
    for (const auto& key : out->keys) month[key] = 0;
  // Grouped by the three characters after "YYYY-" (enough for MonthOf) and the value.
  ASSIGN_OR_RETURN(Statement stmt,
                   db.Prepare("SELECT substr(\"" + date + "\", 6, 3), \"" + by + "\", count(*) FROM \"" + table +
                              "\" WHERE substr(\"" + date + "\", 1, 5) = ?1 GROUP BY 1, 2"));
  stmt.BindText(1, prefix);
  while (true) {
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    int month = stmt.IsNull(0) ? 0 : MonthOf(stmt.ColumnText(0));
    int64_t n = stmt.ColumnInt(2);
    if (month == 0) {
      out->no_month += n;
      continue;
    }
    std::string key = stmt.IsNull(1) ? "other" : std::string(stmt.ColumnText(1));
    if (std::find(out->keys.begin(), out->keys.end(), key) == out->keys.end()) key = "other";
    out->months[month - 1][key] += n;
  }
  return Status::OK();
}

}  // namespace

Result<Report> BuildReport(Replica& replica, int year, MonthlyFigures* monthly) {
  if (year < kReportMinYear || year > kReportMaxYear)
    return Status::InvalidArgument("the report year must be between " + std::to_string(kReportMinYear) + " and " +
                                   std::to_string(kReportMaxYear) + ", not " + std::to_string(year));
  Report r;
  r.year = year;
  r.node_code = replica.identity().code;
  r.node_name = replica.identity().name;
  r.node_scope = replica.identity().scope;

  // One read transaction on a read-only connection: every figure comes from
  // the same snapshot of the WAL.
  Database::Options options;
  options.read_only = true;
  options.vfs = replica.env().sqlite_vfs;
  ASSIGN_OR_RETURN(std::unique_ptr<Database> db, Database::Open(replica.dir() + "/replica.db", options));
  RETURN_IF_ERROR(db->Exec("BEGIN"));
  const std::string prefix = std::to_string(year) + "-";

  RETURN_IF_ERROR(FillTotals(*db, prefix, &r));
  ASSIGN_OR_RETURN(auto known, KnownStations(*db, replica.identity().authority));
  // This node knows itself before its `stations` row reaches it.
  if (!r.node_code.empty() && !known.count(r.node_code))
    known[r.node_code] = {r.node_code, r.node_name, r.node_scope};
  ASSIGN_OR_RETURN(ByScope apps, CountByScope(*db, "applications", "received_at", prefix, false));
  ASSIGN_OR_RETURN(ByScope cases, CountByScope(*db, "cases", "assigned_at", prefix, true));
  ASSIGN_OR_RETURN(ByScope consultations, CountByScope(*db, "consultations", "consulted_at", prefix, false));
  FillStations(known, apps, cases, consultations, &r);
  RETURN_IF_ERROR(FillTargets(*db, year, known, cases, consultations, &r));
  if (monthly) {
    const SchemaDef& s = replica.schema();
    RETURN_IF_ERROR(FillSeries(*db, s, "applications", "received_at", "category", prefix, &monthly->applications));
    RETURN_IF_ERROR(FillSeries(*db, s, "cases", "assigned_at", "category", prefix, &monthly->cases));
    RETURN_IF_ERROR(FillSeries(*db, s, "consultations", "consulted_at", "channel", prefix, &monthly->consultations));
  }
  RETURN_IF_ERROR(db->Exec("COMMIT"));
  return r;
}

}  // namespace aidsync
