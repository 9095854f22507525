// A simulated network link for aidsync-bench: a TCP relay on 127.0.0.1 that
// holds each byte as long as a slow link would, and counts the bytes.
//
// Issue 7 asks that 10,000 records reach a new station in under 5 minutes over
// 256 kbit/s with 300 ms round trips, and that a sync with nothing new cost
// under 2 KiB on the wire, handshake included. The benchmark points the station
// at a Link in front of the hub; the link counts every byte it delivers, so the
// CurveZMQ handshake is counted too (TCP payload only: no TCP/IP headers, and
// the TCP handshake's own round trip is not simulated).
//
// Model, per connection and per direction (full duplex): a chunk of n bytes
// read at time t starts transmitting at max(t, end of the previous chunk's
// transmission), takes n*8/bits_per_second, and is delivered one_way_delay
// later. On a throttled link a chunk is at most max(1460 bytes, 1 ms of
// transmission), so data streams out instead of arriving in 64 KiB bursts.
#pragma once

#include <atomic>
#include <cstdint>
#include <list>
#include <memory>
#include <thread>

#include "base/status.h"

namespace aidsync::bench {

struct LinkOptions {
  int64_t bits_per_second = 0;  // 0: unlimited (loopback speed)
  int one_way_delay_ms = 0;     // propagation delay each way; RTT = 2x this
};

class Link {
 public:
  // Listens on 127.0.0.1, on an ephemeral port, and forwards each accepted
  // connection to 127.0.0.1:upstream_port through the link model. A connection
  // that upstream refuses is closed. InvalidArgument for a bad port or negative
  // options; IOError or Unavailable (with the system's reason) when the
  // listening socket cannot be made.
  static Result<std::unique_ptr<Link>> Open(int upstream_port, LinkOptions options);

  // Stops: closes the listener and every connection (queued bytes are dropped)
  // and joins all threads. Returns within about 10 ms plus the thread joins.
  ~Link();

  Link(const Link&) = delete;
  Link& operator=(const Link&) = delete;

  // The port the link listens on. Never fails; thread-safe.
  int port() const { return port_; }

  // Bytes delivered from the connecting side to upstream, all connections so
  // far. Counted when written to upstream. Thread-safe.
  int64_t bytes_up() const { return bytes_up_; }

  // Bytes delivered from upstream to the connecting side, as bytes_up().
  int64_t bytes_down() const { return bytes_down_; }

  // Connections accepted so far. Thread-safe.
  int connections() const { return connections_; }

 private:
  struct Conn;

  Link(int upstream_port, LinkOptions options, int listen_fd, int port);
  void AcceptLoop();
  void Reap();
  void Serve(int client_fd);

  const int upstream_port_;
  const LinkOptions options_;
  const int listen_fd_;
  const int port_;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> bytes_up_{0};
  std::atomic<int64_t> bytes_down_{0};
  std::atomic<int> connections_{0};
  std::thread acceptor_;
  std::list<std::unique_ptr<Conn>> conns_;  // touched by the acceptor only, then by ~Link
};

}  // namespace aidsync::bench
