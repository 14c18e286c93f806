// Group: the read-through cache of include/packice/cache.h.
//
// A Get looks in the main cache, then (with peers) in the mirror, then goes through the
// singleflight. The flight's key says what the load does, so loads that must not wait for one
// another never share one:
//  - "L" + key: a local load (this node owns the key, or a peer asked for it). Local misses on
//    the owner and peers' requests share it: one getter call per key on the owner.
//  - "F" + key: a fetch from the owner. A peer's request never joins it. If it could, two
//    nodes whose rings disagree (each thinking the other owns the key) would each have their
//    peer's request wait for their own fetch: a wait cycle until the load timeout.
#include <chrono>
#include <utility>

#include "core/eviction.h"
#include "core/hot_keys.h"
#include "core/metrics.h"
#include "core/singleflight.h"
#include "core/striped_counter.h"
#include "packice/cache.h"
#include "services/cache/cache_table.h"

namespace packice {

struct Group::Counters {
  // Every Get with a valid key counts once in one of these three (gets is their sum); they are
  // bumped on every hit, by every thread, so striped.
  StripedCounter hits;
  StripedCounter mirror_hits;
  StripedCounter misses;
  std::atomic<uint64_t> loads{0};
  std::atomic<uint64_t> load_errors{0};
  std::atomic<uint64_t> load_timeouts{0};
  std::atomic<uint64_t> peer_fetches{0};
  std::atomic<uint64_t> peer_fetch_errors{0};
  std::atomic<uint64_t> peer_requests{0};
  std::atomic<uint64_t> ring_disagreements{0};
  const std::vector<double> latency_bounds = LatencyBuckets();
  Histogram load_latency{&latency_bounds};
};

namespace {

void Inc(std::atomic<uint64_t>& c) { c.fetch_add(1, std::memory_order_relaxed); }
void Inc(StripedCounter& c) { c.Inc(); }
uint64_t Load(const std::atomic<uint64_t>& c) { return c.load(std::memory_order_relaxed); }

EvictionKind KindOf(CachePolicy policy) {
  return policy == CachePolicy::kLru ? EvictionKind::kLru : EvictionKind::kLru2;
}

constexpr uint32_t kMirrorHitSample = 8;  // a power of two

// True for one call in kMirrorHitSample, at random (xorshift64 per thread).
bool SampleMirrorHit() {
  thread_local uint64_t state = 0x9E3779B97F4A7C15ull ^ reinterpret_cast<uintptr_t>(&state);
  state ^= state << 13;
  state ^= state >> 7;
  state ^= state << 17;
  return (state & (kMirrorHitSample - 1)) == 0;
}

std::string FlightKey(char kind, std::string_view key) {
  std::string k;
  k.reserve(key.size() + 1);
  k.push_back(kind);
  k.append(key);
  return k;
}

}  // namespace

Group::Group(std::string name, uint64_t capacity_bytes, CacheGetter getter, GroupOptions options)
    : name_(std::move(name)),
      getter_(std::move(getter)),
      options_(std::move(options)),
      clock_(options_.clock ? options_.clock : Clock::System()),
      main_(std::make_unique<CacheTable>(KindOf(options_.policy), capacity_bytes, options_.shards,
                                         clock_)),
      mirror_(std::make_unique<CacheTable>(
          // The mirror is plain LRU: its entries live one short TTL, there is nothing for a
          // second level to protect.
          EvictionKind::kLru,
          options_.mirror_capacity_bytes ? options_.mirror_capacity_bytes : capacity_bytes / 8,
          options_.shards, clock_)),
      rates_(std::make_unique<HotKeyTracker>(clock_, options_.rate_window)),
      counters_(std::make_unique<Counters>()),
      flight_(std::make_unique<SingleFlight<CacheValue>>(
          SingleFlight<CacheValue>::Options{.max_running = options_.max_loads})) {}

Group::~Group() { flight_->WaitIdle(); }

Status Group::CheckKey(std::string_view key) const {
  if (key.empty()) return InvalidArgument("empty cache key");
  if (key.size() > options_.max_key_bytes) {
    return InvalidArgument("cache key of " + std::to_string(key.size()) + " bytes (at most " +
                           std::to_string(options_.max_key_bytes) + ")");
  }
  return Status::Ok();
}

// The largest value storable under `key`: the option, and what fits in one shard's share.
static Status CheckValue(std::string_view key, uint64_t size, uint64_t max_value,
                         uint64_t max_charge) {
  if (size > max_value || key.size() + size > max_charge) {
    return InvalidArgument("cache value of " + std::to_string(size) + " bytes (at most " +
                           std::to_string(std::min(max_value, max_charge - key.size())) +
                           " with this key)");
  }
  return Status::Ok();
}

std::shared_ptr<GroupPeers> Group::peers() const {
  std::lock_guard<std::mutex> lock(peers_mu_);
  return peers_;
}

void Group::SetPeers(std::shared_ptr<GroupPeers> peers) {
  std::lock_guard<std::mutex> lock(peers_mu_);
  peers_ = std::move(peers);
}

Clock::TimePoint Group::ExpiryFor(std::optional<Duration> ttl) const {
  const Duration d = ttl.value_or(options_.default_ttl);
  return d.count() > 0 ? clock_->Now() + d : CacheTable::kNever;
}

Result<CacheValue> Group::Get(std::string_view key) { return Get(key, nullptr); }

Result<CacheValue> Group::Get(std::string_view key, CacheSource* source) {
  PACKICE_RETURN_IF_ERROR(CheckKey(key));
  if (CacheValue v = GetCached(key, source)) return v;
  if (source != nullptr) *source = CacheSource::kMiss;
  std::shared_ptr<GroupPeers> peers = this->peers();
  std::optional<PeerPick> pick;
  if (peers) {
    pick = peers->PickOwner(key);
    if (pick) rates_->Record(key);
  }
  Inc(counters_->misses);
  if (pick) {
    return Flight(FlightKey('F', key), [this, k = std::string(key), p = std::move(*pick)] {
      return FetchFromOwner(k, p);
    });
  }
  return Flight(FlightKey('L', key), [this, k = std::string(key)]() -> Result<CacheValue> {
    // A load that finished between this Get's lookup and its flight filled the cache.
    if (CacheValue v = main_->Lookup(k)) return v;
    return LoadLocally(k, /*cache=*/true);
  });
}

CacheValue Group::GetCached(std::string_view key, CacheSource* source) {
  if (!CheckKey(key).ok()) return nullptr;
  if (CacheValue v = main_->Lookup(key)) {
    Inc(counters_->hits);
    if (source != nullptr) *source = CacheSource::kHit;
    return v;
  }
  // Rates are of keys this node does not own: only those can be mirrored. Every read counts,
  // mirror hits included, so a key stays mirrored while it stays hot; a mirror hit counts as
  // one in kMirrorHitSample, drawn at random, worth kMirrorHitSample reads (the tracker's
  // clock read and four shared counters cost more than the rest of the hit, and a key whose
  // mirror hits matter is read often). A mirror hit skips the owner's pick (the ring's lock,
  // its lookup): the key had another owner when it was mirrored, and a mirror lives one short
  // TTL (and an invalidation drops it on every node), so a ring change that made this node the
  // owner serves the owner's value a moment longer.
  if (CacheValue v = mirror_->Lookup(key)) {
    if (SampleMirrorHit()) rates_->Record(key, kMirrorHitSample);
    Inc(counters_->mirror_hits);
    if (source != nullptr) *source = CacheSource::kMirror;
    return v;
  }
  return nullptr;
}

Result<CacheValue> Group::Flight(std::string flight_key, std::function<Result<CacheValue>()> load) {
  const auto timeout = std::chrono::duration_cast<std::chrono::nanoseconds>(options_.load_timeout);
  Result<CacheValue> r = flight_->Do(flight_key, std::move(load), timeout);
  if (!r.ok() && r.status().code() == StatusCode::kTimeout) Inc(counters_->load_timeouts);
  return r;
}

Result<CacheValue> Group::FetchFromOwner(const std::string& key, const PeerPick& pick) {
  Inc(counters_->peer_fetches);
  Result<CacheValue> r = pick.loader->Fetch(
      PeerRequest{.group = name_, .key = key, .hops = 1, .ring_epoch = pick.ring_epoch});
  if (!r.ok()) {
    Inc(counters_->peer_fetch_errors);
    // Only an owner that cannot be reached is replaced by the getter here, and the value is
    // not cached: the owner will be back (or the ring will change). Its other errors are its
    // answer.
    if (r.status().code() != StatusCode::kUnavailable) return r.status();
    return LoadLocally(key, /*cache=*/false);
  }
  if (*r == nullptr) return Internal("the owner of '" + key + "' returned no value");
  PACKICE_RETURN_IF_ERROR(
      CheckValue(key, (*r)->size(), options_.max_value_bytes, main_->max_charge()));
  if (key.size() + (*r)->size() <= mirror_->max_charge() &&
      rates_->Rate(key) >= options_.mirror_min_rate) {
    mirror_->Insert(key, *r, clock_->Now() + options_.mirror_ttl);
  }
  return r;
}

Result<CacheValue> Group::LoadLocally(const std::string& key, bool cache) {
  Inc(counters_->loads);
  const auto begin = std::chrono::steady_clock::now();
  Result<std::string> r = getter_(key);
  counters_->load_latency.Observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count());
  if (!r.ok()) {
    Inc(counters_->load_errors);
    return r.status();
  }
  if (Status s = CheckValue(key, r->size(), options_.max_value_bytes, main_->max_charge());
      !s.ok()) {
    Inc(counters_->load_errors);
    return Status(s.code(),
                  "the getter of group '" + name_ + "' returned a " + std::string(s.message()));
  }
  CacheValue v = std::make_shared<const std::string>(std::move(r).value());
  if (cache) main_->Insert(key, v, ExpiryFor(std::nullopt));
  return v;
}

