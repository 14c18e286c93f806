// Two packiced nodes on one shared directory (--store sharedfs): one writes, the other reads;
// a node killed mid-write leaves an object the other refuses to read and then cleans up.
#include <gtest/gtest.h>
#include <signal.h>

#include <cstring>
#include <filesystem>
#include <thread>

#include "packice/client.h"
#include "testing.h"

namespace packice {
namespace {

namespace fs = std::filesystem;
using testing::Daemon;
using testing::TempDir;

std::string AsString(std::span<const std::byte> b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

size_t FilesEndingIn(const std::string& dir, std::string_view suffix) {
  size_t n = 0;
  if (!fs::exists(dir)) return 0;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    n += e.is_regular_file() && e.path().string().ends_with(suffix) ? 1 : 0;
  }
  return n;
}

class SharedFSNodesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (Daemon* node : {&a_, &b_}) {
      node->set_data_dir(shared_.path());
      ASSERT_OK(node->Start({"--store", "sharedfs", "--lease-ttl", "1s", "--abandoned-after", "1s",
                             "--gc-interval", "100ms", "--log-level", "warn"}));
    }
  }

  TempDir shared_;
  Daemon a_;
  Daemon b_;
};

TEST_F(SharedFSNodesTest, OneNodeWritesTheOtherReads) {
  auto a = Connect(a_.url());
  auto b = Connect(b_.url());
  ASSERT_OK(a.status());
  ASSERT_OK(b.status());
  CreateOptions options;
  options.meta = {{"from", "a"}};
  ASSERT_OK(a->Put("shared/small", "written by A", options).status());
  auto w = a->Create("shared/big", 4 << 20);
  ASSERT_OK(w.status());
  for (size_t i = 0; i < w->data().size(); ++i) w->data()[i] = std::byte(i % 253);
  ASSERT_OK(w->Seal().status());

  auto small = b->Get("shared/small");
  ASSERT_OK(small.status());
  EXPECT_EQ(AsString(small->data()), "written by A");
  EXPECT_EQ(small->info().meta.at("from"), "a");
  auto big = b->Get("shared/big");
  ASSERT_OK(big.status());
  ASSERT_EQ(big->data().size(), 4u << 20);
  for (size_t i = 0; i < big->data().size(); i += 1021) {
    ASSERT_EQ(big->data()[i], std::byte(i % 253)) << i;
  }
  // Deleting on B is seen on A; A's reader... none here: the key is gone for both.
  ASSERT_OK(b->Delete("shared/small"));
  EXPECT_CODE(a->Get("shared/small"), kNotFound);
}

TEST_F(SharedFSNodesTest, CreatingTheSameKeyOnBothNodesHasOneWinner) {
  auto a = Connect(a_.url());
  auto b = Connect(b_.url());
  ASSERT_OK(a.status());
  ASSERT_OK(b.status());
  auto first = a->Create("race", 1 << 20);
  ASSERT_OK(first.status());
  auto second = b->Create("race", 1 << 20);
  EXPECT_CODE(second, kAlreadyExists);
  EXPECT_CODE(b->Get("race"), kNotFound);  // not sealed yet
  ASSERT_OK(first->Seal().status());
  EXPECT_OK(b->Get("race").status());
}

TEST_F(SharedFSNodesTest, ANodeKilledMidWriteIsCleanedUpByTheOther) {
  {
    auto a = Connect(a_.url());
    ASSERT_OK(a.status());
    auto w = a->Create("half/written", 2 << 20);
    ASSERT_OK(w.status());
    std::memset(w->data().data(), 'h', 1 << 20);
    ASSERT_EQ(FilesEndingIn(shared_.path(), ".pkc"), 1u);
    EXPECT_EQ(a_.Stop(SIGKILL), 128 + SIGKILL);
  }
  auto b = Connect(b_.url());
  ASSERT_OK(b.status());
  EXPECT_CODE(b->Get("half/written"), kNotFound);
  // B's collector removes the abandoned object once it is older than --abandoned-after.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (FilesEndingIn(shared_.path(), ".pkc") != 0 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(FilesEndingIn(shared_.path(), ".pkc"), 0u);
  EXPECT_TRUE(b_.alive());
  // And the key is free again.
  ASSERT_OK(b->Put("half/written", "rewritten by B").status());
  auto r = b->Get("half/written");
  ASSERT_OK(r.status());
  EXPECT_EQ(AsString(r->data()), "rewritten by B");
}

}  // namespace
}  // namespace packice
