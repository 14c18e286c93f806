// packiced: the Packice node.

#include <CLI/CLI.hpp>
#include <iostream>

#include "core/malloc_tuning.h"
#include "core/parse.h"
#include "packice/client.h"
#include "server/config.h"
#include "server/daemon.h"
#include "services/cache/http_origin.h"

namespace {

// A CLI11 validator-and-converter for sizes and durations, failing with the parser's message.
template <typename T, typename F>
CLI::Option* AddParsed(CLI::App& app, const std::string& name, T* out, F parse,
                       const std::string& help) {
  return app.add_option_function<std::string>(
      name,
      [out, parse, name](const std::string& text) {
        auto r = parse(text);
        if (!r.ok()) throw CLI::ValidationError(name, std::string(r.status().message()));
        *out = *r;
      },
      help);
}

// "NAME=ORIGIN_TEMPLATE" of --group onto `groups`: a new group with the defaults, or a group of
// the config file given (another) origin. An empty ORIGIN is a group without one.
packice::Status ApplyGroupFlag(const std::string& flag, std::vector<packice::GroupConfig>* groups) {
  const size_t eq = flag.find('=');
  if (eq == std::string::npos) {
    return packice::InvalidArgument(
        "--group wants NAME=ORIGIN_TEMPLATE (e.g. "
        "users=http://127.0.0.1:8000/users/{key}), got '" +
        flag + "'");
  }
  packice::GroupConfig config{.name = flag.substr(0, eq), .origin = flag.substr(eq + 1)};
  PACKICE_RETURN_IF_ERROR(packice::ValidateGroupName(config.name));
  if (!config.origin.empty())
    PACKICE_RETURN_IF_ERROR(packice::ValidateOriginTemplate(config.origin));
  for (packice::GroupConfig& g : *groups) {
    if (g.name == config.name) {
      g.origin = config.origin;
      return packice::Status::Ok();
    }
  }
  groups->push_back(std::move(config));
  return packice::Status::Ok();
}

}  // namespace

