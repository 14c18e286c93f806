// Real processes through a real packiced: the daemon, the CLI and the walkthrough as built, a
// client killed with SIGKILL, and hostile bytes on a raw Unix socket.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "packice/client.h"
#include "testing.h"
#include "transport/uds/frame.h"
#include "transport/uds/fd_socket.h"
#include "transport/uds/wire.pb.h"

namespace packice {
namespace {

using ::packice::testing::BinPath;
using namespace std::chrono_literals;
using ::packice::testing::Daemon;
using ::packice::testing::kSanitized;
using ::packice::testing::PackicedArgv;
using ::packice::testing::PatternString;
using ::packice::testing::ReadFile;
using ::packice::testing::RunProgram;
using ::packice::testing::TempDir;

constexpr uint64_t kMiB = 1 << 20;

// Sanitizers keep freed memory in quarantine and shadow what is used, so a process's resident
// size under one says little about what it allocates.
void WriteFile(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary);
  out << data;
}

std::string_view View(std::span<const std::byte> b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

template <typename F>
bool Eventually(F done, std::chrono::milliseconds timeout = 10s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

// A fresh client can write and read, and the daemon process is still the one we started.
void ExpectServing(Daemon& daemon) {
  ASSERT_TRUE(daemon.alive()) << daemon.log();
  auto client = Connect(daemon.url());
  ASSERT_OK(client.status());
  const std::string small = "still serving", large = PatternString(200 * 1024, 42);
  ASSERT_OK(client->Put("health/small", small).status());
  ASSERT_OK(client->Put("health/large", large).status());
  auto r = client->Get("health/small");
  ASSERT_OK(r.status());
  EXPECT_EQ(View(r->data()), small);
  auto big = client->Get("health/large");
  ASSERT_OK(big.status());
  EXPECT_EQ(View(big->data()), large);
}

// --- a raw Unix-socket connection ------------------------------------------------------------

class RawConnection {
 public:
  explicit RawConnection(const std::string& path) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    if (connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      ADD_FAILURE() << "connect " << path << ": " << std::strerror(errno);
    }
    timeval tv{5, 0};  // no test waits longer than this for one reply
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  }
  ~RawConnection() { Close(); }

  void Close() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

  void SendBytes(std::string_view bytes) { ASSERT_OK(SendAll(fd_, bytes, {})); }

  void Send(wire::Request req) {
    std::string frame;
    AppendFrame(req, &frame);
    SendBytes(frame);
  }

  // The next response; descriptors that come with it are closed.
  Result<wire::Response> Receive() {
    while (true) {
      PACKICE_ASSIGN_OR_RETURN(std::optional<std::string_view> frame, reader_.Next());
      if (frame) {
        wire::Response resp;
        if (!resp.ParseFromArray(frame->data(), static_cast<int>(frame->size()))) {
          return ProtocolError("response does not parse");
        }
        return resp;
      }
      std::vector<int> fds;
      auto n = RecvWithFds(fd_, reader_.WritableTail(64 * 1024), &fds);
      for (int fd : fds) close(fd);
      PACKICE_RETURN_IF_ERROR(n.status());
      if (*n == 0) return Unavailable("closed by the node");
      reader_.Commit(*n);
    }
  }

  // Sends `req` with `id` and returns the reply to it.
  Result<wire::Response> Call(wire::Request req, uint64_t id) {
    req.set_id(id);
    Send(req);
    PACKICE_ASSIGN_OR_RETURN(wire::Response resp, Receive());
    if (resp.id() != id) return ProtocolError("reply for " + std::to_string(resp.id()));
    return resp;
  }

  // True when the node closes the connection (end of stream) within the receive timeout.
  bool ClosedByNode() {
    char c;
    while (true) {
      ssize_t n = recv(fd_, &c, 1, 0);
      if (n == 0) return true;
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == ECONNRESET) return true;
      return false;  // data, or the timeout ran out
    }
  }

 private:
  int fd_ = -1;
  FrameReader reader_{1u << 30};
};

std::string Header(uint32_t len) {
  return std::string{static_cast<char>(len), static_cast<char>(len >> 8),
                     static_cast<char>(len >> 16), static_cast<char>(len >> 24)};
}

StatusCode CodeOf(const wire::Response& r) { return static_cast<StatusCode>(r.code()); }

wire::Request Hello() {
  wire::Request req;
  req.mutable_hello()->set_protocol_version(1);
  return req;
}

class IntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_OK(daemon_.Start(ExtraFlags())); }
  virtual std::vector<std::string> ExtraFlags() { return {"--log-level", "warn"}; }
  Daemon daemon_;
};

