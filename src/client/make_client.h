// Builds a Client over any Channel (used by Connect for each transport).
#ifndef PACKICE_CLIENT_MAKE_CLIENT_H_
#define PACKICE_CLIENT_MAKE_CLIENT_H_

#include <memory>
#include <string>
#include <string_view>

#include "packice/client.h"
#include "transport/channel.h"
#include "transport/grpc/grpc_channel.h"

namespace packice {
Client MakeClient(std::shared_ptr<Channel> channel, ClientOptions options);

// `value`, or when it is empty the environment variable `name` ("" if unset).
std::string EnvOr(const std::string& value, const char* name);
// The scheme of `url`, lower-cased ("" when it has none).
std::string UrlScheme(std::string_view url);
// A grpc:// or grpcs:// URL (`scheme` is UrlScheme's) as a target "host:port" and the options
// of a channel to it: TLS for grpcs, `token` or $PACKICE_TOKEN, `ca_file` or $PACKICE_CA_FILE.
std::string GrpcTarget(std::string_view url, const std::string& scheme);
GrpcChannelOptions GrpcOptions(const std::string& scheme, const std::string& token,
                               const std::string& ca_file);
}  // namespace packice

#endif  // PACKICE_CLIENT_MAKE_CLIENT_H_
