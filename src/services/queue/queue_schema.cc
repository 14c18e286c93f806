#include "services/queue/queue_schema.h"

#include <algorithm>
#include <set>

#include "core/json.h"
#include "core/validate.h"

namespace packice {
namespace {

using Json = nlohmann::json;

constexpr size_t kMaxFields = 256;
constexpr size_t kMaxFieldName = 128;
constexpr size_t kMaxDefaultBytes = 4096;
constexpr uint32_t kMaxVersions = 1000;
constexpr std::string_view kFileFormat = "packice-queue-schemas 1";
constexpr std::string_view kJsonContentType = "application/json";

constexpr std::pair<SchemaType, std::string_view> kTypeNames[] = {
    {SchemaType::kBool, "bool"},     {SchemaType::kInt, "int"},     {SchemaType::kFloat, "float"},
    {SchemaType::kString, "string"}, {SchemaType::kArray, "array"}, {SchemaType::kObject, "object"},
    {SchemaType::kAny, "any"},
};

std::optional<SchemaType> TypeFromName(std::string_view name) {
  for (const auto& [type, n] : kTypeNames) {
    if (n == name) return type;
  }
  return std::nullopt;
}

bool HasType(const Json& v, SchemaType type) {
  switch (type) {
    case SchemaType::kBool:
      return v.is_boolean();
    case SchemaType::kInt:
      return v.is_number_integer();
    case SchemaType::kFloat:
      return v.is_number();
    case SchemaType::kString:
      return v.is_string();
    case SchemaType::kArray:
      return v.is_array();
    case SchemaType::kObject:
      return v.is_object();
    case SchemaType::kAny:
      return true;
  }
  return false;
}

std::string Quoted(std::string_view s) { return "'" + std::string(s.substr(0, 80)) + "'"; }

Json FieldJson(const SchemaField& f) {
  Json j = Json::object();
  j["name"] = f.name;
  j["type"] = std::string(SchemaTypeName(f.type));
  if (f.required) j["required"] = true;
  if (!f.default_json.empty()) j["default"] = ParseJson(f.default_json);
  return j;
}

Json SchemaToJson(const QueueSchema& s) {
  Json fields = Json::array();
  for (const SchemaField& f : s.fields) fields.push_back(FieldJson(f));
  Json j = Json::object();
  if (s.version != 0) j["version"] = s.version;
  j["fields"] = std::move(fields);
  return j;
}

Result<SchemaField> FieldFromJson(const Json& j, size_t index) {
  const std::string at = "fields[" + std::to_string(index) + "]";
  if (!j.is_object()) {
    return InvalidArgument(at +
                           " is an object: {\"name\": N, \"type\": T[, \"required\": B]"
                           "[, \"default\": V]}");
  }
  SchemaField f;
  bool named = false;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& key = it.key();
    const Json& v = it.value();
    if (key == "name") {
      if (!v.is_string()) return InvalidArgument(at + ".name must be a string");
      f.name = v.get<std::string>();
      named = true;
    } else if (key == "type") {
      if (!v.is_string()) return InvalidArgument(at + ".type must be a string");
      std::optional<SchemaType> t = TypeFromName(v.get_ref<const std::string&>());
      if (!t) {
        return InvalidArgument(at + ".type " + Quoted(v.get_ref<const std::string&>()) +
                               " is not one of bool int float string array object any");
      }
      f.type = *t;
    } else if (key == "required") {
      if (!v.is_boolean()) return InvalidArgument(at + ".required must be true or false");
      f.required = v.get<bool>();
    } else if (key == "default") {
      if (!v.is_null()) f.default_json = DumpJson(v);
    } else {
      return InvalidArgument(at + ": unknown key " + Quoted(key) +
                             " (name, type, required, default)");
    }
  }
  if (!named) return InvalidArgument(at + " has no name");
  return f;
}

Result<QueueSchema> SchemaFromJson(const Json& j) {
  constexpr std::string_view kShape =
      "a schema is {\"fields\": [{\"name\": \"user\", \"type\": \"int\", \"required\": true}, "
      "...]}";
  if (!j.is_object()) return InvalidArgument(std::string(kShape));
  QueueSchema s;
  bool has_fields = false;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& key = it.key();
    const Json& v = it.value();
    if (key == "fields") {
      if (!v.is_array()) return InvalidArgument(std::string(kShape));
      if (v.size() > kMaxFields) {
        return InvalidArgument("a schema has at most " + std::to_string(kMaxFields) + " fields");
      }
      for (size_t i = 0; i < v.size(); ++i) {
        PACKICE_ASSIGN_OR_RETURN(SchemaField f, FieldFromJson(v[i], i));
        s.fields.push_back(std::move(f));
      }
      has_fields = true;
    } else if (key == "version") {
      if (!v.is_number_unsigned() || v.get<uint64_t>() > kMaxVersions) {
        return InvalidArgument("version must be a number 1.." + std::to_string(kMaxVersions));
      }
      s.version = v.get<uint32_t>();
    } else {
      return InvalidArgument("unknown key " + Quoted(key) + " in a schema (fields, version)");
    }
  }
  if (!has_fields) return InvalidArgument(std::string(kShape));
  return s;
}

