#include "backends/file/file_store.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "core/fault_injection_env.h"
#include "core/io.h"
#include "testing.h"

namespace packice {
namespace {

namespace fs = std::filesystem;
using testing::FakeClock;
using testing::TempDir;

std::vector<std::byte> Bytes(std::string_view s) {
  auto p = reinterpret_cast<const std::byte*>(s.data());
  return {p, p + s.size()};
}

std::string ReadAll(Blob& blob, uint64_t size) {
  std::string out(size, '\0');
  EXPECT_TRUE(blob.Read(0, std::as_writable_bytes(std::span(out))).ok());
  return out;
}

size_t CountFiles(const std::string& dir) {
  size_t n = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir)) n += e.is_regular_file() ? 1 : 0;
  return n;
}

class FileStoreTest : public ::testing::Test {
 protected:
  std::unique_ptr<FileStore> Open(uint64_t capacity = 1ull << 30) {
    auto store = FileStore::Open(FileStoreOptions{dir_.path(), capacity, true, clock_});
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? std::move(store).value() : nullptr;
  }

  ObjectInfo Info(std::string key, uint64_t version, uint64_t size) {
    ObjectInfo info;
    info.key = std::move(key);
    info.version = version;
    info.size = size;
    info.meta = {{"owner", "test"}};
    info.created_unix_ms = clock_->UnixMillis();
    return info;
  }

  // Allocates, writes `content` and commits it as sealed.
  std::shared_ptr<Blob> Put(FileStore& store, ObjectInfo info, std::string_view content) {
    info.size = content.size();
    auto blob = store.Allocate(info);
    EXPECT_TRUE(blob.ok()) << blob.status().ToString();
    EXPECT_TRUE((*blob)->Write(0, Bytes(content)).ok());
    info.state = ObjectState::kSealed;
    EXPECT_TRUE(store.Commit(**blob, info).ok());
    return *blob;
  }

  std::shared_ptr<FakeClock> clock_ = std::make_shared<FakeClock>();
  TempDir dir_;
  TempDir crash_;  // a copy of dir_ taken mid-run: what a crash would leave
};

TEST_F(FileStoreTest, AllocatedBlobIsZeroAndWritable) {
  auto store = Open();
  auto blob = store->Allocate(Info("a", 1, 10000));
  ASSERT_OK(blob.status());
  EXPECT_EQ((*blob)->kind(), "file");
  EXPECT_EQ(ReadAll(**blob, 10000), std::string(10000, '\0'));
  ASSERT_OK((*blob)->Write(5000, Bytes("hello")));
  EXPECT_EQ(ReadAll(**blob, 10000).substr(4999, 7), std::string("\0hello\0", 7));
  EXPECT_TRUE(fs::exists(dir_.path() + "/tmp/0000000000000001.pko"));
}

TEST_F(FileStoreTest, CommitMovesIntoObjectsWithAHeader) {
  auto store = Open();
  auto blob = Put(*store, Info("k/1", 0x1ab, 0), "content");
  EXPECT_FALSE(fs::exists(dir_.path() + "/tmp/00000000000001ab.pko"));
  const std::string path = dir_.path() + "/objects/ab/00000000000001ab.pko";
  ASSERT_TRUE(fs::exists(path));
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto header = DecodeObjectFileHeader(std::as_bytes(std::span(bytes)));
  ASSERT_OK(header.status());
  EXPECT_EQ(header->info.key, "k/1");
  EXPECT_EQ(header->info.size, 7u);
  EXPECT_EQ(header->info.meta.at("owner"), "test");
  EXPECT_EQ(header->data_offset % PageSize(), 0u);
  EXPECT_EQ(bytes.substr(header->data_offset), "content");
  // Sealed content cannot be written any more.
  EXPECT_EQ(blob->Write(0, Bytes("x")).code(), StatusCode::kWrongState);
}

TEST_F(FileStoreTest, TruncatingCommitGivesBackTheCapacity) {
  auto store = Open(8 << 20);
  ObjectInfo info = Info("t", 2, 4 << 20);
  auto blob = store->Allocate(info);
  ASSERT_OK(blob.status());
  EXPECT_GT(store->GetStats().used_bytes, 4u << 20);
  info.size = 3;
  ASSERT_OK(store->Commit(**blob, info));
  // As much as a restart would count: the header's pages and one page of content.
  const uint64_t used = store->GetStats().used_bytes;
  EXPECT_LE(used, 2 * PageSize());
  // So another large object fits.
  EXPECT_OK(store->Allocate(Info("u", 3, 6 << 20)).status());
  blob->reset();
  EXPECT_EQ(store->GetStats().used_bytes, 0u);
}

