// /v1/kv (kv_routes.cc) on an HttpServer in this process over a real LocalKvStore in a temporary
// directory: CRUD with binary keys, compare-and-swap, TTLs, scans, batches, namespaces, bad input,
// and watches as server-sent events read by a raw-socket client (order, resume, a reader too
// slow, a client that goes away, keepalives).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "http_testing.h"
#include "packice/kv.h"
#include "packice/memory_peer.h"
#include "testing.h"
#include "transport/http/http_common.h"
#include "transport/http/http_server.h"
#include "transport/http/kv_request.h"

namespace packice {
namespace {

using testing::Http;
using testing::HttpReply;
using testing::TempDir;
using Json = nlohmann::json;
using namespace std::chrono_literals;

std::string B64(std::string_view s) { return http_kv::Base64Encode(s); }
std::string Unb64(const Json& j) {
  return http_kv::Base64Decode(j.get<std::string>()).value_or("?");
}
Json Parse(const HttpReply& r) { return Json::parse(r.body, nullptr, false); }

// An HttpServer serving a LocalKvStore, on a loopback port, its io_context on a thread of its own.
class KvNode {
 public:
  explicit KvNode(const std::string& dir, HttpServerOptions options = {}) {
    if (!dir.empty()) {
      KvOptions kv_options;
      kv_options.dir = dir;
      kv_options.reap_interval = Duration(50);
      auto kv = OpenKvStore(std::move(kv_options));
      EXPECT_TRUE(kv.ok()) << kv.status().ToString();
      if (kv.ok()) kv_ = std::shared_ptr<KvStore>(*std::move(kv));
    }
    options.listen = "127.0.0.1:0";
    options.kv = kv_;
    server_ = std::make_unique<HttpServer>(io_, MemoryPeer::Create({}), options, nullptr);
    Status s = server_->Start();
    EXPECT_TRUE(s.ok()) << s.ToString();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~KvNode() {
    work_.reset();
    io_.stop();
    thread_.join();
    server_->Stop();
    io_.restart();
    io_.poll();
  }

  uint16_t port() const { return server_->port(); }
  std::string base() const { return "http://127.0.0.1:" + std::to_string(port()); }
  // /v1/kv/{ns} and /v1/kv/{ns}/{key}, the key percent-encoded with its '/' kept.
  std::string Ns(const std::string& ns) const { return "/v1/kv/" + http_kv::NamespaceSegment(ns); }
  std::string Url(const std::string& ns) const { return base() + Ns(ns); }
  std::string Url(const std::string& ns, const std::string& key) const {
    return Url(ns) + "/" + http::PercentEncodePath(key);
  }
  KvStore& kv() { return *kv_; }

 private:
  boost::asio::io_context io_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_{
      io_.get_executor()};
  std::shared_ptr<KvStore> kv_;
  std::unique_ptr<HttpServer> server_;
  std::thread thread_;
};

// A server-sent event.
struct SseEvent {
  std::string id;  // empty: none
  std::string event;
  Json data;
};

// A raw-socket HTTP/1.1 client of one streamed response: reads the headers, decodes the chunked
// framing, splits server-sent events. Reads only when asked, so a test can stop reading.
class SseClient {
 public:
  ~SseClient() { Close(); }

  // Connects (with a receive buffer of `rcvbuf` bytes when > 0) and sends the GET.
  void Open(uint16_t port, const std::string& target, std::vector<std::string> headers = {},
            int rcvbuf = 0) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(fd_, 0);
    if (rcvbuf > 0) ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    std::string req = "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    for (const std::string& h : headers) req += h + "\r\n";
    req += "\r\n";
    ASSERT_EQ(::send(fd_, req.data(), req.size(), MSG_NOSIGNAL), static_cast<ssize_t>(req.size()));
  }

  // The status of the response (0: none within `timeout`); the headers in headers().
  int ReadHeaders(std::chrono::milliseconds timeout = 5s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    size_t end;
    while ((end = raw_.find("\r\n\r\n")) == std::string::npos) {
      if (!Fill(deadline)) return 0;
    }
    headers_ = raw_.substr(0, end + 4);
    raw_.erase(0, end + 4);
    return std::atoi(headers_.substr(9, 3).c_str());
  }
  const std::string& headers() const { return headers_; }

