// packice._packice's KV: a thin layer over the C++ KV client (include/packice/kv.h, ConnectKv).
// The Pythonic half — the Kv handle, items and events as dataclasses, batches, paging of scans,
// docstrings — is python/packice/__init__.py.
//
// Every call that waits for the node runs with the GIL released. A watch's Next waits in slices
// of kWatchSlice, taking the GIL between them to run Python's signal handlers (Ctrl-C raises
// KeyboardInterrupt in a thread blocked on a watch).
//
// Keys and values arrive as std::string (pybind11 takes bytes, and str as UTF-8) and leave as
// bytes. KeyValues leave as tuples (key, value, create_revision, mod_revision, version,
// expires_unix_ms), events as (type 1 put | 2 delete, kv tuple, prev kv tuple or None, expired).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "binding.h"
#include "packice/kv.h"

namespace packice_py {
namespace {

using packice::Duration;
using packice::Status;
using packice::StatusCode;

// The KV client's batched calls carry at most this many keys; a MultiPut is also split at
// kMultiPutBytes of keys and values (gRPC's messages are at most 4 MiB).
constexpr size_t kMultiItems = 1024;
constexpr size_t kMultiPutBytes = 2u << 20;
constexpr auto kWatchSlice = std::chrono::milliseconds(150);

py::tuple KvTuple(const packice::KeyValue& kv) {
  return py::make_tuple(Bytes(kv.key), Bytes(kv.value), kv.create_revision, kv.mod_revision,
                        kv.version, kv.expires_unix_ms);
}

py::object PrevTuple(const std::optional<packice::KeyValue>& prev) {
  if (!prev) return py::none();
  return KvTuple(*prev);
}

py::tuple EventTuple(const packice::KvEvent& e) {
  return py::make_tuple(static_cast<int>(e.type), KvTuple(e.kv), PrevTuple(e.prev), e.expired);
}

std::optional<Duration> Ms(std::optional<int64_t> ms) {
  if (!ms) return std::nullopt;
  return Duration(*ms);
}

// --- namespace options -----------------------------------------------------------------------

template <typename Enum>
struct Named {
  const char* name;
  Enum value;
};

constexpr Named<packice::KvEngine> kEngines[] = {{"swisstable", packice::KvEngine::kSwissTable},
                                                 {"memtable", packice::KvEngine::kMemTable}};
constexpr Named<packice::KvWriteMode> kWriteModes[] = {
    {"linear", packice::KvWriteMode::kLinear}, {"nolinear", packice::KvWriteMode::kNoLinear}};
constexpr Named<packice::KvFsync> kFsyncs[] = {{"always", packice::KvFsync::kAlways},
                                               {"interval", packice::KvFsync::kInterval},
                                               {"never", packice::KvFsync::kNever}};

template <typename Enum, size_t N>
Enum FromName(const Named<Enum> (&table)[N], const char* what, const std::string& name) {
  std::string choices;
  for (const Named<Enum>& n : table) {
    if (name == n.name) return n.value;
    choices += std::string(choices.empty() ? "\"" : " or \"") + n.name + "\"";
  }
  Raise(packice::InvalidArgument(std::string(what) + " must be " + choices + ", not \"" + name +
                                 "\""));
}

template <typename Enum, size_t N>
std::string NameOf(const Named<Enum> (&table)[N], Enum value) {
  for (const Named<Enum>& n : table) {
    if (n.value == value) return n.name;
  }
  return std::to_string(static_cast<int>(value));
}

py::dict NamespaceDict(const packice::NamespaceInfo& info) {
  py::dict d;
  d["path"] = info.path;
  d["engine"] = NameOf(kEngines, info.options.engine);
  d["write_mode"] = NameOf(kWriteModes, info.options.write_mode);
  d["fsync"] = NameOf(kFsyncs, info.options.fsync);
  d["fsync_interval"] = static_cast<double>(info.options.fsync_interval.count()) / 1000;
  d["default_ttl"] = static_cast<double>(info.options.default_ttl.count()) / 1000;
  d["revision"] = info.revision;
  d["keys"] = info.keys;
  return d;
}

// --- watches ---------------------------------------------------------------------------------

// One watch. next() is for one thread at a time; cancel() may come from any thread, also while
// another one waits in next().
class KvWatch {
 public:
  explicit KvWatch(std::unique_ptr<packice::KvWatcher> watcher) : watcher_(std::move(watcher)) {}
  ~KvWatch() {  // cancels: over a socket, a message to the node
    WithoutGil([this] { watcher_.reset(); });
  }
  KvWatch(const KvWatch&) = delete;
  KvWatch& operator=(const KvWatch&) = delete;

