#include "node/status_json.h"

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <map>
#include <optional>

#include "node/cli.h"
#include "node/report.h"
#include "sync/peers.h"

namespace aidsync {
namespace {

constexpr int64_t kDayMs = 24 * 60 * 60 * 1000;

nlohmann::json TimeOrNull(int64_t ms) { return ms > 0 ? nlohmann::json(IsoTime(ms)) : nlohmann::json(nullptr); }

nlohmann::json TextOrNull(const std::string& text) {
  return text.empty() ? nlohmann::json(nullptr) : nlohmann::json(text);
}

nlohmann::json VersionToJson(const ConflictVersion& v, bool with_values) {
  nlohmann::json out = {{"value", with_values ? cli::ValueToJson(v.value) : nlohmann::json(nullptr)},
                        {"author", v.author},
                        {"author_key", v.author_key},
                        {"time", IsoTime(v.time_ms)},
                        {"time_ms", v.time_ms},
                        {"changeset", v.changeset}};
  if (!with_values) out["value_hidden"] = true;
  return out;
}

// Every enrolled node other than this one, by station code: the trust
// store's certificate for each code in the replicated `stations` table.
Result<std::vector<Certificate>> OtherNodes(Replica& replica) {
  ASSIGN_OR_RETURN(std::vector<Row> rows, replica.List("stations"));
  std::vector<Certificate> out;
  for (const auto& row : rows) {
    auto code = std::find_if(row.begin(), row.end(), [](const auto& cv) { return cv.first == "code"; });
    if (code == row.end() || !std::holds_alternative<std::string>(code->second.v)) continue;
    ASSIGN_OR_RETURN(std::optional<Certificate> cert,
                     replica.CertificateByCode(std::get<std::string>(code->second.v)));
    if (!cert || cert->fields().node_key.Hex() == replica.identity().key.Hex()) continue;
    if (std::any_of(out.begin(), out.end(), [&](const Certificate& c) { return c.fields().code == cert->fields().code; }))
      continue;
    out.push_back(std::move(*cert));
  }
  std::sort(out.begin(), out.end(),
            [](const Certificate& a, const Certificate& b) { return a.fields().code < b.fields().code; });
  return out;
}

// The scope of the row a domain-rule alert ("TABLE ID: message") is about,
// if the alert is one and the row exists; "" otherwise.
std::string RowScopeOfAlert(Replica& replica, const std::string& alert) {
  size_t space = alert.find(' ');
  if (space == std::string::npos) return "";
  size_t colon = alert.find(": ", space + 1);
  if (colon == std::string::npos) return "";
  std::string table = alert.substr(0, space);
  std::string id = alert.substr(space + 1, colon - space - 1);
  if (replica.schema().FindTable(table) == nullptr || id.empty() || id.find(' ') != std::string::npos) return "";
  auto row = replica.Get(table, id);
  if (!row.ok() || !row->has_value()) return "";
  for (const auto& [column, value] : **row)
    if (column == "scope" && std::holds_alternative<std::string>(value.v)) return std::get<std::string>(value.v);
  return "";
}

bool Mentions(const std::string& alert, const CertificateFields& f) {
  return alert.find(f.name) != std::string::npos || alert.find("(" + f.code + ")") != std::string::npos ||
         alert.find(f.node_key.Hex().substr(0, 16)) != std::string::npos;
}

// A station's `history`: its sessions ending at or after `since_ms`, oldest
// first, at most the newest kHistoryMaxSessions (`*truncated` if there were more).
Result<nlohmann::json> HistoryJson(Replica& replica, const std::string& key, int64_t since_ms, bool* truncated) {
  ASSIGN_OR_RETURN(std::vector<SessionRecord> sessions, replica.Sessions(key, since_ms, kHistoryMaxSessions + 1));
  *truncated = static_cast<int64_t>(sessions.size()) > kHistoryMaxSessions;
  nlohmann::json out = nlohmann::json::array();
  for (size_t i = *truncated ? 1 : 0; i < sessions.size(); ++i) {
    const SessionRecord& r = sessions[i];
    out.push_back({{"start", IsoTime(r.started_ms)}, {"end", IsoTime(r.ended_ms)},
                   {"start_ms", r.started_ms}, {"end_ms", r.ended_ms},
                   {"as_server", r.as_server},
                   {"sent", r.changesets_sent}, {"received", r.changesets_received},
                   {"bytes_sent", r.bytes_sent}, {"bytes_received", r.bytes_received},
                   {"ok", r.error.empty()}, {"error", TextOrNull(r.error)}});
  }
  return out;
}

// The local calendar year of `ms` on this machine, as `report` takes it.
int LocalYear(int64_t ms) {
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  localtime_r(&secs, &tm);
  return tm.tm_year + 1900;
}

nlohmann::json SeriesJson(const MonthlyFigures::Series& s, const char* by, int64_t total) {
  nlohmann::json months = nlohmann::json::array();
  for (const auto& month : s.months) {
    nlohmann::json m = nlohmann::json::object();
    for (const auto& key : s.keys) m[key] = month.at(key);
    months.push_back(std::move(m));
  }
  return {{"by", by}, {"keys", s.keys}, {"months", std::move(months)}, {"no_month", s.no_month}, {"total", total}};
}

// `figures`: the year's records per month (MonthlyFigures) and the targets
// of BuildReport, each with its station's name when this node knows it.
// Null when the clock's year is outside what a report may cover.
Result<nlohmann::json> FiguresJson(Replica& replica, int year, const std::map<std::string, std::string>& names) {
  if (year < kReportMinYear || year > kReportMaxYear) return nlohmann::json(nullptr);
  MonthlyFigures monthly;
  ASSIGN_OR_RETURN(Report r, BuildReport(replica, year, &monthly));
  auto opt = [](const auto& v) { return v ? nlohmann::json(*v) : nlohmann::json(nullptr); };
  nlohmann::json targets = nlohmann::json::array();
  for (const auto& t : r.targets) {
    auto name = names.find(t.station_code);
    targets.push_back({{"station_code", t.station_code},
                       {"station_name", name == names.end() ? nlohmann::json(nullptr) : nlohmann::json(name->second)},
                       {"metric", t.metric}, {"target", t.target}, {"scope", opt(t.scope)},
                       {"actual", opt(t.actual)}, {"progress", opt(t.progress)}});
  }
  return nlohmann::json{{"year", year},
                        {"applications", SeriesJson(monthly.applications, "category", r.applications.received)},
                        {"cases", SeriesJson(monthly.cases, "category", r.cases.total)},
                        {"consultations", SeriesJson(monthly.consultations, "channel", r.consultations.total)},
                        {"targets", std::move(targets)}};
}

}  // namespace

std::string IsoTime(int64_t ms) {
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

nlohmann::json StatusToJson(const ReplicaStatus& s) {
  nlohmann::json forks = nlohmann::json::array();
  for (const auto& f : s.forks)
    forks.push_back({{"author", f.author}, {"author_key", f.author_key}, {"scope", f.scope},
                     {"class", TableClassName(f.cls)}, {"seq", f.seq}});
  nlohmann::json peers = nlohmann::json::array();
  for (const auto& p : s.peers) {
    peers.push_back({{"id", p.id}, {"name", p.name}, {"code", p.code}, {"address", p.address},
                     {"last_seen", TimeOrNull(p.last_seen_ms)}, {"last_sync", TimeOrNull(p.last_sync_ms)},
                     {"pending_out", p.pending_out}, {"pending_in", p.pending_in},
                     {"clock_offset_ms", p.clock_offset_ms}, {"last_error", TextOrNull(p.last_error)}});
  }
  nlohmann::json rejected = nlohmann::json::object();
  for (const auto& [reason, n] : s.rejected) rejected[reason] = n;
  nlohmann::json revoked = nlohmann::json::array();
  for (const auto& r : s.revoked)
    revoked.push_back({{"key", r.key}, {"name", r.name}, {"code", r.code}, {"revoked_at", IsoTime(r.revoked_at_ms)}});
  return {
      {"node",
       {{"id", s.node.key.Hex()}, {"name", s.node.name}, {"code", s.node.code},
        {"role", RoleName(s.node.role)}, {"scope", s.node.scope}, {"enrolled", s.node.enrolled}}},
      {"log",
       {{"own_changesets", s.own_changesets}, {"total_changesets", s.total_changesets},
        {"held_changesets", s.held_changesets}}},
      {"peers", peers},
      {"conflicts_open", s.conflicts_open},
      {"forks", forks},
      {"revoked", revoked},
      {"rejected", rejected},
      {"alerts", s.alerts},
  };
}

nlohmann::json ConflictsToJson(const std::vector<Conflict>& conflicts, bool with_values) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& c : conflicts) {
    nlohmann::json losers = nlohmann::json::array();
    for (const auto& l : c.losers) losers.push_back(VersionToJson(l, with_values));
    out.push_back({{"table", c.table}, {"id", c.id}, {"column", c.column}, {"row_deleted", c.row_deleted},
                   {"winner", c.winner ? VersionToJson(*c.winner, with_values) : nlohmann::json(nullptr)},
                   {"losers", losers}});
  }
  return out;
}

