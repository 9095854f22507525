#include "sync/zmq_transport.h"

#include <sodium.h>

#include <atomic>
#include <cstring>
#include <vector>

namespace aidsync {
namespace {

void Configure(zmq::socket_t& socket, const TransportOptions& options) {
  socket.set(zmq::sockopt::linger, 0);
  socket.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(options.max_message_bytes));
  socket.set(zmq::sockopt::heartbeat_ivl, options.heartbeat_interval_ms);
  socket.set(zmq::sockopt::heartbeat_timeout, options.heartbeat_timeout_ms);
  socket.set(zmq::sockopt::heartbeat_ttl, options.heartbeat_timeout_ms);
}

std::string AsString(const zmq::message_t& m) { return std::string(static_cast<const char*>(m.data()), m.size()); }

constexpr char kZapEndpoint[] = "inproc://zeromq.zap.01";
constexpr char kZapDomain[] = "aidsync";

void SetKey(zmq::socket_t& socket, int option, const std::array<uint8_t, 32>& key) {
  if (zmq_setsockopt(socket.handle(), option, key.data(), key.size()) != 0) throw zmq::error_t();
}

// Watches a client socket's connection. A request or reply in flight on a
// connection that drops is lost, and after the reconnect the server no longer
// knows the session (it is keyed by connection): waiting for the reply would
// only wait out the reply timeout. So the session fails at once and the next
// one resumes from the heads the log now has. Likewise a peer that cannot be
// connected to at all fails the session after the connect timeout, so the
// daemon backs off instead of waiting out a long reply timeout.
class DisconnectWatch {
 public:
  enum class Event { kNone, kConnected, kDisconnected, kRefused, kNotAuthenticated, kHandshakeCut };

  DisconnectWatch(zmq::context_t& context, zmq::socket_t& socket) : socket_(socket), pair_(context, zmq::socket_type::pair) {
    static std::atomic<uint64_t> counter{0};
    std::string address = "inproc://aidsync-disconnect-" + std::to_string(++counter);
    if (zmq_socket_monitor(socket.handle(), address.c_str(),
                           ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                               ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) != 0)
      throw zmq::error_t();
    pair_.set(zmq::sockopt::linger, 0);
    pair_.connect(address);
  }

  // Reads one monitor event (two frames: 16-bit event id and 32-bit value, then the address).
  // For a refused handshake the value is the server's ZAP status code.
  Event Read(uint32_t* value = nullptr) {
    zmq::message_t event, address;
    if (!pair_.recv(event, zmq::recv_flags::dontwait)) return Event::kNone;
    if (event.more()) (void)pair_.recv(address, zmq::recv_flags::dontwait);
    if (event.size() < 2) return Event::kNone;
    uint16_t id;
    std::memcpy(&id, event.data(), sizeof id);
    if (value != nullptr && event.size() >= 6) std::memcpy(value, static_cast<const char*>(event.data()) + 2, 4);
    if (id == ZMQ_EVENT_CONNECTED) return Event::kConnected;
    if (id == ZMQ_EVENT_DISCONNECTED) return Event::kDisconnected;
    // The server's ZAP handler said no (this key is revoked).
    if (id == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) return Event::kRefused;
    // The Curve handshake failed: the server does not hold the key we expected.
    if (id == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) return Event::kNotAuthenticated;
    // The connection closed mid-handshake. A server holding another key does
    // that (it cannot open our HELLO and hangs up), but so does a server that
    // was restarted or killed just then (tests/crash_soak_test.cc sees it
    // often), so the message names both.
    if (id == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) return Event::kHandshakeCut;
    return Event::kNone;
  }
  ~DisconnectWatch() { (void)zmq_socket_monitor(socket_.handle(), nullptr, 0); }
  DisconnectWatch(const DisconnectWatch&) = delete;
  DisconnectWatch& operator=(const DisconnectWatch&) = delete;

  void* handle() { return pair_.handle(); }

 private:
  zmq::socket_t& socket_;
  zmq::socket_t pair_;
};

}  // namespace

Result<CurveClientKeys> CurveClientKeys::For(const SigningKey& own, const PublicKey& server) {
  CurveClientKeys keys;
  ASSIGN_OR_RETURN(keys.server_public, DeriveCurvePublic(server));
  ASSIGN_OR_RETURN(keys.client_public, DeriveCurvePublic(own.public_key()));
  own.DeriveCurveSecret(keys.client_secret.data());
  return keys;
}

CurveClientKeys::CurveClientKeys(CurveClientKeys&& other) noexcept
    : server_public(other.server_public), client_public(other.client_public), client_secret(other.client_secret) {
  sodium_memzero(other.client_secret.data(), other.client_secret.size());
}

CurveClientKeys::~CurveClientKeys() { sodium_memzero(client_secret.data(), client_secret.size()); }

