#include "tests/fault_fixture.h"

#include <cstdlib>
#include <filesystem>

#include "sync/sqlite.h"

namespace aidsync::testing {
namespace {

constexpr const char* kStationCode = "0512";

// A copy of data dir `from` at `to`, private as Replica::Open requires.
void CopyDir(const std::string& from, const std::string& to) {
  std::filesystem::copy(from, to, std::filesystem::copy_options::recursive);
  std::filesystem::permissions(to, std::filesystem::perms::owner_all, std::filesystem::perm_options::replace);
}

// Values that differ between rounds but not in length, so that every round
// issues about the same disk writes.
std::string Tag(int round) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%06d", round % 1000000);
  return buf;
}

std::optional<Row> GetRow(Replica& r, const std::string& table, const std::string& id) {
  auto row = r.Get(table, id);
  REQUIRE_OK(row);
  return *row;
}

bool HasValues(const Row& row, const TextValues& values) {
  for (const auto& [column, text] : values) {
    bool found = false;
    for (const auto& [name, value] : row)
      if (name == column) found = value.ToDisplay() == text;
    if (!found) return false;
  }
  return true;
}

// Whether a written row is in `r`: a new row exists (and then REQUIREd to
// hold its values: a row is never there in part); an update's values are there.
bool Landed(Replica& r, const WrittenRow& w, bool is_new) {
  std::optional<Row> row = GetRow(r, w.table, w.id);
  if (!is_new) return row && HasValues(*row, w.values);
  if (!row) return false;
  INFO(w.table << " " << w.id);
  REQUIRE(HasValues(*row, w.values));
  return true;
}

std::string QueryText(Replica& r, const std::string& sql) {
  auto result = r.Query(sql);
  REQUIRE_OK(result);
  std::string out;
  for (const auto& row : result->rows) {
    for (const auto& v : row) out += v.ToDisplay() + "|";
    out += "\n";
  }
  return out;
}

}  // namespace

FaultWorld::FaultWorld(uint64_t seed) : cluster_(seed) {
  Node& hub = cluster_.hub();
  Node& st = cluster_.AddStation(kStationName, kStationCode, kTownship);
  // The station holds the hub's certificate, as its enrolment file gives it.
  REQUIRE_OK(st->AddCertificate(cluster_.CertificateOf(hub).bytes()));
  Roster roster = MakeRoster(*hub);
  for (int i = 0; i < 3; ++i) {
    auto id = PutRow(*st, "consultations", std::nullopt,
                     {{"channel", "walk_in"}, {"topic", "基线咨询" + std::to_string(i)}, {"summary", "停电之前已确认的记录"}});
    REQUIRE_OK(id);
    station_rows_.push_back(*id);
  }
  ExchangeBoth(*st, *hub);
  // The hub's news that the workload brings to the station.
  REQUIRE_OK(PutRow(*hub, "notices", std::nullopt,
                    {{"title", "关于机房断电演练的通知"}, {"body", "请各工作站做好数据备份。"}, {"issued_at", "2024-06-15"}}));
  REQUIRE_OK(PutRow(*hub, "lawyers", roster.junior, {{"phone", "13800000002"}}));
  REQUIRE_OK(PutRow(*hub, "notices", std::nullopt, {{"title", "值班安排"}, {"issued_at", "2024-06-16"}}));
  for (const auto& envelope : EnvelopesVisibleTo(*hub, kTownship)) {
    auto held = st->HoldsChangeset(IdOf(envelope));
    REQUIRE_OK(held);
    if (!*held) incoming_.push_back(envelope);
  }
  REQUIRE(incoming_.size() == 3);
  station_base_ = st.dir;
  hub_base_ = hub.dir;
  st.replica.reset();
  hub.replica.reset();
}

std::vector<WorkloadStep> FaultWorld::RunWorkload(Replica& station, int round, bool stop_at_failure) {
  const std::string tag = Tag(round);
  std::vector<WorkloadStep> steps;
  // One local transaction of `rows` (an empty id: a new row).
  auto local = [&](const std::string& what, std::vector<WrittenRow> rows) {
    WorkloadStep& step = steps.emplace_back();
    step.what = what;
    step.ran = true;
    step.status = [&]() -> Status {
      ASSIGN_OR_RETURN(auto tx, station.BeginLocal());
      for (auto& row : rows) {
        std::optional<std::string> id;
        if (!row.id.empty()) id = row.id;
        ASSIGN_OR_RETURN(std::string written, tx->Put(row.table, id, std::nullopt, row.values));
        step.rows.push_back({row.table, written, row.values, id.has_value()});
      }
      return tx->Commit().status();
    }();
  };
  auto more = [&] { return !stop_at_failure || steps.empty() || steps.back().status.ok(); };

  local("a consultation",
        {{"consultations", "", {{"channel", "walk_in"}, {"topic", "停电前咨询" + tag}, {"summary", "第一步"}}}});
  if (more()) {
    WorkloadStep& step = steps.emplace_back();
    step.what = "the hub's batch applied";
    step.ran = true;
    step.envelopes = incoming_;
    auto report = station.ApplyRemote(incoming_);
    step.status = report.status();
    if (report.ok() && report->applied != static_cast<int>(incoming_.size()))
      step.status = Status::Corruption("the batch was not applied whole: " + std::to_string(report->applied));
  }
  if (more()) {
    // Several tables and a dozen rows in one transaction: a commit of many pages.
    std::vector<WrittenRow> rows = {
        {"cases", "", {{"category", "civil"}}},
        {"consultations", station_rows_.front(), {{"summary", "补充记录" + tag}}},
        {"applications", "", {{"applicant_name", "王某" + tag}, {"status", "received"}}},
    };
    const std::string long_text(120, 'x');
    for (int i = 0; i < 10; ++i)
      rows.push_back({"consultations", "", {{"channel", "hotline_12348"}, {"topic", "批量" + tag + "-" + std::to_string(i)},
                                            {"summary", "来电咨询土地承包纠纷" + long_text + std::to_string(i)}}});
    local("a case file of many rows", rows);
  }
  if (more())
    local("another consultation",
          {{"consultations", "", {{"channel", "walk_in"}, {"topic", "停电前最后一条" + tag}}}});
  return steps;
}

