// packiced's part in a cluster: the ClusterPeer over the node's local peer, its membership in
// etcd, and the metrics of both. daemon.cc serves the ClusterPeer instead of the local peer
// when the node runs with --cluster.
#ifndef PACKICE_SERVER_NODE_CLUSTER_H_
#define PACKICE_SERVER_NODE_CLUSTER_H_

#include <memory>
#include <string>

#include "cluster/membership.h"
#include "core/metrics.h"
#include "peers/cluster_peer.h"
#include "server/daemon.h"
#include "services/cache/ring_peers.h"
#include "services/cas/owner_cas.h"
#include "services/kv/cluster_kv_store.h"
#include "services/queue/cluster_queue.h"

namespace packice {

class NodeCluster {
 public:
  // The ClusterPeer of a node with `options`, over `local`; it reaches other nodes' gRPC ports
  // with `token` and, when `tls`, with TLS trusting `ca_file`. Errors: kInvalidArgument (bad
  // cluster name or etcd endpoints).
  static Result<std::unique_ptr<NodeCluster>> Create(const DaemonOptions& options,
                                                     std::shared_ptr<LocalPeer> local);
  ~NodeCluster();  // Leave()

  const std::shared_ptr<ClusterPeer>& peer() const { return peer_; }
  // The cache groups' view of the same ring (after Join): a group key's owner loads it.
  const std::shared_ptr<RingPeers>& group_peers() const { return group_peers_; }
  // The CAS's remote tier in the cluster: each digest's owner on the same ring, reached over
  // REAPI (calls marked as forwarded); no remote for the digests this node owns, and none at
  // all until Join.
  const std::shared_ptr<OwnerCas>& cas_owners() const { return cas_owners_; }

  // The KV the node serves in the cluster (call before Join): a ClusterKvStore over `local`,
  // its namespace table in etcd under /packice/<cluster>/kv/ns/, its members set by Join.
  std::shared_ptr<KvStore> ServeKv(std::shared_ptr<KvStore> local);
  // The queue the node serves in the cluster (call before Join): a ClusterQueue over `local`,
  // its topic table in etcd under /packice/<cluster>/queue/topics/, its members set by Join.
  std::shared_ptr<Queue> ServeQueue(std::shared_ptr<Queue> local);

  // Joins once the gRPC port is bound at `grpc_port`: the advertised address and the node id
  // are settled, and the node registers in etcd (in the background: an unreachable etcd is
  // retried, and the node serves alone meanwhile). Errors: kInvalidArgument (no address to
  // advertise, a bad node id).
  Status Join(uint16_t grpc_port, const std::string& http_url);
  // Leaves the cluster at once (the etcd lease is revoked). Idempotent.
  void Leave();

  const std::string& node_id() const { return node_id_; }
  const std::string& advertise() const { return advertise_; }

  // packice_cluster_* metrics: the membership's state and the ClusterPeer's counters.
  void RegisterMetrics(MetricsRegistry& registry);

 private:
  NodeCluster(const DaemonOptions& options, std::shared_ptr<LocalPeer> local,
              std::shared_ptr<cluster::EtcdClient> etcd);

  DaemonOptions options_;
  std::shared_ptr<LocalPeer> local_;
  std::shared_ptr<cluster::EtcdClient> etcd_;
  std::shared_ptr<ClusterPeer> peer_;
  std::shared_ptr<RingPeers> group_peers_;
  std::shared_ptr<OwnerCas> cas_owners_ = std::make_shared<OwnerCas>();
  std::shared_ptr<ClusterKvStore> kv_;  // with ServeKv
  std::shared_ptr<ClusterQueue> queue_;  // with ServeQueue
  std::unique_ptr<cluster::Membership> membership_;
  std::string node_id_;
  std::string advertise_;
};

}  // namespace packice

#endif  // PACKICE_SERVER_NODE_CLUSTER_H_
