// The Queue of one node (include/packice/queue.h; docs/queue.md): a table of topics, each
// with its buckets (a QueueBackend each) and its groups' positions.
//
//   DIR/TOPICS                          the topic table (text; replaced atomically)
//   DIR/topics/<id>/buckets/<b>/        bucket b's log
//   DIR/topics/<id>/groups/             the group positions' log
//   DIR/topics/<id>/SCHEMAS             its schema versions (JSON; replaced atomically)
//
// Ids are never reused: a topic deleted and created again starts in fresh directories, and
// directories no table entry names (a deletion a crash interrupted) are removed at open.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <sstream>

#include "backends/queue/queue_backend.h"
#include "backends/queue/record_codec.h"
#include "core/env.h"
#include "core/periodic_thread.h"
#include "core/validate.h"
#include "packice/clock.h"
#include "packice/queue.h"
#include "services/queue/group_positions.h"
#include "services/queue/queue_schema.h"

namespace packice {
namespace {

using queue::GroupPositions;
using queue::SchemaSet;

constexpr const char* kTableHeader = "packice-queue-topics 1";
constexpr uint32_t kMaxBuckets = 1024;
constexpr const char* kObjectPrefix = "queue/";  // tiered topics' objects

Status ValidateName(std::string_view what, std::string_view name) {
  // A cluster keeps bucket b of topic T as the topic "T@b" of its owner (cluster_queue.h).
  if (const size_t at = name.rfind('@'); what == "topic" && at != std::string_view::npos) {
    const std::string_view part = name.substr(at + 1);
    if (part.empty() || part.size() > 4 || name.find('@') != at ||
        !std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return InvalidArgument("topic name '" + std::string(name.substr(0, 80)) +
                             "': '@' only comes before a bucket number");
    }
    return ValidateName(what, name.substr(0, at));
  }
  auto bad = [&](const std::string& why) {
    return InvalidArgument(std::string(what) + " name '" + std::string(name.substr(0, 80)) +
                           "': " + why);
  };
  if (name.empty() || name.size() > 128) return bad("must be 1..128 bytes");
  if (name == "." || name == "..") return bad("'.' and '..' are not names");
  if (!std::all_of(name.begin(), name.end(), IsNameChar)) {
    return bad("names are made of A-Z a-z 0-9 . _ -");
  }
  return Status::Ok();
}

Status ValidateOptions(const TopicOptions& o) {
  if (o.buckets < 1 || o.buckets > kMaxBuckets) {
    return InvalidArgument("a topic has 1.." + std::to_string(kMaxBuckets) + " buckets, not " +
                           std::to_string(o.buckets));
  }
  if (o.fsync != QueueFsync::kAlways && o.fsync != QueueFsync::kInterval &&
      o.fsync != QueueFsync::kNever) {
    return InvalidArgument("unknown fsync policy");
  }
  if (o.fsync_interval.count() < 1 || o.fsync_interval.count() > 60000) {
    return InvalidArgument("fsync interval must be 1 ms .. 60 s");
  }
  if (o.segment_bytes < (1u << 20) || o.segment_bytes > (1ull << 30)) {
    return InvalidArgument("segment size must be 1 MiB .. 1 GiB");
  }
  if (o.retention_age.count() < 0) return InvalidArgument("negative retention age");
  if (o.storage != QueueStorage::kLog && o.storage != QueueStorage::kTiered) {
    return InvalidArgument("unknown storage");
  }
  return Status::Ok();
}

SyncPolicy ToSync(QueueFsync f) {
  switch (f) {
    case QueueFsync::kAlways:
      return SyncPolicy::kAlways;
    case QueueFsync::kInterval:
      return SyncPolicy::kInterval;
    case QueueFsync::kNever:
      break;
  }
  return SyncPolicy::kNever;
}

struct Topic {
  uint64_t id = 0;
  std::string name;
  TopicOptions options;
  std::string dir;  // empty in memory
  std::vector<std::unique_ptr<QueueBackend>> buckets;
  std::unique_ptr<GroupPositions> groups;
  // Readers waiting for an append to any bucket.
  std::mutex mu;
  std::condition_variable cv;
  uint64_t appends = 0;  // guarded by mu
  bool deleted = false;  // guarded by mu; once set, the files go with the topic
  std::map<uint64_t, std::function<void()>> subscribers;  // guarded by mu
  uint64_t next_subscriber = 0;                           // guarded by mu
  // Its schema versions: replaced whole (under schema_mu, then mu), read under mu.
  std::shared_ptr<const SchemaSet> schemas = std::make_shared<SchemaSet>();
  std::mutex schema_mu;  // one SetSchema at a time: the file and the swap

