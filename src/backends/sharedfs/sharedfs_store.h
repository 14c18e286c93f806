// SharedFSStore: the objects of a directory that several processes share — on one machine, or
// on many through NFS or a cluster filesystem. The directory is the only truth: nothing here
// caches what another process may change. docs/sharedfs.md has the layout and the protocol:
//
//   DIR/LOCKS                     byte-range locks: one byte per key stripe
//   DIR/objects/xx/<hash>.pkc     an object being created (CREATING): its writer holds a lock
//   DIR/objects/xx/<hash>.pks     the sealed object bound to the key
//   DIR/trash/<hash>.<id>.pkt     unbound objects (deleted, replaced, expired) until no process
//                                 reads them any more
//
// <hash> is XXH3-128 of the key in hex and xx its first byte. Each file holds its own header
// (backends/sharedfs/object_file.h).
//
// Locks are open-file-description (OFD) fcntl locks: owned by an open file, not a process, so
// two opens in one process conflict just as two processes do, and a lock dies with its last
// descriptor or mapping — a killed writer's lock is gone at once. A writer write-locks its
// .pkc file until the seal; readers read-lock the .pks file while they hold it; renames and
// unlinks of a key's names happen under the key's stripe lock in DIR/LOCKS.
//
// Thread safety: safe for concurrent use, and for concurrent use of the same directory by other
// processes (and other SharedFSStore instances in this one).
#ifndef PACKICE_BACKENDS_SHAREDFS_SHAREDFS_STORE_H_
#define PACKICE_BACKENDS_SHAREDFS_SHAREDFS_STORE_H_

#include <array>
#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "backends/sharedfs/object_file.h"
#include "core/env.h"
#include "core/mutex.h"
#include "packice/blob.h"
#include "packice/clock.h"
#include "packice/sharedfs_gc_stats.h"

namespace packice {

struct SharedFSStoreOptions {
  std::string dir;
  // fdatasync the object and fsync its directory before a seal returns.
  bool sync = true;
  // A .pkc file nobody locks and nobody changed for this long belongs to a dead writer.
  Duration abandoned_after = std::chrono::seconds(30);
  std::shared_ptr<Clock> clock;  // nullptr = system clock
  std::string writer_id;         // empty = "hostname:pid"
  std::shared_ptr<Env> env;      // every file operation; nullptr = Env::Default()
};

// A CREATING object that this process writes: the .pkc file, write-locked until its seal.
// Its life: SharedFSStore::Create, then SharedFSStore::Seal or ::Abandon. Dropping it without
// either leaves a file that garbage collection removes as abandoned. After a seal it holds a
// read lock on the sealed object (its writer's views still show it) until it is dropped.
// Thread safety: all methods may be called concurrently.
class CreatingObjectFile final : public Blob {
 public:
  std::string_view kind() const override { return "sharedfs"; }
  uint64_t size() const override;
  // Errors: kWrongState (sealed or abandoned), kInvalidArgument (out of range).
  Status Write(uint64_t offset, std::span<const std::byte> data) override;
  Status Read(uint64_t offset, std::span<std::byte> out) override;
  // kCreate only, while CREATING; kRead fails with kWrongState (readers use SealedObjectFile).
  Result<std::shared_ptr<BlobView>> OpenView(LeaseMode mode) override;
  // kCreate: a new read-write open of the file, so the writer's lock stays this process's and
  // dies with it even while a client still maps the bytes.
  Result<BlobExport> Export(LeaseMode mode) override;

  // The object as created (or, after a seal, as sealed).
  ObjectInfo info() const;

 private:
  friend class SharedFSStore;
  enum class Phase { kWriting, kSealing, kSealed, kAbandoned };
  CreatingObjectFile(std::shared_ptr<Env> env, SharedObjectName name, std::string path, UniqueFd fd,
                     uint64_t data_offset, ObjectInfo info, bool exclusive);

  const std::shared_ptr<Env> env_;
  const SharedObjectName name_;
  const std::string path_;  // the .pkc file
  const uint64_t data_offset_;
  const bool exclusive_;
  mutable Mutex mu_;
  UniqueFd fd_ ABSL_GUARDED_BY(mu_);  // read-write; holds the write lock while CREATING
  ObjectInfo info_ ABSL_GUARDED_BY(mu_);
  Phase phase_ ABSL_GUARDED_BY(mu_) = Phase::kWriting;
};

// A sealed object opened for reading: a read-only descriptor holding a read lock, so the file
// is never deleted while this (or an exported copy of the descriptor) lives, even once the key
// is unbound. Immutable; thread-safe.
class SealedObjectFile final : public Blob {
 public:
  SealedObjectFile(std::shared_ptr<Env> env, UniqueFd fd, ObjectInfo info, uint64_t data_offset)
      : env_(std::move(env)),
        fd_(std::move(fd)),
        info_(std::move(info)),
        data_offset_(data_offset) {}
  std::string_view kind() const override { return "sharedfs"; }
  uint64_t size() const override { return info_.size; }
  Status Write(uint64_t, std::span<const std::byte>) override;
  Status Read(uint64_t offset, std::span<std::byte> out) override;
  Result<std::shared_ptr<BlobView>> OpenView(LeaseMode mode) override;
  // kRead: a duplicate of the descriptor — it shares the read lock with this blob.
  Result<BlobExport> Export(LeaseMode mode) override;
  const ObjectInfo& info() const { return info_; }

