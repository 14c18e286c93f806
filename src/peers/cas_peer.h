// CasPeer: content-addressed blobs over any local peer stack (a memory peer, a LocalCasStore
// peer, a TieredPeer of both).
//
// A key is a digest's canonical text ("blake3:<hex>/<size>", Digest::ToString). A create must
// be of the digest's size and name no metadata or TTL (kInvalidArgument). A seal hashes the
// blob's content through a view of it before the inner peer seals it: content that is not the
// digest's is kDigestMismatch, and the blob is discarded (nothing is stored, the lease ends).
// A seal of a blob the inner peer holds already (a concurrent store of the same bytes) keeps
// the stored one and succeeds with its info: storing is idempotent. Reads, stats, lists and
// deletes pass through; the empty blob of each algorithm is always there.
//
// Thread safety: safe for concurrent use, as the inner peer is.
#ifndef PACKICE_PEERS_CAS_PEER_H_
#define PACKICE_PEERS_CAS_PEER_H_

#include <memory>

#include "backends/cas/local_cas_store.h"
#include "packice/cas.h"
#include "packice/local_peer.h"
#include "peers/store_peer.h"

namespace packice {

// REQUIRES: `inner` is not used by anything else for CAS keys.
std::shared_ptr<LocalPeer> NewCasPeer(std::shared_ptr<LocalPeer> inner);

// A peer over a LocalCasStore in `store.dir` (its blobs recovered), with `policy`'s leases.
// It does not verify content: put a CasPeer over it. Errors: those of LocalCasStore::Open.
// `*store_out`, when given, points at the store (owned by the peer) for its paths.
Result<std::shared_ptr<LocalPeer>> OpenLocalCasPeer(LocalCasStoreOptions store, LeasePolicy policy,
                                                    LocalCasStore** store_out = nullptr);

}  // namespace packice

#endif  // PACKICE_PEERS_CAS_PEER_H_
