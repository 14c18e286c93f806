// packice._packice: the C++ half of the Python binding, a thin layer over the public C++ client
// (include/packice/client.h). The Pythonic half — context managers, metadata and TTL handling,
// exception classes, docstrings — is python/packice/__init__.py; nothing here is meant to be
// used directly.
//
// Zero copy: a handle's bytes reach Python as a memoryview over a small exporter object (Bytes)
// that implements the buffer protocol over the handle's span and holds a shared_ptr to the
// handle; each `buffer()` call makes a new one. Every memoryview, slice of it or numpy array made
// from it keeps the exporter, and so the mapping, alive:
//  - a reader released while views of it exist ends its lease when the last view goes away;
//  - a writer cannot be sealed while views of it exist (BufferError, like mmap.close()): after
//    the seal the bytes are immutable and the mapping is gone;
//  - a writer aborted while views of it exist is discarded when the last view goes away (its
//    object was never visible, so late writes harm nobody).
//
// The GIL is released around every call that may block (a round trip to the node, a seal that
// syncs a file, a large memcpy). Handles are not for concurrent use: a second thread calling a
// handle while a first one is blocked in it gets RuntimeError instead of a race.
//
// Cache groups: Group is an in-process packice::Group whose getter calls a Python callable, and
// GroupClient a node's groups over gRPC or HTTP (client/group_endpoint.h). A Group's loads run
// on threads of their own (include/packice/cache.h): a Get waits with the GIL released, and
// the load thread takes the GIL to call the callable. A load may outlive the Get that started
// it (a Get gives up at load_timeout; the load runs on), so the callable is held by a
// shared_ptr<PyLoader> in the getter and is only touched, and finally released, with the GIL
// held; ~Group, which waits for running loads, runs with the GIL released.
//
// The CAS: CasClient is a node's content-addressed store (client/cas_endpoint.h). Its get hands
// out a read-only memoryview over the CasBlob, whose holder (over uds, the read lease on the
// mapped blob file) lives as long as any view of it: no copy.
//
// The namespaced KV (KvClient, KvWatch) is kv_binding.cc; binding.h has what both files share.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>

#include "binding.h"
#include "client/cas_endpoint.h"
#include "client/group_endpoint.h"
#include "packice/cache.h"
#include "packice/client.h"
#include "packice/memory_peer.h"
#include "packice/sharedfs_peer.h"
#include "services/cache/group_registry.h"

namespace py = pybind11;

namespace {

using packice::Duration;
using packice::Status;

using packice_py::Check;
using packice_py::InterpreterFinalizing;
using packice_py::Raise;
using packice_py::Take;
using packice_py::WithoutGil;

// ObjectInfo as a plain tuple; packice.ObjectInfo is built from it on the Python side.
py::tuple InfoTuple(const packice::ObjectInfo& info) {
  py::dict meta;
  for (const auto& [k, v] : info.meta) meta[py::str(k)] = py::str(v);
  return py::make_tuple(info.key, info.version, info.size,
                        info.state == packice::ObjectState::kSealed ? "sealed" : "creating", meta,
                        static_cast<int64_t>(info.ttl.count()), info.created_unix_ms,
                        info.expires_unix_ms, info.tier);
}

packice::CreateOptions MakeCreateOptions(const std::map<std::string, std::string>& meta,
                                         std::optional<int64_t> ttl_ms, bool exclusive) {
  packice::CreateOptions options;
  options.meta = packice::Meta(meta.begin(), meta.end());
  if (ttl_ms) options.ttl = Duration(*ttl_ms);
  options.exclusive = exclusive;
  return options;
}

// A contiguous, read-only view of any object with the buffer protocol (bytes, bytearray,
// memoryview, numpy array, ...). It holds the buffer for as long as it lives, so the bytes stay
// put while the GIL is released.
class InBuffer {
 public:
  explicit InBuffer(const py::handle& obj) {
    if (PyObject_GetBuffer(obj.ptr(), &view_, PyBUF_SIMPLE) != 0) throw py::error_already_set();
  }
  ~InBuffer() { PyBuffer_Release(&view_); }
  InBuffer(const InBuffer&) = delete;
  InBuffer& operator=(const InBuffer&) = delete;
  std::span<const std::byte> bytes() const {
    return {static_cast<const std::byte*>(view_.buf), static_cast<size_t>(view_.len)};
  }

 private:
  Py_buffer view_{};
};

// The buffer-protocol exporter behind every memoryview the binding hands out. `owner` keeps
// the handle (and so its mapping and lease) alive while any view of these bytes exists.
class Bytes {
 public:
  Bytes(std::shared_ptr<void> owner, std::span<std::byte> span, bool readonly)
      : owner_(std::move(owner)), span_(span), readonly_(readonly) {}