  // The next event, or nullopt when none came within `timeout` (or the stream ended: eof()).
  std::optional<SseEvent> Next(std::chrono::milliseconds timeout = 5s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      Dechunk();
      if (std::optional<SseEvent> e = TakeEvent()) return e;
      if (ended_ || !Fill(deadline)) return std::nullopt;
    }
  }
  // Reads until the server closes the connection (true) or `timeout` passes.
  bool ReadToEof(std::chrono::milliseconds timeout = 5s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!eof_) {
      if (!Fill(deadline) && !eof_) return false;
    }
    Dechunk();
    return true;
  }
  bool eof() const { return eof_; }
  bool ended() const { return ended_; }  // the last chunk came
  int comments() const { return comments_; }
  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  // One recv into raw_; false on a timeout or the end of the connection.
  bool Fill(std::chrono::steady_clock::time_point deadline) {
    if (eof_ || fd_ < 0) return false;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
    char buf[65536];
    const ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
    if (n <= 0) {
      eof_ = true;
      return false;
    }
    raw_.append(buf, static_cast<size_t>(n));
    return true;
  }
  void Dechunk() {
    while (!ended_) {
      const size_t eol = raw_.find("\r\n");
      if (eol == std::string::npos) return;
      const size_t size = std::stoul(raw_.substr(0, eol), nullptr, 16);
      if (raw_.size() < eol + 2 + size + 2) return;
      body_.append(raw_, eol + 2, size);
      raw_.erase(0, eol + 2 + size + 2);
      if (size == 0) ended_ = true;
    }
  }
  std::optional<SseEvent> TakeEvent() {
    for (;;) {
      const size_t end = body_.find("\n\n");
      if (end == std::string::npos) return std::nullopt;
      const std::string block = body_.substr(0, end);
      body_.erase(0, end + 2);
      if (block.starts_with(":")) {
        ++comments_;
        continue;
      }
      SseEvent e;
      size_t at = 0;
      while (at <= block.size()) {
        size_t nl = block.find('\n', at);
        if (nl == std::string::npos) nl = block.size();
        const std::string line = block.substr(at, nl - at);
        if (line.starts_with("id: ")) e.id = line.substr(4);
        if (line.starts_with("event: ")) e.event = line.substr(7);
        if (line.starts_with("data: ")) e.data = Json::parse(line.substr(6), nullptr, false);
        at = nl + 1;
      }
      return e;
    }
  }

  int fd_ = -1;
  std::string raw_;
  std::string headers_;
  std::string body_;
  bool eof_ = false;
  bool ended_ = false;
  int comments_ = 0;
};

class KvHttpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    HttpServerOptions options;
    options.kv_watch_keepalive = 200ms;
    node_.emplace(dir_.path() + "/kv", options);
    ASSERT_EQ(Create("/team/ns", R"({"engine":"memtable","fsync":"never"})").status, 201);
  }
  HttpReply Create(const std::string& ns, const std::string& body = "") {
    return Http("PUT", node_->Url(ns), body.empty() ? nullptr : &body);
  }
  HttpReply Put(const std::string& key, const std::string& value,
                std::vector<std::string> headers = {}, const std::string& query = "") {
    return Http("PUT", node_->Url("/team/ns", key) + query, &value, std::move(headers));
  }
  HttpReply Get(const std::string& key) { return Http("GET", node_->Url("/team/ns", key)); }
  int64_t Revision(const HttpReply& r) {
    Json j = Parse(r);
    return j.is_object() && j.contains("revision") ? j["revision"].get<int64_t>() : -1;
  }

  TempDir dir_;
  std::optional<KvNode> node_;
};