 private:
  const std::shared_ptr<Env> env_;
  const UniqueFd fd_;
  const ObjectInfo info_;
  const uint64_t data_offset_;
};

class SharedFSStore {
 public:
  // Opens (creating if needed) the directory and its layout, and checks that the filesystem
  // has working OFD locks. Errors: kInvalidArgument (no or not a directory), kInternal.
  static Result<std::unique_ptr<SharedFSStore>> Open(SharedFSStoreOptions options);
  ~SharedFSStore();

  const std::string& writer_id() const { return writer_id_; }

  // Creates CREATING object `info` (key, size, meta and ttl set; version, state, times are
  // filled in) of info.size zero bytes, with space reserved. Errors: kAlreadyExists (another
  // writer, in any process, is creating the key; or `exclusive` and a live object is bound to
  // it), kOutOfCapacity (the filesystem is full), kInternal.
  Result<std::shared_ptr<CreatingObjectFile>> Create(ObjectInfo info, bool exclusive);

  // Seals `object` at `size` (<= its allocation): writes the SEALED header, syncs, and binds
  // the key to it, replacing (and unbinding) an earlier object. Returns the sealed info (tier
  // empty). Errors that leave the object CREATING: kWrongState (not CREATING),
  // kInvalidArgument (size). Errors that abandon it: kAlreadyExists (exclusive and the key was
  // bound meanwhile, or another key with the same hash is bound), kAborted (another process
  // removed the object as abandoned), kTimeout, kInternal.
  Result<ObjectInfo> Seal(CreatingObjectFile& object, uint64_t size);

  // Discards an unsealed object: its file goes. No-op once sealed or abandoned.
  void Abandon(CreatingObjectFile& object);

  // Marks the writer of `object` alive (the file's mtime). Errors: kWrongState (not CREATING),
  // kAborted (another process removed the object as abandoned).
  Status Touch(CreatingObjectFile& object);

  // The sealed object bound to `key`, opened for reading. Errors: kNotFound (none, expired, or
  // still being created), kInternal (a corrupt file).
  Result<std::shared_ptr<SealedObjectFile>> OpenSealed(std::string_view key);

  // The header of the sealed object bound to `key`. Errors: as OpenSealed.
  Result<ObjectInfo> Stat(std::string_view key);

  // Unbinds `key`; readers keep the file until they let go. Errors: kNotFound, kTimeout,
  // kInternal.
  Status Delete(std::string_view key);

  // Sealed, unexpired objects in key order. Reads the header of every object file.
  Result<ListPage> List(const ListOptions& options);

  // One pass over the directory: unbinds expired objects, removes abandoned CREATING files and
  // deletes unbound files nobody reads.
  Result<SharedFSGcStats> CollectGarbage();

  // Bytes of the filesystem holding the directory: {total, available}.
  std::pair<uint64_t, uint64_t> FilesystemBytes() const;

 private:
  enum class Reclaim { kRemoved, kGone, kLive };
  explicit SharedFSStore(SharedFSStoreOptions options, std::string writer_id, UniqueFd locks);

  std::string PathOf(std::string_view relative) const {
    return options_.dir + "/" + std::string(relative);
  }
  Env& env() const { return *options_.env; }
  // Whether `path` still names the file open as `fd`.
  bool StillNamed(const std::string& path, int fd) const;
  // The header of the sealed object file at `path`; kNotFound when there is none.
  Result<SharedObjectHeader> ReadSealedHeader(const std::string& path, std::string_view key) const;
  // Makes the shard directory `shard` ("objects/xx"), synced into objects/ when options.sync.
  Status MakeShard(const std::string& shard);
  uint64_t NextVersion();

  // Runs `fn` holding the lock of key stripe `stripe` (in this process and in the directory).
  // Waits at most 10 s for another holder. Errors: kTimeout, kInternal, or fn's.
  template <typename Fn>
  auto WithStripeLocked(uint32_t stripe, Fn&& fn) -> decltype(fn());
  Status LockStripe(uint32_t stripe);
  void UnlockStripe(uint32_t stripe);

  Status InitCreating(CreatingObjectFile& object);
  Status FinishSeal(CreatingObjectFile& object, const ObjectInfo& sealed);
  void RemoveCreatingFile(CreatingObjectFile& object);
  std::string BeingCreatedMessage(const std::string& key, const SharedObjectName& name) const;
  // The header of the sealed file of `name`, nullopt if there is none (or it is corrupt).
  std::optional<SharedObjectHeader> ReadBound(const SharedObjectName& name) const;
  // Checks that `header` is the live sealed object of `key`.
  Status CheckReadable(const SharedObjectHeader& header, std::string_view key) const;
  Result<Reclaim> ReclaimIfAbandoned(const std::string& path, uint32_t stripe);
  // Renames the sealed file of `name` into trash/ (REQUIRES: its stripe locked).
  Result<std::string> MoveToTrash(const SharedObjectName& name);
  // Deletes a trash file unless a process still reads it. True when deleted (or gone).
  bool TryDeleteTrash(const std::string& path);
  void CollectShard(const std::string& shard, SharedFSGcStats* stats);

  const SharedFSStoreOptions options_;
  const std::string writer_id_;
  const UniqueFd locks_fd_;  // DIR/LOCKS
  std::atomic<uint64_t> version_counter_;
  // In-process exclusion for the stripes: threads of one process share locks_fd_'s open file
  // description, and OFD locks do not exclude each other within it.
  std::array<Mutex, 64> stripe_mu_;
};

}  // namespace packice

#endif  // PACKICE_BACKENDS_SHAREDFS_SHAREDFS_STORE_H_
