// The HTTP API of docs/http.md end to end: real packiced processes driven with libcurl (and with
// raw TCP sockets where a test needs bytes no HTTP client would send, or a client that stalls).
#include <arpa/inet.h>
#include <curl/curl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "testing.h"

namespace packice {
namespace {

using namespace std::chrono_literals;
using ::packice::testing::Daemon;
using ::packice::testing::kSanitized;
using ::packice::testing::MakeSelfSignedCert;
using ::packice::testing::PatternString;
using ::packice::testing::RunProgram;
using ::packice::testing::TempDir;
using Json = nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

constexpr uint64_t kKiB = 1 << 10;
constexpr uint64_t kMiB = 1 << 20;
constexpr uint64_t kGiB = 1ull << 30;

// Sanitizers keep freed memory in quarantine and shadow what is used, so a process's resident
// size under one says little about what it allocates.
std::string ToLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return std::string(s);
}

template <typename F>
bool Eventually(F done, std::chrono::milliseconds timeout = 10s) {
  const auto deadline = SteadyClock::now() + timeout;
  while (!done()) {
    if (SteadyClock::now() >= deadline) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

int64_t UnixMillisNow() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// An IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") in Unix seconds; nullopt when it is not one.
std::optional<int64_t> ParseImfDate(const std::string& s) {
  std::tm tm{};
  const char* end = strptime(s.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (end == nullptr || *end != '\0') return std::nullopt;
  return static_cast<int64_t>(timegm(&tm));
}

uint16_t PortOf(const std::string& url) {
  size_t colon = url.rfind(':');
  if (colon == std::string::npos) return 0;
  return static_cast<uint16_t>(std::stoi(url.substr(colon + 1)));
}

// --- a small RAII libcurl client -----------------------------------------------------------------

void EnsureCurlGlobal() {
  static const bool done = [] { return curl_global_init(CURL_GLOBAL_ALL) == CURLE_OK; }();
  ASSERT_TRUE(done);
}

struct HttpRequest {
  std::string method;  // empty: PUT with a body, else GET
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  // A body sent with Content-Length (PUT unless `method` says otherwise).
  std::optional<std::string> body;
  // Or a streamed body: `read` fills up to n bytes and returns how many (0 at the end), sent with
  // Content-Length `upload_size`, or chunked when that is nullopt.
  std::function<size_t(char* buf, size_t n)> read;
  std::optional<uint64_t> upload_size;
  // When set, the response body goes here instead of HttpResponse::body; false aborts.
  std::function<bool(std::string_view)> sink;
  std::string cainfo;                      // PEM file of the CA to trust (TLS)
  std::chrono::milliseconds timeout{30s};  // 0: none, but a stall of 60 s aborts
  bool capture_request_headers = false;
  // Bytes per second curl reads or sends at most (0: no limit): a slow but steady client.
  curl_off_t max_recv_speed = 0;
  curl_off_t max_send_speed = 0;
  int rcvbuf = 0;  // SO_RCVBUF of the connection, when set (a small one: little is buffered)
};

struct HttpResponse {
  CURLcode code = CURLE_OK;
  std::string error;  // curl's message when code != CURLE_OK
  long status = 0;
  bool saw_100_continue = false;
  std::vector<std::pair<std::string, std::string>> headers;  // of the final response; names
                                                             // lower-cased
  std::string body;
  std::string request_headers;  // what curl sent, with capture_request_headers
  long new_connections = 0;     // CURLINFO_NUM_CONNECTS
  double seconds = 0;

  bool ok() const { return code == CURLE_OK; }
  bool Has(std::string_view name) const {
    std::string n = ToLower(name);
    return std::any_of(headers.begin(), headers.end(), [&](const auto& h) { return h.first == n; });
  }
  std::string Header(std::string_view name) const {
    std::string n = ToLower(name);
    for (const auto& [k, v] : headers) {
      if (k == n) return v;
    }
    return "";
  }
  int HeaderCount(std::string_view name) const {
    std::string n = ToLower(name);
    return static_cast<int>(
        std::count_if(headers.begin(), headers.end(), [&](const auto& h) { return h.first == n; }));
  }
  std::string Describe() const {
    std::ostringstream o;
    o << "curl=" << code << " (" << (code == CURLE_OK ? "ok" : error) << ") status=" << status;
    for (const auto& [k, v] : headers) o << "\n  " << k << ": " << v;
    o << "\n  body[" << body.size() << "]: " << body.substr(0, 300);
    return o.str();
  }
};

// One easy handle: requests made through it share libcurl's connection cache (keep-alive).
class HttpClient {
 public:
  HttpClient() {
    EnsureCurlGlobal();
    h_ = curl_easy_init();
  }
  ~HttpClient() { curl_easy_cleanup(h_); }
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  HttpResponse Do(const HttpRequest& req);

  HttpResponse Get(const std::string& url, std::vector<std::string> headers = {}) {
    HttpRequest r;
    r.url = url;
    r.headers = std::move(headers);
    return Do(r);
  }
  HttpResponse Head(const std::string& url, std::vector<std::string> headers = {}) {
    HttpRequest r;
    r.method = "HEAD";
    r.url = url;
    r.headers = std::move(headers);
    return Do(r);
  }
  HttpResponse Put(const std::string& url, std::string body,
                   std::vector<std::string> headers = {}) {
    HttpRequest r;
    r.method = "PUT";
    r.url = url;
    r.body = std::move(body);
    r.headers = std::move(headers);
    return Do(r);
  }
  HttpResponse Post(const std::string& url, std::string body,
                    std::vector<std::string> headers = {}) {
    HttpRequest r;
    r.method = "POST";
    r.url = url;
    r.body = std::move(body);
    r.headers = std::move(headers);
    return Do(r);
  }
  HttpResponse Delete(const std::string& url, std::vector<std::string> headers = {}) {
    HttpRequest r;
    r.method = "DELETE";
    r.url = url;
    r.headers = std::move(headers);
    return Do(r);
  }
  HttpResponse Method(const std::string& method, const std::string& url,
                      std::vector<std::string> headers = {}) {
    HttpRequest r;
    r.method = method;
    r.url = url;
    r.headers = std::move(headers);
    return Do(r);
  }

 private:
  struct Transfer {
    const HttpRequest* req;
    HttpResponse* res;
    size_t read_at = 0;  // into req->body
  };

  static size_t OnHeader(char* p, size_t size, size_t n, void* ud) {
    auto* t = static_cast<Transfer*>(ud);
    std::string_view line(p, size * n);
    if (line.starts_with("HTTP/")) {
      t->res->headers.clear();
      if (line.size() > 12 && line.substr(9, 3) == "100") t->res->saw_100_continue = true;
    } else if (size_t colon = line.find(':'); colon != std::string_view::npos) {
      t->res->headers.emplace_back(ToLower(Trim(line.substr(0, colon))),
                                   Trim(line.substr(colon + 1)));
    }
    return size * n;
  }
  static size_t OnWrite(char* p, size_t size, size_t n, void* ud) {
    auto* t = static_cast<Transfer*>(ud);
    std::string_view data(p, size * n);
    if (t->req->sink) return t->req->sink(data) ? data.size() : 0;
    t->res->body.append(data);
    return data.size();
  }
  static size_t OnRead(char* buf, size_t size, size_t n, void* ud) {
    auto* t = static_cast<Transfer*>(ud);
    if (t->req->read) return t->req->read(buf, size * n);
    const std::string& body = *t->req->body;
    size_t k = std::min(size * n, body.size() - t->read_at);
    std::memcpy(buf, body.data() + t->read_at, k);
    t->read_at += k;
    return k;
  }
  static int OnSeek(void* ud, curl_off_t offset, int origin) {
    auto* t = static_cast<Transfer*>(ud);
    if (t->req->read || origin != SEEK_SET || offset < 0 ||
        static_cast<size_t>(offset) > t->req->body->size()) {
      return CURL_SEEKFUNC_CANTSEEK;
    }
    t->read_at = static_cast<size_t>(offset);
    return CURL_SEEKFUNC_OK;
  }
  static int OnSockopt(void* ud, curl_socket_t fd, curlsocktype) {
    int size = static_cast<Transfer*>(ud)->req->rcvbuf;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    return CURL_SOCKOPT_OK;
  }
  static int OnDebug(CURL*, curl_infotype type, char* data, size_t size, void* ud) {
    if (type == CURLINFO_HEADER_OUT)
      static_cast<Transfer*>(ud)->res->request_headers.append(data, size);
    return 0;
  }

  CURL* h_;
};

HttpResponse HttpClient::Do(const HttpRequest& request) {
  HttpRequest req = request;
  if (req.method.empty()) req.method = req.body || req.read ? "PUT" : "GET";
  HttpResponse res;
  Transfer t{&req, &res};
  curl_easy_reset(h_);  // keeps the connection cache
  char errbuf[CURL_ERROR_SIZE] = "";
  curl_easy_setopt(h_, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(h_, CURLOPT_URL, req.url.c_str());
  curl_easy_setopt(h_, CURLOPT_PATH_AS_IS, 1L);
  curl_easy_setopt(h_, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h_, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
  if (req.timeout.count() > 0) {
    curl_easy_setopt(h_, CURLOPT_TIMEOUT_MS, static_cast<long>(req.timeout.count()));
  } else {
    curl_easy_setopt(h_, CURLOPT_LOW_SPEED_LIMIT, 1024L);
    curl_easy_setopt(h_, CURLOPT_LOW_SPEED_TIME, 60L);
  }
  curl_easy_setopt(h_, CURLOPT_HEADERFUNCTION, &HttpClient::OnHeader);
  curl_easy_setopt(h_, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(h_, CURLOPT_WRITEFUNCTION, &HttpClient::OnWrite);
  curl_easy_setopt(h_, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(h_, CURLOPT_BUFFERSIZE, static_cast<long>(512 * kKiB));
  if (req.body || req.read) {
    curl_easy_setopt(h_, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(h_, CURLOPT_READFUNCTION, &HttpClient::OnRead);
    curl_easy_setopt(h_, CURLOPT_READDATA, &t);
    curl_easy_setopt(h_, CURLOPT_SEEKFUNCTION, &HttpClient::OnSeek);
    curl_easy_setopt(h_, CURLOPT_SEEKDATA, &t);
    curl_easy_setopt(h_, CURLOPT_UPLOAD_BUFFERSIZE, static_cast<long>(1 * kMiB));
    curl_off_t size = -1;
    if (req.body) size = static_cast<curl_off_t>(req.body->size());
    if (req.read && req.upload_size) size = static_cast<curl_off_t>(*req.upload_size);
    curl_easy_setopt(h_, CURLOPT_INFILESIZE_LARGE, size);
    if (req.method != "PUT") curl_easy_setopt(h_, CURLOPT_CUSTOMREQUEST, req.method.c_str());
  } else if (req.method == "HEAD") {
    curl_easy_setopt(h_, CURLOPT_NOBODY, 1L);
  } else if (req.method != "GET") {
    curl_easy_setopt(h_, CURLOPT_CUSTOMREQUEST, req.method.c_str());
  }
  curl_slist* headers = nullptr;
  for (const std::string& h : req.headers) headers = curl_slist_append(headers, h.c_str());
  curl_easy_setopt(h_, CURLOPT_HTTPHEADER, headers);
  if (!req.cainfo.empty()) curl_easy_setopt(h_, CURLOPT_CAINFO, req.cainfo.c_str());
  if (req.rcvbuf > 0) {
    curl_easy_setopt(h_, CURLOPT_SOCKOPTFUNCTION, &HttpClient::OnSockopt);
    curl_easy_setopt(h_, CURLOPT_SOCKOPTDATA, &t);
  }
  if (req.max_recv_speed > 0) {
    curl_easy_setopt(h_, CURLOPT_MAX_RECV_SPEED_LARGE, req.max_recv_speed);
  }
  if (req.max_send_speed > 0) {
    curl_easy_setopt(h_, CURLOPT_MAX_SEND_SPEED_LARGE, req.max_send_speed);
  }
  if (req.capture_request_headers) {
    curl_easy_setopt(h_, CURLOPT_DEBUGFUNCTION, &HttpClient::OnDebug);
    curl_easy_setopt(h_, CURLOPT_DEBUGDATA, &t);
    curl_easy_setopt(h_, CURLOPT_VERBOSE, 1L);
  }
  auto start = SteadyClock::now();
  res.code = curl_easy_perform(h_);
  res.seconds = std::chrono::duration<double>(SteadyClock::now() - start).count();
  if (res.code != CURLE_OK) res.error = errbuf[0] ? errbuf : curl_easy_strerror(res.code);
  curl_easy_getinfo(h_, CURLINFO_RESPONSE_CODE, &res.status);
  curl_easy_getinfo(h_, CURLINFO_NUM_CONNECTS, &res.new_connections);
  curl_easy_setopt(h_, CURLOPT_HTTPHEADER, nullptr);
  curl_slist_free_all(headers);
  return res;
}

// --- a raw TCP connection ------------------------------------------------------------------------

struct RawResponse {
  int status = 0;
  std::string head;  // status line and headers, with the blank line
  std::string body;
  std::string Header(std::string_view name) const {
    std::string want = ToLower(name) + ":";
    std::istringstream in(head);
    std::string line;
    while (std::getline(in, line)) {
      if (ToLower(line).starts_with(want)) return Trim(line.substr(want.size()));
    }
    return "";
  }
};

class RawTcp {
 public:
  // `rcvbuf`: a receive buffer this small (0: the default), set before connecting.
  explicit RawTcp(uint16_t port, int rcvbuf = 0) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (rcvbuf > 0) setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    if (!connected_) ADD_FAILURE() << "connect 127.0.0.1:" << port << ": " << std::strerror(errno);
  }
  ~RawTcp() { Close(); }
  RawTcp(const RawTcp&) = delete;
  RawTcp& operator=(const RawTcp&) = delete;

  void Close() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }
  bool connected() const { return connected_; }
  bool eof() const { return eof_; }
  std::string& buffer() { return buf_; }

  // Sends all of `data`; false when the connection is gone.
  bool Send(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  // Receives until `done(buffer())`, the end of the stream or `timeout`; returns done's verdict.
  template <typename F>
  bool ReadUntil(F done, std::chrono::milliseconds timeout) {
    const auto deadline = SteadyClock::now() + timeout;
    while (!done(buf_)) {
      if (eof_) return false;
      auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
      if (left.count() <= 0) return false;
      pollfd p{fd_, POLLIN, 0};
      int r = poll(&p, 1, static_cast<int>(left.count()));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return false;
      char tmp[64 * 1024];
      ssize_t n = recv(fd_, tmp, sizeof tmp, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        eof_ = true;  // end of stream, or reset
        continue;
      }
      buf_.append(tmp, static_cast<size_t>(n));
    }
    return true;
  }

  // One whole response (its Content-Length body unless `head_request`), taken off the buffer;
  // nullopt when it does not arrive within `timeout`.
  std::optional<RawResponse> ReadResponse(std::chrono::milliseconds timeout,
                                          bool head_request = false) {
    const auto deadline = SteadyClock::now() + timeout;
    auto left = [&] {
      return std::max(0ms, std::chrono::duration_cast<std::chrono::milliseconds>(
                               deadline - SteadyClock::now()));
    };
    if (!ReadUntil([](const std::string& b) { return b.find("\r\n\r\n") != std::string::npos; },
                   left())) {
      return std::nullopt;
    }
    RawResponse r;
    size_t end = buf_.find("\r\n\r\n") + 4;
    r.head = buf_.substr(0, end);
    if (r.head.size() < 12 || !r.head.starts_with("HTTP/1.")) return std::nullopt;
    r.status = std::atoi(r.head.substr(9, 3).c_str());
    size_t length = 0;
    if (std::string cl = r.Header("Content-Length");
        !cl.empty() && !head_request && r.status != 304 && r.status != 204 && r.status / 100 != 1) {
      length = std::stoull(cl);
    }
    if (!ReadUntil([&](const std::string& b) { return b.size() >= end + length; }, left())) {
      return std::nullopt;
    }
    r.body = buf_.substr(end, length);
    buf_.erase(0, end + length);
    return r;
  }

  // Whether the peer ends the connection (end of stream or reset) within `timeout`; what arrives
  // before is kept in buffer().
  bool WaitClosed(std::chrono::milliseconds timeout) {
    ReadUntil([](const std::string&) { return false; }, timeout);
    return eof_;
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
  bool eof_ = false;
  std::string buf_;
};

// --- checks --------------------------------------------------------------------------------------

// An error response of docs/http.md: the status, X-Packice-Error and (but for HEAD) the JSON
// body {"code": N, "error": name, "message": "..."}.
void ExpectError(const HttpResponse& r, long status, std::string_view name, bool head = false) {
  ASSERT_TRUE(r.ok()) << r.Describe();
  EXPECT_EQ(r.status, status) << r.Describe();
  EXPECT_EQ(r.Header("X-Packice-Error"), name) << r.Describe();
  if (head) {
    EXPECT_TRUE(r.body.empty()) << r.Describe();
    return;
  }
  Json j = Json::parse(r.body, nullptr, false);
  ASSERT_TRUE(j.is_object()) << "error body is not a JSON object: " << r.Describe();
  EXPECT_TRUE(j.contains("code") && j["code"].is_number_integer()) << r.body;
  EXPECT_EQ(j.value("error", std::string()), name) << r.body;
  EXPECT_TRUE(j.contains("message") && j["message"].is_string()) << r.body;
  EXPECT_TRUE(ToLower(r.Header("Content-Type")).starts_with("application/json")) << r.Describe();
}

std::vector<std::string> ListedKeys(const Json& page) {
  std::vector<std::string> keys;
  for (const auto& o : page["objects"]) keys.push_back(o.value("key", std::string()));
  return keys;
}

// The value of the first sample of `name` whose labels include every `label="value"` of
// `labels`; nullopt when there is none.
std::optional<double> MetricValue(const std::string& text, const std::string& name,
                                  const std::vector<std::string>& labels = {}) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.starts_with(name + "{") && !line.starts_with(name + " ")) continue;
    bool all = std::all_of(labels.begin(), labels.end(),
                           [&](const std::string& l) { return line.find(l) != std::string::npos; });
    if (!all) continue;
    size_t sp = line.rfind(' ');
    return std::stod(line.substr(sp + 1));
  }
  return std::nullopt;
}

// --- fixtures ------------------------------------------------------------------------------------

std::vector<std::string> StoreFlags(const std::string& store) {
  if (store == "memory") return {"--store", "memory", "--capacity", "512M"};
  return {"--store", store, "--capacity", "512M", "--disk-capacity", "4G"};
}

class HttpTestBase : public ::testing::Test {
 protected:
  // Starts packiced with an HTTP listener on a free port and `extra` flags.
  void StartDaemon(std::vector<std::string> extra) {
    std::vector<std::string> flags = {"--http", "127.0.0.1:0"};
    flags.insert(flags.end(), extra.begin(), extra.end());
    ASSERT_OK(daemon_.Start(flags));
    base_ = daemon_.http_url();
    ASSERT_FALSE(base_.empty()) << "no http_url in the ready line:\n" << daemon_.log();
    port_ = PortOf(base_);
    ASSERT_NE(port_, 0) << base_;
  }
  // A config file in this test's directory.
  std::string WriteConfig(const std::string& toml) {
    std::string path = dir_.path() + "/packice.toml";
    std::ofstream(path) << toml;
    return path;
  }
  std::string Obj(std::string_view key_path) const {
    return base_ + "/v1/objects/" + std::string(key_path);
  }

  // /healthz answers and a fresh connection can write and read an object.
  void ExpectServing(const std::string& cainfo = "") {
    ASSERT_TRUE(daemon_.alive()) << daemon_.log();
    HttpClient c;
    HttpRequest h;
    h.url = base_ + "/healthz";
    h.cainfo = cainfo;
    auto health = c.Do(h);
    ASSERT_EQ(health.status, 200) << health.Describe();
    const std::string body = PatternString(100 * kKiB + 7, 9);
    HttpRequest put;
    put.url = Obj("health/check");
    put.body = body;
    put.cainfo = cainfo;
    auto p = c.Do(put);
    ASSERT_TRUE(p.status == 201 || p.status == 204) << p.Describe();
    HttpRequest get;
    get.url = Obj("health/check");
    get.cainfo = cainfo;
    auto g = c.Do(get);
    ASSERT_EQ(g.status, 200) << g.Describe();
    EXPECT_TRUE(g.body == body) << "GET of health/check returned other bytes";
  }

  TempDir dir_;
  Daemon daemon_;
  std::string base_;
  uint16_t port_ = 0;
  HttpClient client_;
};

class HttpTest : public HttpTestBase {
 protected:
  void SetUp() override { StartDaemon(StoreFlags("memory")); }
};

// The same checks against each store: memory segments (mapped in the node), disk files
// (sendfile, writes through a bounce buffer) and the tiered composition of both.
class HttpStoreTest : public HttpTestBase, public ::testing::WithParamInterface<std::string> {
 protected:
  void SetUp() override { StartDaemon(StoreFlags(GetParam())); }
  std::string ExpectedTier() const { return GetParam() == "disk" ? "disk" : "memory"; }
};

INSTANTIATE_TEST_SUITE_P(Stores, HttpStoreTest, ::testing::Values("memory", "tiered", "disk"),
                         [](const auto& info) { return info.param; });

// --- PUT, GET, HEAD, DELETE ----------------------------------------------------------------------

TEST_P(HttpStoreTest, PutCreatesThenReplaces) {
  const std::string first = PatternString(300 * kKiB + 3, 1);
  auto put = client_.Put(Obj("models/llama/7b"), first);
  ASSERT_EQ(put.status, 201) << put.Describe();
  EXPECT_EQ(put.Header("Location"), "/v1/objects/models/llama/7b");
  const std::string etag1 = put.Header("ETag");
  EXPECT_FALSE(etag1.empty()) << put.Describe();
  EXPECT_TRUE(etag1.size() > 2 && etag1.front() == '"' && etag1.back() == '"') << etag1;
  Json j = Json::parse(put.body, nullptr, false);
  ASSERT_TRUE(j.is_object()) << put.Describe();
  EXPECT_EQ(j.value("key", std::string()), "models/llama/7b");
  EXPECT_EQ(j.value("size", uint64_t{0}), first.size());
  EXPECT_TRUE(j.contains("version") && j["version"].is_number_integer()) << put.body;
  EXPECT_EQ(j.value("etag", std::string()), etag1);
  EXPECT_EQ(put.Header("X-Packice-Version"), std::to_string(j.value("version", uint64_t{0})));

  auto get = client_.Get(Obj("models/llama/7b"));
  ASSERT_EQ(get.status, 200) << get.Describe();
  EXPECT_EQ(get.body.size(), first.size());
  EXPECT_TRUE(get.body == first) << "GET returned other bytes than the PUT sent";
  EXPECT_EQ(get.Header("ETag"), etag1);
  EXPECT_EQ(get.Header("Content-Length"), std::to_string(first.size()));
  EXPECT_EQ(get.Header("Accept-Ranges"), "bytes");
  EXPECT_EQ(get.Header("Content-Type"), "application/octet-stream");
  EXPECT_EQ(get.Header("X-Packice-Size"), std::to_string(first.size()));
  EXPECT_EQ(get.Header("X-Packice-Version"), std::to_string(j.value("version", uint64_t{0})));
  EXPECT_EQ(get.Header("X-Packice-Tier"), ExpectedTier());
  EXPECT_FALSE(get.Has("X-Packice-TTL")) << get.Describe();
  EXPECT_FALSE(get.Has("X-Packice-Expires")) << get.Describe();
  auto modified = ParseImfDate(get.Header("Last-Modified"));
  ASSERT_TRUE(modified.has_value()) << get.Describe();
  EXPECT_LE(std::abs(*modified - UnixMillisNow() / 1000), 60) << get.Header("Last-Modified");
  // ETag: "{version}-{created}", numbers in hex.
  {
    std::string inner = etag1.substr(1, etag1.size() - 2);
    size_t d1 = inner.find('-'), d2 = inner.size();
    ASSERT_TRUE(d1 != std::string::npos && inner.find('-', d1 + 1) == std::string::npos) << etag1;
    EXPECT_EQ(std::stoull(inner.substr(0, d1), nullptr, 16),
              std::stoull(get.Header("X-Packice-Version")))
        << etag1;
    EXPECT_EQ(std::stoll(inner.substr(d1 + 1, d2 - d1 - 1), nullptr, 16) / 1000, *modified)
        << etag1 << " vs Last-Modified " << get.Header("Last-Modified");
  }

  // The same ETag on every GET of the same object.
  auto again = client_.Get(Obj("models/llama/7b"));
  ASSERT_EQ(again.status, 200) << again.Describe();
  EXPECT_EQ(again.Header("ETag"), etag1);

  // Replacing: 204 with the new object's ETag; GETs see the new bytes.
  const std::string second = PatternString(5000, 2);
  auto replace = client_.Put(Obj("models/llama/7b"), second);
  ASSERT_EQ(replace.status, 204) << replace.Describe();
  EXPECT_TRUE(replace.body.empty());
  const std::string etag2 = replace.Header("ETag");
  EXPECT_FALSE(etag2.empty()) << replace.Describe();
  EXPECT_NE(etag2, etag1);
  auto get2 = client_.Get(Obj("models/llama/7b"));
  ASSERT_EQ(get2.status, 200) << get2.Describe();
  EXPECT_TRUE(get2.body == second) << "GET after the replace returned other bytes";
  EXPECT_EQ(get2.Header("ETag"), etag2);

  // An empty object.
  auto empty = client_.Put(Obj("empty"), "");
  ASSERT_EQ(empty.status, 201) << empty.Describe();
  auto get_empty = client_.Get(Obj("empty"));
  ASSERT_EQ(get_empty.status, 200) << get_empty.Describe();
  EXPECT_EQ(get_empty.body, "");
  EXPECT_EQ(get_empty.Header("Content-Length"), "0");
}

TEST_P(HttpStoreTest, HeadHasTheHeadersOfGetAndNoBody) {
  const std::string body = PatternString(123457, 3);
  ASSERT_EQ(client_.Put(Obj("h/obj"), body, {"X-Packice-Meta-Owner: alice"}).status, 201);
  auto get = client_.Get(Obj("h/obj"));
  ASSERT_EQ(get.status, 200) << get.Describe();
  auto head = client_.Head(Obj("h/obj"));
  ASSERT_TRUE(head.ok()) << head.Describe();
  EXPECT_EQ(head.status, 200) << head.Describe();
  EXPECT_TRUE(head.body.empty());
  EXPECT_EQ(head.Header("Content-Length"), std::to_string(body.size()));
  for (const char* name :
       {"ETag", "Last-Modified", "Accept-Ranges", "Content-Type", "X-Packice-Version",
        "X-Packice-Size", "X-Packice-Tier", "X-Packice-Meta-Owner"}) {
    EXPECT_EQ(head.Header(name), get.Header(name)) << name;
    EXPECT_TRUE(head.Has(name)) << name << " missing in HEAD: " << head.Describe();
  }
  EXPECT_EQ(head.Header("X-Packice-Meta-Owner"), "alice");

  // HEAD of a range: 206 with the range's length, X-Packice-Size the whole size.
  auto head_range = client_.Head(Obj("h/obj"), {"Range: bytes=10-19"});
  ASSERT_TRUE(head_range.ok()) << head_range.Describe();
  EXPECT_EQ(head_range.status, 206) << head_range.Describe();
  EXPECT_EQ(head_range.Header("Content-Range"), "bytes 10-19/" + std::to_string(body.size()));
  EXPECT_EQ(head_range.Header("X-Packice-Size"), std::to_string(body.size()));
  EXPECT_TRUE(head_range.body.empty());

  // HEAD of a missing key: 404 with X-Packice-Error and no body.
  ExpectError(client_.Head(Obj("h/missing")), 404, "not_found", /*head=*/true);
}

TEST_P(HttpStoreTest, DeleteThen404) {
  ASSERT_EQ(client_.Put(Obj("d/obj"), "bytes").status, 201);
  auto del = client_.Delete(Obj("d/obj"));
  ASSERT_TRUE(del.ok()) << del.Describe();
  EXPECT_EQ(del.status, 204) << del.Describe();
  EXPECT_TRUE(del.body.empty());
  ExpectError(client_.Get(Obj("d/obj")), 404, "not_found");
  ExpectError(client_.Head(Obj("d/obj")), 404, "not_found", /*head=*/true);
  ExpectError(client_.Delete(Obj("d/obj")), 404, "not_found");
  ExpectError(client_.Delete(Obj("d/never")), 404, "not_found");
  // The key can be created again.
  EXPECT_EQ(client_.Put(Obj("d/obj"), "again", {"If-None-Match: *"}).status, 201);
  EXPECT_EQ(client_.Get(Obj("d/obj")).body, "again");
}

TEST_P(HttpStoreTest, Ranges) {
  const std::string body = PatternString(1000, 4);
  ASSERT_EQ(client_.Put(Obj("r/obj"), body).status, 201);
  struct Case {
    std::string range;
    uint64_t first, last;
  };
  for (const Case& c : std::vector<Case>{{"bytes=0-99", 0, 99},
                                         {"bytes=100-199", 100, 199},
                                         {"bytes=900-", 900, 999},
                                         {"bytes=-100", 900, 999},
                                         {"bytes=-5000", 0, 999},
                                         {"bytes=990-2000", 990, 999},
                                         {"bytes=0-0", 0, 0},
                                         {"bytes=999-999", 999, 999}}) {
    SCOPED_TRACE(c.range);
    auto r = client_.Get(Obj("r/obj"), {"Range: " + c.range});
    ASSERT_TRUE(r.ok()) << r.Describe();
    EXPECT_EQ(r.status, 206) << r.Describe();
    EXPECT_EQ(r.Header("Content-Range"),
              "bytes " + std::to_string(c.first) + "-" + std::to_string(c.last) + "/1000");
    EXPECT_EQ(r.Header("Content-Length"), std::to_string(c.last - c.first + 1));
    EXPECT_TRUE(r.body == body.substr(c.first, c.last - c.first + 1)) << "wrong bytes";
    EXPECT_EQ(r.Header("X-Packice-Size"), "1000");
  }
  // Several ranges, or bad syntax: the whole object, 200.
  for (std::string range : {"bytes=0-1,5-6", "bytes=abc", "bytes=5-2", "items=0-1"}) {
    SCOPED_TRACE(range);
    auto r = client_.Get(Obj("r/obj"), {"Range: " + range});
    ASSERT_TRUE(r.ok()) << r.Describe();
    EXPECT_EQ(r.status, 200) << r.Describe();
    EXPECT_FALSE(r.Has("Content-Range")) << r.Describe();
    EXPECT_TRUE(r.body == body) << "not the whole object";
  }
  // Past the end: 416 with Content-Range: bytes */size.
  for (std::string range : {"bytes=1000-", "bytes=1000-1001", "bytes=5000-6000"}) {
    SCOPED_TRACE(range);
    auto r = client_.Get(Obj("r/obj"), {"Range: " + range});
    ASSERT_TRUE(r.ok()) << r.Describe();
    EXPECT_EQ(r.status, 416) << r.Describe();
    EXPECT_EQ(r.Header("Content-Range"), "bytes */1000") << r.Describe();
    EXPECT_TRUE(r.Has("X-Packice-Error")) << r.Describe();
  }
  // A range of a larger object (more than one 1 MiB step of the bounce buffer).
  const std::string big = PatternString(3 * kMiB + 11, 5);
  ASSERT_EQ(client_.Put(Obj("r/big"), big).status, 201);
  auto r = client_.Get(Obj("r/big"), {"Range: bytes=1048570-2097160"});
  ASSERT_EQ(r.status, 206) << r.Describe();
  EXPECT_TRUE(r.body == big.substr(1048570, 2097160 - 1048570 + 1)) << "wrong bytes";
  auto tail = client_.Get(Obj("r/big"), {"Range: bytes=-3"});
  ASSERT_EQ(tail.status, 206) << tail.Describe();
  EXPECT_EQ(tail.body, big.substr(big.size() - 3));
}

TEST_P(HttpStoreTest, ConditionalRequests) {
  ASSERT_EQ(client_.Put(Obj("c/obj"), PatternString(2000, 6)).status, 201);
  auto get = client_.Get(Obj("c/obj"));
  ASSERT_EQ(get.status, 200) << get.Describe();
  const std::string etag = get.Header("ETag");
  ASSERT_FALSE(etag.empty());

  auto not_modified = client_.Get(Obj("c/obj"), {"If-None-Match: " + etag});
  ASSERT_TRUE(not_modified.ok()) << not_modified.Describe();
  EXPECT_EQ(not_modified.status, 304) << not_modified.Describe();
  EXPECT_TRUE(not_modified.body.empty());
  EXPECT_EQ(not_modified.Header("ETag"), etag);
  // Weak comparison, lists and '*'.
  EXPECT_EQ(client_.Get(Obj("c/obj"), {"If-None-Match: W/" + etag}).status, 304);
  EXPECT_EQ(client_.Get(Obj("c/obj"), {"If-None-Match: \"nope\", " + etag}).status, 304);
  EXPECT_EQ(client_.Get(Obj("c/obj"), {"If-None-Match: *"}).status, 304);
  auto other = client_.Get(Obj("c/obj"), {"If-None-Match: \"1-2-memory\""});
  EXPECT_EQ(other.status, 200) << other.Describe();
  EXPECT_EQ(other.body.size(), 2000u);

  // If-Range: a matching ETag serves the range, another one the whole object.
  auto ranged = client_.Get(Obj("c/obj"), {"Range: bytes=0-9", "If-Range: " + etag});
  EXPECT_EQ(ranged.status, 206) << ranged.Describe();
  EXPECT_EQ(ranged.body.size(), 10u);
  auto whole = client_.Get(Obj("c/obj"), {"Range: bytes=0-9", "If-Range: \"stale\""});
  EXPECT_EQ(whole.status, 200) << whole.Describe();
  EXPECT_EQ(whole.body.size(), 2000u);
  EXPECT_FALSE(whole.Has("Content-Range"));

  // After a replace the old ETag matches nothing: 200 with the new bytes, never a wrong 304.
  ASSERT_EQ(client_.Put(Obj("c/obj"), "new").status, 204);
  auto after = client_.Get(Obj("c/obj"), {"If-None-Match: " + etag});
  EXPECT_EQ(after.status, 200) << after.Describe();
  EXPECT_EQ(after.body, "new");
  EXPECT_NE(after.Header("ETag"), etag);
  auto after_range = client_.Get(Obj("c/obj"), {"Range: bytes=0-0", "If-Range: " + etag});
  EXPECT_EQ(after_range.status, 200) << after_range.Describe();
  EXPECT_EQ(after_range.body, "new");
}

// A GET that started on an object finishes with its bytes though the key is replaced (or
// deleted) meanwhile. The reader is a raw socket with a small receive buffer that reads a little,
// stops, and reads the rest after the change.
void CheckReaderKeepsOldBytes(HttpClient& client, const std::string& base, uint16_t port,
                              bool replace) {
  const std::string old_bytes = PatternString(24 * kMiB + 5, 7);
  const std::string new_bytes = PatternString(1 * kMiB + 3, 8);
  const std::string key = replace ? "slow/replace" : "slow/delete";
  ASSERT_EQ(client.Put(base + "/v1/objects/" + key, old_bytes).status, 201);

  RawTcp reader(port, 64 * kKiB);
  ASSERT_TRUE(reader.Send("GET /v1/objects/" + key + " HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(reader.ReadUntil(
      [](const std::string& b) {
        size_t h = b.find("\r\n\r\n");
        return h != std::string::npos && b.size() >= h + 4 + 256 * kKiB;
      },
      10s))
      << "the first part of the GET did not arrive";
  const size_t head_end = reader.buffer().find("\r\n\r\n") + 4;
  ASSERT_TRUE(reader.buffer().starts_with("HTTP/1.1 200")) << reader.buffer().substr(0, 200);
  ASSERT_LT(reader.buffer().size() - head_end, old_bytes.size())
      << "the whole object was already buffered: the test proves nothing";

  if (replace) {
    auto put = client.Put(base + "/v1/objects/" + key, new_bytes);
    ASSERT_EQ(put.status, 204) << put.Describe();
    auto get = client.Get(base + "/v1/objects/" + key);
    ASSERT_EQ(get.status, 200) << get.Describe();
    EXPECT_TRUE(get.body == new_bytes) << "a GET after the replace did not see the new bytes";
  } else {
    auto del = client.Delete(base + "/v1/objects/" + key);
    ASSERT_EQ(del.status, 204) << del.Describe();
    EXPECT_EQ(client.Get(base + "/v1/objects/" + key).status, 404);
  }
  // Churn the store so that freed memory would be reused if the old object had been freed.
  for (int i = 0; i < 4; ++i) {
    ASSERT_EQ(client
                  .Put(base + "/v1/objects/churn/" + std::to_string(i),
                       std::string(8 * kMiB, static_cast<char>('a' + i)))
                  .status,
              201);
  }
  ASSERT_TRUE(reader.ReadUntil(
      [&](const std::string& b) { return b.size() >= head_end + old_bytes.size(); }, 30s))
      << "the slow GET ended after " << reader.buffer().size() - head_end << " of "
      << old_bytes.size() << " bytes";
  std::string_view got(reader.buffer());
  got.remove_prefix(head_end);
  EXPECT_EQ(got.size(), old_bytes.size());
  if (got.size() == old_bytes.size() && got != old_bytes) {
    size_t bad = 0, bad_bytes = 0;
    while (got[bad] == old_bytes[bad]) ++bad;
    for (size_t i = bad; i < got.size(); ++i) bad_bytes += got[i] != old_bytes[i];
    auto hex = [](std::string_view b) {
      std::ostringstream o;
      for (unsigned char c : b) o << std::hex << (c < 16 ? "0" : "") << static_cast<int>(c);
      return o.str();
    };
    ADD_FAILURE() << "the slow GET did not receive the old object's bytes: the first of "
                  << bad_bytes << " wrong bytes is at " << bad << " of " << got.size() << " (got "
                  << hex(got.substr(bad, 16)) << ", want "
                  << hex(std::string_view(old_bytes).substr(bad, 16)) << ")";
  }
}

TEST_P(HttpStoreTest, ReaderOfTheOldObjectFinishesAfterAReplace) {
  CheckReaderKeepsOldBytes(client_, base_, port_, /*replace=*/true);
}

TEST_P(HttpStoreTest, ReaderFinishesAfterADelete) {
  CheckReaderKeepsOldBytes(client_, base_, port_, /*replace=*/false);
}

// --- keys ----------------------------------------------------------------------------------------

// A client that goes away mid-body costs its connection only: with a file object the node is
// inside sendfile(2), which raises SIGPIPE (no MSG_NOSIGNAL) and once killed the node.
TEST_P(HttpStoreTest, ReadersThatHangUpMidBodyCostOnlyTheirConnection) {
  const std::string body = PatternString(32 * kMiB, 21);
  ASSERT_EQ(client_.Put(Obj("hangup"), body).status, 201);
  for (int i = 0; i < 8; ++i) {
    RawTcp raw(port_, 64 * kKiB);
    ASSERT_TRUE(raw.Send("GET /v1/objects/hangup HTTP/1.1\r\nHost: x\r\n\r\n"));
    ASSERT_TRUE(raw.ReadUntil([](const std::string& b) { return b.size() > 100 * 1024; }, 5s));
    raw.Close();  // unread bytes in the receive queue: the close resets the connection
  }
  std::this_thread::sleep_for(200ms);
  ExpectServing();
  auto get = client_.Get(Obj("hangup"));
  EXPECT_EQ(get.status, 200) << get.Describe();
  EXPECT_TRUE(get.body == body) << "wrong bytes after the hang-ups";
}

TEST_F(HttpTest, KeysWithSlashesAndPercentEncoding) {
  struct Case {
    std::string path;  // as sent
    std::string key;   // as stored
    std::string alt;   // another spelling of the same key in a path
  };
  for (const Case& c : std::vector<Case>{
           {"builds/ab/cdef", "builds/ab/cdef", "builds%2Fab%2Fcdef"},
           {"a%20b%2Fc%3F", "a b/c?", "a%20b/c%3f"},
           {"%C3%A9t%C3%A9", "\xC3\xA9t\xC3\xA9", "%c3%a9t%c3%a9"},
           {"x+y", "x+y", "x%2By"},
           {"100%25", "100%", "100%25"},
       }) {
    SCOPED_TRACE(c.path);
    const std::string body = "body of " + c.key;
    auto put = client_.Put(Obj(c.path), body);
    ASSERT_EQ(put.status, 201) << put.Describe();
    Json j = Json::parse(put.body, nullptr, false);
    EXPECT_EQ(j.value("key", std::string()), c.key) << put.body;
    auto get = client_.Get(Obj(c.path));
    EXPECT_EQ(get.status, 200) << get.Describe();
    EXPECT_EQ(get.body, body);
    auto alt = client_.Get(Obj(c.alt));
    EXPECT_EQ(alt.status, 200) << alt.Describe();
    EXPECT_EQ(alt.body, body);
    // Location names the key, and leads back to it.
    std::string location = put.Header("Location");
    ASSERT_TRUE(location.starts_with("/v1/objects/")) << location;
    auto by_location = client_.Get(base_ + location);
    EXPECT_EQ(by_location.status, 200) << location << ": " << by_location.Describe();
    EXPECT_EQ(by_location.body, body);
  }
  auto list = client_.Get(base_ + "/v1/objects");
  ASSERT_EQ(list.status, 200) << list.Describe();
  Json j = Json::parse(list.body, nullptr, false);
  ASSERT_TRUE(j.is_object()) << list.body;
  std::vector<std::string> keys;
  for (const auto& o : j["objects"]) keys.push_back(o.value("key", std::string()));
  std::vector<std::string> want = {"100%", "a b/c?", "builds/ab/cdef", "x+y", "\xC3\xA9t\xC3\xA9"};
  EXPECT_EQ(keys, want);
}

TEST_F(HttpTest, BadKeysAre400) {
  ExpectError(client_.Get(Obj("bad%zzescape")), 400, "invalid_argument");
  ExpectError(client_.Get(Obj("trunc%4")), 400, "invalid_argument");
  ExpectError(client_.Put(Obj("ctl%01char"), "x"), 400, "invalid_argument");
  ExpectError(client_.Put(Obj("nul%00char"), "x"), 400, "invalid_argument");
  ExpectError(client_.Put(Obj(std::string(1025, 'k')), "x"), 400, "invalid_argument");
  EXPECT_EQ(client_.Put(Obj(std::string(1024, 'k')), "x").status, 201);
  // An empty key (docs/http.md: "A key that is empty ... gets 400").
  ExpectError(client_.Put(Obj(""), "x"), 400, "invalid_argument");
  // Nothing was created by the refused requests.
  auto list = client_.Get(base_ + "/v1/objects");
  Json j = Json::parse(list.body, nullptr, false);
  ASSERT_TRUE(j.is_object()) << list.body;
  EXPECT_EQ(j["objects"].size(), 1u) << list.body;
}

// --- PUT headers ---------------------------------------------------------------------------------

TEST_F(HttpTest, IfNoneMatchStarMakesTheCreateExclusive) {
  auto first = client_.Put(Obj("x/only"), "first", {"If-None-Match: *"});
  ASSERT_EQ(first.status, 201) << first.Describe();
  ExpectError(client_.Put(Obj("x/only"), "second", {"If-None-Match: *"}), 412, "already_exists");
  EXPECT_EQ(client_.Get(Obj("x/only")).body, "first");

  // A key being created (its PUT's body half sent) is not visible, and refuses exclusive creates.
  // Its 100 Continue says the node has created the object.
  RawTcp writer(port_);
  const std::string body = PatternString(100000, 10);
  ASSERT_TRUE(writer.Send("PUT /v1/objects/x/creating HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                          std::to_string(body.size()) + "\r\nExpect: 100-continue\r\n\r\n"));
  auto cont = writer.ReadResponse(5s);
  ASSERT_TRUE(cont.has_value()) << writer.buffer();
  ASSERT_EQ(cont->status, 100) << cont->head;
  ASSERT_TRUE(writer.Send(std::string_view(body).substr(0, 5000)));
  ExpectError(client_.Put(Obj("x/creating"), "other", {"If-None-Match: *"}), 412, "already_exists");
  ExpectError(client_.Get(Obj("x/creating")), 404, "not_found");
  ExpectError(client_.Head(Obj("x/creating")), 404, "not_found", /*head=*/true);
  Json listing = Json::parse(client_.Get(base_ + "/v1/objects?prefix=x/").body, nullptr, false);
  EXPECT_EQ(ListedKeys(listing), std::vector<std::string>{"x/only"})
      << "a key being written is listed";
  ASSERT_TRUE(writer.Send(std::string_view(body).substr(5000)));
  auto done = writer.ReadResponse(10s);
  ASSERT_TRUE(done.has_value()) << writer.buffer();
  EXPECT_EQ(done->status, 201) << done->head;
  auto get = client_.Get(Obj("x/creating"));
  ASSERT_EQ(get.status, 200) << get.Describe();
  EXPECT_TRUE(get.body == body);
}

TEST_F(HttpTest, TtlAndMetadataRoundTrip) {
  auto put = client_.Put(Obj("t/obj"), "payload",
                         {"X-Packice-TTL: 1h", "X-Packice-Meta-Dtype: bf16",
                          "X-Packice-Meta-Layer: 3", "X-Packice-Meta-Content-Type: text/plain"});
  ASSERT_EQ(put.status, 201) << put.Describe();
  const int64_t now = UnixMillisNow();
  for (bool head : {false, true}) {
    SCOPED_TRACE(head ? "HEAD" : "GET");
    auto r = head ? client_.Head(Obj("t/obj")) : client_.Get(Obj("t/obj"));
    ASSERT_EQ(r.status, 200) << r.Describe();
    EXPECT_EQ(r.Header("X-Packice-TTL"), "3600000ms");
    std::string expires = r.Header("X-Packice-Expires");
    ASSERT_FALSE(expires.empty()) << r.Describe();
    EXPECT_NEAR(static_cast<double>(std::stoll(expires)), static_cast<double>(now + 3'600'000),
                60'000.0);
    EXPECT_EQ(r.Header("X-Packice-Meta-Dtype"), "bf16");
    EXPECT_EQ(r.Header("X-Packice-Meta-Layer"), "3");
    EXPECT_EQ(r.Header("Content-Type"), "text/plain");
  }
  // The listing carries the same.
  auto list = client_.Get(base_ + "/v1/objects?prefix=t/");
  Json j = Json::parse(list.body, nullptr, false);
  ASSERT_TRUE(j.is_object() && j["objects"].size() == 1) << list.body;
  const Json& o = j["objects"][0];
  EXPECT_EQ(o.value("ttl_ms", int64_t{0}), 3'600'000);
  EXPECT_EQ(o["meta"].value("dtype", std::string()), "bf16");
  EXPECT_EQ(o["meta"].value("layer", std::string()), "3");
  EXPECT_EQ(o["meta"].value("content-type", std::string()), "text/plain");

  // Every TTL spelling of the spec.
  for (auto [text, ms] : std::vector<std::pair<std::string, std::string>>{{"60", "60000ms"},
                                                                          {"500ms", "500ms"},
                                                                          {"30s", "30000ms"},
                                                                          {"10m", "600000ms"},
                                                                          {"2h", "7200000ms"},
                                                                          {"1d", "86400000ms"}}) {
    SCOPED_TRACE(text);
    auto p = client_.Put(Obj("t/spelling"), "x", {"X-Packice-TTL: " + text});
    ASSERT_TRUE(p.status == 201 || p.status == 204) << p.Describe();
    auto h = client_.Head(Obj("t/spelling"));
    if (text == "500ms" && h.status == 404) continue;  // already expired on a slow machine
    EXPECT_EQ(h.Header("X-Packice-TTL"), ms) << h.Describe();
  }
  // 0 = no expiry: no TTL headers.
  ASSERT_EQ(client_.Put(Obj("t/forever"), "x", {"X-Packice-TTL: 0"}).status, 201);
  auto forever = client_.Head(Obj("t/forever"));
  EXPECT_FALSE(forever.Has("X-Packice-TTL")) << forever.Describe();
  EXPECT_FALSE(forever.Has("X-Packice-Expires")) << forever.Describe();

  // Metadata over the limits (64 entries; names not empty) is 400 and binds nothing.
  std::vector<std::string> meta;
  for (int i = 0; i < 64; ++i) meta.push_back("X-Packice-Meta-M" + std::to_string(i) + ": v");
  EXPECT_EQ(client_.Put(Obj("t/meta64"), "x", meta).status, 201);
  EXPECT_EQ(client_.Head(Obj("t/meta64")).Header("X-Packice-Meta-M63"), "v");
  meta.push_back("X-Packice-Meta-M64: v");
  ExpectError(client_.Put(Obj("t/meta65"), "x", meta), 400, "invalid_argument");
  EXPECT_EQ(client_.Head(Obj("t/meta65")).status, 404);
  ExpectError(client_.Put(Obj("t/meta-empty"), "x", {"X-Packice-Meta-: v"}), 400,
              "invalid_argument");
  EXPECT_EQ(client_.Head(Obj("t/meta-empty")).status, 404);

  // A bad TTL is 400 and binds nothing.
  for (std::string bad : {"abc", "-5", "1.5s", "10 s", "5y", ""}) {
    SCOPED_TRACE("TTL '" + bad + "'");
    // curl drops a header with no value ("X-Packice-TTL:"); it sends "X-Packice-TTL;" as one.
    auto r =
        client_.Put(Obj("t/bad"), "x", {bad.empty() ? "X-Packice-TTL;" : "X-Packice-TTL: " + bad});
    ExpectError(r, 400, "invalid_argument");
    EXPECT_EQ(client_.Head(Obj("t/bad")).status, 404);
  }
}

TEST_F(HttpTest, ObjectsExpireAfterTheirTtl) {
  ASSERT_EQ(client_.Put(Obj("ttl/short"), "x", {"X-Packice-TTL: 500ms"}).status, 201);
  EXPECT_TRUE(Eventually([&] { return client_.Get(Obj("ttl/short")).status == 404; }, 5s))
      << "an object with a TTL of 500 ms was still served after 5 s";
}

TEST_F(HttpTest, PostCreatesAnObjectWithAGeneratedId) {
  const std::string body = PatternString(70000, 11);
  auto post = client_.Post(base_ + "/v1/objects", body, {"X-Packice-Meta-Kind: blob"});
  ASSERT_EQ(post.status, 201) << post.Describe();
  const std::string location = post.Header("Location");
  ASSERT_TRUE(location.starts_with("/v1/objects/") && location.size() > 12) << post.Describe();
  Json j = Json::parse(post.body, nullptr, false);
  ASSERT_TRUE(j.is_object()) << post.body;
  const std::string id = j.value("key", std::string());
  EXPECT_FALSE(id.empty());
  EXPECT_EQ(j.value("size", uint64_t{0}), body.size());
  EXPECT_EQ(j.value("etag", std::string()), post.Header("ETag"));
  auto get = client_.Get(base_ + location);
  ASSERT_EQ(get.status, 200) << get.Describe();
  EXPECT_TRUE(get.body == body);
  EXPECT_EQ(get.Header("X-Packice-Meta-Kind"), "blob");
  EXPECT_EQ(get.Header("ETag"), post.Header("ETag"));
  // Two POSTs, two ids.
  auto post2 = client_.Post(base_ + "/v1/objects", "other");
  ASSERT_EQ(post2.status, 201) << post2.Describe();
  EXPECT_NE(post2.Header("Location"), location);
}

// --- errors and routing --------------------------------------------------------------------------

TEST_F(HttpTest, MissingObjectsAre404WithAJsonError) {
  auto r = client_.Get(Obj("no/such/key"));
  ExpectError(r, 404, "not_found");
  Json j = Json::parse(r.body, nullptr, false);
  EXPECT_EQ(j.value("code", -1), 1) << r.body;  // docs/errors.md: not_found is 1
}

TEST_F(HttpTest, UnknownPathsAre404AndWrongMethods405) {
  ExpectError(client_.Get(base_ + "/"), 404, "not_found");
  ExpectError(client_.Get(base_ + "/v2/objects/x"), 404, "not_found");
  ExpectError(client_.Get(base_ + "/v1/objectsx"), 404, "not_found");
  ExpectError(client_.Get(base_ + "/favicon.ico"), 404, "not_found");

  struct Case {
    std::string method, path;
    std::vector<std::string> allowed;
  };
  for (const Case& c : std::vector<Case>{
           {"PATCH", "/v1/objects/k", {"GET", "HEAD", "PUT", "DELETE"}},
           {"POST", "/v1/objects/k", {"GET", "HEAD", "PUT", "DELETE"}},
           {"OPTIONS", "/v1/objects/k", {"GET", "HEAD", "PUT", "DELETE"}},
           {"PUT", "/v1/objects", {"GET", "POST"}},
           {"DELETE", "/v1/objects", {"GET", "POST"}},
           {"POST", "/metrics", {"GET"}},
           {"DELETE", "/healthz", {"GET"}},
       }) {
    SCOPED_TRACE(c.method + " " + c.path);
    auto r = client_.Method(c.method, base_ + c.path);
    ASSERT_TRUE(r.ok()) << r.Describe();
    EXPECT_EQ(r.status, 405) << r.Describe();
    std::string allow = r.Header("Allow");
    EXPECT_FALSE(allow.empty()) << r.Describe();
    for (const std::string& m : c.allowed) {
      EXPECT_NE(allow.find(m), std::string::npos) << "Allow: " << allow << " lacks " << m;
    }
    EXPECT_TRUE(r.Has("X-Packice-Error")) << r.Describe();
  }
}

TEST_F(HttpTest, PutWithoutContentLengthOrChunkedBodyIs411) {
  // A PUT and a POST with neither Content-Length nor a body.
  for (std::string line : {"PUT /v1/objects/nolength HTTP/1.1", "POST /v1/objects HTTP/1.1"}) {
    SCOPED_TRACE(line);
    RawTcp raw(port_);
    ASSERT_TRUE(raw.Send(line + "\r\nHost: x\r\n\r\n"));
    auto resp = raw.ReadResponse(5s);
    ASSERT_TRUE(resp.has_value()) << raw.buffer();
    EXPECT_EQ(resp->status, 411) << resp->head;
  }
  EXPECT_EQ(client_.Head(Obj("nolength")).status, 404);
  ExpectServing();
}

TEST_F(HttpTest, OverCapacityIs507) {
  daemon_.Stop();
  Daemon small;
  ASSERT_OK(small.Start(
      {"--http", "127.0.0.1:0", "--store", "memory", "--capacity", "1M", "--pool", "0"}));
  const std::string base = small.http_url();
  ASSERT_FALSE(base.empty()) << small.log();
  auto r = client_.Put(base + "/v1/objects/too/big", std::string(2 * kMiB, 'b'));
  ExpectError(r, 507, "out_of_capacity");
  EXPECT_LT(r.seconds, 2.0) << "the refusal should come before the body (Expect: 100-continue)";
  EXPECT_EQ(client_.Put(base + "/v1/objects/fits", std::string(100 * kKiB, 'f')).status, 201);
}

TEST_F(HttpTest, BodyOverMaxBodyIs413) {
  daemon_.Stop();
  Daemon limited;
  std::string config = WriteConfig("[http]\nmax_body = \"1K\"\n");
  ASSERT_OK(limited.Start({"--http", "127.0.0.1:0", "--store", "memory", "--config", config}));
  const std::string base = limited.http_url();
  ASSERT_FALSE(base.empty()) << limited.log();
  auto r = client_.Put(base + "/v1/objects/big", std::string(1025, 'b'));
  ASSERT_TRUE(r.ok()) << r.Describe();
  EXPECT_EQ(r.status, 413) << r.Describe();
  EXPECT_TRUE(r.Has("X-Packice-Error")) << r.Describe();
  EXPECT_EQ(client_.Head(base + "/v1/objects/big").status, 404);
  EXPECT_EQ(client_.Put(base + "/v1/objects/small", std::string(1024, 's')).status, 201);
}

// --- listing -------------------------------------------------------------------------------------

TEST_F(HttpTest, ListingIsJsonInKeyOrderWithPrefixLimitAndPages) {
  for (std::string key : {"list/e", "list/a", "list/c/d", "list/b", "other/x", "lisz"}) {
    ASSERT_EQ(client_.Put(Obj(key), "v:" + key, {"X-Packice-Meta-Name: " + key}).status, 201)
        << key;
  }
  auto all = client_.Get(base_ + "/v1/objects?prefix=list/");
  ASSERT_EQ(all.status, 200) << all.Describe();
  EXPECT_TRUE(ToLower(all.Header("Content-Type")).starts_with("application/json"));
  Json j = Json::parse(all.body, nullptr, false);
  ASSERT_TRUE(j.is_object()) << all.body;
  EXPECT_EQ(ListedKeys(j), (std::vector<std::string>{"list/a", "list/b", "list/c/d", "list/e"}));
  EXPECT_EQ(j.value("truncated", true), false) << all.body;
  const Json& a = j["objects"][0];
  EXPECT_EQ(a.value("size", uint64_t{0}), 8u);
  EXPECT_TRUE(a.contains("version") && a.contains("created_unix_ms")) << a.dump();
  EXPECT_EQ(a.value("tier", std::string()), "memory");
  EXPECT_EQ(a["meta"].value("name", std::string()), "list/a");
  EXPECT_EQ(a.value("etag", std::string()), client_.Head(Obj("list/a")).Header("ETag"));

  auto first = client_.Get(base_ + "/v1/objects?prefix=list/&limit=2");
  Json p1 = Json::parse(first.body, nullptr, false);
  ASSERT_TRUE(p1.is_object()) << first.Describe();
  EXPECT_EQ(ListedKeys(p1), (std::vector<std::string>{"list/a", "list/b"}));
  EXPECT_EQ(p1.value("truncated", false), true) << first.body;
  auto second = client_.Get(base_ + "/v1/objects?prefix=list/&limit=2&start_after=list/b");
  Json p2 = Json::parse(second.body, nullptr, false);
  ASSERT_TRUE(p2.is_object()) << second.Describe();
  EXPECT_EQ(ListedKeys(p2), (std::vector<std::string>{"list/c/d", "list/e"}));
  EXPECT_EQ(p2.value("truncated", true), false) << second.body;
  auto past = client_.Get(base_ + "/v1/objects?prefix=list/&start_after=list/e");
  Json p3 = Json::parse(past.body, nullptr, false);
  ASSERT_TRUE(p3.is_object()) << past.Describe();
  EXPECT_TRUE(p3["objects"].empty()) << past.body;
  EXPECT_EQ(p3.value("truncated", true), false);

  // Paging one key at a time walks every key once, in order.
  std::vector<std::string> walked;
  std::string after;
  for (int i = 0; i < 20; ++i) {
    std::string url = base_ + "/v1/objects?limit=1";
    if (!after.empty()) url += "&start_after=" + after;
    Json page = Json::parse(client_.Get(url).body, nullptr, false);
    ASSERT_TRUE(page.is_object());
    auto keys = ListedKeys(page);
    walked.insert(walked.end(), keys.begin(), keys.end());
    if (!page.value("truncated", false)) break;
    ASSERT_EQ(keys.size(), 1u);
    after = keys.back();
  }
  EXPECT_EQ(walked, (std::vector<std::string>{"list/a", "list/b", "list/c/d", "list/e", "lisz",
                                              "other/x"}));

  // Everything, with no parameters.
  Json everything = Json::parse(client_.Get(base_ + "/v1/objects").body, nullptr, false);
  EXPECT_EQ(everything["objects"].size(), 6u);
  // Encoded query values.
  Json encoded =
      Json::parse(client_.Get(base_ + "/v1/objects?prefix=list%2Fc").body, nullptr, false);
  EXPECT_EQ(ListedKeys(encoded), std::vector<std::string>{"list/c/d"});

  // Bad parameters.
  ExpectError(client_.Get(base_ + "/v1/objects?limit=0"), 400, "invalid_argument");
  ExpectError(client_.Get(base_ + "/v1/objects?limit=abc"), 400, "invalid_argument");
  ExpectError(client_.Get(base_ + "/v1/objects?limit=-1"), 400, "invalid_argument");
  ExpectError(client_.Get(base_ + "/v1/objects?colour=red"), 400, "invalid_argument");
  ExpectError(client_.Get(base_ + "/v1/objects?prefix=%zz"), 400, "invalid_argument");
  // A limit over 10000 is served (capped), not refused.
  EXPECT_EQ(client_.Get(base_ + "/v1/objects?limit=100000").status, 200);
}

// --- health and metrics --------------------------------------------------------------------------

TEST_F(HttpTest, Healthz) {
  auto r = client_.Get(base_ + "/healthz");
  ASSERT_EQ(r.status, 200) << r.Describe();
  EXPECT_EQ(Trim(r.body), "ok");
  auto h = client_.Head(base_ + "/healthz");
  EXPECT_EQ(h.status, 200) << h.Describe();
  EXPECT_TRUE(h.body.empty());
}

// packiced hands its KV to the HTTP server: /v1/kv (kv_http_test covers the routes).
TEST_F(HttpTestBase, NodeServesItsKvUnderV1Kv) {
  StartDaemon({"--store", "memory", "--capacity", "64M", "--kv-dir", dir_.path() + "/kv"});
  const std::string ns = base_ + "/v1/kv/%2Fteam%2Fns";
  auto created = client_.Put(ns, "");
  ASSERT_EQ(created.status, 201) << created.Describe();
  auto put = client_.Put(ns + "/a/b", "value");
  ASSERT_EQ(put.status, 200) << put.Describe();
  auto got = client_.Get(ns + "/a/b");
  ASSERT_EQ(got.status, 200) << got.Describe();
  EXPECT_EQ(got.body, "value");
}

TEST_F(HttpTest, NodeWithoutKvAnswers404UnderV1Kv) {
  auto r = client_.Get(base_ + "/v1/kv/%2Fteam%2Fns/k");
  EXPECT_EQ(r.status, 404) << r.Describe();
}

// One version sequence for both tiers, durable across restarts: an ETag names one object
// wherever it lives, so a conditional GET after a demotion or a restart answers 304.
TEST_F(HttpTest, AnETagSurvivesADemotionAndARestart) {
  daemon_.Stop();
  Daemon tiered;
  const std::vector<std::string> flags = {"--http", "127.0.0.1:0", "--capacity",
                                          "16M",    "--eviction",  "lru"};
  ASSERT_OK(tiered.Start(flags));
  std::string base = tiered.http_url();
  ASSERT_FALSE(base.empty()) << tiered.log();
  auto put = client_.Put(base + "/v1/objects/etag/first", std::string(3 << 20, 'e'));
  ASSERT_EQ(put.status, 201) << put.Describe();
  const std::string etag = put.Header("ETag");
  ASSERT_FALSE(etag.empty());
  EXPECT_EQ(client_.Head(base + "/v1/objects/etag/first").Header("X-Packice-Tier"), "memory");
  for (int i = 0; i < 12; ++i) {  // 24 MiB through a 16 MiB memory tier
    ASSERT_EQ(
        client_.Put(base + "/v1/objects/etag/fill" + std::to_string(i), std::string(2 << 20, 'f'))
            .status,
        201);
  }
  bool demoted = false;
  for (int i = 0; i < 500 && !demoted; ++i) {
    demoted = client_.Head(base + "/v1/objects/etag/first").Header("X-Packice-Tier") == "disk";
    if (!demoted) std::this_thread::sleep_for(10ms);
  }
  ASSERT_TRUE(demoted) << tiered.log();
  auto cold = client_.Head(base + "/v1/objects/etag/first");
  EXPECT_EQ(cold.Header("ETag"), etag) << "the same object in the other tier";
  EXPECT_EQ(client_.Get(base + "/v1/objects/etag/first", {"If-None-Match: " + etag}).status, 304);

  ASSERT_EQ(tiered.Stop(SIGTERM), 0);
  ASSERT_OK(tiered.Start(flags));
  base = tiered.http_url();
  ASSERT_FALSE(base.empty()) << tiered.log();
  EXPECT_EQ(client_.Get(base + "/v1/objects/etag/first", {"If-None-Match: " + etag}).status, 304);
  // A new object under the key gets a new ETag, even though the node restarted.
  ASSERT_EQ(client_.Put(base + "/v1/objects/etag/first", std::string("new")).status, 204);
  EXPECT_EQ(client_.Get(base + "/v1/objects/etag/first", {"If-None-Match: " + etag}).status, 200);
}

TEST_F(HttpTest, MetricsArePrometheusText) {
  daemon_.Stop();
  Daemon tiered;
  ASSERT_OK(tiered.Start({"--http", "127.0.0.1:0", "--store", "tiered", "--capacity", "64M"}));
  const std::string base = tiered.http_url();
  ASSERT_FALSE(base.empty()) << tiered.log();
  const std::string body(12345, 'm');
  ASSERT_EQ(client_.Put(base + "/v1/objects/metrics/secret-key-1", body).status, 201);
  ASSERT_EQ(client_.Get(base + "/v1/objects/metrics/secret-key-1").status, 200);
  ASSERT_EQ(client_.Get(base + "/v1/objects/metrics/secret-key-1").status, 200);
  ASSERT_EQ(client_.Get(base + "/v1/objects/metrics/secret-missing").status, 404);
  ASSERT_EQ(client_.Get(base + "/v1/objects?prefix=metrics/").status, 200);

  auto r = client_.Get(base + "/metrics");
  ASSERT_EQ(r.status, 200) << r.Describe();
  EXPECT_TRUE(r.Header("Content-Type").starts_with("text/plain")) << r.Describe();
  EXPECT_NE(r.Header("Content-Type").find("version=0.0.4"), std::string::npos) << r.Describe();
  const std::string& m = r.body;
  EXPECT_NE(m.find("# TYPE packice_http_requests_total counter"), std::string::npos) << m;
  EXPECT_NE(m.find("# TYPE packice_http_request_duration_seconds histogram"), std::string::npos)
      << m;
  EXPECT_NE(m.find("# TYPE packice_objects gauge"), std::string::npos) << m;
  EXPECT_NE(m.find("# TYPE packice_evictions_total counter"), std::string::npos) << m;
  EXPECT_NE(m.find("# TYPE packice_http_connections gauge"), std::string::npos) << m;
  const std::string route = "route=\"/v1/objects/{key}\"";
  EXPECT_EQ(
      MetricValue(m, "packice_http_requests_total", {route, "method=\"PUT\"", "status=\"201\""}),
      1.0)
      << m;
  EXPECT_EQ(
      MetricValue(m, "packice_http_requests_total", {route, "method=\"GET\"", "status=\"200\""}),
      2.0)
      << m;
  EXPECT_EQ(
      MetricValue(m, "packice_http_requests_total", {route, "method=\"GET\"", "status=\"404\""}),
      1.0)
      << m;
  EXPECT_EQ(MetricValue(m, "packice_http_requests_total",
                        {"route=\"/v1/objects\"", "method=\"GET\"", "status=\"200\""}),
            1.0)
      << m;
  EXPECT_EQ(m.find("secret-key"), std::string::npos) << "a key leaked into a label: " << m;
  EXPECT_EQ(m.find("secret-missing"), std::string::npos) << "a key leaked into a label: " << m;
  // Histogram: buckets with le, +Inf, _sum and _count per route and method.
  EXPECT_EQ(MetricValue(m, "packice_http_request_duration_seconds_bucket",
                        {route, "method=\"GET\"", "le=\"+Inf\""}),
            3.0)
      << m;
  EXPECT_EQ(
      MetricValue(m, "packice_http_request_duration_seconds_count", {route, "method=\"GET\""}), 3.0)
      << m;
  EXPECT_TRUE(MetricValue(m, "packice_http_request_duration_seconds_sum", {route}).has_value())
      << m;
  // Object gauges per tier.
  EXPECT_EQ(MetricValue(m, "packice_objects", {"tier=\"memory\""}), 1.0) << m;
  EXPECT_EQ(MetricValue(m, "packice_objects", {"tier=\"disk\""}), 0.0) << m;
  EXPECT_TRUE(MetricValue(m, "packice_bytes", {"tier=\"memory\""}).value_or(0) >= body.size()) << m;
  EXPECT_EQ(MetricValue(m, "packice_capacity_bytes", {"tier=\"memory\""}), 64.0 * kMiB) << m;
  EXPECT_TRUE(MetricValue(m, "packice_http_connections").value_or(0) >= 1) << m;
  EXPECT_TRUE(MetricValue(m, "packice_http_bytes_received_total").value_or(0) >= body.size()) << m;
  EXPECT_TRUE(MetricValue(m, "packice_http_bytes_sent_total").value_or(0) >= 2 * body.size()) << m;
  EXPECT_TRUE(MetricValue(m, "packice_misses_total").value_or(0) >= 1) << m;
  EXPECT_TRUE(MetricValue(m, "packice_hits_total", {"tier=\"memory\""}).value_or(0) >= 2) << m;
  EXPECT_TRUE(MetricValue(m, "packice_leases").has_value()) << m;
}

// --- connection handling -------------------------------------------------------------------------

TEST_F(HttpTest, ExpectContinueIsHonoured) {
  // curl asks with Expect: 100-continue for a body this large and waits up to 1 s for the 100.
  const std::string body = PatternString(2 * kMiB, 12);
  HttpRequest req;
  req.url = Obj("expect/big");
  req.body = body;
  req.capture_request_headers = true;
  auto r = client_.Do(req);
  ASSERT_EQ(r.status, 201) << r.Describe();
  EXPECT_NE(ToLower(r.request_headers).find("expect: 100-continue"), std::string::npos)
      << "curl did not send Expect: the test proves nothing\n"
      << r.request_headers;
  EXPECT_TRUE(r.saw_100_continue) << r.Describe();
  EXPECT_LT(r.seconds, 1.0) << "a 2 MiB PUT took " << r.seconds << " s";
  EXPECT_TRUE(client_.Get(Obj("expect/big")).body == body);

  // The headers are checked before the body is asked for: a refused PUT answers at once, with no
  // 100 Continue.
  struct Refused {
    std::string request;
    int status;
  };
  for (const Refused& c : std::vector<Refused>{
           {"PUT /v1/objects/expect/big HTTP/1.1\r\nIf-None-Match: *\r\nContent-Length: 10\r\n",
            412},
           {"PUT /v1/objects/bad%zz HTTP/1.1\r\nContent-Length: 10\r\n", 400},
           {"PUT /v1/objects/huge HTTP/1.1\r\nContent-Length: 10000000000000\r\n", 507},
           {"PUT /v1/objects/ttl HTTP/1.1\r\nX-Packice-TTL: soon\r\nContent-Length: 10\r\n", 400},
       }) {
    SCOPED_TRACE(c.request);
    RawTcp raw(port_);
    ASSERT_TRUE(raw.Send(c.request + "Host: x\r\nExpect: 100-continue\r\n\r\n"));
    auto resp = raw.ReadResponse(3s);
    ASSERT_TRUE(resp.has_value()) << "no answer before the body: " << raw.buffer();
    EXPECT_EQ(resp->status, c.status) << resp->head;
  }
  // Accepted headers: 100 Continue, then the body, then 201.
  RawTcp raw(port_);
  ASSERT_TRUE(
      raw.Send("PUT /v1/objects/expect/raw HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
               "Content-Length: 5\r\n\r\n"));
  auto cont = raw.ReadResponse(3s);
  ASSERT_TRUE(cont.has_value()) << raw.buffer();
  EXPECT_EQ(cont->status, 100) << cont->head;
  ASSERT_TRUE(raw.Send("hello"));
  auto created = raw.ReadResponse(3s);
  ASSERT_TRUE(created.has_value()) << raw.buffer();
  EXPECT_EQ(created->status, 201) << created->head;
  EXPECT_EQ(client_.Get(Obj("expect/raw")).body, "hello");
}

TEST_F(HttpTest, KeepAliveReusesOneConnection) {
  auto first = client_.Get(base_ + "/healthz");
  ASSERT_EQ(first.status, 200) << first.Describe();
  EXPECT_EQ(first.new_connections, 1);
  struct Step {
    std::string what;
    std::function<HttpResponse()> run;
    long status;
  };
  const std::string url = Obj("ka/obj");
  for (const Step& s : std::vector<Step>{
           {"PUT", [&] { return client_.Put(url, "keep-alive body"); }, 201},
           {"GET", [&] { return client_.Get(url); }, 200},
           {"HEAD", [&] { return client_.Head(url); }, 200},
           {"GET range", [&] { return client_.Get(url, {"Range: bytes=0-3"}); }, 206},
           {"GET missing", [&] { return client_.Get(Obj("ka/missing")); }, 404},
           {"PUT replace", [&] { return client_.Put(url, "second body"); }, 204},
           {"list", [&] { return client_.Get(base_ + "/v1/objects"); }, 200},
           {"DELETE", [&] { return client_.Delete(url); }, 204},
           {"metrics", [&] { return client_.Get(base_ + "/metrics"); }, 200},
       }) {
    SCOPED_TRACE(s.what);
    auto r = s.run();
    EXPECT_EQ(r.status, s.status) << r.Describe();
    EXPECT_EQ(r.new_connections, 0) << "the request opened a new connection";
  }
  // A PUT refused before its small body was read: the node drops the body and the connection
  // carries the next request (libcurl itself closes after an early error reply, so raw bytes).
  {
    RawTcp refused(port_);
    ASSERT_TRUE(
        refused.Send("PUT /v1/objects/ka/ttl HTTP/1.1\r\nHost: x\r\nX-Packice-TTL: soon\r\n"
                     "Content-Length: 3\r\n\r\nabcGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
    EXPECT_TRUE(refused.ReadUntil(
        [](const std::string& b) { return b.find("\r\n\r\nok\n") != std::string::npos; }, 5s))
        << refused.buffer();
    EXPECT_EQ(refused.buffer().rfind("HTTP/1.1 400", 0), 0u) << refused.buffer();
  }
  // The raw view: two requests written at once on one socket are both answered (pipelining).
  RawTcp raw(port_);
  ASSERT_TRUE(
      raw.Send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: "
               "x\r\n\r\n"));
  for (int i = 0; i < 2; ++i) {
    auto resp = raw.ReadResponse(3s);
    ASSERT_TRUE(resp.has_value()) << i << ": " << raw.buffer();
    EXPECT_EQ(resp->status, 200);
  }
  // Connection: close is honoured.
  ASSERT_TRUE(raw.Send("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  auto last = raw.ReadResponse(3s);
  ASSERT_TRUE(last.has_value()) << raw.buffer();
  EXPECT_TRUE(raw.WaitClosed(3s)) << "the node kept a Connection: close connection open";
  // HTTP/1.0 without keep-alive: one answer, then the close.
  RawTcp old(port_);
  ASSERT_TRUE(old.Send("GET /healthz HTTP/1.0\r\n\r\n"));
  auto answer = old.ReadResponse(3s);
  ASSERT_TRUE(answer.has_value()) << old.buffer();
  EXPECT_EQ(answer->status, 200) << answer->head;
  EXPECT_TRUE(old.WaitClosed(3s)) << "an HTTP/1.0 connection was kept open";
}

TEST_F(HttpTest, StopsPromptlyWithOpenConnections) {
  // An idle keep-alive connection, one that sent half a request, and a GET whose reader stalls.
  ASSERT_EQ(client_.Put(Obj("stop/big"), PatternString(32 * kMiB, 18)).status, 201);
  RawTcp idle(port_);
  ASSERT_TRUE(idle.Send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(idle.ReadResponse(3s).has_value());
  RawTcp half(port_);
  ASSERT_TRUE(half.Send("GET /v1/obj"));
  RawTcp stalled(port_, 32 * kKiB);
  ASSERT_TRUE(stalled.Send("GET /v1/objects/stop/big HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(stalled.ReadUntil([](const std::string& b) { return b.size() > 1000; }, 3s));
  const auto start = SteadyClock::now();
  EXPECT_EQ(daemon_.Stop(SIGTERM), 0) << daemon_.log();
  EXPECT_LT(std::chrono::duration<double>(SteadyClock::now() - start).count(), 5.0)
      << "SIGTERM took this long with open HTTP connections";
  EXPECT_TRUE(idle.WaitClosed(3s));
  EXPECT_TRUE(half.WaitClosed(3s));
}

TEST_F(HttpTest, ManyConcurrentConnections) {
  constexpr int kThreads = 64;
  constexpr int kRounds = 20;
  std::atomic<int> failures{0};
  std::mutex mu;
  std::string first_failure;
  auto fail = [&](const std::string& what) {
    if (failures.fetch_add(1) == 0) {
      std::lock_guard<std::mutex> lock(mu);
      first_failure = what;
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      HttpClient c;
      for (int i = 0; i < kRounds; ++i) {
        const std::string key = "conc/" + std::to_string(t) + "/" + std::to_string(i);
        const std::string body = PatternString(100 + (t * 977 + i * 131) % 40000, t + i);
        auto put = c.Put(Obj(key), body);
        if (put.status != 201) {
          fail("PUT " + key + ": " + put.Describe());
          continue;
        }
        auto get = c.Get(Obj(key));
        if (get.status != 200 || get.body != body) fail("GET " + key + ": " + get.Describe());
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0) << first_failure;
  auto list = client_.Get(base_ + "/v1/objects?prefix=conc/&limit=10000");
  Json j = Json::parse(list.body, nullptr, false);
  ASSERT_TRUE(j.is_object()) << list.Describe();
  EXPECT_EQ(j["objects"].size(), static_cast<size_t>(kThreads * kRounds));
  EXPECT_EQ(j.value("truncated", true), false);
  // The default limit is 1000.
  Json page = Json::parse(client_.Get(base_ + "/v1/objects?prefix=conc/").body, nullptr, false);
  ASSERT_TRUE(page.is_object());
  EXPECT_EQ(page["objects"].size(), 1000u);
  EXPECT_EQ(page.value("truncated", false), true);
  ExpectServing();
}

TEST_F(HttpTest, ConnectionsOverTheLimitAreRefused) {
  daemon_.Stop();
  Daemon limited;
  std::string config = WriteConfig("[http]\nmax_connections = 4\n");
  ASSERT_OK(limited.Start({"--http", "127.0.0.1:0", "--store", "memory", "--config", config}));
  const std::string base = limited.http_url();
  ASSERT_FALSE(base.empty()) << limited.log();
  const uint16_t port = PortOf(base);

  // Four open keep-alive connections, each proven accepted by an answered request.
  std::vector<std::unique_ptr<RawTcp>> held;
  for (int i = 0; i < 4; ++i) {
    held.push_back(std::make_unique<RawTcp>(port));
    ASSERT_TRUE(held.back()->Send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
    auto resp = held.back()->ReadResponse(3s);
    ASSERT_TRUE(resp.has_value()) << held.back()->buffer();
    ASSERT_EQ(resp->status, 200) << resp->head;
  }
  // A fifth connection is answered 503 and closed, without sending anything.
  {
    RawTcp extra(port);
    auto resp = extra.ReadResponse(3s);
    ASSERT_TRUE(resp.has_value()) << "no 503 for a connection over the limit: " << extra.buffer();
    EXPECT_EQ(resp->status, 503) << resp->head;
    EXPECT_EQ(resp->Header("X-Packice-Error"), "unavailable") << resp->head;
    EXPECT_TRUE(extra.WaitClosed(3s));
  }
  // A client sending a request: 503, or the connection closed under it.
  {
    HttpClient c;
    auto r = c.Get(base + "/healthz");
    EXPECT_TRUE((r.ok() && r.status == 503) || r.code == CURLE_GOT_NOTHING ||
                r.code == CURLE_RECV_ERROR || r.code == CURLE_SEND_ERROR)
        << r.Describe();
  }
  // The held connections still work.
  for (auto& h : held) {
    ASSERT_TRUE(h->Send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
    auto resp = h->ReadResponse(3s);
    ASSERT_TRUE(resp.has_value()) << h->buffer();
    EXPECT_EQ(resp->status, 200);
  }
  // Closing one makes room.
  held.pop_back();
  HttpClient c;
  EXPECT_TRUE(Eventually([&] { return c.Get(base + "/healthz").status == 200; }, 5s))
      << "no room after a connection closed";
}

// --- auth ----------------------------------------------------------------------------------------

TEST_F(HttpTest, BearerToken) {
  daemon_.Stop();
  Daemon secured;
  ASSERT_OK(secured.Start(
      {"--http", "127.0.0.1:0", "--store", "memory", "--http-token", "s3cret-token"}));
  const std::string base = secured.http_url();
  ASSERT_FALSE(base.empty()) << secured.log();
  const std::string good = "Authorization: Bearer s3cret-token";

  auto expect_401 = [&](const HttpResponse& r) {
    ASSERT_TRUE(r.ok()) << r.Describe();
    EXPECT_EQ(r.status, 401) << r.Describe();
    EXPECT_TRUE(r.Header("WWW-Authenticate").starts_with("Bearer")) << r.Describe();
    EXPECT_TRUE(r.Has("X-Packice-Error")) << r.Describe();
  };
  for (std::vector<std::string> auth :
       std::vector<std::vector<std::string>>{{},
                                             {"Authorization: Bearer wrong"},
                                             {"Authorization: Bearer s3cret-toke"},
                                             {"Authorization: Bearer s3cret-token2"},
                                             {"Authorization: Basic czNjcmV0LXRva2Vu"},
                                             {"Authorization: s3cret-token"}}) {
    SCOPED_TRACE(auth.empty() ? "no token" : auth[0]);
    expect_401(client_.Get(base + "/v1/objects/k", auth));
    expect_401(client_.Put(base + "/v1/objects/k", "x", auth));
    expect_401(client_.Get(base + "/v1/objects", auth));
    expect_401(client_.Get(base + "/metrics", auth));
    expect_401(client_.Delete(base + "/v1/objects/k", auth));
    expect_401(client_.Post(base + "/v1/objects", "x", auth));
  }
  // /healthz needs no token.
  EXPECT_EQ(client_.Get(base + "/healthz").status, 200);
  // The right token.
  auto put = client_.Put(base + "/v1/objects/k", "secret bytes", {good});
  EXPECT_EQ(put.status, 201) << put.Describe();
  auto get = client_.Get(base + "/v1/objects/k", {good});
  EXPECT_EQ(get.status, 200) << get.Describe();
  EXPECT_EQ(get.body, "secret bytes");
  EXPECT_EQ(client_.Get(base + "/v1/objects/k", {"Authorization: bearer s3cret-token"}).status, 200)
      << "the auth scheme is case-insensitive (RFC 9110 11.1)";
  EXPECT_EQ(client_.Get(base + "/v1/objects", {good}).status, 200);
  EXPECT_EQ(client_.Get(base + "/metrics", {good}).status, 200);
  // The refused PUTs bound nothing.
  EXPECT_EQ(client_.Get(base + "/v1/objects?prefix=", {good}).status, 200);
  Json j = Json::parse(client_.Get(base + "/v1/objects", {good}).body, nullptr, false);
  EXPECT_EQ(ListedKeys(j), std::vector<std::string>{"k"});
}

// --- TLS -----------------------------------------------------------------------------------------

TEST_F(HttpTest, Tls) {
  daemon_.Stop();
  std::string cert, key;
  ASSERT_OK(MakeSelfSignedCert(dir_.path(), &cert, &key));
  Daemon tls;
  ASSERT_OK(tls.Start(
      {"--http", "127.0.0.1:0", "--store", "memory", "--tls-cert", cert, "--tls-key", key}));
  const std::string base = tls.http_url();
  ASSERT_TRUE(base.starts_with("https://127.0.0.1:")) << base << "\n" << tls.log();
  const uint16_t port = PortOf(base);

  auto req = [&](std::string method, std::string path, std::optional<std::string> body = {},
                 std::vector<std::string> headers = {}) {
    HttpRequest r;
    r.method = std::move(method);
    r.url = base + path;
    r.body = std::move(body);
    r.headers = std::move(headers);
    r.cainfo = cert;
    return r;
  };
  auto health = client_.Do(req("GET", "/healthz"));
  ASSERT_EQ(health.status, 200) << health.Describe();
  EXPECT_EQ(health.new_connections, 1);

  // Large bodies both ways through OpenSSL (more than one 1 MiB piece), and ranges.
  const std::string body = PatternString(3 * kMiB + 17, 13);
  auto put = client_.Do(req("PUT", "/v1/objects/tls/obj", body));
  ASSERT_EQ(put.status, 201) << put.Describe();
  EXPECT_EQ(put.new_connections, 0) << "keep-alive over TLS";
  auto get = client_.Do(req("GET", "/v1/objects/tls/obj"));
  ASSERT_EQ(get.status, 200) << get.Describe();
  EXPECT_TRUE(get.body == body) << "GET over TLS returned other bytes";
  auto range = client_.Do(req("GET", "/v1/objects/tls/obj", {}, {"Range: bytes=1048000-2097999"}));
  ASSERT_EQ(range.status, 206) << range.Describe();
  EXPECT_TRUE(range.body == body.substr(1048000, 1050000)) << "wrong range over TLS";
  auto head = client_.Do(req("HEAD", "/v1/objects/tls/obj"));
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.Header("Content-Length"), std::to_string(body.size()));
  ExpectError(client_.Do(req("GET", "/v1/objects/tls/missing")), 404, "not_found");

  // The certificate is the one served: a client that does not trust it fails.
  {
    HttpClient c;
    HttpRequest untrusted;
    untrusted.url = base + "/healthz";
    auto r = c.Do(untrusted);
    EXPECT_FALSE(r.ok()) << r.Describe();
  }
  // Plain HTTP to the TLS port fails, and the node keeps serving.
  {
    HttpClient c;
    auto r = c.Get("http://127.0.0.1:" + std::to_string(port) + "/healthz");
    EXPECT_FALSE(r.ok() && r.status == 200) << r.Describe();
    RawTcp raw(port);
    ASSERT_TRUE(raw.Send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
    EXPECT_TRUE(raw.WaitClosed(5s)) << "a plain-text request to the TLS port was left hanging";
    EXPECT_EQ(raw.buffer().find("HTTP/1.1 200"), std::string::npos) << raw.buffer();
  }
  // A client that connects and never starts the handshake does not block others.
  RawTcp idle(port);
  HttpClient fresh;
  auto again = fresh.Do(req("GET", "/v1/objects/tls/obj"));
  ASSERT_EQ(again.status, 200) << again.Describe();
  EXPECT_TRUE(again.body == body);
  EXPECT_TRUE(tls.alive());
}

TEST_F(HttpTest, TlsSlowButSteadyClientsAreServed) {
  // Over TLS the body moves in 1 MiB (file) or 8 MiB (memory) pieces; a client slower than one
  // piece per io timeout, but never stalled, is still served to the end.
  daemon_.Stop();
  std::string cert, key;
  ASSERT_OK(MakeSelfSignedCert(dir_.path(), &cert, &key));
  std::string config = WriteConfig("[http]\nio_timeout = \"1s\"\nidle_timeout = \"1s\"\n");
  Daemon tls;
  ASSERT_OK(tls.Start({"--http", "127.0.0.1:0", "--store", "memory", "--config", config,
                       "--tls-cert", cert, "--tls-key", key}));
  const std::string base = tls.http_url();
  ASSERT_FALSE(base.empty()) << tls.log();
  const std::string body = PatternString(4 * kMiB, 19);
  HttpRequest put;
  put.url = base + "/v1/objects/tls/steady";
  put.body = body;
  put.cainfo = cert;
  put.max_send_speed = 2 * kMiB;  // about 2 s
  auto p = client_.Do(put);
  EXPECT_EQ(p.status, 201) << "a PUT at 2 MiB/s: " << p.Describe();
  if (p.status != 201) {  // store it at full speed for the GET below
    put.max_send_speed = 0;
    HttpClient fresh;
    ASSERT_EQ(fresh.Do(put).status, 201);
  }
  // 10 MiB at 2.5 MiB/s (4 s) through a 64 KiB receive buffer.
  const std::string big = PatternString(10 * kMiB, 20);
  HttpClient writer;
  HttpRequest put_big;
  put_big.url = base + "/v1/objects/tls/big";
  put_big.body = big;
  put_big.cainfo = cert;
  ASSERT_EQ(writer.Do(put_big).status, 201);
  HttpRequest get;
  get.url = base + "/v1/objects/tls/big";
  get.cainfo = cert;
  get.max_recv_speed = 5 * kMiB / 2;
  get.rcvbuf = 64 * kKiB;
  HttpClient reader;
  auto g = reader.Do(get);
  EXPECT_TRUE(g.ok() && g.status == 200) << "a GET at 2.5 MiB/s: " << g.Describe();
  EXPECT_EQ(g.body.size(), big.size());
  if (g.body.size() == big.size()) {
    EXPECT_TRUE(g.body == big) << "wrong bytes";
  }
}

// --- malformed and slow clients ------------------------------------------------------------------

TEST_F(HttpTest, MalformedRequestsAre400AndTheNodeKeepsServing) {
  for (std::string garbage : {
           std::string("this is not http\r\n\r\n"),
           std::string("GET /healthz HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n"),
           std::string("GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n"),
           std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 binary\r\n\r\n", 22),
           std::string("GET /v1/objects/k HTTP/1.1\r\nContent-Length: abc\r\n\r\n"),
           std::string("PUT /v1/objects/k HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: "
                       "6\r\n\r\nhello!"),
       }) {
    SCOPED_TRACE(garbage.substr(0, 40));
    RawTcp raw(port_);
    ASSERT_TRUE(raw.Send(garbage));
    auto resp = raw.ReadResponse(3s);
    ASSERT_TRUE(resp.has_value()) << "no answer to garbage: " << raw.buffer();
    EXPECT_EQ(resp->status, 400) << resp->head;
    EXPECT_EQ(resp->Header("X-Packice-Error"), "protocol_error") << resp->head;
    EXPECT_TRUE(raw.WaitClosed(3s)) << "the connection stayed open after a malformed request";
  }
  EXPECT_EQ(client_.Head(Obj("k")).status, 404);
  ExpectServing();

  // Headers over 16 KiB: 431. Just under: served.
  {
    RawTcp raw(port_);
    ASSERT_TRUE(raw.Send("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(20000, 'a') +
                         "\r\n\r\n"));
    auto resp = raw.ReadResponse(3s);
    ASSERT_TRUE(resp.has_value()) << "no answer to 20 KB of headers: " << raw.buffer();
    EXPECT_EQ(resp->status, 431) << resp->head;
  }
  {
    RawTcp raw(port_);
    ASSERT_TRUE(raw.Send("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(12000, 'a') +
                         "\r\n\r\n"));
    auto resp = raw.ReadResponse(3s);
    ASSERT_TRUE(resp.has_value()) << raw.buffer();
    EXPECT_EQ(resp->status, 200) << resp->head;
  }
  // Many headers adding up to more than 16 KiB, sent slowly in pieces.
  {
    RawTcp raw(port_);
    ASSERT_TRUE(raw.Send("GET /healthz HTTP/1.1\r\nHost: x\r\n"));
    bool refused = false;
    for (int i = 0; i < 200 && !refused; ++i) {
      if (!raw.Send("X-H" + std::to_string(i) + ": " + std::string(200, 'h') + "\r\n")) break;
      refused = raw.ReadUntil([](const std::string& b) { return !b.empty(); }, 1ms);
    }
    auto resp = raw.ReadResponse(3s);
    ASSERT_TRUE(resp.has_value()) << raw.buffer();
    EXPECT_EQ(resp->status, 431) << resp->head;
  }
  ExpectServing();
}

class HttpTimeoutTest : public HttpTestBase {
 protected:
  void SetUp() override {
    std::string config = WriteConfig("[http]\nio_timeout = \"1s\"\nidle_timeout = \"1s\"\n");
    StartDaemon({"--store", "memory", "--capacity", "256M", "--config", config});
  }
};

TEST_F(HttpTimeoutTest, HalfARequestLineIsTimedOut) {
  RawTcp raw(port_);
  ASSERT_TRUE(raw.Send("GET /v1/obj"));
  auto start = SteadyClock::now();
  EXPECT_TRUE(raw.WaitClosed(6s)) << "a stalled request was kept open";
  double took = std::chrono::duration<double>(SteadyClock::now() - start).count();
  EXPECT_LT(took, 5.0);
  EXPECT_GE(took, 0.5) << "closed before the timeout";
  EXPECT_TRUE(raw.buffer().starts_with("HTTP/1.1 408")) << "got: " << raw.buffer();
  ExpectServing();
}

TEST_F(HttpTimeoutTest, IdleKeepAliveConnectionsAreClosed) {
  RawTcp raw(port_);
  ASSERT_TRUE(raw.Send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto resp = raw.ReadResponse(3s);
  ASSERT_TRUE(resp.has_value()) << raw.buffer();
  EXPECT_EQ(resp->status, 200);
  auto start = SteadyClock::now();
  EXPECT_TRUE(raw.WaitClosed(6s)) << "an idle connection was kept open";
  EXPECT_LT(std::chrono::duration<double>(SteadyClock::now() - start).count(), 5.0);
  EXPECT_EQ(raw.buffer(), "") << "nothing is sent to an idle connection that is closed";
  // Silence before the first request is idleness too.
  RawTcp silent(port_);
  EXPECT_TRUE(silent.WaitClosed(6s)) << "a connection that never sent a byte was kept open";
  ExpectServing();
}

TEST_F(HttpTimeoutTest, AStalledPutIsAbortedAndBindsNothing) {
  RawTcp raw(port_);
  ASSERT_TRUE(
      raw.Send("PUT /v1/objects/stalled HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n"
               "Expect: 100-continue\r\n\r\n"));
  auto cont = raw.ReadResponse(3s);
  ASSERT_TRUE(cont.has_value()) << raw.buffer();
  ASSERT_EQ(cont->status, 100) << cont->head;
  ASSERT_TRUE(raw.Send(PatternString(4000, 14)));
  auto start = SteadyClock::now();
  EXPECT_TRUE(raw.WaitClosed(6s)) << "a PUT stalled mid-body was kept open";
  EXPECT_LT(std::chrono::duration<double>(SteadyClock::now() - start).count(), 5.0);
  EXPECT_TRUE(raw.buffer().starts_with("HTTP/1.1 408")) << "got: " << raw.buffer();
  // Discarded: not visible, and the key is free for an exclusive create.
  ExpectError(client_.Get(Obj("stalled")), 404, "not_found");
  auto create = client_.Put(Obj("stalled"), "fresh", {"If-None-Match: *"});
  EXPECT_EQ(create.status, 201) << "the aborted PUT still holds the key: " << create.Describe();
  ExpectServing();
}

// Clients that stop (their connection ends after the io timeout) and clients that are slow but
// never stop (served to the end: the timeout is for no progress, not for a whole transfer), from
// memory and from disk.
class HttpSlowClientTest : public HttpTestBase, public ::testing::WithParamInterface<std::string> {
 protected:
  void SetUp() override {
    std::string config = WriteConfig("[http]\nio_timeout = \"1s\"\nidle_timeout = \"1s\"\n");
    auto flags = StoreFlags(GetParam());
    flags.insert(flags.end(), {"--config", config});
    StartDaemon(flags);
  }
};

INSTANTIATE_TEST_SUITE_P(Stores, HttpSlowClientTest, ::testing::Values("memory", "disk"),
                         [](const auto& info) { return info.param; });

TEST_P(HttpSlowClientTest, ASlowButSteadyReaderGetsTheWholeObject) {
  // 12 MiB read 256 KiB every 100 ms (about 5 s): never a pause near the 1 s io timeout.
  const std::string body = PatternString(12 * kMiB, 16);
  ASSERT_EQ(client_.Put(Obj("steady/read"), body).status, 201);
  RawTcp raw(port_, 64 * kKiB);
  ASSERT_TRUE(raw.Send("GET /v1/objects/steady/read HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(raw.ReadUntil(
      [](const std::string& b) { return b.find("\r\n\r\n") != std::string::npos; }, 3s));
  const size_t head_end = raw.buffer().find("\r\n\r\n") + 4;
  const auto start = SteadyClock::now();
  size_t want = head_end;
  while (raw.buffer().size() < head_end + body.size() && !raw.eof() &&
         SteadyClock::now() - start < 60s) {
    want += 256 * kKiB;
    raw.ReadUntil([&](const std::string& b) { return b.size() >= want; }, 1s);
    std::this_thread::sleep_for(100ms);
  }
  const size_t got = raw.buffer().size() - head_end;
  EXPECT_EQ(got, body.size()) << "the node cut a reader that was making progress, after "
                              << std::chrono::duration<double>(SteadyClock::now() - start).count()
                              << " s";
  if (got == body.size()) {
    EXPECT_TRUE(std::string_view(raw.buffer()).substr(head_end) == body) << "wrong bytes";
  }
}

TEST_P(HttpSlowClientTest, ASlowButSteadyPutSucceeds) {
  // 2 MiB sent 64 KiB every 100 ms (about 3 s): never a pause near the 1 s io timeout.
  const std::string body = PatternString(2 * kMiB, 17);
  RawTcp raw(port_);
  ASSERT_TRUE(raw.Send("PUT /v1/objects/steady/put HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                       std::to_string(body.size()) + "\r\n\r\n"));
  const auto start = SteadyClock::now();
  for (size_t at = 0; at < body.size(); at += 64 * kKiB) {
    if (!raw.Send(std::string_view(body).substr(at, 64 * kKiB))) break;
    std::this_thread::sleep_for(100ms);
  }
  auto resp = raw.ReadResponse(5s);
  ASSERT_TRUE(resp.has_value()) << "no answer to a slow PUT after "
                                << std::chrono::duration<double>(SteadyClock::now() - start).count()
                                << " s: " << raw.buffer();
  EXPECT_EQ(resp->status, 201) << resp->head << resp->body;
  auto get = client_.Get(Obj("steady/put"));
  EXPECT_EQ(get.status, 200) << get.Describe();
  EXPECT_TRUE(get.body == body) << "wrong bytes";
}

TEST_P(HttpSlowClientTest, AReaderThatStopsReadingIsCut) {
  const std::string body = PatternString(32 * kMiB, 15);
  ASSERT_EQ(client_.Put(Obj("stall/read"), body).status, 201);
  RawTcp raw(port_, 32 * kKiB);
  ASSERT_TRUE(raw.Send("GET /v1/objects/stall/read HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(raw.ReadUntil([](const std::string& b) { return b.size() > 1000; }, 3s));
  // Read nothing for 4 s: the node's send makes no progress for longer than the io timeout.
  std::this_thread::sleep_for(4s);
  ExpectServing();
  EXPECT_TRUE(raw.WaitClosed(30s));
  size_t head_end = raw.buffer().find("\r\n\r\n");
  ASSERT_NE(head_end, std::string::npos);
  EXPECT_LT(raw.buffer().size() - head_end - 4, body.size())
      << "the whole body arrived: the node did not cut the stalled reader";
}

// --- a huge object streamed both ways ------------------------------------------------------------

// Bytes of the huge object: the 8-byte little-endian word at every multiple of 8 is its offset.
inline uint8_t HugeByte(uint64_t at) {
  return static_cast<uint8_t>((at & ~uint64_t{7}) >> (8 * (at & 7)));
}

void FillHuge(uint64_t at, char* out, size_t n) {
  size_t i = 0;
  while (i < n && ((at + i) & 7) != 0) {
    out[i] = static_cast<char>(HugeByte(at + i));
    ++i;
  }
  for (; i + 8 <= n; i += 8) {
    uint64_t w = at + i;  // little-endian host (x86-64, arm64)
    std::memcpy(out + i, &w, 8);
  }
  for (; i < n; ++i) out[i] = static_cast<char>(HugeByte(at + i));
}

// Where `data`, found at `at`, first differs from the pattern; npos if nowhere.
size_t CheckHuge(uint64_t at, std::string_view data) {
  size_t i = 0;
  while (i < data.size() && ((at + i) & 7) != 0) {
    if (static_cast<uint8_t>(data[i]) != HugeByte(at + i)) return i;
    ++i;
  }
  for (; i + 8 <= data.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, data.data() + i, 8);
    if (w != at + i) {
      for (size_t k = i; k < i + 8; ++k) {
        if (static_cast<uint8_t>(data[k]) != HugeByte(at + k)) return k;
      }
    }
  }
  for (; i < data.size(); ++i) {
    if (static_cast<uint8_t>(data[i]) != HugeByte(at + i)) return i;
  }
  return std::string_view::npos;
}

// Samples a process's resident memory every 100 ms.
class RssSampler {
 public:
  explicit RssSampler(pid_t pid) : pid_(pid), thread_([this] { Run(); }) {}
  ~RssSampler() { Stop(); }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  // Peak VmRSS (and its parts at that moment) since the last Reset, in KiB.
  struct Sample {
    uint64_t rss = 0, anon = 0, file = 0, shmem = 0;
  };
  Sample peak() {
    std::lock_guard<std::mutex> lock(mu_);
    return peak_;
  }
  void Reset() {
    std::lock_guard<std::mutex> lock(mu_);
    peak_ = {};
  }
  int samples() const { return samples_.load(); }
  static std::optional<Sample> Read(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    if (!in) return std::nullopt;
    Sample s;
    std::string line;
    while (std::getline(in, line)) {
      auto field = [&](std::string_view name, uint64_t* out) {
        if (line.starts_with(name)) *out = std::stoull(line.substr(name.size()));
      };
      field("VmRSS:", &s.rss);
      field("RssAnon:", &s.anon);
      field("RssFile:", &s.file);
      field("RssShmem:", &s.shmem);
    }
    return s;
  }

 private:
  void Run() {
    while (!stop_) {
      if (auto s = Read(pid_)) {
        samples_++;
        std::lock_guard<std::mutex> lock(mu_);
        if (s->rss > peak_.rss) peak_ = *s;
      }
      std::this_thread::sleep_for(100ms);
    }
  }

  pid_t pid_;
  std::atomic<bool> stop_{false};
  std::atomic<int> samples_{0};
  std::mutex mu_;
  Sample peak_;
  std::thread thread_;
};

std::string Mib(uint64_t kib) {
  std::ostringstream o;
  o.precision(1);
  o << std::fixed << static_cast<double>(kib) / 1024.0 << " MiB";
  return o.str();
}

TEST(HttpHugeTest, FourGiBStreamThroughWithBoundedDaemonMemory) {
  constexpr uint64_t kSize = 4 * kGiB;
  constexpr uint64_t kMemoryCapacityMiB = 256;
  Daemon daemon;
  ASSERT_OK(daemon.Start({"--http", "127.0.0.1:0", "--store", "tiered", "--capacity",
                          std::to_string(kMemoryCapacityMiB) + "M", "--disk-capacity", "8G"}));
  const std::string base = daemon.http_url();
  ASSERT_FALSE(base.empty()) << daemon.log();
  struct statvfs fs {};
  ASSERT_EQ(statvfs(daemon.data_dir().c_str(), &fs), 0) << daemon.data_dir();
  const uint64_t free_bytes = static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize;
  if (free_bytes < 10 * kGiB) {
    GTEST_SKIP() << "needs 10 GiB free under " << daemon.data_dir() << ", has " << free_bytes / kMiB
                 << " MiB";
  }
  auto baseline = RssSampler::Read(daemon.pid());
  ASSERT_TRUE(baseline.has_value());
  RssSampler sampler(daemon.pid());
  HttpClient client;

  // PUT: the body is generated as curl asks for it.
  uint64_t sent = 0;
  SteadyClock::time_point last_byte_read;
  HttpRequest put;
  put.url = base + "/v1/objects/huge/4g";
  put.upload_size = kSize;
  put.timeout = 0ms;
  put.read = [&](char* buf, size_t n) -> size_t {
    size_t k = static_cast<size_t>(std::min<uint64_t>(n, kSize - sent));
    FillHuge(sent, buf, k);
    sent += k;
    if (sent == kSize && k > 0) last_byte_read = SteadyClock::now();
    return k;
  };
  const auto put_start = SteadyClock::now();
  auto put_result = client.Do(put);
  const double body_seconds = std::chrono::duration<double>(last_byte_read - put_start).count();
  const auto put_peak = sampler.peak();
  ASSERT_TRUE(put_result.ok()) << put_result.Describe() << "\n" << daemon.log();
  ASSERT_EQ(put_result.status, 201) << put_result.Describe();
  EXPECT_EQ(sent, kSize);

  auto head = client.Head(base + "/v1/objects/huge/4g");
  ASSERT_EQ(head.status, 200) << head.Describe();
  EXPECT_EQ(head.Header("Content-Length"), std::to_string(kSize));
  EXPECT_EQ(head.Header("X-Packice-Tier"), "disk") << "4 GiB cannot be in a 256 MiB memory tier";

  // GET: checked as it arrives, never held.
  sampler.Reset();
  uint64_t received = 0;
  std::optional<uint64_t> first_bad;
  HttpRequest get;
  get.url = base + "/v1/objects/huge/4g";
  get.timeout = 0ms;
  get.sink = [&](std::string_view data) {
    size_t bad = CheckHuge(received, data);
    if (bad != std::string_view::npos) {
      first_bad = received + bad;
      return false;
    }
    received += data.size();
    return true;
  };
  auto get_result = client.Do(get);
  const auto get_peak = sampler.peak();
  sampler.Stop();
  EXPECT_FALSE(first_bad.has_value()) << "byte " << *first_bad << " differs from the pattern";
  ASSERT_TRUE(get_result.ok()) << get_result.Describe();
  EXPECT_EQ(get_result.status, 200) << get_result.Describe();
  EXPECT_EQ(received, kSize);

  // A range deep in the object.
  auto range = client.Get(base + "/v1/objects/huge/4g", {"Range: bytes=4294967000-4294967295"});
  ASSERT_EQ(range.status, 206) << range.Describe();
  EXPECT_EQ(CheckHuge(4294967000, range.body), std::string_view::npos);
  EXPECT_EQ(range.body.size(), 296u);

  auto describe = [](const RssSampler::Sample& s) {
    return "VmRSS " + Mib(s.rss) + " (anon " + Mib(s.anon) + ", file " + Mib(s.file) + ", shmem " +
           Mib(s.shmem) + ")";
  };
  std::ostringstream report;
  report << "4 GiB PUT " << put_result.seconds << " s ("
         << static_cast<double>(kSize) / kMiB / put_result.seconds << " MiB/s; body sent after "
         << body_seconds << " s, answer " << put_result.seconds - body_seconds
         << " s after the last byte), GET " << get_result.seconds << " s ("
         << static_cast<double>(kSize) / kMiB / get_result.seconds << " MiB/s); daemon baseline "
         << describe(*baseline) << "; peak during PUT " << describe(put_peak)
         << "; peak during GET " << describe(get_peak) << "; " << sampler.samples() << " samples";
  std::cout << report.str() << std::endl;
  ::testing::Test::RecordProperty("rss_report", report.str());
  ASSERT_GT(sampler.samples(), 5) << "the sampler saw too little to say anything";
  if (kSanitized) GTEST_SKIP() << "resident size means little under a sanitizer: " << report.str();
  const uint64_t limit_kib = (kMemoryCapacityMiB + 160) * 1024;
  EXPECT_LT(put_peak.rss, limit_kib) << report.str();
  EXPECT_LT(get_peak.rss, limit_kib) << report.str();
}

// --- chunked uploads (curl -T -) ------------------------------------------------------------

// The sum of every sample of `name` (each tier's, for a tiered node).
double MetricSum(const std::string& text, const std::string& name) {
  std::istringstream in(text);
  std::string line;
  double sum = 0;
  while (std::getline(in, line)) {
    if (!line.starts_with(name + "{") && !line.starts_with(name + " ")) continue;
    sum += std::stod(line.substr(line.rfind(' ') + 1));
  }
  return sum;
}

// A chunked body of `size` pattern bytes (HugeByte's), curl choosing the chunk sizes.
HttpRequest ChunkedPut(const std::string& url, uint64_t size, uint64_t* sent) {
  HttpRequest put;
  put.url = url;
  put.capture_request_headers = true;
  put.timeout = 0ms;
  put.read = [size, sent](char* buf, size_t n) -> size_t {
    size_t k = static_cast<size_t>(std::min<uint64_t>(n, size - *sent));
    FillHuge(*sent, buf, k);
    *sent += k;
    return k;
  };
  return put;
}

constexpr uint64_t kChunkedLimit = 9 * kMiB;  // past two growths (4 MiB, 8 MiB, then 9 MiB)

// Every store, with max_body = 9M.
class HttpChunkedTest : public HttpTestBase, public ::testing::WithParamInterface<std::string> {
 protected:
  void SetUp() override {
    std::vector<std::string> flags = StoreFlags(GetParam());
    flags.push_back("--config");
    flags.push_back(WriteConfig("[http]\nmax_body = \"9M\"\n"));
    StartDaemon(flags);
  }
  HttpResponse PutChunked(const std::string& key, uint64_t size) {
    uint64_t sent = 0;
    HttpResponse r = client_.Do(ChunkedPut(Obj(key), size, &sent));
    EXPECT_NE(ToLower(r.request_headers).find("transfer-encoding: chunked"), std::string::npos)
        << r.request_headers;
    return r;
  }
  void ExpectObject(const std::string& key, uint64_t size) {
    auto get = client_.Get(Obj(key));
    ASSERT_EQ(get.status, 200) << get.Describe();
    EXPECT_EQ(get.Header("Content-Length"), std::to_string(size));
    EXPECT_EQ(get.body.size(), size);
    EXPECT_EQ(CheckHuge(0, get.body), std::string_view::npos) << "GET returned other bytes";
  }
  // Bytes charged to objects and live leases, once background frees are done.
  std::pair<double, double> Usage() {
    auto m = client_.Get(base_ + "/metrics");
    return {MetricSum(m.body, "packice_bytes"), MetricSum(m.body, "packice_leases")};
  }
  // Usage comes back to `before` (a disk store frees files in the background).
  void ExpectUsageReturnsTo(std::pair<double, double> before) {
    EXPECT_TRUE(Eventually([&] { return Usage() == before; }))
        << "bytes " << Usage().first << " leases " << Usage().second << ", before " << before.first
        << " and " << before.second;
  }
};

INSTANTIATE_TEST_SUITE_P(Stores, HttpChunkedTest,
                         ::testing::Values("memory", "tiered", "disk", "sharedfs"),
                         [](const auto& info) { return info.param; });

TEST_P(HttpChunkedTest, SmallBodyIsCreatedThenReplaced) {
  auto put = PutChunked("chunked/small", 3000);
  ASSERT_EQ(put.status, 201) << put.Describe();
  Json j = Json::parse(put.body, nullptr, false);
  EXPECT_EQ(j.value("size", 0), 3000) << put.body;
  EXPECT_FALSE(put.Header("ETag").empty());
  ExpectObject("chunked/small", 3000);
  auto replace = PutChunked("chunked/small", 10);
  EXPECT_EQ(replace.status, 204) << replace.Describe();
  ExpectObject("chunked/small", 10);
  auto empty = PutChunked("chunked/empty", 0);
  EXPECT_EQ(empty.status, 201) << empty.Describe();
  ExpectObject("chunked/empty", 0);
}

TEST_P(HttpChunkedTest, ExactlyAtTheLimitIsAccepted) {
  auto put = PutChunked("chunked/at", kChunkedLimit);
  ASSERT_EQ(put.status, 201) << put.Describe() << "\n" << daemon_.log();
  ExpectObject("chunked/at", kChunkedLimit);
  auto head = client_.Head(Obj("chunked/at"));
  EXPECT_EQ(head.Header("X-Packice-Size"), std::to_string(kChunkedLimit));
}

TEST_P(HttpChunkedTest, OverTheLimitIs413AndLeavesNothing) {
  ASSERT_EQ(client_.Put(Obj("chunked/kept"), "old bytes").status, 201);
  const auto before = Usage();
  for (std::string key : {"chunked/over", "chunked/kept"}) {
    SCOPED_TRACE(key);
    auto put = PutChunked(key, kChunkedLimit + 1);
    ASSERT_TRUE(put.ok() || put.status != 0) << put.Describe();
    EXPECT_EQ(put.status, 413) << put.Describe();
    EXPECT_EQ(put.Header("X-Packice-Error"), "invalid_argument") << put.Describe();
  }
  EXPECT_EQ(client_.Head(Obj("chunked/over")).status, 404);
  auto kept = client_.Get(Obj("chunked/kept"));
  EXPECT_EQ(kept.body, "old bytes") << "a refused upload rebound the key";
  ExpectUsageReturnsTo(before);
  ExpectServing();
}

TEST_P(HttpChunkedTest, PostIsAcceptedChunked) {
  uint64_t sent = 0;
  HttpRequest post = ChunkedPut(base_ + "/v1/objects", 5 * kMiB, &sent);
  post.method = "POST";
  auto r = client_.Do(post);
  ASSERT_EQ(r.status, 201) << r.Describe();
  std::string location = r.Header("Location");
  ASSERT_TRUE(location.starts_with("/v1/objects/")) << r.Describe();
  ExpectObject(location.substr(std::string("/v1/objects/").size()), 5 * kMiB);
}

TEST_P(HttpChunkedTest, AClientThatGoesAwayMidBodyLeavesNothing) {
  const auto before = Usage();
  {
    RawTcp raw(port_);
    ASSERT_TRUE(
        raw.Send("PUT /v1/objects/chunked/gone HTTP/1.1\r\nHost: x\r\n"
                 "Transfer-Encoding: chunked\r\n\r\n"));
    const std::string piece(1 << 20, 'g');
    for (int i = 0; i < 6; ++i) {  // past the first allocation
      ASSERT_TRUE(raw.Send("100000\r\n" + piece + "\r\n"));
    }
    EXPECT_TRUE(Eventually([&] { return Usage() != before; })) << "the upload never started";
  }
  EXPECT_EQ(client_.Head(Obj("chunked/gone")).status, 404);
  ExpectUsageReturnsTo(before);
  ExpectServing();
}

TEST_P(HttpChunkedTest, MalformedFramingIs400AndLeavesNothing) {
  const auto before = Usage();
  for (std::string body :
       {std::string("zz\r\nhello\r\n0\r\n\r\n"), std::string("5\r\nhello!!\r\n0\r\n\r\n"),
        std::string("fffffffffffffffffffff\r\nabc\r\n0\r\n\r\n")}) {
    SCOPED_TRACE(body);
    RawTcp raw(port_);
    ASSERT_TRUE(
        raw.Send("PUT /v1/objects/chunked/bad HTTP/1.1\r\nHost: x\r\n"
                 "Transfer-Encoding: chunked\r\n\r\n" +
                 body));
    auto resp = raw.ReadResponse(5s);
    ASSERT_TRUE(resp.has_value()) << raw.buffer();
    EXPECT_EQ(resp->status, 400) << resp->head;
    EXPECT_EQ(resp->Header("X-Packice-Error"), "protocol_error") << resp->head;
    EXPECT_TRUE(raw.WaitClosed(3s));
  }
  EXPECT_EQ(client_.Head(Obj("chunked/bad")).status, 404);
  ExpectUsageReturnsTo(before);
  // Chunk extensions and trailers are valid framing.
  RawTcp raw(port_);
  ASSERT_TRUE(
      raw.Send("PUT /v1/objects/chunked/ext HTTP/1.1\r\nHost: x\r\n"
               "Transfer-Encoding: chunked\r\n\r\n"
               "3;name=value\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: t\r\n\r\n"));
  auto resp = raw.ReadResponse(5s);
  ASSERT_TRUE(resp.has_value()) << raw.buffer();
  EXPECT_EQ(resp->status, 201) << resp->head;
  EXPECT_EQ(client_.Get(Obj("chunked/ext")).body, "abcde");
}

// A chunked body much larger than the memory tier, through a tiered node: it moves to disk as
// it grows, and the node's memory stays bounded.
TEST(HttpChunkedHugeTest, TwoHundredMiBThroughASmallMemoryTier) {
  constexpr uint64_t kSize = 200 * kMiB + 333;
  constexpr uint64_t kMemoryCapacityMiB = 32;
  Daemon daemon;
  ASSERT_OK(daemon.Start({"--http", "127.0.0.1:0", "--store", "tiered", "--capacity",
                          std::to_string(kMemoryCapacityMiB) + "M", "--disk-capacity", "2G"}));
  const std::string base = daemon.http_url();
  ASSERT_FALSE(base.empty()) << daemon.log();
  RssSampler sampler(daemon.pid());
  HttpClient client;
  uint64_t sent = 0;
  auto put = client.Do(ChunkedPut(base + "/v1/objects/huge/chunked", kSize, &sent));
  const auto put_peak = sampler.peak();
  ASSERT_EQ(put.status, 201) << put.Describe() << "\n" << daemon.log();
  EXPECT_NE(ToLower(put.request_headers).find("transfer-encoding: chunked"), std::string::npos);
  auto head = client.Head(base + "/v1/objects/huge/chunked");
  EXPECT_EQ(head.Header("Content-Length"), std::to_string(kSize));
  EXPECT_EQ(head.Header("X-Packice-Tier"), "disk");
  uint64_t received = 0;
  std::optional<uint64_t> first_bad;
  HttpRequest get;
  get.url = base + "/v1/objects/huge/chunked";
  get.timeout = 0ms;
  get.sink = [&](std::string_view data) {
    if (size_t bad = CheckHuge(received, data); bad != std::string_view::npos) {
      first_bad = received + bad;
      return false;
    }
    received += data.size();
    return true;
  };
  auto got = client.Do(get);
  sampler.Stop();
  EXPECT_FALSE(first_bad.has_value()) << "byte " << *first_bad << " differs from the pattern";
  EXPECT_EQ(got.status, 200) << got.Describe();
  EXPECT_EQ(received, kSize);
  std::cout << "200 MiB chunked PUT " << put.seconds << " s, peak VmRSS " << Mib(put_peak.rss)
            << " (shmem " << Mib(put_peak.shmem) << ")" << std::endl;
  if (kSanitized) GTEST_SKIP() << "resident size means little under a sanitizer";
  EXPECT_LT(put_peak.rss, (kMemoryCapacityMiB + 160) * 1024) << Mib(put_peak.rss);
}

}  // namespace
}  // namespace packice
