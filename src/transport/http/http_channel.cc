// The client side of the HTTP transport (docs/http.md) over libcurl; see http_channel.h.
#include "transport/http/http_channel.h"

#include <curl/curl.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <new>
#include <unordered_map>

#include "core/mutex.h"
#include "core/validate.h"
#include "packice/peer.h"
#include "transport/http/http_common.h"

namespace packice {
namespace http {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

// The only value of header `name`, or nullptr.
const std::string* Find(const HeaderMap& headers, std::string_view name) {
  auto it = headers.find(name);
  return it == headers.end() ? nullptr : &it->second;
}

template <typename T>
std::optional<T> ParseDecimal(std::string_view s) {
  T v{};
  if (s.empty()) return std::nullopt;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

}  // namespace

Result<BaseUrl> ParseBaseUrl(std::string_view url) {
  const auto bad = [&](std::string_view why) {
    return InvalidArgument("bad URL '" + std::string(url) + "': " + std::string(why));
  };
  BaseUrl out;
  const size_t colon = url.find("://");
  if (colon == std::string_view::npos) return bad("expected http://host:port or https://host:port");
  out.scheme = ToLower(url.substr(0, colon));
  if (out.scheme != "http" && out.scheme != "https") return bad("the scheme must be http or https");
  std::string_view rest = url.substr(colon + 3);
  for (unsigned char c : rest) {
    if (c <= 0x20 || c >= 0x7f)
      return bad("spaces, control and non-ASCII characters must be escaped");
  }
  if (rest.find_first_of("?#") != std::string_view::npos) {
    return bad("a base URL has no query or fragment");
  }
  const size_t slash = rest.find('/');
  const std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? "" : rest.substr(slash);
  if (authority.find('@') != std::string_view::npos) {
    return bad("credentials in the URL are not supported: use --token or $PACKICE_TOKEN");
  }
  std::string_view host = authority, port;
  if (authority.starts_with("[")) {  // [v6 address]:port
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return bad("unterminated [IPv6 address]");
    host = authority.substr(0, close + 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return bad("expected :port after the IPv6 address");
      port = after.substr(1);
      if (port.empty()) return bad("empty port");
    }
    if (host.size() <= 2) return bad("empty host");
  } else if (const size_t c = authority.find(':'); c != std::string_view::npos) {
    host = authority.substr(0, c);
    port = authority.substr(c + 1);
    if (port.empty()) return bad("empty port");
  }
  if (host.empty()) return bad("no host");
  if (!port.empty()) {
    auto p = ParseDecimal<uint32_t>(port);
    if (!p || *p == 0 || *p > 65535) return bad("the port must be 1..65535");
  }
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  out.authority = std::string(authority);
  out.path = std::string(path);
  return out;
}

std::string ObjectUrl(std::string_view base, std::string_view key) {
  std::string url(base);
  url += kObjectsPath;
  url += '/';
  url += PercentEncodePath(key);
  return url;
}

std::string ListUrl(std::string_view base, const ListOptions& options) {
  std::string url(base);
  url += kObjectsPath;
  char sep = '?';
  const auto add = [&](std::string_view name, std::string_view value) {
    url += sep;
    url += name;
    url += '=';
    url += PercentEncode(value);
    sep = '&';
  };
  if (!options.prefix.empty()) add("prefix", options.prefix);
  if (!options.start_after.empty()) add("start_after", options.start_after);
  if (options.limit != 0) add("limit", std::to_string(options.limit));
  return url;
}

void AddHeaderLine(std::string_view line, HeaderMap* headers) {
  if (line.starts_with("HTTP/")) {
    headers->clear();
    return;
  }
  const size_t colon = line.find(':');
  if (colon == std::string_view::npos || colon == 0) return;  // the blank line, or malformed
  const std::string_view name = line.substr(0, colon);
  if (!IsToken(name)) return;
  headers->emplace(ToLower(name), std::string(Trim(line.substr(colon + 1))));
}

Result<ObjectInfo> ObjectInfoFromHeaders(const HeaderMap& headers, std::string_view key) {
  ObjectInfo info;
  info.key = std::string(key);
  info.state = ObjectState::kSealed;
  const auto bad = [](std::string_view name, const std::string& value) {
    return ProtocolError("malformed " + std::string(name) + " header '" + value + "'");
  };
  std::optional<ETagParts> etag;
  if (const std::string* v = Find(headers, "etag")) etag = ParseETag(*v);
  if (const std::string* v = Find(headers, kVersionHeader)) {
    auto n = ParseDecimal<uint64_t>(*v);
    if (!n) return bad(kVersionHeader, *v);
    info.version = *n;
  } else if (etag) {
    info.version = etag->version;
  }
  if (const std::string* v = Find(headers, kSizeHeader)) {
    auto n = ParseDecimal<uint64_t>(*v);
    if (!n) return bad(kSizeHeader, *v);
    info.size = *n;
  } else if (const std::string* cl = Find(headers, "content-length")) {
    auto n = ParseDecimal<uint64_t>(*cl);
    if (!n) return bad("content-length", *cl);
    info.size = *n;
  }
  if (const std::string* v = Find(headers, kTtlHeader)) {
    auto ttl = ParseTtl(*v);
    if (!ttl) return bad(kTtlHeader, *v);
    info.ttl = *ttl;
  }
  if (const std::string* v = Find(headers, kExpiresHeader)) {
    auto n = ParseDecimal<int64_t>(*v);
    if (!n || *n < 0) return bad(kExpiresHeader, *v);
    info.expires_unix_ms = *n;
  }
  if (const std::string* v = Find(headers, kTierHeader)) info.tier = *v;
  if (etag) {
    info.created_unix_ms = etag->created_unix_ms;
  } else if (const std::string* v = Find(headers, "last-modified")) {
    info.created_unix_ms = ParseHttpDate(*v).value_or(0);  // informational: never an error
  }
  for (auto it = headers.lower_bound(kMetaHeaderPrefix);
       it != headers.end() && it->first.starts_with(kMetaHeaderPrefix); ++it) {
    std::string name = it->first.substr(kMetaHeaderPrefix.size());
    if (!name.empty()) info.meta[std::move(name)] = it->second;
  }
  return info;
}

Status StatusFromResponse(int http_status, const HeaderMap& headers, std::string_view body,
                          bool sent_token, std::string_view what) {
  if (http_status == 401) {
    return PermissionDenied(sent_token ? "unauthorized: the node refused the token"
                                       : "unauthorized: set a token (--token or $PACKICE_TOKEN)");
  }
  StatusCode code = CodeForHttpStatus(http_status);
  if (const std::string* name = Find(headers, kErrorHeader)) {
    if (auto c = StatusCodeFromName(*name); c && *c != StatusCode::kOk) code = *c;
  }
  std::string message = ErrorMessageFromJson(body);
  if (message.empty()) message = std::string(what) + ": HTTP " + std::to_string(http_status);
  return Status(code, std::move(message));
}

Result<Meta> MetaForHeaders(const Meta& meta) {
  Meta out;
  for (const auto& [name, value] : meta) {
    if (!IsToken(name)) {
      return InvalidArgument("metadata name '" + name +
                             "' cannot be an HTTP header name (letters, digits, !#$%&'*+-.^_`|~)");
    }
    for (unsigned char c : value) {
      if ((c < 0x20 && c != '\t') || c == 0x7f) {
        return InvalidArgument("metadata value of '" + name +
                               "' holds a control character, which HTTP headers cannot carry");
      }
    }
    if (!value.empty() && (value.front() == ' ' || value.front() == '\t' || value.back() == ' ' ||
                           value.back() == '\t')) {
      return InvalidArgument("metadata value of '" + name +
                             "' begins or ends with a blank, which HTTP headers drop");
    }
    auto [it, inserted] = out.emplace(ToLower(name), value);
    if (!inserted) {
      return InvalidArgument("metadata names differ only in case (HTTP ignores case): '" + name +
                             "'");
    }
  }
  return out;
}

std::vector<std::string> UploadHeaders(const CreateOptions& options, bool exclusive) {
  std::vector<std::string> out;
  if (options.ttl) out.push_back("X-Packice-TTL: " + FormatTtl(*options.ttl));
  for (const auto& [name, value] : options.meta) {
    out.push_back(value.empty() ? "X-Packice-Meta-" + name + ";"
                                : "X-Packice-Meta-" + name + ": " + value);
  }
  if (exclusive) out.push_back("If-None-Match: *");
  return out;
}

}  // namespace http

namespace {

using http::HeaderMap;

// A create lease lives this long as far as the Client knows: long, so that its renewer does not
// wake for nothing (renewing a local lease is free anyway, and it never expires).
constexpr Duration kLocalLeaseTtl = std::chrono::hours(24);

struct HttpRequest {
  const char* method = "GET";  // GET, HEAD, PUT, POST, DELETE
  std::string url;
  std::vector<std::string> headers;
  bool has_body = false;  // PUT and POST
  std::span<const std::byte> body;
};

struct HttpResponse {
  int status = 0;
  HeaderMap headers;
  std::vector<std::byte> body;
};

// What curl's callbacks of one request work on.
struct Transfer {
  CURL* handle = nullptr;
  std::span<const std::byte> upload;
  size_t upload_pos = 0;
  HttpResponse* response = nullptr;
  bool reserved = false;
  Status error;  // set by a callback that made curl stop
};

size_t OnRead(char* buffer, size_t size, size_t count, void* userp) {
  auto* t = static_cast<Transfer*>(userp);
  const size_t n = std::min(size * count, t->upload.size() - t->upload_pos);
  if (n > 0) std::memcpy(buffer, t->upload.data() + t->upload_pos, n);
  t->upload_pos += n;
  return n;
}

// Lets curl rewind the body to send it again (a kept-alive connection the node had closed).
int OnSeek(void* userp, curl_off_t offset, int origin) {
  auto* t = static_cast<Transfer*>(userp);
  if (origin != SEEK_SET || offset < 0 || static_cast<uint64_t>(offset) > t->upload.size()) {
    return CURL_SEEKFUNC_CANTSEEK;
  }
  t->upload_pos = static_cast<size_t>(offset);
  return CURL_SEEKFUNC_OK;
}

size_t OnWrite(char* data, size_t size, size_t count, void* userp) {
  auto* t = static_cast<Transfer*>(userp);
  const size_t n = size * count;
  std::vector<std::byte>& body = t->response->body;
  try {
    if (!t->reserved) {
      t->reserved = true;
      curl_off_t length = -1;
      if (curl_easy_getinfo(t->handle, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length) == CURLE_OK &&
          length > 0) {
        body.reserve(static_cast<size_t>(length));
      }
    }
    const auto* p = reinterpret_cast<const std::byte*>(data);
    body.insert(body.end(), p, p + n);
  } catch (const std::exception& e) {  // bad_alloc, length_error: no room for the body
    t->error = OutOfCapacity("cannot hold a response body of " + std::to_string(body.size() + n) +
                             "+ bytes in memory: " + e.what());
    return 0;  // curl stops with CURLE_WRITE_ERROR
  }
  return n;
}

size_t OnHeader(char* data, size_t size, size_t count, void* userp) {
  auto* t = static_cast<Transfer*>(userp);
  const size_t n = size * count;
  try {
    http::AddHeaderLine(std::string_view(data, n), &t->response->headers);
  } catch (const std::exception& e) {
    t->error = Internal(std::string("reading response headers: ") + e.what());
    return 0;
  }
  return n;
}

Status CurlFailure(CURLcode code, const char* errbuf, const std::string& what) {
  std::string message = what + ": " + (errbuf[0] != '\0' ? errbuf : curl_easy_strerror(code));
  switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
      return Timeout(std::move(message));
    case CURLE_OUT_OF_MEMORY:
    case CURLE_BAD_FUNCTION_ARGUMENT:
    case CURLE_UNKNOWN_OPTION:
    case CURLE_NOT_BUILT_IN:
    case CURLE_FAILED_INIT:
    case CURLE_WRITE_ERROR:
    case CURLE_READ_ERROR:
    case CURLE_ABORTED_BY_CALLBACK:
      return Internal(std::move(message));
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
      return InvalidArgument(std::move(message));
    default:  // connect, DNS, TLS, a connection that broke
      return Unavailable(std::move(message));
  }
}

class HttpChannel final : public Channel {
 public:
  HttpChannel(http::BaseUrl base, HttpChannelOptions options)
      : base_(base.ToString()), options_(std::move(options)) {}