TEST_F(KvHttpTest, CrudRoundTripWithBinaryKeys) {
  const std::string key = std::string("dir/sub/\0\xff key", 15);
  HttpReply put = Put(key, std::string("v\0one", 5));
  ASSERT_EQ(put.status, 200) << put.body;
  EXPECT_EQ(Revision(put), 1);
  HttpReply got = Get(key);
  ASSERT_EQ(got.status, 200) << got.body;
  EXPECT_EQ(got.body, std::string("v\0one", 5));
  EXPECT_TRUE(got.Has("content-type: application/octet-stream")) << got.headers;
  EXPECT_TRUE(got.Has("etag: \"1\"")) << got.headers;
  EXPECT_TRUE(got.Has("x-packice-create-revision: 1"));
  EXPECT_TRUE(got.Has("x-packice-mod-revision: 1"));
  EXPECT_TRUE(got.Has("x-packice-version: 1"));
  EXPECT_FALSE(got.Has("x-packice-expires-unix-ms"));
  // The same key with every '/' escaped, and the namespace without its leading %2F.
  const std::string escaped = node_->base() + "/v1/kv/team%2Fns/" + http::PercentEncode(key);
  EXPECT_EQ(Http("GET", escaped).body, std::string("v\0one", 5));
  EXPECT_EQ(Revision(Put(key, "two")), 2);
  got = Get(key);
  EXPECT_EQ(got.body, "two");
  EXPECT_TRUE(got.Has("x-packice-version: 2"));
  EXPECT_TRUE(got.Has("x-packice-create-revision: 1"));
  HttpReply del = Http("DELETE", node_->Url("/team/ns", key));
  ASSERT_EQ(del.status, 200) << del.body;
  EXPECT_EQ(Revision(del), 3);
  HttpReply gone = Get(key);
  EXPECT_EQ(gone.status, 404);
  EXPECT_TRUE(gone.Has("x-packice-error: not_found"));
  EXPECT_EQ(Http("DELETE", node_->Url("/team/ns", key)).status, 404);
  // An empty value is a value.
  EXPECT_EQ(Put("empty", "").status, 200);
  got = Get("empty");
  EXPECT_EQ(got.status, 200);
  EXPECT_EQ(got.body, "");
}

TEST_F(KvHttpTest, CompareAndSwapWithIfMatch) {
  ASSERT_EQ(Revision(Put("k", "a")), 1);
  HttpReply swapped = Put("k", "b", {"If-Match: \"1\""}, "?prev_kv");
  ASSERT_EQ(swapped.status, 200) << swapped.body;
  EXPECT_EQ(Revision(swapped), 2);
  Json j = Parse(swapped);
  ASSERT_TRUE(j.contains("prev")) << swapped.body;
  EXPECT_EQ(Unb64(j["prev"]["value"]), "a");
  EXPECT_EQ(j["prev"]["mod_revision"], 1);
  // The revision moved on: the same condition fails and writes nothing.
  HttpReply stale = Put("k", "c", {"If-Match: \"1\""});
  EXPECT_EQ(stale.status, 412) << stale.body;
  EXPECT_TRUE(stale.Has("x-packice-error: wrong_state")) << stale.headers;
  EXPECT_EQ(Get("k").body, "b");
  EXPECT_EQ(Put("k", "c", {"If-Match: 2"}).status, 200);  // a bare number works too
  // If-None-Match: * creates only.
  HttpReply exists = Put("k", "d", {"If-None-Match: *"});
  EXPECT_EQ(exists.status, 412);
  EXPECT_TRUE(exists.Has("x-packice-error: already_exists")) << exists.headers;
  EXPECT_EQ(Put("fresh", "x", {"If-None-Match: *"}).status, 200);
  // Conditional deletes.
  EXPECT_EQ(Http("DELETE", node_->Url("/team/ns", "k"), nullptr, {"If-Match: \"2\""}).status, 412);
  HttpReply del =
      Http("DELETE", node_->Url("/team/ns", "k") + "?prev_kv", nullptr, {"If-Match: \"3\""});
  ASSERT_EQ(del.status, 200) << del.body;
  EXPECT_EQ(Unb64(Parse(del)["prev"]["value"]), "c");
  // Malformed conditions.
  EXPECT_EQ(Put("k", "x", {"If-Match: *"}).status, 400);
  EXPECT_EQ(Put("k", "x", {"If-Match: W/\"1\""}).status, 400);
  EXPECT_EQ(Put("k", "x", {"If-Match: \"1\", \"2\""}).status, 400);
  EXPECT_EQ(Put("k", "x", {"If-Match: \"1\"", "If-None-Match: *"}).status, 400);
  EXPECT_EQ(Put("k", "x", {"If-None-Match: \"1\""}).status, 400);
}

TEST_F(KvHttpTest, Ttl) {
  HttpReply put = Put("short", "v", {}, "?ttl=300ms");
  ASSERT_EQ(put.status, 200) << put.body;
  HttpReply got = Get("short");
  ASSERT_EQ(got.status, 200);
  EXPECT_TRUE(got.Has("x-packice-expires-unix-ms: ")) << got.headers;
  EXPECT_EQ(Put("long", "v", {}, "?ttl=1h").status, 200);
  EXPECT_EQ(Put("bare", "v", {}, "?ttl=60").status, 200);  // seconds
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(Get("short").status, 404);
  EXPECT_EQ(Get("long").status, 200);
  HttpReply bad = Put("k", "v", {}, "?ttl=soon");
  EXPECT_EQ(bad.status, 400);
  EXPECT_TRUE(bad.Has("x-packice-error: invalid_argument"));
  EXPECT_EQ(Put("k", "v", {}, "?ttl=-1s").status, 400);
}

