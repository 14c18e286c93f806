// /v1/queue (queue_routes.cc) on an HttpServer in this process over a real queue in a temporary
// directory: topics, appends (JSON and raw, partitioned and to a bucket), reads by position and
// by group, commits and lag, long polls woken by an append or ended by their wait or the
// server's stop, and bad input with its codes; and the request parsing (queue_request.h).
#include <gtest/gtest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <future>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "http_testing.h"
#include "packice/memory_peer.h"
#include "packice/queue.h"
#include "testing.h"
#include "transport/http/http_server.h"
#include "transport/http/kv_request.h"
#include "transport/http/queue_request.h"

namespace packice {
namespace {

using testing::Http;
using testing::HttpReply;
using testing::TempDir;
using Json = nlohmann::json;
using namespace std::chrono_literals;

Json Parse(const HttpReply& r) { return Json::parse(r.body, nullptr, false); }
std::string Unb64(const Json& j) {
  return http_kv::Base64Decode(j.get<std::string>()).value_or("?");
}
const std::vector<std::string> kJson = {"Content-Type: application/json"};

// An HttpServer serving a queue in `dir` (none when `serve` is false), on a loopback port.
class QueueNode {
 public:
  explicit QueueNode(const std::string& dir, bool serve = true) {
    if (serve) {
      auto q = OpenQueue({.dir = dir});
      EXPECT_TRUE(q.ok()) << q.status().ToString();
      if (q.ok()) queue_ = *std::move(q);
    }
    HttpServerOptions options;
    options.listen = "127.0.0.1:0";
    options.queue = queue_;
    server_ = std::make_unique<HttpServer>(io_, MemoryPeer::Create({}), options, nullptr);
    Status s = server_->Start();
    EXPECT_TRUE(s.ok()) << s.ToString();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~QueueNode() { Stop(); }

  void Stop() {
    if (!thread_.joinable()) return;
    server_->Stop();
    work_.reset();
    thread_.join();
    server_.reset();
  }

  std::string Url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_or_zero()) + path;
  }
  Queue& queue() { return *queue_; }

 private:
  uint16_t port_or_zero() const { return server_ ? server_->port() : 0; }

