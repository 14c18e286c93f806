#include "packice/file_peer.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "backends/file/file_store.h"
#include "packice/client.h"
#include "testing.h"

namespace packice {
namespace {

namespace fs = std::filesystem;
using testing::FakeClock;
using testing::TempDir;

std::string AsString(std::span<const std::byte> b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

size_t FilesUnder(const std::string& dir) {
  size_t n = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir)) n += e.is_regular_file() ? 1 : 0;
  return n;
}

class FilePeerTest : public ::testing::Test {
 protected:
  void Open() {
    peer_.reset();
    FilePeerOptions options;
    options.dir = dir_.path() + "/data";
    options.capacity_bytes = 64 << 20;
    options.background_threads = false;
    options.clock = clock_;
    auto peer = FilePeer::Open(options);
    ASSERT_TRUE(peer.ok()) << peer.status().ToString();  // (a client still holding the old peer?)
    peer_ = *peer;
  }
  Client client() { return Connect(peer_); }

  // What a crash now would leave: a copy of the data directory as it is, opened by a second
  // peer (the live one keeps running, its leases held).
  std::shared_ptr<FilePeer> OpenAfterCrash() {
    fs::copy(dir_.path() + "/data", crash_.path(), fs::copy_options::recursive);
    FilePeerOptions options;
    options.dir = crash_.path();
    options.background_threads = false;
    options.clock = clock_;
    auto peer = FilePeer::Open(options);
    EXPECT_TRUE(peer.ok()) << peer.status().ToString();
    return peer.ok() ? *peer : nullptr;
  }

