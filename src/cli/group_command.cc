#include "cli/group_command.h"

#include <curl/curl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <iostream>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>

#include "core/parse.h"
#include "services/cache/group_registry.h"
#include "transport/grpc/group_channel.h"
#include "transport/http/http_common.h"

namespace packice::cli {
namespace {

int Fail(const Status& s) {
  std::cerr << "packice: " << s.ToString() << "\n";
  return 1;
}

std::string EnvOr(const std::string& value, const char* name) {
  if (!value.empty()) return value;
  const char* env = std::getenv(name);
  return env != nullptr ? env : "";
}

// The calls, whichever transport carries them.
class GroupEndpoint {
 public:
  virtual ~GroupEndpoint() = default;
  virtual Result<std::string> Get(const std::string& group, const std::string& key) = 0;
  virtual Status Set(const std::string& group, const std::string& key, const std::string& value,
                     std::optional<Duration> ttl) = 0;
  virtual Status Delete(const std::string& group, const std::string& key) = 0;
  virtual Result<GroupStats> Stats(const std::string& group) = 0;
  virtual Result<std::vector<GroupListing>> List() = 0;
};

class GrpcEndpoint final : public GroupEndpoint {
 public:
  explicit GrpcEndpoint(std::unique_ptr<GrpcGroupClient> c) : c_(std::move(c)) {}
  Result<std::string> Get(const std::string& g, const std::string& k) override {
    return c_->Get(g, k);
  }
  Status Set(const std::string& g, const std::string& k, const std::string& v,
             std::optional<Duration> ttl) override {
    return c_->Set(g, k, v, ttl);
  }
  Status Delete(const std::string& g, const std::string& k) override { return c_->Delete(g, k); }
  Result<GroupStats> Stats(const std::string& g) override { return c_->Stats(g); }
  Result<std::vector<GroupListing>> List() override { return c_->List(); }

 private:
  std::unique_ptr<GrpcGroupClient> c_;
};

// One HTTP exchange with libcurl (a CLI call makes one, so no connection is kept).
class HttpEndpoint final : public GroupEndpoint {
 public:
  HttpEndpoint(std::string base, std::string token, std::string ca_file)
      : base_(std::move(base)), token_(std::move(token)), ca_file_(std::move(ca_file)) {
    while (base_.ends_with("/")) base_.pop_back();
  }

  Result<std::string> Get(const std::string& g, const std::string& k) override {
    return Do("GET", KeyUrl(g, k), nullptr, {});
  }
  Status Set(const std::string& g, const std::string& k, const std::string& v,
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
    auto json = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (!json.is_object()) return ProtocolError("the node's stats are not a JSON object");
    GroupStats s;
    for (const GroupStatField& f : GroupStatFields()) {
      s.*f.field = json.value(std::string(f.name), uint64_t{0});
    }
    return s;
  }
  Result<std::vector<GroupListing>> List() override {
    PACKICE_ASSIGN_OR_RETURN(std::string body, Do("GET", base_ + "/v1/groups", nullptr, {}));
    auto json = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
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

  Result<std::string> Do(const char* method, const std::string& url, const std::string* body,
                         std::vector<std::string> headers) {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) return Internal("curl_global_init");
    std::unique_ptr<CURL, void (*)(CURL*)> h(curl_easy_init(), curl_easy_cleanup);
    if (!h) return Internal("curl_easy_init failed");
    if (!token_.empty()) headers.push_back("Authorization: Bearer " + token_);
    if (body != nullptr) headers.push_back("Expect:");  // no 100-continue round trip
    curl_slist* list = nullptr;
    for (const std::string& hd : headers) list = curl_slist_append(list, hd.c_str());
    std::unique_ptr<curl_slist, void (*)(curl_slist*)> free_list(list, curl_slist_free_all);
    std::string response, error_code;
    CURL* c = h.get();
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
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
    if (rc != CURLE_OK) return Unavailable(url + ": " + curl_easy_strerror(rc));
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (status >= 200 && status < 300) return response;
    std::optional<StatusCode> code = http::StatusCodeFromName(error_code);
    std::string message = http::ErrorMessageFromJson(response);
    if (message.empty()) message = "HTTP " + std::to_string(status) + " from " + url;
    return Status(code.value_or(http::CodeForHttpStatus(static_cast<int>(status))), message);
  }

