#include "testing.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string_view>
#include <thread>

namespace packice::testing {

ChildProcess::~ChildProcess() {
  if (pid_ > 0) Stop(SIGKILL);
}

namespace {

// A path a test is about to start: appended to $PACKICE_EXEC_LOG when set, so that
// scripts/check-deps.py can check that a fresh machine has it.
void RecordExec(const std::string& path) {
  const char* log = std::getenv("PACKICE_EXEC_LOG");
  if (log == nullptr || *log == '\0') return;
  int fd = ::open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return;
  const std::string line = path + "\n";
  [[maybe_unused]] ssize_t n = ::write(fd, line.data(), line.size());  // one O_APPEND write
  ::close(fd);
}

// A test never runs packiced on the user's paths: it names its own --data-dir and socket (as
// PackicedArgv does), or asks only for --help.
void CheckOwnedPaths(const std::vector<std::string>& argv) {
  if (!argv[0].ends_with("/packiced")) return;
  auto has = [&](std::string_view flag) {
    return std::find(argv.begin(), argv.end(), flag) != argv.end();
  };
  if (has("--help")) return;
  if (!has("--data-dir") || !has("--socket")) {
    std::fprintf(stderr,
                 "test bug: packiced started without its own --data-dir and --socket "
                 "(use PackicedArgv)\n");
    std::abort();
  }
}

// Spawns `argv` with stdin from `in_path` (unless empty) and stdout+stderr to `out_path`
// (unless empty; appended when `append`). The child gets SIGKILL when the thread that spawned
// it exits, so a test that crashes leaves no process behind. Returns the pid, or -errno.
pid_t SpawnOwned(const std::vector<std::string>& argv, const std::string& in_path,
                 const std::string& out_path, bool append) {
  CheckOwnedPaths(argv);
  RecordExec(argv[0]);
  // Everything the child needs is made before fork: after it, only async-signal-safe calls.
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const int out_flags = O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC);
  const pid_t parent = getpid();
  int err_pipe[2];
  if (pipe2(err_pipe, O_CLOEXEC) != 0) return -errno;
  const pid_t pid = fork();
  if (pid < 0) {
    const int e = errno;
    close(err_pipe[0]);
    close(err_pipe[1]);
    return -e;
  }
  if (pid == 0) {
    int e = 0;
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) _exit(127);
    if (!in_path.empty()) {
      int fd = ::open(in_path.c_str(), O_RDONLY);
      if (fd < 0 || dup2(fd, 0) < 0) e = errno;
    }
    if (e == 0 && !out_path.empty()) {
      int fd = ::open(out_path.c_str(), out_flags, 0644);
      if (fd < 0 || dup2(fd, 1) < 0 || dup2(1, 2) < 0) e = errno;
    }
    if (e == 0) {
      execv(args[0], args.data());
      e = errno;
    }
    [[maybe_unused]] ssize_t n = write(err_pipe[1], &e, sizeof e);
    _exit(127);
  }
  close(err_pipe[1]);
  int child_errno = 0;
  ssize_t n;
  while ((n = read(err_pipe[0], &child_errno, sizeof child_errno)) < 0 && errno == EINTR) {
  }
  close(err_pipe[0]);
  if (n == sizeof child_errno) {  // the exec failed: reap the child
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return -child_errno;
  }
  return pid;
}

}  // namespace

Status ChildProcess::Start(const std::vector<std::string>& argv, const std::string& log_path) {
  const pid_t pid = SpawnOwned(argv, "", log_path, /*append=*/true);
  if (pid < 0) return ErrnoError("spawn " + argv[0], -pid);
  pid_ = pid;
  return Status::Ok();
}

