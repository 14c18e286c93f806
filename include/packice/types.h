// Value types shared by the Peer interface, the transports and the client.
#ifndef PACKICE_TYPES_H_
#define PACKICE_TYPES_H_

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace packice {

using Duration = std::chrono::milliseconds;

// User metadata: string pairs, ordered so listings and wire encodings are deterministic.
using Meta = std::map<std::string, std::string>;

enum class ObjectState : int32_t { kCreating = 0, kSealed = 1 };

// What a lease allows. kCreate covers writing the object's bytes until it is sealed;
// kRead covers reading a sealed object.
enum class LeaseMode : int32_t { kCreate = 0, kRead = 1 };

using LeaseId = uint64_t;
// A session groups the leases of one client connection, so that a client that goes away
// (socket closed, process killed) loses all of them at once. 0 means "no session".
using SessionId = uint64_t;

// Limits every peer enforces on what it is given.
inline constexpr size_t kMaxKeyBytes = 1024;
inline constexpr size_t kMaxMetaEntries = 64;
inline constexpr size_t kMaxMetaBytes = 64 * 1024;  // keys + values, all entries

// What a peer says about one object.
struct ObjectInfo {
  std::string key;
  uint64_t version = 0;  // unique per object within a node: a rebind gets a new version
  uint64_t size = 0;     // bytes of content
  ObjectState state = ObjectState::kCreating;
  Meta meta;
  Duration ttl{0};  // object TTL; 0 = lives until deleted or evicted
  int64_t created_unix_ms = 0;
  int64_t expires_unix_ms = 0;  // 0 = never
  std::string tier;             // which store holds it, e.g. "memory"
};

// Arguments of a create: the lease mode kCreate.
struct CreateOptions {
  Meta meta;
  // Object TTL. nullopt takes the peer's default.
  std::optional<Duration> ttl;
  // Fail with kAlreadyExists when the key is bound or being created, instead of rebinding.
  bool exclusive = false;
  // A copy of an existing object, moved between the tiers of one node (TieredPeer): it keeps
  // that object's version and creation time, so its ETag survives the move. 0 = a new object,
  // numbered by the peer. Only peers that compose peers set these; no transport carries them.
  uint64_t copy_of_version = 0;
  int64_t copy_created_unix_ms = 0;
};

// What Peer::Acquire is asked for (packice/peer.h).
struct AcquireRequest {
  std::string key;  // for kCreate, empty asks the peer to generate an id
  LeaseMode mode = LeaseMode::kRead;
  uint64_t size = 0;                  // kCreate only: bytes to allocate
  CreateOptions create;               // kCreate only
  SessionId session = 0;              // leases die with their session
  std::optional<Duration> lease_ttl;  // nullopt takes the peer's default
};

struct ListOptions {
  std::string prefix;
  std::string start_after;  // exclusive; for pagination
  uint32_t limit = 1000;    // capped at kMaxListLimit
};
inline constexpr uint32_t kMaxListLimit = 10000;

struct ListPage {
  std::vector<ObjectInfo> objects;  // sealed objects, ordered by key
  bool truncated = false;           // more keys follow the last one
};

}  // namespace packice

#endif  // PACKICE_TYPES_H_
