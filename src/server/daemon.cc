#include "server/daemon.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <chrono>
#include <csignal>
#include <thread>
#include <vector>

#include "core/huge_pages.h"
#include "core/metrics.h"
#include "packice/client.h"
#include "packice/version_sequence.h"
#include "server/node_cas.h"
#include "server/node_cluster.h"
#include "server/node_kv.h"
#include "server/node_metrics.h"
#include "server/node_queue.h"
#include "transport/grpc/cas_negotiation_service.h"
#include "transport/grpc/cluster_service.h"
#include "transport/grpc/group_service.h"
#include "transport/grpc/kv_service.h"
#include "transport/grpc/object_service.h"
#include "transport/grpc/queue_service.h"
#include "transport/grpc/reapi/reapi_service.h"

namespace packice {

std::string DefaultDataDir() { return "/var/tmp/packice-" + std::to_string(getuid()); }

std::string NodeDataDir(const DaemonOptions& options) {
  return options.disk.dir.empty() ? DefaultDataDir() : options.disk.dir;
}

Result<std::shared_ptr<LocalPeer>> MakeNodePeer(const DaemonOptions& options) {
  MemoryPeerOptions memory = options.memory;
  if (options.store == "memory") {
    // Nothing is stored, so nothing remembers the versions handed out: they start from the
    // time (in microseconds), and an ETag from before a restart never names a new object.
    if (!memory.versions) {
      memory.versions = std::make_shared<VersionSequence>(
          static_cast<uint64_t>(Clock::System()->UnixMillis()) * 1000);
    }
    return std::shared_ptr<LocalPeer>(MemoryPeer::Create(memory));
  }
  FilePeerOptions disk = options.disk;
  if (disk.dir.empty()) disk.dir = DefaultDataDir();
  disk.default_lease_ttl = options.memory.default_lease_ttl;
  disk.default_object_ttl = options.memory.default_object_ttl;
  disk.max_lease_ttl = options.memory.max_lease_ttl;
  if (options.store == "sharedfs") {
    SharedFSPeerOptions shared = options.sharedfs;
    shared.dir = disk.dir;
    shared.default_lease_ttl = disk.default_lease_ttl;
    shared.default_object_ttl = disk.default_object_ttl;
    shared.max_lease_ttl = disk.max_lease_ttl;
    PACKICE_ASSIGN_OR_RETURN(std::shared_ptr<SharedFSPeer> peer, SharedFSPeer::Open(shared));
    return std::shared_ptr<LocalPeer>(std::move(peer));
  }
  if (options.store == "disk") {
    PACKICE_ASSIGN_OR_RETURN(std::shared_ptr<FilePeer> peer, FilePeer::Open(disk));
    return std::shared_ptr<LocalPeer>(std::move(peer));
  }
  if (options.store != "tiered") {
    return InvalidArgument("--store must be tiered, memory, disk or sharedfs, not '" +
                           options.store + "'");
  }
  // One version sequence for both tiers, durable in the data directory: an object keeps its
  // version (and ETag) when it moves, and no version repeats after a restart.
  if (!disk.versions) {
    PACKICE_ASSIGN_OR_RETURN(disk.versions, VersionSequence::OpenDurable(disk.dir + "/VERSION"));
  }
  memory.versions = disk.versions;
  PACKICE_ASSIGN_OR_RETURN(std::shared_ptr<FilePeer> cold, FilePeer::Open(disk));
  PACKICE_ASSIGN_OR_RETURN(
      std::shared_ptr<TieredPeer> tiered,
      TieredPeer::Create(MemoryPeer::Create(memory), std::move(cold), options.tiered));
  return std::shared_ptr<LocalPeer>(std::move(tiered));
}

namespace {

std::atomic<bool> g_stop_now{false};
extern "C" void OnSignalWhilePersisting(int) { g_stop_now.store(true); }

// A clean stop keeps what only memory holds (LocalPeer::Persist), logging progress; a second
// SIGTERM or SIGINT stops it at once (what is not written yet stays unwritten).
void PersistBeforeStop(LocalPeer& peer) {
  struct sigaction sa {};
  sa.sa_handler = OnSignalWhilePersisting;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  const auto start = std::chrono::steady_clock::now();
  const LocalPeer::Stats before = peer.GetStats();
  LocalPeer::PersistReport r =
      peer.Persist([] { return g_stop_now.load(); },
                   [&](const LocalPeer::PersistReport& p) {
                     spdlog::info("event=persist_progress written={} bytes={} of_objects={}",
                                  p.objects, p.bytes, before.objects);
                   });
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - start)
                      .count();
  if (r.objects + r.durable + r.failed + r.left == 0) return;  // nothing volatile
  auto level = r.failed + r.left > 0 ? spdlog::level::warn : spdlog::level::info;
  spdlog::log(level,
              "event=persisted written={} bytes={} already_durable={} failed={} not_written={} "
              "reason={} ms={}",
              r.objects, r.bytes, r.durable, r.failed, r.left,
              r.cancelled ? "second_signal" : (r.full ? "disk_full" : "-"), ms);
}

// Says once at start whether large objects get 2 MiB pages, and if not, how to enable them.
void LogHugePages(const MemoryPeerOptions& memory) {
  if (!memory.huge_pages) {
    spdlog::info("event=huge_pages state=off reason=configured");
    return;
  }
  const HugePageSupport s = ProbeHugePages();
  if (s.hugetlb_free > 0) {
    spdlog::info("event=huge_pages state=on kind=hugetlb free_pages={} then=thp:{}", s.hugetlb_free,
                 s.shmem_thp ? "on" : "off");
  } else if (s.shmem_thp) {
    spdlog::info("event=huge_pages state=on kind=thp shmem_enabled={}", s.shmem_enabled);
  } else {
    spdlog::warn(
        "event=huge_pages state=unavailable shmem_enabled={} hugetlb_free_pages=0 "
        "effect=\"objects of 2 MiB or more use 4 KiB pages: mapping them costs more than "
        "copying\" enable=\"{}\"",
        s.shmem_enabled.empty() ? "-" : s.shmem_enabled, s.how_to_enable);
  }
}

// REAPI (Bazel's remote cache) and the seed's negotiation service over the node's CAS.
void AddCasServices(GrpcServer& grpc, const NodeCas& cas, const DaemonOptions& options) {
  rpc::ReapiOptions reapi;
  reapi.bearer_token = options.http.bearer_token;
  reapi.uploads.staging_dir = cas.dir + "/tmp";    // on the blobs' file system
  reapi.forwarded_cas = cas.store->local_tiers();  // other nodes' remote tier: no loops
  for (auto& s : rpc::NewReapiServices(cas.store, cas.action_cache, std::move(reapi))) {
    grpc.AddService(std::move(s));
  }
  rpc::CasNegotiationOptions negotiation;
  negotiation.bearer_token = options.http.bearer_token;
  const std::string& listen = options.grpc.listen;
  if (!listen.ends_with(":0")) negotiation.transport_address = listen;  // else unknown yet
  grpc.AddService(rpc::NewCasNegotiationService(cas.store, cas.tokens, negotiation));
}

}  // namespace

