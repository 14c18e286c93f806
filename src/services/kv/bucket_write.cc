// The write path of a bucket (bucket.h): checks, the Linear writer queue, the NoLinear
// sharded path, append, apply, publish.
#include <absl/container/flat_hash_map.h>

#include <algorithm>
#include <mutex>
#include <shared_mutex>
#include <utility>

#include "services/kv/bucket.h"
#include "services/kv/bucket_internal.h"

namespace packice::kv {

using internal::Expired;
using internal::Quote;
using internal::ToKeyValue;

Result<Bucket::Prepared> Bucket::Prepare(
    std::span<const Op> ops, int64_t now,
    const std::function<const Entry*(std::string_view)>& find) const {
  Prepared out;
  out.prev.resize(ops.size());
  for (size_t i = 0; i < ops.size(); ++i) {
    const Op& op = ops[i];
    const Entry* cur = find(op.key);
    const bool live = cur != nullptr && !Expired(*cur, now);
    if (op.expired_only) {
      if (cur != nullptr && Expired(*cur, now)) {
        out.muts.push_back({false, std::string(op.key), {}});
      }
      continue;
    }
    if (op.if_mod_revision) {
      const int64_t want = *op.if_mod_revision;
      if (want == 0 && live) {
        return AlreadyExists("key " + Quote(op.key) + " exists (mod revision " +
                             std::to_string(cur->mod_revision) + ")");
      }
      if (want != 0 && !live) {
        return NotFound("key " + Quote(op.key) + " is absent, expected mod revision " +
                        std::to_string(want));
      }
      if (want != 0 && cur->mod_revision != want) {
        return WrongState("key " + Quote(op.key) + " is at mod revision " +
                          std::to_string(cur->mod_revision) + ", expected " + std::to_string(want));
      }
    }
    if (live && op.want_prev) out.prev[i] = ToKeyValue(op.key, *cur);
    if (op.kind == BatchOp::Kind::kDelete) {
      if (!live) {
        if (op.ignore_missing) continue;
        return NotFound("no key " + Quote(op.key));
      }
      out.muts.push_back({false, std::string(op.key), {}});
      continue;
    }
    Mutation m{true, std::string(op.key), {}};
    m.entry.value = std::string(op.value);
    m.entry.create_revision = live ? cur->create_revision : 0;  // 0: this record's revision
    m.entry.version = live ? cur->version + 1 : 1;
    const Duration ttl = op.ttl.value_or(options_.default_ttl);
    m.entry.expires_unix_ms = ttl.count() > 0 ? now + ttl.count() : 0;
    out.muts.push_back(std::move(m));
  }
  return out;
}

void Bucket::Publish(std::vector<Mutation>& muts, int64_t revision, uint8_t type,
                     const std::vector<size_t>& shards) {
  std::vector<KvEvent> events;
  {
    std::vector<std::unique_lock<std::shared_mutex>> w;
    for (size_t i : shards) w.emplace_back(shards_[i]->read_mu);
    events = Apply(muts, revision);
  }
  if (type == kRecordExpire) {
    for (KvEvent& e : events) e.expired = true;
  }
  hub_->Publish(revision, std::move(events));
}

Result<Bucket::Outcome> Bucket::Write(std::span<const Op> ops, uint8_t type) {
  if (shards_.size() == 1) return WriteLinear(ops, type);
  // Shards to lock, in index order (a batch over several never deadlocks with another).
  std::vector<size_t> locked;
  for (const Op& op : ops) locked.push_back(ShardOf(op.key));
  std::sort(locked.begin(), locked.end());
  locked.erase(std::unique(locked.begin(), locked.end()), locked.end());
  for (size_t i : locked) shards_[i]->write_mu.lock();
  struct Unlocker {
    Bucket* b;
    std::vector<size_t>* locked;
    ~Unlocker() {
      for (size_t i : *locked) b->shards_[i]->write_mu.unlock();
    }
  } unlocker{this, &locked};

  PACKICE_ASSIGN_OR_RETURN(Prepared p,
                           Prepare(ops, kv_.clock->UnixMillis(), [this](std::string_view key) {
                             return shards_[ShardOf(key)]->engine->Find(key);
                           }));
  Outcome out;
  out.prev = std::move(p.prev);
  if (p.muts.empty()) {
    out.revision = revision();
    return out;
  }
  const std::string payload = EncodeMutations(p.muts);
  PACKICE_ASSIGN_OR_RETURN(uint64_t seq, log_->Append(std::as_bytes(std::span(payload)), type));
  out.revision = static_cast<int64_t>(seq) + 1;
  out.applied = p.muts.size();
  Publish(p.muts, out.revision, type, locked);
  if ((bytes_since_snapshot_ += payload.size()) >= kv_.snapshot_after_bytes) {
    snapshot_due_ = true;
  }
  return out;
}

// Linear: writers queue in arrival order; the one at the front (the leader) takes the queue,
// checks each writer's ops in order against the engine plus what the writers before it in the
// group change, appends one record per writer with one Log::Append (one pwrite, one fdatasync),
// applies and publishes them in order, and hands each writer its result. Revisions follow the
// queue, and so do acknowledgements.
Result<Bucket::Outcome> Bucket::WriteLinear(std::span<const Op> ops, uint8_t type) {
  PendingWrite w;
  w.ops = ops;
  w.type = type;
  PendingWrite* one = &w;
  WriteLinearMany(std::span(&one, 1));
  return std::move(*w.result);
}

void Bucket::WriteLinearMany(std::span<PendingWrite* const> writes) {
  std::unique_lock<std::mutex> lock(queue_mu_);
  for (PendingWrite* w : writes) queue_.push_back(w);
  // Each of `writes` is done by a leader, or leads when it reaches the front (its own group
  // then likely holds the rest of `writes`: they were queued together).
  for (PendingWrite* w : writes) {
    w->cv.wait(lock, [&] { return w->result.has_value() || queue_.front() == w; });
    if (w->result) continue;
    std::vector<PendingWrite*> group(queue_.begin(), queue_.end());
    lock.unlock();
    std::vector<Result<Outcome>> results;
    const size_t taken = RunGroup(group, &results);
    lock.lock();
    for (size_t i = 0; i < taken; ++i) {
      queue_.pop_front();
      group[i]->result = std::move(results[i]);
      if (group[i] != w) group[i]->cv.notify_one();
    }
    if (!queue_.empty()) queue_.front()->cv.notify_one();
  }
}

size_t Bucket::RunGroup(const std::vector<PendingWrite*>& group,
                        std::vector<Result<Outcome>>* results) {
  Shard& shard = *shards_[0];
  std::lock_guard<std::mutex> write_lock(shard.write_mu);  // excludes a snapshot's copy
  const int64_t now = kv_.clock->UnixMillis();
  // What the group's earlier writers change: their planned mutations' entries (their keys and
  // entries stay where they are while `planned` grows: each Planned's vector is moved whole);
  // null = deleted.
  absl::flat_hash_map<std::string_view, const Entry*, KeyHash, KeyEq> overlay;
  auto find = [&](std::string_view key) -> const Entry* {
    auto it = overlay.find(key);
    if (it != overlay.end()) return it->second;
    return shard.engine->Find(key);
  };
  // Only this leader appends to the log of a Linear bucket: revisions are known in advance.
  int64_t next_rev = static_cast<int64_t>(log_->next_seq()) + 1;
  // One Append carries at most the log's max_batch_bytes, framed (20 bytes per record).
  constexpr uint64_t kFrameBytes = 20;
  const uint64_t budget = log_batch_bytes_;
  struct Planned {
    size_t writer;
    int64_t revision;
    std::vector<Mutation> muts;
    std::string payload;
  };
  std::vector<Planned> planned;
  uint64_t bytes = 0;
  size_t taken = 0;
  for (; taken < group.size(); ++taken) {
    PendingWrite& pw = *group[taken];
    auto p = Prepare(pw.ops, now, find);
    if (!p.ok()) {
      results->push_back(p.status());
      continue;
    }
    Outcome out;
    out.prev = std::move(p->prev);
    if (p->muts.empty()) {
      out.revision = next_rev - 1;
      results->push_back(std::move(out));
      continue;
    }
    std::string payload = EncodeMutations(p->muts);
    if (!planned.empty() && bytes + payload.size() + kFrameBytes > budget) break;  // next group
    bytes += payload.size() + kFrameBytes;
    out.revision = next_rev;
    out.applied = p->muts.size();
    for (Mutation& m : p->muts) {  // encoded already: the revisions are set for the overlay
      if (m.put) {
        m.entry.mod_revision = next_rev;
        if (m.entry.create_revision == 0) m.entry.create_revision = next_rev;  // Apply: creates
      }
      overlay[m.key] = m.put ? &m.entry : nullptr;
    }
    planned.push_back({taken, next_rev++, std::move(p->muts), std::move(payload)});
    results->push_back(std::move(out));
  }
  if (planned.empty()) return taken;
  std::vector<LogEntry> entries;
  for (const Planned& pl : planned) {
    entries.push_back({group[pl.writer]->type, std::as_bytes(std::span(pl.payload))});
  }
  auto seq = log_->Append(entries);
  if (!seq.ok() || static_cast<int64_t>(*seq) + 1 != planned.front().revision) {
    const Status err =
        seq.ok() ? Internal("kv: the log of a Linear bucket was appended to by another writer")
                 : seq.status();
    for (const Planned& pl : planned) (*results)[pl.writer] = err;
    return taken;
  }
  const std::vector<size_t> only{0};
  for (Planned& pl : planned) Publish(pl.muts, pl.revision, group[pl.writer]->type, only);
  if ((bytes_since_snapshot_ += bytes) >= kv_.snapshot_after_bytes) snapshot_due_ = true;
  return taken;
}

}  // namespace packice::kv
