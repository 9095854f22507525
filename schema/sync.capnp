# The sync protocol: every message on a connection is one SyncMessage.
# States, flow and limits: docs/PROTOCOL.md.
@0xd9725b4a18835f68;

$import "/capnp/c++.capnp".namespace("aidsync::wire");

using Changeset = import "changeset.capnp";

const protocolVersion :UInt32 = 1;

struct ChainHead {
  author @0 :Data;          # 32-byte ed25519 key
  scope @1 :Text;
  tableClass @2 :Changeset.TableClass;
  seq @3 :UInt64;           # highest sequence number held
  head @4 :Data;            # 32-byte id: the smallest among the changesets held at `seq`
  count @5 :UInt64;         # changesets held in the chain (> seq after a fork)
  fingerprint @6 :Data;     # XOR of the 32-byte ids of every changeset held
}

struct SyncMessage {
  protocolVersion @0 :UInt32;   # = protocolVersion; a peer speaking another is refused
  sessionId @1 :UInt64;         # chosen by the client; every reply echoes it
  union {
    hello @2 :Hello;            # client -> server, first
    welcome @3 :Welcome;        # server -> client
    push @4 :Push;              # client -> server
    batch @5 :Batch;            # server -> client
    refused @6 :Refused;        # either way; ends the session
    join @7 :Join;              # client -> server, first: enrolment with an invite token
    enrolled @8 :Enrolled;      # server -> client: the answer to join
  }
}

struct Hello {
  certificate @0 :Data;     # the client's SignedCertificate
  wallMs @1 :Int64;         # the client's wall clock (for clock offsets)
  digest @2 :Data;          # HeadsDigest of the client's chains the server may see (empty: unknown)
  revocationsDigest @3 :Data;  # digest of the revocation ids the client holds (announces its list)
  accepts @4 :UInt32;       # what the client can read: bit flags, see `acceptsPacked` (0 from older clients)
}

struct Welcome {
  certificate @0 :Data;     # the server's SignedCertificate
  wallMs @1 :Int64;
  upToDate @2 :Bool;        # digests agree: nothing to exchange, the session is over
  heads @3 :List(ChainHead);# otherwise: the server's chains the client may see
  revocationsDigest @4 :Data;  # digest of the revocation ids the server holds
  revocations @5 :List(Data);  # every SignedRevocation the server holds, when the digests differ
  accepts @6 :UInt32;       # what the server can read: bit flags, see `acceptsPacked` (0 from older servers)
}

# Bit of Hello.accepts / Welcome.accepts: the sender reads `packed` in Push and
# Batch. A node sends `packed` only to a peer that announced it.
const acceptsPacked :UInt32 = 1;

struct Push {
  heads @0 :List(ChainHead);      # first push only: the client's chains the server may see
  certificates @1 :List(Data);    # certificates of authors in `changesets` the server may lack
  changesets @2 :List(Data);      # SignedChangeset envelopes, each chain in order
  more @3 :Bool;                  # the client has more to send
  revocations @4 :List(Data);     # first push only: the client's revocations, when the digests differed
  packed @5 :Data;                # instead of `changesets`: one zstd frame of them (docs/PROTOCOL.md 2.7.1)
}

struct Batch {
  certificates @0 :List(Data);
  changesets @1 :List(Data);
  more @2 :Bool;                  # the server has more to send
  applied @3 :UInt32;             # of the client's last push: applied
  rejected @4 :UInt32;            # of the client's last push: refused
  packed @5 :Data;                # instead of `changesets`: one zstd frame of them (docs/PROTOCOL.md 2.7.1)
}

struct Refused {
  reason @0 :Text;                # a stable key, e.g. "protocol_version", "certificate"
  detail @1 :Text;
}

struct Join {
  secret @0 :Data;          # the invite token's 32-byte secret (the channel is CurveZMQ to the hub's key)
  nodeKey @1 :Data;         # the joining node's 32-byte ed25519 key; the connection's Curve key derives from it
  signature @2 :Data;       # 64-byte ed25519 by nodeKey over BLAKE2b-256("aidsync join v1" 0x00 secret nodeKey)
}

struct Enrolled {
  certificate @0 :Data;     # the new station's SignedCertificate, issued from the stored invite
  hubCertificate @1 :Data;  # the hub's own SignedCertificate
  revocations @2 :List(Data);  # every SignedRevocation the hub holds
}
