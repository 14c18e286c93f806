#include "server/node_cluster.h"

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstdio>
#include <fstream>
#include <random>

#include "client/kv_client.h"
#include "core/io.h"
#include "packice/clock.h"
#include "server/node_kv.h"
#include "transport/grpc/cluster_node.h"
#include "transport/grpc/group_channel.h"
#include "transport/grpc/grpc_kv_channel.h"
#include "transport/grpc/grpc_queue_caller.h"
#include "transport/grpc/reapi/reapi_cas.h"

namespace packice {

Result<std::unique_ptr<NodeCluster>> NodeCluster::Create(const DaemonOptions& options,
                                                         std::shared_ptr<LocalPeer> local) {
  PACKICE_RETURN_IF_ERROR(cluster::ValidateNodeId(options.cluster.name));
  if (options.grpc.listen.empty()) {
    return InvalidArgument("--cluster needs --grpc HOST:PORT: the nodes talk to each other there");
  }
  if (options.cluster.etcd.empty()) return InvalidArgument("--cluster needs --etcd URL[,URL...]");
  cluster::EtcdOptions etcd;
  PACKICE_ASSIGN_OR_RETURN(etcd.endpoints, cluster::ParseEtcdEndpoints(options.cluster.etcd));
  PACKICE_ASSIGN_OR_RETURN(std::unique_ptr<cluster::EtcdClient> client,
                           cluster::EtcdClient::Create(etcd));
  return std::unique_ptr<NodeCluster>(
      new NodeCluster(options, std::move(local), std::move(client)));
}

NodeCluster::NodeCluster(const DaemonOptions& options, std::shared_ptr<LocalPeer> local,
                         std::shared_ptr<cluster::EtcdClient> etcd)
    : options_(options), local_(std::move(local)), etcd_(std::move(etcd)) {
  GrpcChannelOptions channel;
  channel.bearer_token = options_.http.bearer_token;
  // The nodes of a cluster share one certificate authority: the node's own certificate, when
  // it is self-signed, or the CA file it was given.
  channel.tls = !options_.http.tls_cert_file.empty();
  channel.ca_file = options_.http.tls_cert_file;
  ClusterPeerOptions cluster;
  cluster.self_id = "self";  // until Join knows the address
  cluster.copies = options_.memory;
  cluster.copies.capacity_bytes = options_.cluster.copy_capacity_bytes != 0
                                      ? options_.cluster.copy_capacity_bytes
                                      : std::max<uint64_t>(options_.memory.capacity_bytes / 4, 1);
  cluster.copies.pool_bytes = std::min(cluster.copies.pool_bytes, cluster.copies.capacity_bytes);
  cluster.copies.versions = nullptr;  // copies keep their owners' versions
  cluster.mirror_ttl = options_.cluster.mirror_ttl;
  cluster.mirror_min_rate = options_.cluster.mirror_min_rate;
  peer_ = ClusterPeer::Create(
      local_,
      [channel](const ClusterMember& m) -> Result<std::shared_ptr<ClusterNode>> {
        return NewGrpcClusterNode(m, channel);
      },
      std::move(cluster));
}

NodeCluster::~NodeCluster() { Leave(); }

namespace {

// The node id kept in the data directory: a node that restarts (on another port, say) is the
// same member, so the keys it holds on disk are still its own. Made once ("node-" and 16 hex
// digits) and written beside the objects.
Result<std::string> StoredNodeId(const std::string& dir) {
  const std::string path = dir + "/NODE_ID";
  if (Result<std::string> text = ReadSmallFile(path); text.ok()) {
    std::string id = *text;
    while (!id.empty() && (id.back() == '\n' || id.back() == '\r')) id.pop_back();
    PACKICE_RETURN_IF_ERROR(cluster::ValidateNodeId(id));
    return id;
  }
  std::random_device random;
  const uint64_t bits = (uint64_t{random()} << 32) | random();
  char id[32];
  std::snprintf(id, sizeof id, "node-%016llx", static_cast<unsigned long long>(bits));
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << id << "\n";
    if (!out.flush()) return InvalidArgument("cannot write " + tmp);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) return ErrnoError("rename " + tmp, errno);
  return std::string(id);
}

// A caller that dials `address` at its first call (the membership listener never waits for a
// node to answer), and again after a failed dial.
QueueCaller LazyGrpcQueueCaller(std::string address, GrpcChannelOptions options) {
  struct State {
    std::mutex mu;
    QueueCaller call;  // guarded by mu
  };
  auto state = std::make_shared<State>();
  return [state, address = std::move(address),
          options = std::move(options)](wire::QueueRequest req) -> Result<wire::QueueResponse> {
    QueueCaller call;
    {
      std::lock_guard<std::mutex> lock(state->mu);
      if (!state->call) {
        PACKICE_ASSIGN_OR_RETURN(state->call, NewGrpcQueueCaller(address, options));
      }
      call = state->call;
    }
    return call(std::move(req));
  };
}

}  // namespace

