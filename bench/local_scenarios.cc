#include "bench/local_scenarios.h"

#include <chrono>
#include <functional>
#include <memory>
#include <vector>

#include "bench/plain_sqlite.h"
#include "bench/records.h"
#include "crypto/certificate.h"
#include "sync/local_write.h"
#include "sync/replica.h"
#include "sync/sync_session.h"

namespace aidsync::bench {
namespace {

using Seconds = std::chrono::duration<double>;
constexpr const char* kStationScope = "430123/05";

// An authority, a hub and stations in one process, with the real clock and
// random source (Env::Default): the trust setup of `aidsync init`/`enroll`.
class InProcessCounty {
 public:
  explicit InProcessCounty(std::string dir)
      : dir_(std::move(dir)), env_(Env::Default()), authority_(SigningKey::Generate(*env_.random)) {}

  // A new hub replica in dir/<name>.
  Result<std::unique_ptr<Replica>> NewHub(const std::string& name) {
    NodeConfig config{"县法律援助中心", "0500", "430123", Role::kHub, authority_.public_key()};
    const std::string dir = dir_ + "/" + name;
    RETURN_IF_ERROR(Replica::Create(dir, config, env_, &authority_).status());
    return Replica::Open(dir, env_);
  }

  // A new enrolled township station (scope 430123/05) in dir/<code>; its
  // certificate's bytes go to *cert so receivers can trust it.
  Result<std::unique_ptr<Replica>> NewStation(const std::string& code, std::string* cert) {
    NodeConfig config{"城关镇工作站" + code, code, kStationScope, Role::kStation, authority_.public_key()};
    const std::string dir = dir_ + "/" + code;
    ASSIGN_OR_RETURN(PublicKey key, Replica::Create(dir, config, env_));
    ASSIGN_OR_RETURN(auto station, Replica::Open(dir, env_));
    CertificateFields fields;
    fields.node_key = key;
    fields.name = config.name;
    fields.code = code;
    fields.role = Role::kStation;
    fields.scope = kStationScope;
    fields.issued_at_ms = env_.clock->NowMillis();
    ASSIGN_OR_RETURN(Certificate issued, Certificate::Issue(fields, authority_));
    RETURN_IF_ERROR(station->InstallOwnCertificate(issued.bytes()));
    *cert = issued.bytes();
    return station;
  }

  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  Env env_;
  SigningKey authority_;
};

// Writes records [0, count) with `per_tx` records per local transaction.
Result<double> WriteRecords(Replica& station, int64_t count, int64_t per_tx) {
  const auto start = std::chrono::steady_clock::now();
  for (int64_t done = 0; done < count;) {
    ASSIGN_OR_RETURN(auto tx, station.BeginLocal());
    for (int64_t i = 0; i < per_tx && done < count; ++i, ++done)
      RETURN_IF_ERROR(tx->Put(kTableName, std::nullopt, std::nullopt, MakeRecord(done)).status());
    RETURN_IF_ERROR(tx->Commit().status());
  }
  return Seconds(std::chrono::steady_clock::now() - start).count();
}

// The plain-SQLite reference for `count` records at `per_tx`, in the same
// run and directory.
Result<double> Plain(const std::string& dir, const std::string& name, int64_t count, int64_t per_tx) {
  return PlainInsertSeconds(dir + "/plain-" + name + ".db", count, per_tx);
}

json RateLine(const std::string& scenario, int64_t records, double seconds, double plain_seconds) {
  const double rate = records / seconds, plain_rate = records / plain_seconds;
  return json{{"scenario", scenario},
              {"records", records},
              {"field_writes", records * static_cast<int64_t>(RecordColumns().size())},
              {"seconds", Round(seconds)},
              {"records_per_second", Round(rate, 0)},
              {"plain_sqlite", {{"seconds", Round(plain_seconds)}, {"records_per_second", Round(plain_rate, 0)}}},
              {"ratio", Round(rate / plain_rate)}};
}

// The station's changesets as a sync session would send them: batches of
// about `batch_bytes` (SyncOptions::batch_bytes).
Result<std::vector<std::vector<std::string>>> OutgoingBatches(Replica& station, size_t batch_bytes) {
  std::vector<std::vector<std::string>> batches(1);
  size_t bytes = 0;
  RETURN_IF_ERROR(station.ForEachChangesetVisibleTo("430123", [&](std::string_view envelope) {
    if (bytes + envelope.size() > batch_bytes && !batches.back().empty()) {
      batches.emplace_back();
      bytes = 0;
    }
    batches.back().emplace_back(envelope);
    bytes += envelope.size();
    return Status::OK();
  }));
  return batches;
}

// Applies every batch (one transaction each, as a session does); returns
// the seconds taken and adds the outcome to *total.
Result<double> ApplyBatches(Replica& hub, const std::vector<std::vector<std::string>>& batches, ApplyReport* total) {
  const auto start = std::chrono::steady_clock::now();
  for (const auto& batch : batches) {
    ASSIGN_OR_RETURN(ApplyReport r, hub.ApplyRemote(batch));
    total->applied += r.applied;
    total->duplicates += r.duplicates;
    total->rejected += r.rejected;
    total->held += r.held;
  }
  return Seconds(std::chrono::steady_clock::now() - start).count();
}

// OK if `replica` holds exactly records [0, count) with all their values.
Status CheckRecords(Replica& replica, int64_t count, const std::string& what) {
  ASSIGN_OR_RETURN(QueryResult q, replica.Query(RecordsCheckSql()));
  const int64_t rows = std::get<int64_t>(q.rows.at(0).at(0).v);
  const int64_t bytes = std::get<int64_t>(q.rows.at(0).at(1).v);
  if (rows != count || bytes != TotalValueBytes(count))
    return Status::Corruption(what + ": " + std::to_string(rows) + " rows of " + std::to_string(bytes) +
                              " value bytes where " + std::to_string(count) + " rows of " +
                              std::to_string(TotalValueBytes(count)) + " were expected");
  return Status::OK();
}

Status CheckApplied(Replica& hub, const ApplyReport& report, int64_t changesets, int64_t records) {
  if (report.applied != changesets)
    return Status::Corruption("remote apply: " + std::to_string(report.applied) + " of " +
                              std::to_string(changesets) + " changesets applied");
  return CheckRecords(hub, records, "remote apply");
}

// Applies the station's changesets into a new hub replica `repeats` times
// (the fastest counts), then once more into the last one: all duplicates.
Status RunRemoteApply(InProcessCounty& county, Replica& station, const std::string& station_cert,
                      const LocalSizes& sizes, const std::function<Result<double>(int64_t)>& plain,
                      Report& report) {
  ASSIGN_OR_RETURN(auto batches, OutgoingBatches(station, SyncOptions{}.batch_bytes));
  int64_t changesets = 0;
  for (const auto& b : batches) changesets += static_cast<int64_t>(b.size());
  const int64_t n = sizes.batched_records;
  // Plain SQLite inserts the same rows as many per transaction as a sync
  // batch carries (a session applies each batch in one transaction).
  const int64_t per_batch = (n + static_cast<int64_t>(batches.size()) - 1) / static_cast<int64_t>(batches.size());
  ASSIGN_OR_RETURN(double plain_seconds, plain(per_batch));

  std::unique_ptr<Replica> hub;
  ASSIGN_OR_RETURN(double seconds, Fastest(sizes.repeats, [&](int r) -> Result<double> {
    hub.reset();
    ASSIGN_OR_RETURN(hub, county.NewHub("hub" + std::to_string(r)));
    RETURN_IF_ERROR(hub->AddCertificate(station_cert).status());
    ApplyReport fresh;
    ASSIGN_OR_RETURN(double s, ApplyBatches(*hub, batches, &fresh));
    RETURN_IF_ERROR(CheckApplied(*hub, fresh, changesets, n));
    return s;
  }));
  json line = RateLine("remote_apply_empty", n, seconds, plain_seconds);
  line["changesets"] = changesets;
  line["batches"] = batches.size();
  line["plain_sqlite"]["rows_per_transaction"] = per_batch;
  line["targets"] = json::array({Target("ratio to plain SQLite insert rate", line["ratio"], ">=", 1.0 / 3)});
  report.Emit(line);

  ASSIGN_OR_RETURN(seconds, Fastest(sizes.repeats, [&](int) -> Result<double> {
    ApplyReport again;
    ASSIGN_OR_RETURN(double s, ApplyBatches(*hub, batches, &again));
    if (again.duplicates != changesets || again.applied != 0)
      return Status::Corruption("duplicate apply: " + std::to_string(again.duplicates) + " of " +
                                std::to_string(changesets) + " recognised as duplicates");
    return s;
  }));
  line = RateLine("remote_apply_duplicates", n, seconds, plain_seconds);
  line["changesets"] = changesets;
  line["targets"] = json::array({Target("ratio to plain SQLite insert rate", line["ratio"], ">=", 1.0 / 3)});
  report.Emit(line);
  return Status::OK();
}

}  // namespace

Status RunLocalScenarios(const std::string& dir, const LocalSizes& sizes, Report& report) {
  InProcessCounty county(dir);
  int stations = 0;
  std::string cert;
  // Writes `count` records at `per_tx` into a new station; keeps the last
  // station (its changesets feed the remote apply).
  std::unique_ptr<Replica> station;
  auto write = [&](int64_t count, int64_t per_tx) {
    return Fastest(sizes.repeats, [&, count, per_tx](int) -> Result<double> {
      station.reset();
      ASSIGN_OR_RETURN(station, county.NewStation(std::to_string(5120 + ++stations), &cert));
      ASSIGN_OR_RETURN(double seconds, WriteRecords(*station, count, per_tx));
      RETURN_IF_ERROR(CheckRecords(*station, count, "local writes"));
      return seconds;
    });
  };
  auto plain = [&](const std::string& name, int64_t count, int64_t per_tx) {
    return Fastest(sizes.repeats, [&, count, per_tx](int r) {
      return Plain(dir, name + std::to_string(r), count, per_tx);
    });
  };

  ASSIGN_OR_RETURN(double seconds, write(sizes.single_records, 1));
  ASSIGN_OR_RETURN(double plain_seconds, plain("single", sizes.single_records, 1));
  json line = RateLine("local_writes_1_per_tx", sizes.single_records, seconds, plain_seconds);
  line["note"] = "every transaction waits for its fsync; no target";
  report.Emit(line);

  ASSIGN_OR_RETURN(seconds, write(sizes.batched_records, sizes.per_transaction));
  ASSIGN_OR_RETURN(plain_seconds, plain("batched", sizes.batched_records, sizes.per_transaction));
  line = RateLine("local_writes_" + std::to_string(sizes.per_transaction) + "_per_tx", sizes.batched_records, seconds,
                  plain_seconds);
  line["targets"] = json::array({Target("ratio to plain SQLite insert rate", line["ratio"], ">=", 1.0 / 3)});
  report.Emit(line);

  return RunRemoteApply(county, *station, cert, sizes,
                        [&](int64_t per_tx) { return plain("apply", sizes.batched_records, per_tx); }, report);
}

}  // namespace aidsync::bench
