// QueueWriter and QueueReader (include/packice/queue.h): the application's view of a topic,
// over any Queue; and the names of the fsync policies.
#include <xxhash.h>

#include <map>
#include <mutex>

#include "packice/queue.h"

namespace packice {

std::string_view QueueFsyncName(QueueFsync f) {
  switch (f) {
    case QueueFsync::kAlways:
      return "always";
    case QueueFsync::kInterval:
      return "interval";
    case QueueFsync::kNever:
      return "never";
  }
  return "always";
}

Result<QueueFsync> ParseQueueFsync(std::string_view name) {
  for (QueueFsync f : {QueueFsync::kAlways, QueueFsync::kInterval, QueueFsync::kNever}) {
    if (name == QueueFsyncName(f)) return f;
  }
  return InvalidArgument("fsync is \"always\", \"interval\" or \"never\", not \"" +
                         std::string(name.substr(0, 32)) + "\"");
}

std::string_view QueueStorageName(QueueStorage s) {
  return s == QueueStorage::kTiered ? "tiered" : "log";
}

Result<QueueStorage> ParseQueueStorage(std::string_view name) {
  for (QueueStorage s : {QueueStorage::kLog, QueueStorage::kTiered}) {
    if (name == QueueStorageName(s)) return s;
  }
  return InvalidArgument("storage is \"log\" or \"tiered\", not \"" +
                         std::string(name.substr(0, 32)) + "\"");
}

Result<QueueWriter> QueueWriter::Open(std::shared_ptr<Queue> queue, std::string topic,
                                      std::shared_ptr<std::atomic<uint64_t>> turn) {
  PACKICE_ASSIGN_OR_RETURN(std::vector<BucketInfo> buckets, queue->Buckets(topic));
  return QueueWriter(std::move(queue), std::move(topic), static_cast<uint32_t>(buckets.size()),
                     std::move(turn));
}

uint32_t QueueWriter::BucketFor(const QueueRecord& r) {
  if (r.key) return static_cast<uint32_t>(XXH64(r.key->data(), r.key->size(), 0) % buckets_);
  return static_cast<uint32_t>(next_->fetch_add(1, std::memory_order_relaxed) % buckets_);
}

Result<AppendResult> QueueWriter::Put(QueueRecord record) {
  const uint32_t bucket = BucketFor(record);
  PACKICE_ASSIGN_OR_RETURN(uint64_t offset, queue_->Append(topic_, bucket, std::span(&record, 1)));
  return AppendResult{bucket, offset};
}

std::map<uint32_t, std::vector<size_t>> QueueWriter::ByBucket(
    std::span<const QueueRecord> records) {
  std::map<uint32_t, std::vector<size_t>> by_bucket;
  for (size_t i = 0; i < records.size(); ++i) by_bucket[BucketFor(records[i])].push_back(i);
  return by_bucket;
}

namespace {

// The records of `indexes`: `records` itself when that is all of them (one bucket), else
// copies in `*copy`.
std::span<const QueueRecord> Pick(std::span<const QueueRecord> records,
                                  const std::vector<size_t>& indexes,
                                  std::vector<QueueRecord>* copy) {
  if (indexes.size() == records.size()) return records;
  copy->reserve(indexes.size());
  for (size_t i : indexes) copy->push_back(records[i]);
  return *copy;
}

}  // namespace

Result<std::vector<AppendResult>> QueueWriter::PutBatch(std::span<const QueueRecord> records) {
  if (records.empty()) return InvalidArgument("queue: a batch of no records");
  std::vector<AppendResult> out(records.size());
  for (const auto& [bucket, indexes] : ByBucket(records)) {
    std::vector<QueueRecord> copy;
    PACKICE_ASSIGN_OR_RETURN(uint64_t first,
                             queue_->Append(topic_, bucket, Pick(records, indexes, &copy)));
    for (size_t j = 0; j < indexes.size(); ++j) out[indexes[j]] = {bucket, first + j};
  }
  return out;
}

void QueueWriter::PutBatchAsync(std::span<const QueueRecord> records, PutBatchDone done) {
  if (records.empty()) return done(InvalidArgument("queue: a batch of no records"));
  std::map<uint32_t, std::vector<size_t>> by_bucket = ByBucket(records);
  struct Pending {
    std::mutex mu;
    size_t buckets = 0;  // appends not finished
    std::vector<AppendResult> out;
    Status error;
    uint32_t error_bucket = 0;
    PutBatchDone done;
  };
  auto pending = std::make_shared<Pending>();
  pending->buckets = by_bucket.size();
  pending->out.resize(records.size());
  pending->done = std::move(done);
  for (auto& [bucket, indexes] : by_bucket) {
    std::vector<QueueRecord> copy;
    const std::span<const QueueRecord> part = Pick(records, indexes, &copy);
    queue_->AppendAsync(
        topic_, bucket, part,
        [pending, bucket = bucket, indexes = std::move(indexes)](Result<uint64_t> first) {
          bool last = false;
          {
            std::lock_guard<std::mutex> lock(pending->mu);
            if (first.ok()) {
              for (size_t j = 0; j < indexes.size(); ++j) {
                pending->out[indexes[j]] = {bucket, *first + j};
              }
            } else if (pending->error.ok() || bucket < pending->error_bucket) {
              pending->error = first.status();
              pending->error_bucket = bucket;
            }
            last = --pending->buckets == 0;
          }
          if (!last) return;
          if (!pending->error.ok()) return pending->done(pending->error);
          pending->done(std::move(pending->out));
        });
  }
}

Result<QueueReader> QueueReader::Open(std::shared_ptr<Queue> queue, std::string topic,
                                      std::string group) {
  PACKICE_ASSIGN_OR_RETURN(std::vector<BucketInfo> buckets, queue->Buckets(topic));
  std::vector<QueuePosition> positions;
  for (const BucketInfo& b : buckets) {
    PACKICE_ASSIGN_OR_RETURN(std::optional<uint64_t> at, queue->Committed(topic, group, b.bucket));
    // Never committed, or committed before what retention kept: the oldest record kept.
    positions.push_back({b.bucket, std::max(at.value_or(0), b.start_offset)});
  }
  return QueueReader(std::move(queue), std::move(topic), std::move(group), std::move(positions));
}

Result<std::vector<BucketRecords>> QueueReader::Get(size_t limit, std::chrono::milliseconds wait) {
  // Starting at a different bucket each time: a busy bucket does not starve the others.
  std::vector<QueuePosition> from;
  for (size_t i = 0; i < positions_.size(); ++i) {
    from.push_back(positions_[(first_ + i) % positions_.size()]);
  }
  first_ = (first_ + 1) % positions_.size();
  PACKICE_ASSIGN_OR_RETURN(std::vector<BucketRecords> got, queue_->Read(topic_, from, limit, wait));
  for (const BucketRecords& b : got) {
    if (!b.records.empty()) positions_[b.bucket].offset = b.records.back().offset + 1;
  }
  return got;
}

Status QueueReader::Commit() {
  for (const QueuePosition& p : positions_) {
    PACKICE_RETURN_IF_ERROR(queue_->Commit(topic_, group_, p.bucket, p.offset));
  }
  return Status::Ok();
}

}  // namespace packice