// --- programs --------------------------------------------------------------------------------

TEST_F(IntegrationTest, WalkthroughExitsZero) {
  std::string out;
  int code = RunProgram({BinPath("packice_walkthrough"), "--url", daemon_.url()}, &out);
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("walkthrough ok"), std::string::npos) << out;
  ExpectServing(daemon_);
}

TEST_F(IntegrationTest, WriterProcessAndSeparateReaderProcess) {
  // The walkthrough's two halves, run here as two processes of this test.
  std::string ids;
  ASSERT_EQ(RunProgram({BinPath("packice_walkthrough"), "--url", daemon_.url(), "writer"}, &ids), 0)
      << ids;
  // stdout and stderr are merged: the ids are the last line.
  std::string last = ids.substr(0, ids.find_last_of('\n'));
  last = last.substr(last.find_last_of('\n') + 1);
  const auto space = last.find(' ');
  ASSERT_NE(space, std::string::npos) << ids;
  const std::string small = last.substr(0, space), big = last.substr(space + 1);
  std::string out;
  EXPECT_EQ(
      RunProgram({BinPath("packice_walkthrough"), "--url", daemon_.url(), "reader", small, big},
                 &out),
      0)
      << out;
  EXPECT_NE(out.find("Hello Packice"), std::string::npos) << out;

  // And the CLI: one process puts, another gets.
  TempDir dir;
  const std::string in = dir.path() + "/in", got = dir.path() + "/got";
  const std::string data = PatternString(5 * kMiB + 17, 1);
  WriteFile(in, data);
  ASSERT_EQ(RunProgram({BinPath("packice"), "--url", daemon_.url(), "put", "cli/big", in}, &out), 0)
      << out;
  ASSERT_EQ(
      RunProgram({BinPath("packice"), "--url", daemon_.url(), "get", "cli/big", "-o", got}, &out),
      0)
      << out;
  EXPECT_TRUE(ReadFile(got) == data);
}

