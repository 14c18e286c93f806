// kv_request.h: base64, the path, the query, conditions, the JSON bodies and SSE framing; and
// random bytes through every parser (what fuzz/fuzz_kv_http.cc runs for longer).
#include "transport/http/kv_request.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>
#include <string>

namespace packice::http_kv {
namespace {

TEST(KvRequestTest, Base64RoundTripsEveryLength) {
  EXPECT_EQ(Base64Encode(""), "");
  EXPECT_EQ(Base64Encode("f"), "Zg==");
  EXPECT_EQ(Base64Encode("fo"), "Zm8=");
  EXPECT_EQ(Base64Encode("foo"), "Zm9v");
  EXPECT_EQ(Base64Encode("foobar"), "Zm9vYmFy");
  std::string bytes;
  for (int i = 0; i < 300; ++i) {
    bytes.push_back(static_cast<char>(i * 37));
    EXPECT_EQ(Base64Decode(Base64Encode(bytes)), bytes);
  }
  for (const char* bad : {"Zg=", "Zg", "Z===", "=Zg=", "Zg==Zg==", "Zm9v!", "Zm9\n", "Zg=a",
                          "Zh==", "Zm9=", "Zm8/="}) {
    EXPECT_FALSE(Base64Decode(bad)) << bad;
  }
}

TEST(KvRequestTest, Paths) {
  Result<KvPath> p = ParseKvPath("%2Fteam%2Fns/a/b%00c");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->ns, "/team/ns");
  EXPECT_EQ(p->key, std::string("a/b\0c", 5));
  p = ParseKvPath("team%2fns");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->ns, "/team/ns");
  EXPECT_FALSE(p->key);
  p = ParseKvPath("ns/");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->key, "");  // the store refuses it
  EXPECT_EQ(NamespaceSegment("/team/ns"), "%2Fteam%2Fns");
  for (const char* bad : {"", "/k", "%zz/k", "ns/%g1", "%2/k"}) {
    EXPECT_EQ(ParseKvPath(bad).status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

TEST(KvRequestTest, QueriesAndConditions) {
  Result<KvQuery> q = KvQuery::Parse("watch&prefix=a%2Fb&prev_kv=0&rev=7&limit=3&keys_only=1");
  ASSERT_TRUE(q.ok());
  EXPECT_TRUE(q->Flag("watch"));
  EXPECT_FALSE(q->Flag("prev_kv"));
  EXPECT_TRUE(q->Flag("keys_only"));
  EXPECT_FALSE(q->Flag("absent"));
  Result<ScanOptions> scan = ParseScanQuery(*q);
  ASSERT_TRUE(scan.ok());
  EXPECT_EQ(scan->prefix, "a/b");
  EXPECT_EQ(scan->limit, 3u);
  Result<WatchOptions> w = ParseWatchQuery(*q, std::nullopt, std::nullopt);
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w->key, "a/b");
  EXPECT_TRUE(w->prefix);
  EXPECT_EQ(w->start_revision, 7);
  w = ParseWatchQuery(*q, std::string("k"), " 41 ");
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w->key, "k");
  EXPECT_TRUE(w->prefix);            // ?prefix given
  EXPECT_EQ(w->start_revision, 42);  // Last-Event-ID wins over rev
  EXPECT_FALSE(ParseWatchQuery(*q, std::nullopt, "-1").ok());
  EXPECT_FALSE(ParseWatchQuery(*q, std::nullopt, "9223372036854775807").ok());

  EXPECT_EQ(ParseCondition("\"12\"", std::nullopt).value(), 12);
  EXPECT_EQ(ParseCondition("12", std::nullopt).value(), 12);
  EXPECT_EQ(ParseCondition(std::nullopt, "*").value(), 0);
  EXPECT_EQ(ParseCondition(std::nullopt, std::nullopt).value(), std::nullopt);
  for (const char* bad : {"*", "W/\"1\"", "\"1\", \"2\"", "\"0\"", "\"\"", "x", "\"-3\""}) {
    EXPECT_FALSE(ParseCondition(bad, std::nullopt).ok()) << bad;
  }
  EXPECT_FALSE(ParseCondition("1", "*").ok());
  Result<KvQuery> put = KvQuery::Parse("ttl=500ms&prev_kv");
  ASSERT_TRUE(put.ok());
  Result<PutOptions> po = ParsePutOptions(*put, 3);
  ASSERT_TRUE(po.ok());
  EXPECT_EQ(po->ttl, Duration(500));
  EXPECT_TRUE(po->prev_kv);
  EXPECT_EQ(po->if_mod_revision, 3);
  EXPECT_FALSE(ParseDeleteOptions(*put, std::nullopt).ok());  // ttl on a delete
}

