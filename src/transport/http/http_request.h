// Pieces of an HTTP request that only the server interprets (Beast parses the message): the
// Range header, conditional headers and the query string. What the client shares lives in
// http_common.h. Pure functions of their text, so the fuzzer drives them directly.
#ifndef PACKICE_TRANSPORT_HTTP_HTTP_REQUEST_H_
#define PACKICE_TRANSPORT_HTTP_HTTP_REQUEST_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "packice/status.h"

namespace packice::http_request {

// One byte range of an object, [first, first + length).
struct ByteRange {
  uint64_t first = 0;
  uint64_t length = 0;
};

// What a Range header asks of an object of `size` bytes.
struct RangeRequest {
  enum class Kind {
    kWhole,          // no usable Range: send the whole object (absent, malformed, or several)
    kPartial,        // send `range` as 206
    kUnsatisfiable,  // 416
  };
  Kind kind = Kind::kWhole;
  ByteRange range;
};

// Interprets `Range: bytes=a-b | a- | -n` against an object of `size` bytes (RFC 9110 14.2).
// Syntax errors and multiple ranges give kWhole: a server may ignore a Range it does not serve.
RangeRequest ParseRange(std::string_view header, uint64_t size);

// Whether an If-None-Match header (`*`, or a list of entity tags, weak or strong) matches
// `etag` (quoted) under the weak comparison RFC 9110 13.1.2 prescribes.
bool IfNoneMatchMatches(std::string_view header, std::string_view etag);

// Splits a request target into its path and its query (without '?').
std::pair<std::string_view, std::string_view> SplitTarget(std::string_view target);

// name=value pairs of a query string, decoded ('+' is a space), in order.
// Errors: kInvalidArgument on a bad escape.
Result<std::vector<std::pair<std::string, std::string>>> ParseQuery(std::string_view query);

}  // namespace packice::http_request

#endif  // PACKICE_TRANSPORT_HTTP_HTTP_REQUEST_H_
