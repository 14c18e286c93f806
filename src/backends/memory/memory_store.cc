#include "backends/memory/memory_store.h"

#include <fcntl.h>
#include <linux/memfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/huge_pages.h"
#include "core/io.h"

namespace packice {
namespace {

// A segment's pages.
enum class SegmentPages {
  kSmall,        // 4 KiB
  kTransparent,  // transparent huge pages of shmem, 2 MiB where aligned (the tail in 4 KiB)
  kHugetlb,      // reserved 2 MiB pages: the segment is a multiple of 2 MiB
};

uint64_t SegmentSize(uint64_t size, SegmentPages pages) {
  if (pages != SegmentPages::kHugetlb) return RoundUpToPage(size);
  return (size + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes;
}

// One memfd, mapped read-write in this process, with a second read-only descriptor to hand to
// readers. Its size is sealed: a client holding a descriptor cannot shrink the file under the
// store's mapping (a SIGBUS on the next touch) or grow it. Its mode is 0400 once the read-only
// descriptor is open, so a process handed that descriptor cannot reopen it read-write through
// /proc/self/fd (an unprivileged one; root may open anything).
class Segment {
 public:
  // `size` bytes (a page multiple); in 2 MiB pages as `pages` says (then a multiple of 2 MiB
  // for kHugetlb).
  static Result<std::unique_ptr<Segment>> Make(uint64_t size, SegmentPages pages) {
    auto seg = std::unique_ptr<Segment>(new Segment());
    seg->size_ = size;
    seg->huge_ = pages != SegmentPages::kSmall;
    const unsigned hugetlb = pages == SegmentPages::kHugetlb ? MFD_HUGETLB | MFD_HUGE_2MB : 0;
    seg->fd_rw_ = memfd_create("packice", MFD_CLOEXEC | MFD_ALLOW_SEALING | hugetlb);
    if (seg->fd_rw_ < 0) return ErrnoError("memfd_create", errno);
    if (ftruncate(seg->fd_rw_, static_cast<off_t>(size)) != 0) {
      return ErrnoError("ftruncate", errno);
    }
    if (fcntl(seg->fd_rw_, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
      return ErrnoError("seal memfd size", errno);
    }
    std::string path = "/proc/self/fd/" + std::to_string(seg->fd_rw_);
    seg->fd_ro_ = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (seg->fd_ro_ < 0) return ErrnoError("reopen memfd read-only", errno);
    if (fchmod(seg->fd_rw_, S_IRUSR) != 0) return ErrnoError("fchmod memfd", errno);
    // hugetlb pages are reserved when mapped: a pool too small to hold them fails here (and the
    // caller falls back to small pages), never later with SIGBUS.
    PACKICE_ASSIGN_OR_RETURN(void* p, MapShared(seg->fd_rw_, 0, size, /*writable=*/true, seg->huge_,
                                                /*populate=*/false));
    seg->map_ = static_cast<std::byte*>(p);
    return seg;
  }

  ~Segment() {
    if (map_ != nullptr) munmap(map_, size_);
    if (fd_ro_ >= 0) close(fd_ro_);
    if (fd_rw_ >= 0) close(fd_rw_);
  }

  void Zero() { std::memset(map_, 0, size_); }

  uint64_t size() const { return size_; }
  bool huge() const { return huge_; }
  std::byte* data() const { return map_; }
  int fd_rw() const { return fd_rw_; }
  int fd_ro() const { return fd_ro_; }

 private:
  Segment() = default;
  uint64_t size_ = 0;
  bool huge_ = false;
  int fd_rw_ = -1;
  int fd_ro_ = -1;
  std::byte* map_ = nullptr;
};

}  // namespace

class MemoryStore::State {
 public:
  explicit State(MemoryStoreOptions options) : options_(options) {
    if (options_.huge_pages == HugePageMode::kAuto) {
      const HugePageSupport support = ProbeHugePages();
      thp_ = support.shmem_thp;
      hugetlb_ = support.hugetlb_free > 0;
    }
  }

  // How a segment for an object of `size` bytes is backed: 2 MiB pages for objects of at least
  // one, where the kernel has them (reserved hugetlb pages first, unless `hugetlb` is false).
  SegmentPages PagesFor(uint64_t size, bool hugetlb = true) const {
    if (size < kHugePageBytes) return SegmentPages::kSmall;
    if (hugetlb && hugetlb_) return SegmentPages::kHugetlb;
    return thp_ ? SegmentPages::kTransparent : SegmentPages::kSmall;
  }

  void StartCleaner() {
    cleaner_ = std::thread([this] { CleanerLoop(); });
  }

  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (cleaner_.joinable()) cleaner_.join();
  }

  const MemoryStoreOptions& options() const { return options_; }

  // Charges `bytes` of fresh memory, first giving up pooled segments if that makes room.
  Status Charge(uint64_t bytes) {
    std::vector<std::unique_ptr<Segment>> dropped;
    std::lock_guard<std::mutex> lock(mu_);
    if (used_ > options_.capacity_bytes || bytes > options_.capacity_bytes - used_) {
      return OutOfCapacity(
          "need " + std::to_string(bytes) + " bytes, " +
          std::to_string(options_.capacity_bytes - std::min(used_, options_.capacity_bytes)) +
          " of " + std::to_string(options_.capacity_bytes) + " free");
    }
    const uint64_t total = used_ + pooled_ + bytes;
    if (total > options_.capacity_bytes) {
      DropPooledLocked(total - options_.capacity_bytes, &dropped);
    }
    used_ += bytes;
    return Status::Ok();
  }

  void Uncharge(uint64_t bytes) {
    std::lock_guard<std::mutex> lock(mu_);
    used_ -= bytes;
  }

  // A pooled segment of between `size` and size + 1/8 bytes, zeroed, and charged; or null.
  std::unique_ptr<Segment> TakePooled(uint64_t size) {
    std::unique_ptr<Segment> seg;
    bool needs_zero = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      const uint64_t limit = size + size / 8;
      auto it = clean_.lower_bound(size);
      if (it != clean_.end() && it->first <= limit) {
        seg = std::move(it->second);
        clean_.erase(it);
      } else {
        for (auto d = dirty_.begin(); d != dirty_.end(); ++d) {
          if ((*d)->size() >= size && (*d)->size() <= limit) {
            seg = std::move(*d);
            dirty_.erase(d);
            needs_zero = true;
            if (dirty_.empty()) idle_cv_.notify_all();  // the cleaner will not say so
            break;
          }
        }
      }
      if (seg == nullptr) return nullptr;
      pooled_ -= seg->size();
      used_ += seg->size();
      ++reused_;
    }
    if (needs_zero) seg->Zero();
    return seg;
  }