// The record's header `name`, or nullptr.
const std::string* Header(const QueueRecord& r, std::string_view name) {
  for (const auto& [n, v] : r.headers) {
    if (n == name) return &v;
  }
  return nullptr;
}

uint32_t StampedVersion(const QueueRecord& r) {
  const std::string* v = Header(r, kSchemaVersionHeader);
  if (v == nullptr || v->empty() || v->size() > 9) return 0;
  uint32_t n = 0;
  for (char c : *v) {
    if (c < '0' || c > '9') return 0;
    n = n * 10 + static_cast<uint32_t>(c - '0');
  }
  return n;
}

void SetHeader(QueueRecord* r, std::string_view name, std::string value) {
  std::erase_if(r->headers, [name](const auto& h) { return h.first == name; });
  r->headers.emplace_back(std::string(name), std::move(value));
}

}  // namespace

std::string_view SchemaTypeName(SchemaType type) {
  for (const auto& [t, name] : kTypeNames) {
    if (t == type) return name;
  }
  return "unknown";
}

Result<QueueSchema> ParseQueueSchema(std::string_view json) {
  bool deep = false;
  Json j = ParseJson(json, kMaxJsonDepth, &deep);
  if (deep) return InvalidArgument("a schema nests deeper than " + std::to_string(kMaxJsonDepth));
  if (j.is_discarded()) return InvalidArgument("a schema is JSON: not valid JSON");
  PACKICE_ASSIGN_OR_RETURN(QueueSchema s, SchemaFromJson(j));
  PACKICE_RETURN_IF_ERROR(queue::ValidateSchema(s));
  return s;
}

std::string QueueSchemaJson(const QueueSchema& schema) { return DumpJson(SchemaToJson(schema)); }

