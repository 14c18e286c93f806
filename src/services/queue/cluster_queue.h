// ClusterQueue: the queue of a cluster node — a topic's buckets placed on the nodes, and every
// node an entry that routes writers and readers to them (docs/queue.md, "In a cluster").
//
// Each bucket b of topic T lives whole on one node, its owner, as the local topic "T@b" (one
// bucket) of that node's queue: its records, its groups' committed positions and its schema
// versions. The owners are chosen when the topic is created — bucket b goes to the node the
// consistent-hash ring of that moment names for "T@b" — and recorded in the topic table (an
// OwnerDirectory: etcd, in packiced) as the owners' node ids in bucket order, so a node
// joining or leaving later moves no bucket. Any node is an entry: a call on bucket b runs on
// its owner (the local queue here, or the owner's queue over gRPC, marked forwarded so that
// the owner answers from its local queue). A call that finds no part at the owner is a stale
// route: the entry reads the table again and, if the owners changed, tries once more.
//
// A bucket whose owner is down is unavailable (kUnavailable naming the owner) until the owner
// is back: buckets are not replicated. The other buckets of the topic are served.
//
// Waiting: Subscribe runs `notify` after every append to the topic's local buckets, and every
// poll_interval while the topic has a bucket elsewhere (a read parked on this node retries
// then: a remote append reaches it within one interval).
//
// Thread safety: safe for concurrent use; Update may run concurrently with calls.
#ifndef PACKICE_SERVICES_QUEUE_CLUSTER_QUEUE_H_
#define PACKICE_SERVICES_QUEUE_CLUSTER_QUEUE_H_

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "cluster/owner_directory.h"
#include "cluster/ring.h"
#include "core/periodic_thread.h"
#include "packice/queue.h"

namespace packice {

class ClusterQueue final : public Queue {
 public:
  using Members = std::map<std::string, std::shared_ptr<Queue>, std::less<>>;

  ClusterQueue(std::shared_ptr<Queue> local, std::shared_ptr<OwnerDirectory> directory,
               std::chrono::milliseconds poll_interval = std::chrono::milliseconds(50));
  ~ClusterQueue() override;

  // A new membership: this node is `self_id`, `ring` places new topics' buckets, `members`
  // reach the other nodes (calls to them must be marked forwarded).
  void Update(std::string self_id, Ring ring, Members members);

  // The local topic that holds bucket `bucket` of `topic`.
  static std::string PartName(std::string_view topic, uint32_t bucket);

  // Places the buckets (kUnavailable before the node is on a ring) and creates each on its
  // owner. A create that an unreachable owner cut short is finished by the next create of the
  // same topic with the same owners. Topic names here have no '@'.
  Status CreateTopic(std::string_view topic, const TopicOptions& options) override;
  Status DeleteTopic(std::string_view topic) override;
  // The topics of the table, with the options of a part this node could reach (topics none of
  // whose parts could be reached are left out).
  Result<std::vector<TopicInfo>> ListTopics() override;
  Result<std::vector<BucketInfo>> Buckets(std::string_view topic) override;
  Result<uint64_t> Append(std::string_view topic, uint32_t bucket,
                          std::span<const QueueRecord> records) override;
  // One call per position, on its owner, in order, until `limit` or `max_bytes`; waits (by
  // polling every poll_interval) only when nothing is there.
  Result<std::vector<BucketRecords>> Read(std::string_view topic,
                                          std::span<const QueuePosition> from, size_t limit,
                                          std::chrono::milliseconds wait,
                                          size_t max_bytes = 4u << 20) override;
  Status Commit(std::string_view topic, std::string_view group, uint32_t bucket,
                uint64_t offset) override;
  // This node's own buckets.
  Status EnforceRetention() override;
  Result<std::optional<uint64_t>> Committed(std::string_view topic, std::string_view group,
                                            uint32_t bucket) override;
  Result<std::vector<GroupPosition>> Groups(std::string_view topic) override;
  Result<QueueSubscription> Subscribe(std::string_view topic,
                                      std::function<void()> notify) override;
  // On every bucket's owner; the version the first one returns.
  Result<uint32_t> SetSchema(std::string_view topic, const QueueSchema& schema) override;
  Result<std::vector<QueueSchema>> Schemas(std::string_view topic) override;

  struct Stats {
    uint64_t local_calls = 0;
    uint64_t forwarded_calls = 0;
    uint64_t stale_routes = 0;  // calls that found the table out of date
  };
  Stats GetStats() const;

 private:
  struct Remote;  // the subscriptions polled for remote buckets

  // The owners of `topic`'s buckets, from the cached table (read again on a miss, or when
  // `refresh`). Errors: kNotFound (no such topic), kDataLoss (a record that does not parse).
  Result<std::vector<std::string>> Owners(std::string_view topic, bool refresh);
  // The queue of node `owner`. Errors: kUnavailable (not a member now).
  Result<std::shared_ptr<Queue>> QueueOf(const std::string& owner);
  // Runs `call` on the owner of bucket `bucket` of `topic` with the part's name; on a stale
  // route (kNotFound) reads the table again and runs it once more if the owners changed.
  Status OnBucket(std::string_view topic, uint32_t bucket,
                  const std::function<Status(Queue&, const std::string&)>& call);
  void PollRemote();

  const std::shared_ptr<Queue> local_;
  const std::shared_ptr<OwnerDirectory> directory_;
  mutable std::mutex mu_;
  std::string self_;  // guarded by mu_, as ring_ and members_
  Ring ring_;
  Members members_;
  mutable std::mutex stats_mu_;
  Stats stats_;
  std::shared_ptr<Remote> remote_;
  std::unique_ptr<PeriodicThread> poller_;  // last: stops first
};

}  // namespace packice

#endif  // PACKICE_SERVICES_QUEUE_CLUSTER_QUEUE_H_
