#include "client/group_endpoint.h"

#include <curl/curl.h>

#include <cstdlib>
#include <mutex>
#include <nlohmann/json.hpp>
#include <utility>

#include "client/make_client.h"
#include "core/json.h"
#include "services/cache/group_registry.h"
#include "transport/http/http_common.h"

namespace packice {
namespace {

class GrpcEndpoint final : public GroupEndpoint {
 public:
  explicit GrpcEndpoint(std::unique_ptr<GrpcGroupClient> c) : c_(std::move(c)) {}
  Result<std::string> Get(const std::string& g, const std::string& k) override {
    return c_->Get(g, k);
  }
  Status Set(const std::string& g, const std::string& k, std::string_view v,
             std::optional<Duration> ttl) override {
    return c_->Set(g, k, v, ttl);
  }
  Status Delete(const std::string& g, const std::string& k) override { return c_->Delete(g, k); }
  Result<GroupStats> Stats(const std::string& g) override { return c_->Stats(g); }
  Result<std::vector<GroupListing>> List() override { return c_->List(); }

 private:
  std::unique_ptr<GrpcGroupClient> c_;
};

// HTTP exchanges with libcurl; idle handles are pooled, so that calls reuse their connections.
class HttpEndpoint final : public GroupEndpoint {
 public:
  HttpEndpoint(std::string base, std::string token, std::string ca_file)
      : base_(std::move(base)), token_(std::move(token)), ca_file_(std::move(ca_file)) {
    while (base_.ends_with("/")) base_.pop_back();
  }
  ~HttpEndpoint() override {
    for (CURL* h : idle_) curl_easy_cleanup(h);
  }

  Result<std::string> Get(const std::string& g, const std::string& k) override {
    return Do("GET", KeyUrl(g, k), nullptr, {});
  }
  Status Set(const std::string& g, const std::string& k, std::string_view v,
             std::optional<Duration> ttl) override {
    std::vector<std::string> headers;
    if (ttl) headers.push_back("X-Packice-TTL: " + std::to_string(ttl->count()) + "ms");
    return Do("PUT", KeyUrl(g, k), &v, headers).status();
  }
  Status Delete(const std::string& g, const std::string& k) override {
    return Do("DELETE", KeyUrl(g, k), nullptr, {}).status();
  }
  Result<GroupStats> Stats(const std::string& g) override {
    PACKICE_ASSIGN_OR_RETURN(
        std::string body, Do("GET", base_ + "/v1/groups/" + http::PercentEncode(g), nullptr, {}));
    auto json = ParseJson(body);
    if (!json.is_object()) return ProtocolError("the node's stats are not a JSON object");
    GroupStats s;
    for (const GroupStatField& f : GroupStatFields()) {
      s.*f.field = json.value(std::string(f.name), uint64_t{0});
    }
    s.load_seconds_sum = json.value("load_seconds_sum", 0.0);
    return s;
  }
  Result<std::vector<GroupListing>> List() override {
    PACKICE_ASSIGN_OR_RETURN(std::string body, Do("GET", base_ + "/v1/groups", nullptr, {}));
    auto json = ParseJson(body);
    if (!json.is_object() || !json["groups"].is_array()) {
      return ProtocolError("the node's group list is not {\"groups\": [...]}");
    }
    std::vector<GroupListing> out;
    for (const auto& g : json["groups"]) {
      out.push_back({g.value("name", ""), g.value("capacity_bytes", uint64_t{0}),
                     g.value("policy", ""), Duration(g.value("ttl_ms", int64_t{0})),
                     g.value("origin", ""), Duration(g.value("load_timeout_ms", int64_t{0})),
                     g.value("max_value_bytes", uint64_t{0})});
    }
    return out;
  }

 private:
  static constexpr size_t kMaxIdleHandles = 8;

  std::string KeyUrl(const std::string& g, const std::string& k) const {
    return base_ + "/v1/groups/" + http::PercentEncode(g) + "/" + http::PercentEncodePath(k);
  }

