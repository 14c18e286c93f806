// The tiered QueueBackend (queue_backend.h): the log backend for new records, and closed runs
// of records sealed as objects into an object store (docs/queue.md, "The tiered backend").
//
// State, all of it in LOG_DIR/MANIFEST (replaced atomically):
//   sealed_end   every record before it is in an object (or was, before retention)
//   entries      the objects, oldest first, each [first, end) with its bytes, its newest
//                record's timestamp and whether the store holds it durably
//
// Order of steps, so that a crash anywhere loses nothing: an object is sealed in the store,
// then the manifest names it, then — once the store says it is durable — the log drops the
// segments before it. Retention writes the manifest without the objects first and deletes them
// after; objects under the prefix the manifest does not name are deleted at open.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cinttypes>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>

#include "backends/log/log_format.h"
#include "backends/queue/queue_backend.h"
#include "backends/queue/record_codec.h"
#include "backends/queue/segment_object.h"
#include "core/byte_order.h"
#include "core/huge_pages.h"
#include "core/periodic_thread.h"

namespace packice {
namespace {

using Entry = TierEntry;
using Manifest = TierManifest;

// --- the backend ------------------------------------------------------------------------------

class TieredQueueBackend final : public QueueBackend {
 public:
  TieredQueueBackend(TieredQueueBackendOptions options, std::unique_ptr<QueueBackend> log,
                     Manifest manifest)
      : options_(std::move(options)),
        env_(options_.log.env ? options_.log.env : Env::Default()),
        log_(std::move(log)),
        m_(std::move(manifest)) {}

  ~TieredQueueBackend() override {
    {
      // An AppendAsync's callback touches the counter and the thread: it goes first.
      std::unique_lock<std::mutex> lock(async_mu_);
      async_cv_.wait(lock, [&] { return async_in_flight_ == 0; });
    }
    thread_.reset();
  }

  // Open's second half: the manifest checked against the store, orphans swept, the thread.
  Status Start() {
    std::lock_guard<std::mutex> pass(pass_mu_);
    Manifest m = Snapshot();
    const QueueBackendStats log = log_->stats();
    bool changed = false;
    // Records past the log's end (a machine crash lost the log's unsynced tail, which the
    // sync policy allows) are not kept in objects either: offsets would be handed out twice.
    while (!m.entries.empty() && m.entries.back().end > log.end_offset) {
      m.entries.pop_back();
      changed = true;
    }
    if (m.sealed_end > log.end_offset) {
      m.sealed_end = m.entries.empty() ? log.end_offset : m.entries.back().end;
      changed = true;
    }
    if (m.sealed_end < log.start_offset && m.entries.empty()) {
      m.sealed_end = log.start_offset;
      changed = true;
    }
    for (size_t i = 0; i < m.entries.size(); ++i) {
      Entry& e = m.entries[i];
      if (e.lost) continue;
      Result<ObjectInfo> info = options_.store->Stat(Key(e.first));
      if (info.ok()) {
        if (!e.durable && options_.durable(*info)) e.durable = changed = true;
        continue;
      }
      if (info.status().code() != StatusCode::kNotFound) return info.status();
      changed = true;
      if (log.start_offset <= e.first) {  // the log still has it and all after: seal again
        m.sealed_end = e.first;
        m.entries.resize(i);
        break;
      }
      e.lost = true;
    }
    if (changed) PACKICE_RETURN_IF_ERROR(Commit(m));
    PACKICE_RETURN_IF_ERROR(SweepOrphans(m));
    // What the log holds past the last object, counted once; appends add theirs.
    uint64_t unsealed = 0;
    for (uint64_t at = m.sealed_end; at < log.end_offset;) {
      PACKICE_ASSIGN_OR_RETURN(std::vector<StoredRecord> got, log_->Read(at, 4096, 4u << 20));
      if (got.empty()) break;
      for (const StoredRecord& r : got) unsealed += EncodedRecordBytes(r.record);
      at = got.back().offset + 1;
    }
    unsealed_bytes_ = unsealed;
    if (options_.interval.count() > 0) {
      thread_ = std::make_unique<PeriodicThread>(options_.interval, [this] { PassAndSay(); });
    }
    return Status::Ok();
  }

