// Cache groups served by a real packiced: --group over a real origin (tests/origin.py), HTTP
// misses and hits, one origin request for 200 concurrent misses, origin errors reaching the
// client uncached, the CLI over HTTP and gRPC, [groups.NAME] in the config file, /metrics.
#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "http_testing.h"
#include "origin_server.h"
#include "testing.h"

namespace packice {
namespace {

using ::packice::testing::BinPath;
using ::packice::testing::Daemon;
using ::packice::testing::OriginServer;
using ::packice::testing::PackicedArgv;
using ::packice::testing::RunProgram;
using ::packice::testing::TempDir;

using Reply = testing::HttpReply;
using testing::Http;

class GroupNodeTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_OK(origin_.Start()); }

  // packiced serving group "users" over the origin, on HTTP and gRPC ports of its own.
  void StartNode(std::vector<std::string> extra = {}) {
    std::vector<std::string> flags = {
        "--store",     "memory", "--capacity",  "64M",     "--http",
        "127.0.0.1:0", "--grpc", "127.0.0.1:0", "--group", "users=" + origin_.url("users/{key}")};
    flags.insert(flags.end(), extra.begin(), extra.end());
    ASSERT_OK(node_.Start(flags));
    http_ = node_.http_url();
    grpc_ = node_.grpc_url();
    ASSERT_FALSE(http_.empty() || grpc_.empty()) << node_.log();
  }
  std::string Key(const std::string& key, const std::string& group = "users") const {
    return http_ + "/v1/groups/" + group + "/" + key;
  }
  // Runs the packice CLI with --url `url`; its exit code, output in `*out`.
  int Cli(const std::string& url, std::vector<std::string> args, std::string* out,
          const std::string& stdin_data = "") {
    args.insert(args.begin(), {BinPath("packice"), "--url", url});
    return RunProgram(args, out, stdin_data);
  }

  OriginServer origin_;
  Daemon node_;
  std::string http_, grpc_;
};

TEST_F(GroupNodeTest, HttpMissThenHit) {
  origin_.Put("users/42", "alice");
  StartNode();
  Reply r = Http("GET", Key("42"));
  ASSERT_EQ(r.status, 200) << r.body << r.error;
  EXPECT_EQ(r.body, "alice");
  EXPECT_TRUE(r.Has("x-packice-cache: miss")) << r.headers;
  r = Http("GET", Key("42"));
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "alice");
  EXPECT_TRUE(r.Has("x-packice-cache: hit")) << r.headers;
  EXPECT_EQ(origin_.Requests("users/42"), 1);

  r = Http("GET", Key("nobody"));
  EXPECT_EQ(r.status, 404);
  EXPECT_TRUE(r.Has("x-packice-error: not_found"));
  r = Http("GET", Key("42", "nogroup"));
  EXPECT_EQ(r.status, 404) << r.body;
  EXPECT_NE(r.body.find("no cache group 'nogroup'"), std::string::npos) << r.body;
  r = Http("GET", Key("42", "bad%20name"));
  EXPECT_EQ(r.status, 400) << r.body;

  // Stats and the list.
  r = Http("GET", http_ + "/v1/groups/users");
  ASSERT_EQ(r.status, 200);
  auto stats = nlohmann::json::parse(r.body);
  EXPECT_EQ(stats["hits"], 1);
  EXPECT_EQ(stats["loads"], 2);
  r = Http("GET", http_ + "/v1/groups");
  ASSERT_EQ(r.status, 200);
  auto list = nlohmann::json::parse(r.body);
  ASSERT_EQ(list["groups"].size(), 1u);
  EXPECT_EQ(list["groups"][0]["name"], "users");
  EXPECT_EQ(list["groups"][0]["origin"], origin_.url("users/{key}"));
}

