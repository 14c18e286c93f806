#include "services/kv/bucket.h"

#include <absl/container/flat_hash_map.h>
#include <absl/container/flat_hash_set.h>
#include <absl/hash/hash.h>
#include <unistd.h>

#include <algorithm>
#include <utility>

#include "core/env.h"
#include "services/kv/bucket_internal.h"

namespace packice::kv {

using internal::Expired;
using internal::MaxRecordBytes;
using internal::Quote;
using internal::ToKeyValue;

namespace {

constexpr size_t kReapBatch = 1000;

SyncPolicy SyncOf(KvFsync f) {
  switch (f) {
    case KvFsync::kInterval:
      return SyncPolicy::kInterval;
    case KvFsync::kNever:
      return SyncPolicy::kNever;
    case KvFsync::kAlways:
      break;
  }
  return SyncPolicy::kAlways;
}

}  // namespace

std::optional<std::string> PrefixEnd(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    if (static_cast<unsigned char>(end.back()) != 0xff) {
      end.back() = static_cast<char>(static_cast<unsigned char>(end.back()) + 1);
      return end;
    }
    end.pop_back();
  }
  return std::nullopt;
}

Bucket::Bucket(std::string dir, const NamespaceOptions& options, const KvOptions& kv)
    : dir_(std::move(dir)), options_(options), kv_(kv) {
  const size_t n = options.write_mode == KvWriteMode::kNoLinear ? kNoLinearShards : 1;
  for (size_t i = 0; i < n; ++i) {
    auto s = std::make_unique<Shard>();
    s->engine = MakeEngine(options.engine);
    shards_.push_back(std::move(s));
  }
}

Bucket::~Bucket() {
  if (hub_) hub_->EndAll(Aborted("namespace closed"));
  log_.reset();
  if (!remove_on_close_) return;
  Env& env = *kv_.env;
  std::vector<std::string> names;
  if (env.ListDir(dir_, &names) == 0) {
    for (const std::string& name : names) (void)env.Unlink(dir_ + "/" + name);
  }
  ::rmdir(dir_.c_str());  // not durable I/O: the Env has no rmdir; a leftover is collected
}

Result<std::unique_ptr<Bucket>> Bucket::Open(const std::string& dir,
                                             const NamespaceOptions& options, const KvOptions& kv) {
  std::unique_ptr<Bucket> b(new Bucket(dir, options, kv));
  LogOptions lo;
  lo.dir = dir;
  lo.env = kv.env;
  lo.sync = SyncOf(options.fsync);
  lo.sync_interval = options.fsync_interval;
  lo.segment_bytes = kv.segment_bytes;
  lo.max_record_bytes = MaxRecordBytes(kv);
  lo.max_batch_bytes = std::min<uint64_t>(kv.segment_bytes - 32,
                                          std::max<uint64_t>(lo.max_record_bytes + 20, 8 << 20));
  lo.max_snapshot_bytes = 4ull << 30;
  b->log_batch_bytes_ = lo.max_batch_bytes;
  PACKICE_ASSIGN_OR_RETURN(b->log_, Log::Open(lo));
  PACKICE_RETURN_IF_ERROR(b->Recover());
  return b;
}