  std::shared_ptr<const SchemaSet> Schemas() {
    std::lock_guard<std::mutex> lock(mu);
    return schemas;
  }
  // Per bucket, since the open (BucketInfo's counters).
  struct Counters {
    std::atomic<uint64_t> records_in{0}, bytes_in{0}, records_out{0}, bytes_out{0}, appends{0},
        append_micros{0};
  };
  std::unique_ptr<Counters[]> counters;

  // Wakes waiting readers and subscribers (an append, or the deletion); caller holds mu.
  void NotifyLocked() {
    ++appends;
    for (auto& [id, notify] : subscribers) notify();
    cv.notify_all();
  }

  ~Topic() {
    if (deleted && options.storage == QueueStorage::kTiered) {
      // Its objects in the store go with it (a leftover is swept at the next open).
      for (auto& b : buckets) b->TruncateBefore(~0ull).IgnoreError();
    }
    buckets.clear();  // closes the logs before their files go
    groups.reset();
    if (deleted && !dir.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);  // a leftover is removed at the next open
    }
  }
};

class LocalQueue final : public Queue {
 public:
  explicit LocalQueue(QueueOptions o)
      : dir_(std::move(o.dir)),
        env_(o.env ? std::move(o.env) : Env::Default()),
        clock_(o.clock ? std::move(o.clock) : Clock::System()),
        retention_interval_(o.retention_interval),
        object_store_(std::move(o.object_store)),
        object_durable_(std::move(o.object_durable)),
        object_bytes_(o.object_bytes) {}

  Status Load();
  void StartRetention() {
    if (retention_interval_.count() <= 0) return;
    retention_ = std::make_unique<PeriodicThread>(retention_interval_, [this] {
      if (Status s = EnforceRetention(); !s.ok()) {
        spdlog::warn("event=queue_retention_failed error=\"{}\"", s.ToString());
      }
    });
  }

