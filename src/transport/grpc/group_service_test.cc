// Cache groups over gRPC: the Groups service over an in-process GrpcServer (calls, hops, names,
// tokens, sizes), and GrpcGroupLoader between two in-process nodes (a remote fetch, a node that
// stopped).
#include "transport/grpc/group_service.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <string>
#include <thread>

#include "services/cache/group_registry.h"
#include "testing.h"
#include "transport/grpc/group_channel.h"
#include "transport/grpc/grpc_server.h"

namespace packice {
namespace {

using namespace std::chrono_literals;

// A getter answering "<prefix>:<key>", kNotFound for "missing", counting its calls.
struct Origin {
  explicit Origin(std::string p) : prefix(std::move(p)) {}
  CacheGetter Getter() {
    return [this](std::string_view key) -> Result<std::string> {
      calls++;
      if (key == "missing") return NotFound("no such key at the origin");
      return prefix + ":" + std::string(key);
    };
  }
  std::string prefix;
  std::atomic<int> calls{0};
};

// A node: a registry with group "users" over `origin`, served on a loopback port.
class Node {
 public:
  explicit Node(Origin* origin, std::string token = "") {
    registry_ = std::make_shared<GroupRegistry>();
    group_ = std::make_shared<Group>("users", 64 << 20, origin->Getter());
    EXPECT_OK(registry_->Add(group_, GroupConfig{.name = "users"}));
    server_ = std::make_unique<GrpcServer>(GrpcServerOptions{.listen = "127.0.0.1:0"});
    server_->AddService(
        std::make_shared<rpc::GroupService>(registry_, rpc::GroupServiceOptions{token}));
  }
  Status Start() { return server_->Start(); }
  void Stop() { server_->Stop(); }
  std::string target() const { return "127.0.0.1:" + std::to_string(server_->port()); }
  Group& group() { return *group_; }
  GroupRegistry& registry() { return *registry_; }

  std::unique_ptr<GrpcGroupClient> Client(std::string token = "") const {
    auto c = GrpcGroupClient::Create(target(), GrpcGroupOptions{.bearer_token = token});
    EXPECT_OK(c.status());
    return c.ok() ? std::move(*c) : nullptr;
  }

 private:
  std::shared_ptr<GroupRegistry> registry_;
  std::shared_ptr<Group> group_;
  std::unique_ptr<GrpcServer> server_;
};

TEST(GroupServiceTest, GetSetDeleteStatsList) {
  Origin origin("o");
  Node node(&origin);
  ASSERT_OK(node.Start());
  auto c = node.Client();
  CacheSource source = CacheSource::kHit;
  ASSERT_OK_AND_ASSIGN(std::string v, c->Get("users", "a", &source));
  EXPECT_EQ(v, "o:a");
  EXPECT_EQ(source, CacheSource::kMiss);
  ASSERT_OK_AND_ASSIGN(v, c->Get("users", "a", &source));
  EXPECT_EQ(source, CacheSource::kHit);
  EXPECT_EQ(origin.calls, 1);

  ASSERT_OK(c->Set("users", "b", "set-value", 60s));
  ASSERT_OK_AND_ASSIGN(v, c->Get("users", "b"));
  EXPECT_EQ(v, "set-value");
  ASSERT_OK(c->Delete("users", "b"));
  ASSERT_OK(c->Delete("users", "never-there"));  // absent is OK
  ASSERT_OK_AND_ASSIGN(v, c->Get("users", "b"));
  EXPECT_EQ(v, "o:b");  // loaded again
  EXPECT_CODE(c->Get("users", "missing"), kNotFound);

  ASSERT_OK_AND_ASSIGN(GroupStats st, c->Stats("users"));
  EXPECT_EQ(st.gets, 5u);
  EXPECT_EQ(st.hits, 2u);
  EXPECT_EQ(st.loads, 3u);
  EXPECT_EQ(st.load_errors, 1u);
  EXPECT_EQ(st.capacity_bytes, 64u << 20);
  EXPECT_EQ(st.load_latency_counts.size(), st.load_latency_bounds.size() + 1);
  EXPECT_EQ(st.load_latency_counts.back(), 3u);

  ASSERT_OK_AND_ASSIGN(std::vector<GroupListing> list, c->List());
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].name, "users");
  EXPECT_EQ(list[0].policy, "lru2");
}

