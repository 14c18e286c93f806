// Shared test helpers: status assertions, a fake clock, and a packiced child process.
#ifndef PACKICE_TESTS_TESTING_H_
#define PACKICE_TESTS_TESTING_H_

#include <gtest/gtest.h>
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "packice/clock.h"
#include "packice/peer.h"
#include "packice/status.h"

#define ASSERT_OK(expr)                                    \
  do {                                                     \
    auto packice_s_ = (expr);                              \
    ASSERT_TRUE(packice_s_.ok()) << packice_s_.ToString(); \
  } while (0)
#define EXPECT_OK(expr)                                    \
  do {                                                     \
    auto packice_s_ = (expr);                              \
    EXPECT_TRUE(packice_s_.ok()) << packice_s_.ToString(); \
  } while (0)

namespace packice::testing {

// The status of a Status or a Result.
inline Status StatusOf(const Status& s) { return s; }
template <typename T>
Status StatusOf(const Result<T>& r) {
  return r.status();
}
// Declares or assigns `lhs` from the value of a Result, failing the test on an error.
// The same for a Result: its status is OK.
#define ASSERT_OK_R(expr) ASSERT_OK(::packice::testing::StatusOf(expr))
#define EXPECT_OK_R(expr) EXPECT_OK(::packice::testing::StatusOf(expr))
#define ASSERT_OK_AND_ASSIGN(lhs, expr) \
  ASSERT_OK_AND_ASSIGN_IMPL_(PACKICE_CONCAT_(packice_result_, __LINE__), lhs, expr)
#define ASSERT_OK_AND_ASSIGN_IMPL_(tmp, lhs, expr)  \
  auto tmp = (expr);                                \
  ASSERT_TRUE(tmp.ok()) << tmp.status().ToString(); \
  lhs = std::move(tmp).value()

// Whether this build runs under ASan or TSan (timing-sensitive tests give more room).
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
inline constexpr bool kSanitized = true;
#else
inline constexpr bool kSanitized = false;
#endif
#else
inline constexpr bool kSanitized = false;
#endif

// `n` bytes of a pattern that differs per `seed` and per offset.
std::string PatternString(size_t n, uint8_t seed);
// The whole content of a file ("" if it cannot be read).
std::string ReadFile(const std::string& path);
// A self-signed certificate for CN=localhost and IP 127.0.0.1 and its key, as PEM files in
// `dir` (openssl req). Errors: kInternal with openssl's output.
Status MakeSelfSignedCert(const std::string& dir, std::string* cert, std::string* key);

#define EXPECT_CODE(expr, code_)                                                     \
  EXPECT_EQ(::packice::testing::StatusOf(expr).code(), ::packice::StatusCode::code_) \
      << ::packice::testing::StatusOf(expr).ToString()

// The AcquireRequest of a create, and of a read, as peer tests make them.
inline AcquireRequest CreateRequest(const std::string& key, uint64_t size,
                                    CreateOptions create = {}, SessionId session = 0,
                                    std::optional<Duration> lease_ttl = std::nullopt) {
  AcquireRequest req;
  req.key = key;
  req.mode = LeaseMode::kCreate;
  req.size = size;
  req.create = std::move(create);
  req.session = session;
  req.lease_ttl = lease_ttl;
  return req;
}
inline AcquireRequest ReadRequest(const std::string& key, SessionId session = 0,
                                  std::optional<Duration> lease_ttl = std::nullopt) {
  AcquireRequest req;
  req.key = key;
  req.mode = LeaseMode::kRead;
  req.session = session;
  req.lease_ttl = lease_ttl;
  return req;
}

// A clock that moves only when told to. Thread-safe.
class FakeClock final : public Clock {
 public:
  TimePoint Now() override { return TimePoint(std::chrono::milliseconds(now_ms_.load())); }
  int64_t UnixMillis() override { return 1'700'000'000'000 + now_ms_.load(); }
  void Advance(std::chrono::milliseconds d) { now_ms_ += d.count(); }

 private:
  std::atomic<int64_t> now_ms_{1'000'000};
};

// A child process this test owns, stopped by pid. It gets SIGKILL when the thread that started
// it exits (PR_SET_PDEATHSIG), so a test that crashes leaves no process behind: start children
// from the test's own thread, not from a short-lived one.
class ChildProcess {
 public:
  ChildProcess() = default;
  ~ChildProcess();  // SIGKILLs the child if it is still running
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // Starts `argv[0]` (a path) with `argv`. stdout and stderr go to `log_path` when given.
  Status Start(const std::vector<std::string>& argv, const std::string& log_path = "");
  // Sends `sig` and waits for the exit; a child still running after `grace` gets SIGKILL.
  // Returns as Wait.
  int Stop(int sig, std::chrono::milliseconds grace = std::chrono::seconds(10));
  // Waits for exit; returns the exit code, or 128+signal.
  int Wait();
  // Waits at most `timeout` for the exit; -1 when the child still runs, else as Wait.
  int WaitFor(std::chrono::milliseconds timeout);
  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0; }

