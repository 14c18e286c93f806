// The KV API (packice/kv.h) in wire messages (kv_wire.proto), both ways, written once for every
// transport that carries it:
//
//   server: HandleKvRequest runs one KvRequest (not a watch) on a KvStore;
//   client: WireKvStore is a KvStore whose calls become KvRequests handed to a KvCaller
//           (the Unix socket, gRPC, or a node forwarding to the owner of a namespace).
//
// Watches are not here: each transport pushes their events its own way (ToWire(KvEvent)).
#ifndef PACKICE_TRANSPORT_UDS_KV_WIRE_CONVERT_H_
#define PACKICE_TRANSPORT_UDS_KV_WIRE_CONVERT_H_

#include <functional>
#include <memory>

#include "packice/kv.h"
#include "packice/status.h"
#include "transport/uds/kv_wire.pb.h"

namespace packice {

void ToWire(const KeyValue& kv, wire::KvKeyValue* out);
void ToWire(KeyValue&& kv, wire::KvKeyValue* out);  // moves the key and the value
KeyValue FromWire(const wire::KvKeyValue& in);
KeyValue FromWire(wire::KvKeyValue&& in);  // moves the key and the value
void ToWire(const NamespaceOptions& options, wire::KvNamespaceOptions* out);
// kInvalidArgument for an unknown engine, mode or fsync policy, or a negative duration.
Result<NamespaceOptions> FromWire(const wire::KvNamespaceOptions& in);
void ToWire(const KvEvent& event, wire::KvEventMsg* out);
Result<KvEvent> FromWire(const wire::KvEventMsg& in);
// A watch request's options (the transports' servers start watches with them).
WatchOptions FromWire(const wire::KvWatch& in);

// A MultiGet or MultiPut carries at most kMaxMultiItems keys (more: kInvalidArgument). A
// MultiGet's reply stops taking values at kMaxMultiReplyBytes: the keys after that answer
// kOutOfCapacity on their own, to be asked again.
inline constexpr size_t kMaxMultiItems = 1024;
// (2 MiB: with the value that crosses it, a reply stays under gRPC's 4 MiB message limit.)
inline constexpr size_t kMaxMultiReplyBytes = 2u << 20;

// Runs `req` on `kv` and fills `resp`; returns the call's status. A watch or cancel_watch is
// kUnimplemented here (the transport handles those), an empty request kInvalidArgument.
Status HandleKvRequest(KvStore& kv, const wire::KvRequest& req, wire::KvResponse* resp);

// Runs single-put requests (`put` set) of one namespace (REQUIRES: the same `ns`) as one
// KvStore::PutMany — one log append and fdatasync for all in a Linear namespace — filling
// each one's status and response as HandleKvRequest would.
void HandleKvPuts(KvStore& kv, std::span<const wire::KvRequest* const> puts,
                  std::vector<Status>* status, std::vector<wire::KvResponse>* resp);

// Carries one KvRequest to a KvStore somewhere and returns its response or status.
using KvCaller = std::function<Result<wire::KvResponse>(const wire::KvRequest&)>;

// A KvStore over a KvCaller. Watch is kUnimplemented (the transport's client adds it).
// Thread safety: as the caller's.
class WireKvStore : public KvStore {
 public:
  explicit WireKvStore(KvCaller call) : call_(std::move(call)) {}

  Status CreateNamespace(std::string_view path, const NamespaceOptions& options) override;
  Status DeleteNamespace(std::string_view path) override;
  Result<std::vector<NamespaceInfo>> ListNamespaces(std::string_view prefix) override;
  Result<KeyValue> Get(std::string_view ns, std::string_view key) override;
  Result<PutResult> Put(std::string_view ns, std::string_view key, std::string_view value,
                        const PutOptions& options = {}) override;
  Result<DeleteResult> Delete(std::string_view ns, std::string_view key,
                              const DeleteOptions& options = {}) override;
  Result<ScanResult> Scan(std::string_view ns, const ScanOptions& options) override;
  Result<BatchResult> Commit(std::string_view ns, std::span<const BatchOp> ops) override;
  Result<std::unique_ptr<KvWatcher>> Watch(std::string_view ns,
                                           const WatchOptions& options) override;

  // KvClient's batched calls (see there).
  Result<std::vector<Result<KeyValue>>> MultiGet(std::string_view ns,
                                                 std::span<const std::string> keys);
  Result<std::vector<Result<PutResult>>> MultiPut(std::string_view ns,
                                                  std::span<const KvPutItem> puts);

  // The request of a watch (the transport's client sends it its own way).
  static wire::KvRequest WatchRequest(std::string_view ns, const WatchOptions& options);
  // The request of each call, for transports that send them without waiting (pipelining).
  static wire::KvRequest GetRequest(std::string_view ns, std::string_view key);
  static wire::KvRequest PutRequest(std::string_view ns, std::string_view key,
                                    std::string_view value, const PutOptions& options);
  // The results of those requests' responses.
  static Result<KeyValue> ParseGet(Result<wire::KvResponse> resp);
  static Result<PutResult> ParsePut(Result<wire::KvResponse> resp);

 private:
  KvCaller call_;
};

}  // namespace packice

#endif  // PACKICE_TRANSPORT_UDS_KV_WIRE_CONVERT_H_
