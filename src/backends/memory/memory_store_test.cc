#include "backends/memory/memory_store.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "core/huge_pages.h"
#include "core/mapped_view.h"
#include "testing.h"

namespace packice {
namespace {

uint64_t Page() { return static_cast<uint64_t>(sysconf(_SC_PAGESIZE)); }

bool AllZero(std::span<const std::byte> bytes) {
  return std::all_of(bytes.begin(), bytes.end(), [](std::byte b) { return b == std::byte{0}; });
}

bool AllEqual(std::span<const std::byte> bytes, std::byte value) {
  return std::all_of(bytes.begin(), bytes.end(), [value](std::byte b) { return b == value; });
}

void Fill(std::span<std::byte> bytes, std::byte value) {
  std::fill(bytes.begin(), bytes.end(), value);
}

// Small objects up to 1 KiB, a capacity of 32 pages, the pool as big as the capacity.
MemoryStoreOptions SmallStore(bool cleaner_thread) {
  MemoryStoreOptions o;
  o.capacity_bytes = 32 * Page();
  o.small_object_bytes = 1024;
  o.pool_bytes = o.capacity_bytes;
  o.cleaner_thread = cleaner_thread;
  return o;
}

std::shared_ptr<MemoryBlob> MustAllocate(MemoryStore& store, uint64_t size) {
  auto r = store.Allocate(size);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? std::move(r).value() : nullptr;
}

// --- kinds and sizes -----------------------------------------------------------------------

TEST(MemoryStoreTest, SmallObjectIsAHeapBlobExportedInline) {
  MemoryStore store(SmallStore(false));
  auto blob = MustAllocate(store, 100);
  ASSERT_NE(blob, nullptr);
  EXPECT_EQ(blob->kind(), "heap");
  EXPECT_EQ(blob->bytes().size(), 100u);
  for (LeaseMode mode : {LeaseMode::kRead, LeaseMode::kCreate}) {
    BlobExport e = blob->Export(mode).value();
    EXPECT_EQ(e.kind, BlobExport::Kind::kInline);
    EXPECT_EQ(e.fd.get(), -1);
    EXPECT_EQ(e.map_size, 0u);
  }
  EXPECT_EQ(store.ChargeFor(100), 100u);
  EXPECT_EQ(store.GetMemoryStats().used_bytes, 100u);
  EXPECT_EQ(store.GetMemoryStats().segments_created, 0u);
}

TEST(MemoryStoreTest, SmallObjectBytesIsTheLastHeapSize) {
  MemoryStore store(SmallStore(false));
  auto at_limit = MustAllocate(store, 1024);
  auto above = MustAllocate(store, 1025);
  ASSERT_NE(at_limit, nullptr);
  ASSERT_NE(above, nullptr);
  EXPECT_EQ(at_limit->kind(), "heap");
  EXPECT_EQ(above->kind(), "memory");
  EXPECT_EQ(store.ChargeFor(1024), 1024u);
  EXPECT_EQ(store.ChargeFor(1025), Page());
}

TEST(MemoryStoreTest, LargeObjectIsAMemfdWithPageRoundedMapSize) {
  MemoryStore store(SmallStore(false));
  const uint64_t size = 2 * Page() + 1;
  auto blob = MustAllocate(store, size);
  ASSERT_NE(blob, nullptr);
  EXPECT_EQ(blob->kind(), "memory");
  EXPECT_EQ(blob->bytes().size(), size);
  BlobExport rd = blob->Export(LeaseMode::kRead).value();
  BlobExport wr = blob->Export(LeaseMode::kCreate).value();
  EXPECT_EQ(rd.kind, BlobExport::Kind::kFd);
  EXPECT_EQ(wr.kind, BlobExport::Kind::kFd);
  EXPECT_GE(rd.fd.get(), 0);
  EXPECT_GE(wr.fd.get(), 0);
  EXPECT_NE(rd.fd.get(), wr.fd.get());
  EXPECT_EQ(rd.map_size, 3 * Page());
  EXPECT_EQ(wr.map_size, 3 * Page());
  EXPECT_EQ(fcntl(rd.fd.get(), F_GETFL) & O_ACCMODE, O_RDONLY);
  EXPECT_EQ(fcntl(wr.fd.get(), F_GETFL) & O_ACCMODE, O_RDWR);
  struct stat st {};
  ASSERT_EQ(fstat(rd.fd.get(), &st), 0);
  EXPECT_GE(static_cast<uint64_t>(st.st_size), rd.map_size);

  EXPECT_EQ(store.ChargeFor(size), 3 * Page());
  MemoryStore::Stats s = store.GetMemoryStats();
  EXPECT_EQ(s.used_bytes, 3 * Page());
  EXPECT_EQ(s.segments_created, 1u);
  EXPECT_EQ(s.segments_reused, 0u);
}

TEST(MemoryStoreTest, ExactPageMultipleIsNotRoundedFurther) {
  MemoryStore store(SmallStore(false));
  auto blob = MustAllocate(store, 4 * Page());
  ASSERT_NE(blob, nullptr);
  EXPECT_EQ(blob->Export(LeaseMode::kRead).value().map_size, 4 * Page());
  EXPECT_EQ(store.GetMemoryStats().used_bytes, 4 * Page());
}

TEST(MemoryStoreTest, ZeroSizeIsAnEmptyHeapBlob) {
  MemoryStore store(SmallStore(false));
  auto blob = MustAllocate(store, 0);
  ASSERT_NE(blob, nullptr);
  EXPECT_EQ(blob->kind(), "heap");
  EXPECT_TRUE(blob->bytes().empty());
  EXPECT_EQ(store.GetMemoryStats().used_bytes, 0u);
}

TEST(MemoryStoreTest, FreeingReturnsTheCharge) {
  MemoryStore store(SmallStore(false));
  auto heap = MustAllocate(store, 500);
  auto shm = MustAllocate(store, 2 * Page());
  EXPECT_EQ(store.GetMemoryStats().used_bytes, 500 + 2 * Page());
  heap.reset();
  EXPECT_EQ(store.GetMemoryStats().used_bytes, 2 * Page());
  shm.reset();
  EXPECT_EQ(store.GetMemoryStats().used_bytes, 0u);
  EXPECT_EQ(store.GetMemoryStats().pooled_bytes, 2 * Page());  // kept for reuse
}

// --- capacity ------------------------------------------------------------------------------

TEST(MemoryStoreTest, ObjectLargerThanCapacityIsOutOfCapacity) {
  MemoryStore store(SmallStore(false));
  const uint64_t cap = store.GetMemoryStats().capacity_bytes;
  EXPECT_CODE(store.Allocate(cap + 1), kOutOfCapacity);
  EXPECT_CODE(store.Allocate(std::numeric_limits<uint64_t>::max()), kOutOfCapacity);
  EXPECT_CODE(store.Allocate(std::numeric_limits<uint64_t>::max() - Page() / 2), kOutOfCapacity);
  EXPECT_EQ(store.GetMemoryStats().used_bytes, 0u);
  EXPECT_EQ(store.GetMemoryStats().segments_created, 0u);
  // Exactly the capacity fits.
  EXPECT_NE(MustAllocate(store, cap), nullptr);
}

TEST(MemoryStoreTest, FullStoreFailsWithAClearMessageAndRecovers) {
  MemoryStore store(SmallStore(false));
  const uint64_t cap = store.GetMemoryStats().capacity_bytes;
  auto big = MustAllocate(store, cap - 2 * Page());
  ASSERT_NE(big, nullptr);
  auto r = store.Allocate(3 * Page());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kOutOfCapacity);
  const std::string msg(r.status().message());
  EXPECT_NE(msg.find("need " + std::to_string(3 * Page()) + " bytes"), std::string::npos) << msg;
  EXPECT_NE(msg.find(std::to_string(2 * Page()) + " of " + std::to_string(cap) + " free"),
            std::string::npos)
      << msg;
  // A failed allocation charges nothing.
  EXPECT_EQ(store.GetMemoryStats().used_bytes, cap - 2 * Page());

