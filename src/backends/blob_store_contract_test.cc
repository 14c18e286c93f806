// The BlobStore contract (src/backends/blob_store.h), one typed suite over every store: what
// Allocate, Commit, Remove and Recover do, what they charge, and what GetStats reports.
// Store-specific behaviour (memory segments and pooling, file layout and corruption) is tested
// beside each store. (SharedFSStore is not a BlobStore: the directory holds the whole object
// table, so it is tested through SharedFSPeer in the Peer contract.)
//
// A new store joins by adding a factory struct and one entry in StoreTypes.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "backends/blob_store.h"
#include "backends/file/file_store.h"
#include "backends/memory/memory_store.h"
#include "testing.h"

namespace packice {
namespace {

using testing::FakeClock;

constexpr uint64_t kCapacity = 1 << 20;

// Each factory has:
//   Open(dir, clock)  a store of kCapacity bytes in `dir` (the same dir again: a restart).
//   kTier             tier().
//   kDurable          Recover() returns what was committed before a restart; else nothing.
struct MemoryStoreFactory {
  static constexpr std::string_view kTier = "memory";
  static constexpr bool kDurable = false;
  static Result<std::unique_ptr<BlobStore>> Open(const std::string&, std::shared_ptr<Clock>) {
    MemoryStoreOptions o;
    o.capacity_bytes = kCapacity;
    o.small_object_bytes = 1024;
    o.pool_bytes = kCapacity;
    o.cleaner_thread = false;
    return std::unique_ptr<BlobStore>(std::make_unique<MemoryStore>(o));
  }
};

struct FileStoreFactory {
  static constexpr std::string_view kTier = "disk";
  static constexpr bool kDurable = true;
  static Result<std::unique_ptr<BlobStore>> Open(const std::string& dir,
                                                 std::shared_ptr<Clock> clock) {
    PACKICE_ASSIGN_OR_RETURN(std::unique_ptr<FileStore> store,
                             FileStore::Open(FileStoreOptions{dir, kCapacity, false, clock}));
    return std::unique_ptr<BlobStore>(std::move(store));
  }
};

using StoreTypes = ::testing::Types<MemoryStoreFactory, FileStoreFactory>;

class StoreTypeNames {
 public:
  template <typename T>
  static std::string GetName(int) {
    if (std::is_same_v<T, MemoryStoreFactory>) return "Memory";
    if (std::is_same_v<T, FileStoreFactory>) return "File";
    return "Unknown";
  }
};

uint64_t Page() { return static_cast<uint64_t>(sysconf(_SC_PAGESIZE)); }

std::vector<std::byte> Bytes(std::string_view s) {
  auto p = reinterpret_cast<const std::byte*>(s.data());
  return {p, p + s.size()};
}

std::string ReadAll(Blob& blob, uint64_t size) {
  std::string out(size, '\0');
  EXPECT_OK(blob.Read(0, std::as_writable_bytes(std::span(out))));
  return out;
}

template <typename F>
class BlobStoreContractTest : public ::testing::Test {
 protected:
  BlobStoreContractTest() { Reopen(); }

  // A restart: the store goes (REQUIRES: no blob of it is still held), and opens again.
  void Reopen() {
    store_.reset();
    auto store = F::Open(dir_.path() + "/store", clock_);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
  }

  ObjectInfo Info(std::string key, uint64_t size) {
    ObjectInfo info;
    info.key = std::move(key);
    info.version = ++last_version_;
    info.size = size;
    info.meta = {{"owner", "test"}};
    info.created_unix_ms = clock_->UnixMillis();
    info.state = ObjectState::kCreating;
    info.tier = std::string(F::kTier);
    return info;
  }

  // Allocates, writes `content` and commits it as sealed.
  std::shared_ptr<Blob> Put(const std::string& key, std::string_view content) {
    ObjectInfo info = Info(key, content.size());
    auto blob = store_->Allocate(info);
    EXPECT_OK(blob.status());
    if (!blob.ok()) return nullptr;
    if (!content.empty()) EXPECT_OK((*blob)->Write(0, Bytes(content)));
    info.state = ObjectState::kSealed;
    EXPECT_OK(store_->Commit(**blob, info));
    return *blob;
  }

  uint64_t Used() {
    store_->Quiesce();
    return store_->GetStats().used_bytes;
  }