  void NoteCreated() {
    std::lock_guard<std::mutex> lock(mu_);
    ++created_;
  }

  // Returns a freed segment: pooled for reuse if `reusable`, else unmapped.
  void Release(std::unique_ptr<Segment> seg, bool reusable) {
    std::vector<std::unique_ptr<Segment>> dropped;
    {
      std::lock_guard<std::mutex> lock(mu_);
      used_ -= seg->size();
      if (!reusable || seg->size() > options_.pool_bytes) {
        dropped.push_back(std::move(seg));
      } else {
        if (pooled_ + seg->size() > options_.pool_bytes) {
          DropPooledLocked(pooled_ + seg->size() - options_.pool_bytes, &dropped);
        }
        pooled_ += seg->size();
        if (options_.cleaner_thread) {
          dirty_.push_back(std::move(seg));
          cv_.notify_all();
          return;
        }
      }
    }
    if (seg == nullptr) return;  // dropped (destroyed with `dropped`, outside the lock)
    seg->Zero();
    std::lock_guard<std::mutex> lock(mu_);
    clean_.emplace(seg->size(), std::move(seg));
  }

  void DrainCleaner() {
    std::unique_lock<std::mutex> lock(mu_);
    idle_cv_.wait(lock, [this] { return dirty_.empty() && !cleaning_; });
  }

  Stats GetStats() {
    std::lock_guard<std::mutex> lock(mu_);
    return Stats{used_, pooled_, options_.capacity_bytes, created_, reused_};
  }

