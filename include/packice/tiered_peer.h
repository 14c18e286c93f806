// TieredPeer: a hot peer (memory) in front of a cold peer (disk), composed from two LocalPeers.
//
//  - Writes land in the hot peer. When it is over its high watermark, the least valuable
//    objects (LRU or LRU2) are copied to the cold peer in the background and then dropped from
//    hot. A reader of a hot object keeps its bytes: dropping only unbinds the key.
//  - A get that misses hot is served by cold (a mapping of the file, no copy). After
//    `promote_after_hits` cold hits the object is copied back to hot, asynchronously; the cold
//    copy stays, so the object stays durable.
//  - When hot has no room even after demoting, a create goes to cold; when neither has room,
//    it fails with kOutOfCapacity.
//  - Object TTLs carry across tiers (a demoted copy expires when the original would have).
//
// Durability, three choices (docs/architecture.md compares them):
//  - cache (the default): an object lives only in memory until it is demoted. Persist(), which
//    packiced calls on a clean stop, writes what only memory holds to cold, so a restart
//    serves it again; kill -9 loses what was only in memory.
//  - write_through: a seal returns once cold holds a durable copy too; reads are still served
//    from memory, and kill -9 loses nothing acknowledged.
//  - the disk peer alone (packiced --store disk): every object is a file, read from the page
//    cache.
// An object keeps its version (and so its ETag) when it moves between the tiers, provided both
// tiers draw versions from one VersionSequence (packiced's do).
//
// Thread safety: safe for concurrent use.
#ifndef PACKICE_TIERED_PEER_H_
#define PACKICE_TIERED_PEER_H_

#include <memory>
#include <string>

#include "packice/clock.h"
#include "packice/local_peer.h"

namespace packice {

struct TieredPeerOptions {
  // Demote when hot holds more than high_watermark of its capacity, down to low_watermark.
  double high_watermark = 0.9;
  double low_watermark = 0.75;
  // Copy an object back to hot after this many cold hits; 0 never promotes.
  uint32_t promote_after_hits = 2;
  // "lru" or "lru2": how demotion victims are chosen.
  std::string policy = "lru2";
  // A seal returns only once cold holds a durable copy as well (see above).
  bool write_through = false;
  // A background thread demotes and promotes; tests turn it off and call Demote().
  bool background_threads = true;
  // TTLs of moved copies are computed with this clock; nullptr = the system clock.
  std::shared_ptr<Clock> clock;
};

class TieredPeer : public LocalPeer {
 public:
  // REQUIRES: hot and cold are distinct, not shared with other users of their keys.
  // Errors: kInvalidArgument (bad watermarks or policy).
  static Result<std::shared_ptr<TieredPeer>> Create(std::shared_ptr<LocalPeer> hot,
                                                    std::shared_ptr<LocalPeer> cold,
                                                    TieredPeerOptions options);

  struct TierStats {
    uint64_t demoted_objects = 0;
    uint64_t demoted_bytes = 0;
    uint64_t promoted_objects = 0;
    uint64_t hot_hits = 0;
    uint64_t cold_hits = 0;
    uint64_t misses = 0;
    // Clients' leases this peer maps to a lease in a tier. One whose inner lease expired
    // without a release is forgotten at the next ReapExpired (the background thread's too).
    uint64_t client_leases = 0;
  };
  virtual TierStats GetTierStats() = 0;
  // Demotes until hot is under its low watermark (if it is over the high one, or `force`).
  // Returns the bytes moved. The background thread calls it.
  virtual Result<uint64_t> Demote(bool force = false) = 0;
  // Runs pending promotions now (tests).
  virtual void RunPromotions() = 0;
  virtual LocalPeer& hot() = 0;
  virtual LocalPeer& cold() = 0;
};

}  // namespace packice

#endif  // PACKICE_TIERED_PEER_H_
