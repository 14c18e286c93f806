// EtcdChannels: the gRPC channels to etcd's endpoints, which one is current, and the unary-call
// loop that moves to the next endpoint on failure. Shared by EtcdClient and its keepalive and
// watch handles (which may outlive the client). Not API: include etcd_client.h.
//
// Thread safety: safe for concurrent use.
#ifndef PACKICE_CLUSTER_ETCD_CHANNELS_H_
#define PACKICE_CLUSTER_ETCD_CHANNELS_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/etcd_client.h"
#include "cluster/kv.pb.h"
#include "packice/status.h"

namespace packice::cluster {

// A gRPC status as a Packice one: "etcd <endpoint> <what>: <message>". etcd reports an unknown
// lease as NOT_FOUND; `not_found` says what that means for the call.
Status FromGrpcStatus(const grpc::Status& status, std::string_view what, std::string_view endpoint,
                      StatusCode not_found = StatusCode::kNotFound);

// Whether a failed call may work on another endpoint (or the same one later).
bool IsConnectionFailure(const grpc::Status& status);

EtcdKeyValue FromProto(const mvccpb::KeyValue& kv);

class EtcdChannels {
 public:
  // REQUIRES: `endpoints` are host:port targets (ParseEtcdEndpoints's, without the scheme).
  EtcdChannels(EtcdOptions options, std::vector<std::string> targets);

  struct Pick {
    size_t index;
    std::shared_ptr<grpc::Channel> channel;
    std::string endpoint;  // as configured, for messages
  };
  // The endpoint calls should go to now.
  Pick Current() const;
  // `index` failed: if it is still the current endpoint, the next one becomes current.
  void Failed(size_t index);
  size_t size() const { return channels_.size(); }

  // Waits until the channel of `pick` is connected (true) or `deadline` passed (false). Every
  // call and stream starts with it, so that an unreachable etcd shows as kUnavailable and not
  // as a call timeout.
  //
  // Why not let the call fail at once on a failed channel (gRPC's default): with the
  // synchronous API only a thread that waits on the channel polls its sockets. The reconnect
  // that gRPC starts from its backoff timer while no call waits is never polled, its connect
  // "times out" although etcd is back, and the channel stays failed for good. Waiting for the
  // connection polls it.
  bool WaitConnected(const Pick& pick, std::chrono::system_clock::time_point deadline);
  const EtcdOptions& options() const { return options_; }

  // Runs `call` on the current endpoint with a fresh context under call_timeout; on a
  // connection failure moves to the next endpoint and tries again, once per endpoint. Returns
  // the first non-connection error, or the last error.
  using UnaryCall = std::function<grpc::Status(const std::shared_ptr<grpc::Channel>& channel,
                                               grpc::ClientContext* ctx)>;
  Status Unary(std::string_view what, StatusCode not_found, const UnaryCall& call);

  // Every key under `prefix` and the revision read (EtcdClient::GetPrefix).
  Result<EtcdRange> ListPrefix(std::string_view prefix);

 private:
  const EtcdOptions options_;
  std::vector<std::shared_ptr<grpc::Channel>> channels_;
  std::atomic<size_t> current_{0};
};

// The background halves of EtcdClient::KeepAlive and EtcdClient::Watch (etcd_keepalive.cc,
// etcd_watch.cc); their arguments are already checked.
std::shared_ptr<EtcdKeepAlive::Impl> StartKeepAlive(std::shared_ptr<EtcdChannels> channels,
                                                    const EtcdLease& lease,
                                                    std::function<void(const Status&)> on_lost);
std::shared_ptr<EtcdWatch::Impl> StartWatch(std::shared_ptr<EtcdChannels> channels,
                                            std::string prefix, int64_t start_revision,
                                            EtcdWatchCallback callback);

}  // namespace packice::cluster

#endif  // PACKICE_CLUSTER_ETCD_CHANNELS_H_
