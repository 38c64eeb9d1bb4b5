#include "parallel/tcp_communicator.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <exception>
#include <map>
#include <mutex>
#include <optional>
#include <system_error>
#include <thread>
#include <tuple>
#include <utility>

#include "runtime/core/error.h"

namespace moe::parallel {
namespace {

using Clock = std::chrono::steady_clock;
using Deadline = std::optional<Clock::time_point>;  // nullopt: no bound

constexpr uint32_t kHelloMagic = 0x4d4f4548;  // "MOEH"
constexpr uint32_t kProtocolVersion = 1;
constexpr uint32_t kFrameMagic = 0x4d4f4546;  // "MOEF"
constexpr auto kConnectRetryDelay = std::chrono::milliseconds(50);
// Keepalive: a peer that stops answering is reported after idle + count * interval seconds.
constexpr int kKeepaliveIdleS = 10;
constexpr int kKeepaliveIntervalS = 5;
constexpr int kKeepaliveCount = 3;
static_assert(kHelloMagic != kFrameMagic, "a handshake must never parse as a frame");

std::string errno_text(int error) {
  return std::system_category().message(error);
}

std::string ms_text(std::chrono::milliseconds ms) {
  return str_cat(ms.count(), " ms");
}

Deadline deadline_after(std::chrono::milliseconds timeout) {
  if (timeout.count() <= 0) return std::nullopt;
  return Clock::now() + timeout;
}

// poll()'s timeout for `deadline`: -1 without one, else the milliseconds left (rounded up, >= 0).
int poll_timeout_ms(const Deadline& deadline) {
  if (!deadline) return -1;
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(*deadline - Clock::now());
  return static_cast<int>(std::clamp<int64_t>(left.count(), 0, 1 << 30));
}

bool expired(const Deadline& deadline) {
  return deadline && Clock::now() >= *deadline;
}

// Owns one socket.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release() { return std::exchange(fd_, -1); }
  void reset() {
    if (fd_ >= 0) ::close(fd_);  // nothing useful to do on failure
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

struct HostPort {
  std::string host;
  std::string port;
};

// "host:port" or "[v6]:port".
HostPort parse_address(const std::string& address) {
  const size_t colon = address.rfind(':');
  MOE_CHECK(colon != std::string::npos && colon + 1 < address.size(), "tcp communicator: address \"", address,
            "\" is not host:port");
  HostPort out{address.substr(0, colon), address.substr(colon + 1)};
  if (out.host.size() >= 2 && out.host.front() == '[' && out.host.back() == ']') {
    out.host = out.host.substr(1, out.host.size() - 2);
  }
  MOE_CHECK(!out.host.empty(), "tcp communicator: address \"", address, "\" has no host");
  MOE_CHECK(out.port.find_first_not_of("0123456789") == std::string::npos && out.port.size() <= 5 &&
                std::stoi(out.port) <= 65535,
            "tcp communicator: address \"", address, "\" has a bad port");
  return out;
}

struct AddrInfoList {
  addrinfo* head = nullptr;
  AddrInfoList() = default;
  AddrInfoList(const AddrInfoList&) = delete;
  AddrInfoList& operator=(const AddrInfoList&) = delete;
  ~AddrInfoList() {
    if (head != nullptr) freeaddrinfo(head);
  }
};

// getaddrinfo for a TCP stream; returns gai's message on failure ("" on success).
std::string resolve(const std::string& host, const std::string& port, bool passive, AddrInfoList& out) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = passive ? AI_PASSIVE : 0;
  const int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &out.head);
  if (rc == 0) return "";
  return rc == EAI_SYSTEM ? errno_text(errno) : gai_strerror(rc);
}

std::string socket_peer_text(int fd) {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return "an unknown address";
  char host[NI_MAXHOST] = {};
  char port[NI_MAXSERV] = {};
  if (getnameinfo(reinterpret_cast<sockaddr*>(&addr), len, host, sizeof host, port, sizeof port,
                  NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
    return "an unknown address";
  }
  return addr.ss_family == AF_INET6 ? str_cat("[", host, "]:", port) : str_cat(host, ":", port);
}

void set_blocking(int fd, bool blocking) {
  const int flags = fcntl(fd, F_GETFL, 0);
  MOE_CHECK(flags >= 0, "tcp communicator: fcntl(F_GETFL) failed: ", errno_text(errno));
  const int wanted = blocking ? (flags & ~O_NONBLOCK) : (flags | O_NONBLOCK);
  MOE_CHECK(fcntl(fd, F_SETFL, wanted) == 0, "tcp communicator: fcntl(F_SETFL) failed: ", errno_text(errno));
}

void set_int_option(int fd, int level, int name, int value, const char* what) {
  MOE_CHECK(setsockopt(fd, level, name, &value, sizeof value) == 0, "tcp communicator: setsockopt(", what,
            ") failed: ", errno_text(errno));
}

// TCP_NODELAY, keepalive, and blocking mode: what every data connection runs with.
void configure_data_socket(int fd) {
  set_blocking(fd, true);
  set_int_option(fd, IPPROTO_TCP, TCP_NODELAY, 1, "TCP_NODELAY");
  set_int_option(fd, SOL_SOCKET, SO_KEEPALIVE, 1, "SO_KEEPALIVE");
  set_int_option(fd, IPPROTO_TCP, TCP_KEEPIDLE, kKeepaliveIdleS, "TCP_KEEPIDLE");
  set_int_option(fd, IPPROTO_TCP, TCP_KEEPINTVL, kKeepaliveIntervalS, "TCP_KEEPINTVL");
  set_int_option(fd, IPPROTO_TCP, TCP_KEEPCNT, kKeepaliveCount, "TCP_KEEPCNT");
}

enum class IoStatus : uint8_t { kOk, kEof, kError, kTimeout };

// Reads exactly n bytes. kEof: the peer closed first (some bytes may have arrived). With a
// deadline, waits in poll() (the socket may be blocking: poll says data is there first).
IoStatus read_exact(int fd, void* data, size_t n, const Deadline& deadline, int& error) {
  auto* p = static_cast<std::byte*>(data);
  while (n > 0) {
    if (deadline) {
      pollfd pfd{fd, POLLIN, 0};
      const int ready = ::poll(&pfd, 1, poll_timeout_ms(deadline));
      if (ready < 0) {
        if (errno == EINTR) continue;
        error = errno;
        return IoStatus::kError;
      }
      if (ready == 0) return IoStatus::kTimeout;
    }
    const ssize_t got = ::recv(fd, p, n, deadline ? MSG_DONTWAIT : 0);
    if (got == 0) return IoStatus::kEof;
    if (got < 0) {
      if (errno == EINTR || (deadline && (errno == EAGAIN || errno == EWOULDBLOCK))) continue;
      error = errno;
      return IoStatus::kError;
    }
    p += got;
    n -= static_cast<size_t>(got);
  }
  return IoStatus::kOk;
}

// Writes every byte of the iovecs (modified). Never raises SIGPIPE; waits for room in poll().
IoStatus write_all(int fd, iovec* iov, int count, const Deadline& deadline, int& error) {
  while (count > 0) {
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = static_cast<size_t>(count);
    const ssize_t sent = ::sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (sent < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        error = errno;
        return IoStatus::kError;
      }
      pollfd pfd{fd, POLLOUT, 0};
      const int ready = ::poll(&pfd, 1, poll_timeout_ms(deadline));
      if (ready < 0 && errno != EINTR) {
        error = errno;
        return IoStatus::kError;
      }
      if (ready == 0) return IoStatus::kTimeout;
      continue;
    }
    auto left = static_cast<size_t>(sent);
    while (count > 0 && left >= iov->iov_len) {
      left -= iov->iov_len;
      ++iov;
      --count;
    }
    if (count > 0) {
      iov->iov_base = static_cast<std::byte*>(iov->iov_base) + left;
      iov->iov_len -= left;
    }
  }
  return IoStatus::kOk;
}

// ---- handshake ---------------------------------------------------------------------------------

struct Hello {
  uint32_t magic = kHelloMagic;
  uint32_t version = kProtocolVersion;
  uint32_t world_size = 0;
  uint32_t rank = 0;       // the sender's rank
  uint32_t peer_rank = 0;  // the rank the sender believes it is talking to
};
static_assert(sizeof(Hello) == 20);

// "rank 1 (127.0.0.1:5555, world size 3)".
std::string end_text(uint32_t rank, const std::string& address, uint32_t world_size) {
  return str_cat("rank ", rank, " (", address, ", world size ", world_size, ")");
}

// Both ends run it on what they sent and what they got; throws naming both.
void check_hello(const Hello& mine, const std::string& my_address, const Hello& theirs,
                 const std::string& their_address, std::optional<uint32_t> expected_rank) {
  const std::string ends = str_cat("handshake between ", end_text(mine.rank, my_address, mine.world_size), " and ",
                                   end_text(theirs.rank, their_address, theirs.world_size), " failed: ");
  MOE_CHECK(theirs.version == mine.version, "tcp communicator: ", ends, "protocol version ", theirs.version, " there, ",
            mine.version, " here");
  MOE_CHECK(theirs.world_size == mine.world_size, "tcp communicator: ", ends, "the world sizes differ (",
            mine.world_size, " here, ", theirs.world_size, " there)");
  MOE_CHECK(!expected_rank || theirs.rank == *expected_rank, "tcp communicator: ", ends, "expected rank ",
            expected_rank.value_or(0), " at ", their_address, " (check the peer address list)");
  MOE_CHECK(theirs.peer_rank == mine.rank, "tcp communicator: ", ends, "the peer expected rank ", theirs.peer_rank,
            " at ", my_address, " (check the peer address list)");
}

Hello read_hello(int fd, const Deadline& deadline, const std::string& me, const std::string& them) {
  Hello hello;
  int error = 0;
  switch (read_exact(fd, &hello, sizeof hello, deadline, error)) {
    case IoStatus::kOk: break;
    case IoStatus::kEof: fail("tcp communicator: ", them, " closed the connection during the handshake with ", me);
    case IoStatus::kError: fail("tcp communicator: handshake of ", me, " with ", them, " failed: ", errno_text(error));
    case IoStatus::kTimeout: fail("tcp communicator: ", me, " timed out waiting for the handshake of ", them);
  }
  MOE_CHECK(hello.magic == kHelloMagic, "tcp communicator: ", them, " connected to ", me,
            " is not a moe tcp communicator peer (handshake magic 0x", std::hex, hello.magic, ", expected 0x",
            kHelloMagic, "; a different byte order reads swapped)");
  return hello;
}

void write_hello(int fd, const Hello& hello, const Deadline& deadline, const std::string& me, const std::string& them) {
  Hello copy = hello;
  iovec iov{&copy, sizeof copy};
  int error = 0;
  const IoStatus status = write_all(fd, &iov, 1, deadline, error);
  MOE_CHECK(status == IoStatus::kOk, "tcp communicator: handshake of ", me, " with ", them,
            " failed: ", status == IoStatus::kTimeout ? "timed out" : errno_text(error));
}

// One connect attempt, bounded by the deadline. Returns a connected (non-blocking) socket, or an
// invalid Fd with `why` set.
Fd try_connect(const HostPort& target, const Deadline& deadline, std::string& why) {
  AddrInfoList list;
  why = resolve(target.host, target.port, false, list);
  if (!why.empty()) return Fd();
  for (addrinfo* ai = list.head; ai != nullptr; ai = ai->ai_next) {
    Fd fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol));
    if (!fd.valid()) {
      why = errno_text(errno);
      continue;
    }
    if (::connect(fd.get(), ai->ai_addr, ai->ai_addrlen) == 0) return fd;
    if (errno != EINPROGRESS) {
      why = errno_text(errno);
      continue;
    }
    pollfd pfd{fd.get(), POLLOUT, 0};
    int ready;
    do {
      ready = ::poll(&pfd, 1, poll_timeout_ms(deadline));
    } while (ready < 0 && errno == EINTR);
    if (ready <= 0) {
      why = ready == 0 ? "timed out" : errno_text(errno);
      continue;
    }
    int error = 0;
    socklen_t len = sizeof error;
    if (getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &error, &len) != 0) error = errno;
    if (error == 0) return fd;
    why = errno_text(error);
  }
  return Fd();
}

