#include "core/parse.h"

#include <charconv>
#include <limits>
#include <string>

namespace packice {
namespace {

// Splits "123abc" into 123 and "abc". Errors on no digits or overflow.
Result<std::pair<uint64_t, std::string_view>> SplitNumber(std::string_view text,
                                                          std::string_view what) {
  uint64_t n = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc() || end == text.data()) {
    return InvalidArgument("invalid " + std::string(what) + " '" + std::string(text) + "'");
  }
  return std::make_pair(n, text.substr(end - text.data()));
}

}  // namespace

Result<uint64_t> ParseBytes(std::string_view text) {
  PACKICE_ASSIGN_OR_RETURN(auto parts, SplitNumber(text, "size"));
  auto [n, unit] = parts;
  if (unit.ends_with("iB"))
    unit.remove_suffix(2);
  else if (unit.ends_with("B"))
    unit.remove_suffix(1);
  int shift = 0;
  if (unit.empty())
    shift = 0;
  else if (unit == "K" || unit == "k")
    shift = 10;
  else if (unit == "M" || unit == "m")
    shift = 20;
  else if (unit == "G" || unit == "g")
    shift = 30;
  else if (unit == "T" || unit == "t")
    shift = 40;
  else
    return InvalidArgument("invalid size unit in '" + std::string(text) + "' (use K, M, G, T)");
  if (shift > 0 && n > (std::numeric_limits<uint64_t>::max() >> shift)) {
    return InvalidArgument("size '" + std::string(text) + "' is too large");
  }
  return n << shift;
}

Result<Duration> ParseDuration(std::string_view text) {
  PACKICE_ASSIGN_OR_RETURN(auto parts, SplitNumber(text, "duration"));
  auto [n, unit] = parts;
  uint64_t ms_per = 0;
  if (unit.empty() || unit == "s")
    ms_per = 1000;
  else if (unit == "ms")
    ms_per = 1;
  else if (unit == "m")
    ms_per = 60'000;
  else if (unit == "h")
    ms_per = 3'600'000;
  else if (unit == "d")
    ms_per = 86'400'000;
  else
    return InvalidArgument("invalid duration unit in '" + std::string(text) +
                           "' (use ms, s, m, h, d)");
  if (n > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / ms_per) {
    return InvalidArgument("duration '" + std::string(text) + "' is too large");
  }
  return Duration(static_cast<int64_t>(n * ms_per));
}

}  // namespace packice