  ~HttpChannel() override {
    MutexLock lock(&mu_);
    for (CURL* h : idle_) curl_easy_cleanup(h);
  }

  // GET /healthz: is there a node at all?
  Status CheckHealth() {
    HttpRequest req;
    req.url = base_ + "/healthz";
    auto r = Perform(req);
    if (!r.ok())
      return Unavailable("no node at " + base_ + ": " + std::string(r.status().message()));
    if (r->status != 200) {
      return Unavailable(base_ + " is not a Packice node: GET /healthz answered HTTP " +
                         std::to_string(r->status));
    }
    return Status::Ok();
  }

  Result<OpenedObject> Create(std::string_view key, uint64_t size,
                              const CreateOptions& options) override {
    PACKICE_ASSIGN_OR_RETURN(CreateOptions checked, Check(key, options));
    Pending pending;
    pending.options = std::move(checked);
    if (key.empty()) {
      // A generated id now, as over every transport (ObjectWriter::key() is known before Seal);
      // If-None-Match: * guards it.
      pending.key = GenerateObjectId();
      pending.exclusive = true;
    } else {
      pending.key = std::string(key);
      pending.exclusive = options.exclusive;
    }
    OpenedObject o;
    try {
      o.view = std::make_shared<OwnedView>(size, /*carried_on_seal=*/true);
    } catch (const std::exception& e) {
      return OutOfCapacity("cannot buffer " + std::to_string(size) +
                           " bytes in this process for an HTTP upload: " + e.what());
    }
    o.lease_ttl = kLocalLeaseTtl;
    o.info.key = pending.key;
    o.info.size = size;
    o.info.state = ObjectState::kCreating;
    o.info.meta = pending.options.meta;
    o.info.ttl = pending.options.ttl.value_or(Duration(0));
    MutexLock lock(&mu_);
    o.lease = ++last_lease_;
    pending_.emplace(o.lease, std::move(pending));
    return o;
  }

