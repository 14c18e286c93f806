// The memory QueueBackend (queue_backend.h): encoded sizes are charged, records kept decoded.
#include <condition_variable>
#include <deque>
#include <mutex>

#include "backends/queue/queue_backend.h"
#include "backends/queue/record_codec.h"

namespace packice {
namespace {

class MemoryQueueBackend final : public QueueBackend {
 public:
  explicit MemoryQueueBackend(MemoryQueueBackendOptions o) : o_(o) {}

  Result<uint64_t> Append(std::span<const QueueRecord> records, int64_t now_unix_ms) override {
    if (records.empty()) return InvalidArgument("queue: an append of no records");
    uint64_t total = 0;
    std::vector<uint64_t> sizes;
    sizes.reserve(records.size());
    for (const QueueRecord& r : records) {
      const uint64_t n = EncodedRecordBytes(r);
      if (n > o_.max_record_bytes) {
        return InvalidArgument("queue: a record of " + std::to_string(n) +
                               " bytes is over the limit of " +
                               std::to_string(o_.max_record_bytes));
      }
      sizes.push_back(n);
      total += n;
    }
    if (total > o_.max_append_bytes) {
      return InvalidArgument("queue: an append of " + std::to_string(total) +
                             " bytes is over the limit of " + std::to_string(o_.max_append_bytes));
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (bytes_ + total > o_.max_bytes) {
      return OutOfCapacity("queue: the memory backend holds " + std::to_string(bytes_) + " of " +
                           std::to_string(o_.max_bytes) + " bytes; " + std::to_string(total) +
                           " more do not fit (retention frees space)");
    }
    const uint64_t first = start_ + records_.size();
    for (size_t i = 0; i < records.size(); ++i) {
      records_.push_back({records[i], sizes[i]});
      if (records_.back().record.timestamp_unix_ms == 0) {
        records_.back().record.timestamp_unix_ms = now_unix_ms;
      }
    }
    bytes_ += total;
    cv_.notify_all();
    return first;
  }

  Result<std::vector<StoredRecord>> Read(uint64_t offset, size_t limit,
                                         size_t max_bytes) const override {
    std::lock_guard<std::mutex> lock(mu_);
    const uint64_t end = start_ + records_.size();
    if (offset < start_) {
      return OutOfRange("queue: offset " + std::to_string(offset) +
                        " was removed by retention; the oldest is " + std::to_string(start_));
    }
    if (offset > end) {
      return OutOfRange("queue: offset " + std::to_string(offset) + " is past the end (" +
                        std::to_string(end) + ")");
    }
    std::vector<StoredRecord> out;
    size_t bytes = 0;
    for (uint64_t o = offset; o < end && out.size() < limit; ++o) {
      const Kept& k = records_[o - start_];
      if (!out.empty() && bytes + k.bytes > max_bytes) break;
      bytes += k.bytes;
      out.push_back({o, k.record});
    }
    return out;
  }

  Status WaitFor(uint64_t offset, std::chrono::steady_clock::time_point deadline) const override {
    std::unique_lock<std::mutex> lock(mu_);
    if (!cv_.wait_until(lock, deadline, [&] { return offset < start_ + records_.size(); })) {
      return Timeout("queue: no record " + std::to_string(offset) + " yet");
    }
    return Status::Ok();
  }

  Status Flush() override { return Status::Ok(); }

  Result<uint64_t> TruncateBefore(uint64_t offset) override {
    std::lock_guard<std::mutex> lock(mu_);
    while (start_ < offset && !records_.empty()) {
      bytes_ -= records_.front().bytes;
      records_.pop_front();
      ++start_;
    }
    return start_;
  }

  Result<uint64_t> Retain(uint64_t max_bytes, std::chrono::milliseconds max_age,
                          int64_t now_unix_ms) override {
    std::lock_guard<std::mutex> lock(mu_);
    const int64_t oldest_kept = now_unix_ms - max_age.count();
    while (!records_.empty() &&
           ((max_bytes != 0 && bytes_ > max_bytes) ||
            (max_age.count() > 0 && records_.front().record.timestamp_unix_ms < oldest_kept))) {
      bytes_ -= records_.front().bytes;
      records_.pop_front();
      ++start_;
    }
    return start_;
  }

  QueueBackendStats stats() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return {start_, start_ + records_.size(), records_.size(), bytes_};
  }

 private:
  struct Kept {
    QueueRecord record;
    uint64_t bytes;
  };

  const MemoryQueueBackendOptions o_;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::deque<Kept> records_;  // offsets start_, start_ + 1, ...
  uint64_t start_ = 0;
  uint64_t bytes_ = 0;
};

}  // namespace

std::unique_ptr<QueueBackend> NewMemoryQueueBackend(MemoryQueueBackendOptions options) {
  return std::make_unique<MemoryQueueBackend>(options);
}

}  // namespace packice
