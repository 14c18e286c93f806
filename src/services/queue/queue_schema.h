// A topic's schema versions (include/packice/queue.h, QueueSchema; docs/queue.md, "Schemas"):
// the rules a new version follows, the check and stamp of appended records, and the read of
// a record written under an older version under the newest one.
#pragma once

#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "packice/queue.h"

namespace packice::queue {

// Errors: kInvalidArgument (names, types, defaults of `schema` alone).
Status ValidateSchema(const QueueSchema& schema);
// Whether `next` may follow `newest`. Errors: kInvalidArgument, naming the field.
Status CheckEvolution(const QueueSchema& newest, const QueueSchema& next);

// Immutable once built: appends and reads share one through a shared_ptr.
class SchemaSet {
 public:
  SchemaSet() = default;
  // The versions as the topic's SCHEMAS file has them. Errors: kDataLoss.
  static Result<SchemaSet> Parse(std::string_view text);
  std::string Serialize() const;

  const std::vector<QueueSchema>& versions() const { return versions_; }
  bool empty() const { return versions_.empty(); }
  uint32_t newest_version() const { return versions_.empty() ? 0 : versions_.back().version; }

  // The set with `next` as its newest version (numbered here), or nullopt when `next` has the
  // newest's fields already. Errors: ValidateSchema's, CheckEvolution's.
  Result<std::optional<SchemaSet>> With(const QueueSchema& next) const;

  // `records` checked against the newest version and stamped with it, into *out; errors name
  // records[i]. Errors: kInvalidArgument.
  Status Stamp(std::span<const QueueRecord> records, std::vector<QueueRecord>* out) const;
  // A record stamped with an older version, as the newest: the fields it lacks with their
  // defaults, stamped with the newest. Others (the newest's, unstamped) are left as they are.
  void Upgrade(QueueRecord* record) const;

 private:
  explicit SchemaSet(std::vector<QueueSchema> versions);

  std::vector<QueueSchema> versions_;
  std::map<std::string, size_t, std::less<>> newest_fields_;  // name -> index in the newest
};

}  // namespace packice::queue
