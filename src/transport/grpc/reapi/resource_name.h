// The ByteStream resource names of REAPI's CAS blobs (docs/reapi.md):
//
//   read:   {instance_name}/blobs/{digest_function/}{hash}/{size}
//   write:  {instance_name}/uploads/{uuid}/blobs/{digest_function/}{hash}/{size}{/metadata}
//
// The instance name is empty (the name starts at "blobs/" or "uploads/") or any number of
// segments, none of them a keyword of the API ("blobs", "uploads", "actions", "actionResults",
// "operations", "capabilities", "compressed-blobs"). The digest function is omitted for SHA-256
// ("sha256" is accepted too) and "blake3" for BLAKE3. Parsing is strict: no empty, "." or ".."
// segment anywhere, a hash of exactly 64 lower-case hex digits, a plain decimal size.
// "compressed-blobs" names are refused: Packice supports no compressor.
#ifndef PACKICE_TRANSPORT_GRPC_REAPI_RESOURCE_NAME_H_
#define PACKICE_TRANSPORT_GRPC_REAPI_RESOURCE_NAME_H_

#include <cstddef>
#include <string>
#include <string_view>

#include "packice/cas.h"
#include "packice/status.h"

namespace packice::rpc {

inline constexpr size_t kMaxResourceNameBytes = 4096;

struct BlobResource {
  std::string instance;  // "" or segments joined by '/'
  std::string uuid;      // writes only
  Digest digest;

  // What names an upload: the instance, the uuid and the digest (not the metadata).
  std::string UploadKey() const;
};

// A read's resource name. Errors: kInvalidArgument saying what is wrong.
Result<BlobResource> ParseReadResource(std::string_view name);
// A write's resource name. Errors: kInvalidArgument saying what is wrong.
Result<BlobResource> ParseWriteResource(std::string_view name);

// The names a client sends (the parsers' inverses): "{instance/}blobs/{blake3/}{hash}/{size}"
// and "{instance/}uploads/{uuid}/blobs/{blake3/}{hash}/{size}"; SHA-256 names no function.
std::string ReadResourceName(std::string_view instance, const Digest& digest);
std::string WriteResourceName(std::string_view instance, std::string_view uuid,
                              const Digest& digest);

}  // namespace packice::rpc

#endif  // PACKICE_TRANSPORT_GRPC_REAPI_RESOURCE_NAME_H_