  // Fill the rest with small heap blobs, to the byte.
  std::vector<std::shared_ptr<MemoryBlob>> small;
  for (uint64_t left = 2 * Page(); left > 0;) {
    const uint64_t n = std::min<uint64_t>(left, 1000);
    small.push_back(MustAllocate(store, n));
    ASSERT_NE(small.back(), nullptr);
    left -= n;
  }
  EXPECT_EQ(store.GetMemoryStats().used_bytes, cap);
  EXPECT_CODE(store.Allocate(1), kOutOfCapacity);
  EXPECT_CODE(store.Allocate(Page() + 1), kOutOfCapacity);
  EXPECT_NE(MustAllocate(store, 0), nullptr);  // nothing still fits

  small.pop_back();
  EXPECT_NE(MustAllocate(store, 1), nullptr);
  big.reset();
  EXPECT_NE(MustAllocate(store, 3 * Page()), nullptr);
}

// --- the pool: reuse, zeroing, giving bytes back -------------------------------------------

class MemoryStorePoolTest : public ::testing::TestWithParam<bool> {
 protected:
  bool cleaner_thread() const { return GetParam(); }
};

TEST_P(MemoryStorePoolTest, FreedSegmentIsReusedAndZeroedFirst) {
  MemoryStore store(SmallStore(cleaner_thread()));
  const uint64_t size = 3 * Page() + 10;
  auto blob = MustAllocate(store, size);
  ASSERT_NE(blob, nullptr);
  const std::byte* data = blob->bytes().data();
  Fill(blob->bytes(), std::byte{0xAB});
  blob.reset();
  store.DrainCleaner();
  MemoryStore::Stats s = store.GetMemoryStats();
  EXPECT_EQ(s.used_bytes, 0u);
  EXPECT_EQ(s.pooled_bytes, 4 * Page());

  auto again = MustAllocate(store, size);
  ASSERT_NE(again, nullptr);
  s = store.GetMemoryStats();
  EXPECT_EQ(s.segments_created, 1u);
  EXPECT_EQ(s.segments_reused, 1u);
  EXPECT_EQ(s.pooled_bytes, 0u);
  EXPECT_EQ(s.used_bytes, 4 * Page());
  // The same memory, and none of the earlier object's bytes — not even past the object's end.
  ASSERT_EQ(again->bytes().data(), data);
  EXPECT_EQ(again->bytes().size(), size);
  EXPECT_TRUE(AllZero({again->bytes().data(), 4 * Page()}));

  // Also through a mapping of the exported descriptor.
  BlobExport e = again->Export(LeaseMode::kRead).value();
  void* p = mmap(nullptr, e.map_size, PROT_READ, MAP_SHARED, e.fd.get(), 0);
  ASSERT_NE(p, MAP_FAILED) << errno;
  EXPECT_TRUE(AllZero({static_cast<const std::byte*>(p), e.map_size}));
  munmap(p, e.map_size);
}

TEST_P(MemoryStorePoolTest, SegmentReusedWithoutDrainingIsZeroToo) {
  // Without DrainCleaner the segment may still be dirty: the allocation must zero it itself.
  MemoryStore store(SmallStore(cleaner_thread()));
  for (int i = 0; i < 20; ++i) {
    auto blob = MustAllocate(store, 2 * Page());
    ASSERT_NE(blob, nullptr);
    ASSERT_TRUE(AllZero(blob->bytes())) << "round " << i;
    Fill(blob->bytes(), std::byte{static_cast<unsigned char>(i + 1)});
  }
  MemoryStore::Stats s = store.GetMemoryStats();
  EXPECT_EQ(s.segments_created + s.segments_reused, 20u);
  if (!cleaner_thread()) {
    EXPECT_EQ(s.segments_created, 1u);
  } else {
    // A segment the cleaner is zeroing at that moment is not available, so a second one may be
    // made; with two, one is always available.
    EXPECT_LE(s.segments_created, 2u);
  }
}

TEST_P(MemoryStorePoolTest, SlightlyLargerSegmentIsReusedButNotAMuchLargerOne) {
  MemoryStore store(SmallStore(cleaner_thread()));
  MustAllocate(store, 9 * Page()).reset();  // pooled: one 9-page segment
  store.DrainCleaner();
  // 9 pages is within 1/8 of 8 pages: reused, and charged what it really holds.
  auto eight = MustAllocate(store, 8 * Page());
  ASSERT_NE(eight, nullptr);
  EXPECT_EQ(store.GetMemoryStats().segments_reused, 1u);
  EXPECT_EQ(eight->bytes().size(), 8 * Page());
  EXPECT_EQ(eight->Export(LeaseMode::kRead).value().map_size, 8 * Page());
  EXPECT_EQ(store.GetMemoryStats().used_bytes, 9 * Page());
  eight.reset();
  store.DrainCleaner();
  EXPECT_EQ(store.GetMemoryStats().used_bytes, 0u);
  EXPECT_EQ(store.GetMemoryStats().pooled_bytes, 9 * Page());
  // 9 pages is more than 1/8 above 7 pages, and smaller segments never serve larger requests.
  auto seven = MustAllocate(store, 7 * Page());
  auto ten = MustAllocate(store, 10 * Page());
  EXPECT_EQ(store.GetMemoryStats().segments_reused, 1u);
  EXPECT_EQ(store.GetMemoryStats().segments_created, 3u);
}

TEST_P(MemoryStorePoolTest, PooledBytesAreGivenUpWhenAnAllocationNeedsTheRoom) {
  MemoryStore store(SmallStore(cleaner_thread()));
  const uint64_t cap = store.GetMemoryStats().capacity_bytes;
  {
    // Fill the whole capacity with segments, then free them all into the pool.
    std::vector<std::shared_ptr<MemoryBlob>> blobs;
    for (int i = 0; i < 4; ++i) blobs.push_back(MustAllocate(store, cap / 4));
  }
  store.DrainCleaner();
  ASSERT_EQ(store.GetMemoryStats().pooled_bytes, cap);
  ASSERT_EQ(store.GetMemoryStats().used_bytes, 0u);

  // A size no pooled segment fits: a new segment, paid for with pooled bytes.
  auto other = MustAllocate(store, cap / 2 + Page());
  ASSERT_NE(other, nullptr);
  MemoryStore::Stats s = store.GetMemoryStats();
  EXPECT_EQ(s.segments_reused, 0u);
  EXPECT_EQ(s.segments_created, 5u);
  EXPECT_EQ(s.used_bytes, cap / 2 + Page());
  EXPECT_LE(s.used_bytes + s.pooled_bytes, cap);
  EXPECT_EQ(s.pooled_bytes, cap / 4);  // one of the four quarters was enough to keep

  // Live and pooled bytes now fill the capacity exactly (7 pages: too small for the pooled
  // 8-page segment to be reused).
  auto seven = MustAllocate(store, cap / 4 - Page());
  ASSERT_NE(seven, nullptr);
  s = store.GetMemoryStats();
  EXPECT_EQ(s.used_bytes + s.pooled_bytes, cap);
  EXPECT_EQ(s.segments_reused, 0u);
  // So a heap allocation too takes its room from the pool.
  auto heap = MustAllocate(store, 1000);
  ASSERT_NE(heap, nullptr);
  s = store.GetMemoryStats();
  EXPECT_EQ(s.pooled_bytes, 0u);
  EXPECT_EQ(s.used_bytes, cap / 2 + Page() + cap / 4 - Page() + 1000);

  // Pooled bytes never make an allocation fail that the live bytes leave room for.
  other.reset();
  seven.reset();
  heap.reset();
  store.DrainCleaner();
  EXPECT_NE(MustAllocate(store, cap), nullptr);
}

TEST_P(MemoryStorePoolTest, PoolIsBoundedByPoolBytes) {
  MemoryStoreOptions o = SmallStore(cleaner_thread());
  o.pool_bytes = 4 * Page();
  MemoryStore store(o);
  MustAllocate(store, 6 * Page()).reset();  // bigger than the whole pool: unmapped
  store.DrainCleaner();
  EXPECT_EQ(store.GetMemoryStats().pooled_bytes, 0u);
  EXPECT_EQ(store.GetMemoryStats().used_bytes, 0u);
  {
    std::vector<std::shared_ptr<MemoryBlob>> blobs;
    for (int i = 0; i < 3; ++i) blobs.push_back(MustAllocate(store, 2 * Page()));
  }
  store.DrainCleaner();
  EXPECT_EQ(store.GetMemoryStats().pooled_bytes, 4 * Page());
}

TEST_P(MemoryStorePoolTest, RetiredBlobIsNotPooled) {
  MemoryStore store(SmallStore(cleaner_thread()));
  auto blob = MustAllocate(store, 2 * Page());
  ASSERT_NE(blob, nullptr);
  blob->Retire();
  blob.reset();
  store.DrainCleaner();
  EXPECT_EQ(store.GetMemoryStats().pooled_bytes, 0u);
  EXPECT_EQ(store.GetMemoryStats().used_bytes, 0u);
  auto next = MustAllocate(store, 2 * Page());
  EXPECT_EQ(store.GetMemoryStats().segments_reused, 0u);
  EXPECT_EQ(store.GetMemoryStats().segments_created, 2u);
}

TEST_P(MemoryStorePoolTest, BlobsOutliveTheStore) {
  std::shared_ptr<MemoryBlob> heap;
  std::shared_ptr<MemoryBlob> shm;
  {
    MemoryStore store(SmallStore(cleaner_thread()));
    heap = MustAllocate(store, 10);
    shm = MustAllocate(store, 2 * Page());
  }
  ASSERT_NE(shm, nullptr);
  Fill(shm->bytes(), std::byte{7});
  EXPECT_TRUE(AllEqual(shm->bytes(), std::byte{7}));
  heap.reset();
  shm.reset();  // returns its segment to a store nobody can reach: freed, no crash
}

TEST_P(MemoryStorePoolTest, ConcurrentAllocateAndFreeKeepAccountsStraight) {
  MemoryStore store(SmallStore(cleaner_thread()));
  const uint64_t cap = store.GetMemoryStats().capacity_bytes;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&store, t] {
      std::vector<std::shared_ptr<MemoryBlob>> held;
      for (int i = 0; i < 200; ++i) {
        const uint64_t size = (i % 3 == 0) ? 100 + i : (1 + (i + t) % 4) * Page();
        auto r = store.Allocate(size);
        if (r.ok()) {
          std::shared_ptr<MemoryBlob> b = std::move(r).value();
          if (!AllZero(b->bytes())) ADD_FAILURE() << "recycled bytes not zeroed";
          Fill(b->bytes(), std::byte{static_cast<unsigned char>(t + 1)});
          held.push_back(std::move(b));
        } else if (r.status().code() != StatusCode::kOutOfCapacity) {
          ADD_FAILURE() << r.status().ToString();
        }
        if (held.size() > 3) held.erase(held.begin());
      }
    });
  }
  for (auto& th : threads) th.join();
  store.DrainCleaner();
  MemoryStore::Stats s = store.GetMemoryStats();
  EXPECT_EQ(s.used_bytes, 0u);
  EXPECT_LE(s.pooled_bytes, cap);
  EXPECT_GT(s.segments_reused, 0u);
}