// ---- frames ------------------------------------------------------------------------------------

enum class FrameKind : uint8_t { kData = 1, kCollective = 2, kGoodbye = 3, kAbort = 4 };
enum class Op : uint8_t { kNone = 0, kAllReduceSum, kAllGather, kBroadcast, kBarrier, kSplit };

const char* op_name(Op op) {
  switch (op) {
    case Op::kNone: return "send";
    case Op::kAllReduceSum: return "all_reduce_sum";
    case Op::kAllGather: return "all_gather";
    case Op::kBroadcast: return "broadcast";
    case Op::kBarrier: return "barrier";
    case Op::kSplit: return "split";
  }
  return "an unknown operation";
}

struct FrameHeader {
  uint32_t magic = kFrameMagic;
  FrameKind kind = FrameKind::kData;
  Op op = Op::kNone;  // collectives: which one
  uint16_t reserved = 0;
  int32_t tag = 0;     // kData: the tag; kAbort: the exit code
  int32_t root = -1;   // broadcast: the root (communicator rank)
  uint64_t comm = 0;   // communicator id: 0 is the world
  uint64_t bytes = 0;  // payload size
};
static_assert(sizeof(FrameHeader) == 32);

struct Message {
  FrameHeader header;
  std::unique_ptr<std::byte[]> payload;  // header.bytes bytes
};

