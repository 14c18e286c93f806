// The log under FaultInjectionEnv: short writes, a failed fdatasync or write, ENOSPC, and
// crashes that drop what was not synced. A failure acknowledges nothing of its batch, leaves the
// log read-only (but readable), and never damages what was acknowledged.
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <map>
#include <thread>

#include "backends/log/log.h"
#include "backends/log/log_testing.h"
#include "core/fault_injection_env.h"
#include "core/mutex.h"
#include "testing.h"

namespace packice {
namespace {

using log_testing::Bytes;
using log_testing::ReadAll;
using log_testing::SmallOptions;
using testing::TempDir;
using Op = FaultInjectionEnv::Op;

// `threads` appenders of `appends` tagged payloads each, until their first error; returns what
// was acknowledged, by sequence number.
std::map<uint64_t, std::string> AppendConcurrently(Log& log, int threads, int appends) {
  std::map<uint64_t, std::string> acked;
  Mutex mu;
  std::vector<std::thread> running;
  for (int t = 0; t < threads; ++t) {
    running.emplace_back([&, t] {
      for (int i = 0; i < appends; ++i) {
        std::string p = log_testing::TaggedPayload(t, i, 200 + (i * 97) % 900);
        Result<uint64_t> seq = log.Append(Bytes(p));
        if (!seq.ok()) return;
        MutexLock lock(&mu);
        acked[*seq] = p;
      }
    });
  }
  for (std::thread& t : running) t.join();
  return acked;
}

class LogFaultTest : public ::testing::Test {
 protected:
  LogOptions Options() {
    LogOptions o = SmallOptions(dir_.path() + "/log");
    o.env = env_;
    return o;
  }
  std::string P(int i) { return testing::PatternString(200 + (i * 53) % 700, uint8_t(i)); }

