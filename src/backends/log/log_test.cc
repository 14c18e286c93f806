// The log's checksum against zlib's; the log's API: appends and reads, reopen, segments,
// limits, group commit, readers beside appenders, truncation, sync policies and snapshots.
// Recovery: log_recovery_test.cc; injected faults and crashes: log_fault_test.cc.
#include "backends/log/log.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <array>
#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "backends/log/log_format.h"
#include "backends/log/log_testing.h"
#include "core/mutex.h"
#include "testing.h"

namespace packice {
namespace {

using log_testing::Bytes;
using log_testing::OpenLog;
using log_testing::ReadAll;
using log_testing::SmallOptions;
using testing::TempDir;

// Frames written by a build that used zlib's crc32_z read back: the same CRC-32, chained.
TEST(LogFormatTest, Crc32IsZlibsCrc32) {
  const std::string check = "123456789";
  EXPECT_EQ(log_format::Crc32(0, std::as_bytes(std::span(check))), 0xCBF43926u);
  EXPECT_EQ(log_format::Crc32(0x1234, {}), 0x1234u);
  std::mt19937_64 rng(7);
  std::vector<std::byte> buf(1 << 16);
  for (std::byte& b : buf) b = std::byte(rng());
  for (int i = 0; i < 500; ++i) {
    const size_t a = rng() % 5000, b = rng() % 5000, at = rng() % (buf.size() - a - b);
    const auto first = std::span(buf).subspan(at, a), second = std::span(buf).subspan(at + a, b);
    uLong z = crc32_z(0, reinterpret_cast<const Bytef*>(first.data()), first.size());
    z = crc32_z(z, reinterpret_cast<const Bytef*>(second.data()), second.size());
    ASSERT_EQ(log_format::Crc32(log_format::Crc32(0, first), second), z) << a << " " << b;
  }
}

TEST(LogTest, RoundTrip) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto log, OpenLog(SmallOptions(dir.path())));
  EXPECT_EQ(log->next_seq(), 0u);
  ASSERT_OK_AND_ASSIGN(uint64_t a, log->Append(Bytes("alpha")));
  EXPECT_EQ(a, 0u);
  const std::string b = "beta", c = "", d = std::string(3000, 'd');
  const LogEntry entries[] = {{2, Bytes(b)}, {3, Bytes(c)}, {255, Bytes(d)}};
  ASSERT_OK_AND_ASSIGN(uint64_t first, log->Append(entries));
  EXPECT_EQ(first, 1u);
  EXPECT_EQ(log->next_seq(), 4u);

  ASSERT_OK_AND_ASSIGN(LogReadResult r, log->Read(0, 100, 1 << 20));
  ASSERT_EQ(r.records.size(), 4u);
  EXPECT_EQ(r.next_seq, 4u);
  EXPECT_EQ(log_testing::Str(r.records[0].payload), "alpha");
  EXPECT_EQ(r.records[0].type, 1);
  EXPECT_EQ(log_testing::Str(r.records[1].payload), "beta");
  EXPECT_EQ(r.records[1].type, 2);
  EXPECT_EQ(r.records[2].payload.size(), 0u);
  EXPECT_EQ(r.records[2].type, 3);
  EXPECT_EQ(log_testing::Str(r.records[3].payload), d);
  EXPECT_EQ(r.records[3].type, 255);
  for (size_t i = 0; i < r.records.size(); ++i) EXPECT_EQ(r.records[i].seq, i);
}

