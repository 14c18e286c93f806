// packice group get|set|del|stats|ls: the cache groups of a node, over HTTP (/v1/groups) or
// gRPC (packice.rpc.Groups). Groups are not served on the Unix socket.
#ifndef PACKICE_CLI_GROUP_COMMAND_H_
#define PACKICE_CLI_GROUP_COMMAND_H_

#include <CLI/CLI.hpp>
#include <string>

#include "packice/client.h"

namespace packice::cli {

struct GroupArgs {
  CLI::App* get = nullptr;
  CLI::App* set = nullptr;
  CLI::App* del = nullptr;
  CLI::App* stats = nullptr;
  CLI::App* ls = nullptr;
  std::string group, key, value, ttl;
};

// Adds "group" and its subcommands to `app`, parsed into `*args`; returns "group".
CLI::App* AddGroupCommand(CLI::App& app, GroupArgs* args);

// Runs the parsed group subcommand against the node at `url`. Returns the exit code (0, or 1
// with "packice: <code>: <message>" on stderr).
int RunGroupCommand(const GroupArgs& args, const std::string& url, const ClientOptions& options);

}  // namespace packice::cli

#endif  // PACKICE_CLI_GROUP_COMMAND_H_
