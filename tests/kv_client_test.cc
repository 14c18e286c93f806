// The KV client (ConnectKv, include/packice/kv.h) against a real packiced, over each transport
// that carries KV calls; and the Unix socket's server side (kv_session.h) under a client that
// does not read, a node that goes away, and a node that serves no KV.
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "packice/kv.h"
#include "testing.h"
#include "transport/uds/fd_socket.h"
#include "transport/uds/frame.h"
#include "transport/uds/wire.pb.h"

namespace packice {
namespace {

using ::packice::testing::Daemon;
using std::chrono::steady_clock;

constexpr auto kWait = std::chrono::seconds(10);

// Every event of `w` until `n` arrived or 10 s passed.
std::vector<KvEvent> Collect(KvWatcher& w, size_t n) {
  std::vector<KvEvent> out;
  const auto deadline = steady_clock::now() + kWait;
  while (out.size() < n && steady_clock::now() < deadline) {
    auto got = w.Next(deadline);
    if (!got.ok()) break;
    for (KvEvent& e : *got) out.push_back(std::move(e));
  }
  return out;
}

// The end of `w` after whatever events it still has.
Status EndOf(KvWatcher& w) {
  const auto deadline = steady_clock::now() + kWait;
  while (steady_clock::now() < deadline) {
    auto got = w.Next(deadline);
    if (!got.ok()) return got.status();
  }
  return Timeout("the watch did not end");
}

class KvClientTest : public ::testing::TestWithParam<std::string> {
 protected:
  static void SetUpTestSuite() {
    node_ = new Daemon;
    ASSERT_OK(node_->Start({"--grpc", "127.0.0.1:0"}));
  }
  static void TearDownTestSuite() {
    delete node_;
    node_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(node_, nullptr);
    url_ = GetParam() == "uds" ? node_->url() : node_->grpc_url();
    auto kv = ConnectKv(url_);
    ASSERT_OK_R(kv);
    kv_ = *std::move(kv);
    // One namespace per test: the node is shared by the suite.
    ns_ =
        "/t/" + GetParam() + "/" + ::testing::UnitTest::GetInstance()->current_test_info()->name();
  }

