// libFuzzer target: arbitrary bytes as the only segment file of a log directory, as recovery
// meets a file that a crash, a bad disk or a stray write left behind (docs/log.md). Open either
// refuses with a stable code or recovers; a recovered log must then read back every record
// densely and take new appends that survive a reopen. Any crash, sanitizer report, hang or
// unbounded allocation is a bug.
//
//   fuzz_log_segment -max_total_time=60 NEW_CORPUS_DIR fuzz/corpus/log_segment
//
// Inputs are given a valid segment header when they have none, so that mutations reach the
// frames instead of stopping at the header's checksum.
#include <fcntl.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "backends/log/log.h"
#include "backends/log/log_format.h"

namespace {

// A directory of this process, on tmpfs when there is one (recovery syncs; tmpfs makes that
// free): fuzz-log-<pid>-XXXXXX, removed at exit. libFuzzer may end a run without exit handlers
// (-max_total_time), so each run first removes the directories of processes that are gone.
const std::string& Dir() {
  static const std::string* const dir = [] {
    const std::filesystem::path base = std::filesystem::is_directory("/dev/shm")
                                           ? std::filesystem::path("/dev/shm")
                                           : std::filesystem::temp_directory_path();
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(base, ec)) {
      const std::string name = e.path().filename().string();
      if (!name.starts_with("fuzz-log-")) continue;
      const long pid = std::strtol(name.c_str() + 9, nullptr, 10);
      if (pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) {
        std::filesystem::remove_all(e.path(), ec);
      }
    }
    std::string tmpl = (base / ("fuzz-log-" + std::to_string(::getpid()) + "-XXXXXX")).string();
    if (mkdtemp(tmpl.data()) == nullptr) std::abort();
    spdlog::set_level(spdlog::level::off);  // recovery's warnings, at every torn tail
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(Dir(), ec);
    });
    return new std::string(std::move(tmpl));
  }();
  return *dir;
}

void WriteSegment(const std::vector<std::byte>& bytes) {
  std::filesystem::remove_all(Dir());
  std::filesystem::create_directories(Dir());
  const std::string path = Dir() + "/" + packice::log_format::SegmentFileName(7);
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) std::abort();
  if (!bytes.empty() && ::write(fd, bytes.data(), bytes.size()) != ssize_t(bytes.size())) {
    std::abort();
  }
  ::close(fd);
}

packice::LogOptions Options() {
  packice::LogOptions o;
  o.dir = Dir();
  o.sync = packice::SyncPolicy::kNever;
  o.segment_bytes = 64 << 10;
  o.max_record_bytes = 4 << 10;
  o.max_batch_bytes = 8 << 10;
  o.index_interval_bytes = 128;
  return o;
}

void Check(bool ok) {
  if (!ok) __builtin_trap();
}

void Run(const std::vector<std::byte>& bytes) {
  WriteSegment(bytes);
  uint64_t next = 0;
  {
    auto log = packice::Log::Open(Options());
    if (!log.ok()) {
      const auto code = log.status().code();
      Check(code == packice::StatusCode::kDataLoss);
      return;
    }
    Check((*log)->first_seq() == 7);
    next = (*log)->next_seq();
    // Every record reads back, densely; then a read from each indexed point's neighbourhood.
    uint64_t seq = 7;
    while (seq < next) {
      auto r = (*log)->Read(seq, 16, 1 << 20);
      Check(r.ok() && !r->records.empty());
      for (const auto& rec : r->records) Check(rec.seq == seq++);
      Check(r->next_seq == seq);
    }
    const std::string p = "appended after recovery";
    auto appended = (*log)->Append(std::as_bytes(std::span(p)));
    Check(appended.ok() && *appended == next);
  }
  auto log = packice::Log::Open(Options());
  Check(log.ok() && (*log)->next_seq() == next + 1);
  auto r = (*log)->Read(next, 1, 1 << 20);
  Check(r.ok() && r->records.size() == 1 && r->records[0].payload.size() == 23);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > (64 << 10)) return 0;  // one segment at most
  std::vector<std::byte> bytes(reinterpret_cast<const std::byte*>(data),
                               reinterpret_cast<const std::byte*>(data) + size);
  Run(bytes);
  if (!packice::log_format::DecodeSegmentHeader(bytes).has_value()) {
    std::vector<std::byte> fixed = packice::log_format::EncodeSegmentHeader(7);
    fixed.insert(fixed.end(), bytes.begin(), bytes.end());
    if (fixed.size() <= (64 << 10)) Run(fixed);
  }
  return 0;
}
