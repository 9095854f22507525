// `aidsync report [--year YYYY] [--json|--csv]`: the county's yearly
// statistics (node/report.h) as a table with Chinese labels, one JSON
// document, or `key,value` CSV lines whose keys are the JSON document's
// dotted paths.
#include <algorithm>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <optional>

#include "node/cli.h"
#include "node/report.h"

namespace aidsync::cli {
namespace {

using nlohmann::json;

template <typename T>
json OrNull(const std::optional<T>& v) {
  return v ? json(*v) : json(nullptr);
}

json ReportToJson(const Report& r) {
  const auto& a = r.applications;
  const auto& c = r.cases;
  const auto& k = r.consultations;
  const auto& v = r.return_visits;
  json stations = json::array();
  for (const auto& s : r.stations)
    stations.push_back({{"code", OrNull(s.code)}, {"name", OrNull(s.name)}, {"scope", s.scope},
                        {"applications", s.applications}, {"cases", s.cases}, {"consultations", s.consultations}});
  json targets = json::array();
  for (const auto& t : r.targets)
    targets.push_back({{"station_code", t.station_code}, {"metric", t.metric}, {"target", t.target},
                       {"scope", OrNull(t.scope)}, {"actual", OrNull(t.actual)}, {"progress", OrNull(t.progress)}});
  json by_status = json::object();
  for (const auto& [status, n] : r.complaints.by_status) by_status[status] = n;
  return {
      {"year", r.year},
      {"node", {{"code", r.node_code}, {"name", r.node_name}, {"scope", r.node_scope}}},
      {"applications",
       {{"received", a.received}, {"approved", a.approved}, {"rejected", a.rejected}, {"pending", a.pending}}},
      {"cases",
       {{"total", c.total}, {"criminal", c.criminal}, {"civil", c.civil}, {"administrative", c.administrative},
        {"criminal_share", OrNull(c.criminal_share)}, {"lottery", c.lottery}, {"closed", c.closed},
        {"recovered_amount", c.recovered_amount}}},
      {"consultations",
       {{"total", k.total}, {"walk_in", k.walk_in}, {"hotline_12348", k.hotline_12348}, {"phone", k.phone},
        {"online", k.online}}},
      {"hotline_tickets", {{"total", r.hotline_tickets}}},
      {"return_visits",
       {{"total", v.total}, {"satisfaction_avg", OrNull(v.satisfaction_avg)}, {"satisfied", v.satisfied},
        {"fee_charged", v.fee_charged}}},
      {"complaints", {{"total", r.complaints.total}, {"by_status", by_status}}},
      {"stations", stations},
      {"targets", targets},
  };
}

// ---- CSV ---------------------------------------------------------------------

std::string CsvField(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char ch : s) out += ch == '"' ? std::string("\"\"") : std::string(1, ch);
  return out + "\"";
}

// A leaf as CSV text: strings as they are, numbers as JSON writes them, null empty.
std::string Leaf(const json& v) {
  if (v.is_null()) return "";
  if (v.is_string()) return v.get<std::string>();
  return v.dump();
}

void CsvLine(const std::string& key, const json& v) {
  std::cout << CsvField(key) << "," << CsvField(Leaf(v)) << "\n";
}

void Flatten(const std::string& prefix, const json& v) {
  if (!v.is_object()) return CsvLine(prefix, v);
  for (const auto& [key, child] : v.items()) Flatten(prefix.empty() ? key : prefix + "." + key, child);
}

// Figures under their dotted JSON paths; then stations.CODE.FIELD (a scope
// that is no station's: stations.SCOPE.FIELD) and
// targets.CODE.METRIC.FIELD.
void PrintCsv(const json& doc) {
  std::cout << "key,value\n";
  for (const auto& [key, child] : doc.items())
    if (key != "stations" && key != "targets") Flatten(key, child);
  for (const auto& s : doc.at("stations")) {
    std::string id = s.at("code").is_null() ? s.at("scope").get<std::string>() : s.at("code").get<std::string>();
    for (const char* field : {"name", "scope", "applications", "cases", "consultations"})
      CsvLine("stations." + id + "." + field, s.at(field));
  }
  for (const auto& t : doc.at("targets")) {
    std::string id = "targets." + t.at("station_code").get<std::string>() + "." + t.at("metric").get<std::string>();
    for (const char* field : {"target", "actual", "progress"}) CsvLine(id + "." + field, t.at(field));
  }
}

// ---- text --------------------------------------------------------------------

// Terminal columns of UTF-8 text: East Asian wide characters count two.
size_t DisplayWidth(const std::string& s) {
  size_t width = 0;
  for (size_t i = 0; i < s.size();) {
    unsigned char b = static_cast<unsigned char>(s[i]);
    size_t len = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 1;
    uint32_t cp = len == 1 ? b : b & (0xFF >> (len + 1));
    for (size_t j = 1; j < len && i + j < s.size(); ++j) cp = (cp << 6) | (s[i + j] & 0x3F);
    bool wide = (cp >= 0x1100 && cp <= 0x115F) || (cp >= 0x2E80 && cp <= 0xA4CF) || (cp >= 0xAC00 && cp <= 0xD7A3) ||
                (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0xFE30 && cp <= 0xFE4F) || (cp >= 0xFF00 && cp <= 0xFF60) ||
                (cp >= 0xFFE0 && cp <= 0xFFE6) || (cp >= 0x20000 && cp <= 0x3FFFD);
    width += wide ? 2 : 1;
    i += len;
  }
  return width;
}

std::string Pad(const std::string& s, size_t width) {
  size_t w = DisplayWidth(s);
  return s + std::string(w < width ? width - w : 0, ' ');
}

// A leaf as the text report shows it: names and statuses are stored values.
std::string Shown(const json& v) { return DisplayText(Leaf(v)); }
std::string Text(const json& v) { return v.is_null() ? "—" : Shown(v); }

std::string Percent(const json& v) {
  if (v.is_null()) return "—";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f%%", v.get<double>() * 100);
  return buf;
}

void PrintSection(const char* title, const json& obj, const std::vector<std::pair<const char*, const char*>>& rows) {
  std::cout << title << "\n";
  for (const auto& [label, key] : rows) {
    const json& v = obj.at(key);
    std::string shown = std::string(key).find("share") != std::string::npos ? Percent(v) : Text(v);
    std::cout << "  " << Pad(std::string(label) + " [" + key + "]", 40) << shown << "\n";
  }
}

void PrintGrid(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width(header.size());
  for (size_t i = 0; i < header.size(); ++i) width[i] = DisplayWidth(header[i]);
  for (const auto& row : rows)
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], DisplayWidth(row[i]));
  auto line = [&](const std::vector<std::string>& cells) {
    std::cout << " ";
    for (size_t i = 0; i < cells.size(); ++i)
      std::cout << " " << (i + 1 < cells.size() ? Pad(cells[i], width[i]) : cells[i]);
    std::cout << "\n";
  };
  line(header);
  for (const auto& row : rows) line(row);
  if (rows.empty()) std::cout << "  （无 [none]）\n";
}

