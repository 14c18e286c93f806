// The node's KV over gRPC, server side: service packice.rpc.Kv (kv_service.proto) over a
// KvStore.
//
//  - Call is a unary method on gRPC's sync threads (bounded by [grpc] max_threads, as every
//    unary call of the port): HandleKvRequest (kv_wire_convert.h) runs it, rpc::Serve checks the
//    bearer token and carries the status.
//  - Watch is a callback-API stream (ServerWriteReactor): it holds no thread while it waits for
//    events. The watcher's notify callback (run on the KV's publishing thread) only pulls the
//    events already buffered and starts a write; the next pull waits until that write is done,
//    so a client that reads slower than the KV writes fills the watcher's bounded buffer and
//    gets "watcher too slow, resume from revision R" (end_code out_of_capacity) instead of
//    growing the node's memory. A cancelled call, a passed deadline or the server's shutdown
//    cancels the watcher and finishes the stream at once.
//
// Thread safety: gRPC calls the methods from its threads concurrently; the store must outlive
// the service's calls (the server's Stop).
#ifndef PACKICE_TRANSPORT_GRPC_KV_SERVICE_H_
#define PACKICE_TRANSPORT_GRPC_KV_SERVICE_H_

#include <memory>
#include <string>

#include "packice/kv.h"
#include "transport/grpc/kv_service.grpc.pb.h"

namespace packice::rpc {

struct KvServiceOptions {
  // Required as "authorization: Bearer <token>" on every call; empty: none.
  std::string bearer_token;
  // Calls marked "packice-forwarded" (another node's, in a cluster) are served by this store —
  // the node's own — and never forwarded again; null: by the service's store.
  std::shared_ptr<KvStore> forwarded_kv;
};

class KvService final : public Kv::WithCallbackMethod_Watch<Kv::Service> {
 public:
  KvService(std::shared_ptr<KvStore> kv, KvServiceOptions options);

  ::grpc::Status Call(::grpc::ServerContext* context, const wire::KvRequest* request,
                      wire::KvResponse* reply) override;
  ::grpc::ServerWriteReactor<wire::KvWatchEvents>* Watch(::grpc::CallbackServerContext* context,
                                                         const wire::KvRequest* request) override;

  // Events pulled from the watcher at once: whole revisions, at least one. A frame carries
  // whole revisions; only a revision over the message size limit spans frames.
  static constexpr size_t kEventsPerFrame = 256;

 private:
  class WatchReactor;

  // The store a call is served by: forwarded_kv for forwarded calls.
  KvStore& StoreFor(const ::grpc::ServerContextBase& context) const;

  std::shared_ptr<KvStore> kv_;
  KvServiceOptions options_;
};

}  // namespace packice::rpc

#endif  // PACKICE_TRANSPORT_GRPC_KV_SERVICE_H_
