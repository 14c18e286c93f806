// A real HTTP origin for cache-group tests: tests/origin.py under /usr/bin/python3, a child
// this test owns, serving the files of its own directory on a port the kernel picked.
#ifndef PACKICE_TESTS_ORIGIN_SERVER_H_
#define PACKICE_TESTS_ORIGIN_SERVER_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "testing.h"

namespace packice::testing {

class OriginServer {
 public:
  // Starts origin.py and waits until it answers (its "PORT n" line, then a TCP connect).
  Status Start() {
    std::filesystem::create_directories(root());
    PACKICE_RETURN_IF_ERROR(proc_.Start(
        {"/usr/bin/python3", std::string(PACKICE_SOURCE_DIR) + "/tests/origin.py", root()},
        log_path()));
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
      if (port_ == 0) {
        std::istringstream log(ReadFile(log_path()));
        std::string word;
        while (log >> word) {
          if (word == "PORT" && log >> port_) break;
        }
      }
      if (port_ != 0 && Connects()) return Status::Ok();
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return Internal("origin.py did not start:\n" + ReadFile(log_path()));
  }

  // The file behind key `path` (e.g. "users/42"), and the files that change its answer.
  void Put(const std::string& path, const std::string& value) { Write(path, value); }
  void FailWith(const std::string& path, int status, const std::string& body = "") {
    Write(path + ".status", std::to_string(status) + "\n" + body);
  }
  void Delay(const std::string& path, double seconds) {
    Write(path + ".delay", std::to_string(seconds));
  }
  void Heal(const std::string& path) {
    std::filesystem::remove(root() + "/" + path + ".status");
    std::filesystem::remove(root() + "/" + path + ".delay");
  }

  // Requests answered so far for `path` (or all, when empty): the log lines origin.py writes.
  int Requests(const std::string& path = "") const {
    std::istringstream log(ReadFile(log_path()));
    std::string line;
    int n = 0;
    const std::string want = "origin GET /" + path + " ";
    while (std::getline(log, line)) {
      if (path.empty() ? line.starts_with("origin GET ") : line.starts_with(want)) ++n;
    }
    return n;
  }

  uint16_t port() const { return port_; }
  std::string url(const std::string& path_template) const {
    return "http://127.0.0.1:" + std::to_string(port_) + "/" + path_template;
  }
  std::string log() const { return ReadFile(log_path()); }

 private:
  std::string root() const { return dir_.path() + "/root"; }
  std::string log_path() const { return dir_.path() + "/origin.log"; }
  void Write(const std::string& path, const std::string& data) {
    const std::string full = root() + "/" + path;
    std::filesystem::create_directories(std::filesystem::path(full).parent_path());
    std::ofstream(full + ".tmp", std::ios::binary) << data;
    std::filesystem::rename(full + ".tmp", full);  // never half-written to a reader
  }
  bool Connects() const {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port_);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    close(fd);
    return ok;
  }

  TempDir dir_;
  ChildProcess proc_;
  uint16_t port_ = 0;
};

}  // namespace packice::testing

#endif  // PACKICE_TESTS_ORIGIN_SERVER_H_