  Result<uint64_t> Append(std::span<const QueueRecord> records, int64_t now_unix_ms) override {
    PACKICE_ASSIGN_OR_RETURN(uint64_t first, log_->Append(records, now_unix_ms));
    Appended(EncodedBytes(records));
    return first;
  }

  void AppendAsync(std::span<const QueueRecord> records, int64_t now_unix_ms,
                   QueueAppendDone done) override {
    {
      std::lock_guard<std::mutex> lock(async_mu_);
      ++async_in_flight_;
    }
    log_->AppendAsync(
        records, now_unix_ms,
        [this, bytes = EncodedBytes(records), done = std::move(done)](Result<uint64_t> first) {
          if (first.ok()) Appended(bytes);
          done(std::move(first));
          std::lock_guard<std::mutex> lock(async_mu_);  // held to the end: ~ may follow
          --async_in_flight_;
          async_cv_.notify_all();
        });
  }

  Result<std::vector<StoredRecord>> Read(uint64_t offset, size_t limit,
                                         size_t max_bytes) const override {
    std::vector<StoredRecord> out;
    size_t budget = max_bytes;
    // Object by object, then the log, until the limit, the byte bound or the end.
    while (out.size() < limit && (out.empty() || budget > 0)) {
      std::optional<Entry> e = EntryAt(offset);
      if (!e) break;  // the log's (which says out_of_range before its first record)
      Result<uint64_t> next = ReadEntry(*e, offset, limit, &budget, &out);
      if (!next.ok()) {
        if (next.status().code() != StatusCode::kNotFound) return next.status();
        if (offset >= log_->stats().start_offset) break;  // the log still has it
        if (!EntryAt(offset)) {                           // retention took it meanwhile
          if (!out.empty()) break;
          return OutOfRange("queue: offset " + std::to_string(offset) +
                            " was removed by retention; the oldest is " +
                            std::to_string(stats().start_offset));
        }
        return DataLoss("queue: records " + std::to_string(e->first) + ".." +
                        std::to_string(e->end) + " are gone: their segment object " +
                        Key(e->first) + " is not in the store");
      }
      offset = *next;
      if (offset < e->end) return out;  // stopped by the limit or the bound
    }
    if (out.size() < limit && (out.empty() || budget > 0)) {
      Result<std::vector<StoredRecord>> more =
          log_->Read(offset, limit - out.size(), out.empty() ? max_bytes : budget);
      if (!more.ok()) {
        if (!out.empty()) return out;
        return more.status();
      }
      if (out.empty()) return more;
      for (StoredRecord& r : *more) {  // the log gives one at least: not past the bound here
        const size_t n = EncodedRecordBytes(r.record);
        if (n > budget) break;
        budget -= n;
        out.push_back(std::move(r));
      }
    }
    return out;
  }

  Status WaitFor(uint64_t offset, std::chrono::steady_clock::time_point deadline) const override {
    return log_->WaitFor(offset, deadline);
  }

  Status Flush() override { return log_->Flush(); }

  Result<uint64_t> TruncateBefore(uint64_t offset) override {
    std::lock_guard<std::mutex> pass(pass_mu_);
    Manifest m = Snapshot();
    size_t drop = 0;
    while (drop < m.entries.size() && m.entries[drop].end <= offset) ++drop;
    PACKICE_RETURN_IF_ERROR(DropFront(&m, drop));
    PACKICE_RETURN_IF_ERROR(TruncateLog(&m, offset));
    return stats().start_offset;
  }

