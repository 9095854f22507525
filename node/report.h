// The county's yearly statistics (`aidsync report`, DESIGN 1 and 8): what the
// county's work plans count — applications decided, cases by kind and the
// criminal share, lottery-funded cases, consultations by channel, 12348
// tickets, return visits (satisfaction and the no-fee rule), complaints — per
// station and against the hub's yearly targets. Computed from the replica's
// plain domain tables, so on the hub it covers the county and on a station
// what that station holds. docs/ARCHITECTURE.md section 11 has the rules.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "sync/replica.h"

namespace aidsync {

// The first and last year a report may be asked for.
constexpr int kReportMinYear = 1900;
constexpr int kReportMaxYear = 2100;

struct Report {
  int year = 0;
  // The node the report was made on: it covers what this node holds.
  std::string node_code, node_name, node_scope;

  // applications with received_at in the year.
  struct Applications {
    int64_t received = 0;  // all of them, whatever their status
    int64_t approved = 0;  // status 'approved'
    int64_t rejected = 0;  // status 'rejected'
    int64_t pending = 0;   // status 'received' or not set: not decided yet
  } applications;

  // cases with assigned_at in the year.
  struct Cases {
    int64_t total = 0;
    int64_t criminal = 0, civil = 0, administrative = 0;  // category
    std::optional<double> criminal_share;  // criminal / total, 3 decimals; none when total = 0
    int64_t lottery = 0;                   // funding 'lottery' (中央专项彩票公益金)
    int64_t closed = 0;                    // status 'closed'
    double recovered_amount = 0;           // sum of recovered_amount (yuan), 2 decimals
  } cases;

  // consultations with consulted_at in the year; by channel.
  struct Consultations {
    int64_t total = 0;
    int64_t walk_in = 0, hotline_12348 = 0, phone = 0, online = 0;
  } consultations;

  int64_t hotline_tickets = 0;  // hotline_tickets with received_at in the year

  // return_visits with visited_at in the year.
  struct ReturnVisits {
    int64_t total = 0;
    std::optional<double> satisfaction_avg;  // mean of the set satisfaction values, 2 decimals
    int64_t satisfied = 0;                   // satisfaction >= 4
    int64_t fee_charged = 0;                 // fee_charged = 1: breaches of the no-fee rule
  } return_visits;

  // complaints with received_at in the year; by_status counts each status
  // text present (an unset or empty status under "(unset)").
  struct Complaints {
    int64_t total = 0;
    std::map<std::string, int64_t> by_status;
  } complaints;

  // Rows of the year grouped by their scope. A scope that is the scope of
  // enrolled stations (from their certificates in the `stations` table) is
  // shown as those stations: one station normally; several sharing a scope
  // are one entry with codes joined by '+' and names by '、'. Stations
  // outside this node's scope are left out; stations inside it are listed
  // even with nothing to count. A scope that is no station's gets an entry
  // of its own without code or name. Ordered: stations by code, then the
  // other scopes by scope.
  struct Station {
    std::optional<std::string> code, name;
    std::string scope;
    int64_t applications = 0, cases = 0, consultations = 0;
  };
  std::vector<Station> stations;

  // The `targets` rows of the year whose station is inside this node's scope
  // (or whose station is unknown here), ordered by station code, metric, id.
  // `actual` counts the year's rows over the station's scope subtree: cases
  // (metric cases), consultations (consultations), cases with funding
  // 'lottery' (lottery_cases). `scope`, `actual` and `progress` are unset
  // when the station's certificate is unknown; `progress` = actual / target,
  // 3 decimals, unset when the target is 0.
  struct Target {
    std::string station_code, metric;
    int64_t target = 0;
    std::optional<std::string> scope;
    std::optional<int64_t> actual;
    std::optional<double> progress;
  };
  std::vector<Target> targets;
};

// The year's records month by month, for the status page's charts
// (docs/ARCHITECTURE.md section 12): applications by category (received_at),
// cases by category (assigned_at), consultations by channel (consulted_at).
struct MonthlyFigures {
  struct Series {
    // The buckets, in order: the column's allowed values in the schema, then
    // "other" (no value, or one this node's schema does not know).
    std::vector<std::string> keys;
    // [0] is January. Each month has every key of `keys`, 0 when none.
    std::array<std::map<std::string, int64_t>, 12> months;
    // Records of the year whose date has no month 1-12 after "YYYY-".
    int64_t no_month = 0;
  };
  Series applications, cases, consultations;
};

// Builds the report for `year` from one read-only snapshot of the replica
// (a write by another process meanwhile is either wholly in it or not).
// A record belongs to the year when its own date column (applications and
// hotline_tickets and complaints: received_at; cases: assigned_at;
// consultations: consulted_at; return_visits: visited_at) begins with
// "YYYY-"; records without such a date are in no year's report.
//
// With `monthly`, also fills it from the same snapshot. A record of the year
// is in month M when its date continues after "YYYY-" with M as one or two
// digits followed by a non-digit or the end ("2025-03-07", "2025-3-7",
// "2025-03"), 1 <= M <= 12; any other is counted in `no_month`. So each
// series' counts over months and keys plus `no_month` add up to the report's
// total (applications.received, cases.total, consultations.total).
//
// InvalidArgument if `year` is outside kReportMinYear..kReportMaxYear;
// IOError / Busy / Corruption for the store.
Result<Report> BuildReport(Replica& replica, int year, MonthlyFigures* monthly = nullptr);

}  // namespace aidsync
