#include "services/kv/cluster_kv_store.h"

#include <algorithm>

namespace packice {

namespace {

Status NotJoined() {
  return Unavailable("this node has not joined its cluster yet: its KV calls wait for that");
}

}  // namespace

ClusterKvStore::ClusterKvStore(std::shared_ptr<KvStore> local,
                               std::shared_ptr<OwnerDirectory> directory)
    : local_(std::move(local)), directory_(std::move(directory)) {}

void ClusterKvStore::Update(std::string self_id, Ring ring, Members members) {
  std::lock_guard<std::mutex> lock(mu_);
  self_ = std::move(self_id);
  ring_ = std::move(ring);
  members_ = std::move(members);
}

ClusterKvStore::Stats ClusterKvStore::GetStats() const {
  std::lock_guard<std::mutex> lock(stats_mu_);
  return stats_;
}

Result<ClusterKvStore::Route> ClusterKvStore::Find(std::string_view ns, bool refresh) {
  PACKICE_RETURN_IF_ERROR(ValidateNamespacePath(ns));
  std::optional<std::string> owner = directory_->Owner(ns);
  if (!owner || refresh) {
    // Not in the cached table (new, or the table is behind): read it again once.
    PACKICE_RETURN_IF_ERROR(directory_->Refresh());
    owner = directory_->Owner(ns);
  }
  if (!owner) return NotFound("no namespace " + std::string(ns));
  std::lock_guard<std::mutex> lock(mu_);
  if (self_.empty()) return NotJoined();
  if (*owner == self_) return Route{local_, *owner, true};
  auto it = members_.find(*owner);
  if (it == members_.end()) {
    return Unavailable("namespace " + std::string(ns) + " lives on node " + *owner +
                       ", which is not in the cluster now");
  }
  return Route{it->second, *owner, false};
}

template <typename T>
Result<T> ClusterKvStore::Routed(std::string_view ns,
                                 const std::function<Result<T>(KvStore&)>& call) {
  PACKICE_ASSIGN_OR_RETURN(Route route, Find(ns, false));
  {
    std::lock_guard<std::mutex> lock(stats_mu_);
    ++(route.local ? stats_.local_calls : stats_.forwarded_calls);
  }
  Result<T> r = call(*route.store);
  if (route.local || r.ok() || !IsNoSuchNamespace(r.status())) return r;
  // A stale route: the owner the table named has no such namespace.
  {
    std::lock_guard<std::mutex> lock(stats_mu_);
    ++stats_.stale_routes;
  }
  PACKICE_ASSIGN_OR_RETURN(Route fresh, Find(ns, true));
  if (fresh.owner == route.owner) return r;
  return call(*fresh.store);
}

Status ClusterKvStore::CreateNamespace(std::string_view path, const NamespaceOptions& options) {
  PACKICE_RETURN_IF_ERROR(ValidateNamespacePath(path));
  std::string owner;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (self_.empty()) return NotJoined();
    std::optional<std::string_view> o = ring_.Owner(path);
    owner = o ? std::string(*o) : self_;
  }
  PACKICE_ASSIGN_OR_RETURN(std::string recorded, directory_->Claim(path, owner));
  if (recorded != owner) {
    return AlreadyExists("namespace " + std::string(path) + " exists (on node " + recorded + ")");
  }
  auto route = Find(path, false);
  if (!route.ok()) {
    directory_->Release(path).IgnoreError();
    return route.status();
  }
  Status s = route->store->CreateNamespace(path, options);
  if (!s.ok() && s.code() != StatusCode::kAlreadyExists) {
    directory_->Release(path).IgnoreError();  // not created: the path is free again
  }
  return s;
}

Status ClusterKvStore::DeleteNamespace(std::string_view path) {
  PACKICE_ASSIGN_OR_RETURN(Route route, Find(path, false));
  Status s = route.store->DeleteNamespace(path);
  if (!s.ok() && !IsNoSuchNamespace(s)) return s;
  PACKICE_RETURN_IF_ERROR(directory_->Release(path));
  return s;
}

Result<std::vector<NamespaceInfo>> ClusterKvStore::ListNamespaces(std::string_view prefix) {
  std::vector<std::shared_ptr<KvStore>> stores{local_};
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [id, store] : members_) stores.push_back(store);
  }
  std::vector<NamespaceInfo> all;
  for (const auto& store : stores) {
    PACKICE_ASSIGN_OR_RETURN(std::vector<NamespaceInfo> some, store->ListNamespaces(prefix));
    for (NamespaceInfo& n : some) all.push_back(std::move(n));
  }
  std::sort(all.begin(), all.end(),
            [](const NamespaceInfo& a, const NamespaceInfo& b) { return a.path < b.path; });
  return all;
}

Result<KeyValue> ClusterKvStore::Get(std::string_view ns, std::string_view key) {
  return Routed<KeyValue>(ns, [&](KvStore& s) { return s.Get(ns, key); });
}

Result<PutResult> ClusterKvStore::Put(std::string_view ns, std::string_view key,
                                      std::string_view value, const PutOptions& options) {
  return Routed<PutResult>(ns, [&](KvStore& s) { return s.Put(ns, key, value, options); });
}

Result<std::vector<Result<PutResult>>> ClusterKvStore::PutMany(std::string_view ns,
                                                               std::span<const KvPutItem> puts) {
  return Routed<std::vector<Result<PutResult>>>(ns,
                                                [&](KvStore& s) { return s.PutMany(ns, puts); });
}

Result<DeleteResult> ClusterKvStore::Delete(std::string_view ns, std::string_view key,
                                            const DeleteOptions& options) {
  return Routed<DeleteResult>(ns, [&](KvStore& s) { return s.Delete(ns, key, options); });
}

Result<ScanResult> ClusterKvStore::Scan(std::string_view ns, const ScanOptions& options) {
  return Routed<ScanResult>(ns, [&](KvStore& s) { return s.Scan(ns, options); });
}

Result<BatchResult> ClusterKvStore::Commit(std::string_view ns, std::span<const BatchOp> ops) {
  return Routed<BatchResult>(ns, [&](KvStore& s) { return s.Commit(ns, ops); });
}

bool ClusterKvStore::WritesWait(std::string_view ns) {
  std::optional<std::string> owner = directory_->Owner(ns);
  if (!owner) return true;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (self_.empty() || *owner != self_) return true;
  }
  return local_->WritesWait(ns);
}

Result<std::unique_ptr<KvWatcher>> ClusterKvStore::Watch(std::string_view ns,
                                                         const WatchOptions& options) {
  return Routed<std::unique_ptr<KvWatcher>>(ns, [&](KvStore& s) { return s.Watch(ns, options); });
}

}  // namespace packice