TEST_F(FileStoreTest, WriteOutsideTheObjectIsRejected) {
  auto store = Open();
  auto blob = store->Allocate(Info("w", 3, 10));
  ASSERT_OK(blob.status());
  EXPECT_CODE((*blob)->Write(8, Bytes("abc")), kInvalidArgument);
  EXPECT_CODE((*blob)->Write(11, Bytes("")), kInvalidArgument);
  EXPECT_OK((*blob)->Write(7, Bytes("abc")));
  // The file did not grow past the object.
  EXPECT_EQ(fs::file_size(dir_.path() + "/tmp/0000000000000003.pko") % PageSize(), 10u);
}

TEST_F(FileStoreTest, RecoversSealedObjectsOnly) {
  {
    auto store = Open();
    Put(*store, Info("a", 1, 0), "alpha");
    Put(*store, Info("b", 2, 0), std::string(100000, 'b'));
    auto pending = store->Allocate(Info("c", 3, 10));  // never sealed
    ASSERT_OK(pending.status());
  }
  auto store = Open();
  auto recovered = store->Recover();
  ASSERT_OK(recovered.status());
  ASSERT_EQ(recovered->size(), 2u);
  EXPECT_EQ((*recovered)[0].info.key, "a");
  EXPECT_EQ((*recovered)[0].info.tier, "disk");
  EXPECT_EQ((*recovered)[0].info.state, ObjectState::kSealed);
  EXPECT_EQ(ReadAll(*(*recovered)[0].blob, 5), "alpha");
  EXPECT_EQ((*recovered)[1].info.size, 100000u);
  EXPECT_EQ(ReadAll(*(*recovered)[1].blob, 100000), std::string(100000, 'b'));
  EXPECT_EQ(CountFiles(dir_.path() + "/tmp"), 0u);
  EXPECT_GT(store->GetStats().used_bytes, 100000u);
}

TEST_F(FileStoreTest, RecoveryKeepsTheNewestVersionOfAKey) {
  {
    auto store = Open();
    Put(*store, Info("k", 5, 0), "old");
    Put(*store, Info("k", 9, 0), "new");  // a crash before the old file was removed
  }
  auto store = Open();
  auto recovered = store->Recover();
  ASSERT_OK(recovered.status());
  ASSERT_EQ(recovered->size(), 1u);
  EXPECT_EQ((*recovered)[0].info.version, 9u);
  EXPECT_EQ(ReadAll(*(*recovered)[0].blob, 3), "new");
  recovered->clear();  // the doomed old version goes with its blob
  EXPECT_FALSE(fs::exists(dir_.path() + "/objects/05/0000000000000005.pko"));
}

TEST_F(FileStoreTest, RecoveryDropsExpiredAndQuarantinesCorrupt) {
  {
    auto store = Open();
    ObjectInfo info = Info("ttl", 1, 0);
    info.ttl = std::chrono::seconds(10);
    info.expires_unix_ms = clock_->UnixMillis() + 10000;
    Put(*store, info, "soon gone");
    Put(*store, Info("good", 2, 0), "fine");
  }
  // A file with a broken header.
  std::ofstream(dir_.path() + "/objects/07/0000000000000007.pko") << "PKICEOB1 garbage";
  clock_->Advance(std::chrono::seconds(11));
  auto store = Open();
  auto recovered = store->Recover();
  ASSERT_OK(recovered.status());
  ASSERT_EQ(recovered->size(), 1u);
  EXPECT_EQ((*recovered)[0].info.key, "good");
  EXPECT_TRUE(fs::exists(dir_.path() + "/corrupt/0000000000000007.pko"));
  EXPECT_FALSE(fs::exists(dir_.path() + "/objects/01/0000000000000001.pko"));
}

TEST_F(FileStoreTest, RemoveDeletesWhenTheBlobGoes) {
  auto store = Open();
  auto blob = Put(*store, Info("r", 4, 0), "bytes");
  const std::string path = dir_.path() + "/objects/04/0000000000000004.pko";
  store->Remove(*blob);
  // Out of objects/ at once, so a crash cannot bring it back; a holder still reads it.
  EXPECT_FALSE(fs::exists(path));
  std::string dead;  // tmp/d<n>-0000000000000004.pko: a name of its own
  for (const auto& e : fs::directory_iterator(dir_.path() + "/tmp")) {
    if (e.path().filename().string().ends_with("-0000000000000004.pko")) dead = e.path();
  }
  ASSERT_FALSE(dead.empty());
  EXPECT_EQ(ReadAll(*blob, 5), "bytes");
  ASSERT_OK(blob->Export(LeaseMode::kRead).status());
  const uint64_t used = store->GetStats().used_bytes;
  EXPECT_GT(used, 0u);
  store->Remove(*blob);  // idempotent
  EXPECT_TRUE(fs::exists(dead));
  blob.reset();
  EXPECT_FALSE(fs::exists(dead));
  EXPECT_EQ(store->GetStats().used_bytes, 0u);
}

