// queue_crash_child: the process that queue_test.cc kills with SIGKILL.
//
//   queue_crash_child DIR THREADS TAG
//
// Opens the queue in DIR, creates the topic "crash" (4 buckets, fsync always) if missing, and
// appends from THREADS threads until killed: thread t's i-th record has key "t<t>" (so one
// thread's records stay in one bucket, in order) and value "<TAG>/t<t>/<i>". After each append
// returns it prints "<bucket> <offset> <t> <i>" with one write(2): every line the test reads
// is an acknowledged record.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "packice/queue.h"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: queue_crash_child DIR THREADS TAG\n");
    return 2;
  }
  auto queue = packice::OpenQueue({.dir = argv[1]});
  if (!queue.ok()) {
    std::fprintf(stderr, "queue_crash_child: %s\n", queue.status().ToString().c_str());
    return 1;
  }
  packice::TopicOptions o;
  o.buckets = 4;
  o.segment_bytes = 1 << 20;
  auto made = (*queue)->CreateTopic("crash", o);
  if (!made.ok() && made.code() != packice::StatusCode::kAlreadyExists) return 1;
  auto writer = packice::QueueWriter::Open(*queue, "crash");
  if (!writer.ok()) return 1;
  const int threads = std::atoi(argv[2]);
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      for (int i = 0;; ++i) {
        packice::QueueRecord r;
        r.key = "t" + std::to_string(t);
        r.value = std::string(argv[3]) + "/t" + std::to_string(t) + "/" + std::to_string(i);
        auto at = writer->Put(std::move(r));
        if (!at.ok()) {
          std::fprintf(stderr, "queue_crash_child: %s\n", at.status().ToString().c_str());
          std::_Exit(1);
        }
        const std::string line = std::to_string(at->bucket) + " " + std::to_string(at->offset) +
                                 " " + std::to_string(t) + " " + std::to_string(i) + "\n";
        if (::write(1, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
          std::_Exit(1);
        }
      }
    });
  }
  for (std::thread& w : workers) w.join();
  return 0;
}
