// Cache groups: named read-through caches, as groupcache has them.
//
// A Group is a cache with a capacity in bytes, an eviction policy (LRU or LRU2) and a getter:
// the function that loads a key's value on a miss (from a database, a file, a computation).
// Concurrent misses of one key call the getter once (singleflight) and share its result; an
// error of the getter reaches every caller waiting for it and is not cached.
//
//   auto users = std::make_shared<Group>("users", 64 << 20,
//       [&](std::string_view id) -> Result<std::string> { return db.LoadUser(id); });
//   Result<CacheValue> v = users->Get("42");   // a hit hands out the shared bytes, no copy
//
// In a cluster, each key has one owner (the consistent-hash ring, src/cluster/ring.h). A group
// given GroupPeers sends a miss of a key another node owns to that node, which serves it from
// its cache or loads it (its own singleflight and getter); so one miss loads once in the whole
// cluster. The value fetched is not stored in the non-owner's cache (that would hold every key
// on every node), except in a small "mirror" with a short TTL for keys read on this node more
// often than a threshold. A request that arrived forwarded is always served locally, never
// forwarded again: two nodes whose rings disagree cannot pass a key back and forth.
//
// Thread safety: a Group is safe for concurrent use from multiple threads without external
// synchronization. GroupPeers and RemoteLoader implementations must be too.
#ifndef PACKICE_CACHE_H_
#define PACKICE_CACHE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "packice/clock.h"
#include "packice/status.h"
#include "packice/types.h"