Status RunClientSession(zmq::context_t& context, const std::string& endpoint, const CurveClientKeys& keys,
                        ClientExchange& client, std::chrono::milliseconds reply_timeout,
                        const std::atomic<bool>& stop, const TransportOptions& options) {
  try {
    zmq::socket_t socket(context, zmq::socket_type::dealer);
    Configure(socket, options);
    SetKey(socket, ZMQ_CURVE_SERVERKEY, keys.server_public);
    SetKey(socket, ZMQ_CURVE_PUBLICKEY, keys.client_public);
    SetKey(socket, ZMQ_CURVE_SECRETKEY, keys.client_secret);
    socket.set(zmq::sockopt::reconnect_ivl, 100);
    socket.set(zmq::sockopt::reconnect_ivl_max, 2000);
    DisconnectWatch watch(context, socket);
    socket.connect(endpoint);
    const auto connect_deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(options.connect_timeout_ms);
    bool connected = false;
    auto request = client.Start();
    if (!request.ok()) return request.status();
    std::string pending = std::move(request).value();
    while (true) {
      socket.send(zmq::buffer(pending), zmq::send_flags::none);
      // Wait for the reply, looking at `stop` and the deadline in between.
      const auto deadline = std::chrono::steady_clock::now() + reply_timeout;
      zmq::message_t reply;
      while (true) {
        if (stop.load()) return Status::Unavailable("stopped");
        auto now = std::chrono::steady_clock::now();
        if (now >= deadline) {
          std::string error = "could not reach " + endpoint + " in time (no reply)";
          client.RecordFailure(error);
          return Status::Unavailable(error);
        }
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count();
        zmq::pollitem_t items[2] = {{socket.handle(), 0, ZMQ_POLLIN, 0}, {watch.handle(), 0, ZMQ_POLLIN, 0}};
        zmq::poll(items, 2, std::chrono::milliseconds(std::min<int64_t>(left, options.poll_interval_ms)));
        if (items[0].revents & ZMQ_POLLIN) {
          (void)socket.recv(reply, zmq::recv_flags::none);
          break;
        }
        if (items[1].revents & ZMQ_POLLIN) {
          uint32_t value = 0;
          DisconnectWatch::Event event = watch.Read(&value);
          if (event == DisconnectWatch::Event::kConnected) connected = true;
          if (event == DisconnectWatch::Event::kRefused) {
            std::string error = value == 300 ? endpoint + " could not check this node's key now; try again later"
                                             : endpoint + " refused this node's key: it was revoked by the county";
            client.RecordFailure(error);
            return Status::Unauthorized(error);
          }
          if (event == DisconnectWatch::Event::kNotAuthenticated) {
            std::string error = "the node at " + endpoint + " does not hold the key this node expects there "
                                "(wrong address, or someone else is listening)";
            client.RecordFailure(error);
            return Status::Unauthorized(error);
          }
          if (event == DisconnectWatch::Event::kHandshakeCut) {
            std::string error = "the connection to " + endpoint + " closed during the encrypted handshake: the node "
                                "there restarted, or it does not hold the key this node expects (wrong address?)";
            client.RecordFailure(error);
            return Status::Unavailable(error);
          }
          if (event == DisconnectWatch::Event::kDisconnected) {
            std::string error = "the connection to " + endpoint + " was lost (a session resumes where it stopped)";
            client.RecordFailure(error);
            return Status::Unavailable(error);
          }
        }
        if (!connected && std::chrono::steady_clock::now() >= connect_deadline) {
          std::string error = "could not connect to " + endpoint + " (unreachable?)";
          client.RecordFailure(error);
          return Status::Unavailable(error);
        }
      }
      // Only single-frame replies are protocol messages; drain any extra frames.
      bool extra = reply.more();
      while (reply.more()) (void)socket.recv(reply, zmq::recv_flags::none);
      if (extra) {
        client.RecordFailure("a reply of several frames");
        return Status::Corruption("the peer sent a reply of several frames");
      }
      ASSIGN_OR_RETURN(std::optional<std::string> next, client.OnReply(std::string_view(
                                                             static_cast<const char*>(reply.data()), reply.size())));
      if (!next) return Status::OK();
      pending = std::move(*next);
    }
  } catch (const zmq::error_t& e) {
    std::string error = "network error with " + endpoint + ": " + e.what();
    client.RecordFailure(error);
    return Status::Unavailable(error);
  }
}