// Mailbox key: (communicator id, kind, tag); collectives use tag 0 and match in order.
using MailKey = std::tuple<uint64_t, FrameKind, int32_t>;

// One peer (or this rank itself, for self-sends: no socket, no reader).
struct Peer {
  int world_rank = 0;
  std::string address;
  Fd fd;
  std::mutex send_mutex;  // one frame at a time on fd
  std::thread reader;
  // Guarded by Transport::mutex_:
  bool left = false;                                 // the peer said goodbye
  std::map<MailKey, std::deque<Message>> mailboxes;  // frames from this peer, not yet taken
};

// The world's connections, shared by the world communicator and everything split from it.
// Thread-safe: mailboxes and failure state under mutex_, each socket's writes under its
// peer's send_mutex.
class Transport {
 public:
  Transport(int rank, std::vector<std::string> addresses, std::vector<Fd> fds, TcpOptions options)
      : rank_(rank), options_(options) {
    for (size_t r = 0; r < addresses.size(); ++r) {
      auto peer = std::make_unique<Peer>();
      peer->world_rank = static_cast<int>(r);
      peer->address = std::move(addresses[r]);
      peer->fd = std::move(fds[r]);
      peers_.push_back(std::move(peer));
    }
  }

  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;

  // Starts the reader threads; joins the ones started if a later one cannot start.
  void start() {
    try {
      for (auto& peer : peers_) {
        if (peer->fd.valid()) peer->reader = std::thread([this, p = peer.get()] { read_loop(*p); });
      }
    } catch (...) {
      shut_down(false);
      throw;
    }
  }

  // Says goodbye to every peer, shuts the sockets down and joins the readers.
  ~Transport() { shut_down(true); }

  int rank() const { return rank_; }
  int size() const { return static_cast<int>(peers_.size()); }
  const TcpOptions& options() const { return options_; }
  const std::string& address(int world_rank) const { return peers_[static_cast<size_t>(world_rank)]->address; }

