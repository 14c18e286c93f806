#include "transport/http/queue_request.h"

#include <charconv>
#include <limits>
#include <nlohmann/json.hpp>

#include "core/json.h"
#include "core/parse.h"
#include "transport/http/http_common.h"
#include "transport/http/kv_request.h"

namespace packice::http_queue {
namespace {

using Json = nlohmann::json;
using http_kv::Base64Decode;
using http_kv::Base64Encode;

// The most records one append body may carry (the queue bounds their bytes: 8 MiB).
constexpr size_t kMaxRecordsPerAppend = 100'000;
// The most positions one read or commit names (a topic has at most 1024 buckets).
constexpr size_t kMaxPositions = 1024;

std::string_view Trim(std::string_view s) {
  while (!s.empty() &&
         (s.front() == ' ' || s.front() == '\t' || s.front() == '\n' || s.front() == '\r')) {
    s.remove_prefix(1);
  }
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\n' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

std::string Quoted(std::string_view s) {
  return "'" + std::string(s.substr(0, 64)) + (s.size() > 64 ? "...'" : "'");
}

// A decimal integer in [0, max], the whole of `s`.
std::optional<uint64_t> ParseUnsigned(std::string_view s, uint64_t max) {
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size() || v > max) return std::nullopt;
  return v;
}

// A JSON integer in [0, max] into `*out`. Errors: kInvalidArgument naming `what`.
Status Unsigned(const Json& v, std::string_view what, uint64_t max, uint64_t* out) {
  const bool ok = v.is_number_unsigned() ||
                  (v.is_number_integer() && !v.is_number_unsigned() && v.get<int64_t>() >= 0);
  if (!ok || v.get<uint64_t>() > max) {
    return InvalidArgument(std::string(what) + " must be an integer from 0 to " +
                           std::to_string(max));
  }
  *out = v.get<uint64_t>();
  return Status::Ok();
}

Result<Json> ParseObject(std::string_view body, std::string_view what, std::string_view example) {
  Json j = ParseJson(body);
  if (!j.is_object()) {
    return InvalidArgument(std::string(what) + " is a JSON object: " + std::string(example));
  }
  return j;
}

Json OptionsJson(const TopicOptions& o) {
  Json j = Json::object();
  j["buckets"] = o.buckets;
  j["fsync"] = QueueFsyncName(o.fsync);
  j["fsync_interval_ms"] = o.fsync_interval.count();
  j["segment_bytes"] = o.segment_bytes;
  j["retention_bytes"] = o.retention_bytes;
  j["retention_age_ms"] = o.retention_age.count();
  j["storage"] = QueueStorageName(o.storage);
  return j;
}

Json PositionJson(uint32_t bucket, uint64_t offset) {
  Json j = Json::object();
  j["bucket"] = bucket;
  j["offset"] = offset;
  return j;
}

// --- records -----------------------------------------------------------------------------------

Json RecordJson(const StoredRecord& stored) {
  const QueueRecord& r = stored.record;
  Json j = Json::object();
  j["offset"] = stored.offset;
  j["timestamp_unix_ms"] = r.timestamp_unix_ms;
  j["value"] = Base64Encode(r.value);
  if (r.key) {
    j["key"] = *r.key;  // Dump replaces bytes that are not UTF-8
    if (!http::IsUtf8(*r.key)) j["key_percent"] = http::PercentEncode(*r.key);
  }
  if (!r.headers.empty()) {
    Json headers = Json::array();
    bool utf8 = true;
    for (const auto& [name, value] : r.headers) {
      headers.push_back(Json::array({name, value}));
      utf8 = utf8 && http::IsUtf8(name) && http::IsUtf8(value);
    }
    j["headers"] = std::move(headers);
    if (!utf8) {
      Json exact = Json::array();
      for (const auto& [name, value] : r.headers) {
        exact.push_back(Json::array({http::PercentEncode(name), http::PercentEncode(value)}));
      }
      j["headers_percent"] = std::move(exact);
    }
  }
  return j;
}

Status HeadersField(const Json& v, std::string_view what, bool percent,
                    std::vector<std::pair<std::string, std::string>>* out) {
  const std::string shape = std::string(what) + " is an array of [name, value] string pairs";
  if (!v.is_array()) return InvalidArgument(shape);
  out->clear();
  for (const Json& pair : v) {
    if (!pair.is_array() || pair.size() != 2 || !pair[0].is_string() || !pair[1].is_string()) {
      return InvalidArgument(shape);
    }
    std::string name = pair[0].get<std::string>();
    std::string value = pair[1].get<std::string>();
    if (percent) {
      std::optional<std::string> n = http::PercentDecode(name);
      std::optional<std::string> val = http::PercentDecode(value);
      if (!n || !val) return InvalidArgument(std::string(what) + " holds a bad %XX escape");
      name = std::move(*n);
      value = std::move(*val);
    }
    out->emplace_back(std::move(name), std::move(value));
  }
  return Status::Ok();
}

Result<QueueRecord> ParseRecord(const Json& j, size_t index) {
  const std::string at = "records[" + std::to_string(index) + "]";
  if (!j.is_object()) return InvalidArgument(at + " must be an object");
  QueueRecord r;
  int values = 0;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& field = it.key();
    const Json& v = it.value();
    if (field == "value") {
      ++values;
      if (!v.is_string()) return InvalidArgument(at + ".value must be a base64 string");
      std::optional<std::string> bytes = Base64Decode(v.get_ref<const std::string&>());
      if (!bytes) return InvalidArgument(at + ".value is not valid base64");
      r.value = std::move(*bytes);
    } else if (field == "text") {
      ++values;
      if (!v.is_string()) return InvalidArgument(at + ".text must be a string");
      r.value = v.get<std::string>();
    } else if (field == "json") {
      ++values;
      r.value = DumpJson(v);
    } else if (field == "key") {
      if (j.contains("key_percent")) continue;  // the exact bytes win
      if (!v.is_string()) return InvalidArgument(at + ".key must be a string");
      r.key = v.get<std::string>();
    } else if (field == "key_percent") {
      if (!v.is_string()) return InvalidArgument(at + ".key_percent must be a string");
      std::optional<std::string> key = http::PercentDecode(v.get_ref<const std::string&>());
      if (!key) return InvalidArgument(at + ".key_percent holds a bad %XX escape");
      r.key = std::move(*key);
    } else if (field == "headers") {
      if (j.contains("headers_percent")) continue;
      PACKICE_RETURN_IF_ERROR(HeadersField(v, at + ".headers", false, &r.headers));
    } else if (field == "headers_percent") {
      PACKICE_RETURN_IF_ERROR(HeadersField(v, at + ".headers_percent", true, &r.headers));
    } else if (field == "timestamp_unix_ms") {
      uint64_t ms = 0;
      PACKICE_RETURN_IF_ERROR(
          Unsigned(v, at + ".timestamp_unix_ms", std::numeric_limits<int64_t>::max(), &ms));
      r.timestamp_unix_ms = static_cast<int64_t>(ms);
    } else if (field == "offset") {
      continue;  // a record read back may be sent again as it is
    } else {
      return InvalidArgument(at + ": unknown field " + Quoted(field) +
                             " (value, text, json, key, key_percent, headers, headers_percent, "
                             "timestamp_unix_ms)");
    }
  }
  if (values != 1) {
    return InvalidArgument(at + " needs exactly one of \"value\" (base64), \"text\" or \"json\"");
  }
  return r;
}

Result<QueuePosition> ParsePosition(const Json& j, std::string_view at) {
  const std::string shape = std::string(at) + " is {\"bucket\": B, \"offset\": O}";
  if (!j.is_object() || !j.contains("bucket") || !j.contains("offset") || j.size() != 2) {
    return InvalidArgument(shape);
  }
  uint64_t bucket = 0;
  uint64_t offset = 0;
  PACKICE_RETURN_IF_ERROR(Unsigned(j["bucket"], std::string(at) + ".bucket",
                                   std::numeric_limits<uint32_t>::max(), &bucket));
  PACKICE_RETURN_IF_ERROR(Unsigned(j["offset"], std::string(at) + ".offset",
                                   std::numeric_limits<uint64_t>::max(), &offset));
  return QueuePosition{static_cast<uint32_t>(bucket), offset};
}

// "B:O,B:O" (?from=).
Result<std::vector<QueuePosition>> ParseFromList(std::string_view text) {
  std::vector<QueuePosition> out;
  while (!text.empty()) {
    const size_t comma = text.find(',');
    std::string_view item = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    const size_t colon = item.find(':');
    std::optional<uint64_t> bucket;
    std::optional<uint64_t> offset;
    if (colon != std::string_view::npos) {
      bucket = ParseUnsigned(item.substr(0, colon), std::numeric_limits<uint32_t>::max());
      offset = ParseUnsigned(item.substr(colon + 1), std::numeric_limits<uint64_t>::max());
    }
    if (!bucket || !offset) {
      return InvalidArgument("from is a list of bucket:offset, as from=0:10,1:0, not " +
                             Quoted(item));
    }
    if (out.size() == kMaxPositions) {
      return InvalidArgument("from names at most " + std::to_string(kMaxPositions) + " buckets");
    }
    out.push_back({static_cast<uint32_t>(*bucket), *offset});
  }
  if (out.empty()) return InvalidArgument("from is empty (give bucket:offset, ...)");
  return out;
}

}  // namespace

