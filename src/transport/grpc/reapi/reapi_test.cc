// The REAPI remote cache over a real gRPC port and real generated stubs: capabilities, the CAS
// calls, the action cache, tokens and instance names. ByteStream: bytestream_test.cc.
#include <gtest/gtest.h>

#include <chrono>

#include "transport/grpc/reapi/reapi_testing.h"

namespace packice::testing {
namespace {

using ::grpc::ClientContext;
using ::grpc::StatusCode;

class ReapiTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_OK(node_.started()); }
  ReapiNode node_;
};

TEST_F(ReapiTest, CapabilitiesDescribeACacheWithoutExecution) {
  ClientContext context;
  rex::GetCapabilitiesRequest request;
  request.set_instance_name("any/instance");
  rex::ServerCapabilities caps;
  ASSERT_TRUE(node_.capabilities().GetCapabilities(&context, request, &caps).ok());
  const rex::CacheCapabilities& cache = caps.cache_capabilities();
  ASSERT_EQ(cache.digest_functions_size(), 2);
  EXPECT_EQ(cache.digest_functions(0), rex::DigestFunction::SHA256);
  EXPECT_EQ(cache.digest_functions(1), rex::DigestFunction::BLAKE3);
  EXPECT_TRUE(cache.action_cache_update_capabilities().update_enabled());
  EXPECT_EQ(cache.max_batch_total_size_bytes(), int64_t{rpc::kDefaultMaxBatchBytes});
  EXPECT_LT(cache.max_batch_total_size_bytes(), rpc::kMaxMessageBytes);
  EXPECT_EQ(cache.symlink_absolute_path_strategy(), rex::SymlinkAbsolutePathStrategy::ALLOWED);
  EXPECT_EQ(cache.supported_compressors_size(), 0);  // identity only, never listed
  EXPECT_FALSE(caps.has_execution_capabilities());
  EXPECT_EQ(caps.low_api_version().major(), 2);
  EXPECT_EQ(caps.low_api_version().minor(), 0);
  EXPECT_EQ(caps.high_api_version().major(), 2);
  EXPECT_EQ(caps.high_api_version().minor(), 3);
}

rex::FindMissingBlobsResponse FindMissing(ReapiNode& node, const std::vector<rex::Digest>& ds,
                                          ::grpc::Status* status,
                                          rex::DigestFunction::Value function = {}) {
  ClientContext context;
  rex::FindMissingBlobsRequest request;
  request.set_digest_function(function);
  for (const auto& d : ds) *request.add_blob_digests() = d;
  rex::FindMissingBlobsResponse response;
  *status = node.storage().FindMissingBlobs(&context, request, &response);
  return response;
}

