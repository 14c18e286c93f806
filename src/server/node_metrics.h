// The node's object-store metrics (docs/http.md, "Metrics"), read from its peer at scrape time.
#ifndef PACKICE_SERVER_NODE_METRICS_H_
#define PACKICE_SERVER_NODE_METRICS_H_

#include <memory>

#include "core/metrics.h"
#include "packice/local_peer.h"

namespace packice {

// Adds a collector that writes, on every Render:
//   packice_objects{tier}, packice_bytes{tier}, packice_capacity_bytes{tier}    gauges
//   packice_leases                                                             gauge
//   packice_hits_total{tier}, packice_misses_total, packice_evictions_total{tier}  counters
// A TieredPeer reports two tiers, named by hot().tier_name() and cold().tier_name() ("memory"
// and "disk"), with hits and evictions from its own counts (GetTierStats: hot and cold hits,
// demotions), so a read counts once; any other peer reports one tier, its tier_name().
// The collector holds `peer` weakly: once the peer is gone it writes nothing.
void RegisterPeerMetrics(MetricsRegistry& registry, std::shared_ptr<LocalPeer> peer);

}  // namespace packice

#endif  // PACKICE_SERVER_NODE_METRICS_H_
