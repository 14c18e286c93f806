// A KvClient over any KvChannel (ConnectKv builds one per URL; a cluster node builds one per
// member, marked forwarded).
#ifndef PACKICE_CLIENT_KV_CLIENT_H_
#define PACKICE_CLIENT_KV_CLIENT_H_

#include <functional>
#include <memory>

#include "packice/kv.h"
#include "transport/kv_channel.h"

namespace packice {

using KvChannelFactory = std::function<Result<std::shared_ptr<KvChannel>>()>;

// Connects with `connect` at the first call (and again after the channel broke).
std::unique_ptr<KvClient> NewKvClient(KvChannelFactory connect);

}  // namespace packice

#endif  // PACKICE_CLIENT_KV_CLIENT_H_