  py::buffer_info Info() {
    static std::byte empty[1];
    void* ptr = span_.empty() ? static_cast<void*>(empty) : static_cast<void*>(span_.data());
    return py::buffer_info(ptr, 1, py::format_descriptor<uint8_t>::format(), 1,
                           {static_cast<py::ssize_t>(span_.size())}, {py::ssize_t{1}}, readonly_);
  }

 private:
  std::shared_ptr<void> owner_;
  std::span<std::byte> span_;
  bool readonly_;
};

py::memoryview MakeView(std::shared_ptr<void> owner, std::span<std::byte> span, bool readonly) {
  py::object exporter = py::cast(Bytes(std::move(owner), span, readonly));
  return py::memoryview(exporter);
}

// Guards a handle against use from a second thread while the first one is blocked in it.
class Busy {
 public:
  explicit Busy(bool* flag) : flag_(flag) {
    if (*flag_) throw std::runtime_error("packice handle is in use by another thread");
    *flag_ = true;
  }
  ~Busy() { *flag_ = false; }
  Busy(const Busy&) = delete;
  Busy& operator=(const Busy&) = delete;

 private:
  bool* flag_;
};

// --- writers ---------------------------------------------------------------------------------

struct WriterState {
  explicit WriterState(packice::ObjectWriter w) : writer(std::move(w)) {}
  ~WriterState() {  // aborts the object unless it was sealed: a round trip
    WithoutGil([this] { return writer.Abort(); }).IgnoreError();
  }
  packice::ObjectWriter writer;
};

class Writer {
 public:
  explicit Writer(packice::ObjectWriter w)
      : key_(w.key()), size_(w.info().size), state_(std::make_shared<WriterState>(std::move(w))) {}

  const std::string& key() const { return key_; }
  uint64_t size() const { return size_; }
  bool open() const { return state_ != nullptr; }

  py::memoryview buffer() {
    Busy busy(&busy_);
    Live();
    return MakeView(state_, state_->writer.data(), /*readonly=*/false);
  }

  // Copies `data` to `offset`; returns the bytes written.
  size_t write(const py::handle& data, uint64_t offset) {
    Busy busy(&busy_);
    Live();
    InBuffer in(data);
    std::span<const std::byte> src = in.bytes();
    std::span<std::byte> dst = state_->writer.data();
    if (offset > dst.size() || src.size() > dst.size() - offset) {
      Raise(packice::InvalidArgument(
          "write of " + std::to_string(src.size()) + " bytes at offset " + std::to_string(offset) +
          " goes past the object's " + std::to_string(dst.size()) + " bytes"));
    }
    if (src.size() >= (1u << 20)) {
      WithoutGil([&] { std::memmove(dst.data() + offset, src.data(), src.size()); });
    } else if (!src.empty()) {
      std::memmove(dst.data() + offset, src.data(), src.size());
    }
    return src.size();
  }

  py::tuple seal(std::optional<uint64_t> size) {
    Busy busy(&busy_);
    Live();
    if (state_.use_count() > 1) {
      throw py::buffer_error(
          "cannot seal: views of the object's bytes still exist (a memoryview, a slice of one, "
          "or a numpy array made from one); delete them (or memoryview.release()) first");
    }
    std::shared_ptr<WriterState> state = state_;
    auto info = WithoutGil([&] { return size ? state->writer.Seal(*size) : state->writer.Seal(); });
    if (packice::SealEndedLease(info.status())) state_.reset();
    return InfoTuple(Take(std::move(info)));
  }

  void abort() {
    Busy busy(&busy_);
    if (!state_) return;
    std::shared_ptr<WriterState> state = std::move(state_);
    if (state.use_count() > 1) return;  // the last view's exporter aborts
    Status s = WithoutGil([&] { return state->writer.Abort(); });
    Check(s);
  }

 private:
  void Live() const {
    if (!state_) Raise(packice::WrongState("object '" + key_ + "' was already sealed or aborted"));
  }

  std::string key_;
  uint64_t size_;
  std::shared_ptr<WriterState> state_;  // null once sealed or aborted
  bool busy_ = false;
};

// --- readers ---------------------------------------------------------------------------------

struct ReaderState {
  explicit ReaderState(packice::ObjectReader r) : reader(std::move(r)) {}
  ~ReaderState() {  // ends the lease: a round trip
    WithoutGil([this] { return reader.Release(); }).IgnoreError();
  }
  packice::ObjectReader reader;
};

class Reader {
 public:
  explicit Reader(packice::ObjectReader r)
      : info_(InfoTuple(r.info())), state_(std::make_shared<ReaderState>(std::move(r))) {}

  py::tuple info() const { return info_; }
  bool open() const { return state_ != nullptr; }

