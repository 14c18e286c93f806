#include "transport/uds/queue_wire_convert.h"

namespace packice {
namespace {

constexpr size_t kDefaultReadBytes = 4u << 20;

void BucketToWire(const BucketInfo& b, wire::QueueBucketInfo* out) {
  out->set_bucket(b.bucket);
  out->set_start_offset(b.start_offset);
  out->set_end_offset(b.end_offset);
  out->set_bytes(b.bytes);
  out->set_records_in(b.records_in);
  out->set_bytes_in(b.bytes_in);
  out->set_records_out(b.records_out);
  out->set_bytes_out(b.bytes_out);
  out->set_appends(b.appends);
  out->set_append_micros(b.append_micros);
}

BucketInfo BucketFromWire(const wire::QueueBucketInfo& in) {
  return {in.bucket(),   in.start_offset(), in.end_offset(), in.bytes(),   in.records_in(),
          in.bytes_in(), in.records_out(),  in.bytes_out(),  in.appends(), in.append_micros()};
}

Status HandleRead(Queue& queue, const wire::QueueRequest& req, wire::QueueResponse* resp) {
  const wire::QueueRead& r = req.read();
  std::vector<QueuePosition> from;
  from.reserve(r.from_size());
  for (const wire::QueuePositionMsg& p : r.from()) from.push_back({p.bucket(), p.offset()});
  PACKICE_ASSIGN_OR_RETURN(std::vector<BucketRecords> got,
                           queue.Read(req.topic(), from, r.limit(), std::chrono::milliseconds(0),
                                      r.max_bytes() == 0 ? kDefaultReadBytes : r.max_bytes()));
  wire::QueueReadResult* out = resp->mutable_read();
  for (BucketRecords& b : got) {
    wire::QueueBucketRecords* w = out->add_buckets();
    w->set_bucket(b.bucket);
    for (StoredRecord& s : b.records) {
      wire::QueueRecordMsg* m = w->add_records();
      ToWire(s.record, m);
      m->set_offset(s.offset);
    }
  }
  return Status::Ok();
}

// The client's Queue: one QueueRequest a call.
class WireQueue final : public Queue {
 public:
  explicit WireQueue(QueueCaller call) : call_(std::move(call)) {}

  Status CreateTopic(std::string_view topic, const TopicOptions& options) override {
    wire::QueueRequest req = Request(topic);
    ToWire(options, req.mutable_create_topic()->mutable_options());
    return call_(std::move(req)).status();
  }

  Status DeleteTopic(std::string_view topic) override {
    wire::QueueRequest req = Request(topic);
    req.set_delete_topic(true);
    return call_(std::move(req)).status();
  }

  Result<std::vector<TopicInfo>> ListTopics() override {
    wire::QueueRequest req;
    req.set_list_topics(true);
    PACKICE_ASSIGN_OR_RETURN(wire::QueueResponse resp, call_(std::move(req)));
    std::vector<TopicInfo> out;
    for (const wire::QueueTopicInfo& t : resp.topics().topics()) {
      PACKICE_ASSIGN_OR_RETURN(TopicOptions o, FromWire(t.options()));
      out.push_back({t.name(), o});
    }
    return out;
  }

  Result<std::vector<BucketInfo>> Buckets(std::string_view topic) override {
    wire::QueueRequest req = Request(topic);
    req.set_buckets(true);
    PACKICE_ASSIGN_OR_RETURN(wire::QueueResponse resp, call_(std::move(req)));
    std::vector<BucketInfo> out;
    for (const wire::QueueBucketInfo& b : resp.buckets().buckets())
      out.push_back(BucketFromWire(b));
    return out;
  }