Result<std::unique_ptr<SyncListener>> SyncListener::Bind(zmq::context_t& context, const std::string& endpoint,
                                                         const SigningKey& identity, const TransportOptions& options) {
  try {
    // The ZAP handler is bound before the server socket exists, so no
    // connection is ever accepted without it.
    zmq::socket_t zap(context, zmq::socket_type::rep);
    zap.set(zmq::sockopt::linger, 0);
    try {
      zap.bind(kZapEndpoint);
    } catch (const zmq::error_t& e) {
      return Status::Unavailable(std::string("cannot start the connection check (ZAP): ") + e.what());
    }
    zmq::socket_t socket(context, zmq::socket_type::router);
    Configure(socket, options);
    std::array<uint8_t, 32> secret{};
    identity.DeriveCurveSecret(secret.data());
    socket.set(zmq::sockopt::curve_server, 1);
    SetKey(socket, ZMQ_CURVE_SECRETKEY, secret);
    sodium_memzero(secret.data(), secret.size());
    socket.set(zmq::sockopt::zap_domain, kZapDomain);
    // ZMQ_ZAP_ENFORCE_DOMAIN (93) sits under the draft API in zmq.h but is
    // supported by the libzmq 4.3 we link; a library without it fails here,
    // closed, rather than admitting everyone when no handler answers.
    constexpr int kZapEnforceDomain = 93;
    const int one = 1;
    if (zmq_setsockopt(socket.handle(), kZapEnforceDomain, &one, sizeof one) != 0)
      return Status::Unavailable("this libzmq cannot enforce connection checks (ZMQ_ZAP_ENFORCE_DOMAIN); refusing to listen");
    socket.bind(endpoint);
    std::string bound = socket.get(zmq::sockopt::last_endpoint);
    return std::unique_ptr<SyncListener>(new SyncListener(std::move(zap), std::move(socket), bound));
  } catch (const zmq::error_t& e) {
    if (e.num() == EADDRINUSE) return Status::Unavailable("cannot listen on " + endpoint + ": the port is taken");
    return Status::InvalidArgument("cannot listen on " + endpoint + ": " + e.what());
  }
}

void SyncListener::AnswerZap(SyncServer& server) {
  // ZAP request (RFC 27): version, request id, domain, address, routing id,
  // mechanism, then the mechanism's credentials (CURVE: the client's key).
  std::vector<zmq::message_t> frames;
  while (true) {
    zmq::message_t frame;
    if (!zap_.recv(frame, zmq::recv_flags::dontwait)) break;
    bool more = frame.more();
    if (frames.size() < 8) frames.push_back(std::move(frame));
    if (!more) break;
  }
  if (frames.empty()) return;
  std::string request_id = frames.size() > 1 ? AsString(frames[1]) : "";
  std::string status = "400", text = "refused", user_id;
  if (frames.size() == 7 && AsString(frames[0]) == "1.0" && AsString(frames[2]) == kZapDomain &&
      AsString(frames[5]) == "CURVE" && frames[6].size() == 32) {
    std::string key = AsString(frames[6]);
    const int code = server.AdmitCurveKey(key);
    status = std::to_string(code);
    if (code == 200) {
      text = "OK";
      user_id = ToHex(key);
    } else if (code == 300) {
      text = "try later";
    }
  }
  zap_.send(zmq::buffer(std::string("1.0")), zmq::send_flags::sndmore);
  zap_.send(zmq::buffer(request_id), zmq::send_flags::sndmore);
  zap_.send(zmq::buffer(status), zmq::send_flags::sndmore);
  zap_.send(zmq::buffer(text), zmq::send_flags::sndmore);
  zap_.send(zmq::buffer(user_id), zmq::send_flags::sndmore);
  zap_.send(zmq::str_buffer(""), zmq::send_flags::none);
}

void SyncListener::AnswerRequest(SyncServer& server) {
  // [routing id][payload] is the only shape a DEALER client sends. A message
  // of more frames is read to its end but only its first two are kept, so
  // a hostile client cannot make the listener hold many frames at once.
  zmq::message_t frames[2];
  size_t count = 0;
  std::string client_key;
  while (true) {
    zmq::message_t frame;
    if (!socket_.recv(frame, zmq::recv_flags::dontwait)) break;
    bool more = frame.more();
    if (count == 1 && client_key.empty()) {
      const char* user = frame.gets("User-Id");
      if (user != nullptr) client_key = user;
    }
    if (count < 2) frames[count] = std::move(frame);
    ++count;
    if (!more) break;
  }
  if (count == 0) return;
  if (count != 2 || client_key.empty()) {
    (void)server.Handle("", "", std::string_view());  // counted as a malformed message
    return;
  }
  std::string connection = AsString(frames[0]);
  std::string reply = server.Handle(client_key + "/" + ToHex(connection), client_key,
                                    std::string_view(static_cast<const char*>(frames[1].data()), frames[1].size()));
  socket_.send(zmq::buffer(connection), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
  socket_.send(zmq::buffer(reply), zmq::send_flags::dontwait);
}

Status SyncListener::Poll(SyncServer& server, int timeout_ms) {
  try {
    zmq::pollitem_t items[2] = {{zap_.handle(), 0, ZMQ_POLLIN, 0}, {socket_.handle(), 0, ZMQ_POLLIN, 0}};
    zmq::poll(items, 2, std::chrono::milliseconds(timeout_ms));
    while ((items[0].revents | items[1].revents) & ZMQ_POLLIN) {
      if (items[0].revents & ZMQ_POLLIN) AnswerZap(server);
      if (items[1].revents & ZMQ_POLLIN) AnswerRequest(server);
      items[0].revents = items[1].revents = 0;
      zmq::poll(items, 2, std::chrono::milliseconds(0));
    }
    return Status::OK();
  } catch (const zmq::error_t& e) {
    // A peer that vanished between request and reply: its reply is dropped.
    if (e.num() == EHOSTUNREACH || e.num() == EAGAIN) return Status::OK();
    return Status::IOError(std::string("listener: ") + e.what());
  }
}

}  // namespace aidsync
