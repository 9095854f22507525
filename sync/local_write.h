// LocalTransaction: one local write transaction, turned into signed changesets
// (DESIGN 4).
//
// Rows are validated as they are added (table, columns, types, allowed values,
// scope, authority) and gathered per chain (scope, table class). A chain's
// pending changeset is sealed — sequence number, HLC, signature — and applied
// through the same merge as received changesets when it reaches the target
// size, and at Commit; so a 100,000-row import becomes many consecutive
// bounded changesets inside one SQLite transaction: all of them or none.
// Domain rules are checked at Commit over every row written, after all of the
// transaction's changesets are materialized.
//
// Not thread-safe. Destroying an uncommitted transaction rolls it back.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/status.h"
#include "sync/changeset.h"
#include "sync/merge.h"
#include "sync/sqlite.h"

namespace aidsync {

class Replica;

struct CommitSummary {
  int changesets = 0;
  int rows = 0;
  std::vector<std::string> alerts;  // rules that allow the write but raise an alert
};

class LocalTransaction {
 public:
  // Creates or updates row `id` of `table` (a fresh UUIDv7 when id is
  // nullopt) with `values` given as text, parsed by column type. `scope`
  // defaults to the existing row's scope, else the node's own scope. Returns
  // the row id. A `cases` row created without notice_number gets the next
  // number of this station. Fails with NotFound (table), InvalidArgument
  // (column, value, scope, deleted row), Unauthorized (reference table on a
  // station, scope outside the node's jurisdiction): these refusals write
  // nothing of the row and leave the transaction usable for other rows. A
  // failure of the store itself (sealing a full changeset) fails the whole
  // transaction: only destroying it (rollback) remains.
  Result<std::string> Put(const std::string& table, std::optional<std::string> id,
                          std::optional<std::string> scope,
                          const std::vector<std::pair<std::string, std::string>>& text_values);

  // Put with values already typed (checked against the column types).
  Result<std::string> PutValues(const std::string& table, std::optional<std::string> id,
                                std::optional<std::string> scope,
                                std::vector<std::pair<std::string, Value>> values);

  // Deletes row `id` for good, covering every current version of its fields.
  // NotFound if the row does not exist or is already deleted.
  Status Delete(const std::string& table, const std::string& id);

  // Closes the open conflicts of a field (DESIGN 3): an ordinary new write of
  // `text_value` over every head. On a deleted row, whose conflicts are edits
  // the delete did not see, it deletes again over those edits (the row stays
  // deleted; `text_value` is then unused). NotFound if no such row is known.
  Status Resolve(const std::string& table, const std::string& id, const std::string& column,
                 const std::string& text_value);

  // Seals the remaining changesets, checks the domain rules over every row
  // written and commits. RuleViolation naming the row and rule if a rule
  // refuses; IOError (disk full, ...) if the commit fails. Either way nothing
  // of the transaction remains.
  Result<CommitSummary> Commit();

  ~LocalTransaction();
  LocalTransaction(const LocalTransaction&) = delete;
  LocalTransaction& operator=(const LocalTransaction&) = delete;

 private:
  friend class Replica;
  LocalTransaction(Replica& replica, std::unique_ptr<Transaction> tx);

  // (table, id) of a row written in this transaction. Hashed, not ordered:
  // an import looks up every row twice, and ordered maps of string pairs
  // cost about 10% of a local write (docs/PERFORMANCE.md).
  using RowKey = std::pair<std::string, std::string>;
  struct RowKeyHash {
    size_t operator()(const RowKey& k) const {
      return std::hash<std::string>()(k.first) * 31 + std::hash<std::string>()(k.second);
    }
  };
  // A changeset being filled for one chain.
  struct Pending {
    ChangesetContent content;
    std::map<Digest, uint16_t> dep_index;
    std::unordered_map<RowKey, size_t, RowKeyHash> row_index;  // (table, id) -> op
    size_t approx_bytes = 0;
    bool only_new_rows = true;  // every row op creates a row with a fresh id
  };
  using ChainKey = std::pair<std::string, TableClass>;  // (scope, class)

  // OK if this node may write `table` rows in `scope` and the transaction is usable.
  Status CheckMayWrite(const TableDef& table, const std::string& scope) const;
  Result<Pending*> PendingFor(const std::string& scope, TableClass cls);
  // Signs, logs and applies `pending`; on failure the transaction is failed.
  Status Seal(Pending& pending);
  Status SealOnce(Pending& pending);
  // Adds a row op to the chain's pending changeset. `stored` is the row's
  // metadata as the caller read it (nullopt: none stored); it is read again
  // only if the changeset must be sealed first. `fresh_id`: `id` was made
  // just now (NewRowId), so no row anywhere has it.
  Status AddRowOp(const TableDef& table, const std::string& scope, const std::string& id, bool deleted,
                  std::vector<std::pair<uint32_t, Value>> values, std::optional<StoredRow> stored,
                  bool fresh_id = false);
  Result<std::string> NextNoticeNumber(const std::optional<std::string>& assigned_at);
  // Refuses a typed notice_number for cases row `id` unless it is one of this
  // station's, used by no other case, and the row holds no other number
  // (an issued number never changes); then moves the counter past it.
  // False when the row already holds `notice` (nothing to write).
  Result<bool> TakeTypedNoticeNumber(const std::string& id, bool is_new, const std::string& notice);
  // Notes that case `id` holds `notice` from this transaction on.
  void NoteNoticeNumber(const std::string& notice, const std::string& id);
  Result<Digest> LogHash(int64_t log_id);

  Replica& replica_;
  std::unique_ptr<Transaction> tx_;
  BufferedRandom id_random_;  // row ids: public, drawn in bulk
  std::map<ChainKey, Pending> pending_;
  // Rows in a not-yet-sealed changeset, and the chain they are in.
  std::unordered_map<RowKey, ChainKey, RowKeyHash> pending_rows_;
  std::vector<TouchedRow> touched_;
  // Notice numbers given to cases rows in this transaction, typed or issued,
  // both ways: two rows of one import must not share one, and Commit
  // records them in aidsync_notice_numbers.
  std::map<std::string, std::string> notice_case_;  // number -> case id
  std::unordered_map<std::string, std::string> case_notice_;  // case id -> number
  int sealed_ = 0;
  bool failed_ = false;
};

}  // namespace aidsync
