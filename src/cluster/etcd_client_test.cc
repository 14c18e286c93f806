// EtcdClient against a real etcd (EtcdProcess): keys, leases, keepalive and watch, including
// etcd going away and coming back.
#include "cluster/etcd_client.h"

#include <gtest/gtest.h>

#include <mutex>
#include <thread>

#include "testing.h"

namespace packice::cluster {
namespace {

using packice::testing::EtcdProcess;
using packice::testing::WaitUntil;
using std::chrono::milliseconds;
using std::chrono::seconds;

// What a watch delivered, for the test thread to look at.
class WatchLog {
 public:
  EtcdWatchCallback Callback() {
    return [this](const EtcdWatchUpdate& u) {
      std::lock_guard<std::mutex> lock(mu_);
      updates_.push_back(u);
    };
  }
  std::vector<EtcdWatchUpdate> updates() {
    std::lock_guard<std::mutex> lock(mu_);
    return updates_;
  }
  // "put k=v" and "delete k" for every event, in order.
  std::vector<std::string> events() {
    std::vector<std::string> out;
    for (const auto& u : updates()) {
      for (const auto& e : u.events) {
        out.push_back(e.type == EtcdEvent::Type::kPut ? "put " + e.kv.key + "=" + e.kv.value
                                                      : "delete " + e.kv.key);
      }
    }
    return out;
  }

 private:
  std::mutex mu_;
  std::vector<EtcdWatchUpdate> updates_;
};

class EtcdClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK(etcd_.Start());
    ASSERT_OK_AND_ASSIGN(client_, NewClient());
  }
  Result<std::unique_ptr<EtcdClient>> NewClient() {
    EtcdOptions options;
    options.endpoints = {etcd_.endpoint()};
    options.call_timeout = milliseconds(1000);
    return EtcdClient::Create(options);
  }

  EtcdProcess etcd_;
  std::unique_ptr<EtcdClient> client_;
};

TEST(EtcdEndpointsTest, ParsesListsAndRejectsWhatIsNotHttpHostPort) {
  ASSERT_OK_AND_ASSIGN(auto list, ParseEtcdEndpoints("http://a:2379, http://10.0.0.2:2380"));
  EXPECT_EQ(list, (std::vector<std::string>{"http://a:2379", "http://10.0.0.2:2380"}));
  EXPECT_CODE(ParseEtcdEndpoints(""), kInvalidArgument);
  EXPECT_CODE(ParseEtcdEndpoints("a:2379"), kInvalidArgument);
  EXPECT_CODE(ParseEtcdEndpoints("http://a"), kInvalidArgument);
  EXPECT_CODE(ParseEtcdEndpoints("http://a:23x9"), kInvalidArgument);
  EXPECT_CODE(ParseEtcdEndpoints("https://a:2379"), kUnimplemented);
  EXPECT_CODE(EtcdClient::Create({}), kInvalidArgument);
}

TEST(EtcdEndpointsTest, PrefixEndIncrementsTheLastByteBelow0xff) {
  EXPECT_EQ(EtcdPrefixEnd("/a/"), "/a0");
  EXPECT_EQ(EtcdPrefixEnd(std::string("a\xff\xff", 3)), "b");
  EXPECT_EQ(EtcdPrefixEnd(""), std::string(1, '\0'));
  EXPECT_EQ(EtcdPrefixEnd(std::string("\xff", 1)), std::string(1, '\0'));
}

TEST_F(EtcdClientTest, PutGetPrefixDelete) {
  ASSERT_OK_AND_ASSIGN(int64_t rev1, client_->Put("/t/a", "1"));
  ASSERT_OK_AND_ASSIGN(int64_t rev2, client_->Put("/t/b", "2"));
  ASSERT_OK(client_->Put("/u/c", "3").status());
  EXPECT_GT(rev2, rev1);

  ASSERT_OK_AND_ASSIGN(EtcdKeyValue a, client_->Get("/t/a"));
  EXPECT_EQ(a.value, "1");
  EXPECT_EQ(a.mod_revision, rev1);
  EXPECT_CODE(client_->Get("/t/none"), kNotFound);

  ASSERT_OK_AND_ASSIGN(EtcdRange range, client_->GetPrefix("/t/"));
  ASSERT_EQ(range.kvs.size(), 2u);
  EXPECT_EQ(range.kvs[0].key, "/t/a");
  EXPECT_EQ(range.kvs[1].key, "/t/b");
  EXPECT_GE(range.revision, rev2 + 1);  // the put of /u/c came after

  ASSERT_OK_AND_ASSIGN(int64_t deleted, client_->Delete("/t/a"));
  EXPECT_EQ(deleted, 1);
  ASSERT_OK_AND_ASSIGN(deleted, client_->Delete("/t/a"));
  EXPECT_EQ(deleted, 0);
  EXPECT_CODE(client_->Get("/t/a"), kNotFound);
}