int main(int argc, char** argv) {
  packice::TuneMallocForLargeBlocks();
  packice::DaemonOptions opt;
  std::string config_path;
  CLI::App app{"packiced: the Packice cache and storage node"};
  app.add_option("--config", config_path,
                 "TOML file of settings (see examples/packice.toml); flags override it");
  app.add_option("--socket", opt.socket_path,
                 "Unix socket to listen on (default " + packice::DefaultSocketPath() + ")");
  app.add_option("--store", opt.store,
                 "tiered (memory in front of disk, default), memory (a cache), disk (durable), "
                 "or sharedfs (--data-dir shared by several nodes)")
      ->check(CLI::IsMember({"tiered", "memory", "disk", "sharedfs"}));
  AddParsed(app, "--capacity", &opt.memory.capacity_bytes, packice::ParseBytes,
            "bytes of objects held in memory, e.g. 512M, 4G (default 1G)");
  app.add_option("--data-dir", opt.disk.dir,
                 "directory of disk objects (default " + packice::DefaultDataDir() + ")");
  AddParsed(app, "--disk-capacity", &opt.disk.capacity_bytes, packice::ParseBytes,
            "bytes of objects kept on disk (default 16G)");
  AddParsed(app, "--gc-interval", &opt.sharedfs.gc_interval, packice::ParseDuration,
            "sharedfs: how often to collect expired and abandoned objects (default 60s)");
  AddParsed(app, "--abandoned-after", &opt.sharedfs.abandoned_after, packice::ParseDuration,
            "sharedfs: an unsealed object untouched this long by a dead writer is removed "
            "(default 30s)");
  app.add_option("--promote-after", opt.tiered.promote_after_hits,
                 "copy a disk object back to memory after this many reads; 0 never (default 2)");
  app.add_flag("--write-through", opt.tiered.write_through,
               "tiered: a seal returns once the object is durable on disk too (default: memory "
               "is a cache, saved to disk on a clean stop)");
  app.add_option("--eviction", opt.tiered.policy, "lru or lru2: which objects leave memory first")
      ->check(CLI::IsMember({"lru", "lru2"}));
  app.add_option_function<std::string>(
         "--huge-pages", [&opt](const std::string& v) { opt.memory.huge_pages = v == "auto"; },
         "auto (2 MiB pages for large objects where the kernel allows it, default) or off")
      ->check(CLI::IsMember({"auto", "off"}));
  AddParsed(app, "--pool", &opt.memory.pool_bytes, packice::ParseBytes,
            "freed shared memory kept for reuse (default 1G)");
  AddParsed(app, "--default-ttl", &opt.memory.default_object_ttl, packice::ParseDuration,
            "object TTL when a client names none; 0 = no expiry (default 0)");
  AddParsed(app, "--lease-ttl", &opt.memory.default_lease_ttl, packice::ParseDuration,
            "lease TTL when a client names none (default 30s)");
  AddParsed(app, "--max-lease-ttl", &opt.memory.max_lease_ttl, packice::ParseDuration,
            "longest lease a client may ask for (default 1h)");
  app.add_option("--io-threads", opt.io_threads, "threads serving sockets (default 1)")
      ->check(CLI::Range(1, 64));
  app.add_option("--log-level", opt.log_level, "trace, debug, info, warn, error (default info)");
  app.add_option("--http", opt.http.listen,
                 "also serve HTTP on host:port, e.g. 127.0.0.1:8080 (default: no HTTP)");
  app.add_option("--http-token", opt.http.bearer_token,
                 "HTTP and gRPC requests need 'Authorization: Bearer TOKEN' (visible in ps: prefer "
                 "[http] token_file in the config file)");
  app.add_option("--grpc", opt.grpc.listen,
                 "also serve gRPC on host:port, e.g. 127.0.0.1:9090 (default: no gRPC); it takes "
                 "the HTTP token and TLS files");
  app.add_option("--cluster", opt.cluster.name,
                 "join the cluster NAME: nodes find each other in etcd (needs --grpc, --etcd)");
  app.add_option("--etcd", opt.cluster.etcd,
                 "etcd client URLs, comma-separated, e.g. http://127.0.0.1:2379");
  app.add_option("--advertise", opt.cluster.advertise,
                 "host:port other nodes reach this node's gRPC port at (default: the --grpc "
                 "host and bound port)");
  AddParsed(
      app, "--cluster-lease-ttl", &opt.cluster.lease_ttl,
      [](std::string_view text) -> packice::Result<std::chrono::seconds> {
        PACKICE_ASSIGN_OR_RETURN(packice::Duration d, packice::ParseDuration(text));
        if (d.count() <= 0) return packice::InvalidArgument("must be more than 0");
        return std::chrono::ceil<std::chrono::seconds>(d);
      },
      "TTL of the etcd lease this node's membership lives under: how long a node that "
      "died stays on the ring (default 10s)");
  AddParsed(app, "--cluster-copy-capacity", &opt.cluster.copy_capacity_bytes, packice::ParseBytes,
            "shared memory for copies of other nodes' objects (default: a quarter of --capacity)");
  app.add_option("--mirror-min-rate", opt.cluster.mirror_min_rate,
                 "reads per second of another node's key past which this node mirrors it "
                 "(default 20)")
      ->check(CLI::PositiveNumber);
  app.add_option("--node-id", opt.cluster.node_id,
                 "this node's id in the cluster (default: kept in DATA_DIR/NODE_ID)");
  app.add_option("--tls-cert", opt.http.tls_cert_file,
                 "PEM certificate chain: HTTP and gRPC are served with TLS only (with --tls-key)");
  app.add_option("--tls-key", opt.http.tls_key_file, "PEM private key of --tls-cert");
  app.add_option("--cas-dir", opt.cas.dir,
                 "directory of the content-addressed store (default DATA_DIR/cas; with --store "
                 "memory or sharedfs the node serves a CAS only when this is given)");
  AddParsed(app, "--cas-capacity", &opt.cas.capacity_bytes, packice::ParseBytes,
            "bytes of blobs the CAS keeps on disk; the least recently used go first (default 16G)");
  app.add_option("--cas-remote", opt.cas.remote,
                 "remote tier of the CAS: grpc://HOST:PORT or grpcs://HOST:PORT of another node "
                 "(reads fill this node, writes go there too); 'none' for none (default: in a "
                 "--cluster each digest's owner, else none)");
  app.add_flag(
      "--no-cas", [&opt](int64_t) { opt.cas.enabled = false; }, "serve no content-addressed store");
  app.add_option("--queue-dir", opt.queue.dir,
                 "directory of the queue's topics (default DATA_DIR/queue; with --store memory "
                 "or sharedfs: in memory)");
  app.add_flag_function(
      "--no-queue", [&opt](int64_t) { opt.queue.enabled = false; }, "serve no queue");
  app.add_option("--kv-dir", opt.kv.dir,
                 "directory of the namespaced KV (default DATA_DIR/kv; with --store memory or "
                 "sharedfs the node serves a KV only when this is given)");
  app.add_flag(
      "--no-kv", [&opt](int64_t) { opt.kv.enabled = false; }, "serve no namespaced KV");
  std::vector<std::string> group_flags;
  app.add_option("--group", group_flags,
                 "serve the cache group NAME=ORIGIN_TEMPLATE over HTTP and gRPC, e.g. "
                 "users=http://127.0.0.1:8000/users/{key} (repeatable; 64M each; more settings "
                 "in [groups.NAME] of the config file)");
  try {
    app.parse(argc, argv);
    if (!config_path.empty()) {
      // Defaults < file < flags: the flags were applied above onto the defaults; start again
      // from the file's options and parse the same flags once more, onto them.
      packice::DaemonOptions from_file;
      if (packice::Status s = packice::LoadConfigFile(config_path, &from_file); !s.ok()) {
        std::cerr << "packiced: " << s.message() << "\n";
        return 2;
      }
      opt = std::move(from_file);
      app.parse(argc, argv);
    }
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  for (const std::string& flag : group_flags) {
    if (packice::Status s = ApplyGroupFlag(flag, &opt.groups); !s.ok()) {
      std::cerr << "packiced: " << s.message() << "\n";
      return 2;
    }
  }
  if (opt.memory.capacity_bytes == 0) {
    std::cerr << "packiced: --capacity must be positive\n";
    return 2;
  }
  if (opt.http.tls_cert_file.empty() != opt.http.tls_key_file.empty()) {
    std::cerr << "packiced: a TLS certificate and key go together (--tls-cert and --tls-key, or "
                 "[http] tls_cert and tls_key)\n";
    return 2;
  }
  opt.limits.inline_max_bytes = opt.memory.small_object_bytes;
  return packice::RunDaemon(opt);
}
