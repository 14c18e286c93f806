#include "services/cas/cas_store.h"

#include <absl/container/btree_set.h>
#include <absl/container/flat_hash_map.h>
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <optional>
#include <vector>

#include "core/eviction.h"
#include "core/mutex.h"
#include "core/periodic_thread.h"
#include "packice/memory_peer.h"
#include "peers/cas_peer.h"
#include "peers/evicting_create.h"

namespace packice {

uint64_t DefaultCasMemoryBytes() {
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page = sysconf(_SC_PAGESIZE);
  const uint64_t total = pages > 0 && page > 0 ? uint64_t(pages) * uint64_t(page) : 0;
  return std::clamp<uint64_t>(total / 10, 4ull << 20, 4ull << 30);
}

namespace {

using TimePoint = Clock::TimePoint;

// A read lease on a blob, and the view its bytes are in: released when the last CasBlob
// holding it goes.
struct HeldBlob {
  HeldBlob(std::shared_ptr<LocalPeer> peer, LeaseId lease, std::shared_ptr<BlobView> view)
      : peer(std::move(peer)), lease(lease), view(std::move(view)) {}
  ~HeldBlob() {
    view.reset();
    peer->Release(lease).IgnoreError();
  }
  std::shared_ptr<LocalPeer> peer;
  LeaseId lease;
  std::shared_ptr<BlobView> view;
};

AcquireRequest ReadOf(const std::string& key) {
  AcquireRequest req;
  req.key = key;
  req.mode = LeaseMode::kRead;
  return req;
}

AcquireRequest CreateOf(const std::string& key, uint64_t size) {
  AcquireRequest req;
  req.key = key;
  req.mode = LeaseMode::kCreate;
  req.size = size;
  return req;
}

// When each memory copy was last read, so that copies nobody reads go before their TTL.
class IdleIndex {
 public:
  void Touch(const std::string& key, TimePoint now) {
    MutexLock lock(&mu_);
    auto [it, inserted] = last_.try_emplace(key, now);
    if (!inserted) {
      by_time_.erase({it->second, key});
      it->second = now;
    }
    by_time_.insert({now, key});
  }
  void Forget(const std::string& key) {
    MutexLock lock(&mu_);
    auto it = last_.find(key);
    if (it == last_.end()) return;
    by_time_.erase({it->second, key});
    last_.erase(it);
  }
  // The keys last read at or before `cutoff`, forgotten.
  std::vector<std::string> TakeIdle(TimePoint cutoff) {
    std::vector<std::string> idle;
    MutexLock lock(&mu_);
    while (!by_time_.empty() && by_time_.begin()->first <= cutoff) {
      idle.push_back(by_time_.begin()->second);
      last_.erase(idle.back());
      by_time_.erase(by_time_.begin());
    }
    return idle;
  }

 private:
  Mutex mu_;
  absl::flat_hash_map<std::string, TimePoint> last_ ABSL_GUARDED_BY(mu_);
  absl::btree_set<std::pair<TimePoint, std::string>> by_time_ ABSL_GUARDED_BY(mu_);
};

// Whether the remote tier is worth asking: after a failure to reach it (kUnavailable,
// kTimeout) it is skipped for a backoff, 1 s doubling to 30 s, so that a remote that is down
// costs the local tiers no waiting. Logs the first failure and the recovery, and other errors
// at most once per 10 s. Thread-safe.
class RemoteHealth {
 public:
  explicit RemoteHealth(std::shared_ptr<Clock> clock) : clock_(std::move(clock)) {}

  bool Usable() {
    MutexLock lock(&mu_);
    return !down_ || clock_->Now() >= retry_at_;
  }
  bool up() {
    MutexLock lock(&mu_);
    return !down_;
  }
  uint64_t errors() {
    MutexLock lock(&mu_);
    return errors_;
  }

