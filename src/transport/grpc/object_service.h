// The object API over gRPC, server side: service packice.rpc.Objects (objects.proto) calling a
// Peer. Bytes stream in chunks of kChunkBytes both ways, so a call holds one chunk in memory
// whatever the object's size. Put and Seal write the received chunks into the blob; Get and
// Read send slices of the blob's mapped bytes (chunk_codec.h): no copy in user space, the
// slices keep the mapping alive until gRPC has sent them.
//
// Leases belong to sessions, as over the Unix socket: Create and Open need the call to name an
// open session (metadata "packice-session", opened by the Session stream), and only calls
// naming that session may seal, release, discard, renew or read the lease. When the Session
// stream ends, the node closes the session: its read leases end and its unsealed objects are
// discarded. Put and Get need no session (no lease outlives the call).
//
// Thread safety: gRPC calls the methods from its threads concurrently.
#ifndef PACKICE_TRANSPORT_GRPC_OBJECT_SERVICE_H_
#define PACKICE_TRANSPORT_GRPC_OBJECT_SERVICE_H_

#include <absl/container/flat_hash_map.h>
#include <absl/container/flat_hash_set.h>

#include <boost/asio/thread_pool.hpp>
#include <memory>
#include <string>

#include "core/mutex.h"
#include "packice/peer.h"
#include "transport/grpc/objects.grpc.pb.h"

namespace packice::rpc {

struct ObjectServiceOptions {
  // Required as "authorization: Bearer <token>" on every call; empty: none.
  std::string bearer_token;
  // Get answers an object up to this size in its first message (and bigger ones in chunks).
  uint64_t inline_max_bytes = 64 * 1024;
  // Leases one session may hold at once; more is kOutOfCapacity (bounds the node's tables).
  size_t max_leases_per_session = 100'000;
  // Serves the calls another node of a cluster forwards (metadata "packice-forwarded"): Put,
  // Get, Stat, List and Delete. nullptr: the service's peer serves them too.
  std::shared_ptr<Peer> forwarded_peer;
  // Threads that start Gets and Reads (a Get's Acquire may wait: for a cluster's owner, a
  // disk): gRPC's own callback threads never block on a peer.
  int threads = 8;
};

class ObjectService final
    : public Objects::WithRawCallbackMethod_Read<Objects::WithRawCallbackMethod_Get<
          Objects::WithCallbackMethod_Session<Objects::Service>>> {
 public:
  ObjectService(std::shared_ptr<Peer> peer, ObjectServiceOptions options);
  ~ObjectService() override;

  ::grpc::ServerBidiReactor<SessionRequest, SessionInfo>* Session(
      ::grpc::CallbackServerContext* context) override;
  ::grpc::Status Create(::grpc::ServerContext* context, const wire::CreateRequest* request,
                        LeaseReply* reply) override;
  ::grpc::Status Seal(::grpc::ServerContext* context, ::grpc::ServerReader<SealChunk>* reader,
                      wire::ObjectInfo* reply) override;
  ::grpc::Status Release(::grpc::ServerContext* context, const wire::LeaseIdRequest* request,
                         Empty* reply) override;
  ::grpc::Status Discard(::grpc::ServerContext* context, const wire::LeaseIdRequest* request,
                         Empty* reply) override;
  ::grpc::Status Renew(::grpc::ServerContext* context, const wire::RenewRequest* request,
                       wire::RenewResponse* reply) override;
  ::grpc::Status Open(::grpc::ServerContext* context, const wire::OpenRequest* request,
                      LeaseReply* reply) override;
  ::grpc::ServerWriteReactor<::grpc::ByteBuffer>* Read(::grpc::CallbackServerContext* context,
                                                       const ::grpc::ByteBuffer* request) override;
  ::grpc::Status Put(::grpc::ServerContext* context, ::grpc::ServerReader<PutChunk>* reader,
                     wire::ObjectInfo* reply) override;
  ::grpc::ServerWriteReactor<::grpc::ByteBuffer>* Get(::grpc::CallbackServerContext* context,
                                                      const ::grpc::ByteBuffer* request) override;
  ::grpc::Status Stat(::grpc::ServerContext* context, const wire::KeyRequest* request,
                      wire::ObjectInfo* reply) override;
  ::grpc::Status List(::grpc::ServerContext* context, const wire::ListRequest* request,
                      wire::ListResponse* reply) override;
  ::grpc::Status Delete(::grpc::ServerContext* context, const wire::KeyRequest* request,
                        Empty* reply) override;

  // Sessions whose Session stream is open.
  size_t session_count() const;

 private:
  class SessionReactor;
  class BlobStream;
  struct StreamPlan;
  // A lease granted over this service and not yet ended through it.
  struct HeldLease {
    SessionId session = 0;
    LeaseMode mode = LeaseMode::kRead;
    uint64_t size = 0;  // kRead: the content's size
    std::shared_ptr<Blob> blob;
  };

  // The open session the call names. Errors: kInvalidArgument (malformed), kLeaseExpired (not
  // open: its Session stream ended).
  Result<SessionId> CallSession(const ::grpc::ServerContextBase& context) const;
  // The lease, when the call's session holds it. Errors: kLeaseExpired.
  Result<HeldLease> Held(const ::grpc::ServerContextBase& context, LeaseId lease) const;
  Status Hold(LeaseId lease, HeldLease held);
  void Forget(LeaseId lease);
  Status Grant(Result<packice::Grant> grant, LeaseMode mode, SessionId session, LeaseReply* reply);
  Status EndLease(::grpc::ServerContext* context, LeaseId lease, bool discard);
  SessionId OpenSession();
  void CloseSession(SessionId session);

  // The peer a call is for: the local one for a forwarded call (never forwarded again).
  Peer& PeerFor(const ::grpc::ServerContextBase& context) const;
  // What a Get or Read streams (run on pool_).
  Result<StreamPlan> PlanGet(const ::grpc::CallbackServerContext& context,
                             const wire::GetRequest& request);
  Result<StreamPlan> PlanRead(const ::grpc::CallbackServerContext& context,
                              const ReadRequest& request);

  std::shared_ptr<Peer> peer_;
  ObjectServiceOptions options_;
  mutable Mutex mu_;
  absl::flat_hash_map<LeaseId, HeldLease> leases_ ABSL_GUARDED_BY(mu_);
  // Open sessions and the leases each holds.
  absl::flat_hash_map<SessionId, absl::flat_hash_set<LeaseId>> sessions_ ABSL_GUARDED_BY(mu_);
  boost::asio::thread_pool pool_;  // last: joined before the members its tasks use go
};

}  // namespace packice::rpc

#endif  // PACKICE_TRANSPORT_GRPC_OBJECT_SERVICE_H_