const char* MetricLabel(const std::string& metric) {
  if (metric == "cases") return "办案";
  if (metric == "consultations") return "咨询";
  if (metric == "lottery_cases") return "彩票公益金案件";
  return "";
}

void PrintText(const json& doc) {
  const json& node = doc.at("node");
  std::cout << "法律援助年度统计 " << doc.at("year").get<int>() << " 年 [year] — " << Shown(node.at("name")) << " ("
            << Shown(node.at("code")) << ")，范围 [scope] " << Shown(node.at("scope")) << "\n\n";
  PrintSection("申请 [applications]", doc.at("applications"),
               {{"受理申请", "received"}, {"批准", "approved"}, {"不予批准", "rejected"}, {"待审批", "pending"}});
  PrintSection("案件 [cases]", doc.at("cases"),
               {{"案件合计", "total"}, {"刑事", "criminal"}, {"民事", "civil"}, {"行政", "administrative"},
                {"刑事案件占比", "criminal_share"}, {"彩票公益金案件", "lottery"}, {"已结案", "closed"},
                {"挽回经济损失(元)", "recovered_amount"}});
  PrintSection("咨询 [consultations]", doc.at("consultations"),
               {{"咨询合计", "total"}, {"来访", "walk_in"}, {"12348热线", "hotline_12348"}, {"电话", "phone"},
                {"网络", "online"}});
  PrintSection("12348热线工单 [hotline_tickets]", doc.at("hotline_tickets"), {{"工单合计", "total"}});
  PrintSection("回访 [return_visits]", doc.at("return_visits"),
               {{"回访合计", "total"}, {"平均满意度(1-5)", "satisfaction_avg"}, {"满意(≥4)", "satisfied"},
                {"收费(违反无偿原则)", "fee_charged"}});
  PrintSection("投诉 [complaints]", doc.at("complaints"), {{"投诉合计", "total"}});
  for (const auto& [status, n] : doc.at("complaints").at("by_status").items())
    std::cout << "    " << Pad(DisplayText(status), 38) << n.dump() << "\n";

  std::cout << "\n各站点 [stations]\n";
  std::vector<std::vector<std::string>> rows;
  for (const auto& s : doc.at("stations"))
    rows.push_back({Text(s.at("code")), Text(s.at("name")), Shown(s.at("scope")), Leaf(s.at("applications")),
                    Leaf(s.at("cases")), Leaf(s.at("consultations"))});
  PrintGrid({"代码[code]", "名称[name]", "范围[scope]", "申请[applications]", "案件[cases]", "咨询[consultations]"},
            rows);

  std::cout << "\n年度目标 [targets]\n";
  rows.clear();
  for (const auto& t : doc.at("targets")) {
    std::string metric = t.at("metric").get<std::string>();
    rows.push_back({Shown(t.at("station_code")), std::string(MetricLabel(metric)) + " " + metric,
                    Leaf(t.at("target")), Text(t.at("actual")), Percent(t.at("progress"))});
  }
  PrintGrid({"站点[station_code]", "指标[metric]", "目标[target]", "完成[actual]", "进度[progress]"}, rows);
}

