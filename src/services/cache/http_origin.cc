// HttpOrigin over libcurl's easy interface: one handle per load at a time, idle handles pooled
// so that loads reuse their connections to the origin.
#include "services/cache/http_origin.h"

#include <curl/curl.h>

#include <algorithm>
#include <mutex>

#include "transport/http/http_common.h"  // CurlGlobalInit

namespace packice {
namespace {

constexpr std::string_view kPlaceholder = "{key}";
constexpr std::string_view kExample = " (expected a URL like http://origin:8000/users/{key})";
// The part of an error body kept for the message.
constexpr size_t kErrorBodyBytes = 200;

Status BadTemplate(std::string_view url_template, std::string_view what) {
  return InvalidArgument("origin '" + std::string(url_template.substr(0, 200)) +
                         "': " + std::string(what) + std::string(kExample));
}

// What the write callback collects of one transfer.
struct Transfer {
  CURL* handle = nullptr;
  uint64_t max_bytes = 0;
  std::string body;
  bool too_large = false;
  bool status_checked = false;
  bool success = false;  // a 2xx status
};

size_t OnBody(char* data, size_t size, size_t n, void* arg) {
  auto* t = static_cast<Transfer*>(arg);
  const size_t len = size * n;
  if (!t->status_checked) {
    long code = 0;
    curl_easy_getinfo(t->handle, CURLINFO_RESPONSE_CODE, &code);
    t->success = code >= 200 && code < 300;
    t->status_checked = true;
    // A body of a stated length is received into one allocation, not grown (a copy of all
    // received so far at each doubling).
    curl_off_t length = -1;
    if (t->success &&
        curl_easy_getinfo(t->handle, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length) == CURLE_OK &&
        length > 0 && static_cast<uint64_t>(length) <= t->max_bytes) {
      t->body.reserve(static_cast<size_t>(length));
    }
  }
  if (!t->success) {  // an error page: only its start, for the message
    const size_t keep = std::min(len, kErrorBodyBytes - std::min(kErrorBodyBytes, t->body.size()));
    t->body.append(data, keep);
    return len;
  }
  if (len > t->max_bytes - t->body.size()) {
    t->too_large = true;
    return 0;  // aborts the transfer: CURLE_WRITE_ERROR
  }
  t->body.append(data, len);
  return len;
}

// The error body, printable, for a message.
std::string Printable(std::string_view body) {
  std::string out;
  for (char c : body) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
    if (static_cast<unsigned char>(c) >= 0x20 && c != 0x7f) out += c;
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

}  // namespace

std::string PercentEncodeKey(std::string_view key) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(key.size());
  for (unsigned char c : key) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

Status ValidateOriginTemplate(std::string_view t) {
  std::string_view rest;
  if (t.starts_with("http://")) {
    rest = t.substr(7);
  } else if (t.starts_with("https://")) {
    rest = t.substr(8);
  } else {
    return BadTemplate(t, "must start with http:// or https://");
  }
  for (unsigned char c : t) {
    if (c <= 0x20 || c == 0x7f) return BadTemplate(t, "has a space or a control character");
  }
  const size_t authority_end = rest.find_first_of("/?#");
  const std::string_view authority = rest.substr(0, authority_end);
  if (authority.empty() || authority.starts_with(":")) return BadTemplate(t, "names no host");
  if (authority.find('@') != std::string_view::npos) {
    return BadTemplate(t, "carries credentials, which would show in listings and logs");
  }
  if (authority.find_first_of("{}") != std::string_view::npos) {
    return BadTemplate(t, "has {key} in the host; it belongs in the path or the query");
  }
  if (t.find('#') != std::string_view::npos) return BadTemplate(t, "has a fragment (#)");
  const size_t at = t.find(kPlaceholder);
  if (at == std::string_view::npos) return BadTemplate(t, "has no {key}");
  if (t.find(kPlaceholder, at + 1) != std::string_view::npos) {
    return BadTemplate(t, "has {key} more than once");
  }
  std::string without(t);
  without.erase(at, kPlaceholder.size());
  if (without.find_first_of("{}") != std::string::npos) {
    return BadTemplate(t, "has braces other than {key}");
  }
  return Status::Ok();
}

Result<std::shared_ptr<HttpOrigin>> HttpOrigin::Create(std::string url_template,
                                                       HttpOriginOptions options) {
  PACKICE_RETURN_IF_ERROR(ValidateOriginTemplate(url_template));
  if (options.timeout.count() <= 0) return InvalidArgument("an origin's timeout must be positive");
  if (options.max_value_bytes == 0)
    return InvalidArgument("an origin's max value must be positive");
  PACKICE_RETURN_IF_ERROR(http::CurlGlobalInit());
  return std::shared_ptr<HttpOrigin>(new HttpOrigin(std::move(url_template), options));
}

HttpOrigin::HttpOrigin(std::string url_template, HttpOriginOptions options)
    : template_(std::move(url_template)), options_(options) {}

HttpOrigin::~HttpOrigin() {
  for (void* h : idle_) curl_easy_cleanup(static_cast<CURL*>(h));
}

std::string HttpOrigin::UrlFor(std::string_view key) const {
  std::string url = template_;
  url.replace(url.find(kPlaceholder), kPlaceholder.size(), PercentEncodeKey(key));
  return url;
}

void* HttpOrigin::TakeHandle() const {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!idle_.empty()) {
      void* h = idle_.back();
      idle_.pop_back();
      return h;
    }
  }
  return curl_easy_init();
}

void HttpOrigin::ReturnHandle(void* handle) const {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (idle_.size() < options_.max_idle_handles) {
      idle_.push_back(handle);
      return;
    }
  }
  curl_easy_cleanup(static_cast<CURL*>(handle));
}

Result<std::string> HttpOrigin::Load(std::string_view key) const {
  CURL* h = static_cast<CURL*>(TakeHandle());
  if (h == nullptr) return Internal("curl_easy_init failed");
  // Reset keeps the handle's connections and DNS cache; only the options go.
  curl_easy_reset(h);
  const std::string url = UrlFor(key);
  Transfer t{.handle = h, .max_bytes = options_.max_value_bytes};
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);  // loads run on many threads
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.timeout.count()));
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &OnBody);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(h, CURLOPT_USERAGENT, "packiced");
  const CURLcode rc = curl_easy_perform(h);
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  ReturnHandle(h);

  if (t.too_large) {
    return InvalidArgument("origin value too large: " + url + " sent more than " +
                           std::to_string(options_.max_value_bytes) + " bytes");
  }
  if (rc == CURLE_OPERATION_TIMEDOUT) {
    return Timeout("origin " + url + " did not answer within " +
                   std::to_string(options_.timeout.count()) + " ms");
  }
  if (rc != CURLE_OK) {
    return Unavailable("origin " + url + ": " + curl_easy_strerror(rc));
  }
  if (status >= 200 && status < 300) return std::move(t.body);
  std::string detail = Printable(t.body);
  if (!detail.empty()) detail = ": " + detail;
  if (status == 404) return NotFound("origin has no '" + url + "' (404" + detail + ")");
  return Unavailable("origin answered " + std::to_string(status) + " for " + url + detail);
}

CacheGetter HttpOrigin::Getter() const {
  return [self = shared_from_this()](std::string_view key) { return self->Load(key); };
}

}  // namespace packice
