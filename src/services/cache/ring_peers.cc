#include "services/cache/ring_peers.h"

#include <utility>

namespace packice {

void RingPeers::Update(Ring ring, Loaders loaders) {
  auto next = std::make_shared<const State>(State{std::move(ring), std::move(loaders)});
  std::lock_guard<std::mutex> lock(mu_);
  state_ = std::move(next);
}

std::shared_ptr<const RingPeers::State> RingPeers::state() const {
  std::lock_guard<std::mutex> lock(mu_);
  return state_;
}

std::optional<PeerPick> RingPeers::PickOwner(std::string_view key) {
  std::shared_ptr<const State> s = state();
  std::optional<std::string_view> owner = s->ring.Owner(key);
  if (!owner || *owner == self_id_) return std::nullopt;
  auto it = s->loaders.find(*owner);
  if (it == s->loaders.end() || it->second == nullptr) return std::nullopt;
  return PeerPick{
      .loader = it->second, .node_id = std::string(*owner), .ring_epoch = s->ring.fingerprint()};
}

uint64_t RingPeers::ring_epoch() const { return state()->ring.fingerprint(); }

Result<std::shared_ptr<Group>> InProcessLoader::Target(const PeerRequest& request) const {
  std::shared_ptr<Group> g = target_.lock();
  if (!g) return Unavailable("the group is gone");
  if (g->name() != request.group) {
    return NotFound("no group '" + std::string(request.group) + "' there");
  }
  return g;
}

Result<CacheValue> InProcessLoader::Fetch(const PeerRequest& request) {
  PACKICE_ASSIGN_OR_RETURN(std::shared_ptr<Group> g, Target(request));
  return g->ServePeer(request);
}

Status InProcessLoader::Store(const PeerRequest& request, std::string_view value,
                              std::optional<Duration> ttl) {
  PACKICE_ASSIGN_OR_RETURN(std::shared_ptr<Group> g, Target(request));
  return g->ServePeerStore(request, std::string(value), ttl);
}

Status InProcessLoader::Remove(const PeerRequest& request) {
  PACKICE_ASSIGN_OR_RETURN(std::shared_ptr<Group> g, Target(request));
  return g->ServePeerRemove(request);
}

}  // namespace packice