TEST_F(KvHttpTest, ScansWithContinuation) {
  for (int i = 0; i < 25; ++i) {
    char key[16];
    std::snprintf(key, sizeof(key), "p/%02d", i);
    ASSERT_EQ(Put(key, "v" + std::to_string(i)).status, 200);
  }
  ASSERT_EQ(Put("q/other", "x").status, 200);
  std::vector<std::string> keys;
  std::string after;
  for (int page = 0; page < 10; ++page) {
    std::string url = node_->Url("/team/ns") + "?prefix=p%2F&limit=10";
    if (!after.empty()) url += "&after=" + http::PercentEncode(after);
    HttpReply r = Http("GET", url);
    ASSERT_EQ(r.status, 200) << r.body;
    Json j = Parse(r);
    EXPECT_EQ(j["revision"], 26);
    for (const Json& kv : j["kvs"]) {
      keys.push_back(Unb64(kv["key"]));
      EXPECT_TRUE(kv.contains("value"));
      EXPECT_EQ(kv["version"], 1);
    }
    after = Unb64(j["next"]);
    if (after.empty()) break;
  }
  ASSERT_EQ(keys.size(), 25u);
  EXPECT_EQ(keys.front(), "p/00");
  EXPECT_EQ(keys.back(), "p/24");
  // A range, keys only.
  HttpReply range = Http("GET", node_->Url("/team/ns") + "?start=p%2F10&end=p%2F13&keys_only");
  ASSERT_EQ(range.status, 200) << range.body;
  Json j = Parse(range);
  ASSERT_EQ(j["kvs"].size(), 3u);
  EXPECT_EQ(Unb64(j["kvs"][0]["key"]), "p/10");
  EXPECT_FALSE(j["kvs"][0].contains("value"));
  EXPECT_EQ(Unb64(j["next"]), "");
  // The whole namespace.
  EXPECT_EQ(Parse(Http("GET", node_->Url("/team/ns")))["kvs"].size(), 26u);
  // Refusals: both prefix and range, a limit of 0 or not a number.
  EXPECT_EQ(Http("GET", node_->Url("/team/ns") + "?prefix=p&start=a").status, 400);
  EXPECT_EQ(Http("GET", node_->Url("/team/ns") + "?limit=0").status, 400);
  EXPECT_EQ(Http("GET", node_->Url("/team/ns") + "?limit=ten").status, 400);
}

TEST_F(KvHttpTest, AtomicBatch) {
  ASSERT_EQ(Revision(Put("old", "1")), 1);
  Json ops = Json::array();
  ops.push_back({{"op", "put"}, {"key", B64("a/\x01")}, {"value", B64("A")}});
  ops.push_back({{"op", "put"}, {"key", B64("b")}, {"value", B64("B")}, {"ttl_ms", 60000}});
  ops.push_back({{"op", "delete"}, {"key", B64("old")}, {"if_mod_revision", 1}});
  ops.push_back({{"op", "delete"}, {"key", B64("missing")}, {"ignore_missing", true}});
  const std::string body = Json{{"ops", ops}}.dump();
  HttpReply r = Http("POST", node_->Url("/team/ns") + "?batch", &body);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Revision(r), 2);
  EXPECT_EQ(Get("a/\x01").body, "A");
  EXPECT_TRUE(Get("b").Has("x-packice-expires-unix-ms: "));
  EXPECT_EQ(Get("old").status, 404);
  // One failing condition: nothing is written.
  Json failing = Json::array();
  failing.push_back({{"op", "put"}, {"key", B64("c")}, {"value", B64("C")}});
  failing.push_back(
      {{"op", "put"}, {"key", B64("b")}, {"value", B64("x")}, {"if_mod_revision", 1}});
  const std::string fail_body = Json{{"ops", failing}}.dump();
  HttpReply failed = Http("POST", node_->Url("/team/ns") + "?batch", &fail_body);
  EXPECT_EQ(failed.status, 412) << failed.body;
  EXPECT_EQ(Get("c").status, 404);
  EXPECT_EQ(Get("b").body, "B");
  // Bad bodies.
  for (const std::string& bad :
       {std::string("not json"), std::string(R"({"ops":"x"})"), std::string(R"({"ops":[]})"),
        std::string(R"({"ops":[{"op":"put","key":"!!!!"}]})"),
        std::string(R"({"ops":[{"op":"frob","key":"eA=="}]})"),
        std::string(R"({"ops":[{"op":"put","key":"eA==","ttl":5}]})"),
        std::string(R"({"ops":[{"op":"delete","key":"eA==","if_mod_revision":-1}]})"),
        std::string(R"({"ops":[{"op":"put"}]})"), std::string(R"({"ops":[],"extra":1})")}) {
    HttpReply refused = Http("POST", node_->Url("/team/ns") + "?batch", &bad);
    EXPECT_EQ(refused.status, 400) << bad << " -> " << refused.body;
  }
  EXPECT_EQ(Http("POST", node_->Url("/team/ns"), &body).status, 400);  // no ?batch
}

