// The queue over a real packiced (ConnectQueue, over the Unix socket and over gRPC): every call
// and its errors, a waiting read woken by an append and one that times out, a waiting read
// ended by the node's stop, positions and records across a kill -9 restart, export and import,
// the CLI, and /metrics.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <future>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "http_testing.h"
#include "packice/client.h"
#include "packice/queue.h"
#include "testing.h"

namespace packice {
namespace {

using ::packice::testing::Daemon;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

QueueRecord Rec(std::string value, std::optional<std::string> key = std::nullopt) {
  QueueRecord r;
  r.key = std::move(key);
  r.value = std::move(value);
  r.headers = {{"h", "v"}};
  return r;
}

// Every record of `topic` from each bucket's start, bucket by bucket.
std::vector<std::vector<StoredRecord>> All(Queue& q, const std::string& topic) {
  std::vector<std::vector<StoredRecord>> out;
  auto buckets = q.Buckets(topic);
  if (!buckets.ok()) return out;
  for (const BucketInfo& b : *buckets) {
    std::vector<StoredRecord> records;
    QueuePosition at{b.bucket, b.start_offset};
    while (true) {
      const QueuePosition from[] = {at};
      auto got = q.Read(topic, from, 1000, milliseconds(0));
      if (!got.ok() || got->empty()) break;
      for (StoredRecord& r : (*got)[0].records) records.push_back(std::move(r));
      at.offset = records.back().offset + 1;
    }
    out.push_back(std::move(records));
  }
  return out;
}

class QueueClientTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    ASSERT_OK(node_.Start({"--grpc", "127.0.0.1:0"}));
    Connect();
  }
  void Connect() {
    auto q = ConnectQueue(GetParam() == "uds" ? node_.url() : node_.grpc_url());
    ASSERT_OK_R(q);
    queue_ = *std::move(q);
  }
  Daemon node_;
  std::shared_ptr<Queue> queue_;
};

