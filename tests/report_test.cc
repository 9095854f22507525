// Process-level tests of `aidsync report` (DESIGN 1 and 8; docs/ARCHITECTURE.md
// section 11): a county built through the command line — the hub (0500,
// 430123), 城关镇 (0512, 430123/05) with records of an unenrolled village
// (430123/05/017), 白沙镇 (0513, 430123/06) — with records of 2014, 2015 and
// 2016, carried up by bundles, and the hub's targets carried down.
#include <catch2/catch.hpp>

#include <ctime>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "tests/cli_fixture.h"
#include "tests/process.h"

namespace {

namespace proc = aidsync::proc;
using Catch::Matchers::Contains;
using nlohmann::json;
using namespace aidsync::clitest;

struct ReportCounty : County {
  ReportCounty() : County(2) {
    SeedRoster();
    const Station& cg = st[0];  // 城关镇工作站 0512
    const Station& bs = st[1];  // 白沙镇工作站 0513
    const std::string basis = "decision_basis=《法律援助条例》第十条";
    // 城关镇: three applications of 2015 (approved, rejected, pending), one of 2014.
    Put(cg, {"applications", "new", "applicant_name=张桂兰", "id_number=430123195804120021", "category=civil",
             "matter=追索劳动报酬", "income_status=low_income", "received_at=2015-03-02", "status=approved", basis,
             "decided_at=2015-03-04"});
    Put(cg, {"applications", "new", "applicant_name=刘志强", "category=civil", "matter=房屋买卖纠纷",
             "income_status=other", "received_at=2015-06-10", "status=rejected",
             "decision_basis=经审查不符合经济困难标准", "decided_at=2015-06-15"});
    Put(cg, {"applications", "new", "applicant_name=陈秀英", "category=civil", "matter=赡养费",
             "income_status=subsistence", "received_at=2015-11-20", "status=received"});
    Put(cg, {"applications", "new", "applicant_name=周小红", "category=civil", "matter=离婚纠纷",
             "income_status=subsistence", "received_at=2014-12-30", "status=received"});
    // 城关镇 cases: 2015 civil (closed, 12000.5 recovered), criminal (lottery), administrative; 2014 civil.
    c1 = Put(cg, {"cases", "new", "lawyer_id=" + senior, "category=civil", "assigned_at=2015-03-05",
                  "status=closed", "funding=regular", "outcome=调解结案", "recovered_amount=12000.5",
                  "closed_at=2015-09-30"});
    c2 = Put(cg, {"cases", "new", "lawyer_id=" + senior, "category=criminal", "assigned_at=2015-07-01",
                  "status=in_progress", "funding=lottery"});
    Put(cg, {"cases", "new", "lawyer_id=" + senior, "category=administrative", "assigned_at=2015-12-01",
             "status=assigned", "funding=regular"});
    std::string c3 = Put(cg, {"cases", "new", "lawyer_id=" + senior, "category=civil", "assigned_at=2014-11-03",
                              "status=closed", "funding=regular", "recovered_amount=3000"});
    Put(cg, {"consultations", "new", "channel=walk_in", "topic=讨薪", "summary=农民工工资拖欠", "consulted_at=2015-01-15"});
    Put(cg, {"consultations", "new", "channel=hotline_12348", "topic=婚姻家庭", "consulted_at=2015-02-01"});
    Put(cg, {"consultations", "new", "channel=phone", "topic=土地承包", "consulted_at=2014-12-31"});
    Put(cg, {"hotline_tickets", "new", "caller=王大妈", "topic=邻里纠纷", "received_at=2015-05-05", "status=已转办"});
    Put(cg, {"return_visits", "new", "case_id=" + c1, "visited_at=2015-04-20", "satisfaction=5", "fee_charged=0"});
    Put(cg, {"return_visits", "new", "case_id=" + c2, "visited_at=2015-08-01", "satisfaction=2", "fee_charged=1",
             "note=当事人反映律师收取差旅费"});
    Put(cg, {"return_visits", "new", "case_id=" + c3, "visited_at=2014-12-20", "satisfaction=4", "fee_charged=0"});
    Put(cg, {"complaints", "new", "case_id=" + c2, "received_at=2015-09-01", "content=收费", "status=已办结"});
    Put(cg, {"complaints", "new", "case_id=" + c3, "received_at=2014-10-01", "content=办案拖延", "status=处理中"});
    // The village 新华村 (not enrolled), written by 城关镇 at its scope.
    Put(cg, {"cases", "new", "lawyer_id=" + senior, "category=civil", "assigned_at=2015-09-09", "status=assigned",
             "funding=lottery", "recovered_amount=500", "--scope", "430123/05/017"});
    Put(cg, {"consultations", "new", "channel=online", "topic=工伤认定", "consulted_at=2015-08-08", "--scope",
             "430123/05/017"});
    // 白沙镇: 2015 criminal application and cases; 2014 administrative.
    Put(bs, {"applications", "new", "applicant_name=李四", "category=criminal", "matter=盗窃案辩护",
             "income_status=low_income", "received_at=2015-04-01", "status=approved", basis});
    Put(bs, {"applications", "new", "applicant_name=黄英", "category=administrative", "matter=工伤认定",
             "income_status=subsistence", "received_at=2014-05-06", "status=approved", basis});
    std::string d1 = Put(bs, {"cases", "new", "lawyer_id=" + senior, "category=criminal",
                              "assigned_at=2015-04-02", "status=closed", "funding=regular"});
    Put(bs, {"cases", "new", "lawyer_id=" + senior, "category=civil", "assigned_at=2015-10-10", "status=assigned",
             "funding=regular"});
    Put(bs, {"cases", "new", "lawyer_id=" + senior, "category=administrative", "assigned_at=2014-05-07",
             "status=closed", "funding=regular"});
    Put(bs, {"consultations", "new", "channel=walk_in", "topic=劳动合同", "consulted_at=2015-06-06"});
    Put(bs, {"consultations", "new", "channel=online", "topic=交通事故", "consulted_at=2015-06-07"});
    Put(bs, {"hotline_tickets", "new", "caller=赵先生", "topic=欠薪", "received_at=2014-03-03"});
    Put(bs, {"return_visits", "new", "case_id=" + d1, "visited_at=2015-06-01", "satisfaction=4", "fee_charged=0"});
    Put(bs, {"complaints", "new", "case_id=" + d1, "received_at=2015-10-10", "content=态度差", "status=处理中"});
    // The hub's own records: the last minute of 2015 (local time) and the first of 2016.
    Ok(hub, {"put", "consultations", "new", "channel=hotline_12348", "consulted_at=2015-12-31T23:59:00+08:00"});
    Ok(hub, {"put", "consultations", "new", "channel=phone", "consulted_at=2015-03-03"});
    Ok(hub, {"put", "consultations", "new", "channel=walk_in", "consulted_at=2016-01-01T00:00:00+08:00"});
    Ok(hub, {"put", "hotline_tickets", "new", "caller=匿名", "received_at=2015-01-02"});
    Up(cg);
    Up(bs);
    // Targets (reference rows, on the hub).
    for (auto [year, code, metric, value] : std::vector<std::tuple<int, std::string, std::string, int>>{
             {2015, "0500", "cases", 10}, {2015, "0500", "consultations", 8}, {2015, "0500", "lottery_cases", 4},
             {2015, "0512", "cases", 3}, {2015, "0512", "consultations", 0}, {2015, "0513", "cases", 2},
             {2014, "0512", "cases", 5}})
      Ok(hub, {"put", "targets", "new", "year=" + std::to_string(year), "station_code=" + code,
               "metric=" + metric, "value=" + std::to_string(value)});
    Down(cg);
  }

