// Env: the file-system seam, after leveldb's Env. Every durable store (FileStore, SharedFSStore,
// and the write-ahead log of the KV and the queue) does its file I/O through an Env, so a test
// can wrap the real file system and inject faults (FaultInjectionEnv in
// core/fault_injection_env.h: short writes, EIO from fsync, ENOSPC, a crash that drops what
// was never synced).
//
// Unlike leveldb's, this Env hands out real file descriptors: blobs reach clients as a
// descriptor and an offset, and are mapped without a copy. So an Env is a thin layer over the
// system calls on those descriptors, and every call returns an errno value (0 on success) for
// the caller to turn into a Status with the context it knows (ErrnoError). Things that are no
// durable file I/O stay outside: fcntl and flock locks, futimens, statvfs, and closing a
// descriptor (UniqueFd closes).
//
// Thread safety: an Env is safe for concurrent use.
#ifndef PACKICE_CORE_ENV_H_
#define PACKICE_CORE_ENV_H_

#include <sys/stat.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "packice/blob.h"
#include "packice/status.h"

namespace packice {

class Env {
 public:
  virtual ~Env() = default;

  // The real file system (POSIX calls). Shared; lives as long as the process.
  static std::shared_ptr<Env> Default();

  // open(2) of `path` with `flags` (O_CLOEXEC is always added) and, with O_CREAT, `mode`.
  // On success `*fd` holds the descriptor.
  [[nodiscard]] virtual int Open(const std::string& path, int flags, mode_t mode, UniqueFd* fd) = 0;
  // One pwrite(2) of `data` at `offset` (EINTR retried). On success `*written` is the number of
  // bytes written, which may be less than data.size() (a short write): WriteFully loops.
  [[nodiscard]] virtual int Write(int fd, std::span<const std::byte> data, uint64_t offset,
                                  size_t* written) = 0;
  // One pread(2) (EINTR retried); `*read` is 0 at the end of the file.
  [[nodiscard]] virtual int Read(int fd, std::span<std::byte> out, uint64_t offset,
                                 size_t* read) = 0;
  // ftruncate(2): the file's size becomes `size` (a sparse extension reads as zeros).
  [[nodiscard]] virtual int Truncate(int fd, uint64_t size) = 0;
  // fallocate(2) mode 0 of [0, size): reserves the blocks (ENOSPC when the disk is full;
  // EOPNOTSUPP on file systems without it) and extends the file to at least `size`.
  [[nodiscard]] virtual int Allocate(int fd, uint64_t size) = 0;
  // fdatasync(2): the file's data and size are on the disk when this returns 0. Data written
  // through a writable mapping of the file is included.
  [[nodiscard]] virtual int SyncData(int fd) = 0;
  // fsync(2) of the directory `dir`: the names created, renamed and removed in it are durable.
  [[nodiscard]] virtual int SyncDir(const std::string& dir) = 0;
  // fchmod(2).
  [[nodiscard]] virtual int Chmod(int fd, mode_t mode) = 0;
  // fstat(2) and stat(2).
  [[nodiscard]] virtual int Fstat(int fd, struct stat* st) = 0;
  [[nodiscard]] virtual int Stat(const std::string& path, struct stat* st) = 0;
  // rename(2) (replaces `to` if it exists), link(2), unlink(2), mkdir(2) (EEXIST when the
  // directory exists: callers decide whether that is fine).
  [[nodiscard]] virtual int Rename(const std::string& from, const std::string& to) = 0;
  [[nodiscard]] virtual int Link(const std::string& from, const std::string& to) = 0;
  [[nodiscard]] virtual int Unlink(const std::string& path) = 0;
  [[nodiscard]] virtual int MakeDir(const std::string& dir, mode_t mode) = 0;
  // The names in `dir` (readdir(3), without "." and ".."), in no particular order.
  [[nodiscard]] virtual int ListDir(const std::string& dir, std::vector<std::string>* names) = 0;
  // Maps `map_size` bytes of `fd` from `offset` (a page multiple) as core/mapped_view.h's
  // MapView: the view shows the first `size` bytes and unmaps when destroyed. Errors:
  // kInvalidArgument, kInternal.
  virtual Result<std::shared_ptr<BlobView>> Map(int fd, uint64_t offset, uint64_t map_size,
                                                uint64_t size, bool writable, bool populate) = 0;
};

// Writes all of `data` at `offset`, retrying short writes. Errors: kInternal naming `what` and
// the errno (ENOSPC included); a write that makes no progress is kInternal too.
Status WriteFully(Env& env, int fd, std::span<const std::byte> data, uint64_t offset,
                  std::string_view what = "pwrite");
// Reads exactly out.size() bytes at `offset`. Errors: kInternal (I/O, or the end of the file
// came first).
Status ReadFully(Env& env, int fd, std::span<std::byte> out, uint64_t offset,
                 std::string_view what = "pread");
// SyncDir as a Status. Errors: kInternal naming `dir`.
Status SyncDirStatus(Env& env, const std::string& dir);
// mkdir that accepts an existing directory: true when it made `dir`. Errors: kInternal naming
// `dir`.
Result<bool> MakeDirIfMissing(Env& env, const std::string& dir, mode_t mode);
// Makes `dir` and its missing parents; with `sync`, fsyncs the parent of each one made, so the
// new directories survive a crash. Errors: kInternal.
Status MakeDirs(Env& env, const std::string& dir, mode_t mode, bool sync);
// Replaces DIR/NAME with `bytes` atomically (DIR/NAME.tmp written, fdatasync, rename,
// directory fsync): after a crash it holds the old bytes or the new ones, never a mix.
// Errors: kInternal naming the file (nothing replaced).
Status ReplaceFile(Env& env, const std::string& dir, const std::string& name,
                   std::string_view bytes);
// The whole of a small file (a table or a manifest); nullopt when it does not exist. Errors:
// kInternal.
Result<std::optional<std::string>> ReadFileIfExists(Env& env, const std::string& path);
// The names in `dir` ending in `suffix`, sorted; none when `dir` cannot be read.
std::vector<std::string> NamesWithSuffix(Env& env, const std::string& dir, std::string_view suffix);

}  // namespace packice

#endif  // PACKICE_CORE_ENV_H_