  void Failed(std::string_view op, const Digest& digest, const Status& s) {
    const TimePoint now = clock_->Now();
    MutexLock lock(&mu_);
    ++errors_;
    const bool unreachable =
        s.code() == StatusCode::kUnavailable || s.code() == StatusCode::kTimeout;
    if (unreachable) {
      backoff_ = down_ ? std::min<Duration>(backoff_ * 2, std::chrono::seconds(30))
                       : Duration(std::chrono::seconds(1));
      retry_at_ = now + backoff_;
      if (!down_) {
        down_ = true;
        spdlog::warn(
            "event=cas_remote_down op={} digest={} error=\"{}\" effect=\"stores stay local, "
            "reads of blobs not here fail\" retry_in_ms={}",
            op, digest.ToString(), s.ToString(),
            std::chrono::duration_cast<std::chrono::milliseconds>(backoff_).count());
        return;
      }
    }
    if (now - last_log_ >= std::chrono::seconds(10)) {
      last_log_ = now;
      spdlog::warn("event=cas_remote_error op={} digest={} error=\"{}\" errors_total={}", op,
                   digest.ToString(), s.ToString(), errors_);
    }
  }

  void Succeeded() {
    MutexLock lock(&mu_);
    if (!down_) return;
    down_ = false;
    spdlog::info("event=cas_remote_up errors_total={}", errors_);
  }

 private:
  const std::shared_ptr<Clock> clock_;
  Mutex mu_;
  bool down_ ABSL_GUARDED_BY(mu_) = false;
  Duration backoff_ ABSL_GUARDED_BY(mu_){0};
  TimePoint retry_at_ ABSL_GUARDED_BY(mu_){};
  TimePoint last_log_ ABSL_GUARDED_BY(mu_){};
  uint64_t errors_ ABSL_GUARDED_BY(mu_) = 0;
};

// One shard: the victim is the least recently used blob of all, not of a shard.
EvictionOptions ExactLru() {
  EvictionOptions o;
  o.shards = 1;
  return o;
}

class CasStoreImpl final : public CasStore, public std::enable_shared_from_this<CasStoreImpl> {
 public:
  CasStoreImpl(CasStoreOptions options, std::shared_ptr<LocalPeer> memory,
               std::shared_ptr<LocalPeer> local, LocalCasStore* files)
      : options_(std::move(options)),
        clock_(options_.clock ? options_.clock : Clock::System()),
        memory_(std::move(memory)),
        local_(std::move(local)),
        files_(files),
        memory_index_(NewEvictor(EvictionKind::kLru, ExactLru())),
        local_index_(NewEvictor(EvictionKind::kLru, ExactLru())),
        remote_health_(clock_) {}

  // Indexes what the local tier recovered, then starts the reaper.
  Status Start() {
    ListOptions list;
    list.limit = kMaxListLimit;
    for (;;) {
      PACKICE_ASSIGN_OR_RETURN(ListPage page, local_->List(list));
      for (const ObjectInfo& o : page.objects) local_index_->Insert(o.key, o.size).evicted.clear();
      if (!page.truncated || page.objects.empty()) break;
      list.start_after = page.objects.back().key;
    }
    if (options_.background_threads) {
      reaper_.emplace(std::chrono::seconds(1), [this] { Reap(); });
    }
    return Status::Ok();
  }

  ~CasStoreImpl() override { reaper_.reset(); }

  Status Store(const Digest& digest, std::span<const std::byte> data) override {
    return StoreIn(digest, data, Remote());
  }
  Result<uint64_t> Check(const Digest& digest) override { return CheckIn(digest, Remote()); }
  Result<std::vector<Digest>> FindMissing(std::span<const Digest> digests) override {
    return FindMissingIn(digests, Remote());
  }
  Result<CasBlob> Fetch(const Digest& digest, BlobRange range) override {
    return FetchIn(digest, range, options_.remote.get());
  }

