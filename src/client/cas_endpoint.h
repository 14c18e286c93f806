// CasEndpoint: a client's calls to the content-addressed store of one node (docs/cas.md). The
// CLI's `packice cas` and the Python binding's `client.cas` use it.
//
//   PACKICE_ASSIGN_OR_RETURN(std::unique_ptr<CasEndpoint> cas,
//                            OpenCasEndpoint("uds:///run/packice.sock", options));
//   PACKICE_ASSIGN_OR_RETURN(Digest d, cas->PutFile("model.bin", DigestAlgorithm::kBlake3));
//   PACKICE_ASSIGN_OR_RETURN(CasBlob head, cas->Get(d, BlobRange::Of(0, 1024)));
//
// How each URL reaches the blobs:
// - uds:// (or a bare socket path): the object API's "cas/<digest>" keys. A put hashes here,
//   skips the upload when the node has the blob, and otherwise writes the bytes straight into
//   the node's create lease (a file of its local tier mapped here) and seals it, which the node
//   verifies. A get maps the blob's file read-only under a read lease: no copy (blobs of 64 KiB
//   or less come inline, one round trip).
// - grpc:// and grpcs://: the same keys through the gRPC object API (bytes copied in chunks).
// - http:// and https://: /v1/cas (PUT, GET with Range, HEAD, POST /v1/cas:missing) over
//   libcurl, bodies streamed.
//
// Thread safety: an endpoint is safe for concurrent use (its calls serialise on one
// connection over uds; over HTTP each call has a libcurl handle of its own).
#ifndef PACKICE_CLIENT_CAS_ENDPOINT_H_
#define PACKICE_CLIENT_CAS_ENDPOINT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "packice/cas.h"
#include "packice/client.h"
#include "packice/status.h"

namespace packice {

struct CasEndpointOptions {
  // Called now and then during a transfer with what moves (a digest's text or a file name),
  // the bytes moved and the bytes in all; from the calling thread. Empty: none.
  std::function<void(std::string_view what, uint64_t done, uint64_t total)> progress;
};

class CasEndpoint {
 public:
  virtual ~CasEndpoint() = default;

  // Stores `data` under the digest of its content (computed here), which it returns. Errors:
  // the node's (kOutOfCapacity, ...), kUnavailable (no node).
  virtual Result<Digest> Put(std::span<const std::byte> data, DigestAlgorithm algorithm) = 0;
  // Stores the file at `path`, hashed here, without reading it whole into memory. Errors:
  // HashFile's (kNotFound, kInvalidArgument for a directory or FIFO), kDigestMismatch (the file
  // changed while it was sent), the node's.
  virtual Result<Digest> PutFile(const std::string& path, DigestAlgorithm algorithm) = 0;
  // Stores `data` under `digest`. Errors: kDigestMismatch (the content is not the digest;
  // nothing is stored), the node's.
  virtual Status Store(const Digest& digest, std::span<const std::byte> data) = 0;
  // The bytes of `range` of the blob, valid while the returned CasBlob (its holder) lives.
  // Errors: kNotFound, kOutOfRange (a range past the end), kUnavailable.
  virtual Result<CasBlob> Get(const Digest& digest, BlobRange range) = 0;
  // Writes `range` of the blob to `fd` (bounded memory however large it is). Errors: as Get,
  // and kInternal for a write to `fd` that fails (errno in the message).
  virtual Status GetTo(const Digest& digest, BlobRange range, int fd) = 0;
  // The digests of `digests` the node does not hold, in their order.
  virtual Result<std::vector<Digest>> Missing(std::span<const Digest> digests) = 0;
  // The blob's size if the node holds it. Errors: kNotFound.
  virtual Result<uint64_t> Stat(const Digest& digest) = 0;
};

// An endpoint for the node at `url` (uds://, a bare absolute socket path, http(s)://,
// grpc(s)://). options.http_token and options.http_ca_file (else $PACKICE_TOKEN and
// $PACKICE_CA_FILE) as for Connect. Errors: kInvalidArgument (another scheme, a bad URL),
// kUnavailable (uds and grpc: no node there).
Result<std::unique_ptr<CasEndpoint>> OpenCasEndpoint(const std::string& url,
                                                     const ClientOptions& options,
                                                     CasEndpointOptions cas_options = {});
// Over an in-process peer (the direct transport), as the uds endpoint over `client`.
std::unique_ptr<CasEndpoint> NewObjectCasEndpoint(Client client,
                                                  CasEndpointOptions cas_options = {});

// The object API's key of a blob: "cas/" + Digest::ToString().
std::string CasObjectKey(const Digest& digest);

}  // namespace packice

#endif  // PACKICE_CLIENT_CAS_ENDPOINT_H_
