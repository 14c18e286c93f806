#include "packice/memory_peer.h"

#include "backends/memory/memory_store.h"
#include "peers/store_peer.h"

namespace packice {

std::shared_ptr<MemoryPeer> MemoryPeer::Create(MemoryPeerOptions options) {
  auto store = std::make_unique<MemoryStore>(MemoryStoreOptions{
      options.capacity_bytes, options.small_object_bytes, options.pool_bytes,
      options.background_threads, options.huge_pages ? HugePageMode::kAuto : HugePageMode::kOff});
  auto peer = std::make_shared<StorePeer<MemoryPeer>>(
      std::move(store),
      LeasePolicy{options.default_lease_ttl, options.default_object_ttl, options.max_lease_ttl,
                  options.background_threads, options.clock, options.versions});
  // A memory store recovers nothing, so starting cannot fail.
  peer->Start().IgnoreError();
  return peer;
}

}  // namespace packice