  // The tiers' calls, with `remote` the remote tier to use (nullptr: none).
  Status StoreIn(const Digest& digest, std::span<const std::byte> data, Cas* remote) {
    const std::string key = digest.ToString();
    if (data.size() != digest.size) {
      mismatches_.fetch_add(1, std::memory_order_relaxed);
      return DigestMismatch(std::to_string(data.size()) + " bytes cannot be " + key +
                            "; nothing was stored");
    }
    if (local_->Stat(key).ok()) {
      // Idempotent, and still strict: bytes that are not the digest are refused.
      if (const Digest got = Digest::Of(digest.algorithm, data); got != digest) {
        mismatches_.fetch_add(1, std::memory_order_relaxed);
        return ContentIsNot(got, digest);
      }
      already_stored_.fetch_add(1, std::memory_order_relaxed);
      local_index_->Touch(key);
      return Status::Ok();
    }
    PACKICE_RETURN_IF_ERROR(StoreCopy(digest, data));
    AfterStore(digest, data, remote);
    return Status::Ok();
  }

  Result<std::unique_ptr<CasWriter>> BeginStore(const Digest& digest) override {
    PACKICE_ASSIGN_OR_RETURN(Grant g, CreateLocal(digest));
    return std::unique_ptr<CasWriter>(new Writer(this, digest, std::move(g)));
  }

  Result<Digest> StoreFile(const std::string& path, DigestAlgorithm algorithm) override {
    PACKICE_ASSIGN_OR_RETURN(Digest digest, HashFile(path, algorithm));
    const std::string key = digest.ToString();
    if (local_->Stat(key).ok()) {
      already_stored_.fetch_add(1, std::memory_order_relaxed);
      local_index_->Touch(key);
      return digest;
    }
    Result<std::unique_ptr<LocalCasStore::ImportScope>> import =
        digest.size == 0 ? Unimplemented("the empty blob is not linked")
                         : LocalCasStore::ImportScope::Open(*files_, digest, path);
    if (!import.ok() && import.status().code() != StatusCode::kUnimplemented) {
      return import.status();
    }
    PACKICE_ASSIGN_OR_RETURN(std::unique_ptr<CasWriter> writer, BeginStore(digest));
    if (import.ok() && (*import)->taken()) {
      import->reset();  // the blob is the linked file: its seal verifies what was linked
      PACKICE_RETURN_IF_ERROR(writer->Commit());
      imported_.fetch_add(1, std::memory_order_relaxed);
      return digest;
    }
    import = Unimplemented("");  // not linked (or the empty blob): copy the bytes
    PACKICE_RETURN_IF_ERROR(CopyFileInto(path, writer->blob(), digest.size));
    PACKICE_RETURN_IF_ERROR(writer->Commit());
    return digest;
  }

  Result<uint64_t> CheckIn(const Digest& digest, Cas* remote) {
    const std::string key = digest.ToString();
    if (memory_ != nullptr) {
      if (Result<ObjectInfo> m = memory_->Stat(key); m.ok()) return m->size;
    }
    Result<ObjectInfo> info = local_->Stat(key);
    if (info.ok()) return info->size;
    if (info.status().code() != StatusCode::kNotFound) return info.status();
    if (remote == nullptr) return info.status();
    Result<uint64_t> there = remote->Check(digest);
    if (there.ok() || there.status().code() == StatusCode::kNotFound) {
      remote_health_.Succeeded();
      return there;
    }
    remote_health_.Failed("check", digest, there.status());
    return info.status();  // a remote that does not answer holds nothing this node can serve
  }

  Result<std::vector<Digest>> FindMissingIn(std::span<const Digest> digests, Cas* remote) {
    std::vector<Digest> missing;
    for (const Digest& d : digests) {
      Result<ObjectInfo> info = local_->Stat(d.ToString());
      if (info.ok()) continue;
      if (info.status().code() != StatusCode::kNotFound) return info.status();
      missing.push_back(d);
    }
    if (remote == nullptr || missing.empty()) return missing;
    Result<std::vector<Digest>> there = remote->FindMissing(missing);
    if (there.ok()) {
      remote_health_.Succeeded();
      return there;
    }
    remote_health_.Failed("find_missing", missing.front(), there.status());
    return missing;
  }