TEST_F(EtcdClientTest, UnreachableEtcdIsUnavailableAndTheNextEndpointIsTried) {
  // Port 1 on loopback: nothing listens, the connection is refused at once.
  EtcdOptions dead;
  dead.endpoints = {"http://127.0.0.1:1"};
  dead.call_timeout = milliseconds(1000);
  ASSERT_OK_AND_ASSIGN(auto lonely, EtcdClient::Create(dead));
  EXPECT_CODE(lonely->Get("/k"), kUnavailable);
  EXPECT_CODE(lonely->Grant(seconds(5)), kUnavailable);

  EtcdOptions both = dead;
  both.endpoints.push_back(etcd_.endpoint());
  ASSERT_OK_AND_ASSIGN(auto failover, EtcdClient::Create(both));
  ASSERT_OK(failover->Put("/k", "v").status());
  ASSERT_OK_AND_ASSIGN(EtcdKeyValue kv, failover->Get("/k"));
  EXPECT_EQ(kv.value, "v");
}

TEST_F(EtcdClientTest, LeaseExpiryRemovesTheKey) {
  ASSERT_OK_AND_ASSIGN(EtcdLease lease, client_->Grant(seconds(1)));
  EXPECT_GT(lease.id, 0);
  EXPECT_GE(lease.ttl.count(), 1);
  ASSERT_OK(client_->Put("/lease/k", "v", lease.id).status());
  ASSERT_OK_AND_ASSIGN(EtcdKeyValue kv, client_->Get("/lease/k"));
  EXPECT_EQ(kv.lease, lease.id);
  EXPECT_TRUE(
      WaitUntil([&] { return client_->Get("/lease/k").status().code() == StatusCode::kNotFound; },
                lease.ttl + seconds(5)));
  // A put under the expired lease is refused.
  EXPECT_CODE(client_->Put("/lease/k2", "v", lease.id), kLeaseExpired);
}

TEST_F(EtcdClientTest, KeepAliveKeepsTheKeyAndRevokeDeletesItAtOnce) {
  ASSERT_OK_AND_ASSIGN(EtcdLease lease, client_->Grant(seconds(1)));
  ASSERT_OK(client_->Put("/ka/k", "v", lease.id).status());
  ASSERT_OK_AND_ASSIGN(auto keepalive, client_->KeepAlive(lease));
  EXPECT_TRUE(WaitUntil([&] { return keepalive->healthy(); }));
  // Three TTLs: without the renewals the key would be gone.
  std::this_thread::sleep_for(lease.ttl * 3);
  EXPECT_OK(client_->Get("/ka/k").status());
  EXPECT_TRUE(keepalive->healthy());
  EXPECT_OK(keepalive->status());

  ASSERT_OK(client_->Revoke(lease.id));
  EXPECT_CODE(client_->Get("/ka/k"), kNotFound);
  EXPECT_CODE(client_->Revoke(lease.id), kLeaseExpired);
  // The keepalive learns that its lease is gone.
  EXPECT_TRUE(WaitUntil([&] { return !keepalive->status().ok(); }));
  EXPECT_CODE(keepalive->status(), kLeaseExpired);
}

TEST_F(EtcdClientTest, StoppedKeepAliveLetsTheLeaseExpire) {
  ASSERT_OK_AND_ASSIGN(EtcdLease lease, client_->Grant(seconds(1)));
  ASSERT_OK(client_->Put("/ka/k", "v", lease.id).status());
  ASSERT_OK_AND_ASSIGN(auto keepalive, client_->KeepAlive(lease));
  std::this_thread::sleep_for(lease.ttl * 2);
  EXPECT_OK(client_->Get("/ka/k").status());
  keepalive->Stop();
  EXPECT_TRUE(
      WaitUntil([&] { return client_->Get("/ka/k").status().code() == StatusCode::kNotFound; },
                lease.ttl + seconds(5)));
}

TEST_F(EtcdClientTest, KeepAliveReportsTheLeaseLostWhileEtcdIsDown) {
  ASSERT_OK_AND_ASSIGN(EtcdLease lease, client_->Grant(seconds(1)));
  std::mutex mu;
  std::optional<Status> lost;
  ASSERT_OK_AND_ASSIGN(auto keepalive, client_->KeepAlive(lease, [&](const Status& s) {
    std::lock_guard<std::mutex> lock(mu);
    lost = s;
  }));
  ASSERT_TRUE(WaitUntil([&] { return keepalive->healthy(); }));
  etcd_.Stop(SIGKILL);
  EXPECT_TRUE(WaitUntil([&] { return !keepalive->healthy(); }));
  ASSERT_TRUE(WaitUntil([&] {
    std::lock_guard<std::mutex> lock(mu);
    return lost.has_value();
  }));
  EXPECT_FALSE(keepalive->status().ok());
  EXPECT_NE(keepalive->status().code(), StatusCode::kLeaseExpired) << "etcd never said so";
}