  py::memoryview buffer() {
    Busy busy(&busy_);
    if (!state_) Raise(packice::WrongState("object was already released"));
    std::span<const std::byte> bytes = state_->reader.data();
    // Read-only by the buffer protocol (and, for a node's shared memory, by the mapping).
    return MakeView(state_, {const_cast<std::byte*>(bytes.data()), bytes.size()},
                    /*readonly=*/true);
  }

  void release() {
    Busy busy(&busy_);
    if (!state_) return;
    std::shared_ptr<ReaderState> state = std::move(state_);
    if (state.use_count() > 1) return;  // the last view's exporter releases
    Status s = WithoutGil([&] { return state->reader.Release(); });
    Check(s);
  }

 private:
  py::tuple info_;
  std::shared_ptr<ReaderState> state_;  // null once released
  bool busy_ = false;
};

// --- the CAS --------------------------------------------------------------------------------

packice::DigestAlgorithm AlgorithmFromName(const std::string& name) {
  if (name == "blake3") return packice::DigestAlgorithm::kBlake3;
  if (name == "sha256") return packice::DigestAlgorithm::kSha256;
  Raise(
      packice::InvalidArgument("algorithm must be \"blake3\" or \"sha256\", not \"" + name + "\""));
}

packice::Digest ParseDigest(const std::string& text) { return Take(packice::Digest::Parse(text)); }

// A blob read from a CAS; its holder (over uds, a read lease: a round trip to end) goes with the
// GIL released.
struct HeldCasBlob {
  explicit HeldCasBlob(packice::CasBlob b) : blob(std::move(b)) {}
  ~HeldCasBlob() {
    WithoutGil([this] { blob.holder.reset(); });
  }
  packice::CasBlob blob;
};

// A node's CAS. Safe for concurrent use: calls release the GIL.
class CasClient {
 public:
  explicit CasClient(std::shared_ptr<packice::CasEndpoint> endpoint)
      : endpoint_(std::move(endpoint)) {}

  std::string put_bytes(const py::handle& data, const std::string& algorithm) {
    const packice::DigestAlgorithm a = AlgorithmFromName(algorithm);
    InBuffer in(data);  // holds the bytes while the GIL is released
    auto d = WithoutGil([&] { return endpoint_->Put(in.bytes(), a); });
    return Take(std::move(d)).ToString();
  }

  std::string put_file(const std::string& path, const std::string& algorithm) {
    const packice::DigestAlgorithm a = AlgorithmFromName(algorithm);
    auto d = WithoutGil([&] { return endpoint_->PutFile(path, a); });
    return Take(std::move(d)).ToString();
  }

  void store(const std::string& digest, const py::handle& data) {
    const packice::Digest d = ParseDigest(digest);
    InBuffer in(data);
    Status s = WithoutGil([&] { return endpoint_->Store(d, in.bytes()); });
    Check(s);
  }

  // A read-only memoryview of `length` bytes (nullopt: to the end) from `start`.
  py::memoryview get(const std::string& digest, uint64_t start, std::optional<uint64_t> length) {
    const packice::Digest d = ParseDigest(digest);
    auto blob =
        WithoutGil([&] { return endpoint_->Get(d, packice::BlobRange::Of(start, length)); });
    auto held = std::make_shared<HeldCasBlob>(Take(std::move(blob)));
    std::span<const std::byte> bytes = held->blob.bytes;
    return MakeView(std::move(held), {const_cast<std::byte*>(bytes.data()), bytes.size()},
                    /*readonly=*/true);
  }

  std::vector<std::string> missing(const std::vector<std::string>& digests) {
    std::vector<packice::Digest> parsed;
    parsed.reserve(digests.size());
    for (const std::string& text : digests) parsed.push_back(ParseDigest(text));
    auto r = WithoutGil([&] { return endpoint_->Missing(parsed); });
    std::vector<std::string> out;
    for (const packice::Digest& d : Take(std::move(r))) out.push_back(d.ToString());
    return out;
  }

  uint64_t stat(const std::string& digest) {
    const packice::Digest d = ParseDigest(digest);
    auto r = WithoutGil([&] { return endpoint_->Stat(d); });
    return Take(std::move(r));
  }

 private:
  std::shared_ptr<packice::CasEndpoint> endpoint_;
};

CasClient OpenCas(const std::string& url, const std::string& token, const std::string& ca_file) {
  packice::ClientOptions options;
  options.http_token = token;
  options.http_ca_file = ca_file;
  auto endpoint = WithoutGil([&] { return packice::OpenCasEndpoint(url, options); });
  return CasClient(Take(std::move(endpoint)));
}

// --- the client ------------------------------------------------------------------------------

class Client {
 public:
  explicit Client(packice::Client client) : client_(std::move(client)) {}