  Result<CasBlob> FetchIn(const Digest& digest, BlobRange range, Cas* remote) {
    const std::string key = digest.ToString();
    if (memory_ != nullptr) {
      if (Result<Grant> g = memory_->Acquire(ReadOf(key)); g.ok()) {
        memory_hits_.fetch_add(1, std::memory_order_relaxed);
        idle_.Touch(key, clock_->Now());
        memory_index_->Touch(key);
        return Held(memory_, *std::move(g), digest, range);
      }
    }
    Result<Grant> g = local_->Acquire(ReadOf(key));
    if (!g.ok() && g.status().code() == StatusCode::kNotFound && remote != nullptr) {
      if (!remote_health_.Usable()) {
        misses_.fetch_add(1, std::memory_order_relaxed);
        return Unavailable("no blob " + key + " here, and the remote tier is down (retrying)");
      }
      PACKICE_ASSIGN_OR_RETURN(bool fetched, FetchRemote(*remote, digest));
      if (fetched) g = local_->Acquire(ReadOf(key));
    } else if (g.ok()) {
      local_hits_.fetch_add(1, std::memory_order_relaxed);
    }
    if (!g.ok()) {
      if (g.status().code() == StatusCode::kNotFound) {
        misses_.fetch_add(1, std::memory_order_relaxed);
        return NotFound("no blob " + key);
      }
      return g.status();
    }
    local_index_->Touch(key);
    PACKICE_ASSIGN_OR_RETURN(CasBlob blob, Held(local_, *std::move(g), digest, range));
    if (memory_ != nullptr && digest.size <= options_.memory_max_blob_bytes && blob.offset == 0 &&
        blob.bytes.size() == digest.size) {
      FillMemory(key, blob.bytes);
    }
    return blob;
  }

  std::optional<std::string> LocalPath(const Digest& digest) override {
    if (!local_->Stat(digest.ToString()).ok()) return std::nullopt;
    return files_->PathFor(digest);
  }

  std::shared_ptr<LocalPeer> local_peer() override { return local_; }
  std::shared_ptr<Cas> local_tiers() override;

  Result<Grant> AcquireLocal(const AcquireRequest& req) override {
    PACKICE_ASSIGN_OR_RETURN(Digest digest, Digest::ParseCanonical(req.key));
    if (req.mode == LeaseMode::kCreate) {
      return CreateLocal(req);
    }
    Result<Grant> g = local_->Acquire(req);
    if (!g.ok() && g.status().code() == StatusCode::kNotFound) {
      // Fetch fills the local tier from the remote one; a copy only memory still holds is
      // stored here from that copy.
      PACKICE_ASSIGN_OR_RETURN(CasBlob blob, Fetch(digest, BlobRange::Full()));
      g = local_->Acquire(req);
      if (!g.ok() && g.status().code() == StatusCode::kNotFound) {
        PACKICE_RETURN_IF_ERROR(StoreCopy(digest, blob.bytes));
        g = local_->Acquire(req);
      }
    } else if (g.ok()) {
      local_hits_.fetch_add(1, std::memory_order_relaxed);
    }
    if (g.ok()) local_index_->Touch(req.key);
    return g;
  }

  Result<ObjectInfo> SealLocal(LeaseId lease, std::optional<uint64_t> size) override {
    PACKICE_ASSIGN_OR_RETURN(ObjectInfo sealed, SealCounted(lease, size));
    if (Result<Digest> digest = Digest::ParseCanonical(sealed.key); digest.ok()) {
      AfterStore(*digest, std::nullopt, Remote());
    }
    return sealed;
  }

