// Disk and tiered nodes through real packiced processes: durability across kill -9, recovery,
// and the memory tier spilling to disk.
#include <gtest/gtest.h>
#include <signal.h>

#include <cstring>
#include <filesystem>
#include <vector>

#include "packice/client.h"
#include "testing.h"

namespace packice {
namespace {

using testing::BinPath;
using testing::Daemon;
using testing::PackicedArgv;
using testing::RunProgram;
using testing::TempDir;

std::string AsString(std::span<const std::byte> b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

TEST(DiskNodeTest, SealedObjectsSurviveKill9AndUnsealedOnesVanish) {
  Daemon node;
  ASSERT_OK(node.Start({"--store", "disk", "--log-level", "warn"}));
  {
    auto client = Connect(node.url());
    ASSERT_OK(client.status());
    CreateOptions options;
    options.meta = {{"owner", "ci"}};
    options.ttl = std::chrono::hours(2);
    ASSERT_OK(client->Put("small/key", "durable bytes", options).status());
    auto big = client->Create("big/key", 3 << 20);
    ASSERT_OK(big.status());
    for (size_t i = 0; i < big->data().size(); ++i) big->data()[i] = std::byte(i * 7);
    ASSERT_OK(big->Seal().status());
    // Half-written when the node dies.
    auto pending = client->Create("pending/key", 1 << 20);
    ASSERT_OK(pending.status());
    std::memset(pending->data().data(), 'x', 4096);
    EXPECT_EQ(node.Stop(SIGKILL), 128 + SIGKILL);
  }
  ASSERT_OK(node.Start({"--store", "disk", "--log-level", "warn"}));
  auto client = Connect(node.url());
  ASSERT_OK(client.status());
  auto small = client->Get("small/key");
  ASSERT_OK(small.status());
  EXPECT_EQ(AsString(small->data()), "durable bytes");
  EXPECT_EQ(small->info().meta.at("owner"), "ci");
  EXPECT_EQ(small->info().ttl, std::chrono::hours(2));
  EXPECT_EQ(small->info().tier, "disk");
  auto big = client->Get("big/key");
  ASSERT_OK(big.status());
  ASSERT_EQ(big->data().size(), 3u << 20);
  for (size_t i = 0; i < big->data().size(); i += 997) {
    ASSERT_EQ(big->data()[i], std::byte(i * 7)) << i;
  }
  EXPECT_CODE(client->Get("pending/key"), kNotFound);
  EXPECT_TRUE(std::filesystem::is_empty(node.data_dir() + "/tmp"));
}

TEST(DiskNodeTest, SecondNodeOnTheSameDataDirIsRefused) {
  Daemon first;
  ASSERT_OK(first.Start({"--store", "disk", "--log-level", "warn"}));
  std::string out;
  TempDir other;
  int rc =
      RunProgram(PackicedArgv(other.path(), {"--store", "disk", "--data-dir", first.data_dir()}),
                 &out, "", std::chrono::seconds(20));
  EXPECT_NE(rc, 0);
  EXPECT_NE(out.find("another process uses"), std::string::npos) << out;
}

TEST(TieredNodeTest, MemorySpillsToDiskAndDiskCopiesSurviveARestart) {
  Daemon node;
  ASSERT_OK(node.Start({"--capacity", "8M", "--log-level", "warn"}));
  {
    auto client = Connect(node.url());
    ASSERT_OK(client.status());
    for (int i = 0; i < 10; ++i) {
      ASSERT_OK(client->Put("obj/" + std::to_string(i), std::string(2 << 20, 'a' + i)).status());
    }
    // 20 MiB written through an 8 MiB memory tier: the older objects went to disk.
    int on_disk = 0;
    for (int i = 0; i < 10; ++i) {
      auto r = client->Get("obj/" + std::to_string(i));
      ASSERT_OK(r.status());
      EXPECT_EQ(AsString(r->data()), std::string(2 << 20, 'a' + i));
      on_disk += r->info().tier == "disk" ? 1 : 0;
    }
    EXPECT_GE(on_disk, 6);
    std::string out;
    ASSERT_EQ(RunProgram({BinPath("packice"), "--url", node.url(), "stat", "obj/0"}, &out), 0)
        << out;
    EXPECT_NE(out.find("tier: disk"), std::string::npos) << out;
  }
  ASSERT_EQ(node.Stop(SIGTERM), 0);
  ASSERT_OK(node.Start({"--capacity", "8M", "--log-level", "warn"}));
  auto client = Connect(node.url());
  ASSERT_OK(client.status());
  auto r = client->Get("obj/0");
  ASSERT_OK(r.status());
  EXPECT_EQ(AsString(r->data()), std::string(2 << 20, 'a'));
}

TEST(TieredNodeTest, BothTiersFullIsAnErrorNotACrash) {
  Daemon node;
  ASSERT_OK(node.Start({"--capacity", "4M", "--disk-capacity", "6M", "--log-level", "warn"}));
  auto client = Connect(node.url());
  ASSERT_OK(client.status());
  Status last;
  for (int i = 0; i < 8 && last.ok(); ++i) {
    last = client->Put("fill/" + std::to_string(i), std::string(3 << 20, 'f')).status();
  }
  EXPECT_EQ(last.code(), StatusCode::kOutOfCapacity) << last.ToString();
  EXPECT_TRUE(node.alive());
  EXPECT_OK(client->Put("small", "still fine").status());
}

TEST(DiskNodeTest, KeysNeverBecomePaths) {
  Daemon node;
  ASSERT_OK(node.Start({"--store", "disk", "--log-level", "warn"}));
  auto client = Connect(node.url());
  ASSERT_OK(client.status());
  const std::string parent = std::filesystem::path(node.data_dir()).parent_path();
  const std::vector<std::string> tricky = {
      "../../escape", "/etc/passwd-copy",    "a/../../../b", "..", "./.",
      "dir/",         std::string(1000, '/')};
  for (const std::string& key : tricky) {
    ASSERT_OK(client->Put(key, "value of " + key).status());
  }
  for (const std::string& key : tricky) {
    auto r = client->Get(key);
    ASSERT_OK(r.status());
    EXPECT_EQ(AsString(r->data()), "value of " + key);
  }
  // Every file the node wrote is inside its data directory.
  for (const auto& e : std::filesystem::directory_iterator(parent)) {
    const std::string name = e.path().filename();
    EXPECT_TRUE(name == "data" || name == "packice.sock" || name == "packiced.log") << name;
  }
  EXPECT_FALSE(std::filesystem::exists("/etc/passwd-copy"));
  // Keys the node refuses get a clear error.
  EXPECT_CODE(client->Put(std::string(2000, 'k'), "x"), kInvalidArgument);
  EXPECT_CODE(client->Put("line\nbreak", "x"), kInvalidArgument);
  EXPECT_CODE(client->Put(std::string("nul\0byte", 8), "x"), kInvalidArgument);
}

// --- a clean stop keeps the data (warm restart) ---------------------------------------------

TEST(TieredNodeTest, SigtermWritesWhatOnlyMemoryHeldAndARestartServesIt) {
  Daemon node;
  ASSERT_OK(node.Start({"--capacity", "64M"}));
  std::vector<uint64_t> versions;
  {
    auto client = Connect(node.url());
    ASSERT_OK(client.status());
    for (int i = 0; i < 20; ++i) {
      auto info = client->Put("warm/" + std::to_string(i), std::string((i + 1) << 16, 'a' + i));
      ASSERT_OK(info.status());
      EXPECT_EQ(info->tier, "memory");
      versions.push_back(info->version);
    }
  }
  ASSERT_EQ(node.Stop(SIGTERM), 0) << node.log();
  EXPECT_NE(node.log().find("event=persisted written=20 "), std::string::npos) << node.log();
  ASSERT_OK(node.Start({"--capacity", "64M"}));
  auto client = Connect(node.url());
  ASSERT_OK(client.status());
  for (int i = 0; i < 20; ++i) {
    auto r = client->Get("warm/" + std::to_string(i));
    ASSERT_TRUE(r.ok()) << i << ": " << r.status().ToString();
    EXPECT_EQ(AsString(r->data()), std::string((i + 1) << 16, 'a' + i)) << i;
    EXPECT_EQ(r->info().version, versions[i]) << "the same object, so the same ETag";
  }
}

TEST(TieredNodeTest, Kill9LosesNothingAcknowledgedWithWriteThrough) {
  Daemon node;
  const std::vector<std::string> flags = {"--capacity", "16M", "--write-through", "--log-level",
                                          "warn"};
  ASSERT_OK(node.Start(flags));
  {
    auto client = Connect(node.url());
    ASSERT_OK(client.status());
    for (int i = 0; i < 24; ++i) {
      ASSERT_OK(client->Put("wt/" + std::to_string(i), std::string(2 << 20, 'a' + i)).status());
    }
    auto last = client->Get("wt/23");
    ASSERT_OK(last.status());
    EXPECT_EQ(last->info().tier, "memory") << "reads are still served from memory";
  }
  EXPECT_EQ(node.Stop(SIGKILL), 128 + SIGKILL);
  ASSERT_OK(node.Start(flags));
  auto client = Connect(node.url());
  ASSERT_OK(client.status());
  for (int i = 0; i < 24; ++i) {
    auto r = client->Get("wt/" + std::to_string(i));
    ASSERT_TRUE(r.ok()) << i << ": " << r.status().ToString();
    EXPECT_EQ(AsString(r->data()), std::string(2 << 20, 'a' + i)) << i;
  }
}

TEST(TieredNodeTest, VersionsNeverRepeatAfterKill9) {
  Daemon node;
  ASSERT_OK(node.Start({"--log-level", "warn"}));
  uint64_t before = 0;
  {
    auto client = Connect(node.url());
    ASSERT_OK(client.status());
    for (int i = 0; i < 5; ++i) {
      auto info = client->Put("v", "only in memory " + std::to_string(i));
      ASSERT_OK(info.status());
      before = info->version;
    }
  }
  EXPECT_EQ(node.Stop(SIGKILL), 128 + SIGKILL);
  ASSERT_OK(node.Start({"--log-level", "warn"}));
  auto client = Connect(node.url());
  ASSERT_OK(client.status());
  EXPECT_CODE(client->Get("v"), kNotFound) << "memory is a cache: kill -9 loses it";
  auto after = client->Put("v", "new");
  ASSERT_OK(after.status());
  EXPECT_GT(after->version, before);
}

}  // namespace
}  // namespace packice