TEST(LogTest, ReadLimits) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto log, OpenLog(SmallOptions(dir.path())));
  for (int i = 0; i < 10; ++i) ASSERT_OK_R(log->Append(Bytes(std::string(100, 'a' + i))));
  ASSERT_OK_AND_ASSIGN(LogReadResult r, log->Read(3, 4, 1 << 20));
  ASSERT_EQ(r.records.size(), 4u);
  EXPECT_EQ(r.records[0].seq, 3u);
  EXPECT_EQ(r.next_seq, 7u);
  // max_bytes stops before a record that would pass it, but one record always comes.
  ASSERT_OK_AND_ASSIGN(r, log->Read(0, 100, 250));
  EXPECT_EQ(r.records.size(), 2u);
  EXPECT_EQ(r.next_seq, 2u);
  ASSERT_OK_AND_ASSIGN(r, log->Read(5, 100, 1));
  ASSERT_EQ(r.records.size(), 1u);
  EXPECT_EQ(log_testing::Str(r.records[0].payload), std::string(100, 'f'));
  // The end: nothing yet; past it or zero records asked: as documented.
  ASSERT_OK_AND_ASSIGN(r, log->Read(10, 100, 1 << 20));
  EXPECT_TRUE(r.records.empty());
  EXPECT_EQ(r.next_seq, 10u);
  EXPECT_CODE(log->Read(11, 1, 1), kOutOfRange);
  ASSERT_OK_AND_ASSIGN(r, log->Read(2, 0, 1 << 20));
  EXPECT_TRUE(r.records.empty());
  // A copy of a result shares its payloads.
  LogReadResult copy;
  {
    ASSERT_OK_AND_ASSIGN(LogReadResult tmp, log->Read(9, 1, 1 << 20));
    copy = tmp;
  }
  EXPECT_EQ(log_testing::Str(copy.records[0].payload), std::string(100, 'j'));
}

TEST(LogTest, ReopenContinuesTheSequence) {
  TempDir dir;
  LogOptions options = SmallOptions(dir.path());
  options.first_seq = 1000;
  {
    ASSERT_OK_AND_ASSIGN(auto log, OpenLog(options));
    for (int i = 0; i < 5; ++i) ASSERT_OK_R(log->Append(Bytes("r" + std::to_string(i))));
  }
  options.first_seq = 7;  // ignored by an existing log
  ASSERT_OK_AND_ASSIGN(auto log, OpenLog(options));
  EXPECT_EQ(log->first_seq(), 1000u);
  EXPECT_EQ(log->next_seq(), 1005u);
  ASSERT_OK_AND_ASSIGN(uint64_t seq, log->Append(Bytes("after")));
  EXPECT_EQ(seq, 1005u);
  std::vector<std::string> all = ReadAll(*log);
  ASSERT_EQ(all.size(), 6u);
  EXPECT_EQ(all[0], "r0");
  EXPECT_EQ(all[5], "after");
}

TEST(LogTest, AnotherProcessOrOpenHoldsTheDirectory) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto log, OpenLog(SmallOptions(dir.path())));
  EXPECT_CODE(Log::Open(SmallOptions(dir.path())), kAlreadyExists);
}

TEST(LogTest, SegmentsRollAndReadAcrossThem) {
  TempDir dir;
  LogOptions options = SmallOptions(dir.path());  // 16 KiB segments
  std::vector<std::string> written;
  {
    ASSERT_OK_AND_ASSIGN(auto log, OpenLog(options));
    for (int i = 0; i < 200; ++i) {
      written.push_back(testing::PatternString(50 + (i * 37) % 900, static_cast<uint8_t>(i)));
      ASSERT_OK_AND_ASSIGN(uint64_t seq, log->Append(Bytes(written.back())));
      ASSERT_EQ(seq, static_cast<uint64_t>(i));
    }
    EXPECT_GT(log->stats().segments, 5u);
    EXPECT_EQ(ReadAll(*log), written);
    // A read from the middle of any segment, with small limits, walks across segment ends.
    for (uint64_t from = 0; from < 200; from += 13) {
      ASSERT_OK_AND_ASSIGN(LogReadResult r, log->Read(from, 40, 1 << 20));
      ASSERT_EQ(r.records.size(), std::min<uint64_t>(40, 200 - from));
      for (size_t i = 0; i < r.records.size(); ++i) {
        ASSERT_EQ(r.records[i].seq, from + i);
        ASSERT_EQ(log_testing::Str(r.records[i].payload), written[from + i]);
      }
    }
  }
  ASSERT_OK_AND_ASSIGN(auto log, OpenLog(options));
  EXPECT_EQ(ReadAll(*log), written);
  EXPECT_EQ(NamesWithSuffix(*Env::Default(), dir.path(), ".log").size(), log->stats().segments);
}

