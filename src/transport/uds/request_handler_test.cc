#include "transport/uds/request_handler.h"

#include <gtest/gtest.h>

#include "packice/memory_peer.h"
#include "testing.h"
#include "transport/uds/wire.pb.h"

namespace packice {
namespace {

// A peer whose seals fail the way a durable store's commit can: the lease ends, the object is
// discarded, and the error is not one that leaves the lease live.
class FailingSealPeer final : public Peer {
 public:
  explicit FailingSealPeer(std::shared_ptr<MemoryPeer> inner) : inner_(std::move(inner)) {}
  Result<Grant> Acquire(const AcquireRequest& req) override { return inner_->Acquire(req); }
  Result<ObjectInfo> Seal(LeaseId lease, std::optional<uint64_t>) override {
    inner_->Discard(lease).IgnoreError();
    return Internal("disk full while syncing");
  }
  Status Release(LeaseId lease) override { return inner_->Release(lease); }
  Status Discard(LeaseId lease) override { return inner_->Discard(lease); }
  Status Renew(LeaseId lease) override { return inner_->Renew(lease); }
  Result<ObjectInfo> Stat(std::string_view key) override { return inner_->Stat(key); }
  Result<ListPage> List(const ListOptions& o) override { return inner_->List(o); }
  Status Delete(std::string_view key) override { return inner_->Delete(key); }
  SessionId OpenSession() override { return inner_->OpenSession(); }
  void CloseSession(SessionId s) override { inner_->CloseSession(s); }

 private:
  std::shared_ptr<MemoryPeer> inner_;
};

wire::Response Call(ServerSession& session, const wire::Request& req) {
  Outgoing out;
  session.Handle(req.SerializeAsString(), &out);
  FrameReader reader;
  reader.Append(out.frame);
  auto frame = reader.Next();
  wire::Response resp;
  EXPECT_TRUE(frame.ok() && frame->has_value());
  if (frame.ok() && frame->has_value()) resp.ParseFromArray((*frame)->data(), (*frame)->size());
  return resp;
}

TEST(ServerSessionTest, AFailedSealDoesNotKeepTheObjectAlive) {
  MemoryPeerOptions options;
  options.background_threads = false;
  auto memory = MemoryPeer::Create(options);
  ServerSession session(std::make_shared<FailingSealPeer>(memory), ServerLimits{});

  wire::Request create;
  create.set_id(1);
  create.mutable_create()->set_key("k");
  create.mutable_create()->set_size(1000);  // inline: the seal carries the bytes
  wire::Response created = Call(session, create);
  ASSERT_EQ(created.code(), 0) << created.message();
  ASSERT_EQ(created.lease().blob().kind(), wire::Blob::INLINE);
  EXPECT_EQ(memory->GetStats().used_bytes, 1000u);

  wire::Request seal;
  seal.set_id(2);
  seal.mutable_seal()->set_lease(created.lease().lease());
  seal.mutable_seal()->set_data(std::string(1000, 'x'));
  wire::Response sealed = Call(session, seal);
  EXPECT_EQ(sealed.code(), static_cast<int>(StatusCode::kInternal));
  // The connection let go of the blob with the lease: the memory is back.
  EXPECT_EQ(memory->GetStats().used_bytes, 0u);
  EXPECT_EQ(memory->GetStats().leases, 0u);
}

}  // namespace
}  // namespace packice
