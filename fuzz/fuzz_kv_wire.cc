// libFuzzer target: the KV's wire messages (src/transport/uds/kv_wire.proto) as a client could
// send them. The input is one serialized KvRequest; if it parses, HandleKvRequest runs it on a
// real store (namespaces "/f/a" and "/f/b" plus what the inputs create, kept to a few), and the
// response must serialize and parse again. A crash, sanitizer report, hang or unbounded growth
// is a bug; errors are expected.
//
//   fuzz_kv_wire -max_total_time=60 NEW_CORPUS_DIR fuzz/corpus/kv_wire
#include <spdlog/spdlog.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "packice/kv.h"
#include "services/kv/local_kv_store.h"
#include "transport/uds/kv_wire_convert.h"

namespace {

// The store, in a directory of this process on tmpfs when there is one, removed at exit.
packice::KvStore& Store() {
  static packice::KvStore* const store = [] {
    const std::filesystem::path base = std::filesystem::is_directory("/dev/shm")
                                           ? std::filesystem::path("/dev/shm")
                                           : std::filesystem::temp_directory_path();
    static std::string dir = (base / "fuzz-kv-wire-XXXXXX").string();
    if (mkdtemp(dir.data()) == nullptr) std::abort();
    spdlog::set_level(spdlog::level::off);
    packice::KvOptions o;
    o.dir = dir;
    o.segment_bytes = 8 << 20;  // as the KV tests have it: 8 MiB preallocated per namespace
    o.max_batch_bytes = 256 << 10;
    o.snapshot_after_bytes = 1 << 20;
    o.max_value_bytes = 64 << 10;
    o.reap_interval = packice::Duration(0);
    auto s = packice::kv::LocalKvStore::Open(o);
    if (!s.ok()) {
      std::fprintf(stderr, "fuzz_kv_wire: %s\n", s.status().ToString().c_str());
      std::abort();
    }
    for (const char* ns : {"/f/a", "/f/b"}) {
      if (!(*s)->CreateNamespace(ns, {.engine = packice::KvEngine::kMemTable}).ok()) std::abort();
    }
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    });
    return s->release();
  }();
  return *store;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  packice::wire::KvRequest req;
  if (!req.ParseFromArray(data, static_cast<int>(size))) return 0;
  packice::KvStore& kv = Store();
  packice::wire::KvResponse resp;
  (void)packice::HandleKvRequest(kv, req, &resp);
  packice::wire::KvResponse again;
  if (!again.ParseFromString(resp.SerializeAsString())) std::abort();
  // Namespaces the inputs made go again: the store stays small.
  auto list = kv.ListNamespaces("");
  if (list.ok() && list->size() > 8) {
    for (const packice::NamespaceInfo& n : *list) {
      if (n.path != "/f/a" && n.path != "/f/b") (void)kv.DeleteNamespace(n.path);
    }
  }
  return 0;
}