  Writer create(const std::string& key, uint64_t size,
                const std::map<std::string, std::string>& meta, std::optional<int64_t> ttl_ms,
                bool exclusive) {
    packice::CreateOptions options = MakeCreateOptions(meta, ttl_ms, exclusive);
    auto w = WithoutGil([&, cl = c()]() mutable { return cl.Create(key, size, options); });
    return Writer(Take(std::move(w)));
  }

  Reader get(const std::string& key) {
    auto r = WithoutGil([&, cl = c()]() mutable { return cl.Get(key); });
    return Reader(Take(std::move(r)));
  }

  py::tuple put(const std::string& key, const py::handle& data,
                const std::map<std::string, std::string>& meta, std::optional<int64_t> ttl_ms,
                bool exclusive) {
    InBuffer in(data);
    packice::CreateOptions options = MakeCreateOptions(meta, ttl_ms, exclusive);
    auto info = WithoutGil([&, cl = c()]() mutable { return cl.Put(key, in.bytes(), options); });
    return InfoTuple(Take(std::move(info)));
  }

  // The object's bytes, copied into a new bytes object.
  py::bytes get_bytes(const std::string& key) {
    auto r = WithoutGil([&, cl = c()]() mutable { return cl.Get(key); });
    packice::ObjectReader reader = Take(std::move(r));
    std::span<const std::byte> data = reader.data();
    PyObject* out = PyBytes_FromStringAndSize(nullptr, static_cast<Py_ssize_t>(data.size()));
    if (out == nullptr) throw py::error_already_set();
    char* dst = PyBytes_AS_STRING(out);
    WithoutGil([&] {
      if (!data.empty()) std::memcpy(dst, data.data(), data.size());
      return reader.Release();
    }).IgnoreError();  // the bytes are copied; a failed release only delays the lease's end
    return py::reinterpret_steal<py::bytes>(out);
  }

  py::tuple stat(const std::string& key) {
    auto info = WithoutGil([&, cl = c()]() mutable { return cl.Stat(key); });
    return InfoTuple(Take(std::move(info)));
  }

  // One page: ([info tuples], truncated).
  py::tuple list(const std::string& prefix, const std::string& start_after, uint32_t limit) {
    packice::ListOptions options{prefix, start_after, limit};
    auto page = WithoutGil([&, cl = c()]() mutable { return cl.List(options); });
    packice::ListPage p = Take(std::move(page));
    py::list objects;
    for (const packice::ObjectInfo& info : p.objects) objects.append(InfoTuple(info));
    return py::make_tuple(objects, p.truncated);
  }

  void remove(const std::string& key) {
    Status s = WithoutGil([&, cl = c()]() mutable { return cl.Delete(key); });
    Check(s);
  }

  // The CAS over this client's connection (the object API's cas/ keys).
  CasClient cas() { return CasClient(packice::NewObjectCasEndpoint(c())); }

  void close() { client_.reset(); }
  bool closed() const { return !client_.has_value(); }

 private:
  packice::Client& c() {
    if (!client_) Raise(packice::WrongState("the client was closed"));
    return *client_;
  }

