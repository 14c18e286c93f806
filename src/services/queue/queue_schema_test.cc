// Topic schemas (include/packice/queue.h, QueueSchema; docs/queue.md, "Schemas"): the JSON
// form and its errors, the rules of evolution, appends checked and stamped all or none, old
// records read under the newest version, and the versions across a reopen. In memory and on
// disk.
#include "services/queue/queue_schema.h"

#include <gtest/gtest.h>

#include <fstream>

#include "core/json.h"
#include "packice/queue.h"
#include "testing.h"

namespace packice {
namespace {

using namespace std::chrono_literals;
using testing::TempDir;

QueueSchema Schema(std::string_view json) {
  Result<QueueSchema> s = ParseQueueSchema(json);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return s.ok() ? *s : QueueSchema{};
}

QueueRecord Json(std::string value) {
  QueueRecord r;
  r.value = std::move(value);
  return r;
}

std::string HeaderOf(const QueueRecord& r, std::string_view name) {
  for (const auto& [n, v] : r.headers) {
    if (n == name) return v;
  }
  return "";
}

constexpr std::string_view kV1 =
    R"({"fields": [{"name": "user", "type": "int", "required": true},
                   {"name": "action", "type": "string"}]})";
constexpr std::string_view kV2 =
    R"({"fields": [{"name": "user", "type": "int", "required": true},
                   {"name": "action", "type": "string"},
                   {"name": "score", "type": "float", "default": 0.5},
                   {"name": "tags", "type": "array"}]})";

TEST(QueueSchemaTest, TheJsonFormRoundTrips) {
  QueueSchema s = Schema(kV2);
  ASSERT_EQ(s.fields.size(), 4u);
  EXPECT_EQ(s.fields[0].name, "user");
  EXPECT_EQ(s.fields[0].type, SchemaType::kInt);
  EXPECT_TRUE(s.fields[0].required);
  EXPECT_EQ(s.fields[2].default_json, "0.5");
  EXPECT_EQ(s.fields[3].default_json, "");
  s.version = 3;
  ASSERT_OK_AND_ASSIGN(QueueSchema again, ParseQueueSchema(QueueSchemaJson(s)));
  EXPECT_EQ(again, s);
}

TEST(QueueSchemaTest, BadSchemasSayWhatIsWrong) {
  const std::string deep = std::string(100, '[') + std::string(100, ']');
  const std::pair<std::string, std::string> cases[] = {
      {"not json", "not valid JSON"},
      {"[1]", "a schema is"},
      {deep, "deeper"},
      {R"({"fields": []})", "at least one field"},
      {R"({"fields": [{"type": "int"}]})", "has no name"},
      {R"({"fields": [{"name": "a", "type": "integer"}]})", "not one of bool int"},
      {R"({"fields": [{"name": "a"}, {"name": "a"}]})", "named twice"},
      {R"({"fields": [{"name": "a", "required": true, "default": 1}]})", "no default"},
      {R"({"fields": [{"name": "a", "type": "int", "default": "x"}]})", "not of type int"},
      {R"({"fields": [{"name": "a", "kind": "int"}]})", "unknown key 'kind'"},
      {R"({"fields": [{"name": ""}]})", "1..128 bytes"},
      {R"({"fields": [{"name": "a"}], "extra": 1})", "unknown key 'extra'"},
  };
  for (const auto& [text, says] : cases) {
    Result<QueueSchema> s = ParseQueueSchema(text);
    ASSERT_FALSE(s.ok()) << text;
    EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument) << text;
    EXPECT_NE(s.status().message().find(says), std::string::npos)
        << text << ": " << s.status().message();
  }
}