TEST_F(GroupNodeTest, HttpSetDeleteAndLimits) {
  StartNode();
  const std::string v = "set over http";
  Reply r = Http("PUT", Key("k/with/slashes"), &v, {"X-Packice-TTL: 1h"});
  ASSERT_EQ(r.status, 204) << r.body;
  r = Http("GET", Key("k/with/slashes"));
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.body, v);
  EXPECT_TRUE(r.Has("x-packice-cache: hit"));
  r = Http("DELETE", Key("k/with/slashes"));
  EXPECT_EQ(r.status, 204);
  r = Http("GET", Key("k/with/slashes"));
  EXPECT_EQ(r.status, 404);  // gone, and the origin has no such file
  const std::string big(1024 * 1024 + 1, 'x');
  r = Http("PUT", Key("big"), &big);
  EXPECT_EQ(r.status, 413) << r.body;
  r = Http("PUT", Key("ttl"), &v, {"X-Packice-TTL: soon"});
  EXPECT_EQ(r.status, 400) << r.body;
  r = Http("POST", Key("k"), &v);
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(origin_.Requests(), 1);  // only the GET after the delete
}

TEST_F(GroupNodeTest, ConcurrentMissesOfOneKeyLoadOnce) {
  origin_.Put("users/hot", "hot value");
  origin_.Delay("users/hot", 0.5);  // every GET arrives while the load runs
  StartNode();
  constexpr int kClients = 200;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  std::mutex mu;
  std::string first_error;
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&] {
      Reply r = Http("GET", Key("hot"));
      if (r.status == 200 && r.body == "hot value") {
        ok++;
      } else {
        std::lock_guard<std::mutex> lock(mu);
        if (first_error.empty()) first_error = std::to_string(r.status) + " " + r.body + r.error;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok, kClients) << first_error;
  EXPECT_EQ(origin_.Requests("users/hot"), 1) << origin_.log();
}

TEST_F(GroupNodeTest, OriginErrorsReachTheClientAndAreNotCached) {
  origin_.FailWith("users/7", 500, "database down");
  StartNode();
  Reply r = Http("GET", Key("7"));
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_TRUE(r.Has("x-packice-error: unavailable")) << r.headers;
  EXPECT_NE(r.body.find("database down"), std::string::npos) << r.body;
  origin_.Heal("users/7");
  origin_.Put("users/7", "fixed");
  r = Http("GET", Key("7"));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, "fixed");
  EXPECT_EQ(origin_.Requests("users/7"), 2);
}

TEST_F(GroupNodeTest, CliOverHttpAndGrpc) {
  origin_.Put("users/1", "from origin");
  StartNode();
  for (const std::string& url : {http_, grpc_}) {
    SCOPED_TRACE(url);
    std::string out;
    ASSERT_EQ(Cli(url, {"group", "get", "users", "1"}, &out), 0) << out;
    EXPECT_EQ(out, "from origin");
    ASSERT_EQ(Cli(url, {"group", "set", "users", "cli", "typed value", "--ttl", "1h"}, &out), 0)
        << out;
    ASSERT_EQ(Cli(url, {"group", "get", "users", "cli"}, &out), 0) << out;
    EXPECT_EQ(out, "typed value");
    ASSERT_EQ(Cli(url, {"group", "set", "users", "piped", "-"}, &out, "from stdin"), 0) << out;
    ASSERT_EQ(Cli(url, {"group", "get", "users", "piped"}, &out), 0) << out;
    EXPECT_EQ(out, "from stdin");
    ASSERT_EQ(Cli(url, {"group", "del", "users", "cli"}, &out), 0) << out;
    EXPECT_EQ(Cli(url, {"group", "get", "users", "cli"}, &out), 1);
    EXPECT_NE(out.find("packice: not_found: "), std::string::npos) << out;
    EXPECT_EQ(Cli(url, {"group", "get", "nogroup", "x"}, &out), 1);
    EXPECT_NE(out.find("no cache group 'nogroup'"), std::string::npos) << out;
    ASSERT_EQ(Cli(url, {"group", "stats", "users"}, &out), 0) << out;
    EXPECT_NE(out.find("group: users\n"), std::string::npos) << out;
    EXPECT_NE(out.find("\nhits: "), std::string::npos) << out;
    ASSERT_EQ(Cli(url, {"group", "ls"}, &out), 0) << out;
    EXPECT_NE(out.find("users\tcapacity=67108864"), std::string::npos) << out;
  }
  std::string out;
  EXPECT_EQ(Cli(node_.url(), {"group", "get", "users", "1"}, &out), 1);
  EXPECT_NE(out.find("served over HTTP and gRPC"), std::string::npos) << out;
  EXPECT_NE(out.find("--url http://"), std::string::npos) << out;
  EXPECT_EQ(Cli(http_, {"group", "get", "users"}, &out), 2) << out;  // usage: no KEY
}