  std::string Put(const Station& s, std::vector<std::string> args) {
    args.insert(args.begin(), "put");
    return Ok(s.dir, args);
  }

  json Report(const std::string& data, const std::string& year) {
    return ParseJson(Ok(data, {"report", "--year", year, "--json"}));
  }

  std::string c1, c2;
};

json Station(const json& code, const json& name, const std::string& scope, int apps, int cases, int cons) {
  return {{"code", code}, {"name", name}, {"scope", scope}, {"applications", apps}, {"cases", cases},
          {"consultations", cons}};
}

json Target(const std::string& code, const std::string& metric, int target, const std::string& scope, int actual,
            const json& progress) {
  return {{"station_code", code}, {"metric", metric}, {"target", target}, {"scope", scope}, {"actual", actual},
          {"progress", progress}};
}

TEST_CASE("report: the hub's --json counts the county's year exactly", "[cli][report]") {
  ReportCounty c;
  std::string before = Snapshot(c.hub);
  json r = c.Report(c.hub, "2015");
  CHECK(r.at("year") == 2015);
  CHECK(r.at("node") == json({{"code", "0500"}, {"name", "县法律援助中心"}, {"scope", "430123"}}));
  CHECK(r.at("applications") == json({{"received", 4}, {"approved", 2}, {"rejected", 1}, {"pending", 1}}));
  CHECK(r.at("cases") == json({{"total", 6}, {"criminal", 2}, {"civil", 3}, {"administrative", 1},
                               {"criminal_share", 0.333}, {"lottery", 2}, {"closed", 2},
                               {"recovered_amount", 12500.5}}));
  CHECK(r.at("cases").at("total").is_number_integer());
  CHECK(r.at("consultations") ==
        json({{"total", 7}, {"walk_in", 2}, {"hotline_12348", 2}, {"phone", 1}, {"online", 2}}));
  CHECK(r.at("hotline_tickets") == json({{"total", 2}}));
  CHECK(r.at("return_visits") ==
        json({{"total", 3}, {"satisfaction_avg", 3.67}, {"satisfied", 2}, {"fee_charged", 1}}));
  CHECK(r.at("complaints") == json({{"total", 2}, {"by_status", {{"已办结", 1}, {"处理中", 1}}}}));
  CHECK(r.at("stations") == json::array({Station("0500", "县法律援助中心", "430123", 0, 0, 2),
                                         Station("0512", "城关镇工作站", "430123/05", 3, 3, 2),
                                         Station("0513", "白沙镇工作站", "430123/06", 1, 2, 2),
                                         Station(nullptr, nullptr, "430123/05/017", 0, 1, 1)}));
  // Actuals over each station's scope subtree; the county's code counts the county.
  CHECK(r.at("targets") == json::array({Target("0500", "cases", 10, "430123", 6, 0.6),
                                        Target("0500", "consultations", 8, "430123", 7, 0.875),
                                        Target("0500", "lottery_cases", 4, "430123", 2, 0.5),
                                        Target("0512", "cases", 3, "430123/05", 4, 1.333),
                                        Target("0512", "consultations", 0, "430123/05", 3, nullptr),
                                        Target("0513", "cases", 2, "430123/06", 2, 1.0)}));
  CHECK(Snapshot(c.hub) == before);  // a report changes nothing
}

TEST_CASE("report: --year selects records by their own dates", "[cli][report]") {
  ReportCounty c;
  json r = c.Report(c.hub, "2014");
  CHECK(r.at("year") == 2014);
  CHECK(r.at("applications") == json({{"received", 2}, {"approved", 1}, {"rejected", 0}, {"pending", 1}}));
  CHECK(r.at("cases") == json({{"total", 2}, {"criminal", 0}, {"civil", 1}, {"administrative", 1},
                               {"criminal_share", 0.0}, {"lottery", 0}, {"closed", 2},
                               {"recovered_amount", 3000.0}}));
  CHECK(r.at("consultations") ==
        json({{"total", 1}, {"walk_in", 0}, {"hotline_12348", 0}, {"phone", 1}, {"online", 0}}));
  CHECK(r.at("hotline_tickets").at("total") == 1);
  CHECK(r.at("return_visits") ==
        json({{"total", 1}, {"satisfaction_avg", 4.0}, {"satisfied", 1}, {"fee_charged", 0}}));
  CHECK(r.at("complaints") == json({{"total", 1}, {"by_status", {{"处理中", 1}}}}));
  CHECK(r.at("stations").at(1) == Station("0512", "城关镇工作站", "430123/05", 1, 1, 1));
  CHECK(r.at("stations").at(2) == Station("0513", "白沙镇工作站", "430123/06", 1, 1, 0));
  CHECK(r.at("stations").size() == 3);  // the village has nothing in 2014
  CHECK(r.at("targets") == json::array({Target("0512", "cases", 5, "430123/05", 1, 0.2)}));

  // 2016 holds only the hub's consultation of 1 January, 00:00 (+08:00).
  json y2016 = c.Report(c.hub, "2016");
  CHECK(y2016.at("consultations").at("total") == 1);
  CHECK(y2016.at("consultations").at("walk_in") == 1);
  CHECK(y2016.at("cases").at("total") == 0);
  CHECK(y2016.at("targets") == json::array());

  // A year with nothing: zeros, and null for the figures that are ratios.
  json empty = c.Report(c.hub, "2013");
  CHECK(empty.at("cases").at("total") == 0);
  CHECK(empty.at("cases").at("criminal_share").is_null());
  CHECK(empty.at("return_visits").at("satisfaction_avg").is_null());
  CHECK(empty.at("complaints") == json({{"total", 0}, {"by_status", json::object()}}));

  // Without --year: this year by the node's clock.
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  json current = ParseJson(Ok(c.hub, {"report", "--json"}));
  CHECK(current.at("year") == tm.tm_year + 1900);
}

TEST_CASE("report: --csv prints key,value lines under dotted keys", "[cli][report]") {
  ReportCounty c;
  std::string out = Ok(c.hub, {"report", "--year", "2015", "--csv"});
  std::istringstream in(out);
  std::string line;
  std::getline(in, line);
  CHECK(line == "key,value");
  std::map<std::string, std::string> kv;
  while (std::getline(in, line)) {
    auto comma = line.find(',');
    REQUIRE(comma != std::string::npos);
    CHECK(kv.count(line.substr(0, comma)) == 0);  // each key once
    kv[line.substr(0, comma)] = line.substr(comma + 1);
  }
  CHECK(kv.at("year") == "2015");
  CHECK(kv.at("applications.received") == "4");
  CHECK(kv.at("cases.criminal") == "2");
  CHECK(kv.at("cases.criminal_share") == "0.333");
  CHECK(kv.at("cases.recovered_amount") == "12500.5");
  CHECK(kv.at("consultations.hotline_12348") == "2");
  CHECK(kv.at("hotline_tickets.total") == "2");
  CHECK(kv.at("return_visits.fee_charged") == "1");
  CHECK(kv.at("complaints.by_status.处理中") == "1");
  CHECK(kv.at("stations.0512.name") == "城关镇工作站");
  CHECK(kv.at("stations.0512.cases") == "3");
  CHECK(kv.at("stations.0513.applications") == "1");
  CHECK(kv.at("stations.430123/05/017.consultations") == "1");
  CHECK(kv.at("targets.0500.cases.actual") == "6");
  CHECK(kv.at("targets.0512.cases.progress") == "1.333");
  CHECK(kv.at("targets.0512.consultations.progress").empty());  // a target of 0 has no progress
}

TEST_CASE("report: the default output is a readable table", "[cli][report]") {
  ReportCounty c;
  std::string out = Ok(c.hub, {"report", "--year", "2015"});
  CHECK_THAT(out, Contains("2015"));
  CHECK_THAT(out, Contains("案件 [cases]"));
  CHECK_THAT(out, Contains("刑事 [criminal]"));
  CHECK_THAT(out, Contains("33.3%"));
  CHECK_THAT(out, Contains("城关镇工作站"));
  CHECK_THAT(out, Contains("430123/05/017"));
  CHECK_THAT(out, Contains("年度目标 [targets]"));
  CHECK_THAT(out, Contains("133.3%"));
}

TEST_CASE("report: bad input is refused", "[cli][report][bad-input]") {
  ReportCounty c;
  for (const char* year : {"15", "2101", "1899", "abcd", "20155", "-2015", "２０１５", ""})
    RequireRefused(On(c.hub, {"report", "--year", year}), "year");
  RequireRefused(On(c.hub, {"report", "--year", "2015", "--json", "--csv"}));
  RequireRefused(On(c.hub, {"report", "--year"}));
  RequireRefused(On(c.hub, {"report", "2015"}));
  proc::TempDir none;
  RequireRefused(On(none / "nothing", {"report", "--year", "2015"}), "init");
}

TEST_CASE("report: a station's report counts only what it holds", "[cli][report]") {
  ReportCounty c;
  json r = c.Report(c.st[0].dir, "2015");
  CHECK(r.at("node").at("code") == "0512");
  CHECK(r.at("applications") == json({{"received", 3}, {"approved", 1}, {"rejected", 1}, {"pending", 1}}));
  CHECK(r.at("cases") == json({{"total", 4}, {"criminal", 1}, {"civil", 2}, {"administrative", 1},
                               {"criminal_share", 0.25}, {"lottery", 2}, {"closed", 1},
                               {"recovered_amount", 12500.5}}));
  CHECK(r.at("consultations") ==
        json({{"total", 3}, {"walk_in", 1}, {"hotline_12348", 1}, {"phone", 0}, {"online", 1}}));
  CHECK(r.at("hotline_tickets").at("total") == 1);
  CHECK(r.at("return_visits") ==
        json({{"total", 2}, {"satisfaction_avg", 3.5}, {"satisfied", 1}, {"fee_charged", 1}}));
  CHECK(r.at("complaints").at("total") == 1);
  // Only stations inside its scope; the hub and 白沙镇 are not its to count.
  CHECK(r.at("stations") == json::array({Station("0512", "城关镇工作站", "430123/05", 3, 3, 2),
                                         Station(nullptr, nullptr, "430123/05/017", 0, 1, 1)}));
  CHECK(r.at("targets") == json::array({Target("0512", "cases", 3, "430123/05", 4, 1.333),
                                        Target("0512", "consultations", 0, "430123/05", 3, nullptr)}));
  // 白沙镇 has received nothing of 城关镇's, nor the targets: its own records only.
  json bs = c.Report(c.st[1].dir, "2015");
  CHECK(bs.at("cases").at("total") == 2);
  CHECK(bs.at("consultations").at("total") == 2);
  CHECK(bs.at("stations") == json::array({Station("0513", "白沙镇工作站", "430123/06", 1, 2, 2)}));
  CHECK(bs.at("targets") == json::array());
}

}  // namespace
