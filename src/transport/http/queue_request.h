// What a request under /v1/queue says and what it is answered with (docs/http.md, "Queue"):
// the topic and group of its path, a read's positions and bounds, and the JSON bodies both ways.
// Plain functions of their text, no I/O and no Beast, so that queue_routes.cc only carries them
// out and the fuzzer (fuzz/fuzz_queue_http.cc) drives them directly.
//
// Bytes in JSON: a record's value is base64 (RFC 4648, standard alphabet, padded) — or, when a
// producer sends text, "text" (stored as its UTF-8 bytes) or "json" (any JSON value, stored
// compact). Keys and header names and values are strings; one that is not valid UTF-8 is sent
// as in the object listing (http_common.h): the string with U+FFFD for people, plus
// "key_percent" / "headers_percent" with the exact bytes percent-encoded, which producers may
// send too.
//
// Thread safety: every function is thread-safe.
#ifndef PACKICE_TRANSPORT_HTTP_QUEUE_REQUEST_H_
#define PACKICE_TRANSPORT_HTTP_QUEUE_REQUEST_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "packice/queue.h"
#include "packice/status.h"

namespace packice::http_queue {

inline constexpr std::string_view kQueuePath = "/v1/queue";
inline constexpr std::string_view kQueuePrefix = "/v1/queue/";

// The most records one read returns (its ?limit), and the default.
inline constexpr uint64_t kMaxReadLimit = 10'000;
inline constexpr uint64_t kDefaultReadLimit = 100;

// --- the path -------------------------------------------------------------------------------

struct QueuePath {
  enum class Kind {
    kTopic,    // /v1/queue/{topic}
    kRecords,  // /v1/queue/{topic}/records
    kGroup,    // /v1/queue/{topic}/groups/{group}
    kSchema,   // /v1/queue/{topic}/schema
  };
  Kind kind = Kind::kTopic;
  std::string topic;
  std::string group;  // kGroup
};

// Parses what follows "/v1/queue/". Names are not percent-decoded (topic and group names are
// A-Z a-z 0-9 . _ -; the queue checks them: kInvalidArgument). Errors: kNotFound (a path under
// /v1/queue that names no resource), kInvalidArgument (an empty topic or group).
Result<QueuePath> ParseQueuePath(std::string_view rest);

// {"topic": T, "versions": [schema, ...]} (QueueSchemaJson each, oldest first).
std::string SchemasJson(std::string_view topic, const std::vector<QueueSchema>& versions);

// --- a read's query ---------------------------------------------------------------------------

// Where a read starts: explicit positions, or a consumer group's committed ones (every bucket,
// from its start when the group never committed there).
struct ReadQuery {
  std::vector<QueuePosition> from;   // ?bucket=B&offset=O, or ?from=B:O,B:O
  std::optional<std::string> group;  // ?group=G
  uint64_t limit = kDefaultReadLimit;
  int64_t wait_ms = 0;     // ?wait=5s (ParseDuration; a bare number is seconds)
  uint64_t max_bytes = 0;  // ?max_bytes=1M (ParseBytes); 0: the queue's default
};
// `get` returns the decoded value of a query parameter (nullopt when absent). Errors:
// kInvalidArgument (none or more than one of bucket/offset, from and group; a bad number, a
// limit of 0 or over kMaxReadLimit, a negative wait).
Result<ReadQuery> ParseReadQuery(
    const std::function<std::optional<std::string>(std::string_view)>& get);

// --- JSON bodies ------------------------------------------------------------------------------

// A topic's options from {"buckets": N, "fsync": "always"|"interval"|"never",
// "fsync_interval_ms": N, "segment_bytes": N, "retention_bytes": N, "retention_age_ms": N};
// an empty body gives the defaults. Errors: kInvalidArgument (not that object, an unknown
// field, a bad value).
Result<TopicOptions> ParseTopicOptions(std::string_view body);
// {"topics": [{"name", "options": {...as above}}, ...]}
std::string TopicListJson(std::span<const TopicInfo> topics);
// {"topic", "options", "buckets": [{"bucket", "start_offset", "end_offset", "records",
//  "bytes", "records_in", "bytes_in", "records_out", "bytes_out", "appends",
//  "append_micros"}], "groups": [{"group", "bucket", "offset", "lag"}]}
std::string TopicStatJson(const TopicInfo& topic, std::span<const BucketInfo> buckets,
                          std::span<const GroupPosition> groups);
// {"topic": "events"}
std::string TopicCreatedJson(std::string_view topic);

// The records of {"records": [{"value": b64 | "text": "..." | "json": any, "key": "...",
// "key_percent": "...", "headers": [["name", "value"], ...], "headers_percent": [...],
// "timestamp_unix_ms": N}, ...]}: at least one. Errors: kInvalidArgument naming the record.
Result<std::vector<QueueRecord>> ParseRecords(std::string_view body);
// {"records": [{"bucket", "offset"}, ...]}: where each appended record went, in order.
std::string AppendedJson(std::span<const AppendResult> appended);

// {"buckets": [{"bucket", "records": [{"offset", "timestamp_unix_ms", "value": b64, "key",
//  "key_percent", "headers", "headers_percent"}, ...]}, ...], "next": [{"bucket", "offset"}]}:
// the records read from `from` and, for every position in `from`, where the next read starts.
std::string ReadJson(std::span<const BucketRecords> read, std::span<const QueuePosition> from);

// The positions of {"positions": [{"bucket": B, "offset": O}, ...]} (a read's "next" is one):
// at least one. Errors: kInvalidArgument.
Result<std::vector<QueuePosition>> ParsePositions(std::string_view body);
// {"group", "positions": [{"bucket", "offset"}, ...]}: the buckets it committed in.
std::string GroupJson(std::string_view group, std::span<const GroupPosition> positions);

}  // namespace packice::http_queue

#endif  // PACKICE_TRANSPORT_HTTP_QUEUE_REQUEST_H_