TEST_F(IntegrationTest, CliRoundTrip) {
  TempDir dir;
  const std::string url = daemon_.url();
  auto cli = [&](std::vector<std::string> args, std::string* out, const std::string& in = "") {
    args.insert(args.begin(), {BinPath("packice"), "--url", url});
    return RunProgram(args, out, in);
  };
  std::string out;
  for (size_t size : {size_t{0}, size_t{11}, size_t{300 * 1024}}) {
    SCOPED_TRACE("size " + std::to_string(size));
    const std::string data = PatternString(size, 7);
    const std::string in = dir.path() + "/in", got = dir.path() + "/got";
    WriteFile(in, data);
    ASSERT_EQ(cli({"put", "dir/obj", in, "--meta", "owner=cli", "--ttl", "1h"}, &out), 0) << out;
    EXPECT_NE(out.find("stored dir/obj"), std::string::npos) << out;
    ASSERT_EQ(cli({"get", "dir/obj", "-o", got}, &out), 0) << out;
    EXPECT_TRUE(ReadFile(got) == data);
    ASSERT_EQ(cli({"get", "dir/obj"}, &out), 0);  // to stdout
    EXPECT_TRUE(out == data);
    ASSERT_EQ(cli({"stat", "dir/obj"}, &out), 0) << out;
    EXPECT_NE(out.find("key: dir/obj\n"), std::string::npos) << out;
    EXPECT_NE(out.find("size: " + std::to_string(size) + "\n"), std::string::npos) << out;
    EXPECT_NE(out.find("state: sealed\n"), std::string::npos) << out;
    EXPECT_NE(out.find("ttl_ms: 3600000\n"), std::string::npos) << out;
    EXPECT_NE(out.find("meta.owner: cli\n"), std::string::npos) << out;
  }
  // Standard input.
  ASSERT_EQ(cli({"put", "dir/stdin", "-"}, &out, "from stdin"), 0) << out;
  ASSERT_EQ(cli({"get", "dir/stdin"}, &out), 0);
  EXPECT_EQ(out, "from stdin");

  ASSERT_EQ(cli({"put", "other", "-"}, &out, "x"), 0) << out;
  ASSERT_EQ(cli({"ls"}, &out), 0) << out;
  EXPECT_EQ(out, std::to_string(300 * 1024) + "\tdir/obj\n10\tdir/stdin\n1\tother\n");
  ASSERT_EQ(cli({"ls", "dir/"}, &out), 0) << out;
  EXPECT_EQ(out, std::to_string(300 * 1024) + "\tdir/obj\n10\tdir/stdin\n");
  ASSERT_EQ(cli({"ls", "--limit", "1"}, &out), 0) << out;
  EXPECT_EQ(out, std::to_string(300 * 1024) + "\tdir/obj\n");

  EXPECT_EQ(cli({"put", "other", "-", "--exclusive"}, &out, "y"), 1);
  EXPECT_EQ(out.rfind("packice: already_exists: ", 0), 0u) << out;

  ASSERT_EQ(cli({"rm", "dir/obj"}, &out), 0) << out;
  ASSERT_EQ(cli({"ls", "dir/"}, &out), 0) << out;
  EXPECT_EQ(out, "10\tdir/stdin\n");

  // Failures: exit 1 and exactly one line "packice: <code>: <message>".
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"get", "dir/obj"},
                                             {"get", "dir/obj", "-o", dir.path() + "/never"},
                                             {"stat", "dir/obj"},
                                             {"rm", "dir/obj"}}) {
    EXPECT_EQ(cli(args, &out), 1) << args[0];
    EXPECT_EQ(out.rfind("packice: not_found: ", 0), 0u) << out;
    EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
    EXPECT_EQ(out.back(), '\n');
  }
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/never"));
  EXPECT_EQ(cli({"put", "k", dir.path()}, &out), 1);
  EXPECT_EQ(out.rfind("packice: invalid_argument: ", 0), 0u) << out;
  EXPECT_EQ(cli({"put", "k", dir.path() + "/no-such-file"}, &out), 1);
  EXPECT_EQ(out.rfind("packice: invalid_argument: ", 0), 0u) << out;

  std::string unreachable;
  EXPECT_EQ(RunProgram({BinPath("packice"), "--url", "uds://" + dir.path() + "/nobody.sock", "ls"},
                       &unreachable),
            1);
  EXPECT_EQ(unreachable.rfind("packice: unavailable: ", 0), 0u) << unreachable;
  EXPECT_EQ(cli({"frobnicate"}, &out), 2) << "usage error";
  EXPECT_EQ(cli({"get"}, &out), 2) << "usage error";
  EXPECT_EQ(cli({"ls", "--limit", "many"}, &out), 2) << "usage error";
  EXPECT_EQ(cli({"--help"}, &out), 0);
  ExpectServing(daemon_);
}

