#include "transport/http/http_common.h"

#include <curl/curl.h>

#include <charconv>
#include <cstdio>
#include <ctime>
#include <limits>
#include <mutex>
#include <nlohmann/json.hpp>

#include "core/json.h"

namespace packice::http {
namespace {

using Json = nlohmann::json;

constexpr char kHex[] = "0123456789ABCDEF";

bool IsUnreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

std::string Encode(std::string_view s, bool keep_slash) {
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if (IsUnreserved(c) || (keep_slash && c == '/')) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    }
  }
  return out;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Parses all of `s` as an unsigned number in `base`.
template <typename T>
std::optional<T> ParseAll(std::string_view s, int base = 10) {
  T v{};
  if (s.empty()) return std::nullopt;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v, base);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

Json InfoToJson(const ObjectInfo& info) {
  Json o = Json::object();
  o["key"] = info.key;
  if (!IsUtf8(info.key)) o["key_percent"] = PercentEncode(info.key);
  o["size"] = info.size;
  o["version"] = info.version;
  o["etag"] = FormatETag(info.version, info.created_unix_ms);
  o["ttl_ms"] = info.ttl.count();
  o["created_unix_ms"] = info.created_unix_ms;
  o["expires_unix_ms"] = info.expires_unix_ms;
  o["tier"] = info.tier;
  Json meta = Json::object();
  bool all_utf8 = true;
  for (const auto& [k, v] : info.meta) {
    meta[k] = v;
    all_utf8 = all_utf8 && IsUtf8(k) && IsUtf8(v);
  }
  o["meta"] = std::move(meta);
  if (!all_utf8) {
    Json pct = Json::object();
    for (const auto& [k, v] : info.meta) pct[PercentEncode(k)] = PercentEncode(v);
    o["meta_percent"] = std::move(pct);
  }
  return o;
}

// Reads optional field `name` of `o` into `*out`; false when it is there with the wrong type.
bool GetString(const Json& o, const char* name, std::string* out) {
  auto it = o.find(name);
  if (it == o.end() || it->is_null()) return true;
  if (!it->is_string()) return false;
  *out = it->get<std::string>();
  return true;
}
template <typename T>
bool GetInt(const Json& o, const char* name, T* out) {
  auto it = o.find(name);
  if (it == o.end() || it->is_null()) return true;
  if (it->is_number_unsigned()) {
    uint64_t v = it->get<uint64_t>();
    if (v > static_cast<uint64_t>(std::numeric_limits<T>::max())) return false;
    *out = static_cast<T>(v);
    return true;
  }
  if (it->is_number_integer()) {
    int64_t v = it->get<int64_t>();
    if (v < 0 && !std::numeric_limits<T>::is_signed) return false;
    *out = static_cast<T>(v);
    return true;
  }
  return false;
}

Result<ObjectInfo> InfoFromJson(const Json& o) {
  if (!o.is_object()) return ProtocolError("listing entry is not a JSON object");
  ObjectInfo info;
  info.state = ObjectState::kSealed;
  std::string key_percent;
  int64_t ttl_ms = 0;
  if (!GetString(o, "key", &info.key) || !GetString(o, "key_percent", &key_percent) ||
      !GetInt(o, "size", &info.size) || !GetInt(o, "version", &info.version) ||
      !GetInt(o, "ttl_ms", &ttl_ms) || !GetInt(o, "created_unix_ms", &info.created_unix_ms) ||
      !GetInt(o, "expires_unix_ms", &info.expires_unix_ms) || !GetString(o, "tier", &info.tier)) {
    return ProtocolError("listing entry has a field of the wrong type");
  }
  info.ttl = Duration(ttl_ms);
  if (!key_percent.empty()) {
    auto key = PercentDecode(key_percent);
    if (!key) return ProtocolError("listing entry has a bad key_percent");
    info.key = std::move(*key);
  }
  if (info.key.empty()) return ProtocolError("listing entry without a key");
  if (auto pct = o.find("meta_percent"); pct != o.end() && pct->is_object()) {
    for (const auto& [k, v] : pct->items()) {
      auto name = PercentDecode(k);
      auto value = v.is_string() ? PercentDecode(v.get<std::string>()) : std::nullopt;
      if (!name || !value) return ProtocolError("listing entry has bad meta_percent");
      info.meta[std::move(*name)] = std::move(*value);
    }
  } else if (auto meta = o.find("meta"); meta != o.end() && !meta->is_null()) {
    if (!meta->is_object()) return ProtocolError("listing entry's meta is not an object");
    for (const auto& [k, v] : meta->items()) {
      if (!v.is_string()) return ProtocolError("listing entry's meta value is not a string");
      info.meta[k] = v.get<std::string>();
    }
  }
  return info;
}

}  // namespace

// --- percent-encoding ----------------------------------------------------------------------------

