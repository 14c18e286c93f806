// ByteStream over a real gRPC port: reads with offsets and limits, writes in chunks, a broken
// write resumed, a write of a blob the CAS holds, wrong offsets and names, the upload bounds.
#include <gtest/gtest.h>

#include "transport/grpc/reapi/reapi_testing.h"

namespace packice::testing {
namespace {

using ::grpc::ClientContext;
using ::grpc::StatusCode;

constexpr size_t kMiB = 1 << 20;

class ByteStreamTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_OK(node_.started()); }
  ReapiNode node_;
};

TEST_F(ByteStreamTest, ReadsRangesInChunksOfAtMostOneMiB) {
  const std::string data = PatternString(2 * kMiB + kMiB / 2 + 3, 7);
  const Digest d = node_.Put(data);
  std::string out;
  int chunks = 0;
  ASSERT_TRUE(node_.Read(ReadName(d), 0, 0, &out, &chunks).ok());
  EXPECT_EQ(out, data);
  EXPECT_EQ(chunks, 3);
  EXPECT_LE(node_.cas().max_fetch(), kMiB);  // never the whole blob at once
  ASSERT_TRUE(node_.Read(ReadName(d, "some/instance"), 1000, 10, &out).ok());
  EXPECT_EQ(out, data.substr(1000, 10));
  ASSERT_TRUE(node_.Read(ReadName(d), int64_t(data.size() - 1), 0, &out).ok());  // last byte
  EXPECT_EQ(out, data.substr(data.size() - 1));
  ASSERT_TRUE(node_.Read(ReadName(d), int64_t(data.size() - 5), 100, &out).ok());  // clamped
  EXPECT_EQ(out, data.substr(data.size() - 5));
  ASSERT_TRUE(node_.Read(ReadName(d), int64_t(data.size()), 0, &out, &chunks).ok());  // the end
  EXPECT_EQ(out, "");
  EXPECT_EQ(node_.Read(ReadName(d), int64_t(data.size() + 1), 0, &out).error_code(),
            StatusCode::OUT_OF_RANGE);
  EXPECT_EQ(node_.Read(ReadName(d), -1, 0, &out).error_code(), StatusCode::OUT_OF_RANGE);
  EXPECT_EQ(node_.Read(ReadName(d), 0, -1, &out).error_code(), StatusCode::INVALID_ARGUMENT);
}

TEST_F(ByteStreamTest, ReadsTheEmptyBlobAndNotAMissingOne) {
  std::string out = "x";
  ASSERT_TRUE(node_.Read(ReadName(Sha("")), 0, 0, &out).ok());  // never stored, always there
  EXPECT_EQ(out, "");
  EXPECT_EQ(node_.Read(ReadName(Sha("absent")), 0, 0, &out).error_code(), StatusCode::NOT_FOUND);
  EXPECT_EQ(node_.Read(ReadName(Sha("absent")), 6, 0, &out).error_code(), StatusCode::NOT_FOUND);
}

TEST_F(ByteStreamTest, RefusesMalformedResourceNames) {
  const Digest d = node_.Put("abc");
  const std::string hex = d.hex();
  std::string out;
  for (const std::string& name :
       {"../blobs/" + d.ToBareString(), "a/../blobs/" + d.ToBareString(),
        "blobs/" + hex.substr(1) + "/3", "blobs/" + hex, "blobs/" + hex + "/3/..",
        "uploads/u/blobs/" + d.ToBareString(), "/blobs/" + d.ToBareString()}) {
    EXPECT_EQ(node_.Read(name, 0, 0, &out).error_code(), StatusCode::INVALID_ARGUMENT) << name;
  }
  int64_t committed = 0;
  for (const std::string& name : {"uploads/../blobs/" + d.ToBareString(), "uploads/u/blobs/" + hex,
                                  "blobs/" + d.ToBareString(), "uploads/u/blobs/" + hex + "0/3"}) {
    EXPECT_EQ(node_.Write(name, "abc", 0, 10, true, &committed).error_code(),
              StatusCode::INVALID_ARGUMENT)
        << name;
  }
}

