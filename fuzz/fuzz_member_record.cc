// libFuzzer target: a member record as a node reads it from etcd (docs/cluster.md), which any
// client of that etcd may have written. Any crash, sanitizer report or unbounded allocation is
// a bug; so is a record that parses but does not survive a round trip, or names an address
// that is not host:port.
//
//   fuzz_member_record -max_total_time=60 NEW_CORPUS_DIR fuzz/corpus/member_record
//
// The first byte splits the input: the node id the record is stored under, then the JSON.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "cluster/membership.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t split = std::min<size_t>(data[0], size - 1);
  const std::string_view id(reinterpret_cast<const char*>(data) + 1, split);
  const std::string_view json(reinterpret_cast<const char*>(data) + 1 + split, size - 1 - split);
  auto record = packice::cluster::MemberRecordFromJson(json, id);
  if (!record.ok()) return 0;
  if (record->node_id != id) std::abort();
  const std::string& addr = record->grpc_address;
  if (addr.empty() || addr.rfind(':') == std::string::npos) std::abort();
  auto again =
      packice::cluster::MemberRecordFromJson(packice::cluster::MemberRecordToJson(*record), id);
  if (!again.ok() || !(*again == *record)) std::abort();
  return 0;
}
