#include "core/env.h"

#include <fcntl.h>
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/fault_injection_env.h"
#include "testing.h"

namespace packice {
namespace {

namespace fs = std::filesystem;
using testing::ReadFile;
using testing::TempDir;
using Fault = FaultInjectionEnv::Fault;
using Op = FaultInjectionEnv::Op;

std::span<const std::byte> Bytes(std::string_view s) { return std::as_bytes(std::span(s)); }

// --- the real file system ----------------------------------------------------------------------

class PosixEnvTest : public ::testing::Test {
 protected:
  std::shared_ptr<Env> env_ = Env::Default();
  TempDir dir_;
};

TEST_F(PosixEnvTest, FilesRoundTrip) {
  Env& env = *env_;
  const std::string path = dir_.path() + "/f";
  UniqueFd fd;
  ASSERT_EQ(env.Open(path, O_RDWR | O_CREAT | O_EXCL, 0600, &fd), 0);
  EXPECT_EQ(fcntl(fd.get(), F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
  UniqueFd again;
  EXPECT_EQ(env.Open(path, O_RDWR | O_CREAT | O_EXCL, 0600, &again), EEXIST);
  ASSERT_OK(WriteFully(env, fd.get(), Bytes("hello world"), 0));
  EXPECT_EQ(env.SyncData(fd.get()), 0);
  std::string out(5, '\0');
  ASSERT_OK(ReadFully(env, fd.get(), std::as_writable_bytes(std::span(out)), 6));
  EXPECT_EQ(out, "world");
  EXPECT_CODE(ReadFully(env, fd.get(), std::as_writable_bytes(std::span(out)), 9), kInternal);
  EXPECT_EQ(env.Truncate(fd.get(), 5), 0);
  EXPECT_EQ(env.Allocate(fd.get(), 8192), 0);
  struct stat st {};
  ASSERT_EQ(env.Fstat(fd.get(), &st), 0);
  EXPECT_EQ(st.st_size, 8192);
  EXPECT_EQ(ReadFile(path).substr(0, 6), std::string("hello\0", 6));

  auto view = env.Map(fd.get(), 0, 8192, 5, /*writable=*/true, /*populate=*/false);
  ASSERT_OK(view.status());
  std::memcpy((*view)->bytes().data(), "HELLO", 5);
  EXPECT_EQ(ReadFile(path).substr(0, 5), "HELLO");
}

TEST_F(PosixEnvTest, Names) {
  Env& env = *env_;
  const std::string d = dir_.path() + "/d";
  EXPECT_EQ(*MakeDirIfMissing(env, d, 0700), true);
  EXPECT_EQ(*MakeDirIfMissing(env, d, 0700), false);
  ASSERT_OK(MakeDirs(env, dir_.path() + "/x/y/z/", 0700, /*sync=*/true));
  EXPECT_TRUE(fs::is_directory(dir_.path() + "/x/y/z"));
  std::ofstream(d + "/a.pko") << "a";
  std::ofstream(d + "/b.txt") << "b";
  EXPECT_EQ(NamesWithSuffix(env, d, ".pko"), std::vector<std::string>{"a.pko"});
  std::vector<std::string> all;
  ASSERT_EQ(env.ListDir(d, &all), 0);
  EXPECT_EQ(all.size(), 2u);
  EXPECT_EQ(env.Rename(d + "/a.pko", d + "/c.pko"), 0);
  EXPECT_EQ(env.Link(d + "/c.pko", d + "/e.pko"), 0);
  EXPECT_EQ(env.Unlink(d + "/c.pko"), 0);
  EXPECT_EQ(env.Unlink(d + "/c.pko"), ENOENT);
  EXPECT_EQ(ReadFile(d + "/e.pko"), "a");
  EXPECT_EQ(env.SyncDir(d), 0);
  EXPECT_EQ(env.SyncDir(d + "/missing"), ENOENT);
  struct stat st {};
  EXPECT_EQ(env.Stat(d + "/missing", &st), ENOENT);
  EXPECT_CODE(SyncDirStatus(env, d + "/missing"), kInternal);
  EXPECT_TRUE(NamesWithSuffix(env, d + "/missing", "").empty());
}

// --- the fault injector ------------------------------------------------------------------------

class FaultInjectionEnvTest : public ::testing::Test {
 protected:
  // A new file `name` in the directory, its creation synced.
  UniqueFd Create(const std::string& name, bool sync_dir = true) {
    UniqueFd fd;
    EXPECT_EQ(env_.Open(Path(name), O_RDWR | O_CREAT | O_EXCL, 0600, &fd), 0);
    if (sync_dir) {
      EXPECT_EQ(env_.SyncDir(dir_.path()), 0);
    }
    return fd;
  }
  std::string Path(const std::string& name) { return dir_.path() + "/" + name; }

  TempDir dir_;
  FaultInjectionEnv env_;
};

TEST_F(FaultInjectionEnvTest, ShortWritesAreReportedAndWriteFullyFinishesThem) {
  UniqueFd fd = Create("f");
  env_.SetShortWrites(3);
  size_t n = 0;
  ASSERT_EQ(env_.Write(fd.get(), Bytes("abcdef"), 0, &n), 0);
  EXPECT_EQ(n, 3u);
  EXPECT_EQ(ReadFile(Path("f")), "abc");
  ASSERT_OK(WriteFully(env_, fd.get(), Bytes("0123456789"), 0));
  EXPECT_EQ(ReadFile(Path("f")), "0123456789");
  EXPECT_GE(env_.faults_hit(), 4);
  env_.ClearFaults();
  ASSERT_EQ(env_.Write(fd.get(), Bytes("abcdef"), 0, &n), 0);
  EXPECT_EQ(n, 6u);
}

TEST_F(FaultInjectionEnvTest, SyncFailsAndNothingIsSynced) {
  UniqueFd fd = Create("f");
  env_.InjectFault(Fault{.op = Op::kSyncData, .error = EIO});
  ASSERT_OK(WriteFully(env_, fd.get(), Bytes("data"), 0));
  EXPECT_EQ(env_.SyncData(fd.get()), EIO);
  EXPECT_EQ(env_.faults_hit(), 1);
  ASSERT_OK(env_.SimulateCrash());
  EXPECT_EQ(ReadFile(Path("f")), "");  // the failed sync kept nothing
  // The fault fired once: the next sync works.
  ASSERT_OK(WriteFully(env_, fd.get(), Bytes("data"), 0));
  EXPECT_EQ(env_.SyncData(fd.get()), 0);
  ASSERT_OK(env_.SimulateCrash());
  EXPECT_EQ(ReadFile(Path("f")), "data");
}

TEST_F(FaultInjectionEnvTest, NoSpaceOnWriteAndAllocate) {
  UniqueFd fd = Create("f");
  env_.InjectFault(Fault{.op = Op::kWrite, .error = ENOSPC, .count = -1});
  env_.InjectFault(Fault{.op = Op::kAllocate, .error = ENOSPC});
  Status s = WriteFully(env_, fd.get(), Bytes("data"), 0);
  EXPECT_CODE(s, kInternal);
  EXPECT_NE(s.message().find(std::strerror(ENOSPC)), std::string::npos) << s.ToString();
  EXPECT_EQ(env_.Allocate(fd.get(), 1 << 20), ENOSPC);
  EXPECT_EQ(env_.Allocate(fd.get(), 1 << 20), 0);  // once only
  EXPECT_EQ(ReadFile(Path("f")).size(), 1u << 20);
}

TEST_F(FaultInjectionEnvTest, FaultsMatchPathsAndSkipCalls) {
  env_.InjectFault(Fault{.op = Op::kRename, .error = EXDEV, .skip = 1, .path_part = "/b"});
  std::ofstream(Path("a")) << "a";
  std::ofstream(Path("b")) << "b";
  EXPECT_EQ(env_.Rename(Path("a"), Path("a2")), 0);  // another path
  EXPECT_EQ(env_.Rename(Path("b"), Path("b2")), 0);  // skipped
  EXPECT_EQ(env_.Rename(Path("b2"), Path("b3")), EXDEV);
  EXPECT_EQ(env_.Rename(Path("b2"), Path("b3")), 0);
  EXPECT_EQ(env_.faults_hit(), 1);
}

TEST_F(FaultInjectionEnvTest, CrashKeepsSyncedDataAndDropsTheRest) {
  UniqueFd fd = Create("f");
  ASSERT_OK(WriteFully(env_, fd.get(), Bytes("synced bytes"), 0));
  ASSERT_EQ(env_.SyncData(fd.get()), 0);
  // Unsynced: an overwrite, an extension, then a truncation below the synced size.
  ASSERT_OK(WriteFully(env_, fd.get(), Bytes("XXXXXX"), 3));
  ASSERT_OK(WriteFully(env_, fd.get(), Bytes("tail"), 100));
  ASSERT_EQ(env_.Truncate(fd.get(), 4), 0);
  ASSERT_OK(WriteFully(env_, fd.get(), Bytes("YY"), 1));
  EXPECT_EQ(ReadFile(Path("f")), "sYYX");
  ASSERT_OK(env_.SimulateCrash());
  EXPECT_EQ(ReadFile(Path("f")), "synced bytes");
  // The descriptor still works, and tracking starts again from the synced state.
  ASSERT_OK(WriteFully(env_, fd.get(), Bytes("S"), 0));
  ASSERT_OK(env_.SimulateCrash());
  EXPECT_EQ(ReadFile(Path("f")), "synced bytes");
}

TEST_F(FaultInjectionEnvTest, CrashUndoesUnsyncedNames) {
  UniqueFd kept = Create("kept");
  ASSERT_OK(WriteFully(env_, kept.get(), Bytes("kept"), 0));
  ASSERT_EQ(env_.SyncData(kept.get()), 0);
  UniqueFd fresh = Create("fresh", /*sync_dir=*/false);
  ASSERT_OK(WriteFully(env_, fresh.get(), Bytes("fresh"), 0));
  ASSERT_EQ(env_.SyncData(fresh.get()), 0);  // data synced, its name is not
  ASSERT_EQ(env_.MakeDir(Path("sub"), 0700), 0);
  std::ofstream(Path("sub/x")) << "x";  // behind the env's back, inside an unsynced directory
  ASSERT_EQ(env_.Rename(Path("kept"), Path("moved")), 0);
  ASSERT_OK(env_.SimulateCrash());
  EXPECT_EQ(ReadFile(Path("kept")), "kept");
  EXPECT_FALSE(fs::exists(Path("moved")));
  EXPECT_FALSE(fs::exists(Path("fresh")));
  EXPECT_FALSE(fs::exists(Path("sub")));
}

TEST_F(FaultInjectionEnvTest, SyncedRenameStaysAndUnsyncedUnlinkComesBack) {
  UniqueFd a = Create("a");
  ASSERT_OK(WriteFully(env_, a.get(), Bytes("old a"), 0));
  ASSERT_EQ(env_.SyncData(a.get()), 0);
  ASSERT_EQ(env_.MakeDir(Path("to"), 0700), 0);
  ASSERT_EQ(env_.SyncDir(dir_.path()), 0);
  // Synced through the target directory alone: durable.
  ASSERT_EQ(env_.Rename(Path("a"), Path("to/a")), 0);
  ASSERT_EQ(env_.SyncDir(Path("to")), 0);
  // Not synced: an unlink, and a rename over another file.
  UniqueFd b = Create("b");
  ASSERT_OK(WriteFully(env_, b.get(), Bytes("b"), 0));
  ASSERT_EQ(env_.SyncData(b.get()), 0);
  ASSERT_OK(WriteFully(env_, a.get(), Bytes("NEW"), 0));  // unsynced change to a
  ASSERT_EQ(env_.Unlink(Path("to/a")), 0);
  UniqueFd c = Create("c");
  ASSERT_OK(WriteFully(env_, c.get(), Bytes("c"), 0));
  ASSERT_EQ(env_.SyncData(c.get()), 0);
  ASSERT_EQ(env_.Rename(Path("c"), Path("b")), 0);
  EXPECT_EQ(ReadFile(Path("b")), "c");
  ASSERT_OK(env_.SimulateCrash());
  EXPECT_EQ(ReadFile(Path("to/a")), "old a");  // back, with its synced bytes
  EXPECT_EQ(ReadFile(Path("b")), "b");
  EXPECT_EQ(ReadFile(Path("c")), "c");
  EXPECT_FALSE(fs::exists(Path("a")));
}

TEST_F(FaultInjectionEnvTest, CreateThenUnlinkLeavesNothing) {
  UniqueFd fd = Create("t", /*sync_dir=*/false);
  ASSERT_OK(WriteFully(env_, fd.get(), Bytes("t"), 0));
  ASSERT_EQ(env_.Unlink(Path("t")), 0);
  UniqueFd again = Create("t", /*sync_dir=*/false);
  ASSERT_OK(env_.SimulateCrash());
  EXPECT_FALSE(fs::exists(Path("t")));
}

TEST_F(FaultInjectionEnvTest, CrashFaultStopsTheMachineUntilTheCrash) {
  UniqueFd fd = Create("f");
  ASSERT_OK(WriteFully(env_, fd.get(), Bytes("one"), 0));
  env_.InjectFault(Fault{.op = Op::kSyncData, .crash = true});
  EXPECT_EQ(env_.SyncData(fd.get()), EIO);
  EXPECT_TRUE(env_.down());
  size_t n = 0;
  EXPECT_EQ(env_.Write(fd.get(), Bytes("two"), 0, &n), EIO);
  EXPECT_EQ(env_.Unlink(Path("f")), EIO);
  UniqueFd other;
  EXPECT_EQ(env_.Open(Path("g"), O_RDWR | O_CREAT, 0600, &other), EIO);
  std::string out(3, '\0');
  EXPECT_OK(ReadFully(env_, fd.get(), std::as_writable_bytes(std::span(out)), 0));  // reads work
  ASSERT_OK(env_.SimulateCrash());
  EXPECT_FALSE(env_.down());
  EXPECT_EQ(ReadFile(Path("f")), "");
  EXPECT_EQ(env_.Write(fd.get(), Bytes("two"), 0, &n), 0);
}

TEST_F(FaultInjectionEnvTest, WritableMappingsCountAsUnsynced) {
  UniqueFd fd = Create("m");
  ASSERT_EQ(env_.Truncate(fd.get(), 4096), 0);
  ASSERT_EQ(env_.SyncData(fd.get()), 0);
  auto view = env_.Map(fd.get(), 0, 4096, 4096, /*writable=*/true, /*populate=*/false);
  ASSERT_OK(view.status());
  std::memcpy((*view)->bytes().data(), "mapped", 6);
  ASSERT_OK(env_.SimulateCrash());
  EXPECT_EQ(ReadFile(Path("m")), std::string(4096, '\0'));
  // Synced while mapped: kept, and later writes through the same mapping are unsynced again.
  view = env_.Map(fd.get(), 0, 4096, 4096, true, false);
  ASSERT_OK(view.status());
  std::memcpy((*view)->bytes().data(), "synced", 6);
  ASSERT_EQ(env_.SyncData(fd.get()), 0);
  std::memcpy((*view)->bytes().data(), "LOST!!", 6);
  ASSERT_OK(env_.SimulateCrash());
  EXPECT_EQ(ReadFile(Path("m")).substr(0, 6), "synced");
}

}  // namespace
}  // namespace packice