 private:
  // Moves at least `bytes` of pooled segments into `out` (to be unmapped outside the lock).
  void DropPooledLocked(uint64_t bytes, std::vector<std::unique_ptr<Segment>>* out) {
    uint64_t freed = 0;
    while (freed < bytes && !dirty_.empty()) {
      freed += dirty_.front()->size();
      out->push_back(std::move(dirty_.front()));
      dirty_.pop_front();
    }
    while (freed < bytes && !clean_.empty()) {
      auto it = std::prev(clean_.end());  // largest first: fewest munmaps
      freed += it->first;
      out->push_back(std::move(it->second));
      clean_.erase(it);
    }
    pooled_ -= std::min(pooled_, freed);
    if (dirty_.empty()) idle_cv_.notify_all();  // DrainCleaner may wait for what was dropped
  }

  void CleanerLoop() {
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      cv_.wait(lock, [this] { return stop_ || !dirty_.empty(); });
      if (stop_) return;
      std::unique_ptr<Segment> seg = std::move(dirty_.front());
      dirty_.pop_front();
      cleaning_ = true;
      lock.unlock();
      seg->Zero();
      lock.lock();
      cleaning_ = false;
      if (used_ + pooled_ > options_.capacity_bytes) {
        // A create charged its bytes while this segment was in flight and could not be given
        // up: give it up now, so that used + pooled never stays above the capacity.
        pooled_ -= seg->size();
        lock.unlock();
        seg.reset();
        lock.lock();
      } else {
        clean_.emplace(seg->size(), std::move(seg));
      }
      if (dirty_.empty()) idle_cv_.notify_all();
    }
  }

  const MemoryStoreOptions options_;
  bool thp_ = false;      // memfds get transparent huge pages (with MADV_HUGEPAGE)
  bool hugetlb_ = false;  // reserved 2 MiB pages were free at start
  std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable idle_cv_;
  uint64_t used_ = 0;
  uint64_t pooled_ = 0;
  uint64_t created_ = 0;
  uint64_t reused_ = 0;
  bool stop_ = false;
  bool cleaning_ = false;
  std::multimap<uint64_t, std::unique_ptr<Segment>> clean_;  // by size
  std::deque<std::unique_ptr<Segment>> dirty_;               // freed, not yet zeroed
  std::thread cleaner_;
};

namespace {

class HeapBlob final : public MemoryBlob {
 public:
  HeapBlob(std::shared_ptr<MemoryStore::State> state, uint64_t size)
      : MemoryBlob(size), state_(std::move(state)), bytes_(new std::byte[size]()) {}
  ~HeapBlob() override { state_->Uncharge(size()); }

  std::string_view kind() const override { return "heap"; }
  std::span<std::byte> bytes() override { return {bytes_.get(), size()}; }
  Result<BlobExport> Export(LeaseMode) override { return BlobExport{}; }

 private:
  std::shared_ptr<MemoryStore::State> state_;
  std::unique_ptr<std::byte[]> bytes_;
};

class ShmBlob final : public MemoryBlob {
 public:
  ShmBlob(std::shared_ptr<MemoryStore::State> state, std::unique_ptr<Segment> seg, uint64_t size)
      : MemoryBlob(size), state_(std::move(state)), seg_(std::move(seg)) {}
  ~ShmBlob() override { state_->Release(std::move(seg_), !retired_.load()); }

  std::string_view kind() const override { return "memory"; }
  std::span<std::byte> bytes() override { return {seg_->data(), size()}; }
  Result<BlobExport> Export(LeaseMode mode) override {
    BlobExport ex;
    ex.kind = BlobExport::Kind::kFd;
    ex.fd = UniqueFd(
        fcntl(mode == LeaseMode::kRead ? seg_->fd_ro() : seg_->fd_rw(), F_DUPFD_CLOEXEC, 0));
    if (!ex.fd.valid()) return ErrnoError("dup", errno);
    // A hugetlb mapping covers whole 2 MiB pages.
    ex.map_size = seg_->huge() ? seg_->size() : RoundUpToPage(size());
    ex.huge_pages = seg_->huge();
    return ex;
  }
  void Retire() override { retired_.store(true); }

 private:
  std::shared_ptr<MemoryStore::State> state_;
  std::unique_ptr<Segment> seg_;
  std::atomic<bool> retired_{false};
};

// An in-process view of a memory blob: its own bytes, kept alive by the view.
class AliasView final : public BlobView {
 public:
  explicit AliasView(std::shared_ptr<MemoryBlob> blob) : blob_(std::move(blob)) {}
  std::span<std::byte> bytes() override { return blob_->bytes(); }

