// The CRDT merge: materializes one changeset into the per-row metadata and the
// domain tables (DESIGN 3).
//
// Each field is a multi-value register. A write adds its version as a head and
// removes the heads it names as overwritten; a version named as overwritten
// before it arrives is remembered as pending and never becomes a head. So a
// field's heads are a function of the set of changesets applied, not of their
// order, and every replica holding the same changesets shows the same values
// and the same open conflicts. The visible value is the head with the greatest
// (HLC, author key, changeset id).
//
// Used for local writes and received changesets alike, so both paths give the
// same result by construction. Not thread-safe (one per Database).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "schema/legal_aid.h"
#include "sync/changeset.h"
#include "sync/row_meta.h"
#include "sync/sqlite.h"

namespace aidsync {

// A replicated row's stored metadata.
struct StoredRow {
  std::string scope;
  RowMeta meta;
};

// Column `i` of the current row of `stmt` as a Value. Domain tables hold only
// INTEGER, REAL and TEXT; a BLOB (put there by something other than aidsync)
// reads as hex text.
Value ColumnValue(const Statement& stmt, int i);

// Reads the metadata of row `id` of `table`; nullopt if no write to it is known.
// Corruption if the stored blob is malformed.
Result<std::optional<StoredRow>> LoadRowMeta(Database& db, const std::string& table, const std::string& id);

// A row a changeset touched (for rule checks after a local write).
struct TouchedRow {
  const TableDef* table;
  std::string id;
};

class ChangesetApplier {
 public:
  ChangesetApplier(Database& db, const SchemaDef& schema) : db_(db), schema_(schema) {}

  // Materializes `content`, which is already in the log as row `log_id` with
  // id `id`. Must run inside a transaction (or savepoint) the caller rolls
  // back on failure. Sets *complete to false if the changeset names tables or
  // columns this schema does not know (those parts stay in the log only).
  // Appends the rows it touched to *touched when given. A row op naming
  // another scope than its row was created with is left unapplied and raises
  // an alert (aidsync_alerts). Fails with Unauthorized for a table of the
  // other class, InvalidArgument for a malformed row id or a value of the
  // wrong type, Corruption if stored metadata is malformed, IOError from SQLite.
  //
  // A local changeset is materialized while it is being signed
  // (Replica::AppendAndApplyLocal): its log row is written just after, and
  // `id` is then nullptr. Nothing here needs it: no other changeset can name
  // a version not yet signed, so its own versions are never looked up in a
  // field's pending list (which a modified peer could fill with any bytes,
  // all zeros included); and a local write overwrites every head of the
  // fields it writes, so its head never ties with another. `rows_are_new`
  // says that no row of `content` has metadata yet (freshly made ids): their
  // lookups are skipped.
  Status Apply(const ChangesetContent& content, const Digest* id, int64_t log_id, bool* complete,
               std::vector<TouchedRow>* touched = nullptr, bool rows_are_new = false);

 private:
  Status ApplyRow(const ChangesetContent& content, const Digest* id, int64_t log_id,
                  const TableDef& table, const std::vector<int>& ordinals, const RowOp& row,
                  const std::vector<std::optional<int64_t>>& dep_log_ids, bool row_is_new, bool* complete);
  Status ApplyField(const Digest* id, int64_t log_id, uint64_t hlc, const FieldWriteOp& op,
                    const std::vector<Digest>& deps,
                    const std::vector<std::optional<int64_t>>& dep_log_ids, FieldState* field);
  // True if head a orders before head b under (HLC, author key, changeset id).
  Result<bool> HeadLess(const Head& a, const Head& b);
  Status WriteDomainRow(const TableDef& table, const std::string& id, const std::string& scope,
                        RowMeta& meta, const std::vector<uint32_t>& columns);
  // The upsert of `columns` (sorted, unique) of `table`, made once and kept.
  const std::string& UpsertSql(const TableDef& table, const std::vector<uint32_t>& columns);

  Database& db_;
  const SchemaDef& schema_;
  std::map<std::pair<const TableDef*, std::vector<uint32_t>>, std::string> upsert_sql_;
};

}  // namespace aidsync
