// UdsServer: serves a Peer on a Unix domain socket (Boost.Asio).
//
// Each connection is a session: its leases end when it closes, so a client killed with -9
// releases what it read and aborts what it was writing. Requests on one connection are handled
// in order on a strand; memory per connection is bounded by the frame limit plus the unsent
// output cap (past which the connection stops reading until the client catches up).
//
// Thread safety: Start and Stop from one thread; handlers run on the io_context's threads.
#ifndef PACKICE_TRANSPORT_UDS_UDS_SERVER_H_
#define PACKICE_TRANSPORT_UDS_UDS_SERVER_H_

#include <boost/asio/io_context.hpp>
#include <memory>
#include <string>

#include "packice/kv.h"
#include "packice/queue.h"
#include "packice/peer.h"
#include "transport/uds/request_handler.h"

namespace packice {

struct UdsServerOptions {
  std::string path;
  ServerLimits limits;
  // Permission bits of the socket file: owner-only by default.
  unsigned socket_mode = 0600;
  // Connections beyond this are closed at once.
  size_t max_connections = 4096;
  // Unsent response bytes per connection before it stops reading requests.
  size_t max_pending_output = 16u << 20;
  // The KV served on the socket (kv_session.h); null: KV calls answer kUnimplemented.
  std::shared_ptr<KvStore> kv;
  unsigned kv_threads = 8;  // the pool that runs KV and queue calls off the io threads
  // The queue served on the socket (queue_calls.h); null: queue calls answer kUnimplemented.
  std::shared_ptr<Queue> queue;
  // Queue calls one connection may have under way (waiting reads included).
  size_t max_queue_calls = 256;
};

class UdsServer {
 public:
  UdsServer(boost::asio::io_context& io, std::shared_ptr<Peer> peer, UdsServerOptions options);
  ~UdsServer();

  // Binds and listens. A stale socket file (no one listening) is replaced; a live one gives
  // kAlreadyExists.
  Status Start();
  // Stops accepting, closes every connection and removes the socket file.
  void Stop();

  size_t connection_count() const;

  class Impl;  // opaque; public so that connections can name it

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace packice

#endif  // PACKICE_TRANSPORT_UDS_UDS_SERVER_H_
