// The sync protocol's messages (schema/sync.capnp) as C++ values, and their
// encoding. docs/PROTOCOL.md specifies the fields and the session states.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "base/status.h"
#include "crypto/invite.h"
#include "sync/chain_head.h"
#include "sync/packing.h"

namespace aidsync {

constexpr uint32_t kProtocolVersion = 1;

// Bits of HelloMsg::accepts and WelcomeMsg::accepts (schema/sync.capnp).
// kAcceptsPacked: the sender reads the `packed` field of Push and Batch.
constexpr uint32_t kAcceptsPacked = 1;

// Limits on one received message: it comes from the network and is
// untrusted until its size, structure and signatures are checked.
struct ProtocolLimits {
  // Checked before parsing, and set as ZMQ_MAXMSGSIZE so libzmq drops larger
  // frames itself: stops memory exhaustion by one giant message.
  size_t max_message_bytes = 4 << 20;
  // Cap'n Proto traversal limit: twice the message size in words stops
  // amplification through pointers that alias one large object.
  uint64_t traversal_limit_words = (4 << 20) / 8 * 2;
  // Stops stack exhaustion through deep nesting.
  int nesting_limit = 16;
  // Chain heads in one message: far above any county (278 stations x a few
  // chains each), low enough that the heads list cannot be a memory weapon.
  size_t max_heads = 200000;
  // Revocations in one message: a county revokes a handful of keys a year;
  // the cap keeps a hostile list from costing a signature check per entry
  // without end.
  size_t max_revocations = 10000;
  // Changeset envelopes in one Push or Batch, plain list or packed: a batch
  // of 256 KiB holds a few thousand of the smallest changesets. Stops a list
  // of empty entries from costing a std::string each (a 4 MiB message holds
  // half a million empty list entries, a 4 MiB packed list a million).
  size_t max_changesets = 65536;
  // A packed field's declared unpacked size, checked before it is
  // allocated: stops a zip bomb, a few KiB of zstd that unpack to
  // gigabytes. Equal to max_message_bytes, so a packed message carries no
  // more changeset bytes than a plain one could (a sender packs 256 KiB).
  size_t max_unpacked_bytes = 4 << 20;
};

struct HelloMsg {
  std::string certificate;
  int64_t wall_ms = 0;
  std::optional<Digest> digest;
  std::optional<Digest> revocations_digest;
  uint32_t accepts = 0;  // kAccepts* bits; 0 from a client older than packing
};
struct WelcomeMsg {
  std::string certificate;
  int64_t wall_ms = 0;
  bool up_to_date = false;
  std::vector<ChainHead> heads;
  std::optional<Digest> revocations_digest;
  std::vector<std::string> revocations;
  uint32_t accepts = 0;  // kAccepts* bits; 0 from a server older than packing
};
struct PushMsg {
  bool has_heads = false;            // the first push of a session carries heads
  std::vector<ChainHead> heads;
  std::vector<std::string> certificates;
  std::vector<std::string> changesets;  // decoded from `changesets` or from `packed`
  bool more = false;
  std::vector<std::string> revocations;
};
struct BatchMsg {
  std::vector<std::string> certificates;
  std::vector<std::string> changesets;  // decoded from `changesets` or from `packed`
  bool more = false;
  uint32_t applied = 0;
  uint32_t rejected = 0;
};
struct RefusedMsg {
  std::string reason;
  std::string detail;
};

struct JoinMsg {
  InviteSecret secret;
  PublicKey node_key;
  Signature signature{};
};
struct EnrolledMsg {
  std::string certificate;
  std::string hub_certificate;
  std::vector<std::string> revocations;
};

struct SyncMsg {
  uint32_t version = kProtocolVersion;
  uint64_t session = 0;
  std::variant<HelloMsg, WelcomeMsg, PushMsg, BatchMsg, RefusedMsg, JoinMsg, EnrolledMsg> body;
};

// How EncodeMessage writes a message.
struct EncodeOptions {
  // Non-null: the changesets of a Push or Batch (when there are any) go into
  // one zstd frame in `packed` instead of the `changesets` list. Set only
  // for a peer that announced kAcceptsPacked. Borrowed, not owned.
  Packer* packer = nullptr;
};

// The message as one Cap'n Proto flat array (docs/PROTOCOL.md 2.7, 2.7.1). Never
// fails: if packing fails (zstd out of memory), the changesets go in the
// plain list, which every peer reads. Thread-safe if options.packer is not
// shared between threads.
std::string EncodeMessage(const SyncMsg& msg, const EncodeOptions& options = {});

// Parses a received message, unpacking a `packed` field into `changesets`.
// Corruption (naming the problem) when it is over a limit or malformed,
// including a packed field that Unpack refuses or a message carrying both a
// plain list and a packed field. The version is returned as sent: the
// caller refuses a peer that speaks another one. Thread-safe.
Result<SyncMsg> DecodeMessage(std::string_view bytes, const ProtocolLimits& limits = {});

}  // namespace aidsync
