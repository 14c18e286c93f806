// The gRPC transport beyond the client suite (src/client/client_test.cc runs that over grpc://
// too): sessions and lease ownership at the wire, malformed streams, bearer tokens, TLS, garbage
// on the port, and a real packiced with --grpc.
#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "packice/client.h"
#include "packice/memory_peer.h"
#include "testing.h"
#include "transport/grpc/grpc_channel.h"
#include "transport/grpc/grpc_common.h"
#include "transport/grpc/grpc_server.h"
#include "transport/grpc/object_service.h"
#include "transport/grpc/objects.grpc.pb.h"

namespace packice {
namespace {

using namespace std::chrono_literals;
using ::packice::testing::Daemon;
using ::packice::testing::MakeSelfSignedCert;
using ::packice::testing::RunProgram;
using ::packice::testing::TempDir;

constexpr uint64_t kMiB = 1 << 20;

template <typename F>
bool Eventually(F done, std::chrono::milliseconds timeout = 5s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

// A node serving the object service on a loopback port of this process.
class Node {
 public:
  explicit Node(rpc::ObjectServiceOptions options = {}, GrpcServerOptions server = {}) {
    MemoryPeerOptions m;
    m.capacity_bytes = 64 * kMiB;
    peer_ = MemoryPeer::Create(m);
    service_ = std::make_shared<rpc::ObjectService>(peer_, options);
    if (server.listen.empty()) server.listen = "127.0.0.1:0";
    server_ = std::make_unique<GrpcServer>(server);
    server_->AddService(service_);
  }
  Status Start() { return server_->Start(); }
  std::string target() const { return "127.0.0.1:" + std::to_string(server_->port()); }
  uint16_t port() const { return server_->port(); }
  MemoryPeer& peer() { return *peer_; }
  rpc::ObjectService& service() { return *service_; }
  void Stop() { server_->Stop(); }

 private:
  std::shared_ptr<MemoryPeer> peer_;
  std::shared_ptr<rpc::ObjectService> service_;
  std::unique_ptr<GrpcServer> server_;
};

// The raw stub, for what the Client never sends.
struct Wire {
  explicit Wire(const std::string& target)
      : stub(rpc::Objects::NewStub(
            ::grpc::CreateChannel(target, ::grpc::InsecureChannelCredentials()))) {}

  // Opens a Session stream; returns its id (0 on failure).
  uint64_t OpenSession(
      ::grpc::ClientContext* ctx,
      std::unique_ptr<::grpc::ClientReaderWriter<rpc::SessionRequest, rpc::SessionInfo>>* stream) {
    *stream = stub->Session(ctx);
    rpc::SessionInfo info;
    if (!(*stream)->Read(&info)) return 0;
    return info.session();
  }

  static void Join(::grpc::ClientContext* ctx, uint64_t session) {
    ctx->AddMetadata(rpc::kSessionKey, std::to_string(session));
  }

  Result<rpc::LeaseReply> Create(uint64_t session, const std::string& key, uint64_t size) {
    ::grpc::ClientContext ctx;
    if (session != 0) Join(&ctx, session);
    wire::CreateRequest req;
    req.set_key(key);
    req.set_size(size);
    rpc::LeaseReply reply;
    PACKICE_RETURN_IF_ERROR(rpc::FromGrpc(stub->Create(&ctx, req, &reply), ctx));
    return reply;
  }

  Status Release(uint64_t session, uint64_t lease) {
    ::grpc::ClientContext ctx;
    if (session != 0) Join(&ctx, session);
    wire::LeaseIdRequest req;
    req.set_lease(lease);
    rpc::Empty reply;
    return rpc::FromGrpc(stub->Release(&ctx, req, &reply), ctx);
  }

  // A Put stream announcing `size` and sending `data`.
  Result<wire::ObjectInfo> Put(const std::string& key, uint64_t size, const std::string& data,
                               bool cancel = false) {
    ::grpc::ClientContext ctx;
    wire::ObjectInfo reply;
    auto writer = stub->Put(&ctx, &reply);
    rpc::PutChunk chunk;
    chunk.set_key(key);
    chunk.set_size(size);
    chunk.set_data(data);
    writer->Write(chunk);
    if (cancel) {
      ctx.TryCancel();
    } else {
      writer->WritesDone();
    }
    PACKICE_RETURN_IF_ERROR(rpc::FromGrpc(writer->Finish(), ctx));
    return reply;
  }

  std::unique_ptr<rpc::Objects::Stub> stub;
};

TEST(GrpcSessionTest, LeasesEndWithTheirSessionStream) {
  Node node;
  ASSERT_OK(node.Start());
  Wire wire(node.target());
  auto ctx = std::make_unique<::grpc::ClientContext>();
  std::unique_ptr<::grpc::ClientReaderWriter<rpc::SessionRequest, rpc::SessionInfo>> stream;
  const uint64_t session = wire.OpenSession(ctx.get(), &stream);
  ASSERT_NE(session, 0u);
  EXPECT_EQ(node.service().session_count(), 1u);
  ASSERT_OK_AND_ASSIGN(rpc::LeaseReply created, wire.Create(session, "pending", 3 * kMiB));
  EXPECT_EQ(node.peer().GetStats().creating, 1u);

  ctx->TryCancel();  // the client goes away
  stream->Finish().IgnoreError();
  EXPECT_TRUE(Eventually([&] { return node.service().session_count() == 0; }));
  EXPECT_TRUE(Eventually([&] { return node.peer().GetStats().creating == 0; }))
      << "the unsealed object of a closed session is discarded";
  EXPECT_EQ(node.peer().GetStats().leases, 0u);
  EXPECT_CODE(wire.Release(session, created.lease()), kLeaseExpired);
  EXPECT_CODE(wire.Create(session, "after", 10), kLeaseExpired) << "the session is closed";
}

TEST(GrpcSessionTest, OnlyTheHoldingSessionMayUseALease) {
  Node node;
  ASSERT_OK(node.Start());
  Wire wire(node.target());
  ::grpc::ClientContext a_ctx, b_ctx;
  std::unique_ptr<::grpc::ClientReaderWriter<rpc::SessionRequest, rpc::SessionInfo>> a, b;
  const uint64_t sa = wire.OpenSession(&a_ctx, &a), sb = wire.OpenSession(&b_ctx, &b);
  ASSERT_NE(sa, 0u);
  ASSERT_NE(sb, 0u);
  ASSERT_NE(sa, sb);
  ASSERT_OK_AND_ASSIGN(rpc::LeaseReply created, wire.Create(sa, "k", 10));
  EXPECT_CODE(wire.Release(sb, created.lease()), kLeaseExpired);
  EXPECT_CODE(wire.Release(0, created.lease()), kInvalidArgument) << "no session named";
  EXPECT_CODE(wire.Create(0, "k2", 10), kInvalidArgument);
  EXPECT_EQ(node.peer().GetStats().creating, 1u) << "the other session's calls changed nothing";
  ASSERT_OK(wire.Release(sa, created.lease()));
  EXPECT_EQ(node.peer().GetStats().creating, 0u);
  a_ctx.TryCancel();
  b_ctx.TryCancel();
}

TEST(GrpcStreamTest, PutSendingMoreOrFewerBytesThanAnnouncedStoresNothing) {
  Node node;
  ASSERT_OK(node.Start());
  Wire wire(node.target());
  EXPECT_CODE(wire.Put("short", 100, std::string(40, 'x')), kInvalidArgument);
  EXPECT_CODE(wire.Put("long", 10, std::string(40, 'x')), kInvalidArgument);
  EXPECT_CODE(wire.Put("cancelled", 100, std::string(40, 'x'), /*cancel=*/true), kAborted);
  for (const char* key : {"short", "long", "cancelled"}) {
    EXPECT_CODE(node.peer().Stat(key), kNotFound) << key;
  }
  EXPECT_TRUE(Eventually([&] { return node.peer().GetStats().creating == 0; }));
  EXPECT_EQ(node.peer().GetStats().used_bytes, 0u);
  ASSERT_OK_AND_ASSIGN(wire::ObjectInfo ok, wire.Put("exact", 40, std::string(40, 'x')));
  EXPECT_EQ(ok.size(), 40u);
}

TEST(GrpcStreamTest, EmptyStreamsAndOversizeMessagesAreRefused) {
  Node node;
  ASSERT_OK(node.Start());
  Wire wire(node.target());
  {
    ::grpc::ClientContext ctx;
    wire::ObjectInfo reply;
    auto writer = wire.stub->Put(&ctx, &reply);
    writer->WritesDone();
    EXPECT_CODE(rpc::FromGrpc(writer->Finish(), ctx), kInvalidArgument);
  }
  {
    ::grpc::ClientContext ctx;
    wire::ObjectInfo reply;
    auto writer = wire.stub->Seal(&ctx, &reply);
    writer->WritesDone();
    EXPECT_CODE(rpc::FromGrpc(writer->Finish(), ctx), kInvalidArgument);
  }
  // One message over the 4 MiB limit: gRPC refuses it before the service sees it.
  const std::string big(rpc::kMaxMessageBytes + 1, 'b');
  EXPECT_CODE(wire.Put("big", big.size(), big), kProtocolError);
  ASSERT_OK(wire.Put("after", 1, "a").status());
}

TEST(GrpcStreamTest, LargeObjectsStreamBothWays) {
  Node node;
  ASSERT_OK(node.Start());
  ASSERT_OK_AND_ASSIGN(Client client, Connect("grpc://" + node.target()));
  std::string data(20 * kMiB + 17, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>((i * 7) ^ (i >> 12));
  ASSERT_OK(client.Put("big", data).status());
  ASSERT_OK_AND_ASSIGN(ObjectReader r, client.Get("big"));
  ASSERT_EQ(r.data().size(), data.size());
  EXPECT_EQ(std::memcmp(r.data().data(), data.data(), data.size()), 0);
  EXPECT_EQ(node.peer().GetStats().leases, 1u) << "a large read is leased, as over the socket";
  ASSERT_OK(r.Release());
  EXPECT_EQ(node.peer().GetStats().leases, 0u);
}

// A Get read with the generated stub (protobuf parsing each GetChunk, as a client in another
// language does) from a node that frames its chunks itself (chunk_codec.h).
struct StubGet {
  ::grpc::ClientContext ctx;
  std::unique_ptr<::grpc::ClientReader<rpc::GetChunk>> reader;
  std::vector<rpc::GetChunk> messages;

  StubGet(Wire& wire, const std::string& key, uint64_t session = 0) {
    if (session != 0) Wire::Join(&ctx, session);
    wire::GetRequest req;
    req.set_key(key);
    reader = wire.stub->Get(&ctx, req);
  }
  bool ReadOne() {
    rpc::GetChunk m;
    if (!reader->Read(&m)) return false;
    messages.push_back(std::move(m));
    return true;
  }
  std::string Data() const {
    std::string out;
    for (const auto& m : messages) out += m.data();
    return out;
  }
};

std::string Pattern(size_t n) {
  std::string data(n, '\0');
  for (size_t i = 0; i < n; ++i) data[i] = static_cast<char>((i * 13) ^ (i >> 10));
  return data;
}

TEST(GrpcStreamTest, TheNodesChunksAreMessagesAnyGrpcClientParses) {
  Node node;
  ASSERT_OK(node.Start());
  ASSERT_OK_AND_ASSIGN(Client client, Connect("grpc://" + node.target()));
  const std::string data = Pattern(3 * rpc::kChunkBytes + 5);
  ASSERT_OK(client.Put("big", data).status());
  ASSERT_OK(client.Put("empty", std::string_view()).status());
  Wire wire(node.target());
  StubGet get(wire, "big");
  while (get.ReadOne()) {
  }
  ASSERT_OK(rpc::FromGrpc(get.reader->Finish(), get.ctx));
  ASSERT_EQ(get.messages.size(), 4u) << "chunks of kChunkBytes";
  EXPECT_EQ(get.messages[0].info().key(), "big");
  EXPECT_EQ(get.messages[0].info().size(), data.size());
  EXPECT_FALSE(get.messages[1].has_info()) << "the info is in the first message only";
  EXPECT_EQ(get.messages[0].lease(), 0u) << "no session: no lease outlives the call";
  EXPECT_TRUE(get.Data() == data);
  StubGet empty(wire, "empty");
  while (empty.ReadOne()) {
  }
  ASSERT_OK(rpc::FromGrpc(empty.reader->Finish(), empty.ctx));
  ASSERT_EQ(empty.messages.size(), 1u) << "an empty object is one message, its info";
  EXPECT_EQ(empty.messages[0].info().size(), 0u);
  StubGet missing(wire, "missing");
  EXPECT_FALSE(missing.ReadOne());
  EXPECT_CODE(rpc::FromGrpc(missing.reader->Finish(), missing.ctx), kNotFound);
  EXPECT_EQ(node.peer().GetStats().leases, 0u);
}

TEST(GrpcStreamTest, AnObjectDeletedDuringItsGetArrivesWhole) {
  Node node;
  ASSERT_OK(node.Start());
  ASSERT_OK_AND_ASSIGN(Client client, Connect("grpc://" + node.target()));
  const std::string data = Pattern(8 * rpc::kChunkBytes);
  ASSERT_OK(client.Put("big", data).status());
  Wire wire(node.target());
  StubGet get(wire, "big");
  ASSERT_TRUE(get.ReadOne());
  ASSERT_OK(node.peer().Delete("big"));
  // The node's memory may now go to other objects; what the stream still sends must not.
  ASSERT_OK(client.Put("other", std::string(8 * rpc::kChunkBytes, 'o')).status());
  while (get.ReadOne()) {
  }
  ASSERT_OK(rpc::FromGrpc(get.reader->Finish(), get.ctx));
  EXPECT_TRUE(get.Data() == data) << "the stream's slices keep the bytes they point into";
  EXPECT_TRUE(Eventually([&] { return node.peer().GetStats().used_bytes <= 9 * rpc::kChunkBytes; }))
      << "and let them go after it";
}

TEST(GrpcStreamTest, AGetCancelledMidStreamLeavesNoLease) {
  Node node;
  ASSERT_OK(node.Start());
  ASSERT_OK_AND_ASSIGN(Client client, Connect("grpc://" + node.target()));
  ASSERT_OK(client.Put("big", Pattern(16 * rpc::kChunkBytes)).status());
  Wire wire(node.target());
  ::grpc::ClientContext session_ctx;
  std::unique_ptr<::grpc::ClientReaderWriter<rpc::SessionRequest, rpc::SessionInfo>> stream;
  const uint64_t session = wire.OpenSession(&session_ctx, &stream);
  ASSERT_NE(session, 0u);
  for (uint64_t s : {uint64_t{0}, session}) {
    StubGet get(wire, "big", s);
    ASSERT_TRUE(get.ReadOne());
    EXPECT_EQ(get.messages[0].lease() != 0, s != 0) << "a session keeps a large object's lease";
    get.ctx.TryCancel();
    while (get.ReadOne()) {
    }
    EXPECT_CODE(rpc::FromGrpc(get.reader->Finish(), get.ctx), kAborted);
    EXPECT_TRUE(Eventually([&] { return node.peer().GetStats().leases == 0; }))
        << "session " << s << ": the cancelled get's lease ends with it";
  }
  session_ctx.TryCancel();
}

TEST(GrpcAuthTest, TokenIsRequiredOnEveryCall) {
  Node node(rpc::ObjectServiceOptions{.bearer_token = "s3cret"});
  ASSERT_OK(node.Start());
  {
    ASSERT_OK_AND_ASSIGN(Client anonymous, Connect("grpc://" + node.target()));
    EXPECT_CODE(anonymous.Put("k", std::string_view("v")), kPermissionDenied);
    EXPECT_CODE(anonymous.Stat("k"), kPermissionDenied);
    EXPECT_CODE(anonymous.Create("k", 10), kPermissionDenied) << "the session stream too";
  }
  {
    ClientOptions wrong;
    wrong.http_token = "guess";
    ASSERT_OK_AND_ASSIGN(Client client, Connect("grpc://" + node.target(), wrong));
    Status s = client.List().status();
    EXPECT_EQ(s.code(), StatusCode::kPermissionDenied);
    EXPECT_NE(s.message().find("wrong bearer token"), std::string_view::npos) << s.ToString();
  }
  ClientOptions right;
  right.http_token = "s3cret";
  ASSERT_OK_AND_ASSIGN(Client client, Connect("grpc://" + node.target(), right));
  ASSERT_OK(client.Put("k", std::string_view("v")).status());
  ASSERT_OK_AND_ASSIGN(ObjectWriter w, client.Create("w", 10));
  ASSERT_OK(w.Seal().status());
  EXPECT_EQ(node.peer().GetStats().objects, 2u);
}

TEST(GrpcTlsTest, GrpcsWithTheNodesCertificate) {
  TempDir dir;
  std::string cert, key;
  ASSERT_OK(MakeSelfSignedCert(dir.path(), &cert, &key));
  Node node({}, GrpcServerOptions{.tls_cert_file = cert, .tls_key_file = key});
  ASSERT_OK(node.Start());
  // The certificate names 127.0.0.1 (subjectAltName), and gRPC checks the name.
  const std::string url = "grpcs://127.0.0.1:" + std::to_string(node.port());
  ClientOptions trusted;
  trusted.http_ca_file = cert;
  ASSERT_OK_AND_ASSIGN(Client client, Connect(url, trusted));
  ASSERT_OK(client.Put("k", std::string_view("over tls")).status());
  ASSERT_OK_AND_ASSIGN(ObjectReader r, client.Get("k"));
  EXPECT_EQ(r.data().size(), 8u);
  // Without the certificate's CA, or in plain text, there is no connection.
  ClientOptions untrusted;
  untrusted.http_ca_file = "";
  setenv("PACKICE_CA_FILE", "", 1);
  EXPECT_CODE(Connect(url, untrusted), kUnavailable);
  EXPECT_CODE(Connect("grpc://127.0.0.1:" + std::to_string(node.port())), kUnavailable);
}

TEST(GrpcServerTest, GarbageOnThePortDoesNotStopTheNode) {
  Node node;
  ASSERT_OK(node.Start());
  const std::string garbage[] = {
      std::string("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
      std::string("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") + std::string(64, '\xff'),
      std::string(4096, '\0'),
      std::string("\x00\x00\x04\x08\x00\x00\x00\x00\x00\x7f\xff\xff\xff", 13),
  };
  for (const std::string& g : garbage) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(node.port());
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    ASSERT_EQ(::send(fd, g.data(), g.size(), MSG_NOSIGNAL), static_cast<ssize_t>(g.size()));
    char buf[512];
    timeval tv{2, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    while (::recv(fd, buf, sizeof buf, 0) > 0) {
    }
    ::close(fd);
  }
  ASSERT_OK_AND_ASSIGN(Client client, Connect("grpc://" + node.target()));
  ASSERT_OK(client.Put("still", std::string_view("serving")).status());
}

TEST(GrpcServerTest, NodeGoingAwayGivesUnavailable) {
  Node node;
  ASSERT_OK(node.Start());
  ASSERT_OK_AND_ASSIGN(Client client, Connect("grpc://" + node.target()));
  ASSERT_OK(client.Put("k", std::string_view("v")).status());
  node.Stop();
  EXPECT_CODE(client.Get("k"), kUnavailable);
  EXPECT_CODE(client.Stat("k"), kUnavailable);
  EXPECT_CODE(Connect("grpc://" + node.target()), kUnavailable);
}

// A node that stops answering after the connection is up (hung, stopped, swapped out):
// opening a session ends within the call timeout instead of holding the channel's callers.
TEST(GrpcDaemonTest, ASessionAHungNodeNeverOpensIsATimeout) {
  Daemon daemon;
  ASSERT_OK(daemon.Start({"--grpc", "127.0.0.1:0"}));
  const std::string target = daemon.grpc_url().substr(std::string("grpc://").size());
  GrpcChannelOptions options;
  options.call_timeout = std::chrono::milliseconds(300);
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<GrpcChannel> channel, NewGrpcChannel(target, options));
  EXPECT_CODE(channel->Stat("absent"), kNotFound);  // connected: the node answers
  ASSERT_EQ(::kill(daemon.pid(), SIGSTOP), 0);
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> callers;
  for (int i = 0; i < 3; ++i) {
    callers.emplace_back([&] { EXPECT_CODE(channel->Create("k", 10, {}), kTimeout); });
  }
  for (std::thread& t : callers) t.join();
  const auto waited = std::chrono::steady_clock::now() - start;
  ASSERT_EQ(::kill(daemon.pid(), SIGCONT), 0);
  EXPECT_LT(waited, std::chrono::seconds(5)) << "each waiting caller is bounded by a timeout";
  ASSERT_OK_AND_ASSIGN(OpenedObject created, channel->Create("k", 10, {}));
  EXPECT_OK(channel->Discard(created.lease));  // the node is back: sessions open again
}

TEST(GrpcServerTest, BadTargetsAreInvalid) {
  EXPECT_CODE(Connect("grpc://"), kInvalidArgument);
  EXPECT_CODE(Connect("grpc://host"), kInvalidArgument);
  EXPECT_CODE(Connect("grpc://host:1/path"), kInvalidArgument);
  Node taken;
  ASSERT_OK(taken.Start());
  Node second({}, GrpcServerOptions{.listen = taken.target()});
  EXPECT_CODE(second.Start(), kUnavailable);
  EXPECT_CODE(GrpcServer(GrpcServerOptions{.listen = "127.0.0.1:0"}).Start(), kInvalidArgument)
      << "a port with no service";
}

// packiced --grpc, and the packice command with a grpc:// URL.
TEST(GrpcDaemonTest, PackicedServesGrpcToTheCli) {
  Daemon daemon;
  ASSERT_OK(daemon.Start({"--grpc", "127.0.0.1:0"}));
  const std::string url = daemon.grpc_url();
  ASSERT_TRUE(url.starts_with("grpc://127.0.0.1:")) << daemon.log();
  TempDir dir;
  std::string out;
  ASSERT_EQ(
      RunProgram({testing::BinPath("packice"), "--url", url, "put", "k", "-"}, &out, "over grpc"),
      0)
      << out;
  ASSERT_EQ(RunProgram({testing::BinPath("packice"), "--url", url, "get", "k"}, &out), 0) << out;
  EXPECT_EQ(out, "over grpc");
  // And a client on the node's socket sees the same object.
  ASSERT_OK_AND_ASSIGN(Client local, Connect(daemon.url()));
  ASSERT_OK_AND_ASSIGN(ObjectReader r, local.Get("k"));
  EXPECT_EQ(r.data().size(), 9u);
  EXPECT_EQ(daemon.Stop(), 0);
}

}  // namespace
}  // namespace packice