  // "rank 1 (10.0.0.2:5555)".
  std::string peer_name(int world_rank) const { return str_cat("rank ", world_rank, " (", address(world_rank), ")"); }

  uint32_t allocate_comm_counter() { return next_comm_counter_.fetch_add(1); }

  // Sends one frame to world rank `to`; `where` names the call in errors.
  void send_frame(int to, FrameHeader header, const void* payload, const std::string& where, const Deadline& deadline) {
    Peer& peer = *peers_[static_cast<size_t>(to)];
    if (to == rank_) {  // a self-send: straight into our own mailbox
      Message message{header, copy_payload(payload, header.bytes)};
      {
        std::lock_guard<std::mutex> lock(mutex_);
        throw_if_failed(where);
        peer.mailboxes[{header.comm, header.kind, header.tag}].push_back(std::move(message));
      }
      cv_.notify_all();
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      throw_if_failed(where);
      MOE_CHECK(!peer.left, "tcp communicator: ", peer_name(to), " closed the connection during ", where);
    }
    std::lock_guard<std::mutex> send_lock(peer.send_mutex);
    iovec iov[2] = {{&header, sizeof header}, {const_cast<void*>(payload), header.bytes}};
    int error = 0;
    const IoStatus status = write_all(peer.fd.get(), iov, header.bytes > 0 ? 2 : 1, deadline, error);
    switch (status) {
      case IoStatus::kOk: return;
      case IoStatus::kTimeout:
        fail_and_throw(str_cat("timed out after ", ms_text(options_.call_timeout), " sending to ", peer_name(to)),
                       where);
      case IoStatus::kEof:
      case IoStatus::kError: break;
    }
    // A frame cut short leaves the stream unusable: the world is failed either way.
    const bool closed = error == EPIPE || error == ECONNRESET;
    fail_and_throw(closed ? str_cat(peer_name(to), " closed the connection")
                          : str_cat("the connection to ", peer_name(to), " failed (", errno_text(error), ")"),
                   where);
  }

