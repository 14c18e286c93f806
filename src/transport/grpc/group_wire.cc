#include "transport/grpc/group_wire.h"

namespace packice::rpc {
namespace {

// The uint64 fields of GroupStats and of its wire form, side by side: the one list both
// conversions use.
struct StatPair {
  uint64_t GroupStats::*stats;
  uint64_t (GroupStatsReply::*get)() const;
  void (GroupStatsReply::*set)(uint64_t);
};

constexpr StatPair kPairs[] = {
    {&GroupStats::gets, &GroupStatsReply::gets, &GroupStatsReply::set_gets},
    {&GroupStats::hits, &GroupStatsReply::hits, &GroupStatsReply::set_hits},
    {&GroupStats::mirror_hits, &GroupStatsReply::mirror_hits, &GroupStatsReply::set_mirror_hits},
    {&GroupStats::misses, &GroupStatsReply::misses, &GroupStatsReply::set_misses},
    {&GroupStats::loads, &GroupStatsReply::loads, &GroupStatsReply::set_loads},
    {&GroupStats::load_errors, &GroupStatsReply::load_errors, &GroupStatsReply::set_load_errors},
    {&GroupStats::load_timeouts, &GroupStatsReply::load_timeouts,
     &GroupStatsReply::set_load_timeouts},
    {&GroupStats::peer_fetches, &GroupStatsReply::peer_fetches, &GroupStatsReply::set_peer_fetches},
    {&GroupStats::peer_fetch_errors, &GroupStatsReply::peer_fetch_errors,
     &GroupStatsReply::set_peer_fetch_errors},
    {&GroupStats::peer_requests, &GroupStatsReply::peer_requests,
     &GroupStatsReply::set_peer_requests},
    {&GroupStats::ring_disagreements, &GroupStatsReply::ring_disagreements,
     &GroupStatsReply::set_ring_disagreements},
    {&GroupStats::evictions, &GroupStatsReply::evictions, &GroupStatsReply::set_evictions},
    {&GroupStats::bytes, &GroupStatsReply::bytes, &GroupStatsReply::set_bytes},
    {&GroupStats::items, &GroupStatsReply::items, &GroupStatsReply::set_items},
    {&GroupStats::capacity_bytes, &GroupStatsReply::capacity_bytes,
     &GroupStatsReply::set_capacity_bytes},
    {&GroupStats::mirror_bytes, &GroupStatsReply::mirror_bytes, &GroupStatsReply::set_mirror_bytes},
    {&GroupStats::mirror_items, &GroupStatsReply::mirror_items, &GroupStatsReply::set_mirror_items},
};

}  // namespace

GroupValueSource ToWire(CacheSource s) {
  switch (s) {
    case CacheSource::kHit:
      return GROUP_VALUE_SOURCE_HIT;
    case CacheSource::kMirror:
      return GROUP_VALUE_SOURCE_MIRROR;
    case CacheSource::kMiss:
      return GROUP_VALUE_SOURCE_MISS;
  }
  return GROUP_VALUE_SOURCE_UNKNOWN;
}

CacheSource FromWire(GroupValueSource s) {
  switch (s) {
    case GROUP_VALUE_SOURCE_HIT:
      return CacheSource::kHit;
    case GROUP_VALUE_SOURCE_MIRROR:
      return CacheSource::kMirror;
    default:
      return CacheSource::kMiss;
  }
}

void ToWire(std::string_view name, const GroupStats& stats, GroupStatsReply* out) {
  out->set_group(std::string(name));
  for (const StatPair& p : kPairs) (out->*p.set)(stats.*p.stats);
  for (double b : stats.load_latency_bounds) out->add_load_latency_bounds(b);
  for (uint64_t c : stats.load_latency_counts) out->add_load_latency_counts(c);
  out->set_load_seconds_sum(stats.load_seconds_sum);
}

GroupStats FromWire(const GroupStatsReply& in) {
  GroupStats s;
  for (const StatPair& p : kPairs) s.*p.stats = (in.*p.get)();
  s.load_latency_bounds.assign(in.load_latency_bounds().begin(), in.load_latency_bounds().end());
  s.load_latency_counts.assign(in.load_latency_counts().begin(), in.load_latency_counts().end());
  s.load_seconds_sum = in.load_seconds_sum();
  return s;
}

}  // namespace packice::rpc
