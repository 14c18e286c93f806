#include "transport/http/growing_upload.h"

#include <gtest/gtest.h>

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "packice/file_peer.h"
#include "packice/memory_peer.h"
#include "packice/sharedfs_peer.h"
#include "testing.h"

namespace packice {
namespace {

using packice::testing::TempDir;

std::vector<std::byte> Pattern(size_t n, uint64_t from) {
  std::vector<std::byte> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<std::byte>((from + i) * 131 % 251);
  return out;
}

// One growing upload over each peer kind the node runs: memory (mapped), file (not), sharedfs
// (one writer per key: grows through a scratch object).
class GrowingUploadTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "memory") {
      MemoryPeerOptions options;
      options.capacity_bytes = 64 << 20;
      options.pool_bytes = 0;
      options.background_threads = false;
      peer_ = MemoryPeer::Create(options);
    } else if (GetParam() == "sharedfs") {
      SharedFSPeerOptions options;
      options.dir = dir_.path() + "/shared";
      options.sync = false;
      options.background_threads = false;
      auto opened = SharedFSPeer::Open(options);
      ASSERT_OK(opened.status());
      peer_ = *opened;
    } else {
      FilePeerOptions options;
      options.dir = dir_.path() + "/data";
      options.capacity_bytes = 64 << 20;
      options.sync = false;
      options.background_threads = false;
      auto opened = FilePeer::Open(options);
      ASSERT_OK(opened.status());
      peer_ = *opened;
    }
  }
  AcquireRequest Create(std::string key) {
    AcquireRequest req;
    req.key = std::move(key);
    req.mode = LeaseMode::kCreate;
    return req;
  }
  // Appends `total` pattern bytes in pieces of `piece`.
  void AppendAll(GrowingUpload& upload, uint64_t total, size_t piece) {
    for (uint64_t at = 0; at < total; at += piece) {
      auto data = Pattern(std::min<uint64_t>(piece, total - at), at);
      ASSERT_OK(upload.Append(data));
    }
  }
  std::vector<std::byte> ReadAll(const std::string& key) {
    AcquireRequest req;
    req.key = key;
    auto grant = peer_->Acquire(req);
    EXPECT_OK(grant.status());
    if (!grant.ok()) return {};
    std::vector<std::byte> out(grant->info.size);
    EXPECT_OK(grant->blob->Read(0, out));
    EXPECT_OK(peer_->Release(grant->lease));
    return out;
  }
  uint64_t Used() {
    peer_->DrainCleaner();
    return peer_->GetStats().used_bytes;
  }

  TempDir dir_;
  std::shared_ptr<LocalPeer> peer_;
};

INSTANTIATE_TEST_SUITE_P(Peers, GrowingUploadTest, ::testing::Values("memory", "file", "sharedfs"),
                         [](const auto& info) { return info.param; });

TEST_P(GrowingUploadTest, SmallBodyIsSealedWithItsSize) {
  ASSERT_OK_AND_ASSIGN(auto upload, GrowingUpload::Start(*peer_, Create("small"), 1 << 30));
  EXPECT_EQ(upload->grant().blob->size(), GrowingUpload::kFirstAllocation);
  AppendAll(*upload, 1000, 300);
  ASSERT_OK_AND_ASSIGN(ObjectInfo info, upload->Seal());
  EXPECT_EQ(info.size, 1000u);
  EXPECT_EQ(upload->allocations(), 1);
  EXPECT_EQ(ReadAll("small"), Pattern(1000, 0));
}

