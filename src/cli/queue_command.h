// packice queue: the node's queue (docs/queue.md, "Command line"): create, ls, rm, produce,
// consume, stat, export, import. Over the Unix socket (the default URL).
#ifndef PACKICE_CLI_QUEUE_COMMAND_H_
#define PACKICE_CLI_QUEUE_COMMAND_H_

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>
#include <vector>

namespace packice::cli {

struct QueueArgs {
  CLI::App* create = nullptr;
  CLI::App* ls = nullptr;
  CLI::App* rm = nullptr;
  CLI::App* produce = nullptr;
  CLI::App* consume = nullptr;
  CLI::App* stat = nullptr;
  CLI::App* export_ = nullptr;
  CLI::App* import = nullptr;
  CLI::App* schema = nullptr;
  std::string topic, value, key, group = "default", wait = "1s", file;
  std::vector<std::string> headers;  // name=value
  uint32_t buckets = 1;
  std::string fsync = "always", fsync_interval, segment_bytes, retention_bytes, retention_age;
  std::string storage = "log";
  uint64_t limit = 0;  // consume: stop after this many (0: once a wait brings none)
  bool no_commit = false, print_offsets = false;
};

// Adds "queue" and its subcommands to `app`, parsed into `*args`; returns "queue".
CLI::App* AddQueueCommand(CLI::App& app, QueueArgs* args);

// Runs the parsed queue subcommand against the node at `url`. Returns the exit code.
int RunQueueCommand(const QueueArgs& args, const std::string& url);

}  // namespace packice::cli

#endif  // PACKICE_CLI_QUEUE_COMMAND_H_
