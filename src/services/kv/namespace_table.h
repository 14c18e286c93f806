// NamespaceTable: the durable table of a store's namespaces, path -> (bucket id, options), in
// the file DIR/NAMESPACES. Each change rewrites the file (temp file, fdatasync, rename,
// directory fsync), so after a crash it is the old table or the new one, never a mix. The
// format (text, one namespace a line) is in docs/kv.md. A bucket's directory is
// DIR/buckets/<id>; ids are never reused, so a namespace deleted and created again starts in a
// fresh directory.
//
// Thread safety: none; the store serialises changes.
#ifndef PACKICE_SERVICES_KV_NAMESPACE_TABLE_H_
#define PACKICE_SERVICES_KV_NAMESPACE_TABLE_H_

#include <absl/container/flat_hash_map.h>

#include <cstdint>
#include <memory>
#include <string>

#include "core/env.h"
#include "packice/kv.h"

namespace packice::kv {

struct NamespaceRecord {
  uint64_t id = 0;
  NamespaceOptions options;
};

class NamespaceTable {
 public:
  // Loads DIR/NAMESPACES (an empty table when it does not exist). Errors: kDataLoss (a file
  // that does not parse), kInternal.
  static Result<NamespaceTable> Load(Env& env, const std::string& dir);

  // Adds `path` under a fresh id and writes the table. Errors: kAlreadyExists, kInternal
  // (nothing changed).
  Result<uint64_t> Add(Env& env, const std::string& path, const NamespaceOptions& options);
  // Removes `path` and writes the table. Errors: kNotFound, kInternal (nothing changed).
  Status Remove(Env& env, const std::string& path);

  const absl::flat_hash_map<std::string, NamespaceRecord>& entries() const { return entries_; }
  std::string BucketDir(uint64_t id) const;

 private:
  Status Write(Env& env, const absl::flat_hash_map<std::string, NamespaceRecord>& entries,
               uint64_t next_id) const;

  std::string dir_;
  uint64_t next_id_ = 1;
  absl::flat_hash_map<std::string, NamespaceRecord> entries_;
};

// Checks NamespaceOptions. Errors: kInvalidArgument.
Status ValidateNamespaceOptions(const NamespaceOptions& options);

}  // namespace packice::kv

#endif  // PACKICE_SERVICES_KV_NAMESPACE_TABLE_H_