TEST_F(KvHttpTest, Namespaces) {
  HttpReply dup = Create("/team/ns");
  EXPECT_EQ(dup.status, 409);
  EXPECT_TRUE(dup.Has("x-packice-error: already_exists"));
  ASSERT_EQ(Create("/team/b", R"({"engine":"swisstable","write_mode":"nolinear",
                                  "fsync":"interval","fsync_interval_ms":20,
                                  "default_ttl_ms":5000})")
                .status,
            201);
  ASSERT_EQ(Create("/other").status, 201);
  ASSERT_EQ(Put("k", "v").status, 200);
  HttpReply list = Http("GET", node_->base() + "/v1/kv?prefix=/team");
  ASSERT_EQ(list.status, 200) << list.body;
  Json j = Parse(list)["namespaces"];
  ASSERT_EQ(j.size(), 2u) << list.body;
  EXPECT_EQ(j[0]["path"], "/team/b");
  EXPECT_EQ(j[0]["engine"], "swisstable");
  EXPECT_EQ(j[0]["write_mode"], "nolinear");
  EXPECT_EQ(j[0]["fsync"], "interval");
  EXPECT_EQ(j[0]["fsync_interval_ms"], 20);
  EXPECT_EQ(j[0]["default_ttl_ms"], 5000);
  EXPECT_EQ(j[1]["path"], "/team/ns");
  EXPECT_EQ(j[1]["engine"], "memtable");
  EXPECT_EQ(j[1]["revision"], 1);
  EXPECT_EQ(j[1]["keys"], 1);
  EXPECT_EQ(Parse(Http("GET", node_->base() + "/v1/kv"))["namespaces"].size(), 3u);
  // The default TTL applies to a put without ?ttl.
  ASSERT_EQ(Http("PUT", node_->Url("/team/b", "k"), &list.body).status, 200);
  EXPECT_TRUE(Http("GET", node_->Url("/team/b", "k")).Has("x-packice-expires-unix-ms: "));
  // Delete.
  EXPECT_EQ(Http("DELETE", node_->Url("/team/ns")).status, 204);
  EXPECT_EQ(Http("DELETE", node_->Url("/team/ns")).status, 404);
  EXPECT_EQ(Get("k").status, 404);
  EXPECT_EQ(Parse(Http("GET", node_->base() + "/v1/kv?prefix=/team"))["namespaces"].size(), 1u);
  // Bad options.
  EXPECT_EQ(Create("/x", R"({"engine":"btree"})").status, 400);
  EXPECT_EQ(Create("/x", R"({"colour":"red"})").status, 400);
  EXPECT_EQ(Create("/x", R"([1,2])").status, 400);
  EXPECT_EQ(Create("/x", R"({"default_ttl_ms":-5})").status, 400);
  EXPECT_EQ(Http("POST", node_->base() + "/v1/kv").status, 405);
}

