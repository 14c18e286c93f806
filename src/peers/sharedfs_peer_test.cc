#include "packice/sharedfs_peer.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <cstring>
#include <filesystem>
#include <optional>
#include <thread>
#include <vector>

#include "backends/sharedfs/object_file.h"
#include "backends/sharedfs/sharedfs_store.h"
#include "packice/client.h"
#include "testing.h"
#include "transport/uds/uds_server.h"

namespace packice {
namespace {

namespace fs = std::filesystem;
using testing::FakeClock;
using testing::TempDir;

constexpr auto kAbandonedAfter = std::chrono::seconds(5);
constexpr int64_t kAbandonedAfterMs = 5000;

std::string AsString(std::span<const std::byte> b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

void SetMtime(const std::string& path, int64_t unix_ms) {
  struct timespec times[2] = {};
  times[0].tv_nsec = UTIME_OMIT;
  times[1].tv_sec = unix_ms / 1000;
  times[1].tv_nsec = (unix_ms % 1000) * 1'000'000;
  ASSERT_EQ(utimensat(AT_FDCWD, path.c_str(), times, 0), 0) << std::strerror(errno);
}

size_t FilesUnder(const std::string& dir) {
  size_t n = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir)) n += e.is_regular_file() ? 1 : 0;
  return n;
}

AcquireRequest CreateRequest(std::string key, uint64_t size, bool exclusive = false) {
  AcquireRequest req;
  req.key = std::move(key);
  req.mode = LeaseMode::kCreate;
  req.size = size;
  req.create.exclusive = exclusive;
  return req;
}

AcquireRequest ReadRequest(std::string key) {
  AcquireRequest req;
  req.key = std::move(key);
  req.mode = LeaseMode::kRead;
  return req;
}

// Two peers on one directory in one process: OFD locks belong to open files, not processes, so
// the two conflict exactly as two packiced processes (or machines) would.
class SharedFSPeerTest : public ::testing::Test {
 protected:
  SharedFSPeerOptions Options(const std::string& writer) {
    SharedFSPeerOptions options;
    options.dir = dir();
    options.sync = false;
    options.default_lease_ttl = std::chrono::seconds(10);
    options.abandoned_after = kAbandonedAfter;
    options.background_threads = false;
    options.clock = clock_;
    options.writer_id = writer;
    return options;
  }
  std::shared_ptr<SharedFSPeer> OpenPeer(const std::string& writer) {
    auto peer = SharedFSPeer::Open(Options(writer));
    EXPECT_OK(peer.status());
    return peer.ok() ? *peer : nullptr;
  }
  std::string dir() const { return dir_.path() + "/shared"; }
  std::string PathOf(const std::string& relative) const { return dir() + "/" + relative; }
  std::string CreatingPath(std::string_view key) const {
    return PathOf(SharedNameForKey(key).creating());
  }
  std::string SealedPath(std::string_view key) const {
    return PathOf(SharedNameForKey(key).sealed());
  }