  // The next events (whole revisions, up to `max_events`), or None when `timeout_ms` (None:
  // no bound) passed without any. The watch's end raises its exception, with the attribute
  // `resume_revision`.
  py::object next(std::optional<int64_t> timeout_ms, size_t max_events) {
    if (busy_) throw std::runtime_error("a packice watch is read by one thread at a time");
    busy_ = true;
    struct Idle {
      bool* busy;
      ~Idle() { *busy = false; }
    } idle{&busy_};
    const auto start = std::chrono::steady_clock::now();
    std::optional<std::chrono::steady_clock::time_point> deadline;
    if (timeout_ms) deadline = start + std::chrono::milliseconds(std::max<int64_t>(0, *timeout_ms));
    while (true) {
      auto slice = std::chrono::steady_clock::now() + kWatchSlice;
      if (deadline) slice = std::min(slice, *deadline);
      auto events = WithoutGil([&] { return watcher_->Next(slice, max_events); });
      if (events.ok()) {
        py::list out;
        for (const packice::KvEvent& e : *events) out.append(EventTuple(e));
        return out;
      }
      if (events.status().code() != StatusCode::kTimeout) {
        py::object error = MakeError(events.status());
        error.attr("resume_revision") = watcher_->resume_revision();
        RaiseObject(error);
      }
      if (PyErr_CheckSignals() != 0) throw py::error_already_set();
      if (deadline && std::chrono::steady_clock::now() >= *deadline) return py::none();
    }
  }

  void cancel() { watcher_->Cancel(); }
  int64_t resume_revision() const { return watcher_->resume_revision(); }

 private:
  std::unique_ptr<packice::KvWatcher> watcher_;
  bool busy_ = false;  // the GIL guards it
};

// --- the client ------------------------------------------------------------------------------

// A node's KV. Safe for concurrent use: calls release the GIL.
class KvClient {
 public:
  explicit KvClient(std::unique_ptr<packice::KvClient> kv) : kv_(std::move(kv)) {}
  ~KvClient() {  // closes the connection
    WithoutGil([this] { kv_.reset(); });
  }
  KvClient(const KvClient&) = delete;
  KvClient& operator=(const KvClient&) = delete;

  void create_namespace(const std::string& path, const std::string& engine,
                        const std::string& write_mode, const std::string& fsync,
                        std::optional<int64_t> fsync_interval_ms,
                        std::optional<int64_t> default_ttl_ms) {
    packice::NamespaceOptions o;
    o.engine = FromName(kEngines, "engine", engine);
    o.write_mode = FromName(kWriteModes, "write_mode", write_mode);
    o.fsync = FromName(kFsyncs, "fsync", fsync);
    if (fsync_interval_ms) o.fsync_interval = Duration(*fsync_interval_ms);
    if (default_ttl_ms) o.default_ttl = Duration(*default_ttl_ms);
    Status s = WithoutGil([&] { return kv_->CreateNamespace(path, o); });
    Check(s);
  }

  void delete_namespace(const std::string& path) {
    Status s = WithoutGil([&] { return kv_->DeleteNamespace(path); });
    Check(s);
  }

  py::list list_namespaces(const std::string& prefix) {
    auto r = WithoutGil([&] { return kv_->ListNamespaces(prefix); });
    py::list out;
    for (const packice::NamespaceInfo& info : Take(std::move(r))) out.append(NamespaceDict(info));
    return out;
  }

  py::tuple get(const std::string& ns, const std::string& key) {
    auto r = WithoutGil([&] { return kv_->Get(ns, key); });
    return KvTuple(Take(std::move(r)));
  }

  // (revision, prev kv tuple or None).
  py::tuple put(const std::string& ns, const std::string& key, const std::string& value,
                std::optional<int64_t> ttl_ms, std::optional<int64_t> if_mod_revision,
                bool prev_kv) {
    packice::PutOptions o{
        .ttl = Ms(ttl_ms), .if_mod_revision = if_mod_revision, .prev_kv = prev_kv};
    auto r = WithoutGil([&] { return kv_->Put(ns, key, value, o); });
    packice::PutResult p = Take(std::move(r));
    return py::make_tuple(p.revision, PrevTuple(p.prev));
  }

  // (revision, prev kv tuple or None).
  py::tuple remove(const std::string& ns, const std::string& key,
                   std::optional<int64_t> if_mod_revision, bool prev_kv) {
    packice::DeleteOptions o{.if_mod_revision = if_mod_revision, .prev_kv = prev_kv};
    auto r = WithoutGil([&] { return kv_->Delete(ns, key, o); });
    packice::DeleteResult d = Take(std::move(r));
    return py::make_tuple(d.revision, PrevTuple(d.prev));
  }

