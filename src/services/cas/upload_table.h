// UploadTable: blobs being uploaded in pieces (REAPI's ByteStream.Write), kept between streams
// so that a broken upload resumes where it stopped.
//
// An upload is named by its resource (instance, client uuid, digest) and knows its final size
// from the digest. Its bytes are staged in memory (small blobs) or in an unnamed temporary file
// (larger ones), hashed as they arrive, and handed whole to the caller's store at Finish. One
// UploadWriter appends at a time: attaching a new one (a client resuming after a broken stream)
// takes the upload from the old one, whose later appends fail with kAborted. An upload that no
// writer holds is kept for keep_partial, then dropped.
//
// Bounds: at most max_uploads uploads and max_staged_bytes of final sizes together. A new upload
// that does not fit first drops expired ones, then the longest-idle ones nobody is writing;
// when only uploads being written are left, it fails with kOutOfCapacity.
//
// Thread safety: safe for concurrent use. An UploadWriter is used by one thread at a time and
// must not outlive its table.
#ifndef PACKICE_SERVICES_CAS_UPLOAD_TABLE_H_
#define PACKICE_SERVICES_CAS_UPLOAD_TABLE_H_

#include <absl/container/flat_hash_map.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>

#include "core/env.h"
#include "core/mutex.h"
#include "packice/cas.h"
#include "packice/clock.h"
#include "packice/types.h"

namespace packice {

struct UploadTableOptions {
  // Where uploads larger than memory_threshold are staged (unnamed files: O_TMPFILE, or a file
  // unlinked at once). Empty: $TMPDIR, else /tmp.
  std::string staging_dir;
  // Uploads of at most this many bytes are staged in memory.
  uint64_t memory_threshold = 1 << 20;
  // The final sizes of all uploads together, at most (memory and files).
  uint64_t max_staged_bytes = 4ull << 30;
  // Uploads held at most, in progress or kept for resuming.
  size_t max_uploads = 256;
  // How long an upload nobody writes is kept for a resume.
  Duration keep_partial = std::chrono::minutes(10);
  // Time source; nullptr: the system's steady clock.
  std::shared_ptr<Clock> clock;
  // File system for staged files; nullptr: Env::Default().
  std::shared_ptr<Env> env;
};

class UploadTable;

// The right to append to one upload, from UploadTable::Attach. Destroying it leaves the upload
// in the table (resumable) unless Finish ended it.
class UploadWriter {
 public:
  ~UploadWriter();
  UploadWriter(const UploadWriter&) = delete;
  UploadWriter& operator=(const UploadWriter&) = delete;

  // Bytes the upload holds.
  uint64_t committed() const;
  // Appends `data` at `offset`. Errors: kInvalidArgument (offset is not committed(), or the data
  // reaches past the digest's size), kAborted (another writer took the upload over, or it was
  // dropped), kInternal (staging I/O).
  Status Append(uint64_t offset, std::span<const std::byte> data);
  // Completes the upload: checks that all of it arrived and that it hashes to its digest, then
  // calls `store` with the whole content (valid during the call). The upload leaves the table
  // whatever the outcome, except kInvalidArgument (not all bytes yet) and kAborted. Errors:
  // kInvalidArgument, kDigestMismatch, kAborted, kInternal, and those of `store`.
  Status Finish(const std::function<Status(std::span<const std::byte>)>& store);

 private:
  friend class UploadTable;
  struct Entry;
  UploadWriter(UploadTable* table, std::shared_ptr<Entry> entry, uint64_t ticket);
  // Calls `store` with the staged bytes: `memory`, or a mapping of `file`.
  Status StoreStaged(const std::string& memory, const UniqueFd& file,
                     const std::function<Status(std::span<const std::byte>)>& store);

  UploadTable* table_;
  std::shared_ptr<Entry> entry_;
  uint64_t ticket_;
};

class UploadTable {
 public:
  explicit UploadTable(UploadTableOptions options = {});
  ~UploadTable();
  UploadTable(const UploadTable&) = delete;
  UploadTable& operator=(const UploadTable&) = delete;

  // A writer for upload `name` of `digest`, starting at `offset`: a new upload (offset 0) or the
  // one held under `name`, taken over from any writer it has. Errors: kInvalidArgument (offset
  // is not the upload's committed size, or `name` is held for another digest), kOutOfCapacity
  // (over the bounds), kInternal (staging file).
  Result<std::unique_ptr<UploadWriter>> Attach(const std::string& name, const Digest& digest,
                                               uint64_t offset);
  // The committed size of upload `name`. Errors: kNotFound.
  Result<uint64_t> Query(const std::string& name);
  // Drops upload `name`, if held; its writer's later appends fail with kAborted.
  void Discard(const std::string& name);

  // Uploads held, and the final sizes they reserve.
  size_t size();
  uint64_t staged_bytes();

 private:
  friend class UploadWriter;
  using Entry = UploadWriter::Entry;

  // The upload held under `name`, unless it is being finished (it is dropped then); null.
  std::shared_ptr<Entry> Live(const std::string& name) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Result<std::shared_ptr<Entry>> NewEntry(const std::string& name, const Digest& digest)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Makes room for an upload of `size` bytes. Errors: kOutOfCapacity.
  Status MakeRoom(uint64_t size) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Drops the longest-idle upload no writer holds; false when there is none.
  bool DropOldestIdle() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void DropExpired() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Erase(const std::string& name) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Called by writers: the upload leaves the table (if it is still this entry).
  void Remove(const std::shared_ptr<Entry>& entry);
  void Detach(const std::shared_ptr<Entry>& entry, uint64_t ticket);

  const UploadTableOptions options_;
  const std::shared_ptr<Clock> clock_;
  const std::shared_ptr<Env> env_;
  Mutex mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<Entry>> entries_ ABSL_GUARDED_BY(mu_);
  uint64_t staged_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t next_ticket_ ABSL_GUARDED_BY(mu_) = 1;
};

}  // namespace packice

#endif  // PACKICE_SERVICES_CAS_UPLOAD_TABLE_H_