  // Waits for the next frame from world rank `from` with this key and returns it.
  Message take(int from, const MailKey& key, const std::string& where, const Deadline& deadline) {
    Peer& peer = *peers_[static_cast<size_t>(from)];
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      throw_if_failed(where);
      auto it = peer.mailboxes.find(key);
      if (it != peer.mailboxes.end() && !it->second.empty()) {
        Message message = std::move(it->second.front());
        it->second.pop_front();
        if (it->second.empty()) peer.mailboxes.erase(it);
        return message;
      }
      MOE_CHECK(!peer.left, "tcp communicator: ", peer_name(from), " closed the connection during ", where);
      if (expired(deadline)) {  // checked after the mailbox: a message that made it in time is taken
        lock.unlock();
        fail_and_throw(str_cat("timed out after ", ms_text(options_.call_timeout), " waiting for ", peer_name(from)),
                       where);
      }
      if (deadline) {
        cv_.wait_until(lock, *deadline);
      } else {
        cv_.wait(lock);
      }
    }
  }

  // Fails the world (first failure wins) and shuts every connection down without a goodbye, so
  // the peers' calls fail too. Then throws "tcp communicator: <why> during <where>".
  [[noreturn]] void fail_and_throw(const std::string& why, const std::string& where) {
    break_connections(why);
    throw Error(str_cat("tcp communicator: ", why, " during ", where));
  }

  void break_connections(const std::string& why) {
    fail_world(why);
    for (auto& peer : peers_) {
      if (peer->fd.valid()) ::shutdown(peer->fd.get(), SHUT_RDWR);
    }
  }

  // Best effort and never blocks: an abort frame to every peer whose socket is free, then every
  // socket shut down. The caller ends the process.
  void abort_peers(int code, const std::string& why) {
    for (auto& peer : peers_) {
      if (!peer->fd.valid()) continue;
      std::unique_lock<std::mutex> send_lock(peer->send_mutex, std::try_to_lock);
      if (send_lock.owns_lock()) {  // else another thread is mid-frame: the peer sees the close
        FrameHeader header;
        header.kind = FrameKind::kAbort;
        header.tag = code;
        header.bytes = why.size();
        iovec iov[2] = {{&header, sizeof header}, {const_cast<char*>(why.data()), why.size()}};
        msghdr msg{};
        msg.msg_iov = iov;
        msg.msg_iovlen = why.empty() ? 1 : 2;
        (void)::sendmsg(peer->fd.get(), &msg, MSG_NOSIGNAL | MSG_DONTWAIT);  // best effort
      }
      ::shutdown(peer->fd.get(), SHUT_RDWR);
    }
  }

 private:
  static std::unique_ptr<std::byte[]> copy_payload(const void* data, uint64_t bytes) {
    auto out = std::make_unique_for_overwrite<std::byte[]>(static_cast<size_t>(bytes));
    if (bytes > 0) std::memcpy(out.get(), data, static_cast<size_t>(bytes));
    return out;
  }

  // Needs mutex_ held.
  void throw_if_failed(const std::string& where) const {
    if (!failure_.empty()) throw Error(str_cat("tcp communicator: ", failure_, " during ", where));
  }

  // The first failure wins; wakes every waiting call.
  void fail_world(const std::string& why) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!failure_.empty() || closing_) return;
      failure_ = why;
    }
    cv_.notify_all();
  }

  void read_loop(Peer& peer) {
    std::string why;  // why the connection ended, when it was not a goodbye
    try {
      for (;;) {
        FrameHeader header;
        int error = 0;
        IoStatus status = read_exact(peer.fd.get(), &header, sizeof header, std::nullopt, error);
        if (status == IoStatus::kOk && header.magic != kFrameMagic) {
          why = str_cat(peer_name(peer.world_rank), " sent a corrupt frame (magic 0x", std::hex, header.magic, ")");
          break;
        }
        Message message{header, nullptr};
        if (status == IoStatus::kOk) {
          message.payload = std::make_unique_for_overwrite<std::byte[]>(static_cast<size_t>(header.bytes));
          status =
              read_exact(peer.fd.get(), message.payload.get(), static_cast<size_t>(header.bytes), std::nullopt, error);
        }
        if (status != IoStatus::kOk) {
          // EOF and a reset read the same: the peer is gone (a crash, a kill, a close).
          const bool closed = status == IoStatus::kEof || error == ECONNRESET || error == EPIPE;
          why = closed ? str_cat(peer_name(peer.world_rank), " closed the connection")
                       : str_cat("the connection to ", peer_name(peer.world_rank), " failed (", errno_text(error), ")");
          break;
        }
        bool known = false;
        switch (header.kind) {
          case FrameKind::kData:
          case FrameKind::kCollective: {
            {
              std::lock_guard<std::mutex> lock(mutex_);
              peer.mailboxes[{header.comm, header.kind, header.tag}].push_back(std::move(message));
            }
            cv_.notify_all();
            known = true;
            break;
          }
          case FrameKind::kGoodbye: {
            {
              std::lock_guard<std::mutex> lock(mutex_);
              peer.left = true;
            }
            cv_.notify_all();
            return;  // nothing follows a goodbye
          }
          case FrameKind::kAbort: {
            const std::string text(reinterpret_cast<const char*>(message.payload.get()),
                                   static_cast<size_t>(header.bytes));
            fail_world(str_cat(peer_name(peer.world_rank), " aborted (code ", header.tag, "): ", text));
            return;
          }
        }
        if (!known) {
          why = str_cat(peer_name(peer.world_rank), " sent a frame of unknown kind ", static_cast<int>(header.kind));
          break;
        }
      }
    } catch (const std::exception& e) {  // e.g. bad_alloc for a huge payload
      why = str_cat("reading from ", peer_name(peer.world_rank), " failed: ", e.what());
    }
    fail_world(why);  // ignored when this end is closing
  }

  void shut_down(bool goodbye) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      closing_ = true;
    }
    for (auto& peer : peers_) {
      if (!peer->fd.valid()) continue;
      if (goodbye) {
        std::lock_guard<std::mutex> send_lock(peer->send_mutex);
        FrameHeader header;
        header.kind = FrameKind::kGoodbye;
        // Never blocks: a peer too far behind to take 32 bytes sees a plain close instead.
        (void)::send(peer->fd.get(), &header, sizeof header, MSG_NOSIGNAL | MSG_DONTWAIT);
      }
      ::shutdown(peer->fd.get(), SHUT_RDWR);  // wakes the reader: its recv returns 0
    }
    for (auto& peer : peers_) {
      if (peer->reader.joinable()) peer->reader.join();
    }
  }

  const int rank_;
  const TcpOptions options_;
  std::vector<std::unique_ptr<Peer>> peers_;  // (world size), by world rank; fixed after construction
  std::atomic<uint32_t> next_comm_counter_{1};

  std::mutex mutex_;
  std::condition_variable cv_;  // notified on every mailbox, goodbye or failure change
  std::string failure_;         // guarded by mutex_; "" while the world is healthy
  bool closing_ = false;        // guarded by mutex_; set by the destructor
};

class TcpCommunicator final : public Communicator {
 public:
  // world_ranks: communicator rank -> world rank.
  TcpCommunicator(std::shared_ptr<Transport> transport, uint64_t id, std::vector<int> world_ranks, int rank)
      : transport_(std::move(transport)), id_(id), world_ranks_(std::move(world_ranks)), rank_(rank) {}

  int rank() const override { return rank_; }
  int size() const override { return static_cast<int>(world_ranks_.size()); }
  std::string name() const override { return "tcp"; }
  MemorySpace memory() const override { return MemorySpace::kHost; }

  void all_reduce_sum(float* data, size_t count) override {
    const std::string where = where_text("all_reduce_sum");
    const Deadline deadline = call_deadline();
    const size_t bytes = count * sizeof(float);
    send_to_all(Op::kAllReduceSum, bytes, -1, data, where, deadline);
    if (size() == 1) return;
    // Rank order, in float: acc = r0, acc += r1, acc += r2, ... element by element, the same
    // expression on every rank.
    std::vector<float> acc;
    std::vector<float> part;
    for (int r = 0; r < size(); ++r) {
      const float* values = data;
      Message message;
      if (r != rank_) {
        message = take_collective(r, Op::kAllReduceSum, bytes, -1, where, deadline);
        part.resize(count);
        if (bytes > 0) std::memcpy(part.data(), message.payload.get(), bytes);
        values = part.data();
      }
      if (r == 0) {
        acc.assign(values, values + count);
      } else {
        for (size_t i = 0; i < count; ++i) acc[i] += values[i];
      }
    }
    if (bytes > 0) std::memcpy(data, acc.data(), bytes);
  }