std::shared_ptr<KvStore> NodeCluster::ServeKv(std::shared_ptr<KvStore> local) {
  kv_ = std::make_shared<ClusterKvStore>(
      std::move(local),
      NewEtcdOwnerDirectory(etcd_, "/packice/" + options_.cluster.name + "/kv/ns"));
  return kv_;
}

std::shared_ptr<Queue> NodeCluster::ServeQueue(std::shared_ptr<Queue> local) {
  queue_ = std::make_shared<ClusterQueue>(
      std::move(local),
      NewEtcdOwnerDirectory(etcd_, "/packice/" + options_.cluster.name + "/queue/topics/"));
  return queue_;
}

Status NodeCluster::Join(uint16_t grpc_port, const std::string& http_url) {
  advertise_ = options_.cluster.advertise;
  if (advertise_.empty()) {
    std::string host = options_.grpc.listen.substr(0, options_.grpc.listen.rfind(':'));
    if (host.empty() || host == "0.0.0.0" || host == "[::]" || host == "::") {
      return InvalidArgument("--grpc " + options_.grpc.listen +
                             " listens on every address: say which one other nodes reach this "
                             "node at with --advertise HOST:PORT");
    }
    advertise_ = host + ":" + std::to_string(grpc_port);
  }
  node_id_ = options_.cluster.node_id;
  if (node_id_.empty() && (options_.store == "tiered" || options_.store == "disk")) {
    // A store of this node's own that survives a restart: the id survives it too. (A sharedfs
    // directory is every node's.)
    const std::string dir = NodeDataDir(options_);
    PACKICE_ASSIGN_OR_RETURN(node_id_, StoredNodeId(dir));
  }
  if (node_id_.empty()) node_id_ = advertise_;
  PACKICE_RETURN_IF_ERROR(cluster::ValidateNodeId(node_id_));
  peer_->SetSelf(node_id_);

  cluster::MembershipOptions m;
  m.cluster = options_.cluster.name;
  m.lease_ttl = options_.cluster.lease_ttl;
  m.self.node_id = node_id_;
  m.self.grpc_address = advertise_;
  if (const size_t at = http_url.find("://"); at != std::string::npos) {
    m.self.http_address = http_url.substr(at + 3);
  }
  m.self.capacity_bytes = local_->GetStats().capacity_bytes;
  m.self.start_time_ms = Clock::System()->UnixMillis();
  group_peers_ = std::make_shared<RingPeers>(node_id_);
  GrpcGroupOptions group_channel;
  group_channel.bearer_token = options_.http.bearer_token;
  group_channel.tls = !options_.http.tls_cert_file.empty();
  group_channel.ca_file = options_.http.tls_cert_file;
  std::weak_ptr<ClusterPeer> weak = peer_;
  std::weak_ptr<RingPeers> weak_groups = group_peers_;
  std::weak_ptr<OwnerCas> weak_owners = cas_owners_;
  GrpcCasOptions owner_cas;
  owner_cas.bearer_token = options_.http.bearer_token;
  owner_cas.ca_file = options_.http.tls_cert_file;
  owner_cas.forwarded = true;  // the owner answers from its own tiers
  const std::string cas_scheme = options_.http.tls_cert_file.empty() ? "grpc://" : "grpcs://";
  auto owner_clients = std::make_shared<std::map<std::string, std::shared_ptr<Cas>>>();
  // The listener runs on the membership's thread, one view at a time: the loaders it keeps
  // (one per member address, reused while the member stays) are its own.
  auto loaders = std::make_shared<std::map<std::string, std::shared_ptr<RemoteLoader>>>();
  // The KV's members: a client per member, marked forwarded (the owner answers itself).
  std::weak_ptr<ClusterKvStore> weak_kv = kv_;
  GrpcChannelOptions kv_channel;
  kv_channel.tls = !options_.http.tls_cert_file.empty();
  kv_channel.ca_file = options_.http.tls_cert_file;
  kv_channel.bearer_token = options_.http.bearer_token;
  kv_channel.forwarded = true;
  auto kv_clients = std::make_shared<std::map<std::string, std::shared_ptr<KvStore>>>();
  // The queue's members the same way, over the same channel options.
  std::weak_ptr<ClusterQueue> weak_queue = queue_;
  auto queue_clients = std::make_shared<std::map<std::string, std::shared_ptr<Queue>>>();
  auto listener = [weak, weak_groups, loaders, group_channel, weak_owners, owner_cas, cas_scheme,
                   owner_clients, weak_kv, kv_channel, kv_clients, weak_queue, queue_clients,
                   self = node_id_](const cluster::MembershipView& view) {
    std::shared_ptr<ClusterPeer> peer = weak.lock();
    std::shared_ptr<RingPeers> groups = weak_groups.lock();
    if (peer == nullptr || groups == nullptr) return;
    std::vector<ClusterMember> members;
    std::vector<std::string> ids;
    RingPeers::Loaders group_loaders;
    OwnerCas::Members cas_members;
    ClusterKvStore::Members kv_members;
    ClusterQueue::Members queue_members;
    for (const cluster::MemberRecord& r : view.members) {
      members.push_back({r.node_id, r.grpc_address});
      ids.push_back(r.node_id);
      if (r.node_id == self) continue;
      std::shared_ptr<RemoteLoader>& loader = (*loaders)[r.node_id + "@" + r.grpc_address];
      if (loader == nullptr) {
        auto made = NewGrpcGroupLoader(r.grpc_address, group_channel);
        if (made.ok()) loader = *made;
      }
      if (loader != nullptr) group_loaders.emplace(r.node_id, loader);
      std::shared_ptr<Cas>& cas = (*owner_clients)[r.node_id + "@" + r.grpc_address];
      if (cas == nullptr) {
        auto made = OpenGrpcCas(cas_scheme + r.grpc_address, owner_cas);
        if (made.ok()) cas = *made;
      }
      if (cas != nullptr) cas_members.emplace(r.node_id, cas);
      std::shared_ptr<KvStore>& kv = (*kv_clients)[r.node_id + "@" + r.grpc_address];
      if (kv == nullptr) {
        kv = NewKvClient([address = r.grpc_address, kv_channel] {
          return NewGrpcKvChannel(address, kv_channel);
        });
      }
      kv_members.emplace(r.node_id, kv);
      std::shared_ptr<Queue>& queue = (*queue_clients)[r.node_id + "@" + r.grpc_address];
      if (queue == nullptr) queue = NewWireQueue(LazyGrpcQueueCaller(r.grpc_address, kv_channel));
      queue_members.emplace(r.node_id, queue);
    }
    ids.push_back(self);
    peer->SetMembers(members);
    groups->Update(Ring(ids), std::move(group_loaders));
    if (std::shared_ptr<ClusterKvStore> kv = weak_kv.lock()) {
      kv->Update(self, Ring(ids), std::move(kv_members));
    }
    if (std::shared_ptr<ClusterQueue> queue = weak_queue.lock()) {
      queue->Update(self, Ring(ids), std::move(queue_members));
    }
    if (std::shared_ptr<OwnerCas> owners = weak_owners.lock()) {
      owners->Update(self, Ring(std::move(ids)), std::move(cas_members));
    }
    spdlog::info("event=membership node_id={} epoch={} members={} ring_epoch={:x}", self,
                 view.epoch, members.size(), peer->ring_epoch());
  };
  PACKICE_ASSIGN_OR_RETURN(membership_, cluster::Membership::Start(etcd_, m, listener));
  return Status::Ok();
}

