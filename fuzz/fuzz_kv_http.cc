// libFuzzer target: what a client could put in a /v1/kv request, through the parsing the routes
// do (kv_request.h): the path (namespace segment and key), the query of scans, puts and
// watches, If-Match / If-None-Match / Last-Event-ID, the batch and namespace-options JSON bodies,
// base64. Whatever parses is encoded back out (JSON, SSE) as the routes would. Any crash,
// sanitizer report, exception or unbounded allocation is a bug.
//
//   fuzz_kv_http -max_total_time=60 NEW_CORPUS_DIR fuzz/corpus/kv_http
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "transport/http/kv_request.h"

namespace {

using namespace packice;           // NOLINT
using namespace packice::http_kv;  // NOLINT

void Query(std::string_view input) {
  Result<KvQuery> q = KvQuery::Parse(input);
  if (!q.ok()) return;
  if (Result<ScanOptions> scan = ParseScanQuery(*q); scan.ok()) {
    ScanResult page;
    page.kvs.push_back({.key = scan->prefix, .value = scan->after});
    page.next = scan->start;
    (void)ScanJson(page, scan->keys_only);
  }
  (void)ParseWatchQuery(*q, std::nullopt, input);
  (void)ParseWatchQuery(*q, std::string(input), std::nullopt);
  (void)ParsePutOptions(*q, std::nullopt);
  (void)ParseDeleteOptions(*q, 1);
}

void Bodies(std::string_view input) {
  if (Result<std::vector<BatchOp>> ops = ParseBatch(input); ops.ok()) {
    std::vector<KvEvent> events;
    for (const BatchOp& op : *ops) {
      KvEvent e;
      e.type = op.kind == BatchOp::Kind::kPut ? KvEvent::Type::kPut : KvEvent::Type::kDelete;
      e.kv.key = op.key;
      e.kv.value = op.value;
      e.kv.mod_revision = op.if_mod_revision.value_or(0);
      events.push_back(std::move(e));
    }
    (void)SseEvents(events);
  }
  (void)ParseNamespaceOptions(input);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  if (Result<KvPath> p = ParseKvPath(input); p.ok()) (void)NamespaceSegment(p->ns);
  Query(input);
  Bodies(input);
  (void)ParseCondition(input, std::nullopt);
  (void)ParseCondition(std::nullopt, input);
  if (std::optional<std::string> bytes = Base64Decode(input)) {
    if (Base64Encode(*bytes) != input) __builtin_trap();  // strict: one text per bytes
  }
  (void)SseEnd(InvalidArgument(std::string(input)), static_cast<int64_t>(size));
  return 0;
}