 private:
  pid_t pid_ = -1;
};

// Path of a program built in this tree (packiced, packice, packice_walkthrough).
std::string BinPath(const std::string& name);

// The argv of a packiced this test owns: `flags`, after `--socket DIR/packice.sock` and
// `--data-dir DIR/data` for whichever of the two `flags` does not set. Tests start packiced
// only this way (ChildProcess and RunProgram abort a test that starts one without its own
// --socket and --data-dir), so a test never touches, or locks, the user's node.
std::vector<std::string> PackicedArgv(const std::string& dir, std::vector<std::string> flags);

// A fresh directory under $TMPDIR, removed by the destructor.
class TempDir {
 public:
  TempDir();
  // A directory under `parent` (which must exist) rather than $TMPDIR.
  explicit TempDir(const std::string& parent);
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A packiced child on a socket in its own temporary directory.
class Daemon {
 public:
  // Starts packiced with `extra` flags and waits until it accepts connections.
  Status Start(const std::vector<std::string>& extra = {});
  int Stop(int sig = 15) { return proc_.Stop(sig); }
  const std::string& socket() const { return socket_; }
  std::string url() const { return "uds://" + socket_; }
  pid_t pid() const { return proc_.pid(); }
  // Its --data-dir; the same across Stop and Start, so a restart finds its disk objects.
  std::string data_dir() const { return data_dir_.empty() ? dir_.path() + "/data" : data_dir_; }
  // Uses `dir` as --data-dir instead (several nodes sharing one directory). Before Start.
  void set_data_dir(std::string dir) { data_dir_ = std::move(dir); }
  // True while the packiced child runs (an exited one is reaped, so a zombie is not alive).
  bool alive() { return proc_.running() && proc_.WaitFor(std::chrono::milliseconds(0)) == -1; }
  std::string log() const;  // what it printed
  // The http_url of the `event=ready` log line of its latest Start ("http://127.0.0.1:PORT"),
  // waiting up to 10 s for that line; empty when the node serves no HTTP or never got ready.
  std::string http_url() const;
  // The same for grpc_url ("grpc://127.0.0.1:PORT").
  std::string grpc_url() const;

 private:
  std::string ReadyField(std::string_view field) const;
  TempDir dir_;
  std::string socket_;
  std::string data_dir_;
  size_t log_start_ = 0;  // where the latest Start's output begins in the log
  ChildProcess proc_;
};

// A one-member etcd (/usr/bin/etcd) this test owns: on 127.0.0.1 ports picked free, below the
// kernel's ephemeral range (so no outgoing connection of another test is given them while etcd
// is down for a restart), with its data in its own TempDir, and a child process stopped by pid.
class EtcdProcess {
 public:
  // Starts etcd and waits (up to 30 s) until it answers /health. Ports that another process
  // took in the meantime are given up for new ones (three tries).
  Status Start();
  // Stops it with `sig` (SIGTERM: a clean stop; SIGKILL: a crash). Returns as ChildProcess.
  int Stop(int sig = 15) { return proc_.Stop(sig); }
  // Starts it again on the same data directory and ports, and waits until it answers.
  Status Restart();
  bool running() const { return proc_.running(); }
  // Its client URL, "http://127.0.0.1:PORT".
  std::string endpoint() const;
  int client_port() const { return client_port_; }
  std::string log() const;  // what it printed

 private:
  Status Launch();

  TempDir dir_;
  int client_port_ = 0;
  int peer_port_ = 0;
  ChildProcess proc_;
};

// Polls `condition` every 10 ms until it holds (true) or `timeout` passes (false).
bool WaitUntil(const std::function<bool()>& condition,
               std::chrono::milliseconds timeout = std::chrono::seconds(10));

// Runs a program to completion; returns its exit code (128+signal if killed) and fills `out`
// with stdout+stderr. A program still running after `timeout` is killed with SIGKILL.
int RunProgram(const std::vector<std::string>& argv, std::string* out,
               const std::string& stdin_data = "",
               std::chrono::milliseconds timeout = std::chrono::seconds(120));

}  // namespace packice::testing

#endif  // PACKICE_TESTS_TESTING_H_
