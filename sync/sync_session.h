// The sync protocol as transport-independent state machines (DESIGN 5,
// docs/PROTOCOL.md). A SyncClient turns replies into the next request; a
// SyncServer turns each request into a reply. Neither touches a socket, so
// tests can wire them back to back; sync/zmq_transport.h carries their bytes.
//
// A session: Hello → Welcome (digests of chain heads agree: done, one round
// trip) → Push / Batch pairs, each carrying a byte-bounded batch of what the
// other side lacks, chain by chain in order, until neither has more. Every
// received batch is applied in one SQLite transaction, so an interrupted
// session loses at most the batch in flight, and the next session starts from
// the heads the log now has.
//
// Not thread-safe; one Replica per thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/status.h"
#include "sync/chain_head.h"
#include "sync/protocol.h"
#include "sync/replica.h"

namespace aidsync {

struct SyncOptions {
  // Most envelope bytes in one batch (a single changeset larger than this
  // goes alone): bounds memory on both sides and the work a broken link can
  // waste, while keeping round trips few. 256 KiB is 8 s on a 256 kbit/s
  // link before packing, about half that packed: well inside the transport's
  // 30 s heartbeat timeout (docs/PROTOCOL.md 7.1).
  size_t batch_bytes = 256 * 1024;
  // Packed, a batch's budget counts bytes on the wire: the server sizes each
  // next batch so that, at the last batch's packing ratio, it is about
  // batch_bytes on the wire, taking at most this many times batch_bytes of
  // envelopes (a batch of records written by one import was a single
  // changeset, and the round trips and per-batch commits of an initial sync
  // were most of its time: docs/PERFORMANCE.md). A change of compressibility
  // can make one batch up to this many times batch_bytes on the wire; the
  // next is sized from it.
  size_t max_packed_batch_factor = 4;
  ProtocolLimits limits;
  // Announce kAcceptsPacked and pack the changesets sent to a peer that
  // announced it (docs/PROTOCOL.md 2.7.1). Off, a node behaves as one from
  // before packing: tests use it to play an old peer.
  bool packing = true;
  int pack_level = kDefaultPackLevel;  // zstd level of what this node packs
};

// Counters of one session, for the log line and for tests.
struct SessionStats {
  int64_t messages_sent = 0;
  int64_t messages_received = 0;
  int64_t bytes_sent = 0;
  int64_t bytes_received = 0;
  int64_t changesets_sent = 0;
  int64_t changesets_received = 0;  // applied here
  int64_t rejected_here = 0;        // received and refused here
  int64_t rejected_by_peer = 0;
};

// What to send next, chain by chain: the changesets a peer lacks. Reads the
// log lazily, one batch at a time, so memory is bounded by the batch size.
class OutgoingStream {
 public:
  OutgoingStream() = default;
  explicit OutgoingStream(std::vector<ChainGap> gaps) : gaps_(std::move(gaps)) {}

  // The next batch (changesets and the certificates of their authors not yet
  // sent in this session). Its changesets add up to at most max_bytes,
  // except that a batch holds at least one changeset if any remains (a
  // changeset larger than max_bytes goes alone). Sets *more if anything
  // remains after it. Fails only when the replica cannot be read.
  Status Next(Replica& replica, size_t max_bytes, std::vector<std::string>* changesets,
              std::vector<std::string>* certificates, bool* more);
  bool done() const { return index_ >= gaps_.size(); }
  int64_t pending() const;

 private:
  std::vector<ChainGap> gaps_;
  size_t index_ = 0;
  Replica::ChainCursor after_;
  std::set<PublicKey> certified_;
};

// One client conversation over the transport: a SyncClient session, or the
// one request of `join`.
class ClientExchange {
 public:
  virtual ~ClientExchange() = default;
  // The first request.
  virtual Result<std::string> Start() = 0;
  // The next request, or nullopt when the exchange is complete.
  virtual Result<std::optional<std::string>> OnReply(std::string_view reply) = 0;
  // The transport failed (timeout, lost connection, refused handshake).
  virtual void RecordFailure(const std::string& error) = 0;
};

class SyncClient : public ClientExchange {
 public:
  // `server` is the certificate of the node we expect to answer (the hub's
  // from enrolment, or another station's from the `stations` table);
  // `address` is only recorded in the peer status.
  SyncClient(Replica& replica, Certificate server, std::string address, uint64_t session_id,
             SyncOptions options = {});

  // The first request (Hello).
  Result<std::string> Start() override;

  // Handles one reply. Returns the next request, or nullopt when the session
  // is complete (both sides up to date). Fails when the server refused the
  // session, sent something malformed, or the local store failed; the
  // failure is also recorded in the peer status.
  Result<std::optional<std::string>> OnReply(std::string_view reply) override;

  // Records `error` as the peer's last error (a timeout seen by the transport).
  void RecordFailure(const std::string& error) override;

  const SessionStats& stats() const { return stats_; }
  bool complete() const { return complete_; }

 private:
  Result<std::optional<std::string>> OnWelcome(const WelcomeMsg& welcome);
  Result<std::optional<std::string>> OnBatch(const BatchMsg& batch);
  Result<std::string> NextPush(bool with_heads);
  std::string Send(SyncMsg msg);
  Status Finish(const std::string& error);

