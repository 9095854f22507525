#include "bench/link.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <string>
#include <utility>

namespace aidsync::bench {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::nanoseconds;

constexpr size_t kFastChunk = 64 * 1024;  // largest read; the only size at unlimited speed
constexpr size_t kSegment = 1460;         // smallest read cap on a throttled link
constexpr size_t kMaxQueued =
    1 << 20;  // a direction stops reading above this many undelivered bytes
constexpr nanoseconds kMaxWait = std::chrono::milliseconds(10);  // longest sleep: stop is noticed

std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }

// An owned file descriptor, closed on destruction.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

sockaddr_in Loopback(int port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  return addr;
}

bool Retry() { return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR; }

nanoseconds TransmitTime(size_t n, int64_t bits_per_second) {
  if (bits_per_second <= 0) return nanoseconds(0);
  return nanoseconds(static_cast<int64_t>(n) * 8 * 1'000'000'000 / bits_per_second);
}

struct Chunk {
  std::string bytes;
  size_t sent = 0;
  Clock::time_point due;  // when the chunk reaches the far end of the link
};

// One direction of a connection: bytes read from `from`, written to `to` when due.
struct Direction {
  int from, to;
  std::atomic<int64_t>* delivered;
  std::deque<Chunk> queue{};
  size_t queued = 0;           // undelivered bytes in `queue`
  Clock::time_point tx_end{};  // when the link finishes transmitting what it has read
  bool eof = false;            // `from` has ended
  bool shut = false;           // `to` is shut down for writing: this direction is finished

  bool WantsRead() const { return !eof && queued < kMaxQueued; }
  bool Due(Clock::time_point now) const { return !queue.empty() && queue.front().due <= now; }
};

// Reads what `d.from` has now and schedules it on the link. False on a socket error.
bool ReadSome(Direction& d, const LinkOptions& o, size_t max_read, char* buf) {
  ssize_t n = ::recv(d.from, buf, max_read, 0);
  if (n < 0) return Retry();
  if (n == 0) {
    d.eof = true;
    return true;
  }
  const auto start = std::max(Clock::now(), d.tx_end);
  d.tx_end = start + TransmitTime(static_cast<size_t>(n), o.bits_per_second);
  d.queue.push_back({std::string(buf, static_cast<size_t>(n)), 0,
                     d.tx_end + std::chrono::milliseconds(o.one_way_delay_ms)});
  d.queued += static_cast<size_t>(n);
  return true;
}

// Writes the due chunks until one is not due or `to` is full; passes on EOF
// once all is delivered. False on a socket error.
bool Deliver(Direction& d, Clock::time_point now) {
  while (d.Due(now)) {
    Chunk& c = d.queue.front();
    ssize_t n = ::send(d.to, c.bytes.data() + c.sent, c.bytes.size() - c.sent, MSG_NOSIGNAL);
    if (n < 0) return Retry();
    c.sent += static_cast<size_t>(n);
    d.queued -= static_cast<size_t>(n);
    *d.delivered += n;
    if (c.sent == c.bytes.size()) d.queue.pop_front();
  }
  if (d.eof && d.queue.empty() && !d.shut) {
    if (::shutdown(d.to, SHUT_WR) != 0) return false;
    d.shut = true;
  }
  return true;
}

// How long to sleep: until the next chunk not yet due is due, at most kMaxWait.
timespec Wait(const Direction (&dirs)[2], Clock::time_point now) {
  nanoseconds wait = kMaxWait;
  for (const Direction& d : dirs)
    if (!d.queue.empty() && !d.Due(now)) wait = std::min(wait, d.queue.front().due - now);
  return timespec{0, static_cast<long>(wait.count())};
}

// Runs both directions of one connection until both are finished, an error, or `stop`.
void Pump(int client, int upstream, const LinkOptions& o, std::atomic<int64_t>& up,
          std::atomic<int64_t>& down, const std::atomic<bool>& stop) {
  const size_t max_read =
      o.bits_per_second > 0
          ? std::clamp(static_cast<size_t>(o.bits_per_second / 8000), kSegment, kFastChunk)
          : kFastChunk;
  std::string buf(max_read, '\0');
  Direction dirs[2] = {{.from = client, .to = upstream, .delivered = &up},
                       {.from = upstream, .to = client, .delivered = &down}};
  while (!stop && !(dirs[0].shut && dirs[1].shut)) {
    const auto now = Clock::now();
    for (Direction& d : dirs)
      if (!Deliver(d, now)) return;
    pollfd p[2] = {{client, 0, 0}, {upstream, 0, 0}};
    for (int i = 0; i < 2; ++i) {
      if (dirs[i].WantsRead()) p[i].events |= POLLIN;
      if (dirs[i].Due(now)) p[1 - i].events |= POLLOUT;
    }
    for (pollfd& q : p)
      if (q.events == 0) q.fd = -1;  // not even POLLHUP: nothing to do with it now
    const timespec wait = Wait(dirs, now);
    if (::ppoll(p, 2, &wait, nullptr) < 0 && errno != EINTR) return;
    for (int i = 0; i < 2; ++i)
      if (p[i].revents & (POLLIN | POLLHUP | POLLERR))
        if (dirs[i].WantsRead() && !ReadSome(dirs[i], o, max_read, buf.data())) return;
  }
}

// Connects a non-blocking socket to 127.0.0.1:port; -1 on failure or `stop`.
int ConnectUpstream(int port, const std::atomic<bool>& stop) {
  Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return -1;
  sockaddr_in addr = Loopback(port);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    if (errno != EINPROGRESS) return -1;
    pollfd p{fd.get(), POLLOUT, 0};
    while (!stop && ::poll(&p, 1, 10) == 0) {
    }
    int err = 0;
    socklen_t len = sizeof err;
    if (stop || ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0)
      return -1;
  }
  return fd.release();
}

}  // namespace

