// The KV over gRPC: KvService on an in-process GrpcServer over a real store (OpenKvStore in a
// temporary directory, port 0), reached through NewGrpcKvChannel wrapped in a WireKvStore —
// every call, CAS codes, 1000 calls sent without waiting, tokens, and watches (order, prev
// values, history, cancel, slow readers on either side, a deleted namespace, a stopped server).
#include "transport/grpc/kv_service.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "testing.h"
#include "transport/grpc/grpc_common.h"
#include "transport/grpc/grpc_kv_channel.h"
#include "transport/grpc/grpc_server.h"
#include "transport/uds/kv_wire_convert.h"

namespace packice {
namespace {

using namespace std::chrono_literals;
using testing::TempDir;

constexpr char kNs[] = "/t/ns";

std::chrono::steady_clock::time_point In(std::chrono::milliseconds d) {
  return std::chrono::steady_clock::now() + d;
}

// A blocking KvCaller over a channel: sends and waits for the answer.
KvCaller Blocking(std::shared_ptr<KvChannel> channel) {
  return [channel](const wire::KvRequest& req) -> Result<wire::KvResponse> {
    auto answer = std::make_shared<std::promise<Result<wire::KvResponse>>>();
    auto got = answer->get_future();
    channel->Send(req, [answer](Result<wire::KvResponse> r) { answer->set_value(std::move(r)); });
    return got.get();
  };
}

wire::KvRequest WatchRequest(const std::string& ns, const WatchOptions& o) {
  return WireKvStore::WatchRequest(ns, o);
}

// Events from `w` until `n` arrived or 10 s passed.
std::vector<KvEvent> Collect(KvWatcher& w, size_t n) {
  std::vector<KvEvent> out;
  const auto deadline = In(10'000ms);
  while (out.size() < n && std::chrono::steady_clock::now() < deadline) {
    auto got = w.Next(deadline, 4096);
    if (!got.ok()) break;
    for (KvEvent& e : *got) out.push_back(std::move(e));
  }
  return out;
}

// The watch's end, once its events were read (at most 10 s).
Status EndOf(KvWatcher& w) {
  const auto deadline = In(10'000ms);
  while (true) {
    auto got = w.Next(deadline);
    if (!got.ok()) return got.status();
  }
}

// gRPC 1.51 (Debian) runs callback-API calls on a shared "alternative" completion queue whose
// threads stop when its last user (a channel or server) goes and start again with the next one;
// a test that stops every server and channel and at once starts new ones hits a race there
// (grpc_cq_internal_unref: "assertion failed: prior > 0" on a nexting_thread). One channel that
// made a callback call and lives for the whole test binary keeps that queue up.
class KeepCallbackQueue : public ::testing::Environment {
 public:
  void SetUp() override {
    channel_ = ::grpc::CreateChannel("127.0.0.1:1", ::grpc::InsecureChannelCredentials());
    stub_ = rpc::Kv::NewStub(channel_);
    ctx_.set_deadline(std::chrono::system_clock::now() + 100ms);
    std::promise<void> done;
    stub_->async()->Call(&ctx_, &req_, &resp_, [&](::grpc::Status) { done.set_value(); });
    done.get_future().wait();
  }

 private:
  std::shared_ptr<::grpc::Channel> channel_;
  std::unique_ptr<rpc::Kv::Stub> stub_;
  ::grpc::ClientContext ctx_;
  wire::KvRequest req_;
  wire::KvResponse resp_;
};
const auto* const kKeepCallbackQueue = ::testing::AddGlobalTestEnvironment(new KeepCallbackQueue);

class KvGrpcTest : public ::testing::Test {
 protected:
  void SetUp() override { StartNode(); }

  void StartNode(const std::string& token = "", int max_threads = 64) {
    KvOptions o;
    o.dir = dir_.path() + "/kv" + std::to_string(nodes_++);
    o.reap_interval = Duration(0);
    auto kv = OpenKvStore(std::move(o));
    ASSERT_OK(kv.status());
    store_ = std::shared_ptr<KvStore>(std::move(*kv));
    server_ = std::make_unique<GrpcServer>(
        GrpcServerOptions{.listen = "127.0.0.1:0", .max_threads = max_threads});
    server_->AddService(std::make_shared<rpc::KvService>(store_, rpc::KvServiceOptions{token}));
    ASSERT_OK(server_->Start());
    auto ch = Channel(token);
    ASSERT_OK(ch.status());
    channel_ = *ch;
    remote_ = std::make_unique<WireKvStore>(Blocking(channel_));
    ASSERT_OK(
        remote_->CreateNamespace(kNs, {.engine = KvEngine::kMemTable, .fsync = KvFsync::kNever}));
  }

  std::string target() const { return "127.0.0.1:" + std::to_string(server_->port()); }

  Result<std::shared_ptr<KvChannel>> Channel(const std::string& token) {
    return NewGrpcKvChannel(
        target(), GrpcChannelOptions{
                      .bearer_token = token, .connect_timeout = 5000ms, .call_timeout = 10'000ms});
  }

  Result<std::unique_ptr<KvWatcher>> Watch(WatchOptions o, const std::string& ns = kNs) {
    return channel_->Watch(WatchRequest(ns, o));
  }

  TempDir dir_;
  int nodes_ = 0;
  std::shared_ptr<KvStore> store_;
  std::unique_ptr<GrpcServer> server_;
  std::shared_ptr<KvChannel> channel_;
  std::unique_ptr<WireKvStore> remote_;
};

TEST_F(KvGrpcTest, NamespacesRoundTripWithTheirOptions) {
  ASSERT_OK(remote_->CreateNamespace("/t/other", {.write_mode = KvWriteMode::kNoLinear,
                                                  .fsync = KvFsync::kInterval,
                                                  .fsync_interval = Duration(25),
                                                  .default_ttl = Duration(5000)}));
  EXPECT_CODE(remote_->CreateNamespace(kNs, {}), kAlreadyExists);
  EXPECT_CODE(remote_->CreateNamespace("t/bad", {}), kInvalidArgument);
  ASSERT_OK_AND_ASSIGN(std::vector<NamespaceInfo> list, remote_->ListNamespaces("/t/"));
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].path, kNs);
  EXPECT_EQ(list[0].options.engine, KvEngine::kMemTable);
  EXPECT_EQ(list[0].options.fsync, KvFsync::kNever);
  EXPECT_EQ(list[1].path, "/t/other");
  EXPECT_EQ(list[1].options.write_mode, KvWriteMode::kNoLinear);
  EXPECT_EQ(list[1].options.fsync, KvFsync::kInterval);
  EXPECT_EQ(list[1].options.fsync_interval, Duration(25));
  EXPECT_EQ(list[1].options.default_ttl, Duration(5000));
  ASSERT_OK(remote_->DeleteNamespace("/t/other"));
  EXPECT_CODE(remote_->DeleteNamespace("/t/other"), kNotFound);
  EXPECT_CODE(remote_->Get("/t/other", "k"), kNotFound);
}

TEST_F(KvGrpcTest, PointOperationsKeepRevisionsAndExactCasCodes) {
  ASSERT_OK_AND_ASSIGN(PutResult p1, remote_->Put(kNs, "a", "1"));
  EXPECT_EQ(p1.revision, 1);
  ASSERT_OK_AND_ASSIGN(PutResult p2, remote_->Put(kNs, "a", "2", {.prev_kv = true}));
  EXPECT_EQ(p2.revision, 2);
  ASSERT_TRUE(p2.prev.has_value());
  EXPECT_EQ(p2.prev->value, "1");
  ASSERT_OK_AND_ASSIGN(KeyValue got, remote_->Get(kNs, "a"));
  EXPECT_EQ(got.value, "2");
  EXPECT_EQ(got.create_revision, 1);
  EXPECT_EQ(got.mod_revision, 2);
  EXPECT_EQ(got.version, 2);

  // The three CAS failures keep their codes (gRPC alone would make two of them alike).
  EXPECT_CODE(remote_->Put(kNs, "a", "x", {.if_mod_revision = 0}), kAlreadyExists);
  EXPECT_CODE(remote_->Put(kNs, "a", "x", {.if_mod_revision = 1}), kWrongState);
  EXPECT_CODE(remote_->Put(kNs, "nope", "x", {.if_mod_revision = 1}), kNotFound);
  EXPECT_CODE(remote_->Delete(kNs, "a", {.if_mod_revision = 1}), kWrongState);
  EXPECT_CODE(remote_->Delete(kNs, "a", {.if_mod_revision = 0}), kInvalidArgument);
  ASSERT_OK_AND_ASSIGN(PutResult p3, remote_->Put(kNs, "a", "3", {.if_mod_revision = 2}));
  EXPECT_EQ(p3.revision, 3);
  ASSERT_OK_AND_ASSIGN(PutResult fresh, remote_->Put(kNs, "b", "b", {.if_mod_revision = 0}));
  EXPECT_EQ(fresh.revision, 4);

  ASSERT_OK_AND_ASSIGN(DeleteResult d, remote_->Delete(kNs, "a", {.prev_kv = true}));
  EXPECT_EQ(d.revision, 5);
  ASSERT_TRUE(d.prev.has_value());
  EXPECT_EQ(d.prev->value, "3");
  EXPECT_CODE(remote_->Get(kNs, "a"), kNotFound);
  EXPECT_CODE(remote_->Delete(kNs, "a"), kNotFound);
  EXPECT_CODE(remote_->Put(kNs, "", "empty key"), kInvalidArgument);
  // A key need not be UTF-8.
  const std::string binary("\x00\xff\x80k", 4);
  ASSERT_OK_R(remote_->Put(kNs, binary, std::string("\x00v", 2)));
  ASSERT_OK_AND_ASSIGN(got, remote_->Get(kNs, binary));
  EXPECT_EQ(got.value, std::string("\x00v", 2));
}

TEST_F(KvGrpcTest, ScansContinueAndBatchesAreAtomic) {
  for (int i = 0; i < 25; ++i) {
    char key[8];
    std::snprintf(key, sizeof key, "k%02d", i);
    ASSERT_OK_R(remote_->Put(kNs, key, "v" + std::to_string(i)));
  }
  ASSERT_OK_R(remote_->Put(kNs, "other", "o"));
  std::vector<std::string> seen;
  ScanOptions o{.prefix = "k", .limit = 10};
  for (int pages = 0; pages < 10; ++pages) {
    ASSERT_OK_AND_ASSIGN(ScanResult page, remote_->Scan(kNs, o));
    EXPECT_LE(page.kvs.size(), 10u);
    EXPECT_EQ(page.revision, 26);
    for (const KeyValue& kv : page.kvs) seen.push_back(kv.key);
    if (page.next.empty()) break;
    o.after = page.next;
  }
  ASSERT_EQ(seen.size(), 25u);
  EXPECT_EQ(seen.front(), "k00");
  EXPECT_EQ(seen.back(), "k24");
  ASSERT_OK_AND_ASSIGN(ScanResult keys,
                       remote_->Scan(kNs, {.start = "k20", .end = "k22", .keys_only = true}));
  ASSERT_EQ(keys.kvs.size(), 2u);
  EXPECT_EQ(keys.kvs[0].key, "k20");
  EXPECT_TRUE(keys.kvs[0].value.empty());
  EXPECT_CODE(remote_->Scan(kNs, {.prefix = "k", .start = "a"}), kInvalidArgument);

  // A failing condition fails the batch whole, with its code.
  std::vector<BatchOp> bad = {
      {.kind = BatchOp::Kind::kPut, .key = "n1", .value = "x"},
      {.kind = BatchOp::Kind::kPut, .key = "k00", .value = "x", .if_mod_revision = 0}};
  EXPECT_CODE(remote_->Commit(kNs, bad), kAlreadyExists);
  EXPECT_CODE(remote_->Get(kNs, "n1"), kNotFound);
  std::vector<BatchOp> good = {
      {.kind = BatchOp::Kind::kPut, .key = "n1", .value = "x"},
      {.kind = BatchOp::Kind::kDelete, .key = "k00"},
      {.kind = BatchOp::Kind::kDelete, .key = "missing", .ignore_missing = true}};
  ASSERT_OK_AND_ASSIGN(BatchResult b, remote_->Commit(kNs, good));
  EXPECT_EQ(b.revision, 27);
  ASSERT_OK_AND_ASSIGN(KeyValue n1, remote_->Get(kNs, "n1"));
  EXPECT_EQ(n1.mod_revision, 27);
  EXPECT_CODE(remote_->Get(kNs, "k00"), kNotFound);
}

TEST_F(KvGrpcTest, MultiGetAndMultiPutAnswerEachItem) {
  auto call = Blocking(channel_);
  wire::KvRequest put;
  put.set_ns(kNs);
  for (const char* k : {"x", "y"}) {
    wire::KvPut* p = put.mutable_multi_put()->add_puts();
    p->set_key(k);
    p->set_value(std::string(k) + "!");
  }
  put.mutable_multi_put()->add_puts()->set_key("");  // refused alone
  ASSERT_OK_AND_ASSIGN(wire::KvResponse resp, call(put));
  ASSERT_EQ(resp.multi().items_size(), 3);
  EXPECT_EQ(resp.multi().items(0).put().revision(), 1);
  EXPECT_EQ(resp.multi().items(1).put().revision(), 2);
  EXPECT_EQ(resp.multi().items(2).code(), static_cast<int>(StatusCode::kInvalidArgument));

  wire::KvRequest get;
  get.set_ns(kNs);
  for (const char* k : {"y", "nope", "x"}) get.mutable_multi_get()->add_keys(k);
  ASSERT_OK_AND_ASSIGN(resp, call(get));
  ASSERT_EQ(resp.multi().items_size(), 3);
  EXPECT_EQ(resp.multi().items(0).kv().value(), "y!");
  EXPECT_EQ(resp.multi().items(1).code(), static_cast<int>(StatusCode::kNotFound));
  EXPECT_EQ(resp.multi().items(2).kv().value(), "x!");

  get.set_ns("/t/none");  // no such namespace: the call's error, not each key's
  EXPECT_CODE(call(get), kNotFound);
  wire::KvRequest empty;
  EXPECT_CODE(call(empty), kInvalidArgument);
  EXPECT_CODE(call(WatchRequest(kNs, {})), kUnimplemented);  // watches go through Watch
}

TEST_F(KvGrpcTest, ThousandCallsSentWithoutWaitingAllAnswerInOrder) {
  constexpr int kCalls = 1000;
  std::mutex mu;
  std::vector<int> order;
  std::vector<int64_t> revisions(kCalls, -1);
  std::vector<Status> errors;
  std::promise<void> all;
  std::atomic<int> left{kCalls};
  for (int i = 0; i < kCalls; ++i) {
    wire::KvRequest req = i % 2 == 0 ? WireKvStore::PutRequest(kNs, "k", std::to_string(i), {})
                                     : WireKvStore::GetRequest(kNs, "k");
    channel_->Send(std::move(req), [&, i](Result<wire::KvResponse> r) {
      {
        std::lock_guard<std::mutex> lock(mu);
        order.push_back(i);
        if (!r.ok()) {
          errors.push_back(r.status());
        } else if (i % 2 == 0) {
          revisions[i] = r->put().revision();
        } else {
          // Read your writes: the Get sent after put i-1 sees it.
          revisions[i] = r->kv().value() == std::to_string(i - 1) ? r->kv().mod_revision() : -2;
        }
      }
      if (--left == 0) all.set_value();
    });
  }
  ASSERT_EQ(all.get_future().wait_for(60s), std::future_status::ready);
  ASSERT_TRUE(errors.empty()) << errors.front().ToString();
  for (int i = 0; i < kCalls; ++i) EXPECT_EQ(order[i], i);
  for (int i = 0; i < kCalls; i += 2) {
    EXPECT_EQ(revisions[i], i / 2 + 1) << i;      // the puts applied in the order sent
    EXPECT_EQ(revisions[i + 1], i / 2 + 1) << i;  // and each Get saw the put before it
  }
  ASSERT_OK_AND_ASSIGN(KeyValue last, store_->Get(kNs, "k"));
  EXPECT_EQ(last.value, std::to_string(kCalls - 2));
  EXPECT_EQ(last.version, kCalls / 2);
}

TEST_F(KvGrpcTest, ClosingTheChannelFailsQueuedCallsOnce) {
  std::atomic<int> answered{0};
  std::atomic<int> aborted{0};
  {
    ASSERT_OK_AND_ASSIGN(std::shared_ptr<KvChannel> ch, Channel(""));
    for (int i = 0; i < 100; ++i) {
      ch->Send(WireKvStore::PutRequest(kNs, "c", std::to_string(i), {}),
               [&](Result<wire::KvResponse> r) {
                 if (!r.ok() && r.status().code() == StatusCode::kAborted) ++aborted;
                 ++answered;
               });
    }
  }
  const auto deadline = In(10'000ms);
  while (answered < 100 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  EXPECT_EQ(answered, 100);
  EXPECT_GT(aborted, 0);
}

class KvGrpcTokenTest : public KvGrpcTest {
 protected:
  void SetUp() override { StartNode("s3cret"); }
};

TEST_F(KvGrpcTokenTest, AWrongOrMissingTokenIsRefused) {
  ASSERT_OK_R(remote_->Put(kNs, "a", "1"));  // the fixture's channel has the token
  for (const char* token : {"wrong", ""}) {
    ASSERT_OK_AND_ASSIGN(std::shared_ptr<KvChannel> ch, Channel(token));
    WireKvStore bad(Blocking(ch));
    EXPECT_CODE(bad.Get(kNs, "a"), kPermissionDenied) << token;
    EXPECT_CODE(bad.Put(kNs, "a", "2"), kPermissionDenied) << token;
    EXPECT_CODE(ch->Watch(WatchRequest(kNs, {.key = "a"})), kPermissionDenied) << token;
  }
  ASSERT_OK_AND_ASSIGN(KeyValue got, remote_->Get(kNs, "a"));
  EXPECT_EQ(got.value, "1");
}

TEST_F(KvGrpcTest, WatchDeliversEventsInOrderWithPreviousValues) {
  ASSERT_OK_R(remote_->Put(kNs, "a", "0"));
  ASSERT_OK_AND_ASSIGN(auto w, Watch({.key = "a", .prefix = true, .prev_kv = true}));
  EXPECT_EQ(w->resume_revision(), 2);  // from now on
  EXPECT_CODE(w->Next(In(50ms)), kTimeout);
  ASSERT_OK_R(remote_->Put(kNs, "a", "1"));
  ASSERT_OK_R(remote_->Put(kNs, "b", "not watched"));
  ASSERT_OK_R(remote_->Delete(kNs, "a"));
  std::vector<BatchOp> batch = {{.kind = BatchOp::Kind::kPut, .key = "a1", .value = "x"},
                                {.kind = BatchOp::Kind::kPut, .key = "a2", .value = "y"}};
  ASSERT_OK_R(remote_->Commit(kNs, batch));
  std::vector<KvEvent> events = Collect(*w, 4);
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[0].type, KvEvent::Type::kPut);
  EXPECT_EQ(events[0].kv.value, "1");
  EXPECT_EQ(events[0].kv.mod_revision, 2);
  ASSERT_TRUE(events[0].prev.has_value());
  EXPECT_EQ(events[0].prev->value, "0");
  EXPECT_EQ(events[1].type, KvEvent::Type::kDelete);
  EXPECT_EQ(events[1].kv.key, "a");
  EXPECT_EQ(events[1].kv.mod_revision, 4);
  ASSERT_TRUE(events[1].prev.has_value());
  EXPECT_EQ(events[1].prev->value, "1");
  EXPECT_EQ(events[2].kv.key, "a1");
  EXPECT_EQ(events[3].kv.key, "a2");
  EXPECT_EQ(events[2].kv.mod_revision, 5);
  EXPECT_EQ(events[3].kv.mod_revision, 5);  // one batch, one revision
  EXPECT_FALSE(events[2].prev.has_value());
  EXPECT_EQ(w->resume_revision(), 6);
}

TEST_F(KvGrpcTest, WatchStartsAtAPastRevisionAndRefusesFutureOnes) {
  for (int i = 1; i <= 5; ++i) ASSERT_OK_R(remote_->Put(kNs, "k", std::to_string(i)));
  ASSERT_OK_AND_ASSIGN(auto w, Watch({.key = "k", .start_revision = 2}));
  std::vector<KvEvent> events = Collect(*w, 4);
  ASSERT_EQ(events.size(), 4u);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(events[i].kv.mod_revision, i + 2);
    EXPECT_EQ(events[i].kv.value, std::to_string(i + 2));
  }
  EXPECT_CODE(Watch({.key = "k", .start_revision = 100}), kInvalidArgument);
  EXPECT_CODE(Watch({.key = "k"}, "/t/none"), kNotFound);
}

TEST_F(KvGrpcTest, CancelEndsTheWatchAndDestroyingNeverHangs) {
  ASSERT_OK_AND_ASSIGN(auto w, Watch({.key = "", .prefix = true}));
  ASSERT_OK_R(remote_->Put(kNs, "a", "1"));
  ASSERT_EQ(Collect(*w, 1).size(), 1u);
  w->Cancel();
  EXPECT_CODE(EndOf(*w), kAborted);
  ASSERT_OK_R(remote_->Put(kNs, "a", "2"));
  EXPECT_CODE(w->Next(In(100ms)), kAborted);
  const auto start = std::chrono::steady_clock::now();
  w.reset();
  // Watches dropped without a cancel, some with events pending.
  for (int i = 0; i < 20; ++i) {
    ASSERT_OK_AND_ASSIGN(auto dropped, Watch({.key = "", .prefix = true}));
    if (i % 2 == 0) ASSERT_OK_R(remote_->Put(kNs, "a", std::to_string(i)));
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

// A client that reads nothing: the node's writes stop at HTTP/2 flow control, its watcher's
// buffer (4 events) overflows, and the stream's last frame says where to resume.
TEST_F(KvGrpcTest, ASlowReaderIsEndedTooSlowAndResumesWithoutAGap) {
  auto stub =
      rpc::Kv::NewStub(::grpc::CreateChannel(target(), ::grpc::InsecureChannelCredentials()));
  ::grpc::ClientContext ctx;
  auto reader = stub->Watch(&ctx, WatchRequest(kNs, {.key = "big", .buffer_events = 4}));
  wire::KvWatchEvents frame;
  ASSERT_TRUE(reader->Read(&frame));  // started
  EXPECT_EQ(frame.events_size(), 0);
  EXPECT_EQ(frame.resume_revision(), 1);
  const std::string value(512 << 10, 'v');
  constexpr int kPuts = 60;  // 30 MiB: more than any flow-control window
  for (int i = 0; i < kPuts; ++i) ASSERT_OK_R(store_->Put(kNs, "big", value + std::to_string(i)));
  int64_t next = 1;
  int32_t end_code = 0;
  int64_t resume = 0;
  while (reader->Read(&frame)) {
    for (const wire::KvEventMsg& e : frame.events()) EXPECT_EQ(e.kv().mod_revision(), next++);
    if (frame.end_code() != 0) {
      end_code = frame.end_code();
      resume = frame.resume_revision();
      EXPECT_NE(frame.end_message().find("too slow"), std::string::npos) << frame.end_message();
    }
  }
  EXPECT_TRUE(reader->Finish().ok());
  ASSERT_EQ(end_code, static_cast<int32_t>(StatusCode::kOutOfCapacity));
  EXPECT_EQ(resume, next);  // nothing skipped, nothing twice
  ASSERT_LT(resume, kPuts);

  // The rest, resuming again whenever the client's 16 MiB buffer overflows in turn.
  int64_t from = resume;
  for (int rounds = 0; from <= kPuts && rounds < 10; ++rounds) {
    ASSERT_OK_AND_ASSIGN(auto again, Watch({.key = "big", .start_revision = from}));
    for (const KvEvent& e : Collect(*again, kPuts - from + 1)) {
      ASSERT_EQ(e.kv.mod_revision, from);
      EXPECT_EQ(e.kv.value, value + std::to_string(from - 1));
      ++from;
    }
    if (from <= kPuts) {
      EXPECT_CODE(EndOf(*again), kOutOfCapacity);
      EXPECT_EQ(again->resume_revision(), from);
    }
  }
  EXPECT_EQ(from, kPuts + 1);
}

// The client's own buffer (4096 events) overflows when the application does not call Next.
TEST_F(KvGrpcTest, AClientThatDoesNotPullIsEndedTooSlowAndResumes) {
  ASSERT_OK_AND_ASSIGN(auto w, Watch({.key = "", .prefix = true, .buffer_events = 100'000}));
  // One frame per revision: 4 buffered, then the 5th ends the watch; each wakes the notify.
  std::mutex mu;
  std::condition_variable cv;
  int wakes = 0;
  w->SetNotify([&] {
    std::lock_guard<std::mutex> lock(mu);
    ++wakes;
    cv.notify_all();
  });
  constexpr int kBatches = 5;
  for (int b = 0; b < kBatches; ++b) {
    std::vector<BatchOp> ops;
    for (int i = 0; i < 1000; ++i) {
      ops.push_back({.kind = BatchOp::Kind::kPut,
                     .key = "k" + std::to_string(i),
                     .value = std::to_string(b)});
    }
    ASSERT_OK_R(remote_->Commit(kNs, ops));
  }
  {
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, 10s, [&] { return wakes >= kBatches; })) << wakes;
  }
  w->SetNotify(nullptr);
  std::vector<KvEvent> events;
  Status end;
  const auto deadline = In(10'000ms);
  while (true) {
    auto got = w->Next(deadline, 4096);
    if (!got.ok()) {
      end = got.status();
      break;
    }
    for (KvEvent& e : *got) events.push_back(std::move(e));
  }
  ASSERT_EQ(end.code(), StatusCode::kOutOfCapacity) << end.ToString();
  EXPECT_EQ(events.size(), 4000u);
  EXPECT_EQ(w->resume_revision(), 5);
  ASSERT_OK_AND_ASSIGN(auto again, Watch({.key = "", .prefix = true, .start_revision = 5}));
  std::vector<KvEvent> rest = Collect(*again, 1000);
  ASSERT_EQ(rest.size(), 1000u);
  EXPECT_EQ(rest.front().kv.mod_revision, 5);
  EXPECT_EQ(rest.front().kv.value, "4");
}

TEST_F(KvGrpcTest, DeletingTheNamespaceEndsItsWatchNotFound) {
  ASSERT_OK_AND_ASSIGN(auto w, Watch({.key = "", .prefix = true}));
  ASSERT_OK_R(remote_->Put(kNs, "a", "1"));
  ASSERT_OK(remote_->DeleteNamespace(kNs));
  EXPECT_EQ(Collect(*w, 1).size(), 1u);
  EXPECT_CODE(EndOf(*w), kNotFound);
}

TEST_F(KvGrpcTest, WatchesHoldNoServerThread) {
  remote_.reset();
  channel_.reset();
  server_.reset();
  StartNode("", /*max_threads=*/8);  // a node whose sync calls have 8 threads
  std::vector<std::unique_ptr<KvWatcher>> watches;
  for (int i = 0; i < 32; ++i) {
    ASSERT_OK_AND_ASSIGN(auto w, Watch({.key = "k" + std::to_string(i)}));
    watches.push_back(std::move(w));
  }
  for (int i = 0; i < 32; ++i) ASSERT_OK_R(remote_->Put(kNs, "k" + std::to_string(i), "v"));
  for (auto& w : watches) EXPECT_EQ(Collect(*w, 1).size(), 1u);
}

TEST_F(KvGrpcTest, StoppingTheServerEndsWatchesAndCallsWithAnError) {
  ASSERT_OK_AND_ASSIGN(auto w, Watch({.key = "", .prefix = true}));
  ASSERT_OK_R(remote_->Put(kNs, "a", "1"));
  ASSERT_EQ(Collect(*w, 1).size(), 1u);
  const auto start = std::chrono::steady_clock::now();
  server_->Stop();
  Status end = EndOf(*w);
  EXPECT_EQ(end.code(), StatusCode::kUnavailable) << end.ToString();
  EXPECT_EQ(w->resume_revision(), 2);
  EXPECT_CODE(remote_->Get(kNs, "a"), kUnavailable);
  w.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

}  // namespace
}  // namespace packice