  TempDir dir_;
  std::shared_ptr<FakeClock> clock_ = std::make_shared<FakeClock>();
  std::shared_ptr<SharedFSPeer> a_ = OpenPeer("node-a:1");
  std::shared_ptr<SharedFSPeer> b_ = OpenPeer("node-b:2");
};

TEST_F(SharedFSPeerTest, OneNodeWritesTheOtherReadsOnceSealed) {
  Client a = Connect(a_);
  Client b = Connect(b_);
  CreateOptions options;
  options.meta = {{"k", "v"}};
  auto w = a.Create("model/layer0", 1 << 20, options);
  ASSERT_OK(w.status());

  auto lost = b.Create("model/layer0", 10);
  EXPECT_CODE(lost, kAlreadyExists);
  EXPECT_NE(lost.status().message().find("being created by node-a:1"), std::string::npos)
      << lost.status().ToString();
  EXPECT_CODE(b.Get("model/layer0"), kNotFound);
  EXPECT_CODE(b.Stat("model/layer0"), kNotFound);

  for (size_t i = 0; i < w->data().size(); ++i) w->data()[i] = std::byte(i % 251);
  auto sealed = w->Seal();
  ASSERT_OK(sealed.status());
  EXPECT_EQ(sealed->tier, "sharedfs");

  auto r = b.Get("model/layer0");
  ASSERT_OK(r.status());
  ASSERT_EQ(r->data().size(), 1u << 20);
  for (size_t i = 0; i < r->data().size(); i += 4093) ASSERT_EQ(r->data()[i], std::byte(i % 251));
  EXPECT_EQ(r->info().meta.at("k"), "v");
  EXPECT_EQ(r->info().version, sealed->version);
  auto info = b.Stat("model/layer0");
  ASSERT_OK(info.status());
  EXPECT_EQ(info->size, 1u << 20);
  auto page = b.List();
  ASSERT_OK(page.status());
  ASSERT_EQ(page->objects.size(), 1u);
  EXPECT_EQ(page->objects[0].key, "model/layer0");
  EXPECT_EQ(page->objects[0].tier, "sharedfs");

  // Put, a truncating seal, and an exclusive create of a bound key.
  ASSERT_OK(b.Put("small", "from b").status());
  auto small = a.Get("small");
  ASSERT_OK(small.status());
  EXPECT_EQ(AsString(small->data()), "from b");
  CreateOptions exclusive;
  exclusive.exclusive = true;
  EXPECT_CODE(a.Create("small", 3, exclusive), kAlreadyExists);
  auto shrink = a.Create("shrink", 100);
  ASSERT_OK(shrink.status());
  std::memcpy(shrink->data().data(), "abc", 3);
  ASSERT_OK(shrink->Seal(3).status());
  auto shrunk = b.Get("shrink");
  ASSERT_OK(shrunk.status());
  EXPECT_EQ(AsString(shrunk->data()), "abc");
}

TEST_F(SharedFSPeerTest, ObjectTtlExpiresEverywhereAndGcRemovesIt) {
  AcquireRequest req = CreateRequest("ttl", 4);
  req.create.ttl = std::chrono::seconds(2);
  auto g = a_->Acquire(req);
  ASSERT_OK(g.status());
  ASSERT_OK(g->blob->Write(0, std::as_bytes(std::span("data", 4))));
  auto sealed = a_->Seal(g->lease, std::nullopt);
  ASSERT_OK(sealed.status());
  EXPECT_EQ(sealed->expires_unix_ms, clock_->UnixMillis() + 2000);
  ASSERT_OK(b_->Stat("ttl").status());

  clock_->Advance(std::chrono::seconds(2));
  EXPECT_CODE(b_->Stat("ttl"), kNotFound);
  EXPECT_CODE(b_->Acquire(ReadRequest("ttl")), kNotFound);
  EXPECT_TRUE(fs::exists(SealedPath("ttl")));
  g->blob.reset();  // the writer's blob reads its sealed object until dropped
  auto gc = b_->CollectGarbage();
  ASSERT_OK(gc.status());
  EXPECT_EQ(gc->expired, 1u);
  EXPECT_EQ(gc->unlinked, 1u);
  EXPECT_EQ(FilesUnder(PathOf("objects")) + FilesUnder(PathOf("trash")), 0u);
}

TEST_F(SharedFSPeerTest, AbandonedCreatingObjectIsCollectedAfterTheLeaseTtl) {
  // A writer in "another process" dies: its descriptor closes without a seal or a discard.
  {
    SharedFSStoreOptions options{dir(), false, kAbandonedAfter, clock_, "dead:99"};
    auto dead = SharedFSStore::Open(options);
    ASSERT_OK(dead.status());
    ObjectInfo info;
    info.key = "orphan";
    info.size = 1 << 16;
    auto w = (*dead)->Create(info, false);
    ASSERT_OK(w.status());
    ASSERT_OK((*w)->Write(0, std::as_bytes(std::span("half", 4))));
  }
  ASSERT_TRUE(fs::exists(CreatingPath("orphan")));
  EXPECT_CODE(b_->Acquire(ReadRequest("orphan")), kNotFound);
  auto lost = b_->Acquire(CreateRequest("orphan", 1));
  EXPECT_CODE(lost, kAlreadyExists);
  EXPECT_NE(lost.status().message().find("dead:99"), std::string::npos);

  // Its file is recent (a writer might be between its create and its lock): kept.
  SetMtime(CreatingPath("orphan"), clock_->UnixMillis() - 1000);
  auto gc = b_->CollectGarbage();
  ASSERT_OK(gc.status());
  EXPECT_EQ(gc->abandoned, 0u);
  // Unchanged for the lease TTL and nobody holds its lock: removed.
  SetMtime(CreatingPath("orphan"), clock_->UnixMillis() - kAbandonedAfterMs - 1);
  gc = a_->CollectGarbage();
  ASSERT_OK(gc.status());
  EXPECT_EQ(gc->abandoned, 1u);
  EXPECT_FALSE(fs::exists(CreatingPath("orphan")));
  ASSERT_OK(b_->Acquire(CreateRequest("orphan", 1)).status());
}

TEST_F(SharedFSPeerTest, ReaderKeepsItsBytesWhileTheOtherDeletesAndCollects) {
  Client a = Connect(a_);
  Client b = Connect(b_);
  ASSERT_OK(a.Put("shared", "the old bytes").status());
  auto r = b.Get("shared");
  ASSERT_OK(r.status());

  ASSERT_OK(a.Delete("shared"));
  EXPECT_CODE(a.Get("shared"), kNotFound);
  EXPECT_CODE(b.Delete("shared"), kNotFound);
  auto gc = a_->CollectGarbage();
  ASSERT_OK(gc.status());
  EXPECT_EQ(gc->in_use, 1u);
  EXPECT_EQ(gc->unlinked, 0u);
  EXPECT_EQ(AsString(r->data()), "the old bytes");

  // A rebind while reading: the reader keeps the old object, new readers get the new one.
  ASSERT_OK(a.Put("rebound", "first").status());
  auto first = b.Get("rebound");
  ASSERT_OK(first.status());
  ASSERT_OK(a.Put("rebound", "second").status());
  EXPECT_EQ(AsString(first->data()), "first");
  auto second = b.Get("rebound");
  ASSERT_OK(second.status());
  EXPECT_EQ(AsString(second->data()), "second");

  ASSERT_OK(r->Release());
  ASSERT_OK(first->Release());
  gc = b_->CollectGarbage();
  ASSERT_OK(gc.status());
  EXPECT_EQ(gc->unlinked, 2u);
  EXPECT_EQ(gc->in_use, 0u);
  EXPECT_EQ(FilesUnder(PathOf("trash")), 0u);
}

TEST_F(SharedFSPeerTest, LeasesArePerProcessAndEndTheirObjects) {
  // An expired create lease discards its object, so the other node may create the key.
  AcquireRequest req = CreateRequest("lease", 8);
  req.lease_ttl = std::chrono::seconds(1);
  auto g = a_->Acquire(req);
  ASSERT_OK(g.status());
  EXPECT_CODE(b_->Acquire(CreateRequest("lease", 8)), kAlreadyExists);
  EXPECT_CODE(b_->Seal(g->lease, std::nullopt), kLeaseExpired);  // leases are not shared
  clock_->Advance(std::chrono::milliseconds(500));
  ASSERT_OK(a_->Renew(g->lease));
  clock_->Advance(std::chrono::milliseconds(700));
  a_->ReapExpired();
  ASSERT_OK(a_->Renew(g->lease));
  clock_->Advance(std::chrono::seconds(1));
  a_->ReapExpired();
  EXPECT_CODE(a_->Seal(g->lease, std::nullopt), kLeaseExpired);
  EXPECT_FALSE(fs::exists(CreatingPath("lease")));

  // Closing a session discards its unsealed objects and ends its reads.
  Client a = Connect(a_);
  ASSERT_OK(a.Put("done", "sealed").status());
  const SessionId session = b_->OpenSession();
  req = CreateRequest("lease", 8);
  req.session = session;
  ASSERT_OK(b_->Acquire(req).status());
  AcquireRequest read = ReadRequest("done");
  read.session = session;
  ASSERT_OK(b_->Acquire(read).status());
  EXPECT_EQ(b_->GetStats().leases, 2u);
  b_->CloseSession(session);
  EXPECT_FALSE(fs::exists(CreatingPath("lease")));
  EXPECT_EQ(b_->GetStats().leases, 0u);
}

TEST_F(SharedFSPeerTest, RenewNoticesThatAnotherNodeCollectedTheObject) {
  auto g = a_->Acquire(CreateRequest("lost", 8));
  ASSERT_OK(g.status());
  // On a network filesystem a writer can lose its lock (a partition); another node's collector
  // then removes the object. The writer learns it at its next renew.
  ASSERT_EQ(unlink(CreatingPath("lost").c_str()), 0);
  EXPECT_CODE(a_->Renew(g->lease), kLeaseExpired);
  EXPECT_CODE(a_->Seal(g->lease, std::nullopt), kLeaseExpired);
}

TEST_F(SharedFSPeerTest, ExportedReadDescriptorPinsTheObject) {
  Client a = Connect(a_);
  ASSERT_OK(a.Put("pinned", "bytes").status());
  auto g = b_->Acquire(ReadRequest("pinned"));
  ASSERT_OK(g.status());
  auto ex = g->blob->Export(LeaseMode::kRead);
  ASSERT_OK(ex.status());
  EXPECT_EQ(ex->kind, BlobExport::Kind::kFd);
  ASSERT_OK(b_->Release(g->lease));
  g->blob.reset();
  // The lease is gone, but a client still holds the descriptor (and would map it).
  ASSERT_OK(a.Delete("pinned"));
  auto gc = a_->CollectGarbage();
  ASSERT_OK(gc.status());
  EXPECT_EQ(gc->in_use, 1u);
  ex->fd.reset();
  gc = a_->CollectGarbage();
  ASSERT_OK(gc.status());
  EXPECT_EQ(gc->unlinked, 1u);
}

TEST_F(SharedFSPeerTest, DestroyingAPeerDiscardsItsUnsealedObjects) {
  ASSERT_OK(a_->Acquire(CreateRequest("unsealed", 8)).status());
  ASSERT_TRUE(fs::exists(CreatingPath("unsealed")));
  a_.reset();
  EXPECT_FALSE(fs::exists(CreatingPath("unsealed")));
  ASSERT_OK(b_->Acquire(CreateRequest("unsealed", 8)).status());
}

// With background threads (and the system clock), leases expire and garbage goes unprompted.
TEST_F(SharedFSPeerTest, BackgroundThreadsExpireLeasesAndCollect) {
  SharedFSPeerOptions options = Options("node-c:3");
  options.clock = nullptr;
  options.background_threads = true;
  options.gc_interval = std::chrono::milliseconds(20);
  auto c = SharedFSPeer::Open(options);
  ASSERT_OK(c.status());
  AcquireRequest req = CreateRequest("forgotten", 8);
  req.lease_ttl = std::chrono::milliseconds(30);
  ASSERT_OK((*c)->Acquire(req).status());
  Client client = Connect(*c);
  CreateOptions short_lived;
  short_lived.ttl = std::chrono::milliseconds(30);
  ASSERT_OK(client.Put("short", "lived", short_lived).status());
  auto gone = [&] { return FilesUnder(PathOf("objects")) + FilesUnder(PathOf("trash")) == 0; };
  for (int i = 0; i < 1000 && !gone(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_TRUE(gone());
  EXPECT_EQ((*c)->GetStats().leases, 0u);
}

// A peer served on a Unix socket by a thread of this process, as packiced serves it.
class UdsNode {
 public:
  UdsNode(std::shared_ptr<Peer> peer, std::string path) : path_(std::move(path)) {
    UdsServerOptions uds;
    uds.path = path_;
    server_ = std::make_unique<UdsServer>(io_, std::move(peer), uds);
    started_ = server_->Start();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~UdsNode() {
    work_.reset();
    io_.stop();
    thread_.join();
    server_.reset();
    io_.restart();
    io_.poll();  // runs the connections' close handlers: sessions end
  }
  Status started() const { return started_; }
  Result<Client> Connect() { return packice::Connect("uds://" + path_); }

 private:
  std::string path_;
  boost::asio::io_context io_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_{
      io_.get_executor()};
  std::unique_ptr<UdsServer> server_;
  Status started_;
  std::thread thread_;
};

// Over sockets, clients map the object files through the descriptors the peers export: a
// writer's own read-write open of the .pkc file, a reader's read-only descriptor of the .pks.
TEST_F(SharedFSPeerTest, TwoNodesOverUnixSockets) {
  UdsNode node_a(a_, dir_.path() + "/a.sock");
  UdsNode node_b(b_, dir_.path() + "/b.sock");
  ASSERT_OK(node_a.started());
  ASSERT_OK(node_b.started());
  auto a = node_a.Connect();
  auto b = node_b.Connect();
  ASSERT_OK(a.status());
  ASSERT_OK(b.status());

  constexpr size_t kSize = 3 << 20;
  auto w = a->Create("over/socket", kSize);
  ASSERT_OK(w.status());
  EXPECT_CODE(b->Create("over/socket", 1), kAlreadyExists);
  EXPECT_CODE(b->Get("over/socket"), kNotFound);
  for (size_t i = 0; i < kSize; ++i) w->data()[i] = std::byte(i % 253);
  ASSERT_OK(w->Seal().status());

  auto r = b->Get("over/socket");
  ASSERT_OK(r.status());
  ASSERT_EQ(r->data().size(), kSize);
  for (size_t i = 0; i < kSize; i += 4099) ASSERT_EQ(r->data()[i], std::byte(i % 253)) << i;
  EXPECT_EQ(r->info().tier, "sharedfs");

  ASSERT_OK(b->Put("small", "inline both ways").status());
  auto small = a->Get("small");
  ASSERT_OK(small.status());
  EXPECT_EQ(AsString(small->data()), "inline both ways");

  // A client that goes away mid-write loses its object: its session's create lease ends.
  {
    auto gone = node_a.Connect();
    ASSERT_OK(gone.status());
    auto half = gone->Create("abandoned", 1 << 20);
    ASSERT_OK(half.status());
    std::memset(half->data().data(), 1, 1 << 19);
    ASSERT_TRUE(fs::exists(CreatingPath("abandoned")));
    // Dropping the client without sealing: the writer aborts, or the session closes.
  }
  for (int i = 0; i < 500 && fs::exists(CreatingPath("abandoned")); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  EXPECT_FALSE(fs::exists(CreatingPath("abandoned")));
  ASSERT_OK(b->Put("abandoned", "taken over").status());
}

// A real second process: a child opens its own peer on the directory, starts writing an object
// and is SIGKILLed halfway. The parent's peer never shows the half-written object, leaves it
// alone while the child lives, and removes it once the child is dead and the file is older than
// the abandonment age.
TEST_F(SharedFSPeerTest, WriterKilledMidWriteIsCollectedByAnotherProcess) {
  constexpr uint64_t kSize = 1 << 20;
  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    close(pipe_fds[0]);
    SharedFSPeerOptions options;
    options.dir = dir();
    options.sync = false;
    options.background_threads = false;
    char progress = 'E';
    auto peer = SharedFSPeer::Open(options);
    if (peer.ok()) {
      auto g = (*peer)->Acquire(CreateRequest("half", kSize));
      std::vector<std::byte> half(kSize / 2, std::byte{0x5a});
      if (g.ok() && g->blob->Write(0, half).ok()) progress = 'W';
    }
    if (write(pipe_fds[1], &progress, 1) != 1) _exit(2);
    while (true) pause();  // until SIGKILL
  }
  struct Reaper {
    pid_t pid;
    ~Reaper() {
      if (pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, nullptr, 0);
      }
    }
  } reaper{child};
  close(pipe_fds[1]);
  char progress = 0;
  ASSERT_EQ(read(pipe_fds[0], &progress, 1), 1);
  close(pipe_fds[0]);
  ASSERT_EQ(progress, 'W');

  const std::string pending = CreatingPath("half");
  ASSERT_TRUE(fs::exists(pending));
  auto read = b_->Acquire(ReadRequest("half"));
  EXPECT_CODE(read, kNotFound);
  EXPECT_NE(read.status().message().find("not sealed yet"), std::string::npos);
  auto lost = b_->Acquire(CreateRequest("half", 1));
  EXPECT_CODE(lost, kAlreadyExists);
  EXPECT_NE(lost.status().message().find(":" + std::to_string(child)), std::string::npos)
      << lost.status().ToString();

  // Old, but the child is alive and holds the lock.
  SetMtime(pending, clock_->UnixMillis() - kAbandonedAfterMs - 1000);
  auto gc = b_->CollectGarbage();
  ASSERT_OK(gc.status());
  EXPECT_EQ(gc->abandoned, 0u);
  EXPECT_EQ(gc->creating, 1u);

  ASSERT_EQ(kill(child, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  reaper.pid = -1;
  ASSERT_TRUE(WIFSIGNALED(status));

  // Dead, but the file is recent: it may still be a writer between its create and its lock.
  SetMtime(pending, clock_->UnixMillis());
  gc = b_->CollectGarbage();
  ASSERT_OK(gc.status());
  EXPECT_EQ(gc->abandoned, 0u);
  EXPECT_CODE(a_->Acquire(ReadRequest("half")), kNotFound);

  // Dead and older than the lease TTL: collected.
  SetMtime(pending, clock_->UnixMillis() - kAbandonedAfterMs - 1);
  gc = a_->CollectGarbage();
  ASSERT_OK(gc.status());
  EXPECT_EQ(gc->abandoned, 1u);
  EXPECT_FALSE(fs::exists(pending));
  auto taken = b_->Acquire(CreateRequest("half", 2));
  ASSERT_OK(taken.status());
  ASSERT_OK(b_->Seal(taken->lease, std::nullopt).status());
  ASSERT_OK(a_->Acquire(ReadRequest("half")).status());
}

}  // namespace
}  // namespace packice