TEST_F(KvHttpTest, BadInput) {
  const std::string base = node_->base();
  struct Case {
    std::string method;
    std::string path;
    long status;
  };
  for (const Case& c : std::vector<Case>{
           {"GET", "/v1/kv/%zz/k", 400},                 // bad escape in the namespace
           {"GET", "/v1/kv/team%2Fns/a%g0", 400},        // bad escape in the key
           {"GET", "/v1/kv/team%2F%2Fns/k", 400},        // "//" in the namespace
           {"GET", "/v1/kv/..%2Fx/k", 400},              // a ".." segment
           {"GET", "/v1/kv/team%2Fns%2F/k", 400},        // a trailing '/'
           {"GET", "/v1/kv/sp%20ace/k", 400},            // not a namespace character
           {"PUT", "/v1/kv/", 400},                      // no namespace
           {"GET", "/v1/kv//k", 400},                    // no namespace
           {"GET", "/v1/kv/team%2Fns/", 400},            // an empty key
           {"GET", "/v1/kv/team%2Fns?prefix=%zz", 400},  // bad escape in the query
           {"GET", "/v1/kv/nope/k", 404},                // no such namespace
           {"PUT", "/v1/kv/nope/k", 404},
           {"GET", "/v1/kv/nope", 404},
           {"POST", "/v1/kv/team%2Fns/k", 405},
           {"PATCH", "/v1/kv/team%2Fns", 405},
       }) {
    const std::string body = "v";
    HttpReply r = Http(c.method, base + c.path, c.method == "PUT" ? &body : nullptr);
    EXPECT_EQ(r.status, c.status) << c.method << " " << c.path << ": " << r.body;
    EXPECT_TRUE(r.Has("x-packice-error: ")) << c.path;
  }
  // A key over the KV's 4096 bytes.
  EXPECT_EQ(Put(std::string(5000, 'k'), "v").status, 400);
  // A value over the KV's 1 MiB: refused before it is read, with the sizes.
  const std::string big((1 << 20) + 1, 'x');
  HttpReply over = Put("big", big);
  EXPECT_EQ(over.status, 413) << over.body;
  EXPECT_NE(over.body.find("1048577"), std::string::npos) << over.body;
  EXPECT_EQ(Put("big", std::string(1 << 20, 'x')).status, 200);  // exactly at the limit
  // Garbage namespaces and keys never crash the node.
  for (int i = 0; i < 200; ++i) {
    std::string path = "/v1/kv/";
    for (int k = 0; k < 12; ++k) path += "%/a.2F%z0-_~"[(i * 7 + k * 13) % 12];
    EXPECT_NE(Http("GET", base + path).status, 0) << path;
  }
  EXPECT_EQ(Http("GET", base + "/healthz").status, 200);
}

TEST(KvHttpNoKvTest, AbsentKvIs404AndTokensAreChecked) {
  KvNode none("");
  HttpReply r = Http("GET", none.base() + "/v1/kv/team%2Fns/k");
  EXPECT_EQ(r.status, 404);
  EXPECT_NE(r.body.find("serves no KV"), std::string::npos) << r.body;
  EXPECT_EQ(Http("GET", none.base() + "/v1/kv").status, 404);
  EXPECT_EQ(Http("GET", none.base() + "/v1/kv/team%2Fns?watch").status, 404);

  TempDir dir;
  HttpServerOptions options;
  options.bearer_token = "sekrit";
  KvNode secured(dir.path() + "/kv", options);
  EXPECT_EQ(Http("PUT", secured.Url("/a")).status, 401);
  EXPECT_EQ(Http("GET", secured.base() + "/v1/kv").status, 401);
  EXPECT_EQ(Http("PUT", secured.Url("/a"), nullptr, {"Authorization: Bearer sekrit"}).status, 201);
  EXPECT_EQ(Http("GET", secured.Url("/a", "k"), nullptr, {"Authorization: Bearer wrong"}).status,
            401);
}

// --- watches -----------------------------------------------------------------------------------

