// FaultInjectionEnv: an Env for tests. It forwards every call to a real Env (normally
// Env::Default()) and injects the faults of a disk and of a machine: short writes, an errno
// (EIO, ENOSPC, ...) from any kind of call, and a crash that drops everything not yet synced.
//
// What a crash models. The injector remembers, since the last sync, what the disk would lose:
//  - file data: per file (inode), the bytes as they were at its last SyncData that Write,
//    Truncate or a writable Map has changed since, and the size at that sync;
//  - names: per directory, the creates (Open with O_CREAT of a new file), links, renames,
//    unlinks and mkdirs since its last SyncDir; a rename is durable once either of its two
//    directories is synced (one journal transaction, as on ext4 or XFS). Unlinked and
//    replaced files are kept (their synced bytes, in memory) until their directory is synced.
// SimulateCrash() restores exactly the synced state on the real disk: every file back to its
// synced size and bytes, then the unsynced name changes undone, newest first. That is the worst
// a real crash can do; a real one may keep any part of the unsynced changes.
//
// What it cannot see: bytes written through a descriptor that bypasses the Env — above all a
// client's writable mapping of a descriptor a store exported (BlobExport), in this process or
// another. A crash keeps those bytes as if they had reached the disk. Mappings made with
// Env::Map are tracked (their whole range counts as changed while they live). File modes, times
// and locks are not reverted; open(O_TRUNC) of an existing file is not modelled (no store does
// it). The files under test must be small: unsynced old bytes are kept in memory.
//
// Thread safety: safe for concurrent use; calls that change files are serialized.
#ifndef PACKICE_CORE_FAULT_INJECTION_ENV_H_
#define PACKICE_CORE_FAULT_INJECTION_ENV_H_

#include <cerrno>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/env.h"
#include "core/mutex.h"

namespace packice {

class FaultInjectionEnv final : public Env {
 public:
  // The calls a fault can hit. kOpen is an open that may create a file (O_CREAT).
  enum class Op {
    kOpen,
    kWrite,
    kTruncate,
    kAllocate,
    kSyncData,
    kSyncDir,
    kRename,
    kLink,
    kUnlink,
    kMakeDir,
  };

  struct Fault {
    Op op = Op::kWrite;
    int error = EIO;  // what the call fails with
    int skip = 0;     // matching calls let through first
    int count = 1;    // matching calls failed after those; -1 = every one
    // Only calls on a path containing this; "" = every call. For calls on a descriptor, the
    // file's current path.
    std::string path_part;
    // The machine stops at this call: it and every later call that would change the disk fail
    // with EIO (reads still work) until SimulateCrash().
    bool crash = false;
  };

  explicit FaultInjectionEnv(std::shared_ptr<Env> base = Env::Default());
  ~FaultInjectionEnv() override;

  // Adds a fault; several may be armed at once (the first that matches a call applies).
  void InjectFault(Fault fault);
  // Every Write writes at most `max_bytes` and reports that count (0 = no limit).
  void SetShortWrites(size_t max_bytes);
  // Disarms every fault and short write (an ongoing crash stays until SimulateCrash).
  void ClearFaults();
  // How many calls failed or were shortened so far.
  int faults_hit() const;
  // True from a crash fault until SimulateCrash().
  bool down() const;

  // Power failure: the real disk is put back to what was synced (see above), and the env is up
  // again. Destroy the stores that used this env first: what they do on the way out is not
  // synced either and is reverted with the rest. (Descriptors and mappings still open keep
  // working, on the reverted files.) Errors: kInternal (the disk could not be reverted; the
  // test cannot go on).
  Status SimulateCrash();

  int Open(const std::string& path, int flags, mode_t mode, UniqueFd* fd) override;
  int Write(int fd, std::span<const std::byte> data, uint64_t offset, size_t* written) override;
  int Read(int fd, std::span<std::byte> out, uint64_t offset, size_t* read) override;
  int Truncate(int fd, uint64_t size) override;
  int Allocate(int fd, uint64_t size) override;
  int SyncData(int fd) override;
  int SyncDir(const std::string& dir) override;
  int Chmod(int fd, mode_t mode) override;
  int Fstat(int fd, struct stat* st) override;
  int Stat(const std::string& path, struct stat* st) override;
  int Rename(const std::string& from, const std::string& to) override;
  int Link(const std::string& from, const std::string& to) override;
  int Unlink(const std::string& path) override;
  int MakeDir(const std::string& dir, mode_t mode) override;
  int ListDir(const std::string& dir, std::vector<std::string>* names) override;
  Result<std::shared_ptr<BlobView>> Map(int fd, uint64_t offset, uint64_t map_size, uint64_t size,
                                        bool writable, bool populate) override;

 private:
  using FileId = std::pair<uint64_t, uint64_t>;  // (st_dev, st_ino)
  struct MapRange {
    uint64_t offset;
    uint64_t length;
  };
  // What a crash does to one file's data.
  struct FileState {
    UniqueFd fd;  // this env's own read-write open of the file (no locks shared)
    uint64_t synced_size = 0;
    std::map<uint64_t, std::string> undo;  // offset -> synced bytes changed since; disjoint
    std::vector<std::weak_ptr<MapRange>> writable_maps;
  };
  // A file's bytes and mode, to put it back.
  struct SavedFile {
    std::string bytes;
    mode_t mode = 0600;
    FileId id;
  };
  // A change of names not yet durable.
  struct NameChange {
    enum Kind { kCreate, kLink, kRename, kUnlink, kMakeDir } kind;
    std::string path;                   // the name created, linked, renamed to, unlinked or made
    std::string from;                   // kRename: the old name
    FileId file;                        // the file created, linked or renamed
    std::optional<SavedFile> replaced;  // the file that had `path` before (unlink, rename over)
    std::vector<FileId> dirs;           // a sync of any of them makes the change durable
  };

  // The error to fail a call with (0: none), counting it.
  int Check(Op op, const std::string& path) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string PathOfFd(int fd) const;
  // The state of the file open as `fd` in `*state`, tracking it from now on. An errno, or 0.
  int Track(int fd, FileState** state) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Saves the synced bytes of [offset, offset + length) not saved yet. An errno, or 0.
  int SaveUndo(FileState& f, uint64_t offset, uint64_t length);
  // The synced bytes and mode of the file at `path` (nullopt: no regular file there).
  std::optional<SavedFile> SaveFile(const std::string& path) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::optional<FileId> IdOf(const std::string& path);
  FileId DirOf(const std::string& path);
  void Record(NameChange change) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Status Revert() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Status Restore(const std::string& path, const SavedFile& saved, std::map<FileId, FileId>* reborn);

  const std::shared_ptr<Env> base_;
  mutable Mutex mu_;
  std::vector<Fault> faults_ ABSL_GUARDED_BY(mu_);
  size_t short_write_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  int faults_hit_ ABSL_GUARDED_BY(mu_) = 0;
  bool down_ ABSL_GUARDED_BY(mu_) = false;
  std::map<FileId, FileState> files_ ABSL_GUARDED_BY(mu_);
  std::vector<NameChange> pending_ ABSL_GUARDED_BY(mu_);
};

}  // namespace packice

#endif  // PACKICE_CORE_FAULT_INJECTION_ENV_H_