  void all_gather(const void* send, size_t bytes, void* recv) override {
    const std::string where = where_text("all_gather");
    const Deadline deadline = call_deadline();
    send_to_all(Op::kAllGather, bytes, -1, send, where, deadline);
    auto* out = static_cast<std::byte*>(recv);
    if (bytes > 0) std::memcpy(out + static_cast<size_t>(rank_) * bytes, send, bytes);
    for (int r = 0; r < size(); ++r) {
      if (r == rank_) continue;
      const Message message = take_collective(r, Op::kAllGather, bytes, -1, where, deadline);
      if (bytes > 0) std::memcpy(out + static_cast<size_t>(r) * bytes, message.payload.get(), bytes);
    }
  }

  void broadcast(void* data, size_t bytes, int root) override {
    const std::string where = where_text("broadcast");
    check_peer(where, root, "root");
    const Deadline deadline = call_deadline();
    if (rank_ == root) {
      send_to_all(Op::kBroadcast, bytes, root, data, where, deadline);
      return;
    }
    const Message message = take_collective(root, Op::kBroadcast, bytes, root, where, deadline);
    if (bytes > 0) std::memcpy(data, message.payload.get(), bytes);
  }

  void send(const void* data, size_t bytes, int peer, int tag) override {
    const std::string where = where_text("send");
    check_peer(where, peer, "peer");
    FrameHeader header = header_for(FrameKind::kData, Op::kNone, bytes, -1);
    header.tag = tag;
    transport_->send_frame(world_rank(peer), header, data, where, call_deadline());
  }

  void recv(void* data, size_t bytes, int peer, int tag) override {
    const std::string where = where_text("recv");
    check_peer(where, peer, "peer");
    const Message message = transport_->take(world_rank(peer), {id_, FrameKind::kData, tag}, where, call_deadline());
    MOE_CHECK(message.header.bytes == bytes, "tcp communicator: ", where, ": ", peer_name(peer), " sent ",
              message.header.bytes, " bytes with tag ", tag, ", expected ", bytes);
    if (bytes > 0) std::memcpy(data, message.payload.get(), bytes);
  }

  void barrier() override {
    const std::string where = where_text("barrier");
    const Deadline deadline = call_deadline();
    send_to_all(Op::kBarrier, 0, -1, nullptr, where, deadline);
    for (int r = 0; r < size(); ++r) {
      if (r != rank_) take_collective(r, Op::kBarrier, 0, -1, where, deadline);
    }
  }

  [[noreturn]] void abort(int code, const std::string& why) override {
    std::fprintf(stderr, "moe: tcp rank %d of %d aborting (code %d): %s\n", rank_, size(), code, why.c_str());
    std::fflush(stderr);
    transport_->abort_peers(code, why);
    std::_Exit(code);
  }

  std::unique_ptr<Communicator> split(int color, int key) override {
    const std::string where = where_text("split");
    // (color, key, id proposal) from every rank. The new communicator's id is (world rank of its
    // rank 0, that process's proposal): unique, since each process hands out each proposal once.
    const uint32_t proposal = transport_->allocate_comm_counter();
    int32_t mine[3] = {color, key, static_cast<int32_t>(proposal)};
    std::vector<int32_t> all(3 * static_cast<size_t>(size()));
    {
      const Deadline deadline = call_deadline();
      send_to_all(Op::kSplit, sizeof mine, -1, mine, where, deadline);
      std::memcpy(all.data() + 3 * static_cast<size_t>(rank_), mine, sizeof mine);
      for (int r = 0; r < size(); ++r) {
        if (r == rank_) continue;
        const Message message = take_collective(r, Op::kSplit, sizeof mine, -1, where, deadline);
        std::memcpy(all.data() + 3 * static_cast<size_t>(r), message.payload.get(), sizeof mine);
      }
    }
    if (color < 0) return nullptr;                 // like MPI_UNDEFINED
    std::vector<std::pair<int32_t, int>> members;  // (key, old rank) of my color
    for (int r = 0; r < size(); ++r) {
      if (all[3 * static_cast<size_t>(r)] == color) members.emplace_back(all[3 * static_cast<size_t>(r) + 1], r);
    }
    std::sort(members.begin(), members.end());
    std::vector<int> world_ranks;
    int new_rank = -1;
    for (const auto& [k, old_rank] : members) {
      if (old_rank == rank_) new_rank = static_cast<int>(world_ranks.size());
      world_ranks.push_back(world_rank(old_rank));
    }
    const int leader = members.front().second;
    const uint64_t id = (static_cast<uint64_t>(world_rank(leader)) << 32) |
                        static_cast<uint32_t>(all[3 * static_cast<size_t>(leader) + 2]);
    return std::make_unique<TcpCommunicator>(transport_, id, std::move(world_ranks), new_rank);
  }

  Transport& transport() { return *transport_; }