  Result<ObjectInfo> Seal(LeaseId lease, BlobView& view, std::optional<uint64_t> size) override {
    Pending pending;
    {
      MutexLock lock(&mu_);
      auto it = pending_.find(lease);
      if (it == pending_.end()) return LeaseExpired("no create lease " + std::to_string(lease));
      if (it->second.sealing) return WrongState("a seal of this object is in progress");
      it->second.sealing = true;
      pending = it->second;
    }
    const std::span<const std::byte> bytes = view.bytes();
    Result<ObjectInfo> info = [&]() -> Result<ObjectInfo> {
      if (size && *size > bytes.size()) {
        return InvalidArgument("seal size " + std::to_string(*size) + " exceeds the allocated " +
                               std::to_string(bytes.size()) + " bytes");
      }
      return Upload(pending.key, size ? bytes.first(*size) : bytes, pending.options,
                    pending.exclusive);
    }();
    MutexLock lock(&mu_);
    if (SealEndedLease(info.status())) {
      pending_.erase(lease);
    } else if (auto it = pending_.find(lease); it != pending_.end()) {
      it->second.sealing = false;
    }
    return info;
  }

  Status Release(LeaseId lease) override { return Drop(lease); }
  Status Discard(LeaseId lease) override { return Drop(lease); }

