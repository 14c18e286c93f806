#include "cli/kv_command.h"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <iostream>
#include <memory>

#include "cli/cli_util.h"
#include "core/parse.h"
#include "packice/kv.h"

namespace packice::cli {
namespace {

Result<std::string> ReadAll(int fd) {
  std::string data;
  char buf[1 << 16];
  while (true) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError("read stdin", errno);
    if (n == 0) return data;
    data.append(buf, static_cast<size_t>(n));
  }
}

Result<NamespaceOptions> NamespaceOptionsOf(const KvArgs& a) {
  NamespaceOptions o;
  if (a.engine == "swisstable") {
    o.engine = KvEngine::kSwissTable;
  } else if (a.engine == "memtable") {
    o.engine = KvEngine::kMemTable;
  } else {
    return InvalidArgument("--engine must be swisstable or memtable, not '" + a.engine + "'");
  }
  if (a.mode == "linear") {
    o.write_mode = KvWriteMode::kLinear;
  } else if (a.mode == "nolinear") {
    o.write_mode = KvWriteMode::kNoLinear;
  } else {
    return InvalidArgument("--mode must be linear or nolinear, not '" + a.mode + "'");
  }
  if (a.fsync == "always") {
    o.fsync = KvFsync::kAlways;
  } else if (a.fsync == "interval") {
    o.fsync = KvFsync::kInterval;
  } else if (a.fsync == "never") {
    o.fsync = KvFsync::kNever;
  } else {
    return InvalidArgument("--fsync must be always, interval or never, not '" + a.fsync + "'");
  }
  if (!a.fsync_interval.empty()) {
    PACKICE_ASSIGN_OR_RETURN(o.fsync_interval, ParseDuration(a.fsync_interval));
  }
  if (!a.default_ttl.empty()) {
    PACKICE_ASSIGN_OR_RETURN(o.default_ttl, ParseDuration(a.default_ttl));
  }
  return o;
}

const char* EngineName(KvEngine e) { return e == KvEngine::kMemTable ? "memtable" : "swisstable"; }
const char* ModeName(KvWriteMode m) { return m == KvWriteMode::kNoLinear ? "nolinear" : "linear"; }
const char* FsyncName(KvFsync f) {
  return f == KvFsync::kNever ? "never" : f == KvFsync::kInterval ? "interval" : "always";
}

// Every key of the scan `o`, page by page, to `each`; at most `limit` (0: all).
Status ForEachKey(KvStore& kv, const std::string& ns, ScanOptions o, uint64_t limit,
                  const std::function<void(const KeyValue&)>& each) {
  uint64_t seen = 0;
  o.limit = 1000;
  while (true) {
    if (limit > 0) o.limit = std::min<uint64_t>(1000, limit - seen);
    PACKICE_ASSIGN_OR_RETURN(ScanResult page, kv.Scan(ns, o));
    for (const KeyValue& k : page.kvs) each(k);
    seen += page.kvs.size();
    if (page.next.empty() || (limit > 0 && seen >= limit)) return Status::Ok();
    o.after = page.next;
  }
}

std::atomic<bool> g_interrupted{false};
extern "C" void OnInterrupt(int) { g_interrupted.store(true); }

int Watch(KvStore& kv, const KvArgs& a) {
  WatchOptions o;
  o.key = a.key;
  o.prefix = a.prefix || a.key.empty();
  o.start_revision = a.rev;
  o.prev_kv = a.prev_kv;
  auto watcher = kv.Watch(a.ns, o);
  if (!watcher.ok()) return Fail(watcher.status());
  std::signal(SIGINT, OnInterrupt);
  std::signal(SIGTERM, OnInterrupt);
  uint64_t shown = 0;
  while (!g_interrupted.load()) {
    auto events =
        (*watcher)->Next(std::chrono::steady_clock::now() + std::chrono::milliseconds(200));
    if (!events.ok()) {
      if (events.status().code() == StatusCode::kTimeout) continue;
      std::cerr << "packice: watch ended: " << events.status().ToString() << " (resume with --rev "
                << (*watcher)->resume_revision() << ")\n";
      return 1;
    }
    for (const KvEvent& e : *events) {
      Line(e.type == KvEvent::Type::kPut ? "PUT" : "DELETE");
      if (e.prev) {
        Line(e.prev->key);
        Line(e.prev->value);
      }
      Line(e.kv.key);
      if (e.type == KvEvent::Type::kPut) Line(e.kv.value);
      std::cout.flush();
      if (a.max_events > 0 && ++shown >= a.max_events) return 0;
    }
  }
  return 0;
}

}  // namespace