  Result<uint64_t> Retain(uint64_t max_bytes, std::chrono::milliseconds max_age,
                          int64_t now_unix_ms) override {
    std::lock_guard<std::mutex> pass(pass_mu_);
    Manifest m = Snapshot();
    const QueueBackendStats log = log_->stats();
    uint64_t total = log.bytes + ObjectBytesBefore(m, log.start_offset);
    size_t drop = 0;
    for (; drop < m.entries.size(); ++drop) {
      const Entry& e = m.entries[drop];
      const bool too_big = max_bytes != 0 && total > max_bytes;
      const bool too_old = max_age.count() > 0 && e.newest_unix_ms < now_unix_ms - max_age.count();
      if (!too_big && !too_old) break;
      if (e.first < log.start_offset) total -= e.bytes;  // else the log's retention frees it
    }
    const bool all = drop == m.entries.size();
    const uint64_t cut = drop > 0 ? m.entries[drop - 1].end : 0;
    PACKICE_RETURN_IF_ERROR(DropFront(&m, drop));
    if (cut > 0) PACKICE_RETURN_IF_ERROR(TruncateLog(&m, cut));
    // With no object left, the log's own units are next.
    if (all) {
      PACKICE_ASSIGN_OR_RETURN(uint64_t start, log_->Retain(max_bytes, max_age, now_unix_ms));
      PACKICE_RETURN_IF_ERROR(RaiseSealedEnd(&m, start));
    }
    return stats().start_offset;
  }

  QueueBackendStats stats() const override {
    const QueueBackendStats log = log_->stats();
    std::lock_guard<std::mutex> lock(mu_);
    QueueBackendStats s = log;
    s.start_offset = StartLocked(log.start_offset);
    s.units += m_.entries.size();
    s.bytes += ObjectBytesBefore(m_, log.start_offset);
    return s;
  }

 private:
  static size_t EncodedBytes(std::span<const QueueRecord> records) {
    size_t bytes = 0;
    for (const QueueRecord& r : records) bytes += EncodedRecordBytes(r);
    return bytes;
  }
  // After an append of `bytes`: wakes the pass once an object's worth is unsealed.
  void Appended(size_t bytes) {
    if (unsealed_bytes_.fetch_add(bytes) + bytes >= options_.object_bytes && thread_) {
      thread_->Wake();
    }
  }

  std::string Key(uint64_t first) const {
    char digits[24];
    std::snprintf(digits, sizeof digits, "%020" PRIu64, first);
    return options_.key_prefix + digits;
  }

  // Bytes of the objects that hold records the log no longer has (the others are counted in
  // the log: until the store holds them durably, both keep them).
  static uint64_t ObjectBytesBefore(const Manifest& m, uint64_t log_start) {
    uint64_t bytes = 0;
    for (const Entry& e : m.entries) {
      if (e.first >= log_start) break;
      bytes += e.bytes;
    }
    return bytes;
  }

  // The object that holds `offset`, if one does.
  std::optional<Entry> EntryAt(uint64_t offset) const {
    std::lock_guard<std::mutex> lock(mu_);
    if (offset >= m_.sealed_end) return std::nullopt;
    auto it = std::upper_bound(m_.entries.begin(), m_.entries.end(), offset,
                               [](uint64_t o, const Entry& x) { return o < x.end; });
    if (it == m_.entries.end() || it->first > offset) return std::nullopt;
    return *it;
  }

  Manifest Snapshot() const {
    std::lock_guard<std::mutex> lock(mu_);
    return m_;
  }

  uint64_t StartLocked(uint64_t log_start) const {
    return m_.entries.empty() ? log_start : std::min(m_.entries.front().first, log_start);
  }

  // Writes `m` and makes it the state readers see. REQUIRES: pass_mu_.
  Status Commit(const Manifest& m) {
    PACKICE_RETURN_IF_ERROR(
        ReplaceFile(*env_, options_.log.dir, "MANIFEST", SerializeTierManifest(m)));
    std::lock_guard<std::mutex> lock(mu_);
    m_ = m;
    return Status::Ok();
  }

