// The public Client API, run over every transport by one typed suite: adding a transport is
// adding one line to Transports below.
#include "packice/client.h"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstring>
#include <optional>
#include <thread>
#include <vector>

#include "packice/file_peer.h"
#include "packice/memory_peer.h"
#include "testing.h"
#include "transport/grpc/grpc_server.h"
#include "transport/grpc/object_service.h"
#include "transport/http/http_server.h"
#include "transport/uds/uds_server.h"

namespace packice {
namespace {

using namespace std::chrono_literals;
using ::packice::testing::TempDir;

constexpr uint64_t kMiB = 1 << 20;
constexpr uint64_t kSmall = 1000;              // inline over sockets, heap in the peer
constexpr uint64_t kLarge = 3 * kMiB + 123;    // a shared-memory segment, not page aligned
constexpr uint64_t kOverFrame = 6 * kMiB + 1;  // larger than a socket frame may carry

std::vector<std::byte> Pattern(size_t n, uint8_t seed) {
  std::vector<std::byte> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<std::byte>((i * 131 + seed) & 0xff);
  return v;
}

bool Equal(std::span<const std::byte> a, std::span<const std::byte> b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size()) == 0);
}

// Polls `done` until it holds or `timeout` passes.
template <typename F>
bool Eventually(F done, std::chrono::milliseconds timeout = 5s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

MemoryPeerOptions TestOptions() {
  MemoryPeerOptions o;
  o.capacity_bytes = 256 * kMiB;
  o.pool_bytes = 64 * kMiB;
  return o;
}

// --- transports ------------------------------------------------------------------------------
//
// Traits of a transport:
//   kLeases: the node holds a lease for every live handle (a create is allocated on the node at
//     Create, a read pins the object). False over HTTP, where a create is a local buffer until
//     Seal uploads it, and a read is a private copy (lease 0).
//   kMetaInHeaders: metadata names must be HTTP header tokens.
//   kReadViewIsMapped: a reader's view is a read-only mapping of the node's memory.

// In-process: Connect(peer).
class DirectTransport {
 public:
  static constexpr bool kLeases = true;
  static constexpr bool kMetaInHeaders = false;
  static constexpr bool kReadViewIsMapped = false;
  static constexpr std::string_view kTier = "memory";
  void Start(MemoryPeerOptions options) { peer_ = MemoryPeer::Create(std::move(options)); }
  Result<Client> Connect() { return packice::Connect(std::shared_ptr<Peer>(peer_)); }
  LocalPeer& peer() { return *peer_; }

 private:
  std::shared_ptr<MemoryPeer> peer_;
};

// A UdsServer on an io_context running in a thread of this process, socket in a TempDir.
class UdsTransport {
 public:
  static constexpr bool kLeases = true;
  static constexpr bool kMetaInHeaders = false;
  static constexpr bool kReadViewIsMapped = true;
  static constexpr std::string_view kTier = "memory";
  virtual ~UdsTransport() { Stop(); }

  void Start(MemoryPeerOptions options) {
    peer_ = MakePeer(std::move(options));
    ASSERT_NE(peer_, nullptr);
    UdsServerOptions uds;
    uds.path = dir_.path() + "/packice.sock";
    server_ = std::make_unique<UdsServer>(io_, peer_, uds);
    Status s = server_->Start();
    ASSERT_TRUE(s.ok()) << s.ToString();
    thread_ = std::thread([this] { io_.run(); });
  }

  // Stops serving: clients see the connection close.
  void Stop() {
    if (!thread_.joinable()) return;
    work_.reset();
    io_.stop();
    thread_.join();
    server_.reset();  // closes the acceptor and removes the socket (io is no longer running)
    io_.restart();
    io_.poll();  // runs the connections' close handlers: sockets close, sessions end
  }

  Result<Client> Connect() { return packice::Connect("uds://" + dir_.path() + "/packice.sock"); }
  LocalPeer& peer() { return *peer_; }

 protected:
  virtual std::shared_ptr<LocalPeer> MakePeer(MemoryPeerOptions options) {
    return MemoryPeer::Create(std::move(options));
  }
  TempDir dir_;

 private:
  boost::asio::io_context io_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_{
      io_.get_executor()};
  std::shared_ptr<LocalPeer> peer_;
  std::unique_ptr<UdsServer> server_;
  std::thread thread_;
};

// The same server over a FilePeer in a TempDir: objects are files, and a mapped read lease maps
// one from the page-aligned offset where its content starts, past the header.
class UdsFileTransport final : public UdsTransport {
 public:
  static constexpr std::string_view kTier = "disk";

 protected:
  std::shared_ptr<LocalPeer> MakePeer(MemoryPeerOptions m) override {
    FilePeerOptions options;
    options.dir = dir_.path() + "/data";
    options.capacity_bytes = m.capacity_bytes;
    options.default_lease_ttl = m.default_lease_ttl;
    options.default_object_ttl = m.default_object_ttl;
    options.max_lease_ttl = m.max_lease_ttl;
    options.background_threads = m.background_threads;
    options.clock = m.clock;
    auto peer = FilePeer::Open(std::move(options));
    EXPECT_TRUE(peer.ok()) << peer.status().ToString();
    return peer.ok() ? *peer : nullptr;
  }
};

// An HttpServer (the REST API of docs/http.md) on an io_context running in a thread of this
// process, on a loopback port; clients connect with Connect("http://..."). Over HTTP the node
// holds no leases for a client: a create is a local buffer until Seal PUTs it, and a read is a
// whole-body GET into a private copy (lease 0).
class HttpTransport {
 public:
  static constexpr bool kLeases = false;
  // Metadata travels as X-Packice-Meta-{name} headers: names must be header tokens.
  static constexpr bool kMetaInHeaders = true;
  static constexpr bool kReadViewIsMapped = false;
  static constexpr std::string_view kTier = "memory";
  ~HttpTransport() { Stop(); }

  void Start(MemoryPeerOptions options) {
    peer_ = MemoryPeer::Create(std::move(options));
    server_ = std::make_unique<HttpServer>(io_, peer_, HttpServerOptions{.listen = "127.0.0.1:0"},
                                           nullptr);
    Status s = server_->Start();
    ASSERT_TRUE(s.ok()) << s.ToString();
    thread_ = std::thread([this] { io_.run(); });
  }

  // Stops serving: clients see connections refused.
  void Stop() {
    if (!thread_.joinable()) return;
    work_.reset();
    io_.stop();
    thread_.join();
    server_->Stop();  // closes the acceptor and every connection (io is no longer running)
    io_.restart();
    io_.poll();  // runs the connections' close handlers
  }

  Result<Client> Connect() {
    return packice::Connect("http://127.0.0.1:" + std::to_string(server_->port()));
  }
  LocalPeer& peer() { return *peer_; }

 private:
  boost::asio::io_context io_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_{
      io_.get_executor()};
  std::shared_ptr<LocalPeer> peer_;
  std::unique_ptr<HttpServer> server_;
  std::thread thread_;
};

// A GrpcServer (service packice.rpc.Objects) on a loopback port of this process; clients connect
// with Connect("grpc://..."). The node holds leases as over the Unix socket (a create at Create,
// a read of a large object at Get); the bytes are private copies streamed in chunks.
class GrpcTransport {
 public:
  static constexpr bool kLeases = true;
  static constexpr bool kMetaInHeaders = false;
  static constexpr bool kReadViewIsMapped = false;
  static constexpr std::string_view kTier = "memory";

  void Start(MemoryPeerOptions options) {
    peer_ = MemoryPeer::Create(std::move(options));
    server_ = std::make_unique<GrpcServer>(GrpcServerOptions{.listen = "127.0.0.1:0"});
    server_->AddService(std::make_shared<rpc::ObjectService>(peer_, rpc::ObjectServiceOptions{}));
    Status s = server_->Start();
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  // Stops serving: calls fail, streams (sessions) end.
  void Stop() {
    if (server_) server_->Stop();
  }
  Result<Client> Connect() {
    return packice::Connect("grpc://127.0.0.1:" + std::to_string(server_->port()));
  }
  LocalPeer& peer() { return *peer_; }

 private:
  std::shared_ptr<LocalPeer> peer_;
  std::unique_ptr<GrpcServer> server_;
};

template <typename T>
class ClientTest : public ::testing::Test {
 protected:
  void StartNode(MemoryPeerOptions options = TestOptions()) { transport_.Start(options); }
  LocalPeer& peer() { return transport_.peer(); }
  T transport_;
};

using Transports =
    ::testing::Types<DirectTransport, UdsTransport, UdsFileTransport, HttpTransport, GrpcTransport>;
class TransportNames {
 public:
  template <typename T>
  static std::string GetName(int) {
    if (std::is_same_v<T, DirectTransport>) return "direct";
    if (std::is_same_v<T, HttpTransport>) return "http";
    if (std::is_same_v<T, GrpcTransport>) return "grpc";
    return std::is_same_v<T, UdsTransport> ? "uds" : "uds_file";
  }
};
TYPED_TEST_SUITE(ClientTest, Transports, TransportNames);

// --- create / seal / get ---------------------------------------------------------------------

TYPED_TEST(ClientTest, CreateWriteSealGetSmallAndLarge) {
  this->StartNode();
  ASSERT_OK_AND_ASSIGN(Client client, this->transport_.Connect());
  for (uint64_t size :
       {uint64_t{0}, uint64_t{1}, kSmall, 64 * uint64_t{1024}, 64 * uint64_t{1024} + 1, kLarge}) {
    SCOPED_TRACE("size " + std::to_string(size));
    const std::string key = "obj/" + std::to_string(size);
    const std::vector<std::byte> bytes = Pattern(size, static_cast<uint8_t>(size));
    CreateOptions options;
    options.meta = {{"author", "client_test"}};
    ASSERT_OK_AND_ASSIGN(ObjectWriter w, client.Create(key, size, options));
    EXPECT_EQ(w.key(), key);
    EXPECT_EQ(w.info().state, ObjectState::kCreating);
    ASSERT_EQ(w.data().size(), size);
    EXPECT_TRUE(std::all_of(w.data().begin(), w.data().end(), [](std::byte b) {
      return b == std::byte{0};
    })) << "a fresh object is all zero";
    if (size > 0) std::memcpy(w.data().data(), bytes.data(), size);
    ASSERT_OK_AND_ASSIGN(ObjectInfo sealed, w.Seal());
    EXPECT_EQ(sealed.key, key);
    EXPECT_EQ(sealed.size, size);
    EXPECT_EQ(sealed.state, ObjectState::kSealed);
    EXPECT_EQ(sealed.meta, options.meta);
    EXPECT_TRUE(w.data().empty()) << "a sealed writer holds nothing";

    ASSERT_OK_AND_ASSIGN(ObjectReader r, client.Get(key));
    EXPECT_EQ(r.key(), key);
    EXPECT_EQ(r.info().version, sealed.version);
    EXPECT_EQ(r.info().meta, options.meta);
    EXPECT_TRUE(Equal(r.data(), bytes));
    ASSERT_OK(r.Release());
    EXPECT_TRUE(r.data().empty());
    ASSERT_OK(r.Release());  // idempotent
  }
}

TYPED_TEST(ClientTest, EmptyKeyGetsAGeneratedId) {
  this->StartNode();
  ASSERT_OK_AND_ASSIGN(Client client, this->transport_.Connect());
  ASSERT_OK_AND_ASSIGN(ObjectWriter a, client.Create("", 10));
  ASSERT_OK_AND_ASSIGN(ObjectWriter b, client.Create("", kLarge));
  EXPECT_EQ(a.key().size(), 32u);
  EXPECT_NE(a.key(), b.key());
  ASSERT_OK_AND_ASSIGN(ObjectInfo info, a.Seal());
  EXPECT_EQ(info.key, a.key());
  ASSERT_OK(client.Stat(info.key).status());
}

TYPED_TEST(ClientTest, SealWithSmallerSizeTruncates) {
  this->StartNode();
  ASSERT_OK_AND_ASSIGN(Client client, this->transport_.Connect());
  for (uint64_t allocated : {kSmall, kLarge}) {
    SCOPED_TRACE("allocated " + std::to_string(allocated));
    const std::string key = "trunc/" + std::to_string(allocated);
    const std::vector<std::byte> bytes = Pattern(allocated, 3);
    ASSERT_OK_AND_ASSIGN(ObjectWriter w, client.Create(key, allocated));
    std::memcpy(w.data().data(), bytes.data(), allocated);
    const uint64_t size = allocated / 2 + 1;
    ASSERT_OK_AND_ASSIGN(ObjectInfo info, w.Seal(size));
    EXPECT_EQ(info.size, size);
    ASSERT_OK_AND_ASSIGN(ObjectReader r, client.Get(key));
    EXPECT_EQ(r.info().size, size);
    EXPECT_TRUE(Equal(r.data(), std::span(bytes).first(size)))
        << "read " << r.data().size() << " bytes, want " << size;
    ASSERT_OK_AND_ASSIGN(ObjectInfo stat, client.Stat(key));
    EXPECT_EQ(stat.size, size);
  }
}

TYPED_TEST(ClientTest, SealLargerThanAllocatedIsInvalidAndTheWriterStaysUsable) {
  this->StartNode();
  ASSERT_OK_AND_ASSIGN(Client client, this->transport_.Connect());
  for (uint64_t allocated : {kSmall, kLarge}) {
    ASSERT_OK_AND_ASSIGN(ObjectWriter w, client.Create("big", allocated));
    EXPECT_CODE(w.Seal(allocated + 1), kInvalidArgument);
    ASSERT_OK(w.Seal().status());
  }
}

TYPED_TEST(ClientTest, WriterDroppedWithoutSealAborts) {
  MemoryPeerOptions options = TestOptions();
  options.capacity_bytes = 8 * kMiB;
  this->StartNode(options);
  ASSERT_OK_AND_ASSIGN(Client client, this->transport_.Connect());
  const uint64_t used_before = this->peer().GetStats().used_bytes;
  for (uint64_t size : {kSmall, 6 * kMiB}) {
    SCOPED_TRACE("size " + std::to_string(size));
    {
      ASSERT_OK_AND_ASSIGN(ObjectWriter w, client.Create("abandoned", size));
      std::memset(w.data().data(), 0x5a, size);
      EXPECT_EQ(this->peer().GetStats().creating, TypeParam::kLeases ? 1u : 0u)
          << (TypeParam::kLeases ? "" : "over HTTP the create is local until Seal's PUT");
    }  // dropped: aborted
    EXPECT_CODE(client.Stat("abandoned"), kNotFound);
    EXPECT_CODE(client.Get("abandoned"), kNotFound);
    EXPECT_TRUE(Eventually([&] { return this->peer().GetStats().used_bytes == used_before; }))
        << "used " << this->peer().GetStats().used_bytes << ", want " << used_before;
    EXPECT_EQ(this->peer().GetStats().creating, 0u);
    EXPECT_EQ(this->peer().GetStats().leases, 0u);
    // The capacity came back, and the key is no longer pending.
    CreateOptions exclusive;
    exclusive.exclusive = true;
    ASSERT_OK_AND_ASSIGN(ObjectWriter again, client.Create("abandoned", size, exclusive));
    ASSERT_OK(again.Abort());
  }
}

TYPED_TEST(ClientTest, AbortIsIdempotentAndEndsTheWriter) {
  this->StartNode();
  ASSERT_OK_AND_ASSIGN(Client client, this->transport_.Connect());
  for (uint64_t size : {kSmall, kLarge}) {
    ASSERT_OK_AND_ASSIGN(ObjectWriter w, client.Create("aborted", size));
    ASSERT_OK(w.Abort());
    ASSERT_OK(w.Abort());
    EXPECT_TRUE(w.data().empty());
    EXPECT_CODE(w.Seal(), kWrongState);
    EXPECT_CODE(client.Get("aborted"), kNotFound);
  }
}

TYPED_TEST(ClientTest, MoveAssignmentEndsTheOverwrittenHandle) {
  this->StartNode();
  ASSERT_OK_AND_ASSIGN(Client client, this->transport_.Connect());
  ASSERT_OK(client.Put("m", Pattern(kLarge, 1)).status());
  ASSERT_OK_AND_ASSIGN(ObjectWriter w1, client.Create("w1", kLarge));
  ASSERT_OK_AND_ASSIGN(ObjectWriter w2, client.Create("w2", kLarge));
  w1 = std::move(w2);  // w1's object is aborted
  EXPECT_EQ(w1.key(), "w2");
  ASSERT_OK(w1.Seal().status());
  EXPECT_CODE(client.Stat("w1"), kNotFound);
  ASSERT_OK(client.Stat("w2").status());

  ASSERT_OK_AND_ASSIGN(ObjectReader r1, client.Get("m"));
  ASSERT_OK_AND_ASSIGN(ObjectReader r2, client.Get("w2"));
  // Over HTTP a reader is a private copy: the node holds no lease for it.
  const uint64_t held = TypeParam::kLeases ? 2 : 0;
  EXPECT_EQ(this->peer().GetStats().leases, held);
  r1 = std::move(r2);  // r1's lease is released
  EXPECT_TRUE(Eventually([&] { return this->peer().GetStats().leases == held / 2; }));
  EXPECT_EQ(r1.key(), "w2");
  EXPECT_EQ(r1.data().size(), kLarge);
}

TYPED_TEST(ClientTest, ReaderKeepsOldVersionAfterRebindAndDelete) {
  this->StartNode();
  ASSERT_OK_AND_ASSIGN(Client client, this->transport_.Connect());
  for (uint64_t size : {kSmall, kLarge}) {
    SCOPED_TRACE("size " + std::to_string(size));
    const std::vector<std::byte> v1 = Pattern(size, 1), v2 = Pattern(size + 7, 2);
    ASSERT_OK_AND_ASSIGN(ObjectInfo i1, client.Put("k", v1));
    ASSERT_OK_AND_ASSIGN(ObjectReader r1, client.Get("k"));
    ASSERT_OK_AND_ASSIGN(ObjectInfo i2, client.Put("k", v2));  // rebind
    EXPECT_NE(i1.version, i2.version);
    ASSERT_OK_AND_ASSIGN(ObjectReader r2, client.Get("k"));
    EXPECT_EQ(r2.info().version, i2.version);
    EXPECT_TRUE(Equal(r2.data(), v2));
    EXPECT_EQ(r1.info().version, i1.version);
    EXPECT_TRUE(Equal(r1.data(), v1)) << "the old version stays readable";
    ASSERT_OK(client.Delete("k"));
    EXPECT_CODE(client.Get("k"), kNotFound);
    EXPECT_TRUE(Equal(r1.data(), v1));
    EXPECT_TRUE(Equal(r2.data(), v2));
    ASSERT_OK(r1.Release());
    ASSERT_OK(r2.Release());
  }
  EXPECT_TRUE(Eventually([&] { return this->peer().GetStats().used_bytes == 0; }));
}

// --- one-shot calls --------------------------------------------------------------------------

TYPED_TEST(ClientTest, PutGetOneShot) {
  this->StartNode();
  ASSERT_OK_AND_ASSIGN(Client client, this->transport_.Connect());
  for (uint64_t size : {uint64_t{0}, kSmall, kLarge, kOverFrame}) {
    SCOPED_TRACE("size " + std::to_string(size));
    const std::string key = "put/" + std::to_string(size);
    const std::vector<std::byte> bytes = Pattern(size, 9);
    CreateOptions options;
    options.meta = {{"a", "1"}, {"b", "2"}};
    options.ttl = 1h;
    ASSERT_OK_AND_ASSIGN(ObjectInfo info, client.Put(key, bytes, options));
    EXPECT_EQ(info.key, key);
    EXPECT_EQ(info.size, size);
    EXPECT_EQ(info.state, ObjectState::kSealed);
    EXPECT_EQ(info.meta, options.meta);
    EXPECT_EQ(info.ttl, Duration(1h));
    EXPECT_GT(info.expires_unix_ms, info.created_unix_ms);
    ASSERT_OK_AND_ASSIGN(ObjectReader r, client.Get(key));
    EXPECT_TRUE(Equal(r.data(), bytes));
    EXPECT_EQ(r.info().meta, options.meta);
  }
  ASSERT_OK(client.Put("text", std::string_view("hello")).status());
  ASSERT_OK_AND_ASSIGN(ObjectReader r, client.Get("text"));
  EXPECT_EQ(std::string_view(reinterpret_cast<const char*>(r.data().data()), r.data().size()),
            "hello");
}

TYPED_TEST(ClientTest, StatListDelete) {
  this->StartNode();
  ASSERT_OK_AND_ASSIGN(Client client, this->transport_.Connect());
  for (const char* key : {"a/3", "a/1", "b/1", "a/2", "ab"}) {
    ASSERT_OK(client.Put(key, std::string_view(key)).status());
  }
  ASSERT_OK(client.Put("a/big", Pattern(kLarge, 0)).status());
  ASSERT_OK_AND_ASSIGN(ObjectWriter pending, client.Create("a/pending", 10));

  ASSERT_OK_AND_ASSIGN(ObjectInfo stat, client.Stat("a/big"));
  EXPECT_EQ(stat.size, kLarge);
  EXPECT_EQ(stat.state, ObjectState::kSealed);
  EXPECT_EQ(stat.tier, TypeParam::kTier);
  EXPECT_CODE(client.Stat("a/pending"), kNotFound) << "an unsealed object is not visible";

  auto keys = [](const ListPage& page) {
    std::vector<std::string> out;
    for (const auto& o : page.objects) out.push_back(o.key);
    return out;
  };
  ListOptions prefix_a;
  prefix_a.prefix = "a/";
  ASSERT_OK_AND_ASSIGN(ListPage all, client.List(prefix_a));
  EXPECT_EQ(keys(all), (std::vector<std::string>{"a/1", "a/2", "a/3", "a/big"}));
  EXPECT_FALSE(all.truncated);

  ListOptions paged = prefix_a;
  paged.limit = 2;
  ASSERT_OK_AND_ASSIGN(ListPage p1, client.List(paged));
  EXPECT_EQ(keys(p1), (std::vector<std::string>{"a/1", "a/2"}));
  EXPECT_TRUE(p1.truncated);
  paged.start_after = p1.objects.back().key;
  ASSERT_OK_AND_ASSIGN(ListPage p2, client.List(paged));
  EXPECT_EQ(keys(p2), (std::vector<std::string>{"a/3", "a/big"}));
  EXPECT_FALSE(p2.truncated);

  ASSERT_OK_AND_ASSIGN(ListPage everything, client.List());
  EXPECT_EQ(everything.objects.size(), 6u);

  ASSERT_OK(client.Delete("a/2"));
  EXPECT_CODE(client.Stat("a/2"), kNotFound);
  EXPECT_CODE(client.Delete("a/2"), kNotFound);
  ASSERT_OK_AND_ASSIGN(ListPage after, client.List(prefix_a));
  EXPECT_EQ(keys(after), (std::vector<std::string>{"a/1", "a/3", "a/big"}));
}

// --- errors ----------------------------------------------------------------------------------

// Create(key, size, options) fails with `code`: at once where the node allocates at Create
// (kLeases), else (HTTP: the create is a local buffer) at Seal's upload, with the same code.
template <typename T>
void ExpectCreateFails(Client& client, const std::string& key, uint64_t size,
                       const CreateOptions& options, StatusCode code) {
  SCOPED_TRACE("create of '" + key + "'");
  if constexpr (T::kLeases) {
    auto w = client.Create(key, size, options);
    EXPECT_EQ(w.status().code(), code) << w.status().ToString();
  } else {
    ASSERT_OK_AND_ASSIGN(ObjectWriter w, client.Create(key, size, options));
    auto sealed = w.Seal();
    EXPECT_EQ(sealed.status().code(), code) << sealed.status().ToString();
    EXPECT_TRUE(w.data().empty()) << "a failed upload ends the writer";
    EXPECT_CODE(w.Seal(), kWrongState);
  }
}

TYPED_TEST(ClientTest, ErrorsMapToCodes) {
  MemoryPeerOptions options = TestOptions();
  options.capacity_bytes = 16 * kMiB;
  this->StartNode(options);
  ASSERT_OK_AND_ASSIGN(Client client, this->transport_.Connect());
  EXPECT_CODE(client.Get("missing"), kNotFound);
  EXPECT_CODE(client.Stat("missing"), kNotFound);
  EXPECT_CODE(client.Delete("missing"), kNotFound);

  CreateOptions exclusive;
  exclusive.exclusive = true;
  ASSERT_OK(client.Put("taken", std::string_view("x")).status());
  ExpectCreateFails<TypeParam>(client, "taken", 10, exclusive, StatusCode::kAlreadyExists);
  ExpectCreateFails<TypeParam>(client, "taken", kLarge, exclusive, StatusCode::kAlreadyExists);
  EXPECT_CODE(client.Put("taken", std::string_view("y"), exclusive), kAlreadyExists);
  EXPECT_CODE(client.Put("taken", Pattern(kLarge, 0), exclusive), kAlreadyExists);
  ASSERT_OK_AND_ASSIGN(ObjectReader still, client.Get("taken"));
  EXPECT_EQ(still.data().size(), 1u) << "the losing creates left the object alone";
  {
    ASSERT_OK_AND_ASSIGN(ObjectWriter w, client.Create("pending", kLarge, exclusive));
    if constexpr (TypeParam::kLeases) {
      EXPECT_CODE(client.Create("pending", kLarge, exclusive), kAlreadyExists);
      EXPECT_CODE(client.Get("pending"), kNotFound) << "not sealed yet";
    } else {  // both creates are local; the first upload wins
      ASSERT_OK_AND_ASSIGN(ObjectWriter rival, client.Create("pending", kLarge, exclusive));
      EXPECT_CODE(client.Get("pending"), kNotFound) << "not sealed yet";
      ASSERT_OK(w.Seal().status());
      EXPECT_CODE(rival.Seal(), kAlreadyExists);
    }
  }

  ASSERT_OK_AND_ASSIGN(ObjectWriter w, client.Create("twice", kSmall));
  ASSERT_OK(w.Seal().status());
  EXPECT_CODE(w.Seal(), kWrongState);
  ASSERT_OK_AND_ASSIGN(ObjectWriter wl, client.Create("twice-large", kLarge));
  ASSERT_OK(wl.Seal().status());
  EXPECT_CODE(wl.Seal(), kWrongState);

  EXPECT_CODE(client.Get(""), kInvalidArgument);
  EXPECT_CODE(client.Put("bad\nkey", std::string_view("x")), kInvalidArgument);
  EXPECT_CODE(client.Create(std::string(kMaxKeyBytes + 1, 'k'), 1), kInvalidArgument);
  CreateOptions negative;
  negative.ttl = Duration(-5);
  EXPECT_CODE(client.Create("neg", 1, negative), kInvalidArgument);
  ExpectCreateFails<TypeParam>(client, "huge", 17 * kMiB, {}, StatusCode::kOutOfCapacity);
  EXPECT_CODE(client.Put("huge", Pattern(17 * kMiB, 0)), kOutOfCapacity);

  // The client is still fine after all of that.
  ASSERT_OK(client.Put("after", std::string_view("ok")).status());
  ASSERT_OK(client.Get("after").status());
}

TYPED_TEST(ClientTest, KeysAndMetadataNeedNotBeUtf8) {
  this->StartNode();
  ASSERT_OK_AND_ASSIGN(Client client, this->transport_.Connect());
  const std::string key = "bin/\xff\xfe\x80";
  CreateOptions options;
  options.meta = {{"\xc3(", "\xff"}};
  EXPECT_CODE(client.Get(key), kNotFound);
  if constexpr (TypeParam::kMetaInHeaders) {
    // A metadata name is a header name, which must be a token; a value may hold any byte but
    // control characters.
    EXPECT_CODE(client.Put(key, std::string_view("v"), options), kInvalidArgument);
    EXPECT_CODE(client.Create(key, 1, options), kInvalidArgument);
    options.meta = {{"name", "\xff\xc3("}};
  }
  ASSERT_OK(client.Put(key, std::string_view("v"), options).status());
  ASSERT_OK_AND_ASSIGN(ObjectReader r, client.Get(key));
  EXPECT_EQ(r.key(), key);
  EXPECT_EQ(r.info().meta, options.meta);
  ASSERT_OK_AND_ASSIGN(ListPage page, client.List({"bin/"}));
  ASSERT_EQ(page.objects.size(), 1u);
  EXPECT_EQ(page.objects[0].key, key);
  ASSERT_OK(client.Delete(key));
  ASSERT_OK(client.Put("plain", std::string_view("still connected")).status());
}

// --- leases ----------------------------------------------------------------------------------

TYPED_TEST(ClientTest, LiveHandlesRenewTheirLeases) {
  MemoryPeerOptions options = TestOptions();
  options.default_lease_ttl = 300ms;
  this->StartNode(options);
  ASSERT_OK_AND_ASSIGN(Client client, this->transport_.Connect());
  const std::vector<std::byte> bytes = Pattern(kLarge, 4);
  ASSERT_OK(client.Put("held", bytes).status());
  ASSERT_OK_AND_ASSIGN(ObjectReader r, client.Get("held"));
  ASSERT_OK(client.Delete("held"));  // only the lease keeps it now
  ASSERT_OK_AND_ASSIGN(ObjectWriter w, client.Create("slow", kLarge));

  // Without renewal, a lease of this peer is gone well within a second.
  auto& peer = this->peer();
  AcquireRequest probe{"slow-probe", LeaseMode::kCreate, 10};
  ASSERT_OK_AND_ASSIGN(Grant unrenewed, peer.Acquire(probe));

  std::this_thread::sleep_for(1100ms);
  EXPECT_CODE(peer.Renew(unrenewed.lease), kLeaseExpired);
  if constexpr (TypeParam::kLeases) {
    EXPECT_EQ(peer.GetStats().leases, 2u) << "the handles' leases are still live";
  } else {  // the handles hold nothing on the node, and work past any lease TTL
    EXPECT_EQ(peer.GetStats().leases, 0u);
  }
  EXPECT_TRUE(Equal(r.data(), bytes));
  std::memcpy(w.data().data(), bytes.data(), bytes.size());
  ASSERT_OK_AND_ASSIGN(ObjectInfo info, w.Seal());
  EXPECT_EQ(info.size, kLarge);
  ASSERT_OK_AND_ASSIGN(ObjectReader slow, client.Get("slow"));
  EXPECT_TRUE(Equal(slow.data(), bytes));
  ASSERT_OK(slow.Release());
  ASSERT_OK(r.Release());
  EXPECT_TRUE(Eventually([&] { return peer.GetStats().leases == 0; }));
}

TYPED_TEST(ClientTest, HandlesOutliveTheirClient) {
  this->StartNode();
  std::optional<ObjectReader> reader;
  std::optional<ObjectWriter> writer;
  const std::vector<std::byte> bytes = Pattern(kLarge, 5);
  {
    ASSERT_OK_AND_ASSIGN(Client client, this->transport_.Connect());
    ASSERT_OK(client.Put("k", bytes).status());
    ASSERT_OK_AND_ASSIGN(ObjectReader r, client.Get("k"));
    ASSERT_OK_AND_ASSIGN(ObjectWriter w, client.Create("w", kLarge));
    reader.emplace(std::move(r));
    writer.emplace(std::move(w));
  }
  EXPECT_TRUE(Equal(reader->data(), bytes));
  std::memcpy(writer->data().data(), bytes.data(), bytes.size());
  ASSERT_OK(writer->Seal().status());
  ASSERT_OK(reader->Release());
  EXPECT_TRUE(Eventually([&] { return this->peer().GetStats().leases == 0; }));
}

TYPED_TEST(ClientTest, ConcurrentCallsOnOneClient) {
  this->StartNode();
  ASSERT_OK_AND_ASSIGN(Client client, this->transport_.Connect());
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 40; ++i) {
        const std::string key = "t" + std::to_string(t) + "/" + std::to_string(i);
        const uint64_t size = i % 5 == 0 ? 200 * 1024 : 100 + i;
        const std::vector<std::byte> bytes = Pattern(size, static_cast<uint8_t>(t * 40 + i));
        if (!client.Put(key, bytes).ok()) ++failures;
        auto r = client.Get(key);
        if (!r.ok() || !Equal(r->data(), bytes)) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  ASSERT_OK_AND_ASSIGN(ListPage page, client.List());
  EXPECT_EQ(page.objects.size(), 160u);
}

// --- what only a mapped view shows -----------------------------------------------------------

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define PACKICE_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define PACKICE_SANITIZED 1
#endif
#endif

// A write fault: SIGSEGV, or under a sanitizer its report of one and a failing exit.
bool DiedOfSegv(int status) {
#ifdef PACKICE_SANITIZED
  return WIFEXITED(status) && WEXITSTATUS(status) != 0;
#else
  return WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV;
#endif
}
#ifdef PACKICE_SANITIZED
constexpr const char* kSegvMessage = "SEGV";
#else
constexpr const char* kSegvMessage = "";
#endif

TYPED_TEST(ClientTest, ReadViewIsReadOnly) {
  if (!TypeParam::kReadViewIsMapped) {
    GTEST_SKIP() << "no mapping to protect: in-process views point at the peer's own memory, "
                    "and an HTTP or gRPC read is a private copy";
  }
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  this->StartNode();
  ASSERT_OK_AND_ASSIGN(Client client, this->transport_.Connect());
  const std::vector<std::byte> bytes = Pattern(kLarge, 6);
  ASSERT_OK(client.Put("ro", bytes).status());
  ASSERT_OK_AND_ASSIGN(ObjectReader r, client.Get("ro"));
  ASSERT_EQ(r.data().size(), kLarge);
  EXPECT_EXIT(
      {
        auto* p = const_cast<std::byte*>(r.data().data());
        p[kLarge / 2] = std::byte{0xee};
        std::_Exit(0);  // reached only if the write went through
      },
      DiedOfSegv, kSegvMessage);
  // And the object is unchanged.
  ASSERT_OK_AND_ASSIGN(ObjectReader again, client.Get("ro"));
  EXPECT_TRUE(Equal(again.data(), bytes));
}

// --- connecting ------------------------------------------------------------------------------

TEST(ConnectTest, NoNodeAtThatSocketIsUnavailable) {
  TempDir dir;
  EXPECT_CODE(Connect("uds://" + dir.path() + "/nobody.sock"), kUnavailable);
  EXPECT_CODE(Connect(dir.path() + "/nobody.sock"), kUnavailable);
}

TEST(ConnectTest, UnknownSchemeOrRelativePathIsInvalid) {
  EXPECT_CODE(Connect("ftp://x"), kInvalidArgument);
  EXPECT_CODE(Connect("http://"), kInvalidArgument);
  EXPECT_CODE(Connect("uds://relative.sock"), kInvalidArgument);
  EXPECT_CODE(Connect(""), kInvalidArgument);
  EXPECT_CODE(Connect("uds:///" + std::string(200, 'p')), kInvalidArgument);
}

TEST(ConnectTest, NodeGoingAwayGivesUnavailable) {
  UdsTransport transport;
  transport.Start(TestOptions());
  auto client = transport.Connect();
  ASSERT_OK(client.status());
  ASSERT_OK(client->Put("k", Pattern(kLarge, 7)).status());
  ASSERT_OK_AND_ASSIGN(ObjectReader r, client->Get("k"));
  transport.Stop();
  EXPECT_CODE(client->Get("k"), kUnavailable);
  EXPECT_CODE(client->Stat("k"), kUnavailable);
  EXPECT_EQ(r.data().size(), kLarge) << "a mapping stays readable";
  EXPECT_CODE(r.Release(), kUnavailable);
}

TEST(ConnectTest, HttpNodeGoingAwayGivesUnavailable) {
  HttpTransport transport;
  transport.Start(TestOptions());
  ASSERT_OK_AND_ASSIGN(Client client, transport.Connect());
  const std::vector<std::byte> bytes = Pattern(kLarge, 7);
  ASSERT_OK(client.Put("k", bytes).status());
  ASSERT_OK_AND_ASSIGN(ObjectReader r, client.Get("k"));
  ASSERT_OK_AND_ASSIGN(ObjectWriter w, client.Create("w", kSmall));
  transport.Stop();
  EXPECT_CODE(client.Get("k"), kUnavailable);
  EXPECT_CODE(client.Stat("k"), kUnavailable);
  EXPECT_CODE(client.List(), kUnavailable);
  EXPECT_CODE(client.Put("p", std::string_view("x")), kUnavailable);
  EXPECT_CODE(w.Seal(), kUnavailable);
  EXPECT_TRUE(Equal(r.data(), bytes)) << "a read over HTTP is a private copy";
  ASSERT_OK(r.Release());  // nothing is held on the node
}

}  // namespace
}  // namespace packice