CLI::App* AddKvCommand(CLI::App& app, KvArgs* a) {
  CLI::App* kv = app.add_subcommand(
      "kv", "the namespaced KV (uds:// or grpc:// nodes): put, get, del, watch, ns");
  kv->require_subcommand(1);
  a->put = kv->add_subcommand("put", "store VALUE (or - for stdin) under KEY in namespace NS");
  a->get = kv->add_subcommand("get", "print KEY and its value (--prefix: every key under it)");
  a->del = kv->add_subcommand("del", "delete KEY (--prefix: every key under it); prints how many");
  a->watch = kv->add_subcommand("watch", "print KEY's changes as they happen (--prefix, --rev)");
  CLI::App* ns = kv->add_subcommand("ns", "namespaces: create, ls, rm");
  ns->require_subcommand(1);
  a->ns_create = ns->add_subcommand("create", "create namespace NS");
  a->ns_ls = ns->add_subcommand("ls", "list namespaces under PREFIX");
  a->ns_rm = ns->add_subcommand("rm", "delete namespace NS and every key in it");

  for (CLI::App* sub : {a->put, a->get, a->del, a->watch, a->ns_create, a->ns_rm}) {
    sub->add_option("ns", a->ns, "namespace path, e.g. /team/project")->required();
  }
  for (CLI::App* sub : {a->put, a->get, a->del}) {
    sub->add_option("key", a->key, "key")->required();
  }
  a->watch->add_option("key", a->key, "key (empty: every key)");
  a->put->add_option("value", a->value, "the value, - for stdin")->required();
  a->put->add_option("--ttl", a->ttl, "TTL of the key, e.g. 30s (default: the namespace's)");
  a->put->add_option("--if-rev", a->if_rev,
                     "compare-and-swap: only if the key's mod revision is this (0: only if "
                     "absent)");
  for (CLI::App* sub : {a->get, a->del, a->watch}) {
    sub->add_flag("--prefix", a->prefix, "every key starting with KEY");
  }
  a->get->add_option("--to", a->end, "with KEY: keys in [KEY, TO)");
  a->get->add_option("--limit", a->limit, "most keys to print (default all)");
  a->get->add_flag("--keys-only", a->keys_only, "print keys only");
  a->get->add_flag("--print-value-only", a->print_value_only, "print values only");
  a->watch->add_option("--rev", a->rev, "the first revision to print (default: from now)");
  a->watch->add_flag("--prev-kv", a->prev_kv, "print each change's previous key and value");
  a->watch->add_option("--max-events", a->max_events, "stop after this many events");
  a->ns_ls->add_option("prefix", a->ns, "path prefix (default all)");
  a->ns_create->add_option("--engine", a->engine, "swisstable (default) or memtable");
  a->ns_create->add_option("--mode", a->mode, "linear (default) or nolinear");
  a->ns_create->add_option("--fsync", a->fsync, "always (default), interval or never");
  a->ns_create->add_option("--fsync-interval", a->fsync_interval,
                           "with --fsync interval: how often, e.g. 10ms");
  a->ns_create->add_option("--default-ttl", a->default_ttl, "TTL of keys put without one");
  return kv;
}

