#include "cli/queue_command.h"

#include <fstream>
#include <iostream>
#include <sstream>

#include "cli/cli_util.h"
#include "core/parse.h"
#include "packice/queue.h"

namespace packice::cli {
namespace {

constexpr size_t kProduceBatch = 256;

Result<TopicOptions> TopicOptionsOf(const QueueArgs& a) {
  TopicOptions o;
  o.buckets = a.buckets;
  PACKICE_ASSIGN_OR_RETURN(o.fsync, ParseQueueFsync(a.fsync));
  PACKICE_ASSIGN_OR_RETURN(o.storage, ParseQueueStorage(a.storage));
  if (!a.fsync_interval.empty()) {
    PACKICE_ASSIGN_OR_RETURN(Duration d, ParseDuration(a.fsync_interval));
    o.fsync_interval = std::chrono::duration_cast<std::chrono::milliseconds>(d);
  }
  if (!a.segment_bytes.empty()) {
    PACKICE_ASSIGN_OR_RETURN(o.segment_bytes, ParseBytes(a.segment_bytes));
  }
  if (!a.retention_bytes.empty()) {
    PACKICE_ASSIGN_OR_RETURN(o.retention_bytes, ParseBytes(a.retention_bytes));
  }
  if (!a.retention_age.empty()) {
    PACKICE_ASSIGN_OR_RETURN(Duration d, ParseDuration(a.retention_age));
    o.retention_age = std::chrono::duration_cast<std::chrono::milliseconds>(d);
  }
  return o;
}

Result<QueueRecord> RecordOf(const QueueArgs& a, std::string value) {
  QueueRecord r;
  if (!a.key.empty()) r.key = a.key;
  for (const std::string& h : a.headers) {
    const size_t eq = h.find('=');
    if (eq == std::string::npos || eq == 0) {
      return InvalidArgument("--header is NAME=VALUE, not '" + h + "'");
    }
    r.headers.emplace_back(h.substr(0, eq), h.substr(eq + 1));
  }
  r.value = std::move(value);
  return r;
}

// Without a VALUE: one record per line of stdin, sent in batches.
int Produce(Queue& queue, const QueueArgs& a) {
  auto writer = QueueWriter::Open(std::shared_ptr<Queue>(&queue, [](Queue*) {}), a.topic);
  if (!writer.ok()) return Fail(writer.status());
  if (!a.value.empty()) {
    auto r = RecordOf(a, a.value);
    if (!r.ok()) return Fail(r.status());
    auto at = writer->Put(*std::move(r));
    if (!at.ok()) return Fail(at.status());
    std::cout << "bucket=" << at->bucket << " offset=" << at->offset << "\n";
    return 0;
  }
  std::vector<QueueRecord> batch;
  uint64_t sent = 0;
  auto flush = [&]() -> Status {
    if (batch.empty()) return Status::Ok();
    PACKICE_RETURN_IF_ERROR(writer->PutBatch(batch).status());
    sent += batch.size();
    batch.clear();
    return Status::Ok();
  };
  std::string line;
  while (std::getline(std::cin, line)) {
    auto r = RecordOf(a, std::move(line));
    if (!r.ok()) return Fail(r.status());
    batch.push_back(*std::move(r));
    if (batch.size() >= kProduceBatch) {
      if (Status s = flush(); !s.ok()) return Fail(s);
    }
  }
  if (Status s = flush(); !s.ok()) return Fail(s);
  std::cout << sent << " records\n";
  return 0;
}

int Consume(std::shared_ptr<Queue> queue, const QueueArgs& a) {
  auto wait = ParseDuration(a.wait);
  if (!wait.ok()) return Fail(wait.status());
  auto reader = QueueReader::Open(std::move(queue), a.topic, a.group);
  if (!reader.ok()) return Fail(reader.status());
  uint64_t got = 0;
  while (a.limit == 0 || got < a.limit) {
    const size_t want = a.limit == 0 ? 1000 : std::min<uint64_t>(1000, a.limit - got);
    auto batch = reader->Get(want, std::chrono::duration_cast<std::chrono::milliseconds>(*wait));
    if (!batch.ok()) return Fail(batch.status());
    if (batch->empty()) break;
    for (const BucketRecords& b : *batch) {
      for (const StoredRecord& r : b.records) {
        if (a.print_offsets) std::cout << b.bucket << ":" << r.offset << " ";
        Line(r.record.value);
        ++got;
      }
    }
  }
  if (!a.no_commit) {
    if (Status s = reader->Commit(); !s.ok()) return Fail(s);
  }
  return 0;
}

int Stat(Queue& queue, const QueueArgs& a) {
  auto buckets = queue.Buckets(a.topic);
  if (!buckets.ok()) return Fail(buckets.status());
  auto groups = queue.Groups(a.topic);
  if (!groups.ok()) return Fail(groups.status());
  for (const BucketInfo& b : *buckets) {
    std::cout << "bucket=" << b.bucket << " start=" << b.start_offset << " end=" << b.end_offset
              << " bytes=" << b.bytes << " records_in=" << b.records_in
              << " records_out=" << b.records_out << "\n";
  }
  for (const GroupPosition& g : *groups) {
    const uint64_t end = g.bucket < buckets->size() ? (*buckets)[g.bucket].end_offset : 0;
    std::cout << "group=" << g.group << " bucket=" << g.bucket << " committed=" << g.offset
              << " lag=" << (end > g.offset ? end - g.offset : 0) << "\n";
  }
  return 0;
}

// With a file ("-": stdin): a new schema version of the topic; without: its versions, one
// JSON line each.
int Schema(Queue& queue, const QueueArgs& a) {
  if (a.file.empty()) {
    auto versions = queue.Schemas(a.topic);
    if (!versions.ok()) return Fail(versions.status());
    for (const QueueSchema& s : *versions) std::cout << QueueSchemaJson(s) << "\n";
    return 0;
  }
  std::ostringstream text;
  if (a.file == "-") {
    text << std::cin.rdbuf();
  } else {
    std::ifstream in(a.file);
    if (!in) return Fail(InvalidArgument("cannot read " + a.file));
    text << in.rdbuf();
  }
  auto schema = ParseQueueSchema(text.str());
  if (!schema.ok()) return Fail(schema.status());
  auto version = queue.SetSchema(a.topic, *schema);
  if (!version.ok()) return Fail(version.status());
  Line("version " + std::to_string(*version));
  return 0;
}

}  // namespace

CLI::App* AddQueueCommand(CLI::App& app, QueueArgs* a) {
  CLI::App* q = app.add_subcommand("queue", "the node's queue: topics of durable records");
  q->require_subcommand(1);
  a->create = q->add_subcommand("create", "create a topic");
  a->ls = q->add_subcommand("ls", "list the topics");
  a->rm = q->add_subcommand("rm", "delete a topic, its records and its groups");
  a->produce =
      q->add_subcommand("produce", "append VALUE, or without one each line of stdin, to a topic");
  a->consume = q->add_subcommand("consume",
                                 "print a group's next records, one value a line, and commit them");
  a->stat = q->add_subcommand("stat", "a topic's buckets, and its groups' positions and lag");
  a->export_ = q->add_subcommand("export", "write a topic's records to FILE");
  a->import = q->add_subcommand("import", "create TOPIC from an export FILE");
  a->schema = q->add_subcommand(
      "schema", "a topic's schema versions; with FILE (JSON, - for stdin), add a version");
  for (CLI::App* sub :
       {a->create, a->rm, a->produce, a->consume, a->stat, a->export_, a->import, a->schema}) {
    sub->add_option("topic", a->topic, "topic")->required();
  }
  for (CLI::App* sub : {a->export_, a->import}) {
    sub->add_option("file", a->file, "the export file")->required();
  }
  a->schema->add_option("file", a->file, "the new version: {\"fields\": [...]} (docs/queue.md)");
  a->create->add_option("--buckets", a->buckets, "buckets (1..1024, default 1)");
  a->create->add_option("--fsync", a->fsync, "always (default), interval or never");
  a->create->add_option("--fsync-interval", a->fsync_interval, "with interval: e.g. 10ms");
  a->create->add_option("--segment-bytes", a->segment_bytes, "log segment size (default 64MiB)");
  a->create->add_option("--retention-bytes", a->retention_bytes, "keep about this much a bucket");
  a->create->add_option("--retention-age", a->retention_age, "drop segments older, e.g. 7d");
  a->create->add_option("--storage", a->storage,
                        "log (default), or tiered: full segments sealed into the object store");
  a->produce->add_option("value", a->value, "the record's value (default: lines of stdin)");
  a->produce->add_option("--key", a->key, "the records' key (its hash picks the bucket)");
  a->produce->add_option("--header", a->headers, "a header NAME=VALUE (repeatable)");
  a->consume->add_option("--group", a->group, "consumer group (default \"default\")");
  a->consume->add_option("--limit", a->limit, "stop after this many records");
  a->consume->add_option("--wait", a->wait, "wait this long for more (default 1s)");
  a->consume->add_flag("--no-commit", a->no_commit, "do not commit what was printed");
  a->consume->add_flag("--print-offsets", a->print_offsets, "prefix each value BUCKET:OFFSET");
  return q;
}

int RunQueueCommand(const QueueArgs& a, const std::string& url) {
  auto connected = ConnectQueue(url);
  if (!connected.ok()) return Fail(connected.status());
  std::shared_ptr<Queue> queue = *std::move(connected);
  if (*a.create) {
    auto o = TopicOptionsOf(a);
    if (!o.ok()) return Fail(o.status());
    if (Status s = queue->CreateTopic(a.topic, *o); !s.ok()) return Fail(s);
    Line("OK");
    return 0;
  }
  if (*a.ls) {
    auto topics = queue->ListTopics();
    if (!topics.ok()) return Fail(topics.status());
    for (const TopicInfo& t : *topics) {
      std::cout << t.name << " buckets=" << t.options.buckets
                << " fsync=" << QueueFsyncName(t.options.fsync)
                << " storage=" << QueueStorageName(t.options.storage) << "\n";
    }
    return 0;
  }
  if (*a.rm) {
    if (Status s = queue->DeleteTopic(a.topic); !s.ok()) return Fail(s);
    Line("OK");
    return 0;
  }
  if (*a.produce) return Produce(*queue, a);
  if (*a.consume) return Consume(queue, a);
  if (*a.stat) return Stat(*queue, a);
  if (*a.export_) {
    if (Status s = ExportTopic(*queue, a.topic, a.file); !s.ok()) return Fail(s);
    Line("OK");
    return 0;
  }
  if (*a.import) {
    if (Status s = ImportTopic(*queue, a.topic, a.file); !s.ok()) return Fail(s);
    Line("OK");
    return 0;
  }
  if (*a.schema) return Schema(*queue, a);
  return Fail(InvalidArgument("queue: no subcommand"));
}

}  // namespace packice::cli
