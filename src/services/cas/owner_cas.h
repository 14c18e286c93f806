// OwnerCas: the remote tier of a cluster node's CasStore — each digest's owner on the
// consistent-hash ring (the ring ClusterPeer and the cache groups use, keyed by
// Digest::ToString()), reached through a Cas per member (the cluster layer gives REAPI
// clients, OpenGrpcCas, marked as forwarded so that the owner never asks its own remote).
//
// A digest this node owns, or any digest before the first Update (an empty ring), has no
// remote here: Check and Fetch are kNotFound, FindMissing calls it missing, Store does nothing.
// Other digests go to their owner's Cas, with its errors (kUnavailable while it is down). A
// FindMissing asks each owner once, for its digests. When the ring changes, blobs stay where
// they were stored: a new owner lacks the blobs of its arcs until they are stored again.
//
// Thread safety: safe for concurrent use; Update swaps the ring under the calls.
#ifndef PACKICE_SERVICES_CAS_OWNER_CAS_H_
#define PACKICE_SERVICES_CAS_OWNER_CAS_H_

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "cluster/ring.h"
#include "packice/cas.h"

namespace packice {

class OwnerCas final : public Cas {
 public:
  using Members = std::map<std::string, std::shared_ptr<Cas>, std::less<>>;

  // A new ring: this node is `self_id`, `members` the Cas of each other node (a node without
  // one is treated as this node: no remote).
  void Update(std::string self_id, Ring ring, Members members);

  Status Store(const Digest& digest, std::span<const std::byte> data) override;
  Result<uint64_t> Check(const Digest& digest) override;
  Result<std::vector<Digest>> FindMissing(std::span<const Digest> digests) override;
  Result<CasBlob> Fetch(const Digest& digest, BlobRange range) override;
  std::optional<std::string> LocalPath(const Digest&) override { return std::nullopt; }

 private:
  struct State {
    std::string self_id;
    Ring ring;
    Members members;
    // The owner's Cas of `digest`; nullptr when it is this node (or has none).
    Cas* OwnerOf(const Digest& digest) const;
  };
  std::shared_ptr<const State> state() const;

  mutable std::mutex mu_;
  std::shared_ptr<const State> state_ = std::make_shared<const State>();  // guarded by mu_
};

}  // namespace packice

#endif  // PACKICE_SERVICES_CAS_OWNER_CAS_H_