TEST_P(GrowingUploadTest, GrowsByDoublingAndKeepsEveryByte) {
  const uint64_t total = 3 * GrowingUpload::kFirstAllocation + 12345;
  ASSERT_OK_AND_ASSIGN(auto upload, GrowingUpload::Start(*peer_, Create("big"), 1 << 30));
  AppendAll(*upload, total, 100'000);
  EXPECT_EQ(upload->allocations(), 3);  // 4 MiB, 8 MiB, 16 MiB
  EXPECT_EQ(upload->grant().blob->size(), 4 * GrowingUpload::kFirstAllocation);
  ASSERT_OK_AND_ASSIGN(ObjectInfo info, upload->Seal());
  EXPECT_EQ(info.size, total);
  EXPECT_EQ(ReadAll("big"), Pattern(total, 0));
  EXPECT_EQ(peer_->GetStats().creating, 0u);
}

TEST_P(GrowingUploadTest, TheLimitIsExactAndOverItNothingIsLeft) {
  const uint64_t before = Used();
  const uint64_t limit = GrowingUpload::kFirstAllocation + 10;
  {
    ASSERT_OK_AND_ASSIGN(auto upload, GrowingUpload::Start(*peer_, Create("at"), limit));
    AppendAll(*upload, limit, 1 << 20);
    EXPECT_EQ(upload->grant().blob->size(), limit) << "growth is capped at the limit";
    ASSERT_OK(upload->Seal().status());
  }
  {
    ASSERT_OK_AND_ASSIGN(auto upload, GrowingUpload::Start(*peer_, Create("over"), limit));
    AppendAll(*upload, limit, 1 << 20);
    EXPECT_CODE(upload->Append(Pattern(1, 0)), kInvalidArgument);
  }
  EXPECT_EQ(peer_->Stat("over").status().code(), StatusCode::kNotFound);
  ASSERT_OK(peer_->Delete("at"));
  EXPECT_EQ(Used(), before);
  EXPECT_EQ(peer_->GetStats().creating, 0u);
  EXPECT_EQ(peer_->GetStats().leases, 0u);
}

TEST_P(GrowingUploadTest, AnAbandonedUploadLeavesNothing) {
  const uint64_t before = Used();
  {
    ASSERT_OK_AND_ASSIGN(auto upload, GrowingUpload::Start(*peer_, Create("gone"), 1 << 30));
    AppendAll(*upload, 2 * GrowingUpload::kFirstAllocation + 1, 1 << 20);
  }
  EXPECT_EQ(peer_->Stat("gone").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(Used(), before);
  EXPECT_EQ(peer_->GetStats().leases, 0u);
}

TEST_P(GrowingUploadTest, NoRoomToGrowIsOutOfCapacity) {
  if (GetParam() == "sharedfs") GTEST_SKIP() << "a shared directory has no capacity of its own";
  ASSERT_OK_AND_ASSIGN(auto upload, GrowingUpload::Start(*peer_, Create("huge"), 1ull << 40));
  Status s;
  for (uint64_t at = 0; s.ok() && at < (128ull << 20); at += 1 << 20)
    s = upload->Append(Pattern(1 << 20, at));
  EXPECT_EQ(s.code(), StatusCode::kOutOfCapacity) << s.ToString();
  upload.reset();
  EXPECT_EQ(peer_->GetStats().leases, 0u);
}

TEST_P(GrowingUploadTest, AGeneratedIdStaysTheKeyAsItGrows) {
  ASSERT_OK_AND_ASSIGN(auto upload, GrowingUpload::Start(*peer_, Create(""), 1 << 30));
  const std::string id = upload->grant().info.key;
  ASSERT_FALSE(id.empty());
  AppendAll(*upload, GrowingUpload::kFirstAllocation + 1, 1 << 20);
  ASSERT_OK_AND_ASSIGN(ObjectInfo info, upload->Seal());
  EXPECT_EQ(info.key, id);
}

TEST_P(GrowingUploadTest, AnExclusiveUploadLosesToAKeyBoundWhileItGrew) {
  AcquireRequest req = Create("race");
  req.create.exclusive = true;
  ASSERT_OK_AND_ASSIGN(auto upload, GrowingUpload::Start(*peer_, req, 1 << 30));
  EXPECT_CODE(GrowingUpload::Start(*peer_, req, 1 << 30).status(), kAlreadyExists);
  AppendAll(*upload, GrowingUpload::kFirstAllocation + 1, 1 << 20);
  if (GetParam() == "sharedfs") {  // one writer per key: no one else could bind it meanwhile
    EXPECT_CODE(peer_->Acquire(Create("race")).status(), kAlreadyExists);
    ASSERT_OK(upload->Seal().status());
    return;
  }
  ASSERT_OK_AND_ASSIGN(Grant other, peer_->Acquire(Create("race")));
  ASSERT_OK(peer_->Seal(other.lease, 0).status());
  EXPECT_CODE(upload->Seal().status(), kAlreadyExists);
  EXPECT_EQ(peer_->GetStats().leases, 0u);
}

}  // namespace
}  // namespace packice
