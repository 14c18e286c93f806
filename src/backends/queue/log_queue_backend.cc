// The log QueueBackend (queue_backend.h): a queue record is one log record (type kRecordType,
// its payload record_codec.h's encoding), its offset the record's sequence number.
#include "backends/queue/queue_backend.h"
#include "backends/queue/record_codec.h"

namespace packice {
namespace {

constexpr uint8_t kRecordType = 1;

// An append's records encoded as log entries: one buffer for the whole append (one
// allocation, not one a record); the entries point into it.
struct Encoded {
  Encoded(std::span<const QueueRecord> records, int64_t now_unix_ms) {
    size_t total = 0;
    for (const QueueRecord& r : records) total += EncodedRecordBytes(r);
    payloads.reserve(total);
    std::vector<size_t> ends(records.size());
    for (size_t i = 0; i < records.size(); ++i) {
      EncodeRecord(records[i], &payloads, now_unix_ms);
      ends[i] = payloads.size();
    }
    const std::span<const std::byte> all = std::as_bytes(std::span(payloads));
    entries.resize(records.size());
    for (size_t i = 0, begin = 0; i < records.size(); begin = ends[i++]) {
      entries[i] = {kRecordType, all.subspan(begin, ends[i] - begin)};
    }
  }
  std::string payloads;
  std::vector<LogEntry> entries;
};

class LogQueueBackend final : public QueueBackend {
 public:
  explicit LogQueueBackend(std::unique_ptr<Log> log) : log_(std::move(log)) {}

  Result<uint64_t> Append(std::span<const QueueRecord> records, int64_t now_unix_ms) override {
    if (records.empty()) return InvalidArgument("queue: an append of no records");
    Encoded e(records, now_unix_ms);
    return log_->Append(e.entries);
  }

  void AppendAsync(std::span<const QueueRecord> records, int64_t now_unix_ms,
                   QueueAppendDone done) override {
    if (records.empty()) return done(InvalidArgument("queue: an append of no records"));
    Encoded e(records, now_unix_ms);
    log_->AppendAsync(e.entries, std::move(done));  // copies the payloads
  }

  Result<std::vector<StoredRecord>> Read(uint64_t offset, size_t limit,
                                         size_t max_bytes) const override {
    PACKICE_ASSIGN_OR_RETURN(LogReadResult r, log_->Read(offset, limit, max_bytes));
    std::vector<StoredRecord> out;
    out.reserve(r.records.size());
    for (const LogRecord& rec : r.records) {
      if (rec.type != kRecordType) {
        return DataLoss("queue: log record " + std::to_string(rec.seq) + " has type " +
                        std::to_string(rec.type) + ", not a queue record");
      }
      auto record = DecodeRecord(rec.payload);
      if (!record.ok()) {
        return DataLoss("queue: log record " + std::to_string(rec.seq) + ": " +
                        std::string(record.status().message()));
      }
      out.push_back({rec.seq, *std::move(record)});
    }
    return out;
  }

  Status WaitFor(uint64_t offset, std::chrono::steady_clock::time_point deadline) const override {
    return log_->WaitFor(offset, deadline);
  }

  Status Flush() override { return log_->Sync(); }

  Result<uint64_t> TruncateBefore(uint64_t offset) override { return log_->TruncateBefore(offset); }

  Result<uint64_t> Retain(uint64_t max_bytes, std::chrono::milliseconds max_age,
                          int64_t now_unix_ms) override {
    const std::vector<LogSegmentInfo> segments = log_->segments();
    uint64_t total = 0;
    for (const LogSegmentInfo& g : segments) total += g.bytes;
    uint64_t cut = 0;                                   // records before it go
    for (size_t i = 0; i + 1 < segments.size(); ++i) {  // never the active segment
      const LogSegmentInfo& g = segments[i];
      bool drop = max_bytes != 0 && total > max_bytes;
      if (!drop && max_age.count() > 0 && g.end_seq > g.first_seq) {
        PACKICE_ASSIGN_OR_RETURN(std::vector<StoredRecord> newest, Read(g.end_seq - 1, 1, 1));
        drop = !newest.empty() &&
               newest.front().record.timestamp_unix_ms < now_unix_ms - max_age.count();
      }
      if (!drop) break;
      total -= g.bytes;
      cut = segments[i + 1].first_seq;
    }
    if (cut == 0) return log_->first_seq();
    return log_->TruncateBefore(cut);
  }

  QueueBackendStats stats() const override {
    const LogStats s = log_->stats();
    uint64_t bytes = 0;
    for (const LogSegmentInfo& g : log_->segments()) bytes += g.bytes;
    return {s.first_seq, s.next_seq, s.segments, bytes};
  }

 private:
  std::unique_ptr<Log> log_;
};

}  // namespace

Result<std::unique_ptr<QueueBackend>> OpenLogQueueBackend(LogOptions options) {
  PACKICE_ASSIGN_OR_RETURN(std::unique_ptr<Log> log, Log::Open(std::move(options)));
  return std::unique_ptr<QueueBackend>(new LogQueueBackend(std::move(log)));
}

}  // namespace packice