namespace packice {

// A cached value: shared immutable bytes. A hit hands out one more reference, never a copy;
// the bytes stay valid while the caller holds it, even if the entry is evicted or replaced.
using CacheValue = std::shared_ptr<const std::string>;

// Loads the value of `key` on a miss. Errors are returned to the callers as they are (and not
// cached); kNotFound is the usual "no such key". May be called from any thread, concurrently
// for distinct keys; may call Get on its own group for other keys.
using CacheGetter = std::function<Result<std::string>(std::string_view key)>;

enum class CachePolicy {
  kLru,   // least recently used
  kLru2,  // two-level LRU: a key read once cannot push out keys read twice (scan resistant)
};

struct GroupOptions {
  CachePolicy policy = CachePolicy::kLru2;
  // Lock shards of the cache (rounded up to a power of two). Each holds an equal share of the
  // capacity; more shards contend less but make the largest storable entry smaller.
  uint32_t shards = 16;
  // TTL of loaded values and of Set without a TTL; 0 = none. An expired entry is a miss.
  Duration default_ttl{0};
  // How long Get waits for a load (local getter or the owner); then kTimeout. 0 = no bound.
  Duration load_timeout{10'000};
  // Loads running at once in this group, including ones whose callers gave up on them; past
  // it a miss of a key without a load gets kUnavailable. Bounds the threads a hanging getter
  // can hold.
  size_t max_loads = 64;
  // Largest value stored or loaded; larger ones are kInvalidArgument. Also bounded by one
  // shard's share of the capacity (less the key).
  uint64_t max_value_bytes = 1 << 20;
  uint64_t max_key_bytes = 4096;
  // Time source for TTLs and read rates; null = Clock::System().
  std::shared_ptr<Clock> clock;

  // The mirror of a non-owner (used only with peers): capacity (0 = capacity / 8), the TTL of
  // its entries, and the read rate (reads per second on this node, measured over
  // `rate_window`) above which a fetched key is mirrored. Four reads a second of one key make
  // four round trips a second: a one-second copy is cheaper (groupcache keeps a random tenth
  // of what it fetches instead).
  uint64_t mirror_capacity_bytes = 0;
  Duration mirror_ttl{1'000};
  double mirror_min_rate = 4;
  Duration rate_window{1'000};
};

// A request one node sends another for a key the receiver owns (by the sender's ring).
struct PeerRequest {
  std::string_view group;
  std::string_view key;
  // Forwards this request has taken (the sender sets 1). A receiver serves a request with
  // hops >= 1 locally, whatever its own ring says.
  uint32_t hops = 1;
  // The sender's ring fingerprint: a receiver whose ring differs counts a disagreement.
  uint64_t ring_epoch = 0;
};

// The way to one other node's groups. The cluster layer implements it over the network;
// InProcessLoader (src/services/cache/ring_peers.h) over groups of the same process.
class RemoteLoader {
 public:
  virtual ~RemoteLoader() = default;
  // The value of request.key in request.group on that node, from its cache or loaded there.
  // kUnavailable means the node could not be reached (the caller then loads locally); any
  // other error is the owner's answer (e.g. its getter's kNotFound) and is passed on.
  virtual Result<CacheValue> Fetch(const PeerRequest& request) = 0;
  // Stores / removes request.key on that node (Group::Set / Delete of a key it owns).
  virtual Status Store(const PeerRequest& request, std::string_view value,
                       std::optional<Duration> ttl) = 0;
  virtual Status Remove(const PeerRequest& request) = 0;
};

// The owner of a key other than this node, and how to reach it.
struct PeerPick {
  std::shared_ptr<RemoteLoader> loader;  // not null
  std::string node_id;
  uint64_t ring_epoch = 0;  // the ring the pick was made by
};

// Picks the owner of a key (groupcache's PeerPicker).
class GroupPeers {
 public:
  virtual ~GroupPeers() = default;
  // The owner of `key` if it is another node; nullopt if this node owns it or no owner is
  // known (then the key is loaded and cached locally).
  virtual std::optional<PeerPick> PickOwner(std::string_view key) = 0;
  // The fingerprint of the ring this node picks by (compared with PeerRequest::ring_epoch).
  virtual uint64_t ring_epoch() const = 0;
};

// Where a Get's value came from (for callers that report it, e.g. X-Packice-Cache).
enum class CacheSource {
  kHit,     // the main cache
  kMirror,  // the mirror of hot keys another node owns
  kMiss,    // loaded, fetched from the owner, or a load joined
};

// Counters since the group was made, and what it holds now.
struct GroupStats {
  uint64_t gets = 0;           // Get calls with a valid key
  uint64_t hits = 0;           // answered from the main cache
  uint64_t mirror_hits = 0;    // answered from the mirror
  uint64_t misses = 0;         // neither: a load, a fetch, or joined one (gets = hits +
                               // mirror_hits + misses)
  uint64_t loads = 0;          // getter calls
  uint64_t load_errors = 0;    // getter errors (and oversize values)
  uint64_t load_timeouts = 0;  // Gets that gave up waiting (kTimeout)
  uint64_t peer_fetches = 0;   // misses sent to the owner
  uint64_t peer_fetch_errors = 0;
  uint64_t peer_requests = 0;       // requests served for other nodes
  uint64_t ring_disagreements = 0;  // of those, sent by a node with another ring
  uint64_t evictions = 0;           // main-cache entries evicted for room
  uint64_t bytes = 0;               // main cache: charged bytes (key + value) held
  uint64_t items = 0;               // main cache: entries held (expired ones until touched)
  uint64_t capacity_bytes = 0;
  uint64_t mirror_bytes = 0;
  uint64_t mirror_items = 0;
  // Getter latency: the histogram's upper bounds in seconds, cumulative counts per bound then
  // +Inf (the last equals `loads`), and the sum.
  std::vector<double> load_latency_bounds;
  std::vector<uint64_t> load_latency_counts;
  double load_seconds_sum = 0;
};

class CacheTable;
class HotKeyTracker;
template <typename T>
class SingleFlight;

class Group {
 public:
  // REQUIRES: `getter` is callable. `capacity_bytes` bounds the main cache's charges (key
  // plus value bytes of each entry).
  Group(std::string name, uint64_t capacity_bytes, CacheGetter getter, GroupOptions options = {});
  // Waits for loads still running (ones whose callers timed out included).
  ~Group();
  Group(const Group&) = delete;
  Group& operator=(const Group&) = delete;

  const std::string& name() const { return name_; }

  // The value of `key`: from the cache, else from the owner or the getter. Errors:
  // kInvalidArgument (empty or oversize key; an oversize loaded value), kTimeout (the load took
  // longer than load_timeout), kUnavailable (max_loads loads running), or the getter's / the
  // owner's error.
  Result<CacheValue> Get(std::string_view key);
  // The same, also saying where the value came from (`*source` is set when a value is returned;
  // a hit costs nothing more).
  Result<CacheValue> Get(std::string_view key, CacheSource* source);

  // Stores `value` under `key` for `ttl` (nullopt: default_ttl; 0: none), replacing any
  // value. A key another node owns is stored there (and dropped from the local mirror).
  // Errors: kInvalidArgument (empty or oversize key or value), or the owner's error.
  Status Set(std::string_view key, std::string value, std::optional<Duration> ttl = std::nullopt);

  // Drops `key` from the cache and the mirror (OK if absent), and from the owner when that is
  // another node. Mirrors on other nodes expire on their own (mirror_ttl).
  Status Delete(std::string_view key);

  // A Get that never waits, for a caller on an event loop (the node's gRPC service): the value
  // when the cache or the mirror holds it, counted and reported as Get does; else nullptr, with
  // nothing counted (an invalid key included) — the caller then calls Get on a thread that may
  // wait, and Get counts the read.
  CacheValue GetCached(std::string_view key, CacheSource* source = nullptr);

  // Routes misses through `peers` from now on (null: every key is local).
  void SetPeers(std::shared_ptr<GroupPeers> peers);

  // The receiving side of RemoteLoader: serves locally, never forwards.
  Result<CacheValue> ServePeer(const PeerRequest& request);
  Status ServePeerStore(const PeerRequest& request, std::string value, std::optional<Duration> ttl);
  Status ServePeerRemove(const PeerRequest& request);
  // ServePeer when the cache holds the key (as GetCached: nullptr otherwise, nothing counted).
  CacheValue ServePeerCached(const PeerRequest& request);

  GroupStats Stats() const;

 private:
  struct Counters;
  Status CheckKey(std::string_view key) const;
  std::shared_ptr<GroupPeers> peers() const;
  Clock::TimePoint ExpiryFor(std::optional<Duration> ttl) const;
  // Counts a peer's request (and whether its ring is this node's).
  void CountPeerRequest(const PeerRequest& request);
  // Fetches from `pick`; an unreachable owner falls back to the getter, uncached.
  Result<CacheValue> FetchFromOwner(const std::string& key, const PeerPick& pick);
  // Calls the getter; stores the value in the main cache if `cache`.
  Result<CacheValue> LoadLocally(const std::string& key, bool cache);
  // Through the singleflight: flight key, the load, and the Get's bookkeeping of a timeout.
  Result<CacheValue> Flight(std::string flight_key, std::function<Result<CacheValue>()> load);
  Status StoreLocally(std::string_view key, std::string value, std::optional<Duration> ttl);

  const std::string name_;
  const CacheGetter getter_;
  const GroupOptions options_;
  const std::shared_ptr<Clock> clock_;
  std::unique_ptr<CacheTable> main_;
  std::unique_ptr<CacheTable> mirror_;
  std::unique_ptr<HotKeyTracker> rates_;
  std::unique_ptr<Counters> counters_;
  mutable std::mutex peers_mu_;
  std::shared_ptr<GroupPeers> peers_;  // guarded by peers_mu_
  // Last member: destroyed first, so loads still running finish while the rest is alive.
  std::unique_ptr<SingleFlight<CacheValue>> flight_;
};

}  // namespace packice

#endif  // PACKICE_CACHE_H_