std::string PercentEncode(std::string_view s) { return Encode(s, /*keep_slash=*/false); }
std::string PercentEncodePath(std::string_view s) { return Encode(s, /*keep_slash=*/true); }

std::optional<std::string> PercentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    const int hi = HexValue(s[i + 1]), lo = HexValue(s[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi << 4 | lo));
    i += 2;
  }
  return out;
}

bool IsToken(std::string_view s) {
  if (s.empty()) return false;
  for (unsigned char c : s) {
    const bool ok =
        (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
        std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
    if (!ok) return false;
  }
  return true;
}

std::string ToLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// --- ETags ---------------------------------------------------------------------------------------

std::string FormatETag(uint64_t version, int64_t created_unix_ms) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "\"%llx-%llx\"", static_cast<unsigned long long>(version),
                static_cast<unsigned long long>(created_unix_ms < 0 ? 0 : created_unix_ms));
  return buf;
}

std::optional<ETagParts> ParseETag(std::string_view etag) {
  if (etag.size() < 2 || etag.front() != '"' || etag.back() != '"') return std::nullopt;
  etag = etag.substr(1, etag.size() - 2);
  const size_t a = etag.find('-');
  if (a == std::string_view::npos) return std::nullopt;
  auto version = ParseAll<uint64_t>(etag.substr(0, a), 16);
  auto created = ParseAll<uint64_t>(etag.substr(a + 1), 16);
  if (!version || !created ||
      *created > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return std::nullopt;
  }
  return ETagParts{*version, static_cast<int64_t>(*created)};
}

// --- TTLs and dates ------------------------------------------------------------------------------

std::string FormatTtl(Duration ttl) { return std::to_string(ttl.count()) + "ms"; }

std::optional<Duration> ParseTtl(std::string_view text) {
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  auto n = ParseAll<uint64_t>(text.substr(0, digits));
  if (!n) return std::nullopt;
  const std::string_view unit = text.substr(digits);
  uint64_t ms_per_unit;
  if (unit.empty() || unit == "s") {
    ms_per_unit = 1000;
  } else if (unit == "ms") {
    ms_per_unit = 1;
  } else if (unit == "m") {
    ms_per_unit = 60'000;
  } else if (unit == "h") {
    ms_per_unit = 3'600'000;
  } else if (unit == "d") {
    ms_per_unit = 86'400'000;
  } else {
    return std::nullopt;
  }
  if (*n > static_cast<uint64_t>(std::numeric_limits<Duration::rep>::max()) / ms_per_unit) {
    return std::nullopt;
  }
  return Duration(static_cast<Duration::rep>(*n * ms_per_unit));
}

std::string FormatHttpDate(int64_t unix_ms) {
  const time_t t = static_cast<time_t>(unix_ms / 1000);
  tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d GMT", kDays[tm.tm_wday % 7],
                tm.tm_mday, kMonths[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                tm.tm_sec);
  return buf;
}

std::optional<int64_t> ParseHttpDate(std::string_view text) {
  // "Sun, 06 Nov 1994 08:49:37 GMT": fixed width, 29 bytes.
  if (text.size() != 29 || text.substr(3, 2) != ", " || text.substr(25) != " GMT") {
    return std::nullopt;
  }
  auto num = [&](size_t pos, size_t len) { return ParseAll<unsigned>(text.substr(pos, len)); };
  tm tm{};
  auto day = num(5, 2), year = num(12, 4), hour = num(17, 2), min = num(20, 2), sec = num(23, 2);
  if (!day || !year || !hour || !min || !sec || text[7] != ' ' || text[11] != ' ' ||
      text[16] != ' ' || text[19] != ':' || text[22] != ':') {
    return std::nullopt;
  }
  int month = -1;
  for (int i = 0; i < 12; ++i) {
    if (text.substr(8, 3) == kMonths[i]) month = i;
  }
  if (month < 0 || *day < 1 || *day > 31 || *hour > 23 || *min > 59 || *sec > 60) {
    return std::nullopt;
  }
  tm.tm_mday = static_cast<int>(*day);
  tm.tm_mon = month;
  tm.tm_year = static_cast<int>(*year) - 1900;
  tm.tm_hour = static_cast<int>(*hour);
  tm.tm_min = static_cast<int>(*min);
  tm.tm_sec = static_cast<int>(*sec);
  const time_t t = timegm(&tm);
  if (t == static_cast<time_t>(-1)) return std::nullopt;
  return static_cast<int64_t>(t) * 1000;
}

// --- status codes ------------------------------------------------------------------------------

std::optional<StatusCode> StatusCodeFromName(std::string_view name) {
  for (int32_t i = 0;; ++i) {
    auto code = StatusCodeFromInt(i);
    if (!code) return std::nullopt;
    if (StatusCodeName(*code) == name) return code;
  }
}

