// packiced: wiring of a node — the peer, the transports, signals and logs.
#ifndef PACKICE_SERVER_DAEMON_H_
#define PACKICE_SERVER_DAEMON_H_

#include <string>
#include <vector>

#include "packice/file_peer.h"
#include "packice/memory_peer.h"
#include "packice/sharedfs_peer.h"
#include "packice/tiered_peer.h"
#include "services/cache/group_registry.h"
#include "transport/grpc/grpc_server.h"
#include "transport/http/http_server.h"
#include "transport/uds/uds_server.h"

namespace packice {

// packiced --cluster: the node joins a cluster whose members find each other in etcd
// (docs/cluster.md). Needs the gRPC port: nodes talk to each other there.
struct ClusterOptions {
  std::string name;  // empty: the node stands alone
  std::string etcd;  // "http://host:port[,http://host:port...]"
  // host:port other nodes reach this node's gRPC port at; empty: the --grpc host and the bound
  // port (which must then not be a wildcard address).
  std::string advertise;
  // Empty: the id kept in the data directory's NODE_ID (made at the first start), or with
  // --store memory the advertised address.
  std::string node_id;
  std::chrono::seconds lease_ttl{10};
  // Shared memory for copies of other nodes' objects; 0: a quarter of the memory capacity.
  uint64_t copy_capacity_bytes = 0;
  Duration mirror_ttl{10'000};
  double mirror_min_rate = 20;
};

// The node's content-addressed store (docs/cas.md): served over HTTP (/cas/, /ac/, /v1/cas/)
// and gRPC (REAPI). Its local tier is a directory of its own; with --store memory or sharedfs
// and no directory named, the node serves no CAS.
struct CasNodeOptions {
  bool enabled = true;
  std::string dir;  // empty: DATA_DIR/cas
  uint64_t capacity_bytes = 16ull << 30;
  uint64_t memory_bytes = 0;  // 0: the seed's heuristic (a tenth of memory, 4 MiB .. 4 GiB)
  uint64_t memory_max_blob_bytes = 4 << 20;
  Duration memory_ttl = std::chrono::minutes(30);
  Duration memory_idle_ttl = std::chrono::minutes(5);
  // The remote tier (docs/cas.md): "grpc://HOST:PORT" or "grpcs://HOST:PORT" of another node
  // (or REAPI cache); "none" for no remote tier; empty: in a cluster each digest's owner, else
  // none.
  std::string remote;
  std::string remote_token;    // sent to the remote; empty: the node's own token (http.token)
  std::string remote_ca_file;  // grpcs://: the CAs of the remote's certificate; empty: system's
};

// The node's namespaced KV (docs/kv.md): served over the Unix socket, HTTP (/v1/kv) and gRPC
// (packice.rpc.Kv). Its namespaces live in a directory of their own; with --store memory or
// sharedfs and no directory named, the node serves no KV.
struct KvNodeOptions {
  bool enabled = true;
  std::string dir;  // empty: DATA_DIR/kv
  // Threads that run KV calls off the socket's io thread: a write waits for its namespace's
  // log (an fdatasync with fsync "always"), and waiting writers share one.
  unsigned threads = 8;
};

// The node's queue (docs/queue.md): topics of durable records, served over the Unix socket.
// With --store memory or sharedfs and no directory named, its topics live in memory.
struct QueueNodeOptions {
  bool enabled = true;
  std::string dir;  // empty: DATA_DIR/queue
};

struct DaemonOptions {
  std::string socket_path;  // empty: DefaultSocketPath()
  // "tiered" (memory in front of disk), "memory" (a cache: nothing survives a restart),
  // "disk" (every sealed object is durable before its seal returns) or "sharedfs" (objects in
  // a directory that several nodes share; disk.dir is that directory).
  std::string store = "tiered";
  MemoryPeerOptions memory;
  FilePeerOptions disk;  // disk.dir empty: DefaultDataDir()
  TieredPeerOptions tiered;
  SharedFSPeerOptions sharedfs;  // sharedfs.dir: disk.dir
  ServerLimits limits;
  HttpServerOptions http;  // http.listen empty: no HTTP listener
  // grpc.listen empty: no gRPC port. The port takes the HTTP listener's token and TLS files
  // (http.bearer_token, http.tls_cert_file, http.tls_key_file): one node, one identity.
  GrpcServerOptions grpc;
  ClusterOptions cluster;
  // The cache groups served over HTTP (/v1/groups) and gRPC (packice.rpc.Groups).
  std::vector<GroupConfig> groups;
  CasNodeOptions cas;
  KvNodeOptions kv;
  QueueNodeOptions queue;
  // One thread serves best on a 2-core machine (docs/benchmarks.md); more cores, more threads.
  unsigned io_threads = 1;
  std::string log_level = "info";
};

// Where packiced keeps disk objects by default: /var/tmp/packice-<uid>.
std::string DefaultDataDir();
// The node's data directory: disk.dir, else DefaultDataDir().
std::string NodeDataDir(const DaemonOptions& options);

// The peer a node with `options` serves. Errors: kInvalidArgument (unknown store), and those of
// opening the data directory.
Result<std::shared_ptr<LocalPeer>> MakeNodePeer(const DaemonOptions& options);

// Runs the node until SIGTERM or SIGINT. Returns the process exit code; logs why on failure.
int RunDaemon(const DaemonOptions& options);

}  // namespace packice

#endif  // PACKICE_SERVER_DAEMON_H_