void NodeCluster::Leave() {
  if (membership_ == nullptr) return;
  membership_->Stop();
  membership_.reset();
  spdlog::info("event=left_cluster node_id={}", node_id_);
}

void NodeCluster::RegisterMetrics(MetricsRegistry& registry) {
  registry.AddCollector([this](MetricsWriter& w) {
    if (membership_ != nullptr) membership_->WriteMetrics(w);
    const ClusterPeer::ClusterStats s = peer_->GetClusterStats();
    w.Family("packice_cluster_ring_nodes", "Nodes on this node's ring, itself included.",
             MetricType::kGauge);
    w.Sample("packice_cluster_ring_nodes", {}, s.members);
    // The fingerprint is a label: a 64-bit hash does not survive a sample's double.
    w.Family("packice_cluster_ring_info",
             "The ring's fingerprint (a hash of its membership): equal on nodes that agree on "
             "the owners of keys.",
             MetricType::kGauge);
    char fingerprint[17];
    std::snprintf(fingerprint, sizeof fingerprint, "%016llx",
                  static_cast<unsigned long long>(s.ring_epoch));
    w.Sample("packice_cluster_ring_info", {{"fingerprint", fingerprint}}, 1);
    const auto counter = [&](std::string_view name, std::string_view help, uint64_t v) {
      w.Family(name, help, MetricType::kCounter);
      w.Sample(name, {}, v);
    };
    counter("packice_cluster_remote_reads_total", "Reads of keys other nodes own.", s.remote_reads);
    counter("packice_cluster_fetches_total", "Objects streamed from their owners.", s.fetches);
    counter("packice_cluster_fetched_bytes_total", "Bytes streamed from owners.", s.fetched_bytes);
    counter("packice_cluster_fetch_errors_total", "Fetches from owners that failed.",
            s.fetch_errors);
    counter("packice_cluster_mirror_hits_total", "Remote reads served by a mirror here.",
            s.mirror_hits);
    counter("packice_cluster_mirrored_total", "Fetches kept as mirrors of hot keys.", s.mirrored);
    counter("packice_cluster_copy_evictions_total", "Copies dropped to make room.",
            s.copy_evictions);
    counter("packice_cluster_forwarded_writes_total",
            "Creates sealed on, and deletes sent to, other nodes.", s.forwarded_writes);
    counter("packice_cluster_invalidations_sent_total",
            "Keys whose copies other nodes were told to drop.", s.invalidations_sent);
    counter("packice_cluster_invalidations_dropped_total",
            "Invalidations not sent (the queue was full): those copies live out their TTL.",
            s.invalidations_dropped);
    counter("packice_cluster_invalidations_received_total",
            "Keys whose copies other nodes told this one to drop.", s.invalidations_received);
    w.Family("packice_cluster_copy_bytes", "Bytes of copies of other nodes' objects here.",
             MetricType::kGauge);
    w.Sample("packice_cluster_copy_bytes", {}, s.copy_bytes);
    w.Family("packice_cluster_mirrors", "Live mirrors of other nodes' hot keys here.",
             MetricType::kGauge);
    w.Sample("packice_cluster_mirrors", {}, s.mirrors);
  });
}

}  // namespace packice