  CasStats GetCasStats() override {
    CasStats s;
    s.memory_hits = memory_hits_.load(std::memory_order_relaxed);
    s.local_hits = local_hits_.load(std::memory_order_relaxed);
    s.remote_hits = remote_hits_.load(std::memory_order_relaxed);
    s.misses = misses_.load(std::memory_order_relaxed);
    s.stored = stored_.load(std::memory_order_relaxed);
    s.stored_bytes = stored_bytes_.load(std::memory_order_relaxed);
    s.already_stored = already_stored_.load(std::memory_order_relaxed);
    s.mismatches = mismatches_.load(std::memory_order_relaxed);
    s.evictions = evictions_.load(std::memory_order_relaxed);
    s.imported = imported_.load(std::memory_order_relaxed);
    if (memory_ != nullptr) s.memory_bytes = memory_->GetStats().used_bytes;
    const LocalPeer::Stats l = local_->GetStats();
    s.local_bytes = l.used_bytes;
    s.local_blobs = l.objects;
    s.remote_errors = remote_health_.errors();
    s.remote_up = remote_health_.up();
    return s;
  }

  void Reap() override {
    local_->ReapExpired();
    if (memory_ == nullptr) return;
    memory_->ReapExpired();
    for (const std::string& key : idle_.TakeIdle(clock_->Now() - options_.memory_idle_ttl)) {
      memory_->Delete(key).IgnoreError();
      memory_index_->Erase(key);
    }
  }

 private:
  // A CasBlob of `range` of the blob `grant` leases from `peer`.
  static Result<CasBlob> Held(const std::shared_ptr<LocalPeer>& peer, Grant grant,
                              const Digest& digest, BlobRange range) {
    auto release = [&] { peer->Release(grant.lease).IgnoreError(); };
    Result<std::pair<uint64_t, uint64_t>> span = range.Resolve(grant.info.size);
    if (!span.ok()) {
      release();
      return span.status();
    }
    Result<std::shared_ptr<BlobView>> view = grant.blob->OpenView(LeaseMode::kRead);
    if (!view.ok()) {
      release();
      return view.status();
    }
    auto held = std::make_shared<HeldBlob>(peer, grant.lease, *std::move(view));
    CasBlob out;
    out.digest = digest;
    out.offset = span->first;
    const std::span<std::byte> all = held->view->bytes();
    out.bytes = std::span<const std::byte>(all).subspan(span->first, span->second);
    out.holder = std::move(held);
    return out;
  }

  // A create lease on the local tier, making room by evicting the least recently used blobs.
  Result<Grant> CreateLocal(const AcquireRequest& req) {
    return CreateEvicting(*local_, *local_index_, req, 8, [this](const std::string&) {
      evictions_.fetch_add(1, std::memory_order_relaxed);
    });
  }
  Result<Grant> CreateLocal(const Digest& digest) {
    return CreateLocal(CreateOf(digest.ToString(), digest.size));
  }

  // Seals create lease `lease` of the local tier (the CasPeer verifies the blob), counting it
  // and indexing it for eviction.
  Result<ObjectInfo> SealCounted(LeaseId lease, std::optional<uint64_t> size) {
    Result<ObjectInfo> sealed = local_->Seal(lease, size);
    if (!sealed.ok()) {
      if (sealed.status().code() == StatusCode::kDigestMismatch) {
        mismatches_.fetch_add(1, std::memory_order_relaxed);
      }
      return sealed;
    }
    local_index_->Insert(sealed->key, sealed->size).evicted.clear();  // no capacity of its own
    stored_.fetch_add(1, std::memory_order_relaxed);
    stored_bytes_.fetch_add(sealed->size, std::memory_order_relaxed);
    return sealed;
  }

