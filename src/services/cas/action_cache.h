// ActionCache: the results of build actions by the digest of the action (REAPI's action cache),
// as opaque bytes (a serialized ActionResult) in objects of a LocalPeer under the keys
// "ac/<digest.ToString()>", e.g. "ac/sha256:<hex>/<size>". Storing an action's result again
// replaces it; readers holding the old one keep it. The peer's capacity and object TTL bound
// what the cache holds.
//
// Thread safety: safe for concurrent use (the peer is).
#ifndef PACKICE_SERVICES_CAS_ACTION_CACHE_H_
#define PACKICE_SERVICES_CAS_ACTION_CACHE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "packice/cas.h"
#include "packice/local_peer.h"
#include "packice/status.h"
#include "packice/types.h"

namespace packice {

struct ActionCacheOptions {
  // The largest entry Put accepts.
  uint64_t max_entry_bytes = 4 << 20;
  // How long an entry lives; nullopt: the peer's default object TTL.
  std::optional<Duration> entry_ttl;
};

class ActionCache {
 public:
  // REQUIRES: peer != nullptr.
  explicit ActionCache(std::shared_ptr<LocalPeer> peer, ActionCacheOptions options = {});

  // Stores `result` as the result of `action`, replacing any. Errors: kInvalidArgument (over
  // max_entry_bytes), kOutOfCapacity, and the peer's write errors.
  Status Put(const Digest& action, std::string_view result);
  // The result stored for `action`. Errors: kNotFound, and the peer's read errors.
  Result<std::string> Get(const Digest& action);

  // The peer key of `action`'s entry.
  static std::string KeyOf(const Digest& action);

  const ActionCacheOptions& options() const { return options_; }

 private:
  const std::shared_ptr<LocalPeer> peer_;
  const ActionCacheOptions options_;
};

}  // namespace packice

#endif  // PACKICE_SERVICES_CAS_ACTION_CACHE_H_