TEST_F(EtcdClientTest, WatchSeesPutsAndDeletesInOrder) {
  ASSERT_OK(client_->Put("/w/old", "0").status());
  WatchLog log;
  ASSERT_OK_AND_ASSIGN(auto watch, client_->Watch("/w/", 0, log.Callback()));
  ASSERT_TRUE(WaitUntil([&] { return watch->synced(); }));
  {
    auto updates = log.updates();
    ASSERT_FALSE(updates.empty());
    ASSERT_EQ(updates[0].kind, EtcdWatchUpdate::Kind::kReset);
    ASSERT_EQ(updates[0].kvs.size(), 1u);
    EXPECT_EQ(updates[0].kvs[0].key, "/w/old");
  }
  ASSERT_OK(client_->Put("/w/a", "1").status());
  ASSERT_OK(client_->Put("/other", "x").status());  // outside the prefix
  ASSERT_OK(client_->Put("/w/b", "2").status());
  ASSERT_OK(client_->Delete("/w/a").status());
  ASSERT_OK(client_->Put("/w/b", "3").status());
  const std::vector<std::string> want = {"put /w/a=1", "put /w/b=2", "delete /w/a", "put /w/b=3"};
  EXPECT_TRUE(WaitUntil([&] { return log.events().size() >= want.size(); }));
  EXPECT_EQ(log.events(), want);
  // The delete carries the value before it (prev_kv).
  for (const auto& u : log.updates()) {
    for (const auto& e : u.events) {
      if (e.type == EtcdEvent::Type::kDelete) {
        ASSERT_TRUE(e.prev_kv.has_value());
        EXPECT_EQ(e.prev_kv->value, "1");
      }
    }
  }
}

TEST_F(EtcdClientTest, WatchResumesAfterEtcdRestartWithoutLosingOrRepeatingEvents) {
  WatchLog log;
  ASSERT_OK_AND_ASSIGN(auto watch, client_->Watch("/w/", 0, log.Callback()));
  ASSERT_TRUE(WaitUntil([&] { return watch->synced(); }));
  ASSERT_OK(client_->Put("/w/1", "a").status());
  ASSERT_TRUE(WaitUntil([&] { return log.events().size() == 1; }));

  etcd_.Stop(SIGKILL);
  EXPECT_TRUE(WaitUntil([&] { return !watch->synced(); }));
  ASSERT_OK(etcd_.Restart());
  // Written before the watch is back: it must resume from its revision, not from "now".
  ASSERT_OK_AND_ASSIGN(auto writer, NewClient());
  ASSERT_OK(writer->Put("/w/2", "b").status());
  ASSERT_OK(writer->Delete("/w/1").status());
  EXPECT_TRUE(WaitUntil([&] { return log.events().size() >= 3; }, seconds(20)));
  EXPECT_EQ(log.events(), (std::vector<std::string>{"put /w/1=a", "put /w/2=b", "delete /w/1"}));
  EXPECT_TRUE(WaitUntil([&] { return watch->synced(); }));
  EXPECT_GE(watch->reconnects(), 1u);
  EXPECT_FALSE(watch->last_error().ok());
}

TEST_F(EtcdClientTest, WatchFromACompactedRevisionListsAgain) {
  ASSERT_OK(client_->Put("/c/a", "1").status());
  ASSERT_OK(client_->Put("/c/a", "2").status());
  ASSERT_OK_AND_ASSIGN(int64_t rev, client_->Put("/c/b", "3"));
  std::string out;
  ASSERT_EQ(packice::testing::RunProgram({"/usr/bin/etcdctl", "--endpoints=" + etcd_.endpoint(),
                                          "compaction", std::to_string(rev)},
                                         &out),
            0)
      << out;

  WatchLog log;
  ASSERT_OK_AND_ASSIGN(auto watch, client_->Watch("/c/", 1, log.Callback()));
  ASSERT_TRUE(WaitUntil([&] { return !log.updates().empty() && watch->synced(); }));
  auto updates = log.updates();
  ASSERT_EQ(updates[0].kind, EtcdWatchUpdate::Kind::kReset);
  ASSERT_EQ(updates[0].kvs.size(), 2u);
  EXPECT_EQ(updates[0].kvs[0].value, "2");
  EXPECT_EQ(updates[0].kvs[1].value, "3");
  EXPECT_GE(updates[0].revision, rev);
  ASSERT_OK(client_->Put("/c/c", "4").status());
  EXPECT_TRUE(WaitUntil([&] { return log.events().size() == 1; }));
  EXPECT_EQ(log.events(), std::vector<std::string>{"put /c/c=4"});
}

TEST_F(EtcdClientTest, TheSameClientWorksAgainAfterALongOutage) {
  ASSERT_OK(client_->Put("/k", "1").status());
  etcd_.Stop(SIGKILL);
  // Long enough for gRPC's reconnect backoff to run several times with no call waiting.
  const auto until = std::chrono::steady_clock::now() + seconds(3);
  while (std::chrono::steady_clock::now() < until) {
    EXPECT_CODE(client_->Get("/k"), kUnavailable);
    std::this_thread::sleep_for(milliseconds(300));
  }
  ASSERT_OK(etcd_.Restart());
  EXPECT_TRUE(WaitUntil([&] { return client_->Get("/k").ok(); }, seconds(10)));
}

}  // namespace
}  // namespace packice::cluster