struct Link::Conn {
  std::thread thread;
  std::atomic<bool> done{false};
};

Result<std::unique_ptr<Link>> Link::Open(int upstream_port, LinkOptions options) {
  if (upstream_port <= 0 || upstream_port > 65535)
    return Status::InvalidArgument("link: upstream port " + std::to_string(upstream_port) +
                                   " is not a TCP port");
  if (options.bits_per_second < 0 || options.one_way_delay_ms < 0)
    return Status::InvalidArgument("link: rate and delay must not be negative");
  Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return Status::IOError(Errno("link: cannot create a socket"));
  sockaddr_in addr = Loopback(0);
  socklen_t len = sizeof addr;
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(fd.get(), 64) != 0)
    return Status::Unavailable(Errno("link: cannot listen on 127.0.0.1"));
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0)
    return Status::IOError(Errno("link: cannot read the listening port"));
  const int port = ntohs(addr.sin_port);
  std::unique_ptr<Link> link(new Link(upstream_port, options, fd.release(), port));
  link->acceptor_ = std::thread([l = link.get()] { l->AcceptLoop(); });
  return link;
}

Link::Link(int upstream_port, LinkOptions options, int listen_fd, int port)
    : upstream_port_(upstream_port), options_(options), listen_fd_(listen_fd), port_(port) {}

Link::~Link() {
  stop_ = true;
  if (acceptor_.joinable()) acceptor_.join();
  ::close(listen_fd_);
  for (auto& c : conns_) c->thread.join();
}

void Link::AcceptLoop() {
  while (!stop_) {
    Reap();
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 10) <= 0) continue;
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) continue;
    ++connections_;
    conns_.push_back(std::make_unique<Conn>());
    Conn* c = conns_.back().get();
    c->thread = std::thread([this, c, fd] {
      Serve(fd);
      c->done = true;
    });
  }
}

// Joins and forgets the connections that have finished.
void Link::Reap() {
  conns_.remove_if([](const std::unique_ptr<Conn>& c) {
    const bool done = c->done;  // read once: it may turn true meanwhile
    if (done) c->thread.join();
    return done;
  });
}

void Link::Serve(int client_fd) {
  Fd client(client_fd);
  Fd upstream(ConnectUpstream(upstream_port_, stop_));
  if (upstream.get() < 0) return;
  int one = 1;  // no Nagle: the link decides when bytes go, not the kernel
  for (int fd : {client.get(), upstream.get()})
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  Pump(client.get(), upstream.get(), options_, bytes_up_, bytes_down_, stop_);
}

}  // namespace aidsync::bench