TEST_F(ByteStreamTest, WritesInSeveralChunks) {
  const std::string data = PatternString(3 * kMiB + 12345, 9);
  const Digest d = Sha(data);
  int64_t committed = 0;
  ::grpc::Status status =
      node_.Write(UploadName(d, "u-1", "ci/main"), data, 0, kMiB, true, &committed);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(committed, int64_t(data.size()));
  EXPECT_EQ(node_.cas().Get(d), data);
  bool complete = false;
  ASSERT_TRUE(node_.Query(UploadName(d, "u-1", "ci/main"), &committed, &complete).ok());
  EXPECT_TRUE(complete);
  EXPECT_EQ(committed, int64_t(data.size()));

  const std::string small = "a small blob, staged in memory";  // with metadata after the size
  ASSERT_TRUE(
      node_.Write(UploadName(Sha(small)) + "/meta/data", small, 0, 7, true, &committed).ok());
  EXPECT_EQ(node_.cas().Get(Sha(small)), small);
}

TEST_F(ByteStreamTest, ABrokenWriteIsResumedAtTheCommittedSize) {
  const std::string data = PatternString(4 * kMiB, 11);
  const Digest d = Sha(data);
  const std::string name = UploadName(d, "resume-me");
  {
    ClientContext context;
    bs::WriteResponse response;
    auto writer = node_.bytestream().Write(&context, &response);
    for (size_t i = 0; i < 2; ++i) {
      bs::WriteRequest request;
      if (i == 0) request.set_resource_name(name);
      request.set_write_offset(int64_t(i * kMiB));
      request.set_data(data.substr(i * kMiB, kMiB));
      ASSERT_TRUE(writer->Write(request));
    }
    // Once the node holds both chunks, the client goes away mid-upload.
    ASSERT_TRUE(WaitUntil([&] {
      int64_t committed = 0;
      bool complete = false;
      return node_.Query(name, &committed, &complete).ok() && committed == int64_t(2 * kMiB);
    }));
    context.TryCancel();
    EXPECT_EQ(writer->Finish().error_code(), StatusCode::CANCELLED);
  }
  int64_t committed = 0;
  bool complete = true;
  ASSERT_TRUE(node_.Query(name, &committed, &complete).ok());
  EXPECT_EQ(committed, int64_t(2 * kMiB));
  EXPECT_FALSE(complete);
  EXPECT_FALSE(node_.cas().Get(d).has_value());

  // Resuming anywhere but at the committed size is refused; the upload stays.
  EXPECT_EQ(
      node_.Write(name, data.substr(kMiB), int64_t(kMiB), kMiB, true, &committed).error_code(),
      StatusCode::INVALID_ARGUMENT);
  ASSERT_TRUE(node_.Query(name, &committed, &complete).ok());
  EXPECT_EQ(committed, int64_t(2 * kMiB));

  // A stream that ends without finish_write keeps what it sent too.
  ::grpc::Status status =
      node_.Write(name, data.substr(2 * kMiB, kMiB), int64_t(2 * kMiB), kMiB, false, &committed);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(committed, int64_t(3 * kMiB));

  status = node_.Write(name, data.substr(3 * kMiB), int64_t(3 * kMiB), kMiB, true, &committed);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(committed, int64_t(data.size()));
  EXPECT_EQ(node_.cas().Get(d), data);
  ASSERT_TRUE(node_.Query(name, &committed, &complete).ok());
  EXPECT_TRUE(complete);
}

TEST_F(ByteStreamTest, BlakeThreeBlobsTravelUnderTheirOwnNames) {
  const std::string data = PatternString(kMiB + 17, 4);
  const Digest blake = Digest::Of(DigestAlgorithm::kBlake3, Bytes(data));
  int64_t committed = 0;
  ASSERT_TRUE(node_.Write(UploadName(blake), data, 0, kMiB / 2, true, &committed).ok());
  EXPECT_EQ(committed, int64_t(data.size()));
  EXPECT_EQ(node_.cas().Get(blake), data);
  std::string out;
  ASSERT_TRUE(node_.Read(ReadName(blake), 0, 0, &out).ok());
  EXPECT_EQ(out, data);
  // The same hex without "blake3/" is a SHA-256 digest: another blob, which is absent.
  Digest sha_named = blake;
  sha_named.algorithm = DigestAlgorithm::kSha256;
  EXPECT_EQ(node_.Read(ReadName(sha_named), 0, 0, &out).error_code(), StatusCode::NOT_FOUND);
  // BLAKE3 bytes uploaded under the SHA-256 name do not match it.
  EXPECT_EQ(node_.Write(UploadName(sha_named), data, 0, kMiB, true, &committed).error_code(),
            StatusCode::INVALID_ARGUMENT);
}