int RunKvCommand(const KvArgs& a, const std::string& url, const ClientOptions& options) {
  KvClientOptions o;
  o.token = options.http_token;
  o.ca_file = options.http_ca_file;
  auto connected = ConnectKv(url, o);
  if (!connected.ok()) return Fail(connected.status());
  KvStore& kv = **connected;
  if (*a.ns_create) {
    auto no = NamespaceOptionsOf(a);
    if (!no.ok()) return Fail(no.status());
    Status s = kv.CreateNamespace(a.ns, *no);
    if (!s.ok()) return Fail(s);
    Line("OK");
    return 0;
  }
  if (*a.ns_ls) {
    auto list = kv.ListNamespaces(a.ns);
    if (!list.ok()) return Fail(list.status());
    for (const NamespaceInfo& n : *list) {
      std::cout << n.path << " engine=" << EngineName(n.options.engine)
                << " mode=" << ModeName(n.options.write_mode)
                << " fsync=" << FsyncName(n.options.fsync) << " revision=" << n.revision
                << " keys=" << n.keys << "\n";
    }
    return 0;
  }
  if (*a.ns_rm) {
    Status s = kv.DeleteNamespace(a.ns);
    if (!s.ok()) return Fail(s);
    Line("OK");
    return 0;
  }
  if (*a.put) {
    std::string value = a.value;
    if (value == "-") {
      auto in = ReadAll(0);
      if (!in.ok()) return Fail(in.status());
      value = *std::move(in);
    }
    PutOptions po;
    if (!a.ttl.empty()) {
      auto d = ParseDuration(a.ttl);
      if (!d.ok()) return Fail(d.status());
      po.ttl = *d;
    }
    if (a.if_rev >= 0) po.if_mod_revision = a.if_rev;
    auto r = kv.Put(a.ns, a.key, value, po);
    if (!r.ok()) return Fail(r.status());
    std::cout << "OK revision=" << r->revision << "\n";
    return 0;
  }
  if (*a.get) {
    auto print = [&](const KeyValue& k) {
      if (!a.print_value_only) Line(k.key);
      if (!a.keys_only) Line(k.value);
    };
    if (!a.prefix && a.end.empty()) {
      auto got = kv.Get(a.ns, a.key);
      if (!got.ok()) return Fail(got.status());
      print(*got);
      return 0;
    }
    ScanOptions so;
    if (a.prefix) {
      so.prefix = a.key;
    } else {
      so.start = a.key;
      so.end = a.end;
    }
    so.keys_only = a.keys_only;
    Status s = ForEachKey(kv, a.ns, so, a.limit, print);
    return s.ok() ? 0 : Fail(s);
  }
  if (*a.del) {
    if (!a.prefix) {
      auto r = kv.Delete(a.ns, a.key);
      if (!r.ok()) return Fail(r.status());
      Line("1");
      return 0;
    }
    // A page at a time, each page one atomic batch (the whole is not atomic).
    uint64_t deleted = 0;
    ScanOptions so;
    so.prefix = a.key;
    so.keys_only = true;
    so.limit = 1000;
    while (true) {
      auto page = kv.Scan(a.ns, so);
      if (!page.ok()) return Fail(page.status());
      if (page->kvs.empty()) break;
      std::vector<BatchOp> ops;
      for (const KeyValue& k : page->kvs) {
        BatchOp op;
        op.kind = BatchOp::Kind::kDelete;
        op.key = k.key;
        op.ignore_missing = true;
        ops.push_back(std::move(op));
      }
      auto r = kv.Commit(a.ns, ops);
      if (!r.ok()) return Fail(r.status());
      deleted += ops.size();
      if (page->next.empty()) break;
      so.after = page->next;
    }
    std::cout << deleted << "\n";
    return 0;
  }
  if (*a.watch) return Watch(kv, a);
  return Fail(InvalidArgument("kv: no subcommand"));
}

}  // namespace packice::cli