  // Forgets the first `n` objects (the manifest first), then deletes them from the store.
  Status DropFront(Manifest* m, size_t n) {
    if (n == 0) return Status::Ok();
    std::vector<Entry> gone(m->entries.begin(), m->entries.begin() + n);
    m->entries.erase(m->entries.begin(), m->entries.begin() + n);
    PACKICE_RETURN_IF_ERROR(Commit(*m));
    ForgetViews(gone.back().end);
    for (const Entry& e : gone) {
      Status s = options_.store->Delete(Key(e.first));
      if (!s.ok() && s.code() != StatusCode::kNotFound) return s;
    }
    return Status::Ok();
  }

  // The log without its records before `offset` (whole segments); what it no longer has can
  // never be sealed.
  Status TruncateLog(Manifest* m, uint64_t offset) {
    PACKICE_ASSIGN_OR_RETURN(uint64_t start, log_->TruncateBefore(offset));
    return RaiseSealedEnd(m, start);
  }

  Status RaiseSealedEnd(Manifest* m, uint64_t log_start) {
    if (m->sealed_end >= log_start) return Status::Ok();
    m->sealed_end = log_start;
    return Commit(*m);
  }

  // Deletes objects under the prefix that `m` does not name (a crash between a seal and its
  // manifest, or between a retention's manifest and its deletes).
  Status SweepOrphans(const Manifest& m) {
    ListOptions lo;
    lo.prefix = options_.key_prefix;
    std::vector<std::string> orphans;
    while (true) {
      PACKICE_ASSIGN_OR_RETURN(ListPage page, options_.store->List(lo));
      for (const ObjectInfo& o : page.objects) {
        const std::string tail = o.key.substr(options_.key_prefix.size());
        const bool named = std::any_of(m.entries.begin(), m.entries.end(),
                                       [&](const Entry& e) { return Key(e.first) == o.key; });
        if (!named && tail.size() == 20) orphans.push_back(o.key);
      }
      if (!page.truncated || page.objects.empty()) break;
      lo.start_after = page.objects.back().key;
    }
    for (const std::string& key : orphans) {
      Status s = options_.store->Delete(key);
      if (!s.ok() && s.code() != StatusCode::kNotFound) return s;
    }
    return Status::Ok();
  }

  // A pass, and a warning when it fails (once per distinct error: it runs again each second).
  void PassAndSay() {
    Status s = Pass();
    std::string error = s.ok() ? "" : s.ToString();
    if (!error.empty() && error != last_error_) {
      spdlog::warn("event=queue_tier_failed prefix={} error=\"{}\"", options_.key_prefix, error);
    }
    last_error_ = std::move(error);
  }

  // One pass of the thread: seal what is full, learn which objects became durable, let the
  // log go below the durable ones.
  Status Pass() {
    std::lock_guard<std::mutex> pass(pass_mu_);
    Manifest m = Snapshot();
    bool changed = false;
    while (unsealed_bytes_.load() >= options_.object_bytes) {
      PACKICE_ASSIGN_OR_RETURN(bool sealed, SealOne(&m));
      if (!sealed) break;
      changed = true;
    }
    for (Entry& e : m.entries) {
      if (e.durable || e.lost) continue;
      Result<ObjectInfo> info = options_.store->Stat(Key(e.first));
      if (info.ok() && options_.durable(*info)) e.durable = changed = true;
    }
    if (changed) PACKICE_RETURN_IF_ERROR(Commit(m));
    uint64_t durable_end = 0;
    for (const Entry& e : m.entries) {
      if (!e.durable) break;
      durable_end = e.end;
    }
    if (durable_end > log_->stats().start_offset) {
      PACKICE_RETURN_IF_ERROR(TruncateLog(&m, durable_end));
    }
    return Status::Ok();
  }