  static Daemon* node_;
  std::string url_;
  std::string ns_;
  std::unique_ptr<KvClient> kv_;
};
Daemon* KvClientTest::node_ = nullptr;

TEST_P(KvClientTest, EveryCallRoundTrips) {
  NamespaceOptions o;
  o.engine = KvEngine::kMemTable;
  o.fsync = KvFsync::kNever;
  ASSERT_OK(kv_->CreateNamespace(ns_, o));
  EXPECT_EQ(kv_->CreateNamespace(ns_, o).code(), StatusCode::kAlreadyExists);

  const std::string binary("k\0/\xff", 4);
  auto put = kv_->Put(ns_, binary, "v1");
  ASSERT_OK_R(put);
  auto got = kv_->Get(ns_, binary);
  ASSERT_OK_R(got);
  EXPECT_EQ(got->value, "v1");
  EXPECT_EQ(got->mod_revision, put->revision);
  EXPECT_EQ(got->version, 1);
  EXPECT_EQ(kv_->Get(ns_, "absent").status().code(), StatusCode::kNotFound);

  // Compare-and-swap keeps its exact codes across the wire.
  PutOptions cas;
  cas.if_mod_revision = put->revision + 100;
  EXPECT_EQ(kv_->Put(ns_, binary, "x", cas).status().code(), StatusCode::kWrongState);
  cas.if_mod_revision = 0;
  EXPECT_EQ(kv_->Put(ns_, binary, "x", cas).status().code(), StatusCode::kAlreadyExists);
  cas.if_mod_revision = put->revision;
  cas.prev_kv = true;
  auto swapped = kv_->Put(ns_, binary, "v2", cas);
  ASSERT_OK_R(swapped);
  ASSERT_TRUE(swapped->prev.has_value());
  EXPECT_EQ(swapped->prev->value, "v1");

  for (int i = 0; i < 25; ++i)
    ASSERT_OK(kv_->Put(ns_, "p/" + std::to_string(100 + i), "x").status());
  ScanOptions scan;
  scan.prefix = "p/";
  scan.limit = 10;
  std::vector<std::string> keys;
  while (true) {
    auto page = kv_->Scan(ns_, scan);
    ASSERT_OK_R(page);
    for (const KeyValue& kv : page->kvs) keys.push_back(kv.key);
    if (page->next.empty()) break;
    scan.after = page->next;
  }
  ASSERT_EQ(keys.size(), 25u);
  EXPECT_EQ(keys.front(), "p/100");
  EXPECT_EQ(keys.back(), "p/124");

  std::vector<BatchOp> ops(2);
  ops[0].key = "b1";
  ops[0].value = "one";
  ops[1].kind = BatchOp::Kind::kDelete;
  ops[1].key = binary;
  auto batch = kv_->Commit(ns_, ops);
  ASSERT_OK_R(batch);
  EXPECT_EQ(kv_->Get(ns_, "b1")->mod_revision, batch->revision);
  EXPECT_EQ(kv_->Get(ns_, binary).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(kv_->Delete(ns_, binary).status().code(), StatusCode::kNotFound);
  ASSERT_OK(kv_->Delete(ns_, "b1").status());

  auto list = kv_->ListNamespaces(ns_);
  ASSERT_OK_R(list);
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].options.engine, KvEngine::kMemTable);
  EXPECT_EQ((*list)[0].keys, 25u);
  ASSERT_OK(kv_->DeleteNamespace(ns_));
  EXPECT_EQ(kv_->Get(ns_, "p/100").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(kv_->Put("no/leading/slash", "k", "v").status().code(), StatusCode::kInvalidArgument);
}

TEST_P(KvClientTest, PipelinedCallsRunInTheOrderMade) {
  ASSERT_OK(kv_->CreateNamespace(ns_, {}));  // Linear, fsync always
  constexpr int kCalls = 1000;
  std::vector<KvFuture<PutResult>> puts;
  for (int i = 0; i < kCalls; ++i) puts.push_back(kv_->PutAsync(ns_, "k", std::to_string(i)));
  auto read = kv_->GetAsync(ns_, "k");  // made after every put: sees the last
  int64_t last = 0;
  for (auto& f : puts) {
    Result<PutResult> r = f.get();
    ASSERT_OK_R(r);
    EXPECT_GT(r->revision, last);  // acknowledged in the order made
    last = r->revision;
  }
  Result<KeyValue> got = read.get();
  ASSERT_OK_R(got);
  EXPECT_EQ(got->value, std::to_string(kCalls - 1));
  EXPECT_EQ(got->mod_revision, last);
  EXPECT_EQ(got->version, kCalls);
}

// Puts that do not wait on the log (fsync never) and arrive together run as one PutMany on
// the node: each keeps its own answer and its place among the calls around it.
TEST_P(KvClientTest, QuickPipelinedPutsKeepTheirOrderAndTheirOwnAnswers) {
  NamespaceOptions never;
  never.fsync = KvFsync::kNever;
  const std::string other = ns_ + "/other";
  ASSERT_OK(kv_->CreateNamespace(ns_, never));
  ASSERT_OK(kv_->CreateNamespace(other, never));
  constexpr int kCalls = 600;
  std::vector<KvFuture<PutResult>> puts, failing, others;
  std::vector<std::pair<int, KvFuture<KeyValue>>> reads;
  PutOptions wrong;
  wrong.if_mod_revision = 1'000'000;  // no such revision: kWrongState, nothing written
  for (int i = 0; i < kCalls; ++i) {
    puts.push_back(kv_->PutAsync(ns_, "k", std::to_string(i)));
    if (i % 7 == 3) failing.push_back(kv_->PutAsync(ns_, "k", "never", wrong));
    if (i % 11 == 5) others.push_back(kv_->PutAsync(other, "k", std::to_string(i)));
    if (i % 10 == 9) reads.emplace_back(i, kv_->GetAsync(ns_, "k"));
  }
  int64_t last = 0;
  for (auto& f : puts) {
    Result<PutResult> r = f.get();
    ASSERT_OK_R(r);
    EXPECT_EQ(r->revision, last + 1);  // one revision each, in the order made
    last = r->revision;
  }
  for (auto& f : failing) EXPECT_EQ(f.get().status().code(), StatusCode::kWrongState);
  int64_t last_other = 0;
  for (auto& f : others) {
    Result<PutResult> r = f.get();
    ASSERT_OK_R(r);
    EXPECT_EQ(r->revision, last_other + 1);
    last_other = r->revision;
  }
  for (auto& [i, f] : reads) {
    Result<KeyValue> got = f.get();
    ASSERT_OK_R(got);
    EXPECT_EQ(got->value, std::to_string(i));  // the puts made before it, not one after
    EXPECT_EQ(got->version, i + 1);
  }
}

TEST_P(KvClientTest, AsyncCallsNobodyWaitsForStillRun) {
  ASSERT_OK(kv_->CreateNamespace(ns_, {}));
  // Dropped at once: the put is still sent and applied, and the connection keeps working.
  for (int i = 0; i < 100; ++i) (void)kv_->PutAsync(ns_, "dropped/" + std::to_string(i), "v");
  auto other = ConnectKv(url_);
  ASSERT_OK_R(other);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  Result<KeyValue> seen = NotFound("not yet");
  while (!seen.ok() && std::chrono::steady_clock::now() < deadline) {
    seen = (*other)->Get(ns_, "dropped/99");  // another connection: nothing here flushes it
    if (!seen.ok()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_OK_R(seen);
  EXPECT_EQ(seen->value, "v");
  // A synchronous call after async ones sees their writes (one connection, in order).
  KvFuture<PutResult> put = kv_->PutAsync(ns_, "k", "async");
  Result<KeyValue> got = kv_->Get(ns_, "k");
  ASSERT_OK_R(got);
  EXPECT_EQ(got->value, "async");
  ASSERT_TRUE(put.wait_for(std::chrono::seconds(10)));
  EXPECT_TRUE(put.ready());
  Result<PutResult> r = put.get();
  ASSERT_OK_R(r);
  EXPECT_EQ(r->revision, got->mod_revision);
  EXPECT_FALSE(put.valid());
}

TEST_P(KvClientTest, FuturesAreAwaitedFromAnyThread) {
  NamespaceOptions o;
  o.fsync = KvFsync::kNever;
  ASSERT_OK(kv_->CreateNamespace(ns_, o));
  ASSERT_OK(kv_->Put(ns_, "k", "v").status());
  constexpr int kThreads = 4;
  constexpr int kCalls = 500;
  std::vector<std::vector<KvFuture<KeyValue>>> gets(kThreads);
  for (int i = 0; i < kCalls; ++i) gets[i % kThreads].push_back(kv_->GetAsync(ns_, "k"));
  gets[0].push_back(kv_->GetAsync(ns_, "absent"));
  std::atomic<int> ok{0};
  std::atomic<int> not_found{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      // Some poll first, some wait at once: either way each answer reaches its future.
      for (auto& f : gets[t]) {
        if (t % 2 == 0) {
          while (!f.wait_for(std::chrono::microseconds(50))) {
          }
        }
        Result<KeyValue> r = f.get();
        if (r.ok() && r->value == "v") ++ok;
        if (r.status().code() == StatusCode::kNotFound) ++not_found;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), kCalls);
  EXPECT_EQ(not_found.load(), 1);
}

TEST_P(KvClientTest, ConcurrentCallersShareOneClient) {
  NamespaceOptions o;
  o.write_mode = KvWriteMode::kNoLinear;
  ASSERT_OK(kv_->CreateNamespace(ns_, o));
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 100; ++i) {
        const std::string key = std::to_string(t) + "/" + std::to_string(i);
        EXPECT_OK(kv_->Put(ns_, key, key).status());
        auto got = kv_->Get(ns_, key);
        EXPECT_TRUE(got.ok() && got->value == key);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ((*kv_->ListNamespaces(ns_))[0].keys, 800u);
}

TEST_P(KvClientTest, MultiCallsAnswerPerItemAndAreBounded) {
  ASSERT_OK(kv_->CreateNamespace(ns_, {}));
  std::vector<KvPutItem> puts;
  for (int i = 0; i < 10; ++i) puts.push_back({"m" + std::to_string(i), "v" + std::to_string(i)});
  puts[3].options.if_mod_revision = 42;  // fails on its own
  auto put = kv_->MultiPut(ns_, puts);
  ASSERT_OK_R(put);
  ASSERT_EQ(put->size(), 10u);
  EXPECT_EQ((*put)[3].status().code(), StatusCode::kNotFound);
  EXPECT_OK((*put)[4].status());
  std::vector<std::string> keys = {"m0", "m3", "m9", "absent"};
  auto got = kv_->MultiGet(ns_, keys);
  ASSERT_OK_R(got);
  ASSERT_EQ(got->size(), 4u);
  EXPECT_EQ((*got)[0]->value, "v0");
  EXPECT_EQ((*got)[1].status().code(), StatusCode::kNotFound);
  EXPECT_EQ((*got)[2]->value, "v9");
  EXPECT_EQ((*got)[3].status().code(), StatusCode::kNotFound);

  std::vector<std::string> many(1025, "k");
  EXPECT_EQ(kv_->MultiGet(ns_, many).status().code(), StatusCode::kInvalidArgument);
  // 1024 puts of 8 KiB are over the node's frame limit: refused whole, nothing written.
  std::vector<KvPutItem> big;
  for (int i = 0; i < 1024; ++i) big.push_back({"big" + std::to_string(i), std::string(8192, 'x')});
  EXPECT_EQ(kv_->MultiPut(ns_, big).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(kv_->Get(ns_, "big0").status().code(), StatusCode::kNotFound);
  EXPECT_OK(kv_->Put(ns_, "after", "still works").status());
}

TEST_P(KvClientTest, WatchDeliversInOrderAndResumes) {
  ASSERT_OK(kv_->CreateNamespace(ns_, {}));
  WatchOptions w;
  w.key = "w/";
  w.prefix = true;
  w.prev_kv = true;
  auto watcher = kv_->Watch(ns_, w);
  ASSERT_OK_R(watcher);
  auto first = kv_->Put(ns_, "w/a", "1");
  ASSERT_OK_R(first);
  ASSERT_OK(kv_->Put(ns_, "other", "x").status());  // not watched
  ASSERT_OK(kv_->Put(ns_, "w/a", "2").status());
  ASSERT_OK(kv_->Delete(ns_, "w/a").status());
  std::vector<KvEvent> events = Collect(**watcher, 3);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].type, KvEvent::Type::kPut);
  EXPECT_EQ(events[0].kv.value, "1");
  EXPECT_FALSE(events[0].prev.has_value());
  EXPECT_EQ(events[1].kv.value, "2");
  ASSERT_TRUE(events[1].prev.has_value());
  EXPECT_EQ(events[1].prev->value, "1");
  EXPECT_EQ(events[2].type, KvEvent::Type::kDelete);
  EXPECT_LT(events[0].kv.mod_revision, events[1].kv.mod_revision);
  EXPECT_LT(events[1].kv.mod_revision, events[2].kv.mod_revision);

  // From a past revision: the same three again, from history.
  w.start_revision = first->revision;
  auto again = kv_->Watch(ns_, w);
  ASSERT_OK_R(again);
  std::vector<KvEvent> replay = Collect(**again, 3);
  ASSERT_EQ(replay.size(), 3u);
  EXPECT_EQ(replay[0].kv.mod_revision, first->revision);
  EXPECT_EQ(replay[2].type, KvEvent::Type::kDelete);

  (*watcher)->Cancel();
  EXPECT_EQ(EndOf(**watcher).code(), StatusCode::kAborted);
  w.start_revision = 1 << 30;  // the future
  EXPECT_EQ(kv_->Watch(ns_, w).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(kv_->Watch("/t/absent", w).status().code(), StatusCode::kNotFound);
}

TEST_P(KvClientTest, AWatchTooSlowForTheClientEndsWithWhereToResume) {
  ASSERT_OK(kv_->CreateNamespace(ns_, {.fsync = KvFsync::kNever}));
  KvClientOptions small;
  small.watch_buffer_events = 16;
  auto kv = ConnectKv(url_, small);
  ASSERT_OK_R(kv);
  auto watcher = (*kv)->Watch(ns_, {.prefix = true});
  ASSERT_OK_R(watcher);
  std::vector<KvPutItem> puts;
  for (int i = 0; i < 100; ++i) puts.push_back({"k" + std::to_string(i), "v"});
  ASSERT_OK_R(kv_->MultiPut(ns_, puts));  // 100 revisions, none read yet
  // Whatever was buffered first, then the end.
  std::vector<KvEvent> seen;
  Status end;
  const auto deadline = steady_clock::now() + kWait;
  while (steady_clock::now() < deadline) {
    auto got = (*watcher)->Next(deadline);
    if (!got.ok()) {
      end = got.status();
      break;
    }
    for (KvEvent& e : *got) seen.push_back(std::move(e));
  }
  EXPECT_EQ(end.code(), StatusCode::kOutOfCapacity) << end.ToString();
  const int64_t resume = (*watcher)->resume_revision();
  EXPECT_GT(resume, 0);
  EXPECT_NE(end.message().find(std::to_string(resume)), std::string::npos) << end.ToString();
  // Resuming there delivers the rest, the client reading as it goes.
  WatchOptions from;
  from.prefix = true;
  from.start_revision = resume;
  auto rest = kv_->Watch(ns_, from);
  ASSERT_OK_R(rest);
  auto last = kv_->Get(ns_, "k99");
  ASSERT_OK_R(last);
  std::vector<KvEvent> tail = Collect(**rest, static_cast<size_t>(last->mod_revision - resume + 1));
  ASSERT_FALSE(tail.empty());
  EXPECT_EQ(tail.front().kv.mod_revision, resume);
  EXPECT_EQ(tail.back().kv.key, "k99");
}

TEST_P(KvClientTest, DeletingTheNamespaceEndsItsWatches) {
  ASSERT_OK(kv_->CreateNamespace(ns_, {}));
  auto watcher = kv_->Watch(ns_, {.prefix = true});
  ASSERT_OK_R(watcher);
  ASSERT_OK(kv_->DeleteNamespace(ns_));
  EXPECT_EQ(EndOf(**watcher).code(), StatusCode::kNotFound);
}

INSTANTIATE_TEST_SUITE_P(Transports, KvClientTest, ::testing::Values("uds", "grpc"),
                         [](const auto& info) { return info.param; });

// A raw connection that asks for a watch and never reads: the node stops pulling events at
// its output cap, the watcher's buffer fills, and the watch ends "too slow" — the node's
// memory stays bounded and its other clients are served.
TEST(KvSocketTest, AClientThatDoesNotReadIsCutOffNotBuffered) {
  Daemon node;
  ASSERT_OK(node.Start({"--store", "memory", "--kv-dir", node.data_dir() + "/kv"}));
  auto kv = ConnectKv(node.url());
  ASSERT_OK_R(kv);
  ASSERT_OK((*kv)->CreateNamespace("/slow", {.fsync = KvFsync::kNever}));

  auto fd = ConnectUnixSocket(node.socket());
  ASSERT_OK_R(fd);
  wire::Request req;
  req.set_id(7);
  req.mutable_kv()->set_ns("/slow");
  req.mutable_kv()->mutable_watch()->set_prefix(true);
  std::string frame;
  AppendFrame(req, &frame);
  ASSERT_OK(SendAll(fd->get(), frame, {}));
  // The watch is registered once its started frame is sent; give it a moment.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));

  const std::string value(64 << 10, 'v');
  int64_t first = 0;
  for (int i = 0; i < 2000; ++i) {  // 128 MiB of events
    auto put = (*kv)->Put("/slow", "k" + std::to_string(i % 10), value);
    ASSERT_OK_R(put);
    if (i == 0) first = put->revision;
  }
  // Another client is served meanwhile.
  ASSERT_OK_R((*kv)->Get("/slow", "k0"));

  // Reading now: started, events, and the end with where to resume.
  timeval tv{10, 0};
  setsockopt(fd->get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  FrameReader reader(64u << 20);
  size_t events = 0;
  wire::KvWatchEvents end;
  bool ended = false;
  while (!ended) {
    std::span<char> tail = reader.WritableTail(1 << 20);
    ssize_t n = recv(fd->get(), tail.data(), tail.size(), 0);
    ASSERT_GT(n, 0) << "the node never ended the watch";
    reader.Commit(static_cast<size_t>(n));
    while (true) {
      auto next = reader.Next();
      ASSERT_OK_R(next);
      if (!next->has_value()) break;
      wire::Response resp;
      ASSERT_TRUE(resp.ParseFromArray((*next)->data(), static_cast<int>((*next)->size())));
      ASSERT_EQ(resp.id(), 7u);
      ASSERT_EQ(resp.code(), 0);
      events += resp.kv().watch().events_size();
      if (resp.kv().watch().end_code() != 0) {
        end = resp.kv().watch();
        ended = true;
        break;
      }
    }
  }
  EXPECT_EQ(end.end_code(), static_cast<int32_t>(StatusCode::kOutOfCapacity));
  EXPECT_LT(events, 2000u);
  EXPECT_EQ(end.resume_revision(), first + static_cast<int64_t>(events));
}

TEST(KvSocketTest, ANodeThatGoesAwayFailsCallsAndWatchesThenIsReconnected) {
  Daemon node;
  ASSERT_OK(node.Start());
  auto kv = ConnectKv(node.url());
  ASSERT_OK_R(kv);
  ASSERT_OK((*kv)->CreateNamespace("/durable", {}));
  auto put = (*kv)->Put("/durable", "k", "kept");
  ASSERT_OK_R(put);
  auto watcher = (*kv)->Watch("/durable", {.prefix = true});
  ASSERT_OK_R(watcher);
  node.Stop(SIGKILL);
  EXPECT_EQ(EndOf(**watcher).code(), StatusCode::kUnavailable);
  EXPECT_EQ((*kv)->Get("/durable", "k").status().code(), StatusCode::kUnavailable);
  ASSERT_OK(node.Start());
  auto got = (*kv)->Get("/durable", "k");  // connects again
  ASSERT_OK_R(got);
  EXPECT_EQ(got->value, "kept");
  EXPECT_EQ(got->mod_revision, put->revision);

  // Restarted while the client is idle (no call in flight, no watch): the client notices the
  // hang-up, and its next call goes to the new node instead of failing on the old connection.
  node.Stop(SIGKILL);
  ASSERT_OK(node.Start());
  got = (*kv)->Get("/durable", "k");
  ASSERT_OK_R(got);
  EXPECT_EQ(got->value, "kept");
}

// packice kv, as a user types it.
TEST(KvCliTest, PutGetDelWatchAndNamespaces) {
  Daemon node;
  ASSERT_OK(node.Start());
  auto cli = [&](std::vector<std::string> args, std::string* out, const std::string& in = "") {
    args.insert(args.begin(), {testing::BinPath("packice"), "--url", node.url(), "kv"});
    return testing::RunProgram(args, out, in);
  };
  std::string out;
  ASSERT_EQ(cli({"ns", "create", "/team/cfg", "--engine", "memtable", "--fsync", "never"}, &out), 0)
      << out;
  EXPECT_EQ(cli({"ns", "create", "/team/cfg"}, &out), 1);
  EXPECT_NE(out.find("already_exists"), std::string::npos) << out;
  ASSERT_EQ(cli({"put", "/team/cfg", "db/host", "10.0.0.1"}, &out), 0) << out;
  EXPECT_EQ(out, "OK revision=1\n");
  ASSERT_EQ(cli({"put", "/team/cfg", "db/port", "-"}, &out, "5432"), 0) << out;
  ASSERT_EQ(cli({"put", "/team/cfg", "web", "x", "--if-rev", "0"}, &out), 0) << out;
  EXPECT_EQ(cli({"put", "/team/cfg", "web", "y", "--if-rev", "0"}, &out), 1);  // exists
  EXPECT_NE(out.find("already_exists"), std::string::npos) << out;

  ASSERT_EQ(cli({"get", "/team/cfg", "db/host"}, &out), 0) << out;
  EXPECT_EQ(out, "db/host\n10.0.0.1\n");
  ASSERT_EQ(cli({"get", "/team/cfg", "db/", "--prefix"}, &out), 0) << out;
  EXPECT_EQ(out, "db/host\n10.0.0.1\ndb/port\n5432\n");
  ASSERT_EQ(cli({"get", "/team/cfg", "db/", "--prefix", "--keys-only"}, &out), 0) << out;
  EXPECT_EQ(out, "db/host\ndb/port\n");
  EXPECT_EQ(cli({"get", "/team/cfg", "absent"}, &out), 1);
  EXPECT_NE(out.find("not_found"), std::string::npos) << out;

  // Every change from revision 1, then stop after four.
  ASSERT_EQ(cli({"del", "/team/cfg", "db/", "--prefix"}, &out), 0) << out;
  EXPECT_EQ(out, "2\n");
  ASSERT_EQ(cli({"watch", "/team/cfg", "--rev", "1", "--max-events", "5"}, &out), 0) << out;
  EXPECT_EQ(out,
            "PUT\ndb/host\n10.0.0.1\nPUT\ndb/port\n5432\nPUT\nweb\nx\nDELETE\ndb/host\n"
            "DELETE\ndb/port\n");

  ASSERT_EQ(cli({"ns", "ls", "/team"}, &out), 0) << out;
  EXPECT_EQ(out, "/team/cfg engine=memtable mode=linear fsync=never revision=4 keys=1\n");
  ASSERT_EQ(cli({"ns", "rm", "/team/cfg"}, &out), 0) << out;
  EXPECT_EQ(cli({"get", "/team/cfg", "web"}, &out), 1);
  EXPECT_EQ(cli({"ns", "create", "/x", "--engine", "btree"}, &out), 1);
  EXPECT_NE(out.find("--engine must be swisstable or memtable"), std::string::npos) << out;
}

TEST(KvSocketTest, ANodeWithoutKvSaysSo) {
  Daemon node;
  ASSERT_OK(node.Start({"--no-kv"}));
  auto kv = ConnectKv(node.url());
  ASSERT_OK_R(kv);
  EXPECT_EQ((*kv)->Get("/a", "k").status().code(), StatusCode::kUnimplemented);
  EXPECT_EQ((*kv)->Watch("/a", {}).status().code(), StatusCode::kUnimplemented);
  EXPECT_EQ(ConnectKv("http://127.0.0.1:1").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ConnectKv("uds://relative").status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace packice
