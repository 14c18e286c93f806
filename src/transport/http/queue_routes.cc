// The queue over HTTP (docs/queue.md, docs/http.md "Queue"): the node's Queue.
//
//   GET    /v1/queue                              the topics (JSON)
//   PUT    /v1/queue/{topic}                      create a topic (body: its options, optional)
//   GET    /v1/queue/{topic}                      its options, buckets and groups (lag)
//   DELETE /v1/queue/{topic}                      delete it
//   POST   /v1/queue/{topic}/records[?bucket=B]   append: {"records": [...]} (JSON), or any
//                                                 other body as one record's value (?key=K)
//   GET    /v1/queue/{topic}/records?bucket=B&offset=O | ?from=B:O,.. | ?group=G
//          &limit=N&wait=5s&max_bytes=1M          read; with &wait, a long poll
//   GET    /v1/queue/{topic}/groups/{group}       the group's committed positions
//   POST   /v1/queue/{topic}/groups/{group}       commit {"positions": [{"bucket", "offset"}]}
//   GET    /v1/queue/{topic}/schema               its schema versions
//   PUT    /v1/queue/{topic}/schema               a new version (body: the schema, JSON)
//
// What the requests say is parsed by queue_request.h. Calls run on the connection's queue pool
// (Connection::QueueCall), never on an io thread; a read goes through the server's QueueCalls
// (Connection::QueueRun), so that one which waits is parked on the topic, holding no thread,
// until an append wakes it or its wait (at most 30 s) ends.
#include <charconv>
#include <memory>
#include <string>
#include <vector>

#include "packice/queue.h"
#include "transport/http/http_common.h"
#include "transport/http/http_routes.h"
#include "transport/http/kv_request.h"
#include "transport/http/queue_request.h"
#include "transport/uds/queue_wire_convert.h"