  // Seals the next object_bytes of records after sealed_end, if the log holds that many.
  // Returns whether it sealed one.
  Result<bool> SealOne(Manifest* m) {
    SealedRun run;
    run.first = m->sealed_end;
    uint64_t offset = run.first;
    size_t bytes = 0;
    const uint64_t end = log_->stats().end_offset;
    while (bytes < options_.object_bytes && offset < end) {
      PACKICE_ASSIGN_OR_RETURN(
          std::vector<StoredRecord> got,
          log_->Read(offset, 4096, std::min<size_t>(4u << 20, options_.object_bytes - bytes)));
      if (got.empty()) break;
      for (const StoredRecord& r : got) {
        AddToRun(&run, r.record);
        bytes += EncodedRecordBytes(r.record);
      }
      offset = got.back().offset + 1;
    }
    if (bytes < options_.object_bytes) {
      // Fewer than counted (retention took some): the count is what is there, and appends
      // under way add theirs.
      unsealed_bytes_ = bytes;
      return false;
    }
    AcquireRequest req;
    req.key = Key(run.first);
    req.mode = LeaseMode::kCreate;
    req.size = run.object_bytes();
    PACKICE_ASSIGN_OR_RETURN(Grant g, options_.store->Acquire(req));
    Status wrote = [&]() -> Status {
      PACKICE_ASSIGN_OR_RETURN(std::shared_ptr<BlobView> view,
                               g.blob->OpenView(LeaseMode::kCreate));
      if (view->bytes().size() < run.object_bytes()) return Internal("queue: short object view");
      WriteSegmentObject(run, view->bytes().first(run.object_bytes()));
      return Status::Ok();
    }();
    if (!wrote.ok()) {
      options_.store->Discard(g.lease).IgnoreError();
      return wrote;
    }
    PACKICE_ASSIGN_OR_RETURN(ObjectInfo info, options_.store->Seal(g.lease, run.object_bytes()));
    Manifest next = *m;
    next.entries.push_back(
        {run.first, offset, run.object_bytes(), run.newest_unix_ms, options_.durable(info), false});
    next.sealed_end = offset;
    PACKICE_RETURN_IF_ERROR(Commit(next));
    *m = std::move(next);
    unsealed_bytes_.fetch_sub(std::min<uint64_t>(bytes, unsealed_bytes_.load()));
    return true;
  }

  Result<uint64_t> ReadEntry(const Entry& e, uint64_t offset, size_t limit, size_t* budget,
                             std::vector<StoredRecord>* out) const {
    const std::string key = Key(e.first);
    if (e.lost) {
      return DataLoss("queue: records " + std::to_string(e.first) + ".." + std::to_string(e.end) +
                      " are gone: their segment object " + key +
                      " was not in the store when the queue opened");
    }
    PACKICE_ASSIGN_OR_RETURN(std::shared_ptr<const Held> held, View(e.first));
    return ReadSegmentObject(held->bytes, key, e.first, e.end, offset, limit, budget, out);
  }

  // An object's bytes under a read lease; the lease ends when the last holder lets go.
  struct Held {
    Held(std::shared_ptr<Peer> s, Grant g, std::shared_ptr<BlobView> v)
        : store(std::move(s)), grant(std::move(g)), view(std::move(v)) {
      const std::span<std::byte> all = view->bytes();
      bytes = all.first(std::min<uint64_t>(all.size(), grant.info.size));
      PrefaultForRead(bytes);  // a file's mapping: one call, not a fault a page
    }
    ~Held() { store->Release(grant.lease).IgnoreError(); }
    std::shared_ptr<Peer> store;
    Grant grant;
    std::shared_ptr<BlobView> view;
    std::span<const std::byte> bytes;
    std::chrono::steady_clock::time_point fresh_until;  // reused until then
  };