Result<QueuePath> ParseQueuePath(std::string_view rest) {
  QueuePath p;
  const size_t slash = rest.find('/');
  p.topic = std::string(rest.substr(0, slash));
  if (p.topic.empty()) return InvalidArgument("the topic in /v1/queue/{topic} is empty");
  if (slash == std::string_view::npos) return p;
  std::string_view tail = rest.substr(slash + 1);
  if (tail == "records") {
    p.kind = QueuePath::Kind::kRecords;
    return p;
  }
  if (tail == "schema") {
    p.kind = QueuePath::Kind::kSchema;
    return p;
  }
  constexpr std::string_view kGroups = "groups/";
  if (tail.starts_with(kGroups)) {
    std::string_view group = tail.substr(kGroups.size());
    if (group.empty()) return InvalidArgument("the group in .../groups/{group} is empty");
    if (group.find('/') == std::string_view::npos) {
      p.kind = QueuePath::Kind::kGroup;
      p.group = std::string(group);
      return p;
    }
  }
  return NotFound("no queue resource at /v1/queue/" + std::string(rest.substr(0, 200)) +
                  " (/v1/queue/{topic}, .../records, .../groups/{group}, .../schema)");
}

std::string SchemasJson(std::string_view topic, const std::vector<QueueSchema>& versions) {
  Json list = Json::array();
  for (const QueueSchema& s : versions) list.push_back(ParseJson(QueueSchemaJson(s)));
  return DumpJson(Json({{"topic", std::string(topic)}, {"versions", std::move(list)}}));
}

