// CasObjectPeer: a CasStore seen as a peer, so that the object API (leases, mapped views, TTLs
// of leases, sessions) reaches its blobs. The node serves it under the key prefix "cas/"
// (peers/prefix_peer.h): the object "cas/blake3:<hex>/<size>" is that blob.
//
// - Keys are digests' canonical text (Digest::ToString); any other key is kInvalidArgument.
// - A read Acquire leases the local tier's blob: one only the remote (or memory) tier holds is
//   fetched into the local tier first, so a client on this machine maps the blob's file with no
//   copy. The empty blob of each algorithm is always there.
// - A create is of the digest's size, with no metadata and no TTL (kInvalidArgument), on the
//   local tier (room made by evicting the least recently used blobs); its Seal hashes the bytes:
//   content that is not the digest is kDigestMismatch and nothing is stored. A seal of a blob
//   stored meanwhile succeeds (storing is idempotent).
// - Stat reports a blob of any tier (one not on the local tier with the tier "remote": a read
//   fetches it); List lists the local tier; Delete is kPermissionDenied (blobs leave by
//   eviction).
//
// Thread safety: safe for concurrent use.
#ifndef PACKICE_SERVICES_CAS_CAS_OBJECT_PEER_H_
#define PACKICE_SERVICES_CAS_CAS_OBJECT_PEER_H_

#include <memory>

#include "packice/local_peer.h"
#include "services/cas/cas_store.h"

namespace packice {

// The key prefix the node serves its CAS under on the object API.
inline constexpr std::string_view kCasKeyPrefix = "cas/";

// REQUIRES: `store` is not null.
std::shared_ptr<LocalPeer> NewCasObjectPeer(std::shared_ptr<CasStore> store);

}  // namespace packice

#endif  // PACKICE_SERVICES_CAS_CAS_OBJECT_PEER_H_
