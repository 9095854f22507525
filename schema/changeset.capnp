# Changesets: one signed unit of CRDT field writes and row deletes.
# Field-level specification: docs/FORMATS.md.
@0xf08ca689b32138b4;

$import "/capnp/c++.capnp".namespace("aidsync::wire");

enum TableClass {
  reference @0;   # written by the hub only; flows down the scope tree
  case @1;        # applicants' records; flows only up the scope tree
}

# The envelope that is stored in the log and sent on the wire, verbatim.
struct SignedChangeset {
  body @0 :Data;        # a ChangesetBody message in canonical form (schema/canonical.h), verbatim
  signature @1 :Data;   # 64-byte ed25519 by body.author over the changeset id:
                        # BLAKE2b-256("aidsync changeset v1" 0x00 body)
}

struct ChangesetBody {
  author @0 :Data;          # 32-byte ed25519 public key
  scope @1 :Text;           # every row in this changeset has this scope
  tableClass @2 :TableClass;
  seq @3 :UInt64;           # 1, 2, 3, ... per chain (author, scope, tableClass)
  prev @4 :Data;            # id of changeset seq-1 of this chain; empty when seq = 1
  hlc @5 :UInt64;           # hybrid logical clock: 48-bit ms << 16 | 16-bit counter
  schemaVersion @6 :UInt32; # the author's schema version
  deps @7 :List(Data);      # ids of the changesets whose field versions are overwritten
  tables @8 :List(TableOps);
}

struct TableOps {
  name @0 :Text;            # table name, e.g. "applications"
  columns @1 :List(Text);   # column names referenced by index in the row ops
  rows @2 :List(RowOp);
}

struct RowOp {
  id @0 :Text;              # the row's globally unique id (UUIDv7 text)
  deleted @1 :Bool;         # true: the row is deleted for good; `fields` then holds
                            # tombstones (no value) naming the versions the delete covers
  fields @2 :List(FieldWrite);
}

struct FieldWrite {
  column @0 :UInt16;          # index into TableOps.columns
  overwrites @1 :List(UInt16);# indexes into ChangesetBody.deps: the versions (heads)
                              # of this field that this write replaces
  value :union {
    none @2 :Void;            # NULL
    integer @3 :Int64;
    real @4 :Float64;
    text @5 :Text;
    tombstone @6 :Void;       # only in deleted rows
  }
}
