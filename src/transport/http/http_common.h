// What both sides of the HTTP transport (docs/http.md) agree on: percent-encoding of keys, the
// header names, ETags, TTL and date formats, status codes <-> HTTP statuses, and the JSON bodies
// (errors, PUT results, listings). Plain functions, no I/O; the client (http_channel.cc) and the
// server (http_connection.cc and the routes files) both use them, so the two cannot drift apart.
//
// Thread safety: every function is thread-safe.
#ifndef PACKICE_TRANSPORT_HTTP_HTTP_COMMON_H_
#define PACKICE_TRANSPORT_HTTP_HTTP_COMMON_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/validate.h"
#include "packice/status.h"
#include "packice/types.h"

namespace packice::http {

// The route prefix of objects: "/v1/objects/{key}" (and "/v1/objects" for POST and listings).
inline constexpr std::string_view kObjectsPath = "/v1/objects";

// Header names, lower-case (HTTP header names are case-insensitive; compare lower-cased).
inline constexpr std::string_view kErrorHeader = "x-packice-error";
inline constexpr std::string_view kVersionHeader = "x-packice-version";
inline constexpr std::string_view kSizeHeader = "x-packice-size";
inline constexpr std::string_view kTtlHeader = "x-packice-ttl";
inline constexpr std::string_view kExpiresHeader = "x-packice-expires";
inline constexpr std::string_view kTierHeader = "x-packice-tier";
// One header per metadata entry: kMetaHeaderPrefix + name.
inline constexpr std::string_view kMetaHeaderPrefix = "x-packice-meta-";

// --- percent-encoding (RFC 3986) ---------------------------------------------------------------

// Encodes every byte but the unreserved characters (A-Z a-z 0-9 - . _ ~) as %XX (upper-case
// hex). For query values and single path segments.
std::string PercentEncode(std::string_view s);
// Like PercentEncode, but '/' stays as it is: a key in the path ("/v1/objects/a/b").
std::string PercentEncodePath(std::string_view s);
// Decodes %XX escapes (either case); every other byte is kept, '+' included (this is not form
// encoding). nullopt on a truncated or non-hex escape.
std::optional<std::string> PercentDecode(std::string_view s);

// Whether `s` is a non-empty RFC 9110 token: what a header name may be.
bool IsToken(std::string_view s);
// ASCII lower-case copy.
std::string ToLower(std::string_view s);

// libcurl's global initialisation, once per process, for every libcurl user here (the HTTP
// channel, the cache groups' HTTP client and origin loader). Errors: kInternal.
Status CurlGlobalInit();

// --- ETags ---------------------------------------------------------------------------------------

// A strong ETag naming exactly one object: "\"{version}-{created_unix_ms}\"", the numbers in
// lower-case hex. A node's versions never repeat (one sequence for its tiers, durable across
// restarts), and an object keeps its version and creation time when it moves between tiers, so
// the ETag survives a demotion, a promotion and a restart.
std::string FormatETag(uint64_t version, int64_t created_unix_ms);
struct ETagParts {
  uint64_t version = 0;
  int64_t created_unix_ms = 0;
};
// Parses what FormatETag made (a weak "W/" prefix is refused). nullopt for anything else.
std::optional<ETagParts> ParseETag(std::string_view etag);

// --- TTLs and dates ------------------------------------------------------------------------------

// "60000ms": the X-Packice-TTL of a response.
std::string FormatTtl(Duration ttl);
// An X-Packice-TTL value: "60" (seconds), "500ms", "30s", "10m", "2h", "1d"; "0" is zero.
// nullopt for anything else (signs, fractions, spaces, overflow).
std::optional<Duration> ParseTtl(std::string_view text);

// An IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") for Last-Modified; sub-second part dropped.
std::string FormatHttpDate(int64_t unix_ms);
// Parses an IMF-fixdate into Unix milliseconds; nullopt when it is not one.
std::optional<int64_t> ParseHttpDate(std::string_view text);

// --- status codes ------------------------------------------------------------------------------

// The stable code of a docs/errors.md name ("not_found"); nullopt for a name this build does not
// know.
std::optional<StatusCode> StatusCodeFromName(std::string_view name);
// The HTTP status an error of `code` is answered with (docs/http.md): kNotFound 404,
// kAlreadyExists 412, kInvalidArgument and kProtocolError 400, ... kOk gives 200.
int HttpStatusForCode(StatusCode code);
// The code a client gives an HTTP error status that came without X-Packice-Error: 400, 411, 413,
// 416, 431 kInvalidArgument; 401 and 403 kPermissionDenied; 404 kNotFound; 408 kTimeout;
// 409 kWrongState; 412 kAlreadyExists; 501 kUnimplemented; 502, 503, 504 kUnavailable;
// 507 kOutOfCapacity; anything else kInternal. A 2xx or 3xx status gives kInternal too: it is not
// an error the caller expected.
StatusCode CodeForHttpStatus(int http_status);

// --- JSON bodies -------------------------------------------------------------------------------
//
// JSON strings are UTF-8, while keys and metadata are any bytes. A key that is not valid UTF-8 is
// sent as "key" with U+FFFD in place of the bad bytes (for people) plus "key_percent", its exact
// bytes percent-encoded (for programs; readers prefer it). Metadata likewise: "meta" always, and
// "meta_percent" with every name and value percent-encoded when any of them is not UTF-8.

// Whether `s` is well-formed UTF-8.
using ::packice::IsUtf8;  // core/validate.h

// The body of an error: {"code": 1, "error": "not_found", "message": "..."}.
std::string ErrorJson(const Status& status);
// The message of an error body; empty when the body is not one.
std::string ErrorMessageFromJson(std::string_view body);

// The body of a 201 PUT or POST: {"key": ..., "version": ..., "size": ..., "etag": ...}.
std::string PutResultJson(const ObjectInfo& info);
// Fills key, version and size of `info` from such a body. Errors: kProtocolError.
Status ParsePutResultJson(std::string_view body, ObjectInfo* info);

// A listing:
//   {"objects": [{"key": "a/b", "size": 3, "version": 7, "etag": "\"7-18c...-memory\"",
//                 "ttl_ms": 0, "created_unix_ms": 1700000000000, "expires_unix_ms": 0,
//                 "tier": "memory", "meta": {"name": "value"}}, ...],
//    "truncated": false}
// in key order; "truncated" says more keys follow the last one (ask again with start_after).
std::string ListPageToJson(const ListPage& page);
// Parses a listing (fields other than "key" may be missing). Errors: kProtocolError.
Result<ListPage> ListPageFromJson(std::string_view body);

}  // namespace packice::http

#endif  // PACKICE_TRANSPORT_HTTP_HTTP_COMMON_H_
