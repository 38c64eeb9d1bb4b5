// The TCP connection behind an HTTP request, to notice a client that went away while its
// generation runs. cpp-httplib (0.11) does not hand handlers the socket, so it is found by the
// request's address pair among this process's descriptors; the connection stays open while its
// handler runs, so the descriptor cannot be reused under it.
#pragma once

#include <string>

namespace moe::serve {

// The socket whose local port is `local_port` and whose peer is remote_addr:remote_port, or -1.
int find_connection_fd(const std::string& remote_addr, int remote_port, int local_port);

// True when the peer has closed the connection (or it failed). Never blocks; data the client
// sent (a pipelined request) is left unread.
bool peer_closed(int fd);

}  // namespace moe::serve