  Status EnforceRetention() override {
    std::vector<std::shared_ptr<Topic>> topics;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const auto& [name, t] : topics_) topics.push_back(t);
    }
    const int64_t now = clock_->UnixMillis();
    Status first = Status::Ok();
    for (const auto& t : topics) {
      if (t->options.retention_bytes == 0 && t->options.retention_age.count() == 0) continue;
      for (auto& b : t->buckets) {
        auto r = b->Retain(t->options.retention_bytes, t->options.retention_age, now);
        if (!r.ok() && first.ok()) first = r.status();
      }
    }
    return first;
  }

  Status CreateTopic(std::string_view name, const TopicOptions& options) override {
    PACKICE_RETURN_IF_ERROR(ValidateName("topic", name));
    PACKICE_RETURN_IF_ERROR(ValidateOptions(options));
    if (options.storage == QueueStorage::kTiered && (dir_.empty() || object_store_ == nullptr)) {
      return InvalidArgument(
          "a tiered topic needs a queue on disk with an object store (packiced with --store "
          "tiered or disk)");
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (topics_.contains(std::string(name))) {
      return AlreadyExists("topic " + std::string(name) + " exists");
    }
    const uint64_t id = next_id_;
    std::map<std::string, std::pair<uint64_t, TopicOptions>> table = Table();
    table[std::string(name)] = {id, options};
    PACKICE_RETURN_IF_ERROR(WriteTable(table, id + 1));
    next_id_ = id + 1;
    auto topic = OpenTopic(id, std::string(name), options);
    if (!topic.ok()) {
      // The table names it; the next open tries again and says why if it fails there too.
      return topic.status();
    }
    topics_[std::string(name)] = *std::move(topic);
    return Status::Ok();
  }

  Status DeleteTopic(std::string_view name) override {
    std::shared_ptr<Topic> topic;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = topics_.find(std::string(name));
      if (it == topics_.end()) return NotFound("no topic " + std::string(name));
      auto table = Table();
      table.erase(std::string(name));
      PACKICE_RETURN_IF_ERROR(WriteTable(table, next_id_));
      topic = std::move(it->second);
      topics_.erase(it);
    }
    {
      std::lock_guard<std::mutex> lock(topic->mu);
      topic->deleted = true;
      topic->NotifyLocked();
    }
    return Status::Ok();  // its files go with the last call using it
  }

  Result<std::vector<TopicInfo>> ListTopics() override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<TopicInfo> out;
    for (const auto& [name, t] : topics_) out.push_back({name, t->options});
    return out;
  }

  Result<std::vector<BucketInfo>> Buckets(std::string_view name) override {
    PACKICE_ASSIGN_OR_RETURN(std::shared_ptr<Topic> t, Find(name));
    std::vector<BucketInfo> out;
    for (uint32_t b = 0; b < t->buckets.size(); ++b) {
      const QueueBackendStats s = t->buckets[b]->stats();
      const Topic::Counters& c = t->counters[b];
      out.push_back({b, s.start_offset, s.end_offset, s.bytes, c.records_in.load(),
                     c.bytes_in.load(), c.records_out.load(), c.bytes_out.load(), c.appends.load(),
                     c.append_micros.load()});
    }
    return out;
  }

  Result<uint64_t> Append(std::string_view name, uint32_t bucket,
                          std::span<const QueueRecord> records) override {
    std::vector<QueueRecord> stamped;
    PACKICE_ASSIGN_OR_RETURN(std::shared_ptr<Topic> t, ForAppend(name, bucket, &records, &stamped));
    const auto start = std::chrono::steady_clock::now();
    Result<uint64_t> at = t->buckets[bucket]->Append(records, clock_->UnixMillis());
    if (at.ok()) Appended(*t, bucket, Tally(records), start);
    return at;
  }

  void AppendAsync(std::string_view name, uint32_t bucket, std::span<const QueueRecord> records,
                   QueueAppendDone done) override {
    std::vector<QueueRecord> stamped;
    Result<std::shared_ptr<Topic>> found = ForAppend(name, bucket, &records, &stamped);
    if (!found.ok()) return done(found.status());
    // Not a reference: `done` would hold the topic, and its last reference dropped there
    // would close the log on the log's own thread. The topic outlives the callback anyway:
    // ~Topic closes its buckets (which waits for every callback) before its members go.
    Topic* t = found->get();
    t->buckets[bucket]->AppendAsync(
        records, clock_->UnixMillis(),
        [t, bucket, records = Tally(records), start = std::chrono::steady_clock::now(),
         done = std::move(done)](Result<uint64_t> at) {
          if (at.ok()) Appended(*t, bucket, records, start);
          done(std::move(at));
        });
  }

  Result<std::vector<BucketRecords>> Read(std::string_view name,
                                          std::span<const QueuePosition> from, size_t limit,
                                          std::chrono::milliseconds wait,
                                          size_t max_bytes) override {
    PACKICE_ASSIGN_OR_RETURN(std::shared_ptr<Topic> t, Find(name));
    for (const QueuePosition& p : from) PACKICE_RETURN_IF_ERROR(CheckBucket(*t, p.bucket));
    if (wait.count() < 0) return InvalidArgument("negative wait");
    const auto deadline = std::chrono::steady_clock::now() + wait;
    const std::shared_ptr<const SchemaSet> schemas = t->Schemas();
    while (true) {
      uint64_t seen;
      {
        std::lock_guard<std::mutex> lock(t->mu);
        if (t->deleted) return NotFound("topic " + std::string(name) + " was deleted");
        seen = t->appends;
      }
      std::vector<BucketRecords> out;
      size_t left = limit, bytes_left = max_bytes;
      for (const QueuePosition& p : from) {
        if (left == 0) break;
        PACKICE_ASSIGN_OR_RETURN(std::vector<StoredRecord> got,
                                 t->buckets[p.bucket]->Read(p.offset, left, bytes_left));
        if (got.empty()) continue;
        left -= got.size();
        uint64_t got_bytes = 0;
        for (const StoredRecord& r : got) {
          const size_t n = EncodedRecordBytes(r.record);
          got_bytes += n;
          bytes_left = bytes_left > n ? bytes_left - n : 0;
        }
        t->counters[p.bucket].records_out += got.size();
        t->counters[p.bucket].bytes_out += got_bytes;
        if (schemas->newest_version() > 1) {
          for (StoredRecord& r : got) schemas->Upgrade(&r.record);
        }
        out.push_back({p.bucket, std::move(got)});
        if (bytes_left == 0) break;
      }
      if (!out.empty() || limit == 0) return out;
      std::unique_lock<std::mutex> lock(t->mu);
      if (!t->cv.wait_until(lock, deadline, [&] { return t->appends != seen || t->deleted; })) {
        return out;  // none in time
      }
    }
  }

  Status Commit(std::string_view name, std::string_view group, uint32_t bucket,
                uint64_t offset) override {
    PACKICE_ASSIGN_OR_RETURN(std::shared_ptr<Topic> t, Find(name));
    PACKICE_RETURN_IF_ERROR(ValidateName("group", group));
    PACKICE_RETURN_IF_ERROR(CheckBucket(*t, bucket));
    const uint64_t end = t->buckets[bucket]->stats().end_offset;
    if (offset > end) {
      return OutOfRange("offset " + std::to_string(offset) + " is past the end of bucket " +
                        std::to_string(bucket) + " (" + std::to_string(end) + ")");
    }
    return t->groups->Commit(std::string(group), bucket, offset);
  }

  Result<std::optional<uint64_t>> Committed(std::string_view name, std::string_view group,
                                            uint32_t bucket) override {
    PACKICE_ASSIGN_OR_RETURN(std::shared_ptr<Topic> t, Find(name));
    PACKICE_RETURN_IF_ERROR(ValidateName("group", group));
    PACKICE_RETURN_IF_ERROR(CheckBucket(*t, bucket));
    return t->groups->Get(std::string(group), bucket);
  }

  Result<std::vector<GroupPosition>> Groups(std::string_view name) override {
    PACKICE_ASSIGN_OR_RETURN(std::shared_ptr<Topic> t, Find(name));
    std::vector<GroupPosition> out;
    for (const auto& [key, offset] : t->groups->All()) {
      out.push_back({key.first, key.second, offset});
    }
    return out;
  }

  Result<QueueSubscription> Subscribe(std::string_view name,
                                      std::function<void()> notify) override {
    PACKICE_ASSIGN_OR_RETURN(std::shared_ptr<Topic> t, Find(name));
    uint64_t id;
    {
      std::lock_guard<std::mutex> lock(t->mu);
      if (t->deleted) return NotFound("topic " + std::string(name) + " was deleted");
      id = t->next_subscriber++;
      t->subscribers.emplace(id, std::move(notify));
    }
    std::weak_ptr<Topic> weak = t;
    return QueueSubscription(static_cast<void*>(nullptr), [weak, id](void*) {
      if (std::shared_ptr<Topic> topic = weak.lock()) {
        std::lock_guard<std::mutex> lock(topic->mu);
        topic->subscribers.erase(id);
      }
    });
  }

  Result<uint32_t> SetSchema(std::string_view name, const QueueSchema& schema) override {
    PACKICE_ASSIGN_OR_RETURN(std::shared_ptr<Topic> t, Find(name));
    std::lock_guard<std::mutex> one_at_a_time(t->schema_mu);
    std::shared_ptr<const SchemaSet> now = t->Schemas();
    PACKICE_ASSIGN_OR_RETURN(std::optional<SchemaSet> next, now->With(schema));
    if (!next) return now->newest_version();  // the newest already
    if (!t->dir.empty()) {
      PACKICE_RETURN_IF_ERROR(ReplaceFile(*env_, t->dir, "SCHEMAS", next->Serialize()));
    }
    auto installed = std::make_shared<const SchemaSet>(*std::move(next));
    std::lock_guard<std::mutex> lock(t->mu);
    t->schemas = installed;
    return installed->newest_version();
  }

  Result<std::vector<QueueSchema>> Schemas(std::string_view name) override {
    PACKICE_ASSIGN_OR_RETURN(std::shared_ptr<Topic> t, Find(name));
    return t->Schemas()->versions();
  }

  // Only fsync "always" on disk waits: "interval" and "never" return once written (a tiered
  // topic seals in the background), a queue in memory writes no file, and an append to no
  // topic fails at once.
  bool AppendsWait(std::string_view name) override {
    Result<std::shared_ptr<Topic>> t = Find(name);
    return t.ok() && !(*t)->dir.empty() && (*t)->options.fsync == QueueFsync::kAlways;
  }

 private:
  Result<std::shared_ptr<Topic>> Find(std::string_view name) {
    PACKICE_RETURN_IF_ERROR(ValidateName("topic", name));
    std::lock_guard<std::mutex> lock(mu_);
    auto it = topics_.find(std::string(name));
    if (it == topics_.end()) return NotFound("no topic " + std::string(name));
    return it->second;
  }

  // An append's topic, its bucket checked and its records stamped with the topic's schema
  // version (into `stamped`, then `*records` points there) when it has one.
  Result<std::shared_ptr<Topic>> ForAppend(std::string_view name, uint32_t bucket,
                                           std::span<const QueueRecord>* records,
                                           std::vector<QueueRecord>* stamped) {
    PACKICE_ASSIGN_OR_RETURN(std::shared_ptr<Topic> t, Find(name));
    PACKICE_RETURN_IF_ERROR(CheckBucket(*t, bucket));
    if (std::shared_ptr<const SchemaSet> schemas = t->Schemas(); !schemas->empty()) {
      PACKICE_RETURN_IF_ERROR(schemas->Stamp(*records, stamped));
      *records = *stamped;
    }
    return t;
  }

  // What an append counts: its records and their encoded bytes.
  struct AppendTally {
    uint64_t records = 0;
    uint64_t bytes = 0;
  };
  static AppendTally Tally(std::span<const QueueRecord> records) {
    AppendTally n{records.size(), 0};
    for (const QueueRecord& r : records) n.bytes += EncodedRecordBytes(r);
    return n;
  }
  // Counts a successful append and wakes the topic's readers.
  static void Appended(Topic& t, uint32_t bucket, AppendTally n,
                       std::chrono::steady_clock::time_point start) {
    Topic::Counters& c = t.counters[bucket];
    c.records_in += n.records;
    c.bytes_in += n.bytes;
    c.appends += 1;
    c.append_micros += std::chrono::duration_cast<std::chrono::microseconds>(
                           std::chrono::steady_clock::now() - start)
                           .count();
    std::lock_guard<std::mutex> lock(t.mu);
    t.NotifyLocked();
  }

  static Status CheckBucket(const Topic& t, uint32_t bucket) {
    if (bucket >= t.buckets.size()) {
      return InvalidArgument("topic " + t.name + " has buckets 0.." +
                             std::to_string(t.buckets.size() - 1) + ", not " +
                             std::to_string(bucket));
    }
    return Status::Ok();
  }

  std::string TopicDir(uint64_t id) const { return dir_ + "/topics/" + std::to_string(id); }

  Result<std::shared_ptr<Topic>> OpenTopic(uint64_t id, std::string name,
                                           const TopicOptions& options) {
    auto t = std::make_shared<Topic>();
    t->id = id;
    t->name = std::move(name);
    t->options = options;
    t->counters = std::make_unique<Topic::Counters[]>(options.buckets);
    if (dir_.empty()) {
      for (uint32_t b = 0; b < options.buckets; ++b) {
        t->buckets.push_back(NewMemoryQueueBackend());
      }
      t->groups = std::make_unique<GroupPositions>();
      return t;
    }
    t->dir = TopicDir(id);
    PACKICE_RETURN_IF_ERROR(MakeDirs(*env_, t->dir + "/buckets", 0700, true));
    for (uint32_t b = 0; b < options.buckets; ++b) {
      LogOptions lo;
      lo.dir = t->dir + "/buckets/" + std::to_string(b);
      lo.env = env_;
      lo.sync = ToSync(options.fsync);
      lo.sync_interval = options.fsync_interval;
      lo.segment_bytes = options.segment_bytes;
      lo.max_batch_bytes = std::min<uint64_t>(8ull << 20, options.segment_bytes - 32);
      lo.max_record_bytes = std::min<uint64_t>(4ull << 20, lo.max_batch_bytes - 20);
      PACKICE_ASSIGN_OR_RETURN(std::unique_ptr<QueueBackend> backend, OpenBucket(*t, b, lo));
      t->buckets.push_back(std::move(backend));
    }
    PACKICE_ASSIGN_OR_RETURN(std::optional<std::string> schemas,
                             ReadFileIfExists(*env_, t->dir + "/SCHEMAS"));
    if (schemas) {
      Result<SchemaSet> set = SchemaSet::Parse(*schemas);
      if (!set.ok()) return DataLoss(t->dir + "/" + std::string(set.status().message()));
      t->schemas = std::make_shared<const SchemaSet>(*std::move(set));
    }
    LogOptions go;
    go.dir = t->dir + "/groups";
    go.env = env_;
    go.segment_bytes = 1u << 20;
    go.max_batch_bytes = 512u << 10;
    go.max_record_bytes = 64u << 10;
    PACKICE_ASSIGN_OR_RETURN(t->groups, GroupPositions::Open(go));
    return t;
  }

  Result<std::unique_ptr<QueueBackend>> OpenBucket(const Topic& t, uint32_t bucket,
                                                   LogOptions log) {
    if (t.options.storage == QueueStorage::kLog) return OpenLogQueueBackend(std::move(log));
    if (object_store_ == nullptr) {
      return InvalidArgument("topic " + t.name +
                             " is tiered, and this queue has no object store to seal into");
    }
    TieredQueueBackendOptions o;
    o.log = std::move(log);
    o.store = object_store_;
    o.key_prefix = ObjectPrefix(t.id) + std::to_string(bucket) + "/";
    o.object_bytes = object_bytes_ != 0 ? object_bytes_ : t.options.segment_bytes;
    o.durable = object_durable_;
    return OpenTieredQueueBackend(std::move(o));
  }

  static std::string ObjectPrefix(uint64_t topic_id) {
    return std::string(kObjectPrefix) + std::to_string(topic_id) + "/";
  }

  // Objects of topics no longer in the table (a deletion a crash interrupted).
  Status SweepObjects(const std::map<uint64_t, std::pair<std::string, TopicOptions>>& entries) {
    if (object_store_ == nullptr) return Status::Ok();
    ListOptions lo;
    lo.prefix = kObjectPrefix;
    std::vector<std::string> orphans;
    while (true) {
      PACKICE_ASSIGN_OR_RETURN(ListPage page, object_store_->List(lo));
      for (const ObjectInfo& o : page.objects) {
        char* end = nullptr;
        const char* id = o.key.c_str() + lo.prefix.size();
        const uint64_t topic = std::strtoull(id, &end, 10);
        if (end != id && *end == '/' && !entries.contains(topic)) orphans.push_back(o.key);
      }
      if (!page.truncated || page.objects.empty()) break;
      lo.start_after = page.objects.back().key;
    }
    for (const std::string& key : orphans) object_store_->Delete(key).IgnoreError();
    return Status::Ok();
  }

  std::map<std::string, std::pair<uint64_t, TopicOptions>> Table() const {
    std::map<std::string, std::pair<uint64_t, TopicOptions>> table;
    for (const auto& [name, t] : topics_) table[name] = {t->id, t->options};
    return table;
  }

  Status WriteTable(const std::map<std::string, std::pair<uint64_t, TopicOptions>>& table,
                    uint64_t next_id) {
    if (dir_.empty()) return Status::Ok();
    std::string text = std::string(kTableHeader) + "\nnext " + std::to_string(next_id) + "\n";
    for (const auto& [name, entry] : table) {
      const TopicOptions& o = entry.second;
      text += "topic " + std::to_string(entry.first) + " " + std::to_string(o.buckets) + " " +
              std::to_string(int(o.fsync)) + " " + std::to_string(o.fsync_interval.count()) + " " +
              std::to_string(o.segment_bytes) + " " + std::to_string(o.retention_bytes) + " " +
              std::to_string(o.retention_age.count()) + " " + name + " " +
              std::string(QueueStorageName(o.storage)) + "\n";
    }
    text += "end " + std::to_string(table.size()) + "\n";
    return ReplaceFile(*env_, dir_, "TOPICS", text);
  }

  const std::string dir_;
  const std::shared_ptr<Env> env_;
  const std::shared_ptr<Clock> clock_;
  const std::chrono::milliseconds retention_interval_;
  const std::shared_ptr<Peer> object_store_;
  const std::function<bool(const ObjectInfo&)> object_durable_;
  const uint64_t object_bytes_;
  std::mutex mu_;  // the table: topics_, next_id_ and the file
  std::map<std::string, std::shared_ptr<Topic>> topics_;
  uint64_t next_id_ = 1;
  std::unique_ptr<PeriodicThread> retention_;  // last: its thread stops before the topics go
};

