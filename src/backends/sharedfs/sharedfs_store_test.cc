#include "backends/sharedfs/sharedfs_store.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include "backends/sharedfs/object_file.h"
#include "core/fault_injection_env.h"
#include "core/io.h"
#include "testing.h"

namespace packice {
namespace {

namespace fs = std::filesystem;
using testing::FakeClock;
using testing::TempDir;

std::span<const std::byte> Bytes(std::string_view s) { return std::as_bytes(std::span(s)); }

std::string ReadAll(Blob& blob) {
  std::string out(blob.size(), '\0');
  EXPECT_OK(blob.Read(0, std::as_writable_bytes(std::span(out))));
  return out;
}

void SetMtime(const std::string& path, int64_t unix_ms) {
  struct timespec times[2] = {};
  times[0].tv_nsec = UTIME_OMIT;
  times[1].tv_sec = unix_ms / 1000;
  times[1].tv_nsec = (unix_ms % 1000) * 1'000'000;
  ASSERT_EQ(utimensat(AT_FDCWD, path.c_str(), times, 0), 0) << std::strerror(errno);
}

size_t FilesIn(const std::string& dir) {
  size_t n = 0;
  for (const auto& e : fs::directory_iterator(dir)) n += e.is_regular_file() ? 1 : 0;
  return n;
}

ObjectInfo NewObject(std::string key, uint64_t size, Duration ttl = Duration(0)) {
  ObjectInfo info;
  info.key = std::move(key);
  info.size = size;
  info.ttl = ttl;
  info.meta = {{"owner", "test"}};
  return info;
}

// --- the file format -------------------------------------------------------------------------

TEST(SharedObjectFileTest, HeaderRoundTrips) {
  SharedObjectHeader h;
  h.info = NewObject("a/b", 12345, std::chrono::seconds(9));
  h.info.state = ObjectState::kSealed;
  h.info.version = 77;
  h.info.created_unix_ms = 1'700'000'000'000;
  h.info.expires_unix_ms = 1'700'000'009'000;
  h.writer = "host:42";
  h.data_offset = SharedDataOffsetFor(h.info, h.writer);
  EXPECT_EQ(h.data_offset % PageSize(), 0u);
  auto bytes = EncodeSharedObjectHeader(h);
  ASSERT_OK(bytes.status());
  auto back = DecodeSharedObjectHeader(Bytes(*bytes));
  ASSERT_OK(back.status());
  EXPECT_EQ(back->info.key, "a/b");
  EXPECT_EQ(back->info.state, ObjectState::kSealed);
  EXPECT_EQ(back->info.size, 12345u);
  EXPECT_EQ(back->info.version, 77u);
  EXPECT_EQ(back->info.meta, h.info.meta);
  EXPECT_EQ(back->info.ttl, std::chrono::seconds(9));
  EXPECT_EQ(back->info.created_unix_ms, h.info.created_unix_ms);
  EXPECT_EQ(back->info.expires_unix_ms, h.info.expires_unix_ms);
  EXPECT_EQ(back->writer, "host:42");
  EXPECT_EQ(back->data_offset, h.data_offset);
}

TEST(SharedObjectFileTest, CorruptHeadersAreRejected) {
  SharedObjectHeader h;
  h.info = NewObject("k", 10);
  h.writer = "w:1";
  h.data_offset = SharedDataOffsetFor(h.info, h.writer);
  std::string good = *EncodeSharedObjectHeader(h);
  for (size_t i = 0; i < good.size(); ++i) {
    std::string bad = good;
    bad[i] = static_cast<char>(bad[i] ^ 0x40);
    EXPECT_FALSE(DecodeSharedObjectHeader(Bytes(bad)).ok()) << "flipped byte " << i;
  }
  EXPECT_CODE(DecodeSharedObjectHeader(Bytes(good.substr(0, good.size() - 1))), kProtocolError);
  EXPECT_CODE(DecodeSharedObjectHeader(Bytes("PKICEOB1 an object of the file store")),
              kProtocolError);
  // A header that does not fit before the content offset is refused when written.
  h.data_offset = 0;
  EXPECT_CODE(EncodeSharedObjectHeader(h), kInternal);
}

TEST(SharedObjectFileTest, NamesComeFromTheKeyHash) {
  SharedObjectName a = SharedNameForKey("model/layer0");
  EXPECT_EQ(a.stem.size(), 32u);
  EXPECT_EQ(a.shard, "objects/" + a.stem.substr(0, 2));
  EXPECT_EQ(a.sealed(), a.shard + "/" + a.stem + ".pks");
  EXPECT_EQ(SharedNameForKey("model/layer0").stem, a.stem);
  EXPECT_NE(SharedNameForKey("model/layer1").stem, a.stem);
  // Path tricks in keys stay inside the hash.
  EXPECT_EQ(SharedNameForKey("../../etc/passwd").stem.find('/'), std::string::npos);
  uint32_t stripe = 0;
  ASSERT_TRUE(SharedStripeForStem(a.stem, &stripe));
  EXPECT_EQ(stripe, a.stripe);
  EXPECT_FALSE(SharedStripeForStem("xyz", &stripe));
}

// --- the store: two instances on one directory behave as two processes ----------------------

class SharedFSStoreTest : public ::testing::Test {
 protected:
  std::unique_ptr<SharedFSStore> OpenStore(const std::string& writer) {
    SharedFSStoreOptions options;
    options.dir = dir_.path() + "/shared";
    options.sync = false;
    options.abandoned_after = std::chrono::seconds(10);
    options.clock = clock_;
    options.writer_id = writer;
    auto store = SharedFSStore::Open(options);
    EXPECT_OK(store.status());
    return store.ok() ? std::move(store).value() : nullptr;
  }
  std::string PathOf(const std::string& relative) { return dir_.path() + "/shared/" + relative; }
  // An mtime that makes a file old enough to be abandoned.
  int64_t LongAgo() { return clock_->UnixMillis() - 11'000; }

  TempDir dir_;
  std::shared_ptr<FakeClock> clock_ = std::make_shared<FakeClock>();
  std::unique_ptr<SharedFSStore> a_ = OpenStore("node-a:1");
  std::unique_ptr<SharedFSStore> b_ = OpenStore("node-b:2");
};

TEST_F(SharedFSStoreTest, OneWriterPerKeyAndReadersSeeOnlySealedObjects) {
  auto w = a_->Create(NewObject("k", 11), /*exclusive=*/false);
  ASSERT_OK(w.status());
  auto lost = b_->Create(NewObject("k", 5), false);
  EXPECT_CODE(lost, kAlreadyExists);
  EXPECT_NE(lost.status().message().find("being created by node-a:1"), std::string::npos)
      << lost.status().ToString();
  auto early = b_->OpenSealed("k");
  EXPECT_CODE(early, kNotFound);
  EXPECT_NE(early.status().message().find("not sealed yet"), std::string::npos);
  EXPECT_CODE(b_->Stat("k"), kNotFound);

  ASSERT_OK((*w)->Write(0, Bytes("hello world")));
  auto sealed = a_->Seal(**w, 11);
  ASSERT_OK(sealed.status());
  EXPECT_EQ(sealed->state, ObjectState::kSealed);

  auto r = b_->OpenSealed("k");
  ASSERT_OK(r.status());
  EXPECT_EQ(ReadAll(**r), "hello world");
  EXPECT_EQ((*r)->info().meta.at("owner"), "test");
  EXPECT_EQ((*r)->info().version, sealed->version);
  auto view = (*r)->OpenView(LeaseMode::kRead);
  ASSERT_OK(view.status());
  EXPECT_EQ(std::string(reinterpret_cast<const char*>((*view)->bytes().data()), 11), "hello world");
  EXPECT_CODE((*r)->Write(0, Bytes("x")), kWrongState);
  EXPECT_CODE((*w)->Write(0, Bytes("x")), kWrongState);
  EXPECT_CODE(a_->Seal(**w, 11), kWrongState);

  // The key is free for the next writer, in either process.
  auto next = b_->Create(NewObject("k", 1), false);
  ASSERT_OK(next.status());
  b_->Abandon(**next);
  EXPECT_FALSE(fs::exists(PathOf(SharedNameForKey("k").creating())));
}

TEST_F(SharedFSStoreTest, ExclusiveCreatesAndSeals) {
  auto w = a_->Create(NewObject("x", 3, std::chrono::seconds(5)), true);
  ASSERT_OK(w.status());
  ASSERT_OK(a_->Seal(**w, 3).status());
  auto again = b_->Create(NewObject("x", 3), true);
  EXPECT_CODE(again, kAlreadyExists);
  EXPECT_NE(again.status().message().find("exists"), std::string::npos);
  // A non-exclusive create rebinds; an expired object does not block an exclusive one.
  clock_->Advance(std::chrono::seconds(6));
  auto after = b_->Create(NewObject("x", 3), true);
  ASSERT_OK(after.status());
  ASSERT_OK(b_->Seal(**after, 3).status());
}

TEST_F(SharedFSStoreTest, RebindKeepsTheOldObjectForItsReaders) {
  auto v1 = a_->Create(NewObject("r", 2), false);
  ASSERT_OK(v1.status());
  ASSERT_OK((*v1)->Write(0, Bytes("v1")));
  ASSERT_OK(a_->Seal(**v1, 2).status());
  v1->reset();
  auto reader = b_->OpenSealed("r");
  ASSERT_OK(reader.status());

  auto v2 = a_->Create(NewObject("r", 2), false);
  ASSERT_OK(v2.status());
  ASSERT_OK((*v2)->Write(0, Bytes("v2")));
  ASSERT_OK(a_->Seal(**v2, 2).status());
  v2->reset();

  EXPECT_EQ(ReadAll(**reader), "v1");
  auto fresh = a_->OpenSealed("r");
  ASSERT_OK(fresh.status());
  EXPECT_EQ(ReadAll(**fresh), "v2");
  fresh->reset();
  // The old file waits in trash/ while it is read, and goes after.
  EXPECT_EQ(FilesIn(PathOf("trash")), 1u);
  auto gc = a_->CollectGarbage();
  ASSERT_OK(gc.status());
  EXPECT_EQ(gc->in_use, 1u);
  EXPECT_EQ(gc->objects, 1u);
  reader->reset();
  gc = a_->CollectGarbage();
  ASSERT_OK(gc.status());
  EXPECT_EQ(gc->unlinked, 1u);
  EXPECT_EQ(FilesIn(PathOf("trash")), 0u);
}

TEST_F(SharedFSStoreTest, TruncatingSealAndExports) {
  auto w = a_->Create(NewObject("t", 3 * PageSize()), false);
  ASSERT_OK(w.status());
  {
    auto view = (*w)->OpenView(LeaseMode::kCreate);
    ASSERT_OK(view.status());
    ASSERT_EQ((*view)->bytes().size(), 3 * PageSize());
    for (std::byte b : (*view)->bytes()) ASSERT_EQ(b, std::byte{0});  // zero-filled
    std::memcpy((*view)->bytes().data(), "mapped", 6);
  }
  // The exported descriptor is its own open of the file: the writer's lock is not in it, so it
  // conflicts with the lock like another process's would.
  auto ex = (*w)->Export(LeaseMode::kCreate);
  ASSERT_OK(ex.status());
  EXPECT_EQ(ex->kind, BlobExport::Kind::kFd);
  EXPECT_EQ(ex->offset % PageSize(), 0u);
  struct flock l {};
  l.l_type = F_WRLCK;
  l.l_whence = SEEK_SET;
  EXPECT_NE(fcntl(ex->fd.get(), F_OFD_SETLK, &l), 0);
  ASSERT_OK(a_->Seal(**w, 6).status());

  auto r = b_->OpenSealed("t");
  ASSERT_OK(r.status());
  EXPECT_EQ(ReadAll(**r), "mapped");
  EXPECT_EQ(fs::file_size(PathOf(SharedNameForKey("t").sealed())), ex->offset + 6);
  auto rex = (*r)->Export(LeaseMode::kRead);
  ASSERT_OK(rex.status());
  EXPECT_EQ(fcntl(rex->fd.get(), F_GETFL) & O_ACCMODE, O_RDONLY);
  EXPECT_CODE((*r)->Export(LeaseMode::kCreate), kWrongState);
}

TEST_F(SharedFSStoreTest, DeadWritersAreTakenOverOnlyWhenUnlockedAndOld) {
  const std::string pending = PathOf(SharedNameForKey("d").creating());
  auto live = a_->Create(NewObject("d", 100), false);
  ASSERT_OK(live.status());
  SetMtime(pending, LongAgo());
  // Old, but its writer holds the lock: alive.
  EXPECT_CODE(b_->Create(NewObject("d", 1), false), kAlreadyExists);
  auto gc = b_->CollectGarbage();
  ASSERT_OK(gc.status());
  EXPECT_EQ(gc->abandoned, 0u);
  EXPECT_EQ(gc->creating, 1u);

  // The writer dies: its descriptor closes without a seal, and the file stays behind.
  live->reset();
  ASSERT_TRUE(fs::exists(pending));
  SetMtime(pending, clock_->UnixMillis() - 1000);
  // Unlocked but recent: maybe a writer between its create and its lock.
  EXPECT_CODE(b_->Create(NewObject("d", 1), false), kAlreadyExists);
  gc = b_->CollectGarbage();
  ASSERT_OK(gc.status());
  EXPECT_EQ(gc->abandoned, 0u);

  clock_->Advance(std::chrono::seconds(10));
  auto taken = b_->Create(NewObject("d", 1), false);
  ASSERT_OK(taken.status());
  ASSERT_OK(b_->Seal(**taken, 1).status());
  EXPECT_FALSE(fs::exists(pending));
}

TEST_F(SharedFSStoreTest, SealFailsWhenTheObjectWasCollected) {
  auto w = a_->Create(NewObject("c", 4), false);
  ASSERT_OK(w.status());
  ASSERT_OK(a_->Touch(**w));
  // Another process decided the writer was dead (a lost lock on a network filesystem).
  ASSERT_EQ(unlink(PathOf(SharedNameForKey("c").creating()).c_str()), 0);
  EXPECT_CODE(a_->Touch(**w), kAborted);
  EXPECT_CODE(a_->Seal(**w, 4), kAborted);
  EXPECT_CODE(b_->OpenSealed("c"), kNotFound);
}

TEST_F(SharedFSStoreTest, DeleteKeepsReadersAndGcFreesAfterThem) {
  auto w = a_->Create(NewObject("del", 5), false);
  ASSERT_OK(w.status());
  ASSERT_OK((*w)->Write(0, Bytes("bytes")));
  ASSERT_OK(a_->Seal(**w, 5).status());
  w->reset();
  auto reader = b_->OpenSealed("del");
  ASSERT_OK(reader.status());
  auto view = (*reader)->OpenView(LeaseMode::kRead);
  ASSERT_OK(view.status());

  ASSERT_OK(a_->Delete("del"));
  EXPECT_CODE(a_->Delete("del"), kNotFound);
  EXPECT_CODE(b_->OpenSealed("del"), kNotFound);
  auto gc = a_->CollectGarbage();
  ASSERT_OK(gc.status());
  EXPECT_EQ(gc->in_use, 1u);
  EXPECT_EQ(ReadAll(**reader), "bytes");
  EXPECT_EQ(std::string(reinterpret_cast<const char*>((*view)->bytes().data()), 5), "bytes");
  reader->reset();
  gc = a_->CollectGarbage();
  ASSERT_OK(gc.status());
  EXPECT_EQ(gc->in_use, 1u);  // a mapping holds the open file, and with it the read lock
  view->reset();
  gc = a_->CollectGarbage();
  ASSERT_OK(gc.status());
  EXPECT_EQ(gc->unlinked, 1u);
  EXPECT_EQ(FilesIn(PathOf("trash")), 0u);
}

TEST_F(SharedFSStoreTest, ExpiredObjectsAreInvisibleAndCollected) {
  auto w = a_->Create(NewObject("ttl", 1, std::chrono::seconds(3)), false);
  ASSERT_OK(w.status());
  auto sealed = a_->Seal(**w, 1);
  ASSERT_OK(sealed.status());
  EXPECT_EQ(sealed->expires_unix_ms, clock_->UnixMillis() + 3000);
  ASSERT_OK(b_->Stat("ttl").status());
  clock_->Advance(std::chrono::seconds(3));
  EXPECT_CODE(b_->Stat("ttl"), kNotFound);
  EXPECT_CODE(b_->OpenSealed("ttl"), kNotFound);
  auto page = b_->List({});
  ASSERT_OK(page.status());
  EXPECT_TRUE(page->objects.empty());
  auto gc = b_->CollectGarbage();
  ASSERT_OK(gc.status());
  EXPECT_EQ(gc->expired, 1u);
  EXPECT_EQ(gc->objects, 0u);
  EXPECT_FALSE(fs::exists(PathOf(SharedNameForKey("ttl").sealed())));
}

TEST_F(SharedFSStoreTest, CorruptFilesGiveClearErrors) {
  auto w = a_->Create(NewObject("bad", 8), false);
  ASSERT_OK(w.status());
  ASSERT_OK(a_->Seal(**w, 8).status());
  w->reset();
  const std::string path = PathOf(SharedNameForKey("bad").sealed());
  ASSERT_EQ(chmod(path.c_str(), 0660), 0);
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(40);
    f.put('\x7f');
  }
  EXPECT_CODE(b_->OpenSealed("bad"), kInternal);
  EXPECT_CODE(b_->Stat("bad"), kInternal);
  auto gc = b_->CollectGarbage();
  ASSERT_OK(gc.status());
  EXPECT_EQ(gc->corrupt, 1u);
  EXPECT_TRUE(fs::exists(path));  // left for a human
}

TEST_F(SharedFSStoreTest, ListScansEveryProcessesObjects) {
  for (std::string key : {"p/1", "p/2", "p/3", "q/1"}) {
    SharedFSStore& store = key.ends_with("2") ? *b_ : *a_;
    auto w = store.Create(NewObject(key, 1), false);
    ASSERT_OK(w.status());
    ASSERT_OK(store.Seal(**w, 1).status());
  }
  auto pending = a_->Create(NewObject("p/4", 1), false);  // not listed until sealed
  ASSERT_OK(pending.status());
  auto page = b_->List(ListOptions{"p/", "", 2});
  ASSERT_OK(page.status());
  ASSERT_EQ(page->objects.size(), 2u);
  EXPECT_EQ(page->objects[0].key, "p/1");
  EXPECT_EQ(page->objects[1].key, "p/2");
  EXPECT_TRUE(page->truncated);
  page = b_->List(ListOptions{"p/", "p/2", 2});
  ASSERT_OK(page.status());
  ASSERT_EQ(page->objects.size(), 1u);
  EXPECT_EQ(page->objects[0].key, "p/3");
  EXPECT_FALSE(page->truncated);
}

TEST_F(SharedFSStoreTest, RacingExclusiveCreatesHaveOneWinner) {
  constexpr int kKeys = 40;
  std::atomic<int> wins{0}, losses{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    SharedFSStore* store = t % 2 == 0 ? a_.get() : b_.get();
    threads.emplace_back([&, store] {
      for (int k = 0; k < kKeys; ++k) {
        auto w = store->Create(NewObject("race/" + std::to_string(k), 16), true);
        if (!w.ok()) {
          EXPECT_CODE(w, kAlreadyExists);
          ++losses;
          continue;
        }
        if (store->Seal(**w, 16).ok()) {
          ++wins;
        } else {
          ++losses;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wins.load(), kKeys);
  EXPECT_EQ(losses.load(), 3 * kKeys);
  auto page = a_->List(ListOptions{"race/", "", 1000});
  ASSERT_OK(page.status());
  EXPECT_EQ(page->objects.size(), size_t{kKeys});
}

// --- faults and crashes (core/fault_injection_env.h) -----------------------------------------

class SharedFSFaultTest : public ::testing::Test {
 protected:
  using Fault = FaultInjectionEnv::Fault;
  using Op = FaultInjectionEnv::Op;

  std::unique_ptr<SharedFSStore> Open() {
    SharedFSStoreOptions options;
    options.dir = dir_.path() + "/shared";
    options.sync = true;
    options.abandoned_after = std::chrono::seconds(10);
    options.clock = clock_;
    options.writer_id = "node:1";
    options.env = env_;
    auto store = SharedFSStore::Open(options);
    EXPECT_OK(store.status());
    return store.ok() ? std::move(store).value() : nullptr;
  }
  // Creates `key` with `content`, and seals it.
  Result<ObjectInfo> Put(SharedFSStore& store, const std::string& key, std::string_view content) {
    PACKICE_ASSIGN_OR_RETURN(auto w, store.Create(NewObject(key, content.size()), false));
    PACKICE_RETURN_IF_ERROR(w->Write(0, Bytes(content)));
    return store.Seal(*w, content.size());
  }
  std::string Get(SharedFSStore& store, const std::string& key) {
    auto r = store.OpenSealed(key);
    return r.ok() ? ReadAll(**r) : "<" + r.status().ToString() + ">";
  }
  // After a restart: one collection (with the writers long dead), then every file left in the
  // directory, by suffix.
  std::map<std::string, int> FilesAfterRecovery(SharedFSStore& store) {
    clock_->Advance(std::chrono::seconds(60));
    EXPECT_OK(store.CollectGarbage().status());
    std::map<std::string, int> files;
    for (const auto& e : fs::recursive_directory_iterator(dir_.path() + "/shared")) {
      if (e.is_regular_file() && e.path().filename() != "LOCKS") {
        ++files[e.path().extension().string()];
      }
    }
    return files;
  }

  TempDir dir_;
  std::shared_ptr<FakeClock> clock_ = std::make_shared<FakeClock>();
  std::shared_ptr<FaultInjectionEnv> env_ = std::make_shared<FaultInjectionEnv>();
};

TEST_F(SharedFSFaultTest, SealWhoseFdatasyncFailsLeavesNothing) {
  {
    auto store = Open();
    env_->InjectFault(Fault{.op = Op::kSyncData, .error = EIO});
    EXPECT_CODE(Put(*store, "k", "never durable"), kInternal);
    EXPECT_EQ(env_->faults_hit(), 1);
    EXPECT_CODE(store->OpenSealed("k"), kNotFound);
    EXPECT_TRUE(FilesAfterRecovery(*store).empty());
    // The key is free again.
    ASSERT_OK(Put(*store, "other", "fine").status());
  }
  ASSERT_OK(env_->SimulateCrash());
  auto store = Open();
  EXPECT_CODE(store->OpenSealed("k"), kNotFound);
  EXPECT_EQ(Get(*store, "other"), "fine");
}

TEST_F(SharedFSFaultTest, RebindWhoseDirectorySyncFailsKeepsTheOldObject) {
  {
    auto store = Open();
    ASSERT_OK(Put(*store, "k", "old").status());
    const std::string shard = SharedNameForKey("k").shard;
    env_->InjectFault(Fault{.op = Op::kSyncDir, .error = EIO, .path_part = shard});
    EXPECT_CODE(Put(*store, "k", "new"), kInternal);
    EXPECT_EQ(Get(*store, "k"), "old");  // bound again (it was lost before this was fixed)
    EXPECT_EQ(FilesAfterRecovery(*store), (std::map<std::string, int>{{".pks", 1}}));
  }
  ASSERT_OK(env_->SimulateCrash());
  auto store = Open();
  EXPECT_EQ(Get(*store, "k"), "old");
}

TEST_F(SharedFSFaultTest, NoSpaceFailsTheCreateOrTheWriteAndLeavesNothing) {
  auto store = Open();
  env_->InjectFault(Fault{.op = Op::kAllocate, .error = ENOSPC});
  EXPECT_CODE(store->Create(NewObject("a", 100000), false), kOutOfCapacity);
  // A write that finds the disk full after a few pieces.
  auto w = store->Create(NewObject("b", 100000), false);
  ASSERT_OK(w.status());
  env_->SetShortWrites(4096);
  env_->InjectFault(Fault{.op = Op::kWrite, .error = ENOSPC, .skip = 2, .count = -1});
  Status s = (*w)->Write(0, Bytes(std::string(100000, 'x')));
  EXPECT_CODE(s, kInternal);
  EXPECT_NE(s.message().find(std::strerror(ENOSPC)), std::string::npos) << s.ToString();
  store->Abandon(**w);
  env_->ClearFaults();
  EXPECT_CODE(store->OpenSealed("a"), kNotFound);
  EXPECT_CODE(store->OpenSealed("b"), kNotFound);
  EXPECT_TRUE(FilesAfterRecovery(*store).empty());
}

TEST_F(SharedFSFaultTest, AcknowledgedSealsSurviveACrash) {
  const std::string big = testing::PatternString(300000, 5);
  {
    auto store = Open();  // a fresh directory: its layout and shard directories must survive
    ASSERT_OK(Put(*store, "small", "small object").status());
    ASSERT_OK(Put(*store, "big", "first version").status());
    ASSERT_OK(Put(*store, "big", big).status());  // a rebind
    auto w = store->Create(NewObject("pending", 10), false);
    ASSERT_OK(w.status());
    ASSERT_OK((*w)->Write(0, Bytes("unsealed!!")));  // never sealed: the crash comes first
  }
  ASSERT_OK(env_->SimulateCrash());
  auto store = Open();
  EXPECT_EQ(Get(*store, "small"), "small object");
  EXPECT_TRUE(Get(*store, "big") == big);  // no dump of 300 KB on failure
  EXPECT_CODE(store->OpenSealed("pending"), kNotFound);
  EXPECT_EQ(FilesAfterRecovery(*store), (std::map<std::string, int>{{".pks", 2}}));
}

TEST_F(SharedFSFaultTest, CrashBeforeTheSealsSyncLeavesTheOldStateOnly) {
  for (Op op : {Op::kSyncData, Op::kSyncDir}) {
    SCOPED_TRACE(op == Op::kSyncData ? "crash at fdatasync" : "crash at the directory fsync");
    {
      auto store = Open();
      ASSERT_OK(Put(*store, "k", "old").status());
      const std::string shard = SharedNameForKey("k").shard;
      env_->InjectFault(
          Fault{.op = op, .path_part = op == Op::kSyncDir ? shard : "", .crash = true});
      EXPECT_FALSE(Put(*store, "k", "new").ok());
      EXPECT_FALSE(Put(*store, "fresh", "new too").ok());
      EXPECT_TRUE(env_->down());
    }
    ASSERT_OK(env_->SimulateCrash());
    auto store = Open();
    EXPECT_EQ(Get(*store, "k"), "old");
    EXPECT_CODE(store->OpenSealed("fresh"), kNotFound);
    EXPECT_EQ(FilesAfterRecovery(*store), (std::map<std::string, int>{{".pks", 1}}));
  }
}

TEST_F(SharedFSFaultTest, ShortWritesAreFinished) {
  const std::string content = testing::PatternString(100000, 9);
  {
    auto store = Open();
    env_->SetShortWrites(777);
    ASSERT_OK(Put(*store, "k", content).status());
    EXPECT_GT(env_->faults_hit(), 100);
  }
  env_->ClearFaults();
  ASSERT_OK(env_->SimulateCrash());
  auto store = Open();
  EXPECT_TRUE(Get(*store, "k") == content) << Get(*store, "k").substr(0, 100);
}

}  // namespace
}  // namespace packice