  // Stores `data`, the blob `digest`, on the local tier.
  Status StoreCopy(const Digest& digest, std::span<const std::byte> data) {
    PACKICE_ASSIGN_OR_RETURN(Grant g, CreateLocal(digest));
    if (Status w = data.empty() ? Status::Ok() : g.blob->Write(0, data); !w.ok()) {
      local_->Discard(g.lease).IgnoreError();
      return w;
    }
    return SealCounted(g.lease, std::nullopt).status();
  }

  // After a blob reached the local tier: a memory copy when small, and `remote`'s copy (when
  // not null). `data` is its content, or nullopt to read it from the local tier when needed.
  void AfterStore(const Digest& digest, std::optional<std::span<const std::byte>> data,
                  Cas* remote) {
    const bool to_memory = memory_ != nullptr && digest.size <= options_.memory_max_blob_bytes;
    if (!to_memory && remote == nullptr) return;
    const std::string key = digest.ToString();
    std::shared_ptr<const void> holder;
    if (!data) {
      Result<Grant> g = local_->Acquire(ReadOf(key));
      if (!g.ok()) return;  // evicted meanwhile: nothing to copy
      Result<CasBlob> blob = Held(local_, *std::move(g), digest, BlobRange::Full());
      if (!blob.ok()) return;
      data = blob->bytes;
      holder = std::move(blob->holder);
    }
    if (to_memory) FillMemory(key, *data);
    if (remote != nullptr) StoreRemote(*remote, digest, *data);
  }

