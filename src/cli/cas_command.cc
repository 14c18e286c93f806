#include "cli/cas_command.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>

#include "client/make_client.h"
#include "packice/cas.h"
#include "transport/http/http_common.h"

namespace packice::cli {
namespace {

// Transfers larger than this show a progress line on a terminal's stderr.
constexpr uint64_t kProgressBytes = 64ull << 20;

int Fail(const Status& s) {
  std::cerr << "packice: " << s.ToString() << "\n";
  return 1;
}

struct Reply {
  long status = 0;
  std::string body;        // unless a sink took it
  std::string error_code;  // X-Packice-Error
  uint64_t length = 0;     // Content-Length
};

// One request's state, handed to libcurl's callbacks.
struct Transfer {
  Reply* reply;
  int sink_fd = -1;  // >= 0: a 2xx body goes here
  int sink_errno = 0;
  bool progress = false;
  std::string what;
};

size_t OnHeader(char* data, size_t size, size_t n, void* ud) {
  auto* t = static_cast<Transfer*>(ud);
  std::string_view line(data, size * n);
  // The status is known once its line is in: the body callback needs it for the sink.
  if (line.starts_with("HTTP/") && line.size() > 12) {
    t->reply->status = std::atol(std::string(line.substr(9, 3)).c_str());
    t->reply->error_code.clear();
  }
  const size_t colon = line.find(':');
  if (colon != std::string_view::npos &&
      http::ToLower(line.substr(0, colon)) == http::kErrorHeader) {
    std::string_view v = line.substr(colon + 1);
    while (!v.empty() && (v.front() == ' ' || v.back() == '\r' || v.back() == '\n')) {
      v = v.front() == ' ' ? v.substr(1) : v.substr(0, v.size() - 1);
    }
    t->reply->error_code = std::string(v);
  }
  return size * n;
}

bool WriteAll(int fd, const char* p, size_t n) {
  while (n > 0) {
    const ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

size_t OnBody(char* data, size_t size, size_t n, void* ud) {
  auto* t = static_cast<Transfer*>(ud);
  const size_t len = size * n;
  if (t->sink_fd >= 0 && t->reply->status >= 200 && t->reply->status < 300) {
    if (!WriteAll(t->sink_fd, data, len)) {
      t->sink_errno = errno;
      return 0;
    }
    return len;
  }
  t->reply->body.append(data, len);
  return len;
}

int OnProgress(void* ud, curl_off_t dl_total, curl_off_t dl_now, curl_off_t ul_total,
               curl_off_t ul_now) {
  auto* t = static_cast<Transfer*>(ud);
  const curl_off_t total = ul_total > 0 ? ul_total : dl_total;
  const curl_off_t now = ul_total > 0 ? ul_now : dl_now;
  if (t->progress && total > 0) {
    std::fprintf(stderr, "\r%s: %lld/%lld MiB (%lld%%)", t->what.c_str(),
                 static_cast<long long>(now >> 20), static_cast<long long>(total >> 20),
                 static_cast<long long>(now * 100 / total));
  }
  return 0;
}

// The node's /v1/cas over libcurl.
class CasHttp {
 public:
  CasHttp(std::string base, std::string token, std::string ca_file)
      : base_(std::move(base)), token_(std::move(token)), ca_file_(std::move(ca_file)) {
    while (base_.ends_with("/")) base_.pop_back();
  }

  // Sends `method` of `path` with `body` (may be null); a 2xx body goes to `sink_fd` when it
  // is >= 0. Errors: the node's (X-Packice-Error), kUnavailable (no answer).
  Result<Reply> Do(const char* method, const std::string& path, const std::string* body,
                   std::vector<std::string> headers, int sink_fd = -1,
                   uint64_t expected_bytes = 0) {
    PACKICE_RETURN_IF_ERROR(http::CurlGlobalInit());
    std::unique_ptr<CURL, void (*)(CURL*)> c(curl_easy_init(), curl_easy_cleanup);
    if (c == nullptr) return Internal("curl_easy_init failed");
    if (!token_.empty()) headers.push_back("Authorization: Bearer " + token_);
    headers.push_back("Expect:");
    curl_slist* list = nullptr;
    for (const std::string& h : headers) list = curl_slist_append(list, h.c_str());
    std::unique_ptr<curl_slist, void (*)(curl_slist*)> free_list(list, curl_slist_free_all);
    Reply reply;
    Transfer t{&reply, sink_fd, 0, false, path};
    t.progress = expected_bytes > kProgressBytes && isatty(2);
    const std::string url = base_ + path;
    CURL* h = c.get();
    curl_easy_setopt(h, CURLOPT_URL, url.c_str());
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, &OnHeader);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &t);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &OnBody);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 10'000L);
    if (!ca_file_.empty()) curl_easy_setopt(h, CURLOPT_CAINFO, ca_file_.c_str());
    if (t.progress) {
      curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
      curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, &OnProgress);
      curl_easy_setopt(h, CURLOPT_XFERINFODATA, &t);
    }
    if (std::string_view(method) == "HEAD") {
      curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else {
      curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    }
    if (body != nullptr) {
      curl_easy_setopt(h, CURLOPT_POSTFIELDS, body->data());
      curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body->size()));
    }
    const CURLcode rc = curl_easy_perform(h);
    if (t.progress) std::fputc('\n', stderr);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &reply.status);
    curl_off_t length = 0;
    curl_easy_getinfo(h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length);
    reply.length = length > 0 ? static_cast<uint64_t>(length) : 0;
    if (t.sink_errno != 0) return ErrnoError("write the output", t.sink_errno);
    if (rc != CURLE_OK) return Unavailable(url + ": " + curl_easy_strerror(rc));
    if (reply.status >= 200 && reply.status < 300) return reply;
    std::optional<StatusCode> code = http::StatusCodeFromName(reply.error_code);
    std::string message = http::ErrorMessageFromJson(reply.body);
    if (message.empty()) message = "HTTP " + std::to_string(reply.status) + " from " + url;
    return Status(code.value_or(http::CodeForHttpStatus(static_cast<int>(reply.status))), message);
  }

 private:
  std::string base_, token_, ca_file_;
};