Status Bucket::Recover() {
  int64_t snap_rev = 0;
  auto snap = log_->ReadSnapshot();
  if (snap.ok()) {
    PACKICE_RETURN_IF_ERROR(DecodeSnapshot(std::as_bytes(std::span(snap->bytes)), &snap_rev,
                                           [&](std::string key, Entry e) {
                                             if (e.expires_unix_ms != 0) {
                                               MutexLock lock(&expiry_mu_);
                                               expiry_.emplace(e.expires_unix_ms, key);
                                             }
                                             shards_[ShardOf(key)]->engine->Put(key, std::move(e));
                                           }));
    if (static_cast<uint64_t>(snap_rev) != snap->seq) {
      return DataLoss(dir_ + ": snapshot of revision " + std::to_string(snap_rev) +
                      " filed as of sequence " + std::to_string(snap->seq));
    }
  } else if (snap.status().code() != StatusCode::kNotFound) {
    return snap.status();
  }
  const LogStats st = log_->stats();
  if (st.first_seq > static_cast<uint64_t>(snap_rev) ||
      st.next_seq < static_cast<uint64_t>(snap_rev)) {
    return DataLoss(dir_ + ": the log holds records [" + std::to_string(st.first_seq) + ", " +
                    std::to_string(st.next_seq) + ") but the snapshot is of revision " +
                    std::to_string(snap_rev));
  }
  hub_ = std::make_unique<WatchHub>(
      kv_.history_events, kv_.history_bytes, snap_rev + 1,
      [this](int64_t from, int64_t to, const auto& fn) { return ReadHistory(from, to, fn); });
  uint64_t from = static_cast<uint64_t>(snap_rev);
  uint64_t replayed = 0;
  while (from < st.next_seq) {
    PACKICE_ASSIGN_OR_RETURN(LogReadResult r, log_->Read(from, 1024, 8 << 20));
    if (r.records.empty()) break;
    for (const LogRecord& rec : r.records) {
      PACKICE_ASSIGN_OR_RETURN(std::vector<Mutation> muts, DecodeMutations(rec.payload));
      const int64_t rev = static_cast<int64_t>(rec.seq) + 1;
      std::vector<KvEvent> events = Apply(muts, rev);
      if (rec.type == kRecordExpire) {
        for (KvEvent& e : events) e.expired = true;
      }
      if (!events.empty()) hub_->AddHistory(rev, std::move(events));
      replayed += rec.payload.size();
    }
    from = r.next_seq;
  }
  bytes_since_snapshot_ = replayed;
  return Status::Ok();
}

size_t Bucket::ShardOf(std::string_view key) const {
  if (shards_.size() == 1) return 0;
  return KeyHash{}(key) % shards_.size();
}

Status Bucket::CheckKey(std::string_view key) const {
  if (key.empty()) return InvalidArgument("empty key");
  if (key.size() > kv_.max_key_bytes) {
    return InvalidArgument("key of " + std::to_string(key.size()) + " bytes: over the limit of " +
                           std::to_string(kv_.max_key_bytes));
  }
  return Status::Ok();
}

std::vector<KvEvent> Bucket::Apply(std::vector<Mutation>& muts, int64_t revision) {
  std::vector<KvEvent> events;
  events.reserve(muts.size());
  for (Mutation& m : muts) {
    Engine& engine = *shards_[ShardOf(m.key)]->engine;
    KvEvent ev;
    std::optional<Entry> old;
    bool creates = false;  // a put of a key with nothing live: no previous value to show
    int64_t expires = 0;
    if (m.put) {
      ev.type = KvEvent::Type::kPut;
      // Create revision 0 (or this record's: a Linear group sets it): the put creates the key;
      // what it replaces, if anything, had expired.
      creates = m.entry.create_revision == 0 || m.entry.create_revision == revision;
      m.entry.mod_revision = revision;
      if (creates) m.entry.create_revision = revision;
      ev.kv = ToKeyValue(m.key, m.entry);
      expires = m.entry.expires_unix_ms;
      old = engine.Put(m.key, std::move(m.entry));
    } else {
      ev.type = KvEvent::Type::kDelete;
      ev.kv.key = m.key;
      ev.kv.mod_revision = revision;
      old = engine.Erase(m.key);
    }
    if (old && old->expires_unix_ms != 0) {  // before the new one: they may be equal
      MutexLock lock(&expiry_mu_);
      expiry_.erase({old->expires_unix_ms, m.key});
    }
    if (expires != 0) {
      MutexLock lock(&expiry_mu_);
      expiry_.emplace(expires, m.key);
    }
    if (old && !creates) ev.prev = ToKeyValue(m.key, *std::move(old));
    events.push_back(std::move(ev));
  }
  return events;
}

void Bucket::MaybeSnapshot() {
  if (!snapshot_due_.exchange(false)) return;
  // A failure leaves the log as it was; the next write above the threshold tries again.
  Snapshot().IgnoreError();
}

