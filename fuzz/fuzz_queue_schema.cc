// libFuzzer target: a topic schema as a client sends it (ParseQueueSchema: HTTP bodies, the
// socket's and gRPC's set_schema, the SCHEMAS file, exports) and a record value checked
// against it (SchemaSet::Stamp), then read under a newer version (SchemaSet::Upgrade).
// Input: the schema's JSON, a NUL byte, the record's value. What parses must print back to
// the same schema; a stamped record must read back as a JSON object under the next version.
// Any crash, sanitizer report, exception or unbounded allocation is a bug.
//
//   fuzz_queue_schema -max_total_time=60 NEW_CORPUS_DIR fuzz/corpus/queue_schema
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "core/json.h"
#include "services/queue/queue_schema.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace packice;  // NOLINT
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t nul = input.find('\0');
  const std::string_view schema_text = input.substr(0, nul);
  const std::string_view value = nul == std::string_view::npos ? "" : input.substr(nul + 1);

  Result<QueueSchema> schema = ParseQueueSchema(schema_text);
  if (!schema.ok()) return 0;
  Result<QueueSchema> again = ParseQueueSchema(QueueSchemaJson(*schema));
  if (!again.ok() || again->fields != schema->fields) std::abort();

  Result<std::optional<queue::SchemaSet>> v1 = queue::SchemaSet().With(*schema);
  if (!v1.ok() || !*v1) std::abort();  // a valid schema is a first version
  QueueRecord record;
  record.value = std::string(value);
  std::vector<QueueRecord> stamped;
  if (!(*v1)->Stamp({&record, 1}, &stamped).ok()) return 0;

  // The next version: one more optional field, with a default.
  QueueSchema next = *schema;
  SchemaField added;
  added.name = "\x01-not-a-name";  // refused: a control byte
  next.fields.push_back(added);
  if ((*v1)->With(next).ok()) std::abort();
  next.fields.back().name = "fuzz-added-field";
  next.fields.back().default_json = "[1]";
  Result<std::optional<queue::SchemaSet>> v2 = (*v1)->With(next);
  if (!v2.ok()) return 0;  // the schema had that name already, with another type
  if (!*v2) return 0;
  (*v2)->Upgrade(&stamped[0]);
  if (!ParseJson(stamped[0].value).is_object()) std::abort();
  return 0;
}