int RunDaemon(const DaemonOptions& options) {
  auto level = spdlog::level::from_str(options.log_level);
  if (level == spdlog::level::off && options.log_level != "off") {
    spdlog::error("event=bad_flag flag=--log-level value=\"{}\"", options.log_level);
    return 2;
  }
  spdlog::set_level(level);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e%z level=%l %v");

  // A peer that closes mid-response must cost its connection, not the node: sendfile(2) has no
  // MSG_NOSIGNAL.
  std::signal(SIGPIPE, SIG_IGN);

  if (options.store != "disk" && options.store != "sharedfs") LogHugePages(options.memory);
  boost::asio::io_context io;
  auto made = MakeNodePeer(options);
  if (!made.ok()) {
    spdlog::error("event=start_failed store={} error=\"{}\"", options.store,
                  made.status().ToString());
    return 1;
  }
  std::shared_ptr<LocalPeer> local = *made;
  // What the node serves: its local peer, or in a cluster the ClusterPeer over it.
  std::shared_ptr<LocalPeer> peer = local;
  std::unique_ptr<NodeCluster> cluster;
  if (!options.cluster.name.empty()) {
    auto c = NodeCluster::Create(options, local);
    if (!c.ok()) {
      spdlog::error("event=start_failed part=cluster error=\"{}\"", c.status().ToString());
      return 1;
    }
    cluster = *std::move(c);
    peer = cluster->peer();
  }

  auto metrics = std::make_shared<MetricsRegistry>();
  RegisterPeerMetrics(*metrics, local);
  if (cluster) cluster->RegisterMetrics(*metrics);
  auto groups = std::make_shared<GroupRegistry>(metrics);
  std::string group_names;
  for (const GroupConfig& g : options.groups) {
    if (Status s = groups->Add(g); !s.ok()) {
      spdlog::error("event=start_failed group={} error=\"{}\"", g.name, s.ToString());
      return 1;
    }
    group_names += (group_names.empty() ? "" : ",") + g.name;
  }
  Result<std::unique_ptr<NodeCas>> opened_cas =
      OpenNodeCas(options, *metrics, cluster ? cluster->cas_owners() : nullptr);
  if (!opened_cas.ok()) {
    spdlog::error("event=start_failed part=cas dir={} error=\"{}\"", NodeCasDir(options),
                  opened_cas.status().ToString());
    return 1;
  }
  std::unique_ptr<NodeCas> cas = *std::move(opened_cas);
  // The CAS's blobs are objects too, under "cas/": mapped with no copy over the socket.
  peer = ServedObjectPeer(std::move(peer), cas.get());

  Result<std::shared_ptr<KvStore>> opened_kv = OpenNodeKv(options, *metrics);
  if (!opened_kv.ok()) {
    spdlog::error("event=start_failed part=kv dir={} error=\"{}\"", NodeKvDir(options),
                  opened_kv.status().ToString());
    return 1;
  }
  // The node's own store, and what it serves: in a cluster, the ClusterKvStore over it (any
  // node an entry, each namespace on its owner).
  std::shared_ptr<KvStore> local_kv = *std::move(opened_kv);
  std::shared_ptr<KvStore> kv = local_kv;
  if (cluster && kv) kv = cluster->ServeKv(local_kv);

  Result<std::shared_ptr<Queue>> opened_queue = OpenNodeQueue(options, *metrics, local);
  if (!opened_queue.ok()) {
    spdlog::error("event=start_failed part=queue dir={} error=\"{}\"", NodeQueueDir(options),
                  opened_queue.status().ToString());
    return 1;
  }
  // As the KV: in a cluster the node serves the ClusterQueue over its own (each bucket on its
  // owner, any node an entry).
  std::shared_ptr<Queue> local_queue = *std::move(opened_queue);
  std::shared_ptr<Queue> queue = local_queue;
  if (cluster && queue) queue = cluster->ServeQueue(local_queue);
  const std::string queue_dir = NodeQueueDir(options);

  UdsServerOptions uds;
  uds.path = options.socket_path.empty() ? DefaultSocketPath() : options.socket_path;
  uds.limits = options.limits;
  uds.kv = kv;
  uds.kv_threads = options.kv.threads;
  uds.queue = queue;
  UdsServer server(io, peer, uds);
  if (Status s = server.Start(); !s.ok()) {
    spdlog::error("event=start_failed transport=uds error=\"{}\"", s.ToString());
    return 1;
  }
  std::unique_ptr<HttpServer> http;
  std::string http_url = "-";
  if (!options.http.listen.empty()) {
    HttpServerOptions http_options = options.http;
    http_options.groups = groups;
    if (cas) {
      http_options.cas = cas->store;
      http_options.action_cache = cas->action_peer;
    }
    http_options.kv = kv;  // /v1/kv; null (no KV on this node): 404
    http_options.kv_threads = options.kv.threads;
    http_options.kv_max_value_bytes = KvOptions{}.max_value_bytes;  // OpenNodeKv's
    http_options.queue = queue;  // /v1/queue; null (no queue on this node): 404
    http = std::make_unique<HttpServer>(io, peer, http_options, metrics);
    if (Status s = http->Start(); !s.ok()) {
      spdlog::error("event=start_failed transport=http error=\"{}\"", s.ToString());
      return 1;
    }
    bool tls = !options.http.tls_cert_file.empty();
    std::string host = options.http.listen.substr(0, options.http.listen.rfind(':'));
    if (host.empty()) host = "0.0.0.0";
    http_url =
        std::string(tls ? "https://" : "http://") + host + ":" + std::to_string(http->port());
  }

  std::unique_ptr<GrpcServer> grpc;
  std::shared_ptr<rpc::QueueService> grpc_queue;
  std::string grpc_url = "-";
  if (!options.grpc.listen.empty()) {
    GrpcServerOptions grpc_options = options.grpc;
    grpc_options.tls_cert_file = options.http.tls_cert_file;
    grpc_options.tls_key_file = options.http.tls_key_file;
    grpc = std::make_unique<GrpcServer>(grpc_options);
    rpc::ObjectServiceOptions objects;
    objects.bearer_token = options.http.bearer_token;
    objects.inline_max_bytes = options.limits.inline_max_bytes;
    objects.forwarded_peer = local;  // what other nodes forward is this node's own
    grpc->AddService(std::make_shared<rpc::ObjectService>(peer, objects));
    if (cluster) {
      grpc->AddService(
          std::make_shared<rpc::ClusterService>(cluster->peer(), options.http.bearer_token));
    }
    grpc->AddService(std::make_shared<rpc::GroupService>(
        groups, rpc::GroupServiceOptions{objects.bearer_token}));
    if (cas) AddCasServices(*grpc, *cas, options);
    if (kv) {
      grpc->AddService(std::make_shared<rpc::KvService>(
          kv, rpc::KvServiceOptions{objects.bearer_token, local_kv}));
    }
    if (queue) {
      grpc_queue = std::make_shared<rpc::QueueService>(
          queue, rpc::QueueServiceOptions{objects.bearer_token,
                                          static_cast<int>(options.kv.threads), local_queue});
      grpc->AddService(grpc_queue);
    }
    if (Status s = grpc->Start(); !s.ok()) {
      spdlog::error("event=start_failed transport=grpc error=\"{}\"", s.ToString());
      return 1;
    }
    bool tls = !grpc_options.tls_cert_file.empty();
    std::string host = options.grpc.listen.substr(0, options.grpc.listen.rfind(':'));
    if (host.empty()) host = "0.0.0.0";
    grpc_url =
        std::string(tls ? "grpcs://" : "grpc://") + host + ":" + std::to_string(grpc->port());
  }

  std::string cluster_log = "-";
  if (cluster) {
    if (Status s = cluster->Join(grpc->port(), http_url); !s.ok()) {
      spdlog::error("event=start_failed part=cluster error=\"{}\"", s.ToString());
      return 1;
    }
    cluster_log = options.cluster.name + " node_id=" + cluster->node_id() +
                  " advertise=" + cluster->advertise();
    groups->SetPeers(cluster->group_peers());  // a key's owner loads it, once in the cluster
  }

  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    spdlog::info("event=shutdown signal={}", sig);
    io.stop();  // the server stops below, once no io thread can be inside it
  });

  spdlog::info(
      "event=ready pid={} url=uds://{} http_url={} grpc_url={} cluster={} auth={} store={} "
      "memory_capacity_bytes={} data_dir={} disk_capacity_bytes={} write_through={} "
      "io_threads={} groups={} cas_dir={} kv_dir={} queue_dir={}",
      getpid(), uds.path, http_url, grpc_url, cluster_log,
      options.http.bearer_token.empty() ? "none" : "bearer", options.store,
      options.memory.capacity_bytes, options.store == "memory" ? "-" : NodeDataDir(options),
      options.store == "memory" ? 0 : options.disk.capacity_bytes,
      options.store == "tiered" && options.tiered.write_through, options.io_threads,
      group_names.empty() ? "-" : group_names, cas ? cas->dir : "-", kv ? NodeKvDir(options) : "-",
      !queue ? "-" : (queue_dir.empty() ? "memory" : queue_dir));
  std::vector<std::thread> threads;
  for (unsigned i = 1; i < options.io_threads; ++i) threads.emplace_back([&io] { io.run(); });
  io.run();
  for (auto& t : threads) t.join();
  if (cluster) cluster->Leave();  // the others stop sending this node keys at once
  server.Stop();  // stops accepting and removes the socket; connections close with `io`
  if (http) http->Stop();
  if (grpc_queue) grpc_queue->Stop();  // parked reads finish: the server's Stop waits for them
  if (grpc) grpc->Stop();              // cancels open streams; their sessions close
  signals.clear();
  PersistBeforeStop(*local);
  LocalPeer::Stats st = local->GetStats();
  spdlog::info("event=stopped objects={} used_bytes={}", st.objects, st.used_bytes);
  return 0;
}

}  // namespace packice
