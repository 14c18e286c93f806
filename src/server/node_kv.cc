#include "server/node_kv.h"

#include <map>
#include <mutex>

#include "cluster/etcd_client.h"

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

class EtcdNamespaceDirectory final : public NamespaceDirectory {
 public:
  EtcdNamespaceDirectory(std::shared_ptr<cluster::EtcdClient> etcd, std::string prefix)
      : etcd_(std::move(etcd)), prefix_(std::move(prefix)) {}

  std::optional<std::string> Owner(std::string_view path) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = owners_.find(path);
    if (it == owners_.end()) return std::nullopt;
    return it->second;
  }

  Result<std::string> Claim(std::string_view path, std::string_view owner) override {
    PACKICE_ASSIGN_OR_RETURN(std::string recorded,
                             etcd_->CreateOrGet(prefix_ + std::string(path), owner));
    std::lock_guard<std::mutex> lock(mu_);
    owners_.insert_or_assign(std::string(path), recorded);
    return recorded;
  }

  Status Release(std::string_view path) override {
    PACKICE_RETURN_IF_ERROR(etcd_->Delete(prefix_ + std::string(path)).status());
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = owners_.find(path); it != owners_.end()) owners_.erase(it);
    return Status::Ok();
  }

  Status Refresh() override {
    PACKICE_ASSIGN_OR_RETURN(cluster::EtcdRange range, etcd_->GetPrefix(prefix_ + "/"));
    std::map<std::string, std::string, std::less<>> owners;
    for (cluster::EtcdKeyValue& kv : range.kvs) {
      owners.emplace(kv.key.substr(prefix_.size()), std::move(kv.value));
    }
    std::lock_guard<std::mutex> lock(mu_);
    owners_ = std::move(owners);
    return Status::Ok();
  }

 private:
  const std::shared_ptr<cluster::EtcdClient> etcd_;
  const std::string prefix_;
  std::mutex mu_;
  std::map<std::string, std::string, std::less<>> owners_;  // guarded by mu_
};

}  // namespace

std::shared_ptr<NamespaceDirectory> NewEtcdNamespaceDirectory(
    std::shared_ptr<cluster::EtcdClient> etcd, std::string prefix) {
  return std::make_shared<EtcdNamespaceDirectory>(std::move(etcd), std::move(prefix));
}

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