  boost::asio::io_context io_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_{
      io_.get_executor()};
  std::shared_ptr<Queue> queue_;
  std::unique_ptr<HttpServer> server_;
  std::thread thread_;
};

HttpReply Put(const std::string& url, const std::string& body) {
  return Http("PUT", url, &body, kJson);
}
HttpReply PostJson(const std::string& url, const std::string& body) {
  return Http("POST", url, &body, kJson);
}

TEST(QueueHttpTest, TopicsAreCreatedListedStatedAndDeleted) {
  TempDir dir;
  QueueNode node(dir.path() + "/q");
  HttpReply created = Put(node.Url("/v1/queue/events"),
                          R"({"buckets": 3, "fsync": "never", "retention_bytes": 0})");
  ASSERT_EQ(created.status, 201) << created.body;
  EXPECT_EQ(Parse(created)["topic"], "events");
  EXPECT_EQ(Put(node.Url("/v1/queue/events"), "").status, 409);
  ASSERT_EQ(Http("PUT", node.Url("/v1/queue/plain")).status, 201);  // no body: the defaults

  HttpReply list = Http("GET", node.Url("/v1/queue"));
  ASSERT_EQ(list.status, 200) << list.body;
  Json topics = Parse(list)["topics"];
  ASSERT_EQ(topics.size(), 2u);
  EXPECT_EQ(topics[0]["name"], "events");
  EXPECT_EQ(topics[0]["options"]["buckets"], 3);
  EXPECT_EQ(topics[0]["options"]["fsync"], "never");
  EXPECT_EQ(topics[1]["options"]["fsync"], "always");
  EXPECT_EQ(topics[1]["options"]["storage"], "log");
  // This queue has no object store for a tiered topic; an unknown storage is refused too.
  HttpReply tiered = Put(node.Url("/v1/queue/cold"), R"({"storage": "tiered"})");
  EXPECT_EQ(tiered.status, 400) << tiered.body;
  EXPECT_EQ(Put(node.Url("/v1/queue/cold"), R"({"storage": "tape"})").status, 400);
  EXPECT_EQ(Put(node.Url("/v1/queue/cold"), R"({"storage": 1})").status, 400);

  HttpReply stat = Http("GET", node.Url("/v1/queue/events"));
  ASSERT_EQ(stat.status, 200) << stat.body;
  Json s = Parse(stat);
  EXPECT_EQ(s["topic"], "events");
  EXPECT_EQ(s["buckets"].size(), 3u);
  EXPECT_EQ(s["buckets"][2]["end_offset"], 0);
  EXPECT_TRUE(s["groups"].empty());

  EXPECT_EQ(Http("DELETE", node.Url("/v1/queue/events")).status, 204);
  HttpReply gone = Http("GET", node.Url("/v1/queue/events"));
  EXPECT_EQ(gone.status, 404);
  EXPECT_TRUE(gone.Has("x-packice-error: not_found")) << gone.headers;
  EXPECT_EQ(Http("DELETE", node.Url("/v1/queue/events")).status, 404);
}

TEST(QueueHttpTest, JsonAppendsPartitionByKeyAndReadBack) {
  TempDir dir;
  QueueNode node(dir.path() + "/q");
  ASSERT_EQ(Put(node.Url("/v1/queue/t"), R"({"buckets": 4, "fsync": "never"})").status, 201);
  // Eight records with one key go to one bucket, in order; every form of value.
  Json records = Json::array();
  for (int i = 0; i < 8; ++i) {
    records.push_back({{"key", "user-7"}, {"text", "event " + std::to_string(i)}});
  }
  records.push_back({{"key_percent", "%FF%00k"},
                     {"value", http_kv::Base64Encode(std::string("\0\x01\xfe", 3))},
                     {"headers", Json::array({Json::array({"content-type", "bin"}),
                                              Json::array({"content-type", "again"})})}});
  records.push_back({{"json", {{"a", 1}, {"b", {true, nullptr}}}}, {"timestamp_unix_ms", 1234}});
  HttpReply put = PostJson(node.Url("/v1/queue/t/records"), Json({{"records", records}}).dump());
  ASSERT_EQ(put.status, 200) << put.body;
  Json where = Parse(put)["records"];
  ASSERT_EQ(where.size(), 10u);
  const uint32_t bucket = where[0]["bucket"];
  for (int i = 0; i < 8; ++i) {
    EXPECT_EQ(where[i]["bucket"], bucket);
    EXPECT_EQ(where[i]["offset"], i);
  }

  HttpReply read = Http("GET", node.Url("/v1/queue/t/records?bucket=" + std::to_string(bucket) +
                                        "&offset=2&limit=3"));
  ASSERT_EQ(read.status, 200) << read.body;
  Json r = Parse(read);
  ASSERT_EQ(r["buckets"].size(), 1u);
  Json got = r["buckets"][0]["records"];
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0]["offset"], 2);
  EXPECT_EQ(Unb64(got[0]["value"]), "event 2");
  EXPECT_EQ(got[0]["key"], "user-7");
  EXPECT_GT(got[0]["timestamp_unix_ms"].get<int64_t>(), 1'600'000'000'000);
  EXPECT_EQ(r["next"][0]["bucket"], bucket);
  EXPECT_EQ(r["next"][0]["offset"], 5);

  // The binary record and the JSON one, wherever they went, read back exactly.
  std::string from;
  for (uint32_t b = 0; b < 4; ++b) from += (b ? "," : "") + std::to_string(b) + ":0";
  HttpReply all = Http("GET", node.Url("/v1/queue/t/records?from=" + from + "&limit=100"));
  ASSERT_EQ(all.status, 200) << all.body;
  int seen = 0;
  Json a = Parse(all);
  EXPECT_EQ(a["next"].size(), 4u);
  for (const Json& b : a["buckets"]) {
    for (const Json& rec : b["records"]) {
      ++seen;
      if (rec.contains("key_percent")) {
        EXPECT_EQ(rec["key_percent"], "%FF%00k");
        EXPECT_EQ(Unb64(rec["value"]), std::string("\0\x01\xfe", 3));
        ASSERT_EQ(rec["headers"].size(), 2u);
        EXPECT_EQ(rec["headers"][1][1], "again");
      } else if (!rec.contains("key")) {
        EXPECT_EQ(Json::parse(Unb64(rec["value"])), Json({{"a", 1}, {"b", {true, nullptr}}}));
        EXPECT_EQ(rec["timestamp_unix_ms"], 1234);
      }
    }
  }
  EXPECT_EQ(seen, 10);
  // What a read returns may be appended again as it is (offsets are ignored).
  Json again = Json::object({{"records", a["buckets"][0]["records"]}});
  EXPECT_EQ(PostJson(node.Url("/v1/queue/t/records?bucket=0"), again.dump()).status, 200);
}

