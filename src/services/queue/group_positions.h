// GroupPositions: the committed positions of a topic's consumer groups, (group, bucket) ->
// next offset. Durable ones are a log of commits (sync "always": a commit survives kill -9
// once it returned) with a snapshot of the whole table every kSnapshotEvery commits, after
// which the log before it is removed; in memory (a queue without a directory) a map only.
//
// Record (log type 1): u32 length, group; u32 bucket; u64 offset. Snapshot: u64 count, then
// count such entries.
//
// Thread safety: safe for concurrent use.
#ifndef PACKICE_SERVICES_QUEUE_GROUP_POSITIONS_H_
#define PACKICE_SERVICES_QUEUE_GROUP_POSITIONS_H_

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include "backends/log/log.h"
#include "packice/status.h"

namespace packice::queue {

class GroupPositions {
 public:
  static constexpr uint64_t kSnapshotEvery = 4096;

  // In memory.
  GroupPositions() = default;
  // Durable, in the log `options.dir` (recovered). Errors: those of Log::Open, kDataLoss.
  static Result<std::unique_ptr<GroupPositions>> Open(LogOptions options);

  Status Commit(const std::string& group, uint32_t bucket, uint64_t offset);
  std::optional<uint64_t> Get(const std::string& group, uint32_t bucket) const;
  // Every group's positions (for stats and lag).
  std::map<std::pair<std::string, uint32_t>, uint64_t> All() const;

 private:
  Status Recover();

  std::unique_ptr<Log> log_;  // null: in memory
  mutable std::mutex mu_;
  std::map<std::pair<std::string, uint32_t>, uint64_t> positions_;
  uint64_t since_snapshot_ = 0;
};

}  // namespace packice::queue

#endif  // PACKICE_SERVICES_QUEUE_GROUP_POSITIONS_H_
