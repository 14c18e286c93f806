#include "services/cache/group_metrics.h"

#include <string>

namespace packice {
namespace {

struct CounterField {
  const char* name;
  const char* help;
  uint64_t GroupStats::*field;
};

constexpr CounterField kCounters[] = {
    {"packice_group_gets_total", "Get calls of the cache group.", &GroupStats::gets},
    {"packice_group_hits_total", "Gets answered from the main cache.", &GroupStats::hits},
    {"packice_group_mirror_hits_total", "Gets answered from the mirror of hot remote keys.",
     &GroupStats::mirror_hits},
    {"packice_group_misses_total", "Gets that loaded, fetched, or waited for a load.",
     &GroupStats::misses},
    {"packice_group_loads_total", "Getter calls.", &GroupStats::loads},
    {"packice_group_load_errors_total", "Getter errors and oversize loaded values.",
     &GroupStats::load_errors},
    {"packice_group_load_timeouts_total", "Gets that gave up waiting for a load.",
     &GroupStats::load_timeouts},
    {"packice_group_peer_fetches_total", "Misses sent to the owning node.",
     &GroupStats::peer_fetches},
    {"packice_group_peer_fetch_errors_total", "Fetches from the owning node that failed.",
     &GroupStats::peer_fetch_errors},
    {"packice_group_peer_requests_total", "Requests served for other nodes.",
     &GroupStats::peer_requests},
    {"packice_group_ring_disagreements_total",
     "Peer requests from a node whose ring differs from this node's.",
     &GroupStats::ring_disagreements},
    {"packice_group_evictions_total", "Main-cache entries evicted for room.",
     &GroupStats::evictions},
};

constexpr CounterField kGauges[] = {
    {"packice_group_bytes", "Bytes (keys and values) held by the main cache.", &GroupStats::bytes},
    {"packice_group_items", "Entries held by the main cache.", &GroupStats::items},
    {"packice_group_capacity_bytes", "Capacity of the main cache in bytes.",
     &GroupStats::capacity_bytes},
    {"packice_group_mirror_bytes", "Bytes held by the mirror of hot remote keys.",
     &GroupStats::mirror_bytes},
    {"packice_group_mirror_items", "Entries held by the mirror of hot remote keys.",
     &GroupStats::mirror_items},
};

}  // namespace

void WriteGroupMetrics(MetricsWriter& w, std::string_view group, const GroupStats& stats) {
  for (const CounterField& c : kCounters) {
    w.Family(c.name, c.help, MetricType::kCounter);
    w.Sample(c.name, {{"group", group}}, stats.*c.field);
  }
  for (const CounterField& g : kGauges) {
    w.Family(g.name, g.help, MetricType::kGauge);
    w.Sample(g.name, {{"group", group}}, stats.*g.field);
  }
  constexpr std::string_view kLatency = "packice_group_load_seconds";
  w.Family(kLatency, "Latency of the getter in seconds.", MetricType::kHistogram);
  const std::string bucket = std::string(kLatency) + "_bucket";
  for (size_t i = 0; i < stats.load_latency_counts.size(); ++i) {
    std::string le;
    if (i < stats.load_latency_bounds.size()) {
      AppendMetricDouble(stats.load_latency_bounds[i], &le);
    } else {
      le = "+Inf";
    }
    w.Sample(bucket, {{"group", group}, {"le", le}}, stats.load_latency_counts[i]);
  }
  w.Sample(std::string(kLatency) + "_sum", {{"group", group}}, stats.load_seconds_sum);
  w.Sample(std::string(kLatency) + "_count", {{"group", group}},
           stats.load_latency_counts.empty() ? 0 : stats.load_latency_counts.back());
}

void RegisterGroupMetrics(MetricsRegistry& registry, const std::shared_ptr<const Group>& group) {
  registry.AddCollector([weak = std::weak_ptr<const Group>(group)](MetricsWriter& w) {
    if (std::shared_ptr<const Group> g = weak.lock()) WriteGroupMetrics(w, g->name(), g->Stats());
  });
}

}  // namespace packice
