// HttpOrigin against a real HTTP origin (tests/origin.py): values, 404, 500, a timeout, an
// oversize body, a refused connection, key encoding, concurrent loads; and template checks.
#include "services/cache/http_origin.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "origin_server.h"
#include "testing.h"

namespace packice {
namespace {

using namespace std::chrono_literals;
using ::packice::testing::OriginServer;

class HttpOriginTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_OK(origin_.Start()); }
  std::shared_ptr<HttpOrigin> Make(HttpOriginOptions o = {}) {
    auto made = HttpOrigin::Create(origin_.url("users/{key}"), o);
    EXPECT_OK(made.status());
    return made.ok() ? *made : nullptr;
  }
  OriginServer origin_;
};

TEST_F(HttpOriginTest, LoadsValues) {
  origin_.Put("users/42", "alice");
  origin_.Put("users/empty", "");
  auto o = Make();
  ASSERT_OK_AND_ASSIGN(std::string v, o->Load("42"));
  EXPECT_EQ(v, "alice");
  ASSERT_OK_AND_ASSIGN(v, o->Load("empty"));
  EXPECT_EQ(v, "");
  ASSERT_OK_AND_ASSIGN(v, o->Getter()("42"));
  EXPECT_EQ(v, "alice");
  EXPECT_EQ(origin_.Requests("users/42"), 2);
}

TEST_F(HttpOriginTest, KeysArePercentEncodedIntoOneSegment) {
  origin_.Put("users/a b+c", "spaced");
  auto o = Make();
  EXPECT_EQ(o->UrlFor("a b/c"), origin_.url("users/a%20b%2Fc"));
  ASSERT_OK_AND_ASSIGN(std::string v, o->Load("a b+c"));
  EXPECT_EQ(v, "spaced");
}

TEST_F(HttpOriginTest, StatusesMapToCodes) {
  origin_.FailWith("users/broken", 500, "database down");
  origin_.FailWith("users/moved", 302);
  auto o = Make();
  Result<std::string> r = o->Load("nobody");
  EXPECT_CODE(r, kNotFound);
  r = o->Load("broken");
  EXPECT_CODE(r, kUnavailable);
  EXPECT_NE(r.status().message().find("500"), std::string_view::npos) << r.status().ToString();
  EXPECT_NE(r.status().message().find("database down"), std::string_view::npos);
  EXPECT_CODE(o->Load("moved"), kUnavailable);
}

TEST_F(HttpOriginTest, SlowOriginTimesOut) {
  origin_.Put("users/slow", "late");
  origin_.Delay("users/slow", 3);
  auto o = Make({.timeout = 300ms});
  const auto begin = std::chrono::steady_clock::now();
  EXPECT_CODE(o->Load("slow"), kTimeout);
  EXPECT_LT(std::chrono::steady_clock::now() - begin, 2500ms);
}

TEST_F(HttpOriginTest, OversizeValueIsAborted) {
  origin_.Put("users/big", std::string(100'000, 'b'));
  origin_.Put("users/fits", std::string(1000, 'f'));
  auto o = Make({.max_value_bytes = 1000});
  Result<std::string> r = o->Load("big");
  EXPECT_CODE(r, kInvalidArgument);
  EXPECT_NE(r.status().message().find("origin value too large"), std::string_view::npos)
      << r.status().ToString();
  ASSERT_OK_AND_ASSIGN(std::string v, o->Load("fits"));
  EXPECT_EQ(v.size(), 1000u);
}

TEST_F(HttpOriginTest, ConcurrentLoadsFromManyThreads) {
  for (int i = 0; i < 8; ++i) origin_.Put("users/k" + std::to_string(i), "v" + std::to_string(i));
  auto o = Make({.max_idle_handles = 2});
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 10; ++i) {
        const std::string k = "k" + std::to_string((t + i) % 8);
        Result<std::string> v = o->Load(k);
        if (v.ok() && *v == "v" + k.substr(1)) ok++;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok, 80);
}

TEST(HttpOriginNoServerTest, RefusedConnectionIsUnavailable) {
  // Port 1 on loopback: nothing listens (it is privileged, so no test binds it either).
  ASSERT_OK_AND_ASSIGN(auto o, HttpOrigin::Create("http://127.0.0.1:1/{key}", {.timeout = 5s}));
  EXPECT_CODE(o->Load("k"), kUnavailable);
}

TEST(HttpOriginTemplateTest, TemplatesAreChecked) {
  EXPECT_OK(ValidateOriginTemplate("http://origin:8000/users/{key}"));
  EXPECT_OK(ValidateOriginTemplate("https://[::1]/v1?id={key}&x=1"));
  for (const char* bad :
       {"", "origin:8000/{key}", "ftp://o/{key}", "http:///{key}", "http://o/users",
        "http://o/{key}/{key}", "http://o/{key}/{id}", "http://{key}.o/", "http://u:p@o/{key}",
        "http://o/a b/{key}", "http://o/{key}#frag"}) {
    Status s = ValidateOriginTemplate(bad);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(s.message().find("http://origin:8000/users/{key}"), std::string_view::npos)
        << s.ToString();
  }
  EXPECT_CODE(HttpOrigin::Create("http://o/users"), kInvalidArgument);
  EXPECT_EQ(PercentEncodeKey("a/b c~%"), "a%2Fb%20c~%25");
}

}  // namespace
}  // namespace packice