TEST(LogTest, LimitsAreInvalidArguments) {
  TempDir dir;
  LogOptions options = SmallOptions(dir.path());
  options.max_record_bytes = 1000;
  options.max_batch_bytes = 4000;
  ASSERT_OK_AND_ASSIGN(auto log, OpenLog(options));
  EXPECT_CODE(log->Append(Bytes(std::string(1001, 'x'))), kInvalidArgument);
  EXPECT_OK_R(log->Append(Bytes(std::string(1000, 'x'))));
  EXPECT_CODE(log->Append(std::span<const LogEntry>()), kInvalidArgument);
  EXPECT_CODE(log->Append(Bytes("t"), 0), kInvalidArgument);
  const std::string big(900, 'b');
  std::vector<LogEntry> five(5, LogEntry{1, Bytes(big)});
  EXPECT_CODE(log->Append(five), kInvalidArgument);  // 5 * 920 framed bytes > 4000
  EXPECT_EQ(log->next_seq(), 1u);                    // nothing of the refused ones

  LogOptions bad = SmallOptions(dir.path() + "/other");
  bad.max_record_bytes = bad.max_batch_bytes;
  EXPECT_CODE(Log::Open(bad), kInvalidArgument);
  bad = SmallOptions(dir.path() + "/other");
  bad.max_batch_bytes = bad.segment_bytes;
  EXPECT_CODE(Log::Open(bad), kInvalidArgument);
  bad = SmallOptions(dir.path() + "/other");
  bad.segment_bytes = 100;
  EXPECT_CODE(Log::Open(bad), kInvalidArgument);
}

// Eight appenders at once with SyncPolicy::kAlways: every acknowledged record is there, under
// the sequence number its Append returned, and appends shared fdatasyncs.
TEST(LogTest, GroupCommitOfEightAppenders) {
  TempDir dir;
  LogOptions options = SmallOptions(dir.path());
  options.segment_bytes = 256 << 10;
  constexpr int kThreads = 8, kPerThread = 300;
  std::map<uint64_t, std::string> acked;
  Mutex mu;
  {
    ASSERT_OK_AND_ASSIGN(auto log, OpenLog(options));
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kPerThread; ++i) {
          std::string p = log_testing::TaggedPayload(t, i, 10 + (i % 7) * 150);
          Result<uint64_t> seq = log->Append(Bytes(p));
          ASSERT_TRUE(seq.ok()) << seq.status().ToString();
          MutexLock lock(&mu);
          ASSERT_TRUE(acked.emplace(*seq, p).second);
        }
      });
    }
    for (std::thread& t : threads) t.join();
    const LogStats stats = log->stats();
    EXPECT_EQ(stats.appends, uint64_t{kThreads * kPerThread});
    EXPECT_EQ(stats.durable_seq, stats.next_seq);
    EXPECT_LE(stats.batches, stats.appends);
    EXPECT_GE(stats.syncs, stats.batches);
    std::printf("group commit: %llu appends in %llu batches, %llu fdatasyncs\n",
                static_cast<unsigned long long>(stats.appends),
                static_cast<unsigned long long>(stats.batches),
                static_cast<unsigned long long>(stats.syncs));
  }
  ASSERT_OK_AND_ASSIGN(auto log, OpenLog(options));
  std::vector<std::string> all = ReadAll(*log);
  ASSERT_EQ(all.size(), acked.size());
  for (const auto& [seq, payload] : acked) ASSERT_EQ(all[seq], payload) << seq;
}