  // Copies `size` bytes of the file at `path` into `blob`, through a bounded buffer.
  static Status CopyFileInto(const std::string& path, Blob& blob, uint64_t size) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) return ErrnoError("open " + path, errno);
    std::vector<std::byte> buf(std::min<uint64_t>(size, 1 << 20));
    for (uint64_t done = 0; done < size;) {
      const size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), size - done));
      const ssize_t n = ::pread(fd.get(), buf.data(), want, static_cast<off_t>(done));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return ErrnoError("read " + path, errno);
      if (n == 0) return Internal(path + " shrank while it was stored");
      PACKICE_RETURN_IF_ERROR(
          blob.Write(done, std::span<const std::byte>(buf.data(), static_cast<size_t>(n))));
      done += static_cast<uint64_t>(n);
    }
    return Status::Ok();
  }

  class Writer final : public CasWriter {
   public:
    Writer(CasStoreImpl* store, const Digest& digest, Grant grant)
        : store_(store), digest_(digest), grant_(std::move(grant)) {}
    ~Writer() override {
      if (!done_) store_->local_->Discard(grant_.lease).IgnoreError();
    }
    const Digest& digest() const override { return digest_; }
    Blob& blob() override { return *grant_.blob; }
    LeaseId lease() const override { return grant_.lease; }
    Duration lease_ttl() const override { return grant_.lease_ttl; }
    Status Commit() override {
      if (done_) return WrongState("the blob " + digest_.ToString() + " was committed already");
      done_ = true;
      PACKICE_RETURN_IF_ERROR(store_->SealCounted(grant_.lease, std::nullopt).status());
      store_->AfterStore(digest_, std::nullopt, store_->Remote());
      return Status::Ok();
    }

   private:
    CasStoreImpl* const store_;
    const Digest digest_;
    const Grant grant_;
    bool done_ = false;
  };

  // A copy in memory of a small blob the local tier holds (best effort: memory is a cache).
  void FillMemory(const std::string& key, std::span<const std::byte> data) {
    if (memory_ == nullptr || data.size() > options_.memory_max_blob_bytes) return;
    Result<Grant> g = CreateEvicting(*memory_, *memory_index_, CreateOf(key, data.size()), 2,
                                     [this](const std::string& k) { idle_.Forget(k); });
    if (!g.ok()) return;
    if (Status w = data.empty() ? Status::Ok() : g->blob->Write(0, data); !w.ok()) {
      memory_->Discard(g->lease).IgnoreError();
      return;
    }
    if (memory_->Seal(g->lease, std::nullopt).ok()) {
      memory_index_->Insert(key, data.size()).evicted.clear();
      idle_.Touch(key, clock_->Now());
    }
  }

  // The remote tier of the calls of the Cas interface: the configured one while it is usable.
  Cas* Remote() {
    return options_.remote != nullptr && remote_health_.Usable() ? options_.remote.get() : nullptr;
  }

  // A copy of a blob stored here in the remote tier, unless it holds it (best effort).
  void StoreRemote(Cas& remote, const Digest& digest, std::span<const std::byte> data) {
    Result<uint64_t> there = remote.Check(digest);
    Status s = there.ok() ? Status::Ok() : there.status();
    if (s.code() == StatusCode::kNotFound) s = remote.Store(digest, data);
    if (s.ok()) {
      remote_health_.Succeeded();
    } else {
      remote_health_.Failed("store", digest, s);
    }
  }

  // Copies the blob from the remote tier into the local one, in ranges of
  // remote_fill_chunk_bytes written straight into the local blob; the local tier verifies it
  // at the seal (a remote that sends other bytes stores nothing: kDigestMismatch). False: the
  // remote has none.
  Result<bool> FetchRemote(Cas& remote, const Digest& digest) {
    const uint64_t chunk = std::max<uint64_t>(options_.remote_fill_chunk_bytes, 1);
    Result<CasBlob> first = remote.Fetch(digest, BlobRange::Of(0, std::min(chunk, digest.size)));
    if (!first.ok()) {
      if (first.status().code() == StatusCode::kNotFound) {
        remote_health_.Succeeded();
        return false;
      }
      remote_health_.Failed("fetch", digest, first.status());
      return first.status();
    }
    PACKICE_ASSIGN_OR_RETURN(Grant g, CreateLocal(digest));
    Status copied = CopyRanges(remote, digest, *std::move(first), *g.blob);
    if (!copied.ok()) {
      local_->Discard(g.lease).IgnoreError();
      remote_health_.Failed("fetch", digest, copied);
      return copied;
    }
    Result<ObjectInfo> sealed = SealCounted(g.lease, std::nullopt);
    if (!sealed.ok()) {
      if (sealed.status().code() == StatusCode::kDigestMismatch) {
        remote_health_.Failed("fetch", digest, sealed.status());
      }
      return sealed.status();
    }
    remote_health_.Succeeded();
    remote_hits_.fetch_add(1, std::memory_order_relaxed);
    return true;
  }

  // Writes `first` and the ranges after it of the remote's blob into `blob`.
  Status CopyRanges(Cas& remote, const Digest& digest, CasBlob first, Blob& blob) {
    const uint64_t chunk = std::max<uint64_t>(options_.remote_fill_chunk_bytes, 1);
    std::optional<CasBlob> part = std::move(first);
    for (uint64_t at = 0;;) {
      const uint64_t n = std::min(chunk, digest.size - at);
      if (part->offset != at || part->bytes.size() != n) {
        return ProtocolError("the remote tier sent " + std::to_string(part->bytes.size()) +
                             " bytes at " + std::to_string(part->offset) + " for a range of " +
                             std::to_string(n) + " at " + std::to_string(at));
      }
      if (n > 0) PACKICE_RETURN_IF_ERROR(blob.Write(at, part->bytes));
      at += n;
      if (at == digest.size) return Status::Ok();
      part.reset();
      PACKICE_ASSIGN_OR_RETURN(
          part, remote.Fetch(digest, BlobRange::Of(at, std::min(chunk, digest.size - at))));
    }
  }

  const CasStoreOptions options_;
  const std::shared_ptr<Clock> clock_;
  const std::shared_ptr<LocalPeer> memory_;  // nullptr: no memory tier
  const std::shared_ptr<LocalPeer> local_;   // a CasPeer over the LocalCasStore peer
  LocalCasStore* const files_;               // owned by local_
  const std::unique_ptr<Evictor> memory_index_;
  const std::unique_ptr<Evictor> local_index_;
  IdleIndex idle_;
  std::optional<PeriodicThread> reaper_;
  std::atomic<uint64_t> memory_hits_{0}, local_hits_{0}, remote_hits_{0}, misses_{0};
  std::atomic<uint64_t> stored_{0}, stored_bytes_{0}, already_stored_{0}, mismatches_{0};
  std::atomic<uint64_t> evictions_{0}, imported_{0};
  RemoteHealth remote_health_;
};

