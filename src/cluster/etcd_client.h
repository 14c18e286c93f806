// EtcdClient: etcd's v3 API over gRPC (src/cluster/etcd.proto) — keys, leases with a background
// keepalive, and a watch that survives restarts of etcd.
//
//   ASSIGN_OR_RETURN(auto client, EtcdClient::Create({.endpoints = {"http://127.0.0.1:2379"}}));
//   ASSIGN_OR_RETURN(EtcdLease lease, client->Grant(std::chrono::seconds(10)));
//   RETURN_IF_ERROR(client->Put("/packice/c/nodes/n1", record, lease.id).status());
//   ASSIGN_OR_RETURN(auto keepalive, client->KeepAlive(lease));
//   ASSIGN_OR_RETURN(auto watch, client->Watch("/packice/c/nodes/", 0, on_update));
//
// Endpoints: every call goes to the current endpoint; when it cannot be reached (or does not
// answer in time) the client moves on to the next one, and a unary call is retried there, once
// per endpoint. Only http:// endpoints are supported (no TLS yet).
//
// Errors, for every call: kUnavailable when no endpoint can be reached, kTimeout when the
// per-call deadline (EtcdOptions::call_timeout) ran out, kInvalidArgument for what etcd refuses
// as malformed (an empty key, a compacted revision, a value over its request limit),
// kLeaseExpired for a lease etcd does not know (expired or revoked), kOutOfCapacity when etcd's
// database is full, kPermissionDenied when etcd's auth refuses, kInternal otherwise. The
// message names the endpoint and the call.
//
// Bounds: no call waits longer than call_timeout per endpoint; watch updates are handed to the
// callback on the watch's own thread as each response arrives (one gRPC message, at most the
// channel's 4 MiB receive limit), so nothing queues up behind a slow callback except in etcd.
//
// Thread safety: EtcdClient is safe for concurrent use. EtcdKeepAlive and EtcdWatch handles
// may be used from any thread; each keeps the client's connections alive, so a handle may
// outlive the EtcdClient that made it.
#ifndef PACKICE_CLUSTER_ETCD_CLIENT_H_
#define PACKICE_CLUSTER_ETCD_CLIENT_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "packice/status.h"

namespace packice::cluster {

class EtcdChannels;  // etcd_channels.h

struct EtcdOptions {
  // Client URLs of etcd's members, "http://host:port". At least one.
  std::vector<std::string> endpoints;
  // Deadline of each unary call on each endpoint it tries, and how long a keepalive waits for
  // its answer before it calls the connection broken.
  std::chrono::milliseconds call_timeout{2000};
  // Delays before a keepalive or watch stream is opened again after it broke: exponential from
  // `retry_initial` up to `retry_max`, jittered.
  std::chrono::milliseconds retry_initial{100};
  std::chrono::milliseconds retry_max{2000};
};

// Splits a comma-separated endpoint list ("http://a:2379,http://b:2379"). Errors:
// kInvalidArgument for an empty list or an entry that is not http://host:port.
Result<std::vector<std::string>> ParseEtcdEndpoints(std::string_view list);

// The end of the range of keys that start with `prefix` (etcd's range_end): the prefix with its
// last byte below 0xff incremented and what follows dropped; "\0" (every key) when there is
// none.
std::string EtcdPrefixEnd(std::string_view prefix);

struct EtcdKeyValue {
  std::string key;
  std::string value;
  int64_t create_revision = 0;
  int64_t mod_revision = 0;
  int64_t version = 0;
  int64_t lease = 0;  // 0: none
};

// The keys under a prefix, and the store's revision they were read at.
struct EtcdRange {
  std::vector<EtcdKeyValue> kvs;  // in key order
  int64_t revision = 0;
};

struct EtcdLease {
  int64_t id = 0;
  std::chrono::seconds ttl{0};  // as granted: etcd raises a TTL below its minimum
};

struct EtcdEvent {
  enum class Type { kPut, kDelete };
  Type type = Type::kPut;
  // For kDelete only the key and mod_revision (the delete's revision) are set.
  EtcdKeyValue kv;
  std::optional<EtcdKeyValue> prev_kv;  // the key before the event, when etcd still had it
};

// What a watch hands its callback.
struct EtcdWatchUpdate {
  enum class Kind {
    // `events` happened, in revision order, right after what the callback saw before.
    kEvents,
    // The watch could not continue from what the callback saw (its first listing, or the
    // revisions it needed were compacted away): `kvs` is everything under the prefix at
    // `revision` and replaces what the callback knew.
    kReset,
  };
  Kind kind = Kind::kEvents;
  std::vector<EtcdEvent> events;
  std::vector<EtcdKeyValue> kvs;
  int64_t revision = 0;  // the store's revision as of this update
};

using EtcdWatchCallback = std::function<void(const EtcdWatchUpdate&)>;

// Keeps one lease alive from a background thread: a renewal every ttl/3 on a LeaseKeepAlive
// stream, reopened (on the next endpoint) when it breaks. The lease is lost when etcd answers
// that it is gone, or when its TTL passed since the last answered renewal; then `on_lost` runs
// once, on the keepalive's thread, and the keepalive ends. Destroying or stopping it does not
// revoke the lease (EtcdClient::Revoke does).
class EtcdKeepAlive {
 public:
  class Impl;
  explicit EtcdKeepAlive(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
  ~EtcdKeepAlive();  // Stop()
  EtcdKeepAlive(const EtcdKeepAlive&) = delete;
  EtcdKeepAlive& operator=(const EtcdKeepAlive&) = delete;

  // Ends the renewals and joins the thread (within the call timeout); `on_lost` is not called
  // afterwards. Idempotent.
  // REQUIRES: not called from `on_lost`.
  void Stop();
  int64_t lease() const;
  // True while the latest renewal was answered in time.
  bool healthy() const;
  // OK while the lease is believed alive. Once lost: kLeaseExpired when etcd said the lease is
  // gone, kUnavailable or kTimeout when its TTL passed without an answered renewal.
  Status status() const;

 private:
  std::shared_ptr<Impl> impl_;
};

// Watches every key under a prefix from a background thread, reconnecting (on the next
// endpoint, with backoff) and resuming after the last revision it delivered, so the callback
// sees each change once and in order; when those revisions were compacted it lists the prefix
// again and delivers a kReset.
class EtcdWatch {
 public:
  class Impl;
  explicit EtcdWatch(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
  ~EtcdWatch();  // Stop()
  EtcdWatch(const EtcdWatch&) = delete;
  EtcdWatch& operator=(const EtcdWatch&) = delete;

  // Ends the watch and joins its thread (within the call timeout): when it returns the callback
  // is not running and is not
  // called again. Idempotent. REQUIRES: not called from the callback.
  void Stop();
  // True while the watch stream is established (etcd confirmed the watcher).
  bool synced() const;
  // The first revision the watch has not delivered yet.
  int64_t next_revision() const;
  // Times the watch failed (a stream broke or was cancelled, a listing failed) and retried.
  uint64_t reconnects() const;
  // Why the stream last broke (OK if it never did).
  Status last_error() const;

 private:
  std::shared_ptr<Impl> impl_;
};

class EtcdClient {
 public:
  // Errors: kInvalidArgument for no endpoints, a malformed one, or a non-positive timeout.
  // Connecting is lazy: an unreachable etcd shows in the first call, not here.
  static Result<std::unique_ptr<EtcdClient>> Create(EtcdOptions options);
  ~EtcdClient();
  EtcdClient(const EtcdClient&) = delete;
  EtcdClient& operator=(const EtcdClient&) = delete;