TEST(QueueHttpTest, RawAppendsGoToTheirKeyOrBucketOrInTurn) {
  TempDir dir;
  QueueNode node(dir.path() + "/q");
  ASSERT_EQ(Put(node.Url("/v1/queue/t"), R"({"buckets": 2})").status, 201);
  const std::string line = "plain text line\n";
  HttpReply to1 = Http("POST", node.Url("/v1/queue/t/records?bucket=1&key=a%20b"), &line);
  ASSERT_EQ(to1.status, 200) << to1.body;
  EXPECT_EQ(Parse(to1)["records"][0]["bucket"], 1);
  // Keyless records without a bucket take the buckets in turn, request after request.
  std::set<int> buckets;
  for (int i = 0; i < 4; ++i) {
    HttpReply r = Http("POST", node.Url("/v1/queue/t/records"), &line);
    ASSERT_EQ(r.status, 200) << r.body;
    buckets.insert(Parse(r)["records"][0]["bucket"].get<int>());
  }
  EXPECT_EQ(buckets.size(), 2u);
  HttpReply read = Http("GET", node.Url("/v1/queue/t/records?bucket=1&offset=0&limit=1"));
  Json rec = Parse(read)["buckets"][0]["records"][0];
  EXPECT_EQ(Unb64(rec["value"]), line);
  EXPECT_EQ(rec["key"], "a b");
  // A record over 4 MiB is refused before its body is read.
  const std::string big((4u << 20) + 1, 'x');
  EXPECT_EQ(Http("POST", node.Url("/v1/queue/t/records"), &big).status, 413);
}

TEST(QueueHttpTest, GroupsReadFromTheirCommitsAndShowLag) {
  TempDir dir;
  QueueNode node(dir.path() + "/q");
  ASSERT_EQ(Put(node.Url("/v1/queue/t"), R"({"buckets": 2})").status, 201);
  Json records = Json::array();
  for (int i = 0; i < 6; ++i) records.push_back({{"text", std::to_string(i)}});
  ASSERT_EQ(PostJson(node.Url("/v1/queue/t/records"), Json({{"records", records}}).dump()).status,
            200);

  HttpReply first = Http("GET", node.Url("/v1/queue/t/records?group=g&limit=4"));
  ASSERT_EQ(first.status, 200) << first.body;
  Json r = Parse(first);
  size_t n = 0;
  for (const Json& b : r["buckets"]) n += b["records"].size();
  EXPECT_EQ(n, 4u);
  // Commit the read's "next" as it is.
  HttpReply commit =
      PostJson(node.Url("/v1/queue/t/groups/g"), Json({{"positions", r["next"]}}).dump());
  ASSERT_EQ(commit.status, 200) << commit.body;
  EXPECT_EQ(Parse(commit)["positions"].size(), 2u);

  HttpReply rest = Http("GET", node.Url("/v1/queue/t/records?group=g"));
  const Json rest_json = Parse(rest);
  n = 0;
  for (const Json& b : rest_json["buckets"]) n += b["records"].size();
  EXPECT_EQ(n, 2u) << rest.body;

  Json stat = Parse(Http("GET", node.Url("/v1/queue/t")));
  uint64_t lag = 0;
  for (const Json& g : stat["groups"]) {
    EXPECT_EQ(g["group"], "g");
    lag += g["lag"].get<uint64_t>();
  }
  EXPECT_EQ(lag, 2u);
  HttpReply positions = Http("GET", node.Url("/v1/queue/t/groups/g"));
  ASSERT_EQ(positions.status, 200);
  EXPECT_EQ(Parse(positions)["positions"].size(), 2u);
  EXPECT_TRUE(Parse(Http("GET", node.Url("/v1/queue/t/groups/other")))["positions"].empty());
  // Past the end: out of range, nothing committed.
  HttpReply past =
      PostJson(node.Url("/v1/queue/t/groups/g"), R"({"positions": [{"bucket": 0, "offset": 99}]})");
  EXPECT_EQ(past.status, 416) << past.body;
  EXPECT_TRUE(past.Has("x-packice-error: out_of_range")) << past.headers;
}

