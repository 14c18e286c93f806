// PeriodicThread: runs a task every `interval` on its own thread until destroyed, and at once
// when woken. The reapers, movers and garbage collectors of peers and stores use it.
//
// Thread safety: Wake() may be called from any thread. The destructor stops and joins.
#ifndef PACKICE_CORE_PERIODIC_THREAD_H_
#define PACKICE_CORE_PERIODIC_THREAD_H_

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

namespace packice {

class PeriodicThread {
 public:
  PeriodicThread() = default;  // not running
  PeriodicThread(std::chrono::milliseconds interval, std::function<void()> task)
      : interval_(interval), task_(std::move(task)), thread_([this] { Loop(); }) {}
  ~PeriodicThread() { Stop(); }
  PeriodicThread(const PeriodicThread&) = delete;
  PeriodicThread& operator=(const PeriodicThread&) = delete;

  // Runs the task soon, without waiting for the interval.
  void Wake() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      woken_ = true;
    }
    cv_.notify_all();
  }

  // Stops and joins; the task is not started again. Idempotent.
  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  void Loop() {
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      cv_.wait_for(lock, interval_, [this] { return stop_ || woken_; });
      if (stop_) return;
      woken_ = false;
      lock.unlock();
      task_();
      lock.lock();
    }
  }

  std::chrono::milliseconds interval_{0};
  std::function<void()> task_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool woken_ = false;
  std::thread thread_;  // last: starts after the members it uses
};

}  // namespace packice

#endif  // PACKICE_CORE_PERIODIC_THREAD_H_
