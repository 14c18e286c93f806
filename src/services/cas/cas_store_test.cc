// CasStore over its real tiers: a MemoryPeer, a LocalCasStore in a temporary directory (through
// the fault-injecting file-system seam where a test crashes it), and another CasStore as the
// remote tier.

#include "services/cas/cas_store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <latch>
#include <string>
#include <thread>
#include <vector>

#include "core/fault_injection_env.h"
#include "testing.h"

namespace packice {
namespace {

namespace fs = std::filesystem;
using Fault = FaultInjectionEnv::Fault;
using Op = FaultInjectionEnv::Op;

std::span<const std::byte> Bytes(const std::string& s) { return std::as_bytes(std::span(s)); }
std::string Text(std::span<const std::byte> b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}
size_t CountFiles(const std::string& dir) {
  size_t n = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir)) n += e.is_regular_file();
  return n;
}

class CasStoreTest : public ::testing::Test {
 protected:
  CasStoreOptions Options(const std::string& sub = "cas") {
    CasStoreOptions o;
    o.dir = dir_.path() + "/" + sub;
    o.memory_capacity_bytes = 16 << 20;
    o.memory_max_blob_bytes = 1 << 20;
    o.background_threads = false;
    o.clock = clock_;
    return o;
  }
  std::shared_ptr<CasStore> Open(CasStoreOptions o) {
    Result<std::shared_ptr<CasStore>> cas = CasStore::Open(std::move(o));
    EXPECT_OK(cas.status());
    return cas.ok() ? *cas : nullptr;
  }
  // The bytes of `range` of `digest`, or the error's name.
  static std::string Read(Cas& cas, const Digest& digest, BlobRange range = BlobRange::Full()) {
    Result<CasBlob> blob = cas.Fetch(digest, range);
    if (!blob.ok()) return std::string(StatusCodeName(blob.status().code()));
    return Text(blob->bytes);
  }

  testing::TempDir dir_;
  std::shared_ptr<testing::FakeClock> clock_ = std::make_shared<testing::FakeClock>();
};

TEST_F(CasStoreTest, StoreFetchCheckAndTheSeedsLayout) {
  auto cas = Open(Options());
  const std::string data = testing::PatternString(100'000, 7);
  ASSERT_OK_AND_ASSIGN(Digest d, cas->Put(Bytes(data)));
  EXPECT_EQ(d, Digest::Of(DigestAlgorithm::kBlake3, Bytes(data)));
  EXPECT_EQ(Read(*cas, d), data);
  ASSERT_OK_AND_ASSIGN(uint64_t size, cas->Check(d));
  EXPECT_EQ(size, data.size());
  EXPECT_TRUE(cas->Contains(d));
  const std::string hex = d.hex();
  const std::string path = dir_.path() + "/cas/blake3/" + hex.substr(0, 2) + "/" +
                           hex.substr(2, 2) + "/" + hex.substr(4);
  EXPECT_EQ(cas->LocalPath(d), path);
  EXPECT_EQ(testing::ReadFile(path), data) << "the file holds exactly the blob";
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0222, 0u) << "a stored blob is read-only";
  ASSERT_OK(cas->Store(d, Bytes(data)));  // idempotent
  EXPECT_EQ(cas->GetCasStats().stored, 1u);
  EXPECT_EQ(cas->GetCasStats().already_stored, 1u);
}

