#include "server/config.h"

#include <toml++/toml.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <optional>
#include <sstream>
#include <vector>

#include "core/io.h"
#include "core/parse.h"
#include "services/cache/group_registry.h"
#include "services/cache/http_origin.h"

namespace packice {
namespace {

constexpr uint64_t kNoMax = std::numeric_limits<uint64_t>::max();

// "text" in double quotes, with quotes, backslashes and control characters escaped; a long one
// is cut.
std::string Quote(std::string_view text) {
  constexpr size_t kMax = 64;
  std::string out = "\"";
  for (char c : text.substr(0, kMax)) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", static_cast<unsigned char>(c));
      out += hex;
    } else {
      out += c;
    }
  }
  out += text.size() > kMax ? "\"..." : "\"";
  return out;
}

// How a value reads in a message: strings quoted, numbers and booleans as written, other types
// by name.
std::string Describe(const toml::node& node) {
  std::ostringstream out;
  switch (node.type()) {
    case toml::node_type::string:
      out << Quote(node.as_string()->get());
      break;
    case toml::node_type::integer:
      out << node.as_integer()->get();
      break;
    case toml::node_type::floating_point:
      out << *node.as_floating_point();
      break;
    case toml::node_type::boolean:
      out << (node.as_boolean()->get() ? "true" : "false");
      break;
    case toml::node_type::table:
      out << "a table";
      break;
    case toml::node_type::array:
      out << "an array";
      break;
    default:
      out << "a " << node.type();  // date, time, date-time
      break;
  }
  return out.str();
}

// One key of the file being applied: its dotted name, its value, and where they are.
class Field {
 public:
  Field(const std::string& file, std::string name, const toml::node& node,
        toml::source_position key_pos)
      : file_(&file), name_(std::move(name)), node_(&node), key_pos_(key_pos) {}

  const std::string& name() const { return name_; }
  const toml::node& node() const { return *node_; }
  // For a key of a [groups.NAME] table: NAME (group names may hold dots, so it is not parsed
  // back out of name()); else empty.
  const std::string& group() const { return group_; }
  void set_group(std::string group) { group_ = std::move(group); }
  const toml::source_position& key_pos() const { return key_pos_; }

  // "FILE:LINE:COLUMN: NAME: what", at the value.
  Status Error(std::string_view what) const { return ErrorAt(node_->source().begin, what); }
  // The same at the key (for a key that should not be there at all).
  Status KeyError(std::string_view what) const { return ErrorAt(key_pos_, what); }

  // "expected <what>, got <the value>".
  Status Expected(std::string_view what) const {
    return Error("expected " + std::string(what) + ", got " + Describe(*node_));
  }

  // A string; empty ones are refused (a key left out is how to say "none").
  Status String(std::string* out) const {
    const toml::value<std::string>* s = node_->as_string();
    if (s == nullptr) return Expected("a string");
    if (s->get().empty()) return Error("must not be empty (leave the key out instead)");
    *out = s->get();
    return Status::Ok();
  }

  // One of `allowed`.
  Status OneOf(std::initializer_list<std::string_view> allowed, std::string* out) const {
    std::string list;
    for (std::string_view a : allowed) {
      if (!list.empty()) list += ", ";
      list += a;
    }
    const toml::value<std::string>* s = node_->as_string();
    if (s == nullptr || std::find(allowed.begin(), allowed.end(), s->get()) == allowed.end()) {
      return Expected("one of " + list);
    }
    *out = s->get();
    return Status::Ok();
  }

  // true or false.
  Status Bool(bool* out) const {
    const toml::value<bool>* b = node_->as_boolean();
    if (b == nullptr) return Expected("true or false");
    *out = b->get();
    return Status::Ok();
  }

  // An integer in [min, max].
  template <typename T>
  Status Integer(int64_t min, int64_t max, T* out) const {
    const toml::value<int64_t>* i = node_->as_integer();
    if (i == nullptr || i->get() < min || i->get() > max) {
      return Expected("an integer from " + std::to_string(min) + " to " + std::to_string(max));
    }
    *out = static_cast<T>(i->get());
    return Status::Ok();
  }

