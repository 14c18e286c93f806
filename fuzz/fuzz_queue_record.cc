// libFuzzer target: a queue record's bytes as a backend reads them from its storage
// (src/backends/queue/record_codec.h), which a disk fault or another program may have
// changed. Any crash, sanitizer report or unbounded allocation is a bug; so is a record that
// decodes but does not encode back to the same bytes.
//
//   fuzz_queue_record -max_total_time=60 NEW_CORPUS_DIR fuzz/corpus/queue_record
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>

#include "backends/queue/record_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto bytes = std::as_bytes(std::span(reinterpret_cast<const char*>(data), size));
  auto record = packice::DecodeRecord(bytes);
  if (!record.ok()) return 0;
  std::string again;
  packice::EncodeRecord(*record, &again);
  if (again.size() != size || again.compare(0, size, reinterpret_cast<const char*>(data), size)) {
    std::abort();
  }
  return 0;
}