Result<std::string> ReadAll(const std::string& file) {
  const int fd = file == "-" ? 0 : open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("open " + file, errno);
  std::string data;
  char buf[1 << 16];
  Status error;
  while (true) {
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) error = ErrnoError("read " + file, errno);
    if (n <= 0) break;
    data.append(buf, static_cast<size_t>(n));
  }
  if (fd != 0) close(fd);
  if (!error.ok()) return error;
  return data;
}

std::string BlobPath(const Digest& d) { return "/v1/cas/" + d.ToString(); }

int Put(CasHttp& node, const CasArgs& a) {
  Result<std::string> data = ReadAll(a.file);
  if (!data.ok()) return Fail(data.status());
  const DigestAlgorithm algorithm = a.sha256 ? DigestAlgorithm::kSha256 : DigestAlgorithm::kBlake3;
  const Digest d = Digest::Of(algorithm, std::as_bytes(std::span<const char>(*data)));
  Result<Reply> r = node.Do("PUT", BlobPath(d), &*data, {}, -1, data->size());
  if (!r.ok()) return Fail(r.status());
  std::cout << d.ToString() << "\n";
  return 0;
}

// "A-B" or "A-" as a Range header. Errors: kInvalidArgument.
Result<std::string> RangeHeader(const std::string& range) {
  const size_t dash = range.find('-');
  const auto digits = [](std::string_view s) {
    return !s.empty() && s.find_first_not_of("0123456789") == std::string_view::npos;
  };
  if (dash == std::string::npos || !digits(range.substr(0, dash)) ||
      (dash + 1 < range.size() && !digits(range.substr(dash + 1)))) {
    return InvalidArgument("--range wants A-B or A- (byte offsets, B inclusive), not '" + range +
                           "'");
  }
  return "Range: bytes=" + range;
}

