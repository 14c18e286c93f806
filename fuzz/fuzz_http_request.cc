// libFuzzer target: the bytes an HTTP client could send to packiced, and those a node could send
// back to the HTTP client. A request is parsed by Beast with the server's limits, and what the
// server then interprets itself (target, key escapes, query, Range, If-None-Match, TTL, and the
// PUT and GET plans of object_plan.h) is run over it, chunked bodies decoded by Beast as the
// server has them decoded; the same bytes are fed to the client's decoders of responses (JSON
// bodies, ETags, dates). Any crash, sanitizer report, leak or unbounded allocation is a bug.
//
//   fuzz_http_request -max_total_time=60 NEW_CORPUS_DIR fuzz/corpus/http_request
#include <utility>
//
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "transport/http/http_common.h"
#include "transport/http/http_request.h"
#include "transport/http/object_plan.h"

namespace {

namespace bhttp = boost::beast::http;

std::string_view View(boost::beast::string_view s) { return {s.data(), s.size()}; }

void ServerSide(std::string_view input) {
  bhttp::request_parser<bhttp::string_body> parser;
  parser.header_limit(16 * 1024);
  parser.body_limit(64 * 1024);
  parser.eager(true);
  boost::beast::error_code ec;
  parser.put(boost::asio::buffer(input.data(), input.size()), ec);
  if (ec || !parser.is_header_done()) return;
  const auto& req = parser.get();
  auto [path, query] = packice::http_request::SplitTarget(View(req.target()));
  (void)packice::http::PercentDecode(path);
  (void)packice::http_request::ParseQuery(query);
  uint64_t size = input.size() * 997;  // some object size the ranges are judged against
  std::vector<packice::http_plan::Header> headers;
  for (const auto& field : req) headers.push_back({View(field.name_string()), View(field.value())});
  std::optional<uint64_t> length;
  if (parser.content_length()) length = *parser.content_length();
  (void)packice::http_plan::PlanPut(headers, "k", {req.chunked(), length}, 1 << 20);
  (void)packice::http_plan::PlanGet(headers, "\"1-2-memory\"", size);
  (void)packice::http_plan::PlanGet(headers, "\"1-2-memory\"", 0);
  for (const auto& field : req) {
    std::string_view value = View(field.value());
    (void)packice::http_request::ParseRange(value, size);
    (void)packice::http_request::ParseRange(value, 0);
    (void)packice::http_request::IfNoneMatchMatches(value, "\"1-2-memory\"");
    (void)packice::http::ParseTtl(value);
  }
}

void ClientSide(std::string_view input) {
  (void)packice::http::ListPageFromJson(input);
  packice::ObjectInfo info;
  (void)packice::http::ParsePutResultJson(input, &info);
  (void)packice::http::ErrorMessageFromJson(input);
  (void)packice::http::ParseETag(input);
  (void)packice::http::ParseHttpDate(input);
  (void)packice::http::StatusCodeFromName(input);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  ServerSide(input);
  ClientSide(input);
  return 0;
}