  testing::TempDir dir_;
  std::shared_ptr<FakeClock> clock_ = std::make_shared<FakeClock>();
  uint64_t last_version_ = 0;
  std::unique_ptr<BlobStore> store_;
};

TYPED_TEST_SUITE(BlobStoreContractTest, StoreTypes, StoreTypeNames);

TYPED_TEST(BlobStoreContractTest, NamesItsTierAndCapacity) {
  EXPECT_EQ(this->store_->tier(), TypeParam::kTier);
  EXPECT_EQ(this->store_->capacity_bytes(), kCapacity);
  StoreStats s = this->store_->GetStats();
  EXPECT_EQ(s.capacity_bytes, kCapacity);
  EXPECT_EQ(s.used_bytes, 0u);
  for (uint64_t size : {uint64_t{1}, uint64_t{1000}, 5 * Page() + 7}) {
    EXPECT_GE(this->store_->ChargeFor(size), size);
    EXPECT_LE(this->store_->ChargeFor(size), this->store_->ChargeFor(size + Page()));
  }
}

TYPED_TEST(BlobStoreContractTest, AllocatedBlobIsZeroWritableAndCharged) {
  uint64_t charged = 0;
  std::vector<std::shared_ptr<Blob>> held;
  for (uint64_t size : {uint64_t{1}, uint64_t{1000}, 5 * Page() + 7}) {
    SCOPED_TRACE(size);
    auto blob = this->store_->Allocate(this->Info("a" + std::to_string(size), size));
    ASSERT_OK(blob.status());
    EXPECT_EQ((*blob)->size(), size);
    EXPECT_EQ(ReadAll(**blob, size), std::string(size, '\0'));
    ASSERT_OK((*blob)->Write(size - 1, Bytes("x")));
    EXPECT_EQ(ReadAll(**blob, size).back(), 'x');
    charged += this->store_->ChargeFor(size);
    EXPECT_EQ(this->Used(), charged);
    held.push_back(*blob);
  }
  // Writes and reads outside the object are refused, not clipped.
  EXPECT_CODE(held[0]->Write(0, Bytes("ab")), kInvalidArgument);
  EXPECT_CODE(held[1]->Write(1001, Bytes("")), kInvalidArgument);
  std::vector<std::byte> out(2);
  EXPECT_CODE(held[0]->Read(0, out), kInvalidArgument);
}

TYPED_TEST(BlobStoreContractTest, RemovedBlobKeepsItsBytesUntilItGoes) {
  auto blob = this->Put("r", "bytes");
  ASSERT_NE(blob, nullptr);
  EXPECT_GT(this->Used(), 0u);
  this->store_->Remove(*blob);
  EXPECT_EQ(ReadAll(*blob, 5), "bytes");  // a holder still reads it
  ASSERT_OK(blob->Export(LeaseMode::kRead).status());
  EXPECT_GT(this->Used(), 0u);
  this->store_->Remove(*blob);  // idempotent
  blob.reset();
  EXPECT_EQ(this->Used(), 0u);
}

TYPED_TEST(BlobStoreContractTest, DiscardedUnsealedBlobGivesBackItsCharge) {
  auto blob = this->store_->Allocate(this->Info("u", 3 * Page()));
  ASSERT_OK(blob.status());
  this->store_->Remove(**blob);
  blob->reset();
  EXPECT_EQ(this->Used(), 0u);
}

TYPED_TEST(BlobStoreContractTest, AllocationOverTheCapacityIsOutOfCapacity) {
  auto& store = this->store_;
  EXPECT_CODE(store->Allocate(this->Info("big", kCapacity + 1)), kOutOfCapacity);
  EXPECT_CODE(store->Allocate(this->Info("max", std::numeric_limits<uint64_t>::max())),
              kOutOfCapacity);
  EXPECT_CODE(store->Allocate(this->Info("max", std::numeric_limits<uint64_t>::max() - 100)),
              kOutOfCapacity);
  EXPECT_EQ(this->Used(), 0u);
  auto a = store->Allocate(this->Info("a", kCapacity * 5 / 8));
  ASSERT_OK(a.status());
  auto b = store->Allocate(this->Info("b", kCapacity * 5 / 8));  // does not fit beside a
  EXPECT_CODE(b, kOutOfCapacity);
  EXPECT_EQ(this->Used(), store->ChargeFor(kCapacity * 5 / 8));  // a failure charges nothing
  store->Remove(**a);
  a->reset();
  EXPECT_OK(store->Allocate(this->Info("b", kCapacity * 5 / 8)).status());
}

TYPED_TEST(BlobStoreContractTest, TruncatingCommitKeepsThePrefix) {
  ObjectInfo info = this->Info("t", 100);
  auto blob = this->store_->Allocate(info);
  ASSERT_OK(blob.status());
  ASSERT_OK((*blob)->Write(0, Bytes("abcdef")));
  info.size = 3;
  info.state = ObjectState::kSealed;
  ASSERT_OK(this->store_->Commit(**blob, info));
  EXPECT_EQ(ReadAll(**blob, 3), "abc");
  if constexpr (TypeParam::kDurable) {
    blob->reset();
    this->Reopen();
    auto recovered = this->store_->Recover();
    ASSERT_OK(recovered.status());
    ASSERT_EQ(recovered->size(), 1u);
    EXPECT_EQ((*recovered)[0].info.size, 3u);
    EXPECT_EQ(ReadAll(*(*recovered)[0].blob, 3), "abc");
  }
}

TYPED_TEST(BlobStoreContractTest, RecoverReturnsWhatWasCommittedAndNotRemoved) {
  {
    auto a = this->Put("a", "alpha");
    auto b = this->Put("b", std::string(100000, 'b'));
    auto gone = this->Put("gone", "removed");
    this->store_->Remove(*gone);
    auto pending = this->store_->Allocate(this->Info("pending", 10));  // never committed
    ASSERT_OK(pending.status());
  }
  this->Reopen();
  auto recovered = this->store_->Recover();
  ASSERT_OK(recovered.status());
  if constexpr (!TypeParam::kDurable) {
    EXPECT_TRUE(recovered->empty());
    EXPECT_EQ(this->Used(), 0u);
    return;
  }
  ASSERT_EQ(recovered->size(), 2u);
  std::sort(recovered->begin(), recovered->end(),
            [](const StoredObject& x, const StoredObject& y) { return x.info.key < y.info.key; });
  const ObjectInfo& a = (*recovered)[0].info;
  EXPECT_EQ(a.key, "a");
  EXPECT_EQ(a.version, 1u);
  EXPECT_EQ(a.size, 5u);
  EXPECT_EQ(a.tier, TypeParam::kTier);
  EXPECT_EQ(a.state, ObjectState::kSealed);
  EXPECT_EQ(a.meta.at("owner"), "test");
  EXPECT_EQ(ReadAll(*(*recovered)[0].blob, 5), "alpha");
  EXPECT_EQ((*recovered)[1].info.size, 100000u);
  EXPECT_EQ(ReadAll(*(*recovered)[1].blob, 100000), std::string(100000, 'b'));
  EXPECT_GE(this->Used(), this->store_->ChargeFor(5) + this->store_->ChargeFor(100000));
}

TYPED_TEST(BlobStoreContractTest, ReadExportAndViewCannotWrite) {
  const std::string content(3 * Page() + 5, 'm');
  auto blob = this->Put("m", content);
  ASSERT_NE(blob, nullptr);
  auto ex = blob->Export(LeaseMode::kRead);
  ASSERT_OK(ex.status());
  ASSERT_EQ(ex->kind, BlobExport::Kind::kFd);  // an object this large is mapped
  EXPECT_EQ(ex->offset % Page(), 0u);
  EXPECT_GE(ex->map_size, content.size());
  errno = 0;
  EXPECT_EQ(mmap(nullptr, ex->map_size, PROT_READ | PROT_WRITE, MAP_SHARED, ex->fd.get(),
                 static_cast<off_t>(ex->offset)),
            MAP_FAILED);
  EXPECT_EQ(errno, EACCES);
  void* r = mmap(nullptr, ex->map_size, PROT_READ, MAP_SHARED, ex->fd.get(),
                 static_cast<off_t>(ex->offset));
  ASSERT_NE(r, MAP_FAILED);
  EXPECT_EQ(std::string(static_cast<const char*>(r), content.size()), content);
  munmap(r, ex->map_size);

  auto view = blob->OpenView(LeaseMode::kRead);
  ASSERT_OK(view.status());
  EXPECT_EQ(std::string(reinterpret_cast<const char*>((*view)->bytes().data()), content.size()),
            content);
}

}  // namespace
}  // namespace packice
