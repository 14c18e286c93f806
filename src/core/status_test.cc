#include "packice/status.h"

#include <gtest/gtest.h>

namespace packice {
namespace {

TEST(StatusTest, OkHasNoMessage) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kOk);
  EXPECT_EQ(s.ToString(), "ok");
}

TEST(StatusTest, ErrorCarriesCodeAndMessage) {
  Status s = NotFound("no object 'x'");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_EQ(s.ToString(), "not_found: no object 'x'");
}

TEST(StatusTest, CodesAreStable) {
  // These numbers cross process boundaries; changing one breaks every client.
  EXPECT_EQ(static_cast<int>(StatusCode::kNotFound), 1);
  EXPECT_EQ(static_cast<int>(StatusCode::kLeaseExpired), 4);
  EXPECT_EQ(static_cast<int>(StatusCode::kOutOfCapacity), 5);
  EXPECT_EQ(static_cast<int>(StatusCode::kProtocolError), 9);
  EXPECT_EQ(static_cast<int>(StatusCode::kUnimplemented), 13);
  EXPECT_EQ(StatusCodeName(StatusCode::kUnimplemented), "unimplemented");
  EXPECT_EQ(static_cast<int>(StatusCode::kDigestMismatch), 14);
  EXPECT_EQ(StatusCodeName(StatusCode::kDigestMismatch), "digest_mismatch");
  EXPECT_EQ(static_cast<int>(StatusCode::kOutOfRange), 15);
  EXPECT_EQ(StatusCodeName(StatusCode::kOutOfRange), "out_of_range");
  EXPECT_EQ(static_cast<int>(StatusCode::kDataLoss), 16);
  EXPECT_EQ(StatusCodeName(StatusCode::kDataLoss), "data_loss");
  EXPECT_FALSE(StatusCodeFromInt(17).has_value());
  EXPECT_FALSE(StatusCodeFromInt(-1).has_value());
  EXPECT_EQ(StatusCodeFromInt(3), StatusCode::kWrongState);
}

Result<int> Half(int x) {
  if (x % 2 != 0) return InvalidArgument("odd");
  return x / 2;
}

Result<int> Quarter(int x) {
  PACKICE_ASSIGN_OR_RETURN(int h, Half(x));
  return Half(h);
}

TEST(ResultTest, AssignOrReturnPropagates) {
  EXPECT_EQ(*Quarter(8), 2);
  EXPECT_EQ(Quarter(6).status().code(), StatusCode::kInvalidArgument);
}

TEST(ResultTest, OkStatusIsNotAValue) {
  Result<int> r{Status::Ok()};
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInternal);
}

}  // namespace
}  // namespace packice