TEST_F(ByteStreamTest, AWriteOfAStoredBlobEndsAtOnceWithItsSize) {
  const std::string data = PatternString(2 * kMiB, 5);
  const Digest d = node_.Put(data);
  int64_t committed = 0;
  // Only the first chunk is sent before the node answers.
  ASSERT_TRUE(node_.Write(UploadName(d), data.substr(0, kMiB), 0, kMiB, false, &committed).ok());
  EXPECT_EQ(committed, int64_t(data.size()));
  ASSERT_TRUE(node_.Write(UploadName(Sha("")), "", 0, kMiB, true, &committed).ok());
  EXPECT_EQ(committed, 0);
}

TEST_F(ByteStreamTest, WrongOffsetsAndMismatchingBytesAreInvalid) {
  const std::string data = "0123456789";
  const Digest d = Sha(data);
  int64_t committed = 0;
  bool complete = false;
  // The first offset of a new upload is 0.
  EXPECT_EQ(node_.Write(UploadName(d), data, 5, 10, true, &committed).error_code(),
            StatusCode::INVALID_ARGUMENT);
  // Within a stream, each offset follows the bytes sent before it.
  {
    ClientContext context;
    bs::WriteResponse response;
    auto writer = node_.bytestream().Write(&context, &response);
    bs::WriteRequest request;
    request.set_resource_name(UploadName(d));
    request.set_data("0123");
    writer->Write(request);
    request.clear_resource_name();
    request.set_write_offset(5);  // skips a byte
    request.set_data("56789");
    request.set_finish_write(true);
    writer->Write(request);
    writer->WritesDone();
    EXPECT_EQ(writer->Finish().error_code(), StatusCode::INVALID_ARGUMENT);
  }
  ASSERT_TRUE(node_.Query(UploadName(d), &committed, &complete).ok());
  EXPECT_EQ(committed, 4);  // what came before the wrong offset

  // Bytes that are not the digest's: nothing stored, the upload gone.
  const std::string name = UploadName(d, "u-2");
  EXPECT_EQ(node_.Write(name, "9876543210", 0, 4, true, &committed).error_code(),
            StatusCode::INVALID_ARGUMENT);
  EXPECT_FALSE(node_.cas().Get(d).has_value());
  EXPECT_EQ(node_.Query(name, &committed, &complete).error_code(), StatusCode::NOT_FOUND);
  // More bytes than the digest's size, and finishing early.
  EXPECT_EQ(node_.Write(UploadName(d, "u-3"), data + "x", 0, 20, true, &committed).error_code(),
            StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(node_.Write(UploadName(d, "u-4"), "01234", 0, 20, true, &committed).error_code(),
            StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(node_.Query(UploadName(Sha("never")), &committed, &complete).error_code(),
            StatusCode::NOT_FOUND);
}

TEST(ByteStreamLimitsTest, UploadsBeyondTheStagingBoundAreResourceExhausted) {
  rpc::ReapiOptions options;
  options.uploads.max_staged_bytes = 3 * kMiB;
  ReapiNode node(options);
  ASSERT_OK(node.started());
  const std::string big = PatternString(4 * kMiB, 1);
  int64_t committed = 0;
  EXPECT_EQ(node.Write(UploadName(Sha(big)), big, 0, kMiB, true, &committed).error_code(),
            StatusCode::RESOURCE_EXHAUSTED);
  // An upload being written holds 2 MiB of the 3: a second one of 2 MiB has no room.
  const std::string a = PatternString(2 * kMiB, 2);
  ClientContext context;
  bs::WriteResponse response;
  auto writer = node.bytestream().Write(&context, &response);
  bs::WriteRequest request;
  request.set_resource_name(UploadName(Sha(a)));
  request.set_data(a.substr(0, 10));
  ASSERT_TRUE(writer->Write(request));
  ASSERT_TRUE(WaitUntil([&] {
    bool complete = false;
    return node.Query(UploadName(Sha(a)), &committed, &complete).ok();
  }));
  const std::string b = PatternString(2 * kMiB, 3);
  EXPECT_EQ(node.Write(UploadName(Sha(b)), b, 0, kMiB, true, &committed).error_code(),
            StatusCode::RESOURCE_EXHAUSTED);
  context.TryCancel();
  writer->Finish();
}

}  // namespace
}  // namespace packice::testing