// AppendAsync beside Append: four threads keep up to 16 async appends in flight each while
// four append synchronously. Every append is acknowledged once, each thread's in the order of
// its calls (and its `done`s in that order), everything is durable (kAlways), the log is
// whole after a reopen, and group commits carry more than one append each.
TEST(LogTest, AppendAsyncKeepsOrderBesideAppend) {
  TempDir dir;
  LogOptions options = SmallOptions(dir.path());
  options.segment_bytes = 256 << 10;
  constexpr int kAsync = 4, kSync = 4, kPerThread = 400, kWindow = 16;
  std::map<uint64_t, std::string> acked;
  Mutex mu;
  {
    ASSERT_OK_AND_ASSIGN(auto log, OpenLog(options));
    std::vector<std::thread> threads;
    for (int t = 0; t < kAsync; ++t) {
      threads.emplace_back([&, t] {
        std::mutex wmu;
        std::condition_variable cv;
        int pending = 0;
        int next_done = 0;      // the index the next `done` must be for
        uint64_t last_seq = 0;  // the previous one's sequence number
        bool in_order = true;
        for (int i = 0; i < kPerThread; ++i) {
          {
            std::unique_lock<std::mutex> lock(wmu);
            cv.wait(lock, [&] { return pending < kWindow; });
            ++pending;
          }
          std::string p = log_testing::TaggedPayload(t, i, 10 + (i % 7) * 150);
          log->AppendAsync(std::array{LogEntry{1, Bytes(p)}}, [&, i, p](Result<uint64_t> seq) {
            EXPECT_TRUE(seq.ok()) << seq.status().ToString();
            if (seq.ok()) {
              MutexLock lock(&mu);
              EXPECT_TRUE(acked.emplace(*seq, p).second);
            }
            std::lock_guard<std::mutex> lock(wmu);
            if (!seq.ok()) in_order = false;
            if (seq.ok() && (next_done != i || (i > 0 && *seq <= last_seq))) {
              in_order = false;
            }
            ++next_done;
            if (seq.ok()) last_seq = *seq;
            --pending;
            cv.notify_one();
          });
        }
        std::unique_lock<std::mutex> lock(wmu);
        cv.wait(lock, [&] { return pending == 0; });
        EXPECT_TRUE(in_order) << "thread " << t;
      });
    }
    for (int t = kAsync; t < kAsync + kSync; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kPerThread; ++i) {
          std::string p = log_testing::TaggedPayload(t, i, 10 + (i % 5) * 200);
          Result<uint64_t> seq = log->Append(Bytes(p));
          ASSERT_TRUE(seq.ok()) << seq.status().ToString();
          MutexLock lock(&mu);
          ASSERT_TRUE(acked.emplace(*seq, p).second);
        }
      });
    }
    for (std::thread& t : threads) t.join();
    const LogStats stats = log->stats();
    EXPECT_EQ(stats.appends, uint64_t{(kAsync + kSync) * kPerThread});
    EXPECT_EQ(stats.durable_seq, stats.next_seq);
    EXPECT_LT(stats.batches, stats.appends);
  }
  ASSERT_OK_AND_ASSIGN(auto log, OpenLog(options));
  std::vector<std::string> all = ReadAll(*log);
  ASSERT_EQ(all.size(), acked.size());
  for (const auto& [seq, payload] : acked) ASSERT_EQ(all[seq], payload) << seq;
  // Each thread's records are in the order of its calls.
  std::map<int, int> last;
  for (const std::string& p : all) {
    const int t = std::stoi(p.substr(0, p.find(':')));
    const int i = std::stoi(p.substr(p.find(':') + 1));
    auto [it, fresh] = last.emplace(t, i);
    if (!fresh) {
      ASSERT_LT(it->second, i) << "thread " << t;
      it->second = i;
    }
  }
}

// AppendAsync's errors: a bad append is refused on the calling thread, before it returns; the
// destructor waits for every `done` of what is in flight, under every policy.
TEST(LogTest, AppendAsyncErrorsAndDestructorWaits) {
  for (SyncPolicy policy : {SyncPolicy::kAlways, SyncPolicy::kInterval, SyncPolicy::kNever}) {
    TempDir dir;
    LogOptions options = SmallOptions(dir.path());
    options.sync = policy;
    std::atomic<int> ok{0};
    {
      ASSERT_OK_AND_ASSIGN(auto log, OpenLog(options));
      bool called = false;
      log->AppendAsync({}, [&](Result<uint64_t> r) {
        EXPECT_CODE(r, kInvalidArgument);
        called = true;
      });
      EXPECT_TRUE(called);
      called = false;
      const std::string big(options.max_record_bytes + 1, 'x');
      log->AppendAsync(std::array{LogEntry{1, Bytes(big)}}, [&](Result<uint64_t> r) {
        EXPECT_CODE(r, kInvalidArgument);
        called = true;
      });
      EXPECT_TRUE(called);
      for (int i = 0; i < 500; ++i) {
        const std::string p = log_testing::TaggedPayload(0, i, 300);
        log->AppendAsync(std::array{LogEntry{1, Bytes(p)}}, [&](Result<uint64_t> r) {
          EXPECT_TRUE(r.ok());
          ++ok;
        });
      }
    }
    EXPECT_EQ(ok.load(), 500);
    ASSERT_OK_AND_ASSIGN(auto log, OpenLog(options));
    EXPECT_EQ(log->next_seq(), 500u);
  }
}

