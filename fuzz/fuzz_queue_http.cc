// libFuzzer target: what a client could put in a /v1/queue request, through the parsing the
// routes do (queue_request.h): the path, a read's query (positions, limit, wait, max_bytes),
// the topic-options, append and commit JSON bodies. Whatever parses is encoded back out
// (JSON) as the routes would. Any crash, sanitizer report, exception or unbounded allocation
// is a bug.
//
//   fuzz_queue_http -max_total_time=60 NEW_CORPUS_DIR fuzz/corpus/queue_http
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "transport/http/kv_request.h"
#include "transport/http/queue_request.h"

namespace {

using namespace packice;              // NOLINT
using namespace packice::http_queue;  // NOLINT

void Query(std::string_view input) {
  Result<http_kv::KvQuery> q = http_kv::KvQuery::Parse(input);
  if (!q.ok()) return;
  Result<ReadQuery> read = ParseReadQuery([&q](std::string_view name) { return q->Get(name); });
  if (!read.ok()) return;
  std::vector<BucketRecords> records;
  for (const QueuePosition& p : read->from) {
    BucketRecords& b = records.emplace_back();
    b.bucket = p.bucket;
    StoredRecord r;
    r.offset = p.offset;
    r.record.key = read->group;
    b.records.push_back(std::move(r));
  }
  (void)ReadJson(records, read->from);
}

void Bodies(std::string_view input) {
  if (Result<std::vector<QueueRecord>> records = ParseRecords(input); records.ok()) {
    std::vector<BucketRecords> read(1);
    std::vector<AppendResult> appended;
    for (QueueRecord& r : *records) {
      appended.push_back({0, read[0].records.size()});
      read[0].records.push_back({read[0].records.size(), std::move(r)});
    }
    (void)AppendedJson(appended);
    const QueuePosition from{0, 0};
    const std::string json = ReadJson(read, std::span(&from, 1));
    (void)ParseRecords(json);
  }
  if (Result<TopicOptions> o = ParseTopicOptions(input); o.ok()) {
    TopicInfo t{std::string(input.substr(0, 16)), *o};
    (void)TopicListJson(std::span(&t, 1));
    (void)TopicStatJson(t, {}, {});
  }
  if (Result<std::vector<QueuePosition>> p = ParsePositions(input); p.ok()) {
    std::vector<GroupPosition> g;
    for (const QueuePosition& q : *p) g.push_back({"g", q.bucket, q.offset});
    (void)GroupJson("g", g);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  if (size > 1 << 20) return 0;
  (void)ParseQueuePath(input);
  Query(input);
  Bodies(input);
  return 0;
}