TEST(QueueSchemaTest, AVersionKeepsEveryFieldAndAddsOnlyOptionalOnes) {
  queue::SchemaSet none;
  ASSERT_OK_AND_ASSIGN(std::optional<queue::SchemaSet> v1, none.With(Schema(kV1)));
  ASSERT_TRUE(v1);
  EXPECT_EQ(v1->newest_version(), 1u);
  ASSERT_OK_AND_ASSIGN(std::optional<queue::SchemaSet> same, v1->With(Schema(kV1)));
  EXPECT_FALSE(same);  // nothing new
  ASSERT_OK_AND_ASSIGN(std::optional<queue::SchemaSet> v2, v1->With(Schema(kV2)));
  ASSERT_TRUE(v2);
  EXPECT_EQ(v2->newest_version(), 2u);
  // A required field may become optional.
  ASSERT_OK_R(v1->With(Schema(R"({"fields": [{"name": "user", "type": "int"},
                                             {"name": "action", "type": "string"}]})")));
  const std::pair<std::string_view, std::string_view> refused[] = {
      {R"({"fields": [{"name": "user", "type": "int", "required": true}]})", "is missing"},
      {R"({"fields": [{"name": "user", "type": "string", "required": true},
                      {"name": "action", "type": "string"}]})",
       "keeps its type"},
      {R"({"fields": [{"name": "user", "type": "int", "required": true},
                      {"name": "action", "type": "string", "required": true}]})",
       "cannot become required"},
      {R"({"fields": [{"name": "user", "type": "int", "required": true},
                      {"name": "action", "type": "string"},
                      {"name": "new", "type": "int", "required": true}]})",
       "a new field is optional"},
  };
  for (const auto& [text, says] : refused) {
    auto r = v1->With(Schema(text));
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_NE(r.status().message().find(says), std::string::npos) << r.status().message();
  }
  // The file form keeps the versions.
  ASSERT_OK_AND_ASSIGN(queue::SchemaSet back, queue::SchemaSet::Parse(v2->Serialize()));
  EXPECT_EQ(back.versions(), v2->versions());
  EXPECT_EQ(queue::SchemaSet::Parse("{}").status().code(), StatusCode::kDataLoss);
}

class QueueSchemaTopicTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    Reopen();
    ASSERT_OK(queue_->CreateTopic("events", {.buckets = 1}));
  }
  void Reopen() {
    queue_.reset();
    auto q = OpenQueue({.dir = GetParam() ? dir_.path() + "/q" : ""});
    ASSERT_OK_R(q);
    queue_ = *std::move(q);
  }
  std::vector<StoredRecord> All() {
    const QueuePosition from[] = {{0, 0}};
    auto got = queue_->Read("events", from, 100, 0ms);
    EXPECT_TRUE(got.ok()) << got.status().ToString();
    if (!got.ok() || got->empty()) return {};
    return (*got)[0].records;
  }

  TempDir dir_;
  std::shared_ptr<Queue> queue_;
};

TEST_P(QueueSchemaTopicTest, AppendsAreCheckedAndOldRecordsReadUnderTheNewestVersion) {
  // Before a schema: anything, read back as written.
  const QueueRecord before[] = {Json("not json at all")};
  ASSERT_OK_R(queue_->Append("events", 0, before));
  ASSERT_OK_AND_ASSIGN(uint32_t v1, queue_->SetSchema("events", Schema(kV1)));
  EXPECT_EQ(v1, 1u);
  ASSERT_OK_AND_ASSIGN(uint32_t again, queue_->SetSchema("events", Schema(kV1)));
  EXPECT_EQ(again, 1u);

  const QueueRecord good[] = {Json(R"({"user": 7, "action": "click"})"), Json(R"({"user": 8})")};
  ASSERT_OK_R(queue_->Append("events", 0, good));
  // Bad records: the whole append is refused, naming the record and the field.
  const std::pair<std::string, std::string> bad[] = {
      {R"({"action": "click"})", "records[1] lacks the required field 'user'"},
      {R"({"user": "7"})", "field 'user' is int, not string"},
      {R"({"user": 1.5})", "field 'user' is int, not number"},
      {R"({"user": 7, "extra": 1})", "field 'extra' is not in schema version 1"},
      {R"([1, 2])", "is not a JSON object"},
      {"{\"user\": 7, \"action\": \"\xff\"}", "is not a JSON object"},
      {R"({"user": null})", "field 'user' is int, not null"},
  };
  for (const auto& [value, says] : bad) {
    const QueueRecord two[] = {Json(R"({"user": 1})"), Json(value)};
    Result<uint64_t> r = queue_->Append("events", 0, two);
    ASSERT_FALSE(r.ok()) << value;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find(says), std::string::npos) << r.status().message();
  }
  ASSERT_OK_AND_ASSIGN(std::vector<BucketInfo> b, queue_->Buckets("events"));
  EXPECT_EQ(b[0].end_offset, 3u);  // nothing of the bad appends

  ASSERT_OK_AND_ASSIGN(uint32_t v2, queue_->SetSchema("events", Schema(kV2)));
  EXPECT_EQ(v2, 2u);
  const QueueRecord newer[] = {Json(R"({"user": 9, "score": 2, "tags": ["a"]})")};
  ASSERT_OK_R(queue_->Append("events", 0, newer));
  // A version that drops a field is refused; the topic keeps version 2.
  EXPECT_EQ(queue_->SetSchema("events", Schema(kV1)).status().code(), StatusCode::kInvalidArgument);

  auto check = [&] {
    std::vector<StoredRecord> all = All();
    ASSERT_EQ(all.size(), 4u);
    EXPECT_EQ(all[0].record.value, "not json at all");  // unstamped: as written
    EXPECT_EQ(HeaderOf(all[0].record, kSchemaVersionHeader), "");
    // Written under version 1, read under version 2: the new fields, with their defaults.
    EXPECT_EQ(ParseJson(all[1].record.value),
              ParseJson(R"({"user": 7, "action": "click", "score": 0.5, "tags": null})"));
    EXPECT_EQ(ParseJson(all[2].record.value),
              ParseJson(R"({"user": 8, "action": null, "score": 0.5, "tags": null})"));
    for (size_t i = 1; i < 4; ++i) {
      EXPECT_EQ(HeaderOf(all[i].record, kSchemaVersionHeader), "2");
      EXPECT_EQ(HeaderOf(all[i].record, "content-type"), "application/json");
    }
    EXPECT_EQ(ParseJson(all[3].record.value),
              ParseJson(R"({"user": 9, "score": 2, "tags": ["a"]})"));
    ASSERT_OK_AND_ASSIGN(std::vector<QueueSchema> versions, queue_->Schemas("events"));
    ASSERT_EQ(versions.size(), 2u);
    EXPECT_EQ(versions[0].version, 1u);
    EXPECT_EQ(versions[1].fields.size(), 4u);
  };
  check();
  if (GetParam()) {
    Reopen();
    check();
    const QueueRecord refused[] = {Json(R"({"user": "x"})")};
    EXPECT_EQ(queue_->Append("events", 0, refused).status().code(), StatusCode::kInvalidArgument);
  }
  EXPECT_EQ(queue_->SetSchema("nosuch", Schema(kV1)).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(queue_->Schemas("nosuch").status().code(), StatusCode::kNotFound);
}