namespace packice::http_server {
namespace {

using http_kv::KvQuery;
using http_queue::QueuePath;
using http_queue::ReadQuery;

constexpr uint64_t kMaxOptionsBodyBytes = 64 * 1024;
// A JSON append: the queue takes at most 8 MiB per append, which base64 and JSON make about
// 11 MiB. A raw append is one record's value: at most 4 MiB encoded.
constexpr uint64_t kMaxAppendBodyBytes = 16ull << 20;
constexpr uint64_t kMaxRawRecordBytes = 4ull << 20;
constexpr uint64_t kMaxCommitBodyBytes = 256 * 1024;
constexpr uint64_t kMaxSchemaBodyBytes = 1024 * 1024;

Status NoQueue() {
  return NotFound(
      "this node serves no queue (start packiced with a data directory or --queue-dir DIR, and "
      "without --no-queue)");
}

// An append's ?bucket=B; nullopt: partitioned by key. Errors: kInvalidArgument.
Result<std::optional<uint32_t>> AppendBucket(const KvQuery& q) {
  std::optional<std::string> b = q.Get("bucket");
  if (!b) return std::optional<uint32_t>();
  uint32_t bucket = 0;
  auto [end, ec] = std::from_chars(b->data(), b->data() + b->size(), bucket);
  if (b->empty() || ec != std::errc() || end != b->data() + b->size()) {
    return InvalidArgument("bucket is a non-negative integer, not '" + b->substr(0, 32) + "'");
  }
  return std::optional<uint32_t>(bucket);
}

bool IsJson(const Request& req) {
  std::string type = http::ToLower(View(req[bhttp::field::content_type]));
  return type.starts_with("application/json");
}

// --- the calls, as plain functions (the coroutines only carry them out) ------------------------

Result<std::string> ListTopics(Queue& queue) {
  PACKICE_ASSIGN_OR_RETURN(std::vector<TopicInfo> topics, queue.ListTopics());
  return http_queue::TopicListJson(topics);
}

Result<std::string> TopicStat(Queue& queue, const std::string& topic) {
  PACKICE_ASSIGN_OR_RETURN(std::vector<BucketInfo> buckets, queue.Buckets(topic));
  PACKICE_ASSIGN_OR_RETURN(std::vector<GroupPosition> groups, queue.Groups(topic));
  PACKICE_ASSIGN_OR_RETURN(std::vector<TopicInfo> topics, queue.ListTopics());
  for (const TopicInfo& t : topics) {
    if (t.name == topic) return http_queue::TopicStatJson(t, buckets, groups);
  }
  return NotFound("no topic '" + topic + "'");  // deleted meanwhile
}

Status CreateTopic(Queue& queue, const std::string& topic, const std::string& body) {
  PACKICE_ASSIGN_OR_RETURN(TopicOptions o, http_queue::ParseTopicOptions(body));
  return queue.CreateTopic(topic, o);
}

// Appends `records`: all to `bucket` in one append when it is given, else each by its key's
// hash (keyless ones in the server's turn), as QueueWriter does.
Result<std::string> Append(const std::shared_ptr<Queue>& queue, const std::string& topic,
                           const std::vector<QueueRecord>& records, std::optional<uint32_t> bucket,
                           const std::shared_ptr<std::atomic<uint64_t>>& turn) {
  std::vector<AppendResult> appended;
  if (bucket) {
    PACKICE_ASSIGN_OR_RETURN(uint64_t first, queue->Append(topic, *bucket, records));
    for (size_t i = 0; i < records.size(); ++i) appended.push_back({*bucket, first + i});
  } else {
    PACKICE_ASSIGN_OR_RETURN(QueueWriter writer, QueueWriter::Open(queue, topic, turn));
    PACKICE_ASSIGN_OR_RETURN(appended, writer.PutBatch(records));
  }
  return http_queue::AppendedJson(appended);
}

// Where a group's read starts: its committed positions (each bucket's start where none).
Result<std::vector<QueuePosition>> GroupStart(const std::shared_ptr<Queue>& queue,
                                              const std::string& topic, const std::string& group) {
  PACKICE_ASSIGN_OR_RETURN(QueueReader reader, QueueReader::Open(queue, topic, group));
  return reader.positions();
}

Result<std::string> GroupPositions(Queue& queue, const std::string& topic,
                                   const std::string& group) {
  PACKICE_ASSIGN_OR_RETURN(std::vector<GroupPosition> all, queue.Groups(topic));
  return http_queue::GroupJson(group, all);
}

// Commits each position in turn (one bucket's commit is durable; across buckets not atomic).
Result<std::string> Commit(Queue& queue, const std::string& topic, const std::string& group,
                           const std::string& body) {
  PACKICE_ASSIGN_OR_RETURN(std::vector<QueuePosition> positions, http_queue::ParsePositions(body));
  for (const QueuePosition& p : positions) {
    PACKICE_RETURN_IF_ERROR(queue.Commit(topic, group, p.bucket, p.offset));
  }
  return GroupPositions(queue, topic, group);
}

Result<std::string> SetSchema(Queue& queue, const std::string& topic, const std::string& body) {
  PACKICE_ASSIGN_OR_RETURN(QueueSchema schema, ParseQueueSchema(body));
  PACKICE_ASSIGN_OR_RETURN(uint32_t version, queue.SetSchema(topic, schema));
  return "{\"topic\":\"" + topic + "\",\"version\":" + std::to_string(version) + "}";
}

Result<std::string> Schemas(Queue& queue, const std::string& topic) {
  PACKICE_ASSIGN_OR_RETURN(std::vector<QueueSchema> versions, queue.Schemas(topic));
  return http_queue::SchemasJson(topic, versions);
}

wire::QueueRequest ReadRequest(const std::string& topic, const ReadQuery& q,
                               const std::vector<QueuePosition>& from) {
  wire::QueueRequest req;
  req.set_topic(topic);
  wire::QueueRead* read = req.mutable_read();
  for (const QueuePosition& p : from) {
    wire::QueuePositionMsg* m = read->add_from();
    m->set_bucket(p.bucket);
    m->set_offset(p.offset);
  }
  read->set_limit(q.limit);
  read->set_wait_ms(q.wait_ms);
  read->set_max_bytes(q.max_bytes);
  return req;
}

std::string ReadAnswerJson(const wire::QueueResponse& resp,
                           const std::vector<QueuePosition>& from) {
  std::vector<BucketRecords> read;
  for (const wire::QueueBucketRecords& b : resp.read().buckets()) {
    BucketRecords& out = read.emplace_back();
    out.bucket = b.bucket();
    for (const wire::QueueRecordMsg& r : b.records()) {
      out.records.push_back(StoredRecord{r.offset(), FromWire(r)});
    }
  }
  return http_queue::ReadJson(read, from);
}

// A /v1/queue/{topic}[/...] request's path and query; else the error to answer with.
struct QueueTarget {
  QueuePath path;
  KvQuery query;
};
Result<QueueTarget> ParseTarget(bool serves_queue, std::string_view path, std::string_view query) {
  if (!serves_queue) return NoQueue();
  PACKICE_ASSIGN_OR_RETURN(
      QueuePath p, http_queue::ParseQueuePath(path.substr(http_queue::kQueuePrefix.size())));
  PACKICE_ASSIGN_OR_RETURN(KvQuery q, KvQuery::Parse(query));
  return QueueTarget{std::move(p), std::move(q)};
}

// The answer to a failed call: the code's status (docs/http.md), but creating a topic that
// exists is 409 Conflict.
TextResponse QueueError(unsigned version, const Status& s, bool creating = false) {
  if (creating && s.code() == StatusCode::kAlreadyExists) {
    return ErrorResponse(version, bhttp::status::conflict, s);
  }
  return ErrorResponse(version, s);
}

// --- /v1/queue ---------------------------------------------------------------------------------

// Runs `call` (a Result<std::string>: a JSON body) on the queue pool; answers 200 with the body,
// or the call's error.
template <typename Stream, typename Call>
Task<bool> AnswerJson(Connection<Stream>& c, const Request& req, Exchange& x, bool keep,
                      Call call) {
  Result<std::string> body = co_await c.QueueCall(std::move(call));
  if (!body.ok()) co_return co_await c.SendError(req, x, body.status(), keep);
  co_return co_await c.Send(Json(req.version(), bhttp::status::ok, *std::move(body)), x, keep);
}

template <typename Stream>
Task<bool> ServeList(Connection<Stream>& c, Parser& parser, Exchange& x, std::string_view,
                     std::string_view) {
  const Request& req = parser.get();
  const bool keep = req.keep_alive();
  if (req.method() != bhttp::verb::get) {
    co_return co_await c.Send(MethodNotAllowed(req, "GET", "use GET /v1/queue"), x, keep);
  }
  if (c.queue() == nullptr) co_return co_await c.SendError(req, x, NoQueue(), keep);
  Queue* queue = c.queue().get();
  co_return co_await AnswerJson(c, req, x, keep, [queue] { return ListTopics(*queue); });
}

// --- /v1/queue/{topic} -------------------------------------------------------------------------

template <typename Stream>
Task<bool> HandleCreate(Connection<Stream>& c, Parser& parser, Exchange& x,
                        const std::string& topic) {
  const Request& req = parser.get();
  std::string body;
  bool keep = req.keep_alive();
  if (!co_await ReadSmallBody(c, parser, x, kMaxOptionsBodyBytes, "a topic's options", &body,
                              &keep)) {
    co_return keep;
  }
  Queue* queue = c.queue().get();
  const std::string* t = &topic;
  const std::string* b = &body;
  Status s = co_await c.QueueCall([queue, t, b] { return CreateTopic(*queue, *t, *b); });
  if (!s.ok()) co_return co_await c.Send(QueueError(req.version(), s, true), x, keep);
  co_return co_await c.Send(
      Json(req.version(), bhttp::status::created, http_queue::TopicCreatedJson(topic)), x, keep);
}

template <typename Stream>
Task<bool> ServeTopic(Connection<Stream>& c, Parser& parser, Exchange& x, std::string_view path,
                      std::string_view query) {
  const Request& req = parser.get();
  const bool keep = req.keep_alive();
  Result<QueueTarget> target = ParseTarget(c.queue() != nullptr, path, query);
  if (!target.ok()) co_return co_await c.SendError(req, x, target.status(), keep);
  Queue* queue = c.queue().get();
  const std::string* t = &target->path.topic;
  switch (req.method()) {
    case bhttp::verb::get: {
      co_return co_await AnswerJson(c, req, x, keep, [queue, t] { return TopicStat(*queue, *t); });
    }
    case bhttp::verb::put:
      co_return co_await HandleCreate(c, parser, x, *t);
    case bhttp::verb::delete_: {
      Status s = co_await c.QueueCall([queue, t] { return queue->DeleteTopic(*t); });
      if (!s.ok()) co_return co_await c.SendError(req, x, s, keep);
      co_return co_await c.Send(TextResponse{bhttp::status::no_content, req.version()}, x, keep);
    }
    default:
      co_return co_await c.Send(MethodNotAllowed(req, "GET, PUT, DELETE", "use GET, PUT or DELETE"),
                                x, keep);
  }
}

// --- /v1/queue/{topic}/records -----------------------------------------------------------------

template <typename Stream>
Task<bool> HandleAppend(Connection<Stream>& c, Parser& parser, Exchange& x,
                        const std::string& topic, const KvQuery& q) {
  const Request& req = parser.get();
  bool keep = req.keep_alive();
  Result<std::optional<uint32_t>> bucket = AppendBucket(q);
  if (!bucket.ok()) co_return co_await c.SendError(req, x, bucket.status(), keep);
  const bool json = IsJson(req);
  std::string body;
  if (!co_await ReadSmallBody(c, parser, x,
                              BodyLimit(c.opt(), json ? kMaxAppendBodyBytes : kMaxRawRecordBytes),
                              json ? "an append" : "a record", &body, &keep)) {
    co_return keep;
  }
  std::vector<QueueRecord> records;
  if (json) {
    Result<std::vector<QueueRecord>> parsed = http_queue::ParseRecords(body);
    if (!parsed.ok()) co_return co_await c.SendError(req, x, parsed.status(), keep);
    records = *std::move(parsed);
  } else {
    QueueRecord& r = records.emplace_back();
    r.key = q.Get("key");
    r.value = std::move(body);
  }
  const std::shared_ptr<Queue>* queue = &c.queue();
  const std::shared_ptr<std::atomic<uint64_t>>* turn = &c.queue_turn();
  const std::string* t = &topic;
  const std::vector<QueueRecord>* rs = &records;
  const std::optional<uint32_t>* at = &*bucket;
  co_return co_await AnswerJson(
      c, req, x, keep, [queue, t, rs, at, turn] { return Append(*queue, *t, *rs, *at, *turn); });
}

template <typename Stream>
Task<bool> HandleRead(Connection<Stream>& c, const Request& req, Exchange& x,
                      const std::string& topic, const KvQuery& q) {
  const bool keep = req.keep_alive();
  const KvQuery* query = &q;
  Result<ReadQuery> read =
      http_queue::ParseReadQuery([query](std::string_view name) { return query->Get(name); });
  if (!read.ok()) co_return co_await c.SendError(req, x, read.status(), keep);
  std::vector<QueuePosition> from = read->from;
  if (read->group) {
    const std::shared_ptr<Queue>* queue = &c.queue();
    const std::string* t = &topic;
    const std::string* g = &*read->group;
    Result<std::vector<QueuePosition>> start =
        co_await c.QueueCall([queue, t, g] { return GroupStart(*queue, *t, *g); });
    if (!start.ok()) co_return co_await c.SendError(req, x, start.status(), keep);
    from = *std::move(start);
  }
  typename Connection<Stream>::QueueAnswer answer =
      co_await c.QueueRun(ReadRequest(topic, *read, from));
  if (!answer.status.ok()) co_return co_await c.SendError(req, x, answer.status, keep);
  co_return co_await c.Send(
      Json(req.version(), bhttp::status::ok, ReadAnswerJson(answer.response, from)), x, keep);
}

template <typename Stream>
Task<bool> ServeRecords(Connection<Stream>& c, Parser& parser, Exchange& x, std::string_view path,
                        std::string_view query) {
  const Request& req = parser.get();
  const bool keep = req.keep_alive();
  Result<QueueTarget> target = ParseTarget(c.queue() != nullptr, path, query);
  if (!target.ok()) co_return co_await c.SendError(req, x, target.status(), keep);
  const QueueTarget* at = &*target;
  switch (req.method()) {
    case bhttp::verb::get:
      co_return co_await HandleRead(c, req, x, at->path.topic, at->query);
    case bhttp::verb::post:
      co_return co_await HandleAppend(c, parser, x, at->path.topic, at->query);
    default:
      co_return co_await c.Send(
          MethodNotAllowed(req, "GET, POST", "use POST to append, GET to read"), x, keep);
  }
}

// --- /v1/queue/{topic}/groups/{group} ----------------------------------------------------------

template <typename Stream>
Task<bool> HandleCommit(Connection<Stream>& c, Parser& parser, Exchange& x, const QueuePath& p) {
  const Request& req = parser.get();
  bool keep = req.keep_alive();
  std::string body;
  if (!co_await ReadSmallBody(c, parser, x, kMaxCommitBodyBytes, "a commit", &body, &keep)) {
    co_return keep;
  }
  Queue* queue = c.queue().get();
  const QueuePath* at = &p;
  const std::string* b = &body;
  co_return co_await AnswerJson(
      c, req, x, keep, [queue, at, b] { return Commit(*queue, at->topic, at->group, *b); });
}

template <typename Stream>
Task<bool> ServeGroup(Connection<Stream>& c, Parser& parser, Exchange& x, std::string_view path,
                      std::string_view query) {
  const Request& req = parser.get();
  const bool keep = req.keep_alive();
  Result<QueueTarget> target = ParseTarget(c.queue() != nullptr, path, query);
  if (!target.ok()) co_return co_await c.SendError(req, x, target.status(), keep);
  const QueuePath* at = &target->path;
  Queue* queue = c.queue().get();
  switch (req.method()) {
    case bhttp::verb::get: {
      co_return co_await AnswerJson(
          c, req, x, keep, [queue, at] { return GroupPositions(*queue, at->topic, at->group); });
    }
    case bhttp::verb::post:
      co_return co_await HandleCommit(c, parser, x, *at);
    default:
      co_return co_await c.Send(
          MethodNotAllowed(req, "GET, POST", "use POST to commit, GET for the positions"), x, keep);
  }
}

// --- /v1/queue/{topic}/schema ------------------------------------------------------------------

template <typename Stream>
Task<bool> HandleSetSchema(Connection<Stream>& c, Parser& parser, Exchange& x,
                           const std::string& topic) {
  const Request& req = parser.get();
  bool keep = req.keep_alive();
  std::string body;
  if (!co_await ReadSmallBody(c, parser, x, kMaxSchemaBodyBytes, "a schema", &body, &keep)) {
    co_return keep;
  }
  Queue* queue = c.queue().get();
  const std::string* t = &topic;
  const std::string* b = &body;
  co_return co_await AnswerJson(c, req, x, keep,
                                [queue, t, b] { return SetSchema(*queue, *t, *b); });
}

template <typename Stream>
Task<bool> ServeSchema(Connection<Stream>& c, Parser& parser, Exchange& x, std::string_view path,
                       std::string_view query) {
  const Request& req = parser.get();
  const bool keep = req.keep_alive();
  Result<QueueTarget> target = ParseTarget(c.queue() != nullptr, path, query);
  if (!target.ok()) co_return co_await c.SendError(req, x, target.status(), keep);
  const std::string* t = &target->path.topic;
  Queue* queue = c.queue().get();
  switch (req.method()) {
    case bhttp::verb::get: {
      co_return co_await AnswerJson(c, req, x, keep, [queue, t] { return Schemas(*queue, *t); });
    }
    case bhttp::verb::put:
      co_return co_await HandleSetSchema(c, parser, x, *t);
    default:
      co_return co_await c.Send(
          MethodNotAllowed(req, "GET, PUT", "use PUT to add a version, GET for the versions"), x,
          keep);
  }
}

// The rest of a path after "/v1/queue/".
std::string_view Rest(std::string_view path) {
  return path.substr(http_queue::kQueuePrefix.size());
}
bool IsList(std::string_view path) { return path == http_queue::kQueuePath; }
bool IsTopic(std::string_view path) {
  return path.starts_with(http_queue::kQueuePrefix) &&
         Rest(path).find('/') == std::string_view::npos;
}
// /v1/queue/{topic}`tail`, e.g. tail "/records".
bool IsTopicChild(std::string_view path, std::string_view tail) {
  if (!path.starts_with(http_queue::kQueuePrefix)) return false;
  const std::string_view rest = Rest(path);
  const size_t slash = rest.find('/');
  return slash != std::string_view::npos && rest.substr(slash) == tail;
}
bool IsRecords(std::string_view path) { return IsTopicChild(path, "/records"); }
bool IsSchema(std::string_view path) { return IsTopicChild(path, "/schema"); }
// Everything else under /v1/queue/{topic}/: groups, and paths that name nothing (404, with
// the resources that exist).
bool IsGroup(std::string_view path) {
  return path.starts_with(http_queue::kQueuePrefix) && !IsTopic(path) && !IsRecords(path) &&
         !IsSchema(path);
}

}  // namespace

Route QueueListRoute() {
  return {"/v1/queue", &IsList, /*needs_token=*/true, &ServeList<PlainStream>,
          &ServeList<TlsStream>};
}

Route QueueTopicRoute() {
  return {"/v1/queue/{topic}", &IsTopic, /*needs_token=*/true, &ServeTopic<PlainStream>,
          &ServeTopic<TlsStream>};
}

Route QueueRecordsRoute() {
  return {"/v1/queue/{topic}/records", &IsRecords, /*needs_token=*/true, &ServeRecords<PlainStream>,
          &ServeRecords<TlsStream>};
}

Route QueueSchemaRoute() {
  return {"/v1/queue/{topic}/schema", &IsSchema, /*needs_token=*/true, &ServeSchema<PlainStream>,
          &ServeSchema<TlsStream>};
}

Route QueueGroupRoute() {
  return {"/v1/queue/{topic}/groups/{group}", &IsGroup, /*needs_token=*/true,
          &ServeGroup<PlainStream>, &ServeGroup<TlsStream>};
}

}  // namespace packice::http_server
