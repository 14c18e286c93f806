// libFuzzer target: a differential fuzzer of the KV (packice/kv.h). The input is a sequence of
// operations — put, CAS put, create-if-absent, delete, CAS delete, batch, get, scan (every
// page), TTL puts, time passing, the reaper, snapshot, reopen — run on a KvStore and on a
// std::map model side by side. Every result (code, revision, value, create/mod revision,
// version) must match, and after a reopen the store must hold exactly the model. Any
// mismatch, crash, sanitizer report or hang is a bug.
//
//   fuzz_kv -max_total_time=60 NEW_CORPUS_DIR fuzz/corpus/kv
#include <spdlog/spdlog.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "packice/clock.h"
#include "packice/kv.h"
#include "services/kv/local_kv_store.h"

namespace {

using packice::BatchOp;
using packice::Duration;
using packice::StatusCode;
using packice::kv::LocalKvStore;

// A directory of this process, on tmpfs when there is one, removed at exit.
const std::string& Dir() {
  static const std::string* const dir = [] {
    const std::filesystem::path base = std::filesystem::is_directory("/dev/shm")
                                           ? std::filesystem::path("/dev/shm")
                                           : std::filesystem::temp_directory_path();
    std::string tmpl = (base / "fuzz-kv-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) std::abort();
    spdlog::set_level(spdlog::level::off);
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(Dir(), ec);
    });
    return new std::string(std::move(tmpl));
  }();
  return *dir;
}

class ManualClock final : public packice::Clock {
 public:
  TimePoint Now() override { return TimePoint(std::chrono::milliseconds(ms_)); }
  int64_t UnixMillis() override { return 1'700'000'000'000 + ms_; }
  void Advance(int64_t ms) { ms_ += ms; }