TEST_F(ReapiTest, FindMissingBlobsOfPresentAbsentAndInvalidDigests) {
  const Digest present = node_.Put("present");
  const Digest absent = Sha("absent");
  ::grpc::Status status;
  auto response =
      FindMissing(node_, {ToProto(present), ToProto(absent), ToProto(Sha(""))}, &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(response.missing_blob_digests_size(), 1);  // the empty blob always exists
  EXPECT_EQ(response.missing_blob_digests(0).hash(), absent.hex());
  EXPECT_EQ(response.missing_blob_digests(0).size_bytes(), int64_t(absent.size));

  // BLAKE3 names another blob, even with the same hex.
  response = FindMissing(node_, {ToProto(present)}, &status, rex::DigestFunction::BLAKE3);
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(response.missing_blob_digests_size(), 1);

  rex::Digest bad = ToProto(present);
  bad.set_hash("ABC");
  FindMissing(node_, {ToProto(present), bad}, &status);
  EXPECT_EQ(status.error_code(), StatusCode::INVALID_ARGUMENT);
  bad = ToProto(present);
  bad.set_size_bytes(-1);
  FindMissing(node_, {bad}, &status);
  EXPECT_EQ(status.error_code(), StatusCode::INVALID_ARGUMENT);
  FindMissing(node_, {ToProto(present)}, &status, rex::DigestFunction::MD5);
  EXPECT_EQ(status.error_code(), StatusCode::INVALID_ARGUMENT);
}

// Behaviour only: its speed is measured by bench/cas_run.sh (docs/benchmarks.md), not here.
TEST_F(ReapiTest, FindMissingBlobsOfTenThousandDigestsKeepsTheirOrder) {
  std::vector<rex::Digest> digests;
  for (int i = 0; i < 10'000; ++i) {
    const std::string s = "blob " + std::to_string(i);
    digests.push_back(ToProto(i % 2 == 0 ? node_.Put(s) : Sha(s)));
  }
  ::grpc::Status status;
  auto response = FindMissing(node_, digests, &status);
  ASSERT_TRUE(status.ok());
  ASSERT_EQ(response.missing_blob_digests_size(), 5'000);
  for (int i = 0; i < 5'000; ++i) {
    ASSERT_EQ(response.missing_blob_digests(i).hash(), digests[2 * i + 1].hash()) << i;
  }
}

TEST_F(ReapiTest, BatchUpdateBlobsHasAStatusPerBlob) {
  ClientContext context;
  rex::BatchUpdateBlobsRequest request;
  auto add = [&](const rex::Digest& d, const std::string& data) {
    auto* r = request.add_requests();
    *r->mutable_digest() = d;
    r->set_data(data);
  };
  add(ToProto(Sha("good")), "good");
  add(ToProto(Sha("claimed")), "other!!");  // same size, other bytes
  add(ToProto(Sha("claimed")), "longer bytes");
  rex::Digest bad;
  bad.set_hash("xyz");
  add(bad, "x");
  rex::BatchUpdateBlobsResponse response;
  ASSERT_TRUE(node_.storage().BatchUpdateBlobs(&context, request, &response).ok());
  ASSERT_EQ(response.responses_size(), 4);
  EXPECT_EQ(response.responses(0).status().code(), 0);
  EXPECT_EQ(response.responses(0).digest().hash(), Sha("good").hex());
  for (int i = 1; i < 4; ++i) {
    EXPECT_EQ(response.responses(i).status().code(), int(StatusCode::INVALID_ARGUMENT)) << i;
  }
  EXPECT_EQ(node_.cas().blobs(), 1u);  // nothing of the mismatching blobs
  EXPECT_EQ(node_.cas().Get(Sha("good")), "good");
}

TEST_F(ReapiTest, BatchCallsSelectBlakeThreeByTheDigestFunction) {
  const std::string data = "hashed with BLAKE3";
  const Digest blake = Digest::Of(DigestAlgorithm::kBlake3, Bytes(data));
  ClientContext context;
  rex::BatchUpdateBlobsRequest update;
  update.set_digest_function(rex::DigestFunction::BLAKE3);
  auto* r = update.add_requests();
  *r->mutable_digest() = ToProto(blake);
  r->set_data(data);
  rex::BatchUpdateBlobsResponse updated;
  ASSERT_TRUE(node_.storage().BatchUpdateBlobs(&context, update, &updated).ok());
  EXPECT_EQ(updated.responses(0).status().code(), 0) << updated.responses(0).status().message();
  EXPECT_EQ(node_.cas().Get(blake), data);

  ::grpc::Status status;
  EXPECT_EQ(FindMissing(node_, {ToProto(blake)}, &status, rex::DigestFunction::BLAKE3)
                .missing_blob_digests_size(),
            0);
  EXPECT_EQ(FindMissing(node_, {ToProto(blake)}, &status).missing_blob_digests_size(), 1);

  ClientContext context2;
  rex::BatchReadBlobsRequest read;
  read.set_digest_function(rex::DigestFunction::BLAKE3);
  *read.add_digests() = ToProto(blake);
  rex::BatchReadBlobsResponse got;
  ASSERT_TRUE(node_.storage().BatchReadBlobs(&context2, read, &got).ok());
  EXPECT_EQ(got.responses(0).data(), data);
}

TEST_F(ReapiTest, BatchUpdateBlobsOverTheLimitIsRefusedWhole) {
  ClientContext context;
  rex::BatchUpdateBlobsRequest request;
  const size_t half = rpc::kDefaultMaxBatchBytes / 2 + 1;  // two of them: one byte over
  for (uint8_t seed : {1, 2}) {
    const std::string data = PatternString(half, seed);
    auto* r = request.add_requests();
    *r->mutable_digest() = ToProto(Sha(data));
    r->set_data(data);
  }
  rex::BatchUpdateBlobsResponse response;
  ::grpc::Status status = node_.storage().BatchUpdateBlobs(&context, request, &response);
  EXPECT_EQ(status.error_code(), StatusCode::INVALID_ARGUMENT) << status.error_message();
  EXPECT_EQ(node_.cas().blobs(), 0u);
}

TEST_F(ReapiTest, BatchReadBlobsHasAStatusPerBlob) {
  const Digest present = node_.Put("present bytes");
  ClientContext context;
  rex::BatchReadBlobsRequest request;
  *request.add_digests() = ToProto(present);
  *request.add_digests() = ToProto(Sha("absent"));
  *request.add_digests() = ToProto(Sha(""));
  request.add_digests()->set_hash("nothex");
  rex::BatchReadBlobsResponse response;
  ASSERT_TRUE(node_.storage().BatchReadBlobs(&context, request, &response).ok());
  ASSERT_EQ(response.responses_size(), 4);
  EXPECT_EQ(response.responses(0).status().code(), 0);
  EXPECT_EQ(response.responses(0).data(), "present bytes");
  EXPECT_EQ(response.responses(1).status().code(), int(StatusCode::NOT_FOUND));
  EXPECT_EQ(response.responses(1).digest().hash(), Sha("absent").hex());
  EXPECT_EQ(response.responses(2).status().code(), 0);
  EXPECT_EQ(response.responses(2).data(), "");
  EXPECT_EQ(response.responses(3).status().code(), int(StatusCode::INVALID_ARGUMENT));

  ClientContext context2;
  rex::BatchReadBlobsRequest big;
  rex::Digest huge = ToProto(present);
  huge.set_size_bytes(int64_t{1} << 40);
  *big.add_digests() = huge;
  EXPECT_EQ(node_.storage().BatchReadBlobs(&context2, big, &response).error_code(),
            StatusCode::INVALID_ARGUMENT);
}

// An action result naming an output file, an output directory's tree and stdout.
struct StoredAction {
  Digest action;
  rex::ActionResult result;
};

StoredAction MakeAction(ReapiNode& node, bool store_outputs) {
  StoredAction a;
  a.action = Sha("the action " + std::to_string(store_outputs));
  auto blob = [&](const std::string& data) { return store_outputs ? node.Put(data) : Sha(data); };
  rex::OutputFile* file = a.result.add_output_files();
  file->set_path("out/a.o");
  *file->mutable_digest() = ToProto(blob("object code"));
  rex::OutputDirectory* dir = a.result.add_output_directories();
  dir->set_path("out/gen");
  *dir->mutable_tree_digest() = ToProto(blob("a tree"));
  *a.result.mutable_stdout_digest() = ToProto(blob("the output"));
  a.result.set_exit_code(0);
  a.result.mutable_execution_metadata()->set_worker("test");
  return a;
}

::grpc::Status Update(ReapiNode& node, const StoredAction& a, rex::ActionResult* reply) {
  ClientContext context;
  rex::UpdateActionResultRequest request;
  *request.mutable_action_digest() = ToProto(a.action);
  *request.mutable_action_result() = a.result;
  return node.action_cache().UpdateActionResult(&context, request, reply);
}

::grpc::Status Get(ReapiNode& node, const Digest& action, rex::ActionResult* reply,
                   bool inline_outputs = false) {
  ClientContext context;
  rex::GetActionResultRequest request;
  *request.mutable_action_digest() = ToProto(action);
  request.set_inline_stdout(inline_outputs);
  if (inline_outputs) request.add_inline_output_files("out/a.o");
  return node.action_cache().GetActionResult(&context, request, reply);
}

TEST_F(ReapiTest, ActionCacheRoundTrip) {
  const StoredAction a = MakeAction(node_, true);
  rex::ActionResult reply;
  EXPECT_EQ(Get(node_, a.action, &reply).error_code(), StatusCode::NOT_FOUND);
  ASSERT_TRUE(Update(node_, a, &reply).ok());
  EXPECT_EQ(reply.SerializeAsString(), a.result.SerializeAsString());
  reply.Clear();
  ASSERT_TRUE(Get(node_, a.action, &reply).ok());
  EXPECT_EQ(reply.SerializeAsString(), a.result.SerializeAsString());
  EXPECT_TRUE(reply.stdout_raw().empty());  // not asked for

  reply.Clear();
  ASSERT_TRUE(Get(node_, a.action, &reply, /*inline_outputs=*/true).ok());
  EXPECT_EQ(reply.stdout_raw(), "the output");
  EXPECT_EQ(reply.output_files(0).contents(), "object code");
}

TEST_F(ReapiTest, AnActionResultWhoseOutputsAreMissingIsNotFound) {
  const StoredAction a = MakeAction(node_, false);  // its blobs are not in the CAS
  rex::ActionResult reply;
  ASSERT_TRUE(Update(node_, a, &reply).ok());
  ::grpc::Status status = Get(node_, a.action, &reply);
  EXPECT_EQ(status.error_code(), StatusCode::NOT_FOUND) << status.error_message();

  const StoredAction b = MakeAction(node_, true);
  ASSERT_TRUE(Update(node_, b, &reply).ok());
  ASSERT_TRUE(Get(node_, b.action, &reply).ok());
  node_.cas().Remove(Digest::Parse(b.result.stdout_digest().hash() + "/" +
                                   std::to_string(b.result.stdout_digest().size_bytes()))
                         .value());
  EXPECT_EQ(Get(node_, b.action, &reply).error_code(), StatusCode::NOT_FOUND);
}

TEST_F(ReapiTest, UpdateActionResultValidatesDigests) {
  StoredAction a = MakeAction(node_, true);
  a.result.mutable_output_files(0)->mutable_digest()->set_hash("short");
  rex::ActionResult reply;
  EXPECT_EQ(Update(node_, a, &reply).error_code(), StatusCode::INVALID_ARGUMENT);
  a = MakeAction(node_, true);
  ClientContext context;
  rex::UpdateActionResultRequest request;  // no action digest at all
  *request.mutable_action_result() = a.result;
  EXPECT_EQ(node_.action_cache().UpdateActionResult(&context, request, &reply).error_code(),
            StatusCode::INVALID_ARGUMENT);
}

TEST(ReapiOptionsTest, BearerTokenIsRequiredWhenSet) {
  ReapiNode node({.bearer_token = "s3cret"});
  ASSERT_OK(node.started());
  rex::GetCapabilitiesRequest request;
  rex::ServerCapabilities caps;
  {
    ClientContext context;
    EXPECT_EQ(node.capabilities().GetCapabilities(&context, request, &caps).error_code(),
              StatusCode::UNAUTHENTICATED);
  }
  {
    ClientContext context;
    context.AddMetadata("authorization", "Bearer s3cret");
    EXPECT_TRUE(node.capabilities().GetCapabilities(&context, request, &caps).ok());
  }
  std::string out;
  EXPECT_EQ(node.Read(ReadName(Sha("")), 0, 0, &out).error_code(), StatusCode::UNAUTHENTICATED);
}

TEST(ReapiOptionsTest, InstanceNamesCanBeRestricted) {
  ReapiNode node({.instance_names = {"", "main"}});
  ASSERT_OK(node.started());
  for (const auto& [instance, code] :
       std::vector<std::pair<std::string, StatusCode>>{{"", StatusCode::OK},
                                                       {"main", StatusCode::OK},
                                                       {"other", StatusCode::INVALID_ARGUMENT}}) {
    ClientContext context;
    rex::FindMissingBlobsRequest request;
    request.set_instance_name(instance);
    rex::FindMissingBlobsResponse response;
    EXPECT_EQ(node.storage().FindMissingBlobs(&context, request, &response).error_code(), code)
        << instance;
  }
  const Digest d = node.Put("x");
  std::string out;
  EXPECT_TRUE(node.Read(ReadName(d, "main"), 0, 0, &out).ok());
  EXPECT_EQ(node.Read(ReadName(d, "other"), 0, 0, &out).error_code(), StatusCode::INVALID_ARGUMENT);
}

}  // namespace
}  // namespace packice::testing