  // The object that starts at `first`, from the few kept open (a sequential reader maps each
  // object once, not once a read), or acquired now. Errors: the store's (kNotFound: gone).
  Result<std::shared_ptr<const Held>> View(uint64_t first) const {
    const auto now = std::chrono::steady_clock::now();
    {
      std::lock_guard<std::mutex> lock(views_mu_);
      auto it = views_.find(first);
      if (it != views_.end() && it->second->fresh_until > now) return it->second;
    }
    AcquireRequest req;
    req.key = Key(first);
    req.mode = LeaseMode::kRead;
    PACKICE_ASSIGN_OR_RETURN(Grant g, options_.store->Acquire(req));
    Result<std::shared_ptr<BlobView>> view = g.blob->OpenView(LeaseMode::kRead);
    if (!view.ok()) {
      options_.store->Release(g.lease).IgnoreError();
      return view.status();
    }
    auto held = std::make_shared<Held>(options_.store, std::move(g), *std::move(view));
    held->fresh_until = now + held->grant.lease_ttl / 2;
    std::shared_ptr<const Held> evicted;  // released outside the lock
    std::lock_guard<std::mutex> lock(views_mu_);
    if (views_.size() >= kKeptViews && !views_.contains(first)) {
      auto oldest =
          std::min_element(views_.begin(), views_.end(), [](const auto& a, const auto& b) {
            return a.second->fresh_until < b.second->fresh_until;
          });
      evicted = std::move(oldest->second);
      views_.erase(oldest);
    }
    views_[first] = held;
    return std::shared_ptr<const Held>(held);
  }

  // Lets go of the kept views of objects before `end` (retention removed them).
  void ForgetViews(uint64_t end) {
    std::vector<std::shared_ptr<const Held>> gone;  // released outside the lock
    std::lock_guard<std::mutex> lock(views_mu_);
    for (auto it = views_.begin(); it != views_.end() && it->first < end;) {
      gone.push_back(std::move(it->second));
      it = views_.erase(it);
    }
  }

  const TieredQueueBackendOptions options_;
  const std::shared_ptr<Env> env_;
  const std::unique_ptr<QueueBackend> log_;
  std::mutex pass_mu_;     // one change of the manifest at a time (held across I/O)
  mutable std::mutex mu_;  // m_, briefly
  Manifest m_;             // what is committed
  // Encoded bytes of the records after sealed_end: an append adds its own once the log has
  // them (so the count never runs ahead of what a seal reads), a seal takes its own off.
  std::atomic<uint64_t> unsealed_bytes_{0};
  static constexpr size_t kKeptViews = 4;
  mutable std::mutex views_mu_;
  mutable std::map<uint64_t, std::shared_ptr<const Held>> views_;  // by first offset
  std::string last_error_;                                         // of the thread's passes
  std::mutex async_mu_;
  std::condition_variable async_cv_;
  size_t async_in_flight_ = 0;  // AppendAsyncs whose callback has not returned; async_mu_
  std::unique_ptr<PeriodicThread> thread_;  // last: stops first
};

}  // namespace

Result<std::unique_ptr<QueueBackend>> OpenTieredQueueBackend(TieredQueueBackendOptions options) {
  if (options.store == nullptr) return InvalidArgument("queue: the tiered backend needs a store");
  if (options.object_bytes == 0) return InvalidArgument("queue: object_bytes must be positive");
  if (!options.durable) {
    options.durable = [](const ObjectInfo& info) { return info.tier == "disk"; };
  }
  std::shared_ptr<Env> env = options.log.env ? options.log.env : Env::Default();
  PACKICE_ASSIGN_OR_RETURN(std::unique_ptr<QueueBackend> log, OpenLogQueueBackend(options.log));
  const std::string path = options.log.dir + "/MANIFEST";
  PACKICE_ASSIGN_OR_RETURN(std::optional<std::string> text, ReadFileIfExists(*env, path));
  Manifest m;
  if (text) {
    PACKICE_ASSIGN_OR_RETURN(m, ParseTierManifest(*text, path));
  } else {
    m.sealed_end = log->stats().start_offset;
  }
  auto backend = std::make_unique<TieredQueueBackend>(std::move(options), std::move(log), m);
  PACKICE_RETURN_IF_ERROR(backend->Start());
  return std::unique_ptr<QueueBackend>(std::move(backend));
}

}  // namespace packice
