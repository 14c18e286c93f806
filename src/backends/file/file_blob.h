// FileBlob: an object held in one file of a directory store (FileStore, LocalCasStore).
//
// While CREATING the blob is a file in the store's tmp directory, written through a descriptor
// of its own; Commit makes it durable and renames it to its final path, after which readers
// open it afresh (and map it: no copy). A doomed blob leaves its final path at once, for the
// tmp directory that start-up empties, so a crash cannot bring it back; its file is unlinked
// when the last holder lets go. FileSpace is what a store shares with its blobs: the file
// system seam, the tmp directory and the capacity ledger.
//
// Thread safety: FileSpace and FileBlob are safe for concurrent use.
#ifndef PACKICE_BACKENDS_FILE_FILE_BLOB_H_
#define PACKICE_BACKENDS_FILE_FILE_BLOB_H_

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>

#include "core/env.h"
#include "core/mutex.h"
#include "packice/blob.h"
#include "packice/status.h"

namespace packice {

class FileSpace {
 public:
  FileSpace(std::shared_ptr<Env> env, std::string tmp_dir, uint64_t capacity_bytes)
      : env_(std::move(env)), tmp_dir_(std::move(tmp_dir)), capacity_bytes_(capacity_bytes) {}

  Env& env() const { return *env_; }
  const std::string& tmp_dir() const { return tmp_dir_; }
  uint64_t capacity_bytes() const { return capacity_bytes_; }

  // Counts `bytes` against the capacity. Errors: kOutOfCapacity (says what is free).
  Status Charge(uint64_t bytes);
  // Counts bytes already on disk (recovery), even past the capacity.
  void ChargeUnchecked(uint64_t bytes);
  void Uncharge(uint64_t bytes);
  uint64_t used() const;

 private:
  const std::shared_ptr<Env> env_;
  const std::string tmp_dir_;
  const uint64_t capacity_bytes_;
  mutable Mutex mu_;
  uint64_t used_ ABSL_GUARDED_BY(mu_) = 0;
};

// Opens the directory of a store for this process: makes it (and its parents, synced into them
// when `sync`), takes DIR/LOCK (flock; held while the returned descriptor lives) and makes the
// subdirectories `subdirs` (synced into DIR when `sync`). Errors: kInvalidArgument (not a
// directory), kAlreadyExists (another process holds it), kInternal.
Result<UniqueFd> OpenStoreDir(Env& env, const std::string& dir,
                              std::initializer_list<std::string_view> subdirs, bool sync);

class FileBlob final : public Blob {
 public:
  // A blob whose content starts at `data_offset` of the file at `path`. `fd` is the writer's
  // descriptor of a CREATING blob, or invalid for a sealed one. `charge` bytes are counted in
  // `space` and given back when the blob is freed.
  FileBlob(std::shared_ptr<FileSpace> space, std::string path, UniqueFd fd, uint64_t data_offset,
           uint64_t size, uint64_t charge);
  ~FileBlob() override;

  std::string_view kind() const override { return "file"; }
  uint64_t size() const override;
  Status Write(uint64_t offset, std::span<const std::byte> data) override;
  Status Read(uint64_t offset, std::span<std::byte> out) override;
  Result<std::shared_ptr<BlobView>> OpenView(LeaseMode mode) override;
  Result<BlobExport> Export(LeaseMode mode) override;

  // Seals the file: writes `header` at offset 0 (it must fit below the data offset), truncates
  // the content to `size` (at most the allocation), fdatasyncs when `sync`, makes the file
  // read-only and renames it to `final_path`, then fsyncs `final_dir` when `sync`. With
  // `no_replace` a file at `final_path` stays: the blob is linked there (atomically, only if
  // nothing is) and its tmp name unlinked. Errors: kWrongState (already committed),
  // kAlreadyExists (`no_replace` and a file is there; the blob stays uncommitted), kInternal
  // (errno's text).
  Status Commit(std::span<const std::byte> header, uint64_t size, const std::string& final_path,
                const std::string& final_dir, bool sync, bool no_replace = false);
  // The object is unreachable: see the file comment. Idempotent.
  void Doom();
  // Where the file is now.
  std::string path() const;
  uint64_t data_offset() const { return data_offset_; }

 private:
  Result<UniqueFd> OpenFd(LeaseMode mode);

  const std::shared_ptr<FileSpace> space_;
  const uint64_t data_offset_;
  mutable Mutex mu_;
  uint64_t charge_ ABSL_GUARDED_BY(mu_);  // bytes counted against the capacity
  std::string path_ ABSL_GUARDED_BY(mu_);
  UniqueFd fd_ ABSL_GUARDED_BY(mu_);  // read-write, while CREATING
  uint64_t size_ ABSL_GUARDED_BY(mu_);
  bool doomed_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace packice

#endif  // PACKICE_BACKENDS_FILE_FILE_BLOB_H_