// CasStore::local_tiers: the store's calls without its remote tier.
class LocalTiers final : public Cas {
 public:
  explicit LocalTiers(std::shared_ptr<CasStoreImpl> store) : store_(std::move(store)) {}

  Status Store(const Digest& digest, std::span<const std::byte> data) override {
    return store_->StoreIn(digest, data, nullptr);
  }
  Result<uint64_t> Check(const Digest& digest) override { return store_->CheckIn(digest, nullptr); }
  Result<std::vector<Digest>> FindMissing(std::span<const Digest> digests) override {
    return store_->FindMissingIn(digests, nullptr);
  }
  Result<CasBlob> Fetch(const Digest& digest, BlobRange range) override {
    return store_->FetchIn(digest, range, nullptr);
  }
  std::optional<std::string> LocalPath(const Digest& digest) override {
    return store_->LocalPath(digest);
  }

 private:
  const std::shared_ptr<CasStoreImpl> store_;
};

std::shared_ptr<Cas> CasStoreImpl::local_tiers() {
  return std::make_shared<LocalTiers>(shared_from_this());
}

}  // namespace

Result<Digest> CasStore::FindByHash(DigestAlgorithm algorithm, std::string_view hex) {
  PACKICE_ASSIGN_OR_RETURN(Digest empty, Digest::FromHex(algorithm, hex, 0));
  if (empty.empty_blob()) return empty;
  // Local keys are Digest::ToString(): "<algorithm>:<hex>/<size>"; one hash has one size.
  ListOptions list;
  list.prefix = std::string(DigestAlgorithmName(algorithm)) + ":" + std::string(hex) + "/";
  list.limit = 1;
  PACKICE_ASSIGN_OR_RETURN(ListPage page, local_peer()->List(list));
  if (page.objects.empty()) {
    return NotFound("no blob with " + std::string(DigestAlgorithmName(algorithm)) + " hash " +
                    std::string(hex));
  }
  return Digest::ParseCanonical(page.objects.front().key);
}

Result<std::shared_ptr<CasStore>> CasStore::Open(CasStoreOptions options) {
  if (!options.clock) options.clock = Clock::System();
  LeasePolicy policy;
  policy.clock = options.clock;
  policy.background_threads = options.background_threads;
  LocalCasStore* files = nullptr;
  PACKICE_ASSIGN_OR_RETURN(
      std::shared_ptr<LocalPeer> local,
      OpenLocalCasPeer(LocalCasStoreOptions{options.dir, options.local_capacity_bytes, options.sync,
                                            options.clock, options.env},
                       policy, &files));
  std::shared_ptr<LocalPeer> memory;
  if (options.memory_max_blob_bytes > 0) {
    MemoryPeerOptions m;
    m.capacity_bytes = options.memory_capacity_bytes != 0 ? options.memory_capacity_bytes
                                                          : DefaultCasMemoryBytes();
    m.pool_bytes = 0;
    m.default_object_ttl = options.memory_ttl;
    m.background_threads = options.background_threads;
    m.clock = options.clock;
    memory = MemoryPeer::Create(m);
  }
  auto store = std::make_shared<CasStoreImpl>(std::move(options), std::move(memory),
                                              NewCasPeer(std::move(local)), files);
  PACKICE_RETURN_IF_ERROR(store->Start());
  return std::shared_ptr<CasStore>(std::move(store));
}

}  // namespace packice
