# Bundles: changesets carried on a USB stick, sealed to one recipient.
# Field-level specification: docs/FORMATS.md.
@0xc5193789ad15f333;

$import "/capnp/c++.capnp".namespace("aidsync::wire");

# The first frame of every bundle (after its tag byte).
struct BundleHeader {
  formatVersion @0 :UInt32;   # 1
  senderKey @1 :Data;         # 32-byte ed25519 key of the node that wrote the bundle
  senderCode @2 :Text;
  recipientCode @3 :Text;     # the station code the bundle is sealed to
  createdAtMs @4 :Int64;
}