Status Bucket::Snapshot() {
  std::lock_guard<std::mutex> one(snapshot_mu_);
  uint64_t seq = 0;
  std::string bytes;
  // Most of the log is made durable before writers are held up: the sync under the lock below
  // then has only the records since (with fsync never, up to snapshot_after_bytes of them).
  PACKICE_RETURN_IF_ERROR(log_->Sync());
  {
    for (auto& s : shards_) s->write_mu.lock();
    struct Unlocker {
      Bucket* b;
      ~Unlocker() {
        for (auto& s : b->shards_) s->write_mu.unlock();
      }
    } unlocker{this};
    // The snapshot must never be ahead of the durable log: after a machine crash the log
    // would hand out its revisions again.
    PACKICE_RETURN_IF_ERROR(log_->Sync());
    seq = log_->next_seq();
    bytes_since_snapshot_ = 0;
    SnapshotWriter w(static_cast<int64_t>(seq));
    uint64_t entries = 0, bytes_in = 0;
    for (auto& s : shards_) {
      s->engine->ForEach([&](const std::string& k, const Entry& e) {
        ++entries;
        bytes_in += k.size() + e.value.size();
      });
    }
    w.Reserve(entries, bytes_in);
    for (auto& s : shards_) {
      s->engine->ForEach([&](const std::string& k, const Entry& e) { w.Add(k, e); });
    }
    bytes = w.Finish();
  }
  PACKICE_RETURN_IF_ERROR(log_->WriteSnapshot(seq, std::as_bytes(std::span(bytes))));
  return log_->TruncateBefore(seq).status();
}

Result<KeyValue> Bucket::Get(std::string_view key) const {
  PACKICE_RETURN_IF_ERROR(CheckKey(key));
  const int64_t now = kv_.clock->UnixMillis();
  const Shard& s = *shards_[ShardOf(key)];
  std::shared_lock lock(s.read_mu);
  const Entry* e = s.engine->Find(key);
  if (e == nullptr || Expired(*e, now)) return NotFound("no key " + Quote(key));
  return ToKeyValue(key, *e);
}

Result<Bucket::Op> Bucket::PutOp(std::string_view key, std::string_view value,
                                 const PutOptions& o) const {
  PACKICE_RETURN_IF_ERROR(CheckKey(key));
  if (value.size() > kv_.max_value_bytes) {
    return InvalidArgument("value of " + std::to_string(value.size()) +
                           " bytes: over the limit of " + std::to_string(kv_.max_value_bytes));
  }
  if (o.ttl && o.ttl->count() < 0) return InvalidArgument("negative TTL");
  if (o.if_mod_revision && *o.if_mod_revision < 0) {
    return InvalidArgument("negative mod revision");
  }
  Op op;
  op.key = key;
  op.value = value;
  op.ttl = o.ttl;
  op.if_mod_revision = o.if_mod_revision;
  op.want_prev = o.prev_kv;
  return op;
}

Result<PutResult> Bucket::ToPutResult(Result<Outcome> out, bool prev_kv) {
  PACKICE_RETURN_IF_ERROR(out.status());
  PutResult r;
  r.revision = out->revision;
  if (prev_kv) r.prev = std::move(out->prev[0]);
  return r;
}

Result<PutResult> Bucket::Put(std::string_view key, std::string_view value, const PutOptions& o) {
  PACKICE_ASSIGN_OR_RETURN(Op op, PutOp(key, value, o));
  Result<Outcome> out = Write(std::span(&op, 1), kRecordWrite);
  if (out.ok()) MaybeSnapshot();
  return ToPutResult(std::move(out), o.prev_kv);
}

std::vector<Result<PutResult>> Bucket::PutMany(std::span<const KvPutItem> puts) {
  std::vector<Result<PutResult>> results(puts.size(), Result<PutResult>(Internal("not run")));
  std::vector<Op> ops(puts.size());
  std::vector<PendingWrite> writes(puts.size());
  std::vector<PendingWrite*> queued;
  std::vector<size_t> index;
  for (size_t i = 0; i < puts.size(); ++i) {
    Result<Op> op = PutOp(puts[i].key, puts[i].value, puts[i].options);
    if (!op.ok()) {
      results[i] = op.status();
      continue;
    }
    ops[i] = *op;
    if (shards_.size() > 1) {  // NoLinear: no queue to join
      results[i] = ToPutResult(Write(std::span(&ops[i], 1), kRecordWrite), puts[i].options.prev_kv);
      continue;
    }
    writes[i].ops = std::span(&ops[i], 1);
    writes[i].type = kRecordWrite;
    queued.push_back(&writes[i]);
    index.push_back(i);
  }
  if (!queued.empty()) WriteLinearMany(queued);
  for (size_t j = 0; j < queued.size(); ++j) {
    const size_t i = index[j];
    results[i] = ToPutResult(std::move(*queued[j]->result), puts[i].options.prev_kv);
  }
  MaybeSnapshot();
  return results;
}

