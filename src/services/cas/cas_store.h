// CasStore: the seed's CasStore (Zako) — a Cas of tiers, memory -> local -> remote, built from
// the core's peers.
//
// - memory: a MemoryPeer holding blobs up to memory_max_blob_bytes, each for at most
//   memory_ttl and dropped sooner when nobody read it for memory_idle_ttl; a cache of local.
// - local: a LocalCasStore (the seed's two-level layout, temp file + fsync + rename) under a
//   store peer, bounded by its capacity: when a blob does not fit, the least recently used
//   blobs are evicted to make room. Every blob stored is here.
// - remote: another Cas (a node over gRPC, or the owner of the digest in a cluster), optional.
//   A remote that cannot be reached (kUnavailable, kTimeout) is skipped for a backoff (1 s,
//   doubling up to 30 s), so that the local tiers serve at their own speed meanwhile: Check and
//   FindMissing then call a blob the local tier lacks missing, a Fetch of one is kUnavailable,
//   and Stores are local only (not copied to the remote later). The first failure and the
//   recovery are logged (event=cas_remote_down, cas_remote_up); CasStats counts the errors.
//
// Every blob is verified against its digest once, by the CasPeer over the local tier, before
// it is visible. Reads try memory, then local, then remote, and fill the tiers above the one
// that had the blob (remote -> local -> memory when small). Writes go to local always, to
// memory when small, and to remote when there is one. A Fetch hands out a view of the blob
// under a read lease of the tier that holds it: no copy.
//
// Thread safety: safe for concurrent use.
#ifndef PACKICE_SERVICES_CAS_CAS_STORE_H_
#define PACKICE_SERVICES_CAS_CAS_STORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/env.h"
#include "packice/cas.h"
#include "packice/clock.h"
#include "packice/local_peer.h"

namespace packice {

// The seed's heuristic for the memory tier: a tenth of the machine's memory, clamped to
// 4 MiB .. 4 GiB.
uint64_t DefaultCasMemoryBytes();

struct CasStoreOptions {
  std::string dir;  // the local tier's directory
  uint64_t local_capacity_bytes = 16ull << 30;
  // The memory tier's capacity; 0: DefaultCasMemoryBytes().
  uint64_t memory_capacity_bytes = 0;
  // Blobs larger than this skip the memory tier; 0 turns the tier off.
  uint64_t memory_max_blob_bytes = 4 << 20;
  Duration memory_ttl = std::chrono::minutes(30);
  Duration memory_idle_ttl = std::chrono::minutes(5);
  bool sync = true;  // fdatasync blobs in the local tier (off only for tests and scratch)
  std::shared_ptr<Cas> remote;
  // A blob the remote tier has is copied into the local tier in ranges of this many bytes
  // (each one Fetch of the remote), so that a fill holds one range in memory, not the blob.
  uint64_t remote_fill_chunk_bytes = 8 << 20;
  bool background_threads = true;  // reap expired and idle copies; tests call Reap()
  std::shared_ptr<Clock> clock;    // nullptr: the system clock
  std::shared_ptr<Env> env;        // the local tier's file I/O; nullptr: Env::Default()
};

struct CasStats {
  uint64_t memory_hits = 0;
  uint64_t local_hits = 0;
  uint64_t remote_hits = 0;
  uint64_t misses = 0;
  uint64_t stored = 0;  // blobs written to the local tier
  uint64_t stored_bytes = 0;
  uint64_t already_stored = 0;  // stores of blobs that were there
  uint64_t mismatches = 0;      // stores refused: the content was not the digest
  uint64_t evictions = 0;       // local blobs evicted for room
  uint64_t imported = 0;        // blobs stored by a hard link to their file (StoreFile)
  uint64_t memory_bytes = 0;
  uint64_t local_bytes = 0;
  uint64_t local_blobs = 0;
  uint64_t remote_errors = 0;  // calls to the remote tier that failed
  bool remote_up = true;       // false while the remote tier is skipped after a failure
};

// A blob being written in place into a CasStore's local tier, from CasStore::BeginStore: the
// bytes go straight into blob() (digest.size of them, zero at first), under a create lease of
// local_peer() that the writer renews through that peer while it takes long. Destroying a
// writer that was not committed discards the blob.
//
// Thread safety: used by one thread at a time; must not outlive its store.
class CasWriter {
 public:
  virtual ~CasWriter() = default;
  virtual const Digest& digest() const = 0;
  virtual Blob& blob() = 0;
  virtual LeaseId lease() const = 0;
  virtual Duration lease_ttl() const = 0;
  // Verifies the blob against its digest and makes it stored, as Store does (memory tier when
  // small, remote when set). Once only. Errors: kDigestMismatch (nothing is stored),
  // kLeaseExpired (the lease ran out), kWrongState (committed already), kInternal.
  virtual Status Commit() = 0;
};

class CasStore : public Cas {
 public:
  // Opens the local tier (recovering its blobs). Errors: those of LocalCasStore::Open.
  static Result<std::shared_ptr<CasStore>> Open(CasStoreOptions options);