  std::optional<packice::Client> client_;
};

Client ConnectUrl(const std::string& url, const std::string& token, const std::string& ca_file) {
  packice::ClientOptions options;
  options.http_token = token;
  options.http_ca_file = ca_file;
  auto client = WithoutGil([&] { return packice::Connect(url, options); });
  return Client(Take(std::move(client)));
}

Duration Ms(std::optional<int64_t> ms, Duration otherwise) {
  return ms ? Duration(*ms) : otherwise;
}

py::dict StatsDict(const packice::LocalPeer::Stats& s) {
  py::dict d;
  d["objects"] = s.objects;
  d["creating"] = s.creating;
  d["leases"] = s.leases;
  d["used_bytes"] = s.used_bytes;
  d["pooled_bytes"] = s.pooled_bytes;
  d["capacity_bytes"] = s.capacity_bytes;
  d["hits"] = s.hits;
  d["misses"] = s.misses;
  d["evictions"] = s.evictions;
  return d;
}

// --- cache groups ----------------------------------------------------------------------------

constexpr size_t kShownKeyBytes = 200;

std::string Shown(std::string_view key) {
  return std::string(key.substr(0, kShownKeyBytes)) + (key.size() > kShownKeyBytes ? "..." : "");
}

// The bytes of a value given by Python: bytes, str (UTF-8) or anything with the buffer
// protocol. Nullopt (and no Python error set) for any other type. REQUIRES: the GIL is held.
std::optional<std::string> ValueBytes(const py::handle& value) {
  if (PyBytes_Check(value.ptr())) {
    return std::string(PyBytes_AS_STRING(value.ptr()),
                       static_cast<size_t>(PyBytes_GET_SIZE(value.ptr())));
  }
  if (PyUnicode_Check(value.ptr())) {
    Py_ssize_t n = 0;
    const char* utf8 = PyUnicode_AsUTF8AndSize(value.ptr(), &n);
    if (utf8 == nullptr) throw py::error_already_set();
    return std::string(utf8, static_cast<size_t>(n));
  }
  if (PyObject_CheckBuffer(value.ptr())) {
    InBuffer in(value);
    std::span<const std::byte> b = in.bytes();
    return std::string(reinterpret_cast<const char*>(b.data()), b.size());
  }
  return std::nullopt;
}

py::bytes ToBytes(std::string_view data) { return py::bytes(data.data(), data.size()); }

py::dict GroupStatsDict(const packice::GroupStats& s) {
  py::dict d;
  for (const packice::GroupStatField& f : packice::GroupStatFields()) {
    d[py::str(f.name.data(), f.name.size())] = s.*f.field;
  }
  d["load_seconds_sum"] = s.load_seconds_sum;
  return d;
}

// The loader calls in flight, process-wide. At exit (an atexit hook: before the interpreter
// starts finalizing, after threading's threads are joined) the gate closes: later loads answer
// kUnavailable without touching Python, and the hook waits for the calls in flight, as Python
// waits for its own threads. Without it, a load thread asking for the GIL once the interpreter
// is finalizing would be ended by Python (pthread_exit) in the middle of a C++ load.
class LoaderGate {
 public:
  bool Enter() {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return false;
    ++active_;
    return true;
  }
  void Leave() {
    std::lock_guard<std::mutex> lock(mu_);
    if (--active_ == 0) idle_.notify_all();
  }
  // REQUIRES: the GIL is not held (the calls in flight need it to finish).
  void Close() {
    std::unique_lock<std::mutex> lock(mu_);
    closed_ = true;
    idle_.wait(lock, [this] { return active_ == 0; });
  }

 private:
  std::mutex mu_;
  std::condition_variable idle_;
  bool closed_ = false;  // guarded by mu_
  int active_ = 0;       // guarded by mu_
};

LoaderGate& Gate() {
  static LoaderGate* gate = new LoaderGate;  // never destroyed: load threads may outlive main
  return *gate;
}

// The Python callable behind an in-process group's getter: `loader(key: str)` returns bytes,
// str or a bytes-like object; None, a KeyError or packice.NotFound mean "no such key"
// (not_found); another packice.PackiceError keeps its code; any other exception is
// unavailable, with its type and message.
class PyLoader {
 public:
  PyLoader(py::object fn, std::string group) : fn_(std::move(fn)), group_(std::move(group)) {}
  // The last reference goes with the Group, or with the last load still running.
  ~PyLoader() {
    if (InterpreterFinalizing()) {
      fn_.release();  // the interpreter is going away: taking the GIL could hang
      return;
    }
    py::gil_scoped_acquire gil;
    fn_ = py::object();
  }
  PyLoader(const PyLoader&) = delete;
  PyLoader& operator=(const PyLoader&) = delete;

  // Runs on a load thread of the Group (or on any thread, with or without the GIL).
  packice::Result<std::string> Load(std::string_view key) const {
    if (!Gate().Enter()) return packice::Unavailable("the Python interpreter is shutting down");
    struct Leave {
      ~Leave() { Gate().Leave(); }
    } leave;  // after the GIL is given back
    py::gil_scoped_acquire gil;
    try {
      py::object value = fn_(py::str(key.data(), key.size()));
      if (value.is_none()) {
        return packice::NotFound("the loader of group '" + group_ + "' has no value for '" +
                                 Shown(key) + "' (it returned None)");
      }
      std::optional<std::string> bytes = ValueBytes(value);
      if (!bytes) {
        return packice::Internal("the loader of group '" + group_ + "' returned " +
                                 std::string(Py_TYPE(value.ptr())->tp_name) + " for '" +
                                 Shown(key) + "': expected bytes or str");
      }
      return *std::move(bytes);
    } catch (py::error_already_set& e) {
      return FromException(e, key);
    } catch (const std::exception& e) {
      return packice::Internal("the loader of group '" + group_ + "' failed for '" + Shown(key) +
                               "': " + e.what());
    }
  }

 private:
  // REQUIRES: the GIL is held.
  packice::Status FromException(py::error_already_set& e, std::string_view key) const {
    py::object error = e.value();
    std::string type = Py_TYPE(error.ptr())->tp_name;
    std::string text;
    try {
      py::module_ errors = py::module_::import("packice.errors");
      if (py::isinstance(error, errors.attr("PackiceError"))) {
        std::optional<packice::StatusCode> code =
            packice::StatusCodeFromInt(error.attr("code").cast<int>());
        std::string message = error.attr("message").cast<std::string>();
        if (code && *code != packice::StatusCode::kOk) return packice::Status(*code, message);
      }
      text = py::str(error).cast<std::string>();
    } catch (py::error_already_set&) {
      text = "(its message could not be read)";
    }
    const std::string message = "the loader of group '" + group_ + "' raised " + type + " for '" +
                                Shown(key) + "'" + (text.empty() ? "" : ": " + text);
    if (e.matches(PyExc_KeyError)) return packice::NotFound(message);
    return packice::Unavailable(message);
  }

