// packiced's configuration file: TOML (toml++) applied onto DaemonOptions. examples/packice.toml
// has every key with a comment; the schema in short:
//
//   store, socket, io_threads, log_level             the node (top level, before any [section])
//   [memory]   capacity, pool
//   [disk]     dir, capacity                         dir is also the directory of store=sharedfs
//   [tiered]   eviction, promote_after
//   [sharedfs] gc_interval, abandoned_after
//   [ttl]      default, lease, max_lease
//   [http]     listen, token | token_file, tls_cert, tls_key, max_connections, max_header,
//              max_body, idle_timeout, io_timeout
//   [grpc]     listen, max_threads
//   [groups.NAME]  capacity, policy, ttl, origin, load_timeout, max_value   one cache group each;
//              NAME is 1-64 of A-Z a-z 0-9 _ . - (quoted when it holds a dot: [groups."a.b"])
//
// Sizes are strings for ParseBytes ("512M", "4G") or integers of bytes; durations are strings for
// ParseDuration ("500ms", "30s", "1h") or integers of seconds. Paths are used as written
// (relative ones from packiced's working directory). A key left out keeps its value in `out`;
// packiced's flags are applied after the file, so they win over it.
#ifndef PACKICE_SERVER_CONFIG_H_
#define PACKICE_SERVER_CONFIG_H_

#include <string>
#include <string_view>

#include "packice/status.h"
#include "server/daemon.h"

namespace packice {

// Applies the TOML file at `path` onto `*out`. Errors (kInvalidArgument, one line, starting
// "FILE:LINE:COLUMN: " where a position is known): unreadable file, TOML syntax, an unknown
// section or key, a value of the wrong type, a size or duration that does not parse, a value out
// of range or not among those allowed. On error `*out` is unchanged.
Status LoadConfigFile(const std::string& path, DaemonOptions* out);

// As LoadConfigFile, for TOML text; `source_name` is what messages call it.
Status LoadConfigString(std::string_view text, const std::string& source_name, DaemonOptions* out);

}  // namespace packice

#endif  // PACKICE_SERVER_CONFIG_H_