  // A writer of the blob `digest` names, for bytes that arrive in pieces (an HTTP body, a
  // file): nothing is buffered beside the blob itself. A blob stored already may be written
  // again (the commit verifies it and keeps the stored one). Errors: kOutOfCapacity, kInternal.
  virtual Result<std::unique_ptr<CasWriter>> BeginStore(const Digest& digest) = 0;
  // Stores the file at `path` under the digest of its content, which it returns. On the local
  // tier's file system the file is imported by a hard link (no copy; see LocalCasStore::
  // StageImport: the file becomes read-only, and must not be changed afterwards); elsewhere, or
  // when the node may not link or write it, its bytes are copied. Errors: those of HashFile
  // and Store.
  virtual Result<Digest> StoreFile(const std::string& path,
                                   DigestAlgorithm algorithm = DigestAlgorithm::kBlake3) = 0;

  // The local tier's peer (verified, content-addressed keys: Digest::ToString), for
  // transports that hand clients leases and mapped views of blobs.
  virtual std::shared_ptr<LocalPeer> local_peer() = 0;
  // The same store without its remote tier (memory and local only): what a node serves to
  // another node's remote-tier requests, so that two nodes that are each other's remote never
  // ask each other in a loop. Shares everything with this store (and keeps it alive).
  virtual std::shared_ptr<Cas> local_tiers() = 0;
  virtual CasStats GetCasStats() = 0;
  // The digest of the stored blob whose hash is `hex` (64 lower-case hex digits), for clients
  // that name blobs by hash alone (Bazel's HTTP cache: /cas/{sha256}). Looks in the local tier,
  // which holds every blob stored here; the empty blob is always found. Errors:
  // kInvalidArgument (not 64 lower-case hex digits), kNotFound (not on the local tier).
  Result<Digest> FindByHash(DigestAlgorithm algorithm, std::string_view hex);
  // Drops expired and idle memory copies and expired leases now.
  virtual void Reap() = 0;

  // Leases on the local tier for clients that map blobs themselves (the object API's cas/
  // keys, services/cas/cas_object_peer.h). `req.key` is a digest's canonical text.
  // - kRead: a lease on the local tier's blob, fetched into it from the remote tier (or the
  //   memory tier) first when it is not there; counted and kept in the LRU order as Fetch.
  //   Errors: kNotFound (in no tier), kInvalidArgument (not a canonical digest), the tiers'.
  // - kCreate: a create lease on the local tier, room made by evicting as Store does; write the
  //   blob's bytes, then SealLocal. Errors: those of the local tier's Acquire.
  virtual Result<Grant> AcquireLocal(const AcquireRequest& req) = 0;
  // Seals a create lease of AcquireLocal: verified against its digest (kDigestMismatch, and
  // nothing is stored), then counted, indexed and sent to the remote tier as Store does.
  // Errors: those of the local tier's Seal.
  virtual Result<ObjectInfo> SealLocal(LeaseId lease, std::optional<uint64_t> size) = 0;
};

}  // namespace packice

#endif  // PACKICE_SERVICES_CAS_CAS_STORE_H_