Result<nlohmann::json> ApiStatusJson(Replica& replica, const ApiStatusOptions& options) {
  ASSIGN_OR_RETURN(ReplicaStatus status, replica.GetStatus());
  ASSIGN_OR_RETURN(std::vector<Conflict> conflicts, replica.Conflicts());
  ASSIGN_OR_RETURN(std::vector<Certificate> nodes, OtherNodes(replica));
  std::map<std::string, const PeerRecord*> peers;  // by node key
  for (const auto& p : status.peers) peers[p.id] = &p;
  std::map<std::string, bool> revoked;
  for (const auto& r : status.revoked) revoked[r.key] = true;
  std::vector<std::string> row_scopes;  // per node alert: the scope of the row it is about, or ""
  for (const auto& a : status.alerts) row_scopes.push_back(RowScopeOfAlert(replica, a));

  const bool hub = status.node.role == Role::kHub;
  const int64_t silent_ms = static_cast<int64_t>(options.silent_days) * kDayMs;
  const int64_t history_from = options.now_ms - kHistoryDays * kDayMs;
  std::map<std::string, std::string> names;  // station code -> name, for the targets
  names[status.node.code] = status.node.name;
  nlohmann::json stations = nlohmann::json::array();
  std::vector<std::string> silent_alerts;
  for (const auto& cert : nodes) {
    const CertificateFields& f = cert.fields();
    const std::string key = f.node_key.Hex();
    auto found = peers.find(key);
    const PeerRecord* peer = found == peers.end() ? nullptr : found->second;
    const bool is_revoked = revoked.count(key) > 0;
    std::vector<std::string> alerts;
    for (size_t i = 0; i < status.alerts.size(); ++i)
      if (Mentions(status.alerts[i], f) || (!row_scopes[i].empty() && row_scopes[i] == f.scope))
        alerts.push_back(status.alerts[i]);
    const std::string who = f.name + " (" + f.code + ")";
    // The hub expects every station; any other node only the peers it has met.
    if (!is_revoked && (hub || peer != nullptr)) {
      int64_t seen = peer ? peer->last_seen_ms : 0;
      int64_t since = seen > 0 ? seen : f.issued_at_ms;
      if (options.now_ms - since > silent_ms) {
        std::string days = std::to_string((options.now_ms - since) / kDayMs);
        silent_alerts.push_back(seen > 0 ? "silent: " + who + " last seen " + IsoTime(seen) + ", " + days + " days ago"
                                         : "silent: " + who + " never seen since it was enrolled " +
                                               IsoTime(f.issued_at_ms) + ", " + days + " days ago");
        alerts.push_back(silent_alerts.back());
      }
    }
    bool clock_alert = std::any_of(alerts.begin(), alerts.end(), [](const std::string& a) { return a.rfind("clock:", 0) == 0; });
    if (peer && std::llabs(peer->clock_offset_ms) > kClockAlertMs && !clock_alert)
      alerts.push_back("clock: " + who + " is " + std::to_string(peer->clock_offset_ms / 60000) +
                       " minutes off this node's clock");
    names[f.code] = f.name;
    bool truncated = false;
    ASSIGN_OR_RETURN(nlohmann::json history, HistoryJson(replica, key, history_from, &truncated));
    nlohmann::json unknown(nullptr);
    stations.push_back({{"name", f.name},
                        {"code", f.code},
                        {"role", RoleName(f.role)},
                        {"scope", f.scope},
                        {"key", key},
                        {"enrolled_at", IsoTime(f.issued_at_ms)},
                        {"revoked", is_revoked},
                        {"last_seen", peer ? TimeOrNull(peer->last_seen_ms) : unknown},
                        {"last_sync", peer ? TimeOrNull(peer->last_sync_ms) : unknown},
                        {"pending_out", peer ? nlohmann::json(peer->pending_out) : unknown},
                        {"pending_in", peer ? nlohmann::json(peer->pending_in) : unknown},
                        {"clock_offset_ms", peer ? nlohmann::json(peer->clock_offset_ms) : unknown},
                        {"last_error", peer ? TextOrNull(peer->last_error) : unknown},
                        {"alerts", alerts},
                        {"history", std::move(history)},
                        {"history_truncated", truncated}});
  }
  ASSIGN_OR_RETURN(nlohmann::json figures, FiguresJson(replica, LocalYear(options.now_ms), names));
  for (auto& a : silent_alerts) status.alerts.push_back(std::move(a));
  nlohmann::json doc = StatusToJson(status);
  doc["stations"] = std::move(stations);
  doc["conflicts"] = ConflictsToJson(conflicts, options.with_values);
  doc["values_hidden"] = !options.with_values;
  doc["silent_days"] = options.silent_days;
  doc["generated_at"] = IsoTime(options.now_ms);
  doc["history_days"] = kHistoryDays;
  doc["history_from"] = IsoTime(history_from);
  doc["figures"] = std::move(figures);
  return doc;
}

}  // namespace aidsync
