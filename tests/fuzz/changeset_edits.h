// The edit scripts of the changeset fuzz target's third mode: the fuzz input
// is a list of field edits applied to real changesets of the county (0512's
// and 0513's writes the hub has not seen), each then signed by the key its
// author field names. So the fuzzer explores what an enrolled but hostile (or
// buggy) station could sign — a reused sequence number, a predecessor from
// another chain, a scope outside its own, a column or table the schema lacks,
// overwrites of versions that never existed — and the apply logic behind the
// signature check gets the coverage.
//
// Script: a sequence of [opcode byte][arguments]; opcode mod kEditCount. An
// argument past the end of the input reads as 0.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/keys.h"
#include "sync/changeset.h"
#include "tests/fuzz/fuzz_county.h"

namespace aidsync::fuzz {

enum Edit : uint8_t {
  kSelect = 0,      // [i]        edit changeset i (mod count) from now on
  kSeq,             // [s]        seq = s
  kPrev,            // [how][...] prev = none / id of changeset j / id of hub log entry j / 32 input bytes
  kHlc,             // [8 bytes]  hlc = the value
  kHlcForward,      // [2 bytes]  hlc += value ms (the HLC's upper 48 bits)
  kScope,           // [k]        scope = one of kScopes, or [len][text] for k past the list
  kClass,           //            toggle reference / case
  kSchemaVersion,   // [4 bytes]
  kAddDep,          // [how][...] deps += an id, as for kPrev
  kTableName,       // [t][k]     table t's name = a schema table name, or one no schema has
  kColumnName,      // [t][c][k]  column c of table t = a name from any table, or "id", "scope", ...
  kRowId,           // [t][r][k]  row r of table t = an id the county uses, or [len][text]
  kToggleDeleted,   // [t][r][all] row deleted flag; with `all` odd, every field's tombstone too
  kValue,           // [t][r][f][kind][...] field value = NULL / integer / real / [len][text]
  kAddOverwrite,    // [t][r][f][k] field overwrites += dep index k
  kAddField,        // [t][r][c]  a new field writing column c
  kDuplicateRow,    // [t][r]     copy row r (same id) at the end of table t
  kAuthor,          // [k]        author (and signer) = hub, 0512, 0513, 0514 (revoked), stranger
  kClone,           //            append a copy of the selected changeset and select it
  kEditCount
};

// The county's unsynced changesets, decoded (the scripts' starting point).
std::vector<ChangesetContent> BaseContents(County& county);

// Runs `script` over a copy of the base contents and signs each with the key
// its author names. Changesets too large to sign are left out.
std::vector<std::string> RunEditScript(County& county, std::string_view script);

// The county key (or the stranger's) whose public key is `author`, or null.
const SigningKey* KeyFor(County& county, const PublicKey& author);

}  // namespace aidsync::fuzz