  Result<uint64_t> Append(std::string_view topic, uint32_t bucket,
                          std::span<const QueueRecord> records) override {
    wire::QueueRequest req = Request(topic);
    wire::QueueAppend* a = req.mutable_append();
    a->set_bucket(bucket);
    a->mutable_records()->Reserve(static_cast<int>(records.size()));
    for (const QueueRecord& r : records) ToWire(r, a->add_records());
    PACKICE_ASSIGN_OR_RETURN(wire::QueueResponse resp, call_(std::move(req)));
    return resp.append_offset();
  }

  Result<std::vector<BucketRecords>> Read(std::string_view topic,
                                          std::span<const QueuePosition> from, size_t limit,
                                          std::chrono::milliseconds wait,
                                          size_t max_bytes) override {
    if (wait.count() < 0) return InvalidArgument("negative wait");
    wire::QueueRequest req = Request(topic);
    wire::QueueRead* r = req.mutable_read();
    for (const QueuePosition& p : from) {
      wire::QueuePositionMsg* m = r->add_from();
      m->set_bucket(p.bucket);
      m->set_offset(p.offset);
    }
    r->set_limit(limit);
    r->set_wait_ms(wait.count());
    r->set_max_bytes(max_bytes);
    PACKICE_ASSIGN_OR_RETURN(wire::QueueResponse resp, call_(std::move(req)));
    std::vector<BucketRecords> out;
    for (wire::QueueBucketRecords& b : *resp.mutable_read()->mutable_buckets()) {
      BucketRecords got{b.bucket(), {}};
      got.records.reserve(b.records_size());
      for (wire::QueueRecordMsg& m : *b.mutable_records()) {
        got.records.push_back({m.offset(), FromWire(std::move(m))});
      }
      out.push_back(std::move(got));
    }
    return out;
  }

  Status Commit(std::string_view topic, std::string_view group, uint32_t bucket,
                uint64_t offset) override {
    wire::QueueRequest req = Request(topic);
    wire::QueueCommit* c = req.mutable_commit();
    c->set_group(std::string(group));
    c->set_bucket(bucket);
    c->set_offset(offset);
    return call_(std::move(req)).status();
  }

  Status EnforceRetention() override {
    wire::QueueRequest req;
    req.set_enforce_retention(true);
    return call_(std::move(req)).status();
  }

  Result<std::optional<uint64_t>> Committed(std::string_view topic, std::string_view group,
                                            uint32_t bucket) override {
    wire::QueueRequest req = Request(topic);
    req.mutable_committed()->set_group(std::string(group));
    req.mutable_committed()->set_bucket(bucket);
    PACKICE_ASSIGN_OR_RETURN(wire::QueueResponse resp, call_(std::move(req)));
    if (!resp.committed().has_offset()) return std::optional<uint64_t>();
    return std::optional<uint64_t>(resp.committed().offset());
  }

  Result<std::vector<GroupPosition>> Groups(std::string_view topic) override {
    wire::QueueRequest req = Request(topic);
    req.set_groups(true);
    PACKICE_ASSIGN_OR_RETURN(wire::QueueResponse resp, call_(std::move(req)));
    std::vector<GroupPosition> out;
    for (const wire::QueueGroupPosition& p : resp.groups().positions()) {
      out.push_back({p.group(), p.bucket(), p.offset()});
    }
    return out;
  }

  Result<QueueSubscription> Subscribe(std::string_view, std::function<void()>) override {
    return Unimplemented("a remote queue has no subscriptions: read with a wait");
  }

  Result<uint32_t> SetSchema(std::string_view topic, const QueueSchema& schema) override {
    wire::QueueRequest req = Request(topic);
    req.set_set_schema(QueueSchemaJson(schema));
    PACKICE_ASSIGN_OR_RETURN(wire::QueueResponse resp, call_(std::move(req)));
    return resp.schema_version();
  }

  Result<std::vector<QueueSchema>> Schemas(std::string_view topic) override {
    wire::QueueRequest req = Request(topic);
    req.set_schemas(true);
    PACKICE_ASSIGN_OR_RETURN(wire::QueueResponse resp, call_(std::move(req)));
    std::vector<QueueSchema> out;
    for (const std::string& text : resp.schemas().schemas()) {
      PACKICE_ASSIGN_OR_RETURN(QueueSchema s, ParseQueueSchema(text));
      out.push_back(std::move(s));
    }
    return out;
  }