TEST(QueueHttpTest, LongPollWakesOnAppendAndEndsEmptyAfterItsWait) {
  TempDir dir;
  QueueNode node(dir.path() + "/q");
  ASSERT_EQ(Put(node.Url("/v1/queue/t"), "").status, 201);
  const auto start = std::chrono::steady_clock::now();
  HttpReply empty = Http("GET", node.Url("/v1/queue/t/records?bucket=0&offset=0&wait=300ms"));
  const auto waited = std::chrono::steady_clock::now() - start;
  ASSERT_EQ(empty.status, 200) << empty.body;
  EXPECT_TRUE(Parse(empty)["buckets"].empty());
  EXPECT_EQ(Parse(empty)["next"][0]["offset"], 0);
  EXPECT_GE(waited, 250ms);

  // Many polls parked at once hold no threads: an append wakes all of them.
  std::vector<std::future<HttpReply>> polls;
  for (int i = 0; i < 8; ++i) {
    polls.push_back(std::async(std::launch::async, [&node] {
      return Http("GET", node.Url("/v1/queue/t/records?bucket=0&offset=0&wait=20s"));
    }));
  }
  std::this_thread::sleep_for(300ms);
  const std::string value = "wake";
  const auto appended = std::chrono::steady_clock::now();
  ASSERT_EQ(Http("POST", node.Url("/v1/queue/t/records"), &value).status, 200);
  for (auto& p : polls) {
    HttpReply r = p.get();
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(Unb64(Parse(r)["buckets"][0]["records"][0]["value"]), "wake");
  }
  EXPECT_LT(std::chrono::steady_clock::now() - appended, 5s);
}

TEST(QueueHttpTest, StoppingTheServerEndsParkedPolls) {
  TempDir dir;
  auto node = std::make_unique<QueueNode>(dir.path() + "/q");
  ASSERT_EQ(Put(node->Url("/v1/queue/t"), "").status, 201);
  const std::string url = node->Url("/v1/queue/t/records?bucket=0&offset=0&wait=25s");
  auto poll = std::async(std::launch::async, [url] { return Http("GET", url); });
  std::this_thread::sleep_for(300ms);
  const auto start = std::chrono::steady_clock::now();
  node->Stop();
  HttpReply r = poll.get();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  EXPECT_NE(r.status, 200);
}

TEST(QueueHttpTest, SchemasAreSetCheckedAndOldRecordsReadUnderTheNewest) {
  TempDir dir;
  QueueNode node(dir.path() + "/q");
  ASSERT_EQ(Put(node.Url("/v1/queue/s"), "").status, 201);
  EXPECT_TRUE(Parse(Http("GET", node.Url("/v1/queue/s/schema")))["versions"].empty());
  HttpReply v1 = Put(node.Url("/v1/queue/s/schema"),
                     R"({"fields": [{"name": "user", "type": "int", "required": true}]})");
  ASSERT_EQ(v1.status, 200) << v1.body;
  EXPECT_EQ(Parse(v1)["version"], 1);
  ASSERT_EQ(
      PostJson(node.Url("/v1/queue/s/records"), R"({"records": [{"json": {"user": 1}}]})").status,
      200);
  HttpReply bad = PostJson(node.Url("/v1/queue/s/records"),
                           R"({"records": [{"json": {"user": 2}}, {"json": {"user": "x"}}]})");
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("records[1]: field 'user' is int, not string"), std::string::npos)
      << bad.body;
  const std::string raw = "plain";
  EXPECT_EQ(Http("POST", node.Url("/v1/queue/s/records"), &raw).status, 400);
  // A field that is not optional cannot be added; an optional one can.
  HttpReply refused = Put(node.Url("/v1/queue/s/schema"),
                          R"({"fields": [{"name": "user", "type": "int", "required": true},
                                         {"name": "n", "type": "int", "required": true}]})");
  EXPECT_EQ(refused.status, 400);
  EXPECT_TRUE(refused.Has("x-packice-error: invalid_argument")) << refused.headers;
  HttpReply v2 = Put(node.Url("/v1/queue/s/schema"),
                     R"({"fields": [{"name": "user", "type": "int", "required": true},
                                    {"name": "n", "type": "int", "default": 3}]})");
  ASSERT_EQ(v2.status, 200) << v2.body;
  EXPECT_EQ(Parse(v2)["version"], 2);
  const Json versions = Parse(Http("GET", node.Url("/v1/queue/s/schema")))["versions"];
  ASSERT_EQ(versions.size(), 2u);
  EXPECT_EQ(versions[1]["fields"][1], Json({{"name", "n"}, {"type", "int"}, {"default", 3}}));
  const Json read = Parse(Http("GET", node.Url("/v1/queue/s/records?bucket=0&offset=0")));
  const Json rec = read["buckets"][0]["records"][0];
  EXPECT_EQ(Json::parse(Unb64(rec["value"])), Json({{"user", 1}, {"n", 3}}));
  EXPECT_EQ(Http("DELETE", node.Url("/v1/queue/s/schema")).status, 405);
  EXPECT_EQ(Http("GET", node.Url("/v1/queue/nosuch/schema")).status, 404);
  EXPECT_EQ(Put(node.Url("/v1/queue/s/schema"), "{").status, 400);
}

