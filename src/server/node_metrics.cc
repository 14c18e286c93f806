#include "server/node_metrics.h"

#include <string_view>
#include <vector>

#include "packice/tiered_peer.h"

namespace packice {
namespace {

struct TierRow {
  std::string_view tier;
  LocalPeer::Stats stats;  // objects, bytes and capacity of the tier
  uint64_t hits = 0;
  uint64_t evictions = 0;
};

void Collect(LocalPeer& peer, MetricsWriter& w) {
  const LocalPeer::Stats node = peer.GetStats();
  std::vector<TierRow> rows;
  if (auto* tiered = dynamic_cast<TieredPeer*>(&peer)) {
    const TieredPeer::TierStats t = tiered->GetTierStats();
    const LocalPeer::Stats hot = tiered->hot().GetStats();
    const LocalPeer::Stats cold = tiered->cold().GetStats();
    std::string_view hot_name = tiered->hot().tier_name();
    std::string_view cold_name = tiered->cold().tier_name();
    if (hot_name == cold_name) {  // two series with one label set would spoil the scrape
      hot_name = "hot";
      cold_name = "cold";
    }
    // The tiers' own hit counters are not used: they count the tiered peer's probes and moves.
    rows.push_back(TierRow{hot_name, hot, t.hot_hits, t.demoted_objects + hot.evictions});
    rows.push_back(TierRow{cold_name, cold, t.cold_hits, cold.evictions});
  } else {
    rows.push_back(TierRow{peer.tier_name(), node, node.hits, node.evictions});
  }

  w.Family("packice_objects", "Sealed objects held, by tier.", MetricType::kGauge);
  for (const TierRow& r : rows) w.Sample("packice_objects", {{"tier", r.tier}}, r.stats.objects);
  w.Family("packice_bytes", "Bytes charged to objects, by tier.", MetricType::kGauge);
  for (const TierRow& r : rows) w.Sample("packice_bytes", {{"tier", r.tier}}, r.stats.used_bytes);
  w.Family("packice_capacity_bytes", "Bytes the tier may hold.", MetricType::kGauge);
  for (const TierRow& r : rows) {
    w.Sample("packice_capacity_bytes", {{"tier", r.tier}}, r.stats.capacity_bytes);
  }
  w.Family("packice_leases", "Live leases.", MetricType::kGauge);
  w.Sample("packice_leases", {}, node.leases);
  w.Family("packice_hits_total", "Reads that found the object, by the tier that served it.",
           MetricType::kCounter);
  for (const TierRow& r : rows) w.Sample("packice_hits_total", {{"tier", r.tier}}, r.hits);
  w.Family("packice_misses_total", "Reads that found no object in any tier.", MetricType::kCounter);
  w.Sample("packice_misses_total", {}, node.misses);
  w.Family("packice_evictions_total", "Objects pushed out of a tier to make room, by tier.",
           MetricType::kCounter);
  for (const TierRow& r : rows) {
    w.Sample("packice_evictions_total", {{"tier", r.tier}}, r.evictions);
  }
}

}  // namespace

void RegisterPeerMetrics(MetricsRegistry& registry, std::shared_ptr<LocalPeer> peer) {
  registry.AddCollector([weak = std::weak_ptr<LocalPeer>(peer)](MetricsWriter& w) {
    if (std::shared_ptr<LocalPeer> p = weak.lock()) Collect(*p, w);
  });
}

}  // namespace packice