TEST_F(CasStoreTest, Sha256BlobsLiveBesideBlake3Ones) {
  auto cas = Open(Options());
  ASSERT_OK_AND_ASSIGN(Digest d, cas->Put(Bytes("abc"), DigestAlgorithm::kSha256));
  EXPECT_EQ(d.hex(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Read(*cas, d), "abc");
  EXPECT_EQ(cas->LocalPath(d),
            dir_.path() +
                "/cas/sha256/ba/78/16bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_CODE(cas->Check(Digest::Of(DigestAlgorithm::kBlake3, Bytes("abc"))), kNotFound);
}

TEST_F(CasStoreTest, FindByHashGivesTheStoredDigest) {
  auto cas = Open(Options());
  ASSERT_OK_AND_ASSIGN(Digest d, cas->Put(Bytes("abcdef"), DigestAlgorithm::kSha256));
  ASSERT_OK_AND_ASSIGN(Digest found, cas->FindByHash(DigestAlgorithm::kSha256, d.hex()));
  EXPECT_EQ(found, d);
  // Only that algorithm's blobs: the same hex under BLAKE3 names nothing.
  EXPECT_CODE(cas->FindByHash(DigestAlgorithm::kBlake3, d.hex()), kNotFound);
  const Digest other = Digest::Of(DigestAlgorithm::kSha256, Bytes("other"));
  EXPECT_CODE(cas->FindByHash(DigestAlgorithm::kSha256, other.hex()), kNotFound);
  const Digest empty = Digest::Empty(DigestAlgorithm::kSha256);
  ASSERT_OK_AND_ASSIGN(Digest e, cas->FindByHash(DigestAlgorithm::kSha256, empty.hex()));
  EXPECT_EQ(e, empty);
  EXPECT_CODE(cas->FindByHash(DigestAlgorithm::kSha256, "ABC"), kInvalidArgument);
  std::string upper = d.hex();
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_CODE(cas->FindByHash(DigestAlgorithm::kSha256, upper), kInvalidArgument);
}

TEST_F(CasStoreTest, AMismatchStoresNothing) {
  auto cas = Open(Options());
  const Digest d = Digest::Of(DigestAlgorithm::kBlake3, Bytes("the real content"));
  EXPECT_CODE(cas->Store(d, Bytes("other content!!!")), kDigestMismatch);  // same size
  EXPECT_CODE(cas->Store(d, Bytes("short")), kDigestMismatch);
  EXPECT_CODE(cas->Check(d), kNotFound);
  EXPECT_EQ(CountFiles(dir_.path() + "/cas"), 1u) << "only the LOCK file";
  EXPECT_EQ(cas->GetCasStats().mismatches, 2u);
  ASSERT_OK(cas->Store(d, Bytes("the real content")));
  EXPECT_CODE(cas->Store(d, Bytes("other content!!!")), kDigestMismatch)
      << "stored already, and still strict";
  EXPECT_EQ(Read(*cas, d), "the real content");
}

TEST_F(CasStoreTest, RangesAndTheirEdges) {
  auto cas = Open(Options());
  ASSERT_OK_AND_ASSIGN(Digest d, cas->Put(Bytes("0123456789")));
  EXPECT_EQ(Read(*cas, d, BlobRange::Of(0, 1)), "0");
  EXPECT_EQ(Read(*cas, d, BlobRange::Of(9, 1)), "9");
  EXPECT_EQ(Read(*cas, d, BlobRange::Of(3, std::nullopt)), "3456789");
  EXPECT_EQ(Read(*cas, d, BlobRange::Of(10, std::nullopt)), "");
  EXPECT_EQ(Read(*cas, d, BlobRange::Of(10, 1)), "out_of_range");
  EXPECT_EQ(Read(*cas, d, BlobRange::Of(11, std::nullopt)), "out_of_range");
  EXPECT_EQ(Read(*cas, d, BlobRange::Of(5, UINT64_MAX)), "out_of_range");
  Result<CasBlob> part = cas->Fetch(d, BlobRange::Of(4, 3));
  ASSERT_OK(part.status());
  EXPECT_EQ(part->offset, 4u);
  EXPECT_EQ(Text(part->bytes), "456");
}

TEST_F(CasStoreTest, TheEmptyBlobAlwaysExists) {
  auto cas = Open(Options());
  for (DigestAlgorithm a : {DigestAlgorithm::kBlake3, DigestAlgorithm::kSha256}) {
    const Digest empty = Digest::Empty(a);
    EXPECT_EQ(Read(*cas, empty), "");
    EXPECT_EQ(Read(*cas, empty, BlobRange::Of(0, 1)), "out_of_range");
    ASSERT_OK_AND_ASSIGN(uint64_t size, cas->Check(empty));
    EXPECT_EQ(size, 0u);
    ASSERT_OK_AND_ASSIGN(std::vector<Digest> missing, cas->FindMissing({&empty, 1}));
    EXPECT_TRUE(missing.empty());
  }
}

TEST_F(CasStoreTest, ConcurrentFirstReadsOfTheEmptyBlobAllFindIt) {
  for (int round = 0; round < 20; ++round) {
    auto cas = Open(Options("round" + std::to_string(round)));
    const Digest empty = Digest::Empty(DigestAlgorithm::kBlake3);
    std::latch start(8);
    std::vector<std::thread> threads;
    std::atomic<int> found{0};
    for (int t = 0; t < 8; ++t) {
      threads.emplace_back([&] {
        start.arrive_and_wait();
        found += cas->local_peer()->Stat(empty.ToString()).ok();
      });
    }
    for (std::thread& t : threads) t.join();
    ASSERT_EQ(found.load(), 8) << "round " << round;
  }
}

TEST_F(CasStoreTest, ConcurrentStoresOfOneBlobStoreItOnce) {
  auto cas = Open(Options());
  const std::string data = testing::PatternString(300'000, 3);
  const Digest d = Digest::Of(DigestAlgorithm::kBlake3, Bytes(data));
  constexpr int kThreads = 8;
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      start.arrive_and_wait();
      EXPECT_OK(cas->Store(d, Bytes(data)));
      EXPECT_EQ(Read(*cas, d), data);
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(CountFiles(dir_.path() + "/cas/blake3"), 1u);
  EXPECT_EQ(CountFiles(dir_.path() + "/cas/tmp"), 0u);
  EXPECT_EQ(cas->GetCasStats().local_blobs, 1u);
}

TEST_F(CasStoreTest, BlobsSurviveARestart) {
  Digest a, b;
  {
    auto cas = Open(Options());
    ASSERT_OK_AND_ASSIGN(a, cas->Put(Bytes("first")));
    ASSERT_OK_AND_ASSIGN(b, cas->Put(Bytes("second"), DigestAlgorithm::kSha256));
  }
  auto cas = Open(Options());
  EXPECT_EQ(Read(*cas, a), "first");
  EXPECT_EQ(Read(*cas, b), "second");
  EXPECT_EQ(cas->GetCasStats().local_blobs, 2u);
}

TEST_F(CasStoreTest, StrayFilesAreLeftAloneAndNotServed) {
  {
    auto cas = Open(Options());
    ASSERT_OK(cas->Put(Bytes("kept")).status());
  }
  fs::create_directories(dir_.path() + "/cas/blake3/zz/00");
  std::ofstream(dir_.path() + "/cas/blake3/zz/00/notahash") << "x";
  auto cas = Open(Options());
  EXPECT_EQ(cas->GetCasStats().local_blobs, 1u);
}

TEST_F(CasStoreTest, ACrashMidStoreLeavesNothingVisible) {
  auto env = std::make_shared<FaultInjectionEnv>();
  const std::string data = testing::PatternString(50'000, 9);
  const Digest d = Digest::Of(DigestAlgorithm::kBlake3, Bytes(data));
  Digest kept;
  for (Op op : {Op::kWrite, Op::kSyncData, Op::kLink, Op::kSyncDir}) {
    SCOPED_TRACE(static_cast<int>(op));
    {
      CasStoreOptions o = Options();
      o.env = env;
      auto cas = Open(o);
      ASSERT_OK_AND_ASSIGN(kept, cas->Put(Bytes("durable before")));
      env->InjectFault(Fault{.op = op, .crash = true});
      EXPECT_FALSE(cas->Store(d, Bytes(data)).ok());
    }
    ASSERT_OK(env->SimulateCrash());
    env->ClearFaults();
    CasStoreOptions o = Options();
    o.env = env;
    auto cas = Open(o);
    EXPECT_CODE(cas->Check(d), kNotFound);
    EXPECT_EQ(Read(*cas, kept), "durable before");
    EXPECT_EQ(CountFiles(dir_.path() + "/cas/tmp"), 0u);
  }
}

TEST_F(CasStoreTest, ReadsFillMemoryWhichForgetsIdleAndOldCopies) {
  auto cas = Open(Options());
  ASSERT_OK_AND_ASSIGN(Digest d, cas->Put(Bytes("warm")));
  EXPECT_EQ(Read(*cas, d), "warm");
  EXPECT_EQ(cas->GetCasStats().memory_hits, 1u) << "a store fills memory";
  clock_->Advance(std::chrono::minutes(5) + std::chrono::seconds(1));
  cas->Reap();
  EXPECT_EQ(Read(*cas, d), "warm");
  EXPECT_EQ(cas->GetCasStats().local_hits, 1u) << "idle for 5 minutes: gone from memory";
  EXPECT_EQ(Read(*cas, d), "warm");
  EXPECT_EQ(cas->GetCasStats().memory_hits, 2u) << "the local hit filled memory again";
  for (int i = 0; i < 8; ++i) {  // read every 4 minutes: never idle, but older than 30
    clock_->Advance(std::chrono::minutes(4));
    cas->Reap();
    EXPECT_EQ(Read(*cas, d), "warm");
  }
  EXPECT_EQ(cas->GetCasStats().local_hits, 2u) << "the TTL of 30 minutes ended the copy";
}

TEST_F(CasStoreTest, LargeBlobsSkipMemory) {
  CasStoreOptions o = Options();
  o.memory_max_blob_bytes = 1000;
  auto cas = Open(o);
  ASSERT_OK_AND_ASSIGN(Digest d, cas->Put(Bytes(std::string(1001, 'L'))));
  EXPECT_EQ(Read(*cas, d).size(), 1001u);
  EXPECT_EQ(Read(*cas, d).size(), 1001u);
  EXPECT_EQ(cas->GetCasStats().memory_hits, 0u);
  EXPECT_EQ(cas->GetCasStats().memory_bytes, 0u);
}

TEST_F(CasStoreTest, TheLocalTierEvictsTheLeastRecentlyUsed) {
  CasStoreOptions o = Options();
  o.local_capacity_bytes = 10 * 4096;
  o.memory_max_blob_bytes = 0;  // no memory tier: every read is local
  auto cas = Open(o);
  std::vector<Digest> blobs;
  for (int i = 0; i < 10; ++i) {
    ASSERT_OK_AND_ASSIGN(Digest d, cas->Put(Bytes(testing::PatternString(4000, i))));
    blobs.push_back(d);
  }
  EXPECT_EQ(Read(*cas, blobs[0]).size(), 4000u);  // now the most recently used
  ASSERT_OK(cas->Put(Bytes(testing::PatternString(4000, 99))).status());
  EXPECT_EQ(cas->GetCasStats().evictions, 1u);
  EXPECT_TRUE(cas->Contains(blobs[0]));
  EXPECT_FALSE(cas->Contains(blobs[1])) << "the least recently used went";
  EXPECT_LE(cas->GetCasStats().local_bytes, o.local_capacity_bytes);
  EXPECT_CODE(cas->Put(Bytes(std::string(11 * 4096, 'x'))), kOutOfCapacity);
  EXPECT_TRUE(cas->Contains(blobs[0])) << "nothing is evicted for a blob that cannot fit";
  EXPECT_EQ(cas->GetCasStats().evictions, 1u);
}

TEST_F(CasStoreTest, TheRemoteTierFillsTheLocalOne) {
  auto remote = Open(Options("remote"));
  CasStoreOptions o = Options("near");
  o.remote = remote;
  auto cas = Open(o);
  ASSERT_OK_AND_ASSIGN(Digest far, remote->Put(Bytes("only on the remote")));
  const Digest absent = Digest::Of(DigestAlgorithm::kBlake3, Bytes("nowhere"));
  const Digest both[] = {far, absent};
  ASSERT_OK_AND_ASSIGN(std::vector<Digest> missing, cas->FindMissing(both));
  EXPECT_EQ(missing, std::vector<Digest>{absent});
  EXPECT_EQ(Read(*cas, far, BlobRange::Of(5, 2)), "on");
  EXPECT_EQ(cas->GetCasStats().remote_hits, 1u);
  EXPECT_TRUE(cas->LocalPath(far).has_value()) << "fetched into the local tier";
  EXPECT_EQ(Read(*cas, far), "only on the remote");
  EXPECT_EQ(cas->GetCasStats().remote_hits, 1u);
  ASSERT_OK_AND_ASSIGN(Digest near, cas->Put(Bytes("written here")));
  EXPECT_TRUE(remote->Contains(near)) << "writes go to the remote too";
  EXPECT_EQ(Read(*cas, absent), "not_found");
}

TEST_F(CasStoreTest, AWriterFillsTheBlobInPlace) {
  CasStoreOptions o = Options("near");
  auto remote = Open(Options("remote"));
  o.remote = remote;
  auto cas = Open(o);
  const std::string content = testing::PatternString(100'000, 3);
  const Digest d = Digest::Of(DigestAlgorithm::kBlake3, Bytes(content));
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<CasWriter> w, cas->BeginStore(d));
    EXPECT_FALSE(cas->Contains(d)) << "not visible before the commit";
    ASSERT_OK(w->blob().Write(0, Bytes(content.substr(0, 1000))));
    ASSERT_OK(w->blob().Write(1000, Bytes(content.substr(1000))));
    ASSERT_OK(w->Commit());
    EXPECT_CODE(w->Commit(), kWrongState);
  }
  EXPECT_EQ(Read(*cas, d), content);
  EXPECT_TRUE(remote->Contains(d)) << "a committed writer's blob goes to the remote too";
  EXPECT_EQ(cas->GetCasStats().stored, 1u);

  const std::string other = "SOMETHING ELSE ENTIRELY";  // the size is right, not the hash
  const Digest wrong = Digest::Of(DigestAlgorithm::kBlake3, Bytes("something else entirely"));
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<CasWriter> w, cas->BeginStore(wrong));
    ASSERT_OK(w->blob().Write(0, Bytes(other)));
    EXPECT_CODE(w->Commit(), kDigestMismatch);
  }
  EXPECT_FALSE(cas->Contains(wrong));
  { ASSERT_OK_AND_ASSIGN(std::unique_ptr<CasWriter> w, cas->BeginStore(wrong)); }
  EXPECT_FALSE(cas->Contains(wrong)) << "a writer dropped without a commit stores nothing";
  EXPECT_EQ(CountFiles(dir_.path() + "/near/tmp"), 0u);
  {  // writing a stored blob again is idempotent
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<CasWriter> w, cas->BeginStore(d));
    ASSERT_OK(w->blob().Write(0, Bytes(content)));
    ASSERT_OK(w->Commit());
  }
  EXPECT_EQ(Read(*cas, d), content);
}

