// Builds a Client over any Channel (used by Connect for each transport).
#ifndef PACKICE_CLIENT_MAKE_CLIENT_H_
#define PACKICE_CLIENT_MAKE_CLIENT_H_

#include <memory>

#include "packice/client.h"
#include "transport/channel.h"

namespace packice {
Client MakeClient(std::shared_ptr<Channel> channel, ClientOptions options);
}  // namespace packice

#endif  // PACKICE_CLIENT_MAKE_CLIENT_H_