  Replica& replica_;
  Certificate server_;
  std::string address_;
  std::string known_address_;  // the address stored before this session
  uint64_t session_id_;
  SyncOptions options_;
  SessionStats stats_;
  PeerRecord peer_;
  OutgoingStream outgoing_;
  bool peer_reads_packed_ = false;  // the welcome announced kAcceptsPacked (and this node packs)
  Packer packer_;
  std::vector<ChainHead> my_heads_;
  Digest my_revocations_;  // as announced in Hello
  int64_t started_ms_ = 0;
  bool send_revocations_ = false;  // the server's list differs: send ours in the first push
  enum class State { kStart, kAwaitWelcome, kExchanging, kDone } state_ = State::kStart;
  bool complete_ = false;
};

class SyncServer {
 public:
  // Called once per finished session with a one-line summary: peer, sent,
  // received, duration, outcome (the daemon's log line).
  using SessionLog = std::function<void(const std::string& line)>;

  explicit SyncServer(Replica& replica, SyncOptions options = {}, SessionLog log = {});

  // Handles one request from the connection `connection` (a transport's id
  // for it), authenticated by CurveZMQ as `client_curve_key` (64 hex; the
  // ZAP handler's tag), and returns the reply. The first message of a
  // session must be a hello whose certificate names the node that key
  // belongs to, or a join whose node key it is. Never fails: a bad request
  // gets a Refused reply, is counted in the node's rejected inputs, and
  // leaves every other connection's session alone. Local store failures
  // become a Refused reply too (the client retries later).
  std::string Handle(const std::string& connection, const std::string& client_curve_key, std::string_view request);

  // The ZAP decision for a connecting Curve key (32 raw bytes), as a ZAP
  // status code: 400, counted under "revoked_key", for a revoked node; 300
  // (try later) when this node cannot read its store; 200 otherwise (a node
  // enrolled after this one last synced must still be able to say hello).
  int AdmitCurveKey(std::string_view curve_key);

  // Forgets sessions idle for longer than `idle_ms`.
  void Expire(int64_t idle_ms);

  // True once a push applied something new since the last call: a relaying
  // node then syncs its other peers.
  bool TakeNewData();

  size_t open_sessions() const { return sessions_.size(); }

 private:
  struct Session {
    Certificate client;
    std::vector<ChainHead> my_heads;  // as sent in Welcome
    OutgoingStream outgoing;
    bool have_gaps = false;
    int64_t last_active_ms = 0;
    int64_t started_ms = 0;
    SessionStats stats;
    bool peer_reads_packed = false;  // the hello announced kAcceptsPacked (and this node packs)
    size_t batch_budget = 0;  // envelope bytes of the next batch; 0: SyncOptions::batch_bytes
  };
  // Records a finished session in the history and logs its one-line summary.
  void EndSession(const CertificateFields& client, const SessionStats& stats, int64_t started_ms,
                  const std::string& outcome);
  std::string OnHello(const std::string& connection, const std::string& client_curve_key, uint64_t session,
                      const HelloMsg& hello);
  std::string OnPush(const std::string& connection, uint64_t session, const PushMsg& push);
  std::string OnJoin(const std::string& client_curve_key, uint64_t session, const JoinMsg& join);
  std::string Refuse(uint64_t session, const std::string& reason, const std::string& detail);
  Status Absorb(const std::vector<std::string>& certificates, const std::vector<std::string>& changesets,
                ApplyReport* report);

  Replica& replica_;
  SyncOptions options_;
  SessionLog log_;
  Packer packer_;  // shared by every session: the server handles one request at a time
  std::map<std::pair<std::string, uint64_t>, Session> sessions_;
  bool new_data_ = false;
};

// The one exchange of `aidsync join`: sends the invite's proof, and checks
// the certificates that come back against the token (the station's names
// this node's key, the hub's is the key the token named).
class JoinClient : public ClientExchange {
 public:
  JoinClient(const SigningKey& key, const InviteToken& token, uint64_t session_id)
      : key_(key), token_(token), session_id_(session_id) {}
  Result<std::string> Start() override;
  Result<std::optional<std::string>> OnReply(std::string_view reply) override;
  void RecordFailure(const std::string& error) override { error_ = error; }

  // After a successful exchange: what the hub sent.
  const EnrolledMsg& enrolled() const { return enrolled_; }

 private:
  const SigningKey& key_;
  const InviteToken& token_;
  uint64_t session_id_;
  EnrolledMsg enrolled_;
  std::string error_;
};

// Applies received revocations (each verified against the authority; one
// that does not verify is counted under "bad_revocation"). Before any
// changeset of the same exchange, so a revoked author's are refused.
Status AbsorbRevocations(Replica& replica, const std::vector<std::string>& revocations);

// Applies received certificates (into the trust store, when they verify) and
// changesets (ApplyRemote). Shared by both ends.
Status AbsorbBatch(Replica& replica, const std::vector<std::string>& certificates,
                   const std::vector<std::string>& changesets, ApplyReport* report);

}  // namespace aidsync
