// OwnerDirectory: a cluster's table of name -> owner record (the KV's namespaces: an owner
// node id; the queue's topics: the owners of its buckets), written once per name when the name
// is created and read by every node. Owners never change while their name exists, so nodes
// cache the table and read it again only on a miss or a stale route (Refresh).
//
// Thread safety: implementations are safe for concurrent use.
#ifndef PACKICE_CLUSTER_OWNER_DIRECTORY_H_
#define PACKICE_CLUSTER_OWNER_DIRECTORY_H_

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "packice/status.h"

namespace packice {

namespace cluster {
class EtcdClient;
}  // namespace cluster

class OwnerDirectory {
 public:
  virtual ~OwnerDirectory() = default;
  // The record of `name` in the cached table; nullopt when none is known.
  virtual std::optional<std::string> Owner(std::string_view name) = 0;
  // Records `owner` for `name` unless one is recorded; returns the record now there.
  virtual Result<std::string> Claim(std::string_view name, std::string_view owner) = 0;
  virtual Status Release(std::string_view name) = 0;
  // Reads the whole table again (after a stale route, or to list it).
  virtual Status Refresh() = 0;
  // The cached table, by name.
  virtual std::vector<std::pair<std::string, std::string>> List() = 0;
};

// The table in etcd: `prefix` + name -> record, created with a Txn (the first claim wins).
// Either the names start with '/' (the KV's paths) or `prefix` ends with one (the queue's).
// Read into the cache on a miss and on Refresh; not watched (see above).
std::shared_ptr<OwnerDirectory> NewEtcdOwnerDirectory(std::shared_ptr<cluster::EtcdClient> etcd,
                                                      std::string prefix);

}  // namespace packice

#endif  // PACKICE_CLUSTER_OWNER_DIRECTORY_H_
