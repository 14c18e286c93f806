#include "transport/http/kv_request.h"

#include <array>
#include <charconv>
#include <limits>
#include <nlohmann/json.hpp>

#include "core/json.h"
#include "core/parse.h"
#include "transport/http/http_common.h"
#include "transport/http/http_request.h"

namespace packice::http_kv {
namespace {

using Json = nlohmann::json;

constexpr std::string_view kAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
// The most events one watch may buffer when a client asks (?buffer_events).
constexpr uint64_t kMaxBufferEvents = 1'000'000;

// A decimal integer in [min, max], the whole of `s`.
std::optional<int64_t> ParseInt(std::string_view s, int64_t min, int64_t max) {
  int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty() || v < min || v > max) {
    return std::nullopt;
  }
  return v;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string Quoted(std::string_view s) {
  return "'" + std::string(s.substr(0, 64)) + (s.size() > 64 ? "...'" : "'");
}

std::string_view EngineName(KvEngine e) {
  return e == KvEngine::kMemTable ? "memtable" : "swisstable";
}
std::string_view ModeName(KvWriteMode m) {
  return m == KvWriteMode::kNoLinear ? "nolinear" : "linear";
}
std::string_view FsyncName(KvFsync f) {
  switch (f) {
    case KvFsync::kAlways:
      return "always";
    case KvFsync::kInterval:
      return "interval";
    case KvFsync::kNever:
      return "never";
  }
  return "always";
}

Json KeyValueJson(const KeyValue& kv, bool with_value) {
  Json o = Json::object();
  o["key"] = Base64Encode(kv.key);
  if (with_value) o["value"] = Base64Encode(kv.value);
  o["create_revision"] = kv.create_revision;
  o["mod_revision"] = kv.mod_revision;
  o["version"] = kv.version;
  if (kv.expires_unix_ms != 0) o["expires_unix_ms"] = kv.expires_unix_ms;
  return o;
}

// A non-negative integer field of `o` into `*out`. Errors: kInvalidArgument.
Status NonNegative(const Json& v, std::string_view what, int64_t* out) {
  if (!v.is_number_integer() ||
      (v.is_number_unsigned() &&
       v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))) {
    return InvalidArgument(std::string(what) + " must be a non-negative integer");
  }
  const int64_t n = v.get<int64_t>();
  if (n < 0) return InvalidArgument(std::string(what) + " must be a non-negative integer");
  *out = n;
  return Status();
}

Status Base64Field(const Json& v, std::string_view what, std::string* out) {
  if (!v.is_string()) return InvalidArgument(std::string(what) + " must be a base64 string");
  std::optional<std::string> bytes = Base64Decode(v.get_ref<const std::string&>());
  if (!bytes) return InvalidArgument(std::string(what) + " is not valid base64");
  *out = std::move(*bytes);
  return Status();
}

Result<BatchOp> ParseOp(const Json& j, size_t index) {
  const std::string at = "ops[" + std::to_string(index) + "]";
  if (!j.is_object()) return InvalidArgument(at + " must be an object");
  BatchOp op;
  auto kind = j.find("op");
  if (kind == j.end() || !kind->is_string()) {
    return InvalidArgument(at + " needs \"op\": \"put\" or \"delete\"");
  }
  const std::string& name = kind->get_ref<const std::string&>();
  if (name == "put") {
    op.kind = BatchOp::Kind::kPut;
  } else if (name == "delete") {
    op.kind = BatchOp::Kind::kDelete;
  } else {
    return InvalidArgument(at + ": op must be \"put\" or \"delete\", not " + Quoted(name));
  }
  const bool put = op.kind == BatchOp::Kind::kPut;
  bool has_key = false;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& field = it.key();
    const Json& v = it.value();
    if (field == "op") continue;
    if (field == "key") {
      PACKICE_RETURN_IF_ERROR(Base64Field(v, at + ".key", &op.key));
      has_key = true;
    } else if (field == "value" && put) {
      PACKICE_RETURN_IF_ERROR(Base64Field(v, at + ".value", &op.value));
    } else if (field == "ttl_ms" && put) {
      int64_t ms = 0;
      PACKICE_RETURN_IF_ERROR(NonNegative(v, at + ".ttl_ms", &ms));
      op.ttl = Duration(ms);
    } else if (field == "if_mod_revision") {
      int64_t rev = 0;
      PACKICE_RETURN_IF_ERROR(NonNegative(v, at + ".if_mod_revision", &rev));
      op.if_mod_revision = rev;
    } else if (field == "ignore_missing" && !put) {
      if (!v.is_boolean()) return InvalidArgument(at + ".ignore_missing must be true or false");
      op.ignore_missing = v.get<bool>();
    } else {
      return InvalidArgument(at + ": unknown field " + Quoted(field) + " for a " + name);
    }
  }
  if (!has_key) return InvalidArgument(at + " needs \"key\" (base64)");
  return op;
}

}  // namespace

