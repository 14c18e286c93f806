// RingPeers and InProcessLoader: the peer hook of cache groups wired by a Ring.
//
// RingPeers picks a key's owner on a consistent-hash ring and hands out the RemoteLoader of
// that node; the cluster layer feeds it the membership (Update) and loaders that speak to the
// other nodes over the network. InProcessLoader is a RemoteLoader that reaches a Group of the
// same process directly: with it, several groups in one process form a cluster without a
// network (tests, and an embedded multi-shard cache).
//
// Thread safety: both are safe for concurrent use.
#ifndef PACKICE_SERVICES_CACHE_RING_PEERS_H_
#define PACKICE_SERVICES_CACHE_RING_PEERS_H_

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "cluster/ring.h"
#include "packice/cache.h"

namespace packice {

class RingPeers final : public GroupPeers {
 public:
  using Loaders = std::map<std::string, std::shared_ptr<RemoteLoader>, std::less<>>;

  // This node is `self_id`; until Update, the ring is empty and every key is local.
  explicit RingPeers(std::string self_id) : self_id_(std::move(self_id)) {}

  // Replaces the ring and the loaders of the other nodes (a membership change). A key whose
  // owner has no loader here is served locally.
  void Update(Ring ring, Loaders loaders);

  std::optional<PeerPick> PickOwner(std::string_view key) override;
  uint64_t ring_epoch() const override;

 private:
  struct State {
    Ring ring;
    Loaders loaders;
  };
  std::shared_ptr<const State> state() const;

  const std::string self_id_;
  mutable std::mutex mu_;
  std::shared_ptr<const State> state_ = std::make_shared<const State>();  // guarded by mu_
};

class InProcessLoader final : public RemoteLoader {
 public:
  // Reaches `target`; once it is destroyed, every call is kUnavailable (a node gone).
  explicit InProcessLoader(std::weak_ptr<Group> target) : target_(std::move(target)) {}

  Result<CacheValue> Fetch(const PeerRequest& request) override;
  Status Store(const PeerRequest& request, std::string_view value,
               std::optional<Duration> ttl) override;
  Status Remove(const PeerRequest& request) override;

 private:
  Result<std::shared_ptr<Group>> Target(const PeerRequest& request) const;

  const std::weak_ptr<Group> target_;
};

}  // namespace packice

#endif  // PACKICE_SERVICES_CACHE_RING_PEERS_H_