  // A size: a string for ParseBytes or an integer of bytes; in [min, max].
  Status Bytes(uint64_t min, uint64_t max, uint64_t* out) const {
    std::optional<uint64_t> n;
    if (const auto* s = node_->as_string()) {
      if (auto r = ParseBytes(s->get()); r.ok()) n = *r;
    } else if (const auto* i = node_->as_integer(); i != nullptr && i->get() >= 0) {
      n = static_cast<uint64_t>(i->get());
    }
    if (!n) return Expected(R"(a size like "512M" (K, M, G, T) or an integer of bytes)");
    if (*n < min || *n > max) {
      if (max == kNoMax && min == 1) return Error("must be more than 0");
      if (max == kNoMax) {
        return Error("must be at least " + std::to_string(min) + " bytes, got " + Describe(*node_));
      }
      return Error("must be from " + std::to_string(min) + " to " + std::to_string(max) +
                   " bytes, got " + Describe(*node_));
    }
    *out = *n;
    return Status::Ok();
  }

  // A duration: a string for ParseDuration or an integer of seconds; more than zero when
  // `positive`.
  Status Dur(bool positive, Duration* out) const {
    std::optional<Duration> d;
    if (const auto* s = node_->as_string()) {
      if (auto r = ParseDuration(s->get()); r.ok()) d = *r;
    } else if (const auto* i = node_->as_integer();
               i != nullptr && i->get() >= 0 &&
               i->get() <= std::numeric_limits<int64_t>::max() / 1000) {
      d = std::chrono::seconds(i->get());
    }
    if (!d) return Expected(R"(a duration like "30s" (ms, s, m, h, d) or an integer of seconds)");
    if (positive && d->count() == 0) return Error("must be more than 0");
    *out = *d;
    return Status::Ok();
  }

 private:
  Status ErrorAt(const toml::source_position& pos, std::string_view what) const {
    std::string where = *file_;
    if (pos) where += ":" + std::to_string(pos.line) + ":" + std::to_string(pos.column);
    return InvalidArgument(where + ": " + name_ + ": " + std::string(what));
  }

  const std::string* file_;
  std::string name_;
  std::string group_;
  const toml::node* node_;
  toml::source_position key_pos_;
};

// What a file has set so far: the options, and the keys checked against each other at the end.
struct Loaded {
  DaemonOptions options;
  std::optional<Field> token;
  std::optional<Field> token_file;
};

// A bearer token goes into an HTTP header as written: printable ASCII, no spaces.
Status CheckToken(const Field& f, std::string_view token) {
  if (token.empty()) return f.Error("the token is empty");
  for (char c : token) {
    if (c < 0x21 || c > 0x7e) {
      return f.Error("a token is printable ASCII without spaces or control characters");
    }
  }
  return Status::Ok();
}

// The token in the file `f` names: its one line (the newline editors add is not part of it).
Status ReadTokenFile(const Field& f, std::string* token) {
  std::string path;
  PACKICE_RETURN_IF_ERROR(f.String(&path));
  Result<std::string> text = ReadSmallFile(path);
  if (!text.ok()) return f.Error(text.status().message());
  *token = *std::move(text);
  while (!token->empty() && (token->back() == '\n' || token->back() == '\r')) token->pop_back();
  return CheckToken(f, *token);
}

// "host:port": a port from 0 to 65535 after the last ':', an IPv6 host in brackets.
Status CheckListen(const Field& f, const std::string& listen) {
  size_t colon = listen.rfind(':');
  bool ok = colon != std::string::npos;
  if (ok) {
    std::string_view host(listen.data(), colon);
    std::string_view port(listen.data() + colon + 1);
    ok = !port.empty() && port.size() <= 5 &&
         std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }) &&
         std::stoi(std::string(port)) <= 65535;
    if (host.find(':') != std::string_view::npos) {
      ok = ok && host.size() > 2 && host.front() == '[' && host.back() == ']';
    }
  }
  if (!ok) return f.Expected(R"("host:port" like "127.0.0.1:8080", "[::1]:8080" or ":8080")");
  return Status::Ok();
}

// The schema: every key the file may hold, by dotted name, and how it is applied. A key's section
// is the part of its name before the dot; keys without one are top level.
struct Key {
  std::string_view name;
  Status (*apply)(const Field& f, Loaded& c);
};