TEST_F(GroupNodeTest, MetricsShowEveryGroup) {
  origin_.Put("users/m", "v");
  StartNode({"--group", "sessions="});  // a second group, without an origin
  ASSERT_EQ(Http("GET", Key("m")).status, 200);
  ASSERT_EQ(Http("GET", Key("m")).status, 200);
  Reply r = Http("GET", http_ + "/metrics");
  ASSERT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("packice_group_hits_total{group=\"users\"} 1\n"), std::string::npos)
      << r.body;
  EXPECT_NE(r.body.find("packice_group_loads_total{group=\"users\"} 1\n"), std::string::npos);
  EXPECT_NE(r.body.find("packice_group_hits_total{group=\"sessions\"} 0\n"), std::string::npos);
  EXPECT_EQ(Http("GET", Key("x", "sessions")).status, 404);  // no origin: only Set values
}

TEST_F(GroupNodeTest, ConfigFileGroups) {
  origin_.Put("items/a", "item a");
  TempDir dir;
  const std::string config = dir.path() + "/packice.toml";
  std::ofstream(config) << "[groups.items]\n"
                           "capacity = \"8M\"\n"
                           "policy = \"lru\"\n"
                           "ttl = \"1h\"\n"
                           "load_timeout = \"500ms\"\n"
                           "max_value = \"64K\"\n"
                           "origin = \""
                        << origin_.url("items/{key}") << "\"\n";
  StartNode({"--config", config});
  Reply r = Http("GET", Key("a", "items"));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, "item a");
  r = Http("GET", http_ + "/v1/groups");
  auto list = nlohmann::json::parse(r.body);
  ASSERT_EQ(list["groups"].size(), 2u) << r.body;  // items (file) and users (flag)
  EXPECT_EQ(list["groups"][0]["name"], "items");
  EXPECT_EQ(list["groups"][0]["capacity_bytes"], 8 << 20);
  EXPECT_EQ(list["groups"][0]["policy"], "lru");
  EXPECT_EQ(list["groups"][0]["ttl_ms"], 3'600'000);
  EXPECT_EQ(list["groups"][0]["max_value_bytes"], 64 << 10);
  EXPECT_EQ(list["groups"][0]["load_timeout_ms"], 500);
  // A load past load_timeout: 504, with the exact code in X-Packice-Error.
  origin_.Put("items/slow", "late");
  origin_.Delay("items/slow", 3);
  r = Http("GET", Key("slow", "items"));
  EXPECT_EQ(r.status, 504) << r.body;
  EXPECT_TRUE(r.Has("x-packice-error: timeout")) << r.headers;
}

TEST_F(GroupNodeTest, BadGroupSettingsStopTheNodeWithOneLine) {
  TempDir dir;
  const std::string config = dir.path() + "/bad.toml";
  std::ofstream(config) << "[groups.items]\ncapcity = \"8M\"\n";
  std::string out;
  EXPECT_EQ(RunProgram(PackicedArgv(dir.path(), {"--config", config}), &out), 2);
  EXPECT_NE(out.find("bad.toml:2:1: groups.items.capcity: unknown key (did you mean capacity?)"),
            std::string::npos)
      << out;
  EXPECT_EQ(RunProgram(PackicedArgv(dir.path(), {"--group", "users"}), &out), 2);
  EXPECT_NE(out.find("--group wants NAME=ORIGIN_TEMPLATE"), std::string::npos) << out;
  EXPECT_EQ(RunProgram(PackicedArgv(dir.path(), {"--group", "users=http://o/users"}), &out), 2);
  EXPECT_NE(out.find("has no {key}"), std::string::npos) << out;
  EXPECT_EQ(RunProgram(PackicedArgv(dir.path(), {"--group", "a/b=http://o/{key}"}), &out), 2);
  EXPECT_NE(out.find("bad cache group name 'a/b'"), std::string::npos) << out;
}

}  // namespace
}  // namespace packice