 private:
  int64_t ms_ = 0;
};

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      std::fprintf(stderr, "fuzz_kv: %s:%d: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                            \
    }                                                                          \
  } while (0)

struct ModelEntry {
  std::string value;
  int64_t create = 0, mod = 0, version = 0, expires = 0;
};

// The reference: what the store should hold.
struct Model {
  std::map<std::string, ModelEntry> keys;
  int64_t revision = 0;
  bool Live(const std::string& k, int64_t now) const {
    auto it = keys.find(k);
    return it != keys.end() && (it->second.expires == 0 || it->second.expires > now);
  }
};

// Reads the input front to back; zeros once it is used up.
class Input {
 public:
  Input(const uint8_t* d, size_t n) : d_(d), n_(n) {}
  uint8_t Byte() { return i_ < n_ ? d_[i_++] : 0; }
  bool done() const { return i_ >= n_; }

 private:
  const uint8_t* d_;
  size_t n_;
  size_t i_ = 0;
};

const char* const kKeys[] = {"a",        "a/1", "a/2",   "a/10", "ab",   "b", "b/x",   "\xff",
                             "\xff\xff", "c",   "c/d/e", "z",    "a/1/", "0", "a\x01", "zz"};
constexpr size_t kKeyCount = sizeof(kKeys) / sizeof(kKeys[0]);
constexpr const char* kNs = "/fuzz/ns";

class Fuzz {
 public:
  explicit Fuzz(Input in) : in_(in) {
    std::error_code ec;
    std::filesystem::remove_all(Dir(), ec);
    options_.dir = Dir();
    options_.clock = clock_;
    options_.segment_bytes = 64 << 10;
    options_.max_key_bytes = 64;
    options_.max_batch_ops = 16;
    options_.max_value_bytes = 512;
    options_.max_batch_bytes = 16 << 10;
    options_.snapshot_after_bytes = 2048;
    options_.reap_interval = Duration(0);
    Open();
    const uint8_t mode = in_.Byte();
    packice::NamespaceOptions ns;
    ns.engine = mode & 1 ? packice::KvEngine::kMemTable : packice::KvEngine::kSwissTable;
    ns.write_mode = mode & 2 ? packice::KvWriteMode::kNoLinear : packice::KvWriteMode::kLinear;
    ns.fsync = packice::KvFsync::kNever;
    CHECK(store_->CreateNamespace(kNs, ns).ok());
  }

  void Run() {
    while (!in_.done()) {
      Step();
      DrainWatcher();
    }
    Reopen();
    DrainWatcher();
  }

 private:
  void Open() {
    auto s = LocalKvStore::Open(options_);
    if (!s.ok()) std::fprintf(stderr, "fuzz_kv: %s\n", s.status().ToString().c_str());
    CHECK(s.ok());
    store_ = std::move(s).value();
    watcher_.reset();
  }
  // A watcher of the whole namespace since the last revision checked: every revision comes,
  // in order, none twice, none the model did not make.
  void Watch() {
    packice::WatchOptions o;
    o.prefix = true;
    o.start_revision = watched_ + 1;
    o.buffer_events = 1 << 20;
    auto w = store_->Watch(kNs, o);
    CHECK(w.ok());
    watcher_ = std::move(w).value();
  }
  void DrainWatcher() {
    if (!watcher_) Watch();
    while (true) {
      auto ev = watcher_->Next(std::chrono::steady_clock::now(), 1000);
      if (!ev.ok()) {
        CHECK(ev.status().code() == StatusCode::kTimeout);
        break;
      }
      for (const auto& e : *ev) {
        CHECK(e.kv.mod_revision == watched_ || e.kv.mod_revision == watched_ + 1);
        watched_ = e.kv.mod_revision;
      }
    }
    CHECK(watched_ == model_.revision);
  }
  void Reopen() {
    watcher_.reset();
    store_.reset();
    Open();
    CompareAll();
  }
  int64_t now() { return clock_->UnixMillis(); }
  std::string Key() { return kKeys[in_.Byte() % kKeyCount]; }
  std::string Value() {
    return std::string(in_.Byte() % 40, static_cast<char>('a' + in_.Byte() % 26));
  }
  std::optional<Duration> Ttl() {
    const uint8_t t = in_.Byte();
    if (t < 200) return std::nullopt;
    return Duration(t - 199);  // 1..56 ms
  }
  // A mod revision to compare with: the right one, 0, or another.
  int64_t Expect(const std::string& k) {
    const uint8_t c = in_.Byte() % 3;
    auto it = model_.keys.find(k);
    if (c == 0 && it != model_.keys.end()) return it->second.mod;
    if (c == 1) return 0;
    return 1 + in_.Byte() % 50;
  }
  // The code the model gives a condition on `k`, kOk when it holds.
  StatusCode Condition(const std::string& k, std::optional<int64_t> want) {
    const bool live = model_.Live(k, now());
    if (!want) return StatusCode::kOk;
    if (*want == 0) return live ? StatusCode::kAlreadyExists : StatusCode::kOk;
    if (!live) return StatusCode::kNotFound;
    return model_.keys[k].mod == *want ? StatusCode::kOk : StatusCode::kWrongState;
  }
  void ModelPut(const std::string& k, const std::string& v, std::optional<Duration> ttl,
                int64_t rev) {
    const bool live = model_.Live(k, now());
    ModelEntry& e = model_.keys[k];
    e.create = live ? e.create : rev;
    e.version = live ? e.version + 1 : 1;
    e.mod = rev;
    e.value = v;
    e.expires = ttl && ttl->count() > 0 ? now() + ttl->count() : 0;
  }

  void Step() {
    switch (in_.Byte() % 11) {
      case 0:
      case 1: {  // put, maybe conditional, maybe with a TTL
        const std::string k = Key(), v = Value();
        packice::PutOptions o;
        o.ttl = Ttl();
        if (in_.Byte() % 3 == 0) o.if_mod_revision = Expect(k);
        const StatusCode want = Condition(k, o.if_mod_revision);
        auto r = store_->Put(kNs, k, v, o);
        CHECK(r.status().code() == want);
        if (!r.ok()) return;
        CHECK(r->revision == ++model_.revision);
        ModelPut(k, v, o.ttl, r->revision);
        return;
      }
      case 2: {  // delete, maybe conditional
        const std::string k = Key();
        packice::DeleteOptions o;
        if (in_.Byte() % 3 == 0) {
          o.if_mod_revision = Expect(k);
          if (*o.if_mod_revision == 0) o.if_mod_revision = 1;
        }
        StatusCode want = Condition(k, o.if_mod_revision);
        if (want == StatusCode::kOk && !model_.Live(k, now())) want = StatusCode::kNotFound;
        auto r = store_->Delete(kNs, k, o);
        CHECK(r.status().code() == want);
        if (!r.ok()) return;
        CHECK(r->revision == ++model_.revision);
        model_.keys.erase(k);
        return;
      }
      case 3: {  // batch
        std::vector<BatchOp> ops;
        std::map<std::string, bool> seen;
        const int n = 1 + in_.Byte() % 4;
        bool dup = false;
        for (int i = 0; i < n; ++i) {
          BatchOp op;
          op.key = Key();
          dup |= seen[op.key];
          seen[op.key] = true;
          if (in_.Byte() % 3 == 0) {
            op.kind = BatchOp::Kind::kDelete;
            op.ignore_missing = in_.Byte() & 1;
          } else {
            op.value = Value();
            op.ttl = Ttl();
          }
          if (in_.Byte() % 4 == 0) {
            op.if_mod_revision = Expect(op.key);
            if (op.kind == BatchOp::Kind::kDelete && *op.if_mod_revision == 0) {
              op.if_mod_revision = 1;
            }
          }
          ops.push_back(op);
        }
        StatusCode want = dup ? StatusCode::kInvalidArgument : StatusCode::kOk;
        bool writes = false;
        for (const BatchOp& op : ops) {
          if (want != StatusCode::kOk) break;
          want = Condition(op.key, op.if_mod_revision);
          const bool live = model_.Live(op.key, now());
          if (want == StatusCode::kOk && op.kind == BatchOp::Kind::kDelete && !live &&
              !op.ignore_missing) {
            want = StatusCode::kNotFound;
          }
          writes |= op.kind == BatchOp::Kind::kPut || live;
        }
        auto r = store_->Commit(kNs, ops);
        CHECK(r.status().code() == want);
        if (!r.ok()) return;
        if (!writes) {
          CHECK(r->revision == model_.revision);
          return;
        }
        CHECK(r->revision == ++model_.revision);
        for (const BatchOp& op : ops) {
          if (op.kind == BatchOp::Kind::kPut) {
            ModelPut(op.key, op.value, op.ttl, r->revision);
          } else if (model_.Live(op.key, now())) {
            model_.keys.erase(op.key);
          }
        }
        return;
      }
      case 4:
      case 5: {  // get
        const std::string k = Key();
        auto r = store_->Get(kNs, k);
        if (!model_.Live(k, now())) {
          CHECK(r.status().code() == StatusCode::kNotFound);
          return;
        }
        CHECK(r.ok());
        const ModelEntry& e = model_.keys[k];
        CHECK(r->value == e.value && r->mod_revision == e.mod && r->create_revision == e.create &&
              r->version == e.version && r->expires_unix_ms == e.expires);
        return;
      }
      case 6: {  // scan every page
        packice::ScanOptions o;
        const uint8_t how = in_.Byte() % 3;
        if (how == 0) o.prefix = Key().substr(0, 1 + in_.Byte() % 2);
        if (how == 1) {
          o.start = Key();
          o.end = Key();
        }
        o.limit = 1 + in_.Byte() % 5;
        std::vector<std::string> got;
        while (true) {
          auto r = store_->Scan(kNs, o);
          CHECK(r.ok());
          CHECK(r->kvs.size() <= o.limit);
          for (const auto& kv : r->kvs) got.push_back(kv.key);
          if (r->next.empty()) break;
          o.after = r->next;
        }
        std::vector<std::string> want;
        for (const auto& [k, e] : model_.keys) {
          if (!model_.Live(k, now())) continue;
          if (how == 0 && !k.starts_with(o.prefix)) continue;
          if (how == 1 && (k < o.start || (!o.end.empty() && k >= o.end))) continue;
          want.push_back(k);
        }
        CHECK(got == want);
        return;
      }
      case 7:  // time passes
        clock_->Advance(in_.Byte() % 64);
        return;
      case 8: {  // the reaper
        size_t expired = 0;
        for (auto it = model_.keys.begin(); it != model_.keys.end();) {
          if (it->second.expires != 0 && it->second.expires <= now()) {
            it = model_.keys.erase(it);
            ++expired;
          } else {
            ++it;
          }
        }
        const size_t n = store_->ReapExpired();
        CHECK(n == expired);
        if (n > 0) ++model_.revision;
        return;
      }
      case 9:  // a reopen (rarer: each costs the log's recovery scan)
        if (in_.Byte() < 64) Reopen();
        return;
      case 10: {  // the engine snapshotted, the log truncated, then the listing
        CHECK(store_->Snapshot(kNs).ok());
        auto list = store_->ListNamespaces("/fuzz");
        CHECK(list.ok() && list->size() == 1);
        CHECK((*list)[0].revision == model_.revision);
        return;
      }
    }
  }

  void CompareAll() {
    packice::ScanOptions o;
    o.limit = 1000;
    auto r = store_->Scan(kNs, o);
    CHECK(r.ok() && r->next.empty());
    size_t i = 0;
    for (const auto& [k, e] : model_.keys) {
      if (!model_.Live(k, now())) continue;
      CHECK(i < r->kvs.size());
      const auto& kv = r->kvs[i++];
      CHECK(kv.key == k && kv.value == e.value && kv.mod_revision == e.mod &&
            kv.create_revision == e.create && kv.version == e.version);
    }
    CHECK(i == r->kvs.size());
    auto list = store_->ListNamespaces("");
    CHECK(list.ok() && list->size() == 1 && (*list)[0].revision == model_.revision);
  }

  Input in_;
  std::shared_ptr<ManualClock> clock_ = std::make_shared<ManualClock>();
  packice::KvOptions options_;
  std::unique_ptr<LocalKvStore> store_;
  std::unique_ptr<packice::KvWatcher> watcher_;  // dropped before store_ at a reopen
  int64_t watched_ = 0;                          // the last revision the watcher delivered
  Model model_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 4096) return 0;
  Fuzz(Input(data, size)).Run();
  return 0;
}