TEST_P(QueueClientTest, EveryCallRoundTripsWithItsErrors) {
  TopicOptions o;
  o.buckets = 3;
  o.fsync = QueueFsync::kInterval;
  o.retention_bytes = 1u << 30;
  ASSERT_OK(queue_->CreateTopic("orders", o));
  EXPECT_EQ(queue_->CreateTopic("orders", o).code(), StatusCode::kAlreadyExists);
  ASSERT_OK_AND_ASSIGN(std::vector<TopicInfo> topics, queue_->ListTopics());
  ASSERT_EQ(topics.size(), 1u);
  EXPECT_EQ(topics[0].name, "orders");
  EXPECT_EQ(topics[0].options, o);

  ASSERT_OK_AND_ASSIGN(QueueWriter writer, QueueWriter::Open(queue_, "orders"));
  std::vector<QueueRecord> batch;
  for (int i = 0; i < 100; ++i)
    batch.push_back(Rec("v" + std::to_string(i), "k" + std::to_string(i % 7)));
  ASSERT_OK_AND_ASSIGN(std::vector<AppendResult> at, writer.PutBatch(batch));
  ASSERT_EQ(at.size(), 100u);

  // A group reads all 100, each key's records in the order written.
  ASSERT_OK_AND_ASSIGN(QueueReader reader, QueueReader::Open(queue_, "orders", "billing"));
  std::map<std::string, std::vector<std::string>> by_key;
  size_t got = 0;
  while (got < 100) {
    ASSERT_OK_AND_ASSIGN(std::vector<BucketRecords> part, reader.Get(30, milliseconds(1000)));
    ASSERT_FALSE(part.empty());
    for (const BucketRecords& b : part) {
      for (const StoredRecord& r : b.records) {
        EXPECT_EQ(r.record.headers, (std::vector<std::pair<std::string, std::string>>{{"h", "v"}}));
        EXPECT_GT(r.record.timestamp_unix_ms, 0);
        by_key[*r.record.key].push_back(r.record.value);
        ++got;
      }
    }
  }
  for (int i = 0; i < 100; ++i) {
    const std::vector<std::string>& v = by_key["k" + std::to_string(i % 7)];
    EXPECT_EQ(v[i / 7], "v" + std::to_string(i));
  }
  ASSERT_OK(reader.Commit());
  ASSERT_OK_AND_ASSIGN(std::vector<GroupPosition> groups, queue_->Groups("orders"));
  ASSERT_OK_AND_ASSIGN(std::vector<BucketInfo> buckets, queue_->Buckets("orders"));
  ASSERT_EQ(groups.size(), 3u);
  uint64_t total = 0;
  for (const BucketInfo& b : buckets) {
    total += b.end_offset;
    EXPECT_EQ(b.records_in, b.end_offset);
    EXPECT_EQ(b.records_out, b.end_offset);
    EXPECT_EQ(groups[b.bucket].offset, b.end_offset);
    ASSERT_OK_AND_ASSIGN(std::optional<uint64_t> c,
                         queue_->Committed("orders", "billing", b.bucket));
    EXPECT_EQ(c, b.end_offset);
  }
  EXPECT_EQ(total, 100u);

  // Bad input: clear errors, nothing lost.
  const QueuePosition past[] = {{0, buckets[0].end_offset + 1}};
  EXPECT_EQ(queue_->Read("orders", past, 10, milliseconds(0)).status().code(),
            StatusCode::kOutOfRange);
  const QueuePosition bad_bucket[] = {{7, 0}};
  EXPECT_EQ(queue_->Read("orders", bad_bucket, 10, milliseconds(0)).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(queue_->Read("orders", past, 10, milliseconds(-1)).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(queue_->Read("nosuch", past, 10, milliseconds(0)).status().code(),
            StatusCode::kNotFound);
  const QueueRecord huge[] = {Rec(std::string(5u << 20, 'x'))};
  EXPECT_EQ(queue_->Append("orders", 0, huge).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(queue_->Commit("orders", "billing", 0, buckets[0].end_offset + 5).code(),
            StatusCode::kOutOfRange);
  EXPECT_EQ(queue_->CreateTopic("bad/name", {}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(queue_->Subscribe("orders", [] {}).status().code(), StatusCode::kUnimplemented);
  ASSERT_OK_AND_ASSIGN(std::vector<BucketInfo> after, queue_->Buckets("orders"));
  EXPECT_EQ(after[0].end_offset, buckets[0].end_offset);

  ASSERT_OK(queue_->DeleteTopic("orders"));
  EXPECT_EQ(queue_->Buckets("orders").status().code(), StatusCode::kNotFound);
}

TEST_P(QueueClientTest, AWaitingReadWakesOnAppendAndOneWithNoneEndsEmpty) {
  ASSERT_OK(queue_->CreateTopic("live", {}));
  const QueuePosition from[] = {{0, 0}};
  auto start = steady_clock::now();
  ASSERT_OK_AND_ASSIGN(std::vector<BucketRecords> none,
                       queue_->Read("live", from, 10, milliseconds(300)));
  EXPECT_TRUE(none.empty());
  EXPECT_GE(steady_clock::now() - start, milliseconds(250));

  auto waiting = std::async(std::launch::async,
                            [&] { return queue_->Read("live", from, 10, milliseconds(20000)); });
  std::this_thread::sleep_for(milliseconds(200));  // the read is parked on the node by now
  start = steady_clock::now();
  const QueueRecord r[] = {Rec("wake")};
  ASSERT_OK_R(queue_->Append("live", 0, r));
  ASSERT_EQ(waiting.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  auto got = waiting.get();
  ASSERT_OK_R(got);
  ASSERT_EQ(got->size(), 1u);
  EXPECT_EQ((*got)[0].records[0].record.value, "wake");
  EXPECT_LT(steady_clock::now() - start, std::chrono::seconds(5));

  // Deleting the topic ends a parked read with kNotFound.
  const QueuePosition next[] = {{0, 1}};
  auto orphan = std::async(std::launch::async,
                           [&] { return queue_->Read("live", next, 10, milliseconds(20000)); });
  std::this_thread::sleep_for(milliseconds(200));
  ASSERT_OK(queue_->DeleteTopic("live"));
  ASSERT_EQ(orphan.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_EQ(orphan.get().status().code(), StatusCode::kNotFound);
}

TEST_P(QueueClientTest, RecordsAndPositionsSurviveKill9) {
  TopicOptions o;
  o.buckets = 2;
  ASSERT_OK(queue_->CreateTopic("durable", o));
  std::vector<QueueRecord> batch;
  for (int i = 0; i < 50; ++i) batch.push_back(Rec("r" + std::to_string(i)));
  ASSERT_OK_R(queue_->Append("durable", 0, batch));
  ASSERT_OK_R(queue_->Append("durable", 1, std::span(batch).first(10)));
  ASSERT_OK(queue_->Commit("durable", "g", 0, 20));
  const auto before = All(*queue_, "durable");

  queue_.reset();
  node_.Stop(SIGKILL);
  ASSERT_OK(node_.Start({"--grpc", "127.0.0.1:0"}));
  Connect();
  EXPECT_EQ(All(*queue_, "durable"), before);
  ASSERT_OK_AND_ASSIGN(std::optional<uint64_t> c, queue_->Committed("durable", "g", 0));
  EXPECT_EQ(c, 20u);
  ASSERT_OK_AND_ASSIGN(QueueReader reader, QueueReader::Open(queue_, "durable", "g"));
  ASSERT_OK_AND_ASSIGN(std::vector<BucketRecords> next, reader.Get(1, milliseconds(0)));
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].records[0].offset, next[0].bucket == 0 ? 20u : 0u);
}

// A tiered topic on the node (its default store: memory in front of disk) seals full segments
// as objects of the node's store, which any client sees under "queue/"; kill -9 loses the ones
// only in memory, and the log, which kept their records, has them sealed again.
TEST_P(QueueClientTest, ATieredTopicSealsIntoTheNodesStoreAndLosesNothingToKill9) {
  TopicOptions o;
  o.segment_bytes = 1 << 20;
  o.fsync = QueueFsync::kNever;
  o.storage = QueueStorage::kTiered;
  ASSERT_OK(queue_->CreateTopic("cold", o));
  std::vector<QueueRecord> batch;
  for (int i = 0; i < 200; ++i) batch.push_back(Rec(std::string(4000, 'a' + i % 26)));
  for (int round = 0; round < 6; ++round) ASSERT_OK_R(queue_->Append("cold", 0, batch));
  const auto before = All(*queue_, "cold");
  ASSERT_EQ(before[0].size(), 1200u);
  ASSERT_OK_AND_ASSIGN(Client objects, ::packice::Connect(node_.url()));
  auto sealed = [&] {
    auto page = objects.List({.prefix = "queue/"});
    return page.ok() ? page->objects.size() : 0;
  };
  const auto until = steady_clock::now() + std::chrono::seconds(30);
  while (sealed() < 4 && steady_clock::now() < until) std::this_thread::sleep_for(milliseconds(10));
  ASSERT_GE(sealed(), 4u);  // 4.8 MB of records: four full 1 MiB runs at least
  EXPECT_EQ(All(*queue_, "cold"), before);

  queue_.reset();
  node_.Stop(SIGKILL);
  ASSERT_OK(node_.Start({"--grpc", "127.0.0.1:0"}));
  Connect();
  EXPECT_EQ(All(*queue_, "cold"), before);
  ASSERT_OK_AND_ASSIGN(objects, ::packice::Connect(node_.url()));
  const auto again = steady_clock::now() + std::chrono::seconds(30);
  while (sealed() < 4 && steady_clock::now() < again) std::this_thread::sleep_for(milliseconds(10));
  EXPECT_GE(sealed(), 4u);
  EXPECT_EQ(All(*queue_, "cold"), before);
  ASSERT_OK(queue_->DeleteTopic("cold"));
}

TEST_P(QueueClientTest, ExportAndImportRoundTripAndATornFileImportsNothing) {
  TopicOptions o;
  o.buckets = 3;
  o.retention_age = std::chrono::hours(24);
  o.storage = QueueStorage::kTiered;  // the node's store takes its segments; the export keeps it
  ASSERT_OK(queue_->CreateTopic("src", o));
  ASSERT_OK_AND_ASSIGN(QueueWriter writer, QueueWriter::Open(queue_, "src"));
  for (int i = 0; i < 40; ++i)
    ASSERT_OK_R(writer.Put(Rec(std::string(i * 10, 'a' + i % 26), "k" + std::to_string(i))));
  ::packice::testing::TempDir dir;
  const std::string file = dir.path() + "/src.pkq";
  ASSERT_OK(ExportTopic(*queue_, "src", file));
  ASSERT_OK(ImportTopic(*queue_, "copy", file));
  EXPECT_EQ(All(*queue_, "copy"), All(*queue_, "src"));
  ASSERT_OK_AND_ASSIGN(std::vector<TopicInfo> topics, queue_->ListTopics());
  for (const TopicInfo& t : topics) EXPECT_EQ(t.options, o) << t.name;
  EXPECT_EQ(ImportTopic(*queue_, "copy", file).code(), StatusCode::kAlreadyExists);

  const std::string bytes = ::packice::testing::ReadFile(file);
  {
    std::ofstream torn(dir.path() + "/torn.pkq", std::ios::binary);
    torn.write(bytes.data(), static_cast<std::streamsize>(bytes.size() - 20));
  }
  EXPECT_EQ(ImportTopic(*queue_, "torn", dir.path() + "/torn.pkq").code(), StatusCode::kDataLoss);
  EXPECT_EQ(queue_->Buckets("torn").status().code(), StatusCode::kNotFound);
  std::string flipped = bytes;
  flipped[flipped.size() / 2] ^= 0x40;
  {
    std::ofstream bad(dir.path() + "/bad.pkq", std::ios::binary);
    bad.write(flipped.data(), static_cast<std::streamsize>(flipped.size()));
  }
  EXPECT_EQ(ImportTopic(*queue_, "bad", dir.path() + "/bad.pkq").code(), StatusCode::kDataLoss);
  EXPECT_EQ(ImportTopic(*queue_, "none", dir.path() + "/missing").code(), StatusCode::kNotFound);
}

TEST_P(QueueClientTest, TheCommandLineProducesConsumesAndStats) {
  const std::string cli = ::packice::testing::BinPath("packice");
  const std::string url = "--url=" + node_.url();
  std::string out;
  ASSERT_EQ(
      ::packice::testing::RunProgram({cli, url, "queue", "create", "logs", "--buckets", "2"}, &out),
      0)
      << out;
  ASSERT_EQ(
      ::packice::testing::RunProgram({cli, url, "queue", "produce", "logs"}, &out, "a\nb\nc\n"), 0)
      << out;
  EXPECT_EQ(out, "3 records\n");
  ASSERT_EQ(::packice::testing::RunProgram(
                {cli, url, "queue", "consume", "logs", "--group", "ops", "--wait", "100ms"}, &out),
            0)
      << out;
  std::vector<std::string> lines;
  std::stringstream ss(out);
  for (std::string l; std::getline(ss, l);) lines.push_back(l);
  std::sort(lines.begin(), lines.end());
  EXPECT_EQ(lines, (std::vector<std::string>{"a", "b", "c"}));
  // Committed: the group's next consume has nothing.
  ASSERT_EQ(::packice::testing::RunProgram(
                {cli, url, "queue", "consume", "logs", "--group", "ops", "--wait", "100ms"}, &out),
            0);
  EXPECT_EQ(out, "");
  ASSERT_EQ(::packice::testing::RunProgram({cli, url, "queue", "stat", "logs"}, &out), 0);
  EXPECT_NE(out.find("group=ops bucket=0"), std::string::npos) << out;
  EXPECT_NE(out.find("lag=0"), std::string::npos) << out;
  EXPECT_EQ(::packice::testing::RunProgram({cli, url, "queue", "stat", "nosuch"}, &out), 1);
  EXPECT_NE(out.find("packice: not_found"), std::string::npos) << out;
}

TEST_P(QueueClientTest, AWaitingReadEndsWhenTheNodeStops) {
  ASSERT_OK(queue_->CreateTopic("quiet", {}));
  const QueuePosition from[] = {{0, 0}};
  auto waiting = std::async(std::launch::async,
                            [&] { return queue_->Read("quiet", from, 10, milliseconds(25000)); });
  std::this_thread::sleep_for(milliseconds(300));  // parked on the node
  const auto start = steady_clock::now();
  EXPECT_EQ(node_.Stop(SIGTERM), 0);  // exits at once, not when the read's wait ends
  EXPECT_LT(steady_clock::now() - start, std::chrono::seconds(5));
  ASSERT_EQ(waiting.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_FALSE(waiting.get().ok());
}

TEST_P(QueueClientTest, LargeRecordsReadBackInAnswersThatFit) {
  ASSERT_OK(queue_->CreateTopic("big", {}));
  // Five 1 MiB records and one of 3.5 MiB: more than one 4 MiB gRPC message holds.
  std::vector<std::string> values;
  for (int i = 0; i < 5; ++i) values.push_back(std::string(1u << 20, static_cast<char>('a' + i)));
  values.push_back(std::string((7u << 20) / 2, 'z'));
  for (const std::string& v : values) {
    const QueueRecord one[] = {Rec(v)};
    ASSERT_OK_R(queue_->Append("big", 0, one));
  }
  QueuePosition at{0, 0};
  size_t reads = 0;
  std::vector<std::string> got;
  while (got.size() < values.size() && reads < 20) {
    const QueuePosition from[] = {at};
    ASSERT_OK_AND_ASSIGN(std::vector<BucketRecords> r,
                         queue_->Read("big", from, 100, milliseconds(0)));
    ASSERT_EQ(r.size(), 1u);
    for (StoredRecord& s : r[0].records) got.push_back(std::move(s.record.value));
    at.offset = got.size();
    ++reads;
  }
  ASSERT_EQ(got.size(), values.size());
  EXPECT_TRUE(got == values);
  EXPECT_GE(reads, 2u);  // no answer held all 8.5 MiB
}

INSTANTIATE_TEST_SUITE_P(Transports, QueueClientTest, ::testing::Values("uds", "grpc"),
                         [](const auto& info) { return info.param; });

TEST(QueueNodeTest, MetricsShowOffsetsTrafficAndLag) {
  Daemon node;
  ASSERT_OK(node.Start({"--http", "127.0.0.1:0"}));
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<Queue> q, ConnectQueue(node.url()));
  ASSERT_OK(q->CreateTopic("m", {}));
  const QueueRecord r[] = {Rec("1"), Rec("2"), Rec("3")};
  ASSERT_OK_R(q->Append("m", 0, r));
  ASSERT_OK(q->Commit("m", "slow", 0, 1));
  auto reply = ::packice::testing::Http("GET", node.http_url() + "/metrics");
  ASSERT_EQ(reply.status, 200);
  for (const char* line :
       {"packice_queue_topics 1\n", "packice_queue_end_offset{topic=\"m\",bucket=\"0\"} 3\n",
        "packice_queue_records_in_total{topic=\"m\",bucket=\"0\"} 3\n",
        "packice_queue_appends_total{topic=\"m\",bucket=\"0\"} 1\n",
        "packice_queue_consumer_lag{topic=\"m\",group=\"slow\",bucket=\"0\"} 2\n"}) {
    EXPECT_NE(reply.body.find(line), std::string::npos) << line << reply.body;
  }
}

TEST(QueueNodeTest, ANodeWithoutAQueueSaysSo) {
  Daemon node;
  ASSERT_OK(node.Start({"--no-queue"}));
  EXPECT_EQ(ConnectQueue(node.url()).status().code(), StatusCode::kUnimplemented);
  EXPECT_EQ(ConnectQueue("http://x").status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace packice
