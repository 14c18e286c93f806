// packice.rpc.CasNegotiation over a real gRPC port: a stream of digest batches answered with
// the missing ones, malformed digests, and one-time transport tokens.
#include "transport/grpc/cas_negotiation_service.h"

#include <gtest/gtest.h>

#include "transport/grpc/reapi/reapi_testing.h"

namespace packice::testing {
namespace {

using ::grpc::ClientContext;
using ::grpc::StatusCode;

class CasNegotiationTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_OK(node_.started()); }
  ReapiNode node_;
};

TEST_F(CasNegotiationTest, NegotiateBlobsAnswersEachBatchWithItsMissingDigests) {
  ClientContext context;
  auto stream = node_.negotiation().NegotiateBlobs(&context);
  const Digest a = node_.Put("a");
  const Digest b = Sha("b");

  rpc::NegotiateRequest request;
  request.add_digests(a.ToString());
  request.add_digests(b.ToBareString());  // the bare form is SHA-256
  request.add_digests(Digest::Empty(DigestAlgorithm::kBlake3).ToString());
  ASSERT_TRUE(stream->Write(request));
  rpc::NegotiateResponse response;
  ASSERT_TRUE(stream->Read(&response));
  EXPECT_EQ(response.checked(), 3u);
  ASSERT_EQ(response.missing_size(), 1);
  EXPECT_EQ(response.missing(0), b.ToString());

  // A large batch, checked by the pool, keeps its order.
  request.Clear();
  std::vector<std::string> expected;
  for (int i = 0; i < 3000; ++i) {
    const std::string s = "blob " + std::to_string(i);
    const Digest d = i % 3 == 0 ? node_.Put(s) : Sha(s);
    request.add_digests(d.ToString());
    if (i % 3 != 0) expected.push_back(d.ToString());
  }
  ASSERT_TRUE(stream->Write(request));
  ASSERT_TRUE(stream->Read(&response));
  EXPECT_EQ(response.checked(), 3000u);
  EXPECT_EQ(std::vector<std::string>(response.missing().begin(), response.missing().end()),
            expected);

  // A malformed digest ends the stream.
  request.Clear();
  request.add_digests("sha256:xyz/1");
  ASSERT_TRUE(stream->Write(request));
  EXPECT_FALSE(stream->Read(&response));
  stream->WritesDone();
  EXPECT_EQ(stream->Finish().error_code(), StatusCode::INVALID_ARGUMENT);
}

TEST_F(CasNegotiationTest, TransportTokensAreGoodOnce) {
  rpc::TransportDetails first;
  rpc::TransportDetails second;
  for (rpc::TransportDetails* details : {&first, &second}) {
    ClientContext context;
    ASSERT_TRUE(node_.negotiation()
                    .GetTransportDetails(&context, rpc::TransportDetailsRequest(), details)
                    .ok());
  }
  EXPECT_EQ(first.address(), "127.0.0.1:7777");
  EXPECT_EQ(first.token().size(), 32u);
  EXPECT_NE(first.token(), second.token());
  EXPECT_GT(first.token_ttl_ms(), 0);
  EXPECT_GE(first.concurrency(), 1u);
  EXPECT_TRUE(node_.tokens().ConsumeTransportToken(first.token()));
  EXPECT_FALSE(node_.tokens().ConsumeTransportToken(first.token()));
  EXPECT_TRUE(node_.tokens().ConsumeTransportToken(second.token()));
}

}  // namespace
}  // namespace packice::testing