TEST_P(QueueSchemaTopicTest, AnExportCarriesTheVersionsAndTheRecordsFromBeforeThem) {
  const QueueRecord before[] = {Json("raw bytes")};
  ASSERT_OK_R(queue_->Append("events", 0, before));
  ASSERT_OK_R(queue_->SetSchema("events", Schema(kV1)));
  const QueueRecord v1[] = {Json(R"({"user": 1})")};
  ASSERT_OK_R(queue_->Append("events", 0, v1));
  ASSERT_OK_R(queue_->SetSchema("events", Schema(kV2)));
  const std::string file = dir_.path() + "/events.export";
  ASSERT_OK(ExportTopic(*queue_, "events", file));
  ASSERT_OK(ImportTopic(*queue_, "copy", file));
  ASSERT_OK_AND_ASSIGN(std::vector<QueueSchema> a, queue_->Schemas("events"));
  ASSERT_OK_AND_ASSIGN(std::vector<QueueSchema> b, queue_->Schemas("copy"));
  EXPECT_EQ(a, b);
  const QueuePosition from[] = {{0, 0}};
  ASSERT_OK_AND_ASSIGN(auto original, queue_->Read("events", from, 10, 0ms));
  ASSERT_OK_AND_ASSIGN(auto copied, queue_->Read("copy", from, 10, 0ms));
  ASSERT_EQ(copied.size(), 1u);
  ASSERT_EQ(copied[0].records.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(copied[0].records[i].record.value, original[0].records[i].record.value);
    EXPECT_EQ(copied[0].records[i].record.headers, original[0].records[i].record.headers);
  }
  // The copy checks appends against the newest version too.
  const QueueRecord bad[] = {Json(R"({"user": "x"})")};
  EXPECT_EQ(queue_->Append("copy", 0, bad).status().code(), StatusCode::kInvalidArgument);
}

TEST_P(QueueSchemaTopicTest, ACorruptSchemaFileIsDataLossAtOpen) {
  if (!GetParam()) GTEST_SKIP() << "on disk only";
  ASSERT_OK_R(queue_->SetSchema("events", Schema(kV1)));
  queue_.reset();
  std::ofstream(dir_.path() + "/q/topics/1/SCHEMAS") << "{\"format\": \"packice-queue-sch";
  Result<std::shared_ptr<Queue>> q = OpenQueue({.dir = dir_.path() + "/q"});
  ASSERT_FALSE(q.ok());
  EXPECT_EQ(q.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(q.status().message().find("SCHEMAS"), std::string::npos) << q.status().message();
}

INSTANTIATE_TEST_SUITE_P(MemoryAndDisk, QueueSchemaTopicTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "disk" : "memory"; });

}  // namespace
}  // namespace packice
