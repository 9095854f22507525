#include "sync/zmq_transport.h"

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

// Watches a client socket's connection. A request or reply in flight on a
// connection that drops is lost, and after the reconnect the server no longer
// knows the session (it is keyed by connection): waiting for the reply would
// only wait out the reply timeout. So the session fails at once and the next
// one resumes from the heads the log now has. Likewise a peer that cannot be
// connected to at all fails the session after the connect timeout, so the
// daemon backs off instead of waiting out a long reply timeout.
class DisconnectWatch {
 public:
  enum class Event { kNone, kConnected, kDisconnected };

  DisconnectWatch(zmq::context_t& context, zmq::socket_t& socket) : socket_(socket), pair_(context, zmq::socket_type::pair) {
    static std::atomic<uint64_t> counter{0};
    std::string address = "inproc://aidsync-disconnect-" + std::to_string(++counter);
    if (zmq_socket_monitor(socket.handle(), address.c_str(), ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED) != 0)
      throw zmq::error_t();
    pair_.set(zmq::sockopt::linger, 0);
    pair_.connect(address);
  }

  // Reads one monitor event (two frames: 16-bit event id and 32-bit value, then the address).
  Event Read() {
    zmq::message_t event, address;
    if (!pair_.recv(event, zmq::recv_flags::dontwait)) return Event::kNone;
    if (event.more()) (void)pair_.recv(address, zmq::recv_flags::dontwait);
    if (event.size() < 2) return Event::kNone;
    uint16_t id;
    std::memcpy(&id, event.data(), sizeof id);
    if (id == ZMQ_EVENT_CONNECTED) return Event::kConnected;
    if (id == ZMQ_EVENT_DISCONNECTED) return Event::kDisconnected;
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

Status RunClientSession(zmq::context_t& context, const std::string& endpoint, SyncClient& client,
                        std::chrono::milliseconds reply_timeout, const std::atomic<bool>& stop,
                        const TransportOptions& options) {
  try {
    zmq::socket_t socket(context, zmq::socket_type::dealer);
    Configure(socket, options);
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
          DisconnectWatch::Event event = watch.Read();
          if (event == DisconnectWatch::Event::kConnected) connected = true;
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
                                                         const TransportOptions& options) {
  try {
    zmq::socket_t socket(context, zmq::socket_type::router);
    Configure(socket, options);
    socket.bind(endpoint);
    std::string bound = socket.get(zmq::sockopt::last_endpoint);
    return std::unique_ptr<SyncListener>(new SyncListener(std::move(socket), bound));
  } catch (const zmq::error_t& e) {
    if (e.num() == EADDRINUSE) return Status::Unavailable("cannot listen on " + endpoint + ": the port is taken");
    return Status::InvalidArgument("cannot listen on " + endpoint + ": " + e.what());
  }
}

Status SyncListener::Poll(SyncServer& server, int timeout_ms) {
  try {
    zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, std::chrono::milliseconds(timeout_ms));
    while (item.revents & ZMQ_POLLIN) {
      std::vector<zmq::message_t> frames;
      do {
        zmq::message_t frame;
        if (!socket_.recv(frame, zmq::recv_flags::dontwait)) break;
        bool more = frame.more();
        frames.push_back(std::move(frame));
        if (!more) break;
      } while (true);
      if (frames.empty()) break;
      if (frames.size() == 2) {
        std::string connection = AsString(frames[0]);
        std::string reply = server.Handle(connection, std::string_view(static_cast<const char*>(frames[1].data()),
                                                                     frames[1].size()));
        socket_.send(zmq::buffer(connection), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
        socket_.send(zmq::buffer(reply), zmq::send_flags::dontwait);
      } else {
        // [identity][payload] is the only shape a DEALER client sends.
        (void)server.Handle("", std::string_view());  // counted as a malformed message
      }
      item.revents = 0;
      zmq::poll(&item, 1, std::chrono::milliseconds(0));
    }
    return Status::OK();
  } catch (const zmq::error_t& e) {
    // A peer that vanished between request and reply: its reply is dropped.
    if (e.num() == EHOSTUNREACH || e.num() == EAGAIN) return Status::OK();
    return Status::IOError(std::string("listener: ") + e.what());
  }
}

}  // namespace aidsync
