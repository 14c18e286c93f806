// FileStore: objects as files under a data directory, crash-safe.
//
//   DIR/LOCK                    held (flock) by the one process using DIR
//   DIR/tmp/<version>.pko       objects being written, or removed but still held
//   DIR/objects/<xx>/<version>.pko   sealed objects (xx: low byte of the version)
//
// A file is a 32-byte preamble, a checksummed header (key, metadata, TTL, size) and the content
// at a page-aligned offset, so clients map the content straight from the file
// (docs/file_format.md). A new object is a sparse file in tmp/; sealing writes the header,
// fdatasyncs, renames it into objects/ and fsyncs that directory, so after a crash an object
// is either whole and sealed or absent. Removing a sealed object renames its file back into
// tmp/ at once (it is unlinked when its blob goes), so a crash cannot revive it. Keys never
// become paths (files are named by version),
// so no key can reach outside DIR.
//
// Thread safety: safe for concurrent use.
#ifndef PACKICE_BACKENDS_FILE_FILE_STORE_H_
#define PACKICE_BACKENDS_FILE_FILE_STORE_H_

#include <memory>
#include <string>

#include "backends/blob_store.h"
#include "core/env.h"
#include "packice/clock.h"

namespace packice {

struct FileStoreOptions {
  std::string dir;
  uint64_t capacity_bytes = 16ull << 30;
  // fdatasync content and header, and fsync the directory, before a seal returns. Off only for
  // tests and scratch data: a crash may then lose sealed objects (never half-write them).
  bool sync = true;
  std::shared_ptr<Clock> clock;  // for expiry at recovery; nullptr = system clock
  std::shared_ptr<Env> env;      // every file operation; nullptr = Env::Default()
};

class FileStore final : public BlobStore {
 public:
  // Opens (creating if needed) `options.dir` and locks it. Errors: kAlreadyExists (another
  // process holds the directory), kInvalidArgument (not a directory), kInternal.
  static Result<std::unique_ptr<FileStore>> Open(FileStoreOptions options);
  ~FileStore() override;

  std::string_view tier() const override { return "disk"; }
  uint64_t capacity_bytes() const override;
  uint64_t ChargeFor(uint64_t size) const override;
  Result<std::shared_ptr<Blob>> Allocate(const ObjectInfo& info) override;
  Status Commit(Blob& blob, const ObjectInfo& info) override;
  void Remove(Blob& blob) override;
  Result<std::vector<StoredObject>> Recover() override;
  StoreStats GetStats() const override;

  class State;

 private:
  explicit FileStore(std::shared_ptr<State> state);
  std::shared_ptr<State> state_;
};

// Reads and checks the preamble and header of an object file. Exposed for the fuzzer and the
// recovery tests. Errors: kProtocolError (not an object file, or corrupt).
struct ObjectFileHeader {
  ObjectInfo info;
  uint64_t data_offset = 0;
};
Result<ObjectFileHeader> DecodeObjectFileHeader(std::span<const std::byte> bytes);

}  // namespace packice

#endif  // PACKICE_BACKENDS_FILE_FILE_STORE_H_