  TempDir dir_;
  TempDir crash_;
  std::shared_ptr<FakeClock> clock_ = std::make_shared<FakeClock>();
  std::shared_ptr<FilePeer> peer_;
};

TEST_F(FilePeerTest, SealedObjectsSurviveARestart) {
  Open();
  {
    Client c = client();
    CreateOptions options;
    options.meta = {{"k", "v"}};
    options.ttl = std::chrono::hours(1);
    ASSERT_OK(c.Put("a/b", "first object", options).status());
    auto w = c.Create("big", 1 << 20);
    ASSERT_OK(w.status());
    for (size_t i = 0; i < w->data().size(); ++i) w->data()[i] = std::byte(i % 251);
    ASSERT_OK(w->Seal().status());
    auto info = c.Stat("a/b");
    ASSERT_OK(info.status());
    EXPECT_EQ(info->tier, "disk");
  }
  Open();
  Client c = client();
  auto r = c.Get("a/b");
  ASSERT_OK(r.status());
  EXPECT_EQ(AsString(r->data()), "first object");
  EXPECT_EQ(r->info().meta.at("k"), "v");
  EXPECT_EQ(r->info().ttl, std::chrono::hours(1));
  EXPECT_NE(r->info().expires_unix_ms, 0);
  auto big = c.Get("big");
  ASSERT_OK(big.status());
  ASSERT_EQ(big->data().size(), 1u << 20);
  for (size_t i = 0; i < big->data().size(); i += 4093) {
    ASSERT_EQ(big->data()[i], std::byte(i % 251)) << i;
  }
  // Versions keep growing across restarts.
  auto next = c.Put("c", "x");
  ASSERT_OK(next.status());
  EXPECT_GT(next->version, big->info().version);
}

TEST_F(FilePeerTest, UnsealedObjectsAndDeletesDoNotComeBack) {
  Open();
  {
    Client c = client();
    ASSERT_OK(c.Put("gone", "deleted").status());
    ASSERT_OK(c.Delete("gone"));
    auto w = c.Create("pending", 4096);
    ASSERT_OK(w.status());
    // The peer goes away (as in a crash) while the object is being written.
    peer_.reset();
    w->Abort().IgnoreError();
  }
  Open();
  Client c = client();
  EXPECT_CODE(c.Get("gone"), kNotFound);
  EXPECT_CODE(c.Get("pending"), kNotFound);
  EXPECT_EQ(FilesUnder(dir_.path() + "/data/objects"), 0u);
  EXPECT_EQ(FilesUnder(dir_.path() + "/data/tmp"), 0u);
}

TEST_F(FilePeerTest, RebindKeepsOldReadersAndRestartsWithTheNewest) {
  Open();
  {
    Client c = client();
    ASSERT_OK(c.Put("k", "old").status());
    auto reader = c.Get("k");
    ASSERT_OK(reader.status());
    ASSERT_OK(c.Put("k", "new!").status());
    EXPECT_EQ(AsString(reader->data()), "old");
    // The old file is still read, from tmp/ where a restart would not find it.
    EXPECT_EQ(FilesUnder(dir_.path() + "/data/objects"), 1u);
    EXPECT_EQ(FilesUnder(dir_.path() + "/data/tmp"), 1u);
    ASSERT_OK(reader->Release());
    EXPECT_EQ(FilesUnder(dir_.path() + "/data/objects"), 1u);
    EXPECT_EQ(FilesUnder(dir_.path() + "/data/tmp"), 0u);
  }
  Open();
  auto r = client().Get("k");
  ASSERT_OK(r.status());
  EXPECT_EQ(AsString(r->data()), "new!");
}

TEST_F(FilePeerTest, DeletedObjectStaysDeletedAfterACrashWhileItIsRead) {
  Open();
  Client c = client();
  ASSERT_OK(c.Put("gone", "deleted").status());
  auto reader = c.Get("gone");
  ASSERT_OK(reader.status());
  ASSERT_OK(c.Delete("gone"));
  EXPECT_EQ(AsString(reader->data()), "deleted");  // the reader keeps its bytes
  auto crashed = OpenAfterCrash();
  ASSERT_NE(crashed, nullptr);
  EXPECT_CODE(Connect(crashed).Get("gone"), kNotFound);
  EXPECT_EQ(crashed->GetStats().objects, 0u);
}

TEST_F(FilePeerTest, ReplacedObjectStaysReplacedAfterACrashWhatEverTheVersions) {
  Open();
  Client c = client();
  // The writer of the older version seals last: its object is the one bound.
  auto first = c.Create("k", 5);
  ASSERT_OK(first.status());
  std::memcpy(first->data().data(), "first", 5);
  auto second = c.Put("k", "second");
  ASSERT_OK(second.status());
  EXPECT_GT(second->version, first->info().version);
  auto reader = c.Get("k");  // holds the second object's file
  ASSERT_OK(reader.status());
  ASSERT_OK(first->Seal().status());
  auto now = c.Get("k");
  ASSERT_OK(now.status());
  EXPECT_EQ(AsString(now->data()), "first");
  auto crashed = OpenAfterCrash();
  ASSERT_NE(crashed, nullptr);
  auto after = Connect(crashed).Get("k");
  ASSERT_OK(after.status());
  EXPECT_EQ(AsString(after->data()), "first");
}

TEST_F(FilePeerTest, TruncatingSealGivesBackItsCapacity) {
  Open();
  {
    auto w = client().Create("t", 32 << 20);
    ASSERT_OK(w.status());
    ASSERT_OK(w->Seal(3).status());
  }
  const uint64_t used = peer_->GetStats().used_bytes;
  EXPECT_LT(used, 1u << 20);
  // The rest of the capacity (64 MiB) is free again.
  {
    auto big = client().Create("big", 48 << 20);
    ASSERT_OK(big.status());
    ASSERT_OK(big->Abort());
  }
  Open();
  EXPECT_EQ(peer_->GetStats().used_bytes, used);
}

TEST_F(FilePeerTest, FarFutureExpiryInAFileDoesNotOverflowAtRestart) {
  {
    // No peer writes such an expiry (object TTLs are bounded), but a file can hold one.
    auto store = FileStore::Open(FileStoreOptions{dir_.path() + "/data", 1 << 20, false, clock_});
    ASSERT_OK(store.status());
    ObjectInfo info;
    info.key = "forever";
    info.version = 1;
    info.ttl = std::chrono::milliseconds(INT64_MAX);
    info.expires_unix_ms = INT64_MAX;
    auto blob = (*store)->Allocate(info);
    ASSERT_OK(blob.status());
    ASSERT_OK((*store)->Commit(**blob, info));
  }
  Open();
  peer_->ReapExpired();
  EXPECT_OK(client().Get("forever").status());
}

TEST_F(FilePeerTest, ExpiredObjectsAreDroppedAtRestart) {
  Open();
  {
    CreateOptions options;
    options.ttl = std::chrono::seconds(10);
    ASSERT_OK(client().Put("short", "lived", options).status());
    ASSERT_OK(client().Put("long", "lived").status());
  }
  clock_->Advance(std::chrono::seconds(11));
  Open();
  EXPECT_CODE(client().Get("short"), kNotFound);
  EXPECT_OK(client().Get("long").status());
  EXPECT_EQ(FilesUnder(dir_.path() + "/data/objects"), 1u);
}

TEST_F(FilePeerTest, TruncatingSealIsDurable) {
  Open();
  {
    auto w = client().Create("t", 100);
    ASSERT_OK(w.status());
    std::memcpy(w->data().data(), "abc", 3);
    ASSERT_OK(w->Seal(3).status());
  }
  Open();
  auto r = client().Get("t");
  ASSERT_OK(r.status());
  EXPECT_EQ(AsString(r->data()), "abc");
}

TEST_F(FilePeerTest, CapacityCountsRecoveredObjects) {
  Open();
  ASSERT_OK(client().Put("x", std::string(1 << 20, 'x')).status());
  const uint64_t used = peer_->GetStats().used_bytes;
  EXPECT_GE(used, 1u << 20);
  Open();
  EXPECT_EQ(peer_->GetStats().used_bytes, used);
  EXPECT_EQ(peer_->GetStats().objects, 1u);
}

TEST_F(FilePeerTest, SecondOpenOfTheSameDirectoryFails) {
  Open();
  FilePeerOptions options;
  options.dir = dir_.path() + "/data";
  options.background_threads = false;
  EXPECT_CODE(FilePeer::Open(options), kAlreadyExists);
}

}  // namespace
}  // namespace packice
