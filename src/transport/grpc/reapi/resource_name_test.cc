// ByteStream resource names: the forms REAPI clients send, and the malformed ones refused.
#include "transport/grpc/reapi/resource_name.h"

#include <gtest/gtest.h>

#include "testing.h"

namespace packice::rpc {
namespace {

const std::string kHex(64, 'a');
const std::string kBlob = kHex + "/123";

TEST(ResourceNameTest, ReadNames) {
  ASSERT_OK_AND_ASSIGN(BlobResource r, ParseReadResource("blobs/" + kBlob));
  EXPECT_EQ(r.instance, "");
  EXPECT_EQ(r.digest.algorithm, DigestAlgorithm::kSha256);
  EXPECT_EQ(r.digest.hex(), kHex);
  EXPECT_EQ(r.digest.size, 123u);
  ASSERT_OK_AND_ASSIGN(r, ParseReadResource("main/ci/blobs/" + kBlob));
  EXPECT_EQ(r.instance, "main/ci");
  ASSERT_OK_AND_ASSIGN(r, ParseReadResource("x/blobs/blake3/" + kBlob));
  EXPECT_EQ(r.digest.algorithm, DigestAlgorithm::kBlake3);
  ASSERT_OK_AND_ASSIGN(r, ParseReadResource("blobs/sha256/" + kHex + "/0"));
  EXPECT_EQ(r.digest.size, 0u);
}

TEST(ResourceNameTest, WriteNames) {
  ASSERT_OK_AND_ASSIGN(BlobResource r, ParseWriteResource("uploads/3f1c-uuid/blobs/" + kBlob));
  EXPECT_EQ(r.instance, "");
  EXPECT_EQ(r.uuid, "3f1c-uuid");
  EXPECT_EQ(r.digest.size, 123u);
  ASSERT_OK_AND_ASSIGN(
      r, ParseWriteResource("a/b/uploads/u1/blobs/blake3/" + kBlob + "/some/metadata"));
  EXPECT_EQ(r.instance, "a/b");
  EXPECT_EQ(r.digest.algorithm, DigestAlgorithm::kBlake3);
  EXPECT_EQ(r.UploadKey(), "a/b/uploads/u1/blobs/" + r.digest.ToString());
  ASSERT_OK_AND_ASSIGN(BlobResource same,
                       ParseWriteResource("a/b/uploads/u1/blobs/blake3/" + kBlob));
  EXPECT_EQ(same.UploadKey(), r.UploadKey());  // metadata is not part of the upload
}

TEST(ResourceNameTest, MalformedNamesAreInvalid) {
  for (const std::string& bad : {
           std::string(""),
           "/blobs/" + kBlob,    // a leading slash
           "a//blobs/" + kBlob,  // an empty segment
           "../blobs/" + kBlob,  // path tricks
           "a/./blobs/" + kBlob,
           "blobs/" + kHex + "/123/..",
           "blobs/" + kHex + "/..",
           "blobs/" + std::string(63, 'a') + "/1",  // wrong hash length
           "blobs/" + std::string(65, 'a') + "/1",
           "blobs/" + std::string(64, 'A') + "/1",  // upper case
           "blobs/" + kHex,                         // no size
           "blobs/" + kHex + "/",
           "blobs/" + kHex + "/-1",
           "blobs/" + kHex + "/01",
           "blobs/" + kHex + "/1x",
           "blobs/" + kHex + "/99999999999999999999",
           "blobs/md5/" + kBlob,              // an unsupported function
           "blobs/" + kBlob + "/extra",       // reads take no metadata
           "compressed-blobs/zstd/" + kBlob,  // no compressor
           "uploads/u/blobs/" + kBlob,        // a write name is no read name
           "actions/blobs/" + kBlob,          // a keyword in the instance
           "no-blobs-here/" + kBlob,
       }) {
    EXPECT_CODE(ParseReadResource(bad), kInvalidArgument) << bad;
  }
  for (const std::string& bad : {
           "blobs/" + kBlob,             // a read name
           "uploads/blobs/" + kBlob,     // no uuid
           "uploads/u/" + kBlob,         // no "blobs"
           "uploads/../blobs/" + kBlob,  // path tricks in the uuid
           "uploads/u/blobs/../" + kBlob,
           "uploads/u u/blobs/" + kBlob,                // not a uuid
           "uploads/u/compressed-blobs/zstd/" + kBlob,  // no compressor
           "uploads/u/blobs/" + kHex,                   // no size
           "uploads/u/blobs/" + std::string(10, 'a') + "/5",
           "x/uploads/u/blobs/" + kBlob + "//meta",  // an empty segment
       }) {
    EXPECT_CODE(ParseWriteResource(bad), kInvalidArgument) << bad;
  }
  EXPECT_CODE(ParseReadResource(std::string(5000, 'a') + "/blobs/" + kBlob), kInvalidArgument);
}

}  // namespace
}  // namespace packice::rpc
