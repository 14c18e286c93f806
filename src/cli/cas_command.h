// packice cas put|get|missing|stat: the content-addressed store of a node, through a
// CasEndpoint (client/cas_endpoint.h: the Unix socket's cas/ keys with no copy, HTTP's /v1/cas,
// gRPC; docs/cas.md). Blobs are named by digest ("blake3:<hex>/<size>").
#ifndef PACKICE_CLI_CAS_COMMAND_H_
#define PACKICE_CLI_CAS_COMMAND_H_

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "packice/client.h"

namespace packice::cli {

struct CasArgs {
  CLI::App* put = nullptr;
  CLI::App* get = nullptr;
  CLI::App* missing = nullptr;
  CLI::App* stat = nullptr;
  std::string file;                  // put: the file, - for stdin
  bool sha256 = false;               // put: SHA-256 instead of BLAKE3
  std::string digest;                // get, stat
  std::string range;                 // get: "A-B" or "A-"
  std::string output;                // get: the file, - (or empty) for stdout
  std::vector<std::string> digests;  // missing
};

// Adds "cas" and its subcommands to `app`, parsed into `*args`; returns "cas".
CLI::App* AddCasCommand(CLI::App& app, CasArgs* args);

// Runs the parsed cas subcommand against the node at `url` (any URL Connect takes). Returns the
// exit code (0, or 1 with "packice: <code>: <message>" on stderr; `missing` exits 0 and prints
// the digests that are missing, one a line).
int RunCasCommand(const CasArgs& args, const std::string& url, const ClientOptions& options);

}  // namespace packice::cli

#endif  // PACKICE_CLI_CAS_COMMAND_H_