Status Group::StoreLocally(std::string_view key, std::string value, std::optional<Duration> ttl) {
  PACKICE_RETURN_IF_ERROR(
      CheckValue(key, value.size(), options_.max_value_bytes, main_->max_charge()));
  main_->Insert(key, std::make_shared<const std::string>(std::move(value)), ExpiryFor(ttl));
  return Status::Ok();
}

Status Group::Set(std::string_view key, std::string value, std::optional<Duration> ttl) {
  PACKICE_RETURN_IF_ERROR(CheckKey(key));
  if (std::shared_ptr<GroupPeers> peers = this->peers()) {
    if (std::optional<PeerPick> pick = peers->PickOwner(key)) {
      PACKICE_RETURN_IF_ERROR(
          CheckValue(key, value.size(), options_.max_value_bytes, main_->max_charge()));
      mirror_->Erase(key);
      return pick->loader->Store(
          PeerRequest{.group = name_, .key = key, .hops = 1, .ring_epoch = pick->ring_epoch}, value,
          ttl);
    }
  }
  mirror_->Erase(key);  // mirrored while another node owned it
  return StoreLocally(key, std::move(value), ttl);
}

Status Group::Delete(std::string_view key) {
  PACKICE_RETURN_IF_ERROR(CheckKey(key));
  main_->Erase(key);
  mirror_->Erase(key);
  if (std::shared_ptr<GroupPeers> peers = this->peers()) {
    if (std::optional<PeerPick> pick = peers->PickOwner(key)) {
      return pick->loader->Remove(
          PeerRequest{.group = name_, .key = key, .hops = 1, .ring_epoch = pick->ring_epoch});
    }
  }
  return Status::Ok();
}

