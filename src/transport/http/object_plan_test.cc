#include "transport/http/object_plan.h"

#include <gtest/gtest.h>

#include <limits>
#include <vector>

namespace packice::http_plan {
namespace {

using namespace std::chrono_literals;
using Kind = GetPlan::Kind;

constexpr std::string_view kETag = "\"7-18c-memory\"";

PutPlan Put(std::vector<Header> headers, BodyFraming framing = {false, 10}, uint64_t max_body = 0,
            std::string key = "k") {
  return PlanPut(headers, std::move(key), framing, max_body);
}

TEST(FindTest, IgnoresCaseAndTakesTheFirst) {
  std::vector<Header> h = {{"Range", "bytes=1-2"}, {"RANGE", "bytes=3-4"}};
  EXPECT_EQ(Find(h, "range"), "bytes=1-2");
  EXPECT_EQ(Find(h, "If-Range"), std::nullopt);
}

TEST(PlanPutTest, ContentLengthSizesTheObject) {
  PutPlan p = Put({});
  ASSERT_FALSE(p.refusal);
  EXPECT_EQ(p.acquire.key, "k");
  EXPECT_EQ(p.acquire.mode, LeaseMode::kCreate);
  EXPECT_EQ(p.acquire.size, 10u);
  EXPECT_FALSE(p.chunked);
  EXPECT_FALSE(p.acquire.create.exclusive);
  EXPECT_EQ(p.limit, std::numeric_limits<uint64_t>::max());
}

TEST(PlanPutTest, NoLengthIs411ChunkedIsAccepted) {
  EXPECT_EQ(Put({}, {false, std::nullopt}).refusal->http_status, 411);
  PutPlan p = Put({}, {true, std::nullopt}, 1000);
  ASSERT_FALSE(p.refusal);
  EXPECT_TRUE(p.chunked);
  EXPECT_EQ(p.acquire.size, 0u);
  EXPECT_EQ(p.limit, 1000u);
}

TEST(PlanPutTest, OverMaxBodyIs413AtTheLimitIsNot) {
  EXPECT_FALSE(Put({}, {false, 1024}, 1024).refusal);
  PutPlan p = Put({}, {false, 1025}, 1024);
  ASSERT_TRUE(p.refusal);
  EXPECT_EQ(p.refusal->http_status, 413);
  EXPECT_EQ(p.refusal->error.code(), StatusCode::kInvalidArgument);
}

TEST(PlanPutTest, MetadataTtlAndExpect) {
  PutPlan p = Put({{"X-Packice-Meta-DType", "bf16"},
                   {"x-packice-meta-a", "1"},
                   {"X-Packice-TTL", "10m"},
                   {"Expect", "100-Continue"}});
  ASSERT_FALSE(p.refusal);
  EXPECT_EQ(p.acquire.create.meta.at("dtype"), "bf16");
  EXPECT_EQ(p.acquire.create.meta.at("a"), "1");
  EXPECT_EQ(p.acquire.create.ttl, std::optional<Duration>(10min));
  EXPECT_TRUE(p.expect_continue);
  EXPECT_FALSE(Put({{"X-Packice-TTLX", "bad"}}).refusal) << "only the exact name is the TTL";
}

TEST(PlanPutTest, BadTtlIs400) {
  PutPlan p = Put({{"X-Packice-TTL", "-1"}});
  ASSERT_TRUE(p.refusal);
  EXPECT_EQ(p.refusal->http_status, 400);
}

TEST(PlanPutTest, IfNoneMatchStarIsExclusiveAnythingElseIs412) {
  EXPECT_TRUE(Put({{"If-None-Match", "*"}}).acquire.create.exclusive);
  PutPlan p = Put({{"If-None-Match", kETag}});
  ASSERT_TRUE(p.refusal);
  EXPECT_EQ(p.refusal->http_status, 412);
}

TEST(PlanPutTest, LengthIsCheckedBeforeHeaders) {
  PutPlan p = Put({{"X-Packice-TTL", "bad"}}, {false, 2000}, 1000);
  EXPECT_EQ(p.refusal->http_status, 413);
}

TEST(PlanGetTest, WholeObject) {
  GetPlan p = PlanGet({}, kETag, 100);
  EXPECT_EQ(p.kind, Kind::kWhole);
  EXPECT_EQ(p.first, 0u);
  EXPECT_EQ(p.length, 100u);
  EXPECT_TRUE(p.content_range.empty());
}

TEST(PlanGetTest, RangeIs206WithContentRange) {
  std::vector<Header> h = {{"Range", "bytes=10-19"}};
  GetPlan p = PlanGet(h, kETag, 100);
  EXPECT_EQ(p.kind, Kind::kPartial);
  EXPECT_EQ(p.first, 10u);
  EXPECT_EQ(p.length, 10u);
  EXPECT_EQ(p.content_range, "bytes 10-19/100");
  std::vector<Header> suffix = {{"Range", "bytes=-5"}};
  EXPECT_EQ(PlanGet(suffix, kETag, 100).content_range, "bytes 95-99/100");
}

TEST(PlanGetTest, PastTheEndIs416) {
  std::vector<Header> h = {{"Range", "bytes=100-"}};
  GetPlan p = PlanGet(h, kETag, 100);
  EXPECT_EQ(p.kind, Kind::kUnsatisfiable);
  EXPECT_EQ(p.content_range, "bytes */100");
  ASSERT_TRUE(p.refusal);
  EXPECT_EQ(p.refusal->http_status, 416);
}

TEST(PlanGetTest, BadOrMultipleRangesSendTheWhole) {
  for (std::string_view r : {"bytes=a-b", "bytes=0-1,5-6", "items=0-1"}) {
    std::vector<Header> h = {{"Range", r}};
    EXPECT_EQ(PlanGet(h, kETag, 100).kind, Kind::kWhole) << r;
  }
}

TEST(PlanGetTest, IfNoneMatchIs304BeforeRange) {
  std::vector<Header> h = {{"If-None-Match", kETag}, {"Range", "bytes=200-"}};
  EXPECT_EQ(PlanGet(h, kETag, 100).kind, Kind::kNotModified);
  std::vector<Header> weak = {{"If-None-Match", "W/\"7-18c-memory\""}};
  EXPECT_EQ(PlanGet(weak, kETag, 100).kind, Kind::kNotModified);
  std::vector<Header> other = {{"If-None-Match", "\"8-18c-memory\""}};
  EXPECT_EQ(PlanGet(other, kETag, 100).kind, Kind::kWhole);
}

TEST(PlanGetTest, IfRangeAppliesTheRangeOnlyForTheSameETag) {
  std::vector<Header> same = {{"Range", "bytes=0-0"}, {"If-Range", kETag}};
  EXPECT_EQ(PlanGet(same, kETag, 100).kind, Kind::kPartial);
  std::vector<Header> other = {{"Range", "bytes=0-0"}, {"If-Range", "\"8-1-disk\""}};
  EXPECT_EQ(PlanGet(other, kETag, 100).kind, Kind::kWhole);
  std::vector<Header> past = {{"Range", "bytes=500-"}, {"If-Range", "\"8-1-disk\""}};
  EXPECT_EQ(PlanGet(past, kETag, 100).kind, Kind::kWhole) << "a stale If-Range is never 416";
}

}  // namespace
}  // namespace packice::http_plan
