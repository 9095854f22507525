// The ZeroMQ transport of the sync protocol (DESIGN 5): a client session over
// a DEALER socket, and a listener over a ROUTER socket. Every message is one
// frame holding one SyncMessage; libzmq enforces the maximum frame size
// (ZMQ_MAXMSGSIZE) before anything is parsed, and ZMTP heartbeats detect a
// dead link. CurveZMQ is added by the trust layer.
//
// A zmq::context_t is thread-safe; sockets are not: each thread makes its own.
#pragma once

#include <atomic>
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
  int heartbeat_timeout_ms = 10000;   // ... and drop the link when no traffic for this long
  int poll_interval_ms = 100;         // how often loops look at `stop`
  int connect_timeout_ms = 10000;     // a peer not connected to by then has failed the session
};

// Runs one SyncClient session against `endpoint` (tcp://HOST:PORT) until it
// completes, the peer refuses, no reply comes within `reply_timeout` of a
// request (Unavailable: "could not reach ... in time"; a long session that
// keeps moving is never cut), or `stop` is set. A fresh socket per session,
// so a late reply to an earlier session can never be taken for this one's.
Status RunClientSession(zmq::context_t& context, const std::string& endpoint, SyncClient& client,
                        std::chrono::milliseconds reply_timeout, const std::atomic<bool>& stop,
                        const TransportOptions& options = {});

// A bound ROUTER socket serving SyncServer. Not thread-safe: one thread
// calls Poll in a loop.
class SyncListener {
 public:
  // Binds `endpoint` (tcp://IP:PORT). InvalidArgument for a malformed
  // endpoint, Unavailable if the port is taken.
  static Result<std::unique_ptr<SyncListener>> Bind(zmq::context_t& context, const std::string& endpoint,
                                                   const TransportOptions& options = {});

  // Waits up to timeout_ms for requests and answers every one that arrived
  // with server.Handle. A malformed frame (wrong frame count) is dropped and
  // counted by the server's replica; the listener keeps serving.
  Status Poll(SyncServer& server, int timeout_ms);

  // The endpoint actually bound (resolves port 0 to the port chosen).
  const std::string& endpoint() const { return endpoint_; }

  SyncListener(const SyncListener&) = delete;
  SyncListener& operator=(const SyncListener&) = delete;

 private:
  SyncListener(zmq::socket_t socket, std::string endpoint) : socket_(std::move(socket)), endpoint_(std::move(endpoint)) {}
  zmq::socket_t socket_;
  std::string endpoint_;
};

}  // namespace aidsync