const Key kSchema[] = {
    {"store",
     [](const Field& f, Loaded& c) {
       return f.OneOf({"tiered", "memory", "disk", "sharedfs"}, &c.options.store);
     }},
    {"socket", [](const Field& f, Loaded& c) { return f.String(&c.options.socket_path); }},
    {"io_threads",
     [](const Field& f, Loaded& c) { return f.Integer(1, 64, &c.options.io_threads); }},
    {"log_level",
     [](const Field& f, Loaded& c) {
       return f.OneOf({"trace", "debug", "info", "warn", "error", "critical", "off"},
                      &c.options.log_level);
     }},

    {"memory.capacity",
     [](const Field& f, Loaded& c) {
       return f.Bytes(1, kNoMax, &c.options.memory.capacity_bytes);
     }},
    {"memory.pool",
     [](const Field& f, Loaded& c) { return f.Bytes(0, kNoMax, &c.options.memory.pool_bytes); }},
    {"memory.huge_pages",
     [](const Field& f, Loaded& c) {
       std::string mode;
       PACKICE_RETURN_IF_ERROR(f.OneOf({"auto", "off"}, &mode));
       c.options.memory.huge_pages = mode == "auto";
       return Status::Ok();
     }},

    {"disk.dir", [](const Field& f, Loaded& c) { return f.String(&c.options.disk.dir); }},
    {"disk.capacity",
     [](const Field& f, Loaded& c) { return f.Bytes(1, kNoMax, &c.options.disk.capacity_bytes); }},

    {"tiered.eviction",
     [](const Field& f, Loaded& c) {
       return f.OneOf({"lru", "lru2"}, &c.options.tiered.policy);
     }},
    {"tiered.promote_after",
     [](const Field& f, Loaded& c) {
       return f.Integer(0, std::numeric_limits<uint32_t>::max(),
                        &c.options.tiered.promote_after_hits);
     }},
    {"tiered.write_through",
     [](const Field& f, Loaded& c) { return f.Bool(&c.options.tiered.write_through); }},

    {"sharedfs.gc_interval",
     [](const Field& f, Loaded& c) { return f.Dur(true, &c.options.sharedfs.gc_interval); }},
    {"sharedfs.abandoned_after",
     [](const Field& f, Loaded& c) { return f.Dur(true, &c.options.sharedfs.abandoned_after); }},

    // The memory peer's TTLs; MakeNodePeer hands them to the disk and sharedfs peers too.
    {"ttl.default",
     [](const Field& f, Loaded& c) { return f.Dur(false, &c.options.memory.default_object_ttl); }},
    {"ttl.lease",
     [](const Field& f, Loaded& c) { return f.Dur(true, &c.options.memory.default_lease_ttl); }},
    {"ttl.max_lease",
     [](const Field& f, Loaded& c) { return f.Dur(true, &c.options.memory.max_lease_ttl); }},

    {"http.listen",
     [](const Field& f, Loaded& c) {
       PACKICE_RETURN_IF_ERROR(f.String(&c.options.http.listen));
       return CheckListen(f, c.options.http.listen);
     }},
    {"http.token",
     [](const Field& f, Loaded& c) {
       PACKICE_RETURN_IF_ERROR(f.String(&c.options.http.bearer_token));
       c.token = f;
       return CheckToken(f, c.options.http.bearer_token);
     }},
    {"http.token_file",
     [](const Field& f, Loaded& c) {
       c.token_file = f;
       return ReadTokenFile(f, &c.options.http.bearer_token);
     }},
    {"http.tls_cert",
     [](const Field& f, Loaded& c) { return f.String(&c.options.http.tls_cert_file); }},
    {"http.tls_key",
     [](const Field& f, Loaded& c) { return f.String(&c.options.http.tls_key_file); }},
    {"http.max_connections",
     [](const Field& f, Loaded& c) {
       return f.Integer(1, 1'000'000, &c.options.http.max_connections);
     }},
    {"http.max_header",
     [](const Field& f, Loaded& c) {
       uint64_t n = 0;
       PACKICE_RETURN_IF_ERROR(f.Bytes(1 << 10, 1 << 20, &n));
       c.options.http.max_header_bytes = n;
       return Status::Ok();
     }},
    {"http.max_body",
     [](const Field& f, Loaded& c) { return f.Bytes(0, kNoMax, &c.options.http.max_body_bytes); }},
    {"http.idle_timeout",
     [](const Field& f, Loaded& c) { return f.Dur(true, &c.options.http.idle_timeout); }},
    {"http.io_timeout",
     [](const Field& f, Loaded& c) { return f.Dur(true, &c.options.http.io_timeout); }},
    {"grpc.listen",
     [](const Field& f, Loaded& c) {
       PACKICE_RETURN_IF_ERROR(f.String(&c.options.grpc.listen));
       return CheckListen(f, c.options.grpc.listen);
     }},
    {"grpc.max_threads",
     [](const Field& f, Loaded& c) { return f.Integer(1, 4096, &c.options.grpc.max_threads); }},
    {"queue.enabled", [](const Field& f, Loaded& c) { return f.Bool(&c.options.queue.enabled); }},
    {"queue.dir", [](const Field& f, Loaded& c) { return f.String(&c.options.queue.dir); }},
    {"kv.enabled", [](const Field& f, Loaded& c) { return f.Bool(&c.options.kv.enabled); }},
    {"kv.dir", [](const Field& f, Loaded& c) { return f.String(&c.options.kv.dir); }},
    {"kv.threads",
     [](const Field& f, Loaded& c) { return f.Integer(1, 256, &c.options.kv.threads); }},
    {"cas.enabled", [](const Field& f, Loaded& c) { return f.Bool(&c.options.cas.enabled); }},
    {"cas.dir", [](const Field& f, Loaded& c) { return f.String(&c.options.cas.dir); }},
    {"cas.capacity",
     [](const Field& f, Loaded& c) { return f.Bytes(1, kNoMax, &c.options.cas.capacity_bytes); }},
    {"cas.memory",
     [](const Field& f, Loaded& c) { return f.Bytes(0, kNoMax, &c.options.cas.memory_bytes); }},
    {"cas.memory_max_blob",
     [](const Field& f, Loaded& c) {
       return f.Bytes(0, kNoMax, &c.options.cas.memory_max_blob_bytes);
     }},
    {"cas.memory_ttl",
     [](const Field& f, Loaded& c) { return f.Dur(true, &c.options.cas.memory_ttl); }},
    {"cas.memory_idle_ttl",
     [](const Field& f, Loaded& c) { return f.Dur(true, &c.options.cas.memory_idle_ttl); }},
    {"cas.remote",
     [](const Field& f, Loaded& c) {
       PACKICE_RETURN_IF_ERROR(f.String(&c.options.cas.remote));
       const std::string& r = c.options.cas.remote;
       if (r.empty() || r == "none" || r.starts_with("grpc://") || r.starts_with("grpcs://")) {
         return Status::Ok();
       }
       return f.Error("expected \"grpc://HOST:PORT\", \"grpcs://HOST:PORT\" or \"none\", got \"" +
                      r + "\"");
     }},
    {"cas.remote_token_file",
     [](const Field& f, Loaded& c) { return ReadTokenFile(f, &c.options.cas.remote_token); }},
    {"cas.remote_ca_file",
     [](const Field& f, Loaded& c) { return f.String(&c.options.cas.remote_ca_file); }},
    {"cluster.name", [](const Field& f, Loaded& c) { return f.String(&c.options.cluster.name); }},
    {"cluster.etcd", [](const Field& f, Loaded& c) { return f.String(&c.options.cluster.etcd); }},
    {"cluster.advertise",
     [](const Field& f, Loaded& c) {
       PACKICE_RETURN_IF_ERROR(f.String(&c.options.cluster.advertise));
       return CheckListen(f, c.options.cluster.advertise);
     }},
    {"cluster.node_id",
     [](const Field& f, Loaded& c) { return f.String(&c.options.cluster.node_id); }},
    {"cluster.lease_ttl",
     [](const Field& f, Loaded& c) {
       Duration d{0};
       PACKICE_RETURN_IF_ERROR(f.Dur(true, &d));
       c.options.cluster.lease_ttl = std::chrono::ceil<std::chrono::seconds>(d);
       return Status::Ok();
     }},
    {"cluster.copy_capacity",
     [](const Field& f, Loaded& c) {
       return f.Bytes(1, kNoMax, &c.options.cluster.copy_capacity_bytes);
     }},
    {"cluster.mirror_min_rate",
     [](const Field& f, Loaded& c) {
       int64_t rate = 0;
       PACKICE_RETURN_IF_ERROR(f.Integer(1, 1'000'000'000, &rate));
       c.options.cluster.mirror_min_rate = static_cast<double>(rate);
       return Status::Ok();
     }},
    {"cluster.mirror_ttl",
     [](const Field& f, Loaded& c) { return f.Dur(true, &c.options.cluster.mirror_ttl); }},
};

// [groups.NAME] tables: one cache group each. Their keys are looked up as "groups.*.KEY"; the
// group's own name is Field::group().
constexpr std::string_view kGroupsSection = "groups";

// The group `f` belongs to, created with the defaults at its first key (or its table).
Result<GroupConfig*> GroupOf(const Field& f, Loaded& c) {
  if (Status s = ValidateGroupName(f.group()); !s.ok()) return f.KeyError(s.message());
  for (GroupConfig& g : c.options.groups) {
    if (g.name == f.group()) return &g;
  }
  c.options.groups.push_back(GroupConfig{.name = f.group()});
  return &c.options.groups.back();
}

template <typename F>
Status ApplyToGroup(const Field& f, Loaded& c, F apply) {
  PACKICE_ASSIGN_OR_RETURN(GroupConfig * g, GroupOf(f, c));
  return apply(*g);
}

const Key kGroupKeys[] = {
    // The table itself: declares the group, even when it sets nothing.
    {"groups.*",
     [](const Field& f, Loaded& c) {
       return ApplyToGroup(f, c, [](GroupConfig&) { return Status::Ok(); });
     }},
    {"groups.*.capacity",
     [](const Field& f, Loaded& c) {
       return ApplyToGroup(f, c,
                           [&](GroupConfig& g) { return f.Bytes(1, kNoMax, &g.capacity_bytes); });
     }},
    {"groups.*.policy",
     [](const Field& f, Loaded& c) {
       return ApplyToGroup(f, c, [&](GroupConfig& g) {
         std::string policy;
         PACKICE_RETURN_IF_ERROR(f.OneOf({"lru", "lru2"}, &policy));
         g.policy = policy == "lru" ? CachePolicy::kLru : CachePolicy::kLru2;
         return Status::Ok();
       });
     }},
    {"groups.*.ttl",
     [](const Field& f, Loaded& c) {
       return ApplyToGroup(f, c, [&](GroupConfig& g) { return f.Dur(false, &g.ttl); });
     }},
    {"groups.*.origin",
     [](const Field& f, Loaded& c) {
       return ApplyToGroup(f, c, [&](GroupConfig& g) {
         PACKICE_RETURN_IF_ERROR(f.String(&g.origin));
         if (Status s = ValidateOriginTemplate(g.origin); !s.ok()) return f.Error(s.message());
         return Status::Ok();
       });
     }},
    {"groups.*.load_timeout",
     [](const Field& f, Loaded& c) {
       return ApplyToGroup(f, c, [&](GroupConfig& g) { return f.Dur(true, &g.load_timeout); });
     }},
    {"groups.*.max_value",
     [](const Field& f, Loaded& c) {
       return ApplyToGroup(f, c, [&](GroupConfig& g) {
         return f.Bytes(1, kMaxGroupValueBytes, &g.max_value_bytes);
       });
     }},
};

// The schema name of `f`: "groups.*.KEY" for a group's key.
std::string SchemaName(const Field& f) {
  if (f.group().empty()) return f.name();
  const std::string prefix = std::string(kGroupsSection) + "." + f.group();
  return std::string(kGroupsSection) + ".*" + f.name().substr(prefix.size());
}

const Key* FindKey(const Field& f) {
  const std::string name = SchemaName(f);
  for (const Key& k : kSchema) {
    if (k.name == name) return &k;
  }
  for (const Key& k : kGroupKeys) {
    if (k.name == name) return &k;
  }
  return nullptr;
}

bool Before(const toml::source_position& a, const toml::source_position& b) {
  return a.line != b.line ? a.line < b.line : a.column < b.column;
}

bool IsSection(std::string_view name) {
  return std::any_of(std::begin(kSchema), std::end(kSchema), [&](const Key& k) {
    return k.name.size() > name.size() && k.name.starts_with(name) && k.name[name.size()] == '.';
  });
}

// Edit distance, for "did you mean".
size_t Distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

// "unknown key" or "unknown section", with the nearest known name when it is a likely typo.
Status Unknown(const Field& f) {
  if (!f.group().empty()) {  // a key of [groups.NAME]: the group keys, by their short names
    const std::string key = f.name().substr(f.name().rfind('.') + 1);
    std::string list, best;
    size_t best_distance = 3;
    for (const Key& k : kGroupKeys) {
      std::string_view name = k.name.substr(k.name.rfind('.') + 1);
      if (name == "*") continue;
      list += (list.empty() ? "" : ", ") + std::string(name);
      if (size_t d = Distance(key, name); d < best_distance) {
        best = std::string(name);
        best_distance = d;
      }
    }
    std::string what = "unknown key";
    if (!best.empty()) what += " (did you mean " + best + "?)";
    return f.KeyError(what + "; a group takes " + list);
  }
  const bool section = f.node().is_table();
  std::vector<std::string_view> known;
  for (const Key& k : kSchema) {
    std::string_view name = k.name;
    if (section) name = name.substr(0, name.find('.'));  // sections, and top-level keys
    if (std::find(known.begin(), known.end(), name) == known.end()) known.push_back(name);
  }
  known.push_back(kGroupsSection);
  std::string_view best;
  size_t best_distance = 3;  // two edits at most
  for (std::string_view k : known) {
    if (size_t d = Distance(f.name(), k); d < best_distance) {
      best = k;
      best_distance = d;
    }
  }
  std::string what = section ? "unknown section" : "unknown key";
  if (!best.empty()) what += " (did you mean " + std::string(best) + "?)";
  return f.KeyError(what);
}

}  // namespace

Status LoadConfigString(std::string_view text, const std::string& source_name, DaemonOptions* out) {
  toml::table doc;
  try {
    doc = toml::parse(text, source_name);
  } catch (const toml::parse_error& e) {
    const toml::source_position& pos = e.source().begin;
    std::string where = source_name;
    if (pos) where += ":" + std::to_string(pos.line) + ":" + std::to_string(pos.column);
    return InvalidArgument(where + ": " + std::string(e.description()));
  }

  // Every key of the file with its dotted name, then applied in the order they are written, so
  // that the first error reported is the first one in the file.
  std::vector<Field> fields;
  for (const auto& [key, node] : doc) {
    if (key.str() == kGroupsSection && node.is_table()) {
      // [groups.NAME] tables, each a group: "groups.NAME" (the table) and "groups.NAME.KEY".
      for (const auto& [name, table] : *node.as_table()) {
        const std::string prefix = std::string(key.str()) + "." + std::string(name.str());
        Field group(source_name, prefix, table, name.source().begin);
        group.set_group(std::string(name.str()));
        if (!table.is_table()) {
          return group.Expected("a table ([" + prefix + "]) of the group's keys");
        }
        fields.push_back(group);
        for (const auto& [sub, value] : *table.as_table()) {
          Field f(source_name, prefix + "." + std::string(sub.str()), value, sub.source().begin);
          f.set_group(std::string(name.str()));
          fields.push_back(std::move(f));
        }
      }
    } else if (node.is_table() && IsSection(key.str())) {
      for (const auto& [sub, value] : *node.as_table()) {
        fields.emplace_back(source_name, std::string(key.str()) + "." + std::string(sub.str()),
                            value, sub.source().begin);
      }
    } else {
      fields.emplace_back(source_name, std::string(key.str()), node, key.source().begin);
    }
  }
  std::stable_sort(fields.begin(), fields.end(),
                   [](const Field& a, const Field& b) { return Before(a.key_pos(), b.key_pos()); });

  Loaded loaded{.options = *out};
  for (const Field& f : fields) {
    const Key* key = FindKey(f);
    if (key == nullptr) {
      // A section given as a value ("memory = 5") is a wrong type, not an unknown name.
      if (IsSection(f.name())) return f.Expected("a table ([" + f.name() + "])");
      if (f.name() == kGroupsSection) {
        return f.Expected("a table of groups ([groups.NAME] tables)");
      }
      return Unknown(f);
    }
    PACKICE_RETURN_IF_ERROR(key->apply(f, loaded));
  }
  if (loaded.token && loaded.token_file) {
    const Field& later = Before(loaded.token->key_pos(), loaded.token_file->key_pos())
                             ? *loaded.token_file
                             : *loaded.token;
    return later.Error("set http.token or http.token_file, not both");
  }
  *out = std::move(loaded.options);
  return Status::Ok();
}

Status LoadConfigFile(const std::string& path, DaemonOptions* out) {
  PACKICE_ASSIGN_OR_RETURN(std::string text, ReadSmallFile(path));
  return LoadConfigString(text, path, out);
}

}  // namespace packice