  TempDir dir_;
  std::shared_ptr<FaultInjectionEnv> env_ = std::make_shared<FaultInjectionEnv>();
};

TEST_F(LogFaultTest, ShortWritesAreCompleted) {
  env_->SetShortWrites(7);
  std::vector<std::string> written;
  {
    ASSERT_OK_AND_ASSIGN(auto log, Log::Open(Options()));
    for (int i = 0; i < 60; ++i) {  // several segments
      written.push_back(P(i));
      ASSERT_OK_R(log->Append(Bytes(written.back())));
    }
  }
  EXPECT_GT(env_->faults_hit(), 0);
  env_->ClearFaults();
  ASSERT_OK_AND_ASSIGN(auto log, Log::Open(Options()));
  EXPECT_EQ(ReadAll(*log), written);
}

// A failed fdatasync or write: the Append fails, later ones fail with the same error, reads
// still serve what was acknowledged, and a reopen brings the log back with all of that.
TEST_F(LogFaultTest, FailedSyncOrWriteMakesTheLogReadOnly) {
  for (Op op : {Op::kSyncData, Op::kWrite}) {
    SCOPED_TRACE(static_cast<int>(op));
    TempDir dir;
    LogOptions options = Options();
    options.dir = dir.path();
    std::vector<std::string> acked;
    {
      ASSERT_OK_AND_ASSIGN(auto log, Log::Open(options));
      for (int i = 0; i < 10; ++i) {
        acked.push_back(P(i));
        ASSERT_OK_R(log->Append(Bytes(acked.back())));
      }
      env_->InjectFault({.op = op, .error = EIO, .path_part = ".log"});
      EXPECT_CODE(log->Append(Bytes(P(10))), kInternal);
      env_->ClearFaults();
      EXPECT_CODE(log->health(), kInternal);
      Result<uint64_t> again = log->Append(Bytes(P(11)));
      EXPECT_CODE(again, kInternal);
      EXPECT_NE(again.status().message().find("read-only"), std::string::npos);
      EXPECT_CODE(log->Sync(), kInternal);
      EXPECT_EQ(log->next_seq(), 10u);
      EXPECT_EQ(ReadAll(*log), acked);
      EXPECT_CODE(log->WaitFor(10, std::chrono::steady_clock::now() + std::chrono::seconds(5)),
                  kInternal);
    }
    ASSERT_OK_AND_ASSIGN(auto log, Log::Open(options));
    std::vector<std::string> all = ReadAll(*log);
    ASSERT_GE(all.size(), acked.size());  // the failed record may be there (never acknowledged)
    EXPECT_EQ(std::vector<std::string>(all.begin(), all.begin() + 10), acked);
    ASSERT_OK_AND_ASSIGN(uint64_t seq, log->Append(Bytes("after")));
    EXPECT_EQ(seq, all.size());
  }
}

// AppendAsync under a failed fdatasync: what was in flight gets the error (none of it is
// acknowledged after the failure), later AppendAsyncs are refused at once, and a reopen keeps
// everything acknowledged before.
TEST_F(LogFaultTest, FailedSyncFailsAppendAsyncsInFlight) {
  std::vector<std::string> acked;
  {
    ASSERT_OK_AND_ASSIGN(auto log, Log::Open(Options()));
    for (int i = 0; i < 5; ++i) {
      acked.push_back(P(i));
      ASSERT_OK_R(log->Append(Bytes(acked.back())));
    }
    env_->InjectFault({.op = Op::kSyncData, .error = EIO, .count = -1, .path_part = ".log"});
    std::atomic<int> failed{0}, succeeded{0};
    std::vector<std::string> payloads;
    for (int i = 0; i < 40; ++i) payloads.push_back(P(100 + i));
    for (const std::string& p : payloads) {
      log->AppendAsync(std::array{LogEntry{1, Bytes(p)}}, [&](Result<uint64_t> r) {
        if (r.ok()) {
          ++succeeded;
        } else {
          EXPECT_EQ(r.status().code(), StatusCode::kInternal);
          ++failed;
        }
      });
    }
    // The callbacks come from the log's committer threads.
    for (int i = 0; i < 500 && failed + succeeded < 40; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_EQ(failed + succeeded, 40);
    EXPECT_EQ(succeeded.load(), 0);
    bool refused = false;
    log->AppendAsync(std::array{LogEntry{1, Bytes(P(200))}}, [&](Result<uint64_t> r) {
      EXPECT_CODE(r, kInternal);
      refused = true;
    });
    EXPECT_TRUE(refused);
    EXPECT_EQ(ReadAll(*log), acked);
  }
  env_->ClearFaults();
  ASSERT_OK_AND_ASSIGN(auto log, Log::Open(Options()));
  std::vector<std::string> all = ReadAll(*log);
  ASSERT_GE(all.size(), acked.size());
  EXPECT_EQ(std::vector<std::string>(all.begin(), all.begin() + 5), acked);
}

// No space for a new segment: the Append fails with kOutOfCapacity, nothing is written, and the
// log stays writable (retention can free space) with no gap in its numbers.
TEST_F(LogFaultTest, NoSpaceForANewSegment) {
  ASSERT_OK_AND_ASSIGN(auto log, Log::Open(Options()));
  std::vector<std::string> acked;
  for (int i = 0; i < 5; ++i) {
    acked.push_back(P(i));
    ASSERT_OK_R(log->Append(Bytes(acked.back())));
  }
  env_->InjectFault({.op = Op::kAllocate, .error = ENOSPC, .count = -1});
  Status refused;
  for (int i = 5; i < 200 && refused.ok(); ++i) {
    Result<uint64_t> r = log->Append(Bytes(P(i)));
    if (r.ok()) {
      acked.push_back(P(i));
    } else {
      refused = r.status();
    }
  }
  EXPECT_EQ(refused.code(), StatusCode::kOutOfCapacity) << refused.ToString();
  EXPECT_OK(log->health());
  EXPECT_EQ(log->next_seq(), acked.size());
  EXPECT_EQ(NamesWithSuffix(*env_, Options().dir, ".log").size(), 1u);  // none left behind
  env_->ClearFaults();
  ASSERT_OK_AND_ASSIGN(uint64_t seq, log->Append(Bytes("fits now")));
  EXPECT_EQ(seq, acked.size());
  acked.push_back("fits now");
  EXPECT_EQ(ReadAll(*log), acked);
  log.reset();
  ASSERT_OK_AND_ASSIGN(log, Log::Open(Options()));
  EXPECT_EQ(ReadAll(*log), acked);
}

TEST_F(LogFaultTest, NoSpaceOnAWriteFailsTheLog) {
  ASSERT_OK_AND_ASSIGN(auto log, Log::Open(Options()));
  ASSERT_OK_R(log->Append(Bytes(P(0))));
  env_->InjectFault({.op = Op::kWrite, .error = ENOSPC});
  EXPECT_CODE(log->Append(Bytes(P(1))), kOutOfCapacity);
  EXPECT_CODE(log->health(), kOutOfCapacity);
  env_->ClearFaults();
  log.reset();
  ASSERT_OK_AND_ASSIGN(log, Log::Open(Options()));
  EXPECT_EQ(ReadAll(*log)[0], P(0));
}

// The machine stops at the k-th write or sync of the log (k = 0, 1, ...), with four appenders
// under SyncPolicy::kAlways; after the crash, which keeps only what was synced, every
// acknowledged record is there and the log opens.
TEST_F(LogFaultTest, CrashAtEveryWriteAndSyncKeepsWhatWasAcknowledged) {
  for (Op op : {Op::kWrite, Op::kSyncData, Op::kSyncDir, Op::kAllocate}) {
    for (int skip = 0; skip < 30; skip += (op == Op::kWrite || op == Op::kSyncData) ? 1 : 3) {
      SCOPED_TRACE("op " + std::to_string(static_cast<int>(op)) + " skip " + std::to_string(skip));
      TempDir dir;
      LogOptions options = Options();
      options.dir = dir.path();
      std::map<uint64_t, std::string> acked;
      {
        ASSERT_OK_AND_ASSIGN(auto log, Log::Open(options));
        env_->InjectFault({.op = op, .skip = skip, .crash = true});
        acked = AppendConcurrently(*log, 4, 40);
      }
      env_->ClearFaults();
      ASSERT_OK(env_->SimulateCrash());
      ASSERT_OK_AND_ASSIGN(auto log, Log::Open(options));
      std::vector<std::string> all = ReadAll(*log);
      for (const auto& [seq, payload] : acked) {
        ASSERT_LT(seq, all.size());
        ASSERT_EQ(all[seq], payload) << seq;
      }
      ASSERT_OK_R(log->Append(Bytes("after the crash")));
    }
  }
}

// One fdatasync fails (EIO, the machine goes on: a later fdatasync may succeed) while other
// appenders' batches are written and synced behind it: what was acknowledged is exactly the
// records before the failed batch — none after it, though their own sync may have succeeded.
TEST_F(LogFaultTest, AFailedSyncAcknowledgesNothingAfterIt) {
  int failed = 0;  // runs in which the fault hit (the appenders may batch into fewer syncs)
  for (int skip = 0; skip < 12; ++skip) {
    SCOPED_TRACE("skip " + std::to_string(skip));
    TempDir dir;
    LogOptions options = Options();
    options.dir = dir.path();
    ASSERT_OK_AND_ASSIGN(auto log, Log::Open(options));
    const int hits_before = env_->faults_hit();
    env_->InjectFault({.op = Op::kSyncData, .error = EIO, .skip = skip, .path_part = ".log"});
    const std::map<uint64_t, std::string> acked = AppendConcurrently(*log, 6, 40);
    const bool hit = env_->faults_hit() > hits_before;
    env_->ClearFaults();
    if (hit) {
      ++failed;
      EXPECT_CODE(log->health(), kInternal);
    }
    uint64_t expect = 0;
    for (const auto& [seq, payload] : acked) ASSERT_EQ(seq, expect++) << "a gap before " << seq;
    std::vector<std::string> all = ReadAll(*log);
    ASSERT_EQ(all.size(), acked.size());
    for (const auto& [seq, payload] : acked) ASSERT_EQ(all[seq], payload);
  }
  EXPECT_GE(failed, 6);
}

// SyncPolicy::kNever and kInterval: a crash loses at most the unsynced suffix, and the log opens
// (no gap, no refusal), with everything up to the last Sync.
TEST_F(LogFaultTest, CrashWithoutSyncsLosesOnlyASuffix) {
  for (SyncPolicy policy : {SyncPolicy::kNever, SyncPolicy::kInterval}) {
    SCOPED_TRACE(static_cast<int>(policy));
    TempDir dir;
    LogOptions options = Options();
    options.dir = dir.path();
    options.sync = policy;
    options.sync_interval = std::chrono::hours(1);  // only the explicit Sync below
    std::vector<std::string> written;
    uint64_t synced = 0;
    {
      ASSERT_OK_AND_ASSIGN(auto log, Log::Open(options));
      for (int i = 0; i < 120; ++i) {
        written.push_back(P(i));
        ASSERT_OK_R(log->Append(Bytes(written.back())));
        if (i == 70) {
          ASSERT_OK(log->Sync());
          synced = log->stats().durable_seq;
        }
      }
      env_->InjectFault({.op = Op::kSyncData, .count = -1, .crash = true});  // the close's sync
    }
    env_->ClearFaults();
    ASSERT_OK(env_->SimulateCrash());
    ASSERT_OK_AND_ASSIGN(auto log, Log::Open(options));
    std::vector<std::string> all = ReadAll(*log);
    EXPECT_GE(all.size(), synced);
    EXPECT_LE(all.size(), written.size());
    EXPECT_EQ(all, std::vector<std::string>(written.begin(), written.begin() + all.size()));
  }
}

TEST_F(LogFaultTest, SnapshotFaults) {
  ASSERT_OK_AND_ASSIGN(auto log, Log::Open(Options()));
  ASSERT_OK(log->WriteSnapshot(1, Bytes("first")));
  env_->InjectFault({.op = Op::kWrite, .error = ENOSPC, .path_part = "SNAPSHOT"});
  EXPECT_CODE(log->WriteSnapshot(2, Bytes("second")), kOutOfCapacity);
  env_->InjectFault({.op = Op::kSyncData, .error = EIO, .path_part = "SNAPSHOT"});
  EXPECT_CODE(log->WriteSnapshot(3, Bytes("third")), kInternal);
  ASSERT_OK_AND_ASSIGN(LogSnapshot s, log->ReadSnapshot());
  EXPECT_EQ(s.seq, 1u);
  EXPECT_EQ(s.bytes, "first");
  // A crash before the rename is synced keeps the old snapshot.
  env_->ClearFaults();
  env_->InjectFault({.op = Op::kSyncDir, .crash = true});
  EXPECT_FALSE(log->WriteSnapshot(4, Bytes("fourth")).ok());
  log.reset();
  env_->ClearFaults();
  ASSERT_OK(env_->SimulateCrash());
  ASSERT_OK_AND_ASSIGN(log, Log::Open(Options()));
  ASSERT_OK_AND_ASSIGN(s, log->ReadSnapshot());
  EXPECT_EQ(s.bytes, "first");
}

}  // namespace
}  // namespace packice