TEST_F(KvHttpTest, WatchDeliversEventsInOrder) {
  SseClient w;
  w.Open(node_->port(), node_->Ns("/team/ns") + "?watch&prefix=a%2F&prev_kv");
  ASSERT_EQ(w.ReadHeaders(), 200) << w.headers();
  EXPECT_NE(w.headers().find("Content-Type: text/event-stream"), std::string::npos);
  EXPECT_NE(w.headers().find("Transfer-Encoding: chunked"), std::string::npos);
  ASSERT_EQ(Put("a/1", "x").status, 200);  // rev 1
  ASSERT_EQ(Put("b/1", "x").status, 200);  // rev 2: not under the prefix
  ASSERT_EQ(Put("a/1", "y").status, 200);  // rev 3
  Json ops = Json::array();
  ops.push_back({{"op", "put"}, {"key", B64("a/2")}, {"value", B64("p")}});
  ops.push_back({{"op", "put"}, {"key", B64("a/3")}, {"value", B64("q")}});
  const std::string batch = Json{{"ops", ops}}.dump();
  ASSERT_EQ(Http("POST", node_->Url("/team/ns") + "?batch", &batch).status, 200);  // rev 4
  ASSERT_EQ(Http("DELETE", node_->Url("/team/ns", "a/1")).status, 200);            // rev 5

  std::optional<SseEvent> e = w.Next();
  ASSERT_TRUE(e);
  EXPECT_EQ(e->event, "put");
  EXPECT_EQ(e->id, "1");
  EXPECT_EQ(Unb64(e->data["key"]), "a/1");
  EXPECT_EQ(Unb64(e->data["value"]), "x");
  EXPECT_FALSE(e->data.contains("prev"));
  e = w.Next();
  ASSERT_TRUE(e);
  EXPECT_EQ(e->id, "3");
  EXPECT_EQ(Unb64(e->data["value"]), "y");
  EXPECT_EQ(Unb64(e->data["prev"]["value"]), "x");
  EXPECT_EQ(e->data["version"], 2);
  // A batch: one revision, its id on its last event only.
  e = w.Next();
  ASSERT_TRUE(e);
  EXPECT_EQ(e->id, "");
  EXPECT_EQ(e->data["mod_revision"], 4);
  e = w.Next();
  ASSERT_TRUE(e);
  EXPECT_EQ(e->id, "4");
  EXPECT_EQ(e->data["mod_revision"], 4);
  e = w.Next();
  ASSERT_TRUE(e);
  EXPECT_EQ(e->event, "delete");
  EXPECT_EQ(e->id, "5");
  EXPECT_EQ(Unb64(e->data["key"]), "a/1");
  EXPECT_EQ(e->data["expired"], false);
  EXPECT_EQ(Unb64(e->data["prev"]["value"]), "y");

  // One key, from a revision in the past; then its namespace is deleted: the end event.
  SseClient key;
  key.Open(node_->port(), node_->Ns("/team/ns") + "/a%2F1?watch&rev=1");
  ASSERT_EQ(key.ReadHeaders(), 200);
  for (const char* id : {"1", "3", "5"}) {
    e = key.Next();
    ASSERT_TRUE(e);
    EXPECT_EQ(e->id, id);
  }
  ASSERT_EQ(Http("DELETE", node_->Url("/team/ns")).status, 204);
  e = key.Next();
  ASSERT_TRUE(e);
  EXPECT_EQ(e->event, "end");
  EXPECT_EQ(e->data["error"], "not_found");
  EXPECT_EQ(e->data["resume_revision"], 6);
  EXPECT_TRUE(key.ReadToEof());
  EXPECT_TRUE(key.ended());
}

TEST_F(KvHttpTest, WatchResumesFromLastEventId) {
  for (int i = 1; i <= 5; ++i) ASSERT_EQ(Put("k" + std::to_string(i), "v").status, 200);
  SseClient w;
  w.Open(node_->port(), node_->Ns("/team/ns") + "?watch", {"Last-Event-ID: 2"});
  ASSERT_EQ(w.ReadHeaders(), 200) << w.headers();
  for (const char* id : {"3", "4", "5"}) {
    std::optional<SseEvent> e = w.Next();
    ASSERT_TRUE(e) << id;
    EXPECT_EQ(e->id, id);
  }
  ASSERT_EQ(Put("k6", "v").status, 200);
  std::optional<SseEvent> e = w.Next();
  ASSERT_TRUE(e);
  EXPECT_EQ(e->id, "6");
  // Refused before the stream starts: a future revision, a bad id, an unknown namespace.
  EXPECT_EQ(Http("GET", node_->Url("/team/ns") + "?watch&rev=100").status, 400);
  EXPECT_EQ(Http("GET", node_->Url("/team/ns") + "?watch", nullptr, {"Last-Event-ID: x"}).status,
            400);
  EXPECT_EQ(Http("GET", node_->Url("/nope") + "?watch").status, 404);
  EXPECT_EQ(Http("GET", node_->Url("/team/ns") + "?watch&buffer_events=0").status, 400);
}