  std::string base_, token_, ca_file_;
};

Result<std::unique_ptr<GroupEndpoint>> Open(const std::string& url, const ClientOptions& options) {
  const std::string token = EnvOr(options.http_token, "PACKICE_TOKEN");
  const std::string ca_file = EnvOr(options.http_ca_file, "PACKICE_CA_FILE");
  const size_t colon = url.find("://");
  std::string scheme = colon == std::string::npos ? "" : http::ToLower(url.substr(0, colon));
  if (scheme == "http" || scheme == "https") {
    return std::unique_ptr<GroupEndpoint>(std::make_unique<HttpEndpoint>(url, token, ca_file));
  }
  if (scheme == "grpc" || scheme == "grpcs") {
    std::string target = url.substr(colon + 3);
    while (target.ends_with("/")) target.pop_back();
    GrpcGroupOptions o{.bearer_token = token, .tls = scheme == "grpcs", .ca_file = ca_file};
    PACKICE_ASSIGN_OR_RETURN(std::unique_ptr<GrpcGroupClient> client,
                             GrpcGroupClient::Create(target, o));
    return std::unique_ptr<GroupEndpoint>(std::make_unique<GrpcEndpoint>(std::move(client)));
  }
  return InvalidArgument(
      "cache groups are served over HTTP and gRPC, not at " + url +
      ": pass --url http://HOST:PORT or --url grpc://HOST:PORT of a node started with --http or "
      "--grpc");
}

Result<std::string> ReadStdin() {
  std::string data;
  char buf[1 << 16];
  while (true) {
    ssize_t n = read(0, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError("read stdin", errno);
    if (n == 0) return data;
    data.append(buf, static_cast<size_t>(n));
  }
}

}  // namespace

CLI::App* AddGroupCommand(CLI::App& app, GroupArgs* a) {
  CLI::App* group =
      app.add_subcommand("group", "cache groups of an HTTP or gRPC node: get, set, del, stats, ls");
  group->require_subcommand(1);
  a->get =
      group->add_subcommand("get", "write GROUP's value of KEY to stdout (loads it on a miss)");
  a->set = group->add_subcommand("set", "store VALUE (or - for stdin) under KEY in GROUP");
  a->del = group->add_subcommand("del", "drop KEY from GROUP");
  a->stats = group->add_subcommand("stats", "show GROUP's counters");
  a->ls = group->add_subcommand("ls", "list the node's groups");
  for (CLI::App* sub : {a->get, a->set, a->del, a->stats}) {
    sub->add_option("group", a->group, "group name")->required();
  }
  for (CLI::App* sub : {a->get, a->set, a->del}) {
    sub->add_option("key", a->key, "key")->required();
  }
  a->set->add_option("value", a->value, "the value, - for stdin")->required();
  a->set->add_option("--ttl", a->ttl, "TTL of the value, e.g. 30s (default: the group's)");
  return group;
}

int RunGroupCommand(const GroupArgs& a, const std::string& url, const ClientOptions& options) {
  Result<std::unique_ptr<GroupEndpoint>> opened = Open(url, options);
  if (!opened.ok()) return Fail(opened.status());
  GroupEndpoint& node = **opened;
  if (*a.get) {
    Result<std::string> v = node.Get(a.group, a.key);
    if (!v.ok()) return Fail(v.status());
    std::cout.write(v->data(), static_cast<std::streamsize>(v->size()));
    std::cout.flush();
    return 0;
  }
  if (*a.set) {
    std::optional<Duration> ttl;
    if (!a.ttl.empty()) {
      Result<Duration> d = ParseDuration(a.ttl);
      if (!d.ok()) return Fail(d.status());
      ttl = *d;
    }
    std::string value = a.value;
    if (value == "-") {
      Result<std::string> in = ReadStdin();
      if (!in.ok()) return Fail(in.status());
      value = *std::move(in);
    }
    if (Status s = node.Set(a.group, a.key, value, ttl); !s.ok()) return Fail(s);
    std::cerr << "stored " << a.key << " in " << a.group << " (" << value.size() << " bytes)\n";
    return 0;
  }
  if (*a.del) {
    Status s = node.Delete(a.group, a.key);
    return s.ok() ? 0 : Fail(s);
  }
  if (*a.stats) {
    Result<GroupStats> st = node.Stats(a.group);
    if (!st.ok()) return Fail(st.status());
    std::cout << "group: " << a.group << "\n";
    for (const GroupStatField& f : GroupStatFields()) {
      std::cout << f.name << ": " << (*st).*f.field << "\n";
    }
    return 0;
  }
  Result<std::vector<GroupListing>> list = node.List();
  if (!list.ok()) return Fail(list.status());
  for (const GroupListing& g : *list) {
    std::cout << g.name << "\tcapacity=" << g.capacity_bytes << "\tpolicy=" << g.policy
              << "\tttl_ms=" << g.ttl.count() << "\torigin=" << (g.origin.empty() ? "-" : g.origin)
              << "\n";
  }
  return 0;
}

}  // namespace packice::cli