  Status Renew(std::span<const LeaseId> leases, std::vector<LeaseId>* expired) override {
    MutexLock lock(&mu_);
    for (LeaseId id : leases) {
      if (!pending_.contains(id)) expired->push_back(id);
    }
    return Status::Ok();
  }

  Result<OpenedObject> Open(std::string_view key) override { return Get(key); }

  Result<ObjectInfo> Put(std::string_view key, std::span<const std::byte> data,
                         const CreateOptions& options) override {
    PACKICE_ASSIGN_OR_RETURN(CreateOptions checked, Check(key, options));
    return Upload(std::string(key), data, checked, options.exclusive);
  }

  Result<OpenedObject> Get(std::string_view key) override {
    PACKICE_RETURN_IF_ERROR(ValidateKey(key));
    HttpRequest req;
    req.url = http::ObjectUrl(base_, key);
    PACKICE_ASSIGN_OR_RETURN(HttpResponse r, Perform(req));
    if (r.status != 200) return Error(req, r);
    PACKICE_ASSIGN_OR_RETURN(ObjectInfo info, http::ObjectInfoFromHeaders(r.headers, key));
    if (http::HeaderMap::const_iterator it = r.headers.find(http::kSizeHeader);
        it != r.headers.end() && info.size != r.body.size()) {
      return ProtocolError("GET of '" + std::string(key) + "' sent " +
                           std::to_string(r.body.size()) + " bytes, X-Packice-Size says " +
                           it->second);
    }
    info.size = r.body.size();
    OpenedObject o;
    o.lease = 0;  // an inline read: nothing held on the node
    o.info = std::move(info);
    o.view = std::make_shared<OwnedView>(std::move(r.body));
    return o;
  }

  Result<ObjectInfo> Stat(std::string_view key) override {
    PACKICE_RETURN_IF_ERROR(ValidateKey(key));
    HttpRequest req;
    req.method = "HEAD";
    req.url = http::ObjectUrl(base_, key);
    PACKICE_ASSIGN_OR_RETURN(HttpResponse r, Perform(req));
    if (r.status != 200) return Error(req, r);
    return http::ObjectInfoFromHeaders(r.headers, key);
  }

