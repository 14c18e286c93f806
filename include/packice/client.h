// The Packice client.
//
//   auto client = packice::Connect("uds:///run/packice.sock");     // or Connect(peer)
//   auto w = client->Create("model/layer0", bytes.size());         // a create lease
//   std::memcpy(w->data().data(), bytes.data(), bytes.size());    // straight into the node
//   w->Seal();                                                     // immutable, readable
//   auto r = client->Get("model/layer0");                          // a read lease
//   use(r->data());                                                // zero-copy span
//
// Handles are RAII: an ObjectWriter dropped without Seal() aborts its object; an ObjectReader
// releases its lease when destroyed. While a handle lives the client renews its lease in the
// background, so the node never reclaims it under a live handle.
//
// Thread safety: a Client is safe for concurrent use (calls on one connection are serialised;
// use one Client per thread for parallelism). A handle is used by one thread at a time.
#ifndef PACKICE_CLIENT_H_
#define PACKICE_CLIENT_H_

#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "packice/peer.h"
#include "packice/status.h"
#include "packice/types.h"

namespace packice {

namespace internal {
class ClientCore;
struct HandleState;
}  // namespace internal

// A CREATING object under a create lease.
class ObjectWriter {
 public:
  ObjectWriter(ObjectWriter&&) noexcept;
  ObjectWriter& operator=(ObjectWriter&&) noexcept;
  ~ObjectWriter();  // aborts the object unless it was sealed

  // The object's bytes, all zero at first; size() is the size given to Create.
  // REQUIRES: not yet sealed or aborted.
  std::span<std::byte> data();
  // The key (generated when Create was given none).
  const std::string& key() const;
  const ObjectInfo& info() const;

  // Makes the object immutable and readable under its key; `size` (<= allocated) truncates.
  // After Seal the writer holds nothing. Errors: kLeaseExpired, kAlreadyExists (exclusive create
  // lost a race), kWrongState (already sealed or aborted), kInvalidArgument (size too large).
  Result<ObjectInfo> Seal();
  Result<ObjectInfo> Seal(uint64_t size);
  // Discards the object. Idempotent.
  Status Abort();

 private:
  friend class Client;
  explicit ObjectWriter(std::unique_ptr<internal::HandleState> state);
  std::unique_ptr<internal::HandleState> state_;
};

// A sealed object under a read lease (or, for a small object read over a socket, a private copy
// that needs no lease).
class ObjectReader {
 public:
  ObjectReader(ObjectReader&&) noexcept;
  ObjectReader& operator=(ObjectReader&&) noexcept;
  ~ObjectReader();  // releases the lease

  // The content: a read-only view of the node's memory (no copy). Valid until Release.
  std::span<const std::byte> data() const;
  const std::string& key() const;
  const ObjectInfo& info() const;
  // Ends the lease early. Idempotent.
  Status Release();

 private:
  friend class Client;
  explicit ObjectReader(std::unique_ptr<internal::HandleState> state);
  std::unique_ptr<internal::HandleState> state_;
};

struct ClientOptions {
  // Renew leases of live handles this often (as a fraction of their TTL).
  double renew_fraction = 1.0 / 3;
  // The HTTP and gRPC transports (http://, https://, grpc://, grpcs:// URLs; docs/http.md,
  // docs/grpc.md).
  // Sent as "Authorization: Bearer <token>"; empty: $PACKICE_TOKEN, else no token.
  std::string http_token;
  // PEM bundle of the CAs an https or grpcs node's certificate may be signed by (a self-signed
  // certificate is its own CA); empty: $PACKICE_CA_FILE, else the system's CAs.
  std::string http_ca_file;
};

class Client {
 public:
  // Creates a CREATING object of `size` bytes under `key` (empty: the node generates an id).
  Result<ObjectWriter> Create(std::string_view key, uint64_t size, CreateOptions options = {});
  // A read lease on the sealed object under `key`. Errors: kNotFound.
  Result<ObjectReader> Get(std::string_view key);
  // Create + write + seal of `data`; one round trip for small objects.
  Result<ObjectInfo> Put(std::string_view key, std::span<const std::byte> data,
                         CreateOptions options = {});
  Result<ObjectInfo> Put(std::string_view key, std::string_view data, CreateOptions options = {});
  Result<ObjectInfo> Stat(std::string_view key);
  Result<ListPage> List(const ListOptions& options = {});
  // Unbinds `key`; readers holding it keep their view. Errors: kNotFound.
  Status Delete(std::string_view key);

  explicit Client(std::shared_ptr<internal::ClientCore> core);

 private:
  std::shared_ptr<internal::ClientCore> core_;
};

// Connects by URL: "uds:///path/to/packice.sock" (or a bare absolute socket path),
// "http://host:port" / "https://host:port" (the HTTP API: bytes are copied, no leases; see
// src/transport/http/http_channel.h), or "grpc://host:port" / "grpcs://host:port" (gRPC: the
// node's leases, bytes copied in streamed chunks; src/transport/grpc/grpc_channel.h). Errors: kInvalidArgument (unknown scheme, bad URL),
// kUnavailable (no node there).
Result<Client> Connect(std::string_view url, ClientOptions options = {});
// Connects to an in-process peer (the direct transport: no serialisation, no copies).
Client Connect(std::shared_ptr<Peer> peer, ClientOptions options = {});

// The URL clients use when none is given: $PACKICE_URL, else DefaultSocketPath() as uds://.
std::string DefaultUrl();
// Where packiced listens by default: $XDG_RUNTIME_DIR/packice.sock, else /tmp/packice-<uid>.sock.
std::string DefaultSocketPath();

}  // namespace packice

#endif  // PACKICE_CLIENT_H_