  // One page: ([kv tuples], next, revision); `next` is b"" after the last page.
  py::tuple scan(const std::string& ns, const std::string& prefix, const std::string& start,
                 const std::string& end, const std::string& after, uint64_t limit, bool keys_only) {
    packice::ScanOptions o{.prefix = prefix,
                           .start = start,
                           .end = end,
                           .after = after,
                           .limit = limit,
                           .keys_only = keys_only};
    auto r = WithoutGil([&] { return kv_->Scan(ns, o); });
    packice::ScanResult page = Take(std::move(r));
    py::list kvs;
    for (const packice::KeyValue& kv : page.kvs) kvs.append(KvTuple(kv));
    return py::make_tuple(kvs, Bytes(page.next), page.revision);
  }

  // `ops`: (is_delete, key, value, ttl_ms, if_mod_revision, ignore_missing) each.
  int64_t commit(
      const std::string& ns,
      const std::vector<std::tuple<bool, std::string, std::string, std::optional<int64_t>,
                                   std::optional<int64_t>, bool>>& ops) {
    std::vector<packice::BatchOp> batch;
    batch.reserve(ops.size());
    for (const auto& [is_delete, key, value, ttl_ms, if_mod, ignore_missing] : ops) {
      batch.push_back(
          {.kind = is_delete ? packice::BatchOp::Kind::kDelete : packice::BatchOp::Kind::kPut,
           .key = key,
           .value = value,
           .ttl = Ms(ttl_ms),
           .if_mod_revision = if_mod,
           .ignore_missing = ignore_missing});
    }
    auto r = WithoutGil([&] { return kv_->Commit(ns, batch); });
    return Take(std::move(r)).revision;
  }

  // The value of each key (bytes), or None for an absent one; in messages of kMultiItems keys.
  // Keys a reply had no room for (kOutOfCapacity) are asked again. Another per-key error raises.
  py::list multi_get(const std::string& ns, const std::vector<std::string>& keys) {
    std::vector<std::optional<packice::Result<packice::KeyValue>>> got(keys.size());
    Status call = WithoutGil([&] { return MultiGetAll(ns, keys, &got); });
    Check(call);
    py::list out;
    for (const auto& r : got) {
      if (r->ok()) {
        out.append(Bytes((*r)->value));
      } else if (r->status().code() == StatusCode::kNotFound) {
        out.append(py::none());
      } else {
        Raise(r->status());
      }
    }
    return out;
  }

  // `puts`: (key, value, ttl_ms, if_mod_revision) each. One entry per put: its revision (int)
  // or its exception (not raised). The call's own error (no such namespace) raises.
  py::list multi_put(const std::string& ns,
                     const std::vector<std::tuple<std::string, std::string, std::optional<int64_t>,
                                                  std::optional<int64_t>>>& puts) {
    std::vector<packice::KvPutItem> items;
    items.reserve(puts.size());
    for (const auto& [key, value, ttl_ms, if_mod] : puts) {
      items.push_back({key, value, {.ttl = Ms(ttl_ms), .if_mod_revision = if_mod}});
    }
    std::vector<packice::Result<packice::PutResult>> results;
    Status call = WithoutGil([&] { return MultiPutAll(ns, items, &results); });
    Check(call);
    py::list out;
    for (const auto& r : results) {
      if (r.ok()) {
        out.append(r->revision);
      } else {
        out.append(MakeError(r.status()));
      }
    }
    return out;
  }

  std::unique_ptr<KvWatch> watch(const std::string& ns, const std::string& key, bool prefix,
                                 int64_t start_revision, bool prev_kv) {
    packice::WatchOptions o{
        .key = key, .prefix = prefix, .start_revision = start_revision, .prev_kv = prev_kv};
    auto w = WithoutGil([&] { return kv_->Watch(ns, o); });
    return std::make_unique<KvWatch>(Take(std::move(w)));
  }