  Result<ListPage> List(const ListOptions& options) override {
    HttpRequest req;
    req.url = http::ListUrl(base_, options);
    PACKICE_ASSIGN_OR_RETURN(HttpResponse r, Perform(req));
    if (r.status != 200) return Error(req, r);
    return http::ListPageFromJson(
        std::string_view(reinterpret_cast<const char*>(r.body.data()), r.body.size()));
  }

  Status Delete(std::string_view key) override {
    PACKICE_RETURN_IF_ERROR(ValidateKey(key));
    HttpRequest req;
    req.method = "DELETE";
    req.url = http::ObjectUrl(base_, key);
    PACKICE_ASSIGN_OR_RETURN(HttpResponse r, Perform(req));
    if (r.status != 204 && r.status != 200) return Error(req, r);
    return Status::Ok();
  }

 private:
  // A create lease: the object exists only here until Seal uploads it.
  struct Pending {
    std::string key;
    CreateOptions options;  // metadata names lower-cased
    bool exclusive = false;
    bool sealing = false;
  };

  // The checks a node would make at create, made before any bytes move; returns the options
  // with metadata names lower-cased.
  static Result<CreateOptions> Check(std::string_view key, const CreateOptions& options) {
    if (!key.empty()) PACKICE_RETURN_IF_ERROR(ValidateKey(key));
    PACKICE_RETURN_IF_ERROR(ValidateMeta(options.meta));
    if (options.ttl && options.ttl->count() < 0) return InvalidArgument("negative object TTL");
    if (options.ttl && *options.ttl > kMaxObjectTtl) {
      return InvalidArgument("object TTL of " + std::to_string(options.ttl->count()) +
                             " ms exceeds " + std::to_string(kMaxObjectTtl.count()));
    }
    CreateOptions out = options;
    PACKICE_ASSIGN_OR_RETURN(out.meta, http::MetaForHeaders(options.meta));
    return out;
  }

  Status Drop(LeaseId lease) {
    MutexLock lock(&mu_);
    if (pending_.erase(lease) == 0) return LeaseExpired("no create lease " + std::to_string(lease));
    return Status::Ok();
  }

  // PUT (POST when `key` is empty) of `data`; the info of the new object.
  Result<ObjectInfo> Upload(const std::string& key, std::span<const std::byte> data,
                            const CreateOptions& options, bool exclusive) {
    HttpRequest req;
    req.method = key.empty() ? "POST" : "PUT";
    req.url = key.empty() ? base_ + std::string(http::kObjectsPath) : http::ObjectUrl(base_, key);
    req.headers = http::UploadHeaders(options, exclusive);
    req.has_body = true;
    req.body = data;
    PACKICE_ASSIGN_OR_RETURN(HttpResponse r, Perform(req));
    if (r.status != 201 && r.status != 204 && r.status != 200) return Error(req, r);

    // The response may carry the object headers of a GET; its Content-Length is the JSON body's.
    HeaderMap headers = std::move(r.headers);
    headers.erase("content-length");
    PACKICE_ASSIGN_OR_RETURN(ObjectInfo info, http::ObjectInfoFromHeaders(headers, key));
    if (!r.body.empty()) {
      PACKICE_RETURN_IF_ERROR(http::ParsePutResultJson(
          std::string_view(reinterpret_cast<const char*>(r.body.data()), r.body.size()), &info));
    }
    if (info.key.empty()) {  // POST: the generated key is also in Location
      if (const auto it = headers.find("location"); it != headers.end()) {
        const std::string prefix = std::string(http::kObjectsPath) + "/";
        if (size_t at = it->second.find(prefix); at != std::string::npos) {
          info.key = http::PercentDecode(it->second.substr(at + prefix.size())).value_or("");
        }
      }
      if (info.key.empty()) return ProtocolError("the node did not say which key it generated");
    }
    info.size = data.size();
    const auto meta = headers.lower_bound(http::kMetaHeaderPrefix);
    if (meta == headers.end() || !meta->first.starts_with(http::kMetaHeaderPrefix)) {
      info.meta = options.meta;  // the node did not echo it: what it stored is what we sent
    }
    if (!headers.contains(http::kTtlHeader) && options.ttl) info.ttl = *options.ttl;
    return info;
  }

  Status Error(const HttpRequest& req, const HttpResponse& r) const {
    std::string what = std::string(req.method) + " " + req.url.substr(base_.size());
    return http::StatusFromResponse(
        r.status, r.headers,
        std::string_view(reinterpret_cast<const char*>(r.body.data()), r.body.size()),
        !options_.bearer_token.empty(), what);
  }

