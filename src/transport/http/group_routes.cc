// The cache groups resource (docs/cache_groups.md): the node's GroupRegistry over HTTP.
//
//   GET    /v1/groups                 the groups and how each is configured (JSON)
//   GET    /v1/groups/{group}         a group's stats (JSON)
//   GET    /v1/groups/{group}/{key}   the value (X-Packice-Cache: hit, mirror or miss)
//   PUT    /v1/groups/{group}/{key}   Set (the body; X-Packice-TTL optional)
//   DELETE /v1/groups/{group}/{key}   Delete
//
// Group calls run on their own pool (Connection::GroupCall): a miss waits for its load.
#include <nlohmann/json.hpp>

#include "services/cache/group_registry.h"
#include "transport/http/http_common.h"
#include "transport/http/http_routes.h"

namespace packice::http_server {
namespace {

constexpr std::string_view kGroupsPath = "/v1/groups";
constexpr std::string_view kGroupsPrefix = "/v1/groups/";

Status NoGroups() {
  return NotFound(
      "this node serves no cache groups (start packiced with --group NAME=ORIGIN or a "
      "[groups.NAME] table)");
}

std::string_view SourceName(CacheSource s) {
  switch (s) {
    case CacheSource::kHit:
      return "hit";
    case CacheSource::kMirror:
      return "mirror";
    case CacheSource::kMiss:
      return "miss";
  }
  return "miss";
}

// The bodies are built outside the coroutines: GCC 12 miscompiles braced initializer lists in
// a coroutine frame.
std::string ListJson(GroupRegistry* registry) {
  nlohmann::json groups = nlohmann::json::array();
  if (registry != nullptr) {
    for (const GroupRegistry::Entry& e : registry->List()) {
      groups.push_back({{"name", e.config.name},
                        {"capacity_bytes", e.config.capacity_bytes},
                        {"policy", PolicyName(e.config.policy)},
                        {"ttl_ms", e.config.ttl.count()},
                        {"origin", e.config.origin},
                        {"load_timeout_ms", e.config.load_timeout.count()},
                        {"max_value_bytes", e.config.max_value_bytes}});
    }
  }
  return nlohmann::json{{"groups", groups}}.dump();
}

std::string StatsJson(const Group& group) {
  const GroupStats stats = group.Stats();
  nlohmann::json body = {{"group", group.name()}};
  for (const GroupStatField& f : GroupStatFields()) body[std::string(f.name)] = stats.*f.field;
  body["load_seconds_sum"] = stats.load_seconds_sum;
  return body.dump();
}

// --- /v1/groups, /v1/groups/{group} ------------------------------------------------------

template <typename Stream>
Task<bool> ServeList(Connection<Stream>& c, Parser& parser, Exchange& x, std::string_view,
                     std::string_view) {
  const Request& req = parser.get();
  const bool keep = req.keep_alive();
  if (req.method() != bhttp::verb::get) {
    co_return co_await c.Send(MethodNotAllowed(req, "GET", "use GET /v1/groups"), x, keep);
  }
  co_return co_await c.Send(Json(req.version(), bhttp::status::ok, ListJson(c.groups())), x, keep);
}

template <typename Stream>
Task<bool> ServeStats(Connection<Stream>& c, Parser& parser, Exchange& x, std::string_view path,
                      std::string_view) {
  const Request& req = parser.get();
  const bool keep = req.keep_alive();
  if (req.method() != bhttp::verb::get) {
    co_return co_await c.Send(MethodNotAllowed(req, "GET", "use GET /v1/groups/{group}"), x, keep);
  }
  if (c.groups() == nullptr) co_return co_await c.SendError(req, x, NoGroups(), keep);
  Result<std::shared_ptr<Group>> group = c.groups()->Find(path.substr(kGroupsPrefix.size()));
  if (!group.ok()) co_return co_await c.SendError(req, x, group.status(), keep);
  co_return co_await c.Send(Json(req.version(), bhttp::status::ok, StatsJson(**group)), x, keep);
}

// --- /v1/groups/{group}/{key} ------------------------------------------------------------

struct GotValue {
  CacheValue value;
  CacheSource source = CacheSource::kMiss;
};

Result<GotValue> GetValue(Group& group, const std::string& key) {
  GotValue out;
  PACKICE_ASSIGN_OR_RETURN(out.value, group.Get(key, &out.source));
  return out;
}

template <typename Stream>
Task<bool> HandleGet(Connection<Stream>& c, const Request& req, Exchange& x,
                     const std::shared_ptr<Group>& group, const std::string& key) {
  const bool keep = req.keep_alive();
  // The lambdas capture only pointers into this frame: GCC 12 destroys a coroutine's lambda
  // captures of non-trivial types twice.
  Group* g = group.get();
  const std::string* k = &key;
  Result<GotValue> got = co_await c.GroupCall([g, k] { return GetValue(*g, *k); });
  if (!got.ok() && got.status().code() == StatusCode::kTimeout) {
    // The origin (or the owner) did not answer in time: a gateway's timeout, not the client's
    // (408). X-Packice-Error still says "timeout".
    co_return co_await c.SendError(req, x, bhttp::status::gateway_timeout, got.status(), keep);
  }
  if (!got.ok()) co_return co_await c.SendError(req, x, got.status(), keep);
  TextResponse res{bhttp::status::ok, req.version()};
  res.set(bhttp::field::content_type, "application/octet-stream");
  res.set("X-Packice-Cache", std::string(SourceName(got->source)));
  res.body() = *got->value;  // the cache's bytes are shared and immutable: the body is a copy
  co_return co_await c.Send(std::move(res), x, keep);
}

// What a PUT asks, or why it is refused. Plain code: the coroutine only carries it out.
struct SetPlan {
  std::optional<TextResponse> refusal;
  uint64_t size = 0;
  std::optional<Duration> ttl;
  bool expect_continue = false;
};

SetPlan PlanSet(const Parser& parser, const GroupConfig& config) {
  const Request& req = parser.get();
  SetPlan plan;
  const auto refuse = [&](bhttp::status st, std::string message) {
    plan.refusal = ErrorResponse(req.version(), st, InvalidArgument(std::move(message)));
    return plan;
  };
  if (req.chunked() || !parser.content_length()) {
    return refuse(bhttp::status::length_required,
                  "a group value needs a Content-Length (no chunked body)");
  }
  plan.size = *parser.content_length();
  if (plan.size > config.max_value_bytes) {
    return refuse(bhttp::status::payload_too_large,
                  "a value of " + std::to_string(plan.size) + " bytes (group '" + config.name +
                      "' takes at most " + std::to_string(config.max_value_bytes) + ")");
  }
  if (auto h = req.find("X-Packice-TTL"); h != req.end()) {
    plan.ttl = http::ParseTtl(View(h->value()));
    if (!plan.ttl) {
      return refuse(bhttp::status::bad_request,
                    "X-Packice-TTL must be like 60, 500ms, 30s, 10m, 2h or 1d, not '" +
                        std::string(View(h->value()).substr(0, 64)) + "'");
    }
  }
  plan.expect_continue = http::ToLower(View(req[bhttp::field::expect])) == "100-continue";
  return plan;
}

Status SetValue(Group& group, const std::string& key, std::string* value,
                std::optional<Duration> ttl) {
  return group.Set(key, std::move(*value), ttl);
}

template <typename Stream>
Task<bool> HandlePut(Connection<Stream>& c, Parser& parser, Exchange& x,
                     const GroupRegistry::Entry& entry, const std::string& key) {
  const Request& req = parser.get();
  const bool keep = req.keep_alive();
  SetPlan plan = PlanSet(parser, entry.config);
  if (plan.refusal) co_return co_await c.Refuse(parser, x, std::move(*plan.refusal));
  if (plan.expect_continue) {
    const bool sent = co_await c.SendContinue(req);
    if (!sent) co_return false;
  }
  std::string value;
  Status read = co_await c.ReadBodyInto(plan.size, &value);
  if (!read.ok()) co_return co_await c.AbortBody(req, x, key, read);
  Group* g = entry.group.get();  // pointers into this frame only (see HandleGet)
  const std::string* k = &key;
  std::string* v = &value;
  const std::optional<Duration> ttl = plan.ttl;
  Status set = co_await c.GroupCall([g, k, v, ttl] { return SetValue(*g, *k, v, ttl); });
  if (!set.ok()) co_return co_await c.SendError(req, x, set, keep);
  co_return co_await c.Send(TextResponse{bhttp::status::no_content, req.version()}, x, keep);
}

template <typename Stream>
Task<bool> HandleDelete(Connection<Stream>& c, const Request& req, Exchange& x,
                        const std::shared_ptr<Group>& group, const std::string& key) {
  const bool keep = req.keep_alive();
  Group* g = group.get();  // pointers into this frame only (see HandleGet)
  const std::string* k = &key;
  Status s = co_await c.GroupCall([g, k] { return g->Delete(*k); });
  if (!s.ok()) co_return co_await c.SendError(req, x, s, keep);
  co_return co_await c.Send(TextResponse{bhttp::status::no_content, req.version()}, x, keep);
}

template <typename Stream>
Task<bool> ServeKey(Connection<Stream>& c, Parser& parser, Exchange& x, std::string_view path,
                    std::string_view) {
  const Request& req = parser.get();
  const bool keep = req.keep_alive();
  // A body left unread closes the connection (ServeOne), so errors before it need no draining.
  if (c.groups() == nullptr) co_return co_await c.SendError(req, x, NoGroups(), keep);
  std::string_view rest = path.substr(kGroupsPrefix.size());
  const size_t slash = rest.find('/');
  Result<GroupRegistry::Entry> entry = c.groups()->FindEntry(rest.substr(0, slash));
  if (!entry.ok()) co_return co_await c.SendError(req, x, entry.status(), keep);
  std::optional<std::string> key = http::PercentDecode(rest.substr(slash + 1));
  if (!key) {
    co_return co_await c.SendError(req, x, InvalidArgument("bad percent escape in the key"), keep);
  }
  switch (req.method()) {
    case bhttp::verb::get:
      co_return co_await HandleGet(c, req, x, entry->group, *key);
    case bhttp::verb::put:
      co_return co_await HandlePut(c, parser, x, *entry, *key);
    case bhttp::verb::delete_:
      co_return co_await HandleDelete(c, req, x, entry->group, *key);
    default:
      co_return co_await c.Send(MethodNotAllowed(req, "GET, PUT, DELETE", "use GET, PUT or DELETE"),
                                x, keep);
  }
}

bool IsList(std::string_view path) { return path == kGroupsPath; }
// "/v1/groups/{group}": no '/' after the name ("/v1/groups/" is a group with an empty name: 400).
bool IsGroup(std::string_view path) {
  return path.starts_with(kGroupsPrefix) &&
         path.find('/', kGroupsPrefix.size()) == std::string_view::npos;
}
bool IsKey(std::string_view path) {
  return path.starts_with(kGroupsPrefix) &&
         path.find('/', kGroupsPrefix.size()) != std::string_view::npos;
}

}  // namespace

Route GroupListRoute() {
  return {"/v1/groups", &IsList, /*needs_token=*/true, &ServeList<PlainStream>,
          &ServeList<TlsStream>};
}

Route GroupRoute() {
  return {"/v1/groups/{group}", &IsGroup, /*needs_token=*/true, &ServeStats<PlainStream>,
          &ServeStats<TlsStream>};
}

Route GroupKeyRoute() {
  return {"/v1/groups/{group}/{key}", &IsKey, /*needs_token=*/true, &ServeKey<PlainStream>,
          &ServeKey<TlsStream>};
}

}  // namespace packice::http_server
