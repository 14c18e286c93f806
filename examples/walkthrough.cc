// The seed's walkthrough: process A creates an object, writes it and seals it; process B, a
// separate process, gets it by id and reads the bytes zero-copy.
//
//   packice_walkthrough [--url uds:///path/to/packice.sock]
//
// It runs A and B as two child processes of its own (re-executing itself) and prints what each
// did. Exit status 0 when B read exactly what A wrote.
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "packice/client.h"

extern char** environ;

namespace {

constexpr std::string_view kGreeting = "Hello Packice";
constexpr uint64_t kLargeBytes = 64ull << 20;

// Byte i of the large object: a pattern B can check without A's help.
std::byte Pattern(uint64_t i) { return static_cast<std::byte>((i * 131 + 7) & 0xff); }

int Die(const char* who, const packice::Status& s) {
  std::fprintf(stderr, "[%s] error: %s\n", who, s.ToString().c_str());
  return 1;
}

// Process A: creates two objects with generated ids, prints the ids on stdout (for the parent).
int RunWriter(const std::string& url) {
  auto client = packice::Connect(url);
  if (!client.ok()) return Die("A", client.status());

  packice::CreateOptions options;
  options.meta = {{"author", "process-A"}};
  options.ttl = std::chrono::minutes(10);
  auto w = client->Create("", kGreeting.size(), options);  // empty key: the node picks an id
  if (!w.ok()) return Die("A", w.status());
  std::memcpy(w->data().data(), kGreeting.data(), kGreeting.size());
  auto info = w->Seal();
  if (!info.ok()) return Die("A", info.status());
  std::fprintf(stderr, "[A pid=%d] created %s, wrote %zu bytes, sealed (version %llu)\n", getpid(),
               info->key.c_str(), kGreeting.size(), static_cast<unsigned long long>(info->version));

  auto big = client->Create("", kLargeBytes, options);
  if (!big.ok()) return Die("A", big.status());
  std::span<std::byte> bytes = big->data();
  for (uint64_t i = 0; i < bytes.size(); ++i) bytes[i] = Pattern(i);
  auto big_info = big->Seal();
  if (!big_info.ok()) return Die("A", big_info.status());
  std::fprintf(stderr,
               "[A pid=%d] created %s, wrote %llu MiB straight into the node's shared memory, "
               "sealed\n",
               getpid(), big_info->key.c_str(),
               static_cast<unsigned long long>(kLargeBytes >> 20));
  std::printf("%s %s\n", info->key.c_str(), big_info->key.c_str());
  return 0;
}

// Process B: gets both objects by id and checks every byte.
int RunReader(const std::string& url, const std::string& small_id, const std::string& big_id) {
  auto client = packice::Connect(url);
  if (!client.ok()) return Die("B", client.status());
  auto r = client->Get(small_id);
  if (!r.ok()) return Die("B", r.status());
  std::string text(reinterpret_cast<const char*>(r->data().data()), r->data().size());
  std::fprintf(stderr, "[B pid=%d] got %s: \"%s\" (meta author=%s)\n", getpid(), small_id.c_str(),
               text.c_str(), r->info().meta.count("author") ? r->info().meta.at("author").c_str() : "?");
  if (text != kGreeting) return Die("B", packice::Internal("content differs"));

  auto t0 = std::chrono::steady_clock::now();
  auto big = client->Get(big_id);
  if (!big.ok()) return Die("B", big.status());
  auto t1 = std::chrono::steady_clock::now();
  std::span<const std::byte> bytes = big->data();
  for (uint64_t i = 0; i < bytes.size(); ++i) {
    if (bytes[i] != Pattern(i)) return Die("B", packice::Internal("byte " + std::to_string(i)));
  }
  auto t2 = std::chrono::steady_clock::now();
  auto us = [](auto d) { return std::chrono::duration_cast<std::chrono::microseconds>(d).count(); };
  std::fprintf(stderr,
               "[B pid=%d] got %s: %llu MiB mapped read-only at %p in %lld us (no copy), "
               "checked every byte in %lld us\n",
               getpid(), big_id.c_str(), static_cast<unsigned long long>(bytes.size() >> 20),
               static_cast<const void*>(bytes.data()), static_cast<long long>(us(t1 - t0)),
               static_cast<long long>(us(t2 - t1)));
  return 0;
}

// Runs this program again with `args`; returns its exit status, and its stdout in `out`.
int Spawn(const std::vector<std::string>& args, std::string* out) {
  int pipefd[2];
  if (pipe(pipefd) != 0) return 1;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
  posix_spawn_file_actions_addclose(&fa, pipefd[0]);
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid;
  int rc = posix_spawn(&pid, "/proc/self/exe", &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  close(pipefd[1]);
  if (rc != 0) {
    close(pipefd[0]);
    return 1;
  }
  char buf[4096];
  ssize_t n;
  while ((n = read(pipefd[0], buf, sizeof buf)) > 0) out->append(buf, static_cast<size_t>(n));
  close(pipefd[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  std::string url = packice::DefaultUrl();
  if (args.size() >= 2 && args[0] == "--url") {
    url = args[1];
    args.erase(args.begin(), args.begin() + 2);
  }
  if (!args.empty() && args[0] == "writer") return RunWriter(url);
  if (args.size() == 3 && args[0] == "reader") return RunReader(url, args[1], args[2]);
  if (!args.empty()) {
    std::fprintf(stderr, "usage: packice_walkthrough [--url URL]\n");
    return 2;
  }

  std::fprintf(stderr, "walkthrough against %s\n", url.c_str());
  std::string ids;
  if (Spawn({"packice_walkthrough", "--url", url, "writer"}, &ids) != 0) return 1;
  auto space = ids.find(' ');
  if (space == std::string::npos) return 1;
  std::string small = ids.substr(0, space);
  std::string big = ids.substr(space + 1);
  while (!big.empty() && (big.back() == '\n' || big.back() == ' ')) big.pop_back();
  std::string unused;
  if (Spawn({"packice_walkthrough", "--url", url, "reader", small, big}, &unused) != 0) return 1;
  std::fprintf(stderr, "walkthrough ok: B read exactly what A wrote, through %s\n", url.c_str());
  return 0;
}