void Group::CountPeerRequest(const PeerRequest& request) {
  Inc(counters_->peer_requests);
  if (std::shared_ptr<GroupPeers> peers = this->peers();
      peers && peers->ring_epoch() != request.ring_epoch) {
    Inc(counters_->ring_disagreements);
  }
}

CacheValue Group::ServePeerCached(const PeerRequest& request) {
  if (!CheckKey(request.key).ok()) return nullptr;
  CacheValue v = main_->Lookup(request.key);
  if (v) CountPeerRequest(request);
  return v;
}

Result<CacheValue> Group::ServePeer(const PeerRequest& request) {
  PACKICE_RETURN_IF_ERROR(CheckKey(request.key));
  CountPeerRequest(request);
  if (CacheValue v = main_->Lookup(request.key)) return v;
  return Flight(FlightKey('L', request.key),
                [this, k = std::string(request.key)]() -> Result<CacheValue> {
                  if (CacheValue v = main_->Lookup(k)) return v;
                  return LoadLocally(k, /*cache=*/true);
                });
}

Status Group::ServePeerStore(const PeerRequest& request, std::string value,
                             std::optional<Duration> ttl) {
  PACKICE_RETURN_IF_ERROR(CheckKey(request.key));
  Inc(counters_->peer_requests);
  return StoreLocally(request.key, std::move(value), ttl);
}

Status Group::ServePeerRemove(const PeerRequest& request) {
  PACKICE_RETURN_IF_ERROR(CheckKey(request.key));
  Inc(counters_->peer_requests);
  main_->Erase(request.key);
  mirror_->Erase(request.key);
  return Status::Ok();
}

GroupStats Group::Stats() const {
  const Counters& c = *counters_;
  GroupStats s;
  s.hits = c.hits.value();
  s.mirror_hits = c.mirror_hits.value();
  s.misses = c.misses.value();
  s.gets = s.hits + s.mirror_hits + s.misses;
  s.loads = Load(c.loads);
  s.load_errors = Load(c.load_errors);
  s.load_timeouts = Load(c.load_timeouts);
  s.peer_fetches = Load(c.peer_fetches);
  s.peer_fetch_errors = Load(c.peer_fetch_errors);
  s.peer_requests = Load(c.peer_requests);
  s.ring_disagreements = Load(c.ring_disagreements);
  const EvictorStats main = main_->Stats();
  s.evictions = main.evictions;
  s.bytes = main.bytes;
  s.items = main.entries;
  s.capacity_bytes = main.capacity_bytes;
  const EvictorStats mirror = mirror_->Stats();
  s.mirror_bytes = mirror.bytes;
  s.mirror_items = mirror.entries;
  s.load_latency_bounds = c.latency_bounds;
  s.load_latency_counts = c.load_latency.CumulativeCounts();
  s.load_seconds_sum = c.load_latency.sum();
  return s;
}

}  // namespace packice
