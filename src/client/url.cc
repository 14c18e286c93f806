// Connect(url): picks the transport from the URL's scheme.
#include <unistd.h>

#include <cctype>
#include <cstdlib>

#include "client/make_client.h"
#include "transport/grpc/grpc_channel.h"
#include "transport/http/http_channel.h"

namespace packice {

std::string DefaultSocketPath() {
  if (const char* dir = std::getenv("XDG_RUNTIME_DIR"); dir != nullptr && *dir != '\0') {
    return std::string(dir) + "/packice.sock";
  }
  return "/tmp/packice-" + std::to_string(getuid()) + ".sock";
}

std::string DefaultUrl() {
  if (const char* url = std::getenv("PACKICE_URL"); url != nullptr && *url != '\0') return url;
  return "uds://" + DefaultSocketPath();
}

std::string EnvOr(const std::string& value, const char* name) {
  if (!value.empty()) return value;
  const char* env = std::getenv(name);
  return env != nullptr ? env : "";
}

// The scheme of `url`, lower-cased ("" when it has none).
std::string UrlScheme(std::string_view url) {
  const size_t end = url.find("://");
  if (end == std::string_view::npos) return "";
  std::string scheme(url.substr(0, end));
  for (char& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return scheme;
}

std::string GrpcTarget(std::string_view url, const std::string& scheme) {
  std::string target(url.substr(scheme.size() + 3));
  while (target.ends_with("/")) target.pop_back();
  return target;
}

GrpcChannelOptions GrpcOptions(const std::string& scheme, const std::string& token,
                               const std::string& ca_file) {
  GrpcChannelOptions grpc;
  grpc.tls = scheme == "grpcs";
  grpc.bearer_token = EnvOr(token, "PACKICE_TOKEN");
  grpc.ca_file = EnvOr(ca_file, "PACKICE_CA_FILE");
  return grpc;
}

Result<Client> Connect(std::string_view url, ClientOptions options) {
  constexpr std::string_view kUds = "uds://";
  if (const std::string scheme = UrlScheme(url); scheme == "http" || scheme == "https") {
    HttpChannelOptions http;
    http.bearer_token = EnvOr(options.http_token, "PACKICE_TOKEN");
    http.ca_file = EnvOr(options.http_ca_file, "PACKICE_CA_FILE");
    PACKICE_ASSIGN_OR_RETURN(std::shared_ptr<Channel> channel,
                             NewHttpChannel(std::string(url), http));
    return MakeClient(std::move(channel), options);
  }
  if (const std::string scheme = UrlScheme(url); scheme == "grpc" || scheme == "grpcs") {
    PACKICE_ASSIGN_OR_RETURN(
        std::shared_ptr<GrpcChannel> channel,
        NewGrpcChannel(GrpcTarget(url, scheme),
                       GrpcOptions(scheme, options.http_token, options.http_ca_file)));
    return MakeClient(std::move(channel), options);
  }
  std::string path;
  if (url.starts_with(kUds)) {
    path = std::string(url.substr(kUds.size()));
  } else if (url.starts_with("/")) {
    path = std::string(url);
  } else {
    return InvalidArgument("unsupported URL '" + std::string(url) +
                           "': expected uds:///path/to/socket, http://host:port, "
                           "https://host:port, grpc://host:port or grpcs://host:port");
  }
  if (path.empty() || path[0] != '/') {
    return InvalidArgument("uds URL needs an absolute path: uds:///path/to/socket");
  }
  PACKICE_ASSIGN_OR_RETURN(std::shared_ptr<Channel> channel, NewUdsChannel(path));
  return MakeClient(std::move(channel), options);
}

}  // namespace packice