TEST_F(IntegrationTest, CliPutFromAPipeStoresEverything) {
  // A named pipe has no size: the CLI must read it to its end, not trust st_size (0).
  TempDir dir;
  const std::string fifo = dir.path() + "/fifo";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  signal(SIGPIPE, SIG_IGN);  // a reader that stops early fails the write, not this process
  const std::string data = PatternString(300 * 1024, 5);
  std::thread writer([&] {
    // Non-blocking open fails with ENXIO until the CLI opens the reading end.
    int fd = -1;
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (fd < 0 && std::chrono::steady_clock::now() < deadline) {
      fd = open(fifo.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
      if (fd < 0) std::this_thread::sleep_for(5ms);
    }
    if (fd < 0) return;
    fcntl(fd, F_SETFL, 0);  // blocking writes from here on
    EXPECT_EQ(write(fd, data.data(), data.size()), static_cast<ssize_t>(data.size()));
    close(fd);
  });
  std::string out;
  int code =
      RunProgram({BinPath("packice"), "--url", daemon_.url(), "put", "piped", fifo}, &out, "", 30s);
  writer.join();
  ASSERT_EQ(code, 0) << out;
  ASSERT_EQ(RunProgram({BinPath("packice"), "--url", daemon_.url(), "get", "piped"}, &out), 0);
  EXPECT_EQ(out.size(), data.size());
  EXPECT_TRUE(out == data);
}

// --- a client killed with SIGKILL ------------------------------------------------------------

// A forked child this test owns; SIGKILLed and reaped by pid when it goes out of scope.
class ForkedChild {
 public:
  explicit ForkedChild(pid_t pid) : pid_(pid) {}
  ~ForkedChild() { Kill(); }
  int Kill() {
    if (pid_ <= 0) return -1;
    kill(pid_, SIGKILL);
    int status = 0;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
    return status;
  }

 private:
  pid_t pid_;
};

class CrashTest : public IntegrationTest {
 protected:
  std::vector<std::string> ExtraFlags() override {
    return {"--store", "memory", "--capacity", "8M", "--log-level", "warn"};
  }
};

TEST_F(CrashTest, KilledClientLosesItsLeasesAndUnsealedObjects) {
  auto client = Connect(daemon_.url());
  ASSERT_OK(client.status());
  const std::string held = PatternString(3 * kMiB, 3);
  ASSERT_OK(client->Put("held", held).status());

  // The child: a read lease on "held" and an unsealed 4 MiB "unsealed", then it waits to die.
  // (This process has no other threads yet, so forking it is safe.)
  int ready[2];
  ASSERT_EQ(pipe2(ready, O_CLOEXEC), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(ready[0]);
    auto c = Connect(daemon_.url());
    if (!c.ok()) _exit(10);
    auto r = c->Get("held");
    if (!r.ok() || View(r->data()) != held) _exit(11);
    auto w = c->Create("unsealed", 4 * kMiB);
    if (!w.ok()) _exit(12);
    std::memset(w->data().data(), 0x77, w->data().size());
    if (write(ready[1], "r", 1) != 1) _exit(13);
    while (true) pause();
  }
  ForkedChild child(pid);
  close(ready[1]);
  pollfd pfd{ready[0], POLLIN, 0};
  ASSERT_EQ(poll(&pfd, 1, 10'000), 1) << "child not ready";
  char c = 0;
  ASSERT_EQ(read(ready[0], &c, 1), 1) << "child failed early";
  close(ready[0]);

  ASSERT_OK(client->Delete("held"));  // now only the child's lease keeps it
  CreateOptions exclusive;
  exclusive.exclusive = true;
  EXPECT_CODE(client->Stat("unsealed"), kNotFound);
  EXPECT_CODE(client->Create("unsealed", 1, exclusive), kAlreadyExists) << "pending";
  // 3 MiB held by the read lease + 4 MiB unsealed: 7 MiB more does not fit in 8.
  EXPECT_CODE(client->Create("room", 7 * kMiB), kOutOfCapacity);

  const int status = child.Kill();
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;

  // The daemon notices the closed socket and ends the child's session.
  Status last;
  EXPECT_TRUE(Eventually([&] {
    auto w = client->Create("room", 7 * kMiB);
    last = w.status();
    return w.ok();
  })) << last.ToString();
  EXPECT_CODE(client->Stat("unsealed"), kNotFound);
  EXPECT_CODE(client->Get("held"), kNotFound);
  auto again = client->Create("unsealed", 10, exclusive);
  EXPECT_OK(again.status());  // no longer pending
  ExpectServing(daemon_);
}

// --- hostile bytes on a raw socket -----------------------------------------------------------

TEST_F(IntegrationTest, RawHelloWorks) {
  RawConnection conn(daemon_.socket());
  ASSERT_OK_AND_ASSIGN(wire::Response r, conn.Call(Hello(), 1));
  EXPECT_EQ(CodeOf(r), StatusCode::kOk);
  EXPECT_EQ(r.hello().protocol_version(), 1u);
  EXPECT_EQ(r.hello().max_frame_bytes(), kDefaultMaxFrameBytes);
}

TEST_F(IntegrationTest, GarbageBytesGetAProtocolErrorAndAClose) {
  RawConnection conn(daemon_.socket());
  conn.SendBytes("GET / HTTP/1.1\r\nHost: packice\r\n\r\n");  // "GET " is a 542 MB length
  ASSERT_OK_AND_ASSIGN(wire::Response r, conn.Receive());
  EXPECT_EQ(CodeOf(r), StatusCode::kProtocolError) << r.message();
  EXPECT_EQ(r.id(), 0u);
  EXPECT_TRUE(conn.ClosedByNode());
  ExpectServing(daemon_);
}

TEST_F(IntegrationTest, PayloadThatDoesNotParseGetsAProtocolErrorAndTheConnectionLives) {
  RawConnection conn(daemon_.socket());
  conn.SendBytes(Header(8) + std::string(8, '\xff'));
  ASSERT_OK_AND_ASSIGN(wire::Response r, conn.Receive());
  EXPECT_EQ(CodeOf(r), StatusCode::kProtocolError) << r.message();
  ASSERT_OK_AND_ASSIGN(wire::Response hello, conn.Call(Hello(), 2));
  EXPECT_EQ(CodeOf(hello), StatusCode::kOk);
  ExpectServing(daemon_);
}

TEST_F(IntegrationTest, TruncatedFrameThenClose) {
  {
    RawConnection conn(daemon_.socket());
    conn.SendBytes(Header(100) + std::string(10, 'x'));
  }
  {
    RawConnection conn(daemon_.socket());
    conn.SendBytes(std::string("\x05\x00", 2));  // half a header
  }
  ExpectServing(daemon_);
}

TEST_F(IntegrationTest, OversizedLengthPrefixGetsAProtocolErrorAndAClose) {
  for (uint32_t len : {0xffffffffu, kDefaultMaxFrameBytes + 1}) {
    SCOPED_TRACE(len);
    RawConnection conn(daemon_.socket());
    // A valid request first: it is answered before the bad frame ends the connection.
    std::string frame;
    wire::Request hello = Hello();
    hello.set_id(1);
    AppendFrame(hello, &frame);
    conn.SendBytes(frame + Header(len) + "abc");
    ASSERT_OK_AND_ASSIGN(wire::Response first, conn.Receive());
    EXPECT_EQ(first.id(), 1u);
    EXPECT_EQ(CodeOf(first), StatusCode::kOk);
    ASSERT_OK_AND_ASSIGN(wire::Response r, conn.Receive());
    EXPECT_EQ(CodeOf(r), StatusCode::kProtocolError) << r.message();
    EXPECT_NE(r.message().find("exceeds"), std::string::npos) << r.message();
    EXPECT_TRUE(conn.ClosedByNode());
  }
  ExpectServing(daemon_);
}

TEST_F(IntegrationTest, RequestWithNoBodyOrUnknownFields) {
  RawConnection conn(daemon_.socket());
  wire::Request empty;
  ASSERT_OK_AND_ASSIGN(wire::Response r, conn.Call(empty, 5));
  EXPECT_EQ(CodeOf(r), StatusCode::kProtocolError) << r.message();

  // id = 6, then field 99 (varint 1) and field 100 (3 bytes): a body from a future version.
  std::string payload = std::string("\x08\x06", 2) + "\x98\x06\x01" + "\xa2\x06\x03xyz";
  conn.SendBytes(Header(static_cast<uint32_t>(payload.size())) + payload);
  ASSERT_OK_AND_ASSIGN(wire::Response u, conn.Receive());
  EXPECT_EQ(u.id(), 6u);
  EXPECT_EQ(CodeOf(u), StatusCode::kProtocolError) << u.message();

  // A zero-length frame is an empty request.
  conn.SendBytes(Header(0));
  ASSERT_OK_AND_ASSIGN(wire::Response z, conn.Receive());
  EXPECT_EQ(CodeOf(z), StatusCode::kProtocolError);

  ASSERT_OK_AND_ASSIGN(wire::Response hello, conn.Call(Hello(), 7));
  EXPECT_EQ(CodeOf(hello), StatusCode::kOk) << "the connection is still usable";
  ExpectServing(daemon_);
}

TEST_F(IntegrationTest, WrongStateCallsGetTheirCodes) {
  RawConnection conn(daemon_.socket());
  uint64_t id = 0;
  auto call = [&](wire::Request req) {
    auto r = conn.Call(std::move(req), ++id);
    EXPECT_OK(r.status());
    return r.ok() ? *r : wire::Response();
  };
  auto seal = [](uint64_t lease, std::string data = "") {
    wire::Request req;
    req.mutable_seal()->set_lease(lease);
    req.mutable_seal()->set_data(data);
    return req;
  };
  auto release = [](uint64_t lease) {
    wire::Request req;
    req.mutable_release()->set_lease(lease);
    return req;
  };
  auto discard = [](uint64_t lease) {
    wire::Request req;
    req.mutable_discard()->set_lease(lease);
    return req;
  };
  auto create = [](const std::string& key, uint64_t size) {
    wire::Request req;
    req.mutable_create()->set_key(key);
    req.mutable_create()->set_size(size);
    return req;
  };
  auto open = [](const std::string& key) {
    wire::Request req;
    req.mutable_open()->set_key(key);
    return req;
  };

  EXPECT_EQ(CodeOf(call(seal(12345))), StatusCode::kLeaseExpired);
  EXPECT_EQ(CodeOf(call(release(12345))), StatusCode::kLeaseExpired);
  EXPECT_EQ(CodeOf(call(discard(0))), StatusCode::kLeaseExpired);

  wire::Response created = call(create("raw/k", 10));
  ASSERT_EQ(CodeOf(created), StatusCode::kOk) << created.message();
  const uint64_t lease = created.lease().lease();
  EXPECT_EQ(created.lease().blob().kind(), wire::Blob::INLINE);
  EXPECT_EQ(CodeOf(call(open("raw/k"))), StatusCode::kNotFound) << "open of an unsealed key";
  EXPECT_EQ(CodeOf(call(seal(lease, std::string(11, 'x')))), StatusCode::kInvalidArgument)
      << "more bytes than allocated";
  {
    // Another connection cannot use this connection's lease.
    RawConnection other(daemon_.socket());
    auto r = other.Call(seal(lease), 1);
    ASSERT_OK(r.status());
    EXPECT_EQ(CodeOf(*r), StatusCode::kLeaseExpired);
  }
  wire::Response sealed = call(seal(lease, "0123456789"));
  ASSERT_EQ(CodeOf(sealed), StatusCode::kOk) << sealed.message();
  EXPECT_EQ(sealed.info().size(), 10u);
  EXPECT_EQ(CodeOf(call(seal(lease, "0123456789"))), StatusCode::kLeaseExpired) << "seal twice";

  wire::Response opened = call(open("raw/k"));
  ASSERT_EQ(CodeOf(opened), StatusCode::kOk) << opened.message();
  EXPECT_EQ(opened.lease().blob().data(), "0123456789");
  const uint64_t read_lease = opened.lease().lease();
  EXPECT_EQ(CodeOf(call(seal(read_lease))), StatusCode::kPermissionDenied);
  EXPECT_EQ(CodeOf(call(discard(read_lease))), StatusCode::kPermissionDenied);
  EXPECT_EQ(CodeOf(call(release(read_lease))), StatusCode::kOk)
      << "a refused discard leaves the lease releasable";
  EXPECT_EQ(CodeOf(call(release(read_lease))), StatusCode::kLeaseExpired) << "release twice";

  wire::Request renew;
  renew.mutable_renew()->add_leases(read_lease);
  renew.mutable_renew()->add_leases(999999);
  wire::Response renewed = call(renew);
  ASSERT_EQ(CodeOf(renewed), StatusCode::kOk);
  EXPECT_EQ(renewed.renew().expired_size(), 2);

  // A large create is written through a mapping: bytes in the seal are refused.
  wire::Response mapped = call(create("raw/big", 1 * kMiB));
  ASSERT_EQ(CodeOf(mapped), StatusCode::kOk) << mapped.message();
  EXPECT_EQ(mapped.lease().blob().kind(), wire::Blob::FD);
  EXPECT_EQ(mapped.fd_count(), 1u);
  EXPECT_EQ(CodeOf(call(seal(mapped.lease().lease(), "abc"))), StatusCode::kInvalidArgument);

  wire::Request bad_ttl = create("raw/ttl", 1);
  bad_ttl.mutable_create()->mutable_options()->set_ttl_ms(-1);
  EXPECT_EQ(CodeOf(call(bad_ttl)), StatusCode::kInvalidArgument);
  wire::Request bad_lease_ttl = create("raw/ttl", 1);
  bad_lease_ttl.mutable_create()->set_lease_ttl_ms(-1);
  EXPECT_EQ(CodeOf(call(bad_lease_ttl)), StatusCode::kInvalidArgument);
  EXPECT_EQ(CodeOf(call(create("", uint64_t{1} << 62))), StatusCode::kOutOfCapacity);
  EXPECT_EQ(CodeOf(call(create("bad\x01key", 1))), StatusCode::kInvalidArgument);

  ASSERT_OK_AND_ASSIGN(wire::Response hello, conn.Call(Hello(), ++id));
  EXPECT_EQ(CodeOf(hello), StatusCode::kOk);
  ExpectServing(daemon_);
}

// Resident memory of process `pid` in bytes, from /proc.
uint64_t ResidentBytes(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  }
  return 0;
}

TEST_F(IntegrationTest, ClientThatDoesNotReadCannotBalloonTheDaemon) {
  // Each 14-byte request asks for a 64 KiB inline reply: one socket read of requests would be
  // hundreds of MiB of replies if the node answered all of it before stopping.
  auto client = Connect(daemon_.url());
  ASSERT_OK(client.status());
  ASSERT_OK(client->Put("amp", PatternString(64 * 1024, 8)).status());
  const uint64_t rss_before = ResidentBytes(daemon_.pid());
  std::string requests;
  for (uint64_t id = 1; requests.size() < 60 * 1024; ++id) {
    wire::Request get;
    get.set_id(id);
    get.mutable_get()->set_key("amp");
    AppendFrame(get, &requests);
  }
  RawConnection greedy(daemon_.socket());
  greedy.SendBytes(requests);
  // Give the node time to do whatever it is going to do with them.
  uint64_t rss_peak = 0;
  for (int i = 0; i < 50; ++i) {
    rss_peak = std::max(rss_peak, ResidentBytes(daemon_.pid()));
    std::this_thread::sleep_for(10ms);
  }
  // The output cap is 16 MiB. (Unbounded, this is hundreds of MiB, several GiB sanitized.)
  EXPECT_LT(rss_peak, rss_before + (kSanitized ? 320 : 64) * kMiB)
      << "before " << (rss_before >> 20) << " MiB, peak " << (rss_peak >> 20) << " MiB";
  ExpectServing(daemon_);
  // The replies are all there for a client that does read, in order.
  for (uint64_t id = 1; id <= 300; ++id) {
    ASSERT_OK_AND_ASSIGN(wire::Response r, greedy.Receive());
    ASSERT_EQ(r.id(), id);
    ASSERT_EQ(CodeOf(r), StatusCode::kOk) << r.message();
    ASSERT_EQ(r.lease().blob().data().size(), 64u * 1024);
  }
}

// --- the daemon's life -----------------------------------------------------------------------

TEST_F(IntegrationTest, SigtermExitsZeroAndRemovesTheSocket) {
  // With a client connected and holding leases.
  auto client = Connect(daemon_.url());
  ASSERT_OK(client.status());
  ASSERT_OK(client->Put("k", PatternString(200 * 1024, 1)).status());
  auto reader = client->Get("k");
  ASSERT_OK(reader.status());
  auto writer = client->Create("w", 100);
  ASSERT_OK(writer.status());
  ASSERT_TRUE(std::filesystem::exists(daemon_.socket()));
  EXPECT_EQ(daemon_.Stop(SIGTERM), 0) << daemon_.log();
  EXPECT_FALSE(std::filesystem::exists(daemon_.socket()));
  EXPECT_CODE(client->Stat("k"), kUnavailable);
}

TEST_F(IntegrationTest, SecondDaemonOnTheSameSocketFails) {
  std::string out;
  TempDir other;
  int code = RunProgram(PackicedArgv(other.path(), {"--socket", daemon_.socket()}), &out, "", 10s);
  EXPECT_NE(code, 0) << out;
  EXPECT_LT(code, 128) << "it exits by itself";
  EXPECT_NE(out.find("already listening"), std::string::npos) << out;
  EXPECT_TRUE(std::filesystem::exists(daemon_.socket()));
  ExpectServing(daemon_);
}

TEST(DaemonFlagsTest, BadCapacityFails) {
  TempDir dir;
  const std::string sock = dir.path() + "/packice.sock";
  for (const char* bad : {"bogus", "-1", "12X", "1.5G", "0", "99999999999T"}) {
    SCOPED_TRACE(bad);
    std::string out;
    int code = RunProgram(PackicedArgv(dir.path(), {"--capacity", bad}), &out, "", 10s);
    EXPECT_NE(code, 0) << out;
    EXPECT_LT(code, 128) << "it exits by itself";
    EXPECT_NE(out.find("capacity"), std::string::npos) << out;
    EXPECT_FALSE(std::filesystem::exists(sock));
  }
}

TEST(DaemonFlagsTest, StaleSocketIsReplacedButOtherFilesAreNot) {
  TempDir dir;
  const std::string path = dir.path() + "/packice.sock";
  {
    // A socket file nobody listens on, as a killed daemon leaves behind.
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    close(fd);
  }
  ::packice::testing::ChildProcess proc;
  ASSERT_OK(proc.Start(PackicedArgv(dir.path(), {"--log-level", "warn"})));
  EXPECT_TRUE(Eventually([&] { return Connect("uds://" + path).ok(); }));
  EXPECT_EQ(proc.Stop(SIGTERM), 0);

  const std::string file = dir.path() + "/precious.txt";
  WriteFile(file, "do not delete");
  std::string out;
  int code = RunProgram(PackicedArgv(dir.path(), {"--socket", file}), &out, "", 10s);
  EXPECT_NE(code, 0) << out;
  EXPECT_LT(code, 128) << "it exits by itself";
  EXPECT_NE(out.find("not a socket"), std::string::npos) << out;
  EXPECT_EQ(ReadFile(file), "do not delete");
}

TEST(DaemonFlagsTest, KilledDaemonCanBeRestartedOnItsSocket) {
  Daemon daemon;
  ASSERT_OK(daemon.Start({"--log-level", "warn"}));
  EXPECT_EQ(daemon.Stop(SIGKILL), 128 + SIGKILL);
  EXPECT_TRUE(std::filesystem::exists(daemon.socket())) << "SIGKILL leaves the socket file";
  ::packice::testing::ChildProcess proc;
  ASSERT_OK(proc.Start(PackicedArgv(
      std::filesystem::path(daemon.socket()).parent_path(),
      {"--socket", daemon.socket(), "--data-dir", daemon.data_dir(), "--log-level", "warn"})));
  EXPECT_TRUE(Eventually([&] { return Connect(daemon.url()).ok(); }));
  auto client = Connect(daemon.url());
  ASSERT_OK(client.status());
  ASSERT_OK(client->Put("k", std::string_view("v")).status());
  EXPECT_EQ(proc.Stop(SIGTERM), 0);
}

}  // namespace
}  // namespace packice