  py::object fn_;
  std::string group_;
};

packice::CachePolicy PolicyFromName(const std::string& policy) {
  if (policy == "lru2") return packice::CachePolicy::kLru2;
  if (policy == "lru") return packice::CachePolicy::kLru;
  Raise(packice::InvalidArgument("policy must be \"lru2\" or \"lru\", not \"" + policy + "\""));
}

class Group {
 public:
  Group(const std::string& name, uint64_t capacity, py::object loader, const std::string& policy,
        int64_t ttl_ms, int64_t load_timeout_ms, uint64_t max_value) {
    Check(packice::ValidateGroupName(name));
    const std::string g = "group '" + name + "': ";
    if (capacity == 0) Raise(packice::InvalidArgument(g + "capacity must be more than 0"));
    if (max_value == 0) Raise(packice::InvalidArgument(g + "max_value must be more than 0"));
    if (!PyCallable_Check(loader.ptr())) {
      Raise(packice::InvalidArgument(g + "the loader must be callable: loader(key) -> bytes"));
    }
    packice::GroupOptions options;
    options.policy = PolicyFromName(policy);
    options.default_ttl = Duration(ttl_ms);
    options.load_timeout = Duration(load_timeout_ms);
    options.max_value_bytes = max_value;
    // As the node's groups: fewer lock shards for a small group, so that a value of max_value
    // bytes fits in one shard's share of the capacity.
    while (options.shards > 1 && capacity / options.shards < max_value + options.max_key_bytes) {
      options.shards /= 2;
    }
    auto fn = std::make_shared<PyLoader>(std::move(loader), name);
    packice::CacheGetter getter = [fn](std::string_view key) { return fn->Load(key); };
    group_ = std::make_unique<packice::Group>(name, capacity, std::move(getter), options);
  }

  // Waits for loads still running, with the GIL released: they need it to finish.
  ~Group() {
    if (InterpreterFinalizing()) {
      // Loads waiting for the GIL would never get it: leave the group (and its load threads)
      // to the end of the process.
      (void)group_.release();
      return;
    }
    WithoutGil([this] { group_.reset(); });
  }
  Group(const Group&) = delete;
  Group& operator=(const Group&) = delete;

  const std::string& name() const { return group_->name(); }

  py::bytes get(const std::string& key) {
    auto v = WithoutGil([&] { return group_->Get(key); });
    packice::CacheValue value = Take(std::move(v));
    return ToBytes(*value);
  }

  void set(const std::string& key, const py::handle& value, std::optional<int64_t> ttl_ms) {
    std::optional<std::string> bytes = ValueBytes(value);
    if (!bytes) Raise(packice::InvalidArgument("a group value is bytes, str or bytes-like"));
    std::optional<Duration> ttl;
    if (ttl_ms) ttl = Duration(*ttl_ms);
    Status s = WithoutGil([&] { return group_->Set(key, *std::move(bytes), ttl); });
    Check(s);
  }

  void remove(const std::string& key) {
    Status s = WithoutGil([&] { return group_->Delete(key); });
    Check(s);
  }

  py::dict stats() const {
    packice::GroupStats s = WithoutGil([&] { return group_->Stats(); });
    return GroupStatsDict(s);
  }

 private:
  std::unique_ptr<packice::Group> group_;
};

// A node's cache groups, over gRPC or HTTP. Safe for concurrent use: calls release the GIL.
class GroupClient {
 public:
  explicit GroupClient(std::unique_ptr<packice::GroupEndpoint> endpoint)
      : endpoint_(std::move(endpoint)) {}

  py::bytes get(const std::string& group, const std::string& key) {
    auto v = WithoutGil([&] { return endpoint_->Get(group, key); });
    return ToBytes(Take(std::move(v)));
  }

  void set(const std::string& group, const std::string& key, const py::handle& value,
           std::optional<int64_t> ttl_ms) {
    std::optional<std::string> bytes = ValueBytes(value);
    if (!bytes) Raise(packice::InvalidArgument("a group value is bytes, str or bytes-like"));
    std::optional<Duration> ttl;
    if (ttl_ms) ttl = Duration(*ttl_ms);
    Status s = WithoutGil([&] { return endpoint_->Set(group, key, *bytes, ttl); });
    Check(s);
  }