namespace {

int ExitCode(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// Polls `pid` for up to `timeout`; true (and its wait status) once it has exited.
bool WaitPidFor(pid_t pid, std::chrono::milliseconds timeout, int* status) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    pid_t r = waitpid(pid, status, WNOHANG);
    if (r == pid || (r < 0 && errno != EINTR)) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

}  // namespace

int ChildProcess::Stop(int sig, std::chrono::milliseconds grace) {
  if (pid_ <= 0) return -1;
  kill(pid_, sig);
  if (int code = WaitFor(grace); code != -1 || pid_ <= 0) return code;
  kill(pid_, SIGKILL);
  return Wait();
}

int ChildProcess::Wait() {
  if (pid_ <= 0) return -1;
  int status = 0;
  while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
  return ExitCode(status);
}

int ChildProcess::WaitFor(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return -1;
  int status = 0;
  if (!WaitPidFor(pid_, timeout, &status)) return -1;
  pid_ = -1;
  return ExitCode(status);
}

std::string BinPath(const std::string& name) { return std::string(PACKICE_BIN_DIR) + "/" + name; }

std::vector<std::string> PackicedArgv(const std::string& dir, std::vector<std::string> flags) {
  std::vector<std::string> argv = {BinPath("packiced")};
  auto has = [&](std::string_view flag) {
    return std::find(flags.begin(), flags.end(), flag) != flags.end();
  };
  if (!has("--socket")) argv.insert(argv.end(), {"--socket", dir + "/packice.sock"});
  if (!has("--data-dir")) argv.insert(argv.end(), {"--data-dir", dir + "/data"});
  argv.insert(argv.end(), flags.begin(), flags.end());
  return argv;
}

TempDir::TempDir()
    : TempDir([] {
        const char* tmp = std::getenv("TMPDIR");
        return std::string(tmp && *tmp ? tmp : "/tmp");
      }()) {}

TempDir::TempDir(const std::string& parent) {
  std::string tmpl = parent + "/packice-test-XXXXXX";
  char* made = mkdtemp(tmpl.data());
  if (made == nullptr) std::abort();
  path_ = made;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

Status Daemon::Start(const std::vector<std::string>& extra) {
  socket_ = dir_.path() + "/packice.sock";
  log_start_ = log().size();  // a restart appends to the same log
  std::vector<std::string> flags = {"--socket", socket_, "--data-dir", data_dir()};
  flags.insert(flags.end(), extra.begin(), extra.end());
  PACKICE_RETURN_IF_ERROR(
      proc_.Start(PackicedArgv(dir_.path(), flags), dir_.path() + "/packiced.log"));
  // Ready when the socket accepts a connection; give up after 10 s.
  for (int i = 0; i < 1000; ++i) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, socket_.c_str(), sizeof addr.sun_path - 1);
    bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    close(fd);
    if (ok) return Status::Ok();
    if (int code = proc_.WaitFor(std::chrono::milliseconds(0)); code != -1) {
      return Unavailable("packiced exited at start with " + std::to_string(code) + ": " + log());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return Timeout("packiced did not start listening: " + log());
}

std::string Daemon::log() const {
  std::ifstream in(dir_.path() + "/packiced.log");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Daemon::http_url() const { return ReadyField("http_url="); }
std::string Daemon::grpc_url() const { return ReadyField("grpc_url="); }

std::string Daemon::ReadyField(std::string_view kField) const {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (true) {
    const std::string text = log();
    if (size_t ready = text.find("event=ready", log_start_); ready != std::string::npos) {
      const size_t eol = text.find('\n', ready);
      const size_t at = text.find(kField, ready);
      if (at == std::string::npos || (eol != std::string::npos && at > eol)) return "";
      const size_t begin = at + kField.size();
      const size_t end = text.find_first_of(" \n", begin);
      std::string url = text.substr(begin, end == std::string::npos ? end : end - begin);
      return url == "-" ? "" : url;
    }
    if (std::chrono::steady_clock::now() >= deadline) return "";
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

int RunProgram(const std::vector<std::string>& argv, std::string* out,
               const std::string& stdin_data, std::chrono::milliseconds timeout) {
  TempDir dir;
  const std::string out_path = dir.path() + "/out";
  const std::string in_path = dir.path() + "/in";
  {
    std::ofstream in(in_path, std::ios::binary);
    in << stdin_data;
  }
  const pid_t pid = SpawnOwned(argv, in_path, out_path, /*append=*/false);
  if (pid < 0) return -1;
  int status = 0;
  if (!WaitPidFor(pid, timeout, &status)) {
    kill(pid, SIGKILL);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
  }
  std::ifstream o(out_path, std::ios::binary);
  std::stringstream ss;
  ss << o.rdbuf();
  *out = ss.str();
  return ExitCode(status);
}

std::string PatternString(size_t n, uint8_t seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + seed) & 0xff);
  return s;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Status MakeSelfSignedCert(const std::string& dir, std::string* cert, std::string* key) {
  *cert = dir + "/cert.pem";
  *key = dir + "/key.pem";
  std::string out;
  int rc = RunProgram({"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj",
                       "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1", "-days", "2",
                       "-keyout", *key, "-out", *cert},
                      &out);
  if (rc != 0) return Internal("openssl req exited " + std::to_string(rc) + ": " + out);
  return Status();
}

bool WaitUntil(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

namespace {

// Whether a TCP port on 127.0.0.1 can be bound now.
bool PortFree(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

// A free port below the kernel's ephemeral range (ip_local_port_range), where neither bind(0)
// nor an outgoing connection of another process lands. Random, so that tests running in
// parallel rarely pick the same one (and a clash shows as etcd failing to start).
int PickFreePort() {
  int low = 32768;
  std::ifstream range("/proc/sys/net/ipv4/ip_local_port_range");
  range >> low;
  const int top = std::max(low, 12000);
  static std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<int> dist(10000, top - 1);
  for (int i = 0; i < 1000; ++i) {
    const int port = dist(rng);
    if (PortFree(port)) return port;
  }
  return 0;
}

// GET /health from etcd's client port: true when it answers that it is healthy (it has a
// leader and serves requests).
bool EtcdHealthy(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  timeval tv{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string reply;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    const std::string req = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size())) {
      char buf[1024];
      ssize_t n;
      while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) reply.append(buf, static_cast<size_t>(n));
    }
  }
  ::close(fd);
  return reply.find("\"health\":\"true\"") != std::string::npos;
}

}  // namespace

std::string EtcdProcess::endpoint() const {
  return "http://127.0.0.1:" + std::to_string(client_port_);
}

std::string EtcdProcess::log() const { return ReadFile(dir_.path() + "/etcd.log"); }

Status EtcdProcess::Start() {
  Status s;
  for (int attempt = 0; attempt < 3; ++attempt) {
    client_port_ = PickFreePort();
    do {
      peer_port_ = PickFreePort();
    } while (peer_port_ == client_port_);
    if (client_port_ == 0 || peer_port_ == 0) return Internal("no free port for etcd");
    std::error_code ec;
    std::filesystem::remove_all(dir_.path() + "/data", ec);
    s = Launch();
    if (s.ok() || s.code() != StatusCode::kUnavailable) return s;
  }
  return s;
}

Status EtcdProcess::Restart() {
  if (proc_.running()) Stop();
  return Launch();
}

Status EtcdProcess::Launch() {
  const std::string client = endpoint();
  const std::string peer = "http://127.0.0.1:" + std::to_string(peer_port_);
  // Short heartbeats and elections: etcd's minimum lease TTL is 1.5 election timeouts, so
  // these let tests use 1 s leases, and a restarted member elects itself at once.
  const std::vector<std::string> argv = {
      "/usr/bin/etcd",
      "--name",
      "packice-test",
      "--data-dir",
      dir_.path() + "/data",
      "--listen-client-urls",
      client,
      "--advertise-client-urls",
      client,
      "--listen-peer-urls",
      peer,
      "--initial-advertise-peer-urls",
      peer,
      "--initial-cluster",
      "packice-test=" + peer,
      "--initial-cluster-state",
      "new",
      "--initial-cluster-token",
      "packice-test-" + std::to_string(getpid()) + "-" + std::to_string(peer_port_),
      "--heartbeat-interval",
      "50",
      "--election-timeout",
      "500",
      "--logger",
      "zap",
      "--log-level",
      "warn",
  };
  PACKICE_RETURN_IF_ERROR(proc_.Start(argv, dir_.path() + "/etcd.log"));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    if (EtcdHealthy(client_port_)) return Status::Ok();
    if (int code = proc_.WaitFor(std::chrono::milliseconds(0)); code != -1) {
      return Unavailable("etcd exited at start with " + std::to_string(code) + ": " + log());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  proc_.Stop(SIGKILL);
  return Timeout("etcd did not become healthy: " + log());
}

}  // namespace packice::testing