  static size_t OnBody(char* data, size_t size, size_t n, void* out) {
    static_cast<std::string*>(out)->append(data, size * n);
    return size * n;
  }
  static size_t OnHeader(char* data, size_t size, size_t n, void* out) {
    std::string_view line(data, size * n);
    constexpr std::string_view kError = "x-packice-error:";
    if (line.size() > kError.size() && http::ToLower(line.substr(0, kError.size())) == kError) {
      std::string_view v = line.substr(kError.size());
      while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
      while (!v.empty() && (v.back() == '\r' || v.back() == '\n' || v.back() == ' ')) {
        v.remove_suffix(1);
      }
      *static_cast<std::string*>(out) = std::string(v);
    }
    return size * n;
  }

  CURL* TakeHandle() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!idle_.empty()) {
        CURL* h = idle_.back();
        idle_.pop_back();
        curl_easy_reset(h);  // keeps its connections; only the options go
        return h;
      }
    }
    return curl_easy_init();
  }

  void ReturnHandle(CURL* h) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (idle_.size() < kMaxIdleHandles) {
        idle_.push_back(h);
        return;
      }
    }
    curl_easy_cleanup(h);
  }

  Result<std::string> Do(const char* method, const std::string& url, const std::string_view* body,
                         std::vector<std::string> headers) {
    PACKICE_RETURN_IF_ERROR(http::CurlGlobalInit());
    CURL* c = TakeHandle();
    if (c == nullptr) return Internal("curl_easy_init failed");
    if (!token_.empty()) headers.push_back("Authorization: Bearer " + token_);
    if (body != nullptr) headers.push_back("Expect:");  // no 100-continue round trip
    curl_slist* list = nullptr;
    for (const std::string& hd : headers) list = curl_slist_append(list, hd.c_str());
    std::unique_ptr<curl_slist, void (*)(curl_slist*)> free_list(list, curl_slist_free_all);
    std::string response, error_code;
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);  // calls may run on many threads
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &OnBody);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &response);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, &OnHeader);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &error_code);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 10'000L);
    if (!ca_file_.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, ca_file_.c_str());
    if (body != nullptr) {
      curl_easy_setopt(c, CURLOPT_POSTFIELDS, body->data());
      curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body->size()));
    }
    if (std::string_view(method) == "GET") curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    const CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    ReturnHandle(c);
    if (rc != CURLE_OK) return Unavailable(url + ": " + curl_easy_strerror(rc));
    if (status >= 200 && status < 300) return response;
    std::optional<StatusCode> code = http::StatusCodeFromName(error_code);
    std::string message = http::ErrorMessageFromJson(response);
    if (message.empty()) message = "HTTP " + std::to_string(status) + " from " + url;
    return Status(code.value_or(http::CodeForHttpStatus(static_cast<int>(status))), message);
  }

  std::string base_, token_, ca_file_;
  std::mutex mu_;
  std::vector<CURL*> idle_;  // guarded by mu_
};

}  // namespace

bool ServesGroups(std::string_view url) {
  const std::string scheme = UrlScheme(url);
  return scheme == "http" || scheme == "https" || scheme == "grpc" || scheme == "grpcs";
}

Result<std::unique_ptr<GroupEndpoint>> OpenGroupEndpoint(const std::string& url,
                                                         const ClientOptions& options) {
  const std::string token = EnvOr(options.http_token, "PACKICE_TOKEN");
  const std::string ca_file = EnvOr(options.http_ca_file, "PACKICE_CA_FILE");
  const std::string scheme = UrlScheme(url);
  if (scheme == "http" || scheme == "https") {
    return std::unique_ptr<GroupEndpoint>(std::make_unique<HttpEndpoint>(url, token, ca_file));
  }
  if (scheme == "grpc" || scheme == "grpcs") {
    std::string target = url.substr(scheme.size() + 3);
    while (target.ends_with("/")) target.pop_back();
    GrpcGroupOptions o{.bearer_token = token, .tls = scheme == "grpcs", .ca_file = ca_file};
    PACKICE_ASSIGN_OR_RETURN(std::unique_ptr<GrpcGroupClient> client,
                             GrpcGroupClient::Create(target, o));
    return std::unique_ptr<GroupEndpoint>(std::make_unique<GrpcEndpoint>(std::move(client)));
  }
  return InvalidArgument("cache groups are served over HTTP and gRPC, not at " + url +
                         ": use the node's http://HOST:PORT or grpc://HOST:PORT URL");
}

}  // namespace packice
