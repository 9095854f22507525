// The records every benchmark scenario writes: legal-aid applications of a
// township (applications table, ten fields each), generated deterministically
// from their index so that aidsync and the plain-SQLite reference store
// exactly the same rows, and so that two runs compare like with like.
//
// The wording comes from the county's own work plans (shared/domain):
// applicants' names, ID card and phone numbers, village addresses, the
// matters legal aid covers, and the legal basis of each decision. Values vary
// per record the way real ones do, so compression on the wire is neither
// flattered by repetition nor defeated by noise.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "base/status.h"

namespace aidsync::bench {

// The table every scenario writes, and its ten columns in order.
inline constexpr const char* kTableName = "applications";
const std::vector<std::string>& RecordColumns();

// Record `index` as (column, text value) pairs in RecordColumns() order.
// Pure: the same index gives the same record on every run.
std::vector<std::pair<std::string, std::string>> MakeRecord(int64_t index);

// The total UTF-8 size of the ten values of record `index`: what "the
// value's own size" of the bytes-per-field target sums over.
size_t RecordValueBytes(int64_t index);

// The UTF-8 size of all values of records [0, count).
int64_t TotalValueBytes(int64_t count);

// One SQL query over kTableName giving (row count, total UTF-8 size of the
// ten values of every row): what a replica holding records [0, k) must
// answer with (k, TotalValueBytes(k)). A value lost, cut or NULLed changes
// the total, so a receiver that has every row but not every value is caught.
std::string RecordsCheckSql();

// Writes records [first, first + count) as a CSV file with a header row and
// a `scope` column holding `scope` (RFC 4180 quoting). IOError on failure.
Status WriteRecordsCsv(const std::string& path, int64_t first, int64_t count, const std::string& scope);

}  // namespace aidsync::bench