  void remove(const std::string& group, const std::string& key) {
    Status s = WithoutGil([&] { return endpoint_->Delete(group, key); });
    Check(s);
  }

  py::dict stats(const std::string& group) {
    auto s = WithoutGil([&] { return endpoint_->Stats(group); });
    return GroupStatsDict(Take(std::move(s)));
  }

  py::list list() {
    auto r = WithoutGil([&] { return endpoint_->List(); });
    py::list out;
    for (const packice::GroupListing& g : Take(std::move(r))) {
      py::dict d;
      d["name"] = g.name;
      d["capacity_bytes"] = g.capacity_bytes;
      d["policy"] = g.policy;
      d["ttl_ms"] = static_cast<int64_t>(g.ttl.count());
      d["origin"] = g.origin;
      d["load_timeout_ms"] = static_cast<int64_t>(g.load_timeout.count());
      d["max_value_bytes"] = g.max_value_bytes;
      out.append(d);
    }
    return out;
  }

 private:
  std::unique_ptr<packice::GroupEndpoint> endpoint_;
};

GroupClient OpenGroups(const std::string& url, const std::string& token,
                       const std::string& ca_file) {
  packice::ClientOptions options;
  options.http_token = token;
  options.http_ca_file = ca_file;
  auto endpoint = WithoutGil([&] { return packice::OpenGroupEndpoint(url, options); });
  return GroupClient(Take(std::move(endpoint)));
}

}  // namespace

