// GroupEndpoint: a client's calls to the cache groups of one node, over gRPC
// (packice.rpc.Groups, GrpcGroupClient) or HTTP (/v1/groups, libcurl). The CLI's `packice group`
// and the Python binding's `client.group(name)` use it. Groups are not served on the Unix socket.
//
//   PACKICE_ASSIGN_OR_RETURN(std::unique_ptr<GroupEndpoint> node,
//                            OpenGroupEndpoint("grpc://127.0.0.1:9090", options));
//   Result<std::string> v = node->Get("users", "42");
//
// Thread safety: an endpoint is safe for concurrent use (gRPC multiplexes calls on one channel;
// over HTTP each call takes a pooled libcurl handle of its own).
#ifndef PACKICE_CLIENT_GROUP_ENDPOINT_H_
#define PACKICE_CLIENT_GROUP_ENDPOINT_H_

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "packice/cache.h"
#include "packice/client.h"
#include "packice/status.h"
#include "transport/grpc/group_channel.h"

namespace packice {

class GroupEndpoint {
 public:
  virtual ~GroupEndpoint() = default;
  // As Group::Get / Set / Delete / Stats on the node; the node's errors are returned as they
  // are (an unknown group is kNotFound).
  virtual Result<std::string> Get(const std::string& group, const std::string& key) = 0;
  virtual Status Set(const std::string& group, const std::string& key, std::string_view value,
                     std::optional<Duration> ttl) = 0;
  virtual Status Delete(const std::string& group, const std::string& key) = 0;
  virtual Result<GroupStats> Stats(const std::string& group) = 0;
  virtual Result<std::vector<GroupListing>> List() = 0;
};

// True for the URLs OpenGroupEndpoint accepts: http://, https://, grpc:// and grpcs://.
bool ServesGroups(std::string_view url);

// An endpoint for the node at `url` (see ServesGroups). options.http_token and
// options.http_ca_file (else $PACKICE_TOKEN and $PACKICE_CA_FILE) are the bearer token and the
// CAs, as for Connect. Does not connect. Errors: kInvalidArgument (another scheme, a bad
// target, an unreadable CA file).
Result<std::unique_ptr<GroupEndpoint>> OpenGroupEndpoint(const std::string& url,
                                                         const ClientOptions& options);

}  // namespace packice

#endif  // PACKICE_CLIENT_GROUP_ENDPOINT_H_