TEST(QueueHttpTest, BadRequestsGetClearErrors) {
  TempDir dir;
  QueueNode node(dir.path() + "/q");
  ASSERT_EQ(Put(node.Url("/v1/queue/t"), R"({"buckets": 2})").status, 201);
  struct Case {
    std::string method, path, body;
    long status;
    std::string code;
  };
  const std::vector<Case> cases = {
      {"PUT", "/v1/queue/t2", R"({"buckets": 0.5})", 400, "invalid_argument"},
      {"PUT", "/v1/queue/t2", R"({"colour": "red"})", 400, "invalid_argument"},
      {"PUT", "/v1/queue/t2", R"({"fsync": "sometimes"})", 400, "invalid_argument"},
      {"PUT", "/v1/queue/t2", R"({"buckets": 5000})", 400, "invalid_argument"},
      {"PUT", "/v1/queue/bad%20name", "", 400, "invalid_argument"},
      {"PUT", "/v1/queue/t2", "[1,2", 400, "invalid_argument"},
      {"GET", "/v1/queue/nope", "", 404, "not_found"},
      {"GET", "/v1/queue/nope/records?bucket=0&offset=0", "", 404, "not_found"},
      {"GET", "/v1/queue/t/what", "", 404, "not_found"},
      {"GET", "/v1/queue/t/groups/g/x", "", 404, "not_found"},
      {"POST", "/v1/queue/t/records", R"({"records": []})", 400, "invalid_argument"},
      {"POST", "/v1/queue/t/records", R"({"records": [{"value": "!!"}]})", 400, "invalid_argument"},
      {"POST", "/v1/queue/t/records", R"({"records": [{"text": "a", "value": "YQ=="}]})", 400,
       "invalid_argument"},
      {"POST", "/v1/queue/t/records", R"({"records": [{"text": "a", "headers": {"a": 1}}]})", 400,
       "invalid_argument"},
      {"POST", "/v1/queue/t/records?bucket=2", R"({"records": [{"text": "a"}]})", 400,
       "invalid_argument"},
      {"POST", "/v1/queue/t/records?bucket=-1", R"({"records": [{"text": "a"}]})", 400,
       "invalid_argument"},
      {"GET", "/v1/queue/t/records", "", 400, "invalid_argument"},
      {"GET", "/v1/queue/t/records?bucket=0&offset=0&group=g", "", 400, "invalid_argument"},
      {"GET", "/v1/queue/t/records?bucket=0&offset=0&limit=0", "", 400, "invalid_argument"},
      {"GET", "/v1/queue/t/records?bucket=0&offset=0&limit=-3", "", 400, "invalid_argument"},
      {"GET", "/v1/queue/t/records?bucket=0&offset=0&limit=10001", "", 400, "invalid_argument"},
      {"GET", "/v1/queue/t/records?bucket=0&offset=0&wait=-1s", "", 400, "invalid_argument"},
      {"GET", "/v1/queue/t/records?from=0:x", "", 400, "invalid_argument"},
      {"GET", "/v1/queue/t/records?bucket=0&offset=7", "", 416, "out_of_range"},
      {"GET", "/v1/queue/t/records?bucket=9&offset=0", "", 400, "invalid_argument"},
      {"POST", "/v1/queue/t/groups/g", R"({"positions": [{"bucket": 0}]})", 400,
       "invalid_argument"},
      {"POST", "/v1/queue/t/groups/bad%20g", R"({"positions": [{"bucket": 0, "offset": 0}]})", 400,
       "invalid_argument"},
      {"PATCH", "/v1/queue/t", "", 405, "invalid_argument"},
      {"DELETE", "/v1/queue/t/records", "", 405, "invalid_argument"},
      {"POST", "/v1/queue", "", 405, "invalid_argument"},
  };
  for (const Case& c : cases) {
    HttpReply r = c.body.empty() ? Http(c.method, node.Url(c.path))
                                 : Http(c.method, node.Url(c.path), &c.body, kJson);
    EXPECT_EQ(r.status, c.status) << c.method << " " << c.path << " " << c.body << ": " << r.body;
    EXPECT_TRUE(r.Has("x-packice-error: " + c.code))
        << c.method << " " << c.path << " " << c.body << ": " << r.headers;
  }
  // Nothing was appended by the refused appends.
  Json stat = Parse(Http("GET", node.Url("/v1/queue/t")));
  for (const Json& b : stat["buckets"]) EXPECT_EQ(b["end_offset"], 0);
}

