// A Communicator over plain TCP sockets, for workers started by hand on several hosts (no
// mpirun): each worker makes a TcpListener first (so it can report its data address to the
// coordinator), then, once the coordinator has handed out every worker's "host:port", calls
// connect_tcp_world with the whole list. Socket headers stay in tcp_communicator.cpp.
//
// Wire and connection setup:
// - A full mesh of connections: rank i connects to every rank j < i and accepts one connection
//   from every rank j > i. connect() is retried until the connect timeout. Each connection opens
//   with a handshake both ends check: (magic, protocol version, world size, sender's rank, the
//   rank the sender believes it is talking to). A stranger, a peer of another version, a
//   different world size or the wrong rank at an address throws moe::Error naming both ends.
// - TCP_NODELAY and SO_KEEPALIVE (idle 10 s, then 3 probes 5 s apart) on every connection, so a
//   host that vanishes without a FIN or RST is reported within about half a minute.
// - Every message is a frame {magic, kind, op, tag, root, communicator id, bytes} + payload, in
//   the host's byte order (every worker must share it: the handshake magic catches a mismatch).
//   Communicators made by split() multiplex over the world's connections by communicator id.
// - One reader thread per peer drains its socket into per-(communicator, tag) FIFO queues, so a
//   send never waits for the matching recv, two ranks sending large buffers to each other at once
//   cannot deadlock, and a recv for tag B takes B's message even when an earlier tag-A message
//   from the same peer is still pending (it stays queued for a later recv of tag A).
//
// Contracts (the same as the MPI and thread implementations where they overlap):
// - all_reduce_sum sends the buffer to every rank, then adds the ranks' buffers in rank order,
//   ((r0 + r1) + r2) + ..., in float: every rank ends with the same bits. The cost is size - 1
//   copies of the buffer sent and received per rank.
// - all_gather, broadcast (a star from the root) and barrier are direct exchanges with every
//   rank; collectives carry their operation, size and root, and a rank that sees another rank call
//   a different one throws moe::Error("... collective mismatch ...").
// - send() copies into the kernel and returns; it does not wait for the recv. A self-send
//   (peer == rank()) is queued locally.
// - Failures: a peer whose connection ends without the goodbye its communicator's destructor
//   sends (a crash, a kill, a reset, a keepalive expiry) or that calls abort() fails the whole
//   world: every blocked and later call on every communicator of this world throws, even when
//   the message it wants is already queued, e.g. moe::Error("tcp communicator: rank 1
//   (10.0.0.2:5555) closed the connection during all_reduce_sum on rank 0 of 2"). EOF and
//   ECONNRESET both read "closed the connection"; other socket errors read "the connection to
//   rank 1 (...) failed (<errno text>)"; an abort reads "rank 1 (...) aborted (code C): <why>".
//   A peer that said goodbye (destroyed its communicator normally) fails only the calls that need
//   data from it, once its queued messages are used up. "rank R (host:port)" is a world rank.
// - TcpOptions::call_timeout (0 = none) bounds every call. A call that times out fails the world
//   and shuts this process's connections down (the peers' calls fail too instead of hanging):
//   a timeout is for detecting a hung job, not for polling.
// - abort() prints `why` on stderr, tells every peer (their calls then throw naming this rank and
//   `why`), shuts every socket down and ends the process with std::_Exit(code).
// - memory() is kHost; name() is "tcp". A communicator is used by one thread at a time; the
//   communicators split from one world may be used from different threads at once.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "parallel/communicator.h"

namespace moe::parallel {

struct TcpOptions {
  // Bounds the whole of connect_tcp_world: retried connects, accepts and handshakes.
  std::chrono::milliseconds connect_timeout{30000};
  // Bounds every communicator call (each wait and each send within it); 0 = no bound.
  std::chrono::milliseconds call_timeout{0};
};

class TcpListener;
std::unique_ptr<Communicator> connect_tcp_world(TcpListener listener, int rank, std::vector<std::string> peer_addresses,
                                                const TcpOptions& options);

// A listening TCP socket (SO_REUSEADDR, close-on-exec), bound at construction so the worker can
// report its port before the peer list is known; peers may connect as soon as it exists (the
// kernel queues them until connect_tcp_world accepts). Move-only; closes the socket when destroyed.
class TcpListener {
 public:
  // host: a numeric address or a name; "" or "0.0.0.0" listens on every IPv4 interface, "::" on
  // every IPv6 one. port 0: the kernel chooses (see port()). Throws moe::Error naming host:port.
  explicit TcpListener(const std::string& host = "0.0.0.0", int port = 0);
  ~TcpListener();
  TcpListener(TcpListener&& other) noexcept;
  TcpListener& operator=(TcpListener&& other) noexcept;
  TcpListener(const TcpListener&) = delete;
  TcpListener& operator=(const TcpListener&) = delete;

  // The port actually bound (the kernel's choice when constructed with port 0).
  int port() const { return port_; }
  const std::string& host() const { return host_; }

 private:
  friend std::unique_ptr<Communicator> connect_tcp_world(TcpListener listener, int rank,
                                                         std::vector<std::string> peer_addresses,
                                                         const TcpOptions& options);
  int fd_ = -1;  // the listening socket; -1 once moved from
  int port_ = 0;
  std::string host_;
};

// Connects rank `rank` of a world of peer_addresses.size() ranks. peer_addresses[r] is rank r's
// "host:port" ("[v6addr]:port" for IPv6), where its TcpListener listens; this rank's own entry is
// used only in messages. Consumes `listener` (closed on return: nobody else may connect later).
// Every rank of the world calls it, in any order, within options.connect_timeout of each other.
// Throws moe::Error naming both ends when the handshake fails, or the rank(s) still missing when
// the timeout passes.
std::unique_ptr<Communicator> connect_tcp_world(TcpListener listener, int rank, std::vector<std::string> peer_addresses,
                                                const TcpOptions& options);
// The same with only a connect timeout (no per-call timeout).
std::unique_ptr<Communicator> connect_tcp_world(TcpListener listener, int rank, std::vector<std::string> peer_addresses,
                                                std::chrono::milliseconds connect_timeout);

// Tests only: shuts down every connection of the world `comm` belongs to without the goodbye,
// as a crash of this process would (the peers' calls then fail naming this rank), and fails
// `comm`'s own later calls. Throws moe::Error when comm is not a TCP communicator.
void sever_tcp_connections_for_testing(Communicator& comm);

}  // namespace moe::parallel
