// Persisting: a durable queue of records (docs/queue.md; issue 13).
//
// A record is a value of bytes with string headers, an optional key (a writer partitions by
// its hash) and a timestamp. Records are stored in buckets; within a bucket every record has
// an offset, 0, 1, 2, ..., dense and never reused: the i-th record appended has offset
// start + i, forever (retention removes records from the front, never renumbers).
//
// This header has the records; the storage a bucket composes is a QueueBackend
// (src/backends/queue/queue_backend.h). Topics, writers, readers and consumer groups build on
// them.
#ifndef PACKICE_QUEUE_H_
#define PACKICE_QUEUE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace packice {

struct QueueRecord {
  std::optional<std::string> key;
  std::vector<std::pair<std::string, std::string>> headers;  // in order; names may repeat
  std::string value;
  int64_t timestamp_unix_ms = 0;  // the writer's; 0 = set on append

  bool operator==(const QueueRecord&) const = default;
};

// A record as read back, with its offset in its bucket.
struct StoredRecord {
  uint64_t offset = 0;
  QueueRecord record;

  bool operator==(const StoredRecord&) const = default;
};

}  // namespace packice

#endif  // PACKICE_QUEUE_H_
