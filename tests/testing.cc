#include "testing.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string_view>
#include <thread>

extern char** environ;

namespace packice::testing {

ChildProcess::~ChildProcess() {
  if (pid_ > 0) Stop(SIGKILL);
}

Status ChildProcess::Start(const std::vector<std::string>& argv, const std::string& log_path) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  if (!log_path.empty()) {
    posix_spawn_file_actions_addopen(&fa, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
  }
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  int rc = posix_spawn(&pid_, argv[0].c_str(), &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    pid_ = -1;
    return ErrnoError("posix_spawn " + argv[0], rc);
  }
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

TempDir::TempDir() {
  const char* tmp = std::getenv("TMPDIR");
  std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/packice-test-XXXXXX";
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
  std::vector<std::string> argv = {BinPath("packiced"), "--socket", socket_, "--data-dir",
                                   data_dir()};
  argv.insert(argv.end(), extra.begin(), extra.end());
  PACKICE_RETURN_IF_ERROR(proc_.Start(argv, dir_.path() + "/packiced.log"));
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

std::string Daemon::http_url() const {
  constexpr std::string_view kField = "http_url=";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (true) {
    const std::string text = log();
    if (size_t ready = text.find("event=ready"); ready != std::string::npos) {
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
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, in_path.c_str(), O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid;
  int rc = posix_spawn(&pid, argv[0].c_str(), &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return -1;
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

}  // namespace packice::testing
