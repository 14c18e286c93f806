// The KV API through its messages and back: a WireKvStore whose caller serializes each request
// to bytes, runs it with HandleKvRequest on a real store, and serializes the response.
#include "transport/uds/kv_wire_convert.h"

#include <gtest/gtest.h>

#include "services/kv/kv_testing.h"

namespace packice {
namespace {

using kv_testing::OpenStore;
using kv_testing::SmallOptions;
using testing::TempDir;

class KvWireTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = OpenStore(SmallOptions(dir_.path()));
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = *std::move(s);
    remote_ = std::make_unique<WireKvStore>(
        [this](const wire::KvRequest& req) -> Result<wire::KvResponse> {
          wire::KvRequest in;
          if (!in.ParseFromString(req.SerializeAsString())) return ProtocolError("request");
          wire::KvResponse resp;
          PACKICE_RETURN_IF_ERROR(HandleKvRequest(*store_, in, &resp));
          wire::KvResponse out;
          if (!out.ParseFromString(resp.SerializeAsString())) return ProtocolError("response");
          return out;
        });
    ASSERT_TRUE(remote_->CreateNamespace("/t/ns", {.engine = KvEngine::kMemTable}).ok());
  }

  TempDir dir_;
  std::unique_ptr<KvStore> store_;
  std::unique_ptr<WireKvStore> remote_;
};

TEST_F(KvWireTest, NamespacesRoundTripWithTheirOptions) {
  ASSERT_TRUE(remote_
                  ->CreateNamespace("/t/other", {.write_mode = KvWriteMode::kNoLinear,
                                                 .fsync = KvFsync::kInterval,
                                                 .fsync_interval = Duration(25),
                                                 .default_ttl = Duration(5000)})
                  .ok());
  EXPECT_EQ(remote_->CreateNamespace("/t/ns", {}).code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(remote_->CreateNamespace("t/bad", {}).code(), StatusCode::kInvalidArgument);
  auto list = remote_->ListNamespaces("/t/");
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].path, "/t/ns");
  EXPECT_EQ((*list)[0].options.engine, KvEngine::kMemTable);
  EXPECT_EQ((*list)[1].options.write_mode, KvWriteMode::kNoLinear);
  EXPECT_EQ((*list)[1].options.fsync, KvFsync::kInterval);
  EXPECT_EQ((*list)[1].options.fsync_interval, Duration(25));
  EXPECT_EQ((*list)[1].options.default_ttl, Duration(5000));
  ASSERT_TRUE(remote_->DeleteNamespace("/t/other").ok());
  EXPECT_EQ(remote_->DeleteNamespace("/t/other").code(), StatusCode::kNotFound);
}

TEST_F(KvWireTest, PointOperationsKeepRevisionsAndErrors) {
  auto p1 = remote_->Put("/t/ns", std::string("k\0\xff", 3), "v1");
  ASSERT_TRUE(p1.ok()) << p1.status().ToString();
  EXPECT_EQ(p1->revision, 1);
  auto p2 = remote_->Put("/t/ns", std::string("k\0\xff", 3), "v2",
                         {.if_mod_revision = 1, .prev_kv = true});
  ASSERT_TRUE(p2.ok()) << p2.status().ToString();
  ASSERT_TRUE(p2->prev.has_value());
  EXPECT_EQ(p2->prev->value, "v1");
  auto got = remote_->Get("/t/ns", std::string("k\0\xff", 3));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->value, "v2");
  EXPECT_EQ(got->create_revision, 1);
  EXPECT_EQ(got->mod_revision, 2);
  EXPECT_EQ(got->version, 2);
  EXPECT_EQ(remote_->Put("/t/ns", std::string("k\0\xff", 3), "v3", {.if_mod_revision = 1})
                .status()
                .code(),
            StatusCode::kWrongState);
  EXPECT_EQ(remote_->Get("/t/ns", "absent").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(remote_->Get("/t/none", "k").status().code(), StatusCode::kNotFound);
  auto del = remote_->Delete("/t/ns", std::string("k\0\xff", 3), {.prev_kv = true});
  ASSERT_TRUE(del.ok());
  EXPECT_EQ(del->revision, 3);
  EXPECT_EQ(del->prev->value, "v2");
  EXPECT_EQ(remote_->Delete("/t/ns", "k", {.if_mod_revision = 0}).status().code(),
            StatusCode::kInvalidArgument);
}