  // The value of `key`; kNotFound when there is none.
  Result<EtcdKeyValue> Get(std::string_view key);
  // Every key that starts with `prefix` (all keys for ""), in key order, and the revision read.
  Result<EtcdRange> GetPrefix(std::string_view prefix);
  // Sets `key` to `value`, attached to `lease` (0: none). Returns the revision of the put.
  // kLeaseExpired when the lease is not known to etcd.
  Result<int64_t> Put(std::string_view key, std::string_view value, int64_t lease = 0);
  // Deletes `key`; returns how many keys were deleted (0 or 1).
  Result<int64_t> Delete(std::string_view key);
  // Puts `value` under `key` unless the key exists (one Txn), and returns the value the key
  // then holds: `value` when this call (or an earlier attempt of it) created it, else the
  // value someone else put first.
  Result<std::string> CreateOrGet(std::string_view key, std::string_view value);
  // Grants a lease of `ttl` (etcd may raise it to its minimum). kInvalidArgument for ttl <= 0.
  Result<EtcdLease> Grant(std::chrono::seconds ttl);
  // Revokes `lease` and deletes the keys attached to it. kLeaseExpired when it was already gone.
  Status Revoke(int64_t lease);

  // Starts renewing `lease` in the background (see EtcdKeepAlive). `on_lost` may be empty.
  // kInvalidArgument for a lease id or TTL <= 0.
  Result<std::unique_ptr<EtcdKeepAlive>> KeepAlive(
      const EtcdLease& lease, std::function<void(const Status&)> on_lost = nullptr);

  // Starts watching `prefix` (see EtcdWatch). `start_revision` > 0: deliver changes from that
  // revision on, as kEvents; 0: first list the prefix (a kReset), then its changes. The
  // callback runs on the watch's thread, one update at a time; it must not call Stop on its
  // own watch. kInvalidArgument for a negative revision or an empty callback.
  Result<std::unique_ptr<EtcdWatch>> Watch(std::string prefix, int64_t start_revision,
                                           EtcdWatchCallback callback);

 private:
  explicit EtcdClient(std::shared_ptr<EtcdChannels> channels);

  std::shared_ptr<EtcdChannels> channels_;
};

}  // namespace packice::cluster

#endif  // PACKICE_CLUSTER_ETCD_CLIENT_H_