 private:
  std::shared_ptr<MemoryBlob> blob_;
};

Status CheckRange(uint64_t offset, uint64_t length, uint64_t size) {
  if (offset > size || length > size - offset) {
    return InvalidArgument("range [" + std::to_string(offset) + ", +" + std::to_string(length) +
                           ") outside an object of " + std::to_string(size) + " bytes");
  }
  return Status::Ok();
}

}  // namespace

MemoryStore::MemoryStore(MemoryStoreOptions options) : state_(std::make_shared<State>(options)) {
  if (options.cleaner_thread) state_->StartCleaner();
}

MemoryStore::~MemoryStore() { state_->Stop(); }

uint64_t MemoryStore::ChargeFor(uint64_t size) const {
  return size <= state_->options().small_object_bytes ? size : RoundUpToPage(size);
}

Status MemoryBlob::Write(uint64_t offset, std::span<const std::byte> data) {
  PACKICE_RETURN_IF_ERROR(CheckRange(offset, data.size(), size()));
  if (!data.empty()) std::memcpy(bytes().data() + offset, data.data(), data.size());
  return Status::Ok();
}

Status MemoryBlob::Read(uint64_t offset, std::span<std::byte> out) {
  PACKICE_RETURN_IF_ERROR(CheckRange(offset, out.size(), size()));
  if (!out.empty()) std::memcpy(out.data(), bytes().data() + offset, out.size());
  return Status::Ok();
}

Result<std::shared_ptr<BlobView>> MemoryBlob::OpenView(LeaseMode) {
  return std::shared_ptr<BlobView>(std::make_shared<AliasView>(shared_from_this()));
}

uint64_t MemoryStore::capacity_bytes() const { return state_->options().capacity_bytes; }

Result<std::shared_ptr<Blob>> MemoryStore::Allocate(const ObjectInfo& info) {
  PACKICE_ASSIGN_OR_RETURN(std::shared_ptr<MemoryBlob> blob, Allocate(info.size));
  return std::shared_ptr<Blob>(std::move(blob));
}

StoreStats MemoryStore::GetStats() const {
  Stats s = state_->GetStats();
  return StoreStats{s.used_bytes, s.pooled_bytes, s.capacity_bytes};
}

Result<std::shared_ptr<MemoryBlob>> MemoryStore::Allocate(uint64_t size) {
  // Also keeps the page rounding below from overflowing.
  if (size > state_->options().capacity_bytes) {
    return OutOfCapacity("object of " + std::to_string(size) + " bytes exceeds the capacity of " +
                         std::to_string(state_->options().capacity_bytes));
  }
  if (size <= state_->options().small_object_bytes) {
    PACKICE_RETURN_IF_ERROR(state_->Charge(size));
    return std::shared_ptr<MemoryBlob>(std::make_shared<HeapBlob>(state_, size));
  }
  const SegmentPages pages = state_->PagesFor(size);
  const uint64_t seg_size = SegmentSize(size, pages);
  std::unique_ptr<Segment> seg = state_->TakePooled(seg_size);
  if (seg == nullptr) {
    PACKICE_RETURN_IF_ERROR(state_->Charge(seg_size));
    auto made = Segment::Make(seg_size, pages);
    if (!made.ok() && pages == SegmentPages::kHugetlb) {
      // The reserved pages ran out: 4 KiB-page memory (with THP where the kernel has it).
      state_->Uncharge(seg_size);
      const SegmentPages fallback = state_->PagesFor(size, /*hugetlb=*/false);
      const uint64_t small_size = SegmentSize(size, fallback);
      PACKICE_RETURN_IF_ERROR(state_->Charge(small_size));
      made = Segment::Make(small_size, fallback);
      if (!made.ok()) state_->Uncharge(small_size);
    } else if (!made.ok()) {
      state_->Uncharge(seg_size);
    }
    PACKICE_RETURN_IF_ERROR(made.status());
    seg = std::move(made).value();
    state_->NoteCreated();
  }
  return std::shared_ptr<MemoryBlob>(std::make_shared<ShmBlob>(state_, std::move(seg), size));
}

MemoryStore::Stats MemoryStore::GetMemoryStats() const { return state_->GetStats(); }

void MemoryStore::DrainCleaner() { state_->DrainCleaner(); }

}  // namespace packice
