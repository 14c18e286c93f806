// kv_crash_child: the process that kv_recovery_test.cc kills with SIGKILL.
//
//   kv_crash_child DIR THREADS TAG
//
// Opens the KV store in DIR, creates the namespace /crash (fsync always, Linear) if missing,
// and puts from THREADS threads until killed: thread t's i-th put is key "<TAG>/t<t>/<i>", value
// "<i>". After each put returns it prints "<revision> <t> <i>" with one write(2), so every
// line the test reads is an acknowledged write.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "packice/kv.h"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: kv_crash_child DIR THREADS TAG\n");
    return 2;
  }
  packice::KvOptions options;
  options.dir = argv[1];
  options.segment_bytes = 1 << 20;
  options.max_value_bytes = 1 << 10;
  options.max_batch_bytes = 64 << 10;
  auto store = packice::OpenKvStore(options);
  if (!store.ok()) {
    std::fprintf(stderr, "kv_crash_child: %s\n", store.status().ToString().c_str());
    return 1;
  }
  auto made = (*store)->CreateNamespace("/crash", {});
  if (!made.ok() && made.code() != packice::StatusCode::kAlreadyExists) return 1;
  const int threads = std::atoi(argv[2]);
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      for (int i = 0;; ++i) {
        const std::string key =
            std::string(argv[3]) + "/t" + std::to_string(t) + "/" + std::to_string(i);
        auto r = (*store)->Put("/crash", key, std::to_string(i));
        if (!r.ok()) {
          std::fprintf(stderr, "kv_crash_child: %s\n", r.status().ToString().c_str());
          std::_Exit(1);
        }
        const std::string line =
            std::to_string(r->revision) + " " + std::to_string(t) + " " + std::to_string(i) + "\n";
        if (::write(1, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
          std::_Exit(1);
        }
      }
    });
  }
  for (std::thread& w : workers) w.join();
  return 0;
}
