// Mutex and MutexLock: std::mutex with Clang thread-safety annotations.
//
// Why not absl::Mutex: Debian's libabsl is not built with ThreadSanitizer, so TSan cannot see
// its locking and reports false races; std::mutex (pthreads) is understood by every sanitizer.
// The annotations let clang's -Wthread-safety check GUARDED_BY / REQUIRES at compile time.
#ifndef PACKICE_CORE_MUTEX_H_
#define PACKICE_CORE_MUTEX_H_

#include <absl/base/thread_annotations.h>

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

}  // namespace packice

#endif  // PACKICE_CORE_MUTEX_H_
