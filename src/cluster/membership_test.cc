// Membership against a real etcd (EtcdProcess): agreement of several nodes, leaving by Stop and
// by lease expiry, etcd going down and coming back, and records that are not records.
#include "cluster/membership.h"

#include <gtest/gtest.h>

#include <mutex>
#include <thread>

#include "core/metrics.h"
#include "testing.h"

namespace packice::cluster {
namespace {

using packice::testing::EtcdProcess;
using packice::testing::WaitUntil;
using std::chrono::milliseconds;
using std::chrono::seconds;

std::vector<std::string> Ids(const MembershipView& view) {
  std::vector<std::string> ids;
  for (const auto& m : view.members) ids.push_back(m.node_id);
  return ids;
}

// The views a listener was given, to check that epochs only grow.
class ViewLog {
 public:
  MembershipListener Listener() {
    return [this](const MembershipView& v) {
      std::lock_guard<std::mutex> lock(mu_);
      views_.push_back(v);
    };
  }
  std::vector<MembershipView> views() {
    std::lock_guard<std::mutex> lock(mu_);
    return views_;
  }

 private:
  std::mutex mu_;
  std::vector<MembershipView> views_;
};

TEST(MemberRecordTest, JsonRoundTripsAndBadRecordsAreRefused) {
  MemberRecord r{"node-1", "10.0.0.1:7070", "10.0.0.1:8080", 1 << 30, 1'700'000'000'123};
  const std::string json = MemberRecordToJson(r);
  ASSERT_OK_AND_ASSIGN(MemberRecord back, MemberRecordFromJson(json, "node-1"));
  EXPECT_EQ(back, r);

  EXPECT_CODE(MemberRecordFromJson(json, "node-2"), kInvalidArgument);  // another key
  EXPECT_CODE(MemberRecordFromJson("{not json", "n"), kInvalidArgument);
  EXPECT_CODE(MemberRecordFromJson("[1,2]", "n"), kInvalidArgument);
  EXPECT_CODE(MemberRecordFromJson(R"({"node_id":"n"})", "n"), kInvalidArgument);
  EXPECT_CODE(MemberRecordFromJson(R"({"node_id":"n","grpc_address":1})", "n"), kInvalidArgument);
  EXPECT_CODE(
      MemberRecordFromJson(R"({"node_id":"n","grpc_address":"a","capacity_bytes":-1})", "n"),
      kInvalidArgument);
  // Fields a newer node adds are ignored; the optional ones may be missing.
  ASSERT_OK_AND_ASSIGN(MemberRecord lean,
                       MemberRecordFromJson(R"({"node_id":"n","grpc_address":"a:1","x":[]})", "n"));
  EXPECT_EQ(lean.grpc_address, "a:1");
  EXPECT_EQ(lean.http_address, "");
  // Other nodes dial the address: host:port or nothing.
  for (const char* bad : {"a", "a:", ":1", "a:0", "a:65536", "a:1x", "a b:1", "a/b:1"}) {
    EXPECT_CODE(MemberRecordFromJson(
                    std::string(R"({"node_id":"n","grpc_address":")") + bad + R"("})", "n"),
                kInvalidArgument)
        << bad;
  }
}

TEST(MemberRecordTest, NodeIdsAreOneBoundedKeySegment) {
  EXPECT_OK(ValidateNodeId("node-1.rack_2:a"));
  EXPECT_OK(ValidateNodeId(std::string(kMaxNodeIdBytes, 'n')));
  EXPECT_CODE(ValidateNodeId(""), kInvalidArgument);
  EXPECT_CODE(ValidateNodeId(std::string(kMaxNodeIdBytes + 1, 'n')), kInvalidArgument);
  EXPECT_CODE(ValidateNodeId("a/b"), kInvalidArgument);
  EXPECT_CODE(ValidateNodeId(".."), kInvalidArgument);
  EXPECT_CODE(ValidateNodeId("a b"), kInvalidArgument);
  EXPECT_CODE(ValidateNodeId("a\nb"), kInvalidArgument);
  EXPECT_EQ(NodeKey("prod", "n1"), "/packice/prod/nodes/n1");
}

class MembershipTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK(etcd_.Start());
    client_ = NewClient();
    ASSERT_NE(client_, nullptr);
  }

  std::shared_ptr<EtcdClient> NewClient() {
    EtcdOptions options;
    options.endpoints = {etcd_.endpoint()};
    options.call_timeout = milliseconds(1000);
    options.retry_max = milliseconds(500);
    auto client = EtcdClient::Create(options);
    EXPECT_OK(client.status());
    return client.ok() ? std::shared_ptr<EtcdClient>(std::move(client).value()) : nullptr;
  }

