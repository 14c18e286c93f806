#include "services/kv/local_kv_store.h"

#include <fcntl.h>
#include <sys/file.h>

#include <algorithm>
#include <mutex>

#include "core/env.h"
#include "packice/clock.h"

namespace packice {

Result<std::unique_ptr<KvStore>> OpenKvStore(KvOptions options) {
  PACKICE_ASSIGN_OR_RETURN(auto store, kv::LocalKvStore::Open(std::move(options)));
  return std::unique_ptr<KvStore>(std::move(store));
}

namespace kv {

LocalKvStore::LocalKvStore(KvOptions options, NamespaceTable table, UniqueFd lock)
    : options_(std::move(options)), lock_fd_(std::move(lock)), table_(std::move(table)) {}

LocalKvStore::~LocalKvStore() {
  if (reaper_) reaper_->Stop();
}

Result<std::unique_ptr<LocalKvStore>> LocalKvStore::Open(KvOptions options) {
  if (options.dir.empty()) return InvalidArgument("kv: no directory");
  if (!options.env) options.env = Env::Default();
  if (!options.clock) options.clock = Clock::System();
  if (options.max_key_bytes == 0 || options.max_batch_ops == 0 || options.max_scan_limit == 0 ||
      options.max_scan_bytes == 0 || options.history_events == 0 ||
      options.watcher_buffer_events == 0) {
    return InvalidArgument("kv: a limit of 0");
  }
  Env& env = *options.env;
  PACKICE_RETURN_IF_ERROR(MakeDirs(env, options.dir + "/buckets", 0700, /*sync=*/true));
  UniqueFd lock;
  const std::string lock_path = options.dir + "/LOCK";
  if (int err = env.Open(lock_path, O_RDWR | O_CREAT, 0600, &lock); err != 0) {
    return ErrnoError("open " + lock_path, err);
  }
  if (::flock(lock.get(), LOCK_EX | LOCK_NB) != 0) {
    return AlreadyExists("kv: " + options.dir + " is used by another process");
  }
  PACKICE_ASSIGN_OR_RETURN(NamespaceTable table, NamespaceTable::Load(env, options.dir));
  std::unique_ptr<LocalKvStore> store(
      new LocalKvStore(std::move(options), std::move(table), std::move(lock)));
  PACKICE_RETURN_IF_ERROR(store->OpenBuckets());
  if (store->options_.reap_interval.count() > 0) {
    store->reaper_ = std::make_unique<PeriodicThread>(store->options_.reap_interval,
                                                      [s = store.get()] { s->ReapExpired(); });
  }
  return store;
}

Status LocalKvStore::OpenBuckets() {
  Env& env = *options_.env;
  std::unique_lock lock(mu_);
  absl::flat_hash_map<std::string, bool> wanted;
  for (const auto& [path, rec] : table_.entries()) {
    const std::string dir = table_.BucketDir(rec.id);
    PACKICE_RETURN_IF_ERROR(MakeDirs(env, dir, 0700, true));
    auto bucket = Bucket::Open(dir, rec.options, options_);
    if (!bucket.ok()) {
      return Status(bucket.status().code(),
                    "namespace " + path + ": " + std::string(bucket.status().message()));
    }
    buckets_.emplace(path, std::move(bucket).value());
    wanted[std::to_string(rec.id)] = true;
  }
  // Directories of namespaces deleted before a crash finished removing them.
  std::vector<std::string> names;
  if (env.ListDir(options_.dir + "/buckets", &names) == 0) {
    for (const std::string& name : names) {
      if (wanted.contains(name)) continue;
      const std::string dir = options_.dir + "/buckets/" + name;
      std::vector<std::string> files;
      if (env.ListDir(dir, &files) == 0) {
        for (const std::string& f : files) (void)env.Unlink(dir + "/" + f);
      }
      ::rmdir(dir.c_str());
    }
  }
  return Status::Ok();
}

Status LocalKvStore::CreateNamespace(std::string_view path, const NamespaceOptions& options) {
  PACKICE_RETURN_IF_ERROR(ValidateNamespacePath(path));
  PACKICE_RETURN_IF_ERROR(ValidateNamespaceOptions(options));
  const std::string p(path);
  Env& env = *options_.env;
  std::unique_lock lock(mu_);
  if (buckets_.contains(p)) return AlreadyExists("namespace " + p + " exists");
  PACKICE_ASSIGN_OR_RETURN(uint64_t id, table_.Add(env, p, options));
  const std::string dir = table_.BucketDir(id);
  Status made = MakeDirs(env, dir, 0700, true);
  Result<std::unique_ptr<Bucket>> bucket =
      made.ok() ? Bucket::Open(dir, options, options_) : Result<std::unique_ptr<Bucket>>(made);
  if (!bucket.ok()) {
    // A leftover entry (the removal failed too) gets a fresh bucket at the next open.
    table_.Remove(env, p).IgnoreError();
    return bucket.status();
  }
  buckets_.emplace(p, std::move(bucket).value());
  return Status::Ok();
}

Status LocalKvStore::DeleteNamespace(std::string_view path) {
  PACKICE_RETURN_IF_ERROR(ValidateNamespacePath(path));
  const std::string p(path);
  std::shared_ptr<Bucket> bucket;
  {
    std::unique_lock lock(mu_);
    auto it = buckets_.find(p);
    if (it == buckets_.end()) return NotFound("no namespace " + p);
    PACKICE_RETURN_IF_ERROR(table_.Remove(*options_.env, p));
    bucket = std::move(it->second);
    buckets_.erase(it);
  }
  bucket->EndWatchers(NotFound("namespace " + p + " was deleted"));
  bucket->RemoveFilesOnClose();  // when the last call using it is done
  return Status::Ok();
}

Result<std::vector<NamespaceInfo>> LocalKvStore::ListNamespaces(std::string_view prefix) {
  std::vector<NamespaceInfo> out;
  {
    std::shared_lock lock(mu_);
    for (const auto& [path, b] : buckets_) {
      if (!path.starts_with(prefix)) continue;
      out.push_back({path, b->options(), b->revision(), b->keys()});
    }
  }
  std::sort(out.begin(), out.end(),
            [](const NamespaceInfo& a, const NamespaceInfo& b) { return a.path < b.path; });
  return out;
}

Result<std::shared_ptr<Bucket>> LocalKvStore::Find(std::string_view ns) const {
  PACKICE_RETURN_IF_ERROR(ValidateNamespacePath(ns));
  std::shared_lock lock(mu_);
  auto it = buckets_.find(ns);
  if (it == buckets_.end()) return NotFound("no namespace " + std::string(ns));
  return it->second;
}

bool LocalKvStore::WritesWait(std::string_view ns) {
  auto b = Find(ns);
  return b.ok() && (*b)->NextWriteMayWait();
}

Result<KeyValue> LocalKvStore::Get(std::string_view ns, std::string_view key) {
  PACKICE_ASSIGN_OR_RETURN(auto b, Find(ns));
  return b->Get(key);
}

Result<PutResult> LocalKvStore::Put(std::string_view ns, std::string_view key,
                                    std::string_view value, const PutOptions& options) {
  PACKICE_ASSIGN_OR_RETURN(auto b, Find(ns));
  return b->Put(key, value, options);
}

Result<std::vector<Result<PutResult>>> LocalKvStore::PutMany(std::string_view ns,
                                                             std::span<const KvPutItem> puts) {
  PACKICE_ASSIGN_OR_RETURN(auto b, Find(ns));
  return b->PutMany(puts);
}

Result<DeleteResult> LocalKvStore::Delete(std::string_view ns, std::string_view key,
                                          const DeleteOptions& options) {
  PACKICE_ASSIGN_OR_RETURN(auto b, Find(ns));
  return b->Delete(key, options);
}

Result<ScanResult> LocalKvStore::Scan(std::string_view ns, const ScanOptions& options) {
  PACKICE_ASSIGN_OR_RETURN(auto b, Find(ns));
  return b->Scan(options);
}

Result<BatchResult> LocalKvStore::Commit(std::string_view ns, std::span<const BatchOp> ops) {
  PACKICE_ASSIGN_OR_RETURN(auto b, Find(ns));
  return b->Commit(ops);
}

Result<std::unique_ptr<KvWatcher>> LocalKvStore::Watch(std::string_view ns,
                                                       const WatchOptions& options) {
  PACKICE_ASSIGN_OR_RETURN(auto b, Find(ns));
  return b->Watch(options);
}

size_t LocalKvStore::ReapExpired() {
  std::vector<std::shared_ptr<Bucket>> all;
  {
    std::shared_lock lock(mu_);
    for (const auto& [path, b] : buckets_) all.push_back(b);
  }
  size_t n = 0;
  for (const auto& b : all) {
    auto r = b->ReapExpired();
    if (r.ok()) n += *r;  // an error: the log is read-only; reads still see the key expired
  }
  return n;
}

Status LocalKvStore::Snapshot(std::string_view ns) {
  PACKICE_ASSIGN_OR_RETURN(auto b, Find(ns));
  return b->Snapshot();
}

}  // namespace kv
}  // namespace packice
