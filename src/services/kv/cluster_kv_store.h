// ClusterKvStore: the KV of a cluster node — the seed's Master and Entry (docs/kv.md, "In a
// cluster").
//
// Each namespace lives whole on one node, its owner. The owner is chosen when the namespace is
// created — the path's node on the consistent-hash ring of that moment — and recorded in the
// namespace table (a OwnerDirectory: etcd, in packiced), so a node joining or leaving later
// moves no namespace. Any node is an entry: it serves a call itself when it owns the namespace
// and forwards the call to the owner otherwise (over gRPC, marked forwarded: the owner answers
// from its local store and never forwards again). Entries cache the table (the directory
// watches it); a forwarded call that finds no such namespace at the owner is a stale route:
// the entry re-reads the table and, if the owner changed, tries once more.
//
// A namespace whose owner is down is unavailable (kUnavailable naming the owner) until the
// owner is back: namespaces are not replicated.
//
// Thread safety: safe for concurrent use; Update may run concurrently with calls.
#ifndef PACKICE_SERVICES_KV_CLUSTER_KV_STORE_H_
#define PACKICE_SERVICES_KV_CLUSTER_KV_STORE_H_

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "cluster/owner_directory.h"
#include "cluster/ring.h"
#include "packice/kv.h"

namespace packice {

class ClusterKvStore final : public KvStore {
 public:
  using Members = std::map<std::string, std::shared_ptr<KvStore>, std::less<>>;

  ClusterKvStore(std::shared_ptr<KvStore> local, std::shared_ptr<OwnerDirectory> directory);

  // A new membership: this node is `self_id`, `ring` places new namespaces, `members` reach
  // the other nodes (calls to them must be marked forwarded).
  void Update(std::string self_id, Ring ring, Members members);

  Status CreateNamespace(std::string_view path, const NamespaceOptions& options) override;
  Status DeleteNamespace(std::string_view path) override;
  // Every node's namespaces under `prefix` (each asked for its own), sorted by path.
  Result<std::vector<NamespaceInfo>> ListNamespaces(std::string_view prefix) override;
  Result<KeyValue> Get(std::string_view ns, std::string_view key) override;
  Result<PutResult> Put(std::string_view ns, std::string_view key, std::string_view value,
                        const PutOptions& options = {}) override;
  Result<std::vector<Result<PutResult>>> PutMany(std::string_view ns,
                                                 std::span<const KvPutItem> puts) override;
  Result<DeleteResult> Delete(std::string_view ns, std::string_view key,
                              const DeleteOptions& options = {}) override;
  Result<ScanResult> Scan(std::string_view ns, const ScanOptions& options) override;
  Result<BatchResult> Commit(std::string_view ns, std::span<const BatchOp> ops) override;
  Result<std::unique_ptr<KvWatcher>> Watch(std::string_view ns,
                                           const WatchOptions& options) override;
  // The local store's answer for its own namespaces; true for the others (another node).
  bool WritesWait(std::string_view ns) override;

  struct Stats {
    uint64_t local_calls = 0;
    uint64_t forwarded_calls = 0;
    uint64_t stale_routes = 0;  // forwarded calls that found the table out of date
  };
  Stats GetStats() const;

 private:
  struct Route {
    std::shared_ptr<KvStore> store;
    std::string owner;
    bool local = false;
  };
  // Where `ns` lives now. Errors: kNotFound (no such namespace), kUnavailable (its owner is
  // not a member now), kInvalidArgument (a bad path).
  Result<Route> Find(std::string_view ns, bool refresh);
  // Runs `call` on the owner of `ns`; on a stale route re-reads the table and runs it once
  // more if the owner changed.
  template <typename T>
  Result<T> Routed(std::string_view ns, const std::function<Result<T>(KvStore&)>& call);

  const std::shared_ptr<KvStore> local_;
  const std::shared_ptr<OwnerDirectory> directory_;
  mutable std::mutex mu_;
  std::string self_;  // guarded by mu_, as ring_ and members_
  Ring ring_;
  Members members_;
  mutable std::mutex stats_mu_;
  Stats stats_;
};

}  // namespace packice

#endif  // PACKICE_SERVICES_KV_CLUSTER_KV_STORE_H_
