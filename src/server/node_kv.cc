#include "server/node_kv.h"

namespace packice {
namespace {

void RegisterKvMetrics(MetricsRegistry& registry, std::weak_ptr<KvStore> weak) {
  registry.AddCollector([weak](MetricsWriter& w) {
    std::shared_ptr<KvStore> kv = weak.lock();
    if (kv == nullptr) return;
    auto list = kv->ListNamespaces("");
    if (!list.ok()) return;
    uint64_t keys = 0;
    for (const NamespaceInfo& ns : *list) keys += ns.keys;
    w.Family("packice_kv_namespaces", "KV namespaces.", MetricType::kGauge);
    w.Sample("packice_kv_namespaces", {}, list->size());
    w.Family("packice_kv_keys",
             "Live keys in every KV namespace (expired ones not yet reaped "
             "included).",
             MetricType::kGauge);
    w.Sample("packice_kv_keys", {}, keys);
  });
}

}  // namespace

std::string NodeKvDir(const DaemonOptions& options) {
  if (!options.kv.enabled) return "";
  if (!options.kv.dir.empty()) return options.kv.dir;
  // As the CAS: --store memory touches no disk, a sharedfs directory is other nodes' too.
  if (options.store == "memory" || options.store == "sharedfs") return "";
  return NodeDataDir(options) + "/kv";
}

Result<std::shared_ptr<KvStore>> OpenNodeKv(const DaemonOptions& options,
                                            MetricsRegistry& metrics) {
  const std::string dir = NodeKvDir(options);
  if (dir.empty()) return std::shared_ptr<KvStore>();
  KvOptions o;
  o.dir = dir;
  PACKICE_ASSIGN_OR_RETURN(std::unique_ptr<KvStore> opened, OpenKvStore(std::move(o)));
  std::shared_ptr<KvStore> kv = std::move(opened);
  RegisterKvMetrics(metrics, kv);
  return kv;
}

}  // namespace packice
