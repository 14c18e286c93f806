#include "server/node_queue.h"

#include <map>

#include "packice/client.h"

namespace packice {
namespace {

void RegisterQueueMetrics(MetricsRegistry& registry, std::weak_ptr<Queue> weak) {
  registry.AddCollector([weak](MetricsWriter& w) {
    std::shared_ptr<Queue> queue = weak.lock();
    if (queue == nullptr) return;
    auto topics = queue->ListTopics();
    if (!topics.ok()) return;
    w.Family("packice_queue_topics", "Queue topics.", MetricType::kGauge);
    w.Sample("packice_queue_topics", {}, topics->size());
    struct Row {
      std::string topic, bucket;
      BucketInfo info;
    };
    std::vector<Row> rows;
    struct Lag {
      std::string topic, group, bucket;
      uint64_t lag;
    };
    std::vector<Lag> lags;
    for (const TopicInfo& t : *topics) {
      auto buckets = queue->Buckets(t.name);
      auto groups = queue->Groups(t.name);
      if (!buckets.ok() || !groups.ok()) continue;  // deleted meanwhile
      for (const BucketInfo& b : *buckets) rows.push_back({t.name, std::to_string(b.bucket), b});
      for (const GroupPosition& g : *groups) {
        if (g.bucket >= buckets->size()) continue;
        const uint64_t end = (*buckets)[g.bucket].end_offset;
        lags.push_back(
            {t.name, g.group, std::to_string(g.bucket), end > g.offset ? end - g.offset : 0});
      }
    }
    struct Field {
      const char* name;
      const char* help;
      MetricType type;
      uint64_t BucketInfo::*value;
    };
    static constexpr Field kFields[] = {
        {"packice_queue_records_in_total", "Records appended to a bucket since the node started.",
         MetricType::kCounter, &BucketInfo::records_in},
        {"packice_queue_bytes_in_total", "Encoded bytes of the records appended to a bucket.",
         MetricType::kCounter, &BucketInfo::bytes_in},
        {"packice_queue_records_out_total", "Records read from a bucket since the node started.",
         MetricType::kCounter, &BucketInfo::records_out},
        {"packice_queue_bytes_out_total", "Encoded bytes of the records read from a bucket.",
         MetricType::kCounter, &BucketInfo::bytes_out},
        {"packice_queue_appends_total",
         "Appends to a bucket (each one write, and with fsync "
         "always one fdatasync, shared by concurrent appends).",
         MetricType::kCounter, &BucketInfo::appends},
        {"packice_queue_start_offset", "The oldest record a bucket keeps.", MetricType::kGauge,
         &BucketInfo::start_offset},
        {"packice_queue_end_offset", "The offset of a bucket's next record.", MetricType::kGauge,
         &BucketInfo::end_offset},
        {"packice_queue_stored_bytes", "Bytes a bucket keeps on disk (or in memory).",
         MetricType::kGauge, &BucketInfo::bytes},
    };
    for (const Field& f : kFields) {
      w.Family(f.name, f.help, f.type);
      for (const Row& r : rows) {
        w.Sample(f.name, {{"topic", r.topic}, {"bucket", r.bucket}}, r.info.*f.value);
      }
    }
    w.Family("packice_queue_append_seconds_total",
             "Time spent in a bucket's appends, flush (fdatasync) included: divided by "
             "packice_queue_appends_total, the mean append latency.",
             MetricType::kCounter);
    for (const Row& r : rows) {
      w.Sample("packice_queue_append_seconds_total", {{"topic", r.topic}, {"bucket", r.bucket}},
               static_cast<double>(r.info.append_micros) / 1e6);
    }
    w.Family("packice_queue_consumer_lag",
             "Records of a bucket past a consumer group's committed position.", MetricType::kGauge);
    for (const Lag& l : lags) {
      w.Sample("packice_queue_consumer_lag",
               {{"topic", l.topic}, {"group", l.group}, {"bucket", l.bucket}}, l.lag);
    }
  });
}

}  // namespace

std::string NodeQueueDir(const DaemonOptions& options) {
  if (!options.queue.dir.empty()) return options.queue.dir;
  if (options.store == "memory" || options.store == "sharedfs") return "";
  return NodeDataDir(options) + "/queue";
}

Result<std::shared_ptr<Queue>> OpenNodeQueue(const DaemonOptions& options, MetricsRegistry& metrics,
                                             std::shared_ptr<LocalPeer> store) {
  if (!options.queue.enabled) return std::shared_ptr<Queue>();
  QueueOptions o;
  o.dir = NodeQueueDir(options);
  // Tiered topics seal into the node's own store; a write-through one holds every object on
  // the disk as well from its seal on.
  if (!o.dir.empty() && (options.store == "tiered" || options.store == "disk")) {
    o.object_store = std::move(store);
    if (options.store == "tiered" && options.tiered.write_through) {
      o.object_durable = [](const ObjectInfo&) { return true; };
    }
  }
  PACKICE_ASSIGN_OR_RETURN(std::shared_ptr<Queue> queue, OpenQueue(std::move(o)));
  RegisterQueueMetrics(metrics, queue);
  return queue;
}

}  // namespace packice
