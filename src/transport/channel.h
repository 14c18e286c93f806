// Channel: the client side of a transport. The public Client (include/packice/client.h) talks
// to a node only through a Channel; each transport provides one (direct, uds, ...).
//
// Thread safety: every Channel is safe for concurrent use.
#ifndef PACKICE_TRANSPORT_CHANNEL_H_
#define PACKICE_TRANSPORT_CHANNEL_H_

#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "packice/peer.h"
#include "packice/status.h"
#include "packice/types.h"

namespace packice {

// A view over bytes the view owns (inline reads, inline writes).
class OwnedView final : public BlobView {
 public:
  explicit OwnedView(size_t size, bool carried_on_seal)
      : bytes_(size), carried_on_seal_(carried_on_seal) {}
  explicit OwnedView(std::vector<std::byte> bytes) : bytes_(std::move(bytes)) {}
  std::span<std::byte> bytes() override { return bytes_; }
  bool carried_on_seal() const override { return carried_on_seal_; }

 private:
  std::vector<std::byte> bytes_;
  bool carried_on_seal_ = false;
};

// A leased (or inline-read) object as a client holds it.
struct OpenedObject {
  LeaseId lease = 0;  // 0 when no lease is held (a small object read inline)
  Duration lease_ttl{0};
  ObjectInfo info;
  std::shared_ptr<BlobView> view;
};

class Channel {
 public:
  virtual ~Channel() = default;

  virtual Result<OpenedObject> Create(std::string_view key, uint64_t size,
                                      const CreateOptions& options) = 0;
  // Seals the object of `lease`, sending the view's bytes first when it carries them.
  virtual Result<ObjectInfo> Seal(LeaseId lease, BlobView& view, std::optional<uint64_t> size) = 0;
  virtual Status Release(LeaseId lease) = 0;
  virtual Status Discard(LeaseId lease) = 0;
  // Renews `leases`; those no longer live are appended to `expired`.
  virtual Status Renew(std::span<const LeaseId> leases, std::vector<LeaseId>* expired) = 0;
  // A read lease on `key`.
  virtual Result<OpenedObject> Open(std::string_view key) = 0;
  // Create, write, seal; one round trip for small objects.
  virtual Result<ObjectInfo> Put(std::string_view key, std::span<const std::byte> data,
                                 const CreateOptions& options) = 0;
  // Like Open, but a small object may come back inline with no lease (lease == 0).
  virtual Result<OpenedObject> Get(std::string_view key) = 0;
  virtual Result<ObjectInfo> Stat(std::string_view key) = 0;
  virtual Result<ListPage> List(const ListOptions& options) = 0;
  virtual Status Delete(std::string_view key) = 0;
};

// The in-process transport: calls `peer` directly; views point at the peer's own memory.
std::shared_ptr<Channel> NewDirectChannel(std::shared_ptr<Peer> peer);

// The Unix-socket transport. Errors: kUnavailable (no node listening at `path`).
Result<std::shared_ptr<Channel>> NewUdsChannel(const std::string& path);

}  // namespace packice

#endif  // PACKICE_TRANSPORT_CHANNEL_H_