int HttpStatusForCode(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return 200;
    case StatusCode::kNotFound:
      return 404;
    case StatusCode::kAlreadyExists:
      return 412;
    case StatusCode::kWrongState:
    case StatusCode::kLeaseExpired:
    case StatusCode::kAborted:
      return 409;
    case StatusCode::kOutOfCapacity:
      return 507;
    case StatusCode::kInvalidArgument:
    case StatusCode::kProtocolError:
      return 400;
    case StatusCode::kPermissionDenied:
      return 403;
    case StatusCode::kUnavailable:
      return 503;
    case StatusCode::kTimeout:
      return 408;
    case StatusCode::kInternal:
      return 500;
    case StatusCode::kUnimplemented:
      return 501;
    case StatusCode::kDigestMismatch:
      return 400;
    case StatusCode::kOutOfRange:
      return 416;
    case StatusCode::kDataLoss:
      return 500;
  }
  return 500;
}

StatusCode CodeForHttpStatus(int http_status) {
  switch (http_status) {
    case 400:
    case 411:
    case 413:
    case 416:
    case 431:
      return StatusCode::kInvalidArgument;
    case 401:
    case 403:
      return StatusCode::kPermissionDenied;
    case 404:
      return StatusCode::kNotFound;
    case 408:
      return StatusCode::kTimeout;
    case 409:
      return StatusCode::kWrongState;
    case 412:
      return StatusCode::kAlreadyExists;
    case 501:
      return StatusCode::kUnimplemented;
    case 502:
    case 503:
    case 504:
      return StatusCode::kUnavailable;
    case 507:
      return StatusCode::kOutOfCapacity;
    default:
      return StatusCode::kInternal;
  }
}

// --- JSON bodies -------------------------------------------------------------------------------

std::string ErrorJson(const Status& status) {
  Json o = Json::object();
  o["code"] = static_cast<int32_t>(status.code());
  o["error"] = std::string(StatusCodeName(status.code()));
  o["message"] = std::string(status.message());
  return DumpJson(o);
}

std::string ErrorMessageFromJson(std::string_view body) {
  Json o = ParseJson(body);
  if (!o.is_object()) return "";
  std::string message;
  if (!GetString(o, "message", &message)) return "";
  return message;
}

std::string PutResultJson(const ObjectInfo& info) {
  Json o = Json::object();
  o["key"] = info.key;
  if (!IsUtf8(info.key)) o["key_percent"] = PercentEncode(info.key);
  o["version"] = info.version;
  o["size"] = info.size;
  o["etag"] = FormatETag(info.version, info.created_unix_ms);
  return DumpJson(o);
}

Status ParsePutResultJson(std::string_view body, ObjectInfo* info) {
  Json o = ParseJson(body);
  if (!o.is_object()) return ProtocolError("PUT result is not a JSON object");
  std::string key, key_percent;
  if (!GetString(o, "key", &key) || !GetString(o, "key_percent", &key_percent) ||
      !GetInt(o, "version", &info->version) || !GetInt(o, "size", &info->size)) {
    return ProtocolError("PUT result has a field of the wrong type");
  }
  if (!key_percent.empty()) {
    auto decoded = PercentDecode(key_percent);
    if (!decoded) return ProtocolError("PUT result has a bad key_percent");
    key = std::move(*decoded);
  }
  if (!key.empty()) info->key = std::move(key);
  return Status::Ok();
}

std::string ListPageToJson(const ListPage& page) {
  Json objects = Json::array();
  for (const ObjectInfo& info : page.objects) objects.push_back(InfoToJson(info));
  Json o = Json::object();
  o["objects"] = std::move(objects);
  o["truncated"] = page.truncated;
  return DumpJson(o);
}

Result<ListPage> ListPageFromJson(std::string_view body) {
  Json o = ParseJson(body);
  if (!o.is_object()) return ProtocolError("listing is not a JSON object");
  auto objects = o.find("objects");
  if (objects == o.end() || !objects->is_array()) {
    return ProtocolError("listing has no \"objects\" array");
  }
  ListPage page;
  page.objects.reserve(objects->size());
  for (const Json& entry : *objects) {
    PACKICE_ASSIGN_OR_RETURN(ObjectInfo info, InfoFromJson(entry));
    page.objects.push_back(std::move(info));
  }
  if (auto t = o.find("truncated"); t != o.end() && !t->is_null()) {
    if (!t->is_boolean()) return ProtocolError("listing's \"truncated\" is not a boolean");
    page.truncated = t->get<bool>();
  }
  return page;
}

Status CurlGlobalInit() {
  static std::once_flag once;
  static CURLcode result = CURLE_OK;
  std::call_once(once, [] { result = curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (result != CURLE_OK) {
    return Internal(std::string("curl_global_init: ") + curl_easy_strerror(result));
  }
  return Status::Ok();
}

}  // namespace packice::http