  // One request on a pooled handle. Transport failures are errors; HTTP errors are responses.
  Result<HttpResponse> Perform(const HttpRequest& req) {
    CURL* h = TakeHandle();
    if (h == nullptr) return Internal("curl_easy_init failed");
    HttpResponse response;
    Transfer t;
    t.handle = h;
    t.response = &response;
    t.upload = req.body;
    char errbuf[CURL_ERROR_SIZE];
    errbuf[0] = '\0';

    curl_slist* headers = nullptr;
    bool slist_ok = true;
    const auto add_header = [&](const std::string& line) {
      curl_slist* next = curl_slist_append(headers, line.c_str());
      if (next == nullptr)
        slist_ok = false;
      else
        headers = next;
    };
    if (!options_.bearer_token.empty())
      add_header("Authorization: Bearer " + options_.bearer_token);
    for (const std::string& line : req.headers) add_header(line);

    curl_easy_setopt(h, CURLOPT_URL, req.url.c_str());
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);  // keys may hold "." and ".." segments
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>(options_.connect_timeout.count()));
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(
        h, CURLOPT_LOW_SPEED_TIME,
        std::max(1L, static_cast<long>((options_.stall_timeout.count() + 999) / 1000)));
    if (!options_.ca_file.empty()) curl_easy_setopt(h, CURLOPT_CAINFO, options_.ca_file.c_str());
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, OnHeader);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &t);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, OnWrite);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &t);
    const std::string_view method = req.method;
    if (method == "HEAD") {
      curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (method == "DELETE") {
      curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "DELETE");
    } else if (req.has_body) {
      curl_easy_setopt(h, CURLOPT_READFUNCTION, OnRead);
      curl_easy_setopt(h, CURLOPT_READDATA, &t);
      curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, OnSeek);
      curl_easy_setopt(h, CURLOPT_SEEKDATA, &t);
      const auto size = static_cast<curl_off_t>(req.body.size());
      if (method == "POST") {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, size);
        add_header("Content-Type:");  // not a form: send no Content-Type at all
      } else {
        curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, size);
      }
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);

    Status status;
    if (!slist_ok) {
      status = Internal("out of memory building request headers");
    } else {
      const CURLcode rc = curl_easy_perform(h);
      if (rc != CURLE_OK) {
        status = !t.error.ok() ? t.error
                               : CurlFailure(rc, errbuf, std::string(req.method) + " " + req.url);
      } else {
        long code = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
        response.status = static_cast<int>(code);
      }
    }
    curl_slist_free_all(headers);
    ReturnHandle(h);
    if (!status.ok()) return status;
    return response;
  }

  CURL* TakeHandle() {
    {
      MutexLock lock(&mu_);
      if (!idle_.empty()) {
        CURL* h = idle_.back();
        idle_.pop_back();
        return h;
      }
    }
    return curl_easy_init();
  }

  // Back to the pool with its options cleared; its connection stays open for the next request.
  void ReturnHandle(CURL* h) {
    curl_easy_reset(h);
    {
      MutexLock lock(&mu_);
      if (idle_.size() < options_.max_idle_handles) {
        idle_.push_back(h);
        return;
      }
    }
    curl_easy_cleanup(h);
  }

  const std::string base_;  // "http://host:port[/prefix]"
  const HttpChannelOptions options_;
  Mutex mu_;
  std::vector<CURL*> idle_ ABSL_GUARDED_BY(mu_);
  std::unordered_map<LeaseId, Pending> pending_ ABSL_GUARDED_BY(mu_);
  LeaseId last_lease_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace

Result<std::shared_ptr<Channel>> NewHttpChannel(const std::string& base_url,
                                                const HttpChannelOptions& options) {
  PACKICE_ASSIGN_OR_RETURN(http::BaseUrl base, http::ParseBaseUrl(base_url));
  for (unsigned char c : options.bearer_token) {
    if (c < 0x21 || c == 0x7f) {
      return InvalidArgument("the token may not hold spaces or control characters");
    }
  }
  PACKICE_RETURN_IF_ERROR(http::CurlGlobalInit());
  auto channel = std::make_shared<HttpChannel>(std::move(base), options);
  if (options.check_health) PACKICE_RETURN_IF_ERROR(channel->CheckHealth());
  return std::shared_ptr<Channel>(std::move(channel));
}

}  // namespace packice