namespace queue {

Status ValidateSchema(const QueueSchema& schema) {
  if (schema.fields.empty()) return InvalidArgument("a schema has at least one field");
  if (schema.fields.size() > kMaxFields) {
    return InvalidArgument("a schema has at most " + std::to_string(kMaxFields) + " fields");
  }
  std::set<std::string_view> names;
  for (const SchemaField& f : schema.fields) {
    const std::string at = "field " + Quoted(f.name);
    if (f.name.empty() || f.name.size() > kMaxFieldName || !IsUtf8(f.name) ||
        std::any_of(f.name.begin(), f.name.end(),
                    [](char c) { return static_cast<unsigned char>(c) < 0x20; })) {
      return InvalidArgument(at + ": a field's name is 1..128 bytes of UTF-8, no control bytes");
    }
    if (!names.insert(f.name).second) return InvalidArgument(at + " is named twice");
    if (f.type < SchemaType::kBool || f.type > SchemaType::kAny) {
      return InvalidArgument(at + ": unknown type");
    }
    if (f.default_json.empty()) continue;
    if (f.required) return InvalidArgument(at + " is required: it has no default");
    if (f.default_json.size() > kMaxDefaultBytes) {
      return InvalidArgument(at + ": a default is at most " + std::to_string(kMaxDefaultBytes) +
                             " bytes of JSON");
    }
    Json d = ParseJson(f.default_json);
    if (d.is_discarded()) return InvalidArgument(at + ": its default is not JSON");
    if (!d.is_null() && !HasType(d, f.type)) {
      return InvalidArgument(at + ": its default is not of type " +
                             std::string(SchemaTypeName(f.type)));
    }
  }
  return Status::Ok();
}

Status CheckEvolution(const QueueSchema& newest, const QueueSchema& next) {
  const std::string v = "version " + std::to_string(newest.version);
  for (const SchemaField& old : newest.fields) {
    auto it = std::find_if(next.fields.begin(), next.fields.end(),
                           [&](const SchemaField& f) { return f.name == old.name; });
    if (it == next.fields.end()) {
      return InvalidArgument("field " + Quoted(old.name) + " of " + v +
                             " is missing: a new version keeps every field and may add optional "
                             "ones");
    }
    if (it->type != old.type) {
      return InvalidArgument("field " + Quoted(old.name) + " is " +
                             std::string(SchemaTypeName(old.type)) + " in " + v + ", not " +
                             std::string(SchemaTypeName(it->type)) + ": a field keeps its type");
    }
    if (it->required && !old.required) {
      return InvalidArgument("field " + Quoted(old.name) + " is optional in " + v +
                             ": it cannot become required (older records may lack it)");
    }
  }
  for (const SchemaField& f : next.fields) {
    const bool known = std::any_of(newest.fields.begin(), newest.fields.end(),
                                   [&](const SchemaField& old) { return old.name == f.name; });
    if (!known && f.required) {
      return InvalidArgument("field " + Quoted(f.name) + " is new: a new field is optional " +
                             "(records of " + v + " and before lack it)");
    }
  }
  return Status::Ok();
}

SchemaSet::SchemaSet(std::vector<QueueSchema> versions) : versions_(std::move(versions)) {
  if (versions_.empty()) return;
  const std::vector<SchemaField>& fields = versions_.back().fields;
  for (size_t i = 0; i < fields.size(); ++i) newest_fields_.emplace(fields[i].name, i);
}

Result<SchemaSet> SchemaSet::Parse(std::string_view text) {
  auto corrupt = [](const std::string& why) { return DataLoss("SCHEMAS: " + why); };
  Json j = ParseJson(text);
  if (!j.is_object() || !j.contains("format") || j["format"] != std::string(kFileFormat) ||
      !j.contains("versions") || !j["versions"].is_array()) {
    return corrupt("not a schema file");
  }
  std::vector<QueueSchema> versions;
  for (const Json& v : j["versions"]) {
    Result<QueueSchema> s = SchemaFromJson(v);
    if (!s.ok()) return corrupt(std::string(s.status().message()));
    if (Status ok = ValidateSchema(*s); !ok.ok()) return corrupt(std::string(ok.message()));
    if (s->version != versions.size() + 1) return corrupt("versions out of order");
    if (!versions.empty()) {
      if (Status ok = CheckEvolution(versions.back(), *s); !ok.ok())
        return corrupt(std::string(ok.message()));
    }
    versions.push_back(*std::move(s));
  }
  return SchemaSet(std::move(versions));
}

std::string SchemaSet::Serialize() const {
  Json versions = Json::array();
  for (const QueueSchema& s : versions_) versions.push_back(SchemaToJson(s));
  Json j = Json::object();
  j["format"] = std::string(kFileFormat);
  j["versions"] = std::move(versions);
  return DumpJson(j) + "\n";
}

Result<std::optional<SchemaSet>> SchemaSet::With(const QueueSchema& next) const {
  PACKICE_RETURN_IF_ERROR(ValidateSchema(next));
  if (!versions_.empty()) {
    const QueueSchema& newest = versions_.back();
    PACKICE_RETURN_IF_ERROR(CheckEvolution(newest, next));
    if (next.fields == newest.fields) return std::optional<SchemaSet>();
  }
  if (versions_.size() >= kMaxVersions) {
    return InvalidArgument("a topic has at most " + std::to_string(kMaxVersions) +
                           " schema versions");
  }
  std::vector<QueueSchema> versions = versions_;
  QueueSchema& added = versions.emplace_back(next);
  added.version = static_cast<uint32_t>(versions.size());
  return std::optional<SchemaSet>(SchemaSet(std::move(versions)));
}

Status SchemaSet::Stamp(std::span<const QueueRecord> records, std::vector<QueueRecord>* out) const {
  const QueueSchema& newest = versions_.back();
  const std::string version = std::to_string(newest.version);
  out->clear();
  out->reserve(records.size());
  for (size_t i = 0; i < records.size(); ++i) {
    const std::string at = "records[" + std::to_string(i) + "]";
    bool deep = false;
    Json j = ParseJson(records[i].value, kMaxJsonDepth, &deep);
    if (deep) return InvalidArgument(at + " nests deeper than " + std::to_string(kMaxJsonDepth));
    if (!j.is_object()) {
      return InvalidArgument(at + " is not a JSON object: the topic has a schema (version " +
                             version + ")");
    }
    for (auto it = j.begin(); it != j.end(); ++it) {
      auto f = newest_fields_.find(it.key());
      if (f == newest_fields_.end()) {
        return InvalidArgument(at + ": field " + Quoted(it.key()) + " is not in schema version " +
                               version);
      }
      const SchemaField& field = newest.fields[f->second];
      if (it.value().is_null() && !field.required) continue;
      if (!HasType(it.value(), field.type)) {
        return InvalidArgument(at + ": field " + Quoted(field.name) + " is " +
                               std::string(SchemaTypeName(field.type)) + ", not " +
                               it.value().type_name());
      }
    }
    for (const SchemaField& field : newest.fields) {
      if (field.required && !j.contains(field.name)) {
        return InvalidArgument(at + " lacks the required field " + Quoted(field.name));
      }
    }
    QueueRecord& r = out->emplace_back(records[i]);
    SetHeader(&r, kSchemaVersionHeader, version);
    if (const std::string* type = Header(r, "content-type");
        type == nullptr || *type != kJsonContentType) {
      SetHeader(&r, "content-type", std::string(kJsonContentType));
    }
  }
  return Status::Ok();
}

void SchemaSet::Upgrade(QueueRecord* record) const {
  const uint32_t written = StampedVersion(*record);
  if (written == 0 || written >= newest_version()) return;
  Json j = ParseJson(record->value);
  if (!j.is_object()) return;  // stamped, so checked: not reached unless edited on disk
  for (const SchemaField& f : versions_.back().fields) {
    if (j.contains(f.name)) continue;
    j[f.name] = f.default_json.empty() ? Json(nullptr) : ParseJson(f.default_json);
  }
  record->value = DumpJson(j);
  SetHeader(record, kSchemaVersionHeader, std::to_string(newest_version()));
}

}  // namespace queue
}  // namespace packice