 private:
  int world_rank(int rank) const { return world_ranks_[static_cast<size_t>(rank)]; }
  std::string peer_name(int rank) const { return transport_->peer_name(world_rank(rank)); }

  std::string where_text(const char* op) const {
    if (id_ == 0) return str_cat(op, " on rank ", rank_, " of ", size());
    return str_cat(op, " on rank ", rank_, " of ", size(), " (world rank ", world_rank(rank_), ")");
  }

  Deadline call_deadline() const { return deadline_after(transport_->options().call_timeout); }

  void check_peer(const std::string& where, int peer, const char* what) const {
    MOE_CHECK(peer >= 0 && peer < size(), "tcp communicator: ", where, ": ", what, " ", peer, " is outside [0, ",
              size(), ")");
  }

  FrameHeader header_for(FrameKind kind, Op op, size_t bytes, int root) const {
    FrameHeader header;
    header.kind = kind;
    header.op = op;
    header.root = root;
    header.comm = id_;
    header.bytes = bytes;
    return header;
  }

  // This rank's part of a collective to every other rank, starting after itself (spreads load).
  void send_to_all(Op op, size_t bytes, int root, const void* data, const std::string& where,
                   const Deadline& deadline) {
    const FrameHeader header = header_for(FrameKind::kCollective, op, bytes, root);
    for (int i = 1; i < size(); ++i) {
      transport_->send_frame(world_rank((rank_ + i) % size()), header, data, where, deadline);
    }
  }

  // The next collective frame from rank r; checks it is the same operation, size and root.
  Message take_collective(int r, Op op, size_t bytes, int root, const std::string& where, const Deadline& deadline) {
    Message message = transport_->take(world_rank(r), {id_, FrameKind::kCollective, 0}, where, deadline);
    const FrameHeader& h = message.header;
    MOE_CHECK(h.op == op && h.bytes == bytes && h.root == root, "tcp communicator: ", where,
              ": collective mismatch: this rank called ", op_name(op), "(", bytes, " bytes, root ", root, ") where ",
              peer_name(r), " called ", op_name(h.op), "(", h.bytes, " bytes, root ", h.root, ")");
    return message;
  }

  std::shared_ptr<Transport> transport_;
  uint64_t id_;                   // 0: the world
  std::vector<int> world_ranks_;  // (size), communicator rank -> world rank
  int rank_;
};

}  // namespace

// ---- TcpListener -------------------------------------------------------------------------------

TcpListener::TcpListener(const std::string& host, int port) : host_(host) {
  MOE_CHECK(port >= 0 && port <= 65535, "TcpListener: port ", port, " is outside [0, 65535]");
  const std::string bind_host = host == "0.0.0.0" ? "" : host;
  AddrInfoList list;
  const std::string where = str_cat(host.empty() ? "*" : host, ":", port);
  const std::string resolved = resolve(bind_host, std::to_string(port), true, list);
  MOE_CHECK(resolved.empty(), "TcpListener: cannot resolve ", where, ": ", resolved);
  std::string why = "no address";
  for (addrinfo* ai = list.head; ai != nullptr; ai = ai->ai_next) {
    if (bind_host.empty() && ai->ai_family != AF_INET) continue;  // "" and "0.0.0.0": IPv4, as documented
    Fd fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol));
    if (!fd.valid()) {
      why = str_cat("socket: ", errno_text(errno));
      continue;
    }
    set_int_option(fd.get(), SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR");
    if (::bind(fd.get(), ai->ai_addr, ai->ai_addrlen) != 0) {
      why = str_cat("bind: ", errno_text(errno));
      continue;
    }
    if (::listen(fd.get(), SOMAXCONN) != 0) {
      why = str_cat("listen: ", errno_text(errno));
      continue;
    }
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    MOE_CHECK(getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) == 0,
              "TcpListener: getsockname: ", errno_text(errno));
    port_ = addr.ss_family == AF_INET6 ? ntohs(reinterpret_cast<const sockaddr_in6*>(&addr)->sin6_port)
                                       : ntohs(reinterpret_cast<const sockaddr_in*>(&addr)->sin_port);
    fd_ = fd.release();
    break;
  }
  MOE_CHECK(fd_ >= 0, "TcpListener: cannot listen on ", where, ": ", why);
}

TcpListener::~TcpListener() {
  if (fd_ >= 0) ::close(fd_);
}

TcpListener::TcpListener(TcpListener&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), port_(other.port_), host_(std::move(other.host_)) {}

TcpListener& TcpListener::operator=(TcpListener&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    port_ = other.port_;
    host_ = std::move(other.host_);
  }
  return *this;
}

// ---- connect_tcp_world -------------------------------------------------------------------------

