// The ZeroMQ transport of the sync protocol (DESIGN 5, 6): a client session
// over a DEALER socket, and a listener over a ROUTER socket. Every message is
// one frame holding one SyncMessage; libzmq enforces the maximum frame size
// (ZMQ_MAXMSGSIZE) before anything is parsed, and ZMTP heartbeats detect a
// dead link.
//
// Every connection is CurveZMQ: encrypted and authenticated with Curve25519
// keys derived from the nodes' ed25519 identities. The client must know the
// server's key before it connects (a man in the middle cannot complete the
// handshake). The listener runs the ZAP handler itself: it refuses revoked
// keys and tags every other connection with the client's Curve key, which
// the SyncServer then binds to the certificate in the hello.
// ZMQ_ZAP_ENFORCE_DOMAIN is set, so without a handler nobody is admitted.
//
// A zmq::context_t is thread-safe; sockets are not: each thread makes its own.
#pragma once

#include <atomic>
#include <array>
#include <chrono>
#include <memory>
#include <string>
#include <zmq.hpp>

#include "base/status.h"
#include "sync/sync_session.h"

namespace aidsync {

struct TransportOptions {
  // Frames above this are dropped by libzmq before we see them.
  size_t max_message_bytes = ProtocolLimits{}.max_message_bytes;
  int heartbeat_interval_ms = 2000;   // ZMTP PING this often ...
  // ... and drop the link when no traffic for this long. libzmq counts only
  // *complete* messages as traffic (a PONG queued behind a large frame is
  // not read until that frame is), so the largest reply, a batch of
  // batch_bytes (256 KiB, packed to about half), must cross the slowest
  // supported link within it: 30 s covers links down to about 40 kbit/s
  // (docs/PROTOCOL.md 7.1). The same as `aidsync sync`'s reply timeout.
  int heartbeat_timeout_ms = 30000;
  int poll_interval_ms = 100;         // how often loops look at `stop`
  int connect_timeout_ms = 10000;     // a peer not connected to by then has failed the session
};

// The Curve keys of one client connection. The secret is zeroed on destruction.
class CurveClientKeys {
 public:
  // Keys for `own` talking to the node whose ed25519 key is `server`.
  // InvalidArgument if `server` is not a valid ed25519 point.
  static Result<CurveClientKeys> For(const SigningKey& own, const PublicKey& server);
  CurveClientKeys(CurveClientKeys&& other) noexcept;
  CurveClientKeys(const CurveClientKeys&) = delete;
  CurveClientKeys& operator=(const CurveClientKeys&) = delete;
  ~CurveClientKeys();

  std::array<uint8_t, 32> server_public{};
  std::array<uint8_t, 32> client_public{};
  std::array<uint8_t, 32> client_secret{};

 private:
  CurveClientKeys() = default;
};

// Runs one client exchange against `endpoint` (tcp://HOST:PORT) until it
// completes, the peer refuses, no reply comes within `reply_timeout` of a
// request (Unavailable: "could not reach ... in time"; a long session that
// keeps moving is never cut), or `stop` is set. A fresh socket per session,
// so a late reply to an earlier session can never be taken for this one's.
// A handshake the server refuses (a revoked key, or a server that does not
// hold the expected key) fails at once with Unauthorized.
Status RunClientSession(zmq::context_t& context, const std::string& endpoint, const CurveClientKeys& keys,
                        ClientExchange& client, std::chrono::milliseconds reply_timeout,
                        const std::atomic<bool>& stop, const TransportOptions& options = {});

// A bound ROUTER socket serving SyncServer, with the context's ZAP handler.
// Not thread-safe: one thread calls Poll in a loop. One listener per
// context (ZAP has one endpoint per context).
class SyncListener {
 public:
  // Binds `endpoint` (tcp://IP:PORT) as a CurveZMQ server with the Curve
  // key derived from `identity`. InvalidArgument for a malformed endpoint,
  // Unavailable if the port (or this context's ZAP endpoint) is taken.
  static Result<std::unique_ptr<SyncListener>> Bind(zmq::context_t& context, const std::string& endpoint,
                                                   const SigningKey& identity, const TransportOptions& options = {});

  // Waits up to timeout_ms for requests and handshakes. Answers each ZAP
  // request with server.AdmitCurveKey, and each request with server.Handle,
  // tagged with the client's Curve key. A malformed frame (wrong frame
  // count) is dropped and counted by the server's replica; the listener
  // keeps serving.
  Status Poll(SyncServer& server, int timeout_ms);

  // The endpoint actually bound (resolves port 0 to the port chosen).
  const std::string& endpoint() const { return endpoint_; }

  SyncListener(const SyncListener&) = delete;
  SyncListener& operator=(const SyncListener&) = delete;

 private:
  SyncListener(zmq::socket_t zap, zmq::socket_t socket, std::string endpoint)
      : zap_(std::move(zap)), socket_(std::move(socket)), endpoint_(std::move(endpoint)) {}
  void AnswerZap(SyncServer& server);
  void AnswerRequest(SyncServer& server);
  zmq::socket_t zap_;     // REP on inproc://zeromq.zap.01; declared first, so closed last
  zmq::socket_t socket_;
  std::string endpoint_;
};

}  // namespace aidsync
