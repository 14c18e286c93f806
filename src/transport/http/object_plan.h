// What a request for an object asks, decided from its headers alone: the plan of a PUT or POST
// (the create request, or why it is refused) and of a GET or HEAD (whole, partial, not
// modified, unsatisfiable). Pure functions: no I/O, no Beast; the routes (object_routes.cc)
// carry them out, and object_plan_test.cc and the fuzzer drive them directly.
//
// Thread safety: every function is thread-safe.
#ifndef PACKICE_TRANSPORT_HTTP_OBJECT_PLAN_H_
#define PACKICE_TRANSPORT_HTTP_OBJECT_PLAN_H_

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "packice/peer.h"
#include "packice/status.h"
#include "packice/types.h"

namespace packice::http_plan {

// One request header as it arrived (the name in any case).
struct Header {
  std::string_view name;
  std::string_view value;
};
using Headers = std::span<const Header>;

// The value of the first header named `name` (compared case-insensitively); nullopt if none.
std::optional<std::string_view> Find(Headers headers, std::string_view name);

// An error answer: the HTTP status and the error it carries.
struct Refusal {
  int http_status = 0;
  Status error;
};
// Refusal for `error` with the status its code maps to (docs/http.md).
Refusal RefusalFor(Status error);

// How a PUT's or POST's body arrives.
struct BodyFraming {
  bool chunked = false;                    // Transfer-Encoding: chunked
  std::optional<uint64_t> content_length;  // Content-Length, when given
};

struct PutPlan {
  std::optional<Refusal> refusal;  // set: answer this and create nothing
  // kCreate of `key` (empty for a POST: the peer generates an id) with the headers' metadata,
  // TTL and exclusivity; size = Content-Length (0 for a chunked body: it grows, see
  // growing_upload.h).
  AcquireRequest acquire;
  bool chunked = false;
  bool expect_continue = false;  // Expect: 100-continue
  // The largest size a chunked body may reach: max_body, or unlimited (UINT64_MAX) when 0.
  uint64_t limit = 0;
};

// Plans a PUT (key set) or POST (key empty) against the node's `max_body` (0: no limit).
// Refusals: 411 (neither Content-Length nor chunked), 413 (Content-Length over max_body),
// 400 (bad X-Packice-TTL), 412 (If-None-Match other than *).
PutPlan PlanPut(Headers headers, std::string key, BodyFraming framing, uint64_t max_body);

// What a GET or HEAD of an object sends.
struct GetPlan {
  enum class Kind {
    kWhole,          // 200 with the whole object
    kPartial,        // 206 with [first, first + length) and `content_range`
    kNotModified,    // 304: If-None-Match matched the ETag
    kUnsatisfiable,  // 416 with `content_range` = "bytes */size" and `refusal`
  };
  Kind kind = Kind::kWhole;
  uint64_t first = 0;
  uint64_t length = 0;
  std::string content_range;  // the Content-Range header, when there is one
  std::optional<Refusal> refusal;
};

// Plans a GET or HEAD of an object of `size` bytes whose ETag is `etag`: If-None-Match first
// (304), then Range, which applies only without If-Range or when If-Range is `etag`.
GetPlan PlanGet(Headers headers, std::string_view etag, uint64_t size);

}  // namespace packice::http_plan

#endif  // PACKICE_TRANSPORT_HTTP_OBJECT_PLAN_H_