Result<ReadQuery> ParseReadQuery(
    const std::function<std::optional<std::string>(std::string_view)>& get) {
  ReadQuery q;
  const std::optional<std::string> bucket = get("bucket");
  const std::optional<std::string> offset = get("offset");
  const std::optional<std::string> from = get("from");
  q.group = get("group");
  const int ways = (bucket || offset ? 1 : 0) + (from ? 1 : 0) + (q.group ? 1 : 0);
  if (ways != 1) {
    return InvalidArgument(
        "a read says where it starts with one of ?bucket=B&offset=O, ?from=B:O,B:O or "
        "?group=G");
  }
  if (bucket || offset) {
    std::optional<uint64_t> b =
        bucket ? ParseUnsigned(*bucket, std::numeric_limits<uint32_t>::max()) : std::nullopt;
    std::optional<uint64_t> o =
        offset ? ParseUnsigned(*offset, std::numeric_limits<uint64_t>::max()) : std::nullopt;
    if (!b || !o) return InvalidArgument("bucket and offset are non-negative integers, both given");
    q.from.push_back({static_cast<uint32_t>(*b), *o});
  } else if (from) {
    PACKICE_ASSIGN_OR_RETURN(q.from, ParseFromList(*from));
  } else if (q.group->empty()) {
    return InvalidArgument("group is empty");
  }
  if (std::optional<std::string> limit = get("limit")) {
    std::optional<uint64_t> n = ParseUnsigned(*limit, kMaxReadLimit);
    if (!n || *n == 0) {
      return InvalidArgument("limit is from 1 to " + std::to_string(kMaxReadLimit) + ", not " +
                             Quoted(*limit));
    }
    q.limit = *n;
  }
  if (std::optional<std::string> wait = get("wait")) {
    if (!wait->empty() && wait->front() == '-') return InvalidArgument("negative wait");
    PACKICE_ASSIGN_OR_RETURN(Duration d, ParseDuration(*wait));
    q.wait_ms = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  }
  if (std::optional<std::string> max = get("max_bytes")) {
    PACKICE_ASSIGN_OR_RETURN(q.max_bytes, ParseBytes(*max));
  }
  return q;
}

