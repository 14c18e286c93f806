// Recovery on open (docs/log.md, "Recovery"): torn tails are dropped, damage in the middle is
// refused with kDataLoss, a cut Append is dropped whole, and a log killed with SIGKILL while
// appending keeps every acknowledged record.
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>
#include <map>
#include <sstream>

#include "backends/log/crash_payload.h"
#include "backends/log/log.h"
#include "backends/log/log_format.h"
#include "backends/log/log_testing.h"
#include "testing.h"

namespace packice {
namespace {

using log_testing::Bytes;
using log_testing::ReadAll;
using log_testing::ReadFileBytes;
using log_testing::SmallOptions;
using log_testing::WriteFileBytes;
using testing::TempDir;

constexpr size_t kHeader = log_format::kSegmentHeaderBytes;
constexpr size_t kFrame = log_format::kFrameHeaderBytes;

std::string SegmentPath(const std::string& dir, uint64_t first_seq) {
  return dir + "/" + log_format::SegmentFileName(first_seq);
}

// A log of `n` records of `size` bytes of 'x'..., closed. Returns the records.
std::vector<std::string> MakeLog(const LogOptions& options, int n, size_t size) {
  std::vector<std::string> written;
  auto log = Log::Open(options);
  EXPECT_TRUE(log.ok()) << log.status().ToString();
  if (!log.ok()) return written;
  for (int i = 0; i < n; ++i) {
    written.push_back(std::string(size, static_cast<char>('a' + i % 26)));
    EXPECT_TRUE((*log)->Append(Bytes(written.back())).ok());
  }
  return written;
}

enum class Tear { kZeros, kEof, kGarbage };

// Every byte offset of the last record: the segment as a crash could leave it (the rest of
// the record zeros, the file ending there, or garbage in its place). Recovery drops exactly
// that record, and appends continue after the one before.
TEST(LogRecoveryTest, TornTailAtEveryByteOfTheLastRecord) {
  TempDir dir;
  const LogOptions options = SmallOptions(dir.path());
  constexpr int kRecords = 5;
  constexpr size_t kSize = 60;
  std::vector<std::string> written = MakeLog(options, kRecords, kSize);
  const std::string path = SegmentPath(dir.path(), 0);
  const std::string original = ReadFileBytes(path);
  const size_t last = kHeader + (kRecords - 1) * (kFrame + kSize);
  const size_t end = last + kFrame + kSize;
  for (Tear tear : {Tear::kZeros, Tear::kEof, Tear::kGarbage}) {
    for (size_t cut = last; cut < end; ++cut) {
      SCOPED_TRACE("tear " + std::to_string(static_cast<int>(tear)) + " at " + std::to_string(cut));
      std::string torn = original;
      if (tear == Tear::kEof) torn.resize(cut);
      if (tear == Tear::kZeros) std::fill(torn.begin() + cut, torn.begin() + end, '\0');
      if (tear == Tear::kGarbage) std::fill(torn.begin() + cut, torn.begin() + end, '\xab');
      WriteFileBytes(path, torn);
      {
        ASSERT_OK_AND_ASSIGN(auto log, Log::Open(options));
        ASSERT_EQ(log->next_seq(), uint64_t{kRecords - 1});
        ASSERT_EQ(ReadAll(*log), std::vector<std::string>(written.begin(), written.end() - 1));
        ASSERT_OK_AND_ASSIGN(uint64_t seq, log->Append(Bytes("new")));
        ASSERT_EQ(seq, uint64_t{kRecords - 1});
      }
      ASSERT_OK_AND_ASSIGN(auto log, Log::Open(options));
      std::vector<std::string> all = ReadAll(*log);
      ASSERT_EQ(all.size(), size_t{kRecords});
      ASSERT_EQ(all.back(), "new");
      ASSERT_EQ(ReadFileBytes(path).size(), options.segment_bytes);  // preallocated again
    }
  }
}

TEST(LogRecoveryTest, DamageInTheMiddleIsRefused) {
  TempDir dir;
  LogOptions options = SmallOptions(dir.path());
  std::vector<std::string> written = MakeLog(options, 10, 100);
  const std::string path = SegmentPath(dir.path(), 0);
  const std::string original = ReadFileBytes(path);
  const size_t third = kHeader + 3 * (kFrame + 100);
  // A payload byte, the checksum, the length, the sequence number, the type of record 3.
  for (size_t at : {third + kFrame + 50, third, third + 5, third + 8, third + 16}) {
    SCOPED_TRACE(at);
    log_testing::FlipByte(path, at);
    Result<std::unique_ptr<Log>> log = Log::Open(options);
    ASSERT_EQ(log.status().code(), StatusCode::kDataLoss) << log.status().ToString();
    EXPECT_NE(log.status().message().find(path), std::string::npos) << log.status().ToString();
    WriteFileBytes(path, original);
  }
  // Unless the operator prefers to lose the tail.
  log_testing::FlipByte(path, third + kFrame + 50);
  options.drop_corrupt_tail = true;
  ASSERT_OK_AND_ASSIGN(auto log, Log::Open(options));
  EXPECT_EQ(log->next_seq(), 3u);
  EXPECT_EQ(ReadAll(*log), std::vector<std::string>(written.begin(), written.begin() + 3));
}

TEST(LogRecoveryTest, DamageInAFullSegmentIsRefused) {
  TempDir dir;
  const LogOptions options = SmallOptions(dir.path());
  MakeLog(options, 100, 500);  // several 16 KiB segments
  std::vector<std::string> names = NamesWithSuffix(*Env::Default(), dir.path(), ".log");
  ASSERT_GE(names.size(), 3u);
  // The last record of the first segment: a torn tail if it were the last segment.
  const std::string first = dir.path() + "/" + names[0];
  const uint64_t second_seq = *log_format::ParseSegmentFileName(names[1]);
  const std::string original = ReadFileBytes(first);
  const size_t last = kHeader + (second_seq - 1) * (kFrame + 500);
  log_testing::FlipByte(first, last + kFrame + 10);
  EXPECT_CODE(Log::Open(options), kDataLoss);
  // A bad header.
  WriteFileBytes(first, original);
  log_testing::FlipByte(first, 3);
  EXPECT_CODE(Log::Open(options), kDataLoss);
  // A missing segment in the middle: a gap.
  WriteFileBytes(first, original);
  ASSERT_OK_R(Log::Open(options));
  ASSERT_EQ(::unlink((dir.path() + "/" + names[1]).c_str()), 0);
  Result<std::unique_ptr<Log>> log = Log::Open(options);
  EXPECT_CODE(log, kDataLoss);
  EXPECT_NE(log.status().message().find("next segment starts at"), std::string::npos)
      << log.status().ToString();
}

// Zeros where a frame should start, then data: a hole. Good frames after it are damage in the
// middle (refused); garbage after it is a torn tail (cut, and the garbage is gone for good).
TEST(LogRecoveryTest, AHoleBeforeMoreData) {
  TempDir dir;
  const LogOptions options = SmallOptions(dir.path());
  std::vector<std::string> written = MakeLog(options, 6, 100);
  const std::string path = SegmentPath(dir.path(), 0);
  const std::string original = ReadFileBytes(path);
  const size_t third = kHeader + 3 * (kFrame + 100);
  std::string holed = original;
  std::fill(holed.begin() + third, holed.begin() + third + kFrame + 100, '\0');
  WriteFileBytes(path, holed);
  EXPECT_CODE(Log::Open(options), kDataLoss);

  std::string garbage = original;
  const size_t end = kHeader + 6 * (kFrame + 100);
  std::fill(garbage.begin() + end + 500, garbage.begin() + end + 600, '\x5c');
  WriteFileBytes(path, garbage);
  {
    ASSERT_OK_AND_ASSIGN(auto log, Log::Open(options));
    EXPECT_EQ(log->next_seq(), 6u);
    ASSERT_OK_R(log->Append(Bytes("seven")));
  }
  ASSERT_OK_AND_ASSIGN(auto log, Log::Open(options));
  written.push_back("seven");
  EXPECT_EQ(ReadAll(*log), written);
}

// An Append of three records whose last frames a crash cut: none of the three comes back.
TEST(LogRecoveryTest, ACutAppendIsDroppedWhole) {
  TempDir dir;
  const LogOptions options = SmallOptions(dir.path());
  const std::string a(100, 'a'), b(100, 'b'), c(100, 'c');
  {
    ASSERT_OK_AND_ASSIGN(auto log, Log::Open(options));
    ASSERT_OK_R(log->Append(Bytes(a)));
    ASSERT_OK_R(log->Append(Bytes(a)));
    const LogEntry three[] = {{1, Bytes(a)}, {1, Bytes(b)}, {1, Bytes(c)}};
    ASSERT_OK_AND_ASSIGN(uint64_t seq, log->Append(three));
    ASSERT_EQ(seq, 2u);
  }
  const std::string path = SegmentPath(dir.path(), 0);
  const std::string original = ReadFileBytes(path);
  const size_t group = kHeader + 2 * (kFrame + 100);
  const size_t end = group + 3 * (kFrame + 100);
  for (size_t cut : {group + 2 * (kFrame + 100) + 50, group + (kFrame + 100) + 3, group + 1}) {
    SCOPED_TRACE(cut);
    std::string torn = original;
    std::fill(torn.begin() + cut, torn.begin() + end, '\0');
    WriteFileBytes(path, torn);
    ASSERT_OK_AND_ASSIGN(auto log, Log::Open(options));
    EXPECT_EQ(log->next_seq(), 2u);
  }
}

// A crash after the new segment's file was made but before its header was: a blank last
// segment is made a fresh one.
TEST(LogRecoveryTest, BlankLastSegment) {
  TempDir dir;
  const LogOptions options = SmallOptions(dir.path());
  std::vector<std::string> written = MakeLog(options, 5, 100);
  WriteFileBytes(SegmentPath(dir.path(), 5), std::string(4096, '\0'));
  {
    ASSERT_OK_AND_ASSIGN(auto log, Log::Open(options));
    EXPECT_EQ(log->next_seq(), 5u);
    EXPECT_EQ(log->stats().segments, 2u);
    ASSERT_OK_R(log->Append(Bytes("six")));
  }
  ASSERT_OK_AND_ASSIGN(auto log, Log::Open(options));
  written.push_back("six");
  EXPECT_EQ(ReadAll(*log), written);
  // A blank segment that is not the last is damage.
  log.reset();
  WriteFileBytes(SegmentPath(dir.path(), 0), std::string(4096, '\0'));
  EXPECT_CODE(Log::Open(options), kDataLoss);
}

// A child appends with SyncPolicy::kAlways from four threads and is killed with SIGKILL: every
// record it was told was acknowledged is there after the reopen, under its sequence number.
TEST(LogRecoveryTest, KillNineKeepsEveryAcknowledgedRecord) {
  TempDir dir;
  const std::string log_dir = dir.path() + "/log";
  const std::string out = dir.path() + "/acked.txt";
  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE(round);
    testing::ChildProcess child;
    ASSERT_OK(child.Start({testing::BinPath("log_crash_child"), log_dir, "4"}, out));
    const size_t want = 300 * (round + 1);
    auto lines = [&] {
      std::string text = ReadFileBytes(out);
      return static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
    };
    ASSERT_TRUE(testing::WaitUntil([&] { return lines() >= want; }, std::chrono::seconds(60)))
        << ReadFileBytes(out);
    child.Stop(SIGKILL);

    std::map<uint64_t, std::string> acked;
    std::istringstream text(ReadFileBytes(out));
    std::string line;
    while (std::getline(text, line)) {
      uint64_t seq = 0;
      int thread = 0, i = 0;
      if (std::sscanf(line.c_str(), "%lu %d %d", &seq, &thread, &i) != 3) continue;
      acked[seq] = log_testing::CrashPayload(thread, i);
    }
    ASSERT_GE(acked.size(), want);
    LogOptions options;
    options.dir = log_dir;
    ASSERT_OK_AND_ASSIGN(auto log, Log::Open(options));
    ASSERT_GT(log->next_seq(), acked.rbegin()->first);
    std::vector<std::string> all = ReadAll(*log);
    ASSERT_EQ(all.size(), log->next_seq());
    for (const auto& [seq, payload] : acked) ASSERT_EQ(all[seq], payload) << seq;
  }
}

}  // namespace
}  // namespace packice