TEST(GroupServiceTest, ValuesOfAnySizeArriveWhole) {
  Origin origin("o");
  Node node(&origin);
  ASSERT_OK(node.Start());
  auto c = node.Client();
  std::string big(1 << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7 + (i >> 12));
  for (const std::string& value : {std::string(), std::string("x"), big}) {
    ASSERT_OK(c->Set("users", "k", value));
    CacheSource source = CacheSource::kMiss;
    ASSERT_OK_AND_ASSIGN(std::string got, c->Get("users", "k", &source));  // answered inline
    EXPECT_EQ(got.size(), value.size());
    EXPECT_TRUE(got == value);
    EXPECT_EQ(source, CacheSource::kHit);
  }
  // A miss, answered from the service's threads, and its hit.
  for (CacheSource expected : {CacheSource::kMiss, CacheSource::kHit}) {
    CacheSource source = CacheSource::kHit;
    ASSERT_OK_AND_ASSIGN(std::string got, c->Get("users", "m", &source));
    EXPECT_EQ(got, "o:m");
    EXPECT_EQ(source, expected);
  }
  EXPECT_EQ(origin.calls, 1);
}

TEST(GroupServiceTest, GetsWaitingForLoadsAreBounded) {
  // A getter that holds keys starting with "slow" until the test lets them go.
  std::atomic<int> calls{0};
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  auto registry = std::make_shared<GroupRegistry>();
  auto group = std::make_shared<Group>("users", 1 << 20, [&](std::string_view key) {
    calls++;
    if (key.starts_with("slow")) released.wait();
    return Result<std::string>("v:" + std::string(key));
  });
  ASSERT_OK(registry->Add(group, GroupConfig{.name = "users"}));
  GrpcServer server(GrpcServerOptions{.listen = "127.0.0.1:0"});
  server.AddService(std::make_shared<rpc::GroupService>(
      registry, rpc::GroupServiceOptions{.threads = 1, .max_waiting = 1}));
  ASSERT_OK(server.Start());
  ASSERT_OK(group->Set("hot", "cached"));
  auto c = GrpcGroupClient::Create("127.0.0.1:" + std::to_string(server.port()),
                                   GrpcGroupOptions{.timeout = 5s});
  ASSERT_OK(c.status());

  auto first = std::async(std::launch::async, [&] { return (*c)->Get("users", "slow1"); });
  while (calls.load() == 0) std::this_thread::sleep_for(1ms);
  // One Get waits for its load: a second miss is refused at once, a hit is still answered.
  Result<std::string> second = (*c)->Get("users", "slow2");
  EXPECT_EQ(second.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(second.status().message().find("cache gets waiting"), std::string_view::npos)
      << second.status().ToString();  // the node's refusal, not the client's deadline
  ASSERT_OK_AND_ASSIGN(std::string hot, (*c)->Get("users", "hot"));
  EXPECT_EQ(hot, "cached");
  release.set_value();
  Result<std::string> v = first.get();
  ASSERT_OK(v.status());
  EXPECT_EQ(*v, "v:slow1");
  // Room again.
  ASSERT_OK_AND_ASSIGN(std::string again, (*c)->Get("users", "slow2"));
  EXPECT_EQ(again, "v:slow2");
  server.Stop();
}

TEST(GroupServiceTest, GroupNamesKeysAndValuesAreChecked) {
  Origin origin("o");
  Node node(&origin);
  ASSERT_OK(node.Start());
  auto c = node.Client();
  EXPECT_CODE(c->Get("nope", "a"), kNotFound);
  EXPECT_NE(c->Get("nope", "a").status().message().find("groups: users"), std::string::npos);
  EXPECT_CODE(c->Get("a/b", "a"), kInvalidArgument);
  EXPECT_CODE(c->Get("", "a"), kInvalidArgument);
  EXPECT_CODE(c->Stats("nope"), kNotFound);
  EXPECT_CODE(c->Set("nope", "a", "v"), kNotFound);
  EXPECT_CODE(c->Delete("bad name", "a"), kInvalidArgument);
  EXPECT_CODE(c->Get("users", ""), kInvalidArgument);
  EXPECT_CODE(c->Get("users", std::string(5000, 'k')), kInvalidArgument);
  // A 1 MiB value (the default max_value) travels in one message; one byte more is refused.
  const std::string big = testing::PatternString(1 << 20, 3);
  ASSERT_OK(c->Set("users", "big", big));
  ASSERT_OK_AND_ASSIGN(std::string v, c->Get("users", "big"));
  EXPECT_EQ(v, big);
  EXPECT_CODE(c->Set("users", "big2", big + "x"), kInvalidArgument);
  EXPECT_EQ(origin.calls, 0);
}

TEST(GroupServiceTest, BearerToken) {
  Origin origin("o");
  Node node(&origin, "s3cret");
  ASSERT_OK(node.Start());
  EXPECT_CODE(node.Client()->Get("users", "a"), kPermissionDenied);
  EXPECT_CODE(node.Client("wrong")->Get("users", "a"), kPermissionDenied);
  EXPECT_CODE(node.Client()->Stats("users"), kPermissionDenied);
  EXPECT_CODE(node.Client()->List(), kPermissionDenied);
  EXPECT_EQ(origin.calls, 0);
  ASSERT_OK_AND_ASSIGN(std::string v, node.Client("s3cret")->Get("users", "a"));
  EXPECT_EQ(v, "o:a");
}

// Says another node owns every key, and counts what is sent there.
class EverythingElsewhere final : public GroupPeers, public RemoteLoader {
 public:
  std::optional<PeerPick> PickOwner(std::string_view) override {
    return PeerPick{std::shared_ptr<RemoteLoader>(self_.lock(), this), "other", 7};
  }
  uint64_t ring_epoch() const override { return 7; }
  Result<CacheValue> Fetch(const PeerRequest& r) override {
    fetches++;
    return std::make_shared<const std::string>("remote:" + std::string(r.key));
  }
  Status Store(const PeerRequest&, std::string_view, std::optional<Duration>) override {
    stores++;
    return Status::Ok();
  }
  Status Remove(const PeerRequest&) override {
    removes++;
    return Status::Ok();
  }
  std::weak_ptr<EverythingElsewhere> self_;
  std::atomic<int> fetches{0}, stores{0}, removes{0};
};

TEST(GroupServiceTest, ClientsMayBeForwardedPeersAreServedLocally) {
  Origin origin("local");
  Node node(&origin);
  auto peers = std::make_shared<EverythingElsewhere>();
  peers->self_ = peers;
  node.registry().SetPeers(peers);
  ASSERT_OK(node.Start());
  auto c = node.Client();

  // hops = 0, a client: this node's ring sends the key to its owner.
  ASSERT_OK_AND_ASSIGN(std::string v, c->Get("users", "k"));
  EXPECT_EQ(v, "remote:k");
  EXPECT_EQ(peers->fetches, 1);
  ASSERT_OK(c->Set("users", "s", "x"));
  ASSERT_OK(c->Delete("users", "s"));
  EXPECT_EQ(peers->stores, 1);
  EXPECT_EQ(peers->removes, 1);
  EXPECT_EQ(origin.calls, 0);

  // hops = 1, another node (with another ring): served here, never forwarded.
  ASSERT_OK_AND_ASSIGN(CacheValue pv, c->Fetch({.group = "users", .key = "k", .ring_epoch = 99}));
  EXPECT_EQ(*pv, "local:k");
  ASSERT_OK(c->Store({.group = "users", .key = "p", .ring_epoch = 7}, "stored-here", std::nullopt));
  ASSERT_OK_AND_ASSIGN(pv, c->Fetch({.group = "users", .key = "p", .ring_epoch = 7}));
  EXPECT_EQ(*pv, "stored-here");
  ASSERT_OK(c->Remove({.group = "users", .key = "p", .ring_epoch = 7}));
  ASSERT_OK_AND_ASSIGN(pv, c->Fetch({.group = "users", .key = "p", .ring_epoch = 7}));
  EXPECT_EQ(*pv, "local:p");
  EXPECT_EQ(peers->fetches, 1);
  EXPECT_EQ(peers->stores, 1);
  EXPECT_EQ(peers->removes, 1);
  EXPECT_EQ(origin.calls, 2);
  GroupStats st = node.group().Stats();
  EXPECT_EQ(st.peer_requests, 5u);
  EXPECT_EQ(st.ring_disagreements, 1u);  // the request with epoch 99
}

TEST(GrpcGroupLoaderTest, FetchesFromAnotherNodeAndFallsBackWhenItStops) {
  Origin owner_origin("owner"), local_origin("local");
  Node owner(&owner_origin);
  ASSERT_OK(owner.Start());
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<RemoteLoader> loader,
                       NewGrpcGroupLoader(owner.target(), GrpcGroupOptions{.timeout = 5s}));

  // A group on "this" node whose ring says the owner holds every key.
  struct ToOwner final : GroupPeers {
    std::shared_ptr<RemoteLoader> loader;
    std::optional<PeerPick> PickOwner(std::string_view) override {
      return PeerPick{loader, "owner", 1};
    }
    uint64_t ring_epoch() const override { return 1; }
  };
  auto peers = std::make_shared<ToOwner>();
  peers->loader = loader;
  Group local("users", 8 << 20, local_origin.Getter());
  local.SetPeers(peers);

  ASSERT_OK_AND_ASSIGN(CacheValue v, local.Get("k"));
  EXPECT_EQ(*v, "owner:k");
  ASSERT_OK_AND_ASSIGN(v, local.Get("k"));  // not cached here: the owner holds it
  EXPECT_EQ(owner_origin.calls, 1);
  EXPECT_EQ(local_origin.calls, 0);
  EXPECT_EQ(owner.group().Stats().peer_requests, 2u);
  EXPECT_EQ(owner.group().Stats().hits, 0u);     // peer requests are not client gets
  EXPECT_CODE(local.Get("missing"), kNotFound);  // the owner's answer, passed on
  EXPECT_EQ(local_origin.calls, 0);

  ASSERT_OK(local.Set("s", "through"));
  ASSERT_OK_AND_ASSIGN(v, owner.group().Get("s"));
  EXPECT_EQ(*v, "through");

  owner.Stop();
  const auto begin = std::chrono::steady_clock::now();
  EXPECT_CODE(loader->Fetch({.group = "users", .key = "k"}), kUnavailable);
  EXPECT_LT(std::chrono::steady_clock::now() - begin, 4s);  // refused, not a deadline
  ASSERT_OK_AND_ASSIGN(v, local.Get("k2"));                 // falls back to the local getter
  EXPECT_EQ(*v, "local:k2");
  EXPECT_EQ(local_origin.calls, 1);
}

TEST(GrpcGroupLoaderTest, CreationIsLazyAndChecksItsArguments) {
  // Nothing listens on port 1: creating the loader does not connect, a call finds out.
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<RemoteLoader> loader,
                       NewGrpcGroupLoader("127.0.0.1:1", GrpcGroupOptions{.timeout = 2s}));
  EXPECT_CODE(loader->Fetch({.group = "users", .key = "k"}), kUnavailable);
  EXPECT_CODE(loader->Store({.group = "users", .key = "k"}, "v", std::nullopt), kUnavailable);
  EXPECT_CODE(NewGrpcGroupLoader("no-port", {}), kInvalidArgument);
  EXPECT_CODE(NewGrpcGroupLoader("127.0.0.1:1", GrpcGroupOptions{.bearer_token = "a b"}),
              kInvalidArgument);
  EXPECT_CODE(NewGrpcGroupLoader("127.0.0.1:1", GrpcGroupOptions{.tls = true, .ca_file = "/nope"}),
              kInvalidArgument);
}

}  // namespace
}  // namespace packice
