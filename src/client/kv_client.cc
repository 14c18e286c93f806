// ConnectKv: a KvClient over the KvChannel of the URL's transport (the Unix socket or gRPC).
#include "client/kv_client.h"

#include <mutex>

#include "client/make_client.h"
#include "packice/kv.h"
#include "transport/grpc/grpc_kv_channel.h"
#include "transport/kv_channel.h"
#include "transport/uds/kv_wire_convert.h"
#include "transport/uds/uds_kv_channel.h"

namespace packice {
namespace {

class RemoteKvClient final : public KvClient {
 public:
  RemoteKvClient(KvChannelFactory connect, std::shared_ptr<KvChannel> channel)
      : connect_(std::move(connect)),
        channel_(std::move(channel)),
        wire_([this](const wire::KvRequest& req) { return Call(req); }) {}

  Status CreateNamespace(std::string_view path, const NamespaceOptions& options) override {
    return wire_.CreateNamespace(path, options);
  }
  Status DeleteNamespace(std::string_view path) override { return wire_.DeleteNamespace(path); }
  Result<std::vector<NamespaceInfo>> ListNamespaces(std::string_view prefix) override {
    return wire_.ListNamespaces(prefix);
  }
  Result<KeyValue> Get(std::string_view ns, std::string_view key) override {
    return wire_.Get(ns, key);
  }
  Result<PutResult> Put(std::string_view ns, std::string_view key, std::string_view value,
                        const PutOptions& options) override {
    return wire_.Put(ns, key, value, options);
  }
  Result<DeleteResult> Delete(std::string_view ns, std::string_view key,
                              const DeleteOptions& options) override {
    return wire_.Delete(ns, key, options);
  }
  Result<ScanResult> Scan(std::string_view ns, const ScanOptions& options) override {
    return wire_.Scan(ns, options);
  }
  Result<BatchResult> Commit(std::string_view ns, std::span<const BatchOp> ops) override {
    return wire_.Commit(ns, ops);
  }
  Result<std::unique_ptr<KvWatcher>> Watch(std::string_view ns,
                                           const WatchOptions& options) override {
    PACKICE_ASSIGN_OR_RETURN(std::shared_ptr<KvChannel> channel, Channel());
    return channel->Watch(WireKvStore::WatchRequest(ns, options));
  }

  KvFuture<KeyValue> GetAsync(std::string_view ns, std::string_view key) override {
    return Async(WireKvStore::GetRequest(ns, key), &WireKvStore::ParseGet);
  }
  KvFuture<PutResult> PutAsync(std::string_view ns, std::string_view key, std::string_view value,
                               const PutOptions& options) override {
    return Async(WireKvStore::PutRequest(ns, key, value, options), &WireKvStore::ParsePut);
  }
  Result<std::vector<Result<KeyValue>>> MultiGet(std::string_view ns,
                                                 std::span<const std::string> keys) override {
    return wire_.MultiGet(ns, keys);
  }
  Result<std::vector<Result<PutResult>>> MultiPut(std::string_view ns,
                                                  std::span<const KvPutItem> puts) override {
    return wire_.MultiPut(ns, puts);
  }

 private:
  // The channel, connected again if the last one broke.
  Result<std::shared_ptr<KvChannel>> Channel() {
    std::lock_guard<std::mutex> lock(mu_);
    if (channel_ == nullptr || !channel_->healthy()) {
      channel_.reset();
      PACKICE_ASSIGN_OR_RETURN(channel_, connect_());
    }
    return channel_;
  }

  // The channel's answer, parsed when taken.
  template <typename T>
  class ParsedAnswer final : public internal::KvAnswer<T> {
   public:
    using Parse = Result<T> (*)(Result<wire::KvResponse>);
    ParsedAnswer(std::shared_ptr<internal::KvAnswer<wire::KvResponse>> a, Parse parse)
        : a_(std::move(a)), parse_(parse) {}
    bool WaitUntil(std::optional<std::chrono::steady_clock::time_point> deadline) override {
      return a_->WaitUntil(deadline);
    }
    Result<T> Take() override { return parse_(a_->Take()); }

   private:
    std::shared_ptr<internal::KvAnswer<wire::KvResponse>> a_;
    Parse parse_;
  };

  template <typename T>
  KvFuture<T> Async(wire::KvRequest req, Result<T> (*parse)(Result<wire::KvResponse>)) {
    auto channel = Channel();
    if (!channel.ok()) return KvFuture<T>::Known(channel.status());
    return KvFuture<T>(std::make_shared<ParsedAnswer<T>>((*channel)->Start(std::move(req)), parse));
  }

  Result<wire::KvResponse> Call(const wire::KvRequest& req) {
    PACKICE_ASSIGN_OR_RETURN(std::shared_ptr<KvChannel> channel, Channel());
    return channel->Call(req);
  }

  KvChannelFactory connect_;
  std::mutex mu_;
  std::shared_ptr<KvChannel> channel_;  // guarded by mu_
  WireKvStore wire_;
};

}  // namespace

std::unique_ptr<KvClient> NewKvClient(KvChannelFactory connect) {
  return std::make_unique<RemoteKvClient>(std::move(connect), nullptr);
}

Result<std::unique_ptr<KvClient>> ConnectKv(std::string_view url, KvClientOptions options) {
  const std::string scheme = UrlScheme(url);
  const KvWatchBounds bounds{options.watch_buffer_events, options.watch_buffer_bytes};
  const Status unsupported =
      InvalidArgument("unsupported KV URL '" + std::string(url) +
                      "': expected uds:///path/to/socket, grpc://host:port or grpcs://host:port");
  KvChannelFactory connect;
  if (scheme.empty() || scheme == "uds") {
    std::string path(scheme.empty() ? url : url.substr(6));
    if (path.empty() || path[0] != '/') return unsupported;
    connect = [path, bounds] { return NewUdsKvChannel(path, bounds); };
  } else if (scheme == "grpc" || scheme == "grpcs") {
    connect = [target = GrpcTarget(url, scheme),
               grpc = GrpcOptions(scheme, options.token, options.ca_file),
               bounds] { return NewGrpcKvChannel(target, grpc, bounds); };
  } else {
    return unsupported;
  }
  PACKICE_ASSIGN_OR_RETURN(std::shared_ptr<KvChannel> channel, connect());
  return std::unique_ptr<KvClient>(new RemoteKvClient(std::move(connect), std::move(channel)));
}

}  // namespace packice
