// Per-row CRDT metadata: one blob per replicated row (not one row per field,
// which is what keeps writes near plain SQLite speed), holding for each
// written field its heads (the versions no known write has overwritten) and
// the ids of versions known to be overwritten that have not arrived yet.
//
// A version is identified by the changeset that wrote it. Locally a head names
// its changeset by log id (the `log` table's rowid) and keeps its HLC, so the
// winner can be picked without touching the log except on an HLC tie.
// Values of heads are kept in the blob only while they are not the single
// visible value in the domain table (a conflict, or a deleted row).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "crypto/keys.h"
#include "sync/values.h"

namespace aidsync {

struct Head {
  int64_t log_id = 0;
  uint64_t hlc = 0;
  std::optional<Value> value;  // present while the field is conflicted or the row deleted
};

struct FieldState {
  uint32_t column = 0;             // ordinal in the local schema's TableDef::columns
  std::vector<Head> heads;
  std::vector<Digest> pending;     // overwritten by a known write, not yet received
};

struct RowMeta {
  bool deleted = false;
  std::vector<FieldState> fields;  // sorted by column

  // The state of `column`, created empty if absent.
  FieldState& Field(uint32_t column);
  // Open conflicts on this row: fields with several heads, or, once the row is
  // deleted, fields that still have a head (an edit the delete did not see).
  int OpenConflicts() const;
};

// Binary form, specified in docs/FORMATS.md section 9. Writes format 2: the
// version that most heads share (the base) once, then per field its column,
// heads (a kind byte; the version only when it is not the base; the value
// when kept) and pending ids. About a third of format 1's size for a row
// written once, which is most rows (docs/PERFORMANCE.md).
std::string EncodeRowMeta(const RowMeta& meta);
// Reads format 1 or 2. Corruption if `blob` is malformed or of another format.
Result<RowMeta> DecodeRowMeta(std::string_view blob);

}  // namespace aidsync
