// PrefixPeer: one peer made of two, by key prefix. Keys under `prefix` go to `routed` with the
// prefix stripped ("cas/blake3:<hex>/<size>" is "blake3:<hex>/<size>" there); every other key
// goes to `fallback` as it is. The node serves its CAS on the object API this way: keys under
// "cas/" are blobs of the CAS (services/cas/cas_object_peer.h), the rest the node's objects.
//
// What it maps, so that a client sees one peer:
// - keys: ObjectInfo::key is always the client's key (the prefix put back on the routed peer's
//   keys). The key equal to the prefix names nothing (kInvalidArgument); a create with an empty
//   key goes to `fallback` with an id generated here (never one under the prefix).
// - leases: the two peers number their leases independently (both may hand out lease 7), so
//   this peer hands out lease ids of its own and keeps a table of which inner lease each one is.
//   A lease forgotten by its inner peer without a call here (it expired) is forgotten here once
//   its deadline passes (at the next Acquire, or ReapExpired): the table's deadline of a lease is
//   set from `clock` after the inner peer set its own, and never comes first.
// - sessions: a session here is one session in each peer; closing it closes both.
// - lists: a list whose prefix is under `prefix` is the routed peer's; one whose prefix is a
//   prefix of `prefix` (the empty one, "ca", ...) merges both in key order (keys under `prefix`
//   the fallback peer might still hold are skipped: they are unreachable); any other list is the
//   fallback's.
// - stats: the sums of both peers' (hits, misses and evictions too); tier_name is the
//   fallback's. Persist, ReapExpired and DrainCleaner run on both.
//
// Errors are the inner peers' as they are, plus kInvalidArgument for the key equal to `prefix`
// and kLeaseExpired for a lease this peer does not hold.
//
// Thread safety: safe for concurrent use, as the inner peers are.
#ifndef PACKICE_PEERS_PREFIX_PEER_H_
#define PACKICE_PEERS_PREFIX_PEER_H_

#include <memory>
#include <string>

#include "packice/clock.h"
#include "packice/local_peer.h"

namespace packice {

struct PrefixPeerOptions {
  // Keys that start with it go to the routed peer. REQUIRES: not empty.
  std::string prefix;
  // The inner peers' clock (lease deadlines; see above). nullptr: the system clock.
  std::shared_ptr<Clock> clock;
};

// REQUIRES: `fallback` and `routed` are not null and distinct.
std::shared_ptr<LocalPeer> NewPrefixPeer(std::shared_ptr<LocalPeer> fallback,
                                         std::shared_ptr<LocalPeer> routed,
                                         PrefixPeerOptions options);

}  // namespace packice

#endif  // PACKICE_PEERS_PREFIX_PEER_H_
