#include "transport/http/object_plan.h"

#include <limits>
#include <utility>

#include "transport/http/http_common.h"
#include "transport/http/http_request.h"

namespace packice::http_plan {
namespace {

char Lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

// Whether `s` starts with `lower_prefix` (lower-case), ignoring case.
bool IStartsWith(std::string_view s, std::string_view lower_prefix) {
  if (s.size() < lower_prefix.size()) return false;
  for (size_t i = 0; i < lower_prefix.size(); ++i) {
    if (Lower(s[i]) != lower_prefix[i]) return false;
  }
  return true;
}

bool IEquals(std::string_view a, std::string_view lower_b) {
  return a.size() == lower_b.size() && IStartsWith(a, lower_b);
}

PutPlan Refuse(PutPlan plan, int http_status, Status error) {
  plan.refusal = Refusal{http_status, std::move(error)};
  return plan;
}

// Metadata and TTL headers into `plan`; a refusal for a bad TTL.
PutPlan TakeCreateHeaders(PutPlan plan, Headers headers) {
  CreateOptions& create = plan.acquire.create;
  for (const Header& h : headers) {
    if (IStartsWith(h.name, http::kMetaHeaderPrefix)) {
      create.meta[http::ToLower(h.name.substr(http::kMetaHeaderPrefix.size()))] =
          std::string(h.value);
    } else if (IEquals(h.name, http::kTtlHeader)) {
      std::optional<Duration> ttl = http::ParseTtl(h.value);
      if (!ttl) {
        return Refuse(std::move(plan), 400,
                      InvalidArgument("X-Packice-TTL '" + std::string(h.value) +
                                      "': use 60 (seconds), 500ms, 30s, 10m, 2h or 1d"));
      }
      create.ttl = *ttl;
    }
  }
  return plan;
}

}  // namespace

std::optional<std::string_view> Find(Headers headers, std::string_view name) {
  std::string lower = http::ToLower(name);
  for (const Header& h : headers) {
    if (IEquals(h.name, lower)) return h.value;
  }
  return std::nullopt;
}

Refusal RefusalFor(Status error) {
  return Refusal{http::HttpStatusForCode(error.code()), std::move(error)};
}

PutPlan PlanPut(Headers headers, std::string key, BodyFraming framing, uint64_t max_body) {
  PutPlan plan;
  plan.acquire.key = std::move(key);
  plan.acquire.mode = LeaseMode::kCreate;
  plan.chunked = framing.chunked;
  plan.limit = max_body != 0 ? max_body : std::numeric_limits<uint64_t>::max();
  plan.expect_continue = IStartsWith(Find(headers, "expect").value_or(""), "100-continue");
  if (!framing.chunked && !framing.content_length) {
    return Refuse(std::move(plan), 411,
                  InvalidArgument("PUT and POST need a Content-Length or a chunked body"));
  }
  if (!framing.chunked) {
    plan.acquire.size = *framing.content_length;
    if (plan.acquire.size > plan.limit) {
      return Refuse(
          std::move(plan), 413,
          InvalidArgument("body of " + std::to_string(plan.acquire.size) +
                          " bytes is over the node's limit of " + std::to_string(max_body)));
    }
  }
  plan = TakeCreateHeaders(std::move(plan), headers);
  if (plan.refusal) return plan;
  if (std::optional<std::string_view> inm = Find(headers, "if-none-match")) {
    if (inm->find('*') == std::string_view::npos) {
      return Refuse(std::move(plan), 412, InvalidArgument("PUT supports only If-None-Match: *"));
    }
    plan.acquire.create.exclusive = true;
  }
  return plan;
}

GetPlan PlanGet(Headers headers, std::string_view etag, uint64_t size) {
  GetPlan plan;
  plan.length = size;
  std::optional<std::string_view> inm = Find(headers, "if-none-match");
  if (inm && http_request::IfNoneMatchMatches(*inm, etag)) {
    plan.kind = GetPlan::Kind::kNotModified;
    return plan;
  }
  std::optional<std::string_view> range = Find(headers, "range");
  std::optional<std::string_view> if_range = Find(headers, "if-range");
  if (!range || (if_range && *if_range != etag)) return plan;
  http_request::RangeRequest r = http_request::ParseRange(*range, size);
  if (r.kind == http_request::RangeRequest::Kind::kUnsatisfiable) {
    plan.kind = GetPlan::Kind::kUnsatisfiable;
    plan.content_range = "bytes */" + std::to_string(size);
    plan.refusal =
        Refusal{416, InvalidArgument("range '" + std::string(*range) + "' starts past the end of " +
                                     std::to_string(size) + " bytes")};
    return plan;
  }
  if (r.kind == http_request::RangeRequest::Kind::kPartial) {
    plan.kind = GetPlan::Kind::kPartial;
    plan.first = r.range.first;
    plan.length = r.range.length;
    plan.content_range = "bytes " + std::to_string(plan.first) + "-" +
                         std::to_string(plan.first + plan.length - 1) + "/" + std::to_string(size);
  }
  return plan;
}

}  // namespace packice::http_plan
