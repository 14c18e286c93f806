// VersionSequence: the object versions of a node. One sequence serves every tier of a node, so
// an object keeps its version when it moves between memory and disk (and its ETag with it);
// a durable sequence never hands out a version twice, even across kill -9.
//
// Thread safety: safe for concurrent use.
#ifndef PACKICE_VERSION_SEQUENCE_H_
#define PACKICE_VERSION_SEQUENCE_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "packice/status.h"

namespace packice {

class Env;

class VersionSequence {
 public:
  // In memory only: versions start after `last` and repeat after a restart unless the caller
  // seeds `last` (packiced --store memory seeds it with the start time in microseconds).
  explicit VersionSequence(uint64_t last = 0) : last_(last), reserved_(UINT64_MAX) {}

  // Durable: a high-water mark in the file at `path` (created if missing). Versions are
  // reserved `block` at a time: the mark is written (temp file, fsync, rename, fsync of the
  // directory) before any version of a block is handed out, and a restart starts above it.
  // Errors: kInternal (I/O), kProtocolError (the file is not a version mark).
  // `env`: the file-system seam (src/core/env.h); nullptr = the real file system.
  static Result<std::shared_ptr<VersionSequence>> OpenDurable(const std::string& path,
                                                              uint64_t block = 1u << 16,
                                                              std::shared_ptr<Env> env = nullptr);

  // The next version, greater than every version handed out or observed before. Errors (a
  // durable sequence that cannot write its mark): kInternal; no version is handed out then.
  Result<uint64_t> Next();
  // Raises the sequence above `version` (a recovered or copied object's).
  void Observe(uint64_t version);
  // The largest version handed out or observed.
  uint64_t last();
  // The mark file; empty for a sequence in memory.
  const std::string& path() const { return path_; }

 private:
  VersionSequence(std::string path, uint64_t block, uint64_t mark, std::shared_ptr<Env> env);
  Status WriteMarkLocked(uint64_t mark);  // REQUIRES: mu_ held

  const std::string path_;
  const uint64_t block_ = 0;
  const std::shared_ptr<Env> env_;
  std::mutex mu_;
  uint64_t last_;      // guarded by mu_
  uint64_t reserved_;  // guarded by mu_: versions up to here may be handed out
};

}  // namespace packice

#endif  // PACKICE_VERSION_SEQUENCE_H_
