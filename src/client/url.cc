// Connect(url): picks the transport from the URL's scheme.
#include <unistd.h>

#include <cstdlib>

#include "client/make_client.h"

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

Result<Client> Connect(std::string_view url, ClientOptions options) {
  constexpr std::string_view kUds = "uds://";
  std::string path;
  if (url.starts_with(kUds)) {
    path = std::string(url.substr(kUds.size()));
  } else if (url.starts_with("/")) {
    path = std::string(url);
  } else {
    return InvalidArgument("unsupported URL '" + std::string(url) +
                           "': expected uds:///path/to/socket");
  }
  if (path.empty() || path[0] != '/') {
    return InvalidArgument("uds URL needs an absolute path: uds:///path/to/socket");
  }
  PACKICE_ASSIGN_OR_RETURN(std::shared_ptr<Channel> channel, NewUdsChannel(path));
  return MakeClient(std::move(channel), options);
}

}  // namespace packice