TEST(QueueHttpTest, ANodeWithoutAQueueSaysSo) {
  QueueNode node("", /*serve=*/false);
  HttpReply r = Http("GET", node.Url("/v1/queue"));
  EXPECT_EQ(r.status, 404);
  EXPECT_NE(r.body.find("serves no queue"), std::string::npos) << r.body;
  EXPECT_EQ(Http("GET", node.Url("/v1/queue/t/records?bucket=0&offset=0")).status, 404);
}

// --- the parsing, without a server ------------------------------------------------------------

TEST(QueueRequestTest, PathsNameTheirResources) {
  using http_queue::ParseQueuePath;
  using Kind = http_queue::QueuePath::Kind;
  ASSERT_OK_AND_ASSIGN(auto t, ParseQueuePath("events"));
  EXPECT_EQ(t.kind, Kind::kTopic);
  EXPECT_EQ(t.topic, "events");
  ASSERT_OK_AND_ASSIGN(auto r, ParseQueuePath("events/records"));
  EXPECT_EQ(r.kind, Kind::kRecords);
  ASSERT_OK_AND_ASSIGN(auto g, ParseQueuePath("events/groups/billing"));
  EXPECT_EQ(g.kind, Kind::kGroup);
  EXPECT_EQ(g.group, "billing");
  EXPECT_EQ(ParseQueuePath("").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseQueuePath("events/groups/").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseQueuePath("events/records/1").status().code(), StatusCode::kNotFound);
}

TEST(QueueRequestTest, ReadQueriesSayWhereAndHowLong) {
  auto parse = [](std::string_view query) {
    Result<http_kv::KvQuery> q = http_kv::KvQuery::Parse(query);
    EXPECT_TRUE(q.ok());
    return http_queue::ParseReadQuery([&q](std::string_view name) { return q->Get(name); });
  };
  ASSERT_OK_AND_ASSIGN(auto one, parse("bucket=3&offset=10&limit=5&wait=2s&max_bytes=1M"));
  ASSERT_EQ(one.from.size(), 1u);
  EXPECT_EQ(one.from[0].bucket, 3u);
  EXPECT_EQ(one.from[0].offset, 10u);
  EXPECT_EQ(one.limit, 5u);
  EXPECT_EQ(one.wait_ms, 2000);
  EXPECT_EQ(one.max_bytes, 1u << 20);
  ASSERT_OK_AND_ASSIGN(auto many, parse("from=0:1,2:18446744073709551615"));
  ASSERT_EQ(many.from.size(), 2u);
  EXPECT_EQ(many.from[1].offset, UINT64_MAX);
  EXPECT_EQ(many.limit, http_queue::kDefaultReadLimit);
  ASSERT_OK_AND_ASSIGN(auto group, parse("group=g&wait=250ms"));
  EXPECT_EQ(group.group, "g");
  EXPECT_EQ(group.wait_ms, 250);
  for (std::string_view bad : {"", "bucket=1", "offset=1", "from=", "from=1", "from=1:2:3",
                               "from=0:1&group=g", "group=", "bucket=4294967296&offset=0",
                               "group=g&limit=x", "group=g&wait=soon", "group=g&max_bytes=lots"}) {
    EXPECT_EQ(parse(bad).status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

}  // namespace
}  // namespace packice