Result<TopicOptions> ParseTopicOptions(std::string_view body) {
  TopicOptions o;
  if (Trim(body).empty()) return o;
  PACKICE_ASSIGN_OR_RETURN(
      Json j, ParseObject(body, "a topic's options", "{\"buckets\": 4, \"fsync\": \"always\"}"));
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& field = it.key();
    const Json& v = it.value();
    uint64_t n = 0;
    if (field == "fsync") {
      if (!v.is_string()) return InvalidArgument("fsync must be a string");
      PACKICE_ASSIGN_OR_RETURN(o.fsync, ParseQueueFsync(v.get_ref<const std::string&>()));
      continue;
    }
    if (field == "storage") {
      if (!v.is_string()) return InvalidArgument("storage must be a string");
      PACKICE_ASSIGN_OR_RETURN(o.storage, ParseQueueStorage(v.get_ref<const std::string&>()));
      continue;
    }
    PACKICE_RETURN_IF_ERROR(Unsigned(v, field, std::numeric_limits<int64_t>::max(), &n));
    if (field == "buckets") {
      if (n > std::numeric_limits<uint32_t>::max()) return InvalidArgument("buckets is too big");
      o.buckets = static_cast<uint32_t>(n);
    } else if (field == "fsync_interval_ms") {
      o.fsync_interval = std::chrono::milliseconds(n);
    } else if (field == "segment_bytes") {
      o.segment_bytes = n;
    } else if (field == "retention_bytes") {
      o.retention_bytes = n;
    } else if (field == "retention_age_ms") {
      o.retention_age = std::chrono::milliseconds(n);
    } else {
      return InvalidArgument("unknown topic option " + Quoted(field) +
                             " (buckets, fsync, fsync_interval_ms, segment_bytes, "
                             "retention_bytes, retention_age_ms, storage)");
    }
  }
  return o;  // the queue checks the ranges
}

std::string TopicListJson(std::span<const TopicInfo> topics) {
  Json list = Json::array();
  for (const TopicInfo& t : topics) {
    Json j = Json::object();
    j["name"] = t.name;
    j["options"] = OptionsJson(t.options);
    list.push_back(std::move(j));
  }
  Json body = Json::object();
  body["topics"] = std::move(list);
  return DumpJson(body);
}

std::string TopicStatJson(const TopicInfo& topic, std::span<const BucketInfo> buckets,
                          std::span<const GroupPosition> groups) {
  Json body = Json::object();
  body["topic"] = topic.name;
  body["options"] = OptionsJson(topic.options);
  Json bs = Json::array();
  for (const BucketInfo& b : buckets) {
    Json j = Json::object();
    j["bucket"] = b.bucket;
    j["start_offset"] = b.start_offset;
    j["end_offset"] = b.end_offset;
    j["records"] = b.end_offset - b.start_offset;
    j["bytes"] = b.bytes;
    j["records_in"] = b.records_in;
    j["bytes_in"] = b.bytes_in;
    j["records_out"] = b.records_out;
    j["bytes_out"] = b.bytes_out;
    j["appends"] = b.appends;
    j["append_micros"] = b.append_micros;
    bs.push_back(std::move(j));
  }
  body["buckets"] = std::move(bs);
  Json gs = Json::array();
  for (const GroupPosition& g : groups) {
    Json j = Json::object();
    j["group"] = g.group;
    j["bucket"] = g.bucket;
    j["offset"] = g.offset;
    uint64_t end = g.offset;
    for (const BucketInfo& b : buckets) {
      if (b.bucket == g.bucket) end = b.end_offset;
    }
    j["lag"] = end > g.offset ? end - g.offset : 0;
    gs.push_back(std::move(j));
  }
  body["groups"] = std::move(gs);
  return DumpJson(body);
}

