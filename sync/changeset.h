// Changesets (DESIGN 4): one signed unit of field writes and row deletes by
// one author, in one chain (author, scope, table class), with a sequence
// number and the id of its predecessor in that chain.
//
// The stored and transmitted form is the envelope: a Cap'n Proto
// SignedChangeset (schema/changeset.capnp) holding the body bytes verbatim and
// the author's signature over the changeset id, Digest("aidsync changeset v1",
// body). Nothing is ever re-encoded after signing, so no encoder difference can
// break a signature. docs/FORMATS.md specifies every field.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "crypto/keys.h"
#include "schema/legal_aid.h"
#include "sync/values.h"

namespace aidsync {

constexpr std::string_view kChangesetContext = "aidsync changeset v1";

struct FieldWriteOp {
  uint16_t column = 0;                // index into TableOpsList::columns
  std::vector<uint16_t> overwrites;   // indexes into ChangesetContent::deps
  bool tombstone = false;             // in deleted rows: covers versions, sets nothing
  Value value;
};

struct RowOp {
  std::string id;
  bool deleted = false;
  std::vector<FieldWriteOp> fields;
};

struct TableOpsList {
  std::string name;
  std::vector<std::string> columns;
  std::vector<RowOp> rows;
};

// The decoded body of a changeset. Value type.
struct ChangesetContent {
  PublicKey author;
  std::string scope;
  TableClass cls = TableClass::kCase;
  uint64_t seq = 0;
  std::optional<Digest> prev;  // absent when seq == 1
  uint64_t hlc = 0;
  uint32_t schema_version = 0;
  std::vector<Digest> deps;     // ids of changesets whose versions are overwritten
  std::vector<TableOpsList> tables;
};

// A changeset as stored and sent: its id and the verbatim envelope bytes.
struct SignedChangeset {
  Digest id;
  std::string envelope;
};

// Limits on decoding untrusted changeset bytes (DESIGN 4: bounded size).
struct ChangesetLimits {
  // Largest envelope accepted. Stops memory exhaustion; also the size local
  // transactions are cut to, so every changeset fits one network batch.
  size_t max_envelope_bytes = 256 * 1024 + 1024;
  // Cap'n Proto traversal limit in 8-byte words: stops amplification attacks
  // where many pointers alias one large object.
  uint64_t traversal_limit_words = 2 * 256 * 1024 / 8;
  // Stops stack exhaustion through deeply nested pointers.
  int nesting_limit = 16;
};

// The body size local writers aim under, leaving room for the envelope.
constexpr size_t kTargetBodyBytes = 200 * 1024;

// Upper bounds of what a row op and a field write add to an encoded body
// (Cap'n Proto struct, pointers, text rounded up to words), so a writer can
// cut a transaction into changesets under kTargetBodyBytes without encoding.
size_t EncodedRowBytes(const std::string& id);
size_t EncodedFieldBytes(const Value& value, size_t overwrites);
constexpr size_t kEncodedDepBytes = 48;  // pointer + 32-byte Data

// The flow rule of DESIGN 3: case changesets (personal data) flow only up, to
// nodes at or above their scope. Reference changesets flow down to nodes at
// or below their scope, and are also held by the nodes above them, which
// relay them down (a township passes on the hub's notice for one village).
// Sibling branches see neither.
bool ChangesetVisibleTo(std::string_view node_scope, std::string_view changeset_scope, TableClass cls);

// Serializes `content`, signs its id with `author_key` and returns the
// envelope. InvalidArgument if the encoded envelope exceeds
// `limits.max_envelope_bytes` (a single value too large to replicate) or the
// author key does not match content.author.
Result<SignedChangeset> SignChangeset(const ChangesetContent& content, const SigningKey& author_key,
                                      const ChangesetLimits& limits = {});

// Parses an envelope from untrusted bytes, checks every size and index, and
// verifies the signature against the author named in the body. Corruption for
// malformed input or a limit exceeded, BadSignature for a signature that does
// not verify. On success `*id` is the changeset id.
Result<ChangesetContent> DecodeChangeset(std::string_view envelope, Digest* id,
                                         const ChangesetLimits& limits = {});

}  // namespace aidsync