std::unique_ptr<Communicator> connect_tcp_world(TcpListener listener, int rank, std::vector<std::string> peer_addresses,
                                                const TcpOptions& options) {
  const int size = static_cast<int>(peer_addresses.size());
  MOE_CHECK(size >= 1, "connect_tcp_world: the peer address list is empty");
  MOE_CHECK(rank >= 0 && rank < size, "connect_tcp_world: rank ", rank, " is outside [0, ", size, ")");
  MOE_CHECK(listener.fd_ >= 0, "connect_tcp_world: the listener was moved from");
  std::vector<HostPort> targets;
  for (const std::string& address : peer_addresses) targets.push_back(parse_address(address));

  const Deadline deadline = Clock::now() + options.connect_timeout;
  const std::string me = str_cat("rank ", rank, " (", peer_addresses[static_cast<size_t>(rank)], ")");
  Hello mine;
  mine.world_size = static_cast<uint32_t>(size);
  mine.rank = static_cast<uint32_t>(rank);
  std::vector<Fd> fds(static_cast<size_t>(size));

  // Connect to every lower rank, retrying until it listens.
  for (int j = 0; j < rank; ++j) {
    const std::string& address = peer_addresses[static_cast<size_t>(j)];
    const std::string them = str_cat("rank ", j, " (", address, ")");
    std::string why;
    Fd fd;
    for (;;) {
      fd = try_connect(targets[static_cast<size_t>(j)], deadline, why);
      if (fd.valid() || expired(deadline)) break;
      std::this_thread::sleep_for(std::min<Clock::duration>(kConnectRetryDelay, *deadline - Clock::now()));
    }
    MOE_CHECK(fd.valid(), "tcp communicator: ", me, " could not connect to ", them, " within ",
              ms_text(options.connect_timeout), ": ", why);
    mine.peer_rank = static_cast<uint32_t>(j);
    write_hello(fd.get(), mine, deadline, me, them);
    const Hello theirs = read_hello(fd.get(), deadline, me, them);
    check_hello(mine, peer_addresses[static_cast<size_t>(rank)], theirs, address, static_cast<uint32_t>(j));
    configure_data_socket(fd.get());
    fds[static_cast<size_t>(j)] = std::move(fd);
  }

  // Accept every higher rank, in whatever order they come.
  int missing = size - 1 - rank;
  while (missing > 0) {
    pollfd pfd{listener.fd_, POLLIN, 0};
    const int ready = ::poll(&pfd, 1, poll_timeout_ms(deadline));
    if (ready < 0 && errno == EINTR) continue;
    MOE_CHECK(ready >= 0, "tcp communicator: ", me, ": poll on the listener failed: ", errno_text(errno));
    if (ready == 0) {
      std::string ranks;
      for (int j = rank + 1; j < size; ++j) {
        if (!fds[static_cast<size_t>(j)].valid()) ranks += str_cat(ranks.empty() ? "" : ", ", j);
      }
      fail("tcp communicator: ", me, " timed out after ", ms_text(options.connect_timeout), " waiting for rank(s) ",
           ranks, " to connect");
    }
    Fd fd(::accept4(listener.fd_, nullptr, nullptr, SOCK_CLOEXEC));
    if (!fd.valid()) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ECONNABORTED) continue;
      fail("tcp communicator: ", me, ": accept failed: ", errno_text(errno));
    }
    const std::string from = socket_peer_text(fd.get());
    const Hello theirs = read_hello(fd.get(), deadline, me, str_cat("a peer at ", from));
    // Answer before judging, so the connecting end sees the mismatch too and reports it.
    mine.peer_rank = theirs.rank;
    write_hello(fd.get(), mine, deadline, me, str_cat("a peer at ", from));
    check_hello(mine, peer_addresses[static_cast<size_t>(rank)], theirs, from, std::nullopt);
    const int j = static_cast<int>(theirs.rank);
    MOE_CHECK(j > rank && j < size, "tcp communicator: handshake between ",
              end_text(mine.rank, peer_addresses[static_cast<size_t>(rank)], mine.world_size), " and ",
              end_text(theirs.rank, from, theirs.world_size), " failed: rank ", j,
              " should not connect to this rank (only ranks above ", rank, " do)");
    MOE_CHECK(!fds[static_cast<size_t>(j)].valid(), "tcp communicator: ", me, ": a second rank ", j,
              " connected (from ", from, "): two workers were given the same rank");
    configure_data_socket(fd.get());
    fds[static_cast<size_t>(j)] = std::move(fd);
    --missing;
  }

  std::vector<int> world_ranks(static_cast<size_t>(size));
  for (int r = 0; r < size; ++r) world_ranks[static_cast<size_t>(r)] = r;
  auto transport = std::make_shared<Transport>(rank, std::move(peer_addresses), std::move(fds), options);
  transport->start();
  return std::make_unique<TcpCommunicator>(std::move(transport), 0, std::move(world_ranks), rank);
}

std::unique_ptr<Communicator> connect_tcp_world(TcpListener listener, int rank, std::vector<std::string> peer_addresses,
                                                std::chrono::milliseconds connect_timeout) {
  TcpOptions options;
  options.connect_timeout = connect_timeout;
  return connect_tcp_world(std::move(listener), rank, std::move(peer_addresses), options);
}

void sever_tcp_connections_for_testing(Communicator& comm) {
  auto* tcp = dynamic_cast<TcpCommunicator*>(&comm);
  MOE_CHECK(tcp != nullptr, "sever_tcp_connections_for_testing: a ", comm.name(), " communicator is not tcp");
  tcp->transport().break_connections(str_cat("rank ", tcp->transport().rank(), " (",
                                             tcp->transport().address(tcp->transport().rank()),
                                             ") had its connections severed for testing"));
}

}  // namespace moe::parallel