TEST_F(FileStoreTest, RemovedObjectIsNotRecoveredEvenWhileStillHeld) {
  std::shared_ptr<Blob> held;
  {
    auto store = Open();
    Put(*store, Info("kept", 1, 0), "kept");
    held = Put(*store, Info("gone", 2, 0), "gone");
    store->Remove(*held);
    // A crash now: the directory as it is, opened by a new store.
    fs::copy(dir_.path(), crash_.path(), fs::copy_options::recursive);
  }
  auto store = FileStore::Open(FileStoreOptions{crash_.path(), 1ull << 30, true, clock_});
  ASSERT_OK(store.status());
  auto recovered = (*store)->Recover();
  ASSERT_OK(recovered.status());
  ASSERT_EQ(recovered->size(), 1u);
  EXPECT_EQ((*recovered)[0].info.key, "kept");
  EXPECT_EQ(CountFiles(crash_.path() + "/tmp"), 0u);
}

TEST_F(FileStoreTest, DiscardedUnsealedObjectLeavesNothing) {
  auto store = Open();
  auto blob = store->Allocate(Info("u", 6, 4096));
  ASSERT_OK(blob.status());
  store->Remove(**blob);
  blob->reset();
  EXPECT_EQ(CountFiles(dir_.path() + "/tmp"), 0u);
}

TEST_F(FileStoreTest, DirectoryIsLocked) {
  auto store = Open();
  auto second = FileStore::Open(FileStoreOptions{dir_.path(), 1 << 20, true, clock_});
  EXPECT_CODE(second, kAlreadyExists);
}

TEST_F(FileStoreTest, CreateViewWritesTheFile) {
  auto store = Open();
  ObjectInfo info = Info("w", 10, 5);
  auto blob = store->Allocate(info);
  ASSERT_OK(blob.status());
  auto view = (*blob)->OpenView(LeaseMode::kCreate);
  ASSERT_OK(view.status());
  std::memcpy((*view)->bytes().data(), "12345", 5);
  view->reset();
  info.state = ObjectState::kSealed;
  ASSERT_OK(store->Commit(**blob, info));
  EXPECT_EQ(ReadAll(**blob, 5), "12345");
}

// --- faults and crashes (core/fault_injection_env.h) -----------------------------------------

class FileStoreFaultTest : public FileStoreTest {
 protected:
  using Fault = FaultInjectionEnv::Fault;
  using Op = FaultInjectionEnv::Op;

  std::unique_ptr<FileStore> OpenFaulty() {
    auto store = FileStore::Open(FileStoreOptions{dir_.path(), 1ull << 30, true, clock_, env_});
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? std::move(store).value() : nullptr;
  }
  // Opens the directory again after a crash and recovers it: the keys and contents found.
  std::map<std::string, std::string> Restart() {
    auto store = OpenFaulty();
    auto recovered = store->Recover();
    EXPECT_OK(recovered.status());
    std::map<std::string, std::string> found;
    for (StoredObject& obj : *recovered) found[obj.info.key] = ReadAll(*obj.blob, obj.info.size);
    // Recovery left no unsealed file behind.
    EXPECT_EQ(CountFiles(dir_.path() + "/tmp"), 0u);
    EXPECT_EQ(CountFiles(dir_.path() + "/objects"), found.size());
    return found;
  }
  // A seal that fails, followed by what the peer does: the blob is removed and let go. No
  // capacity stays charged.
  void ExpectFailedSeal(FileStore& store, ObjectInfo info, std::string_view content) {
    info.size = content.size();
    auto blob = store.Allocate(info);
    ASSERT_OK(blob.status());
    ASSERT_OK((*blob)->Write(0, Bytes(content)));
    info.state = ObjectState::kSealed;
    EXPECT_CODE(store.Commit(**blob, info), kInternal);
    store.Remove(**blob);
    blob->reset();
    EXPECT_EQ(store.GetStats().used_bytes, 0u);
  }

  std::shared_ptr<FaultInjectionEnv> env_ = std::make_shared<FaultInjectionEnv>();
};

TEST_F(FileStoreFaultTest, SealWhoseFdatasyncFailsLeavesNothing) {
  {
    auto store = OpenFaulty();
    env_->InjectFault(Fault{.op = Op::kSyncData, .error = EIO});
    ExpectFailedSeal(*store, Info("k", 1, 0), "never durable");
    EXPECT_EQ(env_->faults_hit(), 1);
    EXPECT_EQ(CountFiles(dir_.path() + "/tmp"), 0u);
  }
  EXPECT_TRUE(Restart().empty());
  ASSERT_OK(env_->SimulateCrash());
  EXPECT_TRUE(Restart().empty());
}