  MembershipOptions Options(const std::string& id, seconds ttl = seconds(2)) {
    MembershipOptions o;
    o.cluster = "test";
    o.self.node_id = id;
    o.self.grpc_address = "127.0.0.1:" + std::to_string(7000 + id.back());
    o.self.http_address = "127.0.0.1:" + std::to_string(8000 + id.back());
    o.self.capacity_bytes = 1 << 20;
    o.self.start_time_ms = 1'700'000'000'000;
    o.lease_ttl = ttl;
    o.retry_initial = milliseconds(50);
    o.retry_max = milliseconds(500);
    return o;
  }

  std::unique_ptr<Membership> StartMember(const std::string& id, seconds ttl = seconds(2),
                                          MembershipListener listener = nullptr) {
    auto m = Membership::Start(NewClient(), Options(id, ttl), std::move(listener));
    EXPECT_OK(m.status());
    return m.ok() ? std::move(m).value() : nullptr;
  }

  EtcdProcess etcd_;
  std::shared_ptr<EtcdClient> client_;
};

TEST_F(MembershipTest, StartRefusesBadOptions) {
  EXPECT_CODE(Membership::Start(client_, Options("a/b"), nullptr), kInvalidArgument);
  MembershipOptions o = Options("a");
  o.cluster = "x/y";
  EXPECT_CODE(Membership::Start(client_, o, nullptr), kInvalidArgument);
  o = Options("a");
  o.lease_ttl = seconds(0);
  EXPECT_CODE(Membership::Start(client_, o, nullptr), kInvalidArgument);
  EXPECT_CODE(Membership::Start(nullptr, Options("a"), nullptr), kInvalidArgument);
}

TEST_F(MembershipTest, ThreeMembersAgreeOnTheMemberSet) {
  ViewLog log;
  auto a = StartMember("a", seconds(2), log.Listener());
  auto b = StartMember("b");
  auto c = StartMember("c");
  ASSERT_TRUE(a && b && c);
  const std::vector<std::string> all = {"a", "b", "c"};
  ASSERT_TRUE(WaitUntil(
      [&] { return Ids(a->view()) == all && Ids(b->view()) == all && Ids(c->view()) == all; }));
  EXPECT_TRUE(WaitUntil([&] { return a->state().connected && b->state().connected; }));
  // Every node sees every node's record as it was published.
  for (const auto& m : b->view().members) EXPECT_EQ(m, Options(m.node_id).self);
  ASSERT_OK_AND_ASSIGN(EtcdKeyValue kv, client_->Get(NodeKey("test", "c")));
  EXPECT_NE(kv.lease, 0);

  // The listener got full lists, with strictly increasing epochs, the last one the view.
  auto views = log.views();
  ASSERT_FALSE(views.empty());
  for (size_t i = 1; i < views.size(); ++i) EXPECT_GT(views[i].epoch, views[i - 1].epoch);
  EXPECT_EQ(Ids(views.back()), all);
  EXPECT_EQ(views.back().epoch, a->view().epoch);
  EXPECT_EQ(a->state().members, 3u);
}

TEST_F(MembershipTest, StopRemovesTheMemberAtOnce) {
  // A TTL far beyond the waits below: only the revoke can explain the record's going.
  auto a = StartMember("a", seconds(30));
  auto b = StartMember("b", seconds(30));
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(WaitUntil([&] { return a->view().members.size() == 2; }));
  const uint64_t epoch = a->view().epoch;
  b->Stop();
  EXPECT_CODE(client_->Get(NodeKey("test", "b")), kNotFound);
  EXPECT_TRUE(
      WaitUntil([&] { return Ids(a->view()) == std::vector<std::string>{"a"}; }, seconds(5)));
  EXPECT_GT(a->view().epoch, epoch);
  b->Stop();  // idempotent
}

TEST_F(MembershipTest, AMemberThatStopsRenewingLeavesWithinItsTtl) {
  auto a = StartMember("a");
  auto b = StartMember("b");
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(WaitUntil([&] { return a->view().members.size() == 2; }));
  b->Abandon();  // as if its process died: no revoke
  ASSERT_OK(client_->Get(NodeKey("test", "b")).status());
  const auto abandoned = std::chrono::steady_clock::now();
  ASSERT_TRUE(
      WaitUntil([&] { return Ids(a->view()) == std::vector<std::string>{"a"}; }, seconds(10)));
  // etcd checks expiry every 500 ms: allow that on top of the TTL.
  EXPECT_LT(std::chrono::steady_clock::now() - abandoned, seconds(2) + seconds(3));
}

TEST_F(MembershipTest, EtcdDownKeepsTheLastViewAndRestartRejoins) {
  auto a = StartMember("a");
  auto b = StartMember("b");
  auto c = StartMember("c");
  ASSERT_TRUE(a && b && c);
  const std::vector<std::string> all = {"a", "b", "c"};
  std::vector<Membership*> members = {a.get(), b.get(), c.get()};
  auto all_connected = [&] {
    for (auto* m : members) {
      if (!m->state().connected || Ids(m->view()) != all) return false;
    }
    return true;
  };
  ASSERT_TRUE(WaitUntil(all_connected));

  etcd_.Stop(SIGKILL);
  ASSERT_TRUE(WaitUntil([&] {
    for (auto* m : members) {
      if (m->state().connected) return false;
    }
    return true;
  }));
  // Past the lease TTL, with etcd still gone: the view stays as it was.
  std::this_thread::sleep_for(seconds(3));
  for (auto* m : members) {
    EXPECT_EQ(Ids(m->view()), all);
    EXPECT_FALSE(m->state().connected);
    EXPECT_NE(m->state().last_error, "");
  }

  ASSERT_OK(etcd_.Restart());
  EXPECT_TRUE(WaitUntil(all_connected, seconds(20)));
  for (auto* m : members) EXPECT_GE(m->state().reconnects, 1u);
  ASSERT_OK_AND_ASSIGN(EtcdRange range, client_->GetPrefix(NodesPrefix("test")));
  EXPECT_EQ(range.kvs.size(), 3u);
}

TEST_F(MembershipTest, StartedWhileEtcdIsDownJoinsWhenItComesBack) {
  etcd_.Stop(SIGKILL);
  auto a = StartMember("a");
  ASSERT_TRUE(a);
  EXPECT_TRUE(WaitUntil([&] { return a->state().last_error != ""; }));
  EXPECT_FALSE(a->state().connected);
  EXPECT_TRUE(a->view().members.empty());
  ASSERT_OK(etcd_.Restart());
  EXPECT_TRUE(WaitUntil(
      [&] { return a->state().connected && Ids(a->view()) == std::vector<std::string>{"a"}; },
      seconds(20)));
}

TEST_F(MembershipTest, RecordsThatAreNotRecordsAreSkipped) {
  const std::string prefix = NodesPrefix("test");
  ASSERT_OK(client_->Put(prefix + "garbage", "{not json").status());
  ASSERT_OK(client_->Put(prefix + "x/y", R"({"node_id":"x/y","grpc_address":"h:1"})").status());
  ASSERT_OK(client_->Put(prefix + "liar", R"({"node_id":"other","grpc_address":"h:1"})").status());
  auto a = StartMember("a");
  ASSERT_TRUE(a);
  ASSERT_TRUE(WaitUntil([&] { return Ids(a->view()) == std::vector<std::string>{"a"}; }));

  // The same through the watch, and a good record next to them still counts.
  ASSERT_OK(client_->Put(prefix + "garbage2", std::string("\xff\x00", 2)).status());
  ASSERT_OK(client_->Put(prefix + "d", MemberRecordToJson(Options("d").self)).status());
  EXPECT_TRUE(WaitUntil([&] { return Ids(a->view()) == std::vector<std::string>{"a", "d"}; }));
  // A member whose record turns into garbage is no member.
  ASSERT_OK(client_->Put(prefix + "d", "null").status());
  EXPECT_TRUE(WaitUntil([&] { return Ids(a->view()) == std::vector<std::string>{"a"}; }));
}

TEST_F(MembershipTest, MetricsShowTheState) {
  auto a = StartMember("a");
  ASSERT_TRUE(a);
  ASSERT_TRUE(WaitUntil([&] { return a->state().connected && a->state().members == 1; }));
  MetricsWriter writer;
  a->WriteMetrics(writer);
  const std::string text = writer.Take();
  EXPECT_NE(text.find("packice_cluster_connected{cluster=\"test\"} 1"), std::string::npos) << text;
  EXPECT_NE(text.find("packice_cluster_members{cluster=\"test\"} 1"), std::string::npos) << text;
  EXPECT_NE(text.find("# TYPE packice_cluster_reconnects_total counter"), std::string::npos);
}

}  // namespace
}  // namespace packice::cluster
