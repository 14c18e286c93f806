#include "cli/group_command.h"

#include <unistd.h>

#include <cerrno>
#include <iostream>
#include <memory>
#include <optional>

#include "client/group_endpoint.h"
#include "core/parse.h"
#include "services/cache/group_registry.h"

namespace packice::cli {
namespace {

int Fail(const Status& s) {
  std::cerr << "packice: " << s.ToString() << "\n";
  return 1;
}

// The node's endpoint; over any other URL, what to pass instead.
Result<std::unique_ptr<GroupEndpoint>> Open(const std::string& url, const ClientOptions& options) {
  if (!ServesGroups(url)) {
    return InvalidArgument(
        "cache groups are served over HTTP and gRPC, not at " + url +
        ": pass --url http://HOST:PORT or --url grpc://HOST:PORT of a node started with --http or "
        "--grpc");
  }
  return OpenGroupEndpoint(url, options);
}

Result<std::string> ReadStdin() {
  std::string data;
  char buf[1 << 16];
  while (true) {
    ssize_t n = read(0, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError("read stdin", errno);
    if (n == 0) return data;
    data.append(buf, static_cast<size_t>(n));
  }
}

}  // namespace

CLI::App* AddGroupCommand(CLI::App& app, GroupArgs* a) {
  CLI::App* group =
      app.add_subcommand("group", "cache groups of an HTTP or gRPC node: get, set, del, stats, ls");
  group->require_subcommand(1);
  a->get =
      group->add_subcommand("get", "write GROUP's value of KEY to stdout (loads it on a miss)");
  a->set = group->add_subcommand("set", "store VALUE (or - for stdin) under KEY in GROUP");
  a->del = group->add_subcommand("del", "drop KEY from GROUP");
  a->stats = group->add_subcommand("stats", "show GROUP's counters");
  a->ls = group->add_subcommand("ls", "list the node's groups");
  for (CLI::App* sub : {a->get, a->set, a->del, a->stats}) {
    sub->add_option("group", a->group, "group name")->required();
  }
  for (CLI::App* sub : {a->get, a->set, a->del}) {
    sub->add_option("key", a->key, "key")->required();
  }
  a->set->add_option("value", a->value, "the value, - for stdin")->required();
  a->set->add_option("--ttl", a->ttl, "TTL of the value, e.g. 30s (default: the group's)");
  return group;
}

int RunGroupCommand(const GroupArgs& a, const std::string& url, const ClientOptions& options) {
  Result<std::unique_ptr<GroupEndpoint>> opened = Open(url, options);
  if (!opened.ok()) return Fail(opened.status());
  GroupEndpoint& node = **opened;
  if (*a.get) {
    Result<std::string> v = node.Get(a.group, a.key);
    if (!v.ok()) return Fail(v.status());
    std::cout.write(v->data(), static_cast<std::streamsize>(v->size()));
    std::cout.flush();
    return 0;
  }
  if (*a.set) {
    std::optional<Duration> ttl;
    if (!a.ttl.empty()) {
      Result<Duration> d = ParseDuration(a.ttl);
      if (!d.ok()) return Fail(d.status());
      ttl = *d;
    }
    std::string value = a.value;
    if (value == "-") {
      Result<std::string> in = ReadStdin();
      if (!in.ok()) return Fail(in.status());
      value = *std::move(in);
    }
    if (Status s = node.Set(a.group, a.key, value, ttl); !s.ok()) return Fail(s);
    std::cerr << "stored " << a.key << " in " << a.group << " (" << value.size() << " bytes)\n";
    return 0;
  }
  if (*a.del) {
    Status s = node.Delete(a.group, a.key);
    return s.ok() ? 0 : Fail(s);
  }
  if (*a.stats) {
    Result<GroupStats> st = node.Stats(a.group);
    if (!st.ok()) return Fail(st.status());
    std::cout << "group: " << a.group << "\n";
    for (const GroupStatField& f : GroupStatFields()) {
      std::cout << f.name << ": " << (*st).*f.field << "\n";
    }
    return 0;
  }
  Result<std::vector<GroupListing>> list = node.List();
  if (!list.ok()) return Fail(list.status());
  for (const GroupListing& g : *list) {
    std::cout << g.name << "\tcapacity=" << g.capacity_bytes << "\tpolicy=" << g.policy
              << "\tttl_ms=" << g.ttl.count() << "\torigin=" << (g.origin.empty() ? "-" : g.origin)
              << "\n";
  }
  return 0;
}

}  // namespace packice::cli
