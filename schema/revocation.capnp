# Revocations: the county authority withdraws a node key (DESIGN 6).
# Field-level specification: docs/FORMATS.md.
@0xe3a1f0c2b7d94a61;

$import "/capnp/c++.capnp".namespace("aidsync::wire");

using Changeset = import "changeset.capnp";

# The last sequence number of one of the key's chains that stays valid.
struct ChainLimit {
  scope @0 :Text;
  tableClass @1 :Changeset.TableClass;
  lastSeq @2 :UInt64;       # changesets of this chain with seq > lastSeq are refused
}

struct RevocationBody {
  nodeKey @0 :Data;         # 32-byte ed25519 key revoked
  chains @1 :List(ChainLimit);  # sorted by (scope, tableClass); a chain not listed keeps nothing
  revokedAtMs @2 :Int64;    # Unix milliseconds, the hub's clock
  reason @3 :Text;          # for the admin, e.g. "laptop stolen"
  authority @4 :Data;       # 32-byte ed25519 key of the signing authority
}

struct SignedRevocation {
  body @0 :Data;            # a RevocationBody in canonical form, verbatim
  signature @1 :Data;       # 64-byte ed25519 over BLAKE2b-256("aidsync revocation v1" 0x00 body)
}