// --- base64 ---------------------------------------------------------------------------------

std::string Base64Encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  const auto b = [&](size_t k) {
    return static_cast<uint32_t>(static_cast<unsigned char>(bytes[k]));
  };
  for (; i + 3 <= bytes.size(); i += 3) {
    const uint32_t n = b(i) << 16 | b(i + 1) << 8 | b(i + 2);
    out += kAlphabet[n >> 18];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += kAlphabet[n & 63];
  }
  if (const size_t left = bytes.size() - i; left > 0) {
    const uint32_t n = b(i) << 16 | (left == 2 ? b(i + 1) << 8 : 0);
    out += kAlphabet[n >> 18];
    out += kAlphabet[(n >> 12) & 63];
    out += left == 2 ? kAlphabet[(n >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::optional<std::string> Base64Decode(std::string_view text) {
  static const std::array<int8_t, 256> kValue = [] {
    std::array<int8_t, 256> v{};
    v.fill(-1);
    for (size_t i = 0; i < kAlphabet.size(); ++i)
      v[static_cast<unsigned char>(kAlphabet[i])] = static_cast<int8_t>(i);
    return v;
  }();
  if (text.size() % 4 != 0) return std::nullopt;
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (size_t i = 0; i < text.size(); i += 4) {
    const bool last = i + 4 == text.size();
    int pad = 0;
    uint32_t n = 0;
    for (size_t k = 0; k < 4; ++k) {
      const char c = text[i + k];
      if (c == '=' && last && k >= 2) {
        ++pad;
        n <<= 6;
        continue;
      }
      const int8_t v = kValue[static_cast<unsigned char>(c)];
      if (v < 0 || pad > 0) return std::nullopt;  // not the alphabet, or data after '='
      n = n << 6 | static_cast<uint32_t>(v);
    }
    if ((pad == 1 && (n & 0xff) != 0) || (pad == 2 && (n & 0xffff) != 0)) {
      return std::nullopt;  // bits set past the last byte: not what any encoder makes
    }
    out += static_cast<char>(n >> 16);
    if (pad < 2) out += static_cast<char>((n >> 8) & 0xff);
    if (pad < 1) out += static_cast<char>(n & 0xff);
  }
  return out;
}

// --- the path -------------------------------------------------------------------------------

Result<KvPath> ParseKvPath(std::string_view rest) {
  const size_t slash = rest.find('/');
  const std::string_view segment = rest.substr(0, slash);
  if (segment.empty()) {
    return InvalidArgument(
        "a KV path is /v1/kv/{namespace}/{key}, the namespace one percent-encoded segment "
        "(%2Fteam%2Fns for /team/ns)");
  }
  std::optional<std::string> ns = http::PercentDecode(segment);
  if (!ns) return InvalidArgument("bad percent escape in the namespace " + Quoted(segment));
  KvPath out;
  out.ns = ns->starts_with('/') ? std::move(*ns) : "/" + *ns;
  if (slash != std::string_view::npos) {
    std::optional<std::string> key = http::PercentDecode(rest.substr(slash + 1));
    if (!key) return InvalidArgument("bad percent escape in the key");
    out.key = std::move(*key);
  }
  return out;
}

std::string NamespaceSegment(std::string_view ns) { return http::PercentEncode(ns); }

// --- the query -------------------------------------------------------------------------------

Result<KvQuery> KvQuery::Parse(std::string_view query) {
  KvQuery q;
  PACKICE_ASSIGN_OR_RETURN(q.pairs_, http_request::ParseQuery(query));
  return q;
}

bool KvQuery::Flag(std::string_view name) const {
  std::optional<std::string> v = Get(name);
  return v && *v != "0" && *v != "false";
}

std::optional<std::string> KvQuery::Get(std::string_view name) const {
  for (const auto& [n, v] : pairs_) {
    if (n == name) return v;
  }
  return std::nullopt;
}

Result<ScanOptions> ParseScanQuery(const KvQuery& q) {
  ScanOptions o;
  if (auto v = q.Get("prefix")) o.prefix = std::move(*v);
  if (auto v = q.Get("start")) o.start = std::move(*v);
  if (auto v = q.Get("end")) o.end = std::move(*v);
  if (auto v = q.Get("after")) o.after = std::move(*v);
  if (auto v = q.Get("limit")) {
    std::optional<int64_t> n = ParseInt(*v, 1, std::numeric_limits<int64_t>::max());
    if (!n) return InvalidArgument("limit must be a positive number, not " + Quoted(*v));
    o.limit = static_cast<uint64_t>(*n);
  }
  o.keys_only = q.Flag("keys_only");
  return o;
}

Result<WatchOptions> ParseWatchQuery(const KvQuery& q, const std::optional<std::string>& key,
                                     std::optional<std::string_view> last_event_id) {
  WatchOptions o;
  if (key) {
    o.key = *key;
    o.prefix = q.Flag("prefix");
  } else {
    o.key = q.Get("prefix").value_or("");
    o.prefix = true;
  }
  o.prev_kv = q.Flag("prev_kv");
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max() - 1;
  if (auto v = q.Get("rev")) {
    std::optional<int64_t> rev = ParseInt(*v, 0, kMax);
    if (!rev) return InvalidArgument("rev must be a revision (a number >= 0), not " + Quoted(*v));
    o.start_revision = *rev;
  }
  if (last_event_id) {
    std::optional<int64_t> id = ParseInt(Trim(*last_event_id), 0, kMax);
    if (!id) {
      return InvalidArgument("Last-Event-ID must be a revision, not " + Quoted(*last_event_id));
    }
    o.start_revision = *id + 1;
  }
  if (auto v = q.Get("buffer_events")) {
    std::optional<int64_t> n = ParseInt(*v, 1, static_cast<int64_t>(kMaxBufferEvents));
    if (!n) {
      return InvalidArgument("buffer_events must be 1.." + std::to_string(kMaxBufferEvents) +
                             ", not " + Quoted(*v));
    }
    o.buffer_events = static_cast<uint64_t>(*n);
  }
  return o;
}

// --- conditions ------------------------------------------------------------------------------

Result<std::optional<int64_t>> ParseCondition(std::optional<std::string_view> if_match,
                                              std::optional<std::string_view> if_none_match) {
  if (if_match && if_none_match) {
    return InvalidArgument("give If-Match or If-None-Match, not both");
  }
  if (if_none_match) {
    if (Trim(*if_none_match) != "*") {
      return InvalidArgument("If-None-Match takes only '*' (only if the key is absent)");
    }
    return std::optional<int64_t>(0);
  }
  if (!if_match) return std::optional<int64_t>();
  std::string_view tag = Trim(*if_match);
  if (tag.size() >= 2 && tag.front() == '"' && tag.back() == '"') {
    tag = tag.substr(1, tag.size() - 2);
  }
  std::optional<int64_t> rev = ParseInt(tag, 1, std::numeric_limits<int64_t>::max());
  if (!rev) {
    return InvalidArgument("If-Match takes one ETag, the key's mod revision (\"12\"), not " +
                           Quoted(*if_match));
  }
  return std::optional<int64_t>(*rev);
}

Result<PutOptions> ParsePutOptions(const KvQuery& q, std::optional<int64_t> condition) {
  PutOptions o;
  o.if_mod_revision = condition;
  o.prev_kv = q.Flag("prev_kv");
  if (auto v = q.Get("ttl")) {
    Result<Duration> ttl = ParseDuration(*v);
    if (!ttl.ok()) {
      return InvalidArgument("ttl must be like 10s, 500ms, 5m (0 = none), not " + Quoted(*v));
    }
    o.ttl = *ttl;
  }
  return o;
}

Result<DeleteOptions> ParseDeleteOptions(const KvQuery& q, std::optional<int64_t> condition) {
  if (condition && *condition == 0) {
    return InvalidArgument("If-None-Match has no meaning on a delete (use If-Match)");
  }
  if (q.Get("ttl")) return InvalidArgument("ttl has no meaning on a delete");
  DeleteOptions o;
  o.if_mod_revision = condition;
  o.prev_kv = q.Flag("prev_kv");
  return o;
}

// --- JSON bodies -----------------------------------------------------------------------------

Result<NamespaceOptions> ParseNamespaceOptions(std::string_view body) {
  NamespaceOptions o;
  if (Trim(body).empty()) return o;
  Json j = ParseJson(body);
  if (!j.is_object()) {
    return InvalidArgument(
        "a namespace's options are a JSON object: {\"engine\": \"memtable\", ...}");
  }
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& field = it.key();
    const Json& v = it.value();
    const std::string text = v.is_string() ? v.get<std::string>() : "";
    if (field == "engine") {
      if (text == "swisstable") {
        o.engine = KvEngine::kSwissTable;
      } else if (text == "memtable") {
        o.engine = KvEngine::kMemTable;
      } else {
        return InvalidArgument("engine must be \"swisstable\" or \"memtable\"");
      }
    } else if (field == "write_mode") {
      if (text == "linear") {
        o.write_mode = KvWriteMode::kLinear;
      } else if (text == "nolinear") {
        o.write_mode = KvWriteMode::kNoLinear;
      } else {
        return InvalidArgument("write_mode must be \"linear\" or \"nolinear\"");
      }
    } else if (field == "fsync") {
      if (text == "always") {
        o.fsync = KvFsync::kAlways;
      } else if (text == "interval") {
        o.fsync = KvFsync::kInterval;
      } else if (text == "never") {
        o.fsync = KvFsync::kNever;
      } else {
        return InvalidArgument("fsync must be \"always\", \"interval\" or \"never\"");
      }
    } else if (field == "fsync_interval_ms") {
      int64_t ms = 0;
      PACKICE_RETURN_IF_ERROR(NonNegative(v, "fsync_interval_ms", &ms));
      o.fsync_interval = Duration(ms);
    } else if (field == "default_ttl_ms") {
      int64_t ms = 0;
      PACKICE_RETURN_IF_ERROR(NonNegative(v, "default_ttl_ms", &ms));
      o.default_ttl = Duration(ms);
    } else {
      return InvalidArgument("unknown namespace option " + Quoted(field) +
                             " (engine, write_mode, fsync, fsync_interval_ms, default_ttl_ms)");
    }
  }
  return o;
}

std::string NamespaceListJson(std::span<const NamespaceInfo> list) {
  Json out = Json::array();
  for (const NamespaceInfo& ns : list) {
    Json o = Json::object();
    o["path"] = ns.path;
    o["engine"] = EngineName(ns.options.engine);
    o["write_mode"] = ModeName(ns.options.write_mode);
    o["fsync"] = FsyncName(ns.options.fsync);
    o["fsync_interval_ms"] = ns.options.fsync_interval.count();
    o["default_ttl_ms"] = ns.options.default_ttl.count();
    o["revision"] = ns.revision;
    o["keys"] = ns.keys;
    out.push_back(std::move(o));
  }
  Json body = Json::object();
  body["namespaces"] = std::move(out);
  return DumpJson(body);
}

std::string NamespaceCreatedJson(std::string_view ns) {
  Json body = Json::object();
  body["namespace"] = std::string(ns);
  return DumpJson(body);
}

std::string ScanJson(const ScanResult& page, bool keys_only) {
  Json kvs = Json::array();
  for (const KeyValue& kv : page.kvs) kvs.push_back(KeyValueJson(kv, !keys_only));
  Json body = Json::object();
  body["kvs"] = std::move(kvs);
  body["next"] = Base64Encode(page.next);
  body["revision"] = page.revision;
  return DumpJson(body);
}

std::string RevisionJson(int64_t revision, const std::optional<KeyValue>& prev) {
  Json body = Json::object();
  body["revision"] = revision;
  if (prev) body["prev"] = KeyValueJson(*prev, true);
  return DumpJson(body);
}

Result<std::vector<BatchOp>> ParseBatch(std::string_view body) {
  Json j = ParseJson(body);
  if (!j.is_object() || !j.contains("ops") || !j["ops"].is_array() || j.size() != 1) {
    return InvalidArgument(
        "a batch is {\"ops\": [{\"op\": \"put\", \"key\": b64, \"value\": b64}, "
        "{\"op\": \"delete\", \"key\": b64}, ...]}");
  }
  const Json& list = j["ops"];
  std::vector<BatchOp> ops;
  ops.reserve(list.size());
  for (size_t i = 0; i < list.size(); ++i) {
    PACKICE_ASSIGN_OR_RETURN(BatchOp op, ParseOp(list[i], i));
    ops.push_back(std::move(op));
  }
  return ops;
}

// --- server-sent events ----------------------------------------------------------------------

std::string SseEvents(std::span<const KvEvent> events, bool open_tail) {
  std::string out;
  for (size_t i = 0; i < events.size(); ++i) {
    const KvEvent& e = events[i];
    const bool put = e.type == KvEvent::Type::kPut;
    Json data = KeyValueJson(e.kv, put);
    data["type"] = put ? "put" : "delete";
    if (e.prev) data["prev"] = KeyValueJson(*e.prev, true);
    data["expired"] = e.expired;
    const bool last_of_revision =
        i + 1 == events.size() ? !open_tail : events[i + 1].kv.mod_revision != e.kv.mod_revision;
    if (last_of_revision) out += "id: " + std::to_string(e.kv.mod_revision) + "\n";
    out += put ? "event: put\ndata: " : "event: delete\ndata: ";
    out += DumpJson(data);  // one line: dump without indentation escapes every newline
    out += "\n\n";
  }
  return out;
}

std::string SseEnd(const Status& end, int64_t resume_revision) {
  Json data = ParseJson(http::ErrorJson(end));
  if (!data.is_object()) data = Json::object();
  data["resume_revision"] = resume_revision;
  return "event: end\ndata: " + DumpJson(data) + "\n\n";
}

}  // namespace packice::http_kv
