// packiced: wiring of a node — the peer, the transports, signals and logs.
#ifndef PACKICE_SERVER_DAEMON_H_
#define PACKICE_SERVER_DAEMON_H_

#include <string>

#include "packice/memory_peer.h"
#include "transport/uds/uds_server.h"

namespace packice {

struct DaemonOptions {
  std::string socket_path;  // empty: DefaultSocketPath()
  MemoryPeerOptions memory;
  ServerLimits limits;
  unsigned io_threads = 2;
  std::string log_level = "info";
};

// Runs the node until SIGTERM or SIGINT. Returns the process exit code; logs why on failure.
int RunDaemon(const DaemonOptions& options);

}  // namespace packice

#endif  // PACKICE_SERVER_DAEMON_H_