TEST_F(CasStoreTest, AFileOnTheSameFileSystemIsImportedByAHardLink) {
  auto cas = Open(Options());
  const std::string path = dir_.path() + "/weights.bin";
  const std::string content = testing::PatternString(300'000, 7);
  std::ofstream(path, std::ios::binary) << content;
  ASSERT_OK_AND_ASSIGN(Digest d, cas->StoreFile(path));
  EXPECT_EQ(d, Digest::Of(DigestAlgorithm::kBlake3, Bytes(content)));
  EXPECT_EQ(cas->GetCasStats().imported, 1u);
  ASSERT_TRUE(cas->LocalPath(d).has_value());
  struct stat a {
  }, b{};
  ASSERT_EQ(::stat(path.c_str(), &a), 0);
  ASSERT_EQ(::stat(cas->LocalPath(d)->c_str(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino) << "one inode: no copy";
  EXPECT_EQ(a.st_nlink, 2u);
  EXPECT_EQ(a.st_mode & 0222, 0u) << "the import made the file read-only";
  EXPECT_EQ(Read(*cas, d, BlobRange::Of(299'990, std::nullopt)), content.substr(299'990));
  EXPECT_EQ(CountFiles(dir_.path() + "/cas/tmp"), 0u);
  ASSERT_OK_AND_ASSIGN(Digest again, cas->StoreFile(path));
  EXPECT_EQ(again, d);
  EXPECT_EQ(cas->GetCasStats().already_stored, 1u);
  // The empty file is the empty blob, stored without a link.
  const std::string empty = dir_.path() + "/empty";
  std::ofstream(empty, std::ios::binary).flush();
  ASSERT_OK_AND_ASSIGN(Digest e, cas->StoreFile(empty, DigestAlgorithm::kSha256));
  EXPECT_TRUE(e.empty_blob());
  EXPECT_EQ(Read(*cas, e), "");
  EXPECT_CODE(cas->StoreFile(dir_.path() + "/absent"), kNotFound);
  EXPECT_CODE(cas->StoreFile(dir_.path()), kInvalidArgument);
}

TEST_F(CasStoreTest, AFileElsewhereIsCopied) {
  if (!fs::is_directory("/dev/shm")) GTEST_SKIP() << "no /dev/shm";
  testing::TempDir shm("/dev/shm");
  struct stat a {
  }, b{};
  ASSERT_EQ(::stat(shm.path().c_str(), &a), 0);
  ASSERT_EQ(::stat(dir_.path().c_str(), &b), 0);
  if (a.st_dev == b.st_dev) GTEST_SKIP() << "/dev/shm is on the test directory's file system";
  auto cas = Open(Options());
  const std::string path = shm.path() + "/blob";
  const std::string content = testing::PatternString(3 << 20, 5);  // more than one buffer
  std::ofstream(path, std::ios::binary) << content;
  ASSERT_OK_AND_ASSIGN(Digest d, cas->StoreFile(path, DigestAlgorithm::kSha256));
  EXPECT_EQ(cas->GetCasStats().imported, 0u);
  EXPECT_EQ(Read(*cas, d), content);
  struct stat src {};
  ASSERT_EQ(::stat(path.c_str(), &src), 0);
  EXPECT_EQ(src.st_nlink, 1u);
  EXPECT_NE(src.st_mode & 0200, 0u) << "a copied file is left as it was";
}

}  // namespace
}  // namespace packice