TEST_F(KvWireTest, ScansPageAndBatchesAreAtomic) {
  std::vector<BatchOp> ops;
  for (int i = 0; i < 5; ++i) ops.push_back({.key = "a/" + std::to_string(i), .value = "x"});
  auto b = remote_->Commit("/t/ns", ops);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(b->revision, 1);
  auto page = remote_->Scan("/t/ns", {.prefix = "a/", .limit = 3});
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  ASSERT_EQ(page->kvs.size(), 3u);
  EXPECT_EQ(page->kvs[2].key, "a/2");
  EXPECT_FALSE(page->next.empty());
  auto rest = remote_->Scan("/t/ns", {.prefix = "a/", .after = page->next, .keys_only = true});
  ASSERT_TRUE(rest.ok());
  ASSERT_EQ(rest->kvs.size(), 2u);
  EXPECT_EQ(rest->kvs[0].key, "a/3");
  EXPECT_TRUE(rest->kvs[0].value.empty());
  // A failing condition fails the whole batch.
  std::vector<BatchOp> bad{{.key = "a/9", .value = "y"},
                           {.kind = BatchOp::Kind::kDelete, .key = "missing"}};
  EXPECT_EQ(remote_->Commit("/t/ns", bad).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(remote_->Get("/t/ns", "a/9").status().code(), StatusCode::kNotFound);
  // Over the wire a limit of 0 is the default page; one over max_scan_limit is refused.
  EXPECT_EQ(remote_->Scan("/t/ns", {.limit = 0}).status().code(), StatusCode::kOk);
  EXPECT_EQ(remote_->Scan("/t/ns", {.limit = 20000}).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(KvWireTest, MultiGetAndMultiPutAnswerEachItem) {
  wire::KvRequest put;
  put.set_ns("/t/ns");
  for (const char* k : {"x", "y"}) {
    wire::KvPut* p = put.mutable_multi_put()->add_puts();
    p->set_key(k);
    p->set_value(std::string(k) + "!");
  }
  put.mutable_multi_put()->add_puts()->set_key("");  // refused alone
  wire::KvResponse resp;
  ASSERT_TRUE(HandleKvRequest(*store_, put, &resp).ok());
  ASSERT_EQ(resp.multi().items_size(), 3);
  EXPECT_EQ(resp.multi().items(1).put().revision(), 2);
  EXPECT_EQ(resp.multi().items(2).code(), static_cast<int>(StatusCode::kInvalidArgument));
  wire::KvRequest get;
  get.set_ns("/t/ns");
  for (const char* k : {"y", "nope", "x"}) get.mutable_multi_get()->add_keys(k);
  resp.Clear();
  ASSERT_TRUE(HandleKvRequest(*store_, get, &resp).ok());
  ASSERT_EQ(resp.multi().items_size(), 3);
  EXPECT_EQ(resp.multi().items(0).kv().value(), "y!");
  EXPECT_EQ(resp.multi().items(1).code(), static_cast<int>(StatusCode::kNotFound));
  EXPECT_EQ(resp.multi().items(2).kv().value(), "x!");
  // Bounded: too many items are refused, a reply stops taking values at its byte budget.
  wire::KvRequest many;
  many.set_ns("/t/ns");
  for (size_t i = 0; i <= kMaxMultiItems; ++i) many.mutable_multi_get()->add_keys("x");
  EXPECT_EQ(HandleKvRequest(*store_, many, &resp).code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(remote_->Put("/t/ns", "big", std::string(60 << 10, 'b')).ok());
  wire::KvRequest big;
  big.set_ns("/t/ns");
  for (size_t i = 0; i < kMaxMultiItems; ++i) big.mutable_multi_get()->add_keys("big");
  resp.Clear();
  ASSERT_TRUE(HandleKvRequest(*store_, big, &resp).ok());
  const size_t fit = kMaxMultiReplyBytes / (60 << 10) + 1;
  ASSERT_EQ(resp.multi().items_size(), static_cast<int>(kMaxMultiItems));
  EXPECT_EQ(resp.multi().items(fit - 1).code(), 0);
  EXPECT_EQ(resp.multi().items(fit).code(), static_cast<int>(StatusCode::kOutOfCapacity));
  EXPECT_LE(resp.ByteSizeLong(), kMaxMultiReplyBytes + (128 << 10));
}

TEST_F(KvWireTest, BadMessagesGetClearErrors) {
  wire::KvRequest empty;
  wire::KvResponse resp;
  EXPECT_EQ(HandleKvRequest(*store_, empty, &resp).code(), StatusCode::kInvalidArgument);
  wire::KvRequest ns;
  ns.mutable_create_namespace()->set_path("/t/x");
  ns.mutable_create_namespace()->mutable_options()->set_engine(7);
  EXPECT_EQ(HandleKvRequest(*store_, ns, &resp).code(), StatusCode::kInvalidArgument);
  wire::KvRequest ttl;
  ttl.set_ns("/t/ns");
  ttl.mutable_put()->set_key("k");
  ttl.mutable_put()->set_ttl_ms(-1);
  EXPECT_EQ(HandleKvRequest(*store_, ttl, &resp).code(), StatusCode::kInvalidArgument);
  wire::KvRequest watch;
  watch.mutable_watch();
  EXPECT_EQ(HandleKvRequest(*store_, watch, &resp).code(), StatusCode::kUnimplemented);
  // A reply of the wrong kind is a protocol error at the client.
  WireKvStore confused([](const wire::KvRequest&) -> Result<wire::KvResponse> {
    wire::KvResponse r;
    r.set_batch_revision(1);
    return r;
  });
  EXPECT_EQ(confused.Get("/t/ns", "k").status().code(), StatusCode::kProtocolError);
  wire::KvEventMsg event;
  event.set_type(9);
  EXPECT_EQ(FromWire(event).status().code(), StatusCode::kProtocolError);
}

TEST(KvWireEvents, EventsRoundTrip) {
  KvEvent e;
  e.type = KvEvent::Type::kDelete;
  e.kv = {.key = "k", .mod_revision = 7};
  e.prev = KeyValue{.key = "k", .value = "old", .mod_revision = 6};
  e.expired = true;
  wire::KvEventMsg m;
  ToWire(e, &m);
  auto back = FromWire(m);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->type, KvEvent::Type::kDelete);
  EXPECT_EQ(back->kv.mod_revision, 7);
  ASSERT_TRUE(back->prev.has_value());
  EXPECT_EQ(back->prev->value, "old");
  EXPECT_TRUE(back->expired);
}

}  // namespace
}  // namespace packice