 private:
  static wire::QueueRequest Request(std::string_view topic) {
    wire::QueueRequest req;
    req.set_topic(std::string(topic));
    return req;
  }

  QueueCaller call_;
};

}  // namespace

void ToWire(const QueueRecord& r, wire::QueueRecordMsg* out) {
  if (r.key) out->set_key(*r.key);
  for (const auto& [name, value] : r.headers) {
    wire::QueueHeader* h = out->add_headers();
    h->set_name(name);
    h->set_value(value);
  }
  out->set_value(r.value);
  out->set_timestamp_unix_ms(r.timestamp_unix_ms);
}

QueueRecord FromWire(wire::QueueRecordMsg&& in) {
  QueueRecord r;
  if (in.has_key()) r.key = std::move(*in.mutable_key());
  r.headers.reserve(in.headers_size());
  for (wire::QueueHeader& h : *in.mutable_headers()) {
    r.headers.emplace_back(std::move(*h.mutable_name()), std::move(*h.mutable_value()));
  }
  r.value = std::move(*in.mutable_value());
  r.timestamp_unix_ms = in.timestamp_unix_ms();
  return r;
}

QueueRecord FromWire(const wire::QueueRecordMsg& in) {
  QueueRecord r;
  if (in.has_key()) r.key = in.key();
  r.headers.reserve(in.headers_size());
  for (const wire::QueueHeader& h : in.headers()) r.headers.emplace_back(h.name(), h.value());
  r.value = in.value();
  r.timestamp_unix_ms = in.timestamp_unix_ms();
  return r;
}

void ToWire(const TopicOptions& o, wire::QueueTopicOptions* out) {
  out->set_buckets(o.buckets);
  out->set_fsync(static_cast<uint32_t>(o.fsync));
  out->set_fsync_interval_ms(o.fsync_interval.count());
  out->set_segment_bytes(o.segment_bytes);
  out->set_retention_bytes(o.retention_bytes);
  out->set_retention_age_ms(o.retention_age.count());
  out->set_storage(static_cast<uint32_t>(o.storage));
}

Result<TopicOptions> FromWire(const wire::QueueTopicOptions& in) {
  TopicOptions o;
  if (in.buckets() != 0) o.buckets = in.buckets();
  if (in.fsync() > static_cast<uint32_t>(QueueFsync::kNever)) {
    return InvalidArgument("unknown fsync policy " + std::to_string(in.fsync()));
  }
  o.fsync = static_cast<QueueFsync>(in.fsync());
  if (in.fsync_interval_ms() != 0) {
    o.fsync_interval = std::chrono::milliseconds(in.fsync_interval_ms());
  }
  if (in.segment_bytes() != 0) o.segment_bytes = in.segment_bytes();
  o.retention_bytes = in.retention_bytes();
  o.retention_age = std::chrono::milliseconds(in.retention_age_ms());
  if (in.storage() > static_cast<uint32_t>(QueueStorage::kTiered)) {
    return InvalidArgument("unknown storage " + std::to_string(in.storage()));
  }
  o.storage = static_cast<QueueStorage>(in.storage());
  return o;
}

bool IsEmptyRead(const wire::QueueResponse& resp) {
  return resp.result_case() == wire::QueueResponse::kRead && resp.read().buckets_size() == 0;
}

std::vector<QueueRecord> AppendRecords(wire::QueueRequest& req) {
  std::vector<QueueRecord> records;
  records.reserve(req.append().records_size());
  for (wire::QueueRecordMsg& m : *req.mutable_append()->mutable_records()) {
    records.push_back(FromWire(std::move(m)));
  }
  return records;
}

Status HandleQueueRequest(Queue& queue, wire::QueueRequest& req, wire::QueueResponse* resp) {
  const std::string& topic = req.topic();
  switch (req.op_case()) {
    case wire::QueueRequest::kCreateTopic: {
      PACKICE_ASSIGN_OR_RETURN(TopicOptions o, FromWire(req.create_topic().options()));
      return queue.CreateTopic(topic, o);
    }
    case wire::QueueRequest::kDeleteTopic:
      return queue.DeleteTopic(topic);
    case wire::QueueRequest::kListTopics: {
      PACKICE_ASSIGN_OR_RETURN(std::vector<TopicInfo> topics, queue.ListTopics());
      wire::QueueTopicList* out = resp->mutable_topics();
      for (const TopicInfo& t : topics) {
        wire::QueueTopicInfo* w = out->add_topics();
        w->set_name(t.name);
        ToWire(t.options, w->mutable_options());
      }
      return Status::Ok();
    }
    case wire::QueueRequest::kBuckets: {
      PACKICE_ASSIGN_OR_RETURN(std::vector<BucketInfo> buckets, queue.Buckets(topic));
      wire::QueueBucketList* out = resp->mutable_buckets();
      for (const BucketInfo& b : buckets) BucketToWire(b, out->add_buckets());
      return Status::Ok();
    }
    case wire::QueueRequest::kAppend: {
      const std::vector<QueueRecord> records = AppendRecords(req);
      PACKICE_ASSIGN_OR_RETURN(uint64_t at, queue.Append(topic, req.append().bucket(), records));
      resp->set_append_offset(at);
      return Status::Ok();
    }
    case wire::QueueRequest::kRead:
      if (req.read().wait_ms() < 0) return InvalidArgument("negative wait");
      return HandleRead(queue, req, resp);
    case wire::QueueRequest::kCommit: {
      const wire::QueueCommit& c = req.commit();
      return queue.Commit(topic, c.group(), c.bucket(), c.offset());
    }
    case wire::QueueRequest::kCommitted: {
      PACKICE_ASSIGN_OR_RETURN(
          std::optional<uint64_t> at,
          queue.Committed(topic, req.committed().group(), req.committed().bucket()));
      wire::QueueCommittedResult* out = resp->mutable_committed();
      if (at) out->set_offset(*at);
      return Status::Ok();
    }
    case wire::QueueRequest::kGroups: {
      PACKICE_ASSIGN_OR_RETURN(std::vector<GroupPosition> groups, queue.Groups(topic));
      wire::QueueGroupList* out = resp->mutable_groups();
      for (const GroupPosition& g : groups) {
        wire::QueueGroupPosition* w = out->add_positions();
        w->set_group(g.group);
        w->set_bucket(g.bucket);
        w->set_offset(g.offset);
      }
      return Status::Ok();
    }
    case wire::QueueRequest::kEnforceRetention:
      return queue.EnforceRetention();
    case wire::QueueRequest::kSetSchema: {
      PACKICE_ASSIGN_OR_RETURN(QueueSchema schema, ParseQueueSchema(req.set_schema()));
      PACKICE_ASSIGN_OR_RETURN(uint32_t version, queue.SetSchema(topic, schema));
      resp->set_schema_version(version);
      return Status::Ok();
    }
    case wire::QueueRequest::kSchemas: {
      PACKICE_ASSIGN_OR_RETURN(std::vector<QueueSchema> versions, queue.Schemas(topic));
      wire::QueueSchemaList* out = resp->mutable_schemas();
      for (const QueueSchema& s : versions) out->add_schemas(QueueSchemaJson(s));
      return Status::Ok();
    }
    case wire::QueueRequest::OP_NOT_SET:
      break;
  }
  return InvalidArgument("a queue request without an operation");
}

std::shared_ptr<Queue> NewWireQueue(QueueCaller call) {
  return std::make_shared<WireQueue>(std::move(call));
}

}  // namespace packice
