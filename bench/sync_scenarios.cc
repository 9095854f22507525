#include "bench/sync_scenarios.h"

#include <algorithm>
#include <memory>
#include <optional>
#include <vector>

#include "bench/county.h"
#include "bench/link.h"
#include "bench/plain_sqlite.h"
#include "bench/records.h"

namespace aidsync::bench {
namespace {

constexpr double kMiB = 1024.0;  // KiB per MiB
constexpr const char* kTownship = "430123/05";

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// Average UTF-8 size of one field's value over records [first, first + count).
double AverageValueBytes(int64_t first, int64_t count) {
  double total = 0;
  for (int64_t i = first; i < first + count; ++i) total += static_cast<double>(RecordValueBytes(i));
  return total / static_cast<double>(count * static_cast<int64_t>(RecordColumns().size()));
}

Status ExpectRecords(County& county, const std::string& data_dir, int64_t want, const std::string& what) {
  return county.CheckRecords(data_dir, want, what);
}

// What one sync through a fresh Link cost.
struct LinkedSync {
  SyncRun run;
  int64_t bytes = 0;  // both directions, handshake included
};

Result<LinkedSync> SyncThroughLink(County& county, const std::string& station, LinkOptions options) {
  ASSIGN_OR_RETURN(auto link, Link::Open(county.hub_port(), options));
  LinkedSync s;
  ASSIGN_OR_RETURN(s.run, county.Sync(station, link->port()));
  s.bytes = link->bytes_up() + link->bytes_down();
  return s;
}

// Imports `count` more records (from index `first`) at the hub and syncs
// `station`, `repeats` times; returns the median seconds of the syncs.
Result<double> NewRecordSyncs(County& county, const std::string& dir, const std::string& station, int64_t first,
                              int64_t count, int repeats, int64_t* expected) {
  std::vector<double> seconds;
  for (int r = 0; r < repeats; ++r) {
    const std::string csv = dir + "/new-" + std::to_string(first) + ".csv";
    RETURN_IF_ERROR(WriteRecordsCsv(csv, first, count, kTownship));
    RETURN_IF_ERROR(county.ImportAtHub(csv).status());
    ASSIGN_OR_RETURN(LinkedSync s, SyncThroughLink(county, station, {}));
    if (s.run.received < 1) return Status::Corruption("a sync of new records received nothing");
    seconds.push_back(s.run.command.seconds);
    first += count;
    *expected += count;
  }
  RETURN_IF_ERROR(ExpectRecords(county, station, *expected, "after the new-records syncs"));
  return Median(seconds);
}

// What the scenarios on the full county leave for the later ones.
struct FullCounty {
  std::string station;          // the station that caught up
  double new_records_seconds = 0;
  int64_t station_peak_kib = 0;  // of its initial sync
  int64_t hub_peak_kib = 0;      // of the serving hub, through that sync
};

Status ImportAndInitialSync(const std::string& dir, const SyncSizes& sizes, Report& report, County& county,
                            FullCounty* out) {
  std::string* station = &out->station;
  const int64_t n = sizes.records;
  const int64_t fields = n * static_cast<int64_t>(RecordColumns().size());
  const std::string csv = dir + "/records.csv";
  RETURN_IF_ERROR(WriteRecordsCsv(csv, 0, n, kTownship));
  ASSIGN_OR_RETURN(double plain, Fastest(sizes.import_repeats, [&](int r) {
    return PlainInsertSeconds(dir + "/plain-import" + std::to_string(r) + ".db", n, n, /*include_close=*/true);
  }));

  // The import into `county` counts with those into scratch hubs before it.
  CommandRun import;
  ASSIGN_OR_RETURN(double import_seconds, Fastest(sizes.import_repeats, [&](int r) -> Result<double> {
    const bool last = r + 1 == sizes.import_repeats;
    std::optional<County> scratch;
    if (!last) {
      ASSIGN_OR_RETURN(County c, County::Create(dir + "/import-" + std::to_string(r)));
      scratch.emplace(std::move(c));
    }
    County& into = last ? county : *scratch;
    ASSIGN_OR_RETURN(import, into.ImportAtHub(csv));
    RETURN_IF_ERROR(ExpectRecords(into, into.hub_dir(), n, "after the import"));
    return import.seconds;
  }));
  const double rate = n / import_seconds, plain_rate = n / plain;
  report.Emit({{"scenario", "import_csv"},
               {"records", n},
               {"seconds", Round(import_seconds)},
               {"records_per_second", Round(rate, 0)},
               {"peak_rss_mib", Round(import.peak_rss_kib / kMiB, 1)},
               {"plain_sqlite", {{"seconds", Round(plain)}, {"records_per_second", Round(plain_rate, 0)}}},
               {"ratio", Round(rate / plain_rate)},
               {"note", "the whole `aidsync import` process: start, CSV parsing, checks, signing, one commit"},
               {"targets", json::array({Target("ratio to plain SQLite insert rate", rate / plain_rate, ">=", 1.0 / 3)})}});

  RETURN_IF_ERROR(county.StartHub());
  ASSIGN_OR_RETURN(*station, county.EnrolStation("城关镇工作站", "0512", kTownship));
  ASSIGN_OR_RETURN(LinkedSync s, SyncThroughLink(county, *station, {}));
  RETURN_IF_ERROR(ExpectRecords(county, *station, n, "after the initial sync"));
  ASSIGN_OR_RETURN(int64_t hub_peak, county.HubPeakRssKib());
  out->station_peak_kib = s.run.command.peak_rss_kib;
  out->hub_peak_kib = hub_peak;
  const double per_field = static_cast<double>(s.bytes) / static_cast<double>(fields);
  const double value_bytes = AverageValueBytes(0, n);
  const double ratio = s.run.command.seconds / plain;
  report.Emit({{"scenario", "initial_sync"},
               {"records", n},
               {"field_writes", fields},
               {"seconds", Round(s.run.command.seconds)},
               {"round_trips", s.run.round_trips},
               {"plain_sqlite", {{"seconds", Round(plain)}}},
               {"ratio", Round(ratio)},
               {"station_peak_rss_mib", Round(s.run.command.peak_rss_kib / kMiB, 1)},
               {"hub_peak_rss_mib", Round(hub_peak / kMiB, 1)},
               {"bytes_on_wire", s.bytes},
               {"bytes_per_field_write", Round(per_field, 2)},
               {"value_bytes_per_field", Round(value_bytes, 2)},
               {"targets",
                json::array({Target("time ratio to plain SQLite insert", ratio, "<=", 5),
                 Target("station peak MiB", s.run.command.peak_rss_kib / kMiB, "<", 100),
                 Target("hub peak MiB", hub_peak / kMiB, "<", 100),
                 Target("bytes per field write", per_field, "<=", value_bytes + 16, false)})}});

  int64_t expected = n;
  ASSIGN_OR_RETURN(out->new_records_seconds,
                   NewRecordSyncs(county, dir, *station, n, sizes.new_records, sizes.repeats, &expected));

  ASSIGN_OR_RETURN(LinkedSync idle, SyncThroughLink(county, *station, {}));
  report.Emit({{"scenario", "sync_nothing_new"},
               {"replica_records", expected},
               {"seconds", Round(idle.run.command.seconds)},
               {"round_trips", idle.run.round_trips},
               {"bytes_on_wire", idle.bytes},
               {"note", "bytes counted on the TCP stream: ZMTP greeting, CurveZMQ handshake and one request/reply"},
               {"targets",
                json::array({Target("bytes on the wire, handshake included", static_cast<double>(idle.bytes), "<", 2048, false),
                 Target("round trips after the handshake", static_cast<double>(idle.run.round_trips), "<=", 1, false)})}});
  return county.StopHub();
}

}  // namespace

Status RunSyncScenarios(const std::string& dir, const SyncSizes& sizes, Report& report) {
  // A county whose hub holds `records` records of the township.
  ASSIGN_OR_RETURN(County full, County::Create(dir + "/full"));
  FullCounty f;
  RETURN_IF_ERROR(ImportAndInitialSync(dir + "/full", sizes, report, full, &f));
  const double full_seconds = f.new_records_seconds;

  // A second county whose replicas start empty: the same new-records syncs.
  ASSIGN_OR_RETURN(County fresh, County::Create(dir + "/fresh"));
  RETURN_IF_ERROR(fresh.StartHub());
  ASSIGN_OR_RETURN(std::string fresh_station, fresh.EnrolStation("城关镇工作站", "0512", kTownship));
  int64_t expected = 0;
  ASSIGN_OR_RETURN(double empty_seconds,
                   NewRecordSyncs(fresh, dir + "/fresh", fresh_station, 0, sizes.new_records, sizes.repeats, &expected));
  report.Emit({{"scenario", "sync_new_records"},
               {"new_records", sizes.new_records},
               {"repeats", sizes.repeats},
               {"seconds_on_full_replica", Round(full_seconds)},
               {"full_replica_records", sizes.records},
               {"seconds_on_empty_replica", Round(empty_seconds)},
               {"ratio", Round(full_seconds / empty_seconds)},
               {"note", "median wall time of the station's `aidsync sync` process, start-up included"},
               {"targets", json::array({Target("full / empty", full_seconds / empty_seconds, "<=", 2)})}});

  // The throttled link: a new village point of another township catches up.
  const int64_t m = sizes.throttled_records;
  const std::string csv = dir + "/fresh/throttled.csv";
  RETURN_IF_ERROR(WriteRecordsCsv(csv, 0, m, "430123/06"));
  RETURN_IF_ERROR(fresh.ImportAtHub(csv).status());
  ASSIGN_OR_RETURN(std::string village, fresh.EnrolStation("白沙镇工作站", "0612", "430123/06"));
  LinkOptions slow{sizes.link_bits_per_second, sizes.link_round_trip_ms / 2};
  ASSIGN_OR_RETURN(LinkedSync s, SyncThroughLink(fresh, village, slow));
  RETURN_IF_ERROR(ExpectRecords(fresh, village, m, "after the throttled sync"));
  const double per_field = static_cast<double>(s.bytes) / static_cast<double>(m * RecordColumns().size());
  report.Emit({{"scenario", "throttled_initial_sync"},
               {"records", m},
               {"link", {{"bits_per_second", sizes.link_bits_per_second}, {"round_trip_ms", sizes.link_round_trip_ms}}},
               {"seconds", Round(s.run.command.seconds)},
               {"round_trips", s.run.round_trips},
               {"bytes_on_wire", s.bytes},
               {"bytes_per_field_write", Round(per_field, 2)},
               {"station_peak_rss_mib", Round(s.run.command.peak_rss_kib / kMiB, 1)},
               {"targets", json::array({Target("seconds", s.run.command.seconds, "<", 300)})}});

  // Memory must not grow with the records moved: the initial sync of
  // `records` against that of `throttled_records` (10 times fewer at the
  // issue's sizes), each side. A fixed allowance covers the allocator's noise.
  ASSIGN_OR_RETURN(int64_t fresh_hub_peak, fresh.HubPeakRssKib());
  const double station_growth = (f.station_peak_kib - s.run.command.peak_rss_kib) / kMiB;
  const double hub_growth = (f.hub_peak_kib - fresh_hub_peak) / kMiB;
  report.Emit({{"scenario", "memory_vs_records"},
               {"records", {sizes.throttled_records, sizes.records}},
               {"station_peak_rss_mib", {Round(s.run.command.peak_rss_kib / kMiB, 1), Round(f.station_peak_kib / kMiB, 1)}},
               {"hub_peak_rss_mib", {Round(fresh_hub_peak / kMiB, 1), Round(f.hub_peak_kib / kMiB, 1)}},
               {"note", "peak memory of an initial sync of the fewer records, then of the more"},
               {"targets",
                json::array({Target("station growth MiB", station_growth, "<=", 8),
                             Target("hub growth MiB", hub_growth, "<=", 8)})}});
  return fresh.StopHub();
}

}  // namespace aidsync::bench