INSTANTIATE_TEST_SUITE_P(Cleaner, MemoryStorePoolTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? std::string("Thread") : std::string("Inline");
                         });

// --- read-only export ----------------------------------------------------------------------

class MemoryStoreExportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    blob_ = MustAllocate(store_, 2 * Page() + 100);
    ASSERT_NE(blob_, nullptr);
    ro_ = blob_->Export(LeaseMode::kRead).value();
    ASSERT_EQ(ro_.kind, BlobExport::Kind::kFd);
  }

  MemoryStore store_{SmallStore(false)};
  std::shared_ptr<MemoryBlob> blob_;
  BlobExport ro_;
};

TEST_F(MemoryStoreExportTest, ReadMappingSeesWritesThroughTheBlob) {
  void* p = mmap(nullptr, ro_.map_size, PROT_READ, MAP_SHARED, ro_.fd.get(), 0);
  ASSERT_NE(p, MAP_FAILED) << errno;
  auto mapped = std::span<const std::byte>(static_cast<const std::byte*>(p), ro_.map_size);
  EXPECT_TRUE(AllZero(mapped));
  Fill(blob_->bytes(), std::byte{0x5A});
  EXPECT_TRUE(AllEqual(mapped.first(blob_->bytes().size()), std::byte{0x5A}));
  blob_->bytes()[1] = std::byte{0x01};
  EXPECT_EQ(mapped[1], std::byte{0x01});
  munmap(p, ro_.map_size);
}

