// TransportTokens: one use each, expiry, unknown strings, the bound on the table.
#include "services/cas/transport_tokens.h"

#include <gtest/gtest.h>

#include <set>

#include "testing.h"

namespace packice {
namespace {

TEST(TransportTokensTest, EachTokenIsGoodOnceUntilItExpires) {
  auto clock = std::make_shared<testing::FakeClock>();
  TransportTokens tokens({.ttl = std::chrono::seconds(60), .clock = clock});
  const std::string a = tokens.Issue();
  const std::string b = tokens.Issue();
  EXPECT_EQ(a.size(), 32u);
  EXPECT_EQ(a.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_NE(a, b);
  EXPECT_TRUE(tokens.ConsumeTransportToken(a));
  EXPECT_FALSE(tokens.ConsumeTransportToken(a));
  EXPECT_FALSE(tokens.ConsumeTransportToken("not a token"));
  EXPECT_FALSE(tokens.ConsumeTransportToken(""));
  clock->Advance(std::chrono::seconds(61));
  EXPECT_FALSE(tokens.ConsumeTransportToken(b));  // expired
}

TEST(TransportTokensTest, TheTableIsBounded) {
  TransportTokens tokens({.max_tokens = 4});
  const std::string first = tokens.Issue();
  std::set<std::string> later;
  for (int i = 0; i < 10; ++i) later.insert(tokens.Issue());
  EXPECT_LE(tokens.size(), 4u);
  EXPECT_FALSE(tokens.ConsumeTransportToken(first));  // dropped for newer ones
  const std::string newest = tokens.Issue();
  EXPECT_TRUE(tokens.ConsumeTransportToken(newest));
}

}  // namespace
}  // namespace packice
