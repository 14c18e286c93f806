// JSON text from outside the process, bounded: a parse refuses values nested deeper than
// kMaxJsonDepth (the tree is never built that deep, so its dump and destruction, which
// recurse, stay shallow), and a dump replaces bytes that are not UTF-8 instead of throwing.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace packice {

inline constexpr int kMaxJsonDepth = 64;

// The value of `text`; a discarded value (is_discarded()) when it is not JSON, or nests
// objects and arrays deeper than `max_depth` (then *too_deep is set).
inline nlohmann::json ParseJson(std::string_view text, int max_depth = kMaxJsonDepth,
                                bool* too_deep = nullptr) {
  bool deep = false;
  nlohmann::json j = nlohmann::json::parse(
      text,
      [&deep, max_depth](int depth, nlohmann::json::parse_event_t event, nlohmann::json&) {
        if (depth >= max_depth && (event == nlohmann::json::parse_event_t::object_start ||
                                   event == nlohmann::json::parse_event_t::array_start)) {
          deep = true;
          return false;  // skipped: not built
        }
        return true;
      },
      /*allow_exceptions=*/false);
  if (too_deep != nullptr) *too_deep = deep;
  if (deep) return nlohmann::json(nlohmann::json::value_t::discarded);
  return j;
}

// Compact JSON text; bytes that are not UTF-8 become U+FFFD.
inline std::string DumpJson(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace packice