TEST_F(MemoryStoreExportTest, ReadDescriptorCannotBeMappedWritable) {
  errno = 0;
  void* p = mmap(nullptr, ro_.map_size, PROT_READ | PROT_WRITE, MAP_SHARED, ro_.fd.get(), 0);
  EXPECT_EQ(p, MAP_FAILED);
  EXPECT_EQ(errno, EACCES);
  if (p != MAP_FAILED) munmap(p, ro_.map_size);

  void* q = mmap(nullptr, ro_.map_size, PROT_READ, MAP_SHARED, ro_.fd.get(), 0);
  ASSERT_NE(q, MAP_FAILED) << errno;
  errno = 0;
  EXPECT_EQ(mprotect(q, ro_.map_size, PROT_READ | PROT_WRITE), -1);
  EXPECT_EQ(errno, EACCES);
  munmap(q, ro_.map_size);
}

TEST_F(MemoryStoreExportTest, ReadDescriptorCannotWriteOrResize) {
  const char c = 'x';
  EXPECT_EQ(pwrite(ro_.fd.get(), &c, 1, 0), -1);
  EXPECT_NE(ftruncate(ro_.fd.get(), 0), 0);
  EXPECT_TRUE(AllZero(blob_->bytes()));
}

TEST_F(MemoryStoreExportTest, CreateDescriptorWritesButCannotResizeTheSegment) {
  BlobExport rw = blob_->Export(LeaseMode::kCreate).value();
  void* p = mmap(nullptr, rw.map_size, PROT_READ | PROT_WRITE, MAP_SHARED, rw.fd.get(), 0);
  ASSERT_NE(p, MAP_FAILED) << errno;
  static_cast<std::byte*>(p)[5] = std::byte{0x42};
  EXPECT_EQ(blob_->bytes()[5], std::byte{0x42});
  munmap(p, rw.map_size);
  // Shrinking the file under the store's own mapping would crash the store with SIGBUS on its
  // next touch (zeroing for reuse); growing it would let a client charge memory nobody counts.
  errno = 0;
  EXPECT_EQ(ftruncate(rw.fd.get(), 0), -1);
  EXPECT_EQ(errno, EPERM);
  EXPECT_EQ(ftruncate(rw.fd.get(), static_cast<off_t>(64 * rw.map_size)), -1);
  blob_.reset();  // pooled and zeroed through the store's mapping: must not fault
  EXPECT_EQ(store_.GetMemoryStats().pooled_bytes, 3 * Page());
}