Result<DeleteResult> Bucket::Delete(std::string_view key, const DeleteOptions& o) {
  PACKICE_RETURN_IF_ERROR(CheckKey(key));
  if (o.if_mod_revision && *o.if_mod_revision <= 0) {
    return InvalidArgument("a conditional delete needs a mod revision > 0");
  }
  Op op;
  op.kind = BatchOp::Kind::kDelete;
  op.key = key;
  op.if_mod_revision = o.if_mod_revision;
  op.want_prev = o.prev_kv;
  PACKICE_ASSIGN_OR_RETURN(Outcome out, Write(std::span(&op, 1), kRecordWrite));
  MaybeSnapshot();
  DeleteResult r;
  r.revision = out.revision;
  if (o.prev_kv) r.prev = std::move(out.prev[0]);
  return r;
}

Result<BatchResult> Bucket::Commit(std::span<const BatchOp> ops) {
  if (ops.empty()) return InvalidArgument("empty batch");
  if (ops.size() > kv_.max_batch_ops) {
    return InvalidArgument("batch of " + std::to_string(ops.size()) + " ops: over the limit of " +
                           std::to_string(kv_.max_batch_ops));
  }
  absl::flat_hash_set<std::string_view, KeyHash, KeyEq> keys;
  uint64_t bytes = 0;
  std::vector<Op> internal;
  internal.reserve(ops.size());
  for (const BatchOp& b : ops) {
    PACKICE_RETURN_IF_ERROR(CheckKey(b.key));
    if (b.value.size() > kv_.max_value_bytes) {
      return InvalidArgument("value of " + std::to_string(b.value.size()) + " bytes for key " +
                             Quote(b.key) + ": over the limit of " +
                             std::to_string(kv_.max_value_bytes));
    }
    if (!keys.insert(b.key).second) {
      return InvalidArgument("key " + Quote(b.key) + " twice in one batch");
    }
    if (b.ttl && b.ttl->count() < 0) return InvalidArgument("negative TTL");
    if (b.if_mod_revision &&
        (*b.if_mod_revision < 0 || (b.kind == BatchOp::Kind::kDelete && *b.if_mod_revision == 0))) {
      return InvalidArgument("bad mod revision for key " + Quote(b.key));
    }
    bytes += b.key.size() + b.value.size();
    Op op;
    op.kind = b.kind;
    op.key = b.key;
    op.value = b.value;
    op.ttl = b.ttl;
    op.if_mod_revision = b.if_mod_revision;
    op.ignore_missing = b.ignore_missing;
    internal.push_back(op);
  }
  if (bytes > kv_.max_batch_bytes) {
    return InvalidArgument("batch of " + std::to_string(bytes) + " bytes: over the limit of " +
                           std::to_string(kv_.max_batch_bytes));
  }
  PACKICE_ASSIGN_OR_RETURN(Outcome out, Write(internal, kRecordWrite));
  MaybeSnapshot();
  return BatchResult{out.revision};
}

Result<ScanResult> Bucket::Scan(const ScanOptions& o) const {
  if (o.limit == 0 || o.limit > kv_.max_scan_limit) {
    return InvalidArgument("scan limit " + std::to_string(o.limit) + ": must be 1.." +
                           std::to_string(kv_.max_scan_limit));
  }
  KeyRange range;
  if (!o.prefix.empty()) {
    if (!o.start.empty() || !o.end.empty()) {
      return InvalidArgument("a scan has a prefix or a range, not both");
    }
    range.lo = o.prefix;
    if (auto end = PrefixEnd(o.prefix)) {
      range.hi = *end;
      range.has_hi = true;
    }
  } else {
    range.lo = o.start;
    range.hi = o.end;
    range.has_hi = !o.end.empty();
    if (range.has_hi && range.hi <= range.lo) return ScanResult{{}, "", revision()};
  }
  if (!o.after.empty() && o.after >= range.lo) {
    range.lo = o.after;
    range.lo_inclusive = false;
  }
  const int64_t now = kv_.clock->UnixMillis();
  ScanResult r;
  r.revision = revision();
  // A page ends at `limit` keys or once it holds max_scan_bytes of keys and values (the entry
  // that crosses it included: a page always makes progress). Each shard stops by the same
  // rules, so no shard's unread keys sort before the merged page's end.
  const size_t want = o.limit + 1;  // one more tells whether a next page exists
  const uint64_t budget = kv_.max_scan_bytes;
  auto size_of = [&](const KeyValue& kv) { return kv.key.size() + kv.value.size(); };
  bool shard_cut = false;  // a shard stopped at the byte budget: more keys may follow
  for (const auto& s : shards_) {
    std::shared_lock lock(s->read_mu);
    size_t taken = 0;
    uint64_t bytes = 0;
    s->engine->Scan(range, [&](const std::string& k, const Entry& e) {
      if (Expired(e, now)) return true;
      r.kvs.push_back(ToKeyValue(k, e, !o.keys_only));
      bytes += size_of(r.kvs.back());
      if (bytes >= budget) {
        shard_cut = true;
        return false;
      }
      return ++taken < want;
    });
  }
  if (shards_.size() > 1) {
    std::sort(r.kvs.begin(), r.kvs.end(),
              [](const KeyValue& a, const KeyValue& b) { return a.key < b.key; });
  }
  size_t keep = 0;
  uint64_t bytes = 0;
  while (keep < r.kvs.size() && keep < o.limit && bytes < budget) bytes += size_of(r.kvs[keep++]);
  if (keep < r.kvs.size() || shard_cut) {
    r.kvs.resize(keep);
    if (!r.kvs.empty()) r.next = r.kvs.back().key;
  }
  return r;
}

