// Durability of the KV: kill -9 during a write storm, an fsync that fails, a crash that drops
// unsynced data, a corrupt log refused.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "core/fault_injection_env.h"
#include "services/kv/kv_testing.h"

namespace packice {
namespace {

using kv_testing::OpenStore;
using kv_testing::SmallOptions;
using testing::TempDir;

using testing::ReadFile;

std::string OnlySegment(const std::string& bucket_dir) {
  std::vector<std::string> names = NamesWithSuffix(*Env::Default(), bucket_dir, ".log");
  return names.empty() ? "" : bucket_dir + "/" + names.front();
}

// A child puts from 8 threads with fsync always and is killed with SIGKILL, three times: every
// put it acknowledged is there after each restart, at the revision it was acknowledged with.
TEST(KvRecoveryTest, KillNineKeepsEveryAcknowledgedWriteInOrder) {
  TempDir dir;
  const std::string store_dir = dir.path() + "/kv";
  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE(round);
    const std::string out = dir.path() + "/acked" + std::to_string(round) + ".txt";
    {
      testing::ChildProcess child;
      ASSERT_OK(child.Start(
          {testing::BinPath("kv_crash_child"), store_dir, "8", "r" + std::to_string(round)}, out));
      const size_t want = 200;
      auto lines = [&] {
        std::string text = ReadFile(out);
        return static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
      };
      ASSERT_TRUE(testing::WaitUntil([&] { return lines() >= want; }, std::chrono::seconds(60)))
          << ReadFile(out);
      child.Stop(SIGKILL);
    }
    KvOptions o;
    o.dir = store_dir;
    o.segment_bytes = 1 << 20;
    o.max_value_bytes = 1 << 10;
    o.max_batch_bytes = 64 << 10;
    ASSERT_OK_AND_ASSIGN(auto s, OpenKvStore(o));
    size_t checked = 0;
    int64_t last_rev = 0;
    std::vector<int64_t> revs;
    for (int r = 0; r <= round; ++r) {
      std::istringstream text(ReadFile(dir.path() + "/acked" + std::to_string(r) + ".txt"));
      std::string line;
      while (std::getline(text, line)) {
        long rev = 0;
        int t = 0, i = 0;
        if (std::sscanf(line.c_str(), "%ld %d %d", &rev, &t, &i) != 3) continue;
        const std::string key =
            "r" + std::to_string(r) + "/t" + std::to_string(t) + "/" + std::to_string(i);
        auto kv = s->Get("/crash", key);
        ASSERT_TRUE(kv.ok()) << key << ": " << kv.status().ToString();
        EXPECT_EQ(kv->value, std::to_string(i));
        EXPECT_EQ(kv->mod_revision, rev);
        revs.push_back(rev);
        last_rev = std::max<int64_t>(last_rev, rev);
        ++checked;
      }
    }
    EXPECT_GE(checked, 200u * (round + 1));
    std::sort(revs.begin(), revs.end());
    EXPECT_EQ(std::adjacent_find(revs.begin(), revs.end()), revs.end()) << "a revision twice";
    ASSERT_OK_AND_ASSIGN(auto list, s->ListNamespaces("/crash"));
    EXPECT_GE(list[0].revision, last_rev);
  }
}

// An fsync that fails: the write is not acknowledged, the old value stays, the namespace
// refuses writes until reopened, and the reopened store is whole and writable.
TEST(KvRecoveryTest, FailedFsyncAcknowledgesNothingAndCorruptsNothing) {
  TempDir dir;
  auto env = std::make_shared<FaultInjectionEnv>();
  KvOptions o = SmallOptions(dir.path());
  o.env = env;
  {
    ASSERT_OK_AND_ASSIGN(auto s, OpenStore(o));
    ASSERT_OK(s->CreateNamespace("/f", {}));
    ASSERT_OK(s->CreateNamespace("/g", {}));
    ASSERT_OK_R(s->Put("/f", "k", "old"));
    env->InjectFault(
        {.op = FaultInjectionEnv::Op::kSyncData, .error = EIO, .path_part = "buckets/1/"});
    EXPECT_FALSE(s->Put("/f", "k", "new").ok());
    env->ClearFaults();
    ASSERT_OK_AND_ASSIGN(KeyValue kv, s->Get("/f", "k"));
    EXPECT_EQ(kv.value, "old");
    EXPECT_FALSE(s->Put("/f", "k2", "x").ok());  // read-only until reopened
    ASSERT_OK_R(s->Put("/g", "k", "other namespaces go on"));
  }
  ASSERT_OK_AND_ASSIGN(auto s, OpenStore(o));
  auto kv = s->Get("/f", "k");
  ASSERT_OK_R(kv);
  EXPECT_TRUE(kv->value == "old" || kv->value == "new") << kv->value;
  ASSERT_OK_R(s->Put("/f", "k3", "writable again"));
  ASSERT_OK_AND_ASSIGN(KeyValue g, s->Get("/g", "k"));
  EXPECT_EQ(g.value, "other namespaces go on");
}

// The machine stops in the middle of a write: after the crash (unsynced data dropped) every
// acknowledged write is there.
TEST(KvRecoveryTest, CrashDroppingUnsyncedDataKeepsAcknowledgedWrites) {
  TempDir dir;
  auto env = std::make_shared<FaultInjectionEnv>();
  KvOptions o = SmallOptions(dir.path());
  o.env = env;
  {
    ASSERT_OK_AND_ASSIGN(auto s, OpenStore(o));
    ASSERT_OK(s->CreateNamespace("/c", {.engine = KvEngine::kMemTable}));
    for (int i = 0; i < 20; ++i) ASSERT_OK_R(s->Put("/c", "k" + std::to_string(i), "v"));
    env->InjectFault({.op = FaultInjectionEnv::Op::kWrite, .path_part = "buckets/", .crash = true});
    EXPECT_FALSE(s->Put("/c", "k20", "v").ok());
  }
  ASSERT_OK(env->SimulateCrash());
  ASSERT_OK_AND_ASSIGN(auto s, OpenStore(o));
  for (int i = 0; i < 20; ++i) ASSERT_OK_R(s->Get("/c", "k" + std::to_string(i)));
  ASSERT_OK_AND_ASSIGN(PutResult p, s->Put("/c", "after", "v"));
  EXPECT_GE(p.revision, 21);
}

// The last record cut short (a crash mid-write leaves a partial frame and nothing after it):
// recovery drops it, keeps the rest, and the namespace takes writes again.
TEST(KvRecoveryTest, TornTailIsDropped) {
  TempDir dir;
  {
    ASSERT_OK_AND_ASSIGN(auto s, OpenStore(SmallOptions(dir.path())));
    ASSERT_OK(s->CreateNamespace("/t", {.fsync = KvFsync::kInterval}));
    for (int i = 0; i < 10; ++i) ASSERT_OK_R(s->Put("/t", "k" + std::to_string(i), "value"));
  }
  const std::string seg = OnlySegment(dir.path() + "/buckets/1");
  ASSERT_FALSE(seg.empty());
  std::string bytes = testing::ReadFile(seg);
  const size_t end = bytes.find_last_not_of('\0');
  ASSERT_NE(end, std::string::npos);
  {
    std::fstream f(seg, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(end - 3));
    f.write("\0\0\0\0", 4);
  }
  ASSERT_OK_AND_ASSIGN(auto s, OpenStore(SmallOptions(dir.path())));
  for (int i = 0; i < 9; ++i) ASSERT_OK_R(s->Get("/t", "k" + std::to_string(i)));
  EXPECT_CODE(s->Get("/t", "k9"), kNotFound);
  ASSERT_OK_AND_ASSIGN(PutResult p, s->Put("/t", "k9", "again"));
  EXPECT_EQ(p.revision, 10);
}

// A record damaged with good records after it: the store refuses to open (kDataLoss) and
// changes nothing.
TEST(KvRecoveryTest, CorruptMiddleIsRefused) {
  TempDir dir;
  {
    ASSERT_OK_AND_ASSIGN(auto s, OpenStore(SmallOptions(dir.path())));
    ASSERT_OK(s->CreateNamespace("/c", {}));
    for (int i = 0; i < 50; ++i) ASSERT_OK_R(s->Put("/c", "k" + std::to_string(i), "value"));
  }
  const std::string seg = OnlySegment(dir.path() + "/buckets/1");
  ASSERT_FALSE(seg.empty());
  {
    std::fstream f(seg, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(200);
    f.put('\x5a');
  }
  auto s = OpenStore(SmallOptions(dir.path()));
  EXPECT_CODE(s, kDataLoss);
  EXPECT_CODE(s, kDataLoss);
}

}  // namespace
}  // namespace packice