TEST(KvRequestTest, BatchesAndOptions) {
  Result<std::vector<BatchOp>> ops = ParseBatch(
      R"({"ops":[{"op":"put","key":"YQ==","value":"Yg==","ttl_ms":5,"if_mod_revision":0},
                 {"op":"delete","key":"Yw==","ignore_missing":true}]})");
  ASSERT_TRUE(ops.ok()) << ops.status().ToString();
  ASSERT_EQ(ops->size(), 2u);
  EXPECT_EQ((*ops)[0].key, "a");
  EXPECT_EQ((*ops)[0].value, "b");
  EXPECT_EQ((*ops)[0].ttl, Duration(5));
  EXPECT_EQ((*ops)[0].if_mod_revision, 0);
  EXPECT_EQ((*ops)[1].kind, BatchOp::Kind::kDelete);
  EXPECT_TRUE((*ops)[1].ignore_missing);
  Result<std::vector<BatchOp>> bad =
      ParseBatch(R"({"ops":[{"op":"delete","key":"YQ==","value":"Yg=="}]})");
  EXPECT_NE(bad.status().message().find("ops[0]"), std::string::npos);
  EXPECT_FALSE(ParseBatch(R"({"ops":[{"op":"put","key":"YQ==","ttl_ms":1e3}]})").ok());
  EXPECT_FALSE(
      ParseBatch(R"({"ops":[{"op":"put","key":"YQ==","ttl_ms":18446744073709551615}]})").ok());

  Result<NamespaceOptions> o = ParseNamespaceOptions(
      R"({"engine":"memtable","write_mode":"nolinear","fsync":"never","default_ttl_ms":9})");
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->engine, KvEngine::kMemTable);
  EXPECT_EQ(o->write_mode, KvWriteMode::kNoLinear);
  EXPECT_EQ(o->fsync, KvFsync::kNever);
  EXPECT_EQ(o->default_ttl, Duration(9));
  EXPECT_TRUE(ParseNamespaceOptions("  ").ok());
  EXPECT_FALSE(ParseNamespaceOptions(R"({"engine":1})").ok());
}

TEST(KvRequestTest, SseFraming) {
  std::vector<KvEvent> events(3);
  events[0].kv = {.key = "a", .value = "1\n2", .mod_revision = 4};
  events[1].kv = {.key = "b", .mod_revision = 4};
  events[1].type = KvEvent::Type::kDelete;
  events[2].kv = {.key = "c", .mod_revision = 5};
  const std::string text = SseEvents(events);
  EXPECT_EQ(text.find("id: 4\nevent: delete\n"), text.find("id: "));  // the batch's last
  EXPECT_NE(text.find("id: 5\nevent: put\ndata: {"), std::string::npos);
  // A value's newline never breaks an event: JSON escapes it. 3 lines + 1 blank per event
  // with an id, 2 + 1 without.
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 4 + 3 + 4);
  EXPECT_EQ(SseEvents(std::span(events).subspan(2), /*open_tail=*/true).find("id:"),
            std::string::npos);
  const std::string end = SseEnd(OutOfCapacity("watcher too slow"), 9);
  EXPECT_TRUE(end.starts_with("event: end\ndata: {"));
  nlohmann::json data = nlohmann::json::parse(end.substr(end.find('{')));
  EXPECT_EQ(data["error"], "out_of_capacity");
  EXPECT_EQ(data["resume_revision"], 9);
}

// Random bytes (and mutations of good requests) through every parser: nothing crashes, nothing
// throws, and what parses re-encodes.
TEST(KvRequestTest, GarbageNeverCrashes) {
  std::mt19937 rng(20240601);
  const std::vector<std::string> seeds = {
      "%2Fteam%2Fns/a%2Fb",
      "watch&prefix=a&rev=3&buffer_events=9",
      R"({"ops":[{"op":"put","key":"YQ==","value":"Yg==","ttl_ms":5}]})",
      R"({"engine":"memtable","fsync":"interval","fsync_interval_ms":3})",
      "\"17\"",
      "Zm9vYmFy",
  };
  for (int i = 0; i < 20000; ++i) {
    std::string s = seeds[i % seeds.size()];
    const int edits = 1 + static_cast<int>(rng() % 6);
    for (int e = 0; e < edits; ++e) {
      const size_t at = s.empty() ? 0 : rng() % s.size();
      switch (rng() % 3) {
        case 0:
          if (!s.empty()) s[at] = static_cast<char>(rng());
          break;
        case 1:
          s.insert(at, 1, "%{}[]\",:=&/\\\x00\xff"[rng() % 15]);
          break;
        default:
          if (!s.empty()) s.erase(at, 1 + rng() % 4);
      }
    }
    (void)ParseKvPath(s);
    (void)ParseCondition(s, std::nullopt);
    (void)ParseCondition(std::nullopt, s);
    (void)ParseBatch(s);
    (void)ParseNamespaceOptions(s);
    if (std::optional<std::string> d = Base64Decode(s)) {
      EXPECT_EQ(Base64Encode(*d), s);
    }
    Result<KvQuery> q = KvQuery::Parse(s);
    if (q.ok()) {
      (void)ParseScanQuery(*q);
      (void)ParseWatchQuery(*q, std::nullopt, s);
      (void)ParsePutOptions(*q, std::nullopt);
      (void)ParseDeleteOptions(*q, std::nullopt);
    }
  }
}

}  // namespace
}  // namespace packice::http_kv