Result<std::unique_ptr<KvWatcher>> Bucket::Watch(const WatchOptions& o) {
  if (!o.prefix) PACKICE_RETURN_IF_ERROR(CheckKey(o.key));
  return hub_->Watch(o, o.buffer_events ? o.buffer_events : kv_.watcher_buffer_events,
                     kv_.watcher_buffer_bytes);
}

Status Bucket::ReadHistory(
    int64_t from, int64_t to,
    const std::function<bool(int64_t, const std::vector<KvEvent>&)>& fn) const {
  uint64_t seq = static_cast<uint64_t>(from - 1);
  const uint64_t end = static_cast<uint64_t>(to - 1);
  while (seq < end) {
    auto r = log_->Read(seq, 256, 1 << 20);
    if (!r.ok()) {
      if (r.status().code() != StatusCode::kOutOfRange) return r.status();
      return OutOfRange("watch from revision " + std::to_string(from) + ": compacted, oldest is " +
                        std::to_string(log_->first_seq() + 1));
    }
    if (r->records.empty()) return Status::Ok();
    for (const LogRecord& rec : r->records) {
      if (rec.seq >= end) return Status::Ok();
      PACKICE_ASSIGN_OR_RETURN(std::vector<Mutation> muts, DecodeMutations(rec.payload));
      const int64_t rev = static_cast<int64_t>(rec.seq) + 1;
      std::vector<KvEvent> events;
      for (Mutation& m : muts) {
        KvEvent e;
        e.expired = rec.type == kRecordExpire;
        if (m.put) {
          m.entry.mod_revision = rev;
          if (m.entry.create_revision == 0) m.entry.create_revision = rev;
          e.kv = ToKeyValue(m.key, m.entry);
        } else {
          e.type = KvEvent::Type::kDelete;
          e.kv.key = m.key;
          e.kv.mod_revision = rev;
        }
        events.push_back(std::move(e));
      }
      if (!fn(rev, events)) return Status::Ok();
    }
    seq = r->next_seq;
  }
  return Status::Ok();
}

Result<size_t> Bucket::ReapExpired() {
  const int64_t now = kv_.clock->UnixMillis();
  std::vector<std::string> keys;
  {
    MutexLock lock(&expiry_mu_);
    for (const auto& [when, key] : expiry_) {
      if (when > now || keys.size() >= kReapBatch) break;
      keys.push_back(key);
    }
  }
  if (keys.empty()) return size_t{0};
  std::vector<Op> ops(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    ops[i].kind = BatchOp::Kind::kDelete;
    ops[i].key = keys[i];
    ops[i].expired_only = true;
  }
  PACKICE_ASSIGN_OR_RETURN(Outcome out, Write(ops, kRecordExpire));
  MaybeSnapshot();
  return out.applied;
}

int64_t Bucket::revision() const { return static_cast<int64_t>(log_->next_seq()); }

uint64_t Bucket::keys() const {
  uint64_t n = 0;
  for (const auto& s : shards_) {
    std::shared_lock lock(s->read_mu);
    n += s->engine->size();
  }
  return n;
}

void Bucket::EndWatchers(const Status& reason) { hub_->EndAll(reason); }

}  // namespace packice::kv