Status LocalQueue::Load() {
  if (dir_.empty()) return Status::Ok();
  PACKICE_RETURN_IF_ERROR(MakeDirs(*env_, dir_ + "/topics", 0700, true));
  const std::string path = dir_ + "/TOPICS";
  PACKICE_ASSIGN_OR_RETURN(std::optional<std::string> file, ReadFileIfExists(*env_, path));
  std::map<uint64_t, std::pair<std::string, TopicOptions>> entries;
  if (file) {
    std::istringstream in(*file);
    std::string line;
    auto corrupt = [&](const std::string& why) { return DataLoss(path + ": " + why); };
    if (!std::getline(in, line) || line != kTableHeader) return corrupt("bad header");
    if (!std::getline(in, line) || std::sscanf(line.c_str(), "next %lu", &next_id_) != 1) {
      return corrupt("bad 'next' line");
    }
    bool ended = false;
    while (std::getline(in, line)) {
      if (line.starts_with("end ")) {
        if (std::stoul(line.substr(4)) != entries.size()) return corrupt("count does not match");
        ended = true;
        break;
      }
      std::istringstream f(line);
      std::string tag, name;
      uint64_t id = 0;
      int fsync = 0;
      int64_t interval = 0, age = 0;
      TopicOptions o;
      if (!(f >> tag >> id >> o.buckets >> fsync >> interval >> o.segment_bytes >>
            o.retention_bytes >> age >> name) ||
          tag != "topic" || !ValidateName("topic", name).ok() || id >= next_id_) {
        return corrupt("bad line '" + line.substr(0, 80) + "'");
      }
      o.fsync = static_cast<QueueFsync>(fsync);
      o.fsync_interval = std::chrono::milliseconds(interval);
      o.retention_age = std::chrono::milliseconds(age);
      std::string storage = "log";  // tables written before tiered topics end at the name
      f >> storage;
      Result<QueueStorage> parsed = ParseQueueStorage(storage);
      if (!parsed.ok()) return corrupt("bad storage of " + name);
      o.storage = *parsed;
      if (!ValidateOptions(o).ok()) return corrupt("bad options of " + name);
      if (!entries.emplace(id, std::make_pair(name, o)).second) {
        return corrupt("id " + std::to_string(id) + " twice");
      }
    }
    if (!ended) return corrupt("cut short (no 'end' line)");
  }
  for (const auto& [id, entry] : entries) {
    if (topics_.contains(entry.first)) return DataLoss(path + ": topic " + entry.first + " twice");
    PACKICE_ASSIGN_OR_RETURN(topics_[entry.first], OpenTopic(id, entry.first, entry.second));
  }
  PACKICE_RETURN_IF_ERROR(SweepObjects(entries));
  // Directories of topics no longer in the table: deletions a crash interrupted.
  std::vector<std::string> names;
  if (env_->ListDir(dir_ + "/topics", &names) == 0) {
    for (const std::string& n : names) {
      char* end = nullptr;
      const uint64_t id = std::strtoull(n.c_str(), &end, 10);
      if (end == n.c_str() || *end != '\0' || entries.contains(id)) continue;
      std::error_code ec;
      std::filesystem::remove_all(dir_ + "/topics/" + n, ec);
    }
  }
  return Status::Ok();
}

}  // namespace

Result<std::shared_ptr<Queue>> OpenQueue(QueueOptions options) {
  auto q = std::make_shared<LocalQueue>(std::move(options));
  PACKICE_RETURN_IF_ERROR(q->Load());
  q->StartRetention();
  return std::shared_ptr<Queue>(std::move(q));
}

}  // namespace packice