TEST_F(KvHttpTest, SlowReaderEndsTooSlowAndResumes) {
  // A reader with a small receive buffer that reads nothing while MiBs of events are written:
  // the socket fills, the node stops pulling, and the watcher's buffer of 4 events overflows.
  SseClient w;
  w.Open(node_->port(), node_->Ns("/team/ns") + "?watch&buffer_events=4", {}, 4096);
  ASSERT_EQ(w.ReadHeaders(), 200);
  const std::string value(64 * 1024, 'v');
  // More than the node's socket send buffer can hold (tcp_wmem's maximum, 4 MiB on most
  // kernels), so that the node has to stop pulling; under the KV's 64 MiB of history.
  int64_t wmem_max = 4 << 20;
  if (std::ifstream f("/proc/sys/net/ipv4/tcp_wmem"); f) f >> wmem_max >> wmem_max >> wmem_max;
  const int puts = static_cast<int>(
      std::clamp<int64_t>(2 * wmem_max / static_cast<int64_t>(value.size()) + 256, 384, 900));
  for (int i = 0; i < puts; ++i) ASSERT_EQ(Put("k" + std::to_string(i), value).status, 200);
  int64_t last = 0;
  std::optional<SseEvent> end;
  while (std::optional<SseEvent> e = w.Next(10s)) {
    if (e->event == "end") {
      end = e;
      break;
    }
    ASSERT_EQ(e->data["mod_revision"].get<int64_t>(), last + 1);  // no gap
    last = e->data["mod_revision"].get<int64_t>();
  }
  ASSERT_TRUE(end) << "after revision " << last;
  EXPECT_EQ(end->data["error"], "out_of_capacity");
  EXPECT_NE(end->data["message"].get<std::string>().find("too slow"), std::string::npos);
  EXPECT_EQ(end->data["resume_revision"], last + 1);
  EXPECT_LT(last, puts);
  EXPECT_TRUE(w.ReadToEof());
  // New watches from where each stopped get the rest, with no gap and no duplicate. (One from
  // the past fills its buffer from history at once: with 16 MiB per watcher it may end "too
  // slow" again, and the next one goes on.)
  int64_t rev = last + 1;
  for (int round = 0; round < 10 && rev <= puts; ++round) {
    SseClient resumed;
    resumed.Open(node_->port(), node_->Ns("/team/ns") + "?watch",
                 {"Last-Event-ID: " + std::to_string(rev - 1)});
    ASSERT_EQ(resumed.ReadHeaders(), 200);
    while (rev <= puts) {
      std::optional<SseEvent> e = resumed.Next();
      ASSERT_TRUE(e) << rev;
      if (e->event == "end") {
        ASSERT_EQ(e->data["resume_revision"], rev) << e->data.dump();
        break;
      }
      ASSERT_EQ(e->data["mod_revision"], rev);
      ++rev;
    }
  }
  EXPECT_EQ(rev, puts + 1);
}

// The open HTTP connections, as GET /metrics counts them (the request itself included).
int OpenConnections(const std::string& base) {
  HttpReply m = Http("GET", base + "/metrics");
  const std::string name = "packice_http_connections ";
  size_t at = m.body.find("\n" + name);
  if (at == std::string::npos) return -1;
  return std::atoi(m.body.c_str() + at + 1 + name.size());
}

TEST_F(KvHttpTest, ClosingTheClientEndsTheWatch) {
  const std::string base = node_->base();
  ASSERT_EQ(OpenConnections(base), 1);
  {
    SseClient w;
    w.Open(node_->port(), node_->Ns("/team/ns") + "/k?watch");
    ASSERT_EQ(w.ReadHeaders(), 200);
    ASSERT_EQ(Put("k", "v").status, 200);
    ASSERT_TRUE(w.Next());
    EXPECT_EQ(OpenConnections(base), 2);
  }  // closed
  // The connection (and with it the watch's coroutine and its watcher) is gone at once, not at
  // the next keepalive or event.
  int open = -1;
  for (int i = 0; i < 100 && (open = OpenConnections(base)) != 1; ++i) {
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(open, 1);
  // Events after it go nowhere and break nothing.
  ASSERT_EQ(Put("k", "w").status, 200);
  EXPECT_EQ(Get("k").body, "w");
}

TEST_F(KvHttpTest, QuietWatchGetsKeepalivesAndSurvives) {
  SseClient w;
  w.Open(node_->port(), node_->Ns("/team/ns") + "?watch");
  ASSERT_EQ(w.ReadHeaders(), 200);
  EXPECT_FALSE(w.Next(700ms));  // nothing happens: keepalive comments only (every 200 ms)
  EXPECT_GE(w.comments(), 2);
  EXPECT_FALSE(w.eof());
  ASSERT_EQ(Put("late", "v").status, 200);
  std::optional<SseEvent> e = w.Next();
  ASSERT_TRUE(e);
  EXPECT_EQ(Unb64(e->data["key"]), "late");
}

TEST_F(KvHttpTest, StoppingTheServerEndsOpenWatches) {
  SseClient w;
  w.Open(node_->port(), node_->Ns("/team/ns") + "?watch");
  ASSERT_EQ(w.ReadHeaders(), 200);
  node_.reset();
  EXPECT_TRUE(w.ReadToEof());
}

}  // namespace
}  // namespace packice