TEST_F(FileStoreFaultTest, SealWhoseDirectorySyncFailsLeavesNothing) {
  {
    auto store = OpenFaulty();
    Put(*store, Info("before", 1, 0), "kept");
    env_->InjectFault(Fault{.op = Op::kSyncDir, .error = EIO, .path_part = "/objects/"});
    ExpectFailedSeal(*store, Info("k", 2, 0), "renamed, not durable");
  }
  EXPECT_EQ(Restart(), (std::map<std::string, std::string>{{"before", "kept"}}));
  ASSERT_OK(env_->SimulateCrash());
  EXPECT_EQ(Restart(), (std::map<std::string, std::string>{{"before", "kept"}}));
}

TEST_F(FileStoreFaultTest, NoSpaceMidWriteIsAnErrorAndLeavesNothing) {
  {
    auto store = OpenFaulty();
    ObjectInfo info = Info("full", 1, 100000);
    auto blob = store->Allocate(info);
    ASSERT_OK(blob.status());
    env_->SetShortWrites(4096);  // the write goes in pieces; the third finds the disk full
    env_->InjectFault(Fault{.op = Op::kWrite, .error = ENOSPC, .skip = 2, .count = -1});
    Status s = (*blob)->Write(0, Bytes(std::string(100000, 'x')));
    EXPECT_CODE(s, kInternal);
    EXPECT_NE(s.message().find(std::strerror(ENOSPC)), std::string::npos) << s.ToString();
    store->Remove(**blob);  // the peer discards the object
    blob->reset();
    EXPECT_EQ(store->GetStats().used_bytes, 0u);
    env_->ClearFaults();
  }
  EXPECT_TRUE(Restart().empty());
}

TEST_F(FileStoreFaultTest, AcknowledgedSealSurvivesACrash) {
  const std::string big = testing::PatternString(300000, 7);
  {
    auto store = OpenFaulty();  // a fresh directory: its layout must survive too
    Put(*store, Info("small", 1, 0), "small object");
    Put(*store, Info("big", 2, 0), big);
    auto pending = store->Allocate(Info("pending", 3, 10));  // written, never sealed
    ASSERT_OK(pending.status());
    ASSERT_OK((*pending)->Write(0, Bytes("unsealed!!")));
  }
  ASSERT_OK(env_->SimulateCrash());
  auto found = Restart();
  EXPECT_EQ(found.size(), 2u);
  EXPECT_EQ(found["small"], "small object");
  EXPECT_TRUE(found["big"] == big);  // no dump of 300 KB on failure
}

TEST_F(FileStoreFaultTest, CrashBeforeTheSealsSyncLeavesNoTrace) {
  for (Op op : {Op::kSyncData, Op::kSyncDir}) {
    SCOPED_TRACE(op == Op::kSyncData ? "crash at fdatasync" : "crash at the directory fsync");
    {
      auto store = OpenFaulty();
      Put(*store, Info("kept", 1, 0), "kept");
      // The machine stops at the seal's sync: nothing after it reaches the disk.
      env_->InjectFault(
          Fault{.op = op, .path_part = op == Op::kSyncDir ? "/objects/" : "", .crash = true});
      ExpectFailedSeal(*store, Info("lost", 2, 0), std::string(50000, 'l'));
      EXPECT_TRUE(env_->down());
    }
    ASSERT_OK(env_->SimulateCrash());
    EXPECT_EQ(Restart(), (std::map<std::string, std::string>{{"kept", "kept"}}));
  }
}

TEST_F(FileStoreFaultTest, ShortWritesAreFinished) {
  const std::string content = testing::PatternString(100000, 3);
  {
    auto store = OpenFaulty();
    env_->SetShortWrites(777);  // every write, data and header, goes in short pieces
    Put(*store, Info("k", 1, 0), content);
    EXPECT_GT(env_->faults_hit(), 100);
  }
  ASSERT_OK(env_->SimulateCrash());
  env_->ClearFaults();
  EXPECT_TRUE(Restart() == (std::map<std::string, std::string>{{"k", content}}));
}

TEST(DecodeObjectFileHeaderTest, RejectsGarbageWithoutCrashing) {
  std::mt19937_64 rng(7);
  for (int i = 0; i < 2000; ++i) {
    std::vector<std::byte> bytes(rng() % 256);
    for (auto& b : bytes) b = static_cast<std::byte>(rng());
    if (i % 2 == 0 && bytes.size() >= 8) std::memcpy(bytes.data(), "PKICEOB1", 8);
    EXPECT_FALSE(DecodeObjectFileHeader(bytes).ok());
  }
}

}  // namespace
}  // namespace packice
