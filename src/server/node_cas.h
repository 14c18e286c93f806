// packiced's content-addressed store: the CasStore of the node's options, its metrics, and
// the directory it keeps blobs in. daemon.cc hands it to the HTTP routes and gRPC services.
#ifndef PACKICE_SERVER_NODE_CAS_H_
#define PACKICE_SERVER_NODE_CAS_H_

#include <memory>
#include <string>

#include "core/metrics.h"
#include "server/daemon.h"
#include "services/cas/cas_store.h"

namespace packice {

// Where the CAS of `options` keeps its blobs; empty when the node serves none (disabled, or
// --store memory without a CAS directory).
std::string NodeCasDir(const DaemonOptions& options);

// The CAS store of `options` (nullptr when NodeCasDir is empty), with packice_cas_* metrics in
// `metrics`. Errors: those of CasStore::Open (the directory in use by another process...).
Result<std::shared_ptr<CasStore>> OpenNodeCas(const DaemonOptions& options,
                                              MetricsRegistry& metrics);

// Where the node keeps the action results of Bazel's HTTP cache (/ac/{sha256}, keys
// "ac/sha256:<hex>"): a memory peer of kActionCacheBytes, lost on restart (an action result
// that is gone is only a rebuild). To be folded into the CAS's ActionCache.
inline constexpr uint64_t kActionCacheBytes = 256ull << 20;
std::shared_ptr<LocalPeer> OpenNodeActionCache();

}  // namespace packice

#endif  // PACKICE_SERVER_NODE_CAS_H_