 private:
  // REQUIRES: the GIL is not held.
  Status MultiGetAll(const std::string& ns, const std::vector<std::string>& keys,
                     std::vector<std::optional<packice::Result<packice::KeyValue>>>* got) {
    std::vector<size_t> todo(keys.size());
    for (size_t i = 0; i < keys.size(); ++i) todo[i] = i;
    while (!todo.empty()) {
      const size_t n = std::min(todo.size(), kMultiItems);
      std::vector<std::string> ask;
      ask.reserve(n);
      for (size_t i = 0; i < n; ++i) ask.push_back(keys[todo[i]]);
      PACKICE_ASSIGN_OR_RETURN(auto answers, kv_->MultiGet(ns, ask));
      if (answers.size() != n) {
        return packice::ProtocolError("MultiGet answered " + std::to_string(answers.size()) +
                                      " keys of " + std::to_string(n));
      }
      std::vector<size_t> again;
      for (size_t i = 0; i < n; ++i) {
        const bool no_room =
            !answers[i].ok() && answers[i].status().code() == StatusCode::kOutOfCapacity;
        if (no_room && i > 0) {
          again.push_back(todo[i]);
        } else if (no_room) {  // not even the first fitted: ask for it alone
          (*got)[todo[i]] = kv_->Get(ns, keys[todo[i]]);
        } else {
          (*got)[todo[i]] = std::move(answers[i]);
        }
      }
      again.insert(again.end(), todo.begin() + static_cast<std::ptrdiff_t>(n), todo.end());
      todo = std::move(again);
    }
    return Status::Ok();
  }

  // REQUIRES: the GIL is not held.
  Status MultiPutAll(const std::string& ns, const std::vector<packice::KvPutItem>& items,
                     std::vector<packice::Result<packice::PutResult>>* results) {
    size_t begin = 0;
    while (begin < items.size()) {
      size_t end = begin;
      size_t bytes = 0;
      while (end < items.size() && end - begin < kMultiItems &&
             (end == begin ||
              bytes + items[end].key.size() + items[end].value.size() <= kMultiPutBytes)) {
        bytes += items[end].key.size() + items[end].value.size();
        ++end;
      }
      std::span<const packice::KvPutItem> chunk(items.data() + begin, end - begin);
      PACKICE_ASSIGN_OR_RETURN(auto answers, kv_->MultiPut(ns, chunk));
      if (answers.size() != chunk.size()) {
        return packice::ProtocolError("MultiPut answered " + std::to_string(answers.size()) +
                                      " puts of " + std::to_string(chunk.size()));
      }
      for (auto& a : answers) results->push_back(std::move(a));
      begin = end;
    }
    return Status::Ok();
  }

  std::unique_ptr<packice::KvClient> kv_;
};

std::unique_ptr<KvClient> ConnectKvClient(const std::string& url, const std::string& token,
                                          const std::string& ca_file) {
  packice::KvClientOptions options;
  options.token = token;
  options.ca_file = ca_file;
  auto kv = WithoutGil([&] { return packice::ConnectKv(url, options); });
  return std::make_unique<KvClient>(Take(std::move(kv)));
}

}  // namespace

void BindKv(py::module_& m) {
  py::class_<KvWatch>(m, "KvWatch")
      .def("next", &KvWatch::next, py::arg("timeout_ms"), py::arg("max_events") = 256)
      .def("cancel", &KvWatch::cancel)
      .def_property_readonly("resume_revision", &KvWatch::resume_revision);

  py::class_<KvClient>(m, "KvClient")
      .def("create_namespace", &KvClient::create_namespace, py::arg("path"), py::arg("engine"),
           py::arg("write_mode"), py::arg("fsync"), py::arg("fsync_interval_ms"),
           py::arg("default_ttl_ms"))
      .def("delete_namespace", &KvClient::delete_namespace, py::arg("path"))
      .def("list_namespaces", &KvClient::list_namespaces, py::arg("prefix"))
      .def("get", &KvClient::get, py::arg("ns"), py::arg("key"))
      .def("put", &KvClient::put, py::arg("ns"), py::arg("key"), py::arg("value"),
           py::arg("ttl_ms"), py::arg("if_mod_revision"), py::arg("prev_kv"))
      .def("delete", &KvClient::remove, py::arg("ns"), py::arg("key"), py::arg("if_mod_revision"),
           py::arg("prev_kv"))
      .def("scan", &KvClient::scan, py::arg("ns"), py::arg("prefix"), py::arg("start"),
           py::arg("end"), py::arg("after"), py::arg("limit"), py::arg("keys_only"))
      .def("commit", &KvClient::commit, py::arg("ns"), py::arg("ops"))
      .def("multi_get", &KvClient::multi_get, py::arg("ns"), py::arg("keys"))
      .def("multi_put", &KvClient::multi_put, py::arg("ns"), py::arg("puts"))
      .def("watch", &KvClient::watch, py::keep_alive<0, 1>(), py::arg("ns"), py::arg("key"),
           py::arg("prefix"), py::arg("start_revision"), py::arg("prev_kv"));

  m.def("connect_kv", &ConnectKvClient, py::arg("url"), py::arg("token"), py::arg("ca_file"));
}

}  // namespace packice_py