// ---- the command -------------------------------------------------------------

struct ReportArgs {
  std::optional<std::string> year;  // unset: this year by the node's clock
  bool json = false;
  bool csv = false;
};

Result<int> ParseYear(const std::optional<std::string>& given, const Env& env) {
  if (!given) {
    std::time_t secs = static_cast<std::time_t>(env.clock->NowMillis() / 1000);
    std::tm tm{};
    localtime_r(&secs, &tm);
    return tm.tm_year + 1900;
  }
  const std::string& text = *given;
  bool digits = text.size() == 4;
  for (char ch : text) digits = digits && ch >= '0' && ch <= '9';
  int year = digits ? std::stoi(text) : 0;
  if (!digits || year < kReportMinYear || year > kReportMaxYear)
    return Status::InvalidArgument("--year must be a year of four digits from " + std::to_string(kReportMinYear) +
                                   " to " + std::to_string(kReportMaxYear) + ", not '" + text + "'");
  return year;
}

Status RunReport(Context& ctx, const ReportArgs& a) {
  ASSIGN_OR_RETURN(int year, ParseYear(a.year, ctx.env));
  ASSIGN_OR_RETURN(auto replica, ctx.OpenNode({.quick_check = false, .read_only = true}));
  ASSIGN_OR_RETURN(Report report, BuildReport(*replica, year));
  json doc = ReportToJson(report);
  if (a.json) {
    PrintJson(doc);
  } else if (a.csv) {
    PrintCsv(doc);
  } else {
    PrintText(doc);
  }
  return Status::OK();
}

}  // namespace

void RegisterReportCommands(CLI::App& app, Context& ctx) {
  auto [cmd, a] = AddCommand<ReportArgs>(app, ctx, "report",
                                         "the year's statistics: applications, cases, consultations, return visits, "
                                         "complaints, per station and against targets",
                                         RunReport);
  cmd->add_option("--year", a->year, "YYYY: records dated in that year (default: this year)");
  CLI::Option* json_flag = cmd->add_flag("--json", a->json, "one JSON document");
  CLI::Option* csv_flag = cmd->add_flag("--csv", a->csv, "key,value lines");
  json_flag->excludes(csv_flag);
}

}  // namespace aidsync::cli
