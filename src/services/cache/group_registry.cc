#include "services/cache/group_registry.h"

#include "core/metrics.h"
#include "services/cache/group_metrics.h"
#include "services/cache/http_origin.h"

namespace packice {
namespace {

constexpr size_t kMaxGroupName = 64;

constexpr GroupStatField kStatFields[] = {
    {"gets", &GroupStats::gets},
    {"hits", &GroupStats::hits},
    {"mirror_hits", &GroupStats::mirror_hits},
    {"misses", &GroupStats::misses},
    {"loads", &GroupStats::loads},
    {"load_errors", &GroupStats::load_errors},
    {"load_timeouts", &GroupStats::load_timeouts},
    {"peer_fetches", &GroupStats::peer_fetches},
    {"peer_fetch_errors", &GroupStats::peer_fetch_errors},
    {"peer_requests", &GroupStats::peer_requests},
    {"ring_disagreements", &GroupStats::ring_disagreements},
    {"evictions", &GroupStats::evictions},
    {"bytes", &GroupStats::bytes},
    {"items", &GroupStats::items},
    {"capacity_bytes", &GroupStats::capacity_bytes},
    {"mirror_bytes", &GroupStats::mirror_bytes},
    {"mirror_items", &GroupStats::mirror_items},
};

// A miss of a group without an origin.
CacheGetter NoOrigin(std::string name) {
  return [name = std::move(name)](std::string_view key) -> Result<std::string> {
    return NotFound("no value for '" + std::string(key.substr(0, 200)) + "' in group '" + name +
                    "' (it has no origin: values come from Set)");
  };
}

}  // namespace

Status ValidateGroupName(std::string_view name) {
  bool ok = !name.empty() && name.size() <= kMaxGroupName;
  for (char c : name) {
    ok = ok && ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                c == '_' || c == '.' || c == '-');
  }
  if (!ok) {
    std::string shown(name.substr(0, kMaxGroupName + 1));
    return InvalidArgument("bad cache group name '" + shown +
                           "': 1 to 64 characters of A-Z a-z 0-9 _ . -");
  }
  return Status::Ok();
}

Status ValidateGroupConfig(const GroupConfig& c) {
  PACKICE_RETURN_IF_ERROR(ValidateGroupName(c.name));
  const std::string g = "group '" + c.name + "': ";
  if (c.capacity_bytes == 0) return InvalidArgument(g + "capacity must be more than 0");
  if (c.max_value_bytes == 0 || c.max_value_bytes > kMaxGroupValueBytes) {
    return InvalidArgument(g + "max_value must be from 1 to " +
                           std::to_string(kMaxGroupValueBytes) + " bytes");
  }
  if (c.load_timeout.count() <= 0) return InvalidArgument(g + "load_timeout must be more than 0");
  if (c.ttl.count() < 0) return InvalidArgument(g + "ttl must not be negative");
  if (!c.origin.empty()) {
    if (Status s = ValidateOriginTemplate(c.origin); !s.ok()) {
      return InvalidArgument(g + std::string(s.message()));
    }
  }
  return Status::Ok();
}

std::string_view PolicyName(CachePolicy policy) {
  return policy == CachePolicy::kLru ? "lru" : "lru2";
}

std::span<const GroupStatField> GroupStatFields() { return kStatFields; }

GroupRegistry::GroupRegistry(std::shared_ptr<MetricsRegistry> metrics)
    : metrics_(std::move(metrics)) {}

GroupRegistry::~GroupRegistry() = default;

Status GroupRegistry::Add(const GroupConfig& config) {
  PACKICE_RETURN_IF_ERROR(ValidateGroupConfig(config));
  CacheGetter getter;
  if (config.origin.empty()) {
    getter = NoOrigin(config.name);
  } else {
    HttpOriginOptions o;
    o.timeout = config.load_timeout;
    o.max_value_bytes = config.max_value_bytes;
    PACKICE_ASSIGN_OR_RETURN(std::shared_ptr<HttpOrigin> origin,
                             HttpOrigin::Create(config.origin, o));
    getter = origin->Getter();
  }
  GroupOptions options;
  options.policy = config.policy;
  options.default_ttl = config.ttl;
  options.load_timeout = config.load_timeout;
  options.max_value_bytes = config.max_value_bytes;
  // Each shard holds an equal share of the capacity, and an entry must fit in one: fewer
  // shards for a small group, so that max_value is storable as configured.
  while (options.shards > 1 &&
         config.capacity_bytes / options.shards < config.max_value_bytes + options.max_key_bytes) {
    options.shards /= 2;
  }
  return Add(
      std::make_shared<Group>(config.name, config.capacity_bytes, std::move(getter), options),
      config);
}

Status GroupRegistry::Add(std::shared_ptr<Group> group, GroupConfig config) {
  PACKICE_RETURN_IF_ERROR(ValidateGroupName(config.name));
  if (group == nullptr || group->name() != config.name) {
    return InvalidArgument("the config of group '" + config.name + "' names another group");
  }
  {
    // Peers are set under the lock, so that a SetPeers running meanwhile cannot be undone by
    // an older value.
    std::lock_guard<std::mutex> lock(mu_);
    if (groups_.contains(config.name)) {
      return AlreadyExists("cache group '" + config.name + "' is defined twice");
    }
    if (peers_) group->SetPeers(peers_);
    std::string name = config.name;  // not config.name: the Entry moves config
    groups_.emplace(std::move(name), Entry{group, std::move(config)});
  }
  if (metrics_) RegisterGroupMetrics(*metrics_, group);
  return Status::Ok();
}

Result<std::shared_ptr<Group>> GroupRegistry::Find(std::string_view name) const {
  PACKICE_ASSIGN_OR_RETURN(Entry e, FindEntry(name));
  return std::move(e.group);
}

Result<GroupRegistry::Entry> GroupRegistry::FindEntry(std::string_view name) const {
  PACKICE_RETURN_IF_ERROR(ValidateGroupName(name));
  std::lock_guard<std::mutex> lock(mu_);
  auto it = groups_.find(name);
  if (it == groups_.end()) {
    std::string known;
    for (const auto& [n, e] : groups_) known += (known.empty() ? "" : ", ") + n;
    return NotFound("no cache group '" + std::string(name) + "' on this node (" +
                    (known.empty() ? std::string("it serves none") : "groups: " + known) + ")");
  }
  return it->second;
}

std::vector<GroupRegistry::Entry> GroupRegistry::List() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Entry> out;
  out.reserve(groups_.size());
  for (const auto& [name, e] : groups_) out.push_back(e);
  return out;
}

size_t GroupRegistry::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return groups_.size();
}

void GroupRegistry::SetPeers(std::shared_ptr<GroupPeers> peers) {
  std::lock_guard<std::mutex> lock(mu_);
  peers_ = peers;
  for (const auto& [name, e] : groups_) e.group->SetPeers(peers);
}

}  // namespace packice
