// The HTTP transport's client side without packiced: the shared helpers (http_common.h), the
// header and error mapping, and the channel against a small fake HTTP/1.1 server in this process
// that records what it was sent and answers what each test tells it to.
#include "transport/http/http_channel.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "packice/client.h"
#include "testing.h"
#include "transport/http/http_common.h"

namespace packice {
namespace {

using namespace std::chrono_literals;
using http::HeaderMap;

std::span<const std::byte> Bytes(std::string_view s) {
  return std::as_bytes(std::span<const char>(s.data(), s.size()));
}
std::string Str(std::span<const std::byte> b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

// --- percent-encoding, tokens -----------------------------------------------------------------

TEST(PercentEncoding, EncodesAllButUnreservedAndSlash) {
  EXPECT_EQ(http::PercentEncodePath("models/llama-7b_v1.0~x"), "models/llama-7b_v1.0~x");
  EXPECT_EQ(http::PercentEncodePath("a b/c?d#e%f+g"), "a%20b/c%3Fd%23e%25f%2Bg");
  EXPECT_EQ(http::PercentEncodePath(std::string_view("bin/\xff\x00\x80\xc3\xa9", 9)),
            "bin/%FF%00%80%C3%A9");
  EXPECT_EQ(http::PercentEncode("a/b c&d=e"), "a%2Fb%20c%26d%3De");
}

TEST(PercentEncoding, DecodeInvertsEncodeForEveryByte) {
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  EXPECT_EQ(http::PercentDecode(http::PercentEncode(all)), all);
  EXPECT_EQ(http::PercentDecode(http::PercentEncodePath(all)), all);
  EXPECT_EQ(http::PercentDecode("a%2fb%2Fc+d"), "a/b/c+d");  // either case; '+' is a plus
  EXPECT_EQ(http::PercentDecode(""), "");
}

TEST(PercentEncoding, DecodeRefusesBadEscapes) {
  for (std::string_view bad : {"%", "%2", "a%", "a%zz", "%g0", "%0g", "x%4"}) {
    EXPECT_EQ(http::PercentDecode(bad), std::nullopt) << bad;
  }
}

TEST(Tokens, HeaderNames) {
  EXPECT_TRUE(http::IsToken("content-type"));
  EXPECT_TRUE(http::IsToken("A1!#$%&'*+-.^_`|~"));
  EXPECT_FALSE(http::IsToken(""));
  EXPECT_FALSE(http::IsToken("a b"));
  EXPECT_FALSE(http::IsToken("a:b"));
  EXPECT_FALSE(http::IsToken("\xc3("));
  EXPECT_EQ(http::ToLower("X-Packice-Meta-ÄB"), "x-packice-meta-Äb");
}

// --- ETags, TTLs, dates -----------------------------------------------------------------------

TEST(ETag, RoundTrips) {
  const std::string etag = http::FormatETag(0x2a, 1'700'000'000'123);
  EXPECT_EQ(etag, "\"2a-18bcfe5687b\"");
  auto parts = http::ParseETag(etag);
  ASSERT_TRUE(parts.has_value());
  EXPECT_EQ(parts->version, 0x2au);
  EXPECT_EQ(parts->created_unix_ms, 1'700'000'000'123);
}

TEST(ETag, RefusesOthers) {
  for (std::string_view bad : {"", "\"", "2a-1", "W/\"2a-1\"", "\"2a\"", "\"2a-1-memory\"",
                               "\"zz-1\"", "\"2a-\"", "\"-1\"", "\"2a-1-\""}) {
    EXPECT_EQ(http::ParseETag(bad), std::nullopt) << bad;
  }
}

TEST(Ttl, ParsesEveryUnit) {
  EXPECT_EQ(http::ParseTtl("0"), Duration(0));
  EXPECT_EQ(http::ParseTtl("60"), Duration(60'000));
  EXPECT_EQ(http::ParseTtl("500ms"), Duration(500));
  EXPECT_EQ(http::ParseTtl("30s"), Duration(30'000));
  EXPECT_EQ(http::ParseTtl("10m"), Duration(600'000));
  EXPECT_EQ(http::ParseTtl("2h"), Duration(7'200'000));
  EXPECT_EQ(http::ParseTtl("1d"), Duration(86'400'000));
  EXPECT_EQ(http::ParseTtl(http::FormatTtl(Duration(60'000))), Duration(60'000));
  EXPECT_EQ(http::FormatTtl(Duration(60'000)), "60000ms");
  for (std::string_view bad : {"", "ms", "-1", "+1", "1.5s", " 1", "1 s", "1w", "1S",
                               "99999999999999999999", "9999999999999999d"}) {
    EXPECT_EQ(http::ParseTtl(bad), std::nullopt) << bad;
  }
}

TEST(HttpDate, FormatsAndParsesImfFixdate) {
  EXPECT_EQ(http::FormatHttpDate(784'111'777'999), "Sun, 06 Nov 1994 08:49:37 GMT");
  EXPECT_EQ(http::ParseHttpDate("Sun, 06 Nov 1994 08:49:37 GMT"), 784'111'777'000);
  EXPECT_EQ(http::ParseHttpDate(http::FormatHttpDate(1'700'000'000'000)), 1'700'000'000'000);
  for (std::string_view bad : {"", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994",
                               "Sun, 06 Foo 1994 08:49:37 GMT", "Sun, 06 Nov 1994 25:49:37 GMT",
                               "Sun, 06 Nov 1994 08:49:37 UTC"}) {
    EXPECT_EQ(http::ParseHttpDate(bad), std::nullopt) << bad;
  }
}

// --- status codes -----------------------------------------------------------------------------

TEST(StatusCodes, NamesRoundTrip) {
  for (int32_t i = 0; i <= static_cast<int32_t>(StatusCode::kDataLoss); ++i) {
    const StatusCode code = *StatusCodeFromInt(i);
    EXPECT_EQ(http::StatusCodeFromName(StatusCodeName(code)), code);
  }
  EXPECT_EQ(http::StatusCodeFromName("no_such_code"), std::nullopt);
  EXPECT_EQ(http::StatusCodeFromName(""), std::nullopt);
}

TEST(StatusCodes, HttpStatusesOfDocsHttpMd) {
  EXPECT_EQ(http::HttpStatusForCode(StatusCode::kOk), 200);
  EXPECT_EQ(http::HttpStatusForCode(StatusCode::kNotFound), 404);
  EXPECT_EQ(http::HttpStatusForCode(StatusCode::kAlreadyExists), 412);
  EXPECT_EQ(http::HttpStatusForCode(StatusCode::kWrongState), 409);
  EXPECT_EQ(http::HttpStatusForCode(StatusCode::kLeaseExpired), 409);
  EXPECT_EQ(http::HttpStatusForCode(StatusCode::kAborted), 409);
  EXPECT_EQ(http::HttpStatusForCode(StatusCode::kOutOfCapacity), 507);
  EXPECT_EQ(http::HttpStatusForCode(StatusCode::kInvalidArgument), 400);
  EXPECT_EQ(http::HttpStatusForCode(StatusCode::kProtocolError), 400);
  EXPECT_EQ(http::HttpStatusForCode(StatusCode::kPermissionDenied), 403);
  EXPECT_EQ(http::HttpStatusForCode(StatusCode::kUnavailable), 503);
  EXPECT_EQ(http::HttpStatusForCode(StatusCode::kTimeout), 408);
  EXPECT_EQ(http::HttpStatusForCode(StatusCode::kInternal), 500);
  EXPECT_EQ(http::HttpStatusForCode(StatusCode::kUnimplemented), 501);
  EXPECT_EQ(http::HttpStatusForCode(StatusCode::kDigestMismatch), 400);
  EXPECT_EQ(http::HttpStatusForCode(StatusCode::kOutOfRange), 416);
  EXPECT_EQ(http::HttpStatusForCode(StatusCode::kDataLoss), 500);

  EXPECT_EQ(http::CodeForHttpStatus(400), StatusCode::kInvalidArgument);
  EXPECT_EQ(http::CodeForHttpStatus(411), StatusCode::kInvalidArgument);
  EXPECT_EQ(http::CodeForHttpStatus(413), StatusCode::kInvalidArgument);
  EXPECT_EQ(http::CodeForHttpStatus(401), StatusCode::kPermissionDenied);
  EXPECT_EQ(http::CodeForHttpStatus(404), StatusCode::kNotFound);
  EXPECT_EQ(http::CodeForHttpStatus(412), StatusCode::kAlreadyExists);
  EXPECT_EQ(http::CodeForHttpStatus(507), StatusCode::kOutOfCapacity);
  EXPECT_EQ(http::CodeForHttpStatus(503), StatusCode::kUnavailable);
  EXPECT_EQ(http::CodeForHttpStatus(418), StatusCode::kInternal);
  EXPECT_EQ(http::CodeForHttpStatus(500), StatusCode::kInternal);
  EXPECT_EQ(http::CodeForHttpStatus(302), StatusCode::kInternal);
}

// --- JSON -------------------------------------------------------------------------------------

TEST(Json, Utf8Check) {
  EXPECT_TRUE(http::IsUtf8(""));
  EXPECT_TRUE(http::IsUtf8("plain"));
  EXPECT_TRUE(http::IsUtf8("é€𝄞"));
  EXPECT_FALSE(http::IsUtf8("\xff"));
  EXPECT_FALSE(http::IsUtf8("\xc3("));
  EXPECT_FALSE(http::IsUtf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(http::IsUtf8("\xed\xa0\x80"));      // a surrogate
  EXPECT_FALSE(http::IsUtf8("\xf4\x90\x80\x80"));  // past U+10FFFF
  EXPECT_FALSE(http::IsUtf8("\xe2\x82"));          // truncated
}

TEST(Json, ErrorBody) {
  const std::string body = http::ErrorJson(NotFound("no object 'a\xff'"));
  EXPECT_NE(body.find("\"code\":1"), std::string::npos) << body;
  EXPECT_NE(body.find("\"error\":\"not_found\""), std::string::npos) << body;
  EXPECT_EQ(http::ErrorMessageFromJson(http::ErrorJson(NotFound("no object 'a'"))),
            "no object 'a'");
  EXPECT_EQ(http::ErrorMessageFromJson("not json"), "");
  EXPECT_EQ(http::ErrorMessageFromJson("{\"message\": 3}"), "");
}

TEST(Json, PutResultRoundTrips) {
  ObjectInfo info;
  info.key = "bin/\xff";
  info.version = 12;
  info.size = 1u << 20;
  ObjectInfo got;
  ASSERT_OK(http::ParsePutResultJson(http::PutResultJson(info), &got));
  EXPECT_EQ(got.key, info.key);
  EXPECT_EQ(got.version, 12u);
  EXPECT_EQ(got.size, 1u << 20);
  EXPECT_CODE(http::ParsePutResultJson("[]", &got), kProtocolError);
  EXPECT_CODE(http::ParsePutResultJson("{\"version\": -1}", &got), kProtocolError);
  EXPECT_CODE(http::ParsePutResultJson("{\"key\": 5}", &got), kProtocolError);
}

TEST(Json, ListingRoundTripsAnyBytes) {
  ListPage page;
  ObjectInfo a;
  a.key = "a/1";
  a.version = 7;
  a.size = 3;
  a.state = ObjectState::kSealed;
  a.ttl = Duration(60'000);
  a.created_unix_ms = 1'700'000'000'000;
  a.expires_unix_ms = 1'700'000'060'000;
  a.tier = "memory";
  a.meta = {{"dtype", "bf16"}};
  ObjectInfo b;
  b.key = "bin/\xff\xfe\x80";
  b.version = 8;
  b.state = ObjectState::kSealed;
  b.tier = "disk";
  b.meta = {{"\xc3(", "\xff"}, {"ok", "fine"}};
  page.objects = {a, b};
  page.truncated = true;
  const std::string json = http::ListPageToJson(page);
  ASSERT_TRUE(http::IsUtf8(json)) << json;
  ASSERT_OK_AND_ASSIGN(ListPage got, http::ListPageFromJson(json));
  ASSERT_EQ(got.objects.size(), 2u);
  EXPECT_TRUE(got.truncated);
  for (size_t i = 0; i < 2; ++i) {
    const ObjectInfo& want = page.objects[i];
    const ObjectInfo& have = got.objects[i];
    EXPECT_EQ(have.key, want.key);
    EXPECT_EQ(have.version, want.version);
    EXPECT_EQ(have.size, want.size);
    EXPECT_EQ(have.state, ObjectState::kSealed);
    EXPECT_EQ(have.ttl, want.ttl);
    EXPECT_EQ(have.created_unix_ms, want.created_unix_ms);
    EXPECT_EQ(have.expires_unix_ms, want.expires_unix_ms);
    EXPECT_EQ(have.tier, want.tier);
    EXPECT_EQ(have.meta, want.meta);
  }
  ASSERT_OK_AND_ASSIGN(ListPage empty, http::ListPageFromJson("{\"objects\": []}"));
  EXPECT_TRUE(empty.objects.empty());
  EXPECT_FALSE(empty.truncated);
}

TEST(Json, MalformedListingsAreProtocolErrors) {
  for (std::string_view bad :
       {"", "nope", "[]", "{}", "{\"objects\": {}}", "{\"objects\": [1]}", "{\"objects\": [{}]}",
        "{\"objects\": [{\"key\": \"a\", \"size\": \"3\"}]}",
        "{\"objects\": [{\"key\": \"a\", \"size\": -3}]}",
        "{\"objects\": [{\"key\": \"a\", \"meta\": {\"x\": 1}}]}",
        "{\"objects\": [{\"key_percent\": \"%zz\"}]}", "{\"objects\": [], \"truncated\": 1}"}) {
    EXPECT_CODE(http::ListPageFromJson(bad), kProtocolError) << bad;
  }
}

// --- URLs -------------------------------------------------------------------------------------

TEST(BaseUrl, Parses) {
  ASSERT_OK_AND_ASSIGN(http::BaseUrl u, http::ParseBaseUrl("http://127.0.0.1:8080"));
  EXPECT_EQ(u.scheme, "http");
  EXPECT_EQ(u.authority, "127.0.0.1:8080");
  EXPECT_EQ(u.path, "");
  ASSERT_OK_AND_ASSIGN(u, http::ParseBaseUrl("HTTPS://node.example/packice/"));
  EXPECT_EQ(u.ToString(), "https://node.example/packice");
  ASSERT_OK_AND_ASSIGN(u, http::ParseBaseUrl("http://[::1]:9000/"));
  EXPECT_EQ(u.ToString(), "http://[::1]:9000");
  ASSERT_OK_AND_ASSIGN(u, http::ParseBaseUrl("http://localhost"));
  EXPECT_EQ(u.ToString(), "http://localhost");
}

TEST(BaseUrl, RefusesWhatIsNotABaseUrl) {
  for (std::string_view bad :
       {"", "127.0.0.1:8080", "ftp://host", "uds:///tmp/s", "http://", "http:///path",
        "http://host:", "http://host:0", "http://host:65536", "http://host:80x",
        "http://user:pw@host", "http://host/?a=b", "http://host/#f", "http://ho st", "http://[::1",
        "http://[]:80", "http://[::1]x"}) {
    EXPECT_CODE(http::ParseBaseUrl(bad), kInvalidArgument) << bad;
  }
}

TEST(BaseUrl, ObjectAndListUrls) {
  EXPECT_EQ(http::ObjectUrl("http://h:1", "models/llama 7b"),
            "http://h:1/v1/objects/models/llama%207b");
  EXPECT_EQ(http::ListUrl("http://h:1", ListOptions{}), "http://h:1/v1/objects?limit=1000");
  ListOptions o;
  o.prefix = "a b/";
  o.start_after = "a b/&x";
  o.limit = 0;
  EXPECT_EQ(http::ListUrl("http://h:1/p", o),
            "http://h:1/p/v1/objects?prefix=a%20b%2F&start_after=a%20b%2F%26x");
}

// --- headers and errors -----------------------------------------------------------------------

TEST(Headers, LinesAreParsedAndAStatusLineStartsOver) {
  HeaderMap h;
  http::AddHeaderLine("HTTP/1.1 100 Continue\r\n", &h);
  http::AddHeaderLine("X-Early: 1\r\n", &h);
  http::AddHeaderLine("HTTP/1.1 200 OK\r\n", &h);
  http::AddHeaderLine("Content-Length:  12 \r\n", &h);
  http::AddHeaderLine("X-Packice-Meta-Author:\tme\r\n", &h);
  http::AddHeaderLine("X-Packice-Meta-Empty:\r\n", &h);
  http::AddHeaderLine("bad header\r\n", &h);
  http::AddHeaderLine("\r\n", &h);
  EXPECT_FALSE(h.contains("x-early"));
  EXPECT_EQ(h.find("content-length")->second, "12");
  EXPECT_EQ(h.find("x-packice-meta-author")->second, "me");
  EXPECT_EQ(h.find("x-packice-meta-empty")->second, "");
  EXPECT_EQ(h.size(), 3u);
}

HeaderMap Headers(std::initializer_list<std::pair<std::string, std::string>> list) {
  HeaderMap h;
  for (const auto& [k, v] : list) http::AddHeaderLine(k + ": " + v + "\r\n", &h);
  return h;
}

TEST(Headers, ObjectInfoFromGetHeaders) {
  HeaderMap h = Headers({{"ETag", http::FormatETag(5, 1'700'000'000'000)},
                         {"Last-Modified", "Sun, 06 Nov 1994 08:49:37 GMT"},
                         {"X-Packice-Version", "77"},
                         {"Content-Length", "10"},
                         {"X-Packice-Size", "1000"},
                         {"X-Packice-TTL", "60000ms"},
                         {"X-Packice-Expires", "1700000060000"},
                         {"X-Packice-Tier", "memory"},
                         {"X-Packice-Meta-dtype", "bf16"},
                         {"X-Packice-Meta-Layer", "3"},
                         {"X-Packice-Metadata", "not meta"}});
  ASSERT_OK_AND_ASSIGN(ObjectInfo info, http::ObjectInfoFromHeaders(h, "k"));
  EXPECT_EQ(info.key, "k");
  EXPECT_EQ(info.state, ObjectState::kSealed);
  EXPECT_EQ(info.version, 77u);  // the header wins over the ETag
  EXPECT_EQ(info.size, 1000u);   // X-Packice-Size wins over Content-Length (a range)
  EXPECT_EQ(info.ttl, Duration(60'000));
  EXPECT_EQ(info.expires_unix_ms, 1'700'000'060'000);
  EXPECT_EQ(info.tier, "memory");
  EXPECT_EQ(info.created_unix_ms, 1'700'000'000'000);  // from the ETag: milliseconds
  EXPECT_EQ(info.meta, (Meta{{"dtype", "bf16"}, {"layer", "3"}}));
}

TEST(Headers, ObjectInfoFallsBackToETagContentLengthAndLastModified) {
  ASSERT_OK_AND_ASSIGN(
      ObjectInfo info,
      http::ObjectInfoFromHeaders(
          Headers({{"ETag", http::FormatETag(0x1f, 99)}, {"Content-Length", "5"}}),
          "k"));
  EXPECT_EQ(info.version, 0x1fu);
  EXPECT_EQ(info.tier, "") << "no X-Packice-Tier: unknown (an ETag does not name the tier)";
  EXPECT_EQ(info.size, 5u);
  EXPECT_EQ(info.created_unix_ms, 99);
  EXPECT_EQ(info.ttl, Duration(0));
  EXPECT_EQ(info.expires_unix_ms, 0);
  ASSERT_OK_AND_ASSIGN(
      info,
      http::ObjectInfoFromHeaders(
          Headers({{"ETag", "\"opaque\""}, {"Last-Modified", "Sun, 06 Nov 1994 08:49:37 GMT"}}),
          "k"));
  EXPECT_EQ(info.version, 0u);
  EXPECT_EQ(info.created_unix_ms, 784'111'777'000);
}

TEST(Headers, MalformedObjectHeadersAreProtocolErrors) {
  for (const auto& [name, value] :
       std::vector<std::pair<std::string, std::string>>{{"X-Packice-Version", "x"},
                                                        {"X-Packice-Version", "-1"},
                                                        {"X-Packice-Size", "1k"},
                                                        {"Content-Length", ""},
                                                        {"X-Packice-TTL", "soon"},
                                                        {"X-Packice-Expires", "-5"}}) {
    EXPECT_CODE(http::ObjectInfoFromHeaders(Headers({{name, value}}), "k"), kProtocolError)
        << name << ": " << value;
  }
}

TEST(Errors, TheNamedCodeAndTheBodysMessage) {
  Status s = http::StatusFromResponse(404, Headers({{"X-Packice-Error", "not_found"}}),
                                      http::ErrorJson(NotFound("no object 'greeting'")), false,
                                      "GET /v1/objects/greeting");
  EXPECT_EQ(s, NotFound("no object 'greeting'"));
  // The name wins over the HTTP status (409 is three codes).
  s = http::StatusFromResponse(409, Headers({{"X-Packice-Error", "aborted"}}), "", false,
                               "PUT /v1/objects/k");
  EXPECT_EQ(s, Aborted("PUT /v1/objects/k: HTTP 409"));
  // HEAD: no body, the header only.
  s = http::StatusFromResponse(404, Headers({{"X-Packice-Error", "not_found"}}), "", false,
                               "HEAD /v1/objects/k");
  EXPECT_EQ(s, NotFound("HEAD /v1/objects/k: HTTP 404"));
  // An unknown name falls back to the status.
  s = http::StatusFromResponse(507, Headers({{"X-Packice-Error", "new_code_from_the_future"}}), "",
                               false, "PUT /v1/objects/k");
  EXPECT_EQ(s.code(), StatusCode::kOutOfCapacity);
}

TEST(Errors, WithoutANameTheHttpStatusDecides) {
  const HeaderMap none;
  EXPECT_EQ(http::StatusFromResponse(411, none, "", false, "x").code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(http::StatusFromResponse(413, none, "", false, "x").code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(http::StatusFromResponse(400, none, "", false, "x").code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(http::StatusFromResponse(404, none, "", false, "x").code(), StatusCode::kNotFound);
  EXPECT_EQ(http::StatusFromResponse(412, none, "", false, "x").code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(http::StatusFromResponse(507, none, "", false, "x").code(), StatusCode::kOutOfCapacity);
  EXPECT_EQ(http::StatusFromResponse(503, none, "", false, "x").code(), StatusCode::kUnavailable);
  EXPECT_EQ(http::StatusFromResponse(502, none, "<html>", false, "x").code(),
            StatusCode::kUnavailable);
  EXPECT_EQ(http::StatusFromResponse(500, none, "", false, "x").code(), StatusCode::kInternal);
  EXPECT_EQ(http::StatusFromResponse(418, none, "", false, "x").code(), StatusCode::kInternal);
}

TEST(Errors, UnauthorizedSaysWhatToDo) {
  Status s = http::StatusFromResponse(401, Headers({{"WWW-Authenticate", "Bearer"}}), "", false,
                                      "GET /v1/objects/k");
  EXPECT_EQ(s.code(), StatusCode::kPermissionDenied);
  EXPECT_TRUE(s.message().starts_with("unauthorized: set a token")) << s.ToString();
  s = http::StatusFromResponse(401, HeaderMap{}, "", true, "GET /v1/objects/k");
  EXPECT_EQ(s.code(), StatusCode::kPermissionDenied);
  EXPECT_TRUE(s.message().starts_with("unauthorized: ")) << s.ToString();
}

TEST(Meta, NamesAreLowerCasedAndBadEntriesRefused) {
  ASSERT_OK_AND_ASSIGN(Meta m, http::MetaForHeaders({{"Content-Type", "text/plain"},
                                                     {"layer", "3"},
                                                     {"empty", ""},
                                                     {"inner", "a  b\tc"},
                                                     {"bytes", "\xff\xfe"}}));
  EXPECT_EQ(m, (Meta{{"content-type", "text/plain"},
                     {"layer", "3"},
                     {"empty", ""},
                     {"inner", "a  b\tc"},
                     {"bytes", "\xff\xfe"}}));
  for (const Meta& bad : std::vector<Meta>{{{"a b", "x"}},
                                           {{"\xc3(", "x"}},
                                           {{"a:b", "x"}},
                                           {{"a", "line\r\nX-Injected: 1"}},
                                           {{"a", std::string("nul\0x", 5)}},
                                           {{"a", " lead"}},
                                           {{"a", "trail\t"}},
                                           {{"Dup", "1"}, {"dup", "2"}}}) {
    EXPECT_CODE(http::MetaForHeaders(bad), kInvalidArgument) << bad.begin()->first;
  }
}

TEST(Meta, UploadHeaders) {
  CreateOptions o;
  o.ttl = Duration(1500);
  o.meta = {{"author", "me"}, {"empty", ""}};
  EXPECT_EQ(http::UploadHeaders(o, true),
            (std::vector<std::string>{"X-Packice-TTL: 1500ms", "X-Packice-Meta-author: me",
                                      "X-Packice-Meta-empty;", "If-None-Match: *"}));
  EXPECT_TRUE(http::UploadHeaders(CreateOptions{}, false).empty());
}

// --- the channel against a fake server --------------------------------------------------------

struct SeenRequest {
  std::string method;
  std::string target;
  HeaderMap headers;
  std::string body;
  std::string Header(std::string_view name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "<none>" : it->second;
  }
};

// An HTTP/1.1 response. Content-Length is the body's unless `content_length` says otherwise
// (HEAD).
std::string Reply(int status, std::vector<std::pair<std::string, std::string>> headers = {},
                  std::string body = "", std::optional<uint64_t> content_length = std::nullopt) {
  std::string out = "HTTP/1.1 " + std::to_string(status) + " Whatever\r\n";
  for (const auto& [k, v] : headers) out += k + ": " + v + "\r\n";
  out += "Content-Length: " + std::to_string(content_length.value_or(body.size())) + "\r\n\r\n";
  return out + body;
}

std::string ErrorReply(int status, const Status& s) {
  return Reply(status,
               {{"X-Packice-Error", std::string(StatusCodeName(s.code()))},
                {"Content-Type", "application/json"}},
               http::ErrorJson(s));
}

// A keep-alive HTTP/1.1 server on 127.0.0.1, a thread per connection; answers /healthz itself
// and everything else with `handler`. Records every request.
class FakeServer {
 public:
  using Handler = std::function<std::string(const SeenRequest&)>;

  explicit FakeServer(Handler handler) : handler_(std::move(handler)) {
    listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(listen(listen_fd_, 64), 0);
    socklen_t len = sizeof addr;
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this] { AcceptLoop(); });
  }

  ~FakeServer() {
    shutdown(listen_fd_, SHUT_RDWR);
    acceptor_.join();
    close(listen_fd_);
    std::vector<std::thread> threads;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (int fd : conn_fds_) shutdown(fd, SHUT_RDWR);
      threads.swap(threads_);
    }
    for (auto& t : threads) t.join();
    for (int fd : conn_fds_) close(fd);
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<SeenRequest> requests() {
    std::lock_guard<std::mutex> lock(mu_);
    return seen_;
  }
  SeenRequest last() {
    std::lock_guard<std::mutex> lock(mu_);
    return seen_.empty() ? SeenRequest{} : seen_.back();
  }
  int connections() const { return connections_.load(); }

 private:
  void AcceptLoop() {
    while (true) {
      int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) return;
      ++connections_;
      std::lock_guard<std::mutex> lock(mu_);
      conn_fds_.push_back(fd);
      threads_.emplace_back([this, fd] { Serve(fd); });
    }
  }

  static bool SendAll(int fd, std::string_view s) {
    while (!s.empty()) {
      ssize_t n = send(fd, s.data(), s.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      s.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  void Serve(int fd) {
    std::string buf;
    char chunk[65536];
    const auto fill = [&]() {
      ssize_t n = recv(fd, chunk, sizeof chunk, 0);
      if (n <= 0) return false;
      buf.append(chunk, static_cast<size_t>(n));
      return true;
    };
    while (true) {
      size_t end;
      while ((end = buf.find("\r\n\r\n")) == std::string::npos) {
        if (!fill()) return;
      }
      SeenRequest req;
      std::string_view head(buf.data(), end + 2);
      const size_t line_end = head.find("\r\n");
      std::string_view line = head.substr(0, line_end);
      req.method = std::string(line.substr(0, line.find(' ')));
      line.remove_prefix(req.method.size() + 1);
      req.target = std::string(line.substr(0, line.find(' ')));
      for (size_t pos = line_end + 2; pos < head.size();) {
        const size_t next = head.find("\r\n", pos);
        http::AddHeaderLine(head.substr(pos, next + 2 - pos), &req.headers);
        pos = next + 2;
      }
      buf.erase(0, end + 4);
      size_t length = 0;
      if (auto it = req.headers.find("content-length"); it != req.headers.end()) {
        length = std::stoull(it->second);
      }
      if (req.Header("expect") == "100-continue" && !SendAll(fd, "HTTP/1.1 100 Continue\r\n\r\n")) {
        return;
      }
      while (buf.size() < length) {
        if (!fill()) return;
      }
      req.body = buf.substr(0, length);
      buf.erase(0, length);
      std::string reply;
      if (req.target == "/healthz") {
        reply = Reply(200, {{"Content-Type", "text/plain"}}, "ok");
      } else {
        {
          std::lock_guard<std::mutex> lock(mu_);
          seen_.push_back(req);
        }
        reply = handler_(req);
      }
      if (!SendAll(fd, reply)) return;
    }
  }

  Handler handler_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::thread acceptor_;
  std::atomic<int> connections_{0};
  std::mutex mu_;
  std::vector<int> conn_fds_;
  std::vector<std::thread> threads_;
  std::vector<SeenRequest> seen_;
};

Result<std::shared_ptr<Channel>> Open(const FakeServer& server, std::string token = "") {
  HttpChannelOptions o;
  o.bearer_token = std::move(token);
  return NewHttpChannel(server.url(), o);
}

// A free port: bound, then closed, so nothing listens there.
std::string DeadUrl() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
}

TEST(HttpChannel, NoNodeIsUnavailable) {
  const std::string url = DeadUrl();
  auto channel = NewHttpChannel(url, {});
  EXPECT_CODE(channel, kUnavailable);
  EXPECT_NE(channel.status().message().find("127.0.0.1"), std::string_view::npos)
      << channel.status().ToString();
  EXPECT_CODE(packice::Connect(url), kUnavailable);
  EXPECT_CODE(NewHttpChannel("http://host:0", {}), kInvalidArgument);
  HttpChannelOptions bad_token;
  bad_token.bearer_token = "a\r\nX-Injected: 1";
  EXPECT_CODE(NewHttpChannel("http://127.0.0.1:1", bad_token), kInvalidArgument);
}

TEST(HttpChannel, ConnectNamesEveryScheme) {
  auto c = packice::Connect("ftp://host/x");
  EXPECT_CODE(c, kInvalidArgument);
  for (std::string_view scheme : {"uds://", "http://", "https://"}) {
    EXPECT_NE(c.status().message().find(scheme), std::string_view::npos) << c.status().ToString();
  }
}

TEST(HttpChannel, CreateIsLocalUntilSeal) {
  HttpChannelOptions o;
  o.check_health = false;
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<Channel> ch, NewHttpChannel(DeadUrl(), o));
  CreateOptions options;
  options.meta = {{"Author", "me"}};
  options.ttl = Duration(5000);
  ASSERT_OK_AND_ASSIGN(OpenedObject a, ch->Create("k", 100, options));
  ASSERT_OK_AND_ASSIGN(OpenedObject b, ch->Create("", 10, {}));
  EXPECT_NE(a.lease, 0u);
  EXPECT_NE(b.lease, 0u);
  EXPECT_NE(a.lease, b.lease);
  EXPECT_GE(a.lease_ttl, std::chrono::hours(1)) << "the client's renewer must not spin";
  EXPECT_EQ(a.info.key, "k");
  EXPECT_EQ(a.info.size, 100u);
  EXPECT_EQ(a.info.state, ObjectState::kCreating);
  EXPECT_EQ(a.info.meta, (Meta{{"author", "me"}}));
  EXPECT_EQ(a.info.ttl, Duration(5000));
  EXPECT_EQ(b.info.key.size(), 32u) << "a generated id, known before Seal";
  ASSERT_EQ(a.view->bytes().size(), 100u);
  EXPECT_TRUE(a.view->carried_on_seal());
  for (std::byte x : a.view->bytes()) ASSERT_EQ(x, std::byte{0});

  // Local leases never expire; unknown ones are reported.
  std::vector<LeaseId> expired;
  const LeaseId ids[] = {a.lease, b.lease, 999};
  ASSERT_OK(ch->Renew(ids, &expired));
  EXPECT_EQ(expired, std::vector<LeaseId>{999});

  // A seal above the allocation is refused and keeps the lease; one that fails at the node (here:
  // none there) ends it.
  EXPECT_CODE(ch->Seal(a.lease, *a.view, 101), kInvalidArgument);
  EXPECT_CODE(ch->Seal(a.lease, *a.view, std::nullopt), kUnavailable);
  EXPECT_CODE(ch->Seal(a.lease, *a.view, std::nullopt), kLeaseExpired);
  ASSERT_OK(ch->Discard(b.lease));
  EXPECT_CODE(ch->Discard(b.lease), kLeaseExpired);
  EXPECT_CODE(ch->Release(b.lease), kLeaseExpired);
  expired.clear();
  ASSERT_OK(ch->Renew(ids, &expired));
  EXPECT_EQ(expired.size(), 3u);
}

TEST(HttpChannel, ArgumentsAreCheckedBeforeAnyRequest) {
  FakeServer server([](const SeenRequest&) { return Reply(500); });
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<Channel> ch, Open(server));
  EXPECT_CODE(ch->Get(""), kInvalidArgument);
  EXPECT_CODE(ch->Stat(""), kInvalidArgument);
  EXPECT_CODE(ch->Delete(""), kInvalidArgument);
  EXPECT_CODE(ch->Put("bad\nkey", Bytes("x"), {}), kInvalidArgument);
  EXPECT_CODE(ch->Create(std::string(kMaxKeyBytes + 1, 'k'), 1, {}), kInvalidArgument);
  CreateOptions negative;
  negative.ttl = Duration(-5);
  EXPECT_CODE(ch->Create("neg", 1, negative), kInvalidArgument);
  CreateOptions bad_meta;
  bad_meta.meta = {{"a", "x\r\nInjected: 1"}};
  EXPECT_CODE(ch->Put("k", Bytes("x"), bad_meta), kInvalidArgument);
  EXPECT_TRUE(server.requests().empty());
}

TEST(HttpChannel, PutSendsTheDocumentedRequest) {
  FakeServer server([](const SeenRequest&) {
    ObjectInfo info;
    info.key = "models/a b";
    info.version = 42;
    info.size = 5;
    return Reply(201,
                 {{"ETag", http::FormatETag(42, 1'700'000'000'000)},
                  {"X-Packice-Version", "42"},
                  {"X-Packice-Tier", "memory"},
                  {"Location", "/v1/objects/models/a%20b"},
                  {"Content-Type", "application/json"}},
                 http::PutResultJson(info));
  });
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<Channel> ch, Open(server, "s3cret"));
  CreateOptions options;
  options.meta = {{"Author", "me"}, {"empty", ""}};
  options.ttl = Duration(90'000);
  options.exclusive = true;
  ASSERT_OK_AND_ASSIGN(ObjectInfo info, ch->Put("models/a b", Bytes("hello"), options));
  const SeenRequest req = server.last();
  EXPECT_EQ(req.method, "PUT");
  EXPECT_EQ(req.target, "/v1/objects/models/a%20b");
  EXPECT_EQ(req.body, "hello");
  EXPECT_EQ(req.Header("content-length"), "5");
  EXPECT_EQ(req.Header("authorization"), "Bearer s3cret");
  EXPECT_EQ(req.Header("x-packice-ttl"), "90000ms");
  EXPECT_EQ(req.Header("x-packice-meta-author"), "me");
  EXPECT_EQ(req.Header("x-packice-meta-empty"), "");
  EXPECT_EQ(req.Header("if-none-match"), "*");
  EXPECT_EQ(info.key, "models/a b");
  EXPECT_EQ(info.version, 42u);
  EXPECT_EQ(info.size, 5u);
  EXPECT_EQ(info.state, ObjectState::kSealed);
  EXPECT_EQ(info.meta, (Meta{{"author", "me"}, {"empty", ""}}));
  EXPECT_EQ(info.ttl, Duration(90'000));
  EXPECT_EQ(info.tier, "memory");
  EXPECT_EQ(info.created_unix_ms, 1'700'000'000'000);
}

TEST(HttpChannel, ReplacingPutAnswers204WithAnETag) {
  FakeServer server([](const SeenRequest&) {
    return Reply(204, {{"ETag", http::FormatETag(0x99, 5)}, {"X-Packice-Tier", "disk"}});
  });
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<Channel> ch, Open(server));
  ASSERT_OK_AND_ASSIGN(ObjectInfo info, ch->Put("k", Bytes("abc"), {}));
  EXPECT_EQ(info.key, "k");
  EXPECT_EQ(info.version, 0x99u);
  EXPECT_EQ(info.size, 3u);
  EXPECT_EQ(info.tier, "disk");
  EXPECT_EQ(server.last().Header("if-none-match"), "<none>");
}

TEST(HttpChannel, PutWithoutAKeyPostsAndLearnsTheId) {
  const std::string id = "0123456789abcdef0123456789abcdef";
  FakeServer server([&](const SeenRequest&) {
    return Reply(201, {{"Location", "/v1/objects/" + id}, {"X-Packice-Version", "3"}},
                 "{\"key\": \"" + id + "\", \"version\": 3, \"size\": 2}");
  });
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<Channel> ch, Open(server));
  ASSERT_OK_AND_ASSIGN(ObjectInfo info, ch->Put("", Bytes("hi"), {}));
  EXPECT_EQ(server.last().method, "POST");
  EXPECT_EQ(server.last().target, "/v1/objects");
  EXPECT_EQ(server.last().body, "hi");
  EXPECT_EQ(server.last().Header("content-type"), "<none>");
  EXPECT_EQ(info.key, id);
  EXPECT_EQ(info.version, 3u);
}

TEST(HttpChannel, SealUploadsTheWrittenBytes) {
  FakeServer server([](const SeenRequest& r) {
    return Reply(201, {{"X-Packice-Version", "1"}},
                 "{\"version\": 1, \"size\": " + std::to_string(r.body.size()) + "}");
  });
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<Channel> ch, Open(server));
  // Large enough for curl's Expect: 100-continue.
  const size_t size = 3 << 20;
  ASSERT_OK_AND_ASSIGN(OpenedObject w, ch->Create("big", size, {}));
  for (size_t i = 0; i < size; ++i) w.view->bytes()[i] = static_cast<std::byte>(i * 7);
  ASSERT_OK_AND_ASSIGN(ObjectInfo info, ch->Seal(w.lease, *w.view, size - 10));
  EXPECT_EQ(info.size, size - 10);
  const SeenRequest req = server.last();
  EXPECT_EQ(req.method, "PUT");
  EXPECT_EQ(req.target, "/v1/objects/big");
  ASSERT_EQ(req.body.size(), size - 10);
  EXPECT_EQ(std::memcmp(req.body.data(), w.view->bytes().data(), size - 10), 0);
  EXPECT_CODE(ch->Seal(w.lease, *w.view, std::nullopt), kLeaseExpired) << "the seal ended it";

  // No key: the id is made at Create and the PUT is exclusive.
  ASSERT_OK_AND_ASSIGN(OpenedObject g, ch->Create("", 1, {}));
  ASSERT_OK_AND_ASSIGN(info, ch->Seal(g.lease, *g.view, std::nullopt));
  EXPECT_EQ(info.key, g.info.key);
  EXPECT_EQ(server.last().target, "/v1/objects/" + g.info.key);
  EXPECT_EQ(server.last().Header("if-none-match"), "*");
}

TEST(HttpChannel, GetStatListDelete) {
  const std::string etag = http::FormatETag(7, 1'700'000'000'000);
  ListPage page;
  ObjectInfo listed;
  listed.key = "p/\xff";
  listed.size = 9;
  page.objects = {listed};
  page.truncated = true;
  FakeServer server([&](const SeenRequest& r) {
    std::vector<std::pair<std::string, std::string>> h = {{"ETag", etag},
                                                          {"X-Packice-Version", "7"},
                                                          {"X-Packice-Size", "11"},
                                                          {"X-Packice-Tier", "memory"},
                                                          {"X-Packice-Meta-dtype", "bf16"}};
    if (r.method == "GET" && r.target.starts_with("/v1/objects?")) {
      return Reply(200, {{"Content-Type", "application/json"}}, http::ListPageToJson(page));
    }
    if (r.method == "GET") return Reply(200, h, "hello world");
    if (r.method == "HEAD") return Reply(200, h, "", 11);
    if (r.method == "DELETE") return Reply(204);
    return Reply(405);
  });
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<Channel> ch, Open(server));

  ASSERT_OK_AND_ASSIGN(OpenedObject got, ch->Get("dir/k%"));
  EXPECT_EQ(server.last().target, "/v1/objects/dir/k%25");
  EXPECT_EQ(got.lease, 0u) << "an inline read: no lease";
  EXPECT_EQ(Str(got.view->bytes()), "hello world");
  EXPECT_EQ(got.info.key, "dir/k%");
  EXPECT_EQ(got.info.version, 7u);
  EXPECT_EQ(got.info.size, 11u);
  EXPECT_EQ(got.info.meta, (Meta{{"dtype", "bf16"}}));
  ASSERT_OK_AND_ASSIGN(got, ch->Open("k"));
  EXPECT_EQ(got.lease, 0u);

  ASSERT_OK_AND_ASSIGN(ObjectInfo stat, ch->Stat("k"));
  EXPECT_EQ(server.last().method, "HEAD");
  EXPECT_EQ(stat.size, 11u);
  EXPECT_EQ(stat.version, 7u);
  EXPECT_EQ(stat.tier, "memory");

  ListOptions lo;
  lo.prefix = "p/";
  lo.limit = 5;
  ASSERT_OK_AND_ASSIGN(ListPage l, ch->List(lo));
  EXPECT_EQ(server.last().target, "/v1/objects?prefix=p%2F&limit=5");
  ASSERT_EQ(l.objects.size(), 1u);
  EXPECT_EQ(l.objects[0].key, "p/\xff");
  EXPECT_EQ(l.objects[0].size, 9u);
  EXPECT_TRUE(l.truncated);

  ASSERT_OK(ch->Delete("k"));
  EXPECT_EQ(server.last().method, "DELETE");
  EXPECT_EQ(server.last().target, "/v1/objects/k");
}

TEST(HttpChannel, ErrorsMapToCodes) {
  FakeServer server([](const SeenRequest& r) {
    if (r.method == "HEAD") return Reply(404, {{"X-Packice-Error", "not_found"}}, "", 90);
    if (r.target == "/v1/objects/missing") return ErrorReply(404, NotFound("no object 'missing'"));
    if (r.target == "/v1/objects/taken") return ErrorReply(412, AlreadyExists("'taken' exists"));
    if (r.target == "/v1/objects/full") return Reply(507, {}, "no room");
    if (r.target == "/v1/objects/private") return Reply(401, {{"WWW-Authenticate", "Bearer"}});
    if (r.target == "/v1/objects/short") return Reply(200, {{"X-Packice-Size", "10"}}, "abc");
    if (r.target == "/v1/objects/bad-json") return Reply(201, {}, "{not json");
    return Reply(200, {}, "ok");
  });
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<Channel> ch, Open(server));
  auto missing = ch->Get("missing");
  EXPECT_EQ(missing.status(), NotFound("no object 'missing'"));
  EXPECT_CODE(ch->Stat("missing"), kNotFound);
  EXPECT_CODE(ch->Delete("missing"), kNotFound);
  EXPECT_CODE(ch->Put("taken", Bytes("x"), {}), kAlreadyExists);
  EXPECT_CODE(ch->Put("full", Bytes("x"), {}), kOutOfCapacity);
  auto denied = ch->Get("private");
  EXPECT_CODE(denied, kPermissionDenied);
  EXPECT_TRUE(denied.status().message().starts_with("unauthorized")) << denied.status().ToString();
  EXPECT_CODE(ch->Get("short"), kProtocolError);
  EXPECT_CODE(ch->Put("bad-json", Bytes("x"), {}), kProtocolError);
  // Still fine afterwards, and on the same kept-alive connection.
  ASSERT_OK(ch->Get("fine").status());
  EXPECT_EQ(server.connections(), 1);
}

TEST(HttpChannel, AStalledTransferTimesOut) {
  std::atomic<bool> release{false};
  FakeServer server([&](const SeenRequest&) {
    for (int i = 0; i < 500 && !release; ++i) std::this_thread::sleep_for(10ms);
    return Reply(200, {}, "late");
  });
  HttpChannelOptions o;
  o.stall_timeout = 1s;
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<Channel> ch, NewHttpChannel(server.url(), o));
  const auto start = std::chrono::steady_clock::now();
  EXPECT_CODE(ch->Get("slow"), kTimeout);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  release = true;
}

TEST(HttpChannel, ConcurrentCallsShareAFewConnections) {
  FakeServer server([](const SeenRequest& r) {
    return Reply(200, {{"X-Packice-Version", "1"}}, r.target.substr(r.target.rfind('/') + 1));
  });
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<Channel> ch, Open(server));
  constexpr int kThreads = 6, kCalls = 40;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kCalls; ++i) {
        const std::string key = "k" + std::to_string(t) + "-" + std::to_string(i);
        auto got = ch->Get(key);
        if (!got.ok() || Str(got->view->bytes()) != key) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(server.requests().size(), size_t{kThreads * kCalls});
  EXPECT_LE(server.connections(), kThreads + 1) << "connections are kept alive and reused";
}

TEST(HttpChannel, ThePublicClientOverHttp) {
  std::mutex mu;
  std::map<std::string, std::string> objects;  // target -> body
  FakeServer server([&](const SeenRequest& r) {
    std::lock_guard<std::mutex> lock(mu);
    if (r.Header("authorization") != "Bearer tok") return Reply(401);
    if (r.method == "PUT") {
      const bool existed = objects.contains(r.target);
      objects[r.target] = r.body;
      return existed ? Reply(204, {{"X-Packice-Version", "2"}})
                     : Reply(201, {{"X-Packice-Version", "1"}}, "{\"version\": 1}");
    }
    auto it = objects.find(r.target);
    if (it == objects.end()) return ErrorReply(404, NotFound("no object"));
    return Reply(200, {{"X-Packice-Version", "1"}}, it->second);
  });
  ClientOptions options;
  options.http_token = "tok";
  ASSERT_OK_AND_ASSIGN(Client client, packice::Connect(server.url(), options));
  {
    ASSERT_OK_AND_ASSIGN(ObjectWriter w, client.Create("greeting", 5));
    std::memcpy(w.data().data(), "hello", 5);
    ASSERT_OK_AND_ASSIGN(ObjectInfo info, w.Seal());
    EXPECT_EQ(info.version, 1u);
    EXPECT_CODE(w.Seal(), kWrongState);
  }
  {
    ASSERT_OK_AND_ASSIGN(ObjectWriter w, client.Create("dropped", 5));
  }  // dropped: nothing is sent
  ASSERT_OK_AND_ASSIGN(ObjectReader r, client.Get("greeting"));
  EXPECT_EQ(Str(r.data()), "hello");
  ASSERT_OK(r.Release());
  EXPECT_TRUE(r.data().empty());
  ASSERT_OK_AND_ASSIGN(ObjectInfo replaced, client.Put("greeting", std::string_view("hi")));
  EXPECT_EQ(replaced.version, 2u);
  EXPECT_CODE(client.Get("dropped"), kNotFound);
  for (const SeenRequest& req : server.requests()) {
    if (req.method == "PUT") {
      EXPECT_NE(req.target, "/v1/objects/dropped");
    }
  }

  ClientOptions no_token;
  ASSERT_OK_AND_ASSIGN(Client anonymous, packice::Connect(server.url(), no_token));
  if (std::getenv("PACKICE_TOKEN") == nullptr) {
    EXPECT_CODE(anonymous.Get("greeting"), kPermissionDenied);
  }
}

}  // namespace
}  // namespace packice