std::string TopicCreatedJson(std::string_view topic) {
  Json body = Json::object();
  body["topic"] = std::string(topic);
  return DumpJson(body);
}

Result<std::vector<QueueRecord>> ParseRecords(std::string_view body) {
  PACKICE_ASSIGN_OR_RETURN(
      Json j, ParseObject(body, "an append", "{\"records\": [{\"text\": \"hello\"}]}"));
  auto records = j.find("records");
  if (records == j.end() || !records->is_array() || records->empty() || j.size() != 1) {
    return InvalidArgument("an append is {\"records\": [...]}, with at least one record");
  }
  if (records->size() > kMaxRecordsPerAppend) {
    return InvalidArgument("an append carries at most " + std::to_string(kMaxRecordsPerAppend) +
                           " records");
  }
  std::vector<QueueRecord> out;
  out.reserve(records->size());
  for (size_t i = 0; i < records->size(); ++i) {
    PACKICE_ASSIGN_OR_RETURN(QueueRecord r, ParseRecord((*records)[i], i));
    out.push_back(std::move(r));
  }
  return out;
}

std::string AppendedJson(std::span<const AppendResult> appended) {
  Json list = Json::array();
  for (const AppendResult& a : appended) list.push_back(PositionJson(a.bucket, a.offset));
  Json body = Json::object();
  body["records"] = std::move(list);
  return DumpJson(body);
}

std::string ReadJson(std::span<const BucketRecords> read, std::span<const QueuePosition> from) {
  Json buckets = Json::array();
  for (const BucketRecords& b : read) {
    Json records = Json::array();
    for (const StoredRecord& r : b.records) records.push_back(RecordJson(r));
    Json j = Json::object();
    j["bucket"] = b.bucket;
    j["records"] = std::move(records);
    buckets.push_back(std::move(j));
  }
  Json next = Json::array();
  for (const QueuePosition& p : from) {
    uint64_t at = p.offset;
    for (const BucketRecords& b : read) {
      if (b.bucket == p.bucket && !b.records.empty()) at = b.records.back().offset + 1;
    }
    next.push_back(PositionJson(p.bucket, at));
  }
  Json body = Json::object();
  body["buckets"] = std::move(buckets);
  body["next"] = std::move(next);
  return DumpJson(body);
}

Result<std::vector<QueuePosition>> ParsePositions(std::string_view body) {
  PACKICE_ASSIGN_OR_RETURN(
      Json j, ParseObject(body, "a commit", "{\"positions\": [{\"bucket\": 0, \"offset\": 10}]}"));
  auto list = j.find("positions");
  if (list == j.end() || !list->is_array() || list->empty() || j.size() != 1) {
    return InvalidArgument("a commit is {\"positions\": [{\"bucket\": B, \"offset\": O}, ...]}");
  }
  if (list->size() > kMaxPositions) {
    return InvalidArgument("a commit names at most " + std::to_string(kMaxPositions) +
                           " positions");
  }
  std::vector<QueuePosition> out;
  for (size_t i = 0; i < list->size(); ++i) {
    PACKICE_ASSIGN_OR_RETURN(QueuePosition p,
                             ParsePosition((*list)[i], "positions[" + std::to_string(i) + "]"));
    out.push_back(p);
  }
  return out;
}

std::string GroupJson(std::string_view group, std::span<const GroupPosition> positions) {
  Json list = Json::array();
  for (const GroupPosition& g : positions) {
    if (g.group == group) list.push_back(PositionJson(g.bucket, g.offset));
  }
  Json body = Json::object();
  body["group"] = std::string(group);
  body["positions"] = std::move(list);
  return DumpJson(body);
}

}  // namespace packice::http_queue
