#include "transport/http/http_request.h"

#include <charconv>
#include <limits>

#include "transport/http/http_common.h"

namespace packice::http_request {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// A decimal number that is all of `s`; nullopt for anything else (signs, spaces, overflow).
std::optional<uint64_t> Decimal(std::string_view s) {
  uint64_t n = 0;
  if (s.empty()) return std::nullopt;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return n;
}

// A query-string part: '+' is a space, then %XX escapes.
std::optional<std::string> DecodeQueryPart(std::string_view part) {
  std::string spaced(part);
  for (char& c : spaced) {
    if (c == '+') c = ' ';
  }
  return http::PercentDecode(spaced);
}

// An entity tag without its weakness prefix, for the weak comparison.
std::string_view Opaque(std::string_view tag) {
  tag = Trim(tag);
  if (tag.starts_with("W/")) tag.remove_prefix(2);
  return tag;
}

}  // namespace

RangeRequest ParseRange(std::string_view header, uint64_t size) {
  RangeRequest whole;
  header = Trim(header);
  constexpr std::string_view kUnit = "bytes=";
  if (header.size() < kUnit.size()) return whole;
  for (size_t i = 0; i < kUnit.size(); ++i) {  // the unit is case-insensitive
    char c = header[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != kUnit[i]) return whole;
  }
  std::string_view spec = Trim(header.substr(kUnit.size()));
  if (spec.find(',') != std::string_view::npos) return whole;  // several ranges: send it all
  size_t dash = spec.find('-');
  if (dash == std::string_view::npos) return whole;
  std::string_view a = Trim(spec.substr(0, dash));
  std::string_view b = Trim(spec.substr(dash + 1));
  RangeRequest r;
  if (a.empty()) {  // suffix: the last n bytes
    std::optional<uint64_t> n = Decimal(b);
    if (!n) return whole;
    if (*n == 0 || size == 0) {
      r.kind = RangeRequest::Kind::kUnsatisfiable;
      return r;
    }
    uint64_t len = std::min(*n, size);
    r.kind = RangeRequest::Kind::kPartial;
    r.range = {size - len, len};
    return r;
  }
  std::optional<uint64_t> first = Decimal(a);
  if (!first) return whole;
  uint64_t last = std::numeric_limits<uint64_t>::max();
  if (!b.empty()) {
    std::optional<uint64_t> l = Decimal(b);
    if (!l || *l < *first) return whole;
    last = *l;
  }
  if (*first >= size) {
    r.kind = RangeRequest::Kind::kUnsatisfiable;
    return r;
  }
  last = std::min(last, size - 1);
  r.kind = RangeRequest::Kind::kPartial;
  r.range = {*first, last - *first + 1};
  return r;
}

bool IfNoneMatchMatches(std::string_view header, std::string_view etag) {
  header = Trim(header);
  if (header == "*") return true;
  std::string_view want = Opaque(etag);
  while (!header.empty()) {
    size_t comma = header.find(',');
    std::string_view tag = header.substr(0, comma);
    if (Opaque(tag) == want) return true;
    if (comma == std::string_view::npos) break;
    header.remove_prefix(comma + 1);
  }
  return false;
}

std::pair<std::string_view, std::string_view> SplitTarget(std::string_view target) {
  size_t q = target.find('?');
  if (q == std::string_view::npos) return {target, {}};
  return {target.substr(0, q), target.substr(q + 1)};
}

Result<std::vector<std::pair<std::string, std::string>>> ParseQuery(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> out;
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view part = query.substr(0, amp);
    if (!part.empty()) {
      size_t eq = part.find('=');
      std::optional<std::string> name = DecodeQueryPart(part.substr(0, eq));
      std::optional<std::string> value =
          eq == std::string_view::npos ? std::string() : DecodeQueryPart(part.substr(eq + 1));
      if (!name || !value) {
        return InvalidArgument("bad percent escape in query '" + std::string(part.substr(0, 256)) +
                               "'");
      }
      out.emplace_back(std::move(*name), std::move(*value));
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return out;
}

}  // namespace packice::http_request