// Readers tail the log while it grows (WaitFor + Read): each sees every record once, in order,
// never one that is not whole, and never waits for an fsync.
TEST(LogTest, ReadersBesideAppenders) {
  TempDir dir;
  LogOptions options = SmallOptions(dir.path());
  options.segment_bytes = 64 << 10;
  ASSERT_OK_AND_ASSIGN(auto log, OpenLog(options));
  constexpr int kAppenders = 4, kPerAppender = 400, kTotal = kAppenders * kPerAppender;
  std::vector<std::thread> threads;
  std::atomic<int> reader_errors{0};
  for (int r = 0; r < 3; ++r) {
    threads.emplace_back([&] {
      uint64_t next = 0;
      while (next < kTotal) {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
        if (!log->WaitFor(next, deadline).ok()) {
          ++reader_errors;
          return;
        }
        Result<LogReadResult> got = log->Read(next, 50, 16 << 10);
        if (!got.ok() || got->records.empty()) {
          ++reader_errors;
          return;
        }
        for (const LogRecord& rec : got->records) {
          if (rec.seq != next++ || !log_testing::TaggedPayloadIsWhole(rec.payload)) {
            ++reader_errors;
          }
        }
      }
    });
  }
  for (int t = 0; t < kAppenders; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerAppender; ++i) {
        ASSERT_OK_R(log->Append(Bytes(log_testing::TaggedPayload(t, i, 100 + (i % 5) * 400))));
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(reader_errors.load(), 0);
  EXPECT_EQ(log->next_seq(), uint64_t{kTotal});
}

TEST(LogTest, WaitForTimesOutAndWakes) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto log, OpenLog(SmallOptions(dir.path())));
  const auto soon = std::chrono::steady_clock::now() + std::chrono::milliseconds(30);
  EXPECT_CODE(log->WaitFor(0, soon), kTimeout);
  std::thread appender([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    ASSERT_OK_R(log->Append(Bytes("x")));
  });
  EXPECT_OK(log->WaitFor(0, std::chrono::steady_clock::now() + std::chrono::seconds(30)));
  appender.join();
}

TEST(LogTest, TruncateBeforeRemovesWholeSegments) {
  TempDir dir;
  LogOptions options = SmallOptions(dir.path());
  std::vector<std::string> written;
  {
    ASSERT_OK_AND_ASSIGN(auto log, OpenLog(options));
    for (int i = 0; i < 100; ++i) {
      written.push_back(testing::PatternString(500, static_cast<uint8_t>(i)));
      ASSERT_OK_R(log->Append(Bytes(written.back())));
    }
    const uint64_t segments = log->stats().segments;
    ASSERT_GT(segments, 3u);
    ASSERT_OK_AND_ASSIGN(uint64_t first, log->TruncateBefore(0));
    EXPECT_EQ(first, 0u);
    ASSERT_OK_AND_ASSIGN(first, log->TruncateBefore(50));
    EXPECT_GT(first, 0u);
    EXPECT_LE(first, 50u);
    EXPECT_EQ(log->first_seq(), first);
    EXPECT_LT(log->stats().segments, segments);
    EXPECT_CODE(log->Read(first - 1, 1, 1), kOutOfRange);
    ASSERT_OK_AND_ASSIGN(LogReadResult r, log->Read(first, 1, 1));
    EXPECT_EQ(log_testing::Str(r.records[0].payload), written[first]);
    // Never the segment being appended to, even past the end.
    ASSERT_OK_AND_ASSIGN(first, log->TruncateBefore(1'000'000));
    EXPECT_EQ(log->stats().segments, 1u);
    EXPECT_EQ(log->next_seq(), 100u);
    ASSERT_OK_AND_ASSIGN(uint64_t seq, log->Append(Bytes("more")));
    EXPECT_EQ(seq, 100u);
  }
  ASSERT_OK_AND_ASSIGN(auto log, OpenLog(options));
  EXPECT_EQ(log->next_seq(), 101u);
  ASSERT_OK_AND_ASSIGN(LogReadResult r, log->Read(log->first_seq(), 1000, 1 << 20));
  EXPECT_EQ(log_testing::Str(r.records.back().payload), "more");
}

