// libFuzzer target: a queue export file (ImportTopic, src/services/queue/queue_export.cc), which
// a user hands to `packice queue import`. Any crash, sanitizer report or unbounded allocation is
// a bug; so is an import that fails but leaves its topic behind.
//
//   fuzz_queue_export -max_total_time=60 NEW_CORPUS_DIR fuzz/corpus/queue_export
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "packice/queue.h"

namespace {

std::string ScratchFile() {
  const char* dir = std::getenv("TMPDIR");
  return std::string(dir != nullptr ? dir : "/tmp") + "/fuzz_queue_export." +
         std::to_string(getpid());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = ScratchFile();
  static std::shared_ptr<packice::Queue> queue = [] {
    packice::QueueOptions o;
    o.retention_interval = std::chrono::milliseconds(0);
    return *packice::OpenQueue(std::move(o));
  }();
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) std::abort();
  std::fwrite(data, 1, size, f);
  std::fclose(f);
  const packice::Status s = packice::ImportTopic(*queue, "t", path);
  const bool exists = queue->Buckets("t").ok();
  if (s.ok() != exists) std::abort();
  if (exists) (void)queue->DeleteTopic("t");
  std::remove(path.c_str());
  return 0;
}
