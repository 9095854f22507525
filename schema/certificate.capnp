# Node certificates: the county authority vouches for a node key.
# Field-level specification: docs/FORMATS.md.
@0xd4f8d5b13c5fdc10;

$import "/capnp/c++.capnp".namespace("aidsync::wire");

enum Role {
  hub @0;
  station @1;
}

struct CertificateBody {
  nodeKey @0 :Data;       # 32-byte ed25519 public key of the node
  name @1 :Text;          # station name, e.g. "城关镇工作站"
  code @2 :Text;          # station code, unique in the county
  role @3 :Role;
  scope @4 :Text;         # jurisdiction path, e.g. "430123/05"
  issuedAtMs @5 :Int64;   # Unix milliseconds, authority's clock
  authority @6 :Data;     # 32-byte ed25519 public key of the signing authority
}

struct SignedCertificate {
  body @0 :Data;          # a CertificateBody message in canonical form (schema/canonical.h), verbatim
  signature @1 :Data;     # 64-byte ed25519 over BLAKE2b-256("aidsync certificate v1" 0x00 body)
}

# The file `aidsync enroll` writes and `aidsync install-cert` reads.
struct EnrolmentFile {
  certificate @0 :Data;   # the station's SignedCertificate
  issuer @1 :Data;        # the hub's own SignedCertificate: the station learns the hub's key
}

# What `aidsync invite` prints, base64url-encoded after the prefix "aidsync-invite-".
# Everything `aidsync join` needs to reach the hub and prove it was invited.
# The certificate's name, code and scope are NOT here: the hub takes them
# from the invite it stored, so editing a token gains nothing.
struct InviteToken {
  address @0 :Text;        # the hub's sync endpoint, tcp://HOST:PORT
  hubKey @1 :Data;         # 32-byte ed25519 key of the hub (its Curve key is derived from it)
  authority @2 :Data;      # 32-byte ed25519 key of the county authority
  secret @3 :Data;         # 32 random bytes; the hub stores only Digest("aidsync invite id", secret)
  expiresAtMs @4 :Int64;   # Unix milliseconds; the hub refuses the token after this
}
