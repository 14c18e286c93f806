// Helpers of the KV's tests (kv_test.cc, kv_recovery_test.cc, kv_watch_test.cc).
#ifndef PACKICE_SERVICES_KV_KV_TESTING_H_
#define PACKICE_SERVICES_KV_KV_TESTING_H_

#include <memory>
#include <string>

#include "services/kv/local_kv_store.h"
#include "testing.h"

namespace packice::kv_testing {

// Small segments and snapshots, a fake clock, no reaper thread (tests call ReapExpired).
inline KvOptions SmallOptions(const std::string& dir,
                              std::shared_ptr<testing::FakeClock> clock = nullptr) {
  KvOptions o;
  o.dir = dir;
  o.clock = clock ? clock : std::make_shared<testing::FakeClock>();
  o.segment_bytes = 8 << 20;
  o.max_value_bytes = 64 << 10;
  o.max_batch_bytes = 256 << 10;
  o.reap_interval = Duration(0);
  return o;
}

inline Result<std::unique_ptr<kv::LocalKvStore>> OpenStore(KvOptions o) {
  return kv::LocalKvStore::Open(std::move(o));
}

}  // namespace packice::kv_testing

#endif  // PACKICE_SERVICES_KV_KV_TESTING_H_