// A process that is handed the read-only descriptor must not get write access by reopening it
// through /proc/self/fd. Run in a child as an unprivileged user (root may open anything).
TEST_F(MemoryStoreExportTest, ReadDescriptorCannotBeReopenedWritable) {
  const std::string path = "/proc/self/fd/" + std::to_string(ro_.fd.get());
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0)) _exit(3);
    int fd = open(path.c_str(), O_RDWR);
    if (fd >= 0) _exit(1);
    _exit(errno == EACCES ? 0 : 2);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  if (WEXITSTATUS(status) == 3) GTEST_SKIP() << "cannot drop privileges";
  EXPECT_EQ(WEXITSTATUS(status), 0) << "1: reopened read-write; 2: failed with another error";
}

// --- 2 MiB pages ------------------------------------------------------------------------------

TEST(HugePagesTest, TheSelectedWordOfASysfsChoice) {
  EXPECT_EQ(SelectedWord("always within_size advise [never] deny force\n"), "never");
  EXPECT_EQ(SelectedWord("[always] inherit within_size advise never"), "always");
  EXPECT_EQ(SelectedWord(""), "");
  EXPECT_EQ(SelectedWord("no brackets"), "");
}

// Bytes of the mapping at `addr` that the kernel maps with 2 MiB entries (smaps).
uint64_t PmdMappedBytes(const void* addr) {
  std::ifstream smaps("/proc/self/smaps");
  const auto want = reinterpret_cast<uintptr_t>(addr);
  std::string line;
  bool in = false;
  uint64_t kb = 0;
  while (std::getline(smaps, line)) {
    uintptr_t lo = 0, hi = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx ", &lo, &hi) == 2 && line.find(':') > line.find(' ')) {
      in = lo <= want && want < hi;
      continue;
    }
    uint64_t n = 0;
    if (in && (std::sscanf(line.c_str(), "ShmemPmdMapped: %lu kB", &n) == 1 ||
               std::sscanf(line.c_str(), "FilePmdMapped: %lu kB", &n) == 1)) {
      kb += n;
    }
  }
  return kb * 1024;
}

