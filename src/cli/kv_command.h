// packice kv: the node's namespaced KV with etcdctl's habits (docs/kv.md, "Command line"):
// put, get (--prefix), del (--prefix), watch (--prefix, --rev), and ns create|ls|rm. Over the
// Unix socket (the default URL) or gRPC.
#ifndef PACKICE_CLI_KV_COMMAND_H_
#define PACKICE_CLI_KV_COMMAND_H_

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>

#include "packice/client.h"

namespace packice::cli {

struct KvArgs {
  CLI::App* put = nullptr;
  CLI::App* get = nullptr;
  CLI::App* del = nullptr;
  CLI::App* watch = nullptr;
  CLI::App* ns_create = nullptr;
  CLI::App* ns_ls = nullptr;
  CLI::App* ns_rm = nullptr;
  std::string ns, key, value, ttl, end;
  std::string engine = "swisstable", mode = "linear", fsync = "always", fsync_interval, default_ttl;
  int64_t if_rev = -1;  // -1: unconditional
  int64_t rev = 0;
  uint64_t limit = 0;  // 0: all
  bool prefix = false, keys_only = false, print_value_only = false, prev_kv = false;
  uint64_t max_events = 0;  // watch: stop after this many (0: until interrupted)
};

// Adds "kv" and its subcommands to `app`, parsed into `*args`; returns "kv".
CLI::App* AddKvCommand(CLI::App& app, KvArgs* args);

// Runs the parsed kv subcommand against the node at `url`. Returns the exit code (0, or 1 with
// "packice: <code>: <message>" on stderr).
int RunKvCommand(const KvArgs& args, const std::string& url, const ClientOptions& options);

}  // namespace packice::cli

#endif  // PACKICE_CLI_KV_COMMAND_H_
