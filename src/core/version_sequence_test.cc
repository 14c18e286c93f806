#include "packice/version_sequence.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <thread>
#include <vector>

#include "core/fault_injection_env.h"
#include "testing.h"

namespace packice {
namespace {

using testing::ReadFile;
using testing::TempDir;

TEST(VersionSequenceTest, InMemoryCountsFromItsStart) {
  VersionSequence v(41);
  EXPECT_EQ(v.Next().value(), 42u);
  v.Observe(100);
  EXPECT_EQ(v.Next().value(), 101u);
  v.Observe(7);  // never goes back
  EXPECT_EQ(v.Next().value(), 102u);
  EXPECT_EQ(v.last(), 102u);
  EXPECT_EQ(v.path(), "");
}

TEST(VersionSequenceTest, DurableStartsAboveEverythingReservedBefore) {
  TempDir dir;
  const std::string path = dir.path() + "/VERSION";
  {
    auto v = VersionSequence::OpenDurable(path, /*block=*/10);
    ASSERT_OK(v.status());
    for (uint64_t i = 1; i <= 3; ++i) EXPECT_EQ((*v)->Next().value(), i);
    EXPECT_EQ(ReadFile(path), "packice-version-mark 10\n");
  }  // as a crash would: 4..10 were never handed out, but might have been
  auto v = VersionSequence::OpenDurable(path, 10);
  ASSERT_OK(v.status());
  EXPECT_EQ((*v)->Next().value(), 11u);
  EXPECT_EQ(ReadFile(path), "packice-version-mark 20\n");
  for (int i = 0; i < 10; ++i) ASSERT_OK((*v)->Next().status());
  EXPECT_EQ(ReadFile(path), "packice-version-mark 30\n") << "the next block is reserved first";
  (*v)->Observe(1000);  // a recovered object's version
  EXPECT_EQ((*v)->Next().value(), 1001u);
  EXPECT_EQ(ReadFile(path), "packice-version-mark 1010\n");
}

TEST(VersionSequenceTest, ConcurrentCallersNeverShareAVersion) {
  TempDir dir;
  auto v = VersionSequence::OpenDurable(dir.path() + "/VERSION", 7);
  ASSERT_OK(v.status());
  std::vector<std::vector<uint64_t>> got(4);
  std::vector<std::thread> threads;
  for (auto& out : got) {
    threads.emplace_back([&out, seq = *v] {
      for (int i = 0; i < 1000; ++i) out.push_back(seq->Next().value());
    });
  }
  for (auto& t : threads) t.join();
  std::vector<uint64_t> all;
  for (auto& g : got) all.insert(all.end(), g.begin(), g.end());
  std::sort(all.begin(), all.end());
  EXPECT_EQ(std::adjacent_find(all.begin(), all.end()), all.end());
  EXPECT_EQ(all.back(), 4000u);
}

TEST(VersionSequenceTest, ACorruptMarkIsAClearError) {
  TempDir dir;
  const std::string path = dir.path() + "/VERSION";
  for (const char* bad :
       {"", "12\n", "packice-version-mark \n", "packice-version-mark 12",
        "packice-version-mark 99999999999999999999\n", "packice-version-mark 1x\n"}) {
    SCOPED_TRACE(bad);
    std::ofstream(path, std::ios::trunc) << bad;
    EXPECT_CODE(VersionSequence::OpenDurable(path), kProtocolError);
  }
  EXPECT_CODE(VersionSequence::OpenDurable(path, 0), kInvalidArgument);
}

TEST(VersionSequenceTest, AMarkThatCannotBeWrittenHandsOutNothing) {
  TempDir dir;
  const std::string sub = dir.path() + "/gone";
  auto v = VersionSequence::OpenDurable(sub + "/VERSION", 2);  // its directory is missing
  ASSERT_OK(v.status());
  EXPECT_CODE((*v)->Next(), kInternal);
  EXPECT_EQ((*v)->last(), 0u);
  ASSERT_EQ(mkdir(sub.c_str(), 0700), 0);
  EXPECT_EQ((*v)->Next().value(), 1u);
  EXPECT_EQ(ReadFile(sub + "/VERSION"), "packice-version-mark 2\n");
}

// Through the file-system seam: a mark that was not synced hands out nothing, and a crash right
// after a block was reserved loses none of it.
TEST(VersionSequenceTest, AFailedSyncHandsOutNothingAndACrashKeepsTheReservedBlock) {
  TempDir dir;
  auto env = std::make_shared<FaultInjectionEnv>();
  const std::string path = dir.path() + "/VERSION";
  auto v = VersionSequence::OpenDurable(path, 10, env);
  ASSERT_OK(v.status());
  env->InjectFault({.op = FaultInjectionEnv::Op::kSyncData, .error = EIO});
  EXPECT_CODE((*v)->Next(), kInternal);
  env->InjectFault({.op = FaultInjectionEnv::Op::kSyncDir, .error = EIO});
  EXPECT_CODE((*v)->Next(), kInternal);
  EXPECT_EQ((*v)->last(), 0u) << "no version was handed out";
  EXPECT_EQ((*v)->Next().value(), 1u);
  EXPECT_EQ((*v)->Next().value(), 2u);
  v->reset();
  ASSERT_OK(env->SimulateCrash());  // the mark (10) was synced before version 1 left
  auto after = VersionSequence::OpenDurable(path, 10, env);
  ASSERT_OK(after.status());
  EXPECT_EQ((*after)->Next().value(), 11u);
}

}  // namespace
}  // namespace packice