PYBIND11_MODULE(_packice, m) {
  m.doc() = "The C++ half of the packice package; use `import packice`.";

  py::class_<Bytes>(m, "Bytes", py::buffer_protocol()).def_buffer([](Bytes& b) {
    return b.Info();
  });

  py::class_<Writer>(m, "Writer")
      .def_property_readonly("key", &Writer::key)
      .def_property_readonly("size", &Writer::size)
      .def_property_readonly("open", &Writer::open)
      .def("buffer", &Writer::buffer)
      .def("write", &Writer::write, py::arg("data"), py::arg("offset"))
      .def("seal", &Writer::seal, py::arg("size") = py::none())
      .def("abort", &Writer::abort);

  py::class_<Reader>(m, "Reader")
      .def_property_readonly("info", &Reader::info)
      .def_property_readonly("open", &Reader::open)
      .def("buffer", &Reader::buffer)
      .def("release", &Reader::release);

  py::class_<Client>(m, "Client")
      .def("create", &Client::create, py::arg("key"), py::arg("size"), py::arg("meta"),
           py::arg("ttl_ms"), py::arg("exclusive"))
      .def("get", &Client::get, py::arg("key"))
      .def("put", &Client::put, py::arg("key"), py::arg("data"), py::arg("meta"), py::arg("ttl_ms"),
           py::arg("exclusive"))
      .def("get_bytes", &Client::get_bytes, py::arg("key"))
      .def("stat", &Client::stat, py::arg("key"))
      .def("list", &Client::list, py::arg("prefix"), py::arg("start_after"), py::arg("limit"))
      .def("delete", &Client::remove, py::arg("key"))
      .def("cas", &Client::cas)
      .def("close", &Client::close)
      .def_property_readonly("closed", &Client::closed);

  py::class_<packice::Peer, std::shared_ptr<packice::Peer>>(m, "Peer");
  py::class_<packice::LocalPeer, packice::Peer, std::shared_ptr<packice::LocalPeer>>(m, "LocalPeer")
      .def("stats", [](packice::LocalPeer& p) { return StatsDict(p.GetStats()); })
      .def_property_readonly("tier",
                             [](packice::LocalPeer& p) { return std::string(p.tier_name()); });

  py::class_<packice::MemoryPeer, packice::LocalPeer, std::shared_ptr<packice::MemoryPeer>>(
      m, "MemoryPeer")
      .def(py::init([](uint64_t capacity, std::optional<uint64_t> pool,
                       std::optional<int64_t> default_ttl_ms, std::optional<int64_t> lease_ttl_ms,
                       std::optional<int64_t> max_lease_ttl_ms) {
             if (capacity == 0) Raise(packice::InvalidArgument("capacity must be above 0"));
             packice::MemoryPeerOptions o;
             o.capacity_bytes = capacity;
             o.pool_bytes = pool.value_or(std::min<uint64_t>(capacity, o.pool_bytes));
             o.default_object_ttl = Ms(default_ttl_ms, o.default_object_ttl);
             o.default_lease_ttl = Ms(lease_ttl_ms, o.default_lease_ttl);
             o.max_lease_ttl = Ms(max_lease_ttl_ms, o.max_lease_ttl);
             return packice::MemoryPeer::Create(o);
           }),
           py::arg("capacity"), py::arg("pool"), py::arg("default_ttl_ms"), py::arg("lease_ttl_ms"),
           py::arg("max_lease_ttl_ms"));

  py::class_<packice::SharedFSPeer, packice::LocalPeer, std::shared_ptr<packice::SharedFSPeer>>(
      m, "SharedFSPeer")
      .def(py::init([](const std::string& dir, bool sync, std::optional<int64_t> default_ttl_ms,
                       std::optional<int64_t> lease_ttl_ms,
                       std::optional<int64_t> abandoned_after_ms,
                       std::optional<int64_t> gc_interval_ms, const std::string& writer_id) {
             packice::SharedFSPeerOptions o;
             o.dir = dir;
             o.sync = sync;
             o.default_object_ttl = Ms(default_ttl_ms, o.default_object_ttl);
             o.default_lease_ttl = Ms(lease_ttl_ms, o.default_lease_ttl);
             o.abandoned_after = Ms(abandoned_after_ms, o.abandoned_after);
             o.gc_interval = Ms(gc_interval_ms, o.gc_interval);
             o.writer_id = writer_id;
             auto peer = WithoutGil([&] { return packice::SharedFSPeer::Open(o); });
             return Take(std::move(peer));
           }),
           py::arg("dir"), py::arg("sync"), py::arg("default_ttl_ms"), py::arg("lease_ttl_ms"),
           py::arg("abandoned_after_ms"), py::arg("gc_interval_ms"), py::arg("writer_id"))
      .def("collect_garbage", [](packice::SharedFSPeer& p) {
        auto r = WithoutGil([&] { return p.CollectGarbage(); });
        packice::SharedFSGcStats s = Take(std::move(r));
        py::dict d;
        d["objects"] = s.objects;
        d["object_bytes"] = s.object_bytes;
        d["creating"] = s.creating;
        d["expired"] = s.expired;
        d["abandoned"] = s.abandoned;
        d["unlinked"] = s.unlinked;
        d["in_use"] = s.in_use;
        d["corrupt"] = s.corrupt;
        return d;
      });

  py::class_<Group>(m, "Group")
      .def(py::init<const std::string&, uint64_t, py::object, const std::string&, int64_t, int64_t,
                    uint64_t>(),
           py::arg("name"), py::arg("capacity"), py::arg("loader"), py::arg("policy"),
           py::arg("ttl_ms"), py::arg("load_timeout_ms"), py::arg("max_value"))
      .def_property_readonly("name", &Group::name)
      .def("get", &Group::get, py::arg("key"))
      .def("set", &Group::set, py::arg("key"), py::arg("value"), py::arg("ttl_ms"))
      .def("delete", &Group::remove, py::arg("key"))
      .def("stats", &Group::stats);

  py::class_<CasClient>(m, "CasClient")
      .def("put_bytes", &CasClient::put_bytes, py::arg("data"), py::arg("algorithm"))
      .def("put_file", &CasClient::put_file, py::arg("path"), py::arg("algorithm"))
      .def("store", &CasClient::store, py::arg("digest"), py::arg("data"))
      .def("get", &CasClient::get, py::arg("digest"), py::arg("start"), py::arg("length"))
      .def("missing", &CasClient::missing, py::arg("digests"))
      .def("stat", &CasClient::stat, py::arg("digest"));

  py::class_<GroupClient>(m, "GroupClient")
      .def("get", &GroupClient::get, py::arg("group"), py::arg("key"))
      .def("set", &GroupClient::set, py::arg("group"), py::arg("key"), py::arg("value"),
           py::arg("ttl_ms"))
      .def("delete", &GroupClient::remove, py::arg("group"), py::arg("key"))
      .def("stats", &GroupClient::stats, py::arg("group"))
      .def("list", &GroupClient::list);

  // Before the interpreter finalizes: no loader call may be running, or start, after this.
  py::module_::import("atexit").attr("register")(py::cpp_function([] {
    py::gil_scoped_release release;
    Gate().Close();
  }));

  m.def("open_cas", &OpenCas, py::arg("url"), py::arg("token"), py::arg("ca_file"));
  m.def("open_groups", &OpenGroups, py::arg("url"), py::arg("token"), py::arg("ca_file"));
  packice_py::BindKv(m);
  packice_py::BindQueue(m);
  m.def("connect_url", &ConnectUrl, py::arg("url"), py::arg("token"), py::arg("ca_file"));
  m.def(
      "connect_peer",
      [](std::shared_ptr<packice::Peer> peer) { return Client(packice::Connect(std::move(peer))); },
      py::arg("peer"));
  m.def("default_url", &packice::DefaultUrl);
  m.def("default_socket_path", &packice::DefaultSocketPath);
  m.def("status_code_name", [](int code) {
    auto c = packice::StatusCodeFromInt(code);
    return c ? std::string(packice::StatusCodeName(*c)) : std::string();
  });
}
