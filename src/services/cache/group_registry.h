// GroupRegistry: the cache groups a node serves, by name. The daemon creates them from its
// configuration ([groups.NAME] tables, --group flags); the gRPC service, the HTTP routes and the
// cluster layer find them here.
//
//   auto groups = std::make_shared<GroupRegistry>(metrics);
//   PACKICE_RETURN_IF_ERROR(groups->Add({.name = "users", .origin = "http://db:8000/u/{key}"}));
//   groups->SetPeers(ring_peers);           // the cluster layer: every group, and later ones
//   Result<std::shared_ptr<Group>> g = groups->Find("users");
//
// Thread safety: safe for concurrent use. Groups are only added, never removed, so a Group
// found stays valid while the caller holds it.
#ifndef PACKICE_SERVICES_CACHE_GROUP_REGISTRY_H_
#define PACKICE_SERVICES_CACHE_GROUP_REGISTRY_H_

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "packice/cache.h"
#include "packice/status.h"

namespace packice {

class MetricsRegistry;

// The largest max_value_bytes a group may have: a value travels in one message of the node's
// transports, and a gRPC message is at most 4 MiB (rpc::kMaxMessageBytes) with the key and
// envelope.
inline constexpr uint64_t kMaxGroupValueBytes = (4u << 20) - (64u << 10);
inline constexpr uint64_t kDefaultGroupCapacityBytes = 64u << 20;

// One group as configured.
struct GroupConfig {
  std::string name;  // [A-Za-z0-9_.-]{1,64}
  uint64_t capacity_bytes = kDefaultGroupCapacityBytes;
  CachePolicy policy = CachePolicy::kLru2;
  Duration ttl{0};  // of loaded values and of a Set without a TTL; 0: none
  // URL template of the origin (HttpOrigin); empty: no origin, a miss is kNotFound and values
  // come only from Set.
  std::string origin;
  Duration load_timeout{10'000};  // the Group's load timeout, and the origin's
  uint64_t max_value_bytes = 1u << 20;
};

// OK for a group name of 1 to 64 characters of A-Z a-z 0-9 _ . -; else kInvalidArgument.
Status ValidateGroupName(std::string_view name);
// Checks every field of `config` (name, sizes, the origin template). Errors: kInvalidArgument.
Status ValidateGroupConfig(const GroupConfig& config);
// "lru" or "lru2".
std::string_view PolicyName(CachePolicy policy);

// The uint64 fields of GroupStats by name, in one order, for the surfaces that print them
// (JSON, the CLI).
struct GroupStatField {
  std::string_view name;
  uint64_t GroupStats::*field;
};
std::span<const GroupStatField> GroupStatFields();

class GroupRegistry {
 public:
  // `metrics` (may be null) gets each group's series (group_metrics.h).
  explicit GroupRegistry(std::shared_ptr<MetricsRegistry> metrics = nullptr);
  ~GroupRegistry();
  GroupRegistry(const GroupRegistry&) = delete;
  GroupRegistry& operator=(const GroupRegistry&) = delete;

  // Creates a group from `config`, its getter an HttpOrigin of config.origin. Errors:
  // kInvalidArgument (ValidateGroupConfig), kAlreadyExists (the name is taken).
  Status Add(const GroupConfig& config);
  // Adds a group made elsewhere (an in-process getter); `config` describes it for listings
  // (its name must be the group's). Errors: as Add.
  Status Add(std::shared_ptr<Group> group, GroupConfig config);

  // The group named `name`. Errors: kInvalidArgument (not a valid group name), kNotFound.
  Result<std::shared_ptr<Group>> Find(std::string_view name) const;
  struct Entry {
    std::shared_ptr<Group> group;
    GroupConfig config;
  };
  // The group named `name` with its config. Errors: as Find.
  Result<Entry> FindEntry(std::string_view name) const;
  // Every group, by name.
  std::vector<Entry> List() const;
  size_t size() const;

  // Routes every group's misses through `peers` (null: every key local), and those of groups
  // added later. The cluster layer calls it with a RingPeers, once.
  void SetPeers(std::shared_ptr<GroupPeers> peers);

 private:
  std::shared_ptr<MetricsRegistry> metrics_;
  mutable std::mutex mu_;
  std::map<std::string, Entry, std::less<>> groups_;  // guarded by mu_
  std::shared_ptr<GroupPeers> peers_;                 // guarded by mu_
};

}  // namespace packice

#endif  // PACKICE_SERVICES_CACHE_GROUP_REGISTRY_H_