// Sets shmem_enabled for the test's length (root only), restoring what was there.
class ShmemThpSetting {
 public:
  explicit ShmemThpSetting(const std::string& value) {
    old_ = SelectedWord(testing::ReadFile(kPath));
    ok_ = Write(value);
  }
  ~ShmemThpSetting() {
    if (ok_ && !old_.empty()) Write(old_);
  }
  bool ok() const { return ok_; }

 private:
  static constexpr const char* kPath = "/sys/kernel/mm/transparent_hugepage/shmem_enabled";
  static bool Write(const std::string& v) {
    std::ofstream f(kPath);
    f << v;
    f.flush();
    return static_cast<bool>(f);
  }
  std::string old_;
  bool ok_ = false;
};

TEST(HugePagesTest, LargeSegmentsAndTheirClientMappingsUse2MiBPagesWhereTheKernelAllows) {
  ShmemThpSetting advise("advise");
  if (!advise.ok()) GTEST_SKIP() << "cannot set shmem_enabled (not root, or no THP)";
  MemoryStore store(MemoryStoreOptions{.capacity_bytes = 64 << 20, .pool_bytes = 0});
  ASSERT_OK_AND_ASSIGN(auto blob, store.Allocate(8 << 20));
  std::memset(blob->bytes().data(), 'h', blob->size());
  EXPECT_EQ(PmdMappedBytes(blob->bytes().data()), 8u << 20) << "the node's own mapping";
  ASSERT_OK_AND_ASSIGN(BlobExport ex, blob->Export(LeaseMode::kRead));
  EXPECT_TRUE(ex.huge_pages);
  ASSERT_OK_AND_ASSIGN(auto view, MapView(ex.fd.get(), ex.offset, ex.map_size, blob->size(),
                                          /*writable=*/false, /*populate=*/true, ex.huge_pages));
  EXPECT_EQ(PmdMappedBytes(view->bytes().data()), 8u << 20) << "a client's mapping";
  EXPECT_EQ(static_cast<char>(view->bytes()[5 << 20]), 'h');
  // Smaller objects, and a store told not to, keep 4 KiB pages.
  ASSERT_OK_AND_ASSIGN(auto small, store.Allocate(1 << 20));
  ASSERT_OK_AND_ASSIGN(BlobExport small_ex, small->Export(LeaseMode::kRead));
  EXPECT_FALSE(small_ex.huge_pages);
  MemoryStore off(MemoryStoreOptions{
      .capacity_bytes = 64 << 20, .pool_bytes = 0, .huge_pages = HugePageMode::kOff});
  ASSERT_OK_AND_ASSIGN(auto plain, off.Allocate(8 << 20));
  std::memset(plain->bytes().data(), 'p', plain->size());
  EXPECT_EQ(PmdMappedBytes(plain->bytes().data()), 0u);
  ASSERT_OK_AND_ASSIGN(BlobExport plain_ex, plain->Export(LeaseMode::kRead));
  EXPECT_FALSE(plain_ex.huge_pages);
}

}  // namespace
}  // namespace packice
