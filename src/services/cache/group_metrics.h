// Prometheus metrics of cache groups: GroupStats as families with a `group` label.
//
//   RegisterGroupMetrics(registry, users);  // packice_group_hits_total{group="users"} ...
//
// The values are read from Group::Stats() at scrape time (a collector), so the Get path pays
// nothing for them. Counters: packice_group_{gets,hits,mirror_hits,misses,loads,load_errors,
// load_timeouts,peer_fetches,peer_fetch_errors,peer_requests,ring_disagreements,evictions}_total;
// gauges: packice_group_{bytes,items,capacity_bytes,mirror_bytes,mirror_items}; histogram:
// packice_group_load_seconds (the getter's latency).
#ifndef PACKICE_SERVICES_CACHE_GROUP_METRICS_H_
#define PACKICE_SERVICES_CACHE_GROUP_METRICS_H_

#include <memory>

#include "core/metrics.h"
#include "packice/cache.h"

namespace packice {

// Adds a collector of `group`'s stats to `registry`. The registry keeps only a weak reference:
// once the group is destroyed its series disappear. Several groups may be registered; each
// family is written once, with a series per group.
void RegisterGroupMetrics(MetricsRegistry& registry, const std::shared_ptr<const Group>& group);

// Writes the families of one group's `stats` (what the collector does), for callers that
// gather stats themselves.
void WriteGroupMetrics(MetricsWriter& w, std::string_view group, const GroupStats& stats);

}  // namespace packice

#endif  // PACKICE_SERVICES_CACHE_GROUP_METRICS_H_
