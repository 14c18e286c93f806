// A Cas over REAPI v2 gRPC, client side: another packiced (or any REAPI remote cache) reached at
// grpc://host:port or grpcs://host:port, as the remote tier of a CasStore or on its own.
//
//   GrpcCasOptions o;
//   o.bearer_token = token;
//   Result<std::shared_ptr<Cas>> cas = OpenGrpcCas("grpcs://cache.example:9090", o);
//   (*cas)->Store(digest, bytes);
//
// The calls (docs/reapi.md, "The client"):
//  - Check and FindMissing: ContentAddressableStorage.FindMissingBlobs, at most
//    max_find_missing_digests digests per request (each algorithm its own requests).
//  - Store: BatchUpdateBlobs for a blob that fits the batch limit (the server's
//    max_batch_total_size_bytes from Capabilities, asked once, within the message limit; a
//    conservative default when the server does not say), else ByteStream.Write in chunks of
//    rpc::kChunkBytes under "{instance}/uploads/{uuid}/blobs/{blake3/}{hash}/{size}". A stream
//    that breaks is resumed at QueryWriteStatus's committed_size (write_attempts in all).
//  - Fetch: BatchReadBlobs for a whole blob within the batch limit, else ByteStream.Read with
//    read_offset and read_limit. The bytes go into memory the CasBlob owns, so one Fetch holds
//    at most max_fetch_bytes: a larger range is kOutOfCapacity (fetch it in ranges, as
//    CasStore's local-tier fill does). A whole blob is hashed and compared with its digest
//    (kDigestMismatch: a remote that lies); a range cannot be checked.
//  - LocalPath: always nullopt (the blobs are on another machine).
// The digest function rides in every request (digest_function: SHA256 or BLAKE3) and in the
// ByteStream names ("blobs/blake3/..." for BLAKE3; nothing for SHA-256, REAPI's default).
//
// Every call has a deadline: call_timeout for unary calls, and for streams call_timeout plus
// the time the bytes take at min_stream_bytes_per_second. Errors map to Packice's codes (the
// packice-error trailer of a Packice server, else gRPC's code, rpc::FromGrpc): kUnavailable
// (no server answers), kTimeout (a deadline passed), kNotFound, kOutOfRange, kDigestMismatch,
// kPermissionDenied (a missing or wrong token), kInvalidArgument (a request the server refused;
// a batch blob the server found not to be its digest is REAPI's INVALID_ARGUMENT),
// kProtocolError (a reply that breaks the protocol: too many or too few bytes).
//
// Thread safety: safe for concurrent use; calls share one connection (gRPC multiplexes them).
#ifndef PACKICE_TRANSPORT_GRPC_REAPI_REAPI_CAS_H_
#define PACKICE_TRANSPORT_GRPC_REAPI_REAPI_CAS_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "packice/cas.h"
#include "packice/status.h"

namespace grpc {
class Channel;
}  // namespace grpc

namespace packice {

struct GrpcCasOptions {
  // grpcs://: a PEM bundle of the CAs that may sign the server's certificate; empty: the
  // system's.
  std::string ca_file;
  // Sent as "authorization: Bearer <token>" on every call; empty: none.
  std::string bearer_token;
  // REAPI's instance name of every request ("" the unnamed instance). A URL's path, when it
  // has one (grpc://host:port/some/instance), wins over this.
  std::string instance_name;
  // Deadline of each unary call (FindMissingBlobs, the batches, Capabilities,
  // QueryWriteStatus), and the fixed part of a stream's deadline.
  std::chrono::milliseconds call_timeout{30'000};
  // A stream's deadline allows its bytes this rate at least: call_timeout + bytes / rate.
  uint64_t min_stream_bytes_per_second = 1 << 20;
  // The most bytes one Fetch holds in memory; a longer range is kOutOfCapacity.
  uint64_t max_fetch_bytes = 64ull << 20;
  // The batch limit when the server names none (or Capabilities fails); the server's own is
  // used up to the message limit (rpc::kMaxMessageBytes less an envelope). 0: never batch.
  uint64_t default_batch_bytes = 1 << 20;
  // The batch limit at most, whatever the server allows. 0: never batch (always ByteStream).
  uint64_t max_batch_bytes = UINT64_MAX;
  // Digests per FindMissingBlobs request (about 80 bytes each on the wire).
  size_t max_find_missing_digests = 16'384;
  // ByteStream.Write streams per upload: the first and the resumes after a broken stream.
  int write_attempts = 3;
  // Compare a whole fetched blob with its digest (kDigestMismatch when it is not).
  bool verify_fetches = true;
  // Node to node: every call carries "packice-forwarded: 1", so that a Packice server answers
  // it from its own tiers and never asks its own remote tier (no loops between nodes that are
  // each other's remote).
  bool forwarded = false;
};

// A Cas of the REAPI server at `url`: "grpc://host:port" or "grpcs://host:port" (TLS, the
// certificate checked, host name included), with an optional "/instance/name" path. It does
// not connect yet: a server that is down now fails the calls (kUnavailable), not the open, and
// is reached once it is back. Errors: kInvalidArgument (another scheme, a bad target, token or
// instance name, an unreadable CA file).
Result<std::shared_ptr<Cas>> OpenGrpcCas(std::string_view url, const GrpcCasOptions& options = {});

// The same over a connection made elsewhere (NewGrpcConnection), which it shares.
std::shared_ptr<Cas> NewGrpcCas(std::shared_ptr<::grpc::Channel> channel,
                                const GrpcCasOptions& options);

// The "host:port" of a grpc:// or grpcs:// URL and whether it is TLS. Errors: kInvalidArgument.
struct GrpcCasTarget {
  std::string target;    // host:port
  bool tls = false;      // grpcs://
  std::string instance;  // the path without its leading '/', or ""
};
Result<GrpcCasTarget> ParseGrpcCasUrl(std::string_view url);

}  // namespace packice

#endif  // PACKICE_TRANSPORT_GRPC_REAPI_REAPI_CAS_H_
