// Membership: this node's record in etcd, under a lease it keeps alive, and the cluster's
// member set as the watch of the nodes' prefix shows it. docs/cluster.md describes the keys and
// the record.
//
//   MembershipOptions options;
//   options.cluster = "prod";
//   options.self.node_id = "node-a";
//   options.self.grpc_address = "10.0.0.1:7070";
//   ASSIGN_OR_RETURN(auto membership,
//                    Membership::Start(client, options, [](const MembershipView& view) {
//                      ring.Rebuild(view.members);   // the full member list, every time
//                    }));
//   ...
//   membership->Stop();  // the record disappears at once
//
// When etcd cannot be reached the member set stays as it was last seen (a node that loses etcd
// keeps serving with the last ring it knew) and state() says disconnected; the membership
// retries with capped, jittered exponential backoff and, when etcd is back, rejoins: a new
// lease if the old one ran out, the record put again, and the watch resumed (or the prefix
// listed again if etcd compacted what it missed).
//
// Thread safety: safe for concurrent use. The listener runs on the membership's watch thread,
// one call at a time, in epoch order; it may call view() and state() but not Stop().
#ifndef PACKICE_CLUSTER_MEMBERSHIP_H_
#define PACKICE_CLUSTER_MEMBERSHIP_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "cluster/etcd_client.h"
#include "packice/status.h"

namespace packice {
class MetricsWriter;
}

namespace packice::cluster {

// Longest node id and cluster name, in bytes.
inline constexpr size_t kMaxNodeIdBytes = 128;

// Node ids and cluster names are 1..128 bytes of [A-Za-z0-9._:-], not "." or "..": they are
// one segment of an etcd key and of log lines. Errors: kInvalidArgument.
Status ValidateNodeId(std::string_view id);

// "/packice/<cluster>/nodes/" and "/packice/<cluster>/nodes/<node_id>".
std::string NodesPrefix(std::string_view cluster);
std::string NodeKey(std::string_view cluster, std::string_view node_id);

// What a node publishes about itself.
struct MemberRecord {
  std::string node_id;
  std::string grpc_address;  // host:port of its gRPC service
  std::string http_address;  // host:port of its HTTP service; empty when it has none
  uint64_t capacity_bytes = 0;
  int64_t start_time_ms = 0;  // Unix milliseconds when the node started

  friend bool operator==(const MemberRecord&, const MemberRecord&) = default;
};

// The record as stored in etcd: a JSON object (docs/cluster.md).
std::string MemberRecordToJson(const MemberRecord& record);
// Parses a record; `node_id` must match the id in the key it was stored under. Errors:
// kInvalidArgument for what is not such a JSON object.
Result<MemberRecord> MemberRecordFromJson(std::string_view json, std::string_view node_id);

// The member set as of one change.
struct MembershipView {
  // Counts the changes this process saw, from 1 for the first view: a strictly increasing
  // local number, not the same across nodes.
  uint64_t epoch = 0;
  std::vector<MemberRecord> members;  // in node id order, this node included once it is in etcd
  int64_t revision = 0;               // etcd's revision the view reflects
};

using MembershipListener = std::function<void(const MembershipView&)>;

struct MembershipState {
  bool connected = false;   // the lease is renewed and the watch is established
  uint64_t reconnects = 0;  // times it rejoined after it had been connected
  std::string last_error;   // the latest failure ("" if none yet)
  int64_t lease = 0;        // the current lease (0 while it has none)
  uint64_t epoch = 0;
  size_t members = 0;
};

struct MembershipOptions {
  // The cluster's name: the nodes register under NodesPrefix(cluster).
  std::string cluster = "default";
  // This node; node_id must pass ValidateNodeId.
  MemberRecord self;
  // TTL of the lease the record lives under: how long a node that died stays listed. etcd
  // raises TTLs below its minimum (1.5 election timeouts, 2 s with its defaults).
  std::chrono::seconds lease_ttl{10};
  // Retry delays after a failed join: exponential from `retry_initial` up to `retry_max`,
  // jittered.
  std::chrono::milliseconds retry_initial{200};
  std::chrono::milliseconds retry_max{5000};
};

class Membership {
 public:
  // Starts joining in the background and returns at once; an unreachable etcd is not an error
  // (state() says disconnected and it keeps trying). `listener` (may be empty) gets every new
  // view. `client` is shared with the caller. Errors: kInvalidArgument for a bad node id or
  // cluster name, or a TTL or retry delay <= 0.
  static Result<std::unique_ptr<Membership>> Start(std::shared_ptr<EtcdClient> client,
                                                   MembershipOptions options,
                                                   MembershipListener listener);
  ~Membership();  // Stop()
  Membership(const Membership&) = delete;
  Membership& operator=(const Membership&) = delete;

  // Leaves the cluster: revokes the lease, so that the record disappears at once (the revoke
  // is tried for at most the client's call timeout per endpoint), and stops the threads; no
  // listener call runs or follows once it returns. Idempotent.
  void Stop();
  // Stops like a crashed process would: no revoke, the record stays until its lease expires.
  // For tests, and for a node that wants its keys to outlive a quick restart.
  void Abandon();

  // The latest view (epoch 0 and no members before the first listing).
  MembershipView view() const;
  MembershipState state() const;
  // Writes packice_cluster_* gauges and counters (connected, members, epoch, reconnects).
  void WriteMetrics(MetricsWriter& writer) const;

 private:
  Membership(std::shared_ptr<EtcdClient> client, MembershipOptions options,
             MembershipListener listener);
  void Shutdown(bool revoke);
  void SessionLoop();
  Status Join();
  void OnWatch(const EtcdWatchUpdate& update);
  void UpdateConnected();

  const std::shared_ptr<EtcdClient> client_;
  const MembershipOptions options_;
  const MembershipListener listener_;
  const std::string prefix_;
  const std::string key_;
  const std::string record_json_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;                            // guarded by mu_
  bool lease_lost_ = false;                      // guarded by mu_
  bool connected_ = false;                       // guarded by mu_
  bool ever_connected_ = false;                  // guarded by mu_
  uint64_t reconnects_ = 0;                      // guarded by mu_
  std::string last_error_;                       // guarded by mu_
  std::map<std::string, MemberRecord> members_;  // guarded by mu_; by node id
  MembershipView view_;                          // guarded by mu_
  std::unique_ptr<EtcdKeepAlive> keepalive_;     // guarded by mu_
  std::unique_ptr<EtcdWatch> watch_;             // set before the session starts
  std::thread session_;
};

}  // namespace packice::cluster

#endif  // PACKICE_CLUSTER_MEMBERSHIP_H_
