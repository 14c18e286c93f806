// The HTTP transport, client side: the Channel of Connect("http://host:port") and
// Connect("https://host:port"), over the REST API of docs/http.md with libcurl.
//
// Over HTTP there are no leases and no shared memory: bytes are copied both ways.
//  - Create makes no request. It hands out a local create lease (never expires, renewing it is
//    free) over a private buffer; Seal uploads the buffer with one PUT (a create with no key gets
//    a generated id at once, as over the other transports, and is PUT with If-None-Match: *).
//    Discard and Release of a create lease only drop the buffer. So an exclusive create of a
//    taken key, and a create over capacity, fail at Seal, not at Create.
//  - Get and Open download the whole object with one GET into a private buffer: lease 0, the
//    "inline read" of the Client, which holds nothing on the node.
//  - Put is one PUT (POST when the key is empty), Stat a HEAD, List a GET of /v1/objects, Delete
//    a DELETE.
//  - Metadata travels as X-Packice-Meta-{name} headers: names must be header tokens and arrive
//    lower-cased (ObjectInfo reports them lower-cased), values may not hold control characters or
//    begin or end with a space or tab. Anything else is kInvalidArgument before any request.
//  - Errors come from X-Packice-Error and the JSON body; without them from the HTTP status (401
//    is kPermissionDenied "unauthorized: ..."). No connection, DNS or TLS failures are
//    kUnavailable with curl's text; a transfer stalled for `stall_timeout` is kTimeout. A failure
//    does not break the channel: the next call tries again on a fresh connection.
//
// Thread safety: the channel is safe for concurrent use; each call takes an idle curl handle
// from a small pool (so connections are kept alive and reused), or makes one.
#ifndef PACKICE_TRANSPORT_HTTP_HTTP_CHANNEL_H_
#define PACKICE_TRANSPORT_HTTP_HTTP_CHANNEL_H_

#include <chrono>
#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "packice/status.h"
#include "packice/types.h"
#include "transport/channel.h"

namespace packice {

struct HttpChannelOptions {
  // Sent as "Authorization: Bearer <token>" on every request; empty: none.
  std::string bearer_token;
  // A PEM bundle of the CAs that may sign the node's certificate (https); empty: the system's.
  // The certificate is always verified, host name included.
  std::string ca_file;
  std::chrono::milliseconds connect_timeout{10'000};
  // A request that moves no byte for this long fails with kTimeout. There is no limit on a
  // whole request, so bodies of any size work on a slow link.
  std::chrono::milliseconds stall_timeout{60'000};
  // NewHttpChannel first asks GET /healthz, so that no node at the URL is kUnavailable at once.
  bool check_health = true;
  // Idle curl handles (each with its kept-alive connection) kept for reuse.
  size_t max_idle_handles = 8;
};

// `base_url`: "http://host:port" or "https://host:port", optionally with a path prefix
// ("https://proxy/packice"); no credentials, query or fragment. Errors: kInvalidArgument (bad
// URL or token), kUnavailable (no node answers /healthz).
Result<std::shared_ptr<Channel>> NewHttpChannel(const std::string& base_url,
                                                const HttpChannelOptions& options);

// --- internals, exposed for tests ------------------------------------------------------------
namespace http {

// A checked base URL: scheme "http" or "https" (lower-cased), authority "host[:port]", and a
// path prefix without a trailing '/' (usually empty).
struct BaseUrl {
  std::string scheme;
  std::string authority;
  std::string path;
  std::string ToString() const { return scheme + "://" + authority + path; }
};
Result<BaseUrl> ParseBaseUrl(std::string_view url);

// base + "/v1/objects/" + the percent-encoded key.
std::string ObjectUrl(std::string_view base, std::string_view key);
// base + "/v1/objects?prefix=..&start_after=..&limit=..", values percent-encoded; empty values
// and a zero limit are left out.
std::string ListUrl(std::string_view base, const ListOptions& options);

// Response headers by lower-cased name; values with surrounding spaces and tabs trimmed.
using HeaderMap = std::multimap<std::string, std::string, std::less<>>;
// Adds one header line as curl hands it over ("Name: value\r\n"). A status line ("HTTP/1.1 100
// Continue") starts a new response, so it clears `headers`; the blank line ending the block and
// malformed lines are ignored.
void AddHeaderLine(std::string_view line, HeaderMap* headers);

// What GET and HEAD headers say of the object under `key`: X-Packice-Version (else the ETag's
// version), X-Packice-Size (else Content-Length), X-Packice-TTL, X-Packice-Expires,
// X-Packice-Tier (else the ETag's), X-Packice-Meta-*, the creation time from the ETag (else
// Last-Modified). State kSealed. Errors: kProtocolError (a malformed X-Packice-* value).
Result<ObjectInfo> ObjectInfoFromHeaders(const HeaderMap& headers, std::string_view key);

// The Status of an HTTP error response: the code named by X-Packice-Error (else the HTTP
// status's) and the message of the JSON body (else "`what`: HTTP <status>"). 401 is always
// kPermissionDenied "unauthorized: ...", saying whether a token was sent.
Status StatusFromResponse(int http_status, const HeaderMap& headers, std::string_view body,
                          bool sent_token, std::string_view what);

// Checks that `meta` can travel as headers and returns it with lower-cased names (what the node
// will store). Errors: kInvalidArgument (a name that is no header token, or two that differ only
// in case; a value with a control character or leading or trailing blanks).
Result<Meta> MetaForHeaders(const Meta& meta);

// The request headers of a PUT or POST ("X-Packice-TTL: 60000ms", "X-Packice-Meta-a: b",
// "If-None-Match: *"), in curl's syntax ("Name;" sends an empty value).
std::vector<std::string> UploadHeaders(const CreateOptions& options, bool exclusive);

}  // namespace http
}  // namespace packice

#endif  // PACKICE_TRANSPORT_HTTP_HTTP_CHANNEL_H_
