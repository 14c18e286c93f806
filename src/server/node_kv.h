// packiced's namespaced KV: the KvStore of the node's options and its metrics. daemon.cc hands
// it to the Unix socket, the HTTP routes and the gRPC service.
#ifndef PACKICE_SERVER_NODE_KV_H_
#define PACKICE_SERVER_NODE_KV_H_

#include <memory>
#include <string>

#include "core/metrics.h"
#include "packice/kv.h"
#include "server/daemon.h"
#include "services/kv/cluster_kv_store.h"

namespace packice {

// Where the KV of `options` keeps its namespaces; empty when the node serves none (disabled,
// or --store memory or sharedfs without a KV directory).
std::string NodeKvDir(const DaemonOptions& options);

// The KV of `options` (nullptr when NodeKvDir is empty), with packice_kv_* metrics in
// `metrics`. Errors: those of OpenKvStore (kAlreadyExists: another process has the directory;
// kDataLoss: a corrupt log, refused).
Result<std::shared_ptr<KvStore>> OpenNodeKv(const DaemonOptions& options, MetricsRegistry& metrics);

}  // namespace packice

#endif  // PACKICE_SERVER_NODE_KV_H_
