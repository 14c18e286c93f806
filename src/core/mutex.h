// Mutex and MutexLock: std::mutex with Clang thread-safety annotations.
//
// Why not absl::Mutex: Debian's libabsl is not built with ThreadSanitizer, so TSan cannot see
// its locking and reports false races; std::mutex (pthreads) is understood by every sanitizer.
// The annotations let clang's -Wthread-safety check GUARDED_BY / REQUIRES at compile time.
#ifndef PACKICE_CORE_MUTEX_H_
#define PACKICE_CORE_MUTEX_H_

#include <absl/base/thread_annotations.h>
#include <pthread.h>

#include <condition_variable>
#include <mutex>

namespace packice {

class ABSL_LOCKABLE Mutex {
 public:
  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { mu_.lock(); }
  void Unlock() ABSL_UNLOCK_FUNCTION() { mu_.unlock(); }
  // For condition variables: the underlying mutex.
  std::mutex& native() { return mu_; }

 private:
  std::mutex mu_;
};

class ABSL_SCOPED_LOCKABLE MutexLock {
 public:
  explicit MutexLock(Mutex* mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) { mu_->Lock(); }
  ~MutexLock() ABSL_UNLOCK_FUNCTION() { mu_->Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex* mu_;
};

// A mutex for critical sections of a few dozen nanoseconds taken by many threads (a cache
// shard's hit): glibc's adaptive mutex, which spins briefly on a held lock before sleeping in
// the kernel, where std::mutex sleeps at once and a collision costs two system calls. Still
// pthreads, so every sanitizer understands it. No condition variables.
class ABSL_LOCKABLE AdaptiveMutex {
 public:
  AdaptiveMutex() {
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ADAPTIVE_NP);
    pthread_mutex_init(&mu_, &attr);
    pthread_mutexattr_destroy(&attr);
  }
  ~AdaptiveMutex() { pthread_mutex_destroy(&mu_); }
  AdaptiveMutex(const AdaptiveMutex&) = delete;
  AdaptiveMutex& operator=(const AdaptiveMutex&) = delete;

  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { pthread_mutex_lock(&mu_); }
  void Unlock() ABSL_UNLOCK_FUNCTION() { pthread_mutex_unlock(&mu_); }

 private:
  pthread_mutex_t mu_;
};

// Holds an AdaptiveMutex for its scope.
class ABSL_SCOPED_LOCKABLE AdaptiveMutexLock {
 public:
  explicit AdaptiveMutexLock(AdaptiveMutex* mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) {
    mu_->Lock();
  }
  ~AdaptiveMutexLock() ABSL_UNLOCK_FUNCTION() { mu_->Unlock(); }
  AdaptiveMutexLock(const AdaptiveMutexLock&) = delete;
  AdaptiveMutexLock& operator=(const AdaptiveMutexLock&) = delete;

 private:
  AdaptiveMutex* mu_;
};

}  // namespace packice

#endif  // PACKICE_CORE_MUTEX_H_
