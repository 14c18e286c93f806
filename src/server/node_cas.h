// packiced's content-addressed store: the CasStore of the node's options, its metrics, and
// the directory it keeps blobs in. daemon.cc hands it to the HTTP routes and gRPC services.
#ifndef PACKICE_SERVER_NODE_CAS_H_
#define PACKICE_SERVER_NODE_CAS_H_

#include <memory>
#include <string>

#include "core/metrics.h"
#include "server/daemon.h"
#include "services/cas/action_cache.h"
#include "services/cas/cas_store.h"
#include "services/cas/transport_tokens.h"

namespace packice {

// Where the CAS of `options` keeps its blobs; empty when the node serves none (disabled, or
// --store memory without a CAS directory).
std::string NodeCasDir(const DaemonOptions& options);

// What a node serves of content-addressed storage: the blobs, REAPI's action cache (in
// CAS_DIR/ac, a file peer of its own), and the one-time tokens of the seed's negotiation.
struct NodeCas {
  std::shared_ptr<CasStore> store;
  std::shared_ptr<ActionCache> action_cache;  // REAPI's, keys "ac/<digest>"
  // The file peer under it, which also holds the entries of Bazel's HTTP cache (/ac/{sha256},
  // keys "ac/sha256:<hex>": that protocol names an action by its hash alone).
  std::shared_ptr<LocalPeer> action_peer;
  std::shared_ptr<TransportTokens> tokens;
  std::string dir;
};

// The CAS of `options` (nullptr when NodeCasDir is empty), with packice_cas_* metrics in
// `metrics`. Its remote tier: options.cas.remote (a REAPI client marked as forwarded), else
// `cluster_remote` (a cluster's OwnerCas; may be null), none for "none". Errors: those of
// CasStore::Open and FilePeer::Open (a directory in use by another process...),
// kInvalidArgument (a bad remote URL, or one that names this node's own gRPC port).
Result<std::unique_ptr<NodeCas>> OpenNodeCas(const DaemonOptions& options, MetricsRegistry& metrics,
                                             std::shared_ptr<Cas> cluster_remote = nullptr);

// What the node serves on its object API (Unix socket, HTTP /v1/objects, gRPC): `peer`, and
// when the node has a CAS its blobs under the keys "cas/<digest>" (a PrefixPeer over a
// CasObjectPeer; docs/cas.md).
std::shared_ptr<LocalPeer> ServedObjectPeer(std::shared_ptr<LocalPeer> peer, const NodeCas* cas);

}  // namespace packice

#endif  // PACKICE_SERVER_NODE_CAS_H_
