#include "client/cas_endpoint.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <utility>

#include "client/make_client.h"
#include "core/json.h"
#include "transport/http/http_common.h"

namespace packice {
namespace {

constexpr uint64_t kChunkBytes = 4 << 20;  // file reads and writes, between progress calls

Status WriteAll(int fd, std::span<const std::byte> data) {
  while (!data.empty()) {
    const ssize_t w = write(fd, data.data(), data.size());
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return ErrnoError("write the output", errno);
    data = data.subspan(static_cast<size_t>(w));
  }
  return Status::Ok();
}

// Fills `out` from `fd` at `offset`. Errors: kDigestMismatch (the file is shorter than it was
// when it was hashed), kInternal.
Status PreadAll(int fd, std::span<std::byte> out, uint64_t offset, const std::string& path) {
  while (!out.empty()) {
    const ssize_t n = pread(fd, out.data(), out.size(), static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError("read " + path, errno);
    if (n == 0) return DigestMismatch(path + " shrank while it was stored; nothing was stored");
    out = out.subspan(static_cast<size_t>(n));
    offset += static_cast<uint64_t>(n);
  }
  return Status::Ok();
}

class ProgressCalls {
 public:
  ProgressCalls(const CasEndpointOptions& o, std::string what, uint64_t total)
      : fn_(o.progress), what_(std::move(what)), total_(total) {}
  void operator()(uint64_t done) const {
    if (fn_) fn_(what_, done, total_);
  }

 private:
  const std::function<void(std::string_view, uint64_t, uint64_t)>& fn_;
  std::string what_;
  uint64_t total_;
};

class File {
 public:
  static Result<File> Open(const std::string& path) {
    const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ErrnoError("open " + path, errno);
    return File(fd);
  }
  File(File&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  File& operator=(File&&) = delete;
  ~File() {
    if (fd_ >= 0) close(fd_);
  }
  int fd() const { return fd_; }

 private:
  explicit File(int fd) : fd_(fd) {}
  int fd_;
};

// --- the object API's cas/ keys (uds, grpc, direct) -------------------------------------------

class ObjectEndpoint final : public CasEndpoint {
 public:
  ObjectEndpoint(Client client, CasEndpointOptions options)
      : client_(std::move(client)), options_(std::move(options)) {}

  Result<Digest> Put(std::span<const std::byte> data, DigestAlgorithm algorithm) override {
    PACKICE_RETURN_IF_ERROR(Served());
    const Digest digest = Digest::Of(algorithm, data);
    PACKICE_RETURN_IF_ERROR(Upload(digest, data));
    return digest;
  }

  Result<Digest> PutFile(const std::string& path, DigestAlgorithm algorithm) override {
    PACKICE_RETURN_IF_ERROR(Served());
    PACKICE_ASSIGN_OR_RETURN(Digest digest, HashFile(path, algorithm));
    if (Present(digest)) return digest;
    PACKICE_ASSIGN_OR_RETURN(File file, File::Open(path));
    PACKICE_ASSIGN_OR_RETURN(ObjectWriter w, client_.Create(CasObjectKey(digest), digest.size));
    // Straight into the create lease's bytes (over uds, the node's file mapped here).
    const std::span<std::byte> out = w.data().first(digest.size);
    const ProgressCalls progress(options_, path, digest.size);
    for (uint64_t done = 0; done < digest.size;) {
      const uint64_t n = std::min(kChunkBytes, digest.size - done);
      PACKICE_RETURN_IF_ERROR(PreadAll(file.fd(), out.subspan(done, n), done, path));
      done += n;
      progress(done);
    }
    PACKICE_RETURN_IF_ERROR(Sealed(w.Seal()));
    return digest;
  }

  Status Store(const Digest& digest, std::span<const std::byte> data) override {
    if (data.size() != digest.size) {
      return DigestMismatch(std::to_string(data.size()) + " bytes cannot be " + digest.ToString() +
                            "; nothing was stored");
    }
    return Upload(digest, data, /*verify_if_present=*/true);
  }

  Result<CasBlob> Get(const Digest& digest, BlobRange range) override {
    PACKICE_RETURN_IF_ERROR(Served());
    PACKICE_ASSIGN_OR_RETURN(ObjectReader r, client_.Get(CasObjectKey(digest)));
    auto reader = std::make_shared<ObjectReader>(std::move(r));
    PACKICE_ASSIGN_OR_RETURN(auto span, range.Resolve(reader->data().size()));
    CasBlob blob;
    blob.digest = digest;
    blob.offset = span.first;
    blob.bytes = reader->data().subspan(span.first, span.second);
    blob.holder = std::move(reader);
    return blob;
  }

  Status GetTo(const Digest& digest, BlobRange range, int fd) override {
    PACKICE_ASSIGN_OR_RETURN(CasBlob blob, Get(digest, range));
    const ProgressCalls progress(options_, digest.ToString(), blob.bytes.size());
    for (uint64_t done = 0; done < blob.bytes.size();) {
      const uint64_t n = std::min<uint64_t>(kChunkBytes, blob.bytes.size() - done);
      PACKICE_RETURN_IF_ERROR(WriteAll(fd, blob.bytes.subspan(done, n)));
      done += n;
      progress(done);
    }
    return Status::Ok();
  }

  Result<std::vector<Digest>> Missing(std::span<const Digest> digests) override {
    PACKICE_RETURN_IF_ERROR(Served());
    std::vector<Digest> missing;
    for (const Digest& d : digests) {
      Result<uint64_t> size = Stat(d);
      if (size.ok()) continue;
      if (size.status().code() != StatusCode::kNotFound) return size.status();
      missing.push_back(d);
    }
    return missing;
  }

  Result<uint64_t> Stat(const Digest& digest) override {
    PACKICE_RETURN_IF_ERROR(Served());
    PACKICE_ASSIGN_OR_RETURN(ObjectInfo info, client_.Stat(CasObjectKey(digest)));
    return info.size;
  }

 private:
  // Whether the node serves a CAS under cas/: one that does always has the empty blob (asked
  // once; a node without one would store cas/ keys as plain, unverified objects). Errors:
  // kNotFound (no CAS there), the connection's.
  Status Served() {
    std::lock_guard<std::mutex> lock(mu_);
    if (served_) return *served_;
    Result<ObjectInfo> empty = client_.Stat(CasObjectKey(Digest::Empty(DigestAlgorithm::kBlake3)));
    if (empty.ok()) {
      served_ = Status::Ok();
    } else if (empty.status().code() == StatusCode::kNotFound) {
      served_ = NotFound(
          "the node serves no CAS (packiced --no-cas, or --store memory or sharedfs without "
          "--cas-dir): no blobs under cas/");
    } else {
      return empty.status();  // not remembered: the next call asks again
    }
    return *served_;
  }

  bool Present(const Digest& digest) { return client_.Stat(CasObjectKey(digest)).ok(); }

  // Create + copy + seal, unless the node has the blob. `verify_if_present`: bytes not hashed
  // here yet are checked before a skip, so that a wrong store is refused even then.
  Status Upload(const Digest& digest, std::span<const std::byte> data,
                bool verify_if_present = false) {
    if (Present(digest)) {
      if (!verify_if_present) return Status::Ok();
      if (const Digest got = Digest::Of(digest.algorithm, data); got != digest) {
        return DigestMismatch("the content hashes to " + got.ToString() + ", not " +
                              digest.ToString() + "; nothing was stored");
      }
      return Status::Ok();
    }
    PACKICE_ASSIGN_OR_RETURN(ObjectWriter w, client_.Create(CasObjectKey(digest), digest.size));
    const ProgressCalls progress(options_, digest.ToString(), data.size());
    for (uint64_t done = 0; done < data.size();) {
      const uint64_t n = std::min<uint64_t>(kChunkBytes, data.size() - done);
      std::memcpy(w.data().data() + done, data.data() + done, n);
      done += n;
      progress(done);
    }
    return Sealed(w.Seal());
  }

  // A seal's outcome: a concurrent store of the same blob that won is success.
  static Status Sealed(const Result<ObjectInfo>& sealed) {
    if (sealed.ok() || sealed.status().code() == StatusCode::kAlreadyExists) return Status::Ok();
    return sealed.status();
  }

  Client client_;
  const CasEndpointOptions options_;
  std::mutex mu_;
  std::optional<Status> served_;  // guarded by mu_
};

// --- HTTP: /v1/cas over libcurl -----------------------------------------------------------------

struct Reply {
  long status = 0;
  std::string body;        // unless a sink took it
  std::string error_code;  // X-Packice-Error
  uint64_t length = 0;     // Content-Length
};

// One request: what libcurl's callbacks read from and write to.
struct Transfer {
  Reply* reply = nullptr;
  std::function<Status(std::span<const std::byte>)> sink;  // a 2xx body goes here when set
  Status sink_status;
  int source_fd = -1;  // >= 0: the request body is read from it
  uint64_t source_offset = 0;
  int source_errno = 0;
  const ProgressCalls* progress = nullptr;
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

size_t OnBody(char* data, size_t size, size_t n, void* ud) {
  auto* t = static_cast<Transfer*>(ud);
  const size_t len = size * n;
  if (t->sink && t->reply->status >= 200 && t->reply->status < 300) {
    t->sink_status = t->sink(std::as_bytes(std::span<const char>(data, len)));
    return t->sink_status.ok() ? len : 0;
  }
  t->reply->body.append(data, len);
  return len;
}

size_t OnRead(char* buffer, size_t size, size_t n, void* ud) {
  auto* t = static_cast<Transfer*>(ud);
  while (true) {
    const ssize_t r = pread(t->source_fd, buffer, size * n, static_cast<off_t>(t->source_offset));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      t->source_errno = errno;
      return CURL_READFUNC_ABORT;
    }
    t->source_offset += static_cast<uint64_t>(r);
    return static_cast<size_t>(r);
  }
}

int OnProgress(void* ud, curl_off_t dl_total, curl_off_t dl_now, curl_off_t ul_total,
               curl_off_t ul_now) {
  auto* t = static_cast<Transfer*>(ud);
  const curl_off_t now = ul_total > 0 ? ul_now : dl_now;
  if (ul_total > 0 || dl_total > 0) (*t->progress)(static_cast<uint64_t>(now));
  return 0;
}

class HttpEndpoint final : public CasEndpoint {
 public:
  HttpEndpoint(std::string base, std::string token, std::string ca_file, CasEndpointOptions options)
      : base_(std::move(base)),
        token_(std::move(token)),
        ca_file_(std::move(ca_file)),
        options_(std::move(options)) {
    while (base_.ends_with("/")) base_.pop_back();
  }

  Result<Digest> Put(std::span<const std::byte> data, DigestAlgorithm algorithm) override {
    const Digest digest = Digest::Of(algorithm, data);
    PACKICE_RETURN_IF_ERROR(Store(digest, data));
    return digest;
  }

  Result<Digest> PutFile(const std::string& path, DigestAlgorithm algorithm) override {
    PACKICE_ASSIGN_OR_RETURN(Digest digest, HashFile(path, algorithm));
    if (Stat(digest).ok()) return digest;  // a HEAD, not the file's bytes
    PACKICE_ASSIGN_OR_RETURN(File file, File::Open(path));
    Request req{"PUT", BlobPath(digest)};
    req.source_fd = file.fd();
    req.source_size = digest.size;
    req.what = path;
    PACKICE_RETURN_IF_ERROR(Do(req).status());
    return digest;
  }

  Status Store(const Digest& digest, std::span<const std::byte> data) override {
    Request req{"PUT", BlobPath(digest)};
    req.body = data;
    req.has_body = true;
    return Do(req).status();
  }

  Result<CasBlob> Get(const Digest& digest, BlobRange range) override {
    auto bytes = std::make_shared<std::string>();
    PACKICE_ASSIGN_OR_RETURN(uint64_t offset,
                             Fetch(digest, range, [&](std::span<const std::byte> b) {
                               bytes->append(reinterpret_cast<const char*>(b.data()), b.size());
                               return Status::Ok();
                             }));
    CasBlob blob;
    blob.digest = digest;
    blob.offset = offset;
    blob.bytes = std::as_bytes(std::span<const char>(*bytes));
    blob.holder = std::move(bytes);
    return blob;
  }

  Status GetTo(const Digest& digest, BlobRange range, int fd) override {
    return Fetch(digest, range, [fd](std::span<const std::byte> b) { return WriteAll(fd, b); })
        .status();
  }

  Result<std::vector<Digest>> Missing(std::span<const Digest> digests) override {
    nlohmann::json body;
    body["digests"] = nlohmann::json::array();
    for (const Digest& d : digests) body["digests"].push_back(d.ToString());
    const std::string text = body.dump();
    Request req{"POST", "/v1/cas:missing"};
    req.body = std::as_bytes(std::span<const char>(text));
    req.has_body = true;
    req.headers.push_back("Content-Type: application/json");
    PACKICE_ASSIGN_OR_RETURN(Reply r, Do(req));
    nlohmann::json answer = ParseJson(r.body);
    if (!answer.is_object() || !answer["missing"].is_array()) {
      return ProtocolError("the node's /v1/cas:missing answer is not {\"missing\": [...]}");
    }
    std::vector<Digest> missing;
    for (const nlohmann::json& d : answer["missing"]) {
      if (!d.is_string()) return ProtocolError("a digest in /v1/cas:missing's answer is no string");
      PACKICE_ASSIGN_OR_RETURN(Digest parsed, Digest::Parse(d.get<std::string>()));
      missing.push_back(parsed);
    }
    return missing;
  }

  Result<uint64_t> Stat(const Digest& digest) override {
    PACKICE_ASSIGN_OR_RETURN(Reply r, Do(Request{"HEAD", BlobPath(digest)}));
    return r.length;
  }

 private:
  struct Request {
    const char* method;
    std::string path;
    std::vector<std::string> headers;
    std::span<const std::byte> body;  // when has_body
    bool has_body = false;
    int source_fd = -1;  // >= 0: the body is source_size bytes of this file
    uint64_t source_size = 0;
    std::function<Status(std::span<const std::byte>)> sink;  // a 2xx body
    std::string what;                                        // for progress; empty: the path
    uint64_t expected = 0;                                   // bytes a download moves, for progress
  };

  static std::string BlobPath(const Digest& d) { return "/v1/cas/" + d.ToString(); }

  // GETs `range` into `sink`; returns the range's offset. A range HTTP cannot say (empty) or
  // one past the end is settled here: the digest says the blob's size.
  Result<uint64_t> Fetch(const Digest& digest, BlobRange range,
                         std::function<Status(std::span<const std::byte>)> sink) {
    PACKICE_ASSIGN_OR_RETURN(auto span, range.Resolve(digest.size));
    if (span.second == 0) {
      PACKICE_RETURN_IF_ERROR(Stat(digest).status());  // the blob must exist
      return span.first;
    }
    Request req{"GET", BlobPath(digest)};
    if (span.first != 0 || span.second != digest.size) {
      req.headers.push_back("Range: bytes=" + std::to_string(span.first) + "-" +
                            std::to_string(span.first + span.second - 1));
    }
    req.sink = std::move(sink);
    req.what = digest.ToString();
    req.expected = span.second;
    PACKICE_RETURN_IF_ERROR(Do(req).status());
    return span.first;
  }

  // Sends `req`. Errors: the node's (X-Packice-Error), kUnavailable (no answer), the sink's.
  Result<Reply> Do(const Request& req) {
    PACKICE_RETURN_IF_ERROR(http::CurlGlobalInit());
    std::unique_ptr<CURL, void (*)(CURL*)> c(curl_easy_init(), curl_easy_cleanup);
    if (c == nullptr) return Internal("curl_easy_init failed");
    std::vector<std::string> headers = req.headers;
    if (!token_.empty()) headers.push_back("Authorization: Bearer " + token_);
    headers.push_back("Expect:");
    curl_slist* list = nullptr;
    for (const std::string& h : headers) list = curl_slist_append(list, h.c_str());
    std::unique_ptr<curl_slist, void (*)(curl_slist*)> free_list(list, curl_slist_free_all);
    Reply reply;
    const uint64_t total = req.source_fd >= 0 ? req.source_size
                           : req.has_body     ? req.body.size()
                                              : req.expected;
    const ProgressCalls progress(options_, req.what.empty() ? req.path : req.what, total);
    Transfer t;
    t.reply = &reply;
    t.sink = req.sink;
    t.source_fd = req.source_fd;
    t.progress = &progress;
    const std::string url = base_ + req.path;
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
    if (options_.progress) {
      curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
      curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, &OnProgress);
      curl_easy_setopt(h, CURLOPT_XFERINFODATA, &t);
    }
    const std::string_view method(req.method);
    if (method == "HEAD") {
      curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (req.source_fd >= 0) {
      curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);  // PUT, the body from OnRead
      curl_easy_setopt(h, CURLOPT_READFUNCTION, &OnRead);
      curl_easy_setopt(h, CURLOPT_READDATA, &t);
      curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(req.source_size));
    } else {
      curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req.method);
    }
    if (req.has_body) {
      curl_easy_setopt(h, CURLOPT_POSTFIELDS, req.body.data());
      curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
    }
    const CURLcode rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &reply.status);
    curl_off_t length = 0;
    curl_easy_getinfo(h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length);
    reply.length = length > 0 ? static_cast<uint64_t>(length) : 0;
    PACKICE_RETURN_IF_ERROR(t.sink_status);
    if (t.source_errno != 0) return ErrnoError("read " + req.what, t.source_errno);
    if (rc != CURLE_OK) return Unavailable(url + ": " + curl_easy_strerror(rc));
    if (reply.status >= 200 && reply.status < 300) return reply;
    std::optional<StatusCode> code = http::StatusCodeFromName(reply.error_code);
    std::string message = http::ErrorMessageFromJson(reply.body);
    if (message.empty()) message = "HTTP " + std::to_string(reply.status) + " from " + url;
    return Status(code.value_or(http::CodeForHttpStatus(static_cast<int>(reply.status))), message);
  }

  std::string base_, token_, ca_file_;
  const CasEndpointOptions options_;
};

}  // namespace

std::string CasObjectKey(const Digest& digest) { return "cas/" + digest.ToString(); }

std::unique_ptr<CasEndpoint> NewObjectCasEndpoint(Client client, CasEndpointOptions cas_options) {
  return std::make_unique<ObjectEndpoint>(std::move(client), std::move(cas_options));
}

Result<std::unique_ptr<CasEndpoint>> OpenCasEndpoint(const std::string& url,
                                                     const ClientOptions& options,
                                                     CasEndpointOptions cas_options) {
  const std::string scheme = UrlScheme(url);
  if (scheme == "http" || scheme == "https") {
    return std::unique_ptr<CasEndpoint>(std::make_unique<HttpEndpoint>(
        url, EnvOr(options.http_token, "PACKICE_TOKEN"),
        EnvOr(options.http_ca_file, "PACKICE_CA_FILE"), std::move(cas_options)));
  }
  PACKICE_ASSIGN_OR_RETURN(Client client, Connect(url, options));
  return NewObjectCasEndpoint(std::move(client), std::move(cas_options));
}

}  // namespace packice
