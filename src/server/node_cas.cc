#include "server/node_cas.h"

#include <spdlog/spdlog.h>

#include "packice/file_peer.h"
#include "peers/prefix_peer.h"
#include "services/cas/cas_object_peer.h"
#include "transport/grpc/reapi/reapi_cas.h"

namespace packice {
namespace {

// Action results are small (a few KiB each): a gigabyte holds hundreds of thousands.
constexpr uint64_t kActionCacheBytes = 1ull << 30;

void RegisterCasMetrics(MetricsRegistry& registry, std::weak_ptr<CasStore> weak) {
  registry.AddCollector([weak](MetricsWriter& w) {
    std::shared_ptr<CasStore> cas = weak.lock();
    if (cas == nullptr) return;
    const CasStats s = cas->GetCasStats();
    w.Family("packice_cas_reads_total", "CAS reads, by the tier that served them.",
             MetricType::kCounter);
    w.Sample("packice_cas_reads_total", {{"tier", "memory"}}, s.memory_hits);
    w.Sample("packice_cas_reads_total", {{"tier", "local"}}, s.local_hits);
    w.Sample("packice_cas_reads_total", {{"tier", "remote"}}, s.remote_hits);
    w.Sample("packice_cas_reads_total", {{"tier", "none"}}, s.misses);
    auto counter = [&w](const char* name, const char* help, uint64_t v) {
      w.Family(name, help, MetricType::kCounter);
      w.Sample(name, {}, v);
    };
    auto gauge = [&w](const char* name, const char* help, uint64_t v) {
      w.Family(name, help, MetricType::kGauge);
      w.Sample(name, {}, v);
    };
    counter("packice_cas_stored_total", "Blobs written to the local tier.", s.stored);
    counter("packice_cas_stored_bytes_total", "Bytes of blobs written to the local tier.",
            s.stored_bytes);
    counter("packice_cas_already_stored_total", "Stores of blobs that were there already.",
            s.already_stored);
    counter("packice_cas_digest_mismatches_total",
            "Stores refused because the content was not the digest.", s.mismatches);
    counter("packice_cas_evictions_total", "Local blobs evicted to make room.", s.evictions);
    gauge("packice_cas_memory_bytes", "Bytes of blobs in the CAS memory tier.", s.memory_bytes);
    gauge("packice_cas_local_bytes", "Bytes of blobs in the CAS local tier.", s.local_bytes);
    gauge("packice_cas_local_blobs", "Blobs in the CAS local tier.", s.local_blobs);
    counter("packice_cas_remote_errors_total", "Calls to the CAS remote tier that failed.",
            s.remote_errors);
    gauge("packice_cas_remote_up",
          "0 while the CAS remote tier is skipped after it could not be reached, else 1.",
          s.remote_up ? 1 : 0);
  });
}

// "host:port" names this node's own gRPC port: `listen`'s, or a loopback name of the same
// port when it listens on every address. (The hop marker keeps any other self-reference from
// looping; this catches the plain mistake at start.)
bool IsOwnPort(const std::string& target, const std::string& listen) {
  if (listen.empty()) return false;
  if (target == listen) return true;
  const size_t t = target.rfind(':'), l = listen.rfind(':');
  if (t == std::string::npos || l == std::string::npos) return false;
  if (target.substr(t) != listen.substr(l)) return false;
  const std::string host = target.substr(0, t), bound = listen.substr(0, l);
  const bool wildcard = bound.empty() || bound == "0.0.0.0" || bound == "[::]";
  const bool loopback = host == "localhost" || host == "127.0.0.1" || host == "[::1]";
  return wildcard && loopback;
}

// The remote tier of `options`' CAS: nullptr for none.
Result<std::shared_ptr<Cas>> OpenRemoteTier(const DaemonOptions& options,
                                            std::shared_ptr<Cas> cluster_remote) {
  const std::string& url = options.cas.remote;
  if (url == "none") return std::shared_ptr<Cas>();
  if (url.empty()) {
    if (cluster_remote != nullptr) spdlog::info("event=cas_remote mode=owner_on_ring");
    return cluster_remote;
  }
  PACKICE_ASSIGN_OR_RETURN(GrpcCasTarget target, ParseGrpcCasUrl(url));
  if (IsOwnPort(target.target, options.grpc.listen) ||
      (!options.cluster.advertise.empty() && target.target == options.cluster.advertise)) {
    return InvalidArgument("--cas-remote " + url + " is this node's own gRPC port");
  }
  GrpcCasOptions o;
  o.bearer_token =
      options.cas.remote_token.empty() ? options.http.bearer_token : options.cas.remote_token;
  o.ca_file = options.cas.remote_ca_file;
  o.forwarded = true;  // the remote answers from its own tiers: no loops
  PACKICE_ASSIGN_OR_RETURN(std::shared_ptr<Cas> remote, OpenGrpcCas(url, o));
  spdlog::info("event=cas_remote mode=url url={}", url);
  return remote;
}

}  // namespace

std::string NodeCasDir(const DaemonOptions& options) {
  if (!options.cas.enabled) return "";
  if (!options.cas.dir.empty()) return options.cas.dir;
  // --store memory: nothing of the node's touches the disk; sharedfs: the data directory is
  // other nodes' too, and a CAS directory is one node's.
  if (options.store == "memory" || options.store == "sharedfs") return "";
  return NodeDataDir(options) + "/cas";
}

Result<std::unique_ptr<NodeCas>> OpenNodeCas(const DaemonOptions& options, MetricsRegistry& metrics,
                                             std::shared_ptr<Cas> cluster_remote) {
  const std::string dir = NodeCasDir(options);
  if (dir.empty()) return std::unique_ptr<NodeCas>();
  CasStoreOptions o;
  PACKICE_ASSIGN_OR_RETURN(o.remote, OpenRemoteTier(options, std::move(cluster_remote)));
  o.dir = dir;
  o.local_capacity_bytes = options.cas.capacity_bytes;
  o.memory_capacity_bytes = options.cas.memory_bytes;
  o.memory_max_blob_bytes = options.cas.memory_max_blob_bytes;
  o.memory_ttl = options.cas.memory_ttl;
  o.memory_idle_ttl = options.cas.memory_idle_ttl;
  o.sync = options.disk.sync;
  auto node = std::make_unique<NodeCas>();
  node->dir = dir;
  PACKICE_ASSIGN_OR_RETURN(node->store, CasStore::Open(std::move(o)));
  FilePeerOptions ac;
  ac.dir = dir + "/ac";
  ac.capacity_bytes = kActionCacheBytes;
  ac.sync = options.disk.sync;
  PACKICE_ASSIGN_OR_RETURN(std::shared_ptr<FilePeer> ac_peer, FilePeer::Open(std::move(ac)));
  node->action_peer = ac_peer;
  node->action_cache = std::make_shared<ActionCache>(std::move(ac_peer));
  node->tokens = std::make_shared<TransportTokens>();
  RegisterCasMetrics(metrics, node->store);
  return node;
}

std::shared_ptr<LocalPeer> ServedObjectPeer(std::shared_ptr<LocalPeer> peer, const NodeCas* cas) {
  if (cas == nullptr) return peer;
  return NewPrefixPeer(std::move(peer), NewCasObjectPeer(cas->store),
                       PrefixPeerOptions{std::string(kCasKeyPrefix), nullptr});
}

}  // namespace packice