int Get(CasHttp& node, const CasArgs& a) {
  Result<Digest> d = Digest::Parse(a.digest);
  if (!d.ok()) return Fail(d.status());
  std::vector<std::string> headers;
  if (!a.range.empty()) {
    Result<std::string> h = RangeHeader(a.range);
    if (!h.ok()) return Fail(h.status());
    headers.push_back(*h);
  }
  const bool to_stdout = a.output.empty() || a.output == "-";
  const int fd =
      to_stdout ? 1 : open(a.output.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Fail(ErrnoError("open " + a.output, errno));
  Result<Reply> r = node.Do("GET", BlobPath(*d), nullptr, headers, fd, d->size);
  if (!to_stdout) close(fd);
  if (!r.ok()) {
    if (!to_stdout) unlink(a.output.c_str());
    return Fail(r.status());
  }
  return 0;
}

std::string MissingBody(const std::vector<std::string>& digests) {
  nlohmann::json body;
  body["digests"] = digests;
  return body.dump();
}

int Missing(CasHttp& node, const CasArgs& a) {
  const std::string body = MissingBody(a.digests);
  Result<Reply> r = node.Do("POST", "/v1/cas:missing", &body, {"Content-Type: application/json"});
  if (!r.ok()) return Fail(r.status());
  nlohmann::json answer = nlohmann::json::parse(r->body, nullptr, false);
  if (!answer.is_object() || !answer["missing"].is_array()) {
    return Fail(ProtocolError("the node's /v1/cas:missing answer is not {\"missing\": [...]}"));
  }
  for (const nlohmann::json& d : answer["missing"]) std::cout << d.get<std::string>() << "\n";
  return 0;
}

int Stat(CasHttp& node, const CasArgs& a) {
  Result<Digest> d = Digest::Parse(a.digest);
  if (!d.ok()) return Fail(d.status());
  Result<Reply> r = node.Do("HEAD", BlobPath(*d), nullptr, {});
  if (!r.ok()) return Fail(r.status());
  std::cout << "digest: " << d->ToString() << "\nsize: " << r->length << "\n";
  return 0;
}

}  // namespace

CLI::App* AddCasCommand(CLI::App& app, CasArgs* a) {
  CLI::App* cas = app.add_subcommand(
      "cas", "the content-addressed store of an HTTP node: put, get, missing, stat");
  cas->require_subcommand(1);
  a->put = cas->add_subcommand("put", "store FILE (or - for stdin); prints its digest");
  a->put->add_option("file", a->file, "the file, - for stdin")->required();
  a->put->add_flag("--sha256", a->sha256, "name the blob by SHA-256 (default BLAKE3)");
  a->get = cas->add_subcommand("get", "write the blob DIGEST (or a range of it) out");
  a->get->add_option("digest", a->digest, "blake3:<hex>/<size> or sha256:<hex>/<size>")->required();
  a->get->add_option("--range", a->range, "bytes A-B (B inclusive) or A- (to the end)");
  a->get->add_option("-o,--output", a->output, "output file, - for stdout (default)");
  a->missing = cas->add_subcommand("missing", "print the DIGESTs the node does not hold");
  a->missing->add_option("digests", a->digests, "digests")->required();
  a->stat = cas->add_subcommand("stat", "show whether the node holds DIGEST, and its size");
  a->stat->add_option("digest", a->digest, "the digest")->required();
  return cas;
}

int RunCasCommand(const CasArgs& a, const std::string& url, const ClientOptions& options) {
  const std::string scheme = UrlScheme(url);
  if (scheme != "http" && scheme != "https") {
    return Fail(InvalidArgument("the CAS is served over HTTP, not at " + url +
                                ": pass --url http://HOST:PORT of a node started with --http"));
  }
  CasHttp node(url, EnvOr(options.http_token, "PACKICE_TOKEN"),
               EnvOr(options.http_ca_file, "PACKICE_CA_FILE"));
  if (*a.put) return Put(node, a);
  if (*a.get) return Get(node, a);
  if (*a.missing) return Missing(node, a);
  return Stat(node, a);
}

}  // namespace packice::cli