TEST(LogTest, SyncPolicies) {
  TempDir dir;
  LogOptions options = SmallOptions(dir.path() + "/interval");
  options.sync = SyncPolicy::kInterval;
  options.sync_interval = std::chrono::milliseconds(5);
  {
    ASSERT_OK_AND_ASSIGN(auto log, OpenLog(options));
    for (int i = 0; i < 20; ++i) ASSERT_OK_R(log->Append(Bytes("i")));
    EXPECT_TRUE(testing::WaitUntil([&] { return log->stats().durable_seq == 20; }));
  }
  options = SmallOptions(dir.path() + "/never");
  options.sync = SyncPolicy::kNever;
  ASSERT_OK_AND_ASSIGN(auto log, OpenLog(options));
  for (int i = 0; i < 20; ++i) ASSERT_OK_R(log->Append(Bytes("n")));
  EXPECT_EQ(log->stats().durable_seq, 0u);
  const uint64_t syncs = log->stats().syncs;
  EXPECT_OK(log->Sync());
  EXPECT_EQ(log->stats().durable_seq, 20u);
  EXPECT_EQ(log->stats().syncs, syncs + 1);
  EXPECT_OK(log->Sync());  // nothing new: no fdatasync
  EXPECT_EQ(log->stats().syncs, syncs + 1);
}

TEST(LogTest, Snapshot) {
  TempDir dir;
  LogOptions options = SmallOptions(dir.path());
  options.max_snapshot_bytes = 1 << 20;
  ASSERT_OK_AND_ASSIGN(auto log, OpenLog(options));
  EXPECT_CODE(log->ReadSnapshot(), kNotFound);
  const std::string one = testing::PatternString(10000, 1), two = "second";
  ASSERT_OK(log->WriteSnapshot(42, Bytes(one)));
  ASSERT_OK_AND_ASSIGN(LogSnapshot s, log->ReadSnapshot());
  EXPECT_EQ(s.seq, 42u);
  EXPECT_EQ(s.bytes, one);
  ASSERT_OK(log->WriteSnapshot(43, Bytes(two)));
  ASSERT_OK_AND_ASSIGN(s, log->ReadSnapshot());
  EXPECT_EQ(s.seq, 43u);
  EXPECT_EQ(s.bytes, two);
  EXPECT_CODE(log->WriteSnapshot(44, Bytes(std::string((1 << 20) + 1, 'x'))), kInvalidArgument);
  ASSERT_OK(log->WriteSnapshot(45, std::span<const std::byte>()));
  ASSERT_OK_AND_ASSIGN(s, log->ReadSnapshot());
  EXPECT_EQ(s.seq, 45u);
  EXPECT_TRUE(s.bytes.empty());
  // A damaged snapshot is data loss, not a snapshot.
  ASSERT_OK(log->WriteSnapshot(46, Bytes(one)));
  log_testing::FlipByte(dir.path() + "/SNAPSHOT", 100);
  EXPECT_CODE(log->ReadSnapshot(), kDataLoss);
}

TEST(LogFormatTest, SegmentNames) {
  EXPECT_EQ(log_format::SegmentFileName(42), "00000000000000000042.log");
  EXPECT_EQ(log_format::ParseSegmentFileName("00000000000000000042.log"), 42u);
  EXPECT_EQ(log_format::ParseSegmentFileName(log_format::SegmentFileName(UINT64_MAX)), UINT64_MAX);
  EXPECT_EQ(log_format::ParseSegmentFileName("0000000000000000042.log"), std::nullopt);
  EXPECT_EQ(log_format::ParseSegmentFileName("9999999999999999999999.log"), std::nullopt);
  EXPECT_EQ(log_format::ParseSegmentFileName("99999999999999999999.log"), std::nullopt);
  EXPECT_EQ(log_format::ParseSegmentFileName("0000000000000000004x.log"), std::nullopt);
  EXPECT_EQ(log_format::ParseSegmentFileName("00000000000000000042.lo"), std::nullopt);
}

TEST(LogFormatTest, HeaderRoundTrip) {
  std::vector<std::byte> h = log_format::EncodeSegmentHeader(77);
  EXPECT_EQ(log_format::DecodeSegmentHeader(h), 77u);
  for (size_t i = 0; i < h.size(); ++i) {
    std::vector<std::byte> bad = h;
    bad[i] ^= std::byte{0x10};
    EXPECT_EQ(log_format::DecodeSegmentHeader(bad), std::nullopt) << i;
  }
  EXPECT_EQ(log_format::DecodeSegmentHeader(std::span(h).first(31)), std::nullopt);
}

}  // namespace
}  // namespace packice
