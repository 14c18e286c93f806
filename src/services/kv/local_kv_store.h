// LocalKvStore: the in-process KvStore (packice/kv.h). A hash table from namespace path to
// bucket (bucket.h), the durable namespace table (namespace_table.h), and a reaper thread that
// deletes expired keys.
//
//   DIR/LOCK            flock: one process per store
//   DIR/NAMESPACES      the namespace table
//   DIR/buckets/<id>/   one bucket's log (segments, SNAPSHOT, LOCK)
//
// Thread safety: safe for concurrent use. Namespace lookups take a reader lock for one hash
// lookup; creating or deleting a namespace takes it exclusively.
#ifndef PACKICE_SERVICES_KV_LOCAL_KV_STORE_H_
#define PACKICE_SERVICES_KV_LOCAL_KV_STORE_H_

#include <absl/container/flat_hash_map.h>

#include <memory>
#include <shared_mutex>
#include <string>

#include "core/periodic_thread.h"
#include "packice/blob.h"
#include "packice/kv.h"
#include "services/kv/bucket.h"
#include "services/kv/namespace_table.h"

namespace packice::kv {

class LocalKvStore final : public KvStore {
 public:
  // See OpenKvStore.
  static Result<std::unique_ptr<LocalKvStore>> Open(KvOptions options);
  ~LocalKvStore() override;

  Status CreateNamespace(std::string_view path, const NamespaceOptions& options) override;
  Status DeleteNamespace(std::string_view path) override;
  Result<std::vector<NamespaceInfo>> ListNamespaces(std::string_view prefix) override;
  Result<KeyValue> Get(std::string_view ns, std::string_view key) override;
  Result<PutResult> Put(std::string_view ns, std::string_view key, std::string_view value,
                        const PutOptions& options = {}) override;
  Result<DeleteResult> Delete(std::string_view ns, std::string_view key,
                              const DeleteOptions& options = {}) override;
  Result<std::vector<Result<PutResult>>> PutMany(std::string_view ns,
                                                 std::span<const KvPutItem> puts) override;
  Result<ScanResult> Scan(std::string_view ns, const ScanOptions& options) override;
  Result<BatchResult> Commit(std::string_view ns, std::span<const BatchOp> ops) override;
  Result<std::unique_ptr<KvWatcher>> Watch(std::string_view ns,
                                           const WatchOptions& options) override;
  // True for fsync "always" (a write waits for its group's fdatasync), and when the
  // namespace's next snapshot is near (the write that crosses its threshold takes it).
  bool WritesWait(std::string_view ns) override;

  // Deletes the expired keys of every namespace now; returns how many.
  size_t ReapExpired();
  // Snapshots namespace `ns` and truncates its log. Errors: kNotFound, those of the log.
  Status Snapshot(std::string_view ns);
  // The bucket of `ns`. Errors: kInvalidArgument, kNotFound.
  Result<std::shared_ptr<Bucket>> Find(std::string_view ns) const;

 private:
  LocalKvStore(KvOptions options, NamespaceTable table, UniqueFd lock);
  Status OpenBuckets();

  const KvOptions options_;
  UniqueFd lock_fd_;
  mutable std::shared_mutex mu_;
  NamespaceTable table_;  // guarded by mu_ (exclusive to change)
  absl::flat_hash_map<std::string, std::shared_ptr<Bucket>, KeyHash, KeyEq>
      buckets_;                             // guarded by mu_
  std::unique_ptr<PeriodicThread> reaper_;  // null without a reap_interval
};

}  // namespace packice::kv

#endif  // PACKICE_SERVICES_KV_LOCAL_KV_STORE_H_
