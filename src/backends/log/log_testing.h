// Helpers of the log's tests (log_test.cc, log_recovery_test.cc, log_fault_test.cc).
#ifndef PACKICE_BACKENDS_LOG_LOG_TESTING_H_
#define PACKICE_BACKENDS_LOG_LOG_TESTING_H_

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "backends/log/log.h"
#include "testing.h"

namespace packice::log_testing {

inline std::span<const std::byte> Bytes(const std::string& s) {
  return std::as_bytes(std::span(s));
}
inline std::string Str(std::span<const std::byte> b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

// Small segments, so that tests roll them often.
inline LogOptions SmallOptions(const std::string& dir) {
  LogOptions o;
  o.dir = dir;
  o.segment_bytes = 16 << 10;
  o.max_record_bytes = 4 << 10;
  o.max_batch_bytes = 8 << 10;
  o.index_interval_bytes = 256;
  return o;
}

inline Result<std::unique_ptr<Log>> OpenLog(LogOptions options) {
  return Log::Open(std::move(options));
}

// Every payload from the first record to the end ({} on an error, reported by the test).
inline std::vector<std::string> ReadAll(const Log& log) {
  std::vector<std::string> out;
  uint64_t seq = log.first_seq();
  while (seq < log.next_seq()) {
    Result<LogReadResult> r = log.Read(seq, 1000, 1 << 20);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) return {};
    for (const LogRecord& rec : r->records) out.push_back(Str(rec.payload));
    seq = r->next_seq;
  }
  return out;
}

// "<thread>:<i>:<n>:" and n bytes that depend on all three: a reader can tell a whole one.
inline std::string TaggedPayload(int thread, int i, size_t n) {
  return std::to_string(thread) + ":" + std::to_string(i) + ":" + std::to_string(n) + ":" +
         testing::PatternString(n, static_cast<uint8_t>(thread * 31 + i));
}
inline bool TaggedPayloadIsWhole(std::span<const std::byte> payload) {
  const std::string s = Str(payload);
  int thread = 0, i = 0;
  size_t n = 0;
  if (std::sscanf(s.c_str(), "%d:%d:%zu:", &thread, &i, &n) != 3) return false;
  return s == TaggedPayload(thread, i, n);
}

inline std::string ReadFileBytes(const std::string& path) { return testing::ReadFile(path); }
inline void WriteFileBytes(const std::string& path, const std::string& bytes) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0) << path;
  ASSERT_EQ(::write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  ::close(fd);
}
inline void FlipByte(const std::string& path, size_t offset) {
  std::string bytes = ReadFileBytes(path);
  ASSERT_LT(offset, bytes.size());
  bytes[offset] = static_cast<char>(bytes[offset] ^ 0x5a);
  WriteFileBytes(path, bytes);
}

}  // namespace packice::log_testing

#endif  // PACKICE_BACKENDS_LOG_LOG_TESTING_H_