Trial::Trial(FaultWorld& world)
    : station_dir_(dir_ / "station"), hub_dir_(dir_ / "hub") {
  CopyDir(world.station_base(), station_dir_);
  CopyDir(world.hub_base(), hub_dir_);
  station_env_.clock = &clock_;
  station_env_.random = &world.random();
  hub_env_ = station_env_;
}

Result<std::unique_ptr<Replica>> Trial::OpenStation(const std::string& vfs) {
  Env env = station_env_;
  env.sqlite_vfs = vfs;
  return Replica::Open(station_dir_, env);
}

std::unique_ptr<Replica> Trial::OpenHub() {
  auto hub = Replica::Open(hub_dir_, hub_env_);
  REQUIRE_OK(hub);
  return std::move(hub).value();
}

std::string IntegrityCheck(const std::string& dir) {
  Database::Options options;
  options.read_only = true;
  auto db = Database::Open(dir + "/replica.db", options);
  if (!db.ok()) return db.status().ToString();
  auto stmt = (*db)->Prepare("PRAGMA integrity_check");
  if (!stmt.ok()) return stmt.status().ToString();
  std::string out;
  while (true) {
    auto row = stmt->Step();
    if (!row.ok()) return out + row.status().ToString();
    if (!*row) break;
    out += (out.empty() ? "" : "\n") + std::string(stmt->ColumnText(0));
  }
  return out;
}

void RequireConsistent(Replica& r) {
  const std::string kRowMeta = "SELECT tbl, id, scope, conflicts, hex(meta) FROM aidsync_row_meta ORDER BY tbl, id";
  const std::string before = Dump(r) + QueryText(r, kRowMeta);
  REQUIRE_OK(r.Rebuild());
  const std::string after = Dump(r) + QueryText(r, kRowMeta);
  REQUIRE(before == after);
  // Each chain's head row agrees with the changesets of that chain in the log.
  CHECK(QueryText(r,
                  "SELECT count(*) FROM (SELECT author, scope, class, max(seq) AS s, count(*) AS n "
                  "FROM aidsync_log GROUP BY author, scope, class) AS l "
                  "FULL OUTER JOIN aidsync_chains AS c USING (author, scope, class) "
                  "WHERE l.s IS NOT c.seq OR l.n IS NOT c.count") == "0|\n");
}

int RequireAcknowledged(Replica& r, const std::vector<WorkloadStep>& steps, bool failed_may_survive) {
  int failed_but_there = 0;
  for (const auto& step : steps) {
    if (!step.ran) continue;
    INFO("step: " << step.what << " returned " << step.status.ToString());
    size_t landed = 0;
    for (const auto& row : step.rows) landed += Landed(r, row, !row.update) ? 1 : 0;
    for (const auto& envelope : step.envelopes) {
      auto held = r.HoldsChangeset(IdOf(envelope));
      REQUIRE_OK(held);
      landed += *held ? 1 : 0;
    }
    const size_t total = step.rows.size() + step.envelopes.size();
    INFO(landed << " of " << total << " rows and changesets are there");
    if (step.status.ok()) {
      REQUIRE(landed == total);
    } else if (failed_may_survive) {
      REQUIRE((landed == 0 || landed == total));
      failed_but_there += landed > 0 ? 1 : 0;
    } else {
      REQUIRE(landed == 0);
    }
  }
  return failed_but_there;
}

void RequireWritesAndConverges(Replica& station, Replica& hub, int round) {
  REQUIRE_OK(PutRow(station, "consultations", std::nullopt,
                    {{"channel", "walk_in"}, {"topic", "来电恢复后" + Tag(round)}}));
  SessionRun run = RunSession(station, hub);
  REQUIRE_OK(run.status);
  REQUIRE(run.complete);
  REQUIRE(Dump(station) == Dump(hub));
}

}  // namespace aidsync::testing
