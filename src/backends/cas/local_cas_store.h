// LocalCasStore: content-addressed blobs as plain files, in the seed's layout (Zako's LocalCas).
//
//   DIR/LOCK                              held (flock) by the one process using DIR
//   DIR/tmp/                              blobs being written, or removed but still held
//   DIR/<algorithm>/<h0h1>/<h2h3>/<h4..h63>   a stored blob: exactly its bytes, read-only
//
// where h0..h63 are the digest's hex digits and <algorithm> is "blake3" or "sha256". A blob's
// key is its digest's canonical text (Digest::ToString: "blake3:<hex>/<size>"), so no key
// becomes a path except through the hex digits. A new blob is a file in tmp/; its commit
// fdatasyncs it, links it into place (never over another file) and fsyncs the directory (the two
// levels are made on the first blob under them, synced into their parents), so after a crash a blob
// is either whole at its path or absent. A file at a blob's path holds exactly the blob, so it can
// be handed out (LocalPath), hard-linked or mapped as it is.
//
// What this store does not check: the content against the digest (the peer above verifies a
// blob before it commits; start-up trusts what the rename made durable), metadata and TTLs
// (a CAS blob has neither: a create naming them is refused).
//
// Thread safety: safe for concurrent use.
#ifndef PACKICE_BACKENDS_CAS_LOCAL_CAS_STORE_H_
#define PACKICE_BACKENDS_CAS_LOCAL_CAS_STORE_H_

#include <memory>
#include <string>

#include "backends/blob_store.h"
#include "core/env.h"
#include "packice/cas.h"
#include "packice/clock.h"

namespace packice {

struct LocalCasStoreOptions {
  std::string dir;
  uint64_t capacity_bytes = 16ull << 30;
  // fdatasync each blob and fsync its directory before a commit returns. Off only for tests
  // and scratch data: a crash may then lose stored blobs (never leave part of one).
  bool sync = true;
  std::shared_ptr<Clock> clock;  // creation times of recovered blobs; nullptr = system clock
  std::shared_ptr<Env> env;      // every file operation; nullptr = Env::Default()
};

class LocalCasStore final : public BlobStore {
 public:
  // Opens (creating if needed) `options.dir` and locks it. Errors: kAlreadyExists (another
  // process holds the directory), kInvalidArgument (not a directory), kInternal.
  static Result<std::unique_ptr<LocalCasStore>> Open(LocalCasStoreOptions options);
  ~LocalCasStore() override;

  // The path of `digest`'s blob under this store (whether it is stored or not).
  std::string PathFor(const Digest& digest) const;

  // An import by hard link: while an ImportScope lives, an Allocate of its digest's key on the
  // scope's thread (the peer above allocates synchronously in Acquire) takes the file at
  // `source` as the blob's content, linked into tmp/, instead of a new empty file; the peer's
  // seal then verifies it and the commit links it into place. Other threads' allocations of the
  // key are not affected (they never write into the importer's file). The blob shares its inode
  // with `source`: the commit makes it read-only, and whoever imports must not change the file
  // afterwards (a change through another name would change the blob).
  class ImportScope {
   public:
    // Errors: kInvalidArgument (`source` is not a regular file of the digest's size),
    // kUnimplemented (no link here: another file system (EXDEV), a file the node may not link
    // or open for writing (EPERM, EACCES, EROFS); copy the bytes instead), kInternal.
    static Result<std::unique_ptr<ImportScope>> Open(LocalCasStore& store, const Digest& digest,
                                                     const std::string& source);
    ~ImportScope();  // unlinks the staged link unless an Allocate took it
    ImportScope(const ImportScope&) = delete;
    ImportScope& operator=(const ImportScope&) = delete;
    // Whether an Allocate took the file.
    bool taken() const { return fd_.get() < 0; }

   private:
    friend class LocalCasStore;
    ImportScope(LocalCasStore& store, std::string key, std::string tmp, UniqueFd fd);
    LocalCasStore& store_;
    const std::string key_;
    const std::string tmp_;
    UniqueFd fd_;  // the staged file, read-write; invalid once taken
    ImportScope* const outer_;
  };

  std::string_view tier() const override { return "disk"; }
  uint64_t capacity_bytes() const override;
  uint64_t ChargeFor(uint64_t size) const override;
  // Errors: kInvalidArgument (the key is not a canonical digest, the size is not the digest's,
  // metadata or a TTL), kOutOfCapacity, kInternal.
  Result<std::shared_ptr<Blob>> Allocate(const ObjectInfo& info) override;
  // Errors: kAlreadyExists (a blob of this digest is at its path already: the caller keeps
  // that one), kInternal.
  Status Commit(Blob& blob, const ObjectInfo& info) override;
  void Remove(Blob& blob) override;
  // Every blob file under DIR whose name is a digest and whose size is the digest's; others
  // are left where they are and logged. tmp/ is emptied.
  Result<std::vector<StoredObject>> Recover() override;
  StoreStats GetStats() const override;

  class State;

 private:
  explicit LocalCasStore(std::shared_ptr<State> state);
  std::shared_ptr<State> state_;
};

}  // namespace packice

#endif  // PACKICE_BACKENDS_CAS_LOCAL_CAS_STORE_H_
